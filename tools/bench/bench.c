/* bench: the proto benchmarks, printed as tables. A benchmark run by hand,
 * never a timed test. The network benchmark (real posternd processes) is
 * tools/bench/bench_network.py. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_records.h"
#include "bench_sizes.h"

int main(int argc, char **argv) {
    int want_pow = 1, want_records = 1, want_notify = 1, want_sizes = 0;
    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            printf("usage: bench [pow|records|notify|sizes]\n\n"
                   "Prints the proto benchmark tables: hashcash mint rate per core and\n"
                   "for all cores next to nettle's raw SHA-1 compression and `hashcash -s`,\n"
                   "stamp verify time; KeyRecord decode+verify next to raw Ed25519 verify;\n"
                   "notification sizes and open cost for 1..8 devices of a recipient.\n"
                   "sizes (only when asked): the encoded size of every DHT value we put.\n"
                   "Network figures: python3 tools/bench/bench_network.py.\n");
            return 0;
        }
        want_pow = strcmp(argv[1], "pow") == 0;
        want_records = strcmp(argv[1], "records") == 0;
        want_notify = strcmp(argv[1], "notify") == 0;
        want_sizes = strcmp(argv[1], "sizes") == 0;
        if (!want_pow && !want_records && !want_notify && !want_sizes) {
            fprintf(stderr, "bench: unknown benchmark '%s' (pow, records, notify or sizes)\n",
                    argv[1]);
            return 64;
        }
    }
    if (sodium_init() < 0)
        return 1;
    int rc = 0;
    if (want_pow && pst_bench_pow() != 0)
        rc = 1;
    if (want_records) {
        printf("\n");
        if (pst_bench_records() != 0)
            rc = 1;
    }
    if (want_notify) {
        printf("\n");
        if (pst_bench_notify() != 0)
            rc = 1;
    }
    if (want_sizes && pst_bench_sizes() != 0)
        rc = 1;
    return rc;
}
