/* The verified key cache kept fresh: the key and address slots of the keys
 * a person looked up (`send`, `key get`) are listened to, so that a new
 * record, a new claim or a revocation put there reaches the store (through
 * ingest, every value checked as a get's) within the listen's delay, and a
 * lookup of that key or address is answered from the store without a DHT
 * get when the store holds a revocation or an unexpired record (lookup.c):
 * `send` to a known recipient makes no lookup on its hot path.
 *
 * The DHT stays the check: a watched slot counts as fresh only while its
 * listen runs and a get answered for it within PST_KEYCACHE_RECHECK_MS
 * (the lifetime of an unrefreshed DHT value: a listen that silently lost
 * its peers is caught by the next get); the record's own expiry and any
 * revocation in the store are applied on every answer (lookup.c, describe).
 * At most PST_KEYCACHE_WATCH_MAX slots are watched; the least recently used
 * gives way. A one-shot node watches nothing.
 *
 * A watched key's device-list slot is listened to as well (issue 13): a
 * device paired to a contact reaches our cache within the listen's delay,
 * so mail we send it next is sealed to the new device too, instead of
 * only after send's next look at the list (a minute later).
 *
 * A revoked key is not watched (issue 16): a revocation is permanent and in
 * the store, lookups answer "revoked" from it, and every node that saw the
 * revocation re-puts it, so a watch would only receive each of those
 * re-puts. Once the store holds a verified revocation for a watched key,
 * its listens are cancelled from a zero timer, never from inside their own
 * callback (the DHT's drain may still hold queued values for that handle).
 *
 * The same struct counts the copies of each revocation that reached us
 * (gets, listens) since our last re-put of it: publish.c skips a re-put
 * when PST_REVOCATION_COPIES_ENOUGH copies show the slot is well kept. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pst_keys.h"
#include "pst_log.h"

typedef struct {
    pst_node *node;
    bool used, by_address;
    uint8_t pk[32];
    char address[PST_ADDRESS_MAX + 1];
    pst_dht_listen_handle *listen;
    pst_dht_listen_handle *dev_listen; /* the device-list slot of a key watch */
    uint64_t checked_ms;               /* uv_now() of the last get that answered for the slot */
    uint64_t used_ms;                  /* uv_now() of the last lookup that used it */
} watch;

typedef struct {
    uint8_t pk[32];
    uint32_t copies;  /* copies received since our last re-put */
    uint64_t seen_ms; /* uv_now() of the last copy: the oldest gives way */
} rev_seen;

struct pst_keycache {
    watch w[PST_KEYCACHE_WATCH_MAX];
    rev_seen rev[PST_REVSEEN_MAX];
    uv_timer_t sweep; /* drops the watches of revoked keys, outside callbacks */
};

static void on_sweep_closed(uv_handle_t *h) {
    pst_node *n = h->data;
    free((char *)h - offsetof(struct pst_keycache, sweep));
    pst_node_handle_unref(n);
}

/* Allocates the cache and its timer on first use; false when out of memory
 * or when the node cannot hold handles (stopping). */
static bool cache_get(pst_node *n) {
    if (n->keycache != NULL)
        return true;
    if (n->stopping || n->loop == NULL)
        return false;
    if ((n->keycache = calloc(1, sizeof *n->keycache)) == NULL)
        return false;
    uv_timer_init(n->loop, &n->keycache->sweep);
    n->keycache->sweep.data = n;
    pst_node_handle_ref(n);
    return true;
}

static bool same(const watch *w, bool by_address, const uint8_t pk[32], const char *address) {
    return w->used && w->by_address == by_address &&
           (by_address ? strcmp(w->address, address) == 0 : memcmp(w->pk, pk, 32) == 0);
}

static watch *find(pst_node *n, bool by_address, const uint8_t pk[32], const char *address) {
    if (n->keycache == NULL)
        return NULL;
    for (unsigned i = 0; i < PST_KEYCACHE_WATCH_MAX; i++)
        if (same(&n->keycache->w[i], by_address, pk, address))
            return &n->keycache->w[i];
    return NULL;
}

static void drop(pst_node *n, watch *w);

static void on_sweep(uv_timer_t *t) {
    pst_node *n = t->data;
    if (n->keycache == NULL || n->stopping)
        return;
    for (unsigned i = 0; i < PST_KEYCACHE_WATCH_MAX; i++) {
        watch *w = &n->keycache->w[i];
        if (w->used && !w->by_address && pst_store_is_revoked(n->store, w->pk) == 1) {
            pst_counter_add(n, "keycache.revoked_unwatched", 1);
            drop(n, w);
        }
    }
}

static void on_listen(void *user, const uint8_t *val, size_t len, bool expired) {
    watch *w = user;
    if (expired)
        return; /* a value's end says nothing: the records carry their own expiry */
    pst_node *n = w->node;
    pst_counter_add(n, "keycache.listen_values", 1);
    if (w->by_address) {
        pst_address_claim c;
        (void)pst_ingest_address_value(n, w->address, val, len, &c);
        return;
    }
    bool is_rev = false;
    int rc = pst_ingest_key_value(n, w->pk, val, len, NULL, NULL, &is_rev);
    if (is_rev && rc == PST_OK && n->keycache != NULL && !n->stopping)
        uv_timer_start(&n->keycache->sweep, on_sweep, 0, 0);
}

static void on_dev_listen(void *user, const uint8_t *val, size_t len, bool expired) {
    watch *w = user;
    if (expired)
        return;
    pst_counter_add(w->node, "keycache.devlist_values", 1);
    (void)pst_keys_devlist_ingest(w->node, w->pk, val, len, NULL);
}

static void drop(pst_node *n, watch *w) {
    if (w->listen != NULL)
        pst_dht_listen_cancel(&n->dht, w->listen);
    if (w->dev_listen != NULL)
        pst_dht_listen_cancel(&n->dht, w->dev_listen);
    memset(w, 0, sizeof *w);
}

bool pst_keycache_fresh(pst_node *n, bool by_address, const uint8_t pk[32], const char *address) {
    watch *w = find(n, by_address, pk, address);
    if (w == NULL || w->listen == NULL)
        return false;
    uint64_t now = uv_now(n->loop);
    if (now - w->checked_ms >= PST_KEYCACHE_RECHECK_MS)
        return false;
    w->used_ms = now;
    return true;
}

void pst_keycache_checked(pst_node *n, bool by_address, const uint8_t pk[32], const char *address) {
    if (n->mode != PST_NODE_DAEMON || n->stopping || !n->dht_live)
        return;
    /* the store answers for a revoked key for good: nothing to watch */
    if (!by_address && pst_store_is_revoked(n->store, pk) == 1)
        return;
    if (!cache_get(n))
        return;
    uint64_t now = uv_now(n->loop);
    watch *w = find(n, by_address, pk, address);
    if (w == NULL) {
        /* a free entry, else the least recently used */
        w = &n->keycache->w[0];
        for (unsigned i = 0; i < PST_KEYCACHE_WATCH_MAX && w->used; i++)
            if (!n->keycache->w[i].used || n->keycache->w[i].used_ms < w->used_ms)
                w = &n->keycache->w[i];
        if (w->used) {
            pst_counter_add(n, "keycache.evicted", 1);
            drop(n, w);
        }
        w->node = n;
        w->used = true;
        w->by_address = by_address;
        if (by_address)
            snprintf(w->address, sizeof w->address, "%s", address);
        else
            memcpy(w->pk, pk, 32);
    }
    if (w->listen == NULL) {
        uint8_t slot[PST_SLOT_BYTES];
        int rc = by_address ? pst_slot_address(w->address, slot) : (pst_slot_key(w->pk, slot), 0);
        if (rc != PST_OK || pst_dht_listen(&n->dht, slot, on_listen, w, &w->listen) != PST_OK) {
            memset(w, 0, sizeof *w); /* not watched: every lookup asks the DHT */
            return;
        }
    }
    if (!by_address && w->dev_listen == NULL) {
        /* without it, send's own look at the list (a minute apart) still
         * finds a new device: this only makes it sooner */
        uint8_t slot[PST_SLOT_BYTES];
        pst_slot_devices(w->pk, slot);
        if (pst_dht_listen(&n->dht, slot, on_dev_listen, w, &w->dev_listen) != PST_OK)
            w->dev_listen = NULL;
    }
    w->checked_ms = now;
    w->used_ms = now;
}

unsigned pst_keycache_watched(const pst_node *n) {
    unsigned k = 0;
    for (unsigned i = 0; n->keycache != NULL && i < PST_KEYCACHE_WATCH_MAX; i++)
        k += n->keycache->w[i].listen != NULL;
    return k;
}

void pst_keycache_stop(pst_node *n) {
    if (n->keycache == NULL)
        return;
    for (unsigned i = 0; i < PST_KEYCACHE_WATCH_MAX; i++)
        if (n->keycache->w[i].used)
            drop(n, &n->keycache->w[i]);
    /* freed by the timer's close callback */
    uv_close((uv_handle_t *)&n->keycache->sweep, on_sweep_closed);
    n->keycache = NULL;
}

static rev_seen *rev_find(pst_node *n, const uint8_t pk[32], bool add) {
    if (n->keycache == NULL)
        return NULL;
    rev_seen *oldest = &n->keycache->rev[0];
    for (unsigned i = 0; i < PST_REVSEEN_MAX; i++) {
        rev_seen *r = &n->keycache->rev[i];
        if (r->seen_ms != 0 && memcmp(r->pk, pk, 32) == 0)
            return r;
        if (r->seen_ms < oldest->seen_ms)
            oldest = r;
    }
    if (!add)
        return NULL;
    memset(oldest, 0, sizeof *oldest);
    memcpy(oldest->pk, pk, 32);
    return oldest;
}

void pst_keycache_revocation_copy(pst_node *n, const uint8_t pk[32]) {
    if (n->mode != PST_NODE_DAEMON || !cache_get(n))
        return;
    rev_seen *r = rev_find(n, pk, true);
    r->seen_ms = uv_now(n->loop) + 1; /* 0 marks a free entry */
    if (r->copies < UINT32_MAX)
        r->copies++;
}

bool pst_keycache_revocation_reput(pst_node *n, const uint8_t pk[32]) {
    rev_seen *r = rev_find(n, pk, false);
    bool enough = r != NULL && r->copies >= PST_REVOCATION_COPIES_ENOUGH;
    pst_log_debug("revocation round: %u copies since the last", r != NULL ? r->copies : 0u);
    if (r != NULL)
        r->copies = 0; /* count afresh until the next round */
    return !enough;
}
