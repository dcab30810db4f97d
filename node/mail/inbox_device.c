/* The inbox and devices (issue 13): opening a notification as this device,
 * and checking a notification signed by one of the sender's devices
 * against the sender identity's device list. A device the list tombstones
 * or has dropped is refused by every node (rejected.inbox.device_revoked);
 * a device the cached list does not know triggers one look-up of the
 * sender's list (a few at a time, once a minute per sender at most), after
 * which the value is judged again. */
#include <stdlib.h>
#include <string.h>

#include "pst_log.h"

#include "inbox_int.h"

int pst_inbox__open(pst_node *n, const pst_notify *outer, pst_notify_inner *in) {
    const pst_identity *dk = pst_node_device_keys(n);
    int rc = pst_notify_open(outer, dk->box_pk, dk->box_sk, in);
    if (rc == PST_E_CRYPTO && dk != n->id &&
        sodium_memcmp(dk->box_pk, n->id->box_pk, PST_BOX_PK_BYTES) != 0)
        rc = pst_notify_open(outer, n->id->box_pk, n->id->box_sk, in);
    return rc;
}

/* A look-up in flight: its slot's time reads as "now" forever. */
#define ASKING UINT64_MAX

typedef struct {
    uint8_t sender[PST_SIGN_PK_BYTES];
} lookup_ctx;

static uint64_t *asked_at(struct pst_inbox *ib, const uint8_t *pk) {
    return pst_recent_find(ib->devlist_asked, PST_INBOX_DEVLIST_RECENT, pk);
}

static void note_asked(struct pst_inbox *ib, const uint8_t *pk, uint64_t now) {
    pst_recent_note(ib->devlist_asked, PST_INBOX_DEVLIST_RECENT, pk, now);
}

/* Keeps a copy of a value that waits for a look-up, to judge it again when
 * one ends (else the next poll of the slot does). */
static void hold(struct pst_inbox *ib, const uint8_t *sender, const uint8_t *val, size_t len) {
    if (len > PST_DHT_VALUE_MAX || ib->n_held >= PST_INBOX_DEVLIST_HELD)
        return;
    if (ib->held == NULL && (ib->held = malloc(PST_INBOX_DEVLIST_HELD * sizeof *ib->held)) == NULL)
        return;
    for (unsigned i = 0; i < ib->n_held; i++)
        if (ib->held[i].len == len && memcmp(ib->held[i].val, val, len) == 0)
            return;
    memcpy(ib->held[ib->n_held].sender, sender, PST_SIGN_PK_BYTES);
    ib->held[ib->n_held].len = len;
    memcpy(ib->held[ib->n_held].val, val, len);
    ib->n_held++;
}

static void on_devlist(pst_node *n, int rc, const pst_devlist *list, void *arg) {
    (void)rc; /* cached by the fetch; a failure leaves the old cache */
    (void)list;
    lookup_ctx *a = arg;
    struct pst_inbox *ib = n->inbox;
    if (ib != NULL && !n->stopping) {
        ib->devlist_running--;
        note_asked(ib, a->sender, pst_now());
        /* every held value again: its sender's list is here now, or a
         * look-up slot is free for it */
        unsigned count = ib->n_held;
        held_value *again = count ? malloc(count * sizeof *again) : NULL;
        if (again != NULL) {
            memcpy(again, ib->held, count * sizeof *again);
            ib->n_held = 0;
            for (unsigned i = 0; i < count; i++)
                pst_inbox__value_again(ib, again[i].val, again[i].len);
            free(again);
        }
    }
    free(a);
}

int pst_inbox__device_check(struct pst_inbox *ib, const pst_notify_inner *in, const uint8_t *val,
                            size_t len) {
    pst_node *n = ib->node;
    if (memcmp(in->sender, in->signer, PST_SIGN_PK_BYTES) == 0)
        return PST_OK;
    int rc = pst_keys_device_valid(n, in->sender, in->signer);
    if (rc == PST_E_REVOKED)
        return pst_inbox__reject(n, PST_E_REVOKED, "device_revoked");
    if (rc != PST_OK && rc != PST_E_NOTFOUND)
        return rc; /* the store: look again next time */
    /* a list older than a minute may miss a revocation: the sender's list
     * is looked up again before a device's signature is taken */
    uint64_t now = pst_now();
    uint64_t *at = asked_at(ib, in->sender);
    if (at != NULL && *at == ASKING) {
        hold(ib, in->sender, val, len); /* its sender's list is on its way */
        return PST_E_BUSY;
    }
    bool fresh = at != NULL && *at + PST_INBOX_DEVLIST_AGAIN_S > now;
    if (rc == PST_OK && fresh)
        return PST_OK;
    if (fresh)
        return pst_inbox__reject(n, PST_E_SIGNER, "unknown_device");
    lookup_ctx *a = ib->devlist_running < PST_INBOX_DEVLIST_RUNNING ? malloc(sizeof *a) : NULL;
    if (a != NULL) {
        memcpy(a->sender, in->sender, PST_SIGN_PK_BYTES);
        if (pst_keys_devlist_fetch(n, in->sender, on_devlist, a) == PST_OK) {
            note_asked(ib, in->sender, ASKING);
            ib->devlist_running++;
            pst_counter_add(n, "inbox.devlist_lookups", 1);
        } else {
            free(a);
        }
    }
    /* not remembered as seen: judged again when a look-up ends, or at the
     * next poll */
    hold(ib, in->sender, val, len);
    return PST_E_BUSY;
}
