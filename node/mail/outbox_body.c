/* Where an outbox body is: a ciphertext of at most PST_STORE_BODY_INLINE_MAX
 * bytes is in the store (committed with its rows: send.c), a larger one in
 * DIR/outbox/<hex> (issue 14, third round; docs/MAIL.md). The fetch server
 * opens either as a file descriptor, so its hash check and its stream read
 * both the same way; `unsend` asks whether either is left. Loop thread. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outbox_int.h"
#include "pst_log.h"

/* A memfd holding len bytes of buf from offset 0, or -1 (errno set). */
static int memfd_of(const uint8_t *buf, size_t len) {
    int fd = memfd_create("postern-body", MFD_CLOEXEC);
    for (size_t off = 0; fd >= 0 && off < len;) {
        ssize_t w = pwrite(fd, buf + off, len - off, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            errno = e;
            return -1;
        }
        off += (size_t)w;
    }
    return fd;
}

int pst_outbox_body_open(struct pst_outbox *o, const uint8_t msg_id[PST_HASH_BYTES], char *path,
                         size_t cap) {
    pst_store *st = o->node->store;
    uint8_t *buf = malloc(PST_STORE_BODY_INLINE_MAX);
    size_t len = 0;
    int rc = buf == NULL
                 ? PST_E_NOMEM
                 : pst_store_outbox_body_get(st, msg_id, buf, PST_STORE_BODY_INLINE_MAX, &len);
    if (rc == PST_E_NOTFOUND) { /* a large body: its file */
        free(buf);
        if (pst_outbox_body_path(o, msg_id, path, cap) != PST_OK) {
            errno = ENAMETOOLONG;
            return -1;
        }
        return open(path, O_RDONLY | O_CLOEXEC);
    }
    snprintf(path, cap, "the store's copy of the body");
    int fd = -1;
    if (rc == PST_OK) {
        fd = memfd_of(buf, len);
    } else {
        pst_log_error("fetch: cannot read a body from the store: %s", pst_store_last_error(st));
        errno = rc == PST_E_NOMEM ? ENOMEM : EIO;
    }
    free(buf);
    return fd;
}

bool pst_outbox_body_gone(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES]) {
    char path[PST_PATH_MAX];
    struct stat sb;
    size_t len = 0;
    if (n->outbox == NULL || pst_outbox_body_path(n->outbox, msg_id, path, sizeof path) != PST_OK ||
        stat(path, &sb) == 0 || errno != ENOENT)
        return false;
    return pst_store_outbox_body_get(n->store, msg_id, NULL, 0, &len) == PST_E_NOTFOUND;
}
