/* Is a sender vouched for? The inbox asks for every unknown sender without a
 * good stamp (inbox_gate.c): a sender counts as known when a trusted contact
 * vouches for it, or, with vouch_depth 2, someone such a vouch names does.
 * Answers are cached (PST_VOUCH_CACHE_TTL_S) and at most
 * PST_VOUCH_CHECKS_MAX lookups run at once: a flood of strangers costs a
 * bounded number of DHT gets, and a stranger refused because the table was
 * busy is looked at again when its notification comes back (senders
 * re-notify). */
#include <stdlib.h>
#include <string.h>

#include "pst_keys.h"
#include "pst_record.h"
#include "trust_int.h"

static vouch_entry *cache_find(struct pst_trust *t, const uint8_t pk[32], bool create) {
    uint64_t now = pst_now();
    vouch_entry *free_slot = NULL, *oldest = NULL;
    for (unsigned i = 0; i < PST_VOUCH_CACHE; i++) {
        vouch_entry *e = &t->cache[i];
        if (e->until != 0 && memcmp(e->pk, pk, 32) == 0)
            return e;
        if (e->until == 0 || (!e->pending && e->until <= now))
            free_slot = free_slot ? free_slot : e;
        else if (!e->pending && (oldest == NULL || e->until < oldest->until))
            oldest = e;
    }
    if (!create)
        return NULL;
    vouch_entry *e = free_slot ? free_slot : oldest;
    if (e != NULL) {
        memset(e, 0, sizeof *e);
        memcpy(e->pk, pk, 32);
    }
    return e;
}

int pst_trust_vouched(pst_node *n, const uint8_t pk[32]) {
    if (n->cfg.vouch_depth == 0)
        return 0;
    struct pst_trust *t = pst_trust__of(n);
    vouch_entry *e = t ? cache_find(t, pk, false) : NULL;
    if (e == NULL || e->pending || e->until <= pst_now())
        return -1;
    return e->known ? 1 : 0;
}

typedef struct vouch_check vouch_check;
struct vouch_check {
    pst_node *node;
    uint8_t pk[32];
    bool known;
    unsigned pending;    /* depth-2 lookups in flight */
    uint64_t generation; /* of the contact list it was asked under */
    void (*done)(pst_node *, void *);
    void *user;
};

static void check_finish(vouch_check *c) {
    pst_node *n = c->node;
    struct pst_trust *t = pst_trust__of(n);
    if (t != NULL) {
        t->checks_running--;
        vouch_entry *e = cache_find(t, c->pk, true);
        if (e != NULL && c->generation != t->generation) {
            memset(e, 0, sizeof e[0]); /* judged by a contact list since changed: ask again */
        } else if (e != NULL) {
            e->pending = false;
            e->known = c->known;
            e->until = pst_now() + (c->known ? PST_VOUCH_CACHE_TTL_S : PST_VOUCH_CACHE_NEG_TTL_S);
        }
    }
    if (c->known)
        pst_counter_add(n, "trust.vouched_known", 1);
    if (c->done && !n->stopping)
        c->done(n, c->user);
    free(c);
}

static void on_depth2(void *user, int status, const pst_vouch *v, unsigned count, uint64_t more) {
    vouch_check *c = user;
    (void)status;
    (void)more;
    for (unsigned i = 0; i < count; i++)
        if (pst_vouch_makes_known(&v[i], pst_now()))
            c->known = true;
    if (--c->pending == 0)
        check_finish(c);
}

static void on_depth1(void *user, int status, const pst_vouch *v, unsigned count, uint64_t more) {
    vouch_check *c = user;
    pst_node *n = c->node;
    (void)status;
    (void)more;
    uint64_t now = pst_now();
    for (unsigned i = 0; i < count; i++)
        if (pst_vouch_makes_known(&v[i], now))
            c->known = true;
    if (!c->known && n->cfg.vouch_depth >= 2 && !n->stopping) {
        /* vouched for by someone whom a trusted contact vouches for */
        c->pending = 1;
        unsigned asked = 0;
        for (unsigned i = 0; i < count && asked < PST_VOUCH_DEPTH2_MAX; i++) {
            if (v[i].tier == PST_TIER_WITHDRAWN || v[i].expires <= now ||
                (v[i].voucher_is_contact && v[i].voucher_tier == PST_STORE_TIER_BLOCKED))
                continue;
            c->pending++;
            if (pst_trust_vouches(n, v[i].voucher, on_depth2, c) != PST_OK)
                c->pending--;
            else
                asked++;
        }
        if (--c->pending > 0)
            return;
    }
    check_finish(c);
}

int pst_trust_vouch_check(pst_node *n, const uint8_t pk[32], void (*done)(pst_node *, void *),
                          void *user) {
    struct pst_trust *t = pst_trust__of(n);
    if (t == NULL)
        return PST_E_NOMEM;
    if (n->cfg.vouch_depth == 0)
        return PST_E_INVAL;
    vouch_entry *e = cache_find(t, pk, false);
    if (e != NULL && e->pending)
        return PST_OK; /* already on its way */
    if (t->checks_running >= PST_VOUCH_CHECKS_MAX) {
        pst_counter_add(n, "trust.vouch_checks_busy", 1);
        return PST_E_BUSY;
    }
    e = cache_find(t, pk, true);
    if (e == NULL)
        return PST_E_BUSY;
    vouch_check *c = calloc(1, sizeof *c);
    if (c == NULL)
        return PST_E_NOMEM;
    c->node = n;
    memcpy(c->pk, pk, 32);
    c->done = done;
    c->user = user;
    c->generation = t->generation;
    e->pending = true;
    e->until = UINT64_MAX;
    t->checks_running++;
    int rc = pst_trust_vouches(n, pk, on_depth1, c);
    if (rc != PST_OK) {
        t->checks_running--;
        memset(e, 0, sizeof *e);
        free(c);
    }
    return rc;
}

void pst_trust_forget_answers(pst_node *n, const uint8_t pk[32]) {
    struct pst_trust *t = n->trust;
    if (t == NULL)
        return;
    if (pk == NULL)
        t->generation++; /* lookups in flight were asked under the old list */
    for (unsigned i = 0; i < PST_VOUCH_CACHE; i++) {
        vouch_entry *e = &t->cache[i];
        if (e->until != 0 && !e->pending && (pk == NULL || memcmp(e->pk, pk, 32) == 0))
            memset(e, 0, sizeof *e);
    }
}

bool pst_trust_vouch_pending(pst_node *n, const uint8_t pk[32]) {
    struct pst_trust *t = n->trust;
    vouch_entry *e = t ? cache_find(t, pk, false) : NULL;
    return e != NULL && e->pending;
}

bool pst_trust_vouch_news(pst_node *n, const uint8_t subject[32], const uint8_t *val, size_t len) {
    pst_endorsement e;
    if (n->cfg.vouch_depth == 0 || pst_vouch_value_decode(subject, val, len, &e, NULL) != PST_OK ||
        e.tier == PST_TIER_WITHDRAWN)
        return false;
    pst_store_tier tier;
    bool contact = pst_store_contact_get(n->store, e.signer, &tier, NULL, 0) == PST_OK;
    if (contact && tier == PST_STORE_TIER_TRUSTED)
        return pst_vouch_value_verify(n, &e, NULL) == PST_OK; /* one Ed25519 */
    /* deeper: the voucher's own standing is what the lookup finds out; the
     * caller rate-limits those lookups, so an unverified value is enough */
    return n->cfg.vouch_depth >= 2 && !(contact && tier == PST_STORE_TIER_BLOCKED);
}
