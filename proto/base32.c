/* z-base-32 codec (see pst_base32.h). Hand-written because none of our
 * dependencies provide base32, let alone Zooko's alphabet. */
#include "pst_base32.h"

#include <string.h>

#include "pst_error.h"

static const char alphabet[32] = "ybndrfg8ejkmcpqxot1uwisza345h769";

/* Value of a character (either case), or -1. */
static int char_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        c = (unsigned char)(c - 'A' + 'a');
    for (int i = 0; i < 32; i++) {
        if ((unsigned char)alphabet[i] == c)
            return i;
    }
    return -1;
}

int pst_base32_encode(const uint8_t *in, size_t n, char *out, size_t cap) {
    size_t need = PST_BASE32_ENCODED_LEN(n);
    if (cap == 0 || need >= cap || (n > 0 && in == NULL)) {
        if (cap > 0)
            out[0] = '\0';
        return cap == 0 || need >= cap ? PST_E_NOSPACE : PST_E_INVAL;
    }
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = alphabet[(acc >> bits) & 31u];
        }
        acc &= (1u << bits) - 1u; /* keep only the bits not yet emitted */
    }
    if (bits > 0)
        out[o++] = alphabet[(acc << (5 - bits)) & 31u];
    out[o] = '\0';
    return 0;
}

int pst_base32_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *out_len) {
    int rc = PST_E_INVAL;
    *out_len = 0;
    if (s == NULL)
        goto fail;
    size_t n = slen * 5u / 8u;
    /* Lengths like 1, 3 or 6 characters (mod 8) hold a whole 5-bit group
     * that no byte contributes to: no encoder produces them. */
    if (slen > SIZE_MAX / 8u || PST_BASE32_ENCODED_LEN(n) != slen)
        goto fail;
    if (n > cap) {
        rc = PST_E_NOSPACE;
        goto fail;
    }
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < slen; i++) {
        int v = char_value((unsigned char)s[i]);
        if (v < 0)
            goto fail;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1u;
        }
    }
    if (acc != 0) {
        rc = PST_E_NONCANONICAL;
        goto fail;
    }
    *out_len = o;
    return 0;
fail:
    if (out != NULL && cap > 0)
        memset(out, 0, cap);
    return rc;
}
