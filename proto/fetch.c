/* FetchRequest, FetchResponse header, Receipt and frames (see pst_fetch.h). */
#include "pst_fetch.h"

#include <string.h>

#include "sigrec.h"

#define REQUEST_FIELDS 9u
#define RESPONSE_FIELDS 11u
#define RECEIPT_FIELDS 9u

/* ---- frames -------------------------------------------------------------- */

void pst_frame_header_write(uint32_t len, uint8_t hdr[PST_FRAME_HEADER_BYTES]) {
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

int pst_frame_header_parse(const uint8_t hdr[PST_FRAME_HEADER_BYTES], uint32_t max, uint32_t *len) {
    if (len == NULL)
        return PST_E_INVAL;
    *len = 0;
    if (hdr == NULL)
        return PST_E_INVAL;
    uint32_t n =
        ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | hdr[3];
    if (n == 0 || n > max)
        return PST_E_TOOBIG;
    *len = n;
    return PST_OK;
}

/* ---- shared ------------------------------------------------------------- */

#define FETCH_LIMITS(bytes, str) PST_SIGREC_LIMITS(bytes, 1, str, PST_SIG_BYTES)

/* Short-lived exchange records: both clocks must roughly agree, so created
 * may be at most max_skew away from now either way. */
static pst_sigrec_window exchange_window(uint64_t max_skew) {
    pst_sigrec_window win = {
        .skew = max_skew, .max_age = max_skew, .lifetime_max = PST_FETCH_LIFETIME_MAX};
    return win;
}

/* ---- FetchRequest -------------------------------------------------------- */

static int request_validate(const void *p) {
    const pst_fetch_request *r = p;
    return r->offset <= PST_MESSAGE_SIZE_MAX ? PST_OK : PST_E_RANGE;
}

static void request_write(pst_writer *w, const void *p) {
    const pst_fetch_request *r = p;
    pst_w_bin(w, r->msg_id, PST_HASH_BYTES);
    pst_w_bin(w, r->nonce, PST_NONCE_BYTES);
    pst_w_uint(w, r->offset);
}

static int request_read(const msgpack_object *f, void *p) {
    pst_fetch_request *out = p;
    int rc;
    if ((rc = pst_r_bin_fixed(&f[0], PST_HASH_BYTES, out->msg_id)) != PST_OK ||
        (rc = pst_r_bin_fixed(&f[1], PST_NONCE_BYTES, out->nonce)) != PST_OK)
        return rc;
    return pst_r_uint(&f[2], PST_MESSAGE_SIZE_MAX, &out->offset);
}

static const pst_sigrec_kind request_kind = {
    PST_SIGREC_KIND(pst_fetch_request, request, PST_REC_FETCH_REQUEST, REQUEST_FIELDS,
                    FETCH_LIMITS(PST_FETCH_REQUEST_MAX, 0), UINT64_MAX)};

PST_SIGREC_DEFINE(pst_fetch_request, request_kind)

int pst_fetch_request_make(pst_fetch_request *r, const uint8_t msg_id[PST_HASH_BYTES],
                           uint64_t offset, uint64_t now, const uint8_t nonce[PST_NONCE_BYTES],
                           const uint8_t sk[PST_SIGN_SK_BYTES]) {
    if (r == NULL)
        return PST_E_INVAL;
    memset(r, 0, sizeof *r);
    if (msg_id == NULL || nonce == NULL || sk == NULL || now > UINT64_MAX - PST_FETCH_SKEW_DEFAULT)
        return PST_E_INVAL;
    r->created = now;
    r->expires = now + PST_FETCH_SKEW_DEFAULT;
    memcpy(r->msg_id, msg_id, PST_HASH_BYTES);
    memcpy(r->nonce, nonce, PST_NONCE_BYTES);
    r->offset = offset;
    int rc = pst_fetch_request_sign(r, sk);
    if (rc != PST_OK)
        memset(r, 0, sizeof *r);
    return rc;
}

int pst_fetch_request_verify(const pst_fetch_request *r, uint64_t now, uint64_t max_skew) {
    pst_sigrec_window win = exchange_window(max_skew);
    return pst_sigrec_verify(&request_kind, r, &win, now);
}

/* ---- FetchResponse ------------------------------------------------------- */

static const char *const status_names[] = {
    "ok",   "not_found", "forbidden", "bad_request", "replay",
    "busy", "expired",   "too_large", "internal",
};
_Static_assert(sizeof status_names / sizeof status_names[0] == PST_FETCH_STATUS_LAST + 1,
               "one name per status");

const char *pst_fetch_status_name(uint64_t status) {
    return status <= PST_FETCH_STATUS_LAST ? status_names[status] : "unknown";
}

static bool text_ok(const char *s, size_t max) { return strnlen(s, max + 1) <= max; }

static int response_validate(const void *p) {
    const pst_fetch_response *r = p;
    if (r->status > PST_FETCH_STATUS_LAST || r->total_size > PST_MESSAGE_SIZE_MAX ||
        r->offset > r->total_size || !text_ok(r->error_text, PST_FETCH_ERROR_TEXT_MAX))
        return PST_E_RANGE;
    /* one way to say "ok": no error text beside it */
    if (r->status == PST_FETCH_OK && r->error_text[0] != '\0')
        return PST_E_RANGE;
    return PST_OK;
}

static void response_write(pst_writer *w, const void *p) {
    const pst_fetch_response *r = p;
    pst_w_bin(w, r->msg_id, PST_HASH_BYTES);
    pst_w_uint(w, r->status);
    pst_w_uint(w, r->total_size);
    pst_w_uint(w, r->offset);
    pst_w_cstr(w, r->error_text);
}

static int response_read(const msgpack_object *f, void *p) {
    pst_fetch_response *out = p;
    int rc;
    if ((rc = pst_r_bin_fixed(&f[0], PST_HASH_BYTES, out->msg_id)) != PST_OK ||
        (rc = pst_r_uint(&f[1], PST_FETCH_STATUS_LAST, &out->status)) != PST_OK ||
        (rc = pst_r_uint(&f[2], PST_MESSAGE_SIZE_MAX, &out->total_size)) != PST_OK ||
        (rc = pst_r_uint(&f[3], PST_MESSAGE_SIZE_MAX, &out->offset)) != PST_OK)
        return rc;
    return pst_r_str_copy(&f[4], out->error_text, sizeof out->error_text);
}

static const pst_sigrec_kind response_kind = {
    PST_SIGREC_KIND(pst_fetch_response, response, PST_REC_FETCH_RESPONSE, RESPONSE_FIELDS,
                    FETCH_LIMITS(PST_FETCH_RESPONSE_MAX, PST_FETCH_ERROR_TEXT_MAX), UINT64_MAX)};

PST_SIGREC_DEFINE(pst_fetch_response, response_kind)

int pst_fetch_response_verify(const pst_fetch_response *r, uint64_t now, uint64_t max_skew) {
    pst_sigrec_window win = exchange_window(max_skew);
    return pst_sigrec_verify(&response_kind, r, &win, now);
}

int pst_fetch_response_matches(const pst_fetch_response *r, const pst_fetch_request *req,
                               const uint8_t server_pk[PST_SIGN_PK_BYTES]) {
    if (r == NULL || req == NULL || server_pk == NULL)
        return PST_E_INVAL;
    if (memcmp(r->signer, server_pk, PST_SIGN_PK_BYTES) != 0)
        return PST_E_SIGNER;
    if (memcmp(r->msg_id, req->msg_id, PST_HASH_BYTES) != 0 || r->offset != req->offset)
        return PST_E_MISMATCH;
    return PST_OK;
}

/* ---- Receipt ------------------------------------------------------------- */

static int receipt_validate(const void *p) {
    const pst_receipt *r = p;
    /* stored before the receipt was written, and a receipt never expires */
    if (r->expires != 0 || r->stored_at > r->created)
        return PST_E_RANGE;
    return PST_OK;
}

static void receipt_write(pst_writer *w, const void *p) {
    const pst_receipt *r = p;
    pst_w_bin(w, r->msg_id, PST_HASH_BYTES);
    pst_w_bin(w, r->sender, PST_SIGN_PK_BYTES);
    pst_w_uint(w, r->stored_at);
}

static int receipt_read(const msgpack_object *f, void *p) {
    pst_receipt *out = p;
    int rc;
    if ((rc = pst_r_bin_fixed(&f[0], PST_HASH_BYTES, out->msg_id)) != PST_OK ||
        (rc = pst_r_bin_fixed(&f[1], PST_SIGN_PK_BYTES, out->sender)) != PST_OK)
        return rc;
    return pst_r_uint(&f[2], UINT64_MAX, &out->stored_at);
}

static const pst_sigrec_kind receipt_kind = {PST_SIGREC_KIND(
    pst_receipt, receipt, PST_REC_RECEIPT, RECEIPT_FIELDS, FETCH_LIMITS(PST_RECEIPT_MAX, 0), 0)};

static const pst_sigrec_window receipt_window = {.skew = PST_RECEIPT_SKEW_MAX};

PST_SIGREC_DEFINE(pst_receipt, receipt_kind)
PST_SIGREC_DEFINE_VERIFY(pst_receipt, receipt_kind, receipt_window)
