/* node/inbox.c: when a failed fetch is tried again. A message is given up
 * only once its notification has expired, never while it is still valid
 * because the next back-off step would reach past expiry. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "node_int.h"

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
