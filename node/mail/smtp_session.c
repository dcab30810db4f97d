/* SMTP submission: what a session does with each command (RFC 5321, RFC
 * 6409, RFC 4954 for AUTH). The order a client must follow: EHLO, AUTH
 * (PLAIN or LOGIN; the user name is our fingerprint or one of our
 * addresses, the password HOME/smtp.password), MAIL FROM one of our own
 * addresses or FINGERPRINT@postern.invalid, RCPT TO each recipient (looked
 * up at once: a recipient that cannot be sent to is refused here, with the
 * reason), DATA (smtp_data.c). Replies carry RFC 3463 enhanced codes. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pst_mailmsg.h"
#include "smtp_int.h"

#define INVALID_DOMAIN "@" PST_MAILMSG_DOMAIN_DEFAULT

void pst_smtp__reset(smtp_session *s) {
    s->have_mail = false;
    s->smtputf8 = false;
    s->n_rcpts = 0;
}

/* ---- who we are ------------------------------------------------------------ */

/* addr is FINGERPRINT@postern.invalid: the fingerprint into fp. */
static bool fingerprint_address(const char *addr, char fp[PST_FINGERPRINT_STRLEN + 1]) {
    size_t l = strlen(addr), dl = strlen(INVALID_DOMAIN);
    uint8_t pk[PST_SIGN_PK_BYTES];
    if (l != PST_FINGERPRINT_STRLEN + dl ||
        strcasecmp(addr + PST_FINGERPRINT_STRLEN, INVALID_DOMAIN) != 0)
        return false;
    memcpy(fp, addr, PST_FINGERPRINT_STRLEN);
    fp[PST_FINGERPRINT_STRLEN] = '\0';
    for (size_t i = 0; i < PST_FINGERPRINT_STRLEN; i++)
        fp[i] = (char)(fp[i] >= 'A' && fp[i] <= 'Z' ? fp[i] - 'A' + 'a' : fp[i]);
    return pst_fingerprint_parse(fp, pk) == PST_OK;
}

/* Our fingerprint, FINGERPRINT@postern.invalid, or one of our addresses. */
bool pst_smtp__is_own(const pst_node *n, const char *who, bool bare_fingerprint_ok) {
    char fp[PST_FINGERPRINT_STRLEN + 1], norm[PST_ADDRESS_MAX + 1];
    if (bare_fingerprint_ok && strcasecmp(who, n->fingerprint) == 0)
        return true;
    if (fingerprint_address(who, fp))
        return strcmp(fp, n->fingerprint) == 0;
    if (pst_address_normalize(who, norm, sizeof norm) != PST_OK)
        return false;
    for (unsigned i = 0; i < n->n_addresses; i++)
        if (strcasecmp(norm, n->addresses[i]) == 0)
            return true;
    return false;
}

/* ---- AUTH ------------------------------------------------------------------ */

static void auth_result(smtp_session *s, const char *user, const char *pass) {
    pst_node *n = s->node;
    s->state = SS_CMD;
    if (pst_smtp__is_own(n, user, true) && pst_smtp__password_ok(n->cfg.home, pass)) {
        s->authed = true;
        pst_counter_add(n, "smtp.auth_ok", 1);
        pst_smtp__reply(s, "235 2.7.0 Authentication successful");
        return;
    }
    pst_counter_rejected(n, "smtp", "auth_failed");
    if (++s->auth_failures >= SMTP_AUTH_FAILURES_MAX) {
        pst_smtp__end(s);
        pst_smtp__reply(s, "421 4.7.0 too many failed authentications, closing");
        return;
    }
    pst_smtp__reply(s, "535 5.7.8 Authentication credentials invalid (user: your fingerprint "
                       "or address; password: 'postern smtp password')");
}

static void auth_line(smtp_session *s, const uint8_t *line, size_t len) {
    char b64[PST_SMTP_LINE_MAX + 1], user[PST_SMTP_AUTH_FIELD_MAX + 1],
        pass[PST_SMTP_AUTH_FIELD_MAX + 1];
    memcpy(b64, line, len);
    b64[len] = '\0';
    if (len == 1 && line[0] == '*') {
        s->state = SS_CMD;
        pst_smtp__reply(s, "501 5.0.0 Authentication cancelled");
        return;
    }
    if (s->state == SS_AUTH_PLAIN) {
        if (pst_smtp_auth_plain_decode(b64, user, pass) != PST_OK) {
            s->state = SS_CMD;
            pst_counter_rejected(s->node, "smtp", "auth_syntax");
            pst_smtp__reply(s, "501 5.5.2 AUTH PLAIN: not base64 of [authzid] NUL user NUL "
                               "password");
            return;
        }
        auth_result(s, user, pass);
    } else if (s->state == SS_AUTH_USER) {
        if (pst_smtp_auth_b64_decode(b64, s->login_user) != PST_OK) {
            s->state = SS_CMD;
            pst_counter_rejected(s->node, "smtp", "auth_syntax");
            pst_smtp__reply(s, "501 5.5.2 AUTH LOGIN: the user name is not base64");
            return;
        }
        s->state = SS_AUTH_PASS;
        pst_smtp__reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
    } else {
        if (pst_smtp_auth_b64_decode(b64, pass) != PST_OK) {
            s->state = SS_CMD;
            pst_counter_rejected(s->node, "smtp", "auth_syntax");
            pst_smtp__reply(s, "501 5.5.2 AUTH LOGIN: the password is not base64");
        } else {
            auth_result(s, s->login_user, pass);
        }
        sodium_memzero(s->login_user, sizeof s->login_user);
    }
    sodium_memzero(b64, sizeof b64);
    sodium_memzero(pass, sizeof pass);
}

static void cmd_auth(smtp_session *s, pst_smtp_cmd *c) {
    if (!s->esmtp) {
        pst_smtp__reply(s, "503 5.5.1 send EHLO first");
    } else if (s->authed) {
        pst_smtp__reply(s, "503 5.5.1 already authenticated");
    } else if (s->have_mail) {
        pst_smtp__reply(s, "503 5.5.1 AUTH is not allowed during a mail transaction");
    } else if (strcmp(c->arg, "PLAIN") == 0) {
        s->state = SS_AUTH_PLAIN;
        if (c->has_extra && strcmp(c->extra, "=") != 0)
            auth_line(s, (const uint8_t *)c->extra, strlen(c->extra));
        else
            pst_smtp__reply(s, "334 ");
    } else if (strcmp(c->arg, "LOGIN") == 0) {
        s->state = SS_AUTH_USER;
        if (c->has_extra)
            auth_line(s, (const uint8_t *)c->extra, strlen(c->extra));
        else
            pst_smtp__reply(s, "334 VXNlcm5hbWU6"); /* "Username:" */
    } else {
        pst_smtp__reply(s, "504 5.5.4 unrecognised authentication type (PLAIN or LOGIN)");
    }
    sodium_memzero(c->extra, sizeof c->extra);
}

/* ---- MAIL and RCPT ---------------------------------------------------------- */

bool pst_smtp__mail_refused(smtp_session *s, const pst_smtp_cmd *c) {
    pst_node *n = s->node;
    uint64_t limit = pst_smtp__size_limit(n);
    if (s->have_mail) {
        pst_smtp__reply(s, "503 5.5.1 nested MAIL command");
    } else if (s->messages >= SMTP_MESSAGES_MAX) {
        pst_counter_rejected(n, s->srv->name, "message_limit");
        pst_smtp__end(s);
        pst_smtp__reply(s, "421 4.7.0 at most %u messages per session: reconnect for more",
                        SMTP_MESSAGES_MAX);
    } else if (c->has_size && c->size > limit) {
        pst_counter_rejected(n, s->srv->name, "too_big");
        pst_smtp__reply(s, "552 5.3.4 message size exceeds the limit of %llu bytes",
                        (unsigned long long)limit);
    } else {
        return false;
    }
    return true;
}

void pst_smtp__mail_accept(smtp_session *s, const pst_smtp_cmd *c) {
    s->have_mail = true;
    s->smtputf8 = c->smtputf8;
    s->n_rcpts = 0;
    pst_smtp__reply(s, "250 2.1.0 sender <%s> ok", c->arg);
}

static void cmd_mail(smtp_session *s, const pst_smtp_cmd *c) {
    pst_node *n = s->node;
    char why[PST_SEND_ERROR_MAX + 1];
    if (pst_smtp__mail_refused(s, c))
        return;
    if (c->arg[0] == '\0' || !pst_smtp__is_own(n, c->arg, false)) {
        pst_counter_rejected(n, "smtp", "foreign_sender");
        pst_smtp__reply(s,
                        "553 5.7.1 <%s>: not one of your addresses: this node sends only as "
                        "%s or %s%s",
                        c->arg, n->n_addresses > 0 ? n->addresses[0] : n->fingerprint,
                        n->fingerprint, INVALID_DOMAIN);
    } else if (pst_send_refusal(n, why, sizeof why) != PST_OK) {
        pst_smtp__reply(s, "451 4.3.0 %s", why);
    } else {
        pst_smtp__mail_accept(s, c);
    }
}

static void on_rcpt_resolved(void *user, int err, const pst_resolved_key *keys, unsigned nk,
                             const pst_resolve_info *info) {
    smtp_session *s = user;
    if (s->closing || s->state != SS_WAIT) { /* gone, or abandoned at the total timeout */
        pst_smtp__unref(s);
        return;
    }
    const smtp_rcpt *r = &s->pending;
    unsigned valid = 0;
    pst_key_status only = PST_KEY_NOT_FOUND;
    for (unsigned i = 0; err == PST_OK && i < nk; i++) {
        valid += keys[i].status == PST_KEY_VALID && keys[i].have_keyrec;
        only = keys[i].status;
    }
    const char *reason = NULL;
    if (err != PST_OK) {
        pst_smtp__reply(s,
                        "451 4.4.3 <%s>: cannot look the recipient up now (%s): try again "
                        "later",
                        r->addr, pst_strerror(err));
        reason = "rcpt_lookup";
    } else if (valid == 1) {
        s->rcpts[s->n_rcpts++] = *r;
        pst_smtp__reply(s, "250 2.1.5 recipient <%s> ok", r->addr);
    } else if (valid > 1) {
        reason = "rcpt_ambiguous";
        pst_smtp__reply(s,
                        "550 5.1.4 <%s>: claimed by several valid keys: ask its owner for "
                        "the fingerprint and send to FINGERPRINT%s",
                        r->addr, INVALID_DOMAIN);
    } else if (nk > 0 && (only == PST_KEY_REVOKED || info->by_address)) {
        reason = "rcpt_revoked";
        pst_smtp__reply(s, "550 5.1.6 <%s>: %s", r->addr,
                        only == PST_KEY_REVOKED
                            ? "the recipient's key is revoked: its owner no longer reads mail "
                              "with it"
                            : "no valid key claims this address (only revoked or expired ones)");
    } else if (nk > 0 && only == PST_KEY_EXPIRED) {
        reason = "rcpt_expired";
        pst_smtp__reply(s,
                        "550 5.1.1 <%s>: the recipient's key has expired (its node has not "
                        "republished it)",
                        r->addr);
    } else if (nk > 0 && only == PST_KEY_FROM_FUTURE) {
        reason = "rcpt_lookup";
        pst_smtp__reply(s,
                        "451 4.4.3 <%s>: the recipient's key record is dated in the future "
                        "by this machine's clock: check the clock",
                        r->addr);
    } else if (info->by_address && nk == 0 && pst_relay_takes(s->node, r->query)) {
        /* no Postern key claims it: an Internet address, for the smarthost */
        s->rcpts[s->n_rcpts++] = *r;
        pst_counter_add(s->node, "smtp.rcpt_internet", 1);
        pst_smtp__reply(s, "250 2.1.5 recipient <%s> ok (Internet mail, through the smarthost)",
                        r->addr);
    } else if (info->by_address) {
        /* no Postern key: an Internet address, and there is no smarthost */
        reason = "rcpt_no_smarthost";
        pst_smtp__reply(s,
                        "550 5.7.1 <%s>: no Postern key claims this address, and no "
                        "smarthost is configured for Internet mail (docs/SMARTHOST.md)",
                        r->addr);
    } else {
        reason = "rcpt_unknown";
        pst_smtp__reply(s, "550 5.1.1 <%s>: no key with this fingerprint was found", r->addr);
    }
    if (reason != NULL)
        pst_counter_rejected(s->node, "smtp", reason);
    pst_smtp__resume(s);
    pst_smtp__unref(s);
}

static void cmd_rcpt(smtp_session *s, const pst_smtp_cmd *c) {
    pst_node *n = s->node;
    if (!s->have_mail) {
        pst_smtp__reply(s, "503 5.5.1 need MAIL before RCPT");
        return;
    }
    if (s->n_rcpts >= SMTP_RCPTS_MAX) {
        pst_counter_rejected(n, "smtp", "rcpt_limit");
        pst_smtp__reply(s, "452 4.5.3 too many recipients (at most %u per message)",
                        SMTP_RCPTS_MAX);
        return;
    }
    smtp_rcpt *r = &s->pending;
    memset(r, 0, sizeof *r);
    snprintf(r->addr, sizeof r->addr, "%s", c->arg);
    char fp[PST_FINGERPRINT_STRLEN + 1];
    if (fingerprint_address(c->arg, fp))
        snprintf(r->query, sizeof r->query, "%s", fp);
    else if (pst_address_normalize(c->arg, r->query, sizeof r->query) != PST_OK) {
        pst_counter_rejected(n, "smtp", "rcpt_syntax");
        pst_smtp__reply(s, "553 5.1.3 <%s>: not a valid address", c->arg);
        return;
    }
    s->state = SS_WAIT;
    s->refs++;
    if (pst_resolve(n, r->query, true, on_rcpt_resolved, s) != PST_OK) {
        s->refs--;
        s->state = SS_CMD;
        pst_counter_rejected(n, "smtp", "rcpt_syntax");
        pst_smtp__reply(s, "553 5.1.3 <%s>: not a valid address", c->arg);
    } else if (s->state == SS_WAIT) { /* not answered during the call */
        pst_smtp__wait(s);
    }
}

/* ---- one command ------------------------------------------------------------- */

void pst_smtp__greet(smtp_session *s, const pst_smtp_cmd *c) {
    pst_smtp__reset(s);
    s->greeted = true;
    if (c->verb == PST_SMTP_CMD_HELO) {
        s->esmtp = false;
        pst_smtp__reply(s, "250 %s", SMTP_HOSTNAME);
        return;
    }
    s->esmtp = true;
    /* LMTP: no AUTH, the socket's mode is the access control */
    bool lmtp = s->srv->lmtp;
    char text[512];
    int len = snprintf(text, sizeof text,
                       "250-%s greets %.64s\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
                       "250-ENHANCEDSTATUSCODES\r\n250%cSIZE %llu\r\n%s",
                       SMTP_HOSTNAME, c->arg, lmtp ? ' ' : '-',
                       (unsigned long long)pst_smtp__size_limit(s->node),
                       lmtp ? "" : "250 AUTH PLAIN LOGIN\r\n");
    pst_smtp__reply_raw(s, text, (size_t)len);
}

/* DATA, of either kind (LMTP answers 503 with no recipient, RFC 2033 4.2). */
static void cmd_data(smtp_session *s) {
    bool lmtp = s->srv->lmtp;
    if (!s->have_mail)
        pst_smtp__reply(s, "503 5.5.1 need MAIL before DATA");
    else if (s->n_rcpts == 0)
        pst_smtp__reply(s, "%s 5.5.1 no valid recipients", lmtp ? "503" : "554");
    else if (lmtp)
        pst_lmtp__data_begin(s);
    else
        pst_smtp__data_begin(s);
}

static const char *parse_error_reply(int rc) {
    switch (rc) {
    case PST_SMTP_PARSE_UNKNOWN:
        return "500 5.5.2 command not recognised";
    case PST_SMTP_PARSE_PARAM:
        return "555 5.5.4 parameter not recognised or bad";
    case PST_SMTP_PARSE_PATH:
        return "553 5.1.3 not an address of the form local@domain";
    case PST_SMTP_PARSE_NONASCII:
        return "553 5.6.7 a non-ASCII address needs the SMTPUTF8 parameter";
    default:
        return "501 5.5.4 syntax error in arguments";
    }
}

void pst_smtp__common_command(smtp_session *s, const pst_smtp_cmd *c) {
    switch (c->verb) {
    case PST_SMTP_CMD_DATA:
        cmd_data(s);
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
        pst_smtp__reply(s, "214 2.0.0 Postern %s: see docs/%s.md",
                        s->srv->lmtp ? "LMTP" : "submission", s->srv->lmtp ? "LMTP" : "SMTP");
        break;
    default: /* STARTTLS (loopback only), BDAT (CHUNKING is not offered); AUTH on LMTP */
        pst_counter_rejected(s->node, s->srv->name, "not_offered");
        pst_smtp__reply(s, "502 5.5.1 command not implemented");
        break;
    }
}

/* Submission's commands: EHLO and AUTH first, then the transaction. */
static void submission_command(smtp_session *s, pst_smtp_cmd *c) {
    bool open = c->verb == PST_SMTP_CMD_EHLO || c->verb == PST_SMTP_CMD_HELO ||
                c->verb == PST_SMTP_CMD_AUTH || c->verb == PST_SMTP_CMD_NOOP ||
                c->verb == PST_SMTP_CMD_RSET || c->verb == PST_SMTP_CMD_QUIT ||
                c->verb == PST_SMTP_CMD_HELP || c->verb == PST_SMTP_CMD_STARTTLS;
    if (!open && !s->greeted) {
        pst_smtp__reply(s, "503 5.5.1 send EHLO first");
    } else if (!open && !s->authed) {
        pst_counter_rejected(s->node, "smtp", "auth_required");
        pst_smtp__reply(s, "530 5.7.0 Authentication required");
    } else {
        switch (c->verb) {
        case PST_SMTP_CMD_EHLO:
        case PST_SMTP_CMD_HELO:
            pst_smtp__greet(s, c);
            break;
        case PST_SMTP_CMD_AUTH:
            cmd_auth(s, c);
            break;
        case PST_SMTP_CMD_MAIL:
            cmd_mail(s, c);
            break;
        case PST_SMTP_CMD_RCPT:
            cmd_rcpt(s, c);
            break;
        default:
            pst_smtp__common_command(s, c);
            break;
        }
    }
}

/* One command line of either kind of session. */
static void command(smtp_session *s, const uint8_t *line, size_t len) {
    pst_smtp_cmd *c = malloc(sizeof *c); /* ~2.5 KiB: kept off the loop's stack */
    if (c == NULL) {
        pst_smtp__end(s);
        pst_smtp__reply(s, "421 4.3.0 out of memory");
        return;
    }
    int rc = pst_smtp_cmd_parse(line, len, s->smtputf8, c);
    if (rc != PST_SMTP_PARSE_OK) {
        pst_counter_rejected(s->node, s->srv->name,
                             rc == PST_SMTP_PARSE_UNKNOWN ? "unknown_command" : "syntax");
        pst_smtp__reply(s, "%s", parse_error_reply(rc));
    } else if (s->srv->lmtp) {
        pst_lmtp__command(s, c);
    } else {
        submission_command(s, c);
    }
    sodium_memzero(c, sizeof *c);
    free(c);
}

void pst_smtp__event(smtp_session *s, const pst_smtp_event *ev) {
    pst_node *n = s->node;
    bool lmtp = s->srv->lmtp;
    const char *name = s->srv->name;
    switch (ev->kind) {
    case PST_SMTP_EV_LINE:
        if (lmtp || s->state == SS_CMD)
            command(s, ev->line, ev->len);
        else
            auth_line(s, ev->line, ev->len);
        break;
    case PST_SMTP_EV_BAD_LINE:
        pst_counter_rejected(n, name, "bare_cr");
        if (s->state != SS_CMD)
            s->state = SS_CMD;
        pst_smtp__reply(s, "500 5.5.2 bare CR in a command line refused (lines end with CRLF)");
        break;
    case PST_SMTP_EV_LONG_LINE:
        pst_counter_rejected(n, name, "line_too_long");
        if (s->state != SS_CMD)
            s->state = SS_CMD;
        pst_smtp__reply(s, "500 5.5.6 line too long (at most %u octets)", PST_SMTP_LINE_MAX);
        break;
    case PST_SMTP_EV_BARE_LF:
        /* the client's idea of a line is not ours: nothing after it can be
         * trusted to mean what it seems (SMTP smuggling) */
        pst_counter_rejected(n, name, "bare_lf");
        pst_smtp__end(s);
        pst_smtp__reply(s, "500 5.5.2 bare LF in a command line refused (lines end with CRLF); "
                           "closing");
        break;
    case PST_SMTP_EV_DATA:
        if (lmtp)
            pst_lmtp__data_bytes(s, ev->line, ev->len);
        else
            pst_smtp__data_bytes(s, ev->line, ev->len);
        break;
    case PST_SMTP_EV_DATA_END:
        if (lmtp) {
            pst_lmtp__data_bytes(s, ev->line, ev->len);
            pst_lmtp__data_end(s, ev);
        } else {
            pst_smtp__data_bytes(s, ev->line, ev->len);
            pst_smtp__data_end(s, ev);
        }
        break;
    default:
        break;
    }
}
