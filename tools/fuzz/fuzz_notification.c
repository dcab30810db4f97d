/* libFuzzer target: outer Notification decoder (type 5, and type 15 for a
 * recipient's several devices), the stamp binding string over what is
 * sealed, then open with a fixed recipient key and a fixed device key
 * (fails for all but crafted inputs) and verify the inner (type 6 or 16).
 * Whatever decodes must re-encode to exactly the input (canonical_harness.h). */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canonical_harness.h"
#include "pst_notify.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_notify, PST_NOTIFY_MAX)

/* [0]: the recipient of notify_outer_v1 (seed 0x04); [1]: device 0 of the
 * type-15 seeds (seed 0x40). */
static uint8_t box_pk[2][PST_BOX_PK_BYTES], box_sk[2][PST_BOX_SK_BYTES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {
        uint8_t seed[32];
        if (sodium_init() < 0)
            abort();
        for (int k = 0; k < 2; k++) {
            memset(seed, k == 0 ? 0x04 : 0x40, sizeof seed);
            crypto_box_seed_keypair(box_pk[k], box_sk[k], seed);
        }
        ready = 1;
    }
    pst_notify o;
    pst_notify_inner in;
    char ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    if (!decode_canonical(data, size, &o))
        return 0;
    if (o.n_seals > PST_NOTIFY_DEVICES_MAX)
        abort(); /* the decoder let more seals through than the struct holds */
    pst_notify_ext(&o, ext);
    if (strlen(ext) != PST_NOTIFY_STAMP_EXT_BUFSIZE - 1)
        abort();
    for (int k = 0; k < 2; k++)
        if (pst_notify_open(&o, box_pk[k], box_sk[k], &in) == PST_OK) {
            (void)!pst_notify_inner_verify(&in, FUZZ_NOW);
            sodium_memzero(&in, sizeof in);
        }
    return 0;
}
