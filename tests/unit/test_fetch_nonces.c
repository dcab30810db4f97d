/* The fetch server's replay guard (node/mail/fetch_nonces.c): a nonce is
 * found until its request expires, many more than the old 4,096 fit, and a
 * full table refuses (the server answers busy) instead of forgetting. */
#include <criterion/criterion.h>
#include <string.h>

#include "fetch_nonces.h"

static void nonce_of(uint32_t i, uint8_t out[PST_NONCE_BYTES]) {
    memset(out, 0, PST_NONCE_BYTES);
    memcpy(out, &i, sizeof i);
    out[PST_NONCE_BYTES - 1] = 0x5a;
}

Test(fetch_nonces, found_until_it_expires) {
    pst_nonce_set s;
    pst_nonce_set_init(&s);
    uint8_t n1[PST_NONCE_BYTES], n2[PST_NONCE_BYTES];
    nonce_of(1, n1);
    nonce_of(2, n2);
    cr_assert_not(pst_nonce_set_has(&s, n1, 100), "an empty set holds nothing");
    cr_assert(pst_nonce_set_add(&s, n1, 400, 100));
    cr_assert(pst_nonce_set_has(&s, n1, 100));
    cr_assert(pst_nonce_set_has(&s, n1, 399));
    cr_assert_not(pst_nonce_set_has(&s, n1, 400), "kept past its expiry");
    cr_assert_not(pst_nonce_set_has(&s, n2, 100));
    /* the same nonce again (a later request with it) takes the new expiry */
    cr_assert(pst_nonce_set_add(&s, n1, 900, 500));
    cr_assert(pst_nonce_set_has(&s, n1, 899));
    cr_assert_eq(pst_nonce_set_live(&s, 500), 1);
    pst_nonce_set_free(&s);
    cr_assert_not(pst_nonce_set_has(&s, n1, 500));
    cr_assert(pst_nonce_set_add(&s, n1, 900, 500), "usable again after free");
    pst_nonce_set_free(&s);
}

/* 40,000 requests within one 300 s window: each one is remembered (the old
 * array answered busy from the 4,097th on), and none is confused with
 * another. */
Test(fetch_nonces, many_live_at_once) {
    pst_nonce_set s;
    pst_nonce_set_init(&s);
    uint8_t n[PST_NONCE_BYTES];
    for (uint32_t i = 0; i < 40000; i++) {
        nonce_of(i, n);
        cr_assert_not(pst_nonce_set_has(&s, n, 1000 + i / 200));
        cr_assert(pst_nonce_set_add(&s, n, 1300 + i / 200, 1000 + i / 200), "refused at %u", i);
    }
    for (uint32_t i = 0; i < 40000; i++) {
        nonce_of(i, n);
        cr_assert(pst_nonce_set_has(&s, n, 1200), "forgot nonce %u", i);
    }
    nonce_of(40001, n);
    cr_assert_not(pst_nonce_set_has(&s, n, 1200));
    cr_assert_eq(pst_nonce_set_live(&s, 1200), 40000);
    cr_assert_leq(s.cap, PST_NONCES_CAP_MAX);
    pst_nonce_set_free(&s);
}

/* Full: the set refuses rather than dropping a live nonce (a replay would
 * then pass); once they expire, room comes back and the table shrinks. */
Test(fetch_nonces, full_refuses_then_recovers) {
    pst_nonce_set s;
    pst_nonce_set_init(&s);
    uint8_t n[PST_NONCE_BYTES];
    uint32_t i = 0;
    while (pst_nonce_set_add(&s, (nonce_of(i, n), n), 500, 100))
        i++;
    cr_assert_eq(i, PST_NONCES_CAP_MAX / 4 * 3, "refused after %u", i);
    cr_assert_eq(pst_nonce_set_live(&s, 100), i);
    for (uint32_t k = 0; k < i; k += 997) {
        nonce_of(k, n);
        cr_assert(pst_nonce_set_has(&s, n, 100), "a refusal dropped nonce %u", k);
    }
    /* after the window: room again, in a small table */
    nonce_of(i + 1, n);
    cr_assert(pst_nonce_set_add(&s, n, 900, 600));
    cr_assert(pst_nonce_set_has(&s, n, 600));
    cr_assert_eq(s.cap, PST_NONCES_CAP_MIN);
    nonce_of(3, n);
    cr_assert_not(pst_nonce_set_has(&s, n, 600));
    pst_nonce_set_free(&s);
}

/* Each set hashes with its own random key (nobody can aim nonces at one
 * chain), and lookups are exact: a nonce never added is never found. */
Test(fetch_nonces, own_key_and_exact_lookups) {
    pst_nonce_set a, b;
    pst_nonce_set_init(&a);
    pst_nonce_set_init(&b);
    cr_assert_neq(memcmp(a.key, b.key, sizeof a.key), 0, "two sets share a key");
    uint8_t n[PST_NONCE_BYTES];
    for (uint32_t i = 0; i < 700; i++)
        cr_assert(pst_nonce_set_add(&a, (nonce_of(i, n), n), 500, 100));
    for (uint32_t i = 0; i < 700; i++)
        cr_assert(pst_nonce_set_has(&a, (nonce_of(i, n), n), 100));
    for (uint32_t i = 700; i < 1400; i++)
        cr_assert_not(pst_nonce_set_has(&a, (nonce_of(i, n), n), 100));
    pst_nonce_set_free(&a);
    pst_nonce_set_free(&b);
}
