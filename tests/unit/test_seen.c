/* node/core/seen.c: the fixed-memory "already looked at" set of the inbox and the
 * node's own slots. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "pst_seen.h"
#include "testutil.h"

#define NSLOTS 64u /* 32 keys per generation */

static pst_seen s;
static uint8_t mem[PST_SEEN_MEM_BYTES(NSLOTS)];

static void setup(void) {
    cr_assert(sodium_init() >= 0);
    memset(mem, 0, sizeof mem);
    pst_seen_init(&s, mem, NSLOTS, 1800, 1000);
}

TestSuite(seen, .init = setup);

static void key_of(uint32_t i, uint8_t key[PST_SEEN_KEY]) {
    uint8_t val[40];
    tu_fill(val, sizeof val, i);
    pst_seen_key(&s, NULL, 0, val, sizeof val, key);
}

Test(seen, add_has_and_context) {
    uint8_t val[] = "a value", k1[PST_SEEN_KEY], k2[PST_SEEN_KEY], k3[PST_SEEN_KEY];
    pst_seen_key(&s, NULL, 0, val, sizeof val, k1);
    pst_seen_key(&s, "key", 3, val, sizeof val, k2);
    pst_seen_key(&s, NULL, 0, val, sizeof val, k3);
    cr_assert(memcmp(k1, k3, PST_SEEN_KEY) == 0, "the key is a function of the bytes");
    cr_assert(memcmp(k1, k2, PST_SEEN_KEY) != 0, "the context is part of the key");
    cr_assert(k1[PST_SEEN_KEY - 1] & 1, "a key is never empty nor the tombstone");
    cr_assert_not(pst_seen_has(&s, k1));
    pst_seen_add(&s, k1, 1001);
    cr_assert(pst_seen_has(&s, k1));
    cr_assert_not(pst_seen_has(&s, k2));
    pst_seen_add(&s, k1, 1002); /* twice: still one entry */
    cr_assert_eq(s.count[s.cur], 1);
}

Test(seen, forget_keeps_the_others_reachable) {
    uint8_t k[20][PST_SEEN_KEY];
    for (uint32_t i = 0; i < 20; i++) {
        key_of(i, k[i]);
        pst_seen_add(&s, k[i], 1000);
    }
    pst_seen_forget(&s, k[5]);
    cr_assert_not(pst_seen_has(&s, k[5]));
    for (uint32_t i = 0; i < 20; i++)
        if (i != 5)
            cr_assert(pst_seen_has(&s, k[i]), "key %u lost behind a forgotten one", i);
    pst_seen_add(&s, k[5], 1000); /* and it can come back */
    cr_assert(pst_seen_has(&s, k[5]));
}

Test(seen, full_generation_rotates_and_memory_is_fixed) {
    uint8_t k[100][PST_SEEN_KEY];
    for (uint32_t i = 0; i < 100; i++) {
        key_of(i, k[i]);
        pst_seen_add(&s, k[i], 1000);
        cr_assert_leq(s.count[s.cur], NSLOTS / 2, "load stays <= 1/2");
    }
    /* 100 keys through generations of 32: the last 32+ are remembered, the
     * first ones forgotten (looked at again after at most two rotations) */
    cr_assert(pst_seen_has(&s, k[99]));
    cr_assert(pst_seen_has(&s, k[70]));
    cr_assert_not(pst_seen_has(&s, k[0]));
}

Test(seen, old_generation_rotates_by_age) {
    uint8_t a[PST_SEEN_KEY], b[PST_SEEN_KEY], c[PST_SEEN_KEY];
    key_of(1, a);
    key_of(2, b);
    key_of(3, c);
    pst_seen_add(&s, a, 1000);
    pst_seen_add(&s, b, 1000 + 1800); /* rotation: a now in the older generation */
    cr_assert(pst_seen_has(&s, a));
    pst_seen_add(&s, c, 1000 + 3600); /* second rotation: a's generation emptied */
    cr_assert_not(pst_seen_has(&s, a));
    cr_assert(pst_seen_has(&s, b));
    cr_assert(pst_seen_has(&s, c));
}
