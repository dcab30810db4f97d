/* FetchRequest, FetchResponse header, Receipt and frames (see pst_fetch.h). */
#include "pst_fetch.h"

#include <string.h>

#include "codec.h"

#define REQUEST_FIELDS 9u
#define RESPONSE_FIELDS 11u
#define RECEIPT_FIELDS 9u

/* pst_r_str_copy, except that an empty str never reaches memcpy: msgpack-c
 * reports a zero-length str with a NULL pointer, and memcpy(out, NULL, 0) is
 * undefined behaviour (UBSan flags it). */
static int str_copy(const msgpack_object *o, char *out, size_t cap) {
    if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == 0 && cap > 0) {
        out[0] = '\0';
        return PST_OK;
    }
    return pst_r_str_copy(o, out, cap);
}

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

/* ---- shared helpers ------------------------------------------------------ */

typedef void (*write_fn)(pst_writer *w, const void *r, bool with_sig);

static int encode_with(write_fn fn, const void *r, bool with_sig, uint8_t *out, size_t cap,
                       size_t *len) {
    pst_writer w;
    pst_w_init(&w, out, cap);
    fn(&w, r, with_sig);
    return pst_w_finish(&w, len);
}

static int sign_with(write_fn fn, const void *r, const uint8_t *sk, uint8_t *sig) {
    uint8_t body[PST_RECORD_MAX];
    size_t n;
    int rc = encode_with(fn, r, false, body, sizeof body, &n);
    if (rc == PST_OK)
        rc = pst_sign_body(body, n, sk, sig);
    return rc;
}

static int verify_with(write_fn fn, const void *r, const uint8_t *sig, const uint8_t *pk) {
    uint8_t body[PST_RECORD_MAX];
    size_t n;
    if (encode_with(fn, r, false, body, sizeof body, &n) != PST_OK)
        return PST_E_INVAL;
    return pst_verify_body(body, n, sig, pk);
}

/* Re-encodes the decoded struct and compares: rejects every non-canonical
 * form of the input. */
static int canonical_with(write_fn fn, const void *r, const uint8_t *in, size_t len) {
    uint8_t re[PST_RECORD_MAX];
    size_t n;
    int rc = encode_with(fn, r, true, re, sizeof re, &n);
    return rc == PST_OK ? pst_canonical_check(in, len, re, n) : rc;
}

static pst_limits narrow(size_t max_bytes, uint32_t max_str) {
    pst_limits lim = pst_limits_record;
    lim.max_bytes = max_bytes;
    lim.max_depth = 1;
    lim.max_str = max_str;
    lim.max_bin = PST_SIG_BYTES;
    return lim;
}

/* Short-lived exchange records: both clocks must roughly agree. */
static int check_window(uint64_t created, uint64_t expires, uint64_t now, uint64_t skew) {
    if (created > now && created - now > skew)
        return PST_E_NOTYET;
    if (now > created && now - created > skew)
        return PST_E_EXPIRED;
    if (expires <= now)
        return PST_E_EXPIRED;
    if (expires <= created || expires - created > PST_FETCH_LIFETIME_MAX)
        return PST_E_RANGE;
    return PST_OK;
}

/* ---- FetchRequest -------------------------------------------------------- */

static int request_validate(const pst_fetch_request *r) {
    return r->offset <= PST_MESSAGE_SIZE_MAX ? PST_OK : PST_E_RANGE;
}

static void request_write(pst_writer *w, const void *p, bool with_sig) {
    const pst_fetch_request *r = p;
    pst_w_array(w, with_sig ? REQUEST_FIELDS : REQUEST_FIELDS - 1);
    pst_w_uint(w, PST_PROTO_VERSION);
    pst_w_uint(w, PST_REC_FETCH_REQUEST);
    pst_w_uint(w, r->created);
    pst_w_uint(w, r->expires);
    pst_w_bin(w, r->signer, PST_SIGN_PK_BYTES);
    pst_w_bin(w, r->msg_id, PST_HASH_BYTES);
    pst_w_bin(w, r->nonce, PST_NONCE_BYTES);
    pst_w_uint(w, r->offset);
    if (with_sig)
        pst_w_bin(w, r->sig, PST_SIG_BYTES);
}

int pst_fetch_request_encode(const pst_fetch_request *r, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (r == NULL || out == NULL || len == NULL || request_validate(r) != PST_OK)
        return PST_E_INVAL;
    return encode_with(request_write, r, true, out, cap, len);
}

int pst_fetch_request_sign(pst_fetch_request *r, const uint8_t sk[PST_SIGN_SK_BYTES]) {
    if (r == NULL || sk == NULL)
        return PST_E_INVAL;
    memset(r->sig, 0, sizeof r->sig);
    if (request_validate(r) != PST_OK)
        return PST_E_INVAL;
    crypto_sign_ed25519_sk_to_pk(r->signer, sk);
    return sign_with(request_write, r, sk, r->sig);
}

int pst_fetch_request_make(pst_fetch_request *r, const uint8_t msg_id[PST_HASH_BYTES],
                           uint64_t offset, uint64_t now, const uint8_t sk[PST_SIGN_SK_BYTES]) {
    if (r == NULL)
        return PST_E_INVAL;
    memset(r, 0, sizeof *r);
    if (msg_id == NULL || sk == NULL || now > UINT64_MAX - PST_FETCH_SKEW_DEFAULT)
        return PST_E_INVAL;
    r->created = now;
    r->expires = now + PST_FETCH_SKEW_DEFAULT;
    memcpy(r->msg_id, msg_id, PST_HASH_BYTES);
    randombytes_buf(r->nonce, sizeof r->nonce);
    r->offset = offset;
    int rc = pst_fetch_request_sign(r, sk);
    if (rc != PST_OK)
        memset(r, 0, sizeof *r);
    return rc;
}

int pst_fetch_request_decode(const uint8_t *in, size_t len, pst_fetch_request *out) {
    if (out == NULL)
        return PST_E_INVAL;
    memset(out, 0, sizeof *out);
    if (in == NULL)
        return PST_E_INVAL;
    pst_limits lim = narrow(PST_FETCH_REQUEST_MAX, 0);
    pst_reader rd;
    const msgpack_object *it = NULL;
    int rc = pst_r_parse(&rd, in, len, &lim);
    if (rc == PST_OK)
        rc = pst_r_record(&rd.root, PST_REC_FETCH_REQUEST, REQUEST_FIELDS, &it);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[2], UINT64_MAX, &out->created);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[3], UINT64_MAX, &out->expires);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[4], PST_SIGN_PK_BYTES, out->signer);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[5], PST_HASH_BYTES, out->msg_id);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[6], PST_NONCE_BYTES, out->nonce);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[7], PST_MESSAGE_SIZE_MAX, &out->offset);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[8], PST_SIG_BYTES, out->sig);
    pst_r_free(&rd);
    if (rc == PST_OK)
        rc = canonical_with(request_write, out, in, len);
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int pst_fetch_request_verify(const pst_fetch_request *r, uint64_t now, uint64_t max_skew) {
    if (r == NULL || request_validate(r) != PST_OK)
        return PST_E_INVAL;
    int rc = check_window(r->created, r->expires, now, max_skew);
    return rc == PST_OK ? verify_with(request_write, r, r->sig, r->signer) : rc;
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

static int response_validate(const pst_fetch_response *r) {
    if (r->status > PST_FETCH_STATUS_LAST || r->total_size > PST_MESSAGE_SIZE_MAX ||
        r->offset > r->total_size || !text_ok(r->error_text, PST_FETCH_ERROR_TEXT_MAX))
        return PST_E_RANGE;
    /* one way to say "ok": no error text beside it */
    if (r->status == PST_FETCH_OK && r->error_text[0] != '\0')
        return PST_E_RANGE;
    return PST_OK;
}

static void response_write(pst_writer *w, const void *p, bool with_sig) {
    const pst_fetch_response *r = p;
    pst_w_array(w, with_sig ? RESPONSE_FIELDS : RESPONSE_FIELDS - 1);
    pst_w_uint(w, PST_PROTO_VERSION);
    pst_w_uint(w, PST_REC_FETCH_RESPONSE);
    pst_w_uint(w, r->created);
    pst_w_uint(w, r->expires);
    pst_w_bin(w, r->signer, PST_SIGN_PK_BYTES);
    pst_w_bin(w, r->msg_id, PST_HASH_BYTES);
    pst_w_uint(w, r->status);
    pst_w_uint(w, r->total_size);
    pst_w_uint(w, r->offset);
    pst_w_cstr(w, r->error_text);
    if (with_sig)
        pst_w_bin(w, r->sig, PST_SIG_BYTES);
}

int pst_fetch_response_encode(const pst_fetch_response *r, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (r == NULL || out == NULL || len == NULL || response_validate(r) != PST_OK)
        return PST_E_INVAL;
    return encode_with(response_write, r, true, out, cap, len);
}

int pst_fetch_response_sign(pst_fetch_response *r, const uint8_t sk[PST_SIGN_SK_BYTES]) {
    if (r == NULL || sk == NULL)
        return PST_E_INVAL;
    memset(r->sig, 0, sizeof r->sig);
    if (response_validate(r) != PST_OK)
        return PST_E_INVAL;
    crypto_sign_ed25519_sk_to_pk(r->signer, sk);
    return sign_with(response_write, r, sk, r->sig);
}

int pst_fetch_response_decode(const uint8_t *in, size_t len, pst_fetch_response *out) {
    if (out == NULL)
        return PST_E_INVAL;
    memset(out, 0, sizeof *out);
    if (in == NULL)
        return PST_E_INVAL;
    pst_limits lim = narrow(PST_FETCH_RESPONSE_MAX, PST_FETCH_ERROR_TEXT_MAX);
    pst_reader rd;
    const msgpack_object *it = NULL;
    int rc = pst_r_parse(&rd, in, len, &lim);
    if (rc == PST_OK)
        rc = pst_r_record(&rd.root, PST_REC_FETCH_RESPONSE, RESPONSE_FIELDS, &it);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[2], UINT64_MAX, &out->created);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[3], UINT64_MAX, &out->expires);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[4], PST_SIGN_PK_BYTES, out->signer);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[5], PST_HASH_BYTES, out->msg_id);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[6], PST_FETCH_STATUS_LAST, &out->status);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[7], PST_MESSAGE_SIZE_MAX, &out->total_size);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[8], PST_MESSAGE_SIZE_MAX, &out->offset);
    if (rc == PST_OK)
        rc = str_copy(&it[9], out->error_text, sizeof out->error_text);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[10], PST_SIG_BYTES, out->sig);
    pst_r_free(&rd);
    if (rc == PST_OK)
        rc = response_validate(out);
    if (rc == PST_OK)
        rc = canonical_with(response_write, out, in, len);
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int pst_fetch_response_verify(const pst_fetch_response *r, uint64_t now, uint64_t max_skew) {
    if (r == NULL || response_validate(r) != PST_OK)
        return PST_E_INVAL;
    int rc = check_window(r->created, r->expires, now, max_skew);
    return rc == PST_OK ? verify_with(response_write, r, r->sig, r->signer) : rc;
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

static int receipt_validate(const pst_receipt *r) {
    /* stored before the receipt was written, and a receipt never expires */
    if (r->expires != 0 || r->stored_at > r->created)
        return PST_E_RANGE;
    return PST_OK;
}

static void receipt_write(pst_writer *w, const void *p, bool with_sig) {
    const pst_receipt *r = p;
    pst_w_array(w, with_sig ? RECEIPT_FIELDS : RECEIPT_FIELDS - 1);
    pst_w_uint(w, PST_PROTO_VERSION);
    pst_w_uint(w, PST_REC_RECEIPT);
    pst_w_uint(w, r->created);
    pst_w_uint(w, r->expires);
    pst_w_bin(w, r->signer, PST_SIGN_PK_BYTES);
    pst_w_bin(w, r->msg_id, PST_HASH_BYTES);
    pst_w_bin(w, r->sender, PST_SIGN_PK_BYTES);
    pst_w_uint(w, r->stored_at);
    if (with_sig)
        pst_w_bin(w, r->sig, PST_SIG_BYTES);
}

int pst_receipt_encode(const pst_receipt *r, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (r == NULL || out == NULL || len == NULL || receipt_validate(r) != PST_OK)
        return PST_E_INVAL;
    return encode_with(receipt_write, r, true, out, cap, len);
}

int pst_receipt_sign(pst_receipt *r, const uint8_t sk[PST_SIGN_SK_BYTES]) {
    if (r == NULL || sk == NULL)
        return PST_E_INVAL;
    memset(r->sig, 0, sizeof r->sig);
    if (receipt_validate(r) != PST_OK)
        return PST_E_INVAL;
    crypto_sign_ed25519_sk_to_pk(r->signer, sk);
    return sign_with(receipt_write, r, sk, r->sig);
}

int pst_receipt_decode(const uint8_t *in, size_t len, pst_receipt *out) {
    if (out == NULL)
        return PST_E_INVAL;
    memset(out, 0, sizeof *out);
    if (in == NULL)
        return PST_E_INVAL;
    pst_limits lim = narrow(PST_RECEIPT_MAX, 0);
    pst_reader rd;
    const msgpack_object *it = NULL;
    int rc = pst_r_parse(&rd, in, len, &lim);
    if (rc == PST_OK)
        rc = pst_r_record(&rd.root, PST_REC_RECEIPT, RECEIPT_FIELDS, &it);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[2], UINT64_MAX, &out->created);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[3], 0, &out->expires);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[4], PST_SIGN_PK_BYTES, out->signer);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[5], PST_HASH_BYTES, out->msg_id);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[6], PST_SIGN_PK_BYTES, out->sender);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[7], UINT64_MAX, &out->stored_at);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[8], PST_SIG_BYTES, out->sig);
    pst_r_free(&rd);
    if (rc == PST_OK)
        rc = receipt_validate(out);
    if (rc == PST_OK)
        rc = canonical_with(receipt_write, out, in, len);
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int pst_receipt_verify(const pst_receipt *r, uint64_t now) {
    if (r == NULL || receipt_validate(r) != PST_OK)
        return PST_E_INVAL;
    if (r->created > now && r->created - now > PST_RECEIPT_SKEW_MAX)
        return PST_E_NOTYET;
    return verify_with(receipt_write, r, r->sig, r->signer);
}
