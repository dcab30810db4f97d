/* Shared helpers for the Criterion unit tests. */
#ifndef PST_TESTUTIL_H
#define PST_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Decodes and verifies in/len; returns 0 only when the input is accepted as a
 * valid, correctly signed record. */
typedef int (*tu_accept_fn)(const uint8_t *in, size_t len, void *ctx);

/* Asserts (Criterion) that every truncation and every single-byte change
 * (xor 0x01, 0x80 and 0xff at each position) of enc is rejected by accept. */
void tu_check_mutations(const uint8_t *enc, size_t len, tu_accept_fn accept, void *ctx);

/* Reads a whole file (malloc'd, caller frees); NULL on error. */
uint8_t *tu_read_file(const char *path, size_t *len);
/* Path of tests/vectors/<name> in a static buffer. */
const char *tu_vector_path(const char *name);
/* Hex helpers: decode returns the byte count or -1. */
long tu_hex_decode(const char *hex, uint8_t *out, size_t cap);
void tu_hex_encode(const uint8_t *in, size_t n, char *out /* 2n+1 */);
/* Deterministic pseudo-random bytes for tests (not crypto). */
void tu_fill(uint8_t *out, size_t n, uint32_t seed);

#endif
