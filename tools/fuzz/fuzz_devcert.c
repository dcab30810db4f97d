/* libFuzzer target: devcert decoder (issue 13), then verify with a fixed clock.
 * Whatever decodes must re-encode to exactly the input and have an id
 * (canonical_harness.h). */
#include <stdint.h>

#include "canonical_harness.h"
#include "pst_device.h"

FZ_DEFINE_CANONICAL_RECORD(decode_canonical, pst_devcert)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_devcert r;
    if (decode_canonical(data, size, &r))
        (void)!pst_devcert_verify(&r, FUZZ_NOW);
    return 0;
}
