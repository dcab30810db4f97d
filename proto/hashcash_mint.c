/* Multithreaded hashcash minting (see pst_hashcash.h).
 *
 * The stamp is prefix || pad || id(2) || iter(9) where prefix is
 * "1:bits:date:resource:ext:rand:" and pad, id and iter make up the counter
 * field. The pad (0..31 characters) puts the 11 varying characters and the
 * SHA-1 length padding inside one final 64-byte block, so the compression
 * of every earlier block (the midstate) is done once and each attempt is a
 * single nettle_sha1_compress. Thread t writes its number in id, so the
 * threads' counter ranges are disjoint, and counts in iter (64^9 = 2^54
 * attempts each, far beyond PST_HASHCASH_MINT_BITS_MAX).
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
#include <pthread.h>
#include <sodium.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BLOCK 64u
#define CHUNK 16u      /* bytes nettle's compression loads at once */
#define LENGTH_OFF 56u /* SHA-1 puts the 64-bit bit length at the block end */
#define ID_CHARS 2u
#define ITER_CHARS 9u
#define VARY_CHARS (ID_CHARS + ITER_CHARS)
/* The fastest character sits at offset 16, 32 or 48 of the final block: the
 * others come before it, the 0x80 byte and the length after it. */
#define LO_OFF_MAX 48u
_Static_assert(LO_OFF_MAX + 1u < LENGTH_OFF, "0x80 must fit before the length");
_Static_assert(VARY_CHARS - 1u <= CHUNK, "slower characters must fit before offset 16");
/* The two fastest iter digits are swept in a 64 x 64 inner loop; cancel and
 * "someone found it" are looked at between sweeps (~0.2-0.5 ms of work). */
#define SWEEP 4096u
#define PROGRESS_SWEEPS 1024u /* 2^22 attempts: ~0.1 s on a core with SHA-NI */

_Static_assert(PST_HASHCASH_THREADS_MAX <= 64u * 64u, "thread number must fit in ID_CHARS");

/* Counter alphabet: the classic tool accepts [A-Za-z0-9+/=] there. */
static const char alphabet[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

typedef struct {
    /* Read-only once the workers start. */
    uint32_t midstate[5];
    uint8_t block[BLOCK]; /* final block, varying characters set to 'A' */
    unsigned vary_off;    /* offset of the id characters in block */
    uint32_t mask0, mask1;
    const atomic_int *cancel;
    void (*progress)(uint64_t, double, void *);
    void *user;
    double expected;
    /* Written by the workers; on their own cache line so the hot loops,
     * which only read the fields above (copied to their stacks anyway), do
     * not share it. */
    alignas(64) atomic_int stop;
    atomic_int found;
    atomic_uint_fast64_t hashes;
    char winner[VARY_CHARS]; /* written once by the CAS winner, read after join */
} mint_shared;

typedef struct {
    mint_shared *sh;
    unsigned id;
    pthread_t tid;
    bool started;
} mint_worker;

static bool should_stop(mint_shared *sh) {
    if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
        return true;
    if (sh->cancel != NULL && atomic_load_explicit(sh->cancel, memory_order_relaxed)) {
        atomic_store_explicit(&sh->stop, 1, memory_order_relaxed);
        return true;
    }
    return false;
}

static void *mint_work(void *arg) {
    mint_worker *w = arg;
    mint_shared *sh = w->sh;
    uint32_t mid[5];
    alignas(64) uint8_t block[BLOCK];
    memcpy(mid, sh->midstate, sizeof mid);
    memcpy(block, sh->block, sizeof block);
    const uint32_t m0 = sh->mask0, m1 = sh->mask1;
    uint8_t *vary = block + sh->vary_off;
    uint8_t *iter = vary + ID_CHARS;
    vary[0] = (uint8_t)alphabet[w->id / 64u];
    vary[1] = (uint8_t)alphabet[w->id % 64u];
    unsigned digit[ITER_CHARS] = {0};
    unsigned sweeps = 0;
    /* Chunk images for the 64 values of the fastest character; the rest of
     * that chunk never changes (see the top of this file). */
    uint8_t *lo_chunk = iter + ITER_CHARS - 1;
    alignas(16) uint8_t tbl[64][CHUNK];
    for (unsigned lo = 0; lo < 64; lo++) {
        memcpy(tbl[lo], lo_chunk, CHUNK);
        tbl[lo][0] = (uint8_t)alphabet[lo];
    }

    for (;;) {
        for (unsigned hi = 0; hi < 64; hi++) {
            iter[ITER_CHARS - 2] = (uint8_t)alphabet[hi];
            for (unsigned lo = 0; lo < 64; lo++) {
                memcpy(lo_chunk, tbl[lo], CHUNK);
                uint32_t s[5];
                memcpy(s, mid, sizeof s);
                nettle_sha1_compress(s, block);
                /* State word 0 is the first 4 digest bytes, big-endian. */
                if (((s[0] & m0) | (s[1] & m1)) != 0)
                    continue;
                atomic_fetch_add_explicit(&sh->hashes, hi * 64u + lo + 1u, memory_order_relaxed);
                int expect = 0;
                if (atomic_compare_exchange_strong(&sh->found, &expect, 1))
                    memcpy(sh->winner, vary, VARY_CHARS);
                atomic_store_explicit(&sh->stop, 1, memory_order_relaxed);
                return NULL;
            }
        }
        atomic_fetch_add_explicit(&sh->hashes, SWEEP, memory_order_relaxed);
        if (should_stop(sh))
            return NULL;
        if (w->id == 0 && sh->progress != NULL && ++sweeps == PROGRESS_SWEEPS) {
            sweeps = 0;
            sh->progress(atomic_load_explicit(&sh->hashes, memory_order_relaxed), sh->expected,
                         sh->user);
        }
        /* Carry into the slower digits; running out of all 2^54 ends this
         * worker without a stamp. */
        unsigned i = ITER_CHARS - 2;
        for (;;) {
            if (i == 0)
                return NULL;
            i--;
            if (++digit[i] < 64u) {
                iter[i] = (uint8_t)alphabet[digit[i]];
                break;
            }
            digit[i] = 0;
            iter[i] = (uint8_t)alphabet[0];
        }
    }
}

static unsigned thread_count(unsigned asked) {
    if (asked == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        asked = n > 0
                    ? (unsigned)(n > (long)PST_HASHCASH_THREADS_MAX ? PST_HASHCASH_THREADS_MAX : n)
                    : 1u;
    }
    return asked > PST_HASHCASH_THREADS_MAX ? PST_HASHCASH_THREADS_MAX : asked;
}

/* Builds the whole stamp with 'A' in the varying characters, the final
 * block and the midstate. Returns the stamp length or a PST_E_* code. */
static int layout(const pst_hashcash_mint_params *p, const char *ext, char *buf, size_t bufcap,
                  mint_shared *sh) {
    char date[PST_HASHCASH_DATE_MAX + 1];
    int rc = pst_hashcash_format_date(p->now, date);
    if (rc != PST_OK)
        return rc;
    char rnd[sodium_base64_ENCODED_LEN(PST_HASHCASH_RAND_BYTES,
                                       sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
    sodium_bin2base64(rnd, sizeof rnd, p->rand, sizeof p->rand,
                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    int n = snprintf(buf, bufcap, "1:%u:%s:%s:%s:%s:", p->bits, date, p->resource, ext, rnd);
    if (n < 0 || (size_t)n >= bufcap)
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

    size_t vary = pre + pad;
    size_t last = vary / BLOCK * BLOCK; /* start of the final block */
    struct sha1_ctx ctx;
    sha1_init(&ctx); /* only for nettle's initial state words */
    memcpy(sh->midstate, ctx.state, sizeof sh->midstate);
    for (size_t off = 0; off < last; off += BLOCK)
        nettle_sha1_compress(sh->midstate, (const uint8_t *)buf + off);
    memset(sh->block, 0, sizeof sh->block);
    memcpy(sh->block, buf + last, total - last);
    sh->block[total - last] = 0x80;
    uint64_t bitlen = (uint64_t)total * 8u;
    for (unsigned i = 0; i < 8; i++)
        sh->block[LENGTH_OFF + i] = (uint8_t)(bitlen >> (56 - 8 * i));
    sh->vary_off = (unsigned)(vary - last);

    sh->mask0 = p->bits >= 32 ? UINT32_MAX : ~(UINT32_MAX >> p->bits);
    sh->mask1 = p->bits > 32 ? ~(UINT32_MAX >> (p->bits - 32)) : 0;
    return (int)total;
}

int pst_hashcash_mint(const pst_hashcash_mint_params *p, char *out, size_t cap) {
    if (out != NULL && cap > 0)
        memset(out, 0, cap);
    if (p == NULL || out == NULL)
        return PST_E_INVAL;
    if (p->hashes_done != NULL)
        *p->hashes_done = 0;
    const char *ext = p->ext != NULL ? p->ext : "";
    if (p->bits < 1 || p->bits > PST_HASHCASH_MINT_BITS_MAX ||
        !pst_hashcash_field_valid(p->resource, false) || !pst_hashcash_field_valid(ext, true))
        return PST_E_INVAL;

    _Static_assert(PST_HASHCASH_RESOURCE_MAX + PST_HASHCASH_EXT_MAX + 64u <
                       2u * PST_HASHCASH_STAMP_MAX,
                   "buf");
    char buf[2 * PST_HASHCASH_STAMP_MAX];
    mint_shared sh;
    memset(&sh, 0, sizeof sh);
    int total = layout(p, ext, buf, sizeof buf, &sh);
    if (total < 0)
        return total;
    if ((size_t)total >= cap)
        return PST_E_NOSPACE;
    sh.cancel = p->cancel;
    sh.progress = p->progress;
    sh.user = p->user;
    sh.expected = (double)(UINT64_C(1) << p->bits);
    atomic_init(&sh.stop, 0);
    atomic_init(&sh.found, 0);
    atomic_init(&sh.hashes, 0);

    unsigned n = thread_count(p->threads);
    mint_worker w[PST_HASHCASH_THREADS_MAX];
    for (unsigned i = 0; i < n; i++) {
        w[i].sh = &sh;
        w[i].id = i;
        w[i].started = false;
    }
    /* A thread that fails to start only leaves its range unsearched. */
    for (unsigned i = 1; i < n; i++)
        w[i].started = pthread_create(&w[i].tid, NULL, mint_work, &w[i]) == 0;
    mint_work(&w[0]);
    for (unsigned i = 1; i < n; i++) {
        if (w[i].started)
            pthread_join(w[i].tid, NULL);
    }

    if (p->hashes_done != NULL)
        *p->hashes_done = atomic_load(&sh.hashes);
    if (!atomic_load(&sh.found)) {
        if (p->cancel != NULL && atomic_load(p->cancel))
            return PST_E_CANCELLED;
        return PST_E_NOTFOUND; /* 2^54 attempts per thread without luck */
    }
    size_t vary = (size_t)total - VARY_CHARS;
    memcpy(buf + vary, sh.winner, VARY_CHARS);
    /* Cross-check with a plain SHA-1: catches a wrong midstate or padding
     * before a bad stamp leaves this function. */
    if (pst_hashcash_count_bits(buf, (size_t)total) < p->bits)
        return PST_E_CRYPTO;
    memcpy(out, buf, (size_t)total + 1);
    return PST_OK;
}
