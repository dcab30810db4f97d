/* The fetch server, taking a receipt: the recipient's signed statement
 * that it stored a message, after the body on the same connection or alone
 * on a connection of its own. A verified receipt is stored as it came and
 * ends the message's notifications for that recipient; the answer is the
 * acknowledgement (status ok, total_size 0, offset 0).
 *
 * The answer tells the recipient it may stop sending the receipt, so it
 * goes only once the receipt is durable. The receipt is written without an
 * fsync of its own (pst_store_outbox_receipt_lazy) and its answer waits for
 * the next commit that fsyncs the WAL: during a burst of submissions that
 * is the next message's send commit, which the node makes anyway (one fsync
 * fewer per message on the loop, where it held up the next SMTP command)
 * when a send is on its way to its commit (it has reserved outbox slots),
 * else (or after FETCH_RECEIPT_SYNC_MS without it) one commit of their own
 * at the end of the loop's turn, shared by every receipt of that turn. A
 * crash before it: the recipient got no answer and sends the receipt
 * again. */
#include <stdio.h>
#include <string.h>

#include "outbox_int.h"
#include "pst_fetch.h"
#include "pst_log.h"

#include "fetch_server_int.h"

/* ---- answering once durable ------------------------------------------- */

void pst_fetch_srv_sync_init(struct pst_fetch_server *srv) {
    uv_check_init(srv->node->loop, &srv->sync_check);
    uv_timer_init(srv->node->loop, &srv->sync_timer);
    srv->sync_check.data = srv->sync_timer.data = srv;
    srv->refs += 2;
}

static void on_sync_handle_closed(uv_handle_t *h) { pst_fetch_srv_server_unref(h->data); }

void pst_fetch_srv_sync_close(struct pst_fetch_server *srv) {
    uv_close((uv_handle_t *)&srv->sync_check, on_sync_handle_closed);
    uv_close((uv_handle_t *)&srv->sync_timer, on_sync_handle_closed);
}

void pst_fetch_srv_sync_drop(fconn *c) {
    if (!c->sync_wait)
        return;
    fconn **pp = &c->srv->sync_head;
    while (*pp != c)
        pp = &(*pp)->next_sync;
    *pp = c->next_sync;
    c->sync_wait = false;
    pst_fetch_srv_unref(c);
}

/* Answers every waiting receipt that is durable now; with failed, the
 * others too, with an internal error (their senders try again). */
static void answer_synced(struct pst_fetch_server *srv, bool failed) {
    uint64_t synced = pst_store_synced(srv->node->store);
    fconn **pp = &srv->sync_head;
    while (*pp != NULL) {
        fconn *c = *pp;
        if (synced <= c->sync_ticket && !failed) {
            pp = &c->next_sync;
            continue;
        }
        *pp = c->next_sync;
        c->sync_wait = false;
        if (synced > c->sync_ticket)
            pst_fetch_srv_respond(c, c->sync_msg_id, PST_FETCH_OK, 0, 0, "", NEXT_CLOSE);
        else
            pst_fetch_srv_reject(c, c->sync_msg_id, PST_FETCH_INTERNAL, 0, "internal",
                                 "internal error");
        pst_fetch_srv_unref(c);
    }
    if (srv->sync_head == NULL) {
        uv_check_stop(&srv->sync_check);
        uv_timer_stop(&srv->sync_timer);
    }
}

/* The waiting receipts get a commit of their own. */
static void sync_now(struct pst_fetch_server *srv) {
    pst_node *n = srv->node;
    int rc = pst_store_sync(n->store);
    if (rc != PST_OK)
        pst_log_error("cannot make receipts durable: %s", pst_store_last_error(n->store));
    else
        pst_counter_add(n, "fetch.receipt_syncs", 1);
    answer_synced(srv, rc != PST_OK);
}

/* The send's commit did not come in time. */
static void on_sync_timer(uv_timer_t *t) {
    struct pst_fetch_server *srv = t->data;
    if (srv->sync_head != NULL)
        sync_now(srv);
}

/* After each turn of the loop: a send's commit may have made them durable. */
static void on_sync_check(uv_check_t *h) {
    struct pst_fetch_server *srv = h->data;
    answer_synced(srv, false);
    if (srv->sync_head == NULL)
        return;
    if (srv->o->rcpts_reserved == 0) /* no send about to commit: our own, now */
        sync_now(srv);
    else if (!uv_is_active((uv_handle_t *)&srv->sync_timer))
        uv_timer_start(&srv->sync_timer, on_sync_timer, FETCH_RECEIPT_SYNC_MS, 0);
}

/* c's receipt was stored lazily: its answer waits until it is durable. */
static void wait_synced(fconn *c, const uint8_t msg_id[PST_HASH_BYTES]) {
    struct pst_fetch_server *srv = c->srv;
    c->sync_wait = true;
    c->sync_ticket = pst_store_synced(srv->node->store);
    memcpy(c->sync_msg_id, msg_id, PST_HASH_BYTES);
    c->next_sync = srv->sync_head;
    srv->sync_head = c;
    c->refs++;
    uv_check_start(&srv->sync_check, on_sync_check);
}

/* frame, len: the receipt's bytes, stored as they came. */
void pst_fetch_srv_receipt(fconn *c, const pst_receipt *rec, const uint8_t *frame, uint32_t len) {
    pst_node *n = c->srv->node;
    uint64_t now = pst_now();
    char text[PST_FETCH_ERROR_TEXT_MAX + 1], why[40];
    int rc = pst_receipt_verify(rec, now);
    (void)pst_clock_receipt(n, rec, rc);
    if (rc != PST_OK) {
        snprintf(text, sizeof text, "receipt refused: %s", pst_strerror(rc));
        pst_fetch_srv_reject(c, rec->msg_id, PST_FETCH_BAD_REQUEST, 0,
                             pst_err_reason(rc, why, sizeof why), text);
        return;
    }
    if (c->have_request && (memcmp(rec->signer, c->requester, PST_SIGN_PK_BYTES) != 0 ||
                            memcmp(rec->msg_id, c->msg_id, PST_HASH_BYTES) != 0)) {
        pst_fetch_srv_reject(c, rec->msg_id, PST_FETCH_BAD_REQUEST, 0, "receipt_mismatch",
                             "the receipt does not match the request");
        return;
    }
    if (memcmp(rec->sender, n->id->sign_pk, PST_SIGN_PK_BYTES) != 0) {
        pst_fetch_srv_reject(c, rec->msg_id, PST_FETCH_BAD_REQUEST, 0, "receipt_sender",
                             "the receipt names another sender");
        return;
    }
    uint8_t rcpt[PST_SIGN_PK_BYTES];
    bool by_device = false;
    rc = pst_fetch_srv_whose(n, rec->msg_id, rec->signer, rcpt, &by_device);
    if (rc == PST_E_REVOKED) {
        pst_fetch_srv_reject(c, rec->msg_id, PST_FETCH_FORBIDDEN, 0, "device_revoked",
                             "this device was revoked from its identity");
        return;
    }
    if (rc == PST_OK && by_device) {
        rc = pst_fetch_srv_device_receipt(n, rec, rcpt, frame, len, now);
        if (rc == PST_E_DUPLICATE)
            pst_counter_add(n, "fetch.receipts_repeated", 1);
        else if (rc == PST_E_STALE)
            pst_counter_add(n, "fetch.receipts_late", 1);
        if (rc == PST_OK || rc == PST_E_DUPLICATE || rc == PST_E_STALE) {
            pst_fetch_srv_respond(c, rec->msg_id, PST_FETCH_OK, 0, 0, "", NEXT_CLOSE);
            return;
        }
    }
    if (rc != PST_OK) {
        pst_log_error("cannot store a receipt: %s", pst_store_last_error(n->store));
        pst_fetch_srv_reject(
            c, rec->msg_id, rc == PST_E_NOTFOUND ? PST_FETCH_NOT_FOUND : PST_FETCH_INTERNAL, 0,
            rc == PST_E_NOTFOUND ? "not_recipient" : "internal",
            rc == PST_E_NOTFOUND ? "no such message for this key" : "internal error");
        return;
    }
    unsigned devices_missing = 0;
    if (pst_store_outbox_device_missing(n->store, rec->msg_id, rec->signer, &devices_missing) ==
            PST_OK &&
        devices_missing > 0) {
        /* the identity key of a recipient whose devices each fetch: their
         * receipts, not this one, finish it */
        pst_counter_add(n, "fetch.receipts_identity", 1);
        pst_fetch_srv_respond(c, rec->msg_id, PST_FETCH_OK, 0, 0, "", NEXT_CLOSE);
        return;
    }
    pst_store_out_state before = 0;
    (void)pst_store_outbox_rcpt_state(n->store, rec->msg_id, rec->signer, &before);
    /* the frame is the receipt's canonical encoding (the decoder checked) */
    rc = pst_store_outbox_receipt_lazy(n->store, rec->msg_id, rec->signer, frame, len, now);
    if (rc == PST_OK && before == PST_STORE_OUT_DELIVERED)
        rc = PST_E_DUPLICATE; /* the same receipt again */
    if (rc == PST_E_NOTFOUND) {
        pst_fetch_srv_reject(c, rec->msg_id, PST_FETCH_NOT_FOUND, 0, "not_recipient",
                             "no such message for this key");
        return;
    }
    if (rc == PST_OK) {
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(rec->signer, fp);
        pst_log_info("receipt from %s for message %02x%02x%02x%02x...", fp, rec->msg_id[0],
                     rec->msg_id[1], rec->msg_id[2], rec->msg_id[3]);
        pst_counter_add(n, "fetch.receipts", 1);
        pst_outbox_untrack(n, rec->msg_id, rec->signer);
        pst_outbox_settle(n, rec->msg_id);
    } else if (rc == PST_E_DUPLICATE) {
        pst_counter_add(n, "fetch.receipts_repeated", 1);
    } else if (rc == PST_E_STALE) {
        /* withdrawn or expired meanwhile: the recipient has it all the same */
        pst_counter_add(n, "fetch.receipts_late", 1);
    } else {
        pst_log_error("cannot store a receipt: %s", pst_store_last_error(n->store));
        pst_fetch_srv_reject(c, rec->msg_id, PST_FETCH_INTERNAL, 0, "internal", "internal error");
        return;
    }
    /* also a repeat: the first may still wait for its fsync */
    wait_synced(c, rec->msg_id);
}
