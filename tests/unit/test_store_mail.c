/* The store's mail tables: outbox (messages, recipients, receipts, expiry),
 * inbox (idempotent delivery records) and spent stamps. The rest of the
 * store is tested in test_store.c. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pst_store.h"
#include "storeutil.h"
#include "testutil.h"

struct outs {
    int n;
    int state[4];
    int kind[4];
    size_t receipt_len[4];
    uint64_t size[4], notified[4], notify_count[4], served[4], serve_count[4], done[4];
    char subject[4][32];
};

static int collect_out(const pst_store_outbox_row *r, void *user) {
    struct outs *o = user;
    o->state[o->n] = r->state;
    o->kind[o->n] = r->kind;
    o->receipt_len[o->n] = r->receipt ? r->receipt_len : 0;
    o->size[o->n] = r->size;
    o->notified[o->n] = r->notified;
    o->notify_count[o->n] = r->notify_count;
    o->served[o->n] = r->served;
    o->serve_count[o->n] = r->serve_count;
    o->done[o->n] = r->done;
    snprintf(o->subject[o->n], sizeof o->subject[0], "%s", r->subject);
    o->n++;
    return 0;
}

Test(store, outbox_lifecycle) {
    pst_store *st = su_open_mem();
    uint8_t id[32], r1[32], r2[32], notif[200], receipt[90];
    tu_fill(id, 32, 1);
    memset(r1, 1, 32);
    memset(r2, 2, 32);
    su_rec_of(notif, sizeof notif, 3);
    su_rec_of(receipt, sizeof receipt, 4);
    const uint64_t size0 = 100000;

    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r1, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
                 PST_E_NOTFOUND);
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_outbox_add(st, id, size0, 10, 1000, "hello"), PST_OK);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r1, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
                 PST_OK);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r2, PST_STORE_RCPT_BCC, notif, sizeof notif, 10),
                 PST_OK);
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_eq(pst_store_outbox_add(st, id, size0, 10, 1000, NULL), PST_E_EXISTS);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r1, PST_STORE_RCPT_CC, notif, sizeof notif, 10),
                 PST_E_EXISTS);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r1, 4, notif, sizeof notif, 10), PST_E_INVAL);

    uint64_t size, created, expires;
    cr_assert_eq(pst_store_outbox_get(st, id, &size, &created, &expires), PST_OK);
    cr_assert_eq(size, size0);
    cr_assert_eq(created, 10);
    cr_assert_eq(expires, 1000);

    pst_store_out_state state;
    uint8_t stranger[32];
    memset(stranger, 9, 32);
    cr_assert_eq(pst_store_outbox_rcpt_state(st, id, r1, &state), PST_OK);
    cr_assert_eq(state, PST_STORE_OUT_PENDING);
    cr_assert_eq(pst_store_outbox_rcpt_state(st, id, stranger, &state), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_outbox_receipt(st, id, stranger, receipt, sizeof receipt, 20),
                 PST_E_NOTFOUND);
    cr_assert_eq(pst_store_outbox_notified(st, id, r1, 15), PST_OK);
    cr_assert_eq(pst_store_outbox_notified(st, id, r1, 16), PST_OK);
    cr_assert_eq(pst_store_outbox_notified(st, id, stranger, 16), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_outbox_served(st, id, r1, 17), PST_OK);
    cr_assert_eq(pst_store_outbox_served(st, id, stranger, 17), PST_E_NOTFOUND);

    struct outs o = {0};
    cr_assert_eq(pst_store_outbox_list(st, PST_STORE_OUT_PENDING, collect_out, &o), PST_OK);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(o.kind[0], PST_STORE_RCPT_TO);
    cr_assert_eq(o.kind[1], PST_STORE_RCPT_BCC);
    cr_assert_eq(o.notified[0], 16);
    cr_assert_eq(o.notify_count[0], 2);
    cr_assert_eq(o.served[0], 17);
    cr_assert_eq(o.serve_count[0], 1);
    cr_assert_eq(o.notify_count[1], 0);
    cr_assert_str_eq(o.subject[0], "hello");
    cr_assert_eq(o.done[0], 0);

    cr_assert_eq(pst_store_outbox_receipt(st, id, r1, receipt, sizeof receipt, 20), PST_OK);
    cr_assert_eq(pst_store_outbox_receipt(st, id, r1, receipt, sizeof receipt, 21), PST_OK);
    cr_assert_eq(pst_store_outbox_receipt(st, id, r1, receipt, 10, 21), PST_E_DUPLICATE);
    /* a put that ends after the receipt changes nothing */
    cr_assert_eq(pst_store_outbox_notified(st, id, r1, 22), PST_OK);
    cr_assert_eq(pst_store_outbox_get(st, id, &size, NULL, NULL), PST_OK, "r2 still pending");
    cr_assert_eq(pst_store_outbox_fail(st, id, r2, 30), PST_OK);
    cr_assert_eq(pst_store_outbox_receipt(st, id, r2, receipt, sizeof receipt, 31), PST_E_STALE);
    /* Nobody pending: the message is finished, the states and receipt stay. */
    cr_assert_eq(pst_store_outbox_get(st, id, &size, NULL, NULL), PST_E_NOTFOUND);
    cr_assert_eq(
        pst_store_outbox_rcpt_add(st, id, stranger, PST_STORE_RCPT_TO, notif, sizeof notif, 40),
        PST_E_STALE);
    memset(&o, 0, sizeof o);
    cr_assert_eq(pst_store_outbox_list(st, 0, collect_out, &o), PST_OK);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(o.state[0], PST_STORE_OUT_DELIVERED);
    cr_assert_eq(o.receipt_len[0], sizeof receipt);
    cr_assert_eq(o.notified[0], 16);
    cr_assert_eq(o.state[1], PST_STORE_OUT_FAILED);
    cr_assert_eq(o.size[1], size0);
    cr_assert_eq(o.done[1], 30);
    memset(&o, 0, sizeof o);
    cr_assert_eq(pst_store_outbox_list_msg(st, id, collect_out, &o), PST_OK);
    cr_assert_eq(o.n, 2);
    /* Finished rows go after keep_done seconds. */
    cr_assert_eq(pst_store_outbox_gc(st, 100, 100), PST_OK);
    memset(&o, 0, sizeof o);
    cr_assert_eq(pst_store_outbox_list(st, 0, collect_out, &o), PST_OK);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(pst_store_outbox_gc(st, 130, 100), PST_OK);
    memset(&o, 0, sizeof o);
    cr_assert_eq(pst_store_outbox_list(st, 0, collect_out, &o), PST_OK);
    cr_assert_eq(o.n, 0);

    cr_assert_eq(pst_store_outbox_add(st, id, 0, 1, 1, NULL), PST_E_INVAL);
    cr_assert_eq(pst_store_outbox_add(st, id, PST_STORE_BODY_MAX + 1ull, 1, 1, NULL), PST_E_TOOBIG);
    cr_assert_eq(pst_store_outbox_add(st, id, 5, 1, 1, "bad\nsubject"), PST_E_INVAL);
    char longsub[PST_STORE_SUBJECT_MAX + 2];
    memset(longsub, 'a', sizeof longsub - 1);
    longsub[sizeof longsub - 1] = '\0';
    cr_assert_eq(pst_store_outbox_add(st, id, 5, 1, 1, longsub), PST_E_TOOBIG);
    cr_assert_eq(pst_store_outbox_list(st, 6, collect_out, &o), PST_E_INVAL);
    pst_store_close(st);
}

Test(store, outbox_withdraw) {
    pst_store *st = su_open_mem();
    uint8_t id[32], other[32], r1[32], r2[32], notif[20], receipt[30];
    tu_fill(id, 32, 6);
    tu_fill(other, 32, 7);
    memset(r1, 1, 32);
    memset(r2, 2, 32);
    su_rec_of(notif, sizeof notif, 2);
    su_rec_of(receipt, sizeof receipt, 3);
    unsigned count = 99;
    cr_assert_eq(pst_store_outbox_withdraw(st, id, 5, &count), PST_E_NOTFOUND);
    cr_assert_eq(count, 0);
    cr_assert_eq(pst_store_outbox_add(st, id, 500, 10, 1000, ""), PST_OK);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r1, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
                 PST_OK);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r2, PST_STORE_RCPT_CC, notif, sizeof notif, 10),
                 PST_OK);
    cr_assert_eq(pst_store_outbox_receipt(st, id, r1, receipt, sizeof receipt, 20), PST_OK);
    cr_assert_eq(pst_store_outbox_withdraw(st, id, 30, &count), PST_OK);
    cr_assert_eq(count, 1);
    pst_store_out_state state;
    cr_assert_eq(pst_store_outbox_rcpt_state(st, id, r1, &state), PST_OK);
    cr_assert_eq(state, PST_STORE_OUT_DELIVERED);
    cr_assert_eq(pst_store_outbox_rcpt_state(st, id, r2, &state), PST_OK);
    cr_assert_eq(state, PST_STORE_OUT_WITHDRAWN);
    cr_assert_eq(pst_store_outbox_get(st, id, NULL, NULL, NULL), PST_E_NOTFOUND, "finished");
    cr_assert_eq(pst_store_outbox_receipt(st, id, r2, receipt, sizeof receipt, 31), PST_E_STALE);
    cr_assert_eq(pst_store_outbox_withdraw(st, id, 40, &count), PST_OK);
    cr_assert_eq(count, 0);
    struct outs o = {0};
    cr_assert_eq(pst_store_outbox_list(st, PST_STORE_OUT_WITHDRAWN, collect_out, &o), PST_OK);
    cr_assert_eq(o.n, 1);
    memset(&o, 0, sizeof o);
    cr_assert_eq(pst_store_outbox_list_msg(st, other, collect_out, &o), PST_OK);
    cr_assert_eq(o.n, 0);
    pst_store_close(st);
}

Test(store, outbox_expiry) {
    pst_store *st = su_open_mem();
    uint8_t id[32], r1[32], notif[20];
    tu_fill(id, 32, 5);
    memset(r1, 1, 32);
    su_rec_of(notif, sizeof notif, 2);
    cr_assert_eq(pst_store_outbox_add(st, id, 50, 10, 100, NULL), PST_OK);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r1, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
                 PST_OK);
    cr_assert_eq(pst_store_outbox_gc(st, 99, 0), PST_OK);
    cr_assert_eq(pst_store_outbox_get(st, id, NULL, NULL, NULL), PST_OK, "kept until expiry");
    cr_assert_eq(pst_store_outbox_gc(st, 100, 1000), PST_OK);
    cr_assert_eq(pst_store_outbox_get(st, id, NULL, NULL, NULL), PST_E_NOTFOUND);
    pst_store_out_state state;
    cr_assert_eq(pst_store_outbox_rcpt_state(st, id, r1, &state), PST_OK);
    cr_assert_eq(state, PST_STORE_OUT_EXPIRED);
    pst_store_close(st);
}

struct ins {
    int n;
    int state;
    uint64_t attempts, receipt_sent, size, delivered, expires;
    size_t notification_len;
    uint8_t sender[32];
    char folder[32], filename[80];
};

static int collect_in(const pst_store_inbox_row *r, void *user) {
    struct ins *o = user;
    o->n++;
    o->notification_len = r->notification_len;
    o->delivered = r->delivered;
    o->expires = r->expires;
    if (r->sender)
        memcpy(o->sender, r->sender, 32);
    o->state = r->state;
    o->attempts = r->attempts;
    o->receipt_sent = r->receipt_sent;
    o->size = r->size;
    snprintf(o->folder, sizeof o->folder, "%s", r->folder);
    snprintf(o->filename, sizeof o->filename, "%s", r->filename);
    return 0;
}

Test(store, inbox_idempotent, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    uint8_t id[32], id2[32], sender[32], notif[120];
    tu_fill(id, 32, 1);
    tu_fill(id2, 32, 2);
    memset(sender, 7, 32);
    su_rec_of(notif, sizeof notif, 3);
    cr_assert_eq(pst_store_inbox_add(st, id, sender, notif, sizeof notif, 500, 10), PST_OK);
    cr_assert_eq(pst_store_inbox_add(st, id, sender, notif, sizeof notif, 500, 11),
                 PST_E_DUPLICATE);
    cr_assert_eq(pst_store_inbox_receipt_sent(st, id, 12), PST_E_STALE, "not durable yet");
    cr_assert_eq(pst_store_inbox_attempt(st, id, 12), PST_OK);
    cr_assert_eq(pst_store_inbox_attempt(st, id, 13), PST_OK);
    cr_assert_eq(pst_store_inbox_attempt(st, id2, 13), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_inbox_delivered(st, id, ".Known", "1700.abc.host", 4096, 14), PST_OK);
    cr_assert_eq(pst_store_inbox_delivered(st, id, ".Known", "1700.abc.host", 4096, 15), PST_OK);
    cr_assert_eq(pst_store_inbox_delivered(st, id, "", "other", 4096, 15), PST_E_DUPLICATE);
    cr_assert_eq(pst_store_inbox_delivered(st, id2, "", "x", 1, 15), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_inbox_delivered(st, id, "", "a/b", 1, 15), PST_E_INVAL);
    cr_assert_eq(pst_store_inbox_delivered(st, id, "../x", "ab", 1, 15), PST_E_INVAL);
    cr_assert_eq(pst_store_inbox_fail(st, id, 16), PST_E_STALE);
    cr_assert_eq(pst_store_inbox_receipt_sent(st, id, 17), PST_OK);
    pst_store_close(st);

    st = su_open_file();
    cr_assert_eq(pst_store_inbox_add(st, id, sender, notif, sizeof notif, 500, 20), PST_E_DUPLICATE,
                 "idempotent across restarts");
    struct ins o = {0};
    cr_assert_eq(pst_store_inbox_get(st, id, collect_in, &o), PST_OK);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.state, PST_STORE_IN_DELIVERED);
    cr_assert_eq(o.attempts, 2);
    cr_assert_eq(o.receipt_sent, 17);
    cr_assert_eq(o.size, 4096);
    cr_assert_str_eq(o.folder, ".Known");
    cr_assert_str_eq(o.filename, "1700.abc.host");
    cr_assert_eq(pst_store_inbox_get(st, id2, collect_in, &o), PST_E_NOTFOUND);

    cr_assert_eq(pst_store_inbox_add(st, id2, sender, notif, sizeof notif, 0, 20), PST_OK);
    cr_assert_eq(pst_store_inbox_fail(st, id2, 21), PST_OK);
    cr_assert_eq(pst_store_inbox_fail(st, id2, 22), PST_OK);
    cr_assert_eq(pst_store_inbox_delivered(st, id2, "", "late", 1, 23), PST_E_STALE);
    memset(&o, 0, sizeof o);
    cr_assert_eq(pst_store_inbox_list(st, PST_STORE_IN_FAILED, collect_in, &o), PST_OK);
    cr_assert_eq(o.n, 1);
    memset(&o, 0, sizeof o);
    cr_assert_eq(pst_store_inbox_list(st, 0, collect_in, &o), PST_OK);
    cr_assert_eq(o.n, 2);
    /* Past expiry the delivered row keeps its listing, expires 0 stays. */
    unsigned purged = 9;
    cr_assert_eq(pst_store_inbox_purge(st, 500, 10, NULL, NULL, &purged), PST_OK);
    cr_assert_eq(purged, 1);
    memset(&o, 0, sizeof o);
    cr_assert_eq(pst_store_inbox_list(st, 0, collect_in, &o), PST_OK);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(o.state, PST_STORE_IN_FAILED);
    pst_store_close(st);
}

/* `postern inbox retry`: a message given up is taken up again while its
 * notification lasts, never once delivered or expired. */
Test(store, inbox_retry) {
    pst_store *st = su_open_mem();
    uint8_t id[32], id2[32], id3[32], sender[32], notif[120];
    tu_fill(id, 32, 1);
    tu_fill(id2, 32, 2);
    tu_fill(id3, 32, 3);
    memset(sender, 7, 32);
    su_rec_of(notif, sizeof notif, 3);
    cr_assert_eq(pst_store_inbox_add(st, id, sender, notif, sizeof notif, 500, 10), PST_OK);
    cr_assert_eq(pst_store_inbox_attempt(st, id, 11), PST_OK);
    cr_assert_eq(pst_store_inbox_retry(st, id, 12), PST_OK, "pending already: nothing to do");
    cr_assert_eq(pst_store_inbox_fail(st, id, 13), PST_OK);
    cr_assert_eq(pst_store_inbox_retry(st, id, 500), PST_E_STALE, "the notification expired");
    cr_assert_eq(pst_store_inbox_retry(st, id, 14), PST_OK);
    struct ins o = {0};
    cr_assert_eq(pst_store_inbox_get(st, id, collect_in, &o), PST_OK);
    cr_assert_eq(o.state, PST_STORE_IN_PENDING);
    cr_assert_eq(o.attempts, 0, "the back-off starts over");
    cr_assert_eq(pst_store_inbox_delivered(st, id, "", "f", 1, 15), PST_OK);
    cr_assert_eq(pst_store_inbox_retry(st, id, 16), PST_E_STALE, "delivered");
    cr_assert_eq(pst_store_inbox_retry(st, id2, 16), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_inbox_add(st, id3, sender, notif, sizeof notif, 0, 10), PST_OK);
    cr_assert_eq(pst_store_inbox_fail(st, id3, 11), PST_OK);
    cr_assert_eq(pst_store_inbox_retry(st, id3, 1000), PST_OK, "expires 0: never expires");
    pst_store_close(st);
}

Test(store, spent_stamps) {
    pst_store *st = su_open_mem();
    uint8_t h[20], h2[20];
    tu_fill(h, sizeof h, 1);
    tu_fill(h2, sizeof h2, 2);
    cr_assert_eq(pst_store_stamp_is_spent(st, h, sizeof h), 0);
    cr_assert_eq(pst_store_stamp_spend(st, h, sizeof h, 100), PST_OK);
    cr_assert_eq(pst_store_stamp_spend(st, h, sizeof h, 200), PST_E_DUPLICATE);
    cr_assert_eq(pst_store_stamp_is_spent(st, h, sizeof h), 1);
    cr_assert_eq(pst_store_stamp_spend(st, h2, sizeof h2, 300), PST_OK);
    cr_assert_eq(pst_store_stamp_purge_expired(st, 99), PST_OK);
    cr_assert_eq(pst_store_stamp_is_spent(st, h, sizeof h), 1);
    cr_assert_eq(pst_store_stamp_purge_expired(st, 100), PST_OK);
    cr_assert_eq(pst_store_stamp_is_spent(st, h, sizeof h), 0);
    cr_assert_eq(pst_store_stamp_is_spent(st, h2, sizeof h2), 1);
    uint8_t big[PST_STORE_STAMP_ID_MAX + 1] = {0};
    cr_assert_eq(pst_store_stamp_spend(st, big, sizeof big, 1), PST_E_TOOBIG);
    cr_assert_eq(pst_store_stamp_spend(st, big, 0, 1), PST_E_INVAL);
    cr_assert_eq(pst_store_stamp_spend(st, h, sizeof h, UINT64_MAX), PST_E_RANGE);
    pst_store_close(st);
}

/* ---- the inbox purge ------------------------------------------------------ */

#define PURGE_EXP 1000u

struct purge_seen {
    int n, drops;
    uint8_t last[32];
    int fail_at; /* 1-based call that fails, 0 never */
    pst_store *st;
};

static int on_purge(const uint8_t msg_id[32], bool drop, void *user) {
    struct purge_seen *p = user;
    p->n++;
    p->drops += drop;
    memcpy(p->last, msg_id, 32);
    /* what the node does: its own note about the message goes in the same
     * transaction */
    char name[40];
    snprintf(name, sizeof name, "why.%02x", msg_id[0]);
    int rc = pst_store_meta_delete(p->st, name);
    if (rc != PST_OK && rc != PST_E_NOTFOUND)
        return rc;
    return p->n == p->fail_at ? PST_E_IO : 0;
}

static void purge_id(uint8_t id[32], uint8_t k) { memset(id, k, 32); }

static int n_rows(pst_store *st) {
    struct ins o = {0};
    cr_assert_eq(pst_store_inbox_list(st, 0, collect_in, &o), PST_OK);
    return o.n;
}

/* One row per case, all with a ~450-byte notification:
 * 1 delivered (expires PURGE_EXP), 2 pending, 3 failed, 4 delivered then
 * deleted by a mail client, 5 delivered expiring later, 6 delivered with
 * expires 0, 7 pending with expires 0. */
static void purge_fixture(pst_store *st, const uint8_t sender[32]) {
    uint8_t id[32], notif[450];
    su_rec_of(notif, sizeof notif, 11);
    const uint64_t exp[8] = {0, PURGE_EXP, PURGE_EXP, PURGE_EXP, PURGE_EXP, 2 * PURGE_EXP, 0, 0};
    for (uint8_t k = 1; k <= 7; k++) {
        purge_id(id, k);
        cr_assert_eq(pst_store_inbox_add(st, id, sender, notif, sizeof notif, exp[k], 10), PST_OK);
        char name[40];
        snprintf(name, sizeof name, "why.%02x", k);
        cr_assert_eq(pst_store_meta_set_u64(st, name, k), PST_OK);
    }
    const uint8_t delivered[] = {1, 4, 5, 6};
    for (size_t i = 0; i < sizeof delivered; i++) {
        char fn[80];
        purge_id(id, delivered[i]);
        snprintf(fn, sizeof fn, "%064x.postern", delivered[i]);
        cr_assert_eq(pst_store_inbox_delivered(st, id, ".Known", fn, 4096 + delivered[i], 20),
                     PST_OK);
        cr_assert_eq(pst_store_inbox_receipt_sent(st, id, 21), PST_OK);
    }
    purge_id(id, 4);
    cr_assert_eq(pst_store_inbox_relocate(st, id, ".Known", ""), PST_OK);
    purge_id(id, 3);
    cr_assert_eq(pst_store_inbox_fail(st, id, 30), PST_OK);
}

static bool meta_has(pst_store *st, uint8_t k) {
    char name[40];
    uint64_t v;
    snprintf(name, sizeof name, "why.%02x", k);
    return pst_store_meta_get_u64(st, name, &v) == PST_OK;
}

/* A delivered row past the window keeps what `postern inbox` and `read`
 * use and still makes a second notification a duplicate; given-up rows and
 * rows of deleted files go; pending rows and rows not yet past the window
 * are never touched. */
Test(store, inbox_purge_rules, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    uint8_t sender[32], id[32], notif[450];
    memset(sender, 7, 32);
    su_rec_of(notif, sizeof notif, 11);
    purge_fixture(st, sender);
    struct purge_seen ps = {.st = st};
    unsigned purged = 99;

    /* one second before the window ends: nothing */
    cr_assert_eq(pst_store_inbox_purge(st, PURGE_EXP - 1, 100, on_purge, &ps, &purged), PST_OK);
    cr_assert_eq(purged, 0);
    cr_assert_eq(ps.n, 0);
    cr_assert_eq(n_rows(st), 7);

    cr_assert_eq(pst_store_inbox_purge(st, PURGE_EXP, 100, on_purge, &ps, &purged), PST_OK);
    cr_assert_eq(purged, 3, "1 stripped, 3 and 4 deleted");
    cr_assert_eq(ps.n, 3);
    cr_assert_eq(ps.drops, 2);
    cr_assert_eq(n_rows(st), 5);

    struct ins o = {0};
    purge_id(id, 1);
    cr_assert_eq(pst_store_inbox_get(st, id, collect_in, &o), PST_OK);
    cr_assert_eq(o.state, PST_STORE_IN_DELIVERED);
    cr_assert_eq(o.notification_len, 0, "the notification is gone");
    cr_assert_arr_eq(o.sender, sender, 32);
    cr_assert_str_eq(o.folder, ".Known");
    cr_assert_str_eq(o.filename,
                     "0000000000000000000000000000000000000000000000000000000000000001.postern");
    cr_assert_eq(o.size, 4097);
    cr_assert_eq(o.delivered, 20);
    cr_assert_eq(o.receipt_sent, 21);
    cr_assert_eq(o.expires, PURGE_EXP);
    cr_assert_eq(pst_store_inbox_add(st, id, sender, notif, sizeof notif, PURGE_EXP, 40),
                 PST_E_DUPLICATE, "a stripped row still knows its message");
    cr_assert_eq(pst_store_inbox_relocate(st, id, "", "moved"), PST_OK, "a client may move it");
    purge_id(id, 3);
    cr_assert_eq(pst_store_inbox_get(st, id, collect_in, &o), PST_E_NOTFOUND);
    purge_id(id, 4);
    cr_assert_eq(pst_store_inbox_get(st, id, collect_in, &o), PST_E_NOTFOUND);
    cr_assert(meta_has(st, 1) == false && meta_has(st, 3) == false && meta_has(st, 4) == false,
              "notes go with their rows");
    cr_assert(meta_has(st, 2) && meta_has(st, 5) && meta_has(st, 6) && meta_has(st, 7));

    /* a pending row is never purged, however late; expires 0 never */
    memset(&ps, 0, sizeof ps);
    ps.st = st;
    cr_assert_eq(pst_store_inbox_purge(st, 100 * PURGE_EXP, 100, on_purge, &ps, &purged), PST_OK);
    cr_assert_eq(purged, 1, "only 5, once its own window ended");
    cr_assert_eq(ps.drops, 0);
    memset(&o, 0, sizeof o);
    cr_assert_eq(pst_store_inbox_list(st, PST_STORE_IN_PENDING, collect_in, &o), PST_OK);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(o.notification_len, sizeof notif, "pending rows keep their notification");
    purge_id(id, 6);
    cr_assert_eq(pst_store_inbox_get(st, id, collect_in, &o), PST_OK);
    cr_assert_eq(o.notification_len, sizeof notif);

    /* a file deleted by a client after its row was stripped: the row goes */
    purge_id(id, 1);
    cr_assert_eq(pst_store_inbox_relocate(st, id, "", ""), PST_OK);
    cr_assert_eq(pst_store_inbox_purge(st, 100 * PURGE_EXP, 100, NULL, NULL, &purged), PST_OK);
    cr_assert_eq(purged, 1);
    cr_assert_eq(pst_store_inbox_get(st, id, collect_in, &o), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_inbox_purge(st, 100 * PURGE_EXP, 100, NULL, NULL, &purged), PST_OK);
    cr_assert_eq(purged, 0, "nothing left to do");
    cr_assert_eq(n_rows(st), 4);
    cr_assert_eq(pst_store_check(st), PST_OK);
    pst_store_close(st);
}

Test(store, inbox_purge_batches_and_undo, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    uint8_t sender[32], id[32];
    memset(sender, 7, 32);
    purge_fixture(st, sender);
    unsigned purged = 99;
    cr_assert_eq(pst_store_inbox_purge(st, PURGE_EXP, 0, NULL, NULL, &purged), PST_E_INVAL);
    cr_assert_eq(purged, 0);
    cr_assert_eq(
        pst_store_inbox_purge(st, PURGE_EXP, PST_STORE_INBOX_PURGE_MAX + 1, NULL, NULL, &purged),
        PST_E_RANGE);
    cr_assert_eq(pst_store_inbox_purge(NULL, PURGE_EXP, 1, NULL, NULL, &purged), PST_E_INVAL);

    /* the callback fails on the second row: the whole batch is undone */
    struct purge_seen ps = {.st = st, .fail_at = 2};
    cr_assert_eq(pst_store_inbox_purge(st, PURGE_EXP, 100, on_purge, &ps, &purged), PST_E_IO);
    cr_assert_eq(purged, 0);
    cr_assert_eq(n_rows(st), 7);
    cr_assert(meta_has(st, 1) && meta_has(st, 3) && meta_has(st, 4), "notes kept too");
    struct ins o = {0};
    purge_id(id, 1);
    cr_assert_eq(pst_store_inbox_get(st, id, collect_in, &o), PST_OK);
    cr_assert_eq(o.notification_len, 450);

    /* inside a caller's batch the undo stays local to the call */
    cr_assert_eq(pst_store_begin(st), PST_OK);
    ps = (struct purge_seen){.st = st, .fail_at = 1};
    cr_assert_eq(pst_store_inbox_purge(st, PURGE_EXP, 100, on_purge, &ps, &purged), PST_E_IO);
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_eq(n_rows(st), 7);

    /* one row per call: three calls, then none */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pst_store_inbox_purge(st, PURGE_EXP, 1, NULL, NULL, &purged), PST_OK);
        cr_assert_eq(purged, 1);
    }
    cr_assert_eq(pst_store_inbox_purge(st, PURGE_EXP, 1, NULL, NULL, &purged), PST_OK);
    cr_assert_eq(purged, 0);
    cr_assert_eq(n_rows(st), 5);
    pst_store_close(st);

    /* survives a restart as it is */
    st = su_open_file();
    cr_assert_eq(n_rows(st), 5);
    cr_assert_eq(pst_store_inbox_get(st, id, collect_in, &o), PST_OK);
    cr_assert_eq(o.notification_len, 0);
    pst_store_close(st);
}

/* The inbox as schema version 3 had it (migration 2), byte for byte. */
static const char inbox_v3[] =
    /* the tables of later migrations go too: they are made again */
    "DROP TABLE IF EXISTS contact_email;"
    "DROP TABLE IF EXISTS devlist;"
    "DROP TABLE IF EXISTS device_seen;"
    "DROP TABLE inbox_notification;"
    "DROP TABLE inbox;"
    "CREATE TABLE inbox ("
    " msg_id BLOB PRIMARY KEY NOT NULL CHECK (length(msg_id) = 32),"
    " sender BLOB NOT NULL CHECK (length(sender) = 32),"
    " state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),"
    " notification BLOB NOT NULL CHECK (length(notification) BETWEEN 1 AND 8192),"
    " expires INTEGER NOT NULL,"
    " received INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " last_attempt INTEGER NOT NULL DEFAULT 0,"
    " delivered INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL DEFAULT 0,"
    " folder TEXT,"
    " filename TEXT,"
    " receipt_sent INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    "CREATE INDEX inbox_state ON inbox (state);"
    "CREATE INDEX inbox_expires ON inbox (expires) WHERE expires != 0;"
    /* arrival order is rowid order: the later rowid was inserted first */
    "INSERT INTO inbox (rowid, msg_id, sender, state, notification, expires, received,"
    " attempts, last_attempt, delivered, size, folder, filename, receipt_sent) VALUES"
    " (9, x'0000000000000000000000000000000000000000000000000000000000000001', zeroblob(32), 2, "
    "zeroblob(450), 1000, 10, 1, 11, 12, 4096,"
    "  '.Known', 'one.postern', 13),"
    " (4, x'0000000000000000000000000000000000000000000000000000000000000002', zeroblob(32), 1, "
    "zeroblob(300), 1000, 10, 0, 0, 0, 0,"
    "  NULL, NULL, 0);"
    "PRAGMA user_version = 3;";

struct order {
    int n;
    uint8_t last[2];
    size_t len[2];
};

static int collect_order(const pst_store_inbox_row *r, void *user) {
    struct order *o = user;
    if (o->n < 2) {
        o->last[o->n] = r->msg_id[31];
        o->len[o->n] = r->notification_len;
    }
    o->n++;
    return 0;
}

/* A version-3 database (inbox rows with NOT NULL notifications) opens, is
 * migrated once with its rows and their order, and can then be purged. */
Test(store, inbox_migration_4, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store_close(su_open_file());
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(su_db_path, &db), SQLITE_OK);
    char *err = NULL;
    cr_assert_eq(sqlite3_exec(db, inbox_v3, NULL, NULL, &err), SQLITE_OK, "%s", err);
    sqlite3_close(db);

    pst_store *st = su_open_file();
    pst_store_info info;
    cr_assert_eq(pst_store_info_get(st, &info), PST_OK);
    cr_assert_eq(info.schema_version, PST_STORE_SCHEMA_VERSION);
    struct order o = {0};
    cr_assert_eq(pst_store_inbox_list(st, 0, collect_order, &o), PST_OK);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(o.last[0], 2, "arrival order kept");
    cr_assert_eq(o.last[1], 1);
    cr_assert_eq(o.len[0], 300);
    cr_assert_eq(o.len[1], 450);
    uint8_t id[32] = {0}, sender[32] = {0}, notif[10] = {1};
    id[31] = 1;
    cr_assert_eq(pst_store_inbox_add(st, id, sender, notif, sizeof notif, 1000, 20),
                 PST_E_DUPLICATE);
    unsigned purged = 0;
    cr_assert_eq(pst_store_inbox_purge(st, 1000, 10, NULL, NULL, &purged), PST_OK);
    cr_assert_eq(purged, 1, "the delivered row loses its notification, the pending one stays");
    struct ins in = {0};
    cr_assert_eq(pst_store_inbox_get(st, id, collect_in, &in), PST_OK);
    cr_assert_eq(in.notification_len, 0);
    cr_assert_str_eq(in.filename, "one.postern");
    cr_assert_eq(in.receipt_sent, 13);
    cr_assert_eq(pst_store_check(st), PST_OK);
    pst_store_close(st);
    st = su_open_file(); /* migrated once */
    memset(&o, 0, sizeof o);
    cr_assert_eq(pst_store_inbox_list(st, 0, collect_order, &o), PST_OK);
    cr_assert_eq(o.n, 2);
    pst_store_close(st);
}
