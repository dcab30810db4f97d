/* libFuzzer target: FetchResponse header decoder, then verify with a fixed clock.
 * Whatever decodes must re-encode to exactly the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_fetch.h"

#define FUZZ_NOW 1700000060u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_fetch_response r;
    uint8_t re[PST_FETCH_RESPONSE_MAX];
    size_t len;
    if (size >= PST_FRAME_HEADER_BYTES) {
        uint32_t flen;
        (void)pst_frame_header_parse(data, PST_FRAME_MAX, &flen);
    }
    if (pst_fetch_response_decode(data, size, &r) != PST_OK)
        return 0;
    if (pst_fetch_response_encode(&r, re, sizeof re, &len) != PST_OK || len != size ||
        memcmp(re, data, size) != 0)
        abort(); /* decode accepted something that is not canonical */
    (void)!pst_fetch_response_verify(&r, FUZZ_NOW, PST_FETCH_SKEW_DEFAULT);
    return 0;
}
