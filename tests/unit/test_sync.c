/* TrustSync records: a trust change between the devices of one identity. */
#include <criterion/criterion.h>
#include <string.h>

#include "codec.h"
#include "pst_armor.h"
#include "pst_sync.h"
#include "testutil.h"

static pst_trustsync sample(void) {
    pst_trustsync r;
    memset(&r, 0, sizeof r);
    r.created = 1700000000;
    memset(r.subject, 0x09, sizeof r.subject);
    r.tier = 3;
    strcpy(r.petname, "spam king");
    r.n_emails = 2;
    strcpy(r.emails[0], "boss@spam.example");
    strcpy(r.emails[1], "o'neil+x@spam.example");
    return r;
}

Test(sync, roundtrip_and_mutations) {
    pst_trustsync r = sample(), d;
    uint8_t buf[PST_TRUSTSYNC_MAX];
    size_t len;
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_trustsync_decode(buf, len, &d), PST_OK);
    cr_assert_eq(memcmp(&r, &d, sizeof r), 0);
    /* truncations are refused; byte changes either are refused or decode
     * to another valid record that re-encodes to exactly those bytes */
    for (size_t cut = 0; cut < len; cut++)
        cr_assert_neq(pst_trustsync_decode(buf, cut, &d), PST_OK);
    for (size_t i = 0; i < len; i++) {
        uint8_t x[PST_TRUSTSYNC_MAX], re[PST_TRUSTSYNC_MAX];
        memcpy(x, buf, len);
        x[i] ^= 0x80;
        size_t n;
        if (pst_trustsync_decode(x, len, &d) == PST_OK) {
            cr_assert_eq(pst_trustsync_encode(&d, re, sizeof re, &n), PST_OK);
            cr_assert(n == len && memcmp(re, x, n) == 0, "byte %zu: not canonical", i);
        }
    }
}

Test(sync, largest_fits) {
    pst_trustsync r = sample();
    r.created = UINT64_MAX;
    memset(r.petname, 'x', PST_TRUSTSYNC_PETNAME_MAX);
    r.petname[PST_TRUSTSYNC_PETNAME_MAX] = 0;
    r.n_emails = PST_TRUSTSYNC_EMAILS_MAX;
    for (uint32_t i = 0; i < r.n_emails; i++) {
        memset(r.emails[i], 'a', PST_TRUSTSYNC_EMAIL_MAX);
        r.emails[i][PST_TRUSTSYNC_EMAIL_MAX] = 0;
        r.emails[i][0] = (char)('a' + i); /* ascending */
        r.emails[i][1] = '@';
    }
    uint8_t buf[PST_TRUSTSYNC_MAX];
    size_t len;
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_leq(len, PST_TRUSTSYNC_MAX);
    cr_log_info("largest TrustSync: %zu bytes", len);
}

Test(sync, rules) {
    uint8_t buf[512];
    size_t len;
    pst_trustsync r = sample(), d;
    r.tier = 4;
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r = sample();
    r.tier = 0; /* removed: no pet name, no emails */
    r.n_emails = 0;
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r.petname[0] = 0;
    r.n_emails = 1;
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r.n_emails = 0;
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_OK);
    r = sample();
    strcpy(r.petname, "tab\there");
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    strcpy(r.petname, "\xc3\x28");
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    /* hand-built: wrong type, tier out of range, a bad name, a short key */
    const struct {
        uint64_t type, tier;
        const char *name;
        size_t klen;
        int want;
    } cases[] = {
        {17, 2, "ok", 32, PST_OK},        {16, 2, "ok", 32, PST_E_RECTYPE},
        {17, 9, "ok", 32, PST_E_RANGE},   {17, 0, "ok", 32, PST_E_RANGE},
        {17, 1, "a\nb", 32, PST_E_RANGE}, {17, 1, "ok", 31, PST_E_TYPE},
    };
    uint8_t key[32];
    memset(key, 1, sizeof key);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pst_writer w;
        pst_w_init(&w, buf, sizeof buf);
        pst_w_array(&w, 7);
        pst_w_uint(&w, 1);
        pst_w_uint(&w, cases[i].type);
        pst_w_uint(&w, 5);
        pst_w_bin(&w, key, cases[i].klen);
        pst_w_uint(&w, cases[i].tier);
        pst_w_cstr(&w, cases[i].name);
        pst_w_array(&w, 0);
        cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
        int rc = pst_trustsync_decode(buf, len, &d);
        if (cases[i].want == PST_OK)
            cr_assert_eq(rc, PST_OK, "case %zu", i);
        else
            cr_assert_neq(rc, PST_OK, "case %zu", i);
    }
}

/* A record without its emails field, or with a bad list, is refused. */
Test(sync, emails) {
    uint8_t buf[PST_TRUSTSYNC_MAX];
    size_t len;
    pst_trustsync r = sample(), d;
    const char *bad[] = {"Boss@spam.example", "no-at-sign", "a b@c", "a@", "x\x01@y", "\xc3\x28@y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = sample();
        strcpy(r.emails[0], bad[i]);
        r.n_emails = 1;
        cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL, "%zu", i);
    }
    r = sample();
    strcpy(r.emails[1], r.emails[0]); /* twice */
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r = sample();
    char tmp[PST_TRUSTSYNC_EMAIL_MAX + 1];
    strcpy(tmp, r.emails[0]); /* out of order */
    strcpy(r.emails[0], r.emails[1]);
    strcpy(r.emails[1], tmp);
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r = sample();
    r.n_emails = PST_TRUSTSYNC_EMAILS_MAX + 1;
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    /* hand-built: no emails field, 17 emails, unsorted, upper case, too long */
    char longest[PST_TRUSTSYNC_EMAIL_MAX + 2];
    memset(longest, 'a', sizeof longest - 1);
    longest[1] = '@';
    longest[sizeof longest - 1] = 0;
    const struct {
        uint32_t nfields, n;
        const char *e[2];
    } cases[] = {
        {6, 0, {NULL, NULL}},  {7, 17, {"a@b", NULL}},  {7, 2, {"b@c", "a@c"}},
        {7, 1, {"A@b", NULL}}, {7, 1, {longest, NULL}}, {7, 2, {"a@c", "b@c"}},
    };
    uint8_t key[32];
    memset(key, 1, sizeof key);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pst_writer w;
        pst_w_init(&w, buf, sizeof buf);
        pst_w_array(&w, cases[i].nfields);
        pst_w_uint(&w, 1);
        pst_w_uint(&w, 17);
        pst_w_uint(&w, 5);
        pst_w_bin(&w, key, 32);
        pst_w_uint(&w, 2);
        pst_w_cstr(&w, "ok");
        if (cases[i].nfields == 7) {
            pst_w_array(&w, cases[i].n);
            for (uint32_t k = 0; k < cases[i].n; k++)
                pst_w_cstr(&w, cases[i].e[k < 2 ? k : 0] ? cases[i].e[k < 2 ? k : 0] : "a@b");
        }
        cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
        int rc = pst_trustsync_decode(buf, len, &d);
        if (i + 1 == sizeof cases / sizeof cases[0]) {
            cr_assert_eq(rc, PST_OK);
            cr_assert(d.n_emails == 2 && strcmp(d.emails[1], "b@c") == 0);
        } else {
            cr_assert_neq(rc, PST_OK, "case %zu", i);
        }
    }
}

Test(sync, armored) {
    pst_trustsync r = sample(), d;
    uint8_t buf[PST_TRUSTSYNC_MAX], raw[PST_TRUSTSYNC_MAX];
    size_t len, n;
    char text[8192];
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_armor_encode(PST_TRUSTSYNC_LABEL, NULL, buf, len, text, sizeof text), PST_OK);
    cr_assert_eq(pst_armor_decode(PST_TRUSTSYNC_LABEL, text, strlen(text), raw, sizeof raw, &n),
                 PST_OK);
    cr_assert_eq(pst_trustsync_decode(raw, n, &d), PST_OK);
    cr_assert_eq(d.tier, 3);
}
