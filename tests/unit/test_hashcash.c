#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pst_mint.h"
#include "testutil.h"

/* Known-answer stamps. The first three were minted by the classic tool
 * (hashcash 1.22: -b 20; -b 16 -z 12; -b 16 -z 10 -x a=b), the last two by
 * pst_hashcash_mint. Dates are 2026-11-28 UTC. */
#define KAT_CLASSIC6 "1:20:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm"
#define KAT_CLASSIC6_DATE 1795824000u
#define KAT_CLASSIC12 "1:16:261128212423:foo::zsdBqxlvohcRudi8:000000000EYQ"
#define KAT_CLASSIC12_DATE 1795901063u
#define KAT_CLASSIC10 "1:16:2611282124:foo:a=b:HC9yQ260db4agCRl:00000000Sdv"
#define KAT_CLASSIC10_DATE 1795901040u
#define KAT_OURS "1:20:261128213456:foo::ABEiM0RVZneImaq7zN3u/w:AAAAAAAAAAAAAAAAAAAAAAAAAAMhR"
#define KAT_OURS_DATE 1795901696u
#define KAT_RES64 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define KAT_EXT "pn1=0123456789abcdef0123456789abcdef"
#define KAT_OURS_EXT                                                                               \
    "1:24:261128213456:" KAT_RES64 ":" KAT_EXT ":ABEiM0RVZneImaq7zN3u/w:AAAAAAAGM/0"

static int verify_at(const char *stamp, unsigned bits, const char *res, const char *ext,
                     uint64_t now, pst_hashcash_result *out) {
    pst_hashcash_policy pol;
    pst_hashcash_policy_init(&pol, bits, res);
    pol.ext = ext;
    return pst_hashcash_verify(stamp, strlen(stamp), &pol, now, out);
}

static int verify_simple(const char *stamp, uint64_t now) {
    return verify_at(stamp, 16, "foo", NULL, now, NULL);
}

Test(hashcash, known_answer_stamps) {
    pst_hashcash_result r;
    cr_assert_eq(verify_at(KAT_CLASSIC6, 20, "foo", NULL, KAT_CLASSIC6_DATE + 3600, &r), PST_OK);
    cr_assert_eq(r.bits, 20);
    cr_assert_eq(r.date, KAT_CLASSIC6_DATE);
    cr_assert_eq(r.remember_until, KAT_CLASSIC6_DATE + PST_HASHCASH_MAX_AGE_DEFAULT);
    char hex[2 * PST_HASHCASH_SPENT_KEY_BYTES + 1];
    tu_hex_encode(r.spent_key, sizeof r.spent_key, hex);
    cr_assert_str_eq(hex, "46a62f57a3ace5a2558cb8ba026ad9bc21b2f33c0edd85d5d394fb9523018680");

    cr_assert_eq(verify_at(KAT_CLASSIC12, 16, "foo", "", KAT_CLASSIC12_DATE, &r), PST_OK);
    cr_assert_eq(r.date, KAT_CLASSIC12_DATE);
    cr_assert_eq(verify_at(KAT_CLASSIC10, 16, "foo", "a=b", KAT_CLASSIC10_DATE, &r), PST_OK);
    cr_assert_eq(r.date, KAT_CLASSIC10_DATE);
    tu_hex_encode(r.spent_key, sizeof r.spent_key, hex);
    cr_assert_str_eq(hex, "7446459dbaba00e40d9c58e477ef51505e00cd21c69ea4551aa075f08aa399eb");

    cr_assert_eq(verify_at(KAT_OURS, 20, "foo", "", KAT_OURS_DATE + 60, &r), PST_OK);
    cr_assert_eq(r.bits, 20);
    cr_assert_eq(r.date, KAT_OURS_DATE);
    cr_assert_eq(verify_at(KAT_OURS_EXT, 24, KAT_RES64, KAT_EXT, KAT_OURS_DATE, &r), PST_OK);
    cr_assert_eq(r.bits, 24);
    cr_assert_eq(pst_hashcash_count_bits(KAT_OURS_EXT, strlen(KAT_OURS_EXT)), 27);
    tu_hex_encode(r.spent_key, sizeof r.spent_key, hex);
    cr_assert_str_eq(hex, "3d16963839117d5a98ff53f46a23f3ecde10f0fd1433738f2463327d2624e3cc");
    /* A verifier may ask for less than was paid. */
    cr_assert_eq(verify_at(KAT_OURS_EXT, 1, KAT_RES64, NULL, KAT_OURS_DATE, NULL), PST_OK);
}

Test(hashcash, parse_fields) {
    pst_hashcash_fields f;
    cr_assert_eq(pst_hashcash_parse(KAT_CLASSIC10, strlen(KAT_CLASSIC10), &f), PST_OK);
    cr_assert_eq(f.bits, 16);
    cr_assert_eq(f.date, KAT_CLASSIC10_DATE);
    cr_assert_str_eq(f.date_str, "2611282124");
    cr_assert_str_eq(f.resource, "foo");
    cr_assert_str_eq(f.ext, "a=b");
    cr_assert_str_eq(f.rand, "HC9yQ260db4agCRl");
    cr_assert_str_eq(f.counter, "00000000Sdv");
    /* The length is what counts, not a NUL: a prefix of a longer buffer. */
    char buf[128];
    snprintf(buf, sizeof buf, "%sJUNK", KAT_CLASSIC6);
    cr_assert_eq(pst_hashcash_parse(buf, strlen(KAT_CLASSIC6), &f), PST_OK);
    cr_assert_str_eq(f.counter, "000000000000000dQm");
    cr_assert_eq(verify_at(KAT_CLASSIC6, 20, "foo", NULL, KAT_CLASSIC6_DATE, NULL), PST_OK);
    cr_assert_eq(pst_hashcash_parse(NULL, 5, &f), PST_E_INVAL);
    cr_assert_eq(pst_hashcash_parse("x", 1, NULL), PST_E_INVAL);
}

Test(hashcash, reject_bits) {
    /* claimed 20 but the policy wants 21 */
    cr_assert_eq(verify_at(KAT_CLASSIC6, 21, "foo", NULL, KAT_CLASSIC6_DATE, NULL),
                 PST_E_STAMP_BITS);
    /* claims more than the hash has */
    const char *liar = "1:30:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm";
    cr_assert_lt(pst_hashcash_count_bits(liar, strlen(liar)), 30);
    cr_assert_eq(verify_at(liar, 20, "foo", NULL, KAT_CLASSIC6_DATE, NULL), PST_E_STAMP_BITS);
    /* a counter that does not pay */
    const char *cheap = "1:20:261128:foo::7giJkorU2sY1CEdf:000000000000000dQn";
    cr_assert_lt(pst_hashcash_count_bits(cheap, strlen(cheap)), 20);
    cr_assert_eq(verify_at(cheap, 20, "foo", NULL, KAT_CLASSIC6_DATE, NULL), PST_E_STAMP_BITS);
    cr_assert_eq(verify_at(cheap, 0, "foo", NULL, KAT_CLASSIC6_DATE, NULL), PST_E_STAMP_BITS);
}

Test(hashcash, reject_resource_and_ext) {
    cr_assert_eq(verify_at(KAT_CLASSIC6, 20, "bar", NULL, KAT_CLASSIC6_DATE, NULL),
                 PST_E_STAMP_RESOURCE);
    cr_assert_eq(verify_at(KAT_CLASSIC6, 20, "FOO", NULL, KAT_CLASSIC6_DATE, NULL),
                 PST_E_STAMP_RESOURCE);
    cr_assert_eq(verify_at(KAT_CLASSIC6, 20, "fo", NULL, KAT_CLASSIC6_DATE, NULL),
                 PST_E_STAMP_RESOURCE);
    cr_assert_eq(verify_at(KAT_CLASSIC6, 20, "fooo", NULL, KAT_CLASSIC6_DATE, NULL),
                 PST_E_STAMP_RESOURCE);
    cr_assert_eq(verify_at(KAT_CLASSIC10, 16, "foo", "", KAT_CLASSIC10_DATE, NULL),
                 PST_E_STAMP_EXT);
    cr_assert_eq(verify_at(KAT_CLASSIC10, 16, "foo", "a=c", KAT_CLASSIC10_DATE, NULL),
                 PST_E_STAMP_EXT);
    cr_assert_eq(verify_at(KAT_CLASSIC6, 20, "foo", "a=b", KAT_CLASSIC6_DATE, NULL),
                 PST_E_STAMP_EXT);
    cr_assert_eq(verify_at(KAT_OURS_EXT, 24, KAT_RES64, "pn1=0123456789abcdef0123456789abcdee",
                           KAT_OURS_DATE, NULL),
                 PST_E_STAMP_EXT);
}

Test(hashcash, date_window) {
    const uint64_t d = KAT_OURS_DATE;
    pst_hashcash_result r;
    cr_assert_eq(verify_simple(KAT_OURS, d + PST_HASHCASH_MAX_AGE_DEFAULT), PST_OK);
    cr_assert_eq(verify_simple(KAT_OURS, d + PST_HASHCASH_MAX_AGE_DEFAULT + 1), PST_E_STAMP_DATE);
    cr_assert_eq(verify_simple(KAT_OURS, d + 400u * 86400u), PST_E_STAMP_DATE);
    cr_assert_eq(verify_simple(KAT_OURS, d - PST_HASHCASH_MAX_FUTURE_DEFAULT), PST_OK);
    cr_assert_eq(verify_simple(KAT_OURS, d - PST_HASHCASH_MAX_FUTURE_DEFAULT - 1),
                 PST_E_STAMP_DATE);
    cr_assert_eq(verify_simple(KAT_OURS, 0), PST_E_STAMP_DATE);
    /* a custom window */
    pst_hashcash_policy pol;
    pst_hashcash_policy_init(&pol, 20, "foo");
    pol.max_age = 10;
    pol.max_future = 0;
    cr_assert_eq(pst_hashcash_verify(KAT_OURS, strlen(KAT_OURS), &pol, d + 10, &r), PST_OK);
    cr_assert_eq(r.remember_until, d + 10);
    cr_assert_eq(pst_hashcash_verify(KAT_OURS, strlen(KAT_OURS), &pol, d + 11, &r),
                 PST_E_STAMP_DATE);
    cr_assert_eq(pst_hashcash_verify(KAT_OURS, strlen(KAT_OURS), &pol, d - 1, &r),
                 PST_E_STAMP_DATE);
    /* saturates instead of wrapping */
    pol.max_age = UINT64_MAX;
    cr_assert_eq(pst_hashcash_verify(KAT_OURS, strlen(KAT_OURS), &pol, d, &r), PST_OK);
    cr_assert_eq(r.remember_until, UINT64_MAX);
}

/* Every malformed stamp is rejected with PST_E_STAMP_FORMAT, before any
 * question of bits, resource or date. */
Test(hashcash, reject_malformed) {
    static const char *bad[] = {
        "",
        "1",
        "1:20:261128:foo::7giJkorU2sY1CEdf",                           /* 6 fields */
        "1:20:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm:x",      /* 8 fields */
        "1:20:261128:foo:x:7giJkorU2sY1CEdf:extra:000000000000000dQm", /* 8 fields */
        "0:20:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm",        /* version 0 */
        "2:20:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm",        /* version 2 */
        "01:20:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm",       /* version 01 */
        ":20:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm",
        "1::261128:foo::7giJkorU2sY1CEdf:000000000000000dQm",    /* empty bits */
        "1:020:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm", /* leading zero */
        "1:+20:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm",
        "1:161:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm", /* > 160 */
        "1:1000:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm",
        "1:2a:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm",
        "1:20::foo::7giJkorU2sY1CEdf:000000000000000dQm",         /* empty date */
        "1:20:2611:foo::7giJkorU2sY1CEdf:000000000000000dQm",     /* YYMM */
        "1:20:26112821:foo::7giJkorU2sY1CEdf:000000000000000dQm", /* YYMMDDhh */
        "1:20:2611281:foo::7giJkorU2sY1CEdf:000000000000000dQm",  /* odd width */
        "1:20:26112821243000:foo::7giJkorU2sY1CEdf:000000000000000dQm",
        "1:20:261328:foo::7giJkorU2sY1CEdf:000000000000000dQm",     /* month 13 */
        "1:20:261100:foo::7giJkorU2sY1CEdf:000000000000000dQm",     /* day 0 */
        "1:20:261131:foo::7giJkorU2sY1CEdf:000000000000000dQm",     /* Nov 31 */
        "1:20:250229:foo::7giJkorU2sY1CEdf:000000000000000dQm",     /* not leap */
        "1:20:2611282400:foo::7giJkorU2sY1CEdf:000000000000000dQm", /* 24:00 */
        "1:20:2611282360:foo::7giJkorU2sY1CEdf:000000000000000dQm",
        "1:20:261128235960:foo::7giJkorU2sY1CEdf:000000000000000dQm", /* leap second */
        "1:20:26112a:foo::7giJkorU2sY1CEdf:000000000000000dQm",
        "1:20:261128::7giJkorU2sY1CEdf:000000000000000dQm",           /* empty resource */
        "1:20:261128:f o::7giJkorU2sY1CEdf:000000000000000dQm",       /* space */
        "1:20:261128:f\x7fo::7giJkorU2sY1CEdf:000000000000000dQm",    /* DEL */
        "1:20:261128:f\xc3\xa9::7giJkorU2sY1CEdf:000000000000000dQm", /* UTF-8 */
        "1:20:261128:foo:a b:7giJkorU2sY1CEdf:000000000000000dQm",    /* ext space */
        "1:20:261128:foo:\t:7giJkorU2sY1CEdf:000000000000000dQm",
        "1:20:261128:foo:::000000000000000dQm",                   /* empty rand */
        "1:20:261128:foo::7giJ.orU2sY1CEdf:000000000000000dQm",   /* rand '.' */
        "1:20:261128:foo::7giJ-orU2sY1CEdf:000000000000000dQm",   /* rand '-' */
        "1:20:261128:foo::7giJkorU2sY1CEdf:",                     /* empty counter */
        "1:20:261128:foo::7giJkorU2sY1CEdf:00000000000_000dQm",   /* counter '_' */
        "1:20:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm\n", /* trailing LF */
        " 1:20:261128:foo::7giJkorU2sY1CEdf:000000000000000dQm",
    };
    pst_hashcash_fields f;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i]);
        cr_assert_eq(pst_hashcash_parse(bad[i], n, &f), PST_E_STAMP_FORMAT,
                     "parse accepted #%zu %s", i, bad[i]);
        cr_assert_eq(f.bits, 0);
        cr_assert_eq(f.resource[0], '\0');
        pst_hashcash_result r;
        memset(&r, 0xaa, sizeof r);
        cr_assert_eq(verify_at(bad[i], 0, "foo", NULL, KAT_CLASSIC6_DATE, &r), PST_E_STAMP_FORMAT,
                     "verify accepted #%zu %s", i, bad[i]);
        uint8_t zero[sizeof r];
        memset(zero, 0, sizeof zero);
        cr_assert_arr_eq(&r, zero, sizeof r, "result not zeroed on failure");
    }
    /* an embedded NUL is a bad character, not an end of string */
    const char nul[] = "1:20:261128:foo\0:7giJkorU2sY1CEdf:000000000000000dQm";
    cr_assert_eq(pst_hashcash_parse(nul, sizeof nul - 1, &f), PST_E_STAMP_FORMAT);
}

Test(hashcash, reject_overlong) {
    /* fields at their caps but over PST_HASHCASH_STAMP_MAX in total */
    char s[1024];
    char res[PST_HASHCASH_RESOURCE_MAX + 2], ext[PST_HASHCASH_EXT_MAX + 2];
    memset(res, 'r', sizeof res);
    memset(ext, 'e', sizeof ext);
    res[PST_HASHCASH_RESOURCE_MAX] = ext[PST_HASHCASH_EXT_MAX] = '\0';
    int n = snprintf(s, sizeof s, "1:20:261128:%s:%s:abc:def", res, ext);
    cr_assert_gt((size_t)n, PST_HASHCASH_STAMP_MAX);
    pst_hashcash_fields f;
    cr_assert_eq(pst_hashcash_parse(s, (size_t)n, &f), PST_E_STAMP_FORMAT);
    /* each field one over its cap (total still within the stamp cap) */
    res[PST_HASHCASH_RESOURCE_MAX] = 'r';
    res[PST_HASHCASH_RESOURCE_MAX + 1] = '\0';
    n = snprintf(s, sizeof s, "1:20:261128:%s::abc:def", res);
    cr_assert_eq(pst_hashcash_parse(s, (size_t)n, &f), PST_E_STAMP_FORMAT);
    n = snprintf(s, sizeof s, "1:20:261128:%.*s::abc:def", (int)PST_HASHCASH_RESOURCE_MAX, res);
    cr_assert_eq(pst_hashcash_parse(s, (size_t)n, &f), PST_OK);
    ext[PST_HASHCASH_EXT_MAX] = 'e';
    ext[PST_HASHCASH_EXT_MAX + 1] = '\0';
    n = snprintf(s, sizeof s, "1:20:261128:r:%s:abc:def", ext);
    cr_assert_eq(pst_hashcash_parse(s, (size_t)n, &f), PST_E_STAMP_FORMAT);
    char long_b64[PST_HASHCASH_RAND_MAX + 2];
    memset(long_b64, 'A', sizeof long_b64 - 1);
    long_b64[sizeof long_b64 - 1] = '\0';
    n = snprintf(s, sizeof s, "1:20:261128:r::%s:def", long_b64);
    cr_assert_eq(pst_hashcash_parse(s, (size_t)n, &f), PST_E_STAMP_FORMAT);
    n = snprintf(s, sizeof s, "1:20:261128:r::abc:%s", long_b64);
    cr_assert_eq(pst_hashcash_parse(s, (size_t)n, &f), PST_E_STAMP_FORMAT);
    n = snprintf(s, sizeof s, "1:20:261128:r::%.64s:%.64s", long_b64, long_b64);
    cr_assert_eq(pst_hashcash_parse(s, (size_t)n, &f), PST_OK);
    /* a length past the cap is refused before anything is read */
    memset(s, 'A', sizeof s);
    cr_assert_eq(pst_hashcash_parse(s, PST_HASHCASH_STAMP_MAX + 1, &f), PST_E_STAMP_FORMAT);
}

Test(hashcash, bad_arguments) {
    pst_hashcash_policy pol;
    pst_hashcash_policy_init(&pol, 20, NULL);
    cr_assert_eq(pst_hashcash_verify(KAT_OURS, strlen(KAT_OURS), &pol, KAT_OURS_DATE, NULL),
                 PST_E_INVAL);
    pst_hashcash_policy_init(&pol, 161, "foo");
    cr_assert_eq(pst_hashcash_verify(KAT_OURS, strlen(KAT_OURS), &pol, KAT_OURS_DATE, NULL),
                 PST_E_INVAL);
    cr_assert_eq(pst_hashcash_verify(KAT_OURS, strlen(KAT_OURS), NULL, KAT_OURS_DATE, NULL),
                 PST_E_INVAL);
    pst_hashcash_policy_init(&pol, 20, "foo");
    cr_assert_eq(pst_hashcash_verify(NULL, 10, &pol, KAT_OURS_DATE, NULL), PST_E_INVAL);
    cr_assert_eq(pol.max_age, 2u * 86400u);
    cr_assert_eq(pol.max_future, 3600u);
    cr_assert_null(pol.ext);
}

static int accept_ours(const uint8_t *in, size_t len, void *ctx) {
    (void)ctx;
    pst_hashcash_policy pol;
    pst_hashcash_policy_init(&pol, 20, "foo");
    return pst_hashcash_verify((const char *)in, len, &pol, KAT_OURS_DATE, NULL);
}

Test(hashcash, every_mutation_rejected) {
    tu_check_mutations((const uint8_t *)KAT_OURS, strlen(KAT_OURS), accept_ours, NULL);
}

Test(hashcash, dates) {
    char d[PST_HASHCASH_DATE_MAX + 1];
    pst_hashcash_fields f;
    char s[64];
    static const struct {
        uint64_t t;
        const char *want;
    } cases[] = {
        {946684800u, "000101000000"},    {951782400u, "000229000000"},
        {1709164799u, "240228235959"},   {1709208000u, "240229120000"},
        {KAT_OURS_DATE, "261128213456"}, {4102444799u, "991231235959"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(pst_hashcash_format_date(cases[i].t, d), PST_OK);
        cr_assert_str_eq(d, cases[i].want);
        int n = snprintf(s, sizeof s, "1:0:%s:r::a:b", d);
        cr_assert_eq(pst_hashcash_parse(s, (size_t)n, &f), PST_OK);
        cr_assert_eq(f.date, cases[i].t);
    }
    cr_assert_eq(pst_hashcash_format_date(946684799u, d), PST_E_RANGE);
    cr_assert_str_eq(d, "");
    cr_assert_eq(pst_hashcash_format_date(4102444800u, d), PST_E_RANGE);
}

Test(hashcash, field_valid) {
    cr_assert(pst_hashcash_field_valid("foo", false));
    cr_assert(pst_hashcash_field_valid(KAT_RES64, false));
    cr_assert_not(pst_hashcash_field_valid("", false));
    cr_assert(pst_hashcash_field_valid("", true));
    cr_assert(pst_hashcash_field_valid(KAT_EXT, true));
    cr_assert_not(pst_hashcash_field_valid("a:b", true));
    cr_assert_not(pst_hashcash_field_valid("a b", false));
    cr_assert_not(pst_hashcash_field_valid(NULL, true));
}

/* ---- minting ----------------------------------------------------------------- */

static void mint_params(pst_hashcash_mint_params *p, unsigned bits, unsigned threads,
                        uint32_t seed) {
    memset(p, 0, sizeof *p);
    p->bits = bits;
    p->resource = KAT_RES64;
    p->ext = KAT_EXT;
    p->now = KAT_OURS_DATE;
    p->threads = threads;
    tu_fill(p->rand, sizeof p->rand, seed);
}

Test(hashcash, mint_verify_roundtrip) {
    static const unsigned bits[] = {1, 8, 16, 20};
    static const unsigned threads[] = {1, 2, 4};
    uint32_t seed = 1;
    for (size_t b = 0; b < sizeof bits / sizeof bits[0]; b++) {
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
            pst_hashcash_mint_params p;
            mint_params(&p, bits[b], threads[t], seed++);
            uint64_t hashes = 0;
            p.hashes_done = &hashes;
            char out[PST_HASHCASH_STAMP_MAX + 1];
            cr_assert_eq(pst_hashcash_mint(&p, out, sizeof out), PST_OK);
            cr_assert_gt(hashes, 0);
            pst_hashcash_result r;
            cr_assert_eq(verify_at(out, bits[b], KAT_RES64, KAT_EXT, KAT_OURS_DATE, &r), PST_OK,
                         "%s", out);
            cr_assert_eq(r.bits, bits[b]);
            cr_assert_eq(r.date, KAT_OURS_DATE);
            pst_hashcash_fields f;
            cr_assert_eq(pst_hashcash_parse(out, strlen(out), &f), PST_OK);
            cr_assert_str_eq(f.date_str, "261128213456");
            char b64[64];
            sodium_bin2base64(b64, sizeof b64, p.rand, sizeof p.rand,
                              sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
            cr_assert_str_eq(f.rand, b64);
            /* the SHA-1 length padding fits after the stamp in its last block */
            cr_assert_leq(strlen(out) % 64, 55);
        }
    }
}

Test(hashcash, mint_layouts) {
    /* Every prefix length mod 64 exercises a different pad. */
    char res[80];
    for (unsigned n = 1; n <= 64; n++) {
        memset(res, 'a' + (char)(n % 26), n);
        res[n] = '\0';
        pst_hashcash_mint_params p;
        mint_params(&p, 10, 1, n);
        p.resource = res;
        p.ext = NULL;
        char out[PST_HASHCASH_STAMP_MAX + 1];
        cr_assert_eq(pst_hashcash_mint(&p, out, sizeof out), PST_OK);
        cr_assert_eq(verify_at(out, 10, res, "", KAT_OURS_DATE, NULL), PST_OK, "%s", out);
        pst_hashcash_fields f;
        cr_assert_eq(pst_hashcash_parse(out, strlen(out), &f), PST_OK);
        cr_assert_leq(strlen(f.counter), 42);
    }
}

Test(hashcash, mint_bad_arguments) {
    pst_hashcash_mint_params p;
    char out[PST_HASHCASH_STAMP_MAX + 1];
    mint_params(&p, 0, 1, 1);
    cr_assert_eq(pst_hashcash_mint(&p, out, sizeof out), PST_E_INVAL);
    mint_params(&p, PST_HASHCASH_MINT_BITS_MAX + 1, 1, 1);
    cr_assert_eq(pst_hashcash_mint(&p, out, sizeof out), PST_E_INVAL);
    mint_params(&p, 8, 1, 1);
    p.resource = "a:b";
    cr_assert_eq(pst_hashcash_mint(&p, out, sizeof out), PST_E_INVAL);
    p.resource = NULL;
    cr_assert_eq(pst_hashcash_mint(&p, out, sizeof out), PST_E_INVAL);
    mint_params(&p, 8, 1, 1);
    p.ext = "a b";
    cr_assert_eq(pst_hashcash_mint(&p, out, sizeof out), PST_E_INVAL);
    mint_params(&p, 8, 1, 1);
    p.now = 946684799u;
    cr_assert_eq(pst_hashcash_mint(&p, out, sizeof out), PST_E_RANGE);
    mint_params(&p, 8, 1, 1);
    memset(out, 'x', sizeof out);
    cr_assert_eq(pst_hashcash_mint(&p, out, 100), PST_E_NOSPACE);
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(out[i], 0);
    char big[PST_HASHCASH_RESOURCE_MAX + 1];
    memset(big, 'r', PST_HASHCASH_RESOURCE_MAX);
    big[PST_HASHCASH_RESOURCE_MAX] = '\0';
    char bigext[PST_HASHCASH_EXT_MAX + 1];
    memset(bigext, 'e', PST_HASHCASH_EXT_MAX);
    bigext[PST_HASHCASH_EXT_MAX] = '\0';
    p.resource = big;
    p.ext = bigext;
    cr_assert_eq(pst_hashcash_mint(&p, out, sizeof out), PST_E_TOOBIG);
    cr_assert_eq(pst_hashcash_mint(NULL, out, sizeof out), PST_E_INVAL);
}

typedef struct {
    pst_hashcash_mint_params p;
    char out[PST_HASHCASH_STAMP_MAX + 1];
    int rc;
    atomic_int hashing; /* set by the first progress call: the mint is under way */
} mint_job;

static void on_mint_hashing(uint64_t done, double expected, void *user) {
    (void)done;
    (void)expected;
    atomic_store(&((mint_job *)user)->hashing, 1);
}

static void *mint_thread(void *arg) {
    mint_job *j = arg;
    j->rc = pst_hashcash_mint(&j->p, j->out, sizeof j->out);
    return NULL;
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(hashcash, cancel_from_another_thread) {
    static const unsigned threads[] = {1, 2, 4};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        atomic_int cancel;
        atomic_init(&cancel, 0);
        mint_job j;
        mint_params(&j.p, 40, threads[t], 7);
        j.p.cancel = &cancel;
        j.p.progress = on_mint_hashing;
        j.p.user = &j;
        atomic_init(&j.hashing, 0);
        memset(j.out, 'x', sizeof j.out);
        pthread_t tid;
        cr_assert_eq(pthread_create(&tid, NULL, mint_thread, &j), 0);
        /* cancel mid-mint: wait (bounded) until it reports progress */
        double deadline = mono() + 30.0;
        while (!atomic_load(&j.hashing) && mono() < deadline) {
            struct timespec poll_interval = {0, 1000 * 1000};
            nanosleep(&poll_interval, NULL);
        }
        cr_assert(atomic_load(&j.hashing), "the mint never reported progress");
        double t0 = mono();
        atomic_store(&cancel, 1);
        pthread_join(tid, NULL);
        double took = mono() - t0;
        cr_assert_eq(j.rc, PST_E_CANCELLED);
        cr_assert_lt(took, 0.5, "cancel took %.3f s", took);
        for (size_t i = 0; i < sizeof j.out; i++)
            cr_assert_eq(j.out[i], 0);
    }
}

typedef struct {
    atomic_int cancel;
    unsigned calls;
    uint64_t last;
    double expected;
    pthread_t caller;
    bool wrong_thread, not_monotonic;
} progress_state;

static void on_progress(uint64_t done, double expected, void *user) {
    progress_state *s = user;
    if (!pthread_equal(pthread_self(), s->caller))
        s->wrong_thread = true;
    if (done < s->last)
        s->not_monotonic = true;
    s->last = done;
    s->expected = expected;
    if (++s->calls == 3)
        atomic_store(&s->cancel, 1);
}

Test(hashcash, progress_called_from_calling_thread) {
    static const unsigned threads[] = {1, 2};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        progress_state s;
        memset(&s, 0, sizeof s);
        atomic_init(&s.cancel, 0);
        s.caller = pthread_self();
        pst_hashcash_mint_params p;
        mint_params(&p, 40, threads[t], 9);
        p.progress = on_progress;
        p.user = &s;
        p.cancel = &s.cancel;
        uint64_t hashes = 0;
        p.hashes_done = &hashes;
        char out[PST_HASHCASH_STAMP_MAX + 1];
        cr_assert_eq(pst_hashcash_mint(&p, out, sizeof out), PST_E_CANCELLED);
        cr_assert_eq(s.calls, 3);
        cr_assert_not(s.wrong_thread);
        cr_assert_not(s.not_monotonic);
        cr_assert_geq(s.last, 3u << 22);
        cr_assert_geq(hashes, s.last);
        cr_assert_eq(s.expected, 1099511627776.0);
    }
}

Test(hashcash, spent_key_stable_and_distinct) {
    pst_hashcash_result a, b, c;
    cr_assert_eq(verify_at(KAT_OURS, 20, "foo", NULL, KAT_OURS_DATE, &a), PST_OK);
    cr_assert_eq(verify_at(KAT_OURS, 16, "foo", "", KAT_OURS_DATE + 5, &b), PST_OK);
    cr_assert_arr_eq(a.spent_key, b.spent_key, sizeof a.spent_key);
    uint8_t want[32];
    crypto_generichash(want, sizeof want, (const unsigned char *)KAT_OURS, strlen(KAT_OURS), NULL,
                       0);
    cr_assert_arr_eq(a.spent_key, want, sizeof want);
    cr_assert_eq(verify_at(KAT_CLASSIC12, 16, "foo", NULL, KAT_CLASSIC12_DATE, &c), PST_OK);
    cr_assert_arr_neq(a.spent_key, c.spent_key, sizeof a.spent_key);
    /* two mints of the same request differ by their rand, so do their keys */
    pst_hashcash_mint_params p;
    char s1[PST_HASHCASH_STAMP_MAX + 1], s2[PST_HASHCASH_STAMP_MAX + 1];
    mint_params(&p, 8, 1, 100);
    cr_assert_eq(pst_hashcash_mint(&p, s1, sizeof s1), PST_OK);
    mint_params(&p, 8, 1, 101);
    cr_assert_eq(pst_hashcash_mint(&p, s2, sizeof s2), PST_OK);
    cr_assert_str_neq(s1, s2);
    cr_assert_eq(verify_at(s1, 8, KAT_RES64, KAT_EXT, KAT_OURS_DATE, &a), PST_OK);
    cr_assert_eq(verify_at(s2, 8, KAT_RES64, KAT_EXT, KAT_OURS_DATE, &b), PST_OK);
    cr_assert_arr_neq(a.spent_key, b.spent_key, sizeof a.spent_key);
}

/* proto/'s search is pure and deterministic; the threaded mint with one
 * thread is exactly the search of counter space 0 from its first sweep. */
Test(hashcash, search_pure_and_matches_mint) {
    pst_hashcash_search s;
    uint8_t rnd[PST_HASHCASH_RAND_BYTES] = {1, 2, 3};
    char a[PST_HASHCASH_STAMP_MAX + 1], b[PST_HASHCASH_STAMP_MAX + 1];
    uint64_t na, nb;
    cr_assert_eq(pst_hashcash_search_init(&s, 12, "res", "ext", KAT_OURS_DATE, rnd), PST_OK);
    cr_assert_eq(s.len, strlen(s.stamp));
    cr_assert_eq(pst_hashcash_search_run(&s, 0, 0, 1024, a, &na), PST_OK);
    cr_assert_eq(pst_hashcash_search_run(&s, 0, 0, 1024, b, &nb), PST_OK);
    cr_assert_str_eq(a, b);
    cr_assert_eq(na, nb);
    cr_assert_geq(pst_hashcash_count_bits(a, strlen(a)), 12);
    /* another counter space gives another counter */
    cr_assert_eq(pst_hashcash_search_run(&s, 1, 0, 1024, b, &nb), PST_OK);
    cr_assert_str_neq(a, b);
    /* an empty range finds nothing and tries nothing */
    cr_assert_eq(pst_hashcash_search_run(&s, 0, 5, 0, b, &nb), PST_E_NOTFOUND);
    cr_assert_eq(nb, 0);
    cr_assert_eq(pst_hashcash_search_run(&s, PST_HASHCASH_SEARCH_IDS, 0, 1, b, &nb), PST_E_INVAL);
    cr_assert_eq(pst_hashcash_search_run(&s, 0, PST_HASHCASH_SEARCH_SWEEPS, 1, b, &nb),
                 PST_E_INVAL);
    pst_hashcash_mint_params p;
    memset(&p, 0, sizeof p);
    p.bits = 12;
    p.resource = "res";
    p.ext = "ext";
    p.now = KAT_OURS_DATE;
    memcpy(p.rand, rnd, sizeof rnd);
    p.threads = 1;
    p.hashes_done = &nb;
    char m[PST_HASHCASH_STAMP_MAX + 1];
    cr_assert_eq(pst_hashcash_mint(&p, m, sizeof m), PST_OK);
    cr_assert_str_eq(m, a);
    cr_assert_eq(nb, na);
    cr_assert_eq(pst_hashcash_search_init(&s, 0, "res", NULL, KAT_OURS_DATE, rnd), PST_E_INVAL);
    cr_assert_eq(s.len, 0);
}
