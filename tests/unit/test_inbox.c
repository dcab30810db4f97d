/* node/mail/inbox.c: when a failed fetch is tried again. A message is given up
 * only once its notification has expired, never while it is still valid
 * because the next back-off step would reach past expiry. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inbox_int.h"
#include "pst_notify.h"

Test(inbox, backoff_well_before_expiry) {
    uint64_t wait = 1;
    cr_assert(pst_inbox_next_try(1000, 100000, 20000, &wait));
    cr_assert_eq(wait, 20000);
}

Test(inbox, backoff_past_expiry_is_clamped_not_given_up) {
    /* 10 minutes of back-off, 9 minutes of validity left: one last try
     * shortly before expiry, not a give-up now */
    uint64_t wait = 0;
    cr_assert(pst_inbox_next_try(1000, 1000 + 540, 600000, &wait));
    cr_assert(wait > 500000 && wait < 540000, "wait %llu", (unsigned long long)wait);
    /* 30 s left, 40 s of back-off */
    cr_assert(pst_inbox_next_try(1000, 1030, 40000, &wait));
    cr_assert(wait >= 20000 && wait < 30000, "wait %llu", (unsigned long long)wait);
}

Test(inbox, last_second_still_tries) {
    uint64_t wait = 0;
    cr_assert(pst_inbox_next_try(1000, 1001, 600000, &wait));
    cr_assert(wait > 0 && wait < 1000, "wait %llu", (unsigned long long)wait);
}

Test(inbox, expired_gives_up) {
    uint64_t wait = 7;
    cr_assert_not(pst_inbox_next_try(1000, 1000, 5000, &wait));
    cr_assert_eq(wait, 0);
    cr_assert_not(pst_inbox_next_try(2000, 1000, 5000, &wait));
}

/* ---- the purge (node/mail/inbox_purge.c) ---------------------------------------- */

static int get_len(const pst_store_inbox_row *row, void *user) {
    *(size_t *)user = row->notification_len;
    return 0;
}

/* The node strips a delivered row only once its notification is past
 * expiry plus the notifications' clock tolerance, deleting its "why" note;
 * by then any replay of that notification is refused as expired by the
 * check the pipeline runs before it looks at the store
 * (pst_notify_inner_verify() in accept_notification()), even by a clock
 * that was set back by up to the tolerance. */
Test(inbox, purge_only_past_the_replay_window) {
    cr_assert(sodium_init() >= 0);
    pst_node *n = calloc(1, sizeof *n);
    cr_assert_not_null(n);
    cr_assert_eq(pst_store_open(&n->store, ":memory:"), PST_OK);

    uint8_t pk[32], sk[64], seed[32];
    memset(seed, 3, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    const uint64_t created = 1700000000u, expires = created + 86400u;
    pst_notify_inner in;
    memset(&in, 0, sizeof in);
    in.created = created;
    in.expires = expires;
    memcpy(in.recipient, pk, 32);
    memset(in.msg_id, 0x42, 32);
    in.size = 4096;
    in.n_endpoints = 1;
    strcpy(in.endpoints[0], "127.0.0.1:7401");
    memset(in.msg_key, 6, 32);
    memset(in.sender_box_pk, 5, 32);
    cr_assert_eq(pst_notify_inner_sign(&in, sk), PST_OK);
    cr_assert_eq(pst_notify_inner_verify(&in, created + 10), PST_OK);

    uint8_t blob[450];
    memset(blob, 0x5a, sizeof blob);
    cr_assert_eq(pst_store_inbox_add(n->store, in.msg_id, pk, blob, sizeof blob, expires, created),
                 PST_OK);
    cr_assert_eq(pst_store_inbox_delivered(n->store, in.msg_id, "", "x.postern", 4096, created),
                 PST_OK);
    char why[PST_INBOX_WHY_NAME_BUFSIZE];
    pst_inbox_why_name(in.msg_id, why);
    cr_assert_eq(pst_store_meta_set_u64(n->store, why, 1), PST_OK);

    size_t len = 0;
    pst_inbox__purge(n, expires); /* expired, but a clock set back would take it */
    pst_inbox__purge(n, expires + PST_INBOX_PURGE_GRACE_S - 1);
    cr_assert_eq(pst_store_inbox_get(n->store, in.msg_id, get_len, &len), PST_OK);
    cr_assert_eq(len, sizeof blob, "kept within the tolerance");
    uint64_t v;
    cr_assert_eq(pst_store_meta_get_u64(n->store, why, &v), PST_OK);

    const uint64_t now = expires + PST_INBOX_PURGE_GRACE_S;
    pst_inbox__purge(n, now);
    cr_assert_eq(pst_store_inbox_get(n->store, in.msg_id, get_len, &len), PST_OK);
    cr_assert_eq(len, 0, "stripped past the window");
    cr_assert_eq(pst_store_meta_get_u64(n->store, why, &v), PST_E_NOTFOUND);
    /* a replay from now on, read by our clock or one up to the tolerance
     * behind it, never gets past the time check */
    for (uint64_t back = 0; back <= PST_NOTIFY_SKEW_MAX; back += 60)
        cr_assert_eq(pst_notify_inner_verify(&in, now - back), PST_E_EXPIRED);
    /* and the row still makes it a duplicate for the store */
    cr_assert_eq(pst_store_inbox_add(n->store, in.msg_id, pk, blob, sizeof blob, expires, now),
                 PST_E_DUPLICATE);
    pst_store_close(n->store);
    free(n);
}
