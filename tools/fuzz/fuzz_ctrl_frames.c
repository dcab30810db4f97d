/* libFuzzer target: the frame reassembly the control socket (node/control/control.c)
 * uses, pst_framer, with that reader's cap and decoder. The input picks the
 * chunking and the framer's storage mode; every frame goes through the
 * control Request decoder, as in the node, and must be canonical. Invariants: see framer_harness.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canonical_harness.h"
#include "framer_harness.h"
#include "pst_envelope.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_ctrl_request, PST_CTRL_FRAME_MAX)

static uint64_t on_frame(const uint8_t *frame, uint32_t len, unsigned index) {
    static pst_ctrl_request r; /* ~128 KiB */
    (void)index;
    (void)decode_canonical(frame, len, &r);
    return 0; /* control streams are frames only */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t storage[PST_CTRL_FRAME_MAX];
    fh_check(data, size, PST_CTRL_FRAME_MAX, storage, on_frame);
    return 0;
}
