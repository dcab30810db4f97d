/* Looking at a record before decoding it: which type is it? Used where one
 * DHT slot can hold several record types (a key slot holds KeyRecords and
 * Revocations), so the caller picks the right strict decoder. */
#ifndef PST_RECORD_H
#define PST_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "pst_types.h"

/* Reads only the array header and the first two fields. Returns 0 and the
 * type, PST_E_VERSION for another version, or a decode error. This is no
 * validation: the type's own decoder must still accept the whole record. */
int pst_record_peek_type(const uint8_t *in, size_t len, pst_rec_type *type);

/* Short lowercase name of a record type ("key", "revocation", ...) for logs
 * and counters; "unknown" for anything else. */
const char *pst_record_type_name(int type);

#endif
