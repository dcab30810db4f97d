/* Value sizes for the `bench` tool. */
#ifndef PST_BENCH_SIZES_H
#define PST_BENCH_SIZES_H

/* Prints, as a table on stdout, the encoded size of every value Postern
 * puts in the DHT (KeyRecord, AddressClaim, Revocation, Endorsement,
 * Notification with and without a stamp; typical and largest), OpenDHT's
 * serialized Value around it and whether it fits OpenDHT's single-packet
 * limit. Mints two 20-bit stamps on one core (about a second each).
 * Returns 0, or the PST_E_* code of a record that could not be built (a
 * bug). */
int pst_bench_sizes(void);

#endif
