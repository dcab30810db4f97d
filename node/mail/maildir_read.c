/* Reading a delivered Maildir back: the few header fields `postern inbox`
 * shows, and finding the node's messages by their X-Postern-Message-Id
 * after a mail client renamed or moved them. Read-only; plain blocking file
 * I/O. The writer and the folder layout are maildir.c. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pst_maildir.h"
#include "pst_utf8.h"

/* Makes s printable in place: control characters become spaces, bytes of
 * invalid UTF-8 become '?', surrounding blanks are trimmed. */
static void sanitize(char *s) {
    unsigned char *p = (unsigned char *)s;
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            p[i++] = ' ';
            continue;
        }
        size_t k = pst_utf8_seq(p + i, len - i);
        if (k == 0) {
            p[i++] = '?';
            continue;
        }
        i += k;
    }
    while (len > 0 && p[len - 1] == ' ')
        p[--len] = '\0';
    size_t lead = 0;
    while (p[lead] == ' ')
        lead++;
    memmove(p, p + lead, len - lead + 1);
}

/* Appends src[0..n) to dst, which holds at most max bytes. */
static void append(char *dst, size_t max, const char *src, size_t n) {
    size_t have = strlen(dst);
    if (have >= max)
        return;
    if (n > max - have)
        n = max - have;
    memcpy(dst + have, src, n);
    dst[have + n] = '\0';
}

static void extract_address(const char *from, char *out, size_t cap) {
    const char *lt = strrchr(from, '<');
    const char *gt = lt ? strchr(lt, '>') : NULL;
    const char *start = NULL;
    size_t n = 0;
    if (lt && gt && gt > lt + 1) {
        start = lt + 1;
        n = (size_t)(gt - start);
    } else {
        /* a bare addr-spec: the blank-separated token holding '@' */
        const char *at = strchr(from, '@');
        if (at == NULL) {
            out[0] = '\0';
            return;
        }
        start = at;
        while (start > from && !isspace((unsigned char)start[-1]))
            start--;
        const char *end = at;
        while (*end && !isspace((unsigned char)*end))
            end++;
        n = (size_t)(end - start);
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, start, n);
    out[n] = '\0';
    sanitize(out);
}

/* The node's X-Postern-Message-Id value: 64 hex digits, blanks around. */
static bool parse_msg_id(const char *v, size_t n, uint8_t out[PST_HASH_BYTES]) {
    while (n > 0 && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    size_t bin = 0;
    return n == 2 * PST_HASH_BYTES &&
           sodium_hex2bin(out, PST_HASH_BYTES, v, n, NULL, &bin, NULL) == 0 &&
           bin == PST_HASH_BYTES;
}

void pst_maildir_parse_headers(const char *buf, size_t len, pst_maildir_headers *out) {
    memset(out, 0, sizeof *out);
    bool done[3] = {false, false, false};
    char *fields[3] = {out->from, out->subject, out->date};
    static const size_t caps[3] = {PST_MAILDIR_HEADER_VALUE_MAX, PST_MAILDIR_SUBJECT_RAW_MAX,
                                   PST_MAILDIR_HEADER_VALUE_MAX};
    static const char *const names[3] = {"from", "subject", "date"};
    static const char id_name[] = "x-postern-message-id";
    bool id_done = false;
    int cur = -1; /* field the current line (and its continuations) fills */
    size_t i = 0;
    while (i < len) {
        const char *line = buf + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t llen = nl ? (size_t)(nl - line) : len - i;
        i += llen + (nl ? 1 : 0);
        if (llen > 0 && line[llen - 1] == '\r')
            llen--;
        if (llen == 0)
            break; /* end of the header section */
        if (line[0] == ' ' || line[0] == '\t') {
            if (cur >= 0)
                append(fields[cur], caps[cur], line, llen); /* unfold: keep the blank */
            continue;
        }
        cur = -1;
        const char *colon = memchr(line, ':', llen);
        if (colon == NULL)
            continue;
        size_t nlen = (size_t)(colon - line);
        if (!id_done && nlen == sizeof id_name - 1 && strncasecmp(line, id_name, nlen) == 0) {
            /* the first one is the node's: an author's was renamed on delivery */
            id_done = true;
            out->has_msg_id = parse_msg_id(colon + 1, llen - nlen - 1, out->msg_id);
            continue;
        }
        for (int f = 0; f < 3; f++)
            if (!done[f] && nlen == strlen(names[f]) && strncasecmp(line, names[f], nlen) == 0) {
                done[f] = true;
                cur = f;
                append(fields[f], caps[f], colon + 1, llen - nlen - 1);
            }
    }
    for (int f = 0; f < 3; f++)
        sanitize(fields[f]);
    extract_address(out->from, out->address, sizeof out->address);
}

/* Reads at most cap bytes of the header of the regular file at path into
 * buf, stopping early at the empty line that ends it. O_NONBLOCK: a FIFO a
 * client (or anyone) left in the Maildir must not hang the loop at open. */
static int read_head(const char *path, char *buf, size_t cap, size_t *got, uint64_t *size) {
    *got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? PST_E_NOTFOUND : PST_E_IO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return PST_E_IO;
    }
    while (*got < cap) {
        ssize_t k = read(fd, buf + *got, cap - *got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            close(fd);
            return PST_E_IO;
        }
        if (k == 0)
            break;
        /* the header ends at an empty line, LF or CRLF: "\n\n" or "\n\r\n",
         * possibly begun in the previous read */
        size_t from = *got > 2 ? *got - 2 : 0;
        *got += (size_t)k;
        if (memmem(buf + from, *got - from, "\n\n", 2) != NULL ||
            memmem(buf + from, *got - from, "\n\r\n", 3) != NULL)
            break; /* the body is none of our business */
    }
    close(fd);
    if (size)
        *size = (uint64_t)sb.st_size;
    return PST_OK;
}

int pst_maildir_read_headers(const char *path, pst_maildir_headers *out, uint64_t *size) {
    memset(out, 0, sizeof *out);
    if (size)
        *size = 0;
    char buf[PST_MAILDIR_HEADER_READ_MAX]; /* the loop thread has a large stack */
    size_t got = 0;
    int rc = read_head(path, buf, sizeof buf, &got, size);
    if (rc == PST_OK)
        pst_maildir_parse_headers(buf, got, out);
    return rc;
}

/* ---- finding moved and renamed messages ------------------------------------- */

typedef struct {
    const char *root;
    pst_maildir_scan_cb cb;
    void *user;
} scan_walk;

static int scan_sub(scan_walk *w, const char *folder, const char *sub) {
    char dir[PST_PATH_MAX], path[PST_PATH_MAX];
    if (pst_maildir_folder_path(w->root, folder, dir, sizeof dir) != PST_OK)
        return 0;
    int n = snprintf(path, sizeof path, "%s/%s", dir, sub);
    if (n < 0 || (size_t)n >= sizeof path)
        return 0;
    DIR *d = opendir(path);
    if (d == NULL) /* a folder without new/ or cur/ has nothing of ours; any
                    * other failure means the scan did not see everything */
        return errno == ENOENT || errno == ENOTDIR ? 0 : PST_E_IO;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        pst_maildir_loc loc;
        pst_maildir_headers h;
        if (e->d_name[0] == '.' || strlen(e->d_name) > PST_MAILDIR_NAME_MAX)
            continue;
        memset(&loc, 0, sizeof loc);
        snprintf(loc.folder, sizeof loc.folder, "%s", folder);
        snprintf(loc.sub, sizeof loc.sub, "%s", sub);
        snprintf(loc.name, sizeof loc.name, "%s", e->d_name);
        if (pst_maildir_loc_path(w->root, &loc, path, sizeof path) != PST_OK ||
            pst_maildir_read_headers(path, &h, NULL) != PST_OK || !h.has_msg_id)
            continue; /* gone meanwhile, not a regular file, or not ours */
        rc = w->cb(h.msg_id, &loc, w->user);
    }
    closedir(d);
    return rc;
}

static int scan_folder(const char *folder, void *user) {
    int rc = scan_sub(user, folder, "new");
    return rc != 0 ? rc : scan_sub(user, folder, "cur");
}

int pst_maildir_scan(const char *root, pst_maildir_scan_cb cb, void *user) {
    scan_walk w = {root, cb, user};
    return pst_maildir_each_folder(root, scan_folder, &w);
}
