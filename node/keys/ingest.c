/* Ingest: the one gate for values that come out of the DHT. It validates
 * what a key slot, an address slot or a vouch slot holds (key records,
 * revocations, address claims, endorsements) and stores what the store keeps
 * (key records, revocations, claims); lookup.c, vouch.c and vouch_check.c
 * use the same checks. It also listens on and polls our own slots, so that
 * what others put there (vouches, replays, junk) is validated and counted.
 *
 * Anyone can put anything at any slot, so the order is cheapest first: size
 * cap, record type, strict decode, slot match, signature and time,
 * revocation, then the sequence rule in the store. Each rejection is counted
 * by slot and reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_keys.h"
#include "pst_log.h"
#include "pst_record.h"
#include "pst_seen.h"

const char *pst_slot_kind_name(pst_slot_kind kind) {
    static const char *const names[] = {
        [PST_SLOT_KEY] = "key",     [PST_SLOT_ADDRESS] = "address", [PST_SLOT_INBOX] = "inbox",
        [PST_SLOT_VOUCH] = "vouch", [PST_SLOT_DEVICES] = "devices",
    };
    return PST_NAME_OF(names, kind, "unknown");
}

static int reject(pst_node *n, pst_slot_kind kind, int err) {
    char buf[40];
    pst_counter_rejected(n, pst_slot_kind_name(kind), pst_err_reason(err, buf, sizeof buf));
    return err;
}

static int reject_named(pst_node *n, pst_slot_kind kind, int err, const char *reason) {
    pst_counter_rejected(n, pst_slot_kind_name(kind), reason);
    return err;
}

static int check_frame(pst_node *n, pst_slot_kind kind, const uint8_t *val, size_t len,
                       pst_rec_type *type) {
    if (len > PST_DHT_VALUE_MAX)
        return reject_named(n, kind, PST_E_TOOBIG, "oversize");
    int rc = pst_record_peek_type(val, len, type);
    if (rc != PST_OK)
        return reject(n, kind, rc);
    return PST_OK;
}

static int ingest_revocation(pst_node *n, const uint8_t pk[32], const uint8_t *val, size_t len,
                             pst_revocation *out) {
    pst_revocation rev;
    int rc = pst_revocation_decode(val, len, &rev);
    if (rc != PST_OK)
        return reject(n, PST_SLOT_KEY, rc);
    if (memcmp(rev.revoked_key, pk, 32) != 0)
        return reject_named(n, PST_SLOT_KEY, PST_E_MISMATCH, "slot_mismatch");
    rc = pst_revocation_verify(&rev, pst_now());
    if (rc != PST_OK)
        return reject(n, PST_SLOT_KEY, rc);
    /* the store answers 0 for bytes it already has: only a first sighting is
     * news worth a log line and a counter */
    bool known = pst_store_is_revoked(n->store, pk) == 1;
    rc = pst_store_revocation_put(n->store, pk, val, len, rev.created, pst_now());
    if (rc == PST_OK && !known) {
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(pk, fp);
        pst_counter_add(n, "accepted.revocation", 1);
        pst_log_info("key %s is revoked (reason %llu): stored for good and re-published", fp,
                     (unsigned long long)rev.reason);
        if (n->id != NULL && memcmp(pk, n->id->sign_pk, 32) == 0)
            n->revoked = true;
    } else if (rc == PST_OK || rc == PST_E_EXISTS) {
        /* PST_OK with `known`: the same bytes again (every later lookup and
         * re-put); PST_E_EXISTS: another valid revocation of the same key.
         * Either is a copy that bounds our re-puts (publish.c). */
        pst_keycache_revocation_copy(n, pk);
    } else {
        pst_log_warn("cannot store a revocation: %s", pst_store_last_error(n->store));
        return rc;
    }
    if (out)
        *out = rev;
    return PST_OK;
}

int pst_ingest_key_value(pst_node *n, const uint8_t pk[32], const uint8_t *val, size_t len,
                         pst_keyrec *out_keyrec, pst_revocation *out_rev, bool *is_revocation) {
    pst_rec_type type;
    if (is_revocation)
        *is_revocation = false;
    int rc = check_frame(n, PST_SLOT_KEY, val, len, &type);
    if (rc != PST_OK)
        return rc;
    if (type == PST_REC_REVOCATION) {
        if (is_revocation)
            *is_revocation = true;
        return ingest_revocation(n, pk, val, len, out_rev);
    }
    if (type != PST_REC_KEY)
        return reject_named(n, PST_SLOT_KEY, PST_E_RECTYPE, "wrong_type");
    pst_keyrec kr;
    rc = pst_keyrec_decode(val, len, &kr);
    if (rc != PST_OK)
        return reject(n, PST_SLOT_KEY, rc);
    if (memcmp(kr.signer, pk, 32) != 0)
        return reject_named(n, PST_SLOT_KEY, PST_E_MISMATCH, "slot_mismatch");
    rc = pst_keyrec_verify(&kr, pst_now());
    if (rc == PST_E_EXPIRED || rc == PST_E_NOTYET) {
        /* the window is checked before the signature: refused for its time
         * only when authentic, checked at its own time */
        if (pst_keyrec_verify(&kr, kr.created) != PST_OK)
            return reject_named(n, PST_SLOT_KEY, PST_E_SIGNATURE, "signature");
        if (out_keyrec != NULL)
            *out_keyrec = kr; /* lookups report "expired" or "from_future" */
        return reject_named(n, PST_SLOT_KEY, rc, rc == PST_E_NOTYET ? "notyet" : "expired");
    }
    if (rc != PST_OK)
        return reject(n, PST_SLOT_KEY, rc);
    if (pst_store_is_revoked(n->store, pk) != 0)
        return reject_named(n, PST_SLOT_KEY, PST_E_REVOKED, "revoked_key");
    rc = pst_store_keyrec_put(n->store, pk, kr.seq, kr.created, kr.expires, val, len, pst_now());
    if (rc == PST_E_STALE)
        return reject_named(n, PST_SLOT_KEY, rc, "stale_seq");
    if (rc != PST_OK)
        return reject(n, PST_SLOT_KEY, rc);
    if (out_keyrec)
        *out_keyrec = kr;
    return PST_OK;
}

int pst_ingest_address_value(pst_node *n, const char *address, const uint8_t *val, size_t len,
                             pst_address_claim *out) {
    pst_rec_type type;
    int rc = check_frame(n, PST_SLOT_ADDRESS, val, len, &type);
    if (rc != PST_OK)
        return rc;
    if (type != PST_REC_ADDRESS_CLAIM)
        return reject_named(n, PST_SLOT_ADDRESS, PST_E_RECTYPE, "wrong_type");
    pst_address_claim c;
    rc = pst_address_claim_decode(val, len, &c);
    if (rc != PST_OK)
        return reject(n, PST_SLOT_ADDRESS, rc);
    if (strcmp(c.address, address) != 0)
        return reject_named(n, PST_SLOT_ADDRESS, PST_E_MISMATCH, "slot_mismatch");
    rc = pst_address_claim_verify(&c, pst_now());
    if (rc != PST_OK)
        return reject(n, PST_SLOT_ADDRESS, rc);
    if (pst_store_is_revoked(n->store, c.signer) != 0) {
        if (out) /* authentic: a lookup still lists the key, as revoked */
            *out = c;
        return reject_named(n, PST_SLOT_ADDRESS, PST_E_REVOKED, "revoked_key");
    }
    rc = pst_store_addrclaim_put(n->store, address, c.signer, c.seq, c.expires, val, len);
    if (rc == PST_E_STALE)
        return reject_named(n, PST_SLOT_ADDRESS, rc, "stale_seq");
    if (rc != PST_OK)
        return reject(n, PST_SLOT_ADDRESS, rc);
    if (out)
        *out = c;
    return PST_OK;
}

int pst_vouch_value_decode(const uint8_t subject[32], const uint8_t *val, size_t len,
                           pst_endorsement *out, const char **reason) {
    const char *why = NULL;
    pst_rec_type type;
    int rc = PST_OK;
    memset(out, 0, sizeof *out);
    if (len > PST_DHT_VALUE_MAX) {
        rc = PST_E_TOOBIG;
        why = "oversize";
    } else if ((rc = pst_record_peek_type(val, len, &type)) != PST_OK) {
        /* named after rc */
    } else if (type != PST_REC_ENDORSEMENT) {
        rc = PST_E_RECTYPE;
        why = "wrong_type";
    } else if ((rc = pst_endorsement_decode(val, len, out)) != PST_OK) {
        /* named after rc */
    } else if (memcmp(out->subject, subject, 32) != 0) {
        rc = PST_E_MISMATCH;
        why = "slot_mismatch";
    }
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    if (reason != NULL)
        *reason = why;
    return rc;
}

int pst_vouch_value_verify(pst_node *n, const pst_endorsement *e, const char **reason) {
    const char *why = NULL;
    int rc = pst_endorsement_verify(e, pst_now());
    if (rc == PST_OK && pst_store_is_revoked(n->store, e->signer) != 0) {
        rc = PST_E_REVOKED;
        why = "revoked_key";
    }
    if (reason != NULL)
        *reason = why;
    return rc;
}

int pst_ingest_vouch_value(pst_node *n, const uint8_t subject[32], const uint8_t *val, size_t len,
                           pst_endorsement *out) {
    pst_endorsement e;
    const char *why = NULL;
    int rc = pst_vouch_value_decode(subject, val, len, &e, &why);
    if (rc == PST_OK)
        rc = pst_vouch_value_verify(n, &e, &why);
    if (rc != PST_OK)
        return why != NULL ? reject_named(n, PST_SLOT_VOUCH, rc, why)
                           : reject(n, PST_SLOT_VOUCH, rc);
    pst_counter_add(n, "accepted.endorsement", 1);
    if (out)
        *out = e;
    return PST_OK;
}

/* ---- listening on our own slots ---------------------------------------------
 * Others can write into our slots (that is how mail and vouches arrive, and
 * how an attacker would try a replay): every value there is validated and
 * counted, so `postern status` shows what was thrown at us. A listen misses
 * values when OpenDHT drops its notifications under load, so the slots are
 * also read with the inbox poll; a seen set per slot (node/core/seen.c) makes
 * each distinct value cost one look and one count, however often OpenDHT
 * hands it over. */

#define PST_OWN_SEEN_SLOTS 8192u /* per slot: 4,096 values per generation */
#define PST_OWN_SEEN_ROTATE_S 1800u

typedef struct {
    pst_node *node;
    pst_slot_kind kind;
    char address[PST_ADDRESS_MAX + 1];
    uint8_t slot[PST_SLOT_BYTES];
    bool get_in_flight;
    uint64_t polled_ms; /* when its last poll started */
    pst_seen seen;
    uint8_t seen_mem[PST_SEEN_MEM_BYTES(PST_OWN_SEEN_SLOTS)]; /* freed with the struct */
} own_listen;

static void own_value(own_listen *l, const uint8_t *val, size_t len) {
    pst_node *n = l->node;
    uint8_t key[PST_SEEN_KEY];
    pst_seen_key(&l->seen, NULL, 0, val, len, key);
    if (pst_seen_has(&l->seen, key))
        return;
    pst_counter_add(n, "dht.values_seen", 1);
    int rc = PST_OK;
    switch (l->kind) {
    case PST_SLOT_KEY:
        rc = pst_ingest_key_value(n, n->id->sign_pk, val, len, NULL, NULL, NULL);
        break;
    case PST_SLOT_ADDRESS:
        rc = pst_ingest_address_value(n, l->address, val, len, NULL);
        break;
    case PST_SLOT_VOUCH:
        rc = pst_ingest_vouch_value(n, n->id->sign_pk, val, len, NULL);
        break;
    case PST_SLOT_DEVICES: /* devices.c listens on that slot itself */
    case PST_SLOT_INBOX:
        break;
    }
    /* a local failure is not the value's fault: look at it again next time */
    if (rc != PST_E_STORE && rc != PST_E_NOMEM && rc != PST_E_IO && rc != PST_E_BUSY)
        pst_seen_add(&l->seen, key, pst_now());
}

static void on_own_value(void *user, const uint8_t *val, size_t len, bool expired) {
    own_listen *l = user;
    pst_node *n = l->node;
    if (expired || n->stopping || n->id == NULL)
        return;
    own_value(l, val, len);
}

/* A poll's get carries the node and the listen's index: it may end after
 * the listens are gone (node stopping), and then only frees itself. */
typedef struct {
    pst_node *node;
    unsigned index;
} own_get;

static own_listen *own_get_listen(own_get *g) {
    pst_node *n = g->node;
    if (n->stopping || n->id == NULL || g->index >= n->n_listens)
        return NULL;
    return n->listen_ctx[g->index];
}

static void on_own_get_value(void *user, const uint8_t *val, size_t len) {
    own_listen *l = own_get_listen(user);
    if (l != NULL)
        own_value(l, val, len);
}

static void on_own_get_done(void *user, int status) {
    (void)status;
    own_listen *l = own_get_listen(user);
    if (l != NULL) {
        pst_node *n = ((own_get *)user)->node;
        char name[PST_COUNTER_NAME_MAX];
        l->get_in_flight = false;
        pst_counter_add(n, "dht.own_slot_reads", 1);
        /* per kind, so a test (and `postern status`) sees every slot read */
        snprintf(name, sizeof name, "dht.own_slot_reads.%s", pst_slot_kind_name(l->kind));
        pst_counter_add(n, name, 1);
    }
    free(user);
}

bool pst_ingest_own_get_busy(pst_node *n) {
    for (unsigned i = 0; i < n->n_listens; i++) {
        const own_listen *l = n->listen_ctx[i];
        if (l != NULL && l->get_in_flight)
            return true;
    }
    return false;
}

/* One slot per call, the one read longest ago, and never two at once: a
 * slot full of junk is thousands of values, and several such gets together
 * would overrun the DHT layer's queue (PST_DHT_QUEUE_MAX). */
void pst_ingest_poll_own(pst_node *n) {
    own_listen *oldest = NULL;
    unsigned index = 0;
    for (unsigned i = 0; i < n->n_listens && !n->stopping; i++) {
        own_listen *l = n->listen_ctx[i];
        if (l == NULL)
            continue;
        if (l->get_in_flight)
            return;
        if (oldest == NULL || l->polled_ms < oldest->polled_ms) {
            oldest = l;
            index = i;
        }
    }
    if (oldest == NULL)
        return;
    own_get *g = calloc(1, sizeof *g);
    if (g == NULL)
        return;
    g->node = n;
    g->index = index;
    oldest->polled_ms = uv_now(n->loop);
    if (pst_dht_get(&n->dht, oldest->slot, PST_LOOKUP_TIMEOUT_MS, on_own_get_value, on_own_get_done,
                    g) != PST_OK)
        free(g);
    else
        oldest->get_in_flight = true;
}

int pst_ingest_listen_own(pst_node *n) {
    uint8_t slot[PST_SLOT_BYTES];
    struct {
        pst_slot_kind kind;
        const char *address;
    } want[PST_KEYREC_ADDRESSES_MAX + 2];
    unsigned nwant = 0;
    want[nwant].kind = PST_SLOT_KEY;
    want[nwant++].address = NULL;
    want[nwant].kind = PST_SLOT_VOUCH;
    want[nwant++].address = NULL;
    for (unsigned i = 0; i < n->n_addresses; i++) {
        want[nwant].kind = PST_SLOT_ADDRESS;
        want[nwant++].address = n->addresses[i];
    }
    for (unsigned i = 0; i < nwant && n->n_listens < sizeof n->listens / sizeof n->listens[0];
         i++) {
        own_listen *l = calloc(1, sizeof *l);
        if (l == NULL)
            return PST_E_NOMEM;
        l->node = n;
        l->kind = want[i].kind;
        pst_seen_init(&l->seen, l->seen_mem, PST_OWN_SEEN_SLOTS, PST_OWN_SEEN_ROTATE_S, pst_now());
        if (want[i].kind == PST_SLOT_KEY)
            pst_slot_key(n->id->sign_pk, slot);
        else if (want[i].kind == PST_SLOT_VOUCH)
            pst_slot_vouch(n->id->sign_pk, slot);
        else {
            snprintf(l->address, sizeof l->address, "%s", want[i].address);
            if (pst_slot_address(l->address, slot) != PST_OK) {
                free(l);
                continue;
            }
        }
        memcpy(l->slot, slot, sizeof l->slot);
        int rc = pst_dht_listen(&n->dht, slot, on_own_value, l, &n->listens[n->n_listens]);
        if (rc != PST_OK) {
            free(l);
            return rc;
        }
        n->listen_ctx[n->n_listens++] = l;
    }
    return PST_OK;
}
