/* z-base-32 (Zooko O'Whielacronx's human-oriented base32), used to print
 * fingerprints. Bits are taken most significant first, in groups of 5, as in
 * RFC 4648 base32, but with the alphabet ybndrfg8ejkmcpqxot1uwisza345h769 and
 * no padding: n bytes always give ceil(8n/5) characters, the unused low bits
 * of the last character being zero. Pure functions, no allocation. */
#ifndef PST_BASE32_H
#define PST_BASE32_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Characters (without the NUL) that n input bytes encode to. */
#define PST_BASE32_ENCODED_LEN(n) ((((size_t)(n)) * 8u + 4u) / 5u)

/* Encodes n bytes into out as lowercase z-base-32 plus a terminating NUL.
 * cap must be at least PST_BASE32_ENCODED_LEN(n) + 1, else PST_E_NOSPACE
 * (out is then set to "" when cap > 0). */
int pst_base32_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* Decodes exactly slen characters of z-base-32 (upper case accepted, nothing
 * else: no padding, spaces or separators) into out. Errors: PST_E_INVAL for a
 * character outside the alphabet or a length no byte string encodes to,
 * PST_E_NONCANONICAL when the unused low bits of the last character are not
 * zero (so every byte string has exactly one accepted lowercase spelling),
 * PST_E_NOSPACE when cap is too small. On error out[0..cap) is zeroed and
 * *out_len is 0. */
int pst_base32_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
