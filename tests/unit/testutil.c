#include "testutil.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tu_check_mutations(const uint8_t *enc, size_t len, tu_accept_fn accept, void *ctx) {
    cr_assert_eq(accept(enc, len, ctx), 0, "the unmodified encoding must be accepted");
    uint8_t *buf = malloc(len ? len : 1);
    cr_assert_not_null(buf);
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(buf, enc, cut);
        cr_assert_neq(accept(buf, cut, ctx), 0, "truncation to %zu of %zu bytes accepted", cut,
                      len);
    }
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    for (size_t i = 0; i < len; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            memcpy(buf, enc, len);
            buf[i] ^= masks[m];
            cr_assert_neq(accept(buf, len, ctx), 0, "byte %zu xor 0x%02x accepted", i, masks[m]);
        }
    }
    free(buf);
}

uint8_t *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        *len = n;
    return buf;
}

const char *tu_vector_path(const char *name) {
    static char path[4096];
    const char *dir = getenv("PST_VECTORS_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/vectors", name);
    return path;
}

long tu_hex_decode(const char *hex, uint8_t *out, size_t cap) {
    size_t n = 0;
    while (hex[0] && hex[1]) {
        unsigned v;
        if (hex[0] == '\n' || hex[0] == ' ') {
            hex++;
            continue;
        }
        if (sscanf(hex, "%2x", &v) != 1 || n >= cap)
            return -1;
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return (long)n;
}

void tu_hex_encode(const uint8_t *in, size_t n, char *out) {
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
    out[2 * n] = '\0';
}

void tu_fill(uint8_t *out, size_t n, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = (uint8_t)x;
    }
}

void tu_sign_keypair(uint8_t pk[32], uint8_t sk[64], uint8_t fill) {
    uint8_t seed[32];
    memset(seed, fill, sizeof seed);
    cr_assert_eq(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

void tu_box_keypair(uint8_t pk[32], uint8_t sk[32], uint8_t fill) {
    uint8_t seed[32];
    memset(seed, fill, sizeof seed);
    cr_assert_eq(crypto_box_seed_keypair(pk, sk, seed), 0);
}

uint32_t tu_lcg(uint32_t *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

size_t tu_atom_message(uint32_t *s, const char *const *atoms, size_t n_atoms, size_t nul_atom,
                       size_t min_len, uint32_t stop_one_in, uint8_t *out) {
    size_t n = 0;
    while (n < min_len) {
        size_t a = tu_lcg(s) % n_atoms;
        size_t l = a == nul_atom ? 1 : strlen(atoms[a]);
        memcpy(out + n, a == nul_atom ? "\0" : atoms[a], l);
        n += l;
        if (tu_lcg(s) % stop_one_in == 0)
            break;
    }
    return n;
}
