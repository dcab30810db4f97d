/* The outbox per device (store_outdev.c): a recipient with several devices
 * stays pending until every expected device has a receipt or was dropped. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <string.h>

#include "pst_store.h"
#include "storeutil.h"
#include "testutil.h"

TestSuite(store_outdev, .init = su_tmp_setup, .fini = su_tmp_teardown);

struct devs {
    int n;
    uint8_t dev[8][32];
    uint64_t serve_count[8], received[8], dropped[8];
    bool has_receipt[8];
};

static int collect(const pst_store_outbox_device_row *r, void *user) {
    struct devs *d = user;
    memcpy(d->dev[d->n], r->device, 32);
    d->serve_count[d->n] = r->serve_count;
    d->received[d->n] = r->received;
    d->dropped[d->n] = r->dropped;
    d->has_receipt[d->n] = r->has_receipt;
    d->n++;
    return 0;
}

static pst_store *with_message(uint8_t id[32], uint8_t rcpt[32], uint8_t other[32]) {
    pst_store *st = su_open_mem();
    uint8_t notif[100];
    su_rec_of(notif, sizeof notif, 9);
    memset(id, 0x11, 32);
    su_pk_of(rcpt, 1);
    su_pk_of(other, 2);
    cr_assert_eq(pst_store_outbox_add(st, id, 500, 10, 1000, "s"), PST_OK);
    cr_assert_eq(
        pst_store_outbox_rcpt_add(st, id, rcpt, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
        PST_OK);
    cr_assert_eq(
        pst_store_outbox_rcpt_add(st, id, other, PST_STORE_RCPT_CC, notif, sizeof notif, 10),
        PST_OK);
    return st;
}

Test(store_outdev, every_device_must_answer) {
    uint8_t id[32], rcpt[32], other[32], d[3][32], who[32], rec[3][60];
    pst_store *st = with_message(id, rcpt, other);
    for (int i = 0; i < 3; i++) {
        su_pk_of(d[i], 100 + (uint32_t)i);
        su_rec_of(rec[i], sizeof rec[i], 200 + (uint32_t)i);
        cr_assert_eq(pst_store_outbox_device_add(st, id, rcpt, d[i]), PST_OK);
    }
    cr_assert_eq(pst_store_outbox_device_add(st, id, rcpt, d[0]), PST_E_EXISTS);
    uint8_t nobody[32];
    su_pk_of(nobody, 999);
    cr_assert_eq(pst_store_outbox_device_add(st, id, nobody, d[0]), PST_E_NOTFOUND);

    /* which recipient a device fetches for */
    cr_assert_eq(pst_store_outbox_device_rcpt(st, id, d[1], who), PST_OK);
    cr_assert_arr_eq(who, rcpt, 32);
    cr_assert_eq(pst_store_outbox_device_rcpt(st, id, nobody, who), PST_E_NOTFOUND);
    cr_assert(sodium_is_zero(who, 32));

    /* fetches are counted per device */
    cr_assert_eq(pst_store_outbox_device_served(st, id, rcpt, d[0], 20), PST_OK);
    cr_assert_eq(pst_store_outbox_device_served(st, id, rcpt, d[0], 21), PST_OK);
    cr_assert_eq(pst_store_outbox_device_served(st, id, rcpt, nobody, 21), PST_E_NOTFOUND);

    unsigned missing = 99;
    cr_assert_eq(pst_store_outbox_device_missing(st, id, rcpt, &missing), PST_OK);
    cr_assert_eq(missing, 3);
    cr_assert_eq(pst_store_outbox_device_missing(st, id, other, &missing), PST_OK);
    cr_assert_eq(missing, 0, "a recipient without devices expects nothing per device");

    cr_assert_eq(pst_store_outbox_device_receipt(st, id, rcpt, d[0], rec[0], 60, 30, &missing),
                 PST_OK);
    cr_assert_eq(missing, 2);
    /* the same receipt again: 0; another one: refused, the first stays */
    cr_assert_eq(pst_store_outbox_device_receipt(st, id, rcpt, d[0], rec[0], 60, 31, &missing),
                 PST_OK);
    cr_assert_eq(pst_store_outbox_device_receipt(st, id, rcpt, d[0], rec[1], 60, 31, &missing),
                 PST_E_DUPLICATE);
    cr_assert_eq(missing, 2);
    cr_assert_eq(pst_store_outbox_device_receipt(st, id, rcpt, nobody, rec[1], 60, 31, &missing),
                 PST_E_NOTFOUND);

    /* the recipient stays pending: its body and unsend stay */
    pst_store_out_state state;
    cr_assert_eq(pst_store_outbox_rcpt_state(st, id, rcpt, &state), PST_OK);
    cr_assert_eq(state, PST_STORE_OUT_PENDING);

    /* a revoked device is dropped: nobody waits for it */
    cr_assert_eq(pst_store_outbox_device_drop(st, id, rcpt, d[2], 40), PST_OK);
    cr_assert_eq(pst_store_outbox_device_drop(st, id, rcpt, d[0], 40), PST_OK, "no-op");
    cr_assert_eq(pst_store_outbox_device_missing(st, id, rcpt, &missing), PST_OK);
    cr_assert_eq(missing, 1);
    cr_assert_eq(pst_store_outbox_device_receipt(st, id, rcpt, d[1], rec[1], 60, 50, &missing),
                 PST_OK);
    cr_assert_eq(missing, 0);

    struct devs got = {0};
    cr_assert_eq(pst_store_outbox_device_list(st, id, rcpt, collect, &got), PST_OK);
    cr_assert_eq(got.n, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_arr_eq(got.dev[i], d[i], 32, "in the order added");
    cr_assert_eq(got.serve_count[0], 2);
    cr_assert_eq(got.serve_count[1], 0);
    cr_assert(got.has_receipt[0] && got.has_receipt[1] && !got.has_receipt[2]);
    cr_assert_eq(got.received[1], 50);
    cr_assert_eq(got.dropped[2], 40);
    cr_assert_eq(got.dropped[0], 0);

    /* rows go with the message */
    cr_assert_eq(pst_store_outbox_receipt(st, id, rcpt, rec[1], 60, 60), PST_OK);
    cr_assert_eq(pst_store_outbox_receipt(st, id, other, rec[2], 60, 60), PST_OK);
    cr_assert_eq(pst_store_outbox_gc(st, 2000, 0), PST_OK);
    got.n = 0;
    cr_assert_eq(pst_store_outbox_device_list(st, id, rcpt, collect, &got), PST_OK);
    cr_assert_eq(got.n, 0);
    pst_store_close(st);
}

Test(store_outdev, survives_a_reopen) {
    pst_store *st = su_open_file();
    uint8_t id[32], rcpt[32], dev[32], notif[50];
    memset(id, 0x22, 32);
    su_pk_of(rcpt, 5);
    su_pk_of(dev, 6);
    su_rec_of(notif, sizeof notif, 1);
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_outbox_add(st, id, 500, 10, 1000, NULL), PST_OK);
    cr_assert_eq(
        pst_store_outbox_rcpt_add(st, id, rcpt, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
        PST_OK);
    cr_assert_eq(pst_store_outbox_device_add(st, id, rcpt, dev), PST_OK);
    cr_assert_eq(pst_store_commit(st), PST_OK);
    pst_store_close(st);
    st = su_open_file();
    unsigned missing = 0;
    cr_assert_eq(pst_store_outbox_device_missing(st, id, rcpt, &missing), PST_OK);
    cr_assert_eq(missing, 1);
    pst_store_close(st);
}
