/* The smarthost queue (store_relay.c, migration 5): rows per (message,
 * recipient), the earliest due one first, state changes, counts, the list,
 * and that it survives closing the file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "pst_store.h"
#include "storeutil.h"
#include "testutil.h"

struct seen {
    int n;
    char rcpt[4][PST_STORE_ADDRESS_MAX + 1];
    pst_store_relay_state state[4];
};

static int collect(const pst_store_relay_row *r, void *user) {
    struct seen *s = user;
    if (s->n < 4) {
        snprintf(s->rcpt[s->n], sizeof s->rcpt[0], "%s", r->rcpt);
        s->state[s->n] = r->state;
    }
    s->n++;
    return 0;
}

Test(store, relay_queue, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    uint8_t m1[32], m2[32];
    tu_fill(m1, 32, 1);
    tu_fill(m2, 32, 2);
    pst_store_relay_row row;
    cr_assert_eq(pst_store_relay_next(st, &row), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_relay_add(st, m1, "x@ext.example", "me@it.example", 200, 1000), 0);
    cr_assert_eq(pst_store_relay_add(st, m2, "y@ext.example", "me@it.example", 100, 900), 0);
    /* the same pair again is kept as it was */
    cr_assert_eq(pst_store_relay_add(st, m1, "x@ext.example", "me@it.example", 50, 60), 0);
    cr_assert_eq(pst_store_relay_add(st, m1, "", "me@it.example", 50, 60), PST_E_STORE,
                 "a recipient under 3 bytes is refused");
    uint64_t q = 0;
    cr_assert_eq(pst_store_relay_pending(st, &q), 0);
    cr_assert_eq(q, 2);

    /* the earliest next try comes first */
    cr_assert_eq(pst_store_relay_next(st, &row), 0);
    cr_assert_str_eq(row.rcpt, "y@ext.example");
    cr_assert_eq(row.state, PST_STORE_RELAY_QUEUED);
    cr_assert_eq(row.giveup, 900);
    cr_assert_eq(memcmp(row.msg_id, m2, 32), 0);
    cr_assert_eq(pst_store_relay_update(st, row.id, PST_STORE_RELAY_RETRYING, 1, 500,
                                        "Couldn't connect to server", 110),
                 0);
    cr_assert_eq(pst_store_relay_next(st, &row), 0);
    cr_assert_str_eq(row.rcpt, "x@ext.example");
    cr_assert_eq(row.next_try, 200);
    cr_assert_eq(row.giveup, 1000, "the first add's give-up time is kept");
    cr_assert_eq(pst_store_relay_update(st, row.id, PST_STORE_RELAY_SENT, 1, 0, "", 210), 0);
    cr_assert_eq(pst_store_relay_msg_pending(st, m1, &q), 0);
    cr_assert_eq(q, 0);
    cr_assert_eq(pst_store_relay_msg_pending(st, m2, &q), 0);
    cr_assert_eq(q, 1);
    cr_assert_eq(pst_store_relay_update(st, row.id, 9, 1, 0, "", 210), PST_E_INVAL);
    pst_store_close(st);

    /* across a restart: the retrying row, its error and try count */
    st = su_open_file();
    cr_assert_eq(pst_store_relay_next(st, &row), 0);
    cr_assert_str_eq(row.rcpt, "y@ext.example");
    cr_assert_eq(row.state, PST_STORE_RELAY_RETRYING);
    cr_assert_eq(row.attempts, 1);
    cr_assert_eq(row.next_try, 500);
    cr_assert_str_eq(row.error, "Couldn't connect to server");
    cr_assert_eq(pst_store_relay_update(st, row.id, PST_STORE_RELAY_BOUNCED, 1, 0,
                                        "not delivered within the give-up time", 901),
                 0);
    cr_assert_eq(pst_store_relay_next(st, &row), PST_E_NOTFOUND);
    struct seen s = {0};
    cr_assert_eq(pst_store_relay_list(st, 10, collect, &s), 0);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.rcpt[0], "y@ext.example", "newest first");
    cr_assert_eq(s.state[0], PST_STORE_RELAY_BOUNCED);
    cr_assert_eq(s.state[1], PST_STORE_RELAY_SENT);
    cr_assert_str_eq(pst_store_relay_state_name(s.state[0]), "bounced");
    memset(&s, 0, sizeof s);
    cr_assert_eq(pst_store_relay_list(st, 1, collect, &s), 0);
    cr_assert_eq(s.n, 1);
    pst_store_close(st);
}
