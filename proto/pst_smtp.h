/* SMTP submission (RFC 5321, RFC 6409), the wire side: the input machine
 * that cuts a client's bytes into command lines and DATA, the command
 * parser, and the small decoders AUTH needs. Pure: no I/O, clock, globals or
 * allocation; every buffer is the caller's and fixed in size. The listener
 * and its sessions live in node/mail/ (docs/SMTP.md).
 *
 * Line endings are strict, which is what stops SMTP smuggling:
 * - only CRLF ends a command line. A bare LF ends it too, but as an error
 *   (PST_SMTP_EV_BARE_LF: the session refuses it and hangs up, as Postfix's
 *   smtpd_forbid_bare_newline does); a bare CR inside a line marks the
 *   line bad (PST_SMTP_EV_BAD_LINE).
 * - only CRLF "." CRLF ends DATA. <LF>.<LF>, <CR>.<CR>, <CRLF>.<LF> and the
 *   like are message bytes; a message containing any bare CR or LF is
 *   marked (PST_SMTP_DATA_BARE_EOL) and the session refuses it whole.
 * - DATA is dot-unstuffed (a leading "." of a line is dropped) and counted;
 *   past the size cap the bytes are no longer handed out, but the machine
 *   keeps reading until the end so the reply comes at the right place. */
#ifndef PST_SMTP_H
#define PST_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"

/* A command line, CRLF excluded. RFC 5321 allows 512 octets; AUTH PLAIN's
 * initial response (RFC 4954) and the ESMTP parameters need more. */
#define PST_SMTP_LINE_MAX 2048u
#define PST_SMTP_PATH_MAX 256u   /* RFC 5321 4.5.3.1.3, brackets excluded */
#define PST_SMTP_DOMAIN_MAX 255u /* EHLO argument */
#define PST_SMTP_AUTH_FIELD_MAX 255u
#define PST_SMTP_MECH_MAX 20u

typedef enum {
    PST_SMTP_EV_NONE = 0,  /* consumed everything given; want more */
    PST_SMTP_EV_LINE,      /* a command line (ev->line, ev->len; no CRLF) */
    PST_SMTP_EV_BAD_LINE,  /* a line ended by CRLF that held a bare CR */
    PST_SMTP_EV_LONG_LINE, /* a line over PST_SMTP_LINE_MAX (ended by CRLF) */
    PST_SMTP_EV_BARE_LF,   /* a command line ended by a bare LF */
    PST_SMTP_EV_DATA,      /* message bytes (ev->line, ev->len), unstuffed */
    /* CRLF.CRLF seen: the message's last bytes (ev->line, ev->len, maybe
     * none) and ev->data_flags, what was wrong with it */
    PST_SMTP_EV_DATA_END,
} pst_smtp_event_kind;

/* What pst_smtp_in found in a message (PST_SMTP_EV_DATA_END). */
enum {
    PST_SMTP_DATA_TOO_BIG = 1u << 0,     /* more than the cap: bytes were dropped */
    PST_SMTP_DATA_BARE_EOL = 1u << 1,    /* a bare CR or LF somewhere */
    PST_SMTP_DATA_8BIT_HEADER = 1u << 2, /* a byte >= 0x80 in the header section */
    PST_SMTP_DATA_8BIT_BODY = 1u << 3,   /* a byte >= 0x80 in the body */
    PST_SMTP_DATA_NUL = 1u << 4,         /* a NUL byte */
};

typedef struct {
    pst_smtp_event_kind kind;
    const uint8_t *line; /* LINE/DATA: points into the machine or into the input */
    size_t len;
    unsigned data_flags; /* DATA_END */
    uint64_t data_bytes; /* DATA_END: unstuffed message size (counted past the cap too) */
    size_t header_bytes; /* DATA_END: bytes of the header section incl. its empty line */
} pst_smtp_event;

/* Fixed size (about 2 KiB). Starts in command mode. */
typedef struct {
    bool data;      /* DATA mode */
    int state;      /* internal */
    bool bad;       /* current command line holds a bare CR */
    bool overflow;  /* current command line is too long */
    bool ended;     /* line[] still holds DATA's last bytes */
    size_t len;     /* bytes in line[] */
    uint64_t cap;   /* DATA: largest message handed out */
    uint64_t count; /* DATA: unstuffed bytes seen */
    unsigned flags; /* DATA: PST_SMTP_DATA_* */
    bool in_header; /* DATA: still in the header section */
    size_t header_bytes;
    uint8_t line[PST_SMTP_LINE_MAX];
} pst_smtp_in;

void pst_smtp_in_init(pst_smtp_in *in);
/* Switches to DATA mode (after the 354 reply): message bytes up to cap are
 * handed out, the rest counted. */
void pst_smtp_in_data(pst_smtp_in *in, uint64_t cap);
/* Consumes bytes from p[0..n) until one event happens or p is used up;
 * *used says how many were consumed (the rest must be fed again, e.g. after
 * the reply to the event: PIPELINING). An event's bytes are valid until the
 * next call. After PST_SMTP_EV_DATA_END the machine is back in command mode.
 * Never fails: every input is an event or more input. */
void pst_smtp_in_feed(pst_smtp_in *in, const uint8_t *p, size_t n, size_t *used,
                      pst_smtp_event *ev);

/* ---- commands ------------------------------------------------------------ */

typedef enum {
    PST_SMTP_CMD_UNKNOWN = 0,
    PST_SMTP_CMD_EHLO,
    PST_SMTP_CMD_HELO,
    PST_SMTP_CMD_MAIL,
    PST_SMTP_CMD_RCPT,
    PST_SMTP_CMD_DATA,
    PST_SMTP_CMD_RSET,
    PST_SMTP_CMD_NOOP,
    PST_SMTP_CMD_QUIT,
    PST_SMTP_CMD_VRFY,
    PST_SMTP_CMD_HELP,
    PST_SMTP_CMD_AUTH,
    PST_SMTP_CMD_STARTTLS,
    PST_SMTP_CMD_BDAT,
    PST_SMTP_CMD_LHLO, /* LMTP (RFC 2033): EHLO's twin */
} pst_smtp_verb;

typedef enum {
    PST_SMTP_BODY_NONE = 0, /* not given */
    PST_SMTP_BODY_7BIT,
    PST_SMTP_BODY_8BITMIME,
} pst_smtp_body;

typedef struct {
    pst_smtp_verb verb;
    /* EHLO/HELO/LHLO: the domain; MAIL/RCPT: the path's mailbox ("" for <>);
     * AUTH: the mechanism (upper-cased) */
    char arg[PST_SMTP_PATH_MAX + 1];
    /* AUTH: the initial response as sent (base64 or "="), "" when none */
    char extra[PST_SMTP_LINE_MAX];
    bool has_extra;
    /* MAIL parameters */
    bool has_size;
    uint64_t size;
    pst_smtp_body body;
    bool smtputf8;
} pst_smtp_cmd;

/* Reasons pst_smtp_cmd_parse gives (its return value). */
#define PST_SMTP_PARSE_OK 0
#define PST_SMTP_PARSE_SYNTAX (-1)   /* 501: bad arguments */
#define PST_SMTP_PARSE_PARAM (-2)    /* 555: an unknown or bad MAIL/RCPT parameter */
#define PST_SMTP_PARSE_UNKNOWN (-3)  /* 500: no such command */
#define PST_SMTP_PARSE_PATH (-4)     /* 553: a path that is not local@domain */
#define PST_SMTP_PARSE_NONASCII (-5) /* 553: a UTF-8 path without SMTPUTF8 */

/* Parses one command line (CRLF excluded). The verb is matched without
 * regard to case. MAIL takes FROM:<path> (spaces allowed after the colon,
 * as most servers allow) and SIZE=, BODY=7BIT|8BITMIME, SMTPUTF8, AUTH=;
 * RCPT takes TO:<path> and no parameter; a path may carry an RFC 5321
 * source route (ignored) and must be local@domain of printable ASCII
 * (UTF-8 too when the MAIL command said SMTPUTF8: utf8_ok) unless it is
 * MAIL's null path <>. Returns PST_SMTP_PARSE_*; cmd->verb is set whenever
 * the verb was recognised. */
int pst_smtp_cmd_parse(const uint8_t *line, size_t len, bool utf8_ok, pst_smtp_cmd *cmd);

/* AUTH PLAIN (RFC 4616): decodes the base64 message
 * [authzid] NUL authcid NUL passwd into user and pass (NUL-terminated,
 * each at most PST_SMTP_AUTH_FIELD_MAX bytes). An authzid other than empty
 * or the authcid is refused (PST_E_INVAL), as are NUL-less, oversized or
 * badly encoded messages. Outputs are zeroed on failure. */
__attribute__((warn_unused_result)) int
pst_smtp_auth_plain_decode(const char *b64, char user[PST_SMTP_AUTH_FIELD_MAX + 1],
                           char pass[PST_SMTP_AUTH_FIELD_MAX + 1]);
/* AUTH LOGIN: one base64 line into out (NUL-terminated, at most
 * PST_SMTP_AUTH_FIELD_MAX bytes, no NUL inside). PST_E_INVAL otherwise. */
__attribute__((warn_unused_result)) int
pst_smtp_auth_b64_decode(const char *b64, char out[PST_SMTP_AUTH_FIELD_MAX + 1]);

/* Whether addr (local@domain) appears as an address in the To: or Cc:
 * fields of a header section hdr[0..len) (as received: CRLF or LF line
 * ends, folded lines joined; compared without regard to case, only where
 * the characters around it cannot be part of an address). Returns 1 for
 * To, 2 for Cc, 0 when neither names it. */
int pst_smtp_header_names(const uint8_t *hdr, size_t len, const char *addr);

/* The next field named name (matched without regard to case; name without
 * the colon) of a header section hdr[0..len) (as received: CRLF or LF line
 * ends; it ends at the first empty line or at len), from offset *pos (0 to
 * start). Its value is unfolded (line ends removed) with leading and
 * trailing white space trimmed, into out (NUL-terminated, at most cap - 1
 * bytes). PST_OK and *pos past the field; a value that does not fit, or
 * holds a NUL, is skipped (the next one is looked at); PST_E_NOTFOUND when
 * no further field has the name (out is then ""). PST_E_INVAL for cap 0. */
int pst_smtp_header_next(const uint8_t *hdr, size_t len, const char *name, size_t *pos, char *out,
                         size_t cap);

#endif
