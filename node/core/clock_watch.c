/* The node's side of the clock estimator (pst_clock.h): which verified
 * times become samples, the log lines about them, and `status`.
 *
 * A value refused for its time is still worth its signature check: it says
 * "this peer's clock and ours disagree", which is the one thing a person
 * needs to hear when mail or keys stop arriving. The check runs at the
 * value's own time (the verify functions then skip the window and check
 * the rest), so nothing unauthentic becomes a sample or a log line. */
#include <stdio.h>
#include <string.h>

#include "pst_core.h"
#include "pst_log.h"

#define PST_CLOCK_VERDICT_LOG_S 3600u /* the verdict again at most hourly while off */
/* A notification's sender re-puts it until it expires; the DHT keeps the
 * last put 600 s, and re-puts come PST_OUTBOX_RENOTIFY_MAX_S apart. One
 * expired within this is an honest straggler, not a clock. */
#define PST_CLOCK_STRAGGLER_S (600u + PST_OUTBOX_RENOTIFY_MAX_S + PST_CLOCK_TOLERANCE_S)

static uint64_t mono_s(void) { return uv_hrtime() / 1000000000u; }

static bool is_self(const pst_node *n, const uint8_t peer[32]) {
    return n->id != NULL && memcmp(n->id->sign_pk, peer, 32) == 0;
}

static void verdict_text(const pst_clock_report *r, char *buf, size_t cap) {
    char span[PST_CLOCK_SPAN_BUFSIZE];
    pst_clock_span(r->offset_s, span);
    switch (r->state) {
    case PST_CLOCK_AHEAD:
    case PST_CLOCK_BEHIND:
        snprintf(buf, cap,
                 "this node's clock looks %s %s %u peers (their signed times): check this "
                 "machine's clock",
                 span, r->state == PST_CLOCK_AHEAD ? "ahead of" : "behind", r->peers);
        break;
    case PST_CLOCK_OK:
        snprintf(buf, cap, "this node's clock agrees with %u peers", r->peers);
        break;
    default:
        if (r->peers < PST_CLOCK_PEERS_MIN)
            snprintf(buf, cap, "not known yet: %u of the %u peers needed have answered", r->peers,
                     PST_CLOCK_PEERS_MIN);
        else
            snprintf(buf, cap, "not known: the peers' signed times do not settle it");
        break;
    }
}

void pst_clock_note(pst_node *n, const uint8_t peer[32], uint64_t peer_time, pst_clock_kind kind,
                    bool chosen) {
    if (is_self(n, peer))
        return;
    uint64_t now = pst_now(), mono = mono_s();
    uint64_t resets = n->clock.resets;
    (void)pst_clock_sample(&n->clock, peer, peer_time, kind, chosen, now, mono);
    if (n->clock.resets != resets) {
        pst_log_info("this machine's clock was set: earlier clock samples are forgotten");
        n->clock_logged_state = PST_CLOCK_UNKNOWN;
    }
    pst_clock_report r;
    pst_clock_report_get(&n->clock, now, mono, &r);
    bool off = r.state == PST_CLOCK_AHEAD || r.state == PST_CLOCK_BEHIND;
    char text[200];
    if (off && (r.state != n->clock_logged_state ||
                mono >= n->clock_logged_mono + PST_CLOCK_VERDICT_LOG_S)) {
        verdict_text(&r, text, sizeof text);
        pst_log_warn("%s", text);
        pst_counter_add(n, "clock.off_warnings", 1);
        n->clock_logged_state = r.state;
        n->clock_logged_mono = mono;
    } else if (r.state == PST_CLOCK_OK && n->clock_logged_state != PST_CLOCK_OK &&
               n->clock_logged_state != PST_CLOCK_UNKNOWN) {
        verdict_text(&r, text, sizeof text);
        pst_log_info("%s again", text);
        n->clock_logged_state = r.state;
    }
}

bool pst_clock_refused_log(pst_node *n, const uint8_t peer[32], const char *what, uint64_t created,
                           uint64_t expires, bool future) {
    uint64_t now = pst_now(), count;
    if (!pst_clock_refused(&n->clock, peer, now, mono_s(), &count))
        return false;
    char fp[PST_FINGERPRINT_STRLEN + 1], span[PST_CLOCK_SPAN_BUFSIZE], more[80] = "";
    pst_fingerprint_format(peer, fp);
    if (count > 1)
        snprintf(more, sizeof more, " (%llu refused since the last such line)",
                 (unsigned long long)count);
    if (future) {
        pst_clock_span(created > now ? created - now : 0, span);
        pst_log_warn("%s from %s refused: created %s in the future by this node's clock; its "
                     "clock is ahead or this node's is behind%s",
                     what, fp, span, more);
    } else {
        pst_clock_span(now > expires ? now - expires : 0, span);
        pst_log_warn("%s from %s refused: it expired %s ago by this node's clock; its clock is "
                     "behind or this node's is ahead%s",
                     what, fp, span, more);
    }
    return true;
}

/* What the trust list says of peer. */
static void origin_of(pst_node *n, const uint8_t peer[32], pst_clock_origin *o) {
    memset(o, 0, sizeof *o);
    pst_store_tier tier;
    if (pst_store_contact_get(n->store, peer, &tier, NULL, 0) == PST_OK) {
        o->blocked = tier == PST_STORE_TIER_BLOCKED;
        o->contact = !o->blocked;
    }
}

/* Samples a verified time from src when pst_clock_classify says so. */
static bool note_from(pst_node *n, pst_clock_source src, const pst_clock_origin *o,
                      const uint8_t peer[32], uint64_t peer_time) {
    pst_clock_kind kind;
    bool chosen;
    if (!pst_clock_classify(src, o, &kind, &chosen))
        return false;
    pst_clock_note(n, peer, peer_time, kind, chosen);
    return true;
}

void pst_clock_keyrec(pst_node *n, const pst_keyrec *kr, const uint8_t pk[32], bool asked, int rc) {
    if (rc != PST_OK && rc != PST_E_EXPIRED && rc != PST_E_NOTYET)
        return;
    pst_clock_origin o;
    origin_of(n, pk, &o);
    o.asked = asked;
    o.refused = rc != PST_OK;
    (void)note_from(n, PST_CLOCK_FROM_KEYREC, &o, pk, kr->created);
    if (rc == PST_E_NOTYET)
        pst_clock_refused_log(n, pk, "key record", kr->created, kr->expires, true);
}

const char *pst_clock_notification(pst_node *n, const pst_notify_inner *in, int rc) {
    if (rc != PST_E_NOTYET && rc != PST_E_EXPIRED)
        return NULL;
    if (pst_notify_inner_verify(in, in->created) != PST_OK)
        return "signature";
    pst_clock_origin o;
    origin_of(n, in->signer, &o);
    o.refused = true;
    (void)note_from(n, PST_CLOCK_FROM_NOTIFY, &o, in->signer, in->created);
    if (rc == PST_E_NOTYET) {
        /* signed with a time still ahead of ours: no replay makes that */
        if (pst_clock_refused_log(n, in->signer, "notification", in->created, in->expires, true) &&
            o.contact && n->clock_probe) /* a contact's node hears of it too */
            n->clock_probe(n, in);
        return "notyet";
    }
    /* Expired: an old notification put again by anyone looks the same as a
     * sender whose clock is behind, so no line says its clock is; a
     * contact's node is asked for its time (clock_probe.c), and its signed
     * answer to our own request is what gets logged. */
    uint64_t count;
    if (pst_now() > in->expires + PST_CLOCK_STRAGGLER_S && o.contact && n->clock_probe &&
        pst_clock_refused(&n->clock, in->signer, pst_now(), mono_s(), &count))
        n->clock_probe(n, in);
    return "expired";
}

bool pst_clock_fetch_response(pst_node *n, const pst_fetch_response *r,
                              const pst_fetch_request *req, const uint8_t sender[32], int rc) {
    if (memcmp(r->signer, sender, 32) != 0)
        return false;
    if (rc != PST_OK &&
        ((rc != PST_E_NOTYET && rc != PST_E_EXPIRED) ||
         pst_fetch_response_verify(r, r->created, PST_FETCH_SKEW_DEFAULT) != PST_OK))
        return false;
    pst_clock_origin o;
    origin_of(n, r->signer, &o);
    o.refused = rc != PST_OK;
    /* a response names no nonce: answering our msg_id and offset on the
     * connection that carried our request is the best it can show */
    o.fresh = req != NULL && pst_fetch_response_matches(r, req, sender) == PST_OK;
    bool sampled = note_from(n, PST_CLOCK_FROM_RESPONSE, &o, r->signer, r->created);
    if (rc == PST_OK)
        return false;
    pst_counter_add(n, "fetch.clock_skew", 1);
    if (sampled)
        pst_clock_refused_log(n, r->signer, "fetch response", r->created, r->expires,
                              rc == PST_E_NOTYET);
    return true;
}

/* A FetchRequest or a Receipt: signer, a time, and whether the signer is a
 * recipient of msg_id here. rc as the verify function returned it. */
static bool from_recipient(pst_node *n, pst_clock_source src, const uint8_t signer[32],
                           const uint8_t msg_id[PST_HASH_BYTES], uint64_t created, uint64_t expires,
                           const char *what, int rc) {
    pst_clock_origin o;
    origin_of(n, signer, &o);
    pst_store_out_state state;
    o.recipient = pst_store_outbox_rcpt_state(n->store, msg_id, signer, &state) == PST_OK;
    o.refused = rc != PST_OK;
    o.fresh = rc == PST_OK; /* the caller checked the nonce first */
    (void)note_from(n, src, &o, signer, created);
    if (rc == PST_OK)
        return false;
    pst_counter_add(n, "fetch.clock_skew", 1);
    if (o.recipient) /* strangers get no log line */
        pst_clock_refused_log(n, signer, what, created, expires, rc == PST_E_NOTYET);
    return true;
}

bool pst_clock_fetch_request(pst_node *n, const pst_fetch_request *req, int rc) {
    if (rc != PST_OK && rc != PST_E_NOTYET && rc != PST_E_EXPIRED)
        return false;
    if (rc != PST_OK &&
        pst_fetch_request_verify(req, req->created, PST_FETCH_SKEW_DEFAULT) != PST_OK)
        return false;
    return from_recipient(n, PST_CLOCK_FROM_REQUEST, req->signer, req->msg_id, req->created,
                          req->expires, "fetch request", rc);
}

bool pst_clock_receipt(pst_node *n, const pst_receipt *rec, int rc) {
    if (rc != PST_OK && rc != PST_E_NOTYET)
        return false;
    if (rc != PST_OK && pst_receipt_verify(rec, rec->created) != PST_OK)
        return false;
    return from_recipient(n, PST_CLOCK_FROM_RECEIPT, rec->signer, rec->msg_id, rec->created, 0,
                          "receipt", rc);
}

void pst_clock_describe(pst_node *n, pst_value *body) {
    uint64_t now = pst_now(), mono = mono_s();
    pst_clock_report r;
    pst_clock_report_get(&n->clock, now, mono, &r);
    pst_value *c = pst_value_add_map(body, "clock");
    char text[200], span[PST_CLOCK_SPAN_BUFSIZE];
    verdict_text(&r, text, sizeof text);
    pst_value_add_str(c, "state", pst_clock_state_name(r.state));
    if (r.state == PST_CLOCK_AHEAD || r.state == PST_CLOCK_BEHIND)
        pst_value_add_uint(c, "off_by_s", r.offset_s);
    pst_value_add_uint(c, "peers", r.peers);
    pst_value_add_uint(c, "tolerance_s", PST_CLOCK_TOLERANCE_S);
    pst_value_add_str(c, "summary", text);
    pst_value *arr = pst_value_add_array(c, "peers_disagreeing");
    const pst_clock_peer *p;
    for (unsigned i = 0; (p = pst_clock_peer_at(&n->clock, i, now, mono)) != NULL; i++) {
        uint64_t by;
        int dir = pst_clock_peer_disagrees(p, &by);
        if (dir == 0)
            continue;
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(p->peer, fp);
        pst_clock_span(by, span);
        pst_value *e = pst_value_add_map(arr, NULL);
        pst_value_add_str(e, "fingerprint", fp);
        pst_value_add_str(e, "its_clock", dir > 0 ? "ahead" : "behind");
        pst_value_add_uint(e, "by_at_least_s", by);
        pst_value_add_uint(e, "refused", p->refused);
        pst_value_add_uint(e, "last_seen", p->at);
        snprintf(text, sizeof text, "%s's clock is at least %s %s this node's%s", fp, span,
                 dir > 0 ? "ahead of" : "behind", p->refused > 0 ? ": its values are refused" : "");
        pst_value_add_str(e, "summary", text);
    }
}
