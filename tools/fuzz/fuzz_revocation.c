/* libFuzzer target: Revocation decoder, then verify with a fixed clock;
 * also the key file importers on clear (unencrypted) files. Whatever
 * decodes must re-encode to exactly the input and have an id
 * (canonical_harness.h). */
#include <stdint.h>

#include "canonical_harness.h"
#include "pst_records.h"

FZ_DEFINE_CANONICAL_RECORD(decode_canonical, pst_revocation)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_revocation r;
    /* key files in the clear (a sealed one would run Argon2 on every input) */
    if (pst_keyfile_is_encrypted(data, size) == 0) {
        pst_identity *ident;
        pst_revkey *rk;
        if (pst_identity_import(data, size, NULL, 0, &ident) == 0)
            pst_identity_free(ident);
        if (pst_revkey_import(data, size, NULL, 0, &rk) == 0)
            pst_revkey_free(rk);
    }
    if (decode_canonical(data, size, &r))
        (void)!pst_revocation_verify(&r, FUZZ_NOW);
    return 0;
}
