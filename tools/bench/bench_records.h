/* Record benchmarks for the `bench` tool. */
#ifndef PST_BENCH_RECORDS_H
#define PST_BENCH_RECORDS_H

/* Measures, for a typical KeyRecord, raw Ed25519 verification
 * (crypto_sign_verify_detached over a message of the same size as the
 * record's signed body) against pst_keyrec_decode + pst_keyrec_verify, and the
 * pst_keyrec_sign + pst_keyrec_encode rate. About 1.5 s per measurement.
 * Prints a table to stdout; the decode+verify/raw ratio should be >= 0.9.
 * Returns 0, or a negative PST_E_* code if a record could not be built or
 * was rejected (a bug, not a slow machine). */
int pst_bench_records(void);

#endif
