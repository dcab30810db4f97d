/* RFC 5322 header handling for sending: what the sender's node does to a
 * message before it encrypts it, and the small message `postern send
 * --subject --body` builds. Pure: no I/O, clock or randomness (time and
 * random bytes are parameters), no allocation.
 *
 * The filter streams: it holds at most one header field at a time (folded
 * lines included), passes everything else through as soon as it is final,
 * and never buffers the body. It
 * - removes Bcc: and Resent-Bcc: fields (with their folded lines), so a Bcc
 *   recipient appears in nobody's copy;
 * - appends From:, Date: and Message-ID: at the end of the header section
 *   when the message has none (header order carries no meaning in RFC 5322,
 *   and appending is what lets the filter stream);
 * - writes every line ending as LF, before it looks at a line: CRLF, a
 *   bare CR and a bare LF each end one line (pst_eol, proto/pst_hdrfilter.h,
 *   the rule of the recipient's node and of RFC 5322 readers), so the Bcc
 *   it removes and the From it notices are the fields every reader sees,
 *   whatever the line endings and however the input is cut. The body gets
 *   the same treatment: the recipient's node stores LF anyway. Lines it
 *   adds end in LF too;
 * - keeps every other byte as it is.
 * A message whose first line is not a header field ("Name: value") has no
 * header section: the added fields and an empty line go before it. A line
 * that is neither a header field, a folded line nor empty ends the header
 * section the same way (an empty line is inserted before it). */
#ifndef PST_MAILMSG_H
#define PST_MAILMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_hdrfilter.h"

#define PST_MAILMSG_FIELD_MAX (64u * 1024u)    /* one header field, folded lines included */
#define PST_MAILMSG_HEADER_MAX (1024u * 1024u) /* the whole header section */
#define PST_MAILMSG_SUBJECT_MAX 200u           /* subject kept for display, bytes */
/* raw (encoded) bytes pst_mailmsg_display decodes: a 200-byte display
 * subject may take ~10x that in Q-encoded words */
#define PST_MAILMSG_DISPLAY_RAW_MAX 2048u
#define PST_MAILMSG_VALUE_MAX 255u   /* a value given for an added field */
#define PST_MAILMSG_DATE_BUFSIZE 64u /* "Tue, 14 Nov 2023 22:13:20 +0000" (31) + NUL, with room */
#define PST_MAILMSG_RAND_BYTES 16u   /* random bytes in a generated Message-ID */
#define PST_MAILMSG_MSGID_BUFSIZE (1u + 2u * PST_MAILMSG_RAND_BYTES + 1u + 253u + 1u + 1u)
#define PST_MAILMSG_ADDRS_MAX 64u /* To/Cc addresses in a simple message */
#define PST_MAILMSG_LINE_SOFT 78u /* fold generated lines before this column */
#define PST_MAILMSG_DOMAIN_DEFAULT "postern.invalid"
#define PST_MAILMSG_EOL_SLICE 4096u /* input normalised per step, bytes */

/* Header fields the filter saw (pst_mailmsg_filter.seen). */
enum {
    PST_MAILMSG_SEEN_FROM = 1u << 0,
    PST_MAILMSG_SEEN_DATE = 1u << 1,
    PST_MAILMSG_SEEN_MSGID = 1u << 2,
    PST_MAILMSG_SEEN_TO = 1u << 3,
    PST_MAILMSG_SEEN_CC = 1u << 4,
    PST_MAILMSG_SEEN_SUBJECT = 1u << 5,
};

/* Receives output bytes as they become final. A nonzero return stops the
 * filter and is returned by the feed/finish call (e.g. a size cap). */
typedef int (*pst_mailmsg_out_fn)(void *user, const uint8_t *p, size_t n);

/* Fixed size (about 70 KiB: allocate it, do not put it on a small stack). */
typedef struct {
    char from[PST_MAILMSG_VALUE_MAX + 1];
    char date[PST_MAILMSG_VALUE_MAX + 1];
    char message_id[PST_MAILMSG_VALUE_MAX + 1];
    int phase;                                 /* internal */
    int err;                                   /* sticky */
    pst_eol eol;                               /* internal: line endings, across feed calls */
    unsigned seen;                             /* PST_MAILMSG_SEEN_* */
    unsigned bcc_removed;                      /* Bcc:/Resent-Bcc: fields dropped */
    unsigned fields;                           /* header fields kept */
    size_t header_bytes;                       /* header section bytes read so far */
    size_t field_len;                          /* bytes in field[] */
    size_t line_start;                         /* start of the current line in field[] */
    char subject[PST_MAILMSG_SUBJECT_MAX + 1]; /* display form, "" when none */
    uint8_t field[PST_MAILMSG_FIELD_MAX];
    uint8_t slice[PST_MAILMSG_EOL_SLICE]; /* internal: normalised input */
} pst_mailmsg_filter;

/* Starts a filter. from, date and message_id are the values to add when the
 * message lacks the field: 1..PST_MAILMSG_VALUE_MAX bytes of printable
 * UTF-8 without control characters (else PST_E_INVAL). */
int pst_mailmsg_filter_init(pst_mailmsg_filter *f, const char *from, const char *date,
                            const char *message_id);
/* Feeds in[0..len) and writes through out. Errors are sticky:
 * PST_E_TOOBIG (a field over PST_MAILMSG_FIELD_MAX or a header section over
 * PST_MAILMSG_HEADER_MAX, both counted with LF line endings),
 * PST_E_MALFORMED (a NUL byte in the header section), PST_E_INVAL, or
 * out's nonzero return. */
int pst_mailmsg_filter_feed(pst_mailmsg_filter *f, const uint8_t *in, size_t len,
                            pst_mailmsg_out_fn out, void *user);
/* Ends the input: flushes a pending field (adding a line ending if the
 * input stopped without one) and, if the header section never ended, the
 * added fields and an empty line. Returns the sticky error or 0. */
int pst_mailmsg_filter_finish(pst_mailmsg_filter *f, pst_mailmsg_out_fn out, void *user);

/* RFC 5322 date of unix time t in UTC: "Tue, 14 Nov 2023 22:13:20 +0000".
 * PST_E_RANGE for years outside 1970..9999 (out is then ""). */
int pst_mailmsg_format_date(uint64_t t, char out[PST_MAILMSG_DATE_BUFSIZE]);

/* "<32 hex digits@domain>" from rand; domain NULL, empty or not a valid
 * host name gives PST_MAILMSG_DOMAIN_DEFAULT. */
void pst_mailmsg_make_message_id(const uint8_t rand[PST_MAILMSG_RAND_BYTES], const char *domain,
                                 char out[PST_MAILMSG_MSGID_BUFSIZE]);

/* Display form of a raw header value: unfolds, decodes RFC 2047 encoded
 * words in UTF-8 or US-ASCII (B and Q), replaces control characters and
 * invalid UTF-8 with '?' (tabs with a space), trims, and only then
 * truncates at a character boundary to fit out[cap]. Reads at most
 * PST_MAILMSG_DISPLAY_RAW_MAX bytes of raw. Always NUL-terminates (cap >= 1). */
void pst_mailmsg_display(const char *raw, size_t len, char *out, size_t cap);

/* ---- simple messages (postern send --subject --body) -------------------- */

typedef struct {
    const char *const *to; /* addr-specs (local@domain), 0..PST_MAILMSG_ADDRS_MAX */
    unsigned n_to;
    const char *const *cc;
    unsigned n_cc;
    const char *subject; /* UTF-8, NULL or "" for none; no control characters but tab */
    bool body_8bit;      /* the body has bytes >= 0x80: declare UTF-8 text */
    bool body_qp;        /* the body is quoted-printable (pst_qp.h): declare it */
} pst_mailmsg_simple;

/* Writes the header section of a simple message (LF line endings, ending
 * with the empty line) into out[cap]: To:, Cc: (folded before column 78),
 * Subject: (as is when printable ASCII, else RFC 2047 B-encoded words that
 * never split a character), and MIME headers for UTF-8 text when body_8bit
 * or body_qp (Content-Transfer-Encoding 8bit, or quoted-printable when
 * body_qp).
 * From, Date and Message-ID are left to the node. PST_E_INVAL for an
 * address with spaces, controls or any of ",;<>()\"" or without '@', a
 * subject with control characters or invalid UTF-8, too many addresses;
 * PST_E_NOSPACE when out is too small. *len = 0 on failure. */
int pst_mailmsg_simple_headers(const pst_mailmsg_simple *m, char *out, size_t cap, size_t *len);

#endif
