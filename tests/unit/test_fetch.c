#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pst_fetch.h"
#include "recutil.h"
#include "testutil.h"

#define NOW 1700000000u
#define SKEW PST_FETCH_SKEW_DEFAULT

static uint8_t sender_pk[32], sender_sk[64], recip_pk[32], recip_sk[64], server_pk[32],
    server_sk[64];

static void setup(void) {
    cr_assert(sodium_init() >= 0);
    tu_sign_keypair(sender_pk, sender_sk, 0x01);
    tu_sign_keypair(recip_pk, recip_sk, 0x02);
    tu_sign_keypair(server_pk, server_sk, 0x03);
}

TestSuite(fetch, .init = setup);

/* Patches created (at byte 3, a uint32 1700000000) into its uint64 form. */
static size_t widen_created(const uint8_t *in, size_t len, uint8_t *out) {
    cr_assert_eq(in[3], 0xce);
    memcpy(out, in, 3);
    out[3] = 0xcf;
    memset(out + 4, 0, 4);
    memcpy(out + 8, in + 4, len - 4);
    return len + 4;
}

/* ---- frames -------------------------------------------------------------- */

Test(fetch, frame_header) {
    uint8_t h[4];
    uint32_t len;
    pst_frame_header_write(PST_FRAME_MAX, h);
    cr_assert_eq(h[0], 0);
    cr_assert_eq(h[1], 0);
    cr_assert_eq(h[2], 0x20);
    cr_assert_eq(h[3], 0);
    cr_assert_eq(pst_frame_header_parse(h, PST_FRAME_MAX, &len), PST_OK);
    cr_assert_eq(len, PST_FRAME_MAX);
    pst_frame_header_write(PST_FRAME_MAX + 1, h);
    cr_assert_eq(pst_frame_header_parse(h, PST_FRAME_MAX, &len), PST_E_TOOBIG);
    cr_assert_eq(len, 0);
    pst_frame_header_write(0, h);
    cr_assert_eq(pst_frame_header_parse(h, PST_FRAME_MAX, &len), PST_E_TOOBIG);
    pst_frame_header_write(1, h);
    cr_assert_eq(pst_frame_header_parse(h, PST_FRAME_MAX, &len), PST_OK);
    cr_assert_eq(len, 1);
    pst_frame_header_write(0xffffffffu, h);
    cr_assert_eq(pst_frame_header_parse(h, 0xffffffffu, &len), PST_OK);
    cr_assert_eq(len, 0xffffffffu);
}

/* ---- FetchRequest -------------------------------------------------------- */

static pst_fetch_request fixed_request(void) {
    pst_fetch_request r;
    memset(&r, 0, sizeof r);
    r.created = NOW;
    r.expires = NOW + 300;
    memset(r.msg_id, 0x07, 32);
    memset(r.nonce, 0x09, 16);
    r.offset = 1000;
    cr_assert_eq(pst_fetch_request_sign(&r, recip_sk), PST_OK);
    return r;
}

static int request_verify(const pst_fetch_request *r, uint64_t now) {
    return pst_fetch_request_verify(r, now, SKEW);
}

TU_DEFINE_SIGNED_WITH(request, pst_fetch_request, request_verify, NOW)

Test(fetch, request_roundtrip_mutations_vector) {
    pst_fetch_request r = fixed_request(), d;
    cr_assert_arr_eq(r.signer, recip_pk, 32);
    uint8_t buf[PST_FETCH_REQUEST_MAX];
    size_t len = request_round_trip(&r, &d, buf, sizeof buf);
    tu_check_mutations(buf, len, request_accept, NULL);
    ru_expect_vector("fetch_request_v1.hex", buf, len);
}

Test(fetch, request_make) {
    uint8_t id[32];
    memset(id, 0x07, 32);
    uint8_t na[PST_NONCE_BYTES], nb[PST_NONCE_BYTES];
    memset(na, 0x0a, sizeof na);
    memset(nb, 0x0b, sizeof nb);
    pst_fetch_request a, b;
    cr_assert_eq(pst_fetch_request_make(&a, id, 5, NOW, na, recip_sk), PST_OK);
    cr_assert_eq(pst_fetch_request_make(&b, id, 5, NOW, nb, recip_sk), PST_OK);
    cr_assert_arr_eq(a.nonce, na, 16, "the caller's nonce");
    cr_assert_arr_eq(b.nonce, nb, 16);
    cr_assert_eq(pst_fetch_request_make(&b, id, 5, NOW, NULL, recip_sk), PST_E_INVAL);
    cr_assert_eq(pst_fetch_request_verify(&a, NOW, SKEW), PST_OK);
    cr_assert_arr_eq(a.signer, recip_pk, 32);
    cr_assert_eq(a.offset, 5);
    cr_assert_eq(pst_fetch_request_make(&a, id, PST_MESSAGE_SIZE_MAX + 1ull, NOW, na, recip_sk),
                 PST_E_INVAL);
    cr_assert_eq(a.created, 0);
}

Test(fetch, request_limits_and_malformed) {
    pst_fetch_request r = fixed_request(), d;
    uint8_t buf[512], nc[512];
    size_t len;
    /* largest request */
    r.created = UINT64_MAX;
    r.expires = UINT64_MAX;
    r.offset = PST_MESSAGE_SIZE_MAX;
    cr_assert_eq(pst_fetch_request_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_leq(len, PST_FETCH_REQUEST_MAX);
    cr_log_info("largest request: %zu", len);
    cr_assert_eq(pst_fetch_request_decode(buf, len, &d), PST_OK);
    r.offset++;
    cr_assert_eq(pst_fetch_request_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    cr_assert_eq(pst_fetch_request_sign(&r, recip_sk), PST_E_INVAL);
    r = fixed_request();
    cr_assert_eq(pst_fetch_request_encode(&r, buf, 20, &len), PST_E_NOSPACE);

    cr_assert_eq(pst_fetch_request_encode(&r, buf, sizeof buf, &len), PST_OK);
    size_t nlen = widen_created(buf, len, nc);
    cr_assert_eq(pst_fetch_request_decode(nc, nlen, &d), PST_E_NONCANONICAL);
    buf[len] = 0xc3;
    cr_assert_eq(pst_fetch_request_decode(buf, len + 1, &d), PST_E_TRAILING);
    buf[1] = 2;
    cr_assert_eq(pst_fetch_request_decode(buf, len, &d), PST_E_VERSION);
    buf[1] = 1;
    buf[2] = 8;
    cr_assert_eq(pst_fetch_request_decode(buf, len, &d), PST_E_RECTYPE);
    buf[2] = 7;
    buf[0] = 0x98; /* 8 fields announced */
    cr_assert_neq(pst_fetch_request_decode(buf, len, &d), PST_OK);
    cr_assert_eq(d.created, 0);

    /* hand-built: a 10th field; an offset over the cap */
    pst_writer w;
    for (int v = 0; v < 2; v++) {
        pst_w_init(&w, buf, sizeof buf);
        pst_w_array(&w, v == 0 ? 10 : 9);
        pst_w_uint(&w, 1);
        pst_w_uint(&w, 7);
        pst_w_uint(&w, r.created);
        pst_w_uint(&w, r.expires);
        pst_w_bin(&w, r.signer, 32);
        pst_w_bin(&w, r.msg_id, 32);
        pst_w_bin(&w, r.nonce, 16);
        pst_w_uint(&w, v == 0 ? r.offset : PST_MESSAGE_SIZE_MAX + 1ull);
        pst_w_bin(&w, r.sig, 64);
        if (v == 0)
            pst_w_uint(&w, 0);
        cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
        cr_assert_eq(pst_fetch_request_decode(buf, len, &d), v == 0 ? PST_E_FIELDS : PST_E_RANGE);
    }
}

Test(fetch, request_verify_errors) {
    pst_fetch_request r = fixed_request();
    cr_assert_eq(pst_fetch_request_verify(&r, NOW, SKEW), PST_OK);
    cr_assert_eq(pst_fetch_request_verify(&r, NOW - SKEW, SKEW), PST_OK);
    cr_assert_eq(pst_fetch_request_verify(&r, NOW - SKEW - 1, SKEW), PST_E_NOTYET);
    cr_assert_eq(pst_fetch_request_verify(&r, NOW + 299, SKEW), PST_OK);
    cr_assert_eq(pst_fetch_request_verify(&r, NOW + 300, SKEW), PST_E_EXPIRED);
    /* too old even though not yet expired */
    r.expires = NOW + 600;
    cr_assert_eq(pst_fetch_request_sign(&r, recip_sk), PST_OK);
    cr_assert_eq(pst_fetch_request_verify(&r, NOW + 301, SKEW), PST_E_EXPIRED);
    cr_assert_eq(pst_fetch_request_verify(&r, NOW + 301, 400), PST_OK);
    /* lifetime over the max */
    r.expires = NOW + PST_FETCH_LIFETIME_MAX + 1;
    cr_assert_eq(pst_fetch_request_sign(&r, recip_sk), PST_OK);
    cr_assert_eq(pst_fetch_request_verify(&r, NOW, SKEW), PST_E_RANGE);
    r.expires = NOW;
    cr_assert_eq(pst_fetch_request_verify(&r, NOW - 10, SKEW), PST_E_RANGE);
    /* wrong signer, tampered field */
    r = fixed_request();
    memcpy(r.signer, sender_pk, 32);
    cr_assert_eq(pst_fetch_request_verify(&r, NOW, SKEW), PST_E_SIGNATURE);
    r = fixed_request();
    r.nonce[0] ^= 1;
    cr_assert_eq(pst_fetch_request_verify(&r, NOW, SKEW), PST_E_SIGNATURE);
}

/* ---- FetchResponse ------------------------------------------------------- */

static pst_fetch_response fixed_response(void) {
    pst_fetch_response r;
    memset(&r, 0, sizeof r);
    r.created = NOW;
    r.expires = NOW + 300;
    memset(r.msg_id, 0x07, 32);
    r.status = PST_FETCH_OK;
    r.total_size = 4096;
    r.offset = 1000;
    cr_assert_eq(pst_fetch_response_sign(&r, server_sk), PST_OK);
    return r;
}

static int response_verify(const pst_fetch_response *r, uint64_t now) {
    return pst_fetch_response_verify(r, now, SKEW);
}

TU_DEFINE_SIGNED_WITH(response, pst_fetch_response, response_verify, NOW)

Test(fetch, response_roundtrip_mutations_vector) {
    pst_fetch_response r = fixed_response(), d;
    uint8_t buf[PST_FETCH_RESPONSE_MAX];
    size_t len = response_round_trip(&r, &d, buf, sizeof buf);
    tu_check_mutations(buf, len, response_accept, NULL);
    ru_expect_vector("fetch_response_v1.hex", buf, len);

    r.status = PST_FETCH_NOT_FOUND;
    r.total_size = 0;
    r.offset = 0;
    strcpy(r.error_text, "no such message");
    cr_assert_eq(pst_fetch_response_sign(&r, server_sk), PST_OK);
    len = response_enc(&r, buf, sizeof buf);
    tu_check_mutations(buf, len, response_accept, NULL);
    ru_expect_vector("fetch_response_error_v1.hex", buf, len);
}

Test(fetch, response_limits) {
    pst_fetch_response r = fixed_response(), d;
    uint8_t buf[1024];
    size_t len;
    r.created = UINT64_MAX;
    r.expires = UINT64_MAX;
    r.status = PST_FETCH_INTERNAL;
    r.total_size = PST_MESSAGE_SIZE_MAX;
    r.offset = PST_MESSAGE_SIZE_MAX;
    memset(r.error_text, 'e', PST_FETCH_ERROR_TEXT_MAX);
    cr_assert_eq(pst_fetch_response_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_leq(len, PST_FETCH_RESPONSE_MAX);
    cr_log_info("largest response: %zu", len);
    cr_assert_eq(pst_fetch_response_decode(buf, len, &d), PST_OK);
    memset(r.error_text, 'e', sizeof r.error_text); /* unterminated: 201+ */
    cr_assert_eq(pst_fetch_response_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r = fixed_response();
    r.status = PST_FETCH_STATUS_LAST + 1;
    cr_assert_eq(pst_fetch_response_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r = fixed_response();
    r.offset = r.total_size + 1;
    cr_assert_eq(pst_fetch_response_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r = fixed_response();
    r.total_size = PST_MESSAGE_SIZE_MAX + 1ull;
    cr_assert_eq(pst_fetch_response_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r = fixed_response();
    strcpy(r.error_text, "ok with text");
    cr_assert_eq(pst_fetch_response_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);

    /* decode side */
    const struct {
        uint64_t status, total, offset;
        const char *text;
        int want;
    } cases[] = {
        {0, 10, 10, "", PST_OK},
        {9, 10, 0, "x", PST_E_RANGE},
        {0, 10, 11, "", PST_E_RANGE},
        {0, 10, 0, "text", PST_E_RANGE},
        {1, PST_MESSAGE_SIZE_MAX + 1ull, 0, "x", PST_E_RANGE},
        {1, 0, 0, NULL, PST_E_TOOBIG}, /* 201 bytes of text */
    };
    char long_text[PST_FETCH_ERROR_TEXT_MAX + 2];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pst_writer w;
        pst_w_init(&w, buf, sizeof buf);
        pst_w_array(&w, 11);
        pst_w_uint(&w, 1);
        pst_w_uint(&w, 8);
        pst_w_uint(&w, NOW);
        pst_w_uint(&w, NOW + 1);
        pst_w_bin(&w, server_pk, 32);
        pst_w_bin(&w, r.msg_id, 32);
        pst_w_uint(&w, cases[i].status);
        pst_w_uint(&w, cases[i].total);
        pst_w_uint(&w, cases[i].offset);
        pst_w_cstr(&w, cases[i].text ? cases[i].text : long_text);
        pst_w_bin(&w, r.sig, 64);
        cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
        cr_assert_eq(pst_fetch_response_decode(buf, len, &d), cases[i].want, "case %zu", i);
    }
    uint8_t nc[1024];
    r = fixed_response();
    cr_assert_eq(pst_fetch_response_encode(&r, buf, sizeof buf, &len), PST_OK);
    size_t nlen = widen_created(buf, len, nc);
    cr_assert_eq(pst_fetch_response_decode(nc, nlen, &d), PST_E_NONCANONICAL);
}

Test(fetch, response_verify_and_match) {
    pst_fetch_request req = fixed_request();
    pst_fetch_response r = fixed_response();
    cr_assert_eq(pst_fetch_response_verify(&r, NOW, SKEW), PST_OK);
    cr_assert_eq(pst_fetch_response_matches(&r, &req, server_pk), PST_OK);
    cr_assert_eq(pst_fetch_response_matches(&r, &req, sender_pk), PST_E_SIGNER);
    req.offset = 0;
    cr_assert_eq(pst_fetch_response_matches(&r, &req, server_pk), PST_E_MISMATCH);
    req = fixed_request();
    req.msg_id[31] ^= 1;
    cr_assert_eq(pst_fetch_response_matches(&r, &req, server_pk), PST_E_MISMATCH);
    cr_assert_eq(pst_fetch_response_verify(&r, NOW + 300, SKEW), PST_E_EXPIRED);
    cr_assert_eq(pst_fetch_response_verify(&r, NOW - SKEW - 1, SKEW), PST_E_NOTYET);
    memcpy(r.signer, sender_pk, 32);
    cr_assert_eq(pst_fetch_response_verify(&r, NOW, SKEW), PST_E_SIGNATURE);
    cr_assert_str_eq(pst_fetch_status_name(PST_FETCH_OK), "ok");
    cr_assert_str_eq(pst_fetch_status_name(PST_FETCH_TOO_LARGE), "too_large");
    cr_assert_str_eq(pst_fetch_status_name(PST_FETCH_INTERNAL), "internal");
    cr_assert_str_eq(pst_fetch_status_name(99), "unknown");
}

/* ---- Receipt ------------------------------------------------------------- */

static pst_receipt fixed_receipt(void) {
    pst_receipt r;
    memset(&r, 0, sizeof r);
    r.created = NOW;
    memset(r.msg_id, 0x07, 32);
    memcpy(r.sender, sender_pk, 32);
    r.stored_at = NOW - 2;
    cr_assert_eq(pst_receipt_sign(&r, recip_sk), PST_OK);
    return r;
}

TU_DEFINE_SIGNED(receipt, pst_receipt, NOW)

Test(fetch, receipt_roundtrip_mutations_vector) {
    pst_receipt r = fixed_receipt(), d;
    cr_assert_arr_eq(r.signer, recip_pk, 32);
    uint8_t buf[PST_RECEIPT_MAX];
    size_t len = receipt_round_trip(&r, &d, buf, sizeof buf);
    tu_check_mutations(buf, len, receipt_accept, NULL);
    ru_expect_vector("receipt_v1.hex", buf, len);
}

Test(fetch, receipt_limits_and_verify) {
    pst_receipt r = fixed_receipt(), d;
    uint8_t buf[512], nc[512];
    size_t len;
    r.created = UINT64_MAX;
    r.stored_at = UINT64_MAX;
    cr_assert_eq(pst_receipt_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_leq(len, PST_RECEIPT_MAX);
    cr_log_info("largest receipt: %zu", len);
    r = fixed_receipt();
    r.expires = 1;
    cr_assert_eq(pst_receipt_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r.expires = 0;
    r.stored_at = r.created + 1;
    cr_assert_eq(pst_receipt_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    cr_assert_eq(pst_receipt_sign(&r, recip_sk), PST_E_INVAL);

    for (int v = 0; v < 2; v++) {
        pst_writer w;
        pst_w_init(&w, buf, sizeof buf);
        pst_w_array(&w, 9);
        pst_w_uint(&w, 1);
        pst_w_uint(&w, 9);
        pst_w_uint(&w, NOW);
        pst_w_uint(&w, v == 0 ? 1 : 0);
        pst_w_bin(&w, recip_pk, 32);
        pst_w_bin(&w, r.msg_id, 32);
        pst_w_bin(&w, sender_pk, 32);
        pst_w_uint(&w, v == 0 ? NOW : NOW + 1);
        pst_w_bin(&w, r.sig, 64);
        cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
        cr_assert_eq(pst_receipt_decode(buf, len, &d), PST_E_RANGE);
    }
    r = fixed_receipt();
    cr_assert_eq(pst_receipt_encode(&r, buf, sizeof buf, &len), PST_OK);
    size_t nlen = widen_created(buf, len, nc);
    cr_assert_eq(pst_receipt_decode(nc, nlen, &d), PST_E_NONCANONICAL);
    buf[2] = 7;
    cr_assert_eq(pst_receipt_decode(buf, len, &d), PST_E_RECTYPE);

    r = fixed_receipt();
    cr_assert_eq(pst_receipt_verify(&r, NOW - PST_RECEIPT_SKEW_MAX), PST_OK);
    cr_assert_eq(pst_receipt_verify(&r, NOW - PST_RECEIPT_SKEW_MAX - 1), PST_E_NOTYET);
    cr_assert_eq(pst_receipt_verify(&r, UINT64_MAX), PST_OK, "receipts do not expire");
    memcpy(r.signer, sender_pk, 32);
    cr_assert_eq(pst_receipt_verify(&r, NOW), PST_E_SIGNATURE);
}
