/* `key get`: looks a fingerprint or address up (keys/lookup.c), gathers
 * each key's vouches (keys/trust.c), and builds the reply: one entry per
 * candidate key with its status, and an exit status the CLI passes on
 * (docs/cli/key.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_control.h"
#include "pst_log.h"

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
    static const char *const names[] = {
        [PST_REVOKE_KEY_COMPROMISED] = "key_compromised",
        [PST_REVOKE_SUPERSEDED] = "superseded",
        [PST_REVOKE_RETIRED] = "retired",
    };
    return PST_NAME_OF(names, r, "unspecified");
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

/* The identity's devices (issue 13), from its verified device list; none
 * when it publishes no list (one device: the identity key). */
static void add_devices(key_get *g, unsigned i, pst_value *e) {
    if (g->keys[i].status == PST_KEY_NOT_FOUND)
        return;
    pst_value *arr = pst_value_add_array(e, "devices");
    (void)pst_keys_devices_describe(g->node, g->keys[i].pk, arr);
}

static void add_vouches(key_get *g, unsigned i, pst_value *e) {
    add_devices(g, i, e);
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

static void on_devlist(pst_node *n, int rc, const pst_devlist *list, void *arg) {
    (void)n;
    (void)rc;
    (void)list; /* cached by the fetch; add_devices reads the cache */
    key_get *g = ((key_vouches *)arg)->parent;
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
        if (pst_keys_devlist_fetch(g->node, keys[i].pk, on_devlist, &g->vouches[i]) != PST_OK)
            g->pending--;
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
