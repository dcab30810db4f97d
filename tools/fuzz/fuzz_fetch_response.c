/* libFuzzer target: FetchResponse header decoder, then verify with a fixed clock; also the
 * frame header parser on the first bytes. Whatever decodes must re-encode
 * to exactly the input (canonical_harness.h). */
#include <stdint.h>

#include "canonical_harness.h"
#include "pst_fetch.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_fetch_response, PST_FETCH_RESPONSE_MAX)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_fetch_response r;
    if (size >= PST_FRAME_HEADER_BYTES) {
        uint32_t flen;
        (void)pst_frame_header_parse(data, PST_FRAME_MAX, &flen);
    }
    if (decode_canonical(data, size, &r))
        (void)!pst_fetch_response_verify(&r, FUZZ_NOW, PST_FETCH_SKEW_DEFAULT);
    return 0;
}
