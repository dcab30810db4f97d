/* Content-Transfer-Encoding of a plain text body (RFC 2045): the choice
 * between 7bit, 8bit and quoted-printable, and a quoted-printable encoder.
 * `postern send --subject --body` uses it so that no line of the message
 * is longer than RFC 5322's 998 octets and no byte is changed by a relay's
 * or the recipient node's line-ending and NUL rules (docs/MAIL.md).
 * Pure: no I/O, no allocation, no globals. */
#ifndef PST_QP_H
#define PST_QP_H

#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"

#define PST_QP_LINE_MAX 76u      /* encoded line, counting a soft break's '=' */
#define PST_QP_RAW_LINE_MAX 998u /* RFC 5322 line limit, without the line break */

typedef enum {
    PST_CTE_7BIT = 0, /* ASCII lines of at most 998 octets: no MIME headers needed */
    PST_CTE_8BIT = 1, /* valid UTF-8 lines of at most 998 octets */
    PST_CTE_QP = 2,   /* anything else: quoted-printable */
} pst_cte;

/* The encoding body[0..n) needs. A line ends at LF or CRLF (the canonical
 * text line break, written as LF). Quoted-printable when a line is longer
 * than 998 octets, when a CR is not followed by LF or a NUL occurs (both
 * would be changed on the way: docs/MAIL.md), or when the bytes >= 0x80 are
 * not valid UTF-8. body may be NULL when n is 0. */
pst_cte pst_qp_choose(const uint8_t *body, size_t n);

/* An output size that is always enough for pst_qp_encode of n bytes, or 0
 * when n is too large to bound in a size_t. */
size_t pst_qp_encode_bound(size_t n);

/* Encodes in[0..n) as quoted-printable into out[0..cap): LF and CRLF are
 * hard line breaks (written as LF), every other byte outside '!'..'~' except
 * '=' is kept literally only when it is a space or tab not ending a line;
 * every other byte is "=XX" (upper-case hex), as are a '.' and the 'F' of
 * "From " starting a line (so SMTP dot-stuffing and mbox "From " quoting
 * never touch the text). Encoded lines are at most PST_QP_LINE_MAX
 * characters, split by soft breaks ("=" LF). Input that does not end in a
 * line break ends with a soft break, so decoding gives back exactly the
 * input with each CRLF as LF. On success *len is the output length (no NUL
 * is added). PST_E_NOSPACE when cap is too small (pst_qp_encode_bound(n)
 * always suffices), PST_E_INVAL for NULL pointers; on error out[0..cap) is
 * zeroed and *len is 0. */
int pst_qp_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *len);

#endif
