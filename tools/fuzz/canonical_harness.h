/* Shared by the decoder fuzz targets whose invariant is canonical form:
 * whatever a decoder accepts must re-encode to exactly the input bytes, or
 * the decoder accepted two spellings of one value (a signature or id could
 * then cover bytes other than the ones on the wire). Breaks abort, as the
 * fuzzer expects. */
#ifndef CANONICAL_HARNESS_H
#define CANONICAL_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_error.h"

/* The fixed clock the targets verify against (the seed corpora's era). */
#define FUZZ_NOW 1700000060u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Defines static int NAME(const uint8_t *data, size_t size, TYPE *r):
 * decodes data with TYPE_decode into *r; returns 0 if it is rejected, 1
 * if it decoded and TYPE_encode (into a CAP-byte buffer) gave the same
 * bytes back, and aborts otherwise. The buffer is static: CAP may be large
 * and targets run one input at a time. */
#define FZ_DEFINE_CANONICAL(NAME, TYPE, CAP)                                                       \
    static int NAME(const uint8_t *data, size_t size, TYPE *r) {                                   \
        static uint8_t re[CAP];                                                                    \
        size_t len = 0;                                                                            \
        if (TYPE##_decode(data, size, r) != PST_OK)                                                \
            return 0;                                                                              \
        if (TYPE##_encode(r, re, sizeof re, &len) != PST_OK || len != size ||                      \
            memcmp(re, data, size) != 0)                                                           \
            abort(); /* decode accepted something that is not canonical */                         \
        return 1;                                                                                  \
    }

/* The same for a signed DHT record, whose id (TYPE_id) must then be
 * computable too. */
#define FZ_DEFINE_CANONICAL_RECORD(NAME, TYPE)                                                     \
    FZ_DEFINE_CANONICAL(NAME##_bytes, TYPE, PST_DHT_VALUE_MAX)                                     \
    static int NAME(const uint8_t *data, size_t size, TYPE *r) {                                   \
        uint8_t id[PST_HASH_BYTES];                                                                \
        if (!NAME##_bytes(data, size, r))                                                          \
            return 0;                                                                              \
        if (TYPE##_id(r, id) != PST_OK)                                                            \
            abort();                                                                               \
        return 1;                                                                                  \
    }

#endif
