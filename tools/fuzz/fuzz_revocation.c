/* libFuzzer target: Revocation decoder, then verify with a fixed clock;
 * also the key file importers on clear (unencrypted) files.
 * Whatever decodes must re-encode to exactly the input (canonical form). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_records.h"

#define FUZZ_NOW 1700000060u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_revocation r;
    uint8_t re[PST_DHT_VALUE_MAX], id[PST_HASH_BYTES];
    size_t len;
    /* key files in the clear (a sealed one would run Argon2 on every input) */
    if (pst_keyfile_is_encrypted(data, size) == 0) {
        pst_identity *ident;
        pst_revkey *rk;
        if (pst_identity_import(data, size, NULL, 0, &ident) == 0)
            pst_identity_free(ident);
        if (pst_revkey_import(data, size, NULL, 0, &rk) == 0)
            pst_revkey_free(rk);
    }
    if (pst_revocation_decode(data, size, &r) != 0)
        return 0;
    if (pst_revocation_encode(&r, re, sizeof re, &len) != 0 || len != size ||
        memcmp(re, data, size) != 0)
        abort(); /* decode accepted something that is not canonical */
    if (pst_revocation_id(&r, id) != 0)
        abort();
    (void)!pst_revocation_verify(&r, FUZZ_NOW);
    return 0;
}
