/* LMTP (RFC 2033): what a session does with each command. LHLO (EHLO's
 * twin; HELO and EHLO are refused, as RFC 2033 4.1 asks), MAIL FROM any
 * sender (the MTA in front checked it; the null path of a bounce too), RCPT
 * TO one of the node's own addresses or FINGERPRINT@postern.invalid (any
 * other gets 550 5.1.1 at once), DATA (lmtp_data.c), which answers once per
 * accepted recipient. The command parser and the input machine are
 * submission's (proto/pst_smtp.h); the limits too. */
#include <stdio.h>
#include <string.h>

#include "pst_mailmsg.h"
#include "smtp_int.h"

static void cmd_mail(smtp_session *s, const pst_smtp_cmd *c) {
    if (pst_smtp__mail_refused(s, c))
        return;
    snprintf(s->mail_from, sizeof s->mail_from, "%s", c->arg);
    pst_smtp__mail_accept(s, c);
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

void pst_lmtp__command(smtp_session *s, const pst_smtp_cmd *c) {
    bool open = c->verb == PST_SMTP_CMD_LHLO || c->verb == PST_SMTP_CMD_NOOP ||
                c->verb == PST_SMTP_CMD_RSET || c->verb == PST_SMTP_CMD_QUIT ||
                c->verb == PST_SMTP_CMD_HELP || c->verb == PST_SMTP_CMD_EHLO ||
                c->verb == PST_SMTP_CMD_HELO;
    if (!open && !s->greeted) {
        pst_smtp__reply(s, "503 5.5.1 send LHLO first");
        return;
    }
    switch (c->verb) {
    case PST_SMTP_CMD_LHLO:
        pst_smtp__greet(s, c);
        break;
    case PST_SMTP_CMD_EHLO:
    case PST_SMTP_CMD_HELO:
        pst_counter_rejected(s->node, "lmtp", "not_lhlo");
        pst_smtp__reply(s, "500 5.5.1 this is LMTP (RFC 2033): greet with LHLO");
        break;
    case PST_SMTP_CMD_MAIL:
        cmd_mail(s, c);
        break;
    case PST_SMTP_CMD_RCPT:
        cmd_rcpt(s, c);
        break;
    default: /* DATA, RSET, NOOP, QUIT, VRFY, HELP; AUTH (the socket's mode is
              * the access control), STARTTLS, BDAT are not offered */
        pst_smtp__common_command(s, c);
        break;
    }
}
