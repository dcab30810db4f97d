/* libFuzzer target: the plaintext of a pairing request (issue 13),
 * decoded, then re-encoded to exactly the input (canonical_harness.h). */
#include <stdint.h>

#include "canonical_harness.h"
#include "pst_pairing.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_pair_request, PST_PAIR_REQUEST_MAX)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static pst_pair_request r;
    (void)decode_canonical(data, size, &r);
    return 0;
}
