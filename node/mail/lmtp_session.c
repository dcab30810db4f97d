/* LMTP (RFC 2033): what a session does with each command. LHLO (EHLO's
 * twin; HELO and EHLO are refused, as RFC 2033 4.1 asks), MAIL FROM any
 * sender (the MTA in front checked it; the null path of a bounce too), RCPT
 * TO one of the node's own addresses or FINGERPRINT@postern.invalid (any
 * other gets 550 5.1.1 at once), DATA (lmtp_data.c), which answers once per
 * accepted recipient. The command parser and the input machine are
 * submission's (proto/pst_smtp.h); the limits too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_mailmsg.h"
#include "smtp_int.h"

static void cmd_lhlo(smtp_session *s, const pst_smtp_cmd *c) {
    pst_smtp__reset(s);
    s->greeted = true;
    char text[512];
    int len = snprintf(text, sizeof text,
                       "250-%s greets %.64s\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
                       "250-ENHANCEDSTATUSCODES\r\n250 SIZE %llu\r\n",
                       SMTP_HOSTNAME, c->arg, (unsigned long long)pst_smtp__size_limit(s->node));
    pst_smtp__reply_raw(s, text, (size_t)len);
}

static void cmd_mail(smtp_session *s, const pst_smtp_cmd *c) {
    pst_node *n = s->node;
    uint64_t limit = pst_smtp__size_limit(n);
    if (s->have_mail) {
        pst_smtp__reply(s, "503 5.5.1 nested MAIL command");
    } else if (s->messages >= SMTP_MESSAGES_MAX) {
        pst_counter_rejected(n, "lmtp", "message_limit");
        pst_smtp__end(s);
        pst_smtp__reply(s, "421 4.7.0 at most %u messages per session: reconnect to deliver more",
                        SMTP_MESSAGES_MAX);
    } else if (c->has_size && c->size > limit) {
        pst_counter_rejected(n, "lmtp", "too_big");
        pst_smtp__reply(s, "552 5.3.4 message size exceeds the limit of %llu bytes",
                        (unsigned long long)limit);
    } else {
        s->have_mail = true;
        s->smtputf8 = c->smtputf8;
        s->n_rcpts = 0;
        snprintf(s->mail_from, sizeof s->mail_from, "%s", c->arg);
        pst_smtp__reply(s, "250 2.1.0 sender <%s> ok", c->arg);
    }
}

static void cmd_rcpt(smtp_session *s, const pst_smtp_cmd *c) {
    pst_node *n = s->node;
    if (!s->have_mail) {
        pst_smtp__reply(s, "503 5.5.1 need MAIL before RCPT");
    } else if (s->n_rcpts >= SMTP_RCPTS_MAX) {
        pst_counter_rejected(n, "lmtp", "rcpt_limit");
        pst_smtp__reply(s, "452 4.5.3 too many recipients (at most %u per message)",
                        SMTP_RCPTS_MAX);
    } else if (!pst_smtp__is_own(n, c->arg, false)) {
        pst_counter_rejected(n, "lmtp", "rcpt_unknown");
        pst_smtp__reply(s,
                        "550 5.1.1 <%s>: no such mailbox here: this node receives for %s and "
                        "%s@" PST_MAILMSG_DOMAIN_DEFAULT,
                        c->arg, n->n_addresses > 0 ? n->addresses[0] : n->fingerprint,
                        n->fingerprint);
    } else {
        smtp_rcpt *r = &s->rcpts[s->n_rcpts++];
        memset(r, 0, sizeof *r);
        snprintf(r->addr, sizeof r->addr, "%s", c->arg);
        pst_smtp__reply(s, "250 2.1.5 recipient <%s> ok", c->arg);
    }
}

void pst_lmtp__command(smtp_session *s, const uint8_t *line, size_t len) {
    pst_node *n = s->node;
    pst_smtp_cmd *c = malloc(sizeof *c); /* ~2.5 KiB: kept off the loop's stack */
    if (c == NULL) {
        pst_smtp__end(s);
        pst_smtp__reply(s, "421 4.3.0 out of memory");
        return;
    }
    int rc = pst_smtp_cmd_parse(line, len, s->smtputf8, c);
    if (rc != PST_SMTP_PARSE_OK) {
        pst_counter_rejected(n, "lmtp",
                             rc == PST_SMTP_PARSE_UNKNOWN ? "unknown_command" : "syntax");
        pst_smtp__reply(s, "%s", pst_smtp__parse_error_reply(rc));
        free(c);
        return;
    }
    bool open = c->verb == PST_SMTP_CMD_LHLO || c->verb == PST_SMTP_CMD_NOOP ||
                c->verb == PST_SMTP_CMD_RSET || c->verb == PST_SMTP_CMD_QUIT ||
                c->verb == PST_SMTP_CMD_HELP || c->verb == PST_SMTP_CMD_EHLO ||
                c->verb == PST_SMTP_CMD_HELO;
    if (!open && !s->greeted) {
        pst_smtp__reply(s, "503 5.5.1 send LHLO first");
    } else {
        switch (c->verb) {
        case PST_SMTP_CMD_LHLO:
            cmd_lhlo(s, c);
            break;
        case PST_SMTP_CMD_EHLO:
        case PST_SMTP_CMD_HELO:
            pst_counter_rejected(n, "lmtp", "not_lhlo");
            pst_smtp__reply(s, "500 5.5.1 this is LMTP (RFC 2033): greet with LHLO");
            break;
        case PST_SMTP_CMD_MAIL:
            cmd_mail(s, c);
            break;
        case PST_SMTP_CMD_RCPT:
            cmd_rcpt(s, c);
            break;
        case PST_SMTP_CMD_DATA:
            if (!s->have_mail)
                pst_smtp__reply(s, "503 5.5.1 need MAIL before DATA");
            else if (s->n_rcpts == 0)
                pst_smtp__reply(s, "503 5.5.1 no valid recipients");
            else
                pst_lmtp__data_begin(s);
            break;
        case PST_SMTP_CMD_RSET:
            pst_smtp__reset(s);
            pst_smtp__reply(s, "250 2.0.0 OK");
            break;
        case PST_SMTP_CMD_NOOP:
            pst_smtp__reply(s, "250 2.0.0 OK");
            break;
        case PST_SMTP_CMD_QUIT:
            pst_smtp__end(s);
            pst_smtp__reply(s, "221 2.0.0 %s closing connection", SMTP_HOSTNAME);
            break;
        case PST_SMTP_CMD_VRFY:
            pst_smtp__reply(s, "252 2.5.0 cannot VRFY; send some mail and see");
            break;
        case PST_SMTP_CMD_HELP:
            pst_smtp__reply(s, "214 2.0.0 Postern LMTP: see docs/LMTP.md");
            break;
        default: /* AUTH (the socket's mode is the access control), STARTTLS, BDAT */
            pst_counter_rejected(n, "lmtp", "not_offered");
            pst_smtp__reply(s, "502 5.5.1 command not implemented");
            break;
        }
    }
    free(c);
}
