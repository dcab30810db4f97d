/* postern sendmail: the interface of /usr/sbin/sendmail, for the programs
 * that hand mail to it (mutt, git send-email, cron, mail(1), scripts).
 *
 * The message comes on stdin and ends at end of file or, without -i, at a
 * line holding only '.'. Its line endings are written as LF on the way (as
 * the node would), so the header is read with the node's own rules: the
 * header section (at most PST_MAILMSG_HEADER_MAX bytes) is held until it
 * ends, then -t takes the recipients from it (proto/addrlist.c), a From:
 * is added when -f/-F ask for one and the message has none, and the rest
 * streams into the spool file. The message then takes exactly the path of
 * `postern send` (send_common.h): the exit is 0 only once the node has it
 * durably in its outbox. Exit codes are sendmail's (sysexits.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "ctrl_client.h"
#include "pst_addrlist.h"
#include "pst_hdrfilter.h"
#include "pst_identity.h"
#include "pst_mailmsg.h"
#include "pst_utf8.h"
#include "send_common.h"

/* sysexits.h, by name: the codes programs that run sendmail act on */
enum {
    SM_EX_OK = 0,
    SM_EX_USAGE = 64,
    SM_EX_DATAERR = 65,
    SM_EX_NOUSER = 67,
    SM_EX_UNAVAILABLE = 69,
    SM_EX_SOFTWARE = 70,
    SM_EX_IOERR = 74,
    SM_EX_TEMPFAIL = 75,
    SM_EX_NOPERM = 77,
    SM_EX_CONFIG = 78,
};

#define SM_RCPTS_MAX (PST_CTRL_ARGS_MAX - 2) /* the node's cap: the other args are file, pow */
#define SM_HDR_ADDRS_MAX 256u                /* addresses kept from To/Cc/Bcc */
#define SM_FULLNAME_MAX 200u                 /* -F, bytes */
#define SM_CHUNK 65536u
#define SM_TIMEOUT_NOTE "check 'postern outbox' before sending again"

static const char SENDMAIL_HELP[] =
    "usage: postern sendmail [-t] [-i] [-f ADDR] [-F NAME] [--home DIR] [--] [RCPT]...\n"
    "       sendmail ...   (the same, when the program is called as 'sendmail')\n"
    "\n"
    "Sends the message on stdin through your node, like sendmail(8). RCPT is an\n"
    "address (\"a@example.org\", \"Name <a@example.org>\", several with commas), a\n"
    "fingerprint or FINGERPRINT@postern.invalid.\n"
    "  -t        also send to the To:, Cc: and Bcc: of the message (Resent-To:,\n"
    "            Resent-Cc:, Resent-Bcc: instead when it has any); Bcc fields are\n"
    "            removed from the copy that is sent\n"
    "  -i, -oi   a line holding only '.' does not end the message\n"
    "  -f ADDR   the sender: one of your own addresses or FINGERPRINT@postern.invalid\n"
    "            (anything else is refused, exit 77); used for a From: the message\n"
    "            lacks (-r ADDR is the same)\n"
    "  -F NAME   your full name, for a From: the message lacks\n"
    "Accepted and ignored: -oem -oep -oeq -oew -oee -em -ep -eq -ew -ee -odb -odi\n"
    "-odq -odd -oQDIR -om -oo -bm -B TYPE -N DSN -R RET -V ENVID -h N -L TAG -U -v -m\n"
    "-n -G. Any other option is refused (exit 64).\n"
    "\n"
    "Exit codes (sysexits.h): 0 the message is durably in your outbox, 64 usage,\n"
    "65 the message is malformed or too large, 67 a recipient has no valid key,\n"
    "69 no node runs, 70 internal error, 74 cannot read stdin, 75 the node could\n"
    "not take it now (try again), 77 -f is not yours, 78 configuration.\n";

typedef enum { KIND_TO = 0, KIND_CC = 1, KIND_BCC = 2, KIND_NONE = 3 } rcpt_kind;
static const char *const KIND_KEYS[] = {"to", "cc", "bcc"};

typedef struct {
    char query[PST_ADDRESS_MAX + 1]; /* a fingerprint or a normalised address */
    rcpt_kind kind;
} rcpt;

typedef struct {
    bool t, i;
    const char *from, *fullname;
    rcpt rcpts[SM_RCPTS_MAX];
    unsigned n_rcpts;
    /* To/Cc/Bcc of the header, for -t and to tell what kind an argument is */
    rcpt hdr[SM_HDR_ADDRS_MAX];
    unsigned n_hdr;
    bool hdr_overflow;
    bool hdr_bad; /* an address there is no Postern address */
    char hdr_bad_addr[PST_ADDRLIST_ADDR_MAX + 1];
    bool seen_from;
} sm_state;

/* ---- options ------------------------------------------------------------- */

enum { OPT_HOME = 1000, OPT_LOGLEVEL };

static bool one_of(const char *s, const char *const *list) {
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/* pst_cli_own_option_fn */
static int own_option(void *user, int val, const char *arg) {
    sm_state *o = user;
    static const char *const o_ignored[] = {"em", "ep", "eq", "ew", "ee", "db",
                                            "di", "dq", "dd", "m",  "o",  NULL};
    static const char *const e_ignored[] = {"m", "p", "q", "w", "e", NULL};
    switch (val) {
    case 't':
        o->t = true;
        return 0;
    case 'i':
        o->i = true;
        return 0;
    case 'f':
    case 'r':
        o->from = arg;
        return 0;
    case 'F':
        o->fullname = arg;
        return 0;
    case 'o':
        if (strcmp(arg, "i") == 0) {
            o->i = true;
            return 0;
        }
        if (one_of(arg, o_ignored) || arg[0] == 'Q')
            return 0;
        pst_cli_error("sendmail: option -o%s is not supported (see --help)", arg);
        return SM_EX_USAGE;
    case 'e':
        if (one_of(arg, e_ignored))
            return 0;
        pst_cli_error("sendmail: option -e%s is not supported", arg);
        return SM_EX_USAGE;
    case 'b':
        if (strcmp(arg, "m") == 0)
            return 0;
        pst_cli_error("sendmail: mode -b%s is not supported: postern sendmail only sends the "
                      "message on stdin (-bm)%s",
                      arg,
                      strcmp(arg, "s") == 0 ? "; for SMTP use your node's submission port" : "");
        return SM_EX_USAGE;
    case 'B':
    case 'N':
    case 'R':
    case 'V':
    case 'h':
    case 'L':
    case 'U':
    case 'v':
    case 'm':
    case 'n':
    case 'G':
        return 0;
    default:
        return SM_EX_USAGE;
    }
}

/* ---- recipients ---------------------------------------------------------- */

/* The query for the node from an addr-spec: FP@postern.invalid names the
 * key itself; else the address in the form keys claim it. -1 when it can be
 * no Postern address. */
static int to_query(const char *addr, char out[PST_ADDRESS_MAX + 1]) {
    uint8_t pk[PST_SIGN_PK_BYTES];
    const char *at = strrchr(addr, '@');
    if (at != NULL && (size_t)(at - addr) == PST_FINGERPRINT_STRLEN &&
        strcasecmp(at + 1, PST_MAILMSG_DOMAIN_DEFAULT) == 0) {
        char fp[PST_FINGERPRINT_STRLEN + 1];
        memcpy(fp, addr, PST_FINGERPRINT_STRLEN);
        fp[PST_FINGERPRINT_STRLEN] = '\0';
        if (pst_fingerprint_parse(fp, pk) != PST_OK)
            return -1;
        pst_fingerprint_format(pk, out); /* lower case */
        return 0;
    }
    return pst_address_normalize(addr, out, PST_ADDRESS_MAX + 1) == PST_OK ? 0 : -1;
}

/* Adds q with kind; a query given twice keeps its most visible kind. */
static int add_rcpt(sm_state *o, const char *q, rcpt_kind kind) {
    for (unsigned k = 0; k < o->n_rcpts; k++) {
        if (strcmp(o->rcpts[k].query, q) == 0) {
            if (kind < o->rcpts[k].kind)
                o->rcpts[k].kind = kind;
            return 0;
        }
    }
    if (o->n_rcpts == SM_RCPTS_MAX) {
        pst_cli_error("sendmail: at most %u recipients per message", SM_RCPTS_MAX);
        return SM_EX_USAGE;
    }
    snprintf(o->rcpts[o->n_rcpts].query, sizeof o->rcpts[0].query, "%s", q);
    o->rcpts[o->n_rcpts++].kind = kind;
    return 0;
}

typedef struct {
    sm_state *o;
    int rc;
    unsigned seen; /* addresses in the argument */
} arg_walk;

/* pst_addrlist_fn for a command-line recipient */
static int on_arg_address(void *user, const char *addr, size_t len) {
    arg_walk *w = user;
    (void)len;
    w->seen++;
    char q[PST_ADDRESS_MAX + 1];
    if (to_query(addr, q) != 0) {
        pst_cli_error("sendmail: %s: no Postern key can claim this address (Postern addresses "
                      "are local@domain of [a-z0-9._+-])",
                      addr);
        return w->rc = SM_EX_NOUSER;
    }
    return w->rc = add_rcpt(w->o, q, KIND_NONE);
}

static int add_argument(sm_state *o, const char *arg) {
    uint8_t pk[PST_SIGN_PK_BYTES];
    if (pst_fingerprint_parse(arg, pk) == PST_OK) {
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(pk, fp);
        return add_rcpt(o, fp, KIND_NONE);
    }
    arg_walk w = {o, 0, 0};
    int rc = pst_addrlist_parse((const uint8_t *)arg, strlen(arg), on_arg_address, &w, NULL);
    if (w.rc != 0)
        return w.rc;
    if (rc != 0 || w.seen == 0) {
        pst_cli_error("sendmail: '%s' is not a recipient (an address, a fingerprint or "
                      "FINGERPRINT@postern.invalid)",
                      arg);
        return SM_EX_USAGE;
    }
    return 0;
}

typedef struct {
    sm_state *o;
    rcpt_kind kind;
} hdr_walk;

/* pst_addrlist_fn for a To/Cc/Bcc value */
static int on_hdr_address(void *user, const char *addr, size_t len) {
    hdr_walk *w = user;
    sm_state *o = w->o;
    (void)len;
    char q[PST_ADDRESS_MAX + 1];
    if (to_query(addr, q) != 0) {
        if (!o->hdr_bad)
            snprintf(o->hdr_bad_addr, sizeof o->hdr_bad_addr, "%s", addr);
        o->hdr_bad = true;
        return 0;
    }
    if (o->n_hdr == SM_HDR_ADDRS_MAX) {
        o->hdr_overflow = true;
        return 0;
    }
    snprintf(o->hdr[o->n_hdr].query, sizeof o->hdr[0].query, "%s", q);
    o->hdr[o->n_hdr++].kind = w->kind;
    return 0;
}

/* ---- the header section -------------------------------------------------- */

static bool name_is(const uint8_t *p, size_t n, const char *s) {
    return strlen(s) == n && strncasecmp((const char *)p, s, n) == 0;
}

/* The end of the field that starts at h[i]: its first line and the folded
 * lines after it. */
static size_t field_end(const uint8_t *h, size_t n, size_t i) {
    do {
        const uint8_t *nl = memchr(h + i, '\n', n - i);
        i = nl ? (size_t)(nl - h) + 1 : n;
    } while (i < n && (h[i] == ' ' || h[i] == '\t'));
    return i;
}

/* Reads the recipient fields of h[0..n) (LF line endings, complete
 * fields). The Resent-* set replaces the plain one when the message has
 * one, as sendmail does with RFC 5322's resent blocks. */
static int read_header(sm_state *o, const uint8_t *h, size_t n) {
    static const char *const plain[] = {"to", "cc", "bcc"};
    static const char *const resent[] = {"resent-to", "resent-cc", "resent-bcc"};
    const char *const *names = plain;
    for (size_t i = 0, end; i < n; i = end) {
        end = field_end(h, n, i);
        size_t name = pst_hdr_field_name_len(h + i, end - i);
        for (int k = 0; k < 3; k++)
            if (name_is(h + i, name, resent[k]))
                names = resent;
        o->seen_from = o->seen_from || name_is(h + i, name, "from");
    }
    for (size_t i = 0, end; i < n; i = end) {
        end = field_end(h, n, i);
        size_t name = pst_hdr_field_name_len(h + i, end - i);
        for (int k = 0; k < 3; k++) {
            if (name == 0 || !name_is(h + i, name, names[k]))
                continue;
            const uint8_t *colon = memchr(h + i, ':', end - i);
            size_t off = (size_t)(colon - h) + 1, at = 0;
            hdr_walk w = {o, (rcpt_kind)k};
            int rc = pst_addrlist_parse(h + off, end - off, on_hdr_address, &w, &at);
            if (rc != 0 && o->t) {
                pst_cli_error("sendmail: cannot read the %.*s: field (%s at byte %zu of its "
                              "value)",
                              (int)name, (const char *)(h + i),
                              rc == PST_E_TOOBIG ? "too long" : "malformed", at);
                return SM_EX_DATAERR;
            }
        }
    }
    if (!o->t)
        return 0;
    if (o->hdr_bad) {
        pst_cli_error("sendmail: %s: no Postern key can claim this address", o->hdr_bad_addr);
        return SM_EX_NOUSER;
    }
    if (o->hdr_overflow) {
        pst_cli_error("sendmail: at most %u recipients per message", SM_RCPTS_MAX);
        return SM_EX_DATAERR;
    }
    for (unsigned k = 0; k < o->n_hdr; k++) {
        int rc = add_rcpt(o, o->hdr[k].query, o->hdr[k].kind);
        if (rc != 0)
            return rc == SM_EX_USAGE ? SM_EX_DATAERR : rc;
    }
    return 0;
}

/* ---- reading the message ------------------------------------------------- */

typedef struct {
    sm_state *o;
    int fd;
    uint64_t written, max;
    const char *from_line; /* "From: ...\n" to add when the header has none */
    /* the header section until it ends */
    uint8_t *hdr;
    size_t hdr_len, line_start;
    bool in_header, first_line_done, header_nul;
    /* the lone-dot rule: bytes held at a line start ("." and nothing yet) */
    bool at_line_start, held_dot, ended;
    uint8_t out[SM_CHUNK];
    size_t out_len;
} reader;

static int flush_out(reader *r) {
    const uint8_t *p = r->out;
    size_t n = r->out_len;
    r->out_len = 0;
    if (n > r->max - r->written) {
        pst_cli_error("sendmail: the message is larger than this node's max_message_size (%llu "
                      "bytes)",
                      (unsigned long long)r->max);
        return SM_EX_DATAERR;
    }
    r->written += n;
    while (n > 0) {
        ssize_t w = write(r->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            pst_cli_error("sendmail: cannot write the spool file: %s", strerror(errno));
            return SM_EX_TEMPFAIL;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int put(reader *r, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n > 0) {
        size_t take = sizeof r->out - r->out_len < n ? sizeof r->out - r->out_len : n;
        memcpy(r->out + r->out_len, b, take);
        r->out_len += take;
        b += take;
        n -= take;
        if (r->out_len == sizeof r->out) {
            int rc = flush_out(r);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* The header section is hdr[0..end); what follows it (the rest of hdr) is
 * body already. */
static int end_header(reader *r, size_t end) {
    r->in_header = false;
    if (r->header_nul) {
        pst_cli_error("sendmail: the header of the message contains a NUL byte");
        return SM_EX_DATAERR;
    }
    int rc = read_header(r->o, r->hdr, end);
    if (rc != 0)
        return rc;
    if (!r->o->seen_from && r->from_line != NULL &&
        (rc = put(r, r->from_line, strlen(r->from_line))) != 0)
        return rc;
    return put(r, r->hdr, r->hdr_len);
}

/* A complete line ends at hdr[hdr_len - 1]. */
static int header_line(reader *r) {
    const uint8_t *line = r->hdr + r->line_start;
    size_t content = r->hdr_len - r->line_start - 1;
    if (!r->first_line_done) {
        r->first_line_done = true;
        /* an mbox "From " line is the envelope, not the message: sendmail
         * and Postfix drop it too */
        if (content >= 5 && memcmp(line, "From ", 5) == 0) {
            r->hdr_len = r->line_start;
            return 0;
        }
    }
    if (content == 0)
        return end_header(r, r->hdr_len);
    bool folded = r->line_start > 0 && (line[0] == ' ' || line[0] == '\t');
    if (folded || pst_hdr_field_name_len(line, content) > 0) {
        r->line_start = r->hdr_len;
        return 0;
    }
    return end_header(r, r->line_start); /* not a field: the body starts here */
}

/* One byte of the message, line endings already LF. */
static int message_byte(reader *r, uint8_t c) {
    if (!r->in_header)
        return put(r, &c, 1);
    if (r->hdr_len >= PST_MAILMSG_HEADER_MAX) {
        pst_cli_error("sendmail: the header section is larger than %u bytes",
                      PST_MAILMSG_HEADER_MAX);
        return SM_EX_DATAERR;
    }
    r->header_nul = r->header_nul || c == 0;
    r->hdr[r->hdr_len++] = c;
    return c == '\n' ? header_line(r) : 0;
}

/* One byte of stdin after the line-ending rule: the lone-dot rule first. */
static int input_byte(reader *r, uint8_t c) {
    if (r->o->i)
        return message_byte(r, c);
    if (r->held_dot) {
        r->held_dot = false;
        if (c == '\n') {
            r->ended = true;
            return 0;
        }
        int rc = message_byte(r, '.');
        if (rc != 0)
            return rc;
    } else if (r->at_line_start && c == '.') {
        r->held_dot = true;
        r->at_line_start = false;
        return 0;
    }
    r->at_line_start = c == '\n';
    return message_byte(r, c);
}

static int read_message(reader *r) {
    static uint8_t buf[SM_CHUNK];
    pst_eol eol;
    pst_eol_init(&eol);
    size_t got;
    int rc = 0;
    while (rc == 0 && !r->ended && (got = fread(buf, 1, sizeof buf, stdin)) > 0) {
        size_t n = pst_eol_normalise(&eol, buf, got, buf);
        for (size_t k = 0; k < n && rc == 0 && !r->ended; k++)
            rc = input_byte(r, buf[k]);
    }
    if (rc == 0 && !r->ended && ferror(stdin)) {
        pst_cli_error("sendmail: cannot read stdin: %s", strerror(errno));
        return SM_EX_IOERR;
    }
    if (rc == 0 && r->held_dot) /* "." at the very end, without a line break */
        rc = message_byte(r, '.');
    if (rc == 0 && r->in_header) {
        /* the input ended inside the header: a last line without its break
         * is a field (or the start of the body) as for the node */
        if (r->hdr_len > r->line_start) {
            const uint8_t *line = r->hdr + r->line_start;
            size_t content = r->hdr_len - r->line_start;
            bool folded = r->line_start > 0 && (line[0] == ' ' || line[0] == '\t');
            bool field = folded || pst_hdr_field_name_len(line, content) > 0;
            rc = end_header(r, field ? r->hdr_len : r->line_start);
        } else {
            rc = end_header(r, r->hdr_len);
        }
    }
    return rc == 0 ? flush_out(r) : rc;
}

/* ---- who we are ---------------------------------------------------------- */

/* "From: ..." for -f/-F: the name as a quoted string (UTF-8 as RFC 6532
 * allows), the address -f gave or the node's own. */
static int make_from_line(const char *name, const char *addr, char *out, size_t cap) {
    size_t o = 0, n = name ? strlen(name) : 0;
    if (name != NULL) {
        if (n > SM_FULLNAME_MAX || !pst_utf8_valid((const uint8_t *)name, n)) {
            pst_cli_error("sendmail: -F must be at most %u bytes of UTF-8", SM_FULLNAME_MAX);
            return SM_EX_USAGE;
        }
        for (size_t k = 0; k < n; k++)
            if ((uint8_t)name[k] < 0x20 || name[k] == 0x7f) {
                pst_cli_error("sendmail: -F must not contain control characters");
                return SM_EX_USAGE;
            }
    }
    o += (size_t)snprintf(out + o, cap - o, "From: ");
    if (name != NULL && n > 0) {
        out[o++] = '"';
        for (size_t k = 0; k < n; k++) {
            if (name[k] == '"' || name[k] == '\\')
                out[o++] = '\\';
            out[o++] = name[k];
        }
        o += (size_t)snprintf(out + o, cap - o, "\" <%s>\n", addr);
    } else {
        snprintf(out + o, cap - o, "%s\n", addr);
    }
    return 0;
}

typedef struct {
    unsigned seen;
    char addr[PST_ADDRLIST_ADDR_MAX + 1];
} one_addr;

/* pst_addrlist_fn: keeps the first address */
static int on_one_address(void *user, const char *addr, size_t len) {
    one_addr *one = user;
    if (one->seen++ == 0)
        memcpy(one->addr, addr, len + 1);
    return 0;
}

/* Asks the node who we are; checks that -f is us; fills *default_from. */
static int check_sender(pst_cli_common *common, const char *from, char *default_from, size_t cap,
                        char *from_norm, size_t fcap) {
    static pst_ctrl_request req;
    (void)pst_ctrl_request_init(&req, 1, "id");
    pst_ctrl_response resp;
    bool oneshot;
    int rc = pst_cli_call(common, &req, &resp, &oneshot);
    if (rc != 0)
        return rc;
    if (resp.status != PST_CTRL_STATUS_OK) {
        pst_cli_error("sendmail: %s", resp.error);
        pst_ctrl_response_free(&resp);
        return SM_EX_TEMPFAIL;
    }
    size_t n;
    const char *fp = pst_value_as_str(pst_value_get(resp.body, "fingerprint"), &n);
    const pst_value *addrs = pst_value_get(resp.body, "addresses");
    const pst_value *first = pst_value_first(addrs);
    const char *a0 = first ? pst_value_as_str(first, &n) : NULL;
    if (a0 != NULL)
        snprintf(default_from, cap, "%s", a0);
    else
        snprintf(default_from, cap, "%s@%s", fp ? fp : "", PST_MAILMSG_DOMAIN_DEFAULT);
    rc = 0;
    if (from != NULL) {
        /* -f "a@b" or "<a@b>": exactly one address */
        one_addr one = {0, ""};
        bool ours = false;
        char q[PST_ADDRESS_MAX + 1];
        if (pst_addrlist_parse((const uint8_t *)from, strlen(from), on_one_address, &one, NULL) ==
                0 &&
            one.seen == 1 && to_query(one.addr, q) == 0) {
            uint8_t pk[PST_SIGN_PK_BYTES];
            bool is_fp = pst_fingerprint_parse(q, pk) == PST_OK;
            /* to_query made FP@postern.invalid the fingerprint */
            ours = is_fp && fp != NULL && strcasecmp(q, fp) == 0;
            for (const pst_value *e = pst_value_first(addrs); e && !ours && !is_fp;
                 e = pst_value_next(e)) {
                const char *s = pst_value_as_str(e, &n);
                ours = s != NULL && strcmp(s, q) == 0;
            }
            if (ours)
                snprintf(from_norm, fcap, is_fp ? "%s@" PST_MAILMSG_DOMAIN_DEFAULT : "%s", q);
        }
        if (!ours) {
            pst_cli_error("sendmail: -f %s is not one of your addresses (see 'postern id'): your "
                          "node sends only as you",
                          from);
            rc = SM_EX_NOPERM;
        }
    }
    pst_ctrl_response_free(&resp);
    return rc;
}

/* ---- the answer ---------------------------------------------------------- */

/* The node refused the send: 67 when a recipient has no valid key, 75 when
 * a lookup could not finish or the node cannot take mail now. */
static int exit_of_failure(const pst_ctrl_response *resp) {
    if (resp->status == PST_CTRL_STATUS_USAGE)
        return SM_EX_SOFTWARE; /* this program built a request the node refused */
    static const char *const nouser[] = {"not_found", "revoked",      "expired",
                                         "ambiguous", "no_valid_key", NULL};
    const pst_value *rs = pst_value_get(resp->body, "recipients");
    for (const pst_value *r = pst_value_first(rs); r; r = pst_value_next(r)) {
        size_t n;
        const char *status = pst_value_as_str(pst_value_get(r, "status"), &n);
        if (status != NULL && one_of(status, nouser))
            return SM_EX_NOUSER;
    }
    return SM_EX_TEMPFAIL;
}

/* An exit code of the shared CLI code, in sendmail's terms. */
static int exit_of_cli(int rc) {
    switch (rc) {
    case PST_EXIT_OK:
        return SM_EX_OK;
    case PST_EXIT_USAGE:
        return SM_EX_CONFIG; /* the configuration or --home could not be loaded */
    case PST_EXIT_UNAVAILABLE:
    case PST_EXIT_CONFIG:
    case SM_EX_NOPERM:
    case SM_EX_TEMPFAIL:
        return rc;
    default:
        return SM_EX_TEMPFAIL;
    }
}

static int run(sm_state *o, pst_cli_common *common, int nargs, char **args) {
    for (int k = 0; k < nargs; k++) {
        int rc = add_argument(o, args[k]);
        if (rc != 0)
            return rc;
    }
    if (!o->t && o->n_rcpts == 0) {
        pst_cli_error("sendmail: no recipients: give them as arguments, or -t");
        return SM_EX_USAGE;
    }
    pst_node_config cfg;
    if (pst_cli_load_config(common, &cfg) != 0)
        return SM_EX_CONFIG;
    common->no_oneshot = true;
    common->no_node_exit = SM_EX_UNAVAILABLE;
    static char from_line[SM_FULLNAME_MAX * 2 + PST_ADDRESS_MAX + 32];
    bool want_from = o->from != NULL || o->fullname != NULL;
    if (want_from) {
        char def[PST_ADDRESS_MAX + 1], from[PST_ADDRESS_MAX + 1] = "";
        int rc = exit_of_cli(check_sender(common, o->from, def, sizeof def, from, sizeof from));
        if (rc == 0)
            rc = make_from_line(o->fullname, o->from ? from : def, from_line, sizeof from_line);
        if (rc != 0)
            return rc;
    }
    char path[PST_PATH_MAX];
    int fd;
    bool no_home;
    if (pst_cli_spool_create(cfg.home, path, &fd, &no_home) != 0)
        return no_home ? SM_EX_CONFIG : SM_EX_TEMPFAIL;
    reader *r = calloc(1, sizeof *r);
    uint8_t *hdr = malloc(PST_MAILMSG_HEADER_MAX);
    int rc = SM_EX_TEMPFAIL;
    if (r != NULL && hdr != NULL) {
        *r = (reader){.o = o,
                      .fd = fd,
                      .max = cfg.max_message_bytes,
                      .hdr = hdr,
                      .in_header = true,
                      .at_line_start = true,
                      .from_line = want_from ? from_line : NULL};
        rc = read_message(r);
    } else {
        pst_cli_error("sendmail: out of memory");
    }
    free(hdr);
    free(r);
    if (close(fd) != 0 && rc == 0) {
        pst_cli_error("sendmail: cannot write %s: %s", path, strerror(errno));
        rc = SM_EX_TEMPFAIL;
    }
    if (rc == 0 && o->n_rcpts == 0) {
        pst_cli_error("sendmail: no recipients in the To:, Cc: or Bcc: of the message");
        rc = SM_EX_USAGE;
    }
    static pst_ctrl_request req;
    (void)pst_ctrl_request_init(&req, 1, "send");
    if (rc == 0 && pst_cli_add_arg(&req, "file", path, "spool path too long: %s", path) != 0)
        rc = SM_EX_SOFTWARE;
    for (unsigned k = 0; k < o->n_rcpts && rc == 0; k++) {
        rcpt *p = &o->rcpts[k];
        if (p->kind == KIND_NONE) /* an argument: its kind is where the header names it */
            for (unsigned h = 0; h < o->n_hdr && p->kind == KIND_NONE; h++)
                if (strcmp(o->hdr[h].query, p->query) == 0)
                    p->kind = o->hdr[h].kind;
        /* named in no header: a blind recipient by definition */
        rcpt_kind kind = p->kind == KIND_NONE ? KIND_BCC : p->kind;
        if (pst_cli_add_arg(&req, KIND_KEYS[kind], p->query, "recipient too long") != 0)
            rc = SM_EX_SOFTWARE;
    }
    if (rc != 0) {
        if (unlink(path) != 0 && errno != ENOENT)
            pst_cli_error("sendmail: cannot remove %s: %s", path, strerror(errno));
        return rc;
    }
    pst_ctrl_response resp;
    if ((rc = pst_cli_send_spooled(common, &req, path, &resp)) != 0)
        return exit_of_cli(rc);
    rc = SM_EX_OK;
    if (resp.status != PST_CTRL_STATUS_OK) {
        pst_cli_error("%s", resp.error);
        if (resp.body)
            pst_cli_print_send_problems(resp.body);
        rc = exit_of_failure(&resp);
    }
    pst_ctrl_response_free(&resp);
    return rc;
}

int pst_cmd_sendmail(int argc, char **argv) {
    static const struct option opts[] = {{"home", required_argument, 0, OPT_HOME},
                                         {"log-level", required_argument, 0, OPT_LOGLEVEL},
                                         {"help", no_argument, 0, 'H'},
                                         {0, 0, 0, 0}};
    /* the options programs pass to sendmail; any other is refused */
    static const char SHORT[] = "tif:r:F:o:e:b:B:N:R:V:h:L:UvmnG";
    pst_cli_common common;
    sm_state *o = calloc(1, sizeof *o);
    if (o == NULL) {
        pst_cli_error("sendmail: out of memory");
        return SM_EX_TEMPFAIL;
    }
    int rc =
        pst_cli_parse_options_short(argc, argv, SHORT, opts, SENDMAIL_HELP, &common, own_option, o);
    if (rc == 0)
        rc = run(o, &common, argc - optind, argv + optind);
    else if (rc == PST_CLI_HELP_SHOWN)
        rc = SM_EX_OK;
    free(o);
    return rc;
}
