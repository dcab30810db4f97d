/* SMTP submission's wire side (proto/pst_smtp.h): command lines (only CRLF
 * ends one; bare CR and LF refused; overlong lines), DATA (only CRLF.CRLF
 * ends it, whatever the smuggling sequence; dot-unstuffing; the size cap;
 * bare CR/LF, NUL and non-ASCII header flags), the same results however
 * the input is cut, the command parser and AUTH's decoders. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_smtp.h"

typedef struct {
    char lines[16][PST_SMTP_LINE_MAX + 1];
    pst_smtp_event_kind kinds[16];
    unsigned n;
    uint8_t data[8192];
    size_t data_len;
    bool ended;
    pst_smtp_event end;
    size_t rest; /* input left after the end */
} run;

/* Feeds s in pieces of step bytes (0: whole); enters DATA (cap) after the
 * first line that reads "DATA"; stops at the end of DATA. */
static void feed(run *r, const char *s, size_t n, size_t step, uint64_t cap) {
    pst_smtp_in *in = malloc(sizeof *in);
    cr_assert(in != NULL);
    pst_smtp_in_init(in);
    memset(r, 0, sizeof *r);
    size_t off = 0;
    while (off < n && !r->ended) {
        size_t piece = step == 0 || n - off < step ? n - off : step;
        size_t used = 0;
        pst_smtp_event ev;
        pst_smtp_in_feed(in, (const uint8_t *)s + off, piece, &used, &ev);
        cr_assert_leq(used, piece);
        off += used;
        switch (ev.kind) {
        case PST_SMTP_EV_NONE:
            cr_assert_eq(used, piece, "EV_NONE must consume everything");
            break;
        case PST_SMTP_EV_DATA:
        case PST_SMTP_EV_DATA_END:
            cr_assert_leq(r->data_len + ev.len, sizeof r->data);
            memcpy(r->data + r->data_len, ev.line, ev.len);
            r->data_len += ev.len;
            if (ev.kind == PST_SMTP_EV_DATA_END) {
                r->ended = true;
                r->end = ev;
            }
            break;
        default:
            cr_assert_lt(r->n, 16u);
            r->kinds[r->n] = ev.kind;
            memcpy(r->lines[r->n], ev.line, ev.len);
            r->lines[r->n][ev.len] = '\0';
            if (ev.kind == PST_SMTP_EV_LINE && strcmp(r->lines[r->n], "DATA") == 0)
                pst_smtp_in_data(in, cap);
            r->n++;
        }
    }
    r->rest = n - off;
    free(in);
}

#define FEED(r, lit, step, cap) feed(r, lit, sizeof(lit) - 1, step, cap)

static const size_t steps[] = {0, 1, 2, 3, 7};

Test(smtp_in, command_lines) {
    static run r;
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        FEED(&r, "EHLO x\r\nNOOP\rRSET\r\nQUIT\n", steps[k], 100);
        cr_assert_eq(r.n, 3u);
        cr_assert_eq(r.kinds[0], PST_SMTP_EV_LINE);
        cr_assert_str_eq(r.lines[0], "EHLO x");
        cr_assert_eq(r.kinds[1], PST_SMTP_EV_BAD_LINE, "bare CR in a line");
        cr_assert_eq(r.kinds[2], PST_SMTP_EV_BARE_LF, "a line ended by a bare LF");
    }
    FEED(&r, "NOOP\r\r\n", 0, 100);
    cr_assert_eq(r.kinds[0], PST_SMTP_EV_BAD_LINE, "CR CR LF: the first CR is bare");
}

Test(smtp_in, long_line) {
    static char buf[PST_SMTP_LINE_MAX + 64];
    static run r;
    memset(buf, 'a', PST_SMTP_LINE_MAX + 1);
    memcpy(buf + PST_SMTP_LINE_MAX + 1, "\r\nNOOP\r\n", 9);
    feed(&r, buf, strlen(buf), 0, 100);
    cr_assert_eq(r.n, 2u);
    cr_assert_eq(r.kinds[0], PST_SMTP_EV_LONG_LINE);
    cr_assert_eq(r.kinds[1], PST_SMTP_EV_LINE);
    cr_assert_str_eq(r.lines[1], "NOOP");
    memset(buf, 'a', PST_SMTP_LINE_MAX);
    memcpy(buf + PST_SMTP_LINE_MAX, "\r\n", 3);
    feed(&r, buf, strlen(buf), 0, 100);
    cr_assert_eq(r.kinds[0], PST_SMTP_EV_LINE, "exactly the maximum is fine");
}

Test(smtp_in, data_end_and_unstuffing) {
    static run r;
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        FEED(&r, "DATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n", steps[k], 1000);
        cr_assert(r.ended);
        cr_assert_eq(r.end.data_flags, 0u);
        cr_assert_eq(r.data_len, strlen("Subject: x\r\n\r\n.dot\r\n"));
        cr_assert(memcmp(r.data, "Subject: x\r\n\r\n.dot\r\n", r.data_len) == 0);
        cr_assert_eq(r.end.header_bytes, strlen("Subject: x\r\n\r\n"));
        cr_assert_eq(r.rest, strlen("QUIT\r\n"), "pipelined input after the end is left");
    }
    FEED(&r, "DATA\r\n.\r\n", 0, 1000);
    cr_assert(r.ended && r.data_len == 0, "an empty message");
}

Test(smtp_in, smuggling_never_ends_data) {
    static const char *seqs[] = {"\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r"};
    static run r;
    static char buf[512];
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
            int n =
                snprintf(buf, sizeof buf,
                         "DATA\r\nSubject: s\r\n\r\nbody%sMAIL FROM:<x@y>\r\n\r\n.\r\n", seqs[i]);
            feed(&r, buf, (size_t)n, steps[k], 1000);
            cr_assert(r.ended, "sequence %zu: the real end was not seen", i);
            cr_assert_eq(r.rest, 0u, "sequence %zu ended DATA early", i);
            cr_assert(r.end.data_flags & PST_SMTP_DATA_BARE_EOL, "sequence %zu not flagged", i);
        }
    }
}

Test(smtp_in, size_cap_and_flags) {
    static run r;
    FEED(&r, "DATA\r\n0123456789\r\n.\r\n", 0, 5);
    cr_assert(r.ended);
    cr_assert(r.end.data_flags & PST_SMTP_DATA_TOO_BIG);
    cr_assert_eq(r.data_len, 5u, "nothing past the cap is handed out");
    cr_assert_eq(r.end.data_bytes, 12u, "counted to the end");
    FEED(&r, "DATA\r\nSubject: \xc3\xa9\r\n\r\n\xc3\xa9\r\n.\r\n", 0, 100);
    cr_assert_eq(r.end.data_flags, PST_SMTP_DATA_8BIT_HEADER | PST_SMTP_DATA_8BIT_BODY);
    FEED(&r, "DATA\r\nS: x\r\n\r\nb\xc3\xa9\r\n.\r\n", 0, 100);
    cr_assert_eq(r.end.data_flags, PST_SMTP_DATA_8BIT_BODY);
    static const char nul[] = "DATA\r\na\0b\r\n.\r\n";
    feed(&r, nul, sizeof nul - 1, 0, 100);
    cr_assert_eq(r.end.data_flags, PST_SMTP_DATA_NUL);
}

Test(smtp_in, big_message_in_events) {
    /* more than one event's worth, with a dot line and CRLFs across pieces */
    size_t lines = 500, n = 0;
    char *buf = malloc(lines * 20 + 64);
    n += (size_t)sprintf(buf, "DATA\r\n");
    for (size_t i = 0; i < lines; i++)
        n += (size_t)sprintf(buf + n, i % 7 == 0 ? "..%08zu-line\r\n" : "x%08zu-line\r\n", i);
    n += (size_t)sprintf(buf + n, ".\r\n");
    static run r;
    feed(&r, buf, n, 0, 100000);
    cr_assert(r.ended && r.end.data_flags == 0);
    cr_assert_eq(r.data_len, lines * 16);
    cr_assert_eq(r.end.data_bytes, lines * 16);
    free(buf);
}

Test(smtp_cmd, verbs_and_paths) {
    pst_smtp_cmd c;
#define P(s, u) pst_smtp_cmd_parse((const uint8_t *)(s), strlen(s), u, &c)
    cr_assert_eq(P("ehlo client.example", false), PST_SMTP_PARSE_OK);
    cr_assert_eq(c.verb, PST_SMTP_CMD_EHLO);
    cr_assert_str_eq(c.arg, "client.example");
    cr_assert_eq(P("EHLO", false), PST_SMTP_PARSE_SYNTAX);
    cr_assert_eq(P("MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME", false), PST_SMTP_PARSE_OK);
    cr_assert_str_eq(c.arg, "a@b.example");
    cr_assert(c.has_size && c.size == 100 && c.body == PST_SMTP_BODY_8BITMIME);
    cr_assert_eq(P("MAIL FROM: <a@b.example>", false), PST_SMTP_PARSE_OK);
    cr_assert_eq(P("MAIL FROM:<>", false), PST_SMTP_PARSE_OK);
    cr_assert_str_eq(c.arg, "");
    cr_assert_eq(P("MAIL FROM:<a@b> FOO=1", false), PST_SMTP_PARSE_PARAM);
    cr_assert_eq(P("MAIL FROM:<a@b> SIZE=x", false), PST_SMTP_PARSE_PARAM);
    cr_assert_eq(P("MAIL FROM:a@b", false), PST_SMTP_PARSE_SYNTAX);
    cr_assert_eq(P("MAIL TO:<a@b>", false), PST_SMTP_PARSE_SYNTAX);
    cr_assert_eq(P("RCPT TO:<@r1,@r2:c@d.example>", false), PST_SMTP_PARSE_OK);
    cr_assert_str_eq(c.arg, "c@d.example");
    cr_assert_eq(P("RCPT TO:<>", false), PST_SMTP_PARSE_PATH);
    cr_assert_eq(P("RCPT TO:<a@b> NOTIFY=NEVER", false), PST_SMTP_PARSE_PARAM);
    cr_assert_eq(P("RCPT TO:<noat>", false), PST_SMTP_PARSE_PATH);
    cr_assert_eq(P("RCPT TO:<a@@b>", false), PST_SMTP_PARSE_PATH);
    cr_assert_eq(P("RCPT TO:<a b@c>", false), PST_SMTP_PARSE_PATH);
    cr_assert_eq(P("RCPT TO:<\xc3\xa9@b.example>", false), PST_SMTP_PARSE_NONASCII);
    cr_assert_eq(P("RCPT TO:<\xc3\xa9@b.example>", true), PST_SMTP_PARSE_OK);
    cr_assert_eq(P("RCPT TO:<\xc3@b.example>", true), PST_SMTP_PARSE_PATH, "bad UTF-8");
    cr_assert_eq(P("MAIL FROM:<\xc3\xa9@b.example> SMTPUTF8", false), PST_SMTP_PARSE_OK);
    cr_assert(c.smtputf8);
    cr_assert_eq(P("AUTH plain AGEAYg==", false), PST_SMTP_PARSE_OK);
    cr_assert_str_eq(c.arg, "PLAIN");
    cr_assert(c.has_extra && strcmp(c.extra, "AGEAYg==") == 0);
    cr_assert_eq(P("DATA x", false), PST_SMTP_PARSE_SYNTAX);
    cr_assert_eq(P("XYZZY", false), PST_SMTP_PARSE_UNKNOWN);
    cr_assert_eq(P("NOOP\x01", false), PST_SMTP_PARSE_UNKNOWN);
    cr_assert_eq(P("HELO a\tb", false), PST_SMTP_PARSE_SYNTAX);
#undef P
}

Test(smtp_auth, plain_and_login) {
    char user[PST_SMTP_AUTH_FIELD_MAX + 1], pass[PST_SMTP_AUTH_FIELD_MAX + 1];
    char b64[1024];
    static const uint8_t good[] = "\0alice\0s3cret";
    sodium_bin2base64(b64, sizeof b64, good, sizeof good - 1, sodium_base64_VARIANT_ORIGINAL);
    cr_assert_eq(pst_smtp_auth_plain_decode(b64, user, pass), PST_OK);
    cr_assert_str_eq(user, "alice");
    cr_assert_str_eq(pass, "s3cret");
    static const uint8_t authz[] = "alice\0alice\0pw";
    sodium_bin2base64(b64, sizeof b64, authz, sizeof authz - 1, sodium_base64_VARIANT_ORIGINAL);
    cr_assert_eq(pst_smtp_auth_plain_decode(b64, user, pass), PST_OK);
    static const uint8_t other[] = "bob\0alice\0pw";
    sodium_bin2base64(b64, sizeof b64, other, sizeof other - 1, sodium_base64_VARIANT_ORIGINAL);
    cr_assert_eq(pst_smtp_auth_plain_decode(b64, user, pass), PST_E_INVAL, "authzid of another");
    cr_assert_eq(user[0], '\0', "zeroed on failure");
    static const uint8_t nonul[] = "alice";
    sodium_bin2base64(b64, sizeof b64, nonul, sizeof nonul - 1, sodium_base64_VARIANT_ORIGINAL);
    cr_assert_eq(pst_smtp_auth_plain_decode(b64, user, pass), PST_E_INVAL);
    cr_assert_eq(pst_smtp_auth_plain_decode("!!!", user, pass), PST_E_INVAL);
    cr_assert_eq(pst_smtp_auth_plain_decode("AGEAYg", user, pass), PST_E_INVAL, "no padding");
    cr_assert_eq(pst_smtp_auth_b64_decode("YWxpY2U=", user), PST_OK);
    cr_assert_str_eq(user, "alice");
    cr_assert_eq(pst_smtp_auth_b64_decode("", user), PST_E_INVAL);
    cr_assert_eq(pst_smtp_auth_b64_decode("AA==", user), PST_E_INVAL, "a NUL");
}

Test(smtp_hdr, to_cc_or_bcc) {
    static const char h[] = "From: a@x.example\r\nTo: Bob <bob@x.example>,\r\n carol@x.example\r\n"
                            "Cc: dave@x.example\r\nSubject: eve@x.example\r\n\r\n"
                            "To: frank@x.example\r\n";
    const uint8_t *p = (const uint8_t *)h;
    size_t n = sizeof h - 1;
    cr_assert_eq(pst_smtp_header_names(p, n, "bob@x.example"), 1);
    cr_assert_eq(pst_smtp_header_names(p, n, "CAROL@x.example"), 1, "folded, any case");
    cr_assert_eq(pst_smtp_header_names(p, n, "dave@x.example"), 2);
    cr_assert_eq(pst_smtp_header_names(p, n, "eve@x.example"), 0, "Subject is not a recipient");
    cr_assert_eq(pst_smtp_header_names(p, n, "frank@x.example"), 0, "the body is not a header");
    cr_assert_eq(pst_smtp_header_names(p, n, "ob@x.example"), 0, "part of another address");
    cr_assert_eq(pst_smtp_header_names(p, n, "a@x.example"), 0, "From is not a recipient");
}

Test(smtp_cmd, lhlo) {
    pst_smtp_cmd c;
#define P(s, u) pst_smtp_cmd_parse((const uint8_t *)(s), strlen(s), u, &c)
    cr_assert_eq(P("LHLO mta.example", false), PST_SMTP_PARSE_OK);
    cr_assert_eq(c.verb, PST_SMTP_CMD_LHLO);
    cr_assert_str_eq(c.arg, "mta.example");
    cr_assert_eq(P("lhlo mta.example", false), PST_SMTP_PARSE_OK, "any case");
    cr_assert_eq(c.verb, PST_SMTP_CMD_LHLO);
    cr_assert_eq(P("LHLO", false), PST_SMTP_PARSE_SYNTAX, "a domain is required");
    cr_assert_eq(P("LHLO a b", false), PST_SMTP_PARSE_SYNTAX);
    cr_assert_eq(c.verb, PST_SMTP_CMD_LHLO, "the verb is known even when its arguments are bad");
    cr_assert_eq(P("LHLOX a", false), PST_SMTP_PARSE_UNKNOWN);
#undef P
}

Test(smtp_hdr, header_next) {
    static const char h[] = "Received: x\r\nX-Hashcash: 1:20:261206:a@x.example::r:c1\r\n"
                            "x-hashcash:\r\n  1:20:261206:b@x.example::r:c2  \r\n"
                            "X-Hashcash-Other: no\r\nX-Hashcash: " /* too long for out */
                            "0123456789012345678901234567890123456789\r\n"
                            "X-Hashcash: last\n\r\nX-Hashcash: in-the-body\r\n";
    const uint8_t *p = (const uint8_t *)h;
    size_t n = sizeof h - 1, pos = 0;
    char out[32];
    cr_assert_eq(pst_smtp_header_next(p, n, "X-Hashcash", &pos, out, sizeof out), PST_OK);
    cr_assert_str_eq(out, "1:20:261206:a@x.example::r:c1");
    cr_assert_eq(pst_smtp_header_next(p, n, "X-Hashcash", &pos, out, sizeof out), PST_OK);
    cr_assert_str_eq(out, "1:20:261206:b@x.example::r:c2", "folded, any case, trimmed");
    cr_assert_eq(pst_smtp_header_next(p, n, "X-Hashcash", &pos, out, sizeof out), PST_OK,
                 "a value too long is skipped");
    cr_assert_str_eq(out, "last", "an LF line end");
    cr_assert_eq(pst_smtp_header_next(p, n, "X-Hashcash", &pos, out, sizeof out), PST_E_NOTFOUND,
                 "the body is not the header");
    cr_assert_str_eq(out, "");
    pos = 0;
    cr_assert_eq(pst_smtp_header_next(p, n, "Subject", &pos, out, sizeof out), PST_E_NOTFOUND);
    pos = 0;
    cr_assert_eq(pst_smtp_header_next(p, 20, "X-Hashcash", &pos, out, sizeof out), PST_E_NOTFOUND,
                 "a field cut by len is not read past len");
    cr_assert_eq(pst_smtp_header_next(p, n, "X-Hashcash", &pos, out, 0), PST_E_INVAL);
    static const char nul[] = "X-Hashcash: a\0b\r\nX-Hashcash: ok\r\n\r\n";
    pos = 0;
    cr_assert_eq(pst_smtp_header_next((const uint8_t *)nul, sizeof nul - 1, "x-hashcash", &pos, out,
                                      sizeof out),
                 PST_OK);
    cr_assert_str_eq(out, "ok", "a value holding a NUL is skipped");
}
