/* The recipient's side of direct hints (hint_int.h): a sender's node opens
 * a connection to our fetch port and writes Hint frames, each carrying a
 * notification it also put in our inbox slot. Nothing is answered while
 * the hints are welcome; one that is not (hints off here, another
 * identity, not a Hint at all) is answered with a signed refusal and the
 * connection closes, so the sender stops trying this endpoint for a while.
 *
 * Cheapest check first: the frame cap (fetch_server.c), the strict decode
 * (PST_HINT_MAX), the recipient field, the rate per address, and only then
 * the inbox pipeline, which judges the notification exactly as a value of
 * our slot (pst_inbox_hint). */
#include <stdio.h>
#include <string.h>

#include "pst_log.h"

#include "fetch_server_int.h"

static const uint8_t zero_id[PST_HASH_BYTES];

bool pst_hint_rate_take(pst_hint_rate *r, const char *ip, uint64_t now_ms, uint32_t rate) {
    const uint64_t full = (uint64_t)rate * 1000u;
    pst_hint_bucket *b = NULL, *quiet = &r->b[0];
    for (unsigned i = 0; i < PST_HINT_RATE_PEERS; i++) {
        if (r->b[i].ip[0] != '\0' && strcmp(r->b[i].ip, ip) == 0) {
            b = &r->b[i];
            break;
        }
        /* an empty place first, else the one quiet the longest */
        if (quiet->ip[0] != '\0' && (r->b[i].ip[0] == '\0' || r->b[i].last_ms < quiet->last_ms))
            quiet = &r->b[i];
    }
    if (b == NULL) {
        /* a new address takes the place of the one quiet the longest, with a
         * full bucket: it cannot have sent more than a burst in that place */
        b = quiet;
        snprintf(b->ip, sizeof b->ip, "%s", ip);
        b->tokens_milli = full;
        b->last_ms = now_ms;
    }
    uint64_t gained = (now_ms - (b->last_ms <= now_ms ? b->last_ms : now_ms)) *
                      (uint64_t)rate; /* thousandths per ms */
    b->last_ms = now_ms;
    uint64_t t = b->tokens_milli + gained;
    b->tokens_milli = t > full ? full : t;
    if (b->tokens_milli < 1000u)
        return false;
    b->tokens_milli -= 1000u;
    return true;
}

/* Counts rejected.hint.<reason>, answers status with text and closes. */
static void refuse(fconn *c, uint64_t status, const char *reason, const char *text) {
    pst_counter_rejected(c->srv->node, "hint", reason);
    pst_log_debug("hint from %s refused (%s): %s", c->ip, reason, text);
    pst_fetch_srv_respond(c, zero_id, status, 0, 0, text, NEXT_CLOSE);
}

void pst_fetch_srv_hint(fconn *c, const uint8_t *frame, uint32_t len) {
    pst_node *n = c->srv->node;
    pst_counter_add(n, "hint.in.received", 1);
    if (c->state != S_FIRST && c->state != S_HINTS) {
        refuse(c, PST_FETCH_BAD_REQUEST, "unexpected_frame", "expected the Receipt");
        return;
    }
    if (!n->cfg.hints || n->id == NULL || n->inbox == NULL) {
        refuse(c, PST_FETCH_FORBIDDEN, "off", "this node takes no hints");
        return;
    }
    static pst_hint h; /* one frame at a time on the loop; 1.2 KiB off the stack */
    int rc = pst_hint_decode(frame, len, &h);
    if (rc != PST_OK) {
        char why[40], text[PST_FETCH_ERROR_TEXT_MAX + 1];
        snprintf(text, sizeof text, "not a valid Hint: %s", pst_strerror(rc));
        refuse(c, PST_FETCH_BAD_REQUEST, pst_err_reason(rc, why, sizeof why), text);
        return;
    }
    if (sodium_memcmp(h.recipient, n->id->sign_pk, PST_SIGN_PK_BYTES) != 0) {
        refuse(c, PST_FETCH_NOT_FOUND, "wrong_recipient", "no such identity here");
        return;
    }
    c->state = S_HINTS;
    if (!pst_hint_rate_take(&c->srv->hint_rate, c->ip, uv_now(n->loop),
                            n->cfg.hint_rate ? n->cfg.hint_rate : PST_DEFAULT_HINT_RATE)) {
        /* over its rate: dropped, the DHT copy still comes; the connection
         * stays, as an honest sender in a burst is no attacker */
        pst_counter_rejected(n, "hint", "rate");
    } else {
        switch (pst_inbox_hint(n, h.notification, h.notification_len)) {
        case PST_HINT_TAKEN:
            pst_counter_add(n, "hint.in.accepted", 1);
            break;
        case PST_HINT_SEEN:
            pst_counter_add(n, "hint.in.seen", 1);
            break;
        case PST_HINT_REFUSED:
            pst_counter_add(n, "hint.in.refused", 1);
            break;
        default:
            break;
        }
    }
    sodium_memzero(&h, sizeof h);
    if (!c->closing)
        pst_fetch_srv_read(c);
}
