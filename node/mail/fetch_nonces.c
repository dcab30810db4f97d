/* The fetch server's replay guard: a set of request nonces (fetch_nonces.h).
 * Open addressing with linear probing; expired entries stay as taken slots
 * (so probes stay correct) until the table fills to 3/4, when it is rebuilt
 * with only the live ones, at a size that leaves room to grow. */
#include <stdlib.h>
#include <string.h>

#include "fetch_nonces.h"

void pst_nonce_set_init(pst_nonce_set *s) {
    memset(s, 0, sizeof *s);
    crypto_shorthash_keygen(s->key);
}

void pst_nonce_set_free(pst_nonce_set *s) {
    free(s->slots);
    s->slots = NULL;
    s->cap = s->used = 0;
}

static uint32_t home_of(const pst_nonce_set *s, const uint8_t *nonce) {
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, nonce, PST_NONCE_BYTES, s->key);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return (uint32_t)(v & (s->cap - 1));
}

bool pst_nonce_set_has(const pst_nonce_set *s, const uint8_t nonce[PST_NONCE_BYTES], uint64_t now) {
    if (s->slots == NULL)
        return false;
    for (uint32_t i = home_of(s, nonce), n = 0; n < s->cap; i = (i + 1) & (s->cap - 1), n++) {
        const pst_nonce_slot *e = &s->slots[i];
        if (e->expires == 0)
            return false;
        if (memcmp(e->nonce, nonce, PST_NONCE_BYTES) == 0)
            return e->expires > now;
    }
    return false;
}

/* Puts nonce in a table known to have a free slot. */
static void place(pst_nonce_set *s, const uint8_t *nonce, uint64_t expires) {
    uint32_t i = home_of(s, nonce);
    while (s->slots[i].expires != 0 && memcmp(s->slots[i].nonce, nonce, PST_NONCE_BYTES) != 0)
        i = (i + 1) & (s->cap - 1);
    if (s->slots[i].expires == 0)
        s->used++;
    memcpy(s->slots[i].nonce, nonce, PST_NONCE_BYTES);
    s->slots[i].expires = expires;
}

uint32_t pst_nonce_set_live(const pst_nonce_set *s, uint64_t now) {
    uint32_t live = 0;
    for (uint32_t i = 0; i < s->cap; i++)
        live += s->slots[i].expires > now;
    return live;
}

/* A table of the live entries only, with room for need of them below 3/4. */
static bool rebuild(pst_nonce_set *s, uint32_t need, uint64_t now) {
    uint32_t cap = PST_NONCES_CAP_MIN;
    while ((uint64_t)need * 2 > cap && cap < PST_NONCES_CAP_MAX) /* half full at most */
        cap *= 2;
    if ((uint64_t)need * 4 > (uint64_t)cap * 3)
        return false;
    pst_nonce_slot *fresh = calloc(cap, sizeof *fresh);
    if (fresh == NULL)
        return false;
    pst_nonce_set old = *s;
    s->slots = fresh;
    s->cap = cap;
    s->used = 0;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.slots[i].expires > now)
            place(s, old.slots[i].nonce, old.slots[i].expires);
    free(old.slots);
    return true;
}

bool pst_nonce_set_add(pst_nonce_set *s, const uint8_t nonce[PST_NONCE_BYTES], uint64_t expires,
                       uint64_t now) {
    if (expires <= now)
        return true; /* nothing to keep: it would be refused as expired anyway */
    if (s->slots == NULL || (uint64_t)(s->used + 1) * 4 > (uint64_t)s->cap * 3) {
        uint32_t live = s->slots ? pst_nonce_set_live(s, now) : 0;
        if (!rebuild(s, live + 1, now))
            return false;
    }
    place(s, nonce, expires);
    return true;
}
