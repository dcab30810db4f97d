/* The recipient's filter over a delivered message's plaintext, on its way
 * into the Maildir (docs/MAIL.md, "What the node adds to a message").
 *
 * The author (and the sender's node, which is the author's) controls every
 * byte of the message; the recipient's node prepends its own trace fields
 * (X-Postern-Sender, X-Postern-Message-Id) above them. So that no parser of
 * the stored file can find a second trace field of the author's, the filter:
 *
 *  - normalises line endings to LF (pst_eol, below): CRLF, a bare CR and a
 *    bare LF each end one line, as RFC 5322 readers and Python's email
 *    package count them (a CR followed by LF is one line ending, even
 *    across chunks);
 *  - replaces every NUL byte with U+FFFD (EF BF BD) and counts them, before
 *    anything else looks at the byte (a reader that drops NULs could
 *    otherwise join "X-Post\0ern-" into a field name);
 *  - in the header section (up to the first empty line, after the steps
 *    above), renames a field whose name starts with "X-Postern-" (any case,
 *    anything after it: "X-Postern-Sender :" too) to "X-Original-X-Postern-";
 *    continuation lines (starting with SP or HTAB) belong to the field above
 *    and are left as they are;
 *  - drops the white space at the start of the message's first line: such a
 *    line would otherwise continue the node's own field above it.
 *
 * Nothing else changes. The filter is a byte-at-a-time state machine with a
 * fixed state (at most "X-Postern-" held back, 10 bytes), so the output is
 * the same whatever the chunking, and a header section that never ends
 * costs nothing. Pure: no I/O, no allocation, no globals.
 *
 *   pst_hdrfilter f;
 *   pst_hdrfilter_init(&f);
 *   while (n > 0) {
 *       size_t used, out_len;
 *       pst_hdrfilter_feed(&f, p, n, &used, out, sizeof out, &out_len);
 *       write(out, out_len); p += used; n -= used;
 *   }
 *   write(out, pst_hdrfilter_finish(&f, out, sizeof out));
 */
#ifndef PST_HDRFILTER_H
#define PST_HDRFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"

/* ---- line endings ----------------------------------------------------------
 * The one line-ending rule of Postern, used here and by the sender's filter
 * (node/mail/mailmsg.c), so that the sender removes exactly the fields every
 * reader sees: CRLF, a bare CR and a bare LF each become one LF, as RFC 5322
 * readers and Python's email package split lines; a CR that ends one chunk
 * and an LF that starts the next are one line ending. Nothing is held back,
 * so there is nothing to flush at the end. */
typedef struct {
    bool after_cr;         /* the last input byte was a CR (an LF next is its pair) */
    uint64_t cr_converted; /* CRLF pairs and bare CRs turned into LF */
} pst_eol;

/* Starts a new stream. */
void pst_eol_init(pst_eol *e);

/* One input byte: returns the byte to write ('\n' for a CR), or -1 when the
 * byte is dropped (the LF of a CRLF). */
int pst_eol_byte(pst_eol *e, uint8_t b);

/* Normalises in[0..n) into out, which needs room for n bytes (the output is
 * never longer than the input; out may be in itself). Returns the number of
 * bytes written. */
size_t pst_eol_normalise(pst_eol *e, const uint8_t *in, size_t n, uint8_t *out);

/* ---- header fields ---------------------------------------------------------
 * The one rule for "this line starts a header field", shared by the sender's
 * filter (node/mail/mailmsg.c) and `postern sendmail`, so that both see the
 * same header section: a name of printable ASCII but ':', optionally white
 * space (RFC 5322's obsolete syntax), then ':'. */

/* Length of the field name when p[0..n) (one line, LF line endings) starts
 * a header field, else 0. */
size_t pst_hdr_field_name_len(const uint8_t *p, size_t n);

/* ---- the recipient's filter ---------------------------------------------- */

/* The smallest output buffer feed and finish accept: one input byte makes
 * at most 21 output bytes ("X-Original-" + the 10 held bytes). */
#define PST_HDRFILTER_OUT_MIN 32u
#define PST_HDRFILTER_PREFIX "X-Postern-" /* renamed in the author's header */
#define PST_HDRFILTER_RENAMED "X-Original-"

/* Caller-owned; the fields are private except the counters. */
typedef struct {
    uint8_t held[16]; /* a possible "X-Postern-" at a line start */
    uint8_t n_held;
    bool in_body;    /* past the empty line: only line endings and NULs */
    bool mid_line;   /* in the header: not at the start of a line */
    bool first_line; /* nothing of the first line written yet */
    pst_eol eol;     /* line endings; eol.cr_converted counts them */
    /* counters, for the caller's marker and log */
    uint64_t nul_replaced; /* NUL bytes replaced by U+FFFD */
    uint64_t renamed;      /* author's X-Postern-* fields renamed */
} pst_hdrfilter;

/* Starts a new message. */
void pst_hdrfilter_init(pst_hdrfilter *f);

/* Filters in[0..n) into out[0..cap): takes input until all of it is taken
 * or out has less room than one input byte may need. *consumed (<= n) and
 * *written (<= cap) say how much; call again with the rest. Always takes
 * at least one byte when n > 0. PST_E_NOSPACE (nothing taken, *consumed and
 * *written 0) when cap < PST_HDRFILTER_OUT_MIN; PST_E_INVAL for NULL
 * pointers (in may be NULL when n is 0). */
int pst_hdrfilter_feed(pst_hdrfilter *f, const uint8_t *in, size_t n, size_t *consumed,
                       uint8_t *out, size_t cap, size_t *written);

/* How many of in[0..n) the filter would copy to its output unchanged, from
 * the start: in the body, after no CR, the bytes before the first CR or
 * NUL; 0 in the header or right after a CR. A caller may write these bytes
 * itself and feed only the rest (the filter's state does not change for
 * them): the recipient writes a body from its own buffer, with no copy. */
size_t pst_hdrfilter_clean_run(const pst_hdrfilter *f, const uint8_t *in, size_t n);

/* Ends the message: writes what is still held back (a message that ends
 * inside what could have been "X-Postern-", which is then not renamed) and
 * returns its length (0 when nothing is held or cap <
 * PST_HDRFILTER_OUT_MIN). f is done; init it for another message. */
size_t pst_hdrfilter_finish(pst_hdrfilter *f, uint8_t *out, size_t cap);

#endif
