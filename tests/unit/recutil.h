/* Helpers shared by the record tests (keyrec, revocation, endorsement):
 * fixed identities, splitting and re-assembling encodings field by field,
 * and known-answer vector files. */
#ifndef PST_RECUTIL_H
#define PST_RECUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "pst_envelope.h"
#include "pst_identity.h"
#include "pst_notify.h"
#include "testutil.h"

/* s[i] = base + i */
void ru_seed_bytes(uint8_t s[32], uint8_t base);
/* Fixed identity: sign seed base.., box seed base+0x20.., revocation seed base+0x40.. */
pst_identity *ru_kat_identity(uint8_t base);

/* A normalized-shape address of len bytes: local times 'a', '@', then a
 * domain of 'b' with a '.' after every 63 (out holds len + 1). */
void ru_address(char *out, size_t local, size_t len);

/* The notification inner the notify tests start from, not yet signed:
 * created now, expiring lifetime seconds later, no sender, two short
 * endpoints, msg_id of 0x07 and msg_key of 0x06 bytes. */
pst_notify_inner ru_notify_inner(uint64_t now, uint64_t lifetime, const uint8_t recipient[32],
                                 const uint8_t sender_box_pk[32]);
/* Sets r's times, size and endpoints to their largest (every endpoint of
 * PST_NOTIFY_ENDPOINT_MAX bytes): the biggest inner, for size bounds. */
void ru_notify_inner_largest(pst_notify_inner *r);

/* The top-level fields of an encoded record, as byte ranges. */
typedef struct {
    const uint8_t *p[20];
    size_t n[20];
    uint32_t count;
} ru_fields;
void ru_split(const uint8_t *enc, size_t len, ru_fields *f);
/* Re-assembles enc with field idx replaced by raw (raw NULL: field removed;
 * idx == count: raw appended). Returns the new length. */
size_t ru_with_field(const uint8_t *enc, size_t len, uint32_t idx, const void *raw, size_t raw_len,
                     uint8_t *out, size_t cap);

/* For hand-built malformed encodings: appends a 0 for each field from
 * written up to nfields (none if nfields <= written), finishes w (the test
 * fails if it overflowed) and returns the length. */
size_t ru_finish_fields(pst_writer *w, uint32_t written, uint32_t nfields);

/* One msgpack value encoded with the canonical writer, for ru_with_field(). */
typedef struct {
    uint8_t b[4096];
    size_t n;
} ru_raw;
ru_raw ru_raw_uint(uint64_t v);
ru_raw ru_raw_bin(const void *p, size_t n);
ru_raw ru_raw_str(const char *s);

/* A sample control response body (map) with every kind of value: nested
 * array and map, escapes, UTF-8, an empty map and array, UINT64_MAX. The
 * caller frees it (pst_value_free). */
pst_value *ru_sample_value(void);

/* Known-answer vector files: '#' comment lines, then hex. ru_read_vector
 * gives the byte count, or -1 if the file is missing or larger than cap;
 * ru_load_vector fails the test instead. */
long ru_read_vector(const char *name, uint8_t *out, size_t cap);
size_t ru_load_vector(const char *name, uint8_t *out, size_t cap);
/* Compares enc with the vector file (no rewrite mode); a failure prints the
 * fresh encoding in hex. */
void ru_expect_vector(const char *name, const uint8_t *enc, size_t len);
/* Compares enc with the vector file; with PST_WRITE_VECTORS set the file is
 * (re)written first. */
void ru_check_vector(const char *name, const char *comment, const uint8_t *enc, size_t len);
/* ru_check_vector, then the file's bytes must pass accept (ctx NULL). */
void ru_check_vector_accepted(const char *name, const char *comment, const uint8_t *enc, size_t len,
                              tu_accept_fn accept);
/* Asserts that id is BLAKE2b-256 of enc, as every DHT record's id is. */
void ru_expect_hash_id(const uint8_t id[32], const uint8_t *enc, size_t len);

#endif
