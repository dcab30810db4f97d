/* libFuzzer target: outer Notification decoder, then open with a fixed
 * recipient key (fails for all but crafted inputs) and verify the inner.
 * Whatever decodes must re-encode to exactly the input. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_notify.h"

#define FUZZ_NOW 1700000060u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t box_pk[PST_BOX_PK_BYTES], box_sk[PST_BOX_SK_BYTES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {
        uint8_t seed[32];
        if (sodium_init() < 0)
            abort();
        memset(seed, 0x04, sizeof seed); /* the recipient of notify_outer_v1 */
        crypto_box_seed_keypair(box_pk, box_sk, seed);
        ready = 1;
    }
    pst_notify o;
    pst_notify_inner in;
    uint8_t re[PST_NOTIFY_MAX];
    char ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    size_t len;
    if (pst_notify_decode(data, size, &o) != PST_OK)
        return 0;
    if (pst_notify_encode(&o, re, sizeof re, &len) != PST_OK || len != size ||
        memcmp(re, data, size) != 0)
        abort();
    pst_notify_stamp_ext(o.sealed, o.sealed_len, ext);
    if (strlen(ext) != PST_NOTIFY_STAMP_EXT_BUFSIZE - 1)
        abort();
    if (pst_notify_open(&o, box_pk, box_sk, &in) == PST_OK)
        (void)!pst_notify_inner_verify(&in, FUZZ_NOW);
    return 0;
}
