/* node/core/clock.c: what peers' signed times say about this node's clock. */
#include <criterion/criterion.h>
#include <string.h>

#include "pst_clock.h"

#define NOW 1800000000ull
#define MONO 5000ull
#define DAY 86400ll

static pst_clock c;

static void setup(void) { pst_clock_init(&c); }

TestSuite(clock, .init = setup);

static const uint8_t *peer(unsigned i) {
    static uint8_t pk[256][32];
    memset(pk[i], 0, 32);
    pk[i][0] = (uint8_t)i;
    pk[i][31] = 0x5a;
    return pk[i];
}

/* peer i's clock reads ours + off */
static bool sample(unsigned i, int64_t off, pst_clock_kind kind, bool chosen) {
    return pst_clock_sample(&c, peer(i), (uint64_t)((int64_t)NOW + off), kind, chosen, NOW, MONO);
}

static pst_clock_report report(void) {
    pst_clock_report r;
    pst_clock_report_get(&c, NOW, MONO, &r);
    return r;
}

/* Peers 1..n each sampled once at off (of kind, all chosen); the report. */
static pst_clock_report all_peers_at(unsigned n, int64_t off, pst_clock_kind kind) {
    for (unsigned i = 1; i <= n; i++)
        sample(i, off, kind, true);
    return report();
}

Test(clock, empty_is_unknown) {
    pst_clock_report r = report();
    cr_assert_eq(r.state, PST_CLOCK_UNKNOWN);
    cr_assert_eq(r.peers, 0);
    cr_assert_eq(r.disagree, 0);
    cr_assert_null(pst_clock_peer_at(&c, 0, NOW, MONO));
}

Test(clock, three_peers_agree_ok) {
    cr_assert_not(sample(1, 2, PST_CLOCK_EXACT, true));
    cr_assert_not(sample(2, -1, PST_CLOCK_EXACT, true));
    cr_assert_not(sample(3, 0, PST_CLOCK_EXACT, true));
    pst_clock_report r = report();
    cr_assert_eq(r.state, PST_CLOCK_OK);
    cr_assert_eq(r.peers, 3);
    cr_assert_eq(r.disagree, 0);
}

Test(clock, behind_from_exact_samples) {
    for (unsigned i = 1; i <= 3; i++)
        cr_assert(sample(i, 3 * DAY + (int64_t)i, PST_CLOCK_EXACT, true));
    pst_clock_report r = report();
    cr_assert_eq(r.state, PST_CLOCK_BEHIND);
    cr_assert_eq(r.offset_s, 3 * DAY + 2, "the middle peer: %llu", (unsigned long long)r.offset_s);
    cr_assert_eq(r.disagree, 3);
}

Test(clock, behind_from_key_records_lower_bounds) {
    /* key records from the future: each peer's clock is at least there */
    pst_clock_report r = all_peers_at(3, 3 * DAY, PST_CLOCK_AT_LEAST);
    cr_assert_eq(r.state, PST_CLOCK_BEHIND);
    cr_assert_eq(r.offset_s, 3 * DAY);
}

Test(clock, ahead_from_exact_samples) {
    pst_clock_report r = all_peers_at(4, -3 * DAY, PST_CLOCK_EXACT);
    cr_assert_eq(r.state, PST_CLOCK_AHEAD);
    cr_assert_eq(r.offset_s, 3 * DAY);
}

Test(clock, old_records_alone_say_nothing) {
    /* records signed a while ago only bound the peers from below: a node
     * three days ahead cannot tell from them */
    cr_assert_eq(all_peers_at(5, -3 * DAY, PST_CLOCK_AT_LEAST).state, PST_CLOCK_UNKNOWN);
}

Test(clock, one_liar_cannot_move_the_verdict) {
    sample(1, 0, PST_CLOCK_EXACT, true);
    sample(2, 5, PST_CLOCK_EXACT, true);
    sample(3, 30 * DAY, PST_CLOCK_EXACT, true); /* lies */
    pst_clock_report r = report();
    cr_assert_eq(r.state, PST_CLOCK_OK);
    cr_assert_eq(r.disagree, 1, "the liar is still shown");
    sample(4, -30 * DAY, PST_CLOCK_EXACT, true); /* lies the other way */
    sample(5, 1, PST_CLOCK_EXACT, true);
    cr_assert_eq(report().state, PST_CLOCK_OK);
    /* ... and a lone honest peer cannot either: two of three say behind */
    pst_clock_init(&c);
    sample(1, 2 * DAY, PST_CLOCK_EXACT, true);
    sample(2, 2 * DAY, PST_CLOCK_EXACT, true);
    sample(3, 0, PST_CLOCK_EXACT, true);
    cr_assert_eq(report().state, PST_CLOCK_BEHIND);
}

Test(clock, too_few_peers_is_unknown_but_shows_them) {
    cr_assert(sample(1, 3 * DAY, PST_CLOCK_AT_LEAST, false));
    cr_assert(sample(2, 3 * DAY, PST_CLOCK_EXACT, true));
    pst_clock_report r = report();
    cr_assert_eq(r.state, PST_CLOCK_UNKNOWN);
    cr_assert_eq(r.peers, 1);
    cr_assert_eq(r.disagree, 2);
    const pst_clock_peer *p = pst_clock_peer_at(&c, 0, NOW, MONO);
    cr_assert_not_null(p);
    uint64_t by;
    cr_assert_eq(pst_clock_peer_disagrees(p, &by), 1);
    cr_assert_eq(by, 3 * DAY);
}

Test(clock, unchosen_peers_neither_vote_nor_evict) {
    /* anyone can put a notification: strangers never decide the verdict */
    for (unsigned i = 1; i <= 10; i++)
        sample(i, 3 * DAY, PST_CLOCK_AT_LEAST, false);
    cr_assert_eq(report().state, PST_CLOCK_UNKNOWN);
    cr_assert_eq(report().peers, 0);
    pst_clock_init(&c);
    for (unsigned i = 1; i <= 3; i++)
        sample(i, 0, PST_CLOCK_EXACT, true);
    for (unsigned i = 10; i < 10 + 3 * PST_CLOCK_PEERS_MAX; i++)
        sample(i, 3 * DAY, PST_CLOCK_EXACT, false);
    pst_clock_report r = report();
    cr_assert_eq(r.peers, 3, "a flood of strangers evicted chosen peers");
    cr_assert_eq(r.state, PST_CLOCK_OK);
    cr_assert_eq(r.disagree, PST_CLOCK_PEERS_MAX - 3);
}

Test(clock, chosen_peers_replace_the_oldest_when_full) {
    for (unsigned i = 0; i < PST_CLOCK_PEERS_MAX; i++)
        cr_assert_not(pst_clock_sample(&c, peer(i), NOW, PST_CLOCK_EXACT, true, NOW + i, MONO + i));
    cr_assert(pst_clock_sample(&c, peer(200), NOW + PST_CLOCK_PEERS_MAX + 3 * DAY, PST_CLOCK_EXACT,
                               true, NOW + PST_CLOCK_PEERS_MAX, MONO + PST_CLOCK_PEERS_MAX));
    pst_clock_report r;
    pst_clock_report_get(&c, NOW + PST_CLOCK_PEERS_MAX, MONO + PST_CLOCK_PEERS_MAX, &r);
    cr_assert_eq(r.peers, PST_CLOCK_PEERS_MAX);
    cr_assert_eq(r.disagree, 1);
}

Test(clock, exact_refines_and_later_bound_overrides) {
    sample(1, 100, PST_CLOCK_AT_LEAST, true);
    sample(1, 150, PST_CLOCK_EXACT, true);
    const pst_clock_peer *p = pst_clock_peer_at(&c, 0, NOW, MONO);
    cr_assert_eq(p->lo, 150);
    cr_assert_eq(p->hi, 150);
    sample(1, 120, PST_CLOCK_AT_LEAST, true); /* an older record: consistent */
    cr_assert_eq(p->lo, 150);
    cr_assert_eq(p->hi, 150);
    sample(1, 2 * DAY, PST_CLOCK_AT_LEAST, true); /* its clock was set forward */
    cr_assert_eq(p->lo, 2 * DAY);
    cr_assert_eq(p->hi, INT64_MAX);
}

Test(clock, setting_this_clock_forgets_the_samples) {
    for (unsigned i = 1; i <= 3; i++)
        sample(i, -3 * DAY, PST_CLOCK_EXACT, true);
    cr_assert_eq(report().state, PST_CLOCK_AHEAD);
    /* a little drift between the clocks is no setting */
    cr_assert(pst_clock_sample(&c, peer(1), NOW + 10 - 3 * DAY, PST_CLOCK_EXACT, true, NOW + 10,
                               MONO + 12));
    cr_assert_eq(c.resets, 0);
    /* the wall clock jumps back three days while the monotonic one goes on */
    uint64_t now2 = NOW - 3 * DAY + 20;
    cr_assert_not(pst_clock_sample(&c, peer(1), now2, PST_CLOCK_EXACT, true, now2, MONO + 20));
    cr_assert_eq(c.resets, 1);
    pst_clock_report r;
    pst_clock_report_get(&c, now2, MONO + 20, &r);
    cr_assert_eq(r.peers, 1, "samples of the old setting are gone");
    cr_assert_eq(r.state, PST_CLOCK_UNKNOWN);
}

Test(clock, samples_expire) {
    for (unsigned i = 1; i <= 3; i++)
        sample(i, 3 * DAY, PST_CLOCK_EXACT, true);
    pst_clock_report r;
    pst_clock_report_get(&c, NOW + PST_CLOCK_SAMPLE_TTL_S - 1, MONO + PST_CLOCK_SAMPLE_TTL_S - 1,
                         &r);
    cr_assert_eq(r.state, PST_CLOCK_BEHIND);
    pst_clock_report_get(&c, NOW + PST_CLOCK_SAMPLE_TTL_S, MONO + PST_CLOCK_SAMPLE_TTL_S, &r);
    cr_assert_eq(r.state, PST_CLOCK_UNKNOWN);
    cr_assert_eq(r.peers, 0);
}

Test(clock, absurd_times_are_ignored) {
    cr_assert_not(sample(1, 400 * DAY, PST_CLOCK_EXACT, true));
    cr_assert_not(pst_clock_sample(&c, peer(2), UINT64_MAX, PST_CLOCK_EXACT, true, NOW, MONO));
    cr_assert_not(pst_clock_sample(&c, peer(3), 1ull << 63, PST_CLOCK_EXACT, true, NOW, MONO));
    cr_assert_not(pst_clock_sample(&c, peer(4), NOW, PST_CLOCK_EXACT, true, UINT64_MAX, MONO));
    cr_assert_null(pst_clock_peer_at(&c, 0, NOW, MONO));
}

Test(clock, refusals_log_once_per_interval_per_peer) {
    uint64_t count;
    cr_assert_not(pst_clock_refused(&c, peer(1), NOW, MONO, &count), "unknown peer");
    sample(1, 3 * DAY, PST_CLOCK_AT_LEAST, false);
    sample(2, 3 * DAY, PST_CLOCK_AT_LEAST, false);
    cr_assert(pst_clock_refused(&c, peer(1), NOW, MONO, &count));
    cr_assert_eq(count, 1);
    for (int i = 0; i < 50; i++)
        cr_assert_not(pst_clock_refused(&c, peer(1), NOW + 1, MONO + 1, &count));
    cr_assert(pst_clock_refused(&c, peer(2), NOW + 1, MONO + 1, &count), "each peer its own");
    cr_assert_eq(count, 1);
    cr_assert(pst_clock_refused(&c, peer(1), NOW + PST_CLOCK_LOG_INTERVAL_S,
                                MONO + PST_CLOCK_LOG_INTERVAL_S, &count));
    cr_assert_eq(count, 51, "the line covers every refusal since the last one");
    cr_assert_eq(pst_clock_peer_at(&c, 0, NOW, MONO)->refused, 52);
}

Test(clock, spans) {
    char b[PST_CLOCK_SPAN_BUFSIZE];
    pst_clock_span(12, b);
    cr_assert_str_eq(b, "12s");
    pst_clock_span(250, b);
    cr_assert_str_eq(b, "4m 10s");
    pst_clock_span(7500, b);
    cr_assert_str_eq(b, "2h 5m");
    pst_clock_span(3 * 86400 + 3600, b);
    cr_assert_str_eq(b, "3d 1h");
    pst_clock_span(3 * 86400 - 1, b);
    cr_assert_str_eq(b, "3d 0h", "rounded, not cut: %s", b);
    pst_clock_span(86400 - 60, b);
    cr_assert_str_eq(b, "1d 0h");
    pst_clock_span(3600 - 10, b);
    cr_assert_str_eq(b, "1h 0m");
    cr_assert_str_eq(pst_clock_state_name(PST_CLOCK_BEHIND), "behind");
}

/* Item: the verdict forgets a clock that was set even before a new sample. */
Test(clock, setting_this_clock_shows_at_once) {
    for (unsigned i = 1; i <= 3; i++)
        sample(i, 3600, PST_CLOCK_EXACT, true);
    cr_assert_eq(report().state, PST_CLOCK_BEHIND);
    /* the user sets the clock an hour forward; no sample since */
    pst_clock_report r;
    pst_clock_report_get(&c, NOW + 3600 + 5, MONO + 5, &r);
    cr_assert_eq(r.state, PST_CLOCK_UNKNOWN, "still says behind after the clock was set");
    cr_assert_eq(r.peers, 0);
    cr_assert_null(pst_clock_peer_at(&c, 0, NOW + 3600 + 5, MONO + 5));
    /* without a setting, the same wait changes nothing */
    pst_clock_report_get(&c, NOW + 5, MONO + 5, &r);
    cr_assert_eq(r.state, PST_CLOCK_BEHIND);
}

static bool classify(pst_clock_source src, pst_clock_origin o, pst_clock_kind *kind) {
    bool chosen;
    cr_assert(pst_clock_classify(src, &o, kind, &chosen));
    return chosen;
}

/* Two throw-away keys with records created 3 days ahead (a stamp each got
 * them into our inbox, so the node looked them up) against one honest
 * chosen peer: the verdict must not move. */
Test(clock, stamped_strangers_do_not_vote) {
    pst_clock_kind kind;
    pst_clock_origin stranger = {0}, contact = {.contact = true}, asked = {.asked = true};
    pst_clock_origin blocked = {.contact = false, .blocked = true, .asked = true};
    cr_assert_not(classify(PST_CLOCK_FROM_KEYREC, stranger, &kind));
    cr_assert_eq(kind, PST_CLOCK_AT_LEAST);
    cr_assert(classify(PST_CLOCK_FROM_KEYREC, contact, &kind));
    cr_assert(classify(PST_CLOCK_FROM_KEYREC, asked, &kind));
    cr_assert_not(classify(PST_CLOCK_FROM_KEYREC, blocked, &kind), "a blocked key voted");
    cr_assert_not(classify(PST_CLOCK_FROM_NOTIFY, blocked, &kind));
    /* a sender we fetch from is not chosen for that alone */
    pst_clock_origin fetched = {.fresh = true};
    cr_assert_not(classify(PST_CLOCK_FROM_RESPONSE, fetched, &kind));

    bool chosen;
    sample(1, 0, PST_CLOCK_EXACT, true);
    sample(2, 10, PST_CLOCK_EXACT, true);
    sample(3, -10, PST_CLOCK_EXACT, true);
    cr_assert_eq(report().state, PST_CLOCK_OK);
    for (unsigned i = 10; i < 12; i++) {
        cr_assert(pst_clock_classify(PST_CLOCK_FROM_KEYREC, &stranger, &kind, &chosen));
        sample(i, 3 * DAY, kind, chosen);
        cr_assert(pst_clock_classify(PST_CLOCK_FROM_RESPONSE, &fetched, &kind, &chosen));
        sample(i, 3 * DAY, kind, chosen);
    }
    pst_clock_report r = report();
    cr_assert_eq(r.state, PST_CLOCK_OK, "strangers moved the verdict");
    cr_assert_eq(r.peers, 3);
    cr_assert_eq(r.disagree, 2);
}

/* Replays: a receipt never expires, a request refused for its time has a
 * forgotten nonce, a response that does not answer our request proves
 * nothing fresh. Replayed days later they must not make this clock look
 * ahead. */
Test(clock, replayed_exchanges_do_not_move_the_verdict) {
    pst_clock_kind kind;
    bool chosen;
    pst_clock_origin receipt = {.recipient = true, .fresh = true};
    cr_assert(pst_clock_classify(PST_CLOCK_FROM_RECEIPT, &receipt, &kind, &chosen));
    cr_assert_eq(kind, PST_CLOCK_AT_LEAST, "a receipt taken as exact");
    cr_assert(chosen);
    pst_clock_origin old_request = {.recipient = true, .refused = true};
    cr_assert(pst_clock_classify(PST_CLOCK_FROM_REQUEST, &old_request, &kind, &chosen),
              "kept per peer");
    cr_assert_not(chosen, "a request refused for its time voted");
    pst_clock_origin seen_request = {.recipient = true};
    cr_assert_not(pst_clock_classify(PST_CLOCK_FROM_REQUEST, &seen_request, &kind, &chosen));
    pst_clock_origin stale_response = {.contact = true};
    cr_assert_not(pst_clock_classify(PST_CLOCK_FROM_RESPONSE, &stale_response, &kind, &chosen));
    pst_clock_origin answer = {.contact = true, .fresh = true};
    cr_assert(pst_clock_classify(PST_CLOCK_FROM_RESPONSE, &answer, &kind, &chosen));
    cr_assert(chosen);
    cr_assert_eq(kind, PST_CLOCK_EXACT);

    /* one honest recipient in time; two others' receipts and requests
     * replayed three days later */
    sample(1, 0, PST_CLOCK_EXACT, true);
    sample(2, 5, PST_CLOCK_EXACT, true);
    sample(3, -5, PST_CLOCK_EXACT, true);
    for (unsigned i = 2; i <= 3; i++) {
        cr_assert(pst_clock_classify(PST_CLOCK_FROM_RECEIPT, &receipt, &kind, &chosen));
        sample(i, -3 * DAY, kind, chosen);
        cr_assert(pst_clock_classify(PST_CLOCK_FROM_REQUEST, &old_request, &kind, &chosen));
        sample(i + 10, -3 * DAY, kind, chosen);
    }
    cr_assert_eq(report().state, PST_CLOCK_OK, "replays moved the verdict");
}
