/* The seen set of pst_seen.h. */
#include <sodium.h>
#include <string.h>

#include "pst_seen.h"

/* Never a key (keys have the low bit of their last byte set) nor empty, so
 * probing runs past a forgotten key. */
static const uint8_t tombstone[PST_SEEN_KEY] = {1};
static const uint8_t empty[PST_SEEN_KEY];

void pst_seen_init(pst_seen *s, void *mem, unsigned nslots, uint32_t rotate_s, uint64_t now) {
    memset(s, 0, sizeof *s);
    s->gen[0] = mem;
    s->gen[1] = s->gen[0] + nslots;
    s->nslots = nslots;
    s->rotate_s = rotate_s;
    s->since = now;
    randombytes_buf(s->hash_key, sizeof s->hash_key);
}

void pst_seen_key(const pst_seen *s, const void *ctx, size_t ctx_len, const uint8_t *val,
                  size_t len, uint8_t key[PST_SEEN_KEY]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, s->hash_key, sizeof s->hash_key, PST_SEEN_KEY);
    uint8_t n = (uint8_t)(ctx_len < 255 ? ctx_len : 255);
    crypto_generichash_update(&st, &n, 1);
    if (ctx != NULL && n > 0)
        crypto_generichash_update(&st, ctx, n);
    crypto_generichash_update(&st, val, len);
    crypto_generichash_final(&st, key, PST_SEEN_KEY);
    key[PST_SEEN_KEY - 1] |= 1; /* never empty, never the tombstone */
}

/* The slot holding key, or the empty slot where it would go. Load stays
 * <= 1/2, so the probe always ends. */
static uint8_t *slot_of(const pst_seen *s, int g, const uint8_t key[PST_SEEN_KEY]) {
    uint32_t i = ((uint32_t)key[0] | (uint32_t)key[1] << 8 | (uint32_t)key[2] << 16) % s->nslots;
    while (memcmp(s->gen[g][i], empty, PST_SEEN_KEY) != 0 &&
           memcmp(s->gen[g][i], key, PST_SEEN_KEY) != 0)
        i = (i + 1) % s->nslots;
    return s->gen[g][i];
}

bool pst_seen_has(const pst_seen *s, const uint8_t key[PST_SEEN_KEY]) {
    for (int g = 0; g < 2; g++)
        if (memcmp(slot_of(s, g, key), key, PST_SEEN_KEY) == 0)
            return true;
    return false;
}

void pst_seen_add(pst_seen *s, const uint8_t key[PST_SEEN_KEY], uint64_t now) {
    unsigned c = s->cur;
    /* forgotten keys stay as tombstones and count: the load bound holds */
    if (s->count[c] >= s->nslots / 2 || now >= s->since + s->rotate_s) {
        c = s->cur ^= 1;
        memset(s->gen[c], 0, (size_t)s->nslots * PST_SEEN_KEY);
        s->count[c] = 0;
        s->since = now;
    }
    uint8_t *p = slot_of(s, (int)c, key);
    if (memcmp(p, key, PST_SEEN_KEY) != 0) {
        memcpy(p, key, PST_SEEN_KEY);
        s->count[c]++;
    }
}

void pst_seen_forget(pst_seen *s, const uint8_t key[PST_SEEN_KEY]) {
    for (int g = 0; g < 2; g++) {
        uint8_t *p = slot_of(s, g, key);
        if (memcmp(p, key, PST_SEEN_KEY) == 0)
            memcpy(p, tombstone, PST_SEEN_KEY);
    }
}
