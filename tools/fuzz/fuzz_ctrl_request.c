/* libFuzzer target: control Request decoder. Whatever decodes must
 * re-encode to exactly the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static pst_ctrl_request r; /* ~128 KiB */
    static uint8_t re[PST_CTRL_FRAME_MAX];
    size_t len;
    if (pst_ctrl_request_decode(data, size, &r) != PST_OK)
        return 0;
    if (pst_ctrl_request_encode(&r, re, sizeof re, &len) != PST_OK || len != size ||
        memcmp(re, data, size) != 0)
        abort(); /* decode accepted something that is not canonical */
    return 0;
}
