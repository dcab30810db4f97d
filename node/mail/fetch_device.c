/* The fetch server and a recipient's devices (issue 13). A notification to
 * an identity with a device list was sealed to each of its devices; each
 * device fetches its own copy with a request signed by its device key, and
 * answers with a receipt signed by the same key. The outbox expects one
 * receipt per device (store: outbox_device) and keeps the message, its
 * notification and unsend until every device it was sealed to answered or
 * was revoked. A device revoked since the send is refused, counted as
 * rejected.fetch.device_revoked. */
#include <stdio.h>
#include <string.h>

#include "outbox_int.h"
#include "pst_fetch.h"
#include "pst_log.h"

#include "fetch_server_int.h"

int pst_fetch_srv_whose(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES],
                        const uint8_t signer[PST_SIGN_PK_BYTES], uint8_t rcpt[PST_SIGN_PK_BYTES],
                        bool *by_device) {
    uint8_t who[PST_SIGN_PK_BYTES];
    *by_device = false;
    memcpy(rcpt, signer, PST_SIGN_PK_BYTES);
    int rc = pst_store_outbox_device_rcpt(n->store, msg_id, signer, who);
    if (rc == PST_E_NOTFOUND)
        return PST_OK; /* a recipient itself, or nobody: its state says which */
    if (rc != PST_OK)
        return rc;
    memcpy(rcpt, who, PST_SIGN_PK_BYTES);
    *by_device = true;
    /* a revocation since the send is seen within a minute */
    pst_outbox_devlist_refresh(n, who, 60);
    /* the device was in the verified list we sealed to; only a newer list
     * that tombstones or drops it takes that back (an empty cache does not) */
    if (pst_keys_device_valid(n, who, signer) == PST_E_REVOKED) {
        pst_counter_rejected(n, "fetch", "device_revoked");
        return PST_E_REVOKED;
    }
    return PST_OK;
}

typedef struct {
    pst_node *n;
    const uint8_t *msg_id, *rcpt;
    uint64_t now;
    unsigned dropped;
} drop_walk;

static int drop_if_revoked(const pst_store_outbox_device_row *row, void *user) {
    drop_walk *w = user;
    if (row->has_receipt || row->dropped != 0)
        return 0;
    if (pst_keys_device_valid(w->n, w->rcpt, row->device) == PST_E_REVOKED &&
        pst_store_outbox_device_drop(w->n->store, w->msg_id, w->rcpt, row->device, w->now) ==
            PST_OK)
        w->dropped++;
    return 0;
}

int pst_fetch_srv_device_receipt(pst_node *n, const pst_receipt *rec,
                                 const uint8_t rcpt[PST_SIGN_PK_BYTES], const uint8_t *frame,
                                 uint32_t len, uint64_t now) {
    unsigned missing = 0;
    int rc = pst_store_outbox_device_receipt(n->store, rec->msg_id, rcpt, rec->signer, frame, len,
                                             now, &missing);
    if (rc != PST_OK)
        return rc; /* PST_E_DUPLICATE: this device sent other bytes before */
    if (missing > 0) {
        /* nobody waits for a device revoked since the send */
        drop_walk w = {n, rec->msg_id, rcpt, now, 0};
        if (pst_store_outbox_device_list(n->store, rec->msg_id, rcpt, drop_if_revoked, &w) ==
                PST_OK &&
            w.dropped > 0) {
            pst_counter_add(n, "outbox.devices_dropped", w.dropped);
            (void)pst_store_outbox_device_missing(n->store, rec->msg_id, rcpt, &missing);
        }
    }
    char dev[PST_DEVICE_ID_BUFSIZE], fp[PST_FINGERPRINT_STRLEN + 1];
    pst_device_id(rec->signer, dev);
    pst_fingerprint_format(rcpt, fp);
    pst_counter_add(n, "fetch.device_receipts", 1);
    if (missing > 0) {
        pst_log_info("receipt from device %s of %s for message %02x%02x%02x%02x... (%u device%s "
                     "to go)",
                     dev, fp, rec->msg_id[0], rec->msg_id[1], rec->msg_id[2], rec->msg_id[3],
                     missing, missing == 1 ? "" : "s");
        return PST_OK;
    }
    pst_store_out_state before = 0;
    (void)pst_store_outbox_rcpt_state(n->store, rec->msg_id, rcpt, &before);
    if (before != PST_STORE_OUT_PENDING)
        return before == PST_STORE_OUT_DELIVERED ? PST_OK : PST_E_STALE;
    /* every device has it: the last receipt is the recipient's */
    rc = pst_store_outbox_receipt(n->store, rec->msg_id, rcpt, frame, len, now);
    if (rc == PST_OK) {
        pst_log_info("receipt from device %s of %s for message %02x%02x%02x%02x...: every "
                     "device has it",
                     dev, fp, rec->msg_id[0], rec->msg_id[1], rec->msg_id[2], rec->msg_id[3]);
        pst_counter_add(n, "fetch.receipts", 1);
        pst_outbox_untrack(n, rec->msg_id, rcpt);
        pst_outbox_settle(n, rec->msg_id);
    }
    return rc;
}

typedef struct {
    pst_value *map, *arr;    /* arr: made at the first device */
    const pst_devlist *list; /* NULL: none cached */
    unsigned count;
} describe_walk;

static int describe_row(const pst_store_outbox_device_row *row, void *user) {
    describe_walk *w = user;
    if (w->arr == NULL)
        w->arr = pst_value_add_array(w->map, "devices");
    pst_value *e = pst_value_add_map(w->arr, NULL);
    char id[PST_DEVICE_ID_BUFSIZE];
    pst_device_id(row->device, id);
    pst_value_add_str(e, "id", id);
    int at = w->list != NULL ? pst_devlist_find(w->list, row->device) : -1;
    pst_value_add_str(e, "name", at >= 0 ? w->list->devices[at].name : "");
    pst_value_add_str(e, "state",
                      row->has_receipt    ? "delivered"
                      : row->dropped != 0 ? "revoked"
                      : row->serve_count  ? "fetched"
                                          : "waiting");
    pst_value_add_uint(e, "serve_count", row->serve_count);
    pst_value_add_uint(e, "served", row->served);
    pst_value_add_uint(e, "received", row->received);
    w->count++;
    return 0;
}

unsigned pst_outbox_devices_describe(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES],
                                     const uint8_t rcpt[PST_SIGN_PK_BYTES], pst_value *rcpt_map) {
    pst_devlist l;
    describe_walk w = {rcpt_map, NULL, NULL, 0};
    if (pst_keys_devlist_cached(n, rcpt, &l) == PST_OK)
        w.list = &l;
    if (pst_store_outbox_device_list(n->store, msg_id, rcpt, describe_row, &w) != PST_OK)
        pst_log_warn("cannot list the devices of a recipient: %s", pst_store_last_error(n->store));
    return w.count;
}
