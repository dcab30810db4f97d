/* `send`, a recipient's devices (issue 13): an identity that publishes a
 * device list gets its notification sealed to each current device (type
 * 15), so that every device fetches its own copy; an identity without one
 * gets today's single seal to its key record's box key.
 *
 * The list comes from the keys room's cache (verified lists only). A send
 * waits for one DHT get of the devices slot
 * - the first time it writes to an identity with no list cached (else its
 *   first mail after pairing would reach only the device holding the
 *   identity key), and
 * - when a list is cached but was last looked at more than
 *   PST_OUTBOX_DEVLIST_FRESH_S ago (a device revoked since must not get
 *   new mail: revocation takes effect within that time for every sender).
 * An identity found without a list is looked at again in the background
 * after PST_OUTBOX_DEVCHECK_S (a minute), so mail to the many one-device
 * identities never waits for the DHT after the first message. A list
 * published since reaches the cache sooner through the keys room's listen
 * on the devices slot of a watched key (keycache.c); without one, a device
 * paired since gets our mail from the first message after that look. */
#include <string.h>

#include "outbox_int.h"
#include "pst_log.h"

#include "send_int.h"

_Static_assert(PST_NOTIFY_DEVICES_MAX == PST_DEVICES_MAX, "one key seal per listed device");

static uint64_t *devcheck_at(struct pst_outbox *o, const uint8_t *pk) {
    return pst_recent_find(o->devcheck, PST_OUTBOX_DEVCHECK_MAX, pk);
}

static void devcheck_note(struct pst_outbox *o, const uint8_t *pk, uint64_t now) {
    pst_recent_note(o->devcheck, PST_OUTBOX_DEVCHECK_MAX, pk, now);
}

static void take_devices(send_rcpt *r, const pst_devlist *l) {
    r->n_devs = 0;
    for (uint32_t i = 0; i < l->n_devices && i < PST_NOTIFY_DEVICES_MAX; i++) {
        memcpy(r->dev_pk[r->n_devs], l->devices[i].sign_pk, PST_SIGN_PK_BYTES);
        memcpy(r->dev_box[r->n_devs], l->devices[i].box_pk, PST_BOX_PK_BYTES);
        r->n_devs++;
    }
}

/* The background refresh: the keys room caches what it finds. */
static void on_refreshed(pst_node *n, int rc, const pst_devlist *list, void *arg) {
    (void)list;
    (void)arg;
    if (rc != PST_OK && rc != PST_E_NOTFOUND && rc != PST_E_CLOSED)
        pst_counter_add(n, "outbox.devlist_lookup_failed", 1);
}

static void on_devlist(pst_node *n, int rc, const pst_devlist *list, void *arg) {
    send_rcpt *r = arg;
    if (rc == PST_OK && list != NULL) {
        take_devices(r, list);
    } else if (rc != PST_E_NOTFOUND && rc != PST_E_CLOSED) {
        /* sealed to the identity key: the device holding it can read it */
        pst_counter_add(n, "outbox.devlist_lookup_failed", 1);
        pst_log_warn("cannot look up the devices of %s (%s): %s", r->query, pst_strerror(rc),
                     r->n_devs > 0 ? "sealing to the devices last known"
                                   : "sealing to its key only");
    }
    if (rc != PST_E_CLOSED && n->outbox != NULL)
        devcheck_note(n->outbox, r->pk, pst_now());
    pst_send_rcpt_resolved(r);
}

void pst_outbox_devlist_refresh(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES],
                                uint64_t max_age) {
    struct pst_outbox *o = n->outbox;
    uint64_t now = pst_now();
    if (o == NULL || o->stopping || n->stopping)
        return;
    uint64_t *at = devcheck_at(o, pk);
    if (at != NULL && *at + max_age > now)
        return;
    devcheck_note(o, pk, now);
    if (pst_keys_devlist_fetch(n, pk, on_refreshed, NULL) == PST_OK)
        pst_counter_add(n, "outbox.devlist_refreshes", 1);
}

void pst_send_devices_resolve(send_rcpt *r) {
    send_op *op = r->op;
    pst_node *n = op->node;
    uint64_t now = pst_now();
    pst_devlist l;
    r->n_devs = 0;
    if (op->sync_flags != 0) {
        /* a sync record: our other devices, from our own list (kept fresh
         * by its listen), never this one */
        r->flags = op->sync_flags;
        r->n_devs = pst_sync_devices(n, r->dev_pk, r->dev_box);
        pst_send_rcpt_resolved(r);
        return;
    }
    bool cached = pst_keys_devlist_cached(n, r->pk, &l) == PST_OK;
    if (cached)
        take_devices(r, &l);
    uint64_t *at = devcheck_at(op->o, r->pk);
    uint64_t window = cached ? PST_OUTBOX_DEVLIST_FRESH_S : PST_OUTBOX_DEVCHECK_S;
    bool fresh = at != NULL && *at + window > now;
    if (fresh || n->stopping) {
        pst_send_rcpt_resolved(r);
        return;
    }
    if (!cached && at != NULL) {
        /* go on with what we know; the next message gets a newer list */
        devcheck_note(op->o, r->pk, now);
        (void)pst_keys_devlist_fetch(n, r->pk, on_refreshed, NULL);
        pst_send_rcpt_resolved(r);
        return;
    }
    pst_counter_add(n, "outbox.devlist_lookups", 1);
    if (pst_keys_devlist_fetch(n, r->pk, on_devlist, r) != PST_OK)
        pst_send_rcpt_resolved(r); /* no DHT now: the single seal */
}
