/* Benchmarks the `bench` tool's main (bench.c) runs. Each prints a table to
 * stdout and returns 0, or non-zero when something that should work did not
 * (a bug, not a slow machine). */
#ifndef PST_BENCH_H
#define PST_BENCH_H

/* Hashcash proof of work: raw nettle_sha1_compress rate on one core,
 * pst_hashcash_mint on 1 thread and on every online core (and their ratio
 * to the raw rate: targets >= 0.9 per core), the classic `hashcash -s`
 * speed (n/a when /usr/bin/hashcash is missing) and the cost of one
 * pst_hashcash_verify. About 1.5 s per measurement, ~8 s in all. */
int pst_bench_pow(void);

/* Notifications for identities with several devices (issue 13): sizes for
 * 1, 2, 3, 4 and 8 devices next to the single seal, with and without a
 * typical stamp, identity- or device-signed; opens per second for the
 * first and the last device. About 12 s. */
int pst_bench_notify(void);

/* CLOCK_MONOTONIC in seconds: the one clock the in-process benchmarks
 * time with (bench_records.c). */
double pst_bench_now_s(void);

#endif
