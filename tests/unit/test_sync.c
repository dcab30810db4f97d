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
    uint8_t buf[PST_TRUSTSYNC_MAX];
    size_t len;
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_leq(len, PST_TRUSTSYNC_MAX);
    cr_log_info("largest TrustSync: %zu bytes", len);
}

Test(sync, rules) {
    uint8_t buf[256];
    size_t len;
    pst_trustsync r = sample(), d;
    r.tier = 4;
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r = sample();
    r.tier = 0; /* removed: no pet name */
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r.petname[0] = 0;
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
        pst_w_array(&w, 6);
        pst_w_uint(&w, 1);
        pst_w_uint(&w, cases[i].type);
        pst_w_uint(&w, 5);
        pst_w_bin(&w, key, cases[i].klen);
        pst_w_uint(&w, cases[i].tier);
        pst_w_cstr(&w, cases[i].name);
        cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
        int rc = pst_trustsync_decode(buf, len, &d);
        if (cases[i].want == PST_OK)
            cr_assert_eq(rc, PST_OK, "case %zu", i);
        else
            cr_assert_neq(rc, PST_OK, "case %zu", i);
    }
}

Test(sync, armored) {
    pst_trustsync r = sample(), d;
    uint8_t buf[PST_TRUSTSYNC_MAX], raw[PST_TRUSTSYNC_MAX];
    size_t len, n;
    char text[1024];
    cr_assert_eq(pst_trustsync_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_armor_encode(PST_TRUSTSYNC_LABEL, NULL, buf, len, text, sizeof text), PST_OK);
    cr_assert_eq(pst_armor_decode(PST_TRUSTSYNC_LABEL, text, strlen(text), raw, sizeof raw, &n),
                 PST_OK);
    cr_assert_eq(pst_trustsync_decode(raw, n, &d), PST_OK);
    cr_assert_eq(d.tier, 3);
}
