/* Device lists in the DHT (issue 13): fetching an identity's list, keeping
 * our own alive and listening on it (so a device learns of new devices and
 * of its own revocation), and publishing a new list signed by the identity
 * key. Every value goes through pst_keys_devlist_ingest (devices.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_keys.h"
#include "pst_log.h"

typedef struct {
    pst_node *node;
    uint8_t identity[PST_SIGN_PK_BYTES];
    pst_keys_devlist_cb cb;
    void *arg;
    bool own_poll; /* the republish round's read of our own slot */
} fetch_ctx;

static void finish_recovery(pst_node *n);

static void on_fetch_value(void *user, const uint8_t *val, size_t len) {
    fetch_ctx *f = user;
    if (!f->node->stopping)
        (void)pst_keys_devlist_ingest(f->node, f->identity, val, len, NULL);
}

static void on_fetch_done(void *user, int status) {
    fetch_ctx *f = user;
    pst_node *n = f->node;
    n->ops_pending--;
    pst_devlist best;
    /* the store holds the highest seq of everything seen, this get included */
    int rc = status == PST_E_CLOSED ? status : pst_keys_devlist_cached(n, f->identity, &best);
    /* a recovery must see the network's list first, or its seq would be
     * below the list it means to replace */
    if (f->own_poll && status == PST_OK && pst_node_joined(n) && !n->stopping)
        finish_recovery(n);
    if (f->cb != NULL)
        f->cb(n, rc, rc == PST_OK ? &best : NULL, f->arg);
    free(f);
}

static int fetch(pst_node *n, const uint8_t identity_pk[32], pst_keys_devlist_cb cb, void *arg,
                 bool own_poll) {
    if (n->stopping)
        return PST_E_CLOSED;
    fetch_ctx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return PST_E_NOMEM;
    f->node = n;
    memcpy(f->identity, identity_pk, PST_SIGN_PK_BYTES);
    f->cb = cb;
    f->arg = arg;
    f->own_poll = own_poll;
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_devices(identity_pk, slot);
    int rc = pst_dht_get(&n->dht, slot, PST_LOOKUP_TIMEOUT_MS, on_fetch_value, on_fetch_done, f);
    if (rc != PST_OK) {
        free(f);
        return rc;
    }
    n->ops_pending++;
    return PST_OK;
}

int pst_keys_devlist_fetch(pst_node *n, const uint8_t identity_pk[32], pst_keys_devlist_cb cb,
                           void *arg) {
    return fetch(n, identity_pk, cb, arg, false);
}

static void on_own_value(void *user, const uint8_t *val, size_t len, bool expired) {
    pst_node *n = user;
    if (expired || n->stopping || n->id == NULL)
        return;
    (void)pst_keys_devlist_ingest(n, n->id->sign_pk, val, len, NULL);
}

int pst_keys_devlist_listen_own(pst_node *n) {
    uint8_t slot[PST_SLOT_BYTES];
    if (n->id == NULL || n->devlist_listen != NULL)
        return PST_OK;
    pst_slot_devices(n->id->sign_pk, slot);
    return pst_dht_listen(&n->dht, slot, on_own_value, n, &n->devlist_listen);
}

void pst_keys_devices_stop(pst_node *n) {
    if (n->devlist_listen != NULL)
        pst_dht_listen_cancel(&n->dht, n->devlist_listen);
    n->devlist_listen = NULL;
}

static void on_poll_done(pst_node *n, int rc, const pst_devlist *list, void *arg) {
    (void)rc;
    (void)list;
    (void)arg;
    n->devlist_poll_busy = false;
}

void pst_keys_devlist_poll_own(pst_node *n) {
    if (n->id == NULL || n->devlist_poll_busy || n->stopping)
        return;
    if (fetch(n, n->id->sign_pk, on_poll_done, NULL, true) == PST_OK)
        n->devlist_poll_busy = true;
}

int pst_keys_devlist_publish(pst_node *n, pst_devlist *l, pst_dht_done_cb done, void *user) {
    if (n->id == NULL || !n->holds_identity)
        return PST_E_NOKEY;
    pst_devlist cur;
    if (pst_keys_devlist_cached(n, n->id->sign_pk, &cur) == PST_OK && l->seq <= cur.seq)
        l->seq = cur.seq + 1;
    if (l->seq == 0)
        l->seq = 1;
    l->created = pst_now();
    l->expires = 0;
    (void)pst_devlist_trim(l);
    int rc = pst_devlist_sign(l, n->id->sign_sk);
    uint8_t buf[PST_DHT_VALUE_MAX];
    size_t len = 0;
    if (rc == PST_OK)
        rc = pst_devlist_encode(l, buf, sizeof buf, &len);
    if (rc == PST_OK)
        rc = pst_keys_devlist_ingest(n, n->id->sign_pk, buf, len, NULL);
    if (rc != PST_OK) {
        pst_log_error("cannot publish our device list: %s", pst_strerror(rc));
        return rc;
    }
    pst_log_info("published device list seq %llu: %u device%s, %u revoked",
                 (unsigned long long)l->seq, l->n_devices, l->n_devices == 1 ? "" : "s",
                 l->n_tombstones);
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_devices(n->id->sign_pk, slot);
    rc = pst_publish_put(n, PST_PUB_DEVLIST, slot, buf, len, done, user);
    /* the list is stored and re-put with our records even if this put failed */
    return rc == PST_OK ? PST_OK : (done != NULL ? (done(user, rc), PST_OK) : PST_OK);
}

/* `postern identity recover` left a mark: replace the list by one that
 * names only this device and revokes every device the old one named. */
static void finish_recovery(pst_node *n) {
    uint64_t pending = 0;
    if (!n->holds_identity || n->device == NULL ||
        pst_store_meta_get_u64(n->store, PST_META_RECOVER_PENDING, &pending) != PST_OK ||
        pending == 0)
        return;
    pst_devlist old, l;
    bool have = pst_keys_devlist_cached(n, n->id->sign_pk, &old) == PST_OK;
    memset(&l, 0, sizeof l);
    l.seq = have ? old.seq + 1 : 1;
    uint64_t now = pst_now();
    pst_device *self = &l.devices[l.n_devices++];
    memcpy(self->sign_pk, n->device->sign_pk, PST_SIGN_PK_BYTES);
    memcpy(self->box_pk, n->device->box_pk, PST_BOX_PK_BYTES);
    snprintf(self->name, sizeof self->name, "recovered");
    self->created = now;
    for (uint32_t i = 0; have && i < old.n_devices; i++) {
        /* the identity key is not a device that can be revoked */
        if (memcmp(old.devices[i].sign_pk, n->id->sign_pk, PST_SIGN_PK_BYTES) == 0 ||
            l.n_tombstones >= PST_DEVICE_TOMBSTONES_MAX)
            continue;
        memcpy(l.tombstones[l.n_tombstones].sign_pk, old.devices[i].sign_pk, PST_SIGN_PK_BYTES);
        l.tombstones[l.n_tombstones++].revoked_at = now;
    }
    for (uint32_t i = 0; have && i < old.n_tombstones; i++) {
        if (l.n_tombstones >= PST_DEVICE_TOMBSTONES_MAX)
            break;
        l.tombstones[l.n_tombstones++] = old.tombstones[i];
    }
    if (pst_keys_devlist_publish(n, &l, NULL, NULL) != PST_OK)
        return; /* tried again at the next round */
    (void)pst_store_meta_set_u64(n->store, PST_META_RECOVER_PENDING, 0);
    pst_log_info("recovery: device list seq %llu revokes %u old device%s",
                 (unsigned long long)l.seq, l.n_tombstones, l.n_tombstones == 1 ? "" : "s");
}
