/* The clock estimator (pst_clock.h): per-peer intervals of (peer - ours),
 * majority bounds over the chosen peers. Pure, for unit tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_clock.h"
#include "pst_types.h"

#define YEAR_S (366ll * 86400ll)

void pst_clock_init(pst_clock *c) { memset(c, 0, sizeof *c); }

static bool current(const pst_clock_peer *p, uint64_t now) {
    return p->used && p->at + PST_CLOCK_SAMPLE_TTL_S > now && p->at <= now + PST_CLOCK_SAMPLE_TTL_S;
}

/* When wall - mono moved, this node's clock was set: the samples measured
 * the old setting. */
static bool base_moved(const pst_clock *c, uint64_t now, uint64_t mono) {
    if (!c->have_base || now > (uint64_t)INT64_MAX / 2 || mono > (uint64_t)INT64_MAX / 2)
        return false;
    int64_t d = (int64_t)now - (int64_t)mono - c->base;
    return d > PST_CLOCK_TOLERANCE_S || d < -PST_CLOCK_TOLERANCE_S;
}

static void check_base(pst_clock *c, uint64_t now, uint64_t mono) {
    if (base_moved(c, now, mono)) {
        memset(c->peers, 0, sizeof c->peers);
        c->resets++;
    }
    c->base = (int64_t)now - (int64_t)mono;
    c->have_base = true;
}

bool pst_clock_classify(pst_clock_source src, const pst_clock_origin *o, pst_clock_kind *kind,
                        bool *chosen) {
    *kind = PST_CLOCK_EXACT;
    *chosen = false;
    bool voter = !o->blocked && (o->contact || o->recipient || o->asked);
    switch (src) {
    case PST_CLOCK_FROM_REQUEST:
        if (o->refused)
            return true; /* shown and logged per peer, never a vote */
        if (!o->fresh)
            return false;
        *chosen = voter;
        return true;
    case PST_CLOCK_FROM_RESPONSE:
        if (!o->fresh)
            return false;
        *chosen = voter;
        return true;
    case PST_CLOCK_FROM_KEYREC:
    case PST_CLOCK_FROM_NOTIFY:
    case PST_CLOCK_FROM_RECEIPT:
        *kind = PST_CLOCK_AT_LEAST;
        *chosen = voter;
        return true;
    }
    *kind = PST_CLOCK_EXACT;
    return false;
}

static pst_clock_peer *find(pst_clock *c, const uint8_t peer[32]) {
    for (unsigned i = 0; i < PST_CLOCK_PEERS_MAX; i++)
        if (c->peers[i].used && memcmp(c->peers[i].peer, peer, 32) == 0)
            return &c->peers[i];
    return NULL;
}

/* A free or expired entry, else the oldest one not chosen, else (only for a
 * chosen newcomer) the oldest chosen one; NULL when none may go. */
static pst_clock_peer *make_room(pst_clock *c, bool chosen, uint64_t now) {
    pst_clock_peer *old_free = NULL, *old_chosen = NULL;
    for (unsigned i = 0; i < PST_CLOCK_PEERS_MAX; i++) {
        pst_clock_peer *p = &c->peers[i];
        if (!current(p, now))
            return p;
        pst_clock_peer **slot = p->chosen ? &old_chosen : &old_free;
        if (*slot == NULL || p->at < (*slot)->at)
            *slot = p;
    }
    if (old_free != NULL)
        return old_free;
    return chosen ? old_chosen : NULL;
}

bool pst_clock_sample(pst_clock *c, const uint8_t peer[32], uint64_t peer_time, pst_clock_kind kind,
                      bool chosen, uint64_t now, uint64_t mono) {
    if (peer_time > (uint64_t)INT64_MAX / 2 || now > (uint64_t)INT64_MAX / 2 ||
        mono > (uint64_t)INT64_MAX / 2)
        return false;
    check_base(c, now, mono);
    int64_t s = (int64_t)peer_time - (int64_t)now;
    if (s > YEAR_S || s < -YEAR_S)
        return false;
    pst_clock_peer *p = find(c, peer);
    if (p != NULL && !current(p, now)) {
        uint64_t refused = p->refused, unlogged = p->unlogged, logged = p->logged_at;
        memset(p, 0, sizeof *p);
        memcpy(p->peer, peer, 32);
        p->used = true;
        p->refused = refused;
        p->unlogged = unlogged;
        p->logged_at = logged;
        p->lo = INT64_MIN;
        p->hi = INT64_MAX;
    }
    if (p == NULL) {
        p = make_room(c, chosen, now);
        if (p == NULL)
            return false;
        memset(p, 0, sizeof *p);
        memcpy(p->peer, peer, 32);
        p->used = true;
        p->lo = INT64_MIN;
        p->hi = INT64_MAX;
    }
    p->chosen |= chosen;
    p->at = now;
    if (kind == PST_CLOCK_EXACT) {
        p->lo = p->hi = s; /* the freshest word of the peer's clock wins */
    } else if (p->hi != INT64_MAX && s > p->hi) {
        p->lo = s; /* later than its exact sample allows: its clock was set */
        p->hi = INT64_MAX;
    } else if (s > p->lo) {
        p->lo = s;
    }
    uint64_t by;
    return pst_clock_peer_disagrees(p, &by) != 0;
}

bool pst_clock_refused(pst_clock *c, const uint8_t peer[32], uint64_t now, uint64_t mono,
                       uint64_t *count) {
    (void)now;
    *count = 0;
    pst_clock_peer *p = find(c, peer);
    if (p == NULL)
        return false;
    p->refused++;
    p->unlogged++;
    if (p->logged_at != 0 && mono + 1 < p->logged_at + PST_CLOCK_LOG_INTERVAL_S)
        return false;
    p->logged_at = mono + 1;
    *count = p->unlogged;
    p->unlogged = 0;
    return true;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void pst_clock_report_get(const pst_clock *c, uint64_t now, uint64_t mono, pst_clock_report *out) {
    memset(out, 0, sizeof *out);
    if (base_moved(c, now, mono))
        return; /* PST_CLOCK_UNKNOWN, no peers: what was measured is gone */
    int64_t lo[PST_CLOCK_PEERS_MAX], hi[PST_CLOCK_PEERS_MAX];
    unsigned n = 0;
    for (unsigned i = 0; i < PST_CLOCK_PEERS_MAX; i++) {
        const pst_clock_peer *p = &c->peers[i];
        if (!current(p, now))
            continue;
        uint64_t by;
        if (pst_clock_peer_disagrees(p, &by) != 0)
            out->disagree++;
        if (!p->chosen)
            continue;
        lo[n] = p->lo;
        hi[n] = p->hi;
        n++;
    }
    out->peers = n;
    out->state = PST_CLOCK_UNKNOWN;
    if (n < PST_CLOCK_PEERS_MIN)
        return;
    qsort(lo, n, sizeof lo[0], cmp_i64);
    qsort(hi, n, sizeof hi[0], cmp_i64);
    /* more than half of the peers have lo >= L and hi <= H */
    int64_t L = lo[(n - 1) / 2], H = hi[n / 2];
    out->lo = L;
    out->hi = H;
    if (L > PST_CLOCK_TOLERANCE_S) {
        out->state = PST_CLOCK_BEHIND;
        out->offset_s = (uint64_t)L;
    } else if (H < -PST_CLOCK_TOLERANCE_S) {
        out->state = PST_CLOCK_AHEAD;
        out->offset_s = (uint64_t)(-H);
    } else if (L >= -PST_CLOCK_TOLERANCE_S && H <= PST_CLOCK_TOLERANCE_S) {
        out->state = PST_CLOCK_OK;
    }
}

const pst_clock_peer *pst_clock_peer_at(const pst_clock *c, unsigned i, uint64_t now,
                                        uint64_t mono) {
    if (base_moved(c, now, mono))
        return NULL;
    for (unsigned k = 0; k < PST_CLOCK_PEERS_MAX; k++) {
        if (!current(&c->peers[k], now))
            continue;
        if (i-- == 0)
            return &c->peers[k];
    }
    return NULL;
}

int pst_clock_peer_disagrees(const pst_clock_peer *p, uint64_t *by) {
    *by = 0;
    if (p->lo > PST_CLOCK_TOLERANCE_S) {
        *by = (uint64_t)p->lo;
        return 1;
    }
    if (p->hi < -PST_CLOCK_TOLERANCE_S) {
        *by = (uint64_t)(-p->hi);
        return -1;
    }
    return 0;
}

void pst_clock_span(uint64_t s, char buf[PST_CLOCK_SPAN_BUFSIZE]) {
    /* rounded to the last unit shown: samples are a few seconds apart, and
     * "2d 23h" for a clock three days off would mislead */
    unsigned long long v = (unsigned long long)s;
    if (v >= 86400 - 1800) {
        unsigned long long h = (v + 1800) / 3600;
        snprintf(buf, PST_CLOCK_SPAN_BUFSIZE, "%llud %lluh", h / 24, h % 24);
    } else if (v >= 3600 - 30) {
        unsigned long long m = (v + 30) / 60;
        snprintf(buf, PST_CLOCK_SPAN_BUFSIZE, "%lluh %llum", m / 60, m % 60);
    } else if (v >= 60)
        snprintf(buf, PST_CLOCK_SPAN_BUFSIZE, "%llum %llus", v / 60, v % 60);
    else
        snprintf(buf, PST_CLOCK_SPAN_BUFSIZE, "%llus", v);
}

const char *pst_clock_state_name(pst_clock_state s) {
    static const char *const names[] = {
        [PST_CLOCK_OK] = "ok",
        [PST_CLOCK_AHEAD] = "ahead",
        [PST_CLOCK_BEHIND] = "behind",
    };
    return PST_NAME_OF(names, s, "unknown");
}
