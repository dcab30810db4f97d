/* libFuzzer target: SMTP submission's wire side (proto/pst_smtp.h). Input:
 * the first byte picks a piece size (1..32, or whole), the next 4 a size
 * cap, the rest is what a client sends. Each command line is parsed (both
 * with and without SMTPUTF8) and, for AUTH, its response decoded; a line
 * reading DATA switches to DATA mode. Checks: every feed consumes at most
 * what it was given and EV_NONE consumes all of it; a command line is at
 * most PST_SMTP_LINE_MAX bytes with no LF (and no CR when good); DATA
 * hands out at most the cap and flags TOO_BIG exactly when it counted more;
 * fed in pieces the machine hands out the same bytes and verdicts as fed
 * whole; the parser never reads past its line. The input is also read as
 * a header section for its X-Hashcash fields (LMTP): each value fits its
 * buffer, holds no line end or NUL, and the walk moves forward and ends. The
 * parser knows LHLO (LMTP) like EHLO. Breaks trap. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

typedef struct {
    uint8_t *out;
    size_t out_len, out_cap;
    unsigned ends;
    unsigned flags_xor;
} summary;

static void run(const uint8_t *p, size_t n, size_t step, uint64_t cap, summary *sm) {
    pst_smtp_in *in = malloc(sizeof *in);
    pst_smtp_cmd *cmd = malloc(sizeof *cmd);
    check(in != NULL && cmd != NULL);
    pst_smtp_in_init(in);
    size_t off = 0;
    uint64_t handed = 0;
    while (off < n) {
        size_t piece = step == 0 || n - off < step ? n - off : step;
        size_t used = 0;
        pst_smtp_event ev;
        pst_smtp_in_feed(in, p + off, piece, &used, &ev);
        check(used <= piece);
        off += used;
        switch (ev.kind) {
        case PST_SMTP_EV_NONE:
            check(used == piece);
            break;
        case PST_SMTP_EV_DATA:
        case PST_SMTP_EV_DATA_END:
            handed += ev.len;
            check(handed <= cap);
            check(sm->out_len + ev.len <= sm->out_cap);
            memcpy(sm->out + sm->out_len, ev.line, ev.len);
            sm->out_len += ev.len;
            if (ev.kind == PST_SMTP_EV_DATA_END) {
                check(ev.data_bytes >= handed);
                check((ev.data_bytes > cap) == ((ev.data_flags & PST_SMTP_DATA_TOO_BIG) != 0));
                sm->ends++;
                sm->flags_xor ^= ev.data_flags;
                handed = 0;
            }
            break;
        default:
            check(ev.len <= PST_SMTP_LINE_MAX);
            check(memchr(ev.line, '\n', ev.len) == NULL);
            if (ev.kind == PST_SMTP_EV_LINE) {
                check(memchr(ev.line, '\r', ev.len) == NULL);
                /* exactly the line: a copy without slack catches over-reads */
                uint8_t *copy = malloc(ev.len ? ev.len : 1);
                check(copy != NULL);
                memcpy(copy, ev.line, ev.len);
                for (int u = 0; u < 2; u++) {
                    int rc = pst_smtp_cmd_parse(copy, ev.len, u == 1, cmd);
                    check(rc <= 0 && rc >= PST_SMTP_PARSE_NONASCII);
                    if (rc == PST_SMTP_PARSE_OK) {
                        check(strlen(cmd->arg) <= PST_SMTP_PATH_MAX);
                        if (cmd->verb == PST_SMTP_CMD_AUTH && cmd->has_extra) {
                            char a[PST_SMTP_AUTH_FIELD_MAX + 1], b[PST_SMTP_AUTH_FIELD_MAX + 1];
                            if (pst_smtp_auth_plain_decode(cmd->extra, a, b) == 0)
                                check(strlen(a) > 0 && strlen(b) > 0);
                            else
                                check(a[0] == 0 && b[0] == 0);
                            (void)pst_smtp_auth_b64_decode(cmd->extra, a);
                        }
                        if (cmd->verb == PST_SMTP_CMD_RCPT)
                            (void)pst_smtp_header_names(p, n, cmd->arg);
                    }
                }
                if (ev.len == 4 && memcmp(copy, "DATA", 4) == 0)
                    pst_smtp_in_data(in, cap);
                free(copy);
            }
        }
    }
    free(in);
    free(cmd);
}

/* The X-Hashcash walk LMTP does over a message's header section. */
static void header_walk(const uint8_t *p, size_t n, size_t cap) {
    char *out = malloc(cap);
    check(out != NULL);
    size_t pos = 0, last = 0;
    unsigned found = 0;
    while (pst_smtp_header_next(p, n, "X-Hashcash", &pos, out, cap) == 0) {
        size_t ol = strlen(out);
        check(ol < cap && pos > last && pos <= n && found++ < n);
        check(memchr(out, '\r', ol) == NULL && memchr(out, '\n', ol) == NULL);
        last = pos;
    }
    check(out[0] == '\0');
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 5)
        return 0;
    size_t step = data[0] % 33;
    uint64_t cap = (uint64_t)data[1] | (uint64_t)data[2] << 8 | (uint64_t)data[3] << 16 |
                   (uint64_t)(data[4] & 0x7f) << 24;
    const uint8_t *p = data + 5;
    size_t n = size - 5;
    summary whole = {malloc(n + 1), 0, n + 1, 0, 0};
    summary cut = {malloc(n + 1), 0, n + 1, 0, 0};
    check(whole.out != NULL && cut.out != NULL);
    run(p, n, 0, cap, &whole);
    run(p, n, step, cap, &cut);
    header_walk(p, n, 1 + step * 8);
    /* however the input is cut, DATA yields the same bytes and verdicts */
    check(whole.out_len == cut.out_len && memcmp(whole.out, cut.out, whole.out_len) == 0);
    check(whole.ends == cut.ends && whole.flags_xor == cut.flags_xor);
    free(whole.out);
    free(cut.out);
    return 0;
}
