/* Hashcash minting on several cores: the threaded driver around proto/'s
 * pure counter search (pst_hashcash_search_*). It lives in node/core, the
 * lowest layer that may own threads; the node (outbox, send) and the tools
 * (postern pow mint, bench, hostile) use it. */
#ifndef PST_MINT_H
#define PST_MINT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_hashcash.h"

#define PST_HASHCASH_THREADS_MAX 256u /* mint threads (more are clamped) */

typedef struct {
    unsigned bits;                         /* 1..PST_HASHCASH_MINT_BITS_MAX */
    const char *resource;                  /* required, see pst_hashcash_field_valid */
    const char *ext;                       /* NULL means "" */
    uint64_t now;                          /* stamp date, written as YYMMDDhhmmss UTC */
    uint8_t rand[PST_HASHCASH_RAND_BYTES]; /* fresh random bytes (caller) */
    /* Worker threads, the calling thread being one of them. 0 = one per
     * online core (sysconf(_SC_NPROCESSORS_ONLN)); clamped to
     * PST_HASHCASH_THREADS_MAX. */
    unsigned threads;
    /* Optional. Called in the CALLING thread only (never concurrently),
     * every 2^22 of its own attempts (~0.1 s on a core with SHA
     * instructions, ~0.4 s without), with the attempts of all threads so
     * far and 2^bits. Never called if the mint fails on its arguments. Must
     * be quick: the calling thread is a worker. */
    void (*progress)(uint64_t hashes_done, double expected_hashes, void *user);
    void *user;
    /* Optional. Set *cancel to non-zero (from any thread or a signal
     * handler) to stop: every thread looks at it every few thousand
     * attempts (well under a millisecond). */
    const atomic_int *cancel;
    /* Optional out: attempts made by all threads, also on cancellation. */
    uint64_t *hashes_done;
} pst_hashcash_mint_params;

/* Mints a stamp (see pst_hashcash_search_init for its form) into out[cap]
 * (NUL-terminated). Thread i searches counter space i
 * (pst_hashcash_search_run), so the threads never try the same counter.
 * Errors: PST_E_INVAL (bad bits, resource, ext, NULL p/out), PST_E_RANGE
 * (now outside 2000..2099), PST_E_TOOBIG (stamp would exceed
 * PST_HASHCASH_STAMP_MAX), PST_E_NOSPACE (cap too small: the length is known
 * before any work), PST_E_CANCELLED, PST_E_CRYPTO (a found stamp failed its
 * plain SHA-1 check). A thread that cannot be started only leaves its
 * counter space unsearched (the caller's thread always works). On failure
 * out[0..cap) is zeroed. */
int pst_hashcash_mint(const pst_hashcash_mint_params *p, char *out, size_t cap);

#endif
