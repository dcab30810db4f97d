/* libFuzzer target: pst_record_peek_type, which storing nodes run on every
 * store request under a Postern value type (dht/dht_types.cpp, on OpenDHT's
 * thread) and ingest runs before picking a decoder. It must read within len
 * and name a type only for a well-formed prefix. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_error.h"
#include "pst_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy of exactly size bytes: ASan sees any read past it */
    uint8_t *in = size ? malloc(size) : NULL;
    if (size && !in)
        return 0;
    if (size)
        memcpy(in, data, size);
    pst_rec_type t = (pst_rec_type)99;
    int rc = pst_record_peek_type(in, size, &t);
    if (rc == PST_OK) {
        if (size < 3 || (int)t > 0x7f)
            abort();
    } else if (t != 0) {
        abort(); /* outputs zeroed on failure */
    }
    free(in);
    return 0;
}
