/* Where an outbox body is, and whether it was found damaged: a ciphertext
 * of at most PST_STORE_BODY_INLINE_MAX bytes is in the store (committed
 * with its rows: send.c), a larger one in DIR/outbox/<hex> (issue 14, third
 * round; docs/MAIL.md). The fetch server opens either as a file descriptor,
 * so its hash check and its stream read both the same way; `unsend` asks
 * whether either is left. Loop thread. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void pst_outbox__damaged_name(const uint8_t msg_id[PST_HASH_BYTES], char name[48]) {
    char hex[33];
    sodium_bin2hex(hex, sizeof hex, msg_id, 16);
    snprintf(name, 48, "body.damaged.%s", hex);
}

/* ---- damaged bodies ---------------------------------------------------------
 * The fetch server hashes a body before serving it (fetch_server.c); a body
 * whose hash is not its message id is remembered here (store meta, so that
 * `postern outbox` shows it across restarts) and logged once, not at every
 * fetch. A later good check (the file was restored) clears it. */

uint64_t pst_outbox_body_damaged_since(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES]) {
    char name[48];
    uint64_t v = 0;
    pst_outbox__damaged_name(msg_id, name);
    return pst_store_meta_get_u64(n->store, name, &v) == PST_OK ? v : 0;
}

void pst_outbox_body_checked(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES], bool good) {
    char name[48], hex[2 * PST_HASH_BYTES + 1], path[PST_PATH_MAX] = "?";
    uint64_t since = pst_outbox_body_damaged_since(n, msg_id);
    pst_outbox__damaged_name(msg_id, name);
    sodium_bin2hex(hex, sizeof hex, msg_id, PST_HASH_BYTES);
    size_t inline_len = 0; /* NOSPACE: a small body, in the store */
    if (pst_store_outbox_body_get(n->store, msg_id, NULL, 0, &inline_len) == PST_E_NOSPACE)
        snprintf(path, sizeof path, "(kept in the store)");
    else if (n->outbox != NULL)
        (void)pst_outbox_body_path(n->outbox, msg_id, path, sizeof path);
    if (good && since != 0) {
        (void)pst_store_meta_delete(n->store, name);
        pst_log_info("message %.16s...: its body %s is intact again and is served", hex, path);
    } else if (!good && since == 0) {
        (void)pst_store_meta_set_u64(n->store, name, pst_now());
        pst_log_error("message %.16s...: its body %s is damaged (its hash is not the message id): "
                      "not served; restore the file from a backup, or send the message again",
                      hex, path);
    }
}
