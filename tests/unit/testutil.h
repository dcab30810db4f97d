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

/* Defines the per-type helpers the signed-object tests share, for a type T
 * with T_encode, T_decode and T_verify(obj, now), in the including file
 * (Criterion asserts; unused ones draw no warning):
 *   size_t NAME_enc(const T *obj, uint8_t *out, size_t cap): encodes or
 *       fails the test; returns the length;
 *   int NAME_accept_at(in, len, now): decode, then verify at now;
 *   int NAME_accept(in, len, ctx): the same at NOW_ (a tu_accept_fn);
 *   int NAME_decode_rc(in, len): the decoder's result alone;
 *   size_t NAME_round_trip(obj, back, out, cap): encodes obj into out,
 *       decodes it into *back, which must equal *obj byte for byte and
 *       verify at NOW_; returns the length.
 * TU_DEFINE_SIGNED_WITH names the verify function instead, for types whose
 * verify takes more than (obj, now): a wrapper that fixes the rest. */
#define TU_DEFINE_SIGNED(NAME, T, NOW_) TU_DEFINE_SIGNED_WITH(NAME, T, T##_verify, NOW_)
#define TU_DEFINE_SIGNED_WITH(NAME, T, VERIFY, NOW_)                                               \
    __attribute__((unused)) static size_t NAME##_enc(const T *obj, uint8_t *out, size_t cap) {     \
        size_t len;                                                                                \
        cr_assert_eq(T##_encode(obj, out, cap, &len), PST_OK);                                     \
        return len;                                                                                \
    }                                                                                              \
    __attribute__((unused)) static int NAME##_accept_at(const uint8_t *in, size_t len,             \
                                                        uint64_t now) {                            \
        T obj;                                                                                     \
        int rc = T##_decode(in, len, &obj);                                                        \
        return rc != PST_OK ? rc : VERIFY(&obj, now);                                              \
    }                                                                                              \
    __attribute__((unused)) static int NAME##_accept(const uint8_t *in, size_t len, void *ctx) {   \
        (void)ctx;                                                                                 \
        return NAME##_accept_at(in, len, NOW_);                                                    \
    }                                                                                              \
    __attribute__((unused)) static int NAME##_decode_rc(const uint8_t *in, size_t len) {           \
        T obj;                                                                                     \
        return T##_decode(in, len, &obj);                                                          \
    }                                                                                              \
    __attribute__((unused)) static size_t NAME##_round_trip(const T *obj, T *back, uint8_t *out,   \
                                                            size_t cap) {                          \
        size_t len = NAME##_enc(obj, out, cap);                                                    \
        cr_assert_eq(T##_decode(out, len, back), PST_OK);                                          \
        cr_assert_arr_eq(back, obj, sizeof *obj);                                                  \
        cr_assert_eq(VERIFY(back, NOW_), PST_OK);                                                  \
        return len;                                                                                \
    }

/* Reads a whole file (malloc'd, caller frees); NULL on error. */
uint8_t *tu_read_file(const char *path, size_t *len);
/* Path of tests/vectors/<name> in a static buffer. */
const char *tu_vector_path(const char *name);
/* Hex helpers: decode returns the byte count or -1. */
long tu_hex_decode(const char *hex, uint8_t *out, size_t cap);
void tu_hex_encode(const uint8_t *in, size_t n, char *out /* 2n+1 */);
/* Fixed keys: the Ed25519 (sign) or X25519 (box) key pair whose 32-byte
 * seed is the byte fill repeated. */
void tu_sign_keypair(uint8_t pk[32], uint8_t sk[64], uint8_t fill);
void tu_box_keypair(uint8_t pk[32], uint8_t sk[32], uint8_t fill);
/* The tests' linear congruential generator: advances *s, returns 15 bits. */
uint32_t tu_lcg(uint32_t *s);
/* A random message for the filter tests: atoms drawn with tu_lcg(s) and
 * appended to out until it holds at least min_len bytes, but after each
 * atom it stops early one time in stop_one_in; atom nul_atom (an index, or
 * SIZE_MAX for none) stands for one NUL byte. out must hold min_len plus
 * the longest atom. Returns the length. */
size_t tu_atom_message(uint32_t *s, const char *const *atoms, size_t n_atoms, size_t nul_atom,
                       size_t min_len, uint32_t stop_one_in, uint8_t *out);
/* Deterministic pseudo-random bytes for tests (not crypto). */
void tu_fill(uint8_t *out, size_t n, uint32_t seed);

#endif
