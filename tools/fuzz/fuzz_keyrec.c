/* libFuzzer target: KeyRecord decoder, then verify with a fixed clock; also
 * the endpoint text parser. Whatever decodes must re-encode to exactly the
 * input and have an id (canonical_harness.h). */
#include <stdint.h>

#include "canonical_harness.h"
#include "pst_records.h"

FZ_DEFINE_CANONICAL_RECORD(decode_canonical, pst_keyrec)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_keyrec r;
    (void)pst_endpoint_is_valid((const char *)data, size); /* text parsers too */
    if (decode_canonical(data, size, &r))
        (void)!pst_keyrec_verify(&r, FUZZ_NOW);
    return 0;
}
