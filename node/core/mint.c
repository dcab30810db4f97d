/* Threaded hashcash minting (see pst_mint.h): every worker runs proto/'s
 * search one sweep at a time over its own counter space and looks, between
 * sweeps (~0.2-0.5 ms of work), at cancel and at "someone found it". */
#include "pst_mint.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_SWEEPS 1024u /* 2^22 attempts: ~0.1 s on a core with SHA-NI */

_Static_assert(PST_HASHCASH_THREADS_MAX <= PST_HASHCASH_SEARCH_IDS, "one counter space a thread");

typedef struct {
    /* Read-only once the workers start. */
    pst_hashcash_search search;
    const atomic_int *cancel;
    void (*progress)(uint64_t, double, void *);
    void *user;
    double expected;
    /* Written by the workers; on their own cache line so the hot loops,
     * which only read the fields above, do not share it. */
    alignas(64) atomic_int stop;
    atomic_int found; /* 0, or the PST_OK/PST_E_CRYPTO of the first finder + 1 */
    atomic_uint_fast64_t hashes;
    char winner[PST_HASHCASH_STAMP_MAX + 1]; /* written once by the CAS winner, read after join */
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
    char stamp[PST_HASHCASH_STAMP_MAX + 1];
    unsigned sweeps = 0;
    /* Running out of all PST_HASHCASH_SEARCH_SWEEPS ends this worker
     * without a stamp. */
    for (uint64_t k = 0; k < PST_HASHCASH_SEARCH_SWEEPS; k++) {
        uint64_t n = 0;
        int rc = pst_hashcash_search_run(&sh->search, w->id, k, 1, stamp, &n);
        atomic_fetch_add_explicit(&sh->hashes, n, memory_order_relaxed);
        if (rc != PST_E_NOTFOUND) {
            int expect = 0;
            if (atomic_compare_exchange_strong(&sh->found, &expect, rc == PST_OK ? 1 : 2) &&
                rc == PST_OK)
                memcpy(sh->winner, stamp, sizeof stamp);
            atomic_store_explicit(&sh->stop, 1, memory_order_relaxed);
            return NULL;
        }
        if (should_stop(sh))
            return NULL;
        if (w->id == 0 && sh->progress != NULL && ++sweeps == PROGRESS_SWEEPS) {
            sweeps = 0;
            sh->progress(atomic_load_explicit(&sh->hashes, memory_order_relaxed), sh->expected,
                         sh->user);
        }
    }
    return NULL;
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

int pst_hashcash_mint(const pst_hashcash_mint_params *p, char *out, size_t cap) {
    if (out != NULL && cap > 0)
        memset(out, 0, cap);
    if (p == NULL || out == NULL)
        return PST_E_INVAL;
    if (p->hashes_done != NULL)
        *p->hashes_done = 0;
    mint_shared sh;
    memset(&sh, 0, sizeof sh);
    int rc = pst_hashcash_search_init(&sh.search, p->bits, p->resource, p->ext, p->now, p->rand);
    if (rc != PST_OK)
        return rc;
    if (sh.search.len >= cap)
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
    switch (atomic_load(&sh.found)) {
    case 1:
        memcpy(out, sh.winner, sh.search.len + 1);
        return PST_OK;
    case 2:
        return PST_E_CRYPTO;
    default:
        if (p->cancel != NULL && atomic_load(p->cancel))
            return PST_E_CANCELLED;
        return PST_E_NOTFOUND; /* 2^54 attempts per thread without luck */
    }
}
