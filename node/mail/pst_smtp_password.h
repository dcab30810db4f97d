/* SMTP submission's password (mail/smtp_password.c, docs/SMTP.md): the
 * node checks it, `postern init` and `postern smtp password` make and show
 * it, so tools/ may include this header. */
#ifndef PST_SMTP_PASSWORD_H
#define PST_SMTP_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#define PST_FILE_SMTP_PASSWORD "smtp.password"
#define PST_SMTP_PASSWORD_LEN 24u /* base64 of 18 random bytes */
/* HOME/smtp.password (mode 0600, kept in clear so it can be shown again)
 * into out: created with a fresh random password when it does not exist or
 * when reset is set (the running node reads it at every AUTH, so a reset
 * takes effect at once). Errors: PST_E_PERM (the file is open to others:
 * err says how to fix it), PST_E_IO, PST_E_CHECKSUM (not a password file);
 * out is zeroed then. */
int pst_node_smtp_password(const char *home, bool reset, char out[PST_SMTP_PASSWORD_LEN + 1],
                           char *err, size_t errcap);
#endif
