/* KeyRecord (type 1) and AddressClaim (type 2). */
#include <criterion/criterion.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pst_record.h"
#include "pst_records.h"
#include "recutil.h"
#include "testutil.h"

#define CREATED 1700000000u
#define EXPIRES (CREATED + PST_KEYREC_LIFETIME_MAX)

#define NOW (CREATED + 60)

/* A normalized address of exactly len bytes (5..254). */
static void make_address(char *out, size_t len) {
    ru_address(out, len - 2 > 64 ? 64 : len - 2, len);
}

static void kat_keyrec(pst_keyrec *r, const pst_identity *id) {
    memset(r, 0, sizeof *r);
    r->created = CREATED;
    r->expires = EXPIRES;
    r->seq = 7;
    memcpy(r->enc_pk, id->box_pk, 32);
    r->has_revocation_pk = true;
    memcpy(r->revocation_pk, id->rev_pk, 32);
    r->n_addresses = 2;
    strcpy(r->addresses[0], "alice@example.org");
    strcpy(r->addresses[1], "alice@postern.example");
    r->n_endpoints = 2;
    strcpy(r->endpoints[0], "node.example.org:7411");
    strcpy(r->endpoints[1], "[2001:db8::1]:7411");
    r->pow_bits = 20;
    cr_assert_eq(pst_keyrec_sign(r, id->sign_sk), PST_OK);
}

TU_DEFINE_SIGNED(keyrec, pst_keyrec, NOW)

static size_t kat_keyrec_enc(uint8_t *out, size_t cap) {
    pst_identity *id = ru_kat_identity(0);
    pst_keyrec r;
    size_t len;
    kat_keyrec(&r, id);
    len = keyrec_enc(&r, out, cap);
    pst_identity_free(id);
    return len;
}

/* ---- KeyRecord ------------------------------------------------------------- */

Test(keyrec, round_trip) {
    pst_identity *id = ru_kat_identity(0);
    pst_keyrec r, back;
    uint8_t enc[PST_DHT_VALUE_MAX], id1[32], id2[32];
    size_t len;
    kat_keyrec(&r, id);
    cr_assert_arr_eq(r.signer, id->sign_pk, 32, "sign sets the signer");
    len = keyrec_round_trip(&r, &back, enc, sizeof enc);
    cr_assert_eq(pst_keyrec_id(&r, id1), PST_OK);
    cr_assert_eq(pst_keyrec_id(&back, id2), PST_OK);
    cr_assert_arr_eq(id1, id2, 32);
    ru_expect_hash_id(id1, enc, len);
    back.seq++;
    cr_assert_eq(pst_keyrec_id(&back, id2), PST_OK);
    cr_assert_neq(memcmp(id1, id2, 32), 0);
    cr_assert_eq(pst_keyrec_verify(&back, NOW), PST_E_SIGNATURE, "seq is signed");
    /* no revocation key, no addresses, no endpoints */
    memset(&r, 0, sizeof r);
    r.created = CREATED;
    r.expires = CREATED + 1;
    cr_assert_eq(pst_keyrec_sign(&r, id->sign_sk), PST_OK);
    len = keyrec_enc(&r, enc, sizeof enc);
    cr_assert_eq(pst_keyrec_decode(enc, len, &back), PST_OK);
    cr_assert(!back.has_revocation_pk);
    cr_assert_eq(pst_keyrec_verify(&back, CREATED), PST_OK);
    pst_identity_free(id);
}

Test(keyrec, known_answer_vector) {
    uint8_t enc[PST_DHT_VALUE_MAX];
    size_t len = kat_keyrec_enc(enc, sizeof enc);
    ru_check_vector_accepted(
        "keyrec_v1.hex",
        "KeyRecord v1: sign_seed=00..1f box_seed=20..3f rev_seed=40..5f (bytes i, i+1, "
        "...); created=1700000000 expires=1702592000 seq=7 enc_pk=box_pk "
        "revocation_pk=rev_pk addresses=[alice@example.org, alice@postern.example] "
        "endpoints=[node.example.org:7411, [2001:db8::1]:7411] pow_bits=20",
        enc, len, keyrec_accept);
}

Test(keyrec, every_mutation_rejected) {
    uint8_t enc[PST_DHT_VALUE_MAX];
    size_t len = kat_keyrec_enc(enc, sizeof enc);
    tu_check_mutations(enc, len, keyrec_accept, NULL);
}

Test(keyrec, maximal_record_fits_dht_value) {
    pst_identity *id = ru_kat_identity(0);
    pst_keyrec r, back;
    uint8_t enc[2 * PST_DHT_VALUE_MAX];
    size_t len;
    memset(&r, 0, sizeof r);
    r.created = UINT64_MAX - PST_KEYREC_LIFETIME_MAX;
    r.expires = UINT64_MAX;
    r.seq = UINT64_MAX;
    r.has_revocation_pk = true;
    r.n_addresses = PST_KEYREC_ADDRESSES_MAX;
    size_t per = PST_KEYREC_ADDRESS_BYTES_MAX / PST_KEYREC_ADDRESSES_MAX;
    for (uint32_t i = 0; i < r.n_addresses; i++) {
        make_address(r.addresses[i], per);
        r.addresses[i][0] = (char)('a' + i); /* distinct */
    }
    r.n_endpoints = PST_KEYREC_ENDPOINTS_MAX;
    for (uint32_t i = 0; i < r.n_endpoints; i++) {
        memset(r.endpoints[i], 'h', PST_ENDPOINT_MAX - 6);
        strcpy(r.endpoints[i] + PST_ENDPOINT_MAX - 6, ":65535");
    }
    r.pow_bits = PST_POW_BITS_MAX;
    cr_assert_eq(pst_keyrec_sign(&r, id->sign_sk), PST_OK);
    len = keyrec_enc(&r, enc, sizeof enc);
    cr_assert_leq(len, PST_DHT_VALUE_MAX, "maximal KeyRecord is %zu bytes", len);
    cr_assert_eq(pst_keyrec_decode(enc, len, &back), PST_OK);
    cr_assert_eq(pst_keyrec_verify(&back, r.created), PST_OK);
    /* one long address instead of eight: still within the byte budget */
    r.n_addresses = 3;
    make_address(r.addresses[0], PST_ADDRESS_MAX);
    make_address(r.addresses[1], PST_ADDRESS_MAX);
    make_address(r.addresses[2], PST_KEYREC_ADDRESS_BYTES_MAX - 2 * PST_ADDRESS_MAX);
    cr_assert_eq(pst_keyrec_sign(&r, id->sign_sk), PST_OK);
    len = keyrec_enc(&r, enc, sizeof enc);
    cr_assert_leq(len, PST_DHT_VALUE_MAX);
    cr_assert_eq(keyrec_accept_at(enc, len, r.created), PST_OK);
    pst_identity_free(id);
}

Test(keyrec, endpoints) {
    const char *ok[] = {"a.b:1",
                        "1.2.3.4:65535",
                        "[::1]:7411",
                        "[2001:db8::1]:80",
                        "node-1.example.org:7411",
                        "[::ffff:1.2.3.4]:9"};
    const char *bad[] = {"host",
                         "host:",
                         "host:0",
                         "host:65536",
                         "host:080",
                         ":80",
                         "Host:80",
                         "[::1]",
                         "[::g]:80",
                         "[::1]:80x",
                         "::1:80",
                         "[1.2.3.4]:80",
                         "[fe80::1%eth0]:80",
                         "a_b:80",
                         "-a:80",
                         "a..b:80",
                         "[2001:DB8::1]:80",
                         "host:+80",
                         "host: 80",
                         "[]:80"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert(pst_endpoint_is_valid(ok[i], strlen(ok[i])), "%s", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!pst_endpoint_is_valid(bad[i], strlen(bad[i])), "%s", bad[i]);
    char e[80];
    memset(e, 'h', PST_ENDPOINT_MAX - 3);
    strcpy(e + PST_ENDPOINT_MAX - 3, ":80");
    cr_assert(pst_endpoint_is_valid(e, strlen(e)), "64 bytes");
    memset(e, 'h', PST_ENDPOINT_MAX - 2);
    strcpy(e + PST_ENDPOINT_MAX - 2, ":80");
    cr_assert(!pst_endpoint_is_valid(e, strlen(e)), "65 bytes");
}

Test(keyrec, encode_refuses_over_limit) {
    pst_identity *id = ru_kat_identity(0);
    pst_keyrec base, r;
    uint8_t enc[PST_DHT_VALUE_MAX];
    size_t len;
    kat_keyrec(&base, id);

    r = base;
    r.n_addresses = PST_KEYREC_ADDRESSES_MAX + 1;
    for (uint32_t i = 0; i < r.n_addresses; i++)
        strcpy(r.addresses[i < PST_KEYREC_ADDRESSES_MAX ? i : 0], "a@b.c");
    cr_assert_eq(pst_keyrec_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);
    cr_assert_eq(len, 0);
    cr_assert_eq(pst_keyrec_sign(&r, id->sign_sk), PST_E_INVAL);

    r = base; /* address bytes: at the budget, then one over */
    r.n_addresses = PST_KEYREC_ADDRESSES_MAX;
    for (uint32_t i = 0; i < r.n_addresses; i++)
        make_address(r.addresses[i], 80);
    len = keyrec_enc(&r, enc, sizeof enc);
    make_address(r.addresses[7], 81);
    cr_assert_eq(pst_keyrec_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);

    r = base;
    strcpy(r.addresses[1], "Alice@example.org");
    cr_assert_eq(pst_keyrec_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);

    r = base;
    r.n_endpoints = PST_KEYREC_ENDPOINTS_MAX;
    for (uint32_t i = 0; i < r.n_endpoints; i++)
        strcpy(r.endpoints[i], "a.b:1");
    len = keyrec_enc(&r, enc, sizeof enc);
    r.n_endpoints = PST_KEYREC_ENDPOINTS_MAX + 1;
    cr_assert_eq(pst_keyrec_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);

    r = base;
    memset(r.endpoints[0], 'h', PST_ENDPOINT_MAX);
    r.endpoints[0][PST_ENDPOINT_MAX] = '\0'; /* no port at all, and 64 + NUL fills it */
    cr_assert_eq(pst_keyrec_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);
    strcpy(r.endpoints[0], "host:0");
    cr_assert_eq(pst_keyrec_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);

    r = base;
    r.pow_bits = PST_POW_BITS_MAX;
    len = keyrec_enc(&r, enc, sizeof enc);
    r.pow_bits = PST_POW_BITS_MAX + 1;
    cr_assert_eq(pst_keyrec_encode(&r, enc, sizeof enc, &len), PST_E_INVAL);

    r = base;
    memset(enc, 0x55, sizeof enc);
    cr_assert_eq(pst_keyrec_encode(&r, enc, 50, &len), PST_E_NOSPACE);
    for (size_t i = 0; i < 50; i++)
        cr_assert_eq(enc[i], 0, "zeroed on error");
    pst_identity_free(id);
}

Test(keyrec, decode_rejects_over_limit) {
    uint8_t enc[PST_DHT_VALUE_MAX], out[4096];
    size_t len = kat_keyrec_enc(enc, sizeof enc), n;
    pst_writer w;
    ru_raw a;
    char addr[300];

    /* 9 addresses */
    pst_w_init(&w, a.b, sizeof a.b);
    pst_w_array(&w, PST_KEYREC_ADDRESSES_MAX + 1);
    for (uint32_t i = 0; i <= PST_KEYREC_ADDRESSES_MAX; i++)
        pst_w_cstr(&w, "a@b.c");
    cr_assert_eq(pst_w_finish(&w, &a.n), PST_OK);
    n = ru_with_field(enc, len, 8, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_TOOBIG);
    /* address bytes over the budget: 2 x 254 + 133 */
    pst_w_init(&w, a.b, sizeof a.b);
    pst_w_array(&w, 3);
    make_address(addr, PST_ADDRESS_MAX);
    pst_w_cstr(&w, addr);
    pst_w_cstr(&w, addr);
    make_address(addr, PST_KEYREC_ADDRESS_BYTES_MAX - 2 * PST_ADDRESS_MAX + 1);
    pst_w_cstr(&w, addr);
    cr_assert_eq(pst_w_finish(&w, &a.n), PST_OK);
    n = ru_with_field(enc, len, 8, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_TOOBIG);
    /* one address of 255 bytes */
    memset(addr, 'a', 64);
    addr[64] = '@';
    memset(addr + 65, 'b', 190);
    addr[255] = '\0';
    pst_w_init(&w, a.b, sizeof a.b);
    pst_w_array(&w, 1);
    pst_w_cstr(&w, addr);
    cr_assert_eq(pst_w_finish(&w, &a.n), PST_OK);
    n = ru_with_field(enc, len, 8, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_TOOBIG);
    /* 5 endpoints */
    pst_w_init(&w, a.b, sizeof a.b);
    pst_w_array(&w, PST_KEYREC_ENDPOINTS_MAX + 1);
    for (uint32_t i = 0; i <= PST_KEYREC_ENDPOINTS_MAX; i++)
        pst_w_cstr(&w, "a.b:1");
    cr_assert_eq(pst_w_finish(&w, &a.n), PST_OK);
    n = ru_with_field(enc, len, 9, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_TOOBIG);
    /* an endpoint of 65 bytes */
    memset(addr, 'h', PST_ENDPOINT_MAX - 2);
    strcpy(addr + PST_ENDPOINT_MAX - 2, ":80");
    pst_w_init(&w, a.b, sizeof a.b);
    pst_w_array(&w, 1);
    pst_w_cstr(&w, addr);
    cr_assert_eq(pst_w_finish(&w, &a.n), PST_OK);
    n = ru_with_field(enc, len, 9, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_TOOBIG);
    /* pow_bits 40 is fine, 41 is out of range */
    a = ru_raw_uint(PST_POW_BITS_MAX);
    n = ru_with_field(enc, len, 10, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_OK);
    a = ru_raw_uint(PST_POW_BITS_MAX + 1);
    n = ru_with_field(enc, len, 10, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_RANGE);
    /* key sizes */
    uint8_t k[65] = {0};
    a = ru_raw_bin(k, 33);
    n = ru_with_field(enc, len, 6, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_TOOBIG);
    a = ru_raw_bin(k, 31);
    n = ru_with_field(enc, len, 6, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_RANGE);
    n = ru_with_field(enc, len, 7, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_RANGE);
    a = ru_raw_bin(k, 65);
    n = ru_with_field(enc, len, 11, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_TOOBIG);
    /* invalid content */
    pst_w_init(&w, a.b, sizeof a.b);
    pst_w_array(&w, 1);
    pst_w_cstr(&w, "Alice@example.org");
    cr_assert_eq(pst_w_finish(&w, &a.n), PST_OK);
    n = ru_with_field(enc, len, 8, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_RANGE);
    n = ru_with_field(enc, len, 9, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_RANGE);
    a = ru_raw_str("alice@example.org");
    n = ru_with_field(enc, len, 8, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_TYPE, "a str where an array belongs");
    /* the whole record over PST_DHT_VALUE_MAX */
    memset(out, 0x90, PST_DHT_VALUE_MAX + 1);
    cr_assert_eq(keyrec_decode_rc(out, PST_DHT_VALUE_MAX + 1), PST_E_TOOBIG);
}

Test(keyrec, decode_rejects_non_canonical) {
    uint8_t enc[PST_DHT_VALUE_MAX], out[4096];
    size_t len = kat_keyrec_enc(enc, sizeof enc), n;
    const uint8_t v16[] = {0xcd, 0x00, 0x01};
    n = ru_with_field(enc, len, 0, v16, sizeof v16, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_NONCANONICAL, "version as uint16");
    const uint8_t seq16[] = {0xcd, 0x00, 0x07};
    n = ru_with_field(enc, len, 5, seq16, sizeof seq16, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_NONCANONICAL, "seq as uint16");
    const uint8_t pow8[] = {0xcc, 20};
    n = ru_with_field(enc, len, 10, pow8, sizeof pow8, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_NONCANONICAL, "pow_bits as uint8");
    uint8_t c64[9] = {0xcf};
    for (int i = 0; i < 8; i++)
        c64[1 + i] = (uint8_t)((uint64_t)CREATED >> (56 - 8 * i));
    n = ru_with_field(enc, len, 2, c64, sizeof c64, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_NONCANONICAL, "created as uint64");
    uint8_t s8[64] = {0x91, 0xd9, 17};
    memcpy(s8 + 3, "alice@example.org", 17);
    n = ru_with_field(enc, len, 8, s8, 20, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_NONCANONICAL, "str8 for a short string");
    uint8_t a16[32] = {0xdc, 0x00, 0x01, 0xa3, 'a', '@', 'b'};
    n = ru_with_field(enc, len, 8, a16, 7, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_NONCANONICAL, "array16 for one element");
    uint8_t b16[40] = {0xc5, 0x00, 0x20};
    n = ru_with_field(enc, len, 6, b16, 35, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_NONCANONICAL, "bin16 for 32 bytes");
    /* the outer array as array16 */
    out[0] = 0xdc;
    out[1] = 0x00;
    out[2] = PST_KEYREC_FIELDS;
    memcpy(out + 3, enc + 1, len - 1);
    cr_assert_eq(keyrec_decode_rc(out, len + 2), PST_E_NONCANONICAL, "outer array16");
    /* a non-canonical record is rejected even when its signature is right:
     * sign the non-canonical body itself */
    n = ru_with_field(enc, len, 5, seq16, sizeof seq16, out, sizeof out);
    cr_assert_eq(keyrec_accept_at(out, n, NOW), PST_E_NONCANONICAL);
}

Test(keyrec, decode_rejects_bad_header_and_shape) {
    uint8_t enc[PST_DHT_VALUE_MAX], out[4096];
    size_t len = kat_keyrec_enc(enc, sizeof enc), n;
    ru_raw a = ru_raw_uint(2);
    n = ru_with_field(enc, len, 0, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_VERSION);
    n = ru_with_field(enc, len, 1, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_RECTYPE);
    a = ru_raw_uint(PST_REC_REVOCATION);
    n = ru_with_field(enc, len, 1, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_RECTYPE);
    a = ru_raw_uint(0);
    n = ru_with_field(enc, len, PST_KEYREC_FIELDS, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_FIELDS, "extra field");
    n = ru_with_field(enc, len, 10, NULL, 0, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_FIELDS, "missing field");
    memcpy(out, enc, len);
    out[len] = 0x00;
    cr_assert_eq(keyrec_decode_rc(out, len + 1), PST_E_TRAILING);
    cr_assert_eq(keyrec_decode_rc(out, 0), PST_E_TRUNCATED);
    cr_assert_eq(keyrec_decode_rc(out, len - 1), PST_E_TRUNCATED);
    a = ru_raw_str("7");
    n = ru_with_field(enc, len, 5, a.b, a.n, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_TYPE, "seq as a string");
    const uint8_t nil[] = {0xc0};
    n = ru_with_field(enc, len, 7, nil, 1, out, sizeof out);
    cr_assert_eq(keyrec_decode_rc(out, n), PST_E_TYPE, "nil");
    /* decode zeroes its output on failure */
    pst_keyrec r;
    memset(&r, 0x5a, sizeof r);
    cr_assert_eq(pst_keyrec_decode(out, n, &r), PST_E_TYPE);
    const uint8_t *p = (const uint8_t *)&r;
    for (size_t i = 0; i < sizeof r; i++)
        cr_assert_eq(p[i], 0);
}

Test(keyrec, verify_time_window_and_signer) {
    pst_identity *id = ru_kat_identity(0), *other = ru_kat_identity(0x80);
    pst_keyrec r, base;
    kat_keyrec(&base, id);
    cr_assert_eq(pst_keyrec_verify(&base, CREATED), PST_OK);
    cr_assert_eq(pst_keyrec_verify(&base, EXPIRES - 1), PST_OK);
    cr_assert_eq(pst_keyrec_verify(&base, EXPIRES), PST_E_EXPIRED);
    cr_assert_eq(pst_keyrec_verify(&base, CREATED - PST_CLOCK_SKEW_MAX), PST_OK, "skew allowed");
    cr_assert_eq(pst_keyrec_verify(&base, CREATED - PST_CLOCK_SKEW_MAX - 1), PST_E_NOTYET);
    r = base;
    r.expires = r.created + PST_KEYREC_LIFETIME_MAX + 1;
    cr_assert_eq(pst_keyrec_sign(&r, id->sign_sk), PST_OK);
    cr_assert_eq(pst_keyrec_verify(&r, NOW), PST_E_RANGE, "lifetime over 30 days");
    r.expires = r.created;
    cr_assert_eq(pst_keyrec_sign(&r, id->sign_sk), PST_OK);
    cr_assert_eq(pst_keyrec_verify(&r, NOW), PST_E_RANGE, "expires == created");
    r.expires = 0;
    cr_assert_eq(pst_keyrec_verify(&r, NOW), PST_E_RANGE, "no expiry");
    /* wrong signer: the signer field names another key */
    r = base;
    memcpy(r.signer, other->sign_pk, 32);
    cr_assert_eq(pst_keyrec_verify(&r, NOW), PST_E_SIGNATURE);
    /* signed by another key but claiming the identity key */
    r = base;
    cr_assert_eq(pst_keyrec_sign(&r, other->sign_sk), PST_OK);
    memcpy(r.signer, id->sign_pk, 32);
    cr_assert_eq(pst_keyrec_verify(&r, NOW), PST_E_SIGNATURE);
    /* invalid struct */
    r = base;
    r.pow_bits = 99;
    cr_assert_eq(pst_keyrec_verify(&r, NOW), PST_E_INVAL);
    pst_identity_free(id);
    pst_identity_free(other);
}

/* ---- AddressClaim ---------------------------------------------------------- */

static void kat_claim(pst_address_claim *c, const pst_identity *id) {
    memset(c, 0, sizeof *c);
    c->created = CREATED;
    c->expires = EXPIRES;
    strcpy(c->address, "alice@example.org");
    c->seq = 7;
    cr_assert_eq(pst_address_claim_sign(c, id->sign_sk), PST_OK);
}

TU_DEFINE_SIGNED(claim, pst_address_claim, NOW)

static size_t kat_claim_enc(uint8_t *out, size_t cap) {
    pst_identity *id = ru_kat_identity(0);
    pst_address_claim c;
    size_t len;
    kat_claim(&c, id);
    len = claim_enc(&c, out, cap);
    pst_identity_free(id);
    return len;
}

Test(address_claim, round_trip_and_vector) {
    pst_identity *id = ru_kat_identity(0);
    pst_address_claim c, back;
    uint8_t enc[PST_DHT_VALUE_MAX], h1[32];
    kat_claim(&c, id);
    size_t len = claim_round_trip(&c, &back, enc, sizeof enc);
    cr_assert_eq(pst_address_claim_id(&c, h1), PST_OK);
    ru_expect_hash_id(h1, enc, len);
    ru_check_vector_accepted(
        "address_claim_v1.hex",
        "AddressClaim v1: sign_seed=00..1f (bytes i, i+1, ...); "
        "created=1700000000 expires=1702592000 address=alice@example.org seq=7",
        enc, len, claim_accept);
    pst_identity_free(id);
}

Test(address_claim, every_mutation_rejected) {
    uint8_t enc[PST_DHT_VALUE_MAX];
    size_t len = kat_claim_enc(enc, sizeof enc);
    tu_check_mutations(enc, len, claim_accept, NULL);
}

Test(address_claim, limits) {
    pst_identity *id = ru_kat_identity(0);
    pst_address_claim c;
    uint8_t enc[PST_DHT_VALUE_MAX], out[4096];
    size_t len, n;
    kat_claim(&c, id);
    make_address(c.address, PST_ADDRESS_MAX);
    cr_assert_eq(pst_address_claim_sign(&c, id->sign_sk), PST_OK);
    len = claim_enc(&c, enc, sizeof enc);
    cr_assert_eq(claim_accept(enc, len, NULL), PST_OK, "254-byte address");
    strcpy(c.address, "Alice@example.org");
    cr_assert_eq(pst_address_claim_encode(&c, enc, sizeof enc, &len), PST_E_INVAL);
    cr_assert_eq(pst_address_claim_sign(&c, id->sign_sk), PST_E_INVAL);
    c.address[0] = '\0';
    cr_assert_eq(pst_address_claim_encode(&c, enc, sizeof enc, &len), PST_E_INVAL);

    len = kat_claim_enc(enc, sizeof enc);
    char addr[300];
    memset(addr, 'a', 64);
    addr[64] = '@';
    memset(addr + 65, 'b', 190);
    addr[255] = '\0';
    ru_raw a = ru_raw_str(addr);
    n = ru_with_field(enc, len, 5, a.b, a.n, out, sizeof out);
    cr_assert_eq(claim_decode_rc(out, n), PST_E_TOOBIG, "255-byte address");
    a = ru_raw_str("Alice@example.org");
    n = ru_with_field(enc, len, 5, a.b, a.n, out, sizeof out);
    cr_assert_eq(claim_decode_rc(out, n), PST_E_RANGE);
    a = ru_raw_str("alice");
    n = ru_with_field(enc, len, 5, a.b, a.n, out, sizeof out);
    cr_assert_eq(claim_decode_rc(out, n), PST_E_RANGE);
    a = ru_raw_bin("alice@example.org", 17);
    n = ru_with_field(enc, len, 5, a.b, a.n, out, sizeof out);
    cr_assert_eq(claim_decode_rc(out, n), PST_E_TYPE);
    pst_identity_free(id);
}

Test(address_claim, decode_strictness) {
    uint8_t enc[PST_DHT_VALUE_MAX], out[4096];
    size_t len = kat_claim_enc(enc, sizeof enc), n;
    const uint8_t seq16[] = {0xcd, 0x00, 0x07};
    n = ru_with_field(enc, len, 6, seq16, sizeof seq16, out, sizeof out);
    cr_assert_eq(claim_decode_rc(out, n), PST_E_NONCANONICAL);
    uint8_t s8[32] = {0xd9, 17};
    memcpy(s8 + 2, "alice@example.org", 17);
    n = ru_with_field(enc, len, 5, s8, 19, out, sizeof out);
    cr_assert_eq(claim_decode_rc(out, n), PST_E_NONCANONICAL);
    ru_raw a = ru_raw_uint(2);
    n = ru_with_field(enc, len, 0, a.b, a.n, out, sizeof out);
    cr_assert_eq(claim_decode_rc(out, n), PST_E_VERSION);
    a = ru_raw_uint(PST_REC_KEY);
    n = ru_with_field(enc, len, 1, a.b, a.n, out, sizeof out);
    cr_assert_eq(claim_decode_rc(out, n), PST_E_RECTYPE);
    a = ru_raw_uint(1);
    n = ru_with_field(enc, len, PST_ADDRESS_CLAIM_FIELDS, a.b, a.n, out, sizeof out);
    cr_assert_eq(claim_decode_rc(out, n), PST_E_FIELDS);
    n = ru_with_field(enc, len, 6, NULL, 0, out, sizeof out);
    cr_assert_eq(claim_decode_rc(out, n), PST_E_FIELDS);
    memcpy(out, enc, len);
    out[len] = 0xc0;
    cr_assert_eq(claim_decode_rc(out, len + 1), PST_E_TRAILING);
    /* a KeyRecord is not an AddressClaim and vice versa */
    uint8_t kr[PST_DHT_VALUE_MAX];
    size_t kr_len = kat_keyrec_enc(kr, sizeof kr);
    cr_assert_eq(claim_decode_rc(kr, kr_len), PST_E_RECTYPE);
    cr_assert_eq(keyrec_decode_rc(enc, len), PST_E_RECTYPE);
    pst_rec_type t;
    cr_assert_eq(pst_record_peek_type(kr, kr_len, &t), PST_OK);
    cr_assert_eq(t, PST_REC_KEY);
    cr_assert_eq(pst_record_peek_type(enc, len, &t), PST_OK);
    cr_assert_eq(t, PST_REC_ADDRESS_CLAIM);
}

Test(address_claim, verify_and_matches) {
    pst_identity *id = ru_kat_identity(0), *other = ru_kat_identity(0x80);
    pst_address_claim c, r;
    pst_keyrec k;
    kat_claim(&c, id);
    kat_keyrec(&k, id);
    cr_assert_eq(pst_address_claim_verify(&c, EXPIRES), PST_E_EXPIRED);
    cr_assert_eq(pst_address_claim_verify(&c, CREATED - PST_CLOCK_SKEW_MAX - 1), PST_E_NOTYET);
    r = c;
    r.expires = r.created + PST_KEYREC_LIFETIME_MAX + 1;
    cr_assert_eq(pst_address_claim_sign(&r, id->sign_sk), PST_OK);
    cr_assert_eq(pst_address_claim_verify(&r, NOW), PST_E_RANGE);
    r = c;
    memcpy(r.signer, other->sign_pk, 32);
    cr_assert_eq(pst_address_claim_verify(&r, NOW), PST_E_SIGNATURE);

    cr_assert_eq(pst_address_claim_matches(&c, &k), PST_OK);
    strcpy(r.address, "alice@postern.example");
    memcpy(r.signer, id->sign_pk, 32);
    cr_assert_eq(pst_address_claim_matches(&r, &k), PST_OK, "second address");
    strcpy(r.address, "bob@example.org");
    cr_assert_eq(pst_address_claim_matches(&r, &k), PST_E_MISMATCH, "not listed");
    r = c;
    cr_assert_eq(pst_address_claim_sign(&r, other->sign_sk), PST_OK);
    cr_assert_eq(pst_address_claim_matches(&r, &k), PST_E_MISMATCH, "claimed by another key");
    pst_identity_free(id);
    pst_identity_free(other);
}
