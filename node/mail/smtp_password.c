/* SMTP submission's password: HOME/smtp.password, made by `postern init`
 * or `postern smtp password` (or by posternd when a home made before it has
 * none), read by the session at every AUTH.
 *
 * It is kept in clear, mode 0600, beside identity.key: the CLI must be able
 * to show it again so a mail client can be configured at any time (as local
 * mail bridges do), and a hash would not allow that. Whoever can read the
 * file can read identity.key too. The check compares fixed-size BLAKE2b
 * hashes of the two strings with sodium_memcmp: no length or prefix timing. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "smtp_int.h"

#define PASSWORD_RAW_BYTES 18u

static int read_password(const char *path, char out[PST_SMTP_PASSWORD_LEN + 1], char *err,
                         size_t errcap) {
    uint8_t buf[PST_SMTP_PASSWORD_LEN + 4];
    size_t len = 0;
    int rc = pst_secret_file_read(path, buf, sizeof buf, &len, err, errcap);
    if (rc == PST_OK) {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        if (len != PST_SMTP_PASSWORD_LEN || memchr(buf, 0, len) != NULL) {
            snprintf(err, errcap,
                     "%s is not a Postern SMTP password file (run 'postern smtp password "
                     "--reset' to make a new one)",
                     path);
            rc = PST_E_CHECKSUM;
        } else {
            memcpy(out, buf, len);
            out[len] = '\0';
        }
    } else if (rc == PST_E_TOOBIG) {
        snprintf(err, errcap, "%s is not a Postern SMTP password file (too long)", path);
        rc = PST_E_CHECKSUM;
    }
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int pst_node_smtp_password(const char *home, bool reset, char out[PST_SMTP_PASSWORD_LEN + 1],
                           char *err, size_t errcap) {
    char path[PST_PATH_MAX];
    memset(out, 0, PST_SMTP_PASSWORD_LEN + 1);
    if (pst_home_path(home, PST_FILE_SMTP_PASSWORD, path, sizeof path) != PST_OK) {
        snprintf(err, errcap, "the home path is too long");
        return PST_E_NOSPACE;
    }
    if (!reset) {
        int rc = read_password(path, out, err, errcap);
        if (rc != PST_E_NOTFOUND) {
            if (rc != PST_OK)
                sodium_memzero(out, PST_SMTP_PASSWORD_LEN + 1);
            return rc;
        }
    }
    uint8_t raw[PASSWORD_RAW_BYTES];
    char line[PST_SMTP_PASSWORD_LEN + 2];
    randombytes_buf(raw, sizeof raw);
    /* URL-safe base64: no '+' or '/' to trip a client's config syntax */
    sodium_bin2base64(line, sizeof line, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    line[PST_SMTP_PASSWORD_LEN] = '\n';
    int rc = pst_secret_file_write(path, (const uint8_t *)line, PST_SMTP_PASSWORD_LEN + 1, reset);
    if (rc == PST_E_EXISTS) /* another caller made it first: theirs stands */
        rc = read_password(path, out, err, errcap);
    else if (rc == PST_OK)
        memcpy(out, line, PST_SMTP_PASSWORD_LEN);
    else
        snprintf(err, errcap, "cannot write %s: %s", path, pst_strerror(rc));
    sodium_memzero(line, sizeof line);
    if (rc != PST_OK)
        sodium_memzero(out, PST_SMTP_PASSWORD_LEN + 1);
    return rc;
}

bool pst_smtp__password_ok(const char *home, const char *given) {
    char want[PST_SMTP_PASSWORD_LEN + 1], err[256];
    if (pst_node_smtp_password(home, false, want, err, sizeof err) != PST_OK) {
        pst_log_warn("smtp: cannot read the submission password: %s", err);
        return false;
    }
    uint8_t a[crypto_generichash_BYTES], b[crypto_generichash_BYTES];
    crypto_generichash(a, sizeof a, (const uint8_t *)want, strlen(want), NULL, 0);
    crypto_generichash(b, sizeof b, (const uint8_t *)given, strlen(given), NULL, 0);
    bool ok = sodium_memcmp(a, b, sizeof a) == 0;
    sodium_memzero(want, sizeof want);
    sodium_memzero(a, sizeof a);
    sodium_memzero(b, sizeof b);
    return ok;
}
