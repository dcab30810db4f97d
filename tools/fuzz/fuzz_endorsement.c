/* libFuzzer target: Endorsement decoder, then verify with a fixed clock.
 * Whatever decodes must re-encode to exactly the input (canonical form). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_records.h"

#define FUZZ_NOW 1700000060u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_endorsement r;
    uint8_t re[PST_DHT_VALUE_MAX], id[PST_HASH_BYTES];
    size_t len;
    if (pst_endorsement_decode(data, size, &r) != 0)
        return 0;
    if (pst_endorsement_encode(&r, re, sizeof re, &len) != 0 || len != size ||
        memcmp(re, data, size) != 0)
        abort(); /* decode accepted something that is not canonical */
    if (pst_endorsement_id(&r, id) != 0)
        abort();
    (void)!pst_endorsement_verify(&r, FUZZ_NOW);
    return 0;
}
