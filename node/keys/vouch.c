/* The vouches of a key: reading its vouch slot (for `key get`, and for the
 * tier of a sender in vouch_check.c), sharing one read among everyone who
 * asks meanwhile, and remembering the contacts' vouches found.
 *
 * Vouch slots are open to everyone, so a flood of endorsements (as the SKS
 * keyservers suffered in 2019) must cost little: every value is decoded
 * (microseconds, no allocation), only endorsements signed by one of my
 * contacts are always verified, and at most PST_VOUCH_STRANGERS_MAX others
 * are verified for display. Nothing from a vouch slot is ever added to a key
 * record, so no flood can grow a record or slow a key lookup.
 *
 * OpenDHT reads a slot of hundreds of values one value at a time (~1 s on
 * loopback for 430): a reader that must answer a person (`key get`) gets
 * what came within its wait, plus the contacts' vouches remembered from the
 * last reads of that key (the ones that matter to us), while the read goes
 * on and refreshes that memory. */
#include <stdlib.h>
#include <string.h>

#include "pst_keys.h"
#include "pst_record.h"
#include "trust_int.h"

#define PST_VOUCH_STRANGERS_MAX 16u
#define PST_VOUCH_SIGNERS_MAX 64u

#define PST_VOUCH_WAITERS 8u /* callers sharing one read of a slot */
/* A slot that held more values than this at its last complete read is
 * flooded: while OpenDHT reads it (one value at a time) the node's other
 * gets wait behind it, so for display it is read again at most every
 * PST_VOUCH_FLOODED_REREAD_MS; `key get` meanwhile answers from memory. */
#define PST_VOUCH_FLOODED 64u
#define PST_VOUCH_FLOODED_REREAD_MS 10000u

typedef struct {
    pst_vouches_cb cb; /* NULL: free or answered */
    void *user;
    uint64_t due_ms; /* uv_now() to answer with what came so far; UINT64_MAX: at the end */
} vouch_waiter;

/* One read of a vouch slot; everyone asking for the same slot meanwhile
 * shares it, so a flooded slot is read once at a time. */
struct vouch_get {
    vouch_get *next; /* the node's reads in flight */
    pst_node *node;
    uint8_t subject[32];
    vouch_waiter waiters[PST_VOUCH_WAITERS];
    pst_vouch vouches[PST_VOUCH_SIGNERS_MAX];
    unsigned n_vouches;
    unsigned strangers_verified;
    uint64_t values_seen, more;
    uv_timer_t timer;
    bool timer_open, done;
    bool memory_only; /* no read: answered from memory (flooded slot) */
};

struct pst_trust *pst_trust__of(pst_node *n) {
    if (n->trust == NULL)
        n->trust = calloc(1, sizeof *n->trust);
    return n->trust;
}

void pst_trust_free(pst_node *n) {
    free(n->trust);
    n->trust = NULL;
}

static recalled *recall_find(pst_node *n, const uint8_t subject[32], bool create) {
    struct pst_trust *t = pst_trust__of(n);
    if (t == NULL)
        return NULL;
    recalled *oldest = NULL;
    for (unsigned i = 0; i < PST_VOUCH_RECALL_SUBJECTS; i++) {
        recalled *r = &t->recall[i];
        if (r->at != 0 && memcmp(r->subject, subject, 32) == 0)
            return r;
        if (oldest == NULL || r->at < oldest->at)
            oldest = r;
    }
    if (!create || oldest == NULL)
        return NULL;
    memset(oldest, 0, sizeof *oldest);
    memcpy(oldest->subject, subject, 32);
    return oldest;
}

static void keep_vouch_in(pst_vouch *vs, unsigned *nv, unsigned cap, uint64_t *more,
                          const pst_vouch *in) {
    for (unsigned i = 0; i < *nv; i++) {
        if (memcmp(vs[i].voucher, in->voucher, 32) != 0)
            continue;
        /* newest per signer wins; on a tie the weaker statement (a withdrawal
         * first) wins, so an unvouch in the same second still takes effect */
        if (in->created > vs[i].created ||
            (in->created == vs[i].created && in->tier < vs[i].tier)) {
            vs[i].tier = in->tier;
            vs[i].created = in->created;
            vs[i].expires = in->expires;
        }
        return;
    }
    if (*nv >= cap) {
        if (more != NULL)
            (*more)++;
        return;
    }
    vs[(*nv)++] = *in;
}

static void keep_vouch(vouch_get *g, const pst_endorsement *e, bool contact,
                       pst_store_tier contact_tier) {
    pst_vouch v;
    memset(&v, 0, sizeof v);
    memcpy(v.voucher, e->signer, 32);
    v.tier = (unsigned)e->tier;
    v.created = e->created;
    v.expires = e->expires;
    v.voucher_is_contact = contact;
    v.voucher_tier = contact_tier;
    keep_vouch_in(g->vouches, &g->n_vouches, PST_VOUCH_SIGNERS_MAX, &g->more, &v);
}

static void on_vouch_value(void *user, const uint8_t *val, size_t len) {
    vouch_get *g = user;
    pst_node *n = g->node;
    g->values_seen++;
    pst_endorsement e;
    /* decode first (cheap); decide whether the signature is worth checking */
    if (pst_vouch_value_decode(g->subject, val, len, &e, NULL) != PST_OK) {
        pst_counter_rejected(n, "vouch", "invalid");
        return;
    }
    /* the same value comes from every node that stores it: a statement that
     * cannot replace the one we hold is not worth a signature check */
    for (unsigned i = 0; i < g->n_vouches; i++)
        if (memcmp(g->vouches[i].voucher, e.signer, 32) == 0 &&
            (g->vouches[i].created > e.created ||
             (g->vouches[i].created == e.created && g->vouches[i].tier <= (unsigned)e.tier)))
            return;
    pst_store_tier tier = 0;
    bool contact = pst_store_contact_get(n->store, e.signer, &tier, NULL, 0) == PST_OK;
    if (!contact) {
        if (g->strangers_verified >= PST_VOUCH_STRANGERS_MAX) {
            g->more++;
            return;
        }
        g->strangers_verified++;
    }
    /* bounded: every contact's, at most PST_VOUCH_STRANGERS_MAX others' per read */
    pst_counter_add(n, "trust.vouch_signatures_verified", 1);
    if (pst_vouch_value_verify(n, &e, NULL) != PST_OK) {
        pst_counter_rejected(n, "vouch", "signature_or_expired");
        return;
    }
    keep_vouch(g, &e, contact, tier);
}

/* What the read found so far, and the contacts' vouches of earlier reads
 * (their tier as the contact list says now). */
static void answer_partial(vouch_get *g, vouch_waiter *w) {
    pst_node *n = g->node;
    pst_vouch vs[PST_VOUCH_SIGNERS_MAX];
    unsigned nv = g->n_vouches;
    uint64_t more = g->more;
    memcpy(vs, g->vouches, nv * sizeof vs[0]);
    recalled *r = recall_find(n, g->subject, false);
    for (unsigned i = 0; r != NULL && i < r->n; i++) {
        pst_vouch v = r->v[i];
        if (pst_store_contact_get(n->store, v.voucher, &v.voucher_tier, NULL, 0) != PST_OK ||
            pst_store_is_revoked(n->store, v.voucher) != 0)
            continue; /* no longer a contact: it counted only as one */
        keep_vouch_in(vs, &nv, PST_VOUCH_SIGNERS_MAX, &more, &v);
    }
    if (r != NULL && r->more > more)
        more = r->more;
    pst_vouches_cb cb = w->cb;
    w->cb = NULL;
    cb(w->user, PST_E_TIMEOUT, vs, nv, more);
}

static void on_vouch_timer_closed(uv_handle_t *h) {
    vouch_get *g = h->data;
    pst_node *n = g->node;
    g->timer_open = false;
    if (g->done)
        free(g);
    pst_node_handle_unref(n); /* may finalize n: last */
}

static void on_vouch_deadline(uv_timer_t *t);

/* Arms the timer for the next waiter due before the read ends. */
static void vouch_arm(vouch_get *g) {
    pst_node *n = g->node;
    uint64_t due = UINT64_MAX;
    for (unsigned i = 0; i < PST_VOUCH_WAITERS; i++)
        if (g->waiters[i].cb != NULL && g->waiters[i].due_ms < due)
            due = g->waiters[i].due_ms;
    if (due == UINT64_MAX || n->stopping)
        return;
    if (!g->timer_open) {
        if (uv_timer_init(n->loop, &g->timer) != 0)
            return; /* answered when the read ends */
        g->timer.data = g;
        g->timer_open = true;
        pst_node_handle_ref(n);
    }
    uint64_t now = uv_now(n->loop);
    uv_timer_start(&g->timer, on_vouch_deadline, due > now ? due - now : 0, 0);
}

static void on_vouch_deadline(uv_timer_t *t) {
    vouch_get *g = t->data;
    uint64_t now = uv_now(g->node->loop);
    if (g->memory_only) {
        if (g->waiters[0].cb != NULL)
            answer_partial(g, &g->waiters[0]);
        g->done = true;
        uv_close((uv_handle_t *)&g->timer, on_vouch_timer_closed); /* frees g */
        return;
    }
    for (unsigned i = 0; i < PST_VOUCH_WAITERS && !g->done; i++)
        if (g->waiters[i].cb != NULL && g->waiters[i].due_ms <= now)
            answer_partial(g, &g->waiters[i]);
    if (!g->done)
        vouch_arm(g);
}

/* Remembers the contacts' vouches a read found: a complete read replaces
 * what was remembered, an incomplete one adds to it. */
static void recall_store(vouch_get *g, bool complete) {
    recalled *r = recall_find(g->node, g->subject, true);
    if (r == NULL)
        return;
    if (complete) {
        r->n = 0;
        r->more = g->more;
        r->values = g->values_seen;
        r->done_ms = uv_now(g->node->loop);
    }
    for (unsigned i = 0; i < g->n_vouches; i++)
        if (g->vouches[i].voucher_is_contact)
            keep_vouch_in(r->v, &r->n, PST_VOUCH_RECALL_PER, NULL, &g->vouches[i]);
    r->at = pst_now();
}

static void reads_unlink(vouch_get *g) {
    struct pst_trust *t = g->node->trust;
    for (vouch_get **p = t ? &t->reads : NULL; p != NULL && *p != NULL; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            return;
        }
}

static void on_vouch_done(void *user, int status) {
    vouch_get *g = user;
    pst_node *n = g->node;
    n->ops_pending--;
    reads_unlink(g);
    pst_counter_add(n, "trust.vouch_reads_ended", 1);
    if (!n->stopping)
        recall_store(g, status == PST_OK);
    g->done = true;
    for (unsigned i = 0; i < PST_VOUCH_WAITERS; i++) {
        vouch_waiter *w = &g->waiters[i];
        if (w->cb != NULL) {
            pst_vouches_cb cb = w->cb;
            w->cb = NULL;
            cb(w->user, status, g->vouches, g->n_vouches, g->more);
        }
    }
    if (g->timer_open) {
        if (!uv_is_closing((uv_handle_t *)&g->timer))
            uv_close((uv_handle_t *)&g->timer, on_vouch_timer_closed); /* frees g */
    } else {
        free(g);
    }
}

int pst_trust_vouches_within(pst_node *n, const uint8_t subject[32], uint32_t wait_ms,
                             pst_vouches_cb cb, void *user) {
    struct pst_trust *t = pst_trust__of(n);
    if (t == NULL)
        return PST_E_NOMEM;
    uint64_t due = wait_ms > 0 ? uv_now(n->loop) + wait_ms : UINT64_MAX;
    for (vouch_get *g = t->reads; g != NULL; g = g->next) {
        if (memcmp(g->subject, subject, 32) != 0)
            continue;
        for (unsigned i = 0; i < PST_VOUCH_WAITERS; i++)
            if (g->waiters[i].cb == NULL) { /* share the read in flight */
                g->waiters[i] = (vouch_waiter){cb, user, due};
                pst_counter_add(n, "trust.vouch_reads_shared", 1);
                vouch_arm(g);
                return PST_OK;
            }
    }
    vouch_get *g = calloc(1, sizeof *g);
    if (g == NULL)
        return PST_E_NOMEM;
    g->node = n;
    memcpy(g->subject, subject, 32);
    recalled *r = wait_ms > 0 ? recall_find(n, subject, false) : NULL;
    if (r != NULL && r->values > PST_VOUCH_FLOODED &&
        uv_now(n->loop) - r->done_ms < PST_VOUCH_FLOODED_REREAD_MS && !n->stopping) {
        g->memory_only = true; /* answered on the next loop turn */
        g->waiters[0] = (vouch_waiter){cb, user, uv_now(n->loop)};
        pst_counter_add(n, "trust.vouch_reads_spared", 1);
        vouch_arm(g);
        if (g->timer_open)
            return PST_OK;
        free(g);
        return PST_E_NOMEM;
    }
    g->waiters[0] = (vouch_waiter){cb, user, due};
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_vouch(subject, slot);
    n->ops_pending++;
    int rc = pst_dht_get(&n->dht, slot, PST_LOOKUP_TIMEOUT_MS, on_vouch_value, on_vouch_done, g);
    if (rc != PST_OK) {
        n->ops_pending--;
        free(g);
        return rc;
    }
    pst_counter_add(n, "trust.vouch_reads", 1);
    /* the DHT layer's callbacks come from the loop, never during the call */
    g->next = t->reads;
    t->reads = g;
    vouch_arm(g);
    return PST_OK;
}

int pst_trust_vouches(pst_node *n, const uint8_t subject[32], pst_vouches_cb cb, void *user) {
    return pst_trust_vouches_within(n, subject, 0, cb, user);
}

bool pst_vouch_makes_known(const pst_vouch *v, uint64_t now) {
    return v->voucher_is_contact && v->voucher_tier == PST_STORE_TIER_TRUSTED &&
           v->tier != PST_TIER_WITHDRAWN && v->expires > now;
}

void pst_vouches_describe(pst_value *arr, const pst_vouch *v, unsigned count, pst_node *n) {
    for (unsigned i = 0; i < count; i++) {
        pst_value *e = pst_value_add_map(arr, NULL);
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(v[i].voucher, fp);
        pst_value_add_str(e, "voucher", fp);
        pst_value_add_str(e, "tier", pst_vouch_tier_name(v[i].tier));
        pst_value_add_uint(e, "created", v[i].created);
        pst_value_add_uint(e, "expires", v[i].expires);
        pst_value_add_str(e, "voucher_tier",
                          v[i].voucher_is_contact ? pst_trust_tier_name(v[i].voucher_tier)
                                                  : "unknown");
        char name[PST_STORE_PETNAME_MAX + 1] = "";
        pst_store_tier t;
        if (v[i].voucher_is_contact &&
            pst_store_contact_get(n->store, v[i].voucher, &t, name, sizeof name) == PST_OK &&
            name[0] != '\0')
            pst_value_add_str(e, "voucher_name", name);
        pst_value_add_bool(e, "counts", pst_vouch_makes_known(&v[i], pst_now()));
    }
}
