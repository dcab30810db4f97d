/* Publication of our own records and re-publication of every revocation we
 * know. OpenDHT forgets a value 600 s after its last put, so a timer re-puts
 * everything every `republish` seconds (default 300). Our KeyRecord carries
 * our own 64-bit seq: any change (endpoint, bits, addresses) or a record past
 * half its lifetime is re-signed with a higher seq; otherwise the very same
 * bytes are re-put, so a restart does not churn the seq. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_keys.h"
#include "pst_log.h"

typedef struct {
    pst_node *node;
    int kind; /* PST_PUB_* for our own records, 0 for others' revocations */
    uint8_t slot[PST_SLOT_BYTES];
    pst_dht_done_cb done;
    void *user;
} put_ctx;

static void on_put_done(void *user, int status) {
    put_ctx *p = user;
    pst_node *n = p->node;
    n->ops_pending--;
    if (status == PST_OK) {
        pst_counter_add(n, "dht.puts_ok", 1);
        if (p->kind != 0 && !n->stopping)
            (void)pst_store_published_touch(n->store, p->kind, p->slot, pst_now());
    } else {
        pst_counter_add(n, "dht.puts_failed", 1);
        pst_log_debug("put failed: %s", pst_strerror(status));
    }
    if (p->done)
        p->done(p->user, status);
    free(p);
}

static int put_value(pst_node *n, int kind, const uint8_t slot[PST_SLOT_BYTES],
                     const uint8_t *bytes, size_t len, pst_dht_done_cb done, void *user) {
    put_ctx *p = calloc(1, sizeof *p);
    if (p == NULL)
        return PST_E_NOMEM;
    p->node = n;
    p->kind = kind;
    memcpy(p->slot, slot, PST_SLOT_BYTES);
    p->done = done;
    p->user = user;
    int rc = pst_dht_put(&n->dht, slot, bytes, len, false, PST_PUT_TIMEOUT_MS, on_put_done, p);
    if (rc != PST_OK) {
        free(p);
        return rc;
    }
    n->ops_pending++;
    return PST_OK;
}

int pst_publish_put(pst_node *n, int kind, const uint8_t slot[PST_SLOT_BYTES], const uint8_t *bytes,
                    size_t len, pst_dht_done_cb done, void *user) {
    return put_value(n, kind, slot, bytes, len, done, user);
}

/* ---- our KeyRecord and AddressClaims -------------------------------------- */

static void pick_endpoint(pst_node *n) {
    char host[PST_ADVERTISE_STRLEN];
    snprintf(host, sizeof host, "%s", n->cfg.advertise);
    if (strcmp(host, "auto") == 0) {
        snprintf(host, sizeof host, "127.0.0.1");
        uv_interface_address_t *ifs;
        int count;
        if (uv_interface_addresses(&ifs, &count) == 0) {
            for (int i = 0; i < count; i++) {
                if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET)
                    continue;
                uv_ip4_name(&ifs[i].address.address4, host, sizeof host);
                break;
            }
            uv_free_interface_addresses(ifs, count);
        }
    }
    /* an endpoint that does not fit PST_ENDPOINT_MAX is refused by the key
     * record encoder; say so rather than publish a truncated host */
    char ep[PST_ADVERTISE_STRLEN + 16];
    if (strchr(host, ':') != NULL)
        snprintf(ep, sizeof ep, "[%s]:%u", host, n->fetch_port);
    else
        snprintf(ep, sizeof ep, "%s:%u", host, n->fetch_port);
    if (strlen(ep) > PST_ENDPOINT_MAX)
        pst_log_error("advertised endpoint %s is longer than %u bytes: use a shorter host", ep,
                      PST_ENDPOINT_MAX);
    memcpy(n->endpoint, ep, PST_ENDPOINT_MAX);
    n->endpoint[PST_ENDPOINT_MAX] = '\0';
}

typedef struct {
    bool found;
    pst_keyrec kr;
} find_keyrec;

static int on_published_keyrec(const pst_store_published_row *row, void *user) {
    find_keyrec *f = user;
    if (row->kind == PST_PUB_KEYREC && pst_keyrec_decode(row->bytes, row->len, &f->kr) == PST_OK)
        f->found = true;
    return 0;
}

static bool same_content(const pst_keyrec *a, const pst_keyrec *b) {
    if (memcmp(a->enc_pk, b->enc_pk, sizeof a->enc_pk) != 0 ||
        a->has_revocation_pk != b->has_revocation_pk ||
        (a->has_revocation_pk &&
         memcmp(a->revocation_pk, b->revocation_pk, sizeof a->revocation_pk) != 0) ||
        a->n_addresses != b->n_addresses || a->n_endpoints != b->n_endpoints ||
        a->pow_bits != b->pow_bits)
        return false;
    for (uint32_t i = 0; i < a->n_addresses; i++)
        if (strcmp(a->addresses[i], b->addresses[i]) != 0)
            return false;
    for (uint32_t i = 0; i < a->n_endpoints; i++)
        if (strcmp(a->endpoints[i], b->endpoints[i]) != 0)
            return false;
    return true;
}

/* Signs and stores a new KeyRecord and AddressClaims when the content changed
 * or the current one is past half its lifetime. */
static int refresh_own_records(pst_node *n) {
    uint64_t now = pst_now();
    pst_keyrec want;
    memset(&want, 0, sizeof want);
    memcpy(want.signer, n->id->sign_pk, 32);
    memcpy(want.enc_pk, n->id->box_pk, 32);
    want.has_revocation_pk = n->id->has_rev_pk;
    if (n->id->has_rev_pk)
        memcpy(want.revocation_pk, n->id->rev_pk, 32);
    want.n_addresses = n->n_addresses;
    for (unsigned i = 0; i < n->n_addresses; i++)
        snprintf(want.addresses[i], sizeof want.addresses[i], "%s", n->addresses[i]);
    want.n_endpoints = 1;
    snprintf(want.endpoints[0], sizeof want.endpoints[0], "%s", n->endpoint);
    want.pow_bits = n->cfg.pow_bits;

    find_keyrec cur = {0};
    (void)pst_store_published_list(n->store, on_published_keyrec, &cur);
    if (cur.found && same_content(&cur.kr, &want) &&
        now < cur.kr.created + (cur.kr.expires - cur.kr.created) / 2 && cur.kr.created <= now) {
        n->own_seq = cur.kr.seq;
        return PST_OK;
    }

    /* New seq: above everything we ever used or saw for our own key (a
     * restored backup must not publish a seq others already consider old). */
    uint64_t stored_seq = 0, high = 0;
    (void)pst_store_meta_get_u64(n->store, "own_seq", &stored_seq);
    (void)pst_store_seq_high(n->store, n->id->sign_pk, &high);
    uint64_t seq = (stored_seq > high ? stored_seq : high) + 1;
    if (cur.found && cur.kr.seq >= seq)
        seq = cur.kr.seq + 1;

    want.seq = seq;
    want.created = now;
    want.expires = now + n->cfg.record_lifetime_s;
    int rc = pst_keyrec_sign(&want, n->id->sign_sk);
    uint8_t buf[PST_DHT_VALUE_MAX];
    size_t len = 0;
    if (rc == PST_OK)
        rc = pst_keyrec_encode(&want, buf, sizeof buf, &len);
    if (rc != PST_OK) {
        pst_log_error("cannot build our key record: %s", pst_strerror(rc));
        return rc;
    }
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_key(n->id->sign_pk, slot);
    /* persist the seq first: a crash after a put must never reuse it */
    if ((rc = pst_store_meta_set_u64(n->store, "own_seq", seq)) != PST_OK ||
        (rc = pst_store_published_put(n->store, PST_PUB_KEYREC, slot, buf, len, seq, now)) !=
            PST_OK) {
        pst_log_error("cannot save our key record: %s", pst_store_last_error(n->store));
        return rc;
    }
    (void)pst_store_keyrec_put(n->store, n->id->sign_pk, seq, want.created, want.expires, buf, len,
                               now);
    for (unsigned i = 0; i < n->n_addresses; i++) {
        pst_address_claim c;
        memset(&c, 0, sizeof c);
        c.created = now;
        c.expires = want.expires;
        memcpy(c.signer, n->id->sign_pk, 32);
        snprintf(c.address, sizeof c.address, "%s", n->addresses[i]);
        c.seq = seq;
        uint8_t cbuf[PST_DHT_VALUE_MAX];
        size_t clen;
        uint8_t cslot[PST_SLOT_BYTES];
        if (pst_address_claim_sign(&c, n->id->sign_sk) != PST_OK ||
            pst_address_claim_encode(&c, cbuf, sizeof cbuf, &clen) != PST_OK ||
            pst_slot_address(c.address, cslot) != PST_OK)
            continue;
        (void)pst_store_published_put(n->store, PST_PUB_ADDRCLAIM, cslot, cbuf, clen, seq, now);
    }
    n->own_seq = seq;
    pst_log_info("signed key record seq %llu (endpoint %s, pow bits %u, %u address%s)",
                 (unsigned long long)seq, n->endpoint, n->cfg.pow_bits, n->n_addresses,
                 n->n_addresses == 1 ? "" : "es");
    return PST_OK;
}

/* ---- the periodic re-put ---------------------------------------------------- */

static int on_published_row(const pst_store_published_row *row, void *user) {
    pst_node *n = user;
    /* a revoked key's own records are withdrawn: only the revocation stays */
    if (n->revoked && row->kind != PST_PUB_REVOCATION)
        return 0;
    (void)put_value(n, row->kind, row->slot, row->bytes, row->len, NULL, NULL);
    return 0;
}

/* Another key's revocation: a get of its slot first, and a re-put only when
 * fewer than PST_REVOCATION_COPIES_ENOUGH copies reached us since our last
 * round (the get's values go through ingest, which counts them). Each put is
 * a separate DHT value, so without this bound a slot held one copy per node
 * that ever saw the revocation, and every get of it returned them all. */
typedef struct {
    pst_node *node;
    uint8_t pk[32];
    uint8_t bytes[PST_RECORD_MAX];
    size_t len;
} reput_check;

static void on_check_value(void *user, const uint8_t *val, size_t len) {
    reput_check *c = user;
    (void)pst_ingest_key_value(c->node, c->pk, val, len, NULL, NULL, NULL);
}

static void on_check_done(void *user, int status) {
    reput_check *c = user;
    pst_node *n = c->node;
    n->ops_pending--;
    /* a failed get counts what it saw: copies scarce or unseen mean a put */
    (void)status;
    if (!n->stopping) {
        if (pst_keycache_revocation_reput(n, c->pk)) {
            uint8_t slot[PST_SLOT_BYTES];
            pst_slot_key(c->pk, slot);
            (void)put_value(n, 0, slot, c->bytes, c->len, NULL, NULL);
        } else {
            pst_counter_add(n, "publish.revocation_skipped", 1);
        }
    }
    free(c);
}

static int on_revocation_row(const pst_store_revocation_row *row, void *user) {
    pst_node *n = user;
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_key(row->pk, slot);
    /* the owner re-puts its own revocation every round, unconditionally; so
     * does a one-shot node (it counts nothing) */
    bool own = n->id != NULL && memcmp(row->pk, n->id->sign_pk, 32) == 0;
    reput_check *c = NULL;
    if (!own && n->mode == PST_NODE_DAEMON && row->len <= sizeof c->bytes)
        c = calloc(1, sizeof *c);
    if (c == NULL) {
        (void)put_value(n, 0, slot, row->bytes, row->len, NULL, NULL);
        return 0;
    }
    c->node = n;
    memcpy(c->pk, row->pk, 32);
    memcpy(c->bytes, row->bytes, row->len);
    c->len = row->len;
    if (pst_dht_get(&n->dht, slot, PST_LOOKUP_TIMEOUT_MS, on_check_value, on_check_done, c) !=
        PST_OK) {
        free(c);
        (void)put_value(n, 0, slot, row->bytes, row->len, NULL, NULL);
        return 0;
    }
    n->ops_pending++;
    return 0;
}

void pst_publish_now(pst_node *n) {
    if (n->stopping)
        return;
    if (n->id != NULL && !n->revoked && pst_store_is_revoked(n->store, n->id->sign_pk) == 1)
        n->revoked = true;
    /* a joined device has no identity secret key: it keeps alive what the
     * identity signed (the device list) but signs no key record */
    /* a home recovered from paper knows no seq of its own yet: it signs
     * once its device list replaced the old one, which needed a read of
     * the network (our key slot's listen brings the old record's seq) */
    uint64_t recovering = 0;
    (void)pst_store_meta_get_u64(n->store, PST_META_RECOVER_PENDING, &recovering);
    if (n->id != NULL && !n->revoked && n->holds_identity && recovering == 0)
        (void)refresh_own_records(n);
    pst_keys_devlist_poll_own(n);
    if (n->id != NULL)
        (void)pst_store_published_list(n->store, on_published_row, n);
    /* Every node that has seen a revocation keeps it alive, except in a
     * round after which enough copies of it reached us (docs/dht.md). */
    (void)pst_store_revocation_list(n->store, on_revocation_row, n);
    (void)pst_store_keyrec_purge_expired(n->store, pst_now());
    (void)pst_store_addrclaim_purge_expired(n->store, pst_now());
}

/* Re-puts come quickly at first, then every `republish` seconds: a network
 * that is still growing moves the closest nodes of our slots away from the
 * ones that stored our records (a node that started alone stored them only
 * locally), and OpenDHT does not hand values over to new closer nodes by
 * itself before it re-announces them. */
static const uint32_t fast_start_s[] = {2, 3, 5, 10, 20, 40, 80, 160};

static uint64_t next_delay_ms(pst_node *n) {
    uint64_t every = (uint64_t)n->cfg.republish_s * 1000u;
    if (n->publish_round < sizeof fast_start_s / sizeof fast_start_s[0]) {
        uint64_t fast = (uint64_t)fast_start_s[n->publish_round] * 1000u;
        n->publish_round++;
        return fast < every ? fast : every;
    }
    return every;
}

static void on_republish(uv_timer_t *t) {
    pst_node *n = t->data;
    pst_publish_now(n);
    if (!n->stopping)
        uv_timer_start(&n->republish_timer, on_republish, next_delay_ms(n), 0);
}

int pst_publish_start(pst_node *n) {
    pick_endpoint(n);
    uv_timer_init(n->loop, &n->republish_timer);
    n->republish_timer.data = n;
    pst_node_handle_ref(n);
    /* first round as soon as the loop runs; puts before joining are kept
     * locally by OpenDHT and re-put on the timer once peers answer */
    n->publish_round = 0;
    uv_timer_start(&n->republish_timer, on_republish, 0, 0);
    return PST_OK;
}

int pst_publish_revocation(pst_node *n, const uint8_t *bytes, size_t len, pst_dht_done_cb done,
                           void *user) {
    pst_revocation rev;
    int rc = pst_revocation_decode(bytes, len, &rev);
    if (rc != PST_OK)
        return rc;
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_key(rev.revoked_key, slot);
    int kind = 0;
    if (n->id != NULL && memcmp(rev.revoked_key, n->id->sign_pk, 32) == 0) {
        kind = PST_PUB_REVOCATION;
        n->revoked = true;
        (void)pst_store_published_put(n->store, kind, slot, bytes, len, 0, pst_now());
    }
    return put_value(n, kind, slot, bytes, len, done, user);
}
