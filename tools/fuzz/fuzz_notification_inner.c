/* libFuzzer target: NotificationInner decoder, then verify with a fixed
 * clock; also the endpoint syntax check on the raw text. Whatever decodes
 * must re-encode to exactly the input (canonical_harness.h). */
#include <stdint.h>
#include <string.h>

#include "canonical_harness.h"
#include "pst_notify.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_notify_inner, PST_NOTIFY_INNER_MAX)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_notify_inner r;
    char ep[PST_NOTIFY_ENDPOINT_MAX + 8]; /* the endpoint syntax check on text */
    size_t n = size < sizeof ep - 1 ? size : sizeof ep - 1;
    memcpy(ep, data, n);
    ep[n] = '\0';
    (void)pst_notify_endpoint_valid(ep);
    if (decode_canonical(data, size, &r))
        (void)!pst_notify_inner_verify(&r, FUZZ_NOW);
    return 0;
}
