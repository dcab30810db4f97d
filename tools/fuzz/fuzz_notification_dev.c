/* libFuzzer target: notification outers of both types, with the
 * multi-device outer (type 15) in mind: decode, the stamp binding over box
 * and every seal, then open as device 0 of the seed corpus (its X25519 seed
 * is 0x40 repeated) and verify whatever inner (type 6 or 16) comes out.
 * Whatever decodes must re-encode to exactly the input
 * (canonical_harness.h). */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canonical_harness.h"
#include "pst_notify.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_notify, PST_NOTIFY_MAX)

static uint8_t box_pk[PST_BOX_PK_BYTES], box_sk[PST_BOX_SK_BYTES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {
        uint8_t seed[32];
        if (sodium_init() < 0)
            abort();
        memset(seed, 0x40, sizeof seed);
        crypto_box_seed_keypair(box_pk, box_sk, seed);
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
    if (pst_notify_open(&o, box_pk, box_sk, &in) == PST_OK) {
        (void)!pst_notify_inner_verify(&in, FUZZ_NOW);
        sodium_memzero(&in, sizeof in);
    }
    return 0;
}
