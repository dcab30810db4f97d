/* The pure part of hashcash minting (see pst_hashcash.h): laying a stamp
 * out and searching one range of counters. No threads here: the driver that
 * runs ranges on several cores is node/core/mint.c.
 *
 * The stamp is prefix || pad || id(2) || iter(9) where prefix is
 * "1:bits:date:resource:ext:rand:" and pad, id and iter make up the counter
 * field. The pad (0..31 characters) puts the 11 varying characters and the
 * SHA-1 length padding inside one final 64-byte block, so the compression
 * of every earlier block (the midstate) is done once and each attempt is a
 * single nettle_sha1_compress. Search space `id` writes its number in id, so
 * the spaces are disjoint, and counts in iter (64^9 = 2^54 attempts each,
 * far beyond PST_HASHCASH_MINT_BITS_MAX): sweep k of a space sets the seven
 * slower iter digits to k in base 64 and tries the 64 x 64 values of the
 * two fastest.
 *
 * The pad also puts the fastest-changing character first in a 16-byte chunk
 * of the block, the rest of that chunk being the constant 0x80, zeros and
 * length. nettle's SHA-NI/SSE code loads the block 16 bytes at a time, and a
 * 16-byte load right after a 1-byte store into it cannot be served from the
 * store buffer: it stalls, ~1/3 of the attempt rate on x86-64. So each
 * attempt stores that whole chunk from a constant 64-entry table instead,
 * and only the slower characters (once per 64 attempts) are stored bytewise. */
#include "pst_hashcash.h"

#include <nettle/sha1.h>
#include <sodium.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>

#define BLOCK 64u
#define CHUNK 16u      /* bytes nettle's compression loads at once */
#define LENGTH_OFF 56u /* SHA-1 puts the 64-bit bit length at the block end */
#define ID_CHARS 2u
#define ITER_CHARS 9u
#define VARY_CHARS (ID_CHARS + ITER_CHARS)
#define SLOW_CHARS (ITER_CHARS - 2u) /* the iter digits a sweep number sets */
/* The fastest character sits at offset 16, 32 or 48 of the final block: the
 * others come before it, the 0x80 byte and the length after it. */
#define LO_OFF_MAX 48u
_Static_assert(LO_OFF_MAX + 1u < LENGTH_OFF, "0x80 must fit before the length");
_Static_assert(VARY_CHARS - 1u <= CHUNK, "slower characters must fit before offset 16");
_Static_assert(PST_HASHCASH_SWEEP == 64u * 64u, "a sweep is the two fastest digits");
_Static_assert(PST_HASHCASH_SEARCH_IDS == 64u * 64u, "a space number fills ID_CHARS");
_Static_assert(PST_HASHCASH_SEARCH_SWEEPS == UINT64_C(1) << (6u * SLOW_CHARS), "64^7 sweeps");
_Static_assert(sizeof(((pst_hashcash_search *)0)->block) == BLOCK, "one SHA-1 block");

/* Counter alphabet: the classic tool accepts [A-Za-z0-9+/=] there. */
static const char alphabet[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Builds the whole stamp with 'A' in the varying characters, the final
 * block and the midstate. */
static int layout(pst_hashcash_search *s, const char *resource, const char *ext, uint64_t now,
                  const uint8_t rand[PST_HASHCASH_RAND_BYTES]) {
    char date[PST_HASHCASH_DATE_MAX + 1];
    char buf[2 * PST_HASHCASH_STAMP_MAX];
    _Static_assert(PST_HASHCASH_RESOURCE_MAX + PST_HASHCASH_EXT_MAX + 64u <
                       2u * PST_HASHCASH_STAMP_MAX,
                   "buf");
    int rc = pst_hashcash_format_date(now, date);
    if (rc != PST_OK)
        return rc;
    char rnd[sodium_base64_ENCODED_LEN(PST_HASHCASH_RAND_BYTES,
                                       sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
    sodium_bin2base64(rnd, sizeof rnd, rand, PST_HASHCASH_RAND_BYTES,
                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    int n = snprintf(buf, sizeof buf, "1:%u:%s:%s:%s:%s:", s->bits, date, resource, ext, rnd);
    if (n < 0 || (size_t)n >= sizeof buf)
        return PST_E_TOOBIG;
    size_t pre = (size_t)n;
    /* Smallest pad that puts the fastest character at offset 16, 32 or 48
     * of a block with all the varying characters in that block. */
    size_t tail = pre % BLOCK, lo_off = CHUNK;
    while (lo_off < tail + VARY_CHARS - 1u && lo_off < LO_OFF_MAX)
        lo_off += CHUNK;
    size_t pad = lo_off >= tail + VARY_CHARS - 1u ? lo_off - (VARY_CHARS - 1u) - tail
                                                  : BLOCK - tail + CHUNK - (VARY_CHARS - 1u);
    size_t total = pre + pad + VARY_CHARS;
    if (total > PST_HASHCASH_STAMP_MAX)
        return PST_E_TOOBIG;
    memset(buf + pre, alphabet[0], pad + VARY_CHARS);
    buf[total] = '\0';
    memcpy(s->stamp, buf, total + 1);
    s->len = total;

    size_t vary = pre + pad;
    size_t last = vary / BLOCK * BLOCK; /* start of the final block */
    struct sha1_ctx ctx;
    sha1_init(&ctx); /* only for nettle's initial state words */
    memcpy(s->midstate, ctx.state, sizeof s->midstate);
    for (size_t off = 0; off < last; off += BLOCK)
        nettle_sha1_compress(s->midstate, (const uint8_t *)buf + off);
    memset(s->block, 0, sizeof s->block);
    memcpy(s->block, buf + last, total - last);
    s->block[total - last] = 0x80;
    uint64_t bitlen = (uint64_t)total * 8u;
    for (unsigned i = 0; i < 8; i++)
        s->block[LENGTH_OFF + i] = (uint8_t)(bitlen >> (56 - 8 * i));
    s->vary_off = (unsigned)(vary - last);

    s->mask0 = s->bits >= 32 ? UINT32_MAX : ~(UINT32_MAX >> s->bits);
    s->mask1 = s->bits > 32 ? ~(UINT32_MAX >> (s->bits - 32)) : 0;
    return PST_OK;
}

int pst_hashcash_search_init(pst_hashcash_search *s, unsigned bits, const char *resource,
                             const char *ext, uint64_t now,
                             const uint8_t rand[PST_HASHCASH_RAND_BYTES]) {
    if (s == NULL)
        return PST_E_INVAL;
    memset(s, 0, sizeof *s);
    if (ext == NULL)
        ext = "";
    if (rand == NULL || bits < 1 || bits > PST_HASHCASH_MINT_BITS_MAX ||
        !pst_hashcash_field_valid(resource, false) || !pst_hashcash_field_valid(ext, true))
        return PST_E_INVAL;
    s->bits = bits;
    int rc = layout(s, resource, ext, now, rand);
    if (rc != PST_OK)
        memset(s, 0, sizeof *s);
    return rc;
}

int pst_hashcash_search_run(const pst_hashcash_search *s, unsigned id, uint64_t first,
                            uint64_t count, char out[PST_HASHCASH_STAMP_MAX + 1],
                            uint64_t *attempts) {
    uint32_t mid[5];
    alignas(64) uint8_t block[BLOCK];
    *attempts = 0;
    if (s->len == 0 || id >= PST_HASHCASH_SEARCH_IDS || first > PST_HASHCASH_SEARCH_SWEEPS ||
        count > PST_HASHCASH_SEARCH_SWEEPS - first)
        return PST_E_INVAL;
    memcpy(mid, s->midstate, sizeof mid);
    memcpy(block, s->block, sizeof block);
    const uint32_t m0 = s->mask0, m1 = s->mask1;
    uint8_t *vary = block + s->vary_off;
    uint8_t *iter = vary + ID_CHARS;
    vary[0] = (uint8_t)alphabet[id / 64u];
    vary[1] = (uint8_t)alphabet[id % 64u];
    /* Chunk images for the 64 values of the fastest character; the rest of
     * that chunk never changes (see the top of this file). */
    uint8_t *lo_chunk = iter + ITER_CHARS - 1;
    alignas(16) uint8_t tbl[64][CHUNK];
    for (unsigned lo = 0; lo < 64; lo++) {
        memcpy(tbl[lo], lo_chunk, CHUNK);
        tbl[lo][0] = (uint8_t)alphabet[lo];
    }

    for (uint64_t k = first; k < first + count; k++) {
        uint64_t v = k;
        for (unsigned i = SLOW_CHARS; i-- > 0; v >>= 6)
            iter[i] = (uint8_t)alphabet[v & 63u];
        for (unsigned hi = 0; hi < 64; hi++) {
            iter[ITER_CHARS - 2] = (uint8_t)alphabet[hi];
            for (unsigned lo = 0; lo < 64; lo++) {
                memcpy(lo_chunk, tbl[lo], CHUNK);
                uint32_t st[5];
                memcpy(st, mid, sizeof st);
                nettle_sha1_compress(st, block);
                /* State word 0 is the first 4 digest bytes, big-endian. */
                if (((st[0] & m0) | (st[1] & m1)) != 0)
                    continue;
                *attempts += hi * 64u + lo + 1u;
                memcpy(out, s->stamp, s->len + 1);
                memcpy(out + s->len - VARY_CHARS, vary, VARY_CHARS);
                /* Cross-check with a plain SHA-1: catches a wrong midstate or
                 * padding before a bad stamp leaves this function. */
                if (pst_hashcash_count_bits(out, s->len) < s->bits) {
                    memset(out, 0, PST_HASHCASH_STAMP_MAX + 1);
                    return PST_E_CRYPTO;
                }
                return PST_OK;
            }
        }
        *attempts += PST_HASHCASH_SWEEP;
    }
    return PST_E_NOTFOUND;
}
