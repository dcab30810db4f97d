/* libFuzzer target: the bounded msgpack reader on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_limits lim = pst_limits_record;
    lim.allow_maps = size > 0 && (data[0] & 1);
    pst_reader r;
    (void)pst_r_parse(&r, data, size, &lim);
    pst_r_free(&r);
    return 0;
}
