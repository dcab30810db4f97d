/* ASCII armor for records a person keeps on paper or a USB stick (the
 * revocation certificate), in the spirit of OpenPGP armor:
 *
 *   -----BEGIN POSTERN <LABEL>-----
 *   Header: value            (zero or more, ignored by the decoder)
 *
 *   base64 of the record, 64 characters per line
 *   -----END POSTERN <LABEL>-----
 */
#ifndef PST_ARMOR_H
#define PST_ARMOR_H

#include <stddef.h>
#include <stdint.h>

#define PST_ARMOR_LABEL_MAX 48u
#define PST_ARMOR_TEXT_MAX 16384u /* an armored text we accept, bytes */

/* Writes the armor of data (label in capitals, e.g. "REVOCATION
 * CERTIFICATE"; comment may be NULL, one line, shown as "Comment: ...")
 * into out (NUL-terminated). PST_E_INVAL, PST_E_NOSPACE. */
int pst_armor_encode(const char *label, const char *comment, const uint8_t *data, size_t len,
                     char *out, size_t cap);

/* Strictly reads an armor with this label from text (text_len bytes, need
 * not be NUL-terminated): exactly one BEGIN and END line, base64 body, no
 * trailing junk except whitespace. PST_E_MALFORMED, PST_E_TOOBIG,
 * PST_E_NOSPACE; *len = 0 on failure. */
int pst_armor_decode(const char *label, const char *text, size_t text_len, uint8_t *out, size_t cap,
                     size_t *len);

#endif
