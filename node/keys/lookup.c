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
 * pst_resolve() is the engine (used by `key get` and by `send`);
 * pst_lookup_key() turns its answer into the `key get` reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"
#include "pst_log.h"

typedef struct resolve resolve;

typedef struct {
    resolve *parent;
    bool have_expired;
    pst_keyrec expired;
    bool have_future; /* authentic, refused only as created too far ahead */
    pst_keyrec future;
    bool dht_ok;
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

static void on_addr_done(void *user, int status) {
    resolve *r = user;
    r->info.dht_ok = status == PST_OK;
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
    uint8_t slot[PST_SLOT_BYTES];
    if (pst_slot_address(address, slot) != PST_OK ||
        lookup_get(n, slot, on_addr_value, on_addr_done, r) != PST_OK)
        on_addr_done(r, PST_E_IO);
    return PST_OK;
}

const char *pst_key_status_name(pst_key_status s) {
    switch (s) {
    case PST_KEY_VALID:
        return "valid";
    case PST_KEY_REVOKED:
        return "revoked";
    case PST_KEY_EXPIRED:
        return "expired";
    case PST_KEY_FROM_FUTURE:
        return "from_future";
    default:
        return "not_found";
    }
}

/* ---- `key get` ------------------------------------------------------------ */

typedef struct key_get key_get;

/* `key get` waits for a key's vouches this long, plus twice the key lookup */
#define PST_KEY_GET_VOUCH_WAIT_MS 40u

/* the vouches of one key, gathered after the lookup */
typedef struct {
    key_get *parent;
    pst_vouch vouches[16];
    unsigned n;
    uint64_t more;
    bool done, partial;
} key_vouches;

struct key_get {
    pst_node *node;
    pst_node_reply_cb reply;
    void *user;
    char query[PST_CTRL_ARG_MAX + 1];
    pst_resolved_key keys[PST_RESOLVE_KEYS_MAX];
    unsigned n_keys;
    pst_resolve_info info;
    key_vouches vouches[PST_RESOLVE_KEYS_MAX];
    unsigned pending;
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

/* Exit code of the CLI for one key: 0 valid, 2 not found, 3 revoked, 4
 * expired, 5 found but created in the future of this node's clock. */
static int exit_code(pst_key_status s) {
    switch (s) {
    case PST_KEY_VALID:
        return PST_CTRL_STATUS_OK;
    case PST_KEY_REVOKED:
        return PST_CTRL_STATUS_REVOKED;
    case PST_KEY_EXPIRED:
        return PST_CTRL_STATUS_EXPIRED;
    case PST_KEY_FROM_FUTURE:
        return PST_CTRL_STATUS_FROM_FUTURE;
    default:
        return PST_CTRL_STATUS_NOT_FOUND;
    }
}

/* For an address: valid beats revoked beats expired beats from_future
 * beats not found. */
static int exit_rank(int code) {
    switch (code) {
    case PST_CTRL_STATUS_OK:
        return 4;
    case PST_CTRL_STATUS_REVOKED:
        return 3;
    case PST_CTRL_STATUS_EXPIRED:
        return 2;
    case PST_CTRL_STATUS_FROM_FUTURE:
        return 1;
    default:
        return 0;
    }
}

static void describe_entry(const pst_resolved_key *k, pst_value *e, const char *address) {
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(k->pk, fp);
    pst_value_add_str(e, "fingerprint", fp);
    pst_value_add_str(e, "status", pst_key_status_name(k->status));
    if (k->status == PST_KEY_REVOKED) {
        const pst_revocation *rev = &k->revocation;
        pst_value *r = pst_value_add_map(e, "revocation");
        pst_value_add_str(r, "reason", reason_name(rev->reason));
        pst_value_add_str(r, "reason_text", rev->reason_text);
        pst_value_add_uint(r, "date", rev->created);
        pst_value_add_str(r, "signed_by", rev->has_auth ? "revocation_key" : "identity_key");
        if (rev->has_replacement) {
            char rfp[PST_FINGERPRINT_STRLEN + 1];
            pst_fingerprint_format(rev->replacement, rfp);
            pst_value_add_str(r, "replacement", rfp);
            pst_value_add_str(r, "replacement_note",
                              "the revocation names a replacement key; it is not trusted "
                              "because of that: check it with its owner");
        }
    }
    if (k->have_keyrec)
        add_keyrec_fields(e, &k->keyrec);
    if (k->status == PST_KEY_FROM_FUTURE) {
        uint64_t now = pst_now();
        char span[PST_CLOCK_SPAN_BUFSIZE], note[256];
        pst_clock_span(k->keyrec.created > now ? k->keyrec.created - now : 0, span);
        snprintf(note, sizeof note,
                 "found a record for %s, but it was created %s in the future by this node's "
                 "clock: check this machine's clock",
                 fp, span);
        pst_value_add_str(e, "clock_note", note);
        pst_value_add_uint(e, "ahead_of_this_clock_s",
                           k->keyrec.created > now ? k->keyrec.created - now : 0);
    }
    if (address != NULL) {
        bool listed = false;
        if (k->have_keyrec)
            for (uint32_t i = 0; i < k->keyrec.n_addresses; i++)
                listed = listed || strcmp(k->keyrec.addresses[i], address) == 0;
        pst_value_add_bool(e, "key_record_lists_address", listed);
    }
    pst_value_add_str(e, "source", k->from_dht ? "dht" : "cache");
}

static void add_vouches(key_get *g, unsigned i, pst_value *e) {
    key_vouches *kv = &g->vouches[i];
    if (!kv->done)
        return;
    pst_value *arr = pst_value_add_array(e, "vouches");
    pst_vouches_describe(arr, kv->vouches, kv->n, g->node);
    if (kv->more > 0)
        pst_value_add_uint(e, "vouches_not_examined", kv->more);
    if (kv->partial)
        pst_value_add_bool(e, "vouches_complete", false);
}

/* The lookup went unanswered: says why and what to do in one phrase each,
 * as JSON fields, and returns the exit code. With something in the cache
 * that answer stands, with a warning; with nothing, "not found" would be a
 * guess (the network was not asked), so it is an error: exit 1. */
static int describe_unanswered(pst_node *n, pst_value *body, int status) {
    char why[512], advice[256], line[sizeof why + sizeof advice + 80];
    const char *reason;
    if (!pst_node_joined(n)) {
        reason = pst_bootstrap_describe_alone(n, why, sizeof why, advice, sizeof advice);
    } else {
        reason = "timeout";
        snprintf(why, sizeof why, "the DHT did not answer the lookup within %u s",
                 PST_LOOKUP_TIMEOUT_MS / 1000u);
        snprintf(advice, sizeof advice, "%s",
                 n->mode == PST_NODE_ONESHOT
                     ? "try again in a moment"
                     : "try again in a moment ('postern status' shows the DHT)");
    }
    pst_value_add_str(body, "unanswered_reason", reason);
    if (n->cfg.nseeds > 0) {
        pst_value *tried = pst_value_add_array(body, "seeds_tried");
        for (unsigned i = 0; i < n->cfg.nseeds; i++)
            pst_value_add_str(tried, NULL, n->cfg.seeds[i]);
    }
    pst_value_add_uint(body, "network", n->cfg.network);
    if (status == PST_CTRL_STATUS_NOT_FOUND) {
        snprintf(line, sizeof line, "%s, and nothing is in the local cache: %s", why, advice);
        pst_value_add_str(body, "error", line);
        return PST_CTRL_STATUS_FAIL;
    }
    snprintf(line, sizeof line, "%s: this answer comes from the local cache and may be out of date",
             why);
    pst_value_add_str(body, "warning", line);
    return status;
}

static void reply_key_get(key_get *g) {
    const pst_resolved_key *keys = g->keys;
    unsigned n = g->n_keys;
    const pst_resolve_info *info = &g->info;
    pst_value *body = pst_value_new_map();
    int status = PST_CTRL_STATUS_NOT_FOUND;
    pst_value_add_str(body, "query", g->query);
    pst_value_add_str(body, "kind", info->by_address ? "address" : "fingerprint");
    pst_value_add_uint(body, "lookup_ms", info->lookup_ms);
    pst_value_add_bool(body, "dht_answered", info->dht_ok);
    if (info->by_address) {
        pst_value_add_str(body, "address", info->address);
        pst_value_add_str(body, "note",
                          "an address claim is not proof of ownership: anyone can claim any "
                          "address; check the fingerprint with its owner");
        pst_value *arr = pst_value_add_array(body, "keys");
        int best = PST_CTRL_STATUS_NOT_FOUND;
        for (unsigned i = 0; i < n; i++) {
            pst_value *e = pst_value_add_map(arr, NULL);
            describe_entry(&keys[i], e, info->address);
            add_vouches(g, i, e);
            int s = exit_code(keys[i].status);
            if (exit_rank(s) > exit_rank(best))
                best = s;
        }
        status = best;
    } else if (n == 1) {
        describe_entry(&keys[0], body, NULL);
        add_vouches(g, 0, body);
        status = exit_code(keys[0].status);
    }
    if (!info->dht_ok)
        status = describe_unanswered(g->node, body, status);
    int berr = pst_value_error(body);
    if (berr != PST_OK)
        pst_reply_error(g->reply, g->user, 0, PST_CTRL_STATUS_FAIL, "cannot build the answer: %s",
                        pst_strerror(berr));
    else
        pst_reply_ok(g->reply, g->user, 0, (uint64_t)status, body);
    pst_value_free(body);
    free(g);
}

static void on_vouches(void *user, int status, const pst_vouch *vouches, unsigned n,
                       uint64_t more) {
    key_vouches *kv = user;
    key_get *g = kv->parent;
    /* a failed get shows no vouches: the key answer stands */
    kv->partial = status == PST_E_TIMEOUT;
    /* vouches by my contacts first: those are the ones that matter to me */
    unsigned keep = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < n && keep < 16; i++)
            if (vouches[i].voucher_is_contact == (pass == 0))
                kv->vouches[keep++] = vouches[i];
    kv->n = keep;
    kv->more = more + (n - keep);
    kv->done = true;
    if (--g->pending == 0)
        reply_key_get(g);
}

static void on_resolved(void *user, int err, const pst_resolved_key *keys, unsigned n,
                        const pst_resolve_info *info) {
    key_get *g = user;
    if (err != PST_OK) {
        pst_reply_error(g->reply, g->user, 0, PST_CTRL_STATUS_FAIL, "lookup failed: %s",
                        pst_strerror(err));
        free(g);
        return;
    }
    memcpy(g->keys, keys, n * sizeof *keys);
    g->n_keys = n;
    g->info = *info;
    /* who vouches for each key that exists (a lookup is never blocked by them:
     * their own caps bound the work) */
    g->pending = 1;
    /* a flooded vouch slot reads slowly (OpenDHT fetches it value by value):
     * wait about as long again as the key lookup took, not for the flood */
    uint64_t wait = PST_KEY_GET_VOUCH_WAIT_MS + 2u * (uint64_t)info->lookup_ms;
    for (unsigned i = 0; i < n; i++) {
        if (keys[i].status == PST_KEY_NOT_FOUND)
            continue;
        g->vouches[i].parent = g;
        g->pending++;
        if (pst_trust_vouches_within(g->node, keys[i].pk,
                                     wait < PST_LOOKUP_TIMEOUT_MS ? (uint32_t)wait : 0, on_vouches,
                                     &g->vouches[i]) != PST_OK)
            g->pending--;
    }
    if (--g->pending == 0)
        reply_key_get(g);
}

void pst_lookup_key(pst_node *n, const char *query, pst_node_reply_cb reply, void *user) {
    key_get *g = calloc(1, sizeof *g);
    if (g == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "out of memory");
        return;
    }
    g->node = n;
    g->reply = reply;
    g->user = user;
    snprintf(g->query, sizeof g->query, "%s", query);
    int rc = pst_resolve(n, query, true, on_resolved, g);
    if (rc == PST_OK)
        return;
    free(g);
    if (rc == PST_E_INVAL)
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "'%s' is neither a fingerprint (52 characters of z-base-32) nor an "
                        "address (local@domain)",
                        query);
    else
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "lookup failed: %s",
                        pst_strerror(rc));
}
