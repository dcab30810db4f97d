/* libFuzzer target: NotificationInner decoder, then verify with a fixed
 * clock. Whatever decodes must re-encode to exactly the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_notify.h"

#define FUZZ_NOW 1700000060u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_notify_inner r;
    uint8_t re[PST_NOTIFY_INNER_MAX];
    size_t len;
    char ep[PST_NOTIFY_ENDPOINT_MAX + 8]; /* the endpoint syntax check on text */
    size_t n = size < sizeof ep - 1 ? size : sizeof ep - 1;
    memcpy(ep, data, n);
    ep[n] = '\0';
    (void)pst_notify_endpoint_valid(ep);
    if (pst_notify_inner_decode(data, size, &r) != PST_OK)
        return 0;
    if (pst_notify_inner_encode(&r, re, sizeof re, &len) != PST_OK || len != size ||
        memcmp(re, data, size) != 0)
        abort(); /* decode accepted something that is not canonical */
    (void)!pst_notify_inner_verify(&r, FUZZ_NOW);
    return 0;
}
