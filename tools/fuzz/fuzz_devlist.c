/* libFuzzer target: devlist decoder (issue 13), then verify with a fixed clock.
 * Whatever decodes must re-encode to exactly the input and have an id
 * (canonical_harness.h). */
#include <stdint.h>

#include "canonical_harness.h"
#include "pst_device.h"

FZ_DEFINE_CANONICAL_RECORD(decode_canonical, pst_devlist)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_devlist r;
    if (decode_canonical(data, size, &r))
        (void)!pst_devlist_verify(&r, FUZZ_NOW);
    return 0;
}
