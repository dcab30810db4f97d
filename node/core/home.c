#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pst_error.h"
#include "pst_home.h"

int pst_home_resolve(const char *flag, char *out, size_t cap) {
    int n;
    const char *env = getenv("POSTERN_HOME");
    const char *home = getenv("HOME");
    if (flag != NULL && flag[0] != '\0')
        n = snprintf(out, cap, "%s", flag);
    else if (env != NULL && env[0] != '\0')
        n = snprintf(out, cap, "%s", env);
    else if (home != NULL && home[0] != '\0')
        n = snprintf(out, cap, "%s/.local/share/postern", home);
    else
        return PST_E_INVAL;
    if (n < 0 || (size_t)n >= cap)
        return PST_E_NOSPACE;
    /* strip trailing slashes so joined paths stay tidy */
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return PST_OK;
}

int pst_home_path(const char *dir, const char *name, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return PST_E_NOSPACE;
    return PST_OK;
}

static int mkdir_parents(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        /* parents we create for the user are 0700 too: they hold only our tree */
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            *p = '/';
            return -1;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int pst_home_ensure(const char *dir, char *err, size_t errcap) {
    char tmp[PST_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp)
        return PST_E_NOSPACE;
    if (mkdir_parents(tmp) != 0) {
        snprintf(err, errcap, "cannot create home directory %s: %s", dir, strerror(errno));
        return PST_E_IO;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "%s is not a directory", dir);
        return PST_E_IO;
    }
    if ((st.st_mode & 077) != 0) {
        if (st.st_uid != geteuid() || chmod(dir, 0700) != 0) {
            snprintf(err, errcap,
                     "home directory %s is accessible by others (mode %04o); run: chmod 700 %s",
                     dir, (unsigned)(st.st_mode & 07777), dir);
            return PST_E_PERM;
        }
    }
    return PST_OK;
}

static int fsync_dir_of(const char *path) {
    char tmp[PST_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int pst_file_write_temp(const char *path, const uint8_t *data, size_t len, unsigned mode, char *tmp,
                        size_t tmpcap) {
    if (snprintf(tmp, tmpcap, "%s" PST_TEMP_INFIX "%ld", path, (long)getpid()) >= (int)tmpcap)
        return PST_E_NOSPACE;
    unlink(tmp); /* only a dead process of ours with our pid can have left it */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
    if (fd < 0)
        return errno == ENOSPC || errno == EDQUOT ? PST_E_DISKFULL : PST_E_IO;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return w < 0 && (e == ENOSPC || e == EDQUOT) ? PST_E_DISKFULL : PST_E_IO;
        }
        off += (size_t)w;
    }
    /* umask may have widened nothing but may have narrowed: set exactly */
    if (fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return PST_E_IO;
    }
    close(fd);
    return PST_OK;
}

int pst_file_link_new(const char *tmp, const char *path) {
    /* link(2), unlike rename(2), fails when the target exists: the check and
     * the write are one step, so two writers cannot both "create" the file */
    if (link(tmp, path) != 0) {
        int e = errno;
        return e == EEXIST ? PST_E_EXISTS : PST_E_IO;
    }
    unlink(tmp);
    if (fsync_dir_of(path) != 0)
        return PST_E_IO;
    return PST_OK;
}

static int atomic_write(const char *path, const uint8_t *data, size_t len, mode_t mode,
                        int overwrite) {
    char tmp[PST_PATH_MAX];
    int rc = pst_file_write_temp(path, data, len, mode, tmp, sizeof tmp);
    if (rc != PST_OK)
        return rc;
    if (!overwrite) {
        rc = pst_file_link_new(tmp, path);
        unlink(tmp); /* still there when the link failed */
        return rc;
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return PST_E_IO;
    }
    if (fsync_dir_of(path) != 0)
        return PST_E_IO;
    return PST_OK;
}

int pst_secret_file_write(const char *path, const uint8_t *data, size_t len, int overwrite) {
    return atomic_write(path, data, len, 0600, overwrite);
}

int pst_public_file_write(const char *path, const uint8_t *data, size_t len) {
    return atomic_write(path, data, len, 0644, 1);
}

int pst_secret_file_read(const char *path, uint8_t *buf, size_t cap, size_t *len, char *err,
                         size_t errcap) {
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            snprintf(err, errcap, "%s does not exist", path);
            return PST_E_NOTFOUND;
        }
        snprintf(err, errcap, "cannot open %s: %s", path, strerror(errno));
        return PST_E_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errcap, "%s is not a regular file", path);
        return PST_E_IO;
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        snprintf(err, errcap,
                 "permissions %04o for '%s' are too open: a secret key file must not be "
                 "accessible by others; run: chmod 600 %s",
                 (unsigned)(st.st_mode & 07777), path, path);
        return PST_E_PERM;
    }
    if ((size_t)st.st_size > cap) {
        close(fd);
        snprintf(err, errcap, "%s is larger than %zu bytes: not a Postern key file", path, cap);
        return PST_E_TOOBIG;
    }
    size_t off = 0;
    while (off < cap) {
        ssize_t r = read(fd, buf + off, cap - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            snprintf(err, errcap, "cannot read %s: %s", path, strerror(errno));
            return PST_E_IO;
        }
        if (r == 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    *len = off;
    return PST_OK;
}
