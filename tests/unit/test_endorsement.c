/* Endorsement / vouch (type 4). */
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
#define EXPIRES (CREATED + 365u * 86400u)

#define NOW (CREATED + 60)

/* voucher: sign seed 80..9f; subject: the identity of sign seed 00..1f */
static void kat_endorsement(pst_endorsement *e) {
    pst_identity *voucher = ru_kat_identity(0x80), *subject = ru_kat_identity(0);
    memset(e, 0, sizeof *e);
    e->created = CREATED;
    e->expires = EXPIRES;
    memcpy(e->subject, subject->sign_pk, 32);
    e->tier = PST_TIER_TRUSTED;
    cr_assert_eq(pst_endorsement_sign(e, voucher->sign_sk), PST_OK);
    pst_identity_free(voucher);
    pst_identity_free(subject);
}

TU_DEFINE_SIGNED(end, pst_endorsement, NOW)

Test(endorsement, round_trip_and_vector) {
    pst_identity *voucher = ru_kat_identity(0x80);
    pst_endorsement e, back;
    uint8_t enc[PST_DHT_VALUE_MAX], h1[32];
    kat_endorsement(&e);
    cr_assert_arr_eq(e.signer, voucher->sign_pk, 32);
    size_t len = end_round_trip(&e, &back, enc, sizeof enc);
    cr_assert_eq(pst_endorsement_id(&e, h1), PST_OK);
    ru_expect_hash_id(h1, enc, len);
    ru_check_vector_accepted(
        "endorsement_v1.hex",
        "Endorsement v1: voucher sign_seed=80..9f, subject = pk of sign_seed 00..1f "
        "(bytes i, i+1, ...); created=1700000000 expires=1731536000 tier=2 (trusted)",
        enc, len, end_accept);
    pst_identity_free(voucher);
}

Test(endorsement, every_mutation_rejected) {
    pst_endorsement e;
    uint8_t enc[PST_DHT_VALUE_MAX];
    kat_endorsement(&e);
    tu_check_mutations(enc, end_enc(&e, enc, sizeof enc), end_accept, NULL);
}

Test(endorsement, verify_rules) {
    pst_identity *voucher = ru_kat_identity(0x80), *other = ru_kat_identity(0x40);
    pst_endorsement base, e;
    kat_endorsement(&base);
    cr_assert_eq(pst_endorsement_verify(&base, EXPIRES - 1), PST_OK);
    cr_assert_eq(pst_endorsement_verify(&base, EXPIRES), PST_E_EXPIRED);
    cr_assert_eq(pst_endorsement_verify(&base, CREATED - PST_CLOCK_SKEW_MAX), PST_OK);
    cr_assert_eq(pst_endorsement_verify(&base, CREATED - PST_CLOCK_SKEW_MAX - 1), PST_E_NOTYET);
    e = base;
    e.expires = e.created + PST_ENDORSEMENT_LIFETIME_MAX;
    cr_assert_eq(pst_endorsement_sign(&e, voucher->sign_sk), PST_OK);
    cr_assert_eq(pst_endorsement_verify(&e, NOW), PST_OK, "exactly two years");
    e.expires++;
    cr_assert_eq(pst_endorsement_sign(&e, voucher->sign_sk), PST_OK);
    cr_assert_eq(pst_endorsement_verify(&e, NOW), PST_E_RANGE, "over two years");
    e.expires = e.created;
    cr_assert_eq(pst_endorsement_sign(&e, voucher->sign_sk), PST_OK);
    cr_assert_eq(pst_endorsement_verify(&e, NOW), PST_E_RANGE, "expires == created");
    /* wrong signer */
    e = base;
    memcpy(e.signer, other->sign_pk, 32);
    cr_assert_eq(pst_endorsement_verify(&e, NOW), PST_E_SIGNATURE);
    e = base;
    e.tier = PST_TIER_KNOWN;
    cr_assert_eq(pst_endorsement_verify(&e, NOW), PST_E_SIGNATURE, "tier is signed");
    e.tier = PST_TIER_WITHDRAWN;
    cr_assert_eq(pst_endorsement_verify(&e, NOW), PST_E_SIGNATURE, "a withdrawal is signed too");
    pst_identity_free(voucher);
    pst_identity_free(other);
}

Test(endorsement, limits) {
    pst_identity *voucher = ru_kat_identity(0x80);
    pst_endorsement base, e;
    uint8_t enc[PST_DHT_VALUE_MAX], out[4096];
    size_t len, n;
    kat_endorsement(&base);
    e = base;
    e.tier = PST_TIER_WITHDRAWN;
    cr_assert_eq(pst_endorsement_encode(&e, enc, sizeof enc, &len), PST_OK, "withdrawal");
    e.tier = 3;
    cr_assert_eq(pst_endorsement_encode(&e, enc, sizeof enc, &len), PST_E_INVAL);
    e.tier = PST_TIER_KNOWN;
    len = end_enc(&e, enc, sizeof enc);
    e = base;
    e.expires = 0;
    cr_assert_eq(pst_endorsement_encode(&e, enc, sizeof enc, &len), PST_E_INVAL, "expiry required");
    e = base;
    memcpy(e.subject, voucher->sign_pk, 32);
    cr_assert_eq(pst_endorsement_sign(&e, voucher->sign_sk), PST_E_INVAL, "self-endorsement");
    cr_assert_eq(pst_endorsement_encode(&e, enc, sizeof enc, &len), PST_E_INVAL);

    len = end_enc(&base, enc, sizeof enc);
    ru_raw a = ru_raw_uint(3);
    n = ru_with_field(enc, len, 6, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_RANGE, "tier 3");
    a = ru_raw_uint(0);
    n = ru_with_field(enc, len, 6, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_OK, "tier 0 is a withdrawal");
    n = ru_with_field(enc, len, 3, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_RANGE, "expires 0");
    a = ru_raw_bin(voucher->sign_pk, 32);
    n = ru_with_field(enc, len, 5, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_RANGE, "subject == signer");
    uint8_t k[65] = {0};
    a = ru_raw_bin(k, 33);
    n = ru_with_field(enc, len, 5, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_TOOBIG);
    a = ru_raw_bin(k, 31);
    n = ru_with_field(enc, len, 5, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_RANGE);
    a = ru_raw_bin(k, 65);
    n = ru_with_field(enc, len, 7, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_TOOBIG);
    pst_identity_free(voucher);
}

Test(endorsement, decode_strictness) {
    pst_endorsement e;
    uint8_t enc[PST_DHT_VALUE_MAX], out[4096];
    kat_endorsement(&e);
    size_t len = end_enc(&e, enc, sizeof enc), n;
    const uint8_t tier8[] = {0xcc, 0x02};
    n = ru_with_field(enc, len, 6, tier8, sizeof tier8, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_NONCANONICAL, "uint8 for 2");
    uint8_t e64[9] = {0xcf};
    for (int i = 0; i < 8; i++)
        e64[1 + i] = (uint8_t)((uint64_t)EXPIRES >> (56 - 8 * i));
    n = ru_with_field(enc, len, 3, e64, sizeof e64, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_NONCANONICAL, "uint64 for a uint32");
    uint8_t b32[80] = {0xc6, 0, 0, 0, 32};
    memcpy(b32 + 5, e.subject, 32);
    n = ru_with_field(enc, len, 5, b32, 37, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_NONCANONICAL, "bin32 header");
    ru_raw a = ru_raw_uint(0);
    n = ru_with_field(enc, len, 0, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_VERSION);
    a = ru_raw_uint(PST_REC_REVOCATION);
    n = ru_with_field(enc, len, 1, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_RECTYPE);
    a = ru_raw_uint(1);
    n = ru_with_field(enc, len, PST_ENDORSEMENT_FIELDS, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_FIELDS);
    n = ru_with_field(enc, len, 6, NULL, 0, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_FIELDS);
    memcpy(out, enc, len);
    out[len] = 0x01;
    cr_assert_eq(end_decode_rc(out, len + 1), PST_E_TRAILING);
    a = ru_raw_str("trusted");
    n = ru_with_field(enc, len, 6, a.b, a.n, out, sizeof out);
    cr_assert_eq(end_decode_rc(out, n), PST_E_TYPE);
    pst_endorsement z;
    memset(&z, 0x33, sizeof z);
    cr_assert_eq(pst_endorsement_decode(out, n, &z), PST_E_TYPE);
    const uint8_t *p = (const uint8_t *)&z;
    for (size_t i = 0; i < sizeof z; i++)
        cr_assert_eq(p[i], 0);
}
