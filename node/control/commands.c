/* Control commands other than key lookups: id, status, key-revoke. Each
 * builds a value tree that the CLI prints as text or as JSON. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_control.h"
#include "pst_log.h"
#include "pst_build.h"

static void add_identity(pst_node *n, pst_value *b) {
    pst_value_add_str(b, "fingerprint", n->fingerprint);
    pst_value_add_bin(b, "encryption_key", n->id->box_pk, sizeof n->id->box_pk);
    if (n->id->has_rev_pk) {
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(n->id->rev_pk, fp);
        pst_value_add_str(b, "revocation_key", fp);
    }
    pst_value *a = pst_value_add_array(b, "addresses");
    for (unsigned i = 0; i < n->n_addresses; i++)
        pst_value_add_str(a, NULL, n->addresses[i]);
    pst_value *e = pst_value_add_array(b, "endpoints");
    pst_value_add_str(e, NULL, n->endpoint);
    pst_value_add_uint(b, "pow_bits", n->cfg.pow_bits);
    pst_value_add_uint(b, "seq", n->own_seq);
    pst_value_add_bool(b, "revoked", n->revoked);
}

void pst_node_cmd_id(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                     void *user) {
    (void)req;
    if (n->id == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "%s", pst_strerror(PST_E_NOKEY));
        return;
    }
    pst_value *b = pst_value_new_map();
    add_identity(n, b);
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

static const char *kind_name(int kind) {
    static const char *const names[] = {
        [PST_PUB_KEYREC] = "key_record",     [PST_PUB_ADDRCLAIM] = "address_claim",
        [PST_PUB_REVOCATION] = "revocation", [PST_PUB_ENDORSEMENT] = "endorsement",
        [PST_PUB_DEVLIST] = "devlist",
    };
    return PST_NAME_OF(names, kind, "other");
}

static int on_published(const pst_store_published_row *row, void *user) {
    pst_value *arr = user;
    pst_value *e = pst_value_add_map(arr, NULL);
    char hex[PST_SLOT_HEX_STRLEN + 1];
    pst_slot_hex(row->slot, hex);
    pst_value_add_str(e, "kind", kind_name(row->kind));
    pst_value_add_str(e, "slot", hex);
    pst_value_add_uint(e, "seq", row->seq);
    pst_value_add_uint(e, "signed_at", row->stored);
    pst_value_add_uint(e, "last_put", row->published);
    uint64_t now = pst_now();
    pst_value_add_uint(e, "age_s", now > row->published ? now - row->published : 0);
    return 0;
}

/* joined, state and a summary that agree with the get and put counts: a
 * node no other node answers is alone, whatever its seeds (docs/cli/status.md). */
static void describe_joined(pst_node *n, const struct pst_dht_stats *ds, pst_value *d) {
    bool joined = pst_node_joined(n);
    char summary[1024];
    pst_value_add_bool(d, "joined", joined);
    uint64_t ago = ds->last_answered_op == 0 || uv_now(n->loop) < ds->last_answered_ms
                       ? 0
                       : (uv_now(n->loop) - ds->last_answered_ms) / 1000u;
    if (ds->last_answered_op != 0)
        pst_value_add_uint(d, "last_answer_s", ago);
    if (joined) {
        pst_value_add_str(d, "state", "joined");
        snprintf(summary, sizeof summary, "in touch: another node answered %llu s ago",
                 (unsigned long long)ago);
    } else if (n->cfg.nseeds > 0 && !n->bootstrapped && !n->warned_alone) {
        pst_value_add_str(d, "state", "joining");
        snprintf(summary, sizeof summary, "joining: waiting for a seed to answer");
    } else {
        char why[512], advice[256];
        pst_value_add_str(d, "state", "alone");
        pst_value_add_str(d, "alone_reason",
                          pst_bootstrap_describe_alone(n, why, sizeof why, advice, sizeof advice));
        snprintf(summary, sizeof summary, "alone: %s, so gets and puts fail: %s", why, advice);
    }
    pst_value_add_str(d, "summary", summary);
}

void pst_node_cmd_status(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user) {
    (void)req;
    struct pst_dht_stats ds;
    pst_dht_stats(&n->dht, &ds);
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "version", PST_VERSION);
    pst_value_add_uint(b, "uptime_s", pst_now() - n->started_at);
    if (n->id != NULL) {
        pst_value_add_str(b, "fingerprint", n->fingerprint);
        pst_value_add_bool(b, "revoked", n->revoked);
    }
    pst_value *d = pst_value_add_map(b, "dht");
    pst_value_add_str(d, "node_id", ds.node_id);
    pst_value_add_uint(d, "network", ds.network_id);
    pst_value_add_uint(d, "port4", ds.port4);
    pst_value_add_uint(d, "port6", ds.port6);
    describe_joined(n, &ds, d);
    /* OpenDHT's C API exposes no routing-table counts: seeds that answered
     * our last ping are "good", the others "dubious". */
    pst_value_add_uint(d, "seeds", n->cfg.nseeds);
    pst_value_add_uint(d, "seeds_good", n->seeds_answered);
    pst_value_add_uint(d, "seeds_dubious", n->cfg.nseeds - n->seeds_answered);
    pst_value_add_uint(d, "values_received", ds.values_received);
    pst_value_add_uint(d, "values_dropped_oversize", ds.values_dropped_oversize);
    pst_value_add_uint(d, "gets_ok", ds.gets_ok);
    pst_value_add_uint(d, "gets_failed", ds.gets_failed + ds.gets_timed_out);
    pst_value_add_uint(d, "puts_ok", ds.puts_ok);
    pst_value_add_uint(d, "puts_failed", ds.puts_failed + ds.puts_timed_out);
    pst_value_add_uint(d, "puts_refreshed", ds.puts_refreshed);
    /* what our typed store policy refused for other nodes (docs/dht.md) */
    pst_value_add_bool(d, "value_types", ds.value_types);
    pst_value_add_uint(d, "values_refused_store", ds.values_refused_store);
    pst_value_add_uint(d, "listens", ds.listens_active);
    pst_value_add_uint(d, "keys_watched", pst_keycache_watched(n));
    pst_value *p = pst_value_add_map(b, "ports");
    pst_value_add_uint(p, "dht", ds.port4);
    pst_value_add_uint(p, "fetch", n->fetch_port);
    pst_value_add_uint(p, "smtp", n->smtp_port); /* 0: submission is off */
    pst_value *sm = pst_value_add_map(b, "smtp");
    pst_value_add_bool(sm, "enabled", n->smtp_port != 0);
    pst_value_add_str(sm, "address", n->smtp_port ? n->cfg.smtp_address : "");
    pst_value_add_uint(sm, "port", n->smtp_port);
    pst_value *lm = pst_value_add_map(b, "lmtp");
    pst_value_add_bool(lm, "enabled", n->lmtp_path[0] != '\0');
    pst_value_add_str(lm, "path", n->lmtp_path); /* "": LMTP is off */
    pst_value_add_str(lm, "unknown", n->cfg.lmtp_reject_unknown ? "reject" : "folder");
    pst_value_add_str(lm, "authserv_id", n->cfg.lmtp_authserv_id); /* "": no contact tiers */
    pst_relay_status(n, b);
    pst_value *pubs = pst_value_add_array(b, "published");
    if (n->id != NULL)
        (void)pst_store_published_list(n->store, on_published, pubs);
    if (n->id != NULL) {
        /* this device (issue 13): the identity key itself, or a paired one */
        pst_value *dv = pst_value_add_map(b, "device");
        char did[PST_DEVICE_ID_BUFSIZE];
        pst_device_id(pst_node_device_keys(n)->sign_pk, did);
        pst_value_add_str(dv, "id", did);
        pst_value_add_bool(dv, "holds_identity_key", n->holds_identity);
        pst_value_add_bool(dv, "revoked", pst_keys_self_revoked(n));
    }
    pst_value *notices = pst_value_add_array(b, "notices");
    if (n->id != NULL && pst_keys_self_revoked(n))
        pst_value_add_str(notices, NULL,
                          "this device was revoked from its identity: it gets no new mail and "
                          "its signatures are refused (pair it again with 'postern init --join')");
    (void)pst_trust_notices(n, notices);
    pst_clock_describe(n, b);
    pst_value *c = pst_value_add_map(b, "counters");
    for (unsigned i = 0; i < n->n_counters; i++)
        pst_value_add_uint(c, n->counters[i].name, n->counters[i].value);
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

/* ---- key-revoke [hex of a Revocation record] ------------------------------ */

typedef struct {
    pst_node *node;
    pst_node_reply_cb reply;
    void *user;
    uint8_t pk[32];
} revoke_ctx;

static void on_revocation_put(void *user, int status) {
    revoke_ctx *r = user;
    pst_value *b = pst_value_new_map();
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(r->pk, fp);
    pst_value_add_str(b, "fingerprint", fp);
    pst_value_add_str(b, "status", "revoked");
    pst_reply_published(r->reply, r->user, b, status);
    free(r);
}

void pst_node_cmd_revoke(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user) {
    uint8_t bytes[PST_RECORD_MAX];
    size_t len = 0;
    if (req->n_args != 1 || sodium_hex2bin(bytes, sizeof bytes, req->args[0], strlen(req->args[0]),
                                           NULL, &len, NULL) != 0) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "key-revoke takes one argument: the revocation "
                        "record in hex");
        return;
    }
    pst_revocation rev;
    int rc = pst_revocation_decode(bytes, len, &rev);
    if (rc == PST_OK)
        rc = pst_revocation_verify(&rev, pst_now());
    if (rc != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "the revocation is not valid: %s",
                        pst_strerror(rc));
        return;
    }
    rc = pst_store_revocation_put(n->store, rev.revoked_key, bytes, len, rev.created, pst_now());
    if (rc != PST_OK && rc != PST_E_EXISTS) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot store the revocation: %s",
                        pst_store_last_error(n->store));
        return;
    }
    revoke_ctx *r = calloc(1, sizeof *r);
    if (r == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "out of memory");
        return;
    }
    r->node = n;
    r->reply = reply;
    r->user = user;
    memcpy(r->pk, rev.revoked_key, 32);
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(rev.revoked_key, fp);
    pst_log_info("publishing the revocation of %s", fp);
    rc = pst_publish_revocation(n, bytes, len, on_revocation_put, r);
    if (rc != PST_OK)
        on_revocation_put(r, rc);
}
