/* Maildir++ delivery: tmp/ -> fsync -> rename into new/ -> fsync new/, with
 * deterministic file names so that a repeated delivery finds the first copy.
 * See pst_maildir.h for the layout and the contract. */
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

static const char *const SUBDIRS[3] = {"tmp", "new", "cur"};

static bool label_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool pst_maildir_folder_valid(const char *folder) {
    if (folder == NULL)
        return false;
    if (folder[0] == '\0')
        return true;
    size_t len = strlen(folder);
    if (folder[0] != '.' || len < 2 || len > PST_MAILDIR_FOLDER_MAX)
        return false;
    bool label_empty = true;
    for (size_t i = 1; i < len; i++) {
        if (folder[i] == '.') {
            if (label_empty)
                return false;
            label_empty = true;
        } else if (label_char(folder[i])) {
            label_empty = false;
        } else {
            return false;
        }
    }
    return !label_empty;
}

const char *pst_maildir_folder_display(const char *folder) {
    return folder[0] == '\0' ? "INBOX" : folder + 1;
}

int pst_maildir_folder_parse(const char *name, char out[PST_MAILDIR_FOLDER_MAX + 1]) {
    out[0] = '\0';
    if (name[0] == '\0' || strcasecmp(name, "INBOX") == 0)
        return PST_OK;
    int len = snprintf(out, PST_MAILDIR_FOLDER_MAX + 1, "%s%s", name[0] == '.' ? "" : ".", name);
    if (len < 0 || len > (int)PST_MAILDIR_FOLDER_MAX || !pst_maildir_folder_valid(out)) {
        out[0] = '\0';
        return PST_E_INVAL;
    }
    return PST_OK;
}

static int join(char *out, size_t cap, const char *a, const char *b, const char *c) {
    int n;
    if (c != NULL)
        n = snprintf(out, cap, "%s/%s/%s", a, b, c);
    else if (b != NULL)
        n = snprintf(out, cap, "%s/%s", a, b);
    else
        n = snprintf(out, cap, "%s", a);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return PST_E_NOSPACE;
    }
    return PST_OK;
}

int pst_maildir_folder_path(const char *root, const char *folder, char *out, size_t cap) {
    if (root == NULL || !pst_maildir_folder_readable(folder))
        return PST_E_INVAL;
    return join(out, cap, root, folder[0] ? folder : NULL, NULL);
}

static bool base_valid(const char *base) {
    if (base == NULL)
        return false;
    size_t len = strlen(base);
    if (len == 0 || len > PST_MAILDIR_NAME_MAX || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return false;
    return strpbrk(base, "/:") == NULL;
}

static int mkdir_p(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int pst_maildir_create(const char *root, const char *folder, char *err, size_t errcap) {
    char dir[PST_PATH_MAX], path[PST_PATH_MAX];
    int rc = pst_maildir_folder_valid(folder)
                 ? pst_maildir_folder_path(root, folder, dir, sizeof dir)
                 : PST_E_INVAL;
    if (rc != PST_OK) {
        snprintf(err, errcap, "invalid Maildir folder '%s'", folder ? folder : "(null)");
        return rc;
    }
    if (mkdir_p(dir) != 0) {
        snprintf(err, errcap, "cannot create %s: %s", dir, strerror(errno));
        return PST_E_IO;
    }
    for (int i = 0; i < 3; i++) {
        if ((rc = join(path, sizeof path, dir, SUBDIRS[i], NULL)) != PST_OK)
            return rc;
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errcap, "cannot create %s: %s", path, strerror(errno));
            return PST_E_IO;
        }
    }
    if (folder[0] != '\0') {
        /* Maildir++ marks a folder with this empty file (Courier, Dovecot) */
        if ((rc = join(path, sizeof path, dir, "maildirfolder", NULL)) != PST_OK)
            return rc;
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            snprintf(err, errcap, "cannot create %s: %s", path, strerror(errno));
            return PST_E_IO;
        }
        close(fd);
    }
    return PST_OK;
}

void pst_maildir_base_name(const uint8_t msg_id[PST_HASH_BYTES],
                           char out[PST_MAILDIR_BASE_BUFSIZE]) {
    sodium_bin2hex(out, 2 * PST_HASH_BYTES + 1, msg_id, PST_HASH_BYTES);
    memcpy(out + 2 * PST_HASH_BYTES, PST_MAILDIR_SUFFIX, sizeof PST_MAILDIR_SUFFIX);
}

/* base itself, or base + ":" + flags as a mail client renames it */
static bool name_matches(const char *name, const char *base, size_t blen) {
    return strncmp(name, base, blen) == 0 && (name[blen] == '\0' || name[blen] == ':');
}

int pst_maildir_find(const char *root, const char *folder, const char *base, pst_maildir_loc *loc) {
    memset(loc, 0, sizeof *loc);
    if (!base_valid(base))
        return PST_E_INVAL;
    char dir[PST_PATH_MAX], path[PST_PATH_MAX];
    int rc = pst_maildir_folder_path(root, folder, dir, sizeof dir);
    if (rc != PST_OK)
        return rc;
    size_t blen = strlen(base);
    for (int i = 1; i < 3; i++) {
        struct stat sb;
        if ((rc = join(path, sizeof path, dir, SUBDIRS[i], base)) != PST_OK)
            return rc;
        if (lstat(path, &sb) == 0) {
            snprintf(loc->name, sizeof loc->name, "%s", base);
        } else {
            if ((rc = join(path, sizeof path, dir, SUBDIRS[i], NULL)) != PST_OK)
                return rc;
            DIR *d = opendir(path);
            if (d == NULL) {
                if (errno == ENOENT || errno == ENOTDIR)
                    continue;
                return PST_E_IO;
            }
            struct dirent *e;
            while ((e = readdir(d)) != NULL)
                if (name_matches(e->d_name, base, blen)) {
                    snprintf(loc->name, sizeof loc->name, "%s", e->d_name);
                    break;
                }
            closedir(d);
        }
        if (loc->name[0] != '\0') {
            snprintf(loc->folder, sizeof loc->folder, "%s", folder);
            snprintf(loc->sub, sizeof loc->sub, "%s", SUBDIRS[i]);
            return PST_OK;
        }
    }
    return PST_E_NOTFOUND;
}

bool pst_maildir_folder_readable(const char *folder) {
    if (folder == NULL)
        return false;
    if (folder[0] == '\0')
        return true;
    size_t len = strlen(folder);
    if (folder[0] != '.' || len < 2 || len > PST_MAILDIR_FOLDER_MAX || strcmp(folder, "..") == 0 ||
        strchr(folder, '/') != NULL)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)folder[i] < 0x20 || folder[i] == 0x7f)
            return false;
    return true;
}

int pst_maildir_each_folder(const char *root, pst_maildir_folder_cb cb, void *user) {
    int rc = cb("", user);
    if (rc != 0)
        return rc;
    DIR *d = opendir(root);
    if (d == NULL)
        return errno == ENOENT ? PST_OK : PST_E_IO;
    struct dirent *e;
    char path[PST_PATH_MAX];
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct stat sb;
        /* a client's own files (.mu-prop, .mbsyncstate, .uidvalidity) and
         * anything else that is no folder directory are none of our business */
        if (e->d_name[0] != '.' || !pst_maildir_folder_readable(e->d_name) ||
            join(path, sizeof path, root, e->d_name, NULL) != PST_OK || stat(path, &sb) != 0 ||
            !S_ISDIR(sb.st_mode))
            continue;
        rc = cb(e->d_name, user);
    }
    closedir(d);
    return rc;
}

typedef struct {
    const char *root, *base;
    pst_maildir_loc *loc;
} find_walk;

static int find_in(const char *folder, void *user) {
    find_walk *w = user;
    int rc = pst_maildir_find(w->root, folder, w->base, w->loc);
    return rc == PST_E_NOTFOUND ? 0 : rc == PST_OK ? 1 : rc;
}

int pst_maildir_find_any(const char *root, const char *base, pst_maildir_loc *loc) {
    find_walk w = {root, base, loc};
    int rc = pst_maildir_each_folder(root, find_in, &w);
    if (rc == 1)
        return PST_OK;
    memset(loc, 0, sizeof *loc);
    return rc == 0 ? PST_E_NOTFOUND : rc;
}

int pst_maildir_sync_loc(const char *root, const pst_maildir_loc *loc) {
    char dir[PST_PATH_MAX], sub[PST_PATH_MAX];
    int rc = pst_maildir_folder_path(root, loc->folder, dir, sizeof dir);
    if (rc == PST_OK)
        rc = join(sub, sizeof sub, dir, loc->sub, NULL);
    return rc == PST_OK ? pst_fsync_dir(sub) : rc;
}

int pst_maildir_loc_path(const char *root, const pst_maildir_loc *loc, char *out, size_t cap) {
    char dir[PST_PATH_MAX];
    int rc = pst_maildir_folder_path(root, loc->folder, dir, sizeof dir);
    if (rc != PST_OK)
        return rc;
    return join(out, cap, dir, loc->sub, loc->name);
}

static bool has_suffix(const char *name, const char *suffix) {
    size_t n = strlen(name), s = strlen(suffix);
    return n > s && strcmp(name + n - s, suffix) == 0;
}

static void clean_folder_tmp(const char *root, const char *folder, uint64_t now,
                             unsigned *removed) {
    char dir[PST_PATH_MAX], tmp[PST_PATH_MAX], path[PST_PATH_MAX];
    if (pst_maildir_folder_path(root, folder, dir, sizeof dir) != PST_OK ||
        join(tmp, sizeof tmp, dir, "tmp", NULL) != PST_OK)
        return;
    DIR *d = opendir(tmp);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (e->d_name[0] == '.' || join(path, sizeof path, tmp, e->d_name, NULL) != PST_OK ||
            lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        bool ours = has_suffix(e->d_name, PST_MAILDIR_SUFFIX);
        bool old = (uint64_t)sb.st_mtime + PST_MAILDIR_TMP_MAX_AGE_S < now;
        if ((ours || old) && unlink(path) == 0)
            (*removed)++;
    }
    closedir(d);
}

typedef struct {
    const char *root;
    uint64_t now;
    unsigned count;
} clean_walk;

static int clean_in(const char *folder, void *user) {
    clean_walk *w = user;
    clean_folder_tmp(w->root, folder, w->now, &w->count);
    return 0;
}

int pst_maildir_clean_tmp(const char *root, uint64_t now, unsigned *removed) {
    clean_walk w = {root, now, 0};
    int rc = pst_maildir_each_folder(root, clean_in, &w);
    if (removed)
        *removed = w.count;
    return rc;
}

/* ---- writer ---------------------------------------------------------------- */

/* errno after a failed open/write/fsync/close/rename: a full disk (or
 * quota) is PST_E_DISKFULL, a temporary condition the caller retries and
 * reports as such; anything else is PST_E_IO. */
static int io_error(int e) {
    if (e == EFBIG) /* over the file-size limit: not cured by freeing space */
        return PST_E_TOOBIG;
    return e == ENOSPC || e == EDQUOT ? PST_E_DISKFULL : PST_E_IO;
}

int pst_maildir_open(pst_maildir_writer *w, const char *root, const char *folder,
                     const char *base) {
    memset(w, 0, sizeof *w);
    pst_hdrfilter_init(&w->filter);
    w->fd = -1;
    char dir[PST_PATH_MAX];
    if (!base_valid(base) || strlen(base) >= sizeof w->base || !pst_maildir_folder_valid(folder))
        return PST_E_INVAL;
    int rc = pst_maildir_folder_path(root, folder, dir, sizeof dir);
    if (rc != PST_OK || (rc = join(w->tmp_path, sizeof w->tmp_path, dir, "tmp", base)) != PST_OK ||
        (rc = join(w->root, sizeof w->root, root, NULL, NULL)) != PST_OK)
        return rc;
    snprintf(w->folder, sizeof w->folder, "%s", folder);
    snprintf(w->base, sizeof w->base, "%s", base);
    /* read too: a NUL marker moves the message up (insert_at) */
    w->fd = open(w->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (w->fd < 0) {
        memset(w, 0, sizeof *w);
        w->fd = -1;
        return errno == ENOENT ? PST_E_NOTFOUND : io_error(errno);
    }
    return PST_OK;
}

int pst_maildir_write(pst_maildir_writer *w, const void *p, size_t n) {
    if (w->err != PST_OK)
        return w->err;
    if (w->fd < 0)
        return PST_E_CLOSED;
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = write(w->fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            w->err = k < 0 ? io_error(errno) : PST_E_DISKFULL; /* write 0: no room */
            return w->err;
        }
        b += k;
        n -= (size_t)k;
        w->bytes += (uint64_t)k;
    }
    return PST_OK;
}

void pst_maildir_writeback(pst_maildir_writer *w) {
    if (w->fd < 0 || w->err != PST_OK || w->bytes <= w->wb_done)
        return;
    (void)sync_file_range(w->fd, (off64_t)w->wb_done, (off64_t)(w->bytes - w->wb_done),
                          SYNC_FILE_RANGE_WRITE);
    w->wb_done = w->bytes;
}

int pst_maildir_write_message(pst_maildir_writer *w, const void *buf, size_t n) {
    if (w->err != PST_OK)
        return w->err;
    if (!w->msg_started) {
        w->msg_started = true;
        w->msg_start = w->bytes;
    }
    const uint8_t *p = buf;
    while (n > 0) {
        /* a long plain run of the body goes out from the caller's buffer,
         * with no copy; short ones (CRLF lines) are gathered by the filter
         * into fewer, larger writes */
        size_t used = pst_hdrfilter_clean_run(&w->filter, p, n), len = 0;
        if (used >= 8192) {
            int rc = pst_maildir_write(w, p, used);
            if (rc != PST_OK)
                return rc;
            p += used;
            n -= used;
            continue;
        }
        int rc = pst_hdrfilter_feed(&w->filter, p, n, &used, w->fbuf, sizeof w->fbuf, &len);
        if (rc == PST_OK && len > 0)
            rc = pst_maildir_write(w, w->fbuf, len);
        if (rc != PST_OK)
            return rc;
        p += used;
        n -= used;
    }
    return PST_OK;
}

/* Inserts n bytes at offset at of the tmp file, moving what follows up,
 * from the end backwards, one buffer at a time (a rare path: only a
 * message that had NUL bytes). */
static int insert_at(pst_maildir_writer *w, uint64_t at, const void *p, size_t n) {
    uint64_t pos = w->bytes;
    while (pos > at) {
        size_t k = pos - at < sizeof w->fbuf ? (size_t)(pos - at) : sizeof w->fbuf;
        pos -= k;
        ssize_t r = pread(w->fd, w->fbuf, k, (off_t)pos);
        if (r != (ssize_t)k)
            return r < 0 ? io_error(errno) : PST_E_IO;
        ssize_t wr = pwrite(w->fd, w->fbuf, k, (off_t)(pos + n));
        if (wr != (ssize_t)k)
            return wr < 0 ? io_error(errno) : PST_E_DISKFULL;
    }
    ssize_t wr = pwrite(w->fd, p, n, (off_t)at);
    if (wr != (ssize_t)n)
        return wr < 0 ? io_error(errno) : PST_E_DISKFULL;
    w->bytes += n;
    return PST_OK;
}

/* The end of the author's bytes: what the filter held back, and the marker
 * when NUL bytes were replaced. */
static int finish_message(pst_maildir_writer *w) {
    if (!w->msg_started)
        return PST_OK;
    size_t k = pst_hdrfilter_finish(&w->filter, w->fbuf, sizeof w->fbuf);
    int rc = k > 0 ? pst_maildir_write(w, w->fbuf, k) : PST_OK;
    if (rc == PST_OK && w->filter.nul_replaced > 0) {
        char line[96];
        int len = snprintf(line, sizeof line, PST_MAILDIR_NUL_FIELD ": %llu\n",
                           (unsigned long long)w->filter.nul_replaced);
        rc = insert_at(w, w->msg_start, line, (size_t)len);
    }
    w->msg_started = false;
    return rc;
}

void pst_maildir_abort(pst_maildir_writer *w) {
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->tmp_path[0] != '\0') {
        (void)unlink(w->tmp_path);
        w->tmp_path[0] = '\0';
    }
}

int pst_fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return PST_E_IO;
    int rc = fsync(fd) == 0 ? PST_OK : io_error(errno);
    int e = errno;
    close(fd);
    errno = e; /* callers print it */
    return rc;
}

int pst_maildir_place(pst_maildir_writer *w, pst_maildir_loc *loc) {
    memset(loc, 0, sizeof *loc);
    if (w->fd < 0) {
        pst_maildir_abort(w);
        return PST_E_CLOSED;
    }
    int rc = w->err;
    if (rc == PST_OK)
        rc = finish_message(w);
    if (rc == PST_OK && fsync(w->fd) != 0)
        rc = io_error(errno);
    if (close(w->fd) != 0 && rc == PST_OK)
        rc = io_error(errno); /* NFS reports a full disk at close */
    w->fd = -1;
    if (rc != PST_OK) {
        pst_maildir_abort(w);
        return rc;
    }
    /* an earlier delivery of the same message (a crash between the rename
     * and the store update, or a notification seen twice) wins */
    rc = w->no_copy ? PST_E_NOTFOUND : pst_maildir_find_any(w->root, w->base, loc);
    if (rc == PST_OK) {
        pst_maildir_abort(w);
        /* that copy's rename may not have reached the disk (its directory
         * fsync failed, or a crash came first): the caller acknowledges it */
        rc = pst_maildir_sync_loc(w->root, loc);
        return rc == PST_OK ? PST_E_EXISTS : rc;
    }
    if (rc != PST_E_NOTFOUND) {
        pst_maildir_abort(w);
        return rc;
    }
    char dir[PST_PATH_MAX], newdir[PST_PATH_MAX], dest[PST_PATH_MAX];
    if ((rc = pst_maildir_folder_path(w->root, w->folder, dir, sizeof dir)) != PST_OK ||
        (rc = join(newdir, sizeof newdir, dir, "new", NULL)) != PST_OK ||
        (rc = join(dest, sizeof dest, dir, "new", w->base)) != PST_OK) {
        pst_maildir_abort(w);
        return rc;
    }
    if (rename(w->tmp_path, dest) != 0) {
        int e = errno;
        pst_maildir_abort(w);
        return io_error(e);
    }
    w->tmp_path[0] = '\0';
    snprintf(loc->folder, sizeof loc->folder, "%s", w->folder);
    snprintf(loc->sub, sizeof loc->sub, "new");
    snprintf(loc->name, sizeof loc->name, "%s", w->base);
    return PST_OK;
}

int pst_maildir_commit(pst_maildir_writer *w, pst_maildir_loc *loc) {
    int rc = pst_maildir_place(w, loc);
    /* the rename is durable only once the directory entry is */
    return rc == PST_OK ? pst_maildir_sync_loc(w->root, loc) : rc;
}
