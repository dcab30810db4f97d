/* Hint (type 18): the notification a sender hands to the recipient's fetch
 * endpoint beside its DHT put (proto/hint.c, docs/PROTOCOL.md "Hint"). */
#include <criterion/criterion.h>
#include <string.h>

#include "codec.h"
#include "pst_hint.h"
#include "recutil.h"
#include "testutil.h"

static uint8_t recip_pk[32], recip_sk[64];

static void setup(void) {
    cr_assert(sodium_init() >= 0);
    tu_sign_keypair(recip_pk, recip_sk, 0x02);
}

TestSuite(hint, .init = setup);

static pst_hint sample(size_t n) {
    pst_hint h;
    memset(&h, 0, sizeof h);
    memcpy(h.recipient, recip_pk, sizeof h.recipient);
    h.notification_len = n;
    for (size_t i = 0; i < n; i++)
        h.notification[i] = (uint8_t)(i * 7 + 1);
    return h;
}

static size_t enc(const pst_hint *h, uint8_t *out, size_t cap) {
    size_t len = 0;
    cr_assert_eq(pst_hint_encode(h, out, cap, &len), PST_OK);
    return len;
}

static bool zeroed(const pst_hint *h) {
    static const pst_hint zero;
    return memcmp(h, &zero, sizeof zero) == 0;
}

Test(hint, round_trip_every_size_class) {
    /* bin 8 and bin 16 headers, the smallest and the largest notification */
    size_t sizes[] = {1, 255, 256, 349, PST_NOTIFY_MAX};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        pst_hint h = sample(sizes[k]), back;
        uint8_t buf[PST_HINT_MAX];
        size_t len = enc(&h, buf, sizeof buf);
        cr_assert_leq(len, PST_HINT_MAX);
        cr_assert_eq(pst_hint_decode(buf, len, &back), PST_OK);
        cr_assert_arr_eq(&back, &h, sizeof h);
    }
    pst_hint big = sample(PST_NOTIFY_MAX);
    uint8_t buf[PST_HINT_MAX + 8];
    cr_assert_eq(enc(&big, buf, sizeof buf), PST_HINT_MAX, "the largest hint is PST_HINT_MAX");
}

Test(hint, vector) {
    /* the notify_outer_v1 notification, hinted to the 02*32 recipient */
    uint8_t outer[PST_NOTIFY_MAX];
    long n = ru_read_vector("notify_outer_v1.hex", outer, sizeof outer);
    cr_assert_gt(n, 0);
    pst_hint h;
    memset(&h, 0, sizeof h);
    memcpy(h.recipient, recip_pk, 32);
    memcpy(h.notification, outer, (size_t)n);
    h.notification_len = (size_t)n;
    uint8_t buf[PST_HINT_MAX];
    size_t len = enc(&h, buf, sizeof buf);
    ru_check_vector("hint_v1.hex", "Hint: notify_outer_v1 for recipient 02*32", buf, len);
    pst_hint back;
    cr_assert_eq(pst_hint_decode(buf, len, &back), PST_OK);
    cr_assert_eq(back.notification_len, (size_t)n);
}

static int hint_accept(const uint8_t *in, size_t len, void *ctx) {
    (void)ctx;
    pst_hint h;
    int rc = pst_hint_decode(in, len, &h);
    if (rc != PST_OK)
        cr_assert(zeroed(&h), "output not zeroed on failure");
    return rc == PST_OK ? 0 : rc;
}

Test(hint, truncations_and_trailing) {
    pst_hint h = sample(300);
    uint8_t buf[PST_HINT_MAX + 1];
    size_t len = enc(&h, buf, sizeof buf);
    for (size_t k = 0; k < len; k++)
        cr_assert_neq(hint_accept(buf, k, NULL), 0, "a %zu-byte prefix was accepted", k);
    buf[len] = 0x00;
    cr_assert_eq(hint_accept(buf, len + 1, NULL), PST_E_TRAILING);
}

Test(hint, mutations_of_the_header_are_refused) {
    pst_hint h = sample(40), out;
    uint8_t buf[PST_HINT_MAX];
    size_t len = enc(&h, buf, sizeof buf);
    /* every byte outside the two payloads: array, version, type, bin headers */
    size_t header[] = {0, 1, 2, 3, 4, 37, 38};
    for (size_t k = 0; k < sizeof header / sizeof header[0]; k++) {
        uint8_t m[PST_HINT_MAX];
        memcpy(m, buf, len);
        m[header[k]] ^= 0x01;
        cr_assert_neq(pst_hint_decode(m, len, &out), PST_OK, "byte %zu changed", header[k]);
        cr_assert(zeroed(&out));
    }
}

Test(hint, field_rules) {
    pst_hint h = sample(20), out;
    uint8_t buf[PST_HINT_MAX], m[PST_HINT_MAX + 64];
    size_t len = enc(&h, buf, sizeof buf);
    ru_raw r;
    /* a 31-byte recipient */
    r = ru_raw_bin(recip_pk, 31);
    size_t ml = ru_with_field(buf, len, 2, r.b, r.n, m, sizeof m);
    cr_assert_eq(pst_hint_decode(m, ml, &out), PST_E_RANGE);
    /* the recipient as a str */
    r = ru_raw_str("0123456789abcdef0123456789abcdef");
    ml = ru_with_field(buf, len, 2, r.b, r.n, m, sizeof m);
    cr_assert_eq(pst_hint_decode(m, ml, &out), PST_E_TYPE);
    /* an empty notification */
    r = ru_raw_bin("", 0);
    ml = ru_with_field(buf, len, 3, r.b, r.n, m, sizeof m);
    cr_assert_eq(pst_hint_decode(m, ml, &out), PST_E_RANGE);
    /* a notification one byte over PST_NOTIFY_MAX */
    static uint8_t over[PST_NOTIFY_MAX + 1];
    r = ru_raw_bin(over, sizeof over);
    ml = ru_with_field(buf, len, 3, r.b, r.n, m, sizeof m);
    cr_assert_eq(pst_hint_decode(m, ml, &out), PST_E_TOOBIG);
    /* a field less, a field more */
    ml = ru_with_field(buf, len, 3, NULL, 0, m, sizeof m);
    cr_assert_eq(pst_hint_decode(m, ml, &out), PST_E_FIELDS);
    r = ru_raw_uint(0);
    ml = ru_with_field(buf, len, 4, r.b, r.n, m, sizeof m);
    cr_assert_eq(pst_hint_decode(m, ml, &out), PST_E_FIELDS);
    /* another record type, another version */
    memcpy(m, buf, len);
    m[2] = PST_REC_RECEIPT;
    cr_assert_eq(pst_hint_decode(m, len, &out), PST_E_RECTYPE);
    m[2] = PST_REC_HINT;
    m[1] = 2;
    cr_assert_eq(pst_hint_decode(m, len, &out), PST_E_VERSION);
    cr_assert(zeroed(&out));
}

Test(hint, noncanonical_length_header) {
    /* the 20-byte notification with a bin 16 header instead of bin 8 */
    pst_hint h = sample(20), out;
    uint8_t buf[PST_HINT_MAX], m[PST_HINT_MAX];
    size_t len = enc(&h, buf, sizeof buf);
    cr_assert_eq(buf[37], 0xc4);
    memcpy(m, buf, 37);
    m[37] = 0xc5;
    m[38] = 0;
    m[39] = 20;
    memcpy(m + 40, buf + 39, len - 39);
    cr_assert_eq(pst_hint_decode(m, len + 1, &out), PST_E_NONCANONICAL);
    cr_assert(zeroed(&out));
}

Test(hint, oversize_input) {
    static uint8_t big[PST_HINT_MAX + 1];
    pst_hint out;
    memset(big, 0x90, sizeof big);
    cr_assert_eq(pst_hint_decode(big, sizeof big, &out), PST_E_TOOBIG);
}

Test(hint, encode_errors) {
    pst_hint h = sample(0);
    uint8_t buf[PST_HINT_MAX];
    size_t len = 99;
    cr_assert_eq(pst_hint_encode(&h, buf, sizeof buf, &len), PST_E_INVAL);
    cr_assert_eq(len, 0);
    h = sample(PST_NOTIFY_MAX);
    h.notification_len = PST_NOTIFY_MAX + 1;
    cr_assert_eq(pst_hint_encode(&h, buf, sizeof buf, &len), PST_E_INVAL);
    h = sample(100);
    cr_assert_eq(pst_hint_encode(&h, buf, 50, &len), PST_E_NOSPACE);
    cr_assert_eq(len, 0);
    cr_assert_eq(pst_hint_encode(NULL, buf, sizeof buf, &len), PST_E_INVAL);
    pst_hint out;
    cr_assert_eq(pst_hint_decode(NULL, 3, &out), PST_E_INVAL);
}
