/* Hashcash benchmark: how close minting gets to the bare SHA-1 compression
 * rate (the midstate trick should leave only a few percent of overhead), how
 * it scales over cores, how it compares with the classic tool, and what one
 * verification costs. */
#include "bench.h"

#include <nettle/sha1.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pst_mint.h"

#define BENCH_SECONDS 1.5
#define BENCH_NOW 1795901696u /* 2026-11-28T21:34:56Z */
#define HASHCASH_BIN "/usr/bin/hashcash"
#define RESOURCE "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define EXT "pn1=00112233445566778899aabbccddeeff"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

/* Rates are given per second of CPU time actually received (as `hashcash
 * -s` does with clock()), so a busy machine lowers throughput but not the
 * comparison; the wall-clock throughput of the all-core mint is shown too. */
typedef struct {
    double wall, cpu;
} rate_pair;

static const uint32_t sha1_iv[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u,
                                    0xc3d2e1f0u};

/* Raw compression rate on one core, two ways. chained: each call works on
 * the previous call's output (a latency chain). independent: a fresh copy of
 * one state each call, the block's 16-byte chunk rewritten with one store
 * from a small table first: the least any minting loop must do, and what
 * lets the CPU overlap consecutive calls. */
static rate_pair raw_compress_rate(bool chained) {
    uint32_t state[5];
    memcpy(state, sha1_iv, sizeof state);
    alignas(64) uint8_t block[64];
    alignas(16) uint8_t tbl[64][16];
    memset(block, 'A', sizeof block);
    for (unsigned i = 0; i < 64; i++) {
        memset(tbl[i], 'A', 16);
        tbl[i][15] = (uint8_t)i;
    }
    uint32_t sink = 0;
    uint64_t n = 0;
    double t0 = now_s(), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), t;
    do {
        for (unsigned i = 0; i < 4096; i++) {
            if (chained) {
                nettle_sha1_compress(state, block);
                continue;
            }
            memcpy(block + 32, tbl[i % 64], 16);
            uint32_t s[5];
            memcpy(s, state, sizeof s);
            nettle_sha1_compress(s, block);
            sink |= s[0] & 0x80000000u;
        }
        n += 4096;
        t = now_s() - t0;
    } while (t < BENCH_SECONDS);
    /* Keep the results alive so nothing is optimised away. */
    if ((state[0] | sink) == 1)
        fputc(' ', stderr);
    rate_pair r = {(double)n / t, (double)n / (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0)};
    return r;
}

typedef struct {
    double start;
    atomic_int cancel;
} mint_clock;

/* The mint calls this every ~2^20 attempts of the calling thread: the
 * cheapest place to stop it after BENCH_SECONDS. */
static void stop_when_done(uint64_t done, double expected, void *user) {
    (void)done;
    (void)expected;
    mint_clock *mc = user;
    if (now_s() - mc->start >= BENCH_SECONDS)
        atomic_store(&mc->cancel, 1);
}

/* Attempts per second of a 40-bit mint cut off after BENCH_SECONDS. */
static int mint_rate(unsigned threads, rate_pair *rate) {
    mint_clock mc;
    atomic_init(&mc.cancel, 0);
    pst_hashcash_mint_params p;
    memset(&p, 0, sizeof p);
    p.bits = PST_HASHCASH_MINT_BITS_MAX;
    p.resource = RESOURCE;
    p.ext = EXT;
    p.now = BENCH_NOW;
    memset(p.rand, 0x5a, sizeof p.rand);
    p.threads = threads;
    p.progress = stop_when_done;
    p.user = &mc;
    p.cancel = &mc.cancel;
    uint64_t hashes = 0;
    p.hashes_done = &hashes;
    char out[PST_HASHCASH_STAMP_MAX + 1];
    /* The calling thread is a worker: with 1 thread its CPU clock is the
     * mint's, with more the process clock is (nothing else runs here). */
    clockid_t cpu_clock = threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID;
    double c0 = clock_s(cpu_clock);
    mc.start = now_s();
    int rc = pst_hashcash_mint(&p, out, sizeof out);
    double t = now_s() - mc.start;
    double c = clock_s(cpu_clock) - c0;
    if (rc != PST_E_CANCELLED && rc != PST_OK)
        return rc;
    rate->wall = (double)hashes / t;
    rate->cpu = (double)hashes / c;
    return PST_OK;
}

/* `hashcash -s` prints its preimage tests per second on stdout (~0.1 s of
 * measuring); the best of three runs. 0 when the tool is missing. */
static double classic_rate(void) {
    if (access(HASHCASH_BIN, X_OK) != 0)
        return 0;
    double best = 0;
    for (int i = 0; i < 3; i++) {
        FILE *p = popen(HASHCASH_BIN " -s 2>/dev/null", "r");
        if (p == NULL)
            return 0;
        char line[64] = "";
        if (fgets(line, sizeof line, p) == NULL)
            line[0] = '\0';
        if (pclose(p) != 0)
            continue;
        double v = strtod(line, NULL);
        if (v > best)
            best = v;
    }
    return best;
}

static int verify_cost(double *us) {
    pst_hashcash_mint_params p;
    memset(&p, 0, sizeof p);
    p.bits = 16;
    p.resource = RESOURCE;
    p.ext = EXT;
    p.now = BENCH_NOW;
    p.threads = 1;
    char stamp[PST_HASHCASH_STAMP_MAX + 1];
    int rc = pst_hashcash_mint(&p, stamp, sizeof stamp);
    if (rc != PST_OK)
        return rc;
    size_t len = strlen(stamp);
    pst_hashcash_policy pol;
    pst_hashcash_policy_init(&pol, 16, RESOURCE);
    pol.ext = EXT;
    pst_hashcash_result r;
    uint64_t n = 0;
    double t0 = now_s(), t;
    do {
        for (unsigned i = 0; i < 1024; i++) {
            rc = pst_hashcash_verify(stamp, len, &pol, BENCH_NOW, &r);
            if (rc != PST_OK)
                return rc;
        }
        n += 1024;
        t = now_s() - t0;
    } while (t < BENCH_SECONDS);
    *us = t / (double)n * 1e6;
    return PST_OK;
}

int pst_bench_pow(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    double load[1] = {0};
    if (getloadavg(load, 1) != 1)
        load[0] = -1;
    rate_pair chained = raw_compress_rate(true), indep = raw_compress_rate(false);
    rate_pair raw = indep.cpu > chained.cpu ? indep : chained;
    rate_pair one = {0, 0}, all = {0, 0};
    double us = 0;
    int rc = mint_rate(1, &one);
    if (rc == PST_OK)
        rc = mint_rate(0, &all);
    if (rc == PST_OK)
        rc = verify_cost(&us);
    if (rc != PST_OK) {
        fprintf(stderr, "bench pow: %s\n", pst_strerror(rc));
        return rc;
    }
    double classic = classic_rate();

    printf("hashcash v1 (SHA-1): %ld online cores, load average %.2f before, %.1f s each\n", cores,
           load[0], BENCH_SECONDS);
    printf("  %-36s %12s %12s %10s\n", "", "Mhash/cpu-s", "Mhash/s wall", "vs raw");
    /* "raw" is the faster of the two raw loops, per core */
    printf("  %-36s %12.2f %12.2f %10.2f\n", "raw nettle_sha1_compress, chained", chained.cpu / 1e6,
           chained.wall / 1e6, chained.cpu / raw.cpu);
    printf("  %-36s %12.2f %12.2f %10.2f\n", "raw nettle_sha1_compress, independent",
           indep.cpu / 1e6, indep.wall / 1e6, indep.cpu / raw.cpu);
    printf("  %-36s %12.2f %12.2f %10.2f\n", "pst_hashcash_mint, 1 thread", one.cpu / 1e6,
           one.wall / 1e6, one.cpu / raw.cpu);
    char label[64];
    snprintf(label, sizeof label, "pst_hashcash_mint, %ld threads", cores);
    printf("  %-36s %12.2f %12.2f %10.2f\n", label, all.cpu / 1e6, all.wall / 1e6,
           all.cpu / raw.cpu);
    if (classic > 0)
        printf("  %-36s %12.2f %12s %10.2f\n", "hashcash -s (classic tool, 1 core)", classic / 1e6,
               "", classic / raw.cpu);
    else
        printf("  %-36s %12s %12s %10s\n", "hashcash -s (classic tool, 1 core)", "n/a", "", "n/a");
    printf("  %-36s %9.2f us\n", "pst_hashcash_verify (one stamp)", us);
    char vs[32] = "n/a";
    if (classic > 0)
        snprintf(vs, sizeof vs, "%.2fx", one.cpu / classic);
    printf("  all-core wall throughput %.2fx one thread (ideal %ldx); mint vs classic %s\n",
           one.wall > 0 ? all.wall / one.wall : 0.0, cores, vs);
    return 0;
}
