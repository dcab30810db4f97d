/* libFuzzer target: AddressClaim decoder, then verify with a fixed clock;
 * also address normalisation and fingerprint parsing on the raw text.
 * Whatever decodes must re-encode to exactly the input and have an id
 * (canonical_harness.h). */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "canonical_harness.h"
#include "pst_records.h"

FZ_DEFINE_CANONICAL_RECORD(decode_canonical, pst_address_claim)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_address_claim r;
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
    if (decode_canonical(data, size, &r))
        (void)!pst_address_claim_verify(&r, FUZZ_NOW);
    return 0;
}
