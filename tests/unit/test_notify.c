#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pst_identity.h"
#include "pst_notify.h"
#include "recutil.h"
#include "testutil.h"

#define NOW 1700000000u

static uint8_t sender_pk[32], sender_sk[64], recip_pk[32], recip_sk[64];
static uint8_t rbox_pk[32], rbox_sk[32], sbox_pk[32], sbox_sk[32], other_box_pk[32],
    other_box_sk[32];

static void setup(void) {
    cr_assert(sodium_init() >= 0);
    tu_sign_keypair(sender_pk, sender_sk, 0x01);
    tu_sign_keypair(recip_pk, recip_sk, 0x02);
    tu_box_keypair(rbox_pk, rbox_sk, 0x04);
    tu_box_keypair(sbox_pk, sbox_sk, 0x05);
    tu_box_keypair(other_box_pk, other_box_sk, 0x08);
}

TestSuite(notify, .init = setup);

static pst_notify_inner fixed_inner(void) {
    pst_notify_inner r = ru_notify_inner(NOW, 86400, recip_pk, sbox_pk);
    cr_assert_eq(pst_notify_inner_sign(&r, sender_sk), PST_OK);
    return r;
}

TU_DEFINE_SIGNED(inner, pst_notify_inner, NOW)

Test(notify, inner_roundtrip_and_mutations) {
    pst_notify_inner r = fixed_inner(), d;
    cr_assert_arr_eq(r.signer, sender_pk, 32);
    uint8_t buf[PST_NOTIFY_INNER_MAX];
    size_t len = inner_round_trip(&r, &d, buf, PST_NOTIFY_INNER_MAX);
    tu_check_mutations(buf, len, inner_accept, NULL);
}

Test(notify, inner_vector) {
    pst_notify_inner r = fixed_inner();
    uint8_t buf[PST_NOTIFY_INNER_MAX];
    size_t len = inner_enc(&r, buf, PST_NOTIFY_INNER_MAX);
    ru_expect_vector("notify_inner_v1.hex", buf, len);
}

Test(notify, inner_limits) {
    pst_notify_inner r = fixed_inner();
    uint8_t buf[1024];
    size_t len;
    /* largest possible inner stays under PST_NOTIFY_INNER_MAX */
    ru_notify_inner_largest(&r);
    cr_assert_eq(pst_notify_inner_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_leq(len, PST_NOTIFY_INNER_MAX);
    cr_log_info("largest inner: %zu bytes", len);
    pst_notify_inner d;
    cr_assert_eq(pst_notify_inner_decode(buf, len, &d), PST_OK);
    cr_assert_eq(pst_notify_inner_sign(&r, sender_sk), PST_OK);
    /* the largest sealed outer (stamp at its max) fits a DHT value */
    pst_notify o;
    cr_assert_eq(pst_notify_seal(&r, rbox_pk, &o), PST_OK);
    memset(o.stamp, 'x', PST_NOTIFY_STAMP_MAX);
    o.stamp[PST_NOTIFY_STAMP_MAX] = 0;
    uint8_t obuf[PST_NOTIFY_MAX];
    cr_assert_eq(pst_notify_encode(&o, obuf, sizeof obuf, &len), PST_OK);
    cr_assert_leq(len, PST_DHT_VALUE_MAX);

    r = fixed_inner();
    r.size = PST_MESSAGE_SIZE_MAX + 1ull;
    cr_assert_eq(pst_notify_inner_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    cr_assert_eq(pst_notify_inner_sign(&r, sender_sk), PST_E_INVAL);
    r.size = PST_MESSAGE_SIZE_MIN - 1;
    cr_assert_eq(pst_notify_inner_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r.size = PST_MESSAGE_SIZE_MIN;
    cr_assert_eq(pst_notify_inner_encode(&r, buf, sizeof buf, &len), PST_OK);
    r.n_endpoints = 0;
    cr_assert_eq(pst_notify_inner_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r.n_endpoints = PST_NOTIFY_ENDPOINTS_MAX + 1;
    cr_assert_eq(pst_notify_inner_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r = fixed_inner();
    memset(r.endpoints[1], 'a', PST_NOTIFY_ENDPOINT_MAX - 5);
    strcpy(r.endpoints[1] + PST_NOTIFY_ENDPOINT_MAX - 5, ":7401"); /* exactly at the max */
    cr_assert_eq(pst_notify_inner_encode(&r, buf, sizeof buf, &len), PST_OK);
    memset(r.endpoints[1], 'a', sizeof r.endpoints[1]); /* unterminated: over the max */
    cr_assert_eq(pst_notify_inner_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r = fixed_inner();
    cr_assert_eq(pst_notify_inner_encode(&r, buf, 50, &len), PST_E_NOSPACE);
    cr_assert_eq(len, 0);
}

Test(notify, endpoint_syntax) {
    const char *good[] = {"a:1",        "mail.example.org:7401", "10.0.0.1:65535",
                          "[::1]:7401", "[2001:db8::1]:1",       "[::ffff:10.0.0.1]:80",
                          "x-y.z:443"};
    const char *bad[] = {"",           ":80",        "host",      "host:",      "host:0",
                         "host:65536", "host:0080",  "host:+80",  "::1:80",     "[::1]",
                         "[]:80",      "[::g]:80",   "ho st:80",  "host:80 ",   "[::1:80",
                         "h_st:80",    "host:80:81", "[::1]x:80", "host:123456"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert(pst_notify_endpoint_valid(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!pst_notify_endpoint_valid(bad[i]), "%s", bad[i]);
    cr_assert(!pst_notify_endpoint_valid(NULL));
}

/* An inner-shaped array with chosen header, for malformed inputs. */
typedef struct {
    uint32_t nfields;
    uint64_t version, type, size;
    uint32_t n_eps;
    const char *ep;
    bool wide_created; /* created as uint64: non-canonical */
    bool trailing;
} raw_opts;

static size_t raw_inner(uint8_t *out, raw_opts o) {
    pst_notify_inner r = fixed_inner();
    pst_writer w;
    pst_w_init(&w, out, 2048);
    pst_w_array(&w, o.nfields);
    pst_w_uint(&w, o.version);
    pst_w_uint(&w, o.type);
    if (o.wide_created) {
        uint8_t c[9] = {0xcf, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00};
        pst_w_raw(&w, c, sizeof c);
    } else {
        pst_w_uint(&w, r.created);
    }
    pst_w_uint(&w, r.expires);
    pst_w_bin(&w, r.signer, 32);
    pst_w_bin(&w, r.recipient, 32);
    pst_w_bin(&w, r.msg_id, 32);
    pst_w_uint(&w, o.size);
    pst_w_array(&w, o.n_eps);
    for (uint32_t i = 0; i < o.n_eps; i++)
        pst_w_cstr(&w, o.ep);
    pst_w_bin(&w, r.msg_key, 32);
    pst_w_bin(&w, r.sender_box_pk, 32);
    pst_w_bin(&w, r.sig, 64);
    /* a trailing value after the array: one more 0 past the fields */
    return ru_finish_fields(&w, 12, o.nfields + (o.trailing ? 1u : 0u));
}

static int decode_raw(raw_opts o) {
    uint8_t buf[2048];
    pst_notify_inner r;
    size_t len = raw_inner(buf, o);
    int rc = pst_notify_inner_decode(buf, len, &r);
    if (rc != PST_OK)
        cr_assert_eq(r.created, 0, "output zeroed on failure");
    return rc;
}

#define EP64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:443"

Test(notify, inner_malformed) {
    /* the well-formed inner (first row) with one thing changed per row */
    static const struct {
        raw_opts o;
        int rc;
    } cases[] = {
        /* nfields, version, type, size, n_eps, ep, wide_created, trailing */
        {{12, 1, 6, 4096, 1, "a:1", false, false}, PST_OK},
        {{12, 2, 6, 4096, 1, "a:1", false, false}, PST_E_VERSION},
        {{12, 1, 5, 4096, 1, "a:1", false, false}, PST_E_RECTYPE},
        {{13, 1, 6, 4096, 1, "a:1", false, false}, PST_E_FIELDS},
        {{12, 1, 6, 4096, 1, "a:1", false, true}, PST_E_TRAILING},
        {{12, 1, 6, 4096, 1, "a:1", true, false}, PST_E_NONCANONICAL},
        {{12, 1, 6, PST_MESSAGE_SIZE_MAX + 1ull, 1, "a:1", false, false}, PST_E_RANGE},
        {{12, 1, 6, 10, 1, "a:1", false, false}, PST_E_RANGE},
        {{12, 1, 6, 4096, 0, "a:1", false, false}, PST_E_FIELDS},
        {{12, 1, 6, 4096, 5, "a:1", false, false}, PST_E_TOOBIG},
        {{12, 1, 6, 4096, 4, "a:1", false, false}, PST_OK},
        {{12, 1, 6, 4096, 4, "no-port", false, false}, PST_E_RANGE},
        {{12, 1, 6, 4096, 4, "a" EP64, false, false}, PST_E_TOOBIG}, /* 65 */
        {{12, 1, 6, 4096, 4, EP64, false, false}, PST_OK},           /* 64 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(decode_raw(cases[i].o), cases[i].rc, "case %zu", i);
    uint8_t junk[] = {0x01};
    pst_notify_inner r;
    cr_assert_eq(pst_notify_inner_decode(junk, 1, &r), PST_E_TYPE);
    cr_assert_eq(pst_notify_inner_decode(junk, 0, &r), PST_E_TRUNCATED);
}

Test(notify, inner_verify_errors) {
    pst_notify_inner r = fixed_inner();
    cr_assert_eq(pst_notify_inner_verify(&r, NOW), PST_OK);
    cr_assert_eq(pst_notify_inner_verify(&r, NOW - PST_NOTIFY_SKEW_MAX), PST_OK);
    cr_assert_eq(pst_notify_inner_verify(&r, NOW - PST_NOTIFY_SKEW_MAX - 1), PST_E_NOTYET);
    cr_assert_eq(pst_notify_inner_verify(&r, NOW + 86399), PST_OK);
    cr_assert_eq(pst_notify_inner_verify(&r, NOW + 86400), PST_E_EXPIRED);
    pst_notify_inner w = r;
    memcpy(w.signer, recip_pk, 32); /* claims another sender */
    cr_assert_eq(pst_notify_inner_verify(&w, NOW), PST_E_SIGNATURE);
    w = r;
    w.size++;
    cr_assert_eq(pst_notify_inner_verify(&w, NOW), PST_E_SIGNATURE);
    w = r;
    cr_assert_eq(pst_notify_inner_sign(&w, recip_sk), PST_OK);
    cr_assert_arr_eq(w.signer, recip_pk, 32, "sign sets the signer");
    w.expires = 0; /* a notification must expire */
    cr_assert_eq(pst_notify_inner_verify(&w, NOW), PST_E_EXPIRED);
    w = r;
    w.created = NOW + 10;
    w.expires = NOW + 5;
    cr_assert_eq(pst_notify_inner_sign(&w, sender_sk), PST_OK);
    cr_assert_eq(pst_notify_inner_verify(&w, NOW), PST_E_RANGE);
}

/* ---- outer --------------------------------------------------------------- */

Test(notify, seal_open_roundtrip) {
    pst_notify_inner r = fixed_inner(), d;
    pst_notify o, od;
    cr_assert_eq(pst_notify_seal(&r, rbox_pk, &o), PST_OK);
    cr_assert_eq(o.stamp[0], 0);
    strcpy(o.stamp, "1:20:231114:abc::rand:1f");
    uint8_t buf[PST_NOTIFY_MAX];
    size_t len;
    cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_notify_decode(buf, len, &od), PST_OK);
    cr_assert_eq(od.sealed_len, o.sealed_len);
    cr_assert_str_eq(od.stamp, o.stamp);
    cr_assert_eq(pst_notify_open(&od, rbox_pk, rbox_sk, &d), PST_OK);
    cr_assert_eq(memcmp(&r, &d, sizeof r), 0);
    cr_assert_eq(pst_notify_inner_verify(&d, NOW), PST_OK);
    /* not deterministic: a second seal differs */
    pst_notify o2;
    cr_assert_eq(pst_notify_seal(&r, rbox_pk, &o2), PST_OK);
    cr_assert_neq(memcmp(o.sealed, o2.sealed, o.sealed_len), 0);
    /* to someone else: does not open with our key, and vice versa */
    cr_assert_eq(pst_notify_seal(&r, other_box_pk, &o2), PST_OK);
    cr_assert_eq(pst_notify_open(&o2, rbox_pk, rbox_sk, &d), PST_E_CRYPTO);
    cr_assert_eq(d.size, 0, "inner wiped on failure");
    cr_assert_eq(pst_notify_open(&o, other_box_pk, other_box_sk, &d), PST_E_CRYPTO);
    cr_assert_eq(pst_notify_open(&o2, other_box_pk, other_box_sk, &d), PST_OK);
    /* an invalid inner is not sealed */
    r.n_endpoints = 0;
    cr_assert_eq(pst_notify_seal(&r, rbox_pk, &o2), PST_E_INVAL);
    cr_assert_eq(o2.sealed_len, 0);
}

Test(notify, sealed_mutations_do_not_open) {
    pst_notify_inner r = fixed_inner(), d;
    pst_notify o;
    cr_assert_eq(pst_notify_seal(&r, rbox_pk, &o), PST_OK);
    uint8_t buf[PST_NOTIFY_MAX];
    size_t len;
    cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_OK);
    /* every truncation of the outer is rejected by decode */
    pst_notify od;
    for (size_t cut = 0; cut < len; cut++)
        cr_assert_neq(pst_notify_decode(buf, cut, &od), PST_OK, "cut %zu", cut);
    /* every change of the sealed bytes is rejected by open */
    for (size_t i = 0; i < o.sealed_len; i++) {
        const uint8_t masks[] = {0x01, 0x80, 0xff};
        for (size_t m = 0; m < 3; m++) {
            pst_notify x = o;
            x.sealed[i] ^= masks[m];
            cr_assert_eq(pst_notify_open(&x, rbox_pk, rbox_sk, &d), PST_E_CRYPTO, "byte %zu", i);
        }
    }
    /* shortened sealed part */
    pst_notify x = o;
    x.sealed_len--;
    cr_assert_eq(pst_notify_open(&x, rbox_pk, rbox_sk, &d), PST_E_CRYPTO);
    x.sealed_len = PST_SEAL_BYTES;
    cr_assert_eq(pst_notify_open(&x, rbox_pk, rbox_sk, &d), PST_E_INVAL);
}

Test(notify, sealed_garbage_that_opens_is_still_decoded_strictly) {
    /* a validly sealed box whose plaintext is not an inner record */
    pst_notify o;
    memset(&o, 0, sizeof o);
    const uint8_t junk[] = {0x93, 0x01, 0x06, 0x00, 0x00};
    cr_assert_eq(crypto_box_seal(o.sealed, junk, sizeof junk, rbox_pk), 0);
    o.sealed_len = sizeof junk + PST_SEAL_BYTES;
    pst_notify_inner d;
    cr_assert_eq(pst_notify_open(&o, rbox_pk, rbox_sk, &d), PST_E_TRAILING);
}

Test(notify, outer_limits) {
    pst_notify_inner r = fixed_inner();
    pst_notify o, od;
    cr_assert_eq(pst_notify_seal(&r, rbox_pk, &o), PST_OK);
    uint8_t buf[PST_NOTIFY_MAX + 16];
    size_t len;
    memset(o.stamp, 'x', PST_NOTIFY_STAMP_MAX);
    o.stamp[PST_NOTIFY_STAMP_MAX] = 0;
    cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_notify_decode(buf, len, &od), PST_OK);
    strcpy(o.stamp, "has space");
    cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_E_INVAL);
    o.stamp[0] = 0;
    o.sealed_len = PST_SEAL_BYTES;
    cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_E_INVAL);
    o.sealed_len = PST_NOTIFY_SEALED_MAX + 1;
    cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_E_INVAL);

    /* decode side: hand-built outers */
    uint8_t big[2048];
    memset(big, 0, sizeof big);
    pst_writer w;
    const char *stamps[] = {"has space", "tab\there", "ok:stamp"};
    const int want[] = {PST_E_RANGE, PST_E_RANGE, PST_OK};
    for (int i = 0; i < 3; i++) {
        pst_w_init(&w, big, sizeof big);
        pst_w_array(&w, 4);
        pst_w_uint(&w, 1);
        pst_w_uint(&w, 5);
        pst_w_bin(&w, o.sealed, 100);
        pst_w_cstr(&w, stamps[i]);
        cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
        cr_assert_eq(pst_notify_decode(big, len, &od), want[i], "%s", stamps[i]);
    }
    /* sealed too short, too long; stamp too long; wrong type; non-canonical */
    const size_t sealed_lens[] = {PST_SEAL_BYTES, PST_NOTIFY_SEALED_MAX + 1};
    for (int i = 0; i < 2; i++) {
        pst_w_init(&w, big, sizeof big);
        pst_w_array(&w, 4);
        pst_w_uint(&w, 1);
        pst_w_uint(&w, 5);
        pst_w_bin(&w, big + 1000, sealed_lens[i]);
        pst_w_cstr(&w, "");
        cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
        cr_assert_neq(pst_notify_decode(big, len, &od), PST_OK);
    }
    pst_w_init(&w, big, sizeof big);
    pst_w_array(&w, 4);
    pst_w_uint(&w, 1);
    pst_w_uint(&w, 5);
    pst_w_bin(&w, o.sealed, 100);
    pst_w_raw(&w, "\xd9\x00", 2); /* "" as str8 */
    cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
    cr_assert_eq(pst_notify_decode(big, len, &od), PST_E_NONCANONICAL);
    big[len - 2] = 0xa0;
    cr_assert_eq(pst_notify_decode(big, len - 1, &od), PST_OK);
    big[2] = 6;
    cr_assert_eq(pst_notify_decode(big, len - 1, &od), PST_E_RECTYPE);
    big[0] = 0x95;
    big[2] = 5;
    big[len - 1] = 0xa0;
    cr_assert_eq(pst_notify_decode(big, len, &od), PST_E_FIELDS);
    big[0] = 0x94;
    cr_assert_eq(pst_notify_decode(big, len, &od), PST_E_TRAILING);
    /* over the DHT value size before parsing anything */
    cr_assert_eq(pst_notify_decode(big, PST_NOTIFY_MAX + 1, &od), PST_E_TOOBIG);
}

Test(notify, outer_vector_opens) {
    /* a stored sealing (sealing is random): decode, open with the fixed
     * recipient key, and find the inner vector inside */
    uint8_t buf[PST_NOTIFY_MAX];
    long n = ru_read_vector("notify_outer_v1.hex", buf, sizeof buf);
    if (n < 0) {
        pst_notify_inner r = fixed_inner();
        pst_notify o;
        cr_assert_eq(pst_notify_seal(&r, rbox_pk, &o), PST_OK);
        size_t len;
        cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_OK);
        char hex[2 * PST_NOTIFY_MAX + 1];
        tu_hex_encode(buf, len, hex);
        cr_assert_fail("missing notify_outer.hex, a fresh one: %s", hex);
    }
    pst_notify o;
    pst_notify_inner d, want = fixed_inner();
    cr_assert_eq(pst_notify_decode(buf, (size_t)n, &o), PST_OK);
    cr_assert_eq(pst_notify_open(&o, rbox_pk, rbox_sk, &d), PST_OK);
    cr_assert_eq(memcmp(&d, &want, sizeof d), 0);
    uint8_t re[PST_NOTIFY_MAX];
    size_t len;
    cr_assert_eq(pst_notify_encode(&o, re, sizeof re, &len), PST_OK);
    cr_assert_eq((long)len, n);
    cr_assert_arr_eq(re, buf, len);
    /* the stamp binding strings of this vector */
    char ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    pst_notify_stamp_ext(o.sealed, o.sealed_len, ext);
    cr_log_info("notify_outer ext %s", ext);
}

Test(notify, stamp_binding_strings) {
    char ext[PST_NOTIFY_STAMP_EXT_BUFSIZE], ext2[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    /* BLAKE2b-256("") = 0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8 */
    pst_notify_stamp_ext((const uint8_t *)"", 0, ext);
    cr_assert_str_eq(ext, "pn1=0e5751c026e543b2e8ab2eb06099daa1");
    uint8_t sealed[100];
    tu_fill(sealed, sizeof sealed, 1);
    pst_notify_stamp_ext(sealed, sizeof sealed, ext);
    cr_assert_eq(strlen(ext), PST_NOTIFY_STAMP_EXT_BUFSIZE - 1);
    for (const char *p = ext; *p; p++)
        cr_assert((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '=');
    sealed[99] ^= 1;
    pst_notify_stamp_ext(sealed, sizeof sealed, ext2);
    cr_assert_str_neq(ext, ext2, "bound to every sealed byte");

    char res[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE];
    uint8_t pk[32];
    for (int i = 0; i < 32; i++)
        pk[i] = (uint8_t)(i * 8 + 1);
    pst_notify_stamp_resource(pk, res);
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(pk, fp);
    cr_assert_str_eq(res, fp, "the resource is the recipient's fingerprint");
    cr_assert_eq(strlen(res), 52);
}
