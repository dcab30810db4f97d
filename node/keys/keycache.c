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
 * only after send's next look at the list (a minute later). */
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

struct pst_keycache {
    watch w[PST_KEYCACHE_WATCH_MAX];
};

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

static void on_listen(void *user, const uint8_t *val, size_t len, bool expired) {
    watch *w = user;
    if (expired)
        return; /* a value's end says nothing: the records carry their own expiry */
    pst_node *n = w->node;
    pst_counter_add(n, "keycache.listen_values", 1);
    if (w->by_address) {
        pst_address_claim c;
        (void)pst_ingest_address_value(n, w->address, val, len, &c);
    } else {
        (void)pst_ingest_key_value(n, w->pk, val, len, NULL, NULL, NULL);
    }
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
    if (n->keycache == NULL && (n->keycache = calloc(1, sizeof *n->keycache)) == NULL)
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
    free(n->keycache);
    n->keycache = NULL;
}
