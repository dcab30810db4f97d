/* `key get`: find a key by fingerprint or by address, verified.
 *
 * By fingerprint: get the key slot, pass every value through ingest (which
 * stores the valid ones under the seq rule and every revocation for good),
 * then answer from the store: a revocation wins over everything, then the
 * highest-seq valid record; an authentic record that has expired is
 * reported as expired. By address: get the address slot, take every key whose
 * valid claim names the address (at most PST_ADDRESS_CANDIDATES_MAX), and look
 * each one up by fingerprint. A claim proves only that the key claims the
 * address, and the answer says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"
#include "pst_log.h"

#define PST_ADDRESS_CANDIDATES_MAX 16u

typedef struct lookup lookup;

typedef struct {
    lookup *parent;
    uint8_t pk[32];
    bool have_expired;
    pst_keyrec expired;
    bool dht_ok;
} key_lookup;

struct lookup {
    pst_node *node;
    pst_node_reply_cb reply;
    void *user;
    uint64_t req_id;
    bool by_address;
    char query[PST_CTRL_ARG_MAX + 1];
    char address[PST_ADDRESS_MAX + 1];
    uint8_t cands[PST_ADDRESS_CANDIDATES_MAX][32];
    unsigned n_cands;
    unsigned pending;
    bool dht_ok;
    uint64_t started_ms; /* uv_now at the start, for lookup_ms */
    key_lookup keys[PST_ADDRESS_CANDIDATES_MAX];
};

static const char *reason_name(uint64_t r) {
    switch (r) {
    case PST_REVOKE_KEY_COMPROMISED:
        return "key_compromised";
    case PST_REVOKE_SUPERSEDED:
        return "superseded";
    case PST_REVOKE_RETIRED:
        return "retired";
    default:
        return "unspecified";
    }
}

static void add_keyrec_fields(pst_value *e, const pst_keyrec *kr) {
    pst_value_add_uint(e, "seq", kr->seq);
    pst_value_add_uint(e, "created", kr->created);
    pst_value_add_uint(e, "expires", kr->expires);
    pst_value *a = pst_value_add_array(e, "addresses");
    for (uint32_t i = 0; i < kr->n_addresses; i++)
        pst_value_add_str(a, NULL, kr->addresses[i]);
    pst_value *ep = pst_value_add_array(e, "endpoints");
    for (uint32_t i = 0; i < kr->n_endpoints; i++)
        pst_value_add_str(ep, NULL, kr->endpoints[i]);
    pst_value_add_uint(e, "pow_bits", kr->pow_bits);
    pst_value_add_bin(e, "encryption_key", kr->enc_pk, sizeof kr->enc_pk);
    if (kr->has_revocation_pk) {
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(kr->revocation_pk, fp);
        pst_value_add_str(e, "revocation_key", fp);
    }
}

/* Fills entry e for key k from the store; returns the status code the CLI
 * exits with (0 valid, 2 not found, 3 revoked, 4 expired). */
static int describe_key(pst_node *n, key_lookup *k, pst_value *e, const char *address) {
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(k->pk, fp);
    pst_value_add_str(e, "fingerprint", fp);
    uint8_t buf[PST_RECORD_MAX];
    size_t len;
    uint64_t seq, expires;
    pst_keyrec kr;
    bool have_kr =
        pst_store_keyrec_get(n->store, k->pk, buf, sizeof buf, &len, &seq, &expires) == PST_OK &&
        pst_keyrec_decode(buf, len, &kr) == PST_OK;
    int status;
    if (pst_store_revocation_get(n->store, k->pk, buf, sizeof buf, &len) == PST_OK) {
        pst_revocation rev;
        status = 3;
        pst_value_add_str(e, "status", "revoked");
        if (pst_revocation_decode(buf, len, &rev) == PST_OK) {
            pst_value *r = pst_value_add_map(e, "revocation");
            pst_value_add_str(r, "reason", reason_name(rev.reason));
            pst_value_add_str(r, "reason_text", rev.reason_text);
            pst_value_add_uint(r, "date", rev.created);
            pst_value_add_str(r, "signed_by", rev.has_auth ? "revocation_key" : "identity_key");
            if (rev.has_replacement) {
                char rfp[PST_FINGERPRINT_STRLEN + 1];
                pst_fingerprint_format(rev.replacement, rfp);
                pst_value_add_str(r, "replacement", rfp);
                pst_value_add_str(r, "replacement_note",
                                  "the revocation names a replacement key; it is not trusted "
                                  "because of that: check it with its owner");
            }
        }
        if (have_kr)
            add_keyrec_fields(e, &kr);
    } else if (have_kr && kr.expires > pst_now()) {
        status = 0;
        pst_value_add_str(e, "status", "valid");
        add_keyrec_fields(e, &kr);
    } else if (have_kr || k->have_expired) {
        status = 4;
        pst_value_add_str(e, "status", "expired");
        add_keyrec_fields(e, have_kr ? &kr : &k->expired);
    } else {
        status = 2;
        pst_value_add_str(e, "status", "not_found");
    }
    if (address != NULL) {
        bool listed = false;
        if (have_kr)
            for (uint32_t i = 0; i < kr.n_addresses; i++)
                listed = listed || strcmp(kr.addresses[i], address) == 0;
        pst_value_add_bool(e, "key_record_lists_address", listed);
    }
    pst_value_add_str(e, "source", k->dht_ok ? "dht" : "cache");
    return status;
}

static void finish(lookup *l) {
    pst_node *n = l->node;
    pst_value *body = pst_value_new_map();
    int status = 2;
    pst_value_add_str(body, "query", l->query);
    pst_value_add_str(body, "kind", l->by_address ? "address" : "fingerprint");
    uv_update_time(n->loop);
    pst_value_add_uint(body, "lookup_ms", uv_now(n->loop) - l->started_ms);
    if (!l->dht_ok)
        pst_value_add_str(body, "warning",
                          "the DHT did not answer in time: the answer comes from the local cache");
    if (l->by_address) {
        pst_value_add_str(body, "address", l->address);
        pst_value_add_str(body, "note",
                          "an address claim is not proof of ownership: anyone can claim any "
                          "address; check the fingerprint with its owner");
        pst_value *keys = pst_value_add_array(body, "keys");
        int best = 2;
        for (unsigned i = 0; i < l->n_cands; i++) {
            pst_value *e = pst_value_add_map(keys, NULL);
            int s = describe_key(n, &l->keys[i], e, l->address);
            /* valid beats revoked beats expired beats not found */
            if (s == 0 || (best != 0 && (s == 3 || (s == 4 && best == 2))))
                best = s;
        }
        status = l->n_cands == 0 ? 2 : best;
    } else {
        status = describe_key(n, &l->keys[0], body, NULL);
    }
    int err = pst_value_error(body);
    if (err != PST_OK) {
        pst_reply_error(l->reply, l->user, l->req_id, 1, "cannot build the answer: %s",
                        pst_strerror(err));
    } else {
        pst_reply_ok(l->reply, l->user, l->req_id, (uint64_t)status, body);
    }
    pst_value_free(body);
    n->ops_pending--;
    free(l);
}

static void on_key_value(void *user, const uint8_t *val, size_t len) {
    key_lookup *k = user;
    pst_keyrec kr;
    memset(&kr, 0, sizeof kr);
    int rc = pst_ingest_key_value(k->parent->node, k->pk, val, len, &kr, NULL, NULL);
    if (rc == PST_E_EXPIRED && (!k->have_expired || kr.seq > k->expired.seq)) {
        k->expired = kr;
        k->have_expired = true;
    }
}

static void on_key_done(void *user, int status) {
    key_lookup *k = user;
    lookup *l = k->parent;
    k->dht_ok = status == PST_OK;
    if (!k->dht_ok)
        l->dht_ok = false;
    if (--l->pending == 0)
        finish(l);
}

static void start_key_lookups(lookup *l) {
    pst_node *n = l->node;
    l->pending = l->n_cands;
    if (l->n_cands == 0) {
        l->pending = 1;
        l->keys[0].parent = l;
        on_key_done(&l->keys[0], l->dht_ok ? PST_OK : PST_E_TIMEOUT);
        return;
    }
    unsigned started = l->n_cands;
    for (unsigned i = 0; i < started; i++) {
        key_lookup *k = &l->keys[i];
        k->parent = l;
        memcpy(k->pk, l->cands[i], 32);
        uint8_t slot[PST_SLOT_BYTES];
        pst_slot_key(k->pk, slot);
        int rc = pst_dht_get(&n->dht, slot, PST_LOOKUP_TIMEOUT_MS, on_key_value, on_key_done, k);
        if (rc != PST_OK)
            on_key_done(k, rc);
    }
}

static void add_candidate(lookup *l, const uint8_t pk[32]) {
    for (unsigned i = 0; i < l->n_cands; i++)
        if (memcmp(l->cands[i], pk, 32) == 0)
            return;
    if (l->n_cands < PST_ADDRESS_CANDIDATES_MAX)
        memcpy(l->cands[l->n_cands++], pk, 32);
    else
        pst_counter_add(l->node, "lookup.address_candidates_dropped", 1);
}

static void on_addr_value(void *user, const uint8_t *val, size_t len) {
    lookup *l = user;
    pst_address_claim c;
    if (pst_ingest_address_value(l->node, l->address, val, len, &c) == PST_OK)
        add_candidate(l, c.signer);
}

static int on_cached_claim(const pst_store_addrclaim_row *row, void *user) {
    lookup *l = user;
    if (row->expires > pst_now())
        add_candidate(l, row->pk);
    return 0;
}

static void on_addr_done(void *user, int status) {
    lookup *l = user;
    l->dht_ok = status == PST_OK;
    /* claims seen earlier and still valid count too (cache) */
    (void)pst_store_addrclaim_list(l->node->store, l->address, on_cached_claim, l);
    start_key_lookups(l);
}

void pst_lookup_key(pst_node *n, const char *query, pst_node_reply_cb reply, void *user) {
    lookup *l = calloc(1, sizeof *l);
    if (l == NULL) {
        pst_reply_error(reply, user, 0, 1, "out of memory");
        return;
    }
    l->node = n;
    l->reply = reply;
    l->user = user;
    l->dht_ok = true;
    uv_update_time(n->loop);
    l->started_ms = uv_now(n->loop);
    snprintf(l->query, sizeof l->query, "%s", query);
    n->ops_pending++;
    uint8_t pk[32];
    if (pst_fingerprint_parse(query, pk) == PST_OK) {
        memcpy(l->cands[0], pk, 32);
        l->n_cands = 1;
        start_key_lookups(l);
        return;
    }
    if (strchr(query, '@') != NULL &&
        pst_address_normalize(query, l->address, sizeof l->address) == PST_OK) {
        l->by_address = true;
        uint8_t slot[PST_SLOT_BYTES];
        if (pst_slot_address(l->address, slot) == PST_OK &&
            pst_dht_get(&n->dht, slot, PST_LOOKUP_TIMEOUT_MS, on_addr_value, on_addr_done, l) ==
                PST_OK)
            return;
        on_addr_done(l, PST_E_IO);
        return;
    }
    n->ops_pending--;
    free(l);
    pst_reply_error(reply, user, 0, 64,
                    "'%s' is neither a fingerprint (52 characters of z-base-32) nor an address "
                    "(local@domain)",
                    query);
}
