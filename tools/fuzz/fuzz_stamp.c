/* libFuzzer target: hashcash stamp parsing and verification on arbitrary
 * bytes, plus a tiny mint for every stamp that parses (so resource and ext
 * lengths the fuzzer invents drive the mint's block layout) whose result
 * must verify. Invariant breaks trap. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pst_mint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1795901696u /* 2026-11-28T21:34:56Z */

static void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    pst_hashcash_fields f;
    int prc = pst_hashcash_parse(s, size, &f);
    check(prc == PST_OK || prc == PST_E_STAMP_FORMAT);

    pst_hashcash_policy pol;
    pst_hashcash_policy_init(&pol, 0, "foo");
    pst_hashcash_result r;
    int rc = pst_hashcash_verify(s, size, &pol, FUZZ_NOW, &r);
    check(prc == PST_OK || rc == PST_E_STAMP_FORMAT);
    (void)pst_hashcash_count_bits(s, size);
    if (prc != PST_OK)
        return 0;

    /* The stamp's own fields at its own date: only the hash can fail now. */
    pol.resource = f.resource;
    pol.ext = f.ext;
    pol.min_bits = f.bits;
    rc = pst_hashcash_verify(s, size, &pol, f.date, &r);
    check(rc == PST_OK || rc == PST_E_STAMP_BITS);
    check(rc != PST_OK || (r.date == f.date && r.bits == f.bits &&
                           r.remember_until == f.date + PST_HASHCASH_MAX_AGE_DEFAULT));
    check((rc == PST_OK) == (pst_hashcash_count_bits(s, size) >= f.bits));

    pst_hashcash_mint_params p;
    memset(&p, 0, sizeof p);
    p.bits = 1u + (f.bits & 3u);
    p.resource = f.resource;
    p.ext = f.ext;
    p.now = f.date;
    p.threads = 1;
    memcpy(p.rand, f.counter, sizeof p.rand < sizeof f.counter ? sizeof p.rand : sizeof f.counter);
    char out[PST_HASHCASH_STAMP_MAX + 1];
    rc = pst_hashcash_mint(&p, out, sizeof out);
    check(rc == PST_OK || rc == PST_E_TOOBIG);
    if (rc == PST_OK) {
        pol.min_bits = p.bits;
        check(pst_hashcash_verify(out, strlen(out), &pol, f.date, &r) == PST_OK);
    }
    return 0;
}
