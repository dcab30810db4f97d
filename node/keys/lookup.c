/* Finding keys: by fingerprint or by address, verified.
 *
 * By fingerprint: get the key slot, pass every value through ingest (which
 * stores the valid ones under the seq rule and every revocation for good),
 * then answer from the store: a revocation wins over everything, then the
 * highest-seq valid record; an authentic record that has expired is
 * reported as expired. By address: get the address slot, take every key whose
 * valid claim names the address (at most PST_RESOLVE_KEYS_MAX), and look each
 * one up by fingerprint. A claim proves only that the key claims the address.
 *
 * A key or address a person looked up is then watched (keycache.c): while
 * its slot is fresh the answer comes from the store, kept current by the
 * listen, with no get.
 *
 * pst_resolve() is the engine (used by `key get` and by `send`);
 * control/key_cmd.c turns its answer into the `key get` reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_keys.h"
#include "pst_log.h"

typedef struct resolve resolve;

typedef struct {
    resolve *parent;
    bool have_expired;
    pst_keyrec expired;
    bool have_future; /* authentic, refused only as created too far ahead */
    pst_keyrec future;
    bool dht_ok;
    bool listened; /* answered from the watched (fresh) cache, no get */
} key_probe;

struct resolve {
    pst_node *node;
    pst_resolve_cb cb;
    void *user;
    pst_resolve_info info;
    bool asked; /* by the user: its keys vote on our clock (pst_clock.h) */
    uint8_t cands[PST_RESOLVE_KEYS_MAX][32];
    unsigned n_cands;
    unsigned pending;
    key_probe probes[PST_RESOLVE_KEYS_MAX];
    pst_resolved_key keys[PST_RESOLVE_KEYS_MAX];
};

/* Fills k for pk from the store and what the probe saw. */
static void describe(pst_node *n, const uint8_t pk[32], const key_probe *p, pst_resolved_key *k) {
    memset(k, 0, sizeof *k);
    memcpy(k->pk, pk, 32);
    k->from_dht = p->dht_ok;
    k->listened = p->listened;
    uint8_t buf[PST_RECORD_MAX];
    size_t len;
    uint64_t seq, expires;
    k->have_keyrec =
        pst_store_keyrec_get(n->store, pk, buf, sizeof buf, &len, &seq, &expires) == PST_OK &&
        pst_keyrec_decode(buf, len, &k->keyrec) == PST_OK;
    if (pst_store_revocation_get(n->store, pk, buf, sizeof buf, &len) == PST_OK &&
        pst_revocation_decode(buf, len, &k->revocation) == PST_OK) {
        k->status = PST_KEY_REVOKED;
    } else if (k->have_keyrec && k->keyrec.expires > pst_now()) {
        k->status = PST_KEY_VALID;
    } else if (p->have_future) {
        /* the newest word of the key is only "too new for this clock" */
        k->status = PST_KEY_FROM_FUTURE;
        k->keyrec = p->future;
        k->have_keyrec = true;
    } else if (k->have_keyrec || p->have_expired) {
        k->status = PST_KEY_EXPIRED;
        if (!k->have_keyrec) {
            k->keyrec = p->expired;
            k->have_keyrec = true;
        }
    } else {
        k->status = PST_KEY_NOT_FOUND;
    }
}

static void finish(resolve *r) {
    pst_node *n = r->node;
    for (unsigned i = 0; i < r->n_cands; i++)
        describe(n, r->cands[i], &r->probes[i], &r->keys[i]);
    uv_update_time(n->loop);
    r->info.lookup_ms = uv_now(n->loop) - r->info.started_ms;
    n->ops_pending--;
    r->cb(r->user, PST_OK, r->keys, r->n_cands, &r->info);
    free(r);
}

static void on_key_value(void *user, const uint8_t *val, size_t len) {
    key_probe *p = user;
    resolve *r = p->parent;
    pst_keyrec kr;
    memset(&kr, 0, sizeof kr);
    const uint8_t *pk = r->cands[p - r->probes];
    int rc = pst_ingest_key_value(r->node, pk, val, len, &kr, NULL, NULL);
    if (rc == PST_E_EXPIRED && (!p->have_expired || kr.seq > p->expired.seq)) {
        p->expired = kr;
        p->have_expired = true;
    }
    if (rc == PST_E_NOTYET && (!p->have_future || kr.seq > p->future.seq)) {
        p->future = kr;
        p->have_future = true;
    }
    /* a key the user asked for by fingerprint votes; one found under an
     * address (anyone can claim one) only if it is a contact */
    pst_clock_keyrec(r->node, &kr, pk, r->asked && !r->info.by_address, rc);
}

static void on_key_done(void *user, int status) {
    key_probe *p = user;
    resolve *r = p->parent;
    p->dht_ok = status == PST_OK;
    if (!p->dht_ok)
        r->info.dht_ok = false;
    else if (r->asked && !p->listened)
        pst_keycache_checked(r->node, false, r->cands[p - r->probes], NULL);
    if (--r->pending == 0)
        finish(r);
}

/* A get, except that a one-shot node no other node answered has nobody to
 * ask: OpenDHT would hold the get until our timeout while it keeps trying
 * the seeds, and the user would wait 10 s for "unreachable". A daemon asks
 * anyway: another node may have reached it since its last get (a node with
 * no seeds learns that it has peers only from an answer). */
static int lookup_get(pst_node *n, const uint8_t slot[PST_SLOT_BYTES], pst_dht_value_cb on_value,
                      pst_dht_done_cb on_done, void *user) {
    if (n->mode == PST_NODE_ONESHOT && !pst_node_joined(n))
        return PST_E_IO;
    return pst_dht_get(&n->dht, slot, PST_LOOKUP_TIMEOUT_MS, on_value, on_done, user);
}

/* Whether the store alone answers for pk: a revocation, or a record not
 * expired. Expired, from-the-future and unknown keys are asked of the DHT
 * even when watched: what the DHT holds then (a record too new for our
 * clock, an expired one) is not in the store. */
static bool store_answers(pst_node *n, const uint8_t pk[32]) {
    uint8_t buf[PST_RECORD_MAX];
    size_t len;
    uint64_t seq, expires;
    return pst_store_revocation_get(n->store, pk, buf, sizeof buf, &len) == PST_OK ||
           (pst_store_keyrec_get(n->store, pk, buf, sizeof buf, &len, &seq, &expires) == PST_OK &&
            expires > pst_now());
}

static void start_key_probes(resolve *r) {
    if (r->n_cands == 0) {
        finish(r);
        return;
    }
    r->pending = r->n_cands;
    unsigned count = r->n_cands;
    for (unsigned i = 0; i < count; i++) {
        key_probe *p = &r->probes[i];
        p->parent = r;
        /* a revoked key is answered from the store for good, watched or not
         * (keycache.c stops watching it) */
        if (pst_store_is_revoked(r->node->store, r->cands[i]) == 1) {
            p->listened = true;
            pst_counter_add(r->node, "lookup.revoked_from_store", 1);
            on_key_done(p, PST_OK);
            continue;
        }
        if (pst_keycache_fresh(r->node, false, r->cands[i], NULL) &&
            store_answers(r->node, r->cands[i])) {
            p->listened = true;
            pst_counter_add(r->node, "lookup.from_watched_cache", 1);
            on_key_done(p, PST_OK);
            continue;
        }
        uint8_t slot[PST_SLOT_BYTES];
        pst_slot_key(r->cands[i], slot);
        int rc = lookup_get(r->node, slot, on_key_value, on_key_done, p);
        if (rc != PST_OK)
            on_key_done(p, rc);
    }
}

static void add_candidate(resolve *r, const uint8_t pk[32]) {
    for (unsigned i = 0; i < r->n_cands; i++)
        if (memcmp(r->cands[i], pk, 32) == 0)
            return;
    if (r->n_cands < PST_RESOLVE_KEYS_MAX)
        memcpy(r->cands[r->n_cands++], pk, 32);
    else
        pst_counter_add(r->node, "lookup.address_candidates_dropped", 1);
}

static void on_addr_value(void *user, const uint8_t *val, size_t len) {
    resolve *r = user;
    pst_address_claim c;
    int rc = pst_ingest_address_value(r->node, r->info.address, val, len, &c);
    if (rc == PST_OK || rc == PST_E_REVOKED) /* a revoked key is listed as revoked */
        add_candidate(r, c.signer);
}

static int on_cached_claim(const pst_store_addrclaim_row *row, void *user) {
    resolve *r = user;
    if (row->expires > pst_now())
        add_candidate(r, row->pk);
    return 0;
}

static int count_claim(const pst_store_addrclaim_row *row, void *user) {
    *(unsigned *)user += row->expires > pst_now();
    return 0;
}

static void on_addr_done(void *user, int status) {
    resolve *r = user;
    r->info.dht_ok = status == PST_OK;
    if (status == PST_OK && r->asked && !r->info.address_listened)
        pst_keycache_checked(r->node, true, NULL, r->info.address);
    /* claims seen earlier and still valid count too (cache) */
    (void)pst_store_addrclaim_list(r->node->store, r->info.address, on_cached_claim, r);
    start_key_probes(r);
}

int pst_resolve(pst_node *n, const char *query, bool asked, pst_resolve_cb cb, void *user) {
    uint8_t pk[32];
    char address[PST_ADDRESS_MAX + 1];
    bool by_fp = pst_fingerprint_parse(query, pk) == PST_OK;
    if (!by_fp && (strchr(query, '@') == NULL ||
                   pst_address_normalize(query, address, sizeof address) != PST_OK))
        return PST_E_INVAL;
    resolve *r = calloc(1, sizeof *r);
    if (r == NULL)
        return PST_E_NOMEM;
    r->node = n;
    r->cb = cb;
    r->user = user;
    r->asked = asked;
    r->info.dht_ok = true;
    uv_update_time(n->loop);
    r->info.started_ms = uv_now(n->loop);
    n->ops_pending++;
    if (by_fp) {
        memcpy(r->cands[0], pk, 32);
        r->n_cands = 1;
        start_key_probes(r);
        return PST_OK;
    }
    r->info.by_address = true;
    snprintf(r->info.address, sizeof r->info.address, "%s", address);
    unsigned claims = 0;
    if (pst_keycache_fresh(n, true, NULL, address) &&
        pst_store_addrclaim_list(n->store, address, count_claim, &claims) == PST_OK && claims > 0) {
        r->info.address_listened = true;
        pst_counter_add(n, "lookup.from_watched_cache", 1);
        on_addr_done(r, PST_OK);
        return PST_OK;
    }
    uint8_t slot[PST_SLOT_BYTES];
    if (pst_slot_address(address, slot) != PST_OK ||
        lookup_get(n, slot, on_addr_value, on_addr_done, r) != PST_OK)
        on_addr_done(r, PST_E_IO);
    return PST_OK;
}

const char *pst_key_status_name(pst_key_status s) {
    static const char *const names[] = {
        [PST_KEY_VALID] = "valid",
        [PST_KEY_REVOKED] = "revoked",
        [PST_KEY_EXPIRED] = "expired",
        [PST_KEY_FROM_FUTURE] = "from_future",
    };
    return PST_NAME_OF(names, s, "not_found");
}
