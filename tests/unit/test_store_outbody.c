/* Small outbox bodies in the store (store_outbody.c, migration 9; issue 14,
 * third round): stored in the send's batch with the rows, read back while
 * the message is live, gone in the same transaction that finishes it (the
 * last receipt, a failure, unsend, expiry) and with a rolled-back batch. */
#include <criterion/criterion.h>
#include <string.h>

#include "pst_store.h"
#include "storeutil.h"
#include "testutil.h"

static uint8_t body[5000];

/* A message of body's size with recipients r1 and r2 (seeds 1 and 2) and
 * its body, in one batch. */
static void add_msg(pst_store *st, const uint8_t id[32], uint64_t expires) {
    uint8_t r[32], notif[200];
    su_rec_of(notif, sizeof notif, 3);
    tu_fill(body, sizeof body, 9);
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_outbox_add(st, id, sizeof body, 10, expires, "small"), PST_OK);
    cr_assert_eq(pst_store_outbox_body_add(st, id, body, sizeof body), PST_OK);
    for (uint8_t i = 1; i <= 2; i++) {
        memset(r, i, 32);
        cr_assert_eq(
            pst_store_outbox_rcpt_add(st, id, r, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
            PST_OK);
    }
    cr_assert_eq(pst_store_commit(st), PST_OK);
}

static int body_of(pst_store *st, const uint8_t id[32]) {
    uint8_t got[PST_STORE_BODY_INLINE_MAX];
    size_t len = 99;
    int rc = pst_store_outbox_body_get(st, id, got, sizeof got, &len);
    if (rc == PST_OK) {
        cr_assert_eq(len, sizeof body);
        cr_assert_eq(memcmp(got, body, len), 0, "the stored body differs");
    } else {
        cr_assert_eq(len, 0);
    }
    return rc;
}

Test(store_outbody, kept_until_the_last_receipt) {
    pst_store *st = su_open_mem();
    uint8_t id[32], r[32], receipt[90], small[16];
    size_t len = 0;
    tu_fill(id, 32, 1);
    su_rec_of(receipt, sizeof receipt, 4);
    add_msg(st, id, 1000);
    cr_assert_eq(body_of(st, id), PST_OK);
    /* too small a buffer: the length needed, the bytes zeroed */
    memset(small, 0xaa, sizeof small);
    cr_assert_eq(pst_store_outbox_body_get(st, id, small, sizeof small, &len), PST_E_NOSPACE);
    cr_assert_eq(len, sizeof body);
    for (size_t i = 0; i < sizeof small; i++)
        cr_assert_eq(small[i], 0);

    memset(r, 1, 32);
    cr_assert_eq(pst_store_outbox_receipt(st, id, r, receipt, sizeof receipt, 20), PST_OK);
    cr_assert_eq(body_of(st, id), PST_OK, "the body went while r2 was still pending");
    memset(r, 2, 32);
    cr_assert_eq(pst_store_outbox_receipt(st, id, r, receipt, sizeof receipt, 21), PST_OK);
    cr_assert_eq(body_of(st, id), PST_E_NOTFOUND, "the body outlived its message");
    cr_assert_eq(pst_store_outbox_get(st, id, NULL, NULL, NULL), PST_E_NOTFOUND);
    pst_store_close(st);
}

Test(store_outbody, gone_with_unsend_failure_expiry_and_rollback) {
    pst_store *st = su_open_mem();
    uint8_t a[32], b[32], c[32], d[32], r[32];
    tu_fill(a, 32, 11);
    tu_fill(b, 32, 12);
    tu_fill(c, 32, 13);
    tu_fill(d, 32, 14);

    add_msg(st, a, 1000);
    unsigned withdrawn = 0;
    cr_assert_eq(pst_store_outbox_withdraw(st, a, 30, &withdrawn), PST_OK);
    cr_assert_eq(withdrawn, 2);
    cr_assert_eq(body_of(st, a), PST_E_NOTFOUND, "unsend left the body");

    add_msg(st, b, 1000);
    memset(r, 1, 32);
    cr_assert_eq(pst_store_outbox_fail(st, b, r, 30), PST_OK);
    cr_assert_eq(body_of(st, b), PST_OK, "one failed recipient took the body of the other");
    memset(r, 2, 32);
    cr_assert_eq(pst_store_outbox_fail(st, b, r, 31), PST_OK);
    cr_assert_eq(body_of(st, b), PST_E_NOTFOUND);

    add_msg(st, c, 500);
    cr_assert_eq(pst_store_outbox_gc(st, 400, 100), PST_OK);
    cr_assert_eq(body_of(st, c), PST_OK, "the gc took the body of a live message");
    cr_assert_eq(pst_store_outbox_gc(st, 600, 100), PST_OK);
    cr_assert_eq(body_of(st, c), PST_E_NOTFOUND, "an expired message kept its body");
    /* and the finished message goes whole after the retention period */
    cr_assert_eq(pst_store_outbox_gc(st, 800, 100), PST_OK);

    /* a batch rolled back leaves neither rows nor body */
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_outbox_add(st, d, sizeof body, 10, 1000, ""), PST_OK);
    cr_assert_eq(pst_store_outbox_body_add(st, d, body, sizeof body), PST_OK);
    cr_assert_eq(pst_store_rollback(st), PST_OK);
    cr_assert_eq(body_of(st, d), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_outbox_get(st, d, NULL, NULL, NULL), PST_E_NOTFOUND);
    pst_store_close(st);
}

Test(store_outbody, arguments) {
    pst_store *st = su_open_mem();
    static uint8_t big[PST_STORE_BODY_INLINE_MAX + 1];
    uint8_t id[32], other[32];
    tu_fill(id, 32, 21);
    tu_fill(other, 32, 22);
    cr_assert_eq(pst_store_outbox_add(st, id, sizeof body, 10, 1000, ""), PST_OK);
    cr_assert_eq(pst_store_outbox_body_add(st, id, big, sizeof big), PST_E_TOOBIG);
    cr_assert_eq(pst_store_outbox_body_add(st, id, body, 0), PST_E_INVAL);
    cr_assert_eq(pst_store_outbox_body_add(st, id, NULL, 10), PST_E_INVAL);
    /* the length must be the message's recorded size */
    cr_assert_eq(pst_store_outbox_body_add(st, id, body, sizeof body - 1), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_outbox_body_add(st, other, body, sizeof body), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_outbox_body_add(st, id, body, sizeof body), PST_OK);
    cr_assert_eq(pst_store_outbox_body_add(st, id, body, sizeof body), PST_E_STORE,
                 "a second body for one message");
    size_t len = 7;
    cr_assert_eq(pst_store_outbox_body_get(st, other, NULL, 0, &len), PST_E_NOTFOUND);
    cr_assert_eq(len, 0);
    cr_assert_eq(pst_store_outbox_body_get(st, id, NULL, 0, NULL), PST_E_INVAL);
    /* a message with its body in a file has no row here */
    cr_assert_eq(pst_store_outbox_add(st, other, 100000, 10, 1000, ""), PST_OK);
    cr_assert_eq(pst_store_outbox_body_get(st, other, NULL, 0, &len), PST_E_NOTFOUND);
    pst_store_close(st);
}
