/* libFuzzer target: control Request decoder. Whatever decodes must
 * re-encode to exactly the input (canonical_harness.h). */
#include <stdint.h>

#include "canonical_harness.h"
#include "pst_envelope.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_ctrl_request, PST_CTRL_FRAME_MAX)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static pst_ctrl_request r; /* ~128 KiB */
    (void)decode_canonical(data, size, &r);
    return 0;
}
