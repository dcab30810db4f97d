/* libFuzzer target: AddressClaim decoder, then verify with a fixed clock;
 * also address normalisation and fingerprint parsing on the raw text.
 * Whatever decodes must re-encode to exactly the input (canonical form). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pst_records.h"

#define FUZZ_NOW 1700000060u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_address_claim r;
    uint8_t re[PST_DHT_VALUE_MAX], id[PST_HASH_BYTES];
    size_t len;
    /* the text parsers used on user input, on a NUL-terminated copy */
    char text[PST_ADDRESS_MAX + 2], norm[PST_ADDRESS_MAX + 1];
    uint8_t pk[PST_SIGN_PK_BYTES];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    if (pst_address_normalize(text, norm, sizeof norm) == 0 &&
        !pst_address_is_normalized(norm, strlen(norm)))
        abort();
    if (pst_fingerprint_parse(text, pk) == 0) {
        char back[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(pk, back);
        if (strncasecmp(back, text, PST_FINGERPRINT_STRLEN) != 0)
            abort();
    }
    if (pst_address_claim_decode(data, size, &r) != 0)
        return 0;
    if (pst_address_claim_encode(&r, re, sizeof re, &len) != 0 || len != size ||
        memcmp(re, data, size) != 0)
        abort(); /* decode accepted something that is not canonical */
    if (pst_address_claim_id(&r, id) != 0)
        abort();
    (void)!pst_address_claim_verify(&r, FUZZ_NOW);
    return 0;
}
