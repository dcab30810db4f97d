/* The node's home directory and the files in it: where they are, and the
 * permission rules for secrets (as OpenSSH: refuse a secret key file that
 * group or others can read, and say how to fix it). Shared by posternd and
 * the postern CLI. */
#ifndef PST_HOME_H
#define PST_HOME_H

#include <stddef.h>
#include <stdint.h>

#define PST_PATH_MAX 4096

/* Files inside the home directory. */
#define PST_FILE_IDENTITY "identity.key"
#define PST_FILE_DEVICE "device.key" /* a joined device's own key pair (issue 13) */
#define PST_FILE_REVKEY "revocation.key"
#define PST_FILE_REVCERT "revocation.cert"
#define PST_FILE_STORE "postern.db"
#define PST_FILE_CONFIG "postern.conf"
#define PST_FILE_CONTROL "control.sock"
#define PST_FILE_PIDLOCK "posternd.lock"

/* Picks the home directory: flag if non-NULL, else $POSTERN_HOME, else
 * $HOME/.local/share/postern. Returns PST_E_INVAL when none can be found and
 * PST_E_NOSPACE when the path does not fit in cap bytes. */
int pst_home_resolve(const char *flag, char *out, size_t cap);

/* Creates dir (and missing parents) with mode 0700; tightens an existing dir
 * we own to 0700. PST_E_IO / PST_E_PERM with errno-based detail in err. */
int pst_home_ensure(const char *dir, char *err, size_t errcap);

/* Joins dir and name into out. PST_E_NOSPACE when it does not fit. */
int pst_home_path(const char *dir, const char *name, char *out, size_t cap);

/* Temporary files are PATH + PST_TEMP_INFIX + pid, next to PATH. */
#define PST_TEMP_INFIX ".tmp."

/* Writes data to a new temporary file next to path (name in tmp), with
 * exactly mode, and fsyncs it. PST_E_IO / PST_E_DISKFULL (nothing left
 * behind), PST_E_NOSPACE when the name does not fit in tmpcap. */
int pst_file_write_temp(const char *path, const uint8_t *data, size_t len, unsigned mode, char *tmp,
                        size_t tmpcap);

/* Gives the finished temporary file tmp the name path, only if path does not
 * exist (link(2): check and create in one step), then removes the name tmp
 * and fsyncs the directory. PST_E_EXISTS (tmp left for the caller) or
 * PST_E_IO. */
int pst_file_link_new(const char *tmp, const char *path);

/* Writes a secret file atomically: tmp file with mode 0600, fsync, rename (or
 * link when not overwriting), fsync of the directory. Refuses to replace an
 * existing file unless overwrite is set (PST_E_EXISTS), with no window
 * between the check and the write. */
int pst_secret_file_write(const char *path, const uint8_t *data, size_t len, int overwrite);

/* Reads a secret file of at most cap bytes. Refuses (PST_E_PERM) a file that
 * group or others can access, writing an OpenSSH-style message with the fix
 * ("chmod 600 PATH") into err. PST_E_NOTFOUND when it does not exist,
 * PST_E_TOOBIG when larger than cap. */
int pst_secret_file_read(const char *path, uint8_t *buf, size_t cap, size_t *len, char *err,
                         size_t errcap);

/* Writes a public (non-secret) file atomically with mode 0644. */
int pst_public_file_write(const char *path, const uint8_t *data, size_t len);

#endif
