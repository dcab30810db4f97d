/* Revocation (type 3): self-signed and by the offline revocation key. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pst_records.h"
#include "recutil.h"
#include "testutil.h"

#define CREATED 1700000000u

#define NOW (CREATED + 60)

/* The offline key of ru_kat_identity(base), loaded the way the CLI will. */
static pst_revkey *kat_revkey(uint8_t base) {
    pst_identity *id = ru_kat_identity(base);
    uint8_t file[PST_KEYFILE_MAX];
    size_t len;
    pst_revkey *rk;
    cr_assert_eq(pst_revkey_export(id, NULL, 0, NULL, NULL, NULL, file, sizeof file, &len), PST_OK);
    cr_assert_eq(pst_revkey_import(file, len, NULL, 0, &rk), PST_OK);
    pst_identity_free(id);
    return rk;
}

static void kat_self(pst_revocation *r) {
    pst_identity *id = ru_kat_identity(0), *next = ru_kat_identity(0x80);
    cr_assert_eq(pst_revocation_build_self(r, id->sign_sk, CREATED, PST_REVOKE_SUPERSEDED,
                                           "moved to a new key", next->sign_pk),
                 PST_OK);
    pst_identity_free(id);
    pst_identity_free(next);
}

static void kat_by_revkey(pst_revocation *r) {
    pst_revkey *rk = kat_revkey(0);
    cr_assert_eq(
        pst_revocation_build_by_revkey(r, rk, CREATED, PST_REVOKE_KEY_COMPROMISED, NULL, NULL),
        PST_OK);
    pst_revkey_free(rk);
}

TU_DEFINE_SIGNED(rev, pst_revocation, NOW)

Test(revocation, self_round_trip_and_vector) {
    pst_identity *id = ru_kat_identity(0), *next = ru_kat_identity(0x80);
    pst_revocation r, back;
    uint8_t enc[PST_DHT_VALUE_MAX], h1[32], repl[32];
    kat_self(&r);
    cr_assert_arr_eq(r.signer, id->sign_pk, 32);
    cr_assert_arr_eq(r.revoked_key, id->sign_pk, 32);
    cr_assert_eq(r.expires, 0);
    cr_assert(!r.has_auth);
    size_t len = rev_round_trip(&r, &back, enc, sizeof enc);
    cr_assert_eq(pst_revocation_verify(&back, UINT64_MAX), PST_OK, "permanent");
    cr_assert(pst_revocation_replacement(&back, repl));
    cr_assert_arr_eq(repl, next->sign_pk, 32);
    cr_assert(pst_revocation_replacement(&back, NULL));
    cr_assert_eq(pst_revocation_id(&r, h1), PST_OK);
    ru_expect_hash_id(h1, enc, len);
    ru_check_vector_accepted("revocation_v1.hex",
                             "Revocation v1, self-signed: sign_seed=00..1f (bytes i, i+1, ...); "
                             "created=1700000000 expires=0 reason=2 (superseded) "
                             "reason_text=\"moved to a new key\" replacement=pk of sign_seed "
                             "80..9f auth=empty",
                             enc, len, rev_accept);
    pst_identity_free(id);
    pst_identity_free(next);
}

Test(revocation, by_revkey_round_trip_and_vector) {
    pst_identity *id = ru_kat_identity(0);
    pst_revocation r, back;
    uint8_t enc[PST_DHT_VALUE_MAX];
    kat_by_revkey(&r);
    cr_assert_arr_eq(r.signer, id->rev_pk, 32, "signed by the offline key");
    cr_assert_arr_eq(r.revoked_key, id->sign_pk, 32);
    cr_assert(r.has_auth);
    cr_assert(!pst_revocation_replacement(&r, NULL));
    size_t len = rev_round_trip(&r, &back, enc, sizeof enc);
    ru_check_vector_accepted(
        "revocation_revkey_v1.hex",
        "Revocation v1, by the revocation key: sign_seed=00..1f rev_seed=40..5f (bytes "
        "i, i+1, ...); created=1700000000 expires=0 reason=1 (key_compromised) "
        "reason_text=\"\" replacement=empty auth=Ed25519(identity, "
        "\"postern/v1/revkey\\0\" || rev_pk)",
        enc, len, rev_accept);
    /* the auth is exactly the documented signature */
    uint8_t msg[PST_REVKEY_AUTH_CONTEXT_LEN + 32];
    memcpy(msg, "postern/v1/revkey", 17);
    msg[17] = 0;
    memcpy(msg + 18, id->rev_pk, 32);
    cr_assert_eq(crypto_sign_verify_detached(r.auth, msg, sizeof msg, id->sign_pk), 0);
    pst_identity_free(id);
}

Test(revocation, every_mutation_rejected) {
    pst_revocation r;
    uint8_t enc[PST_DHT_VALUE_MAX];
    kat_self(&r);
    tu_check_mutations(enc, rev_enc(&r, enc, sizeof enc), rev_accept, NULL);
    kat_by_revkey(&r);
    tu_check_mutations(enc, rev_enc(&r, enc, sizeof enc), rev_accept, NULL);
}

Test(revocation, verify_signer_rules) {
    pst_identity *id = ru_kat_identity(0), *other = ru_kat_identity(0x80);
    pst_revocation base, r;
    uint8_t auth[64];
    kat_by_revkey(&base);

    cr_assert_eq(pst_revocation_verify(&base, CREATED - PST_CLOCK_SKEW_MAX), PST_OK);
    cr_assert_eq(pst_revocation_verify(&base, CREATED - PST_CLOCK_SKEW_MAX - 1), PST_E_NOTYET);

    /* auth made by another identity key over the same revocation key */
    r = base;
    cr_assert_eq(pst_revocation_auth_make(other->sign_sk, id->rev_pk, auth), PST_OK);
    memcpy(r.auth, auth, 64);
    cr_assert_eq(pst_revocation_sign(&r, id->rev_sk), PST_OK);
    cr_assert_eq(pst_revocation_verify(&r, NOW), PST_E_SIGNER);
    /* a genuine auth, but for another revocation key than the signer */
    r = base;
    cr_assert_eq(pst_revocation_auth_make(id->sign_sk, other->rev_pk, auth), PST_OK);
    memcpy(r.auth, auth, 64);
    cr_assert_eq(pst_revocation_sign(&r, id->rev_sk), PST_OK);
    cr_assert_eq(pst_revocation_verify(&r, NOW), PST_E_SIGNER);
    /* ... and signed by that other revocation key: auth names other->rev_pk
     * but was made by id, so it still cannot revoke id unless id made it */
    r = base;
    memcpy(r.auth, auth, 64);
    cr_assert_eq(pst_revocation_sign(&r, other->rev_sk), PST_OK);
    cr_assert_eq(pst_revocation_verify(&r, NOW), PST_OK, "id authorised that key itself");
    /* no auth and a signer that is not the revoked key */
    r = base;
    r.has_auth = false;
    memset(r.auth, 0, 64);
    cr_assert_eq(pst_revocation_sign(&r, id->rev_sk), PST_OK);
    cr_assert_eq(pst_revocation_verify(&r, NOW), PST_E_SIGNER);
    cr_assert_eq(pst_revocation_sign(&r, other->sign_sk), PST_OK);
    cr_assert_eq(pst_revocation_verify(&r, NOW), PST_E_SIGNER, "another identity");
    /* auth with a self-signed revocation */
    kat_self(&r);
    r.has_auth = true;
    cr_assert_eq(pst_revocation_auth_make(id->sign_sk, id->sign_pk, r.auth), PST_OK);
    cr_assert_eq(pst_revocation_sign(&r, id->sign_sk), PST_OK);
    cr_assert_eq(pst_revocation_verify(&r, NOW), PST_E_SIGNER);
    /* right signer, broken signature */
    r = base;
    r.sig[3] ^= 1;
    cr_assert_eq(pst_revocation_verify(&r, NOW), PST_E_SIGNATURE);
    r = base;
    r.reason = PST_REVOKE_RETIRED;
    cr_assert_eq(pst_revocation_verify(&r, NOW), PST_E_SIGNATURE, "reason is signed");
    r.reason = 9;
    cr_assert_eq(pst_revocation_verify(&r, NOW), PST_E_INVAL);
    /* the auth helpers */
    cr_assert_eq(pst_revocation_auth_verify(id->sign_pk, id->rev_pk, base.auth), PST_OK);
    cr_assert_eq(pst_revocation_auth_verify(other->sign_pk, id->rev_pk, base.auth), PST_E_SIGNER);
    pst_identity_free(id);
    pst_identity_free(other);
}

Test(revocation, limits) {
    pst_identity *id = ru_kat_identity(0);
    pst_revocation base, r;
    uint8_t enc[PST_DHT_VALUE_MAX], out[4096];
    size_t len, n;
    char text[PST_REVOCATION_REASON_TEXT_MAX + 2];
    kat_self(&base);

    /* reason: 3 is the last known one */
    r = base;
    r.reason = PST_REVOKE_REASON_MAX;
    len = rev_enc(&r, enc, sizeof enc);
    r.reason = PST_REVOKE_REASON_MAX + 1;
    cr_assert_eq(pst_revocation_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);
    /* reason text: 200 bytes fine, 201 not (also through the builder) */
    memset(text, 'x', PST_REVOCATION_REASON_TEXT_MAX);
    text[PST_REVOCATION_REASON_TEXT_MAX] = '\0';
    cr_assert_eq(pst_revocation_build_self(&r, id->sign_sk, CREATED, 0, text, NULL), PST_OK);
    len = rev_enc(&r, enc, sizeof enc);
    cr_assert_eq(rev_accept(enc, len, NULL), PST_OK);
    text[PST_REVOCATION_REASON_TEXT_MAX] = 'x';
    text[PST_REVOCATION_REASON_TEXT_MAX + 1] = '\0';
    cr_assert_eq(pst_revocation_build_self(&r, id->sign_sk, CREATED, 0, text, NULL), PST_E_INVAL);
    cr_assert_eq(r.created, 0, "zeroed on error");
    r = base;
    memset(r.reason_text, 'x', sizeof r.reason_text); /* no NUL inside the array */
    cr_assert_eq(pst_revocation_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);
    r = base;
    strcpy(r.reason_text, "caf\xc3");
    cr_assert_eq(pst_revocation_encode(&r, enc, sizeof enc, &len), PST_E_INVAL, "bad UTF-8");
    strcpy(r.reason_text, "caf\xc3\xa9");
    cr_assert_eq(pst_revocation_encode(&r, enc, sizeof enc, &len), PST_OK, "UTF-8");
    /* permanent only */
    r = base;
    r.expires = CREATED + 1;
    cr_assert_eq(pst_revocation_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);
    /* a key is not its own replacement */
    r = base;
    memcpy(r.replacement, r.revoked_key, 32);
    cr_assert_eq(pst_revocation_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);

    /* hand-built encodings */
    len = rev_enc(&base, enc, sizeof enc);
    ru_raw a = ru_raw_uint(PST_REVOKE_REASON_MAX + 1);
    n = ru_with_field(enc, len, 6, a.b, a.n, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_RANGE, "reason 4");
    text[PST_REVOCATION_REASON_TEXT_MAX + 1] = '\0';
    a = ru_raw_str(text);
    n = ru_with_field(enc, len, 7, a.b, a.n, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_TOOBIG, "201-byte reason text");
    const uint8_t bad_utf8[] = {0xa2, 0xc3, 0x28};
    n = ru_with_field(enc, len, 7, bad_utf8, sizeof bad_utf8, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_RANGE, "invalid UTF-8");
    a = ru_raw_uint(CREATED + 1);
    n = ru_with_field(enc, len, 3, a.b, a.n, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_RANGE, "expires != 0");
    /* replacement (field 8) and auth (field 9): zeros of the wrong size, or
     * the revoked key itself */
    uint8_t k[65] = {0};
    static const struct {
        uint32_t field;
        size_t len;
        bool revoked_key;
        int rc;
        const char *what;
    } bins[] = {
        {8, 31, false, PST_E_RANGE, "31-byte replacement"},
        {8, 33, false, PST_E_TOOBIG, "33-byte replacement"},
        {8, 32, true, PST_E_RANGE, "replacement == revoked"},
        {9, 63, false, PST_E_RANGE, "63-byte auth"},
        {9, 65, false, PST_E_TOOBIG, "65-byte auth"},
    };
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++) {
        a = ru_raw_bin(bins[i].revoked_key ? base.revoked_key : k, bins[i].len);
        n = ru_with_field(enc, len, bins[i].field, a.b, a.n, out, sizeof out);
        cr_assert_eq(rev_decode_rc(out, n), bins[i].rc, "%s", bins[i].what);
    }
    a = ru_raw_bin(k, 64);
    n = ru_with_field(enc, len, 9, a.b, a.n, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_OK, "64-byte auth decodes");
    cr_assert_eq(rev_accept(out, n, NULL), PST_E_SIGNER, "... but a self-revocation has none");
    pst_identity_free(id);
}

Test(revocation, decode_strictness) {
    pst_revocation r;
    uint8_t enc[PST_DHT_VALUE_MAX], out[4096];
    kat_self(&r);
    size_t len = rev_enc(&r, enc, sizeof enc), n;
    const uint8_t reason16[] = {0xcd, 0x00, 0x02};
    n = ru_with_field(enc, len, 6, reason16, sizeof reason16, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_NONCANONICAL, "uint16 for 2");
    const uint8_t zero64[] = {0xcf, 0, 0, 0, 0, 0, 0, 0, 0};
    n = ru_with_field(enc, len, 3, zero64, sizeof zero64, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_NONCANONICAL, "uint64 for 0");
    uint8_t s8[64] = {0xd9, 18};
    memcpy(s8 + 2, "moved to a new key", 18);
    n = ru_with_field(enc, len, 7, s8, 20, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_NONCANONICAL, "str8 for 18 bytes");
    const uint8_t empty16[] = {0xc5, 0x00, 0x00};
    n = ru_with_field(enc, len, 9, empty16, sizeof empty16, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_NONCANONICAL, "bin16 for empty");
    ru_raw a = ru_raw_uint(3);
    n = ru_with_field(enc, len, 0, a.b, a.n, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_VERSION);
    a = ru_raw_uint(PST_REC_ENDORSEMENT);
    n = ru_with_field(enc, len, 1, a.b, a.n, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_RECTYPE);
    a = ru_raw_bin("", 0);
    n = ru_with_field(enc, len, PST_REVOCATION_FIELDS, a.b, a.n, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_FIELDS);
    n = ru_with_field(enc, len, 9, NULL, 0, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_FIELDS);
    memcpy(out, enc, len);
    out[len] = 0x90;
    cr_assert_eq(rev_decode_rc(out, len + 1), PST_E_TRAILING);
    a = ru_raw_str("x");
    n = ru_with_field(enc, len, 5, a.b, a.n, out, sizeof out);
    cr_assert_eq(rev_decode_rc(out, n), PST_E_TYPE, "a str for revoked_key");
    pst_revocation z;
    memset(&z, 0x77, sizeof z);
    cr_assert_eq(pst_revocation_decode(out, n, &z), PST_E_TYPE);
    const uint8_t *p = (const uint8_t *)&z;
    for (size_t i = 0; i < sizeof z; i++)
        cr_assert_eq(p[i], 0);
}
