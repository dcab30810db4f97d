/* Notification records, sealing and stamp binding strings (see pst_notify.h). */
#include "pst_identity.h"
#include "pst_notify.h"

#include <string.h>

#include "sigrec.h"

#define INNER_FIELDS 12u
#define OUTER_FIELDS 4u

_Static_assert(PST_NOTIFY_MAX <= PST_DHT_VALUE_MAX, "an outer notification must fit a DHT value");
_Static_assert(PST_SEAL_BYTES == crypto_box_SEALBYTES, "crypto_box_seal overhead");

/* ---- endpoints ----------------------------------------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool port_valid(const char *p, size_t n) {
    if (n == 0 || n > 5 || p[0] == '0')
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

bool pst_notify_endpoint_valid(const char *s) {
    if (s == NULL)
        return false;
    size_t n = strnlen(s, PST_NOTIFY_ENDPOINT_MAX + 1);
    if (n == 0 || n > PST_NOTIFY_ENDPOINT_MAX)
        return false;
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return false;
    size_t hlen = (size_t)(colon - s);
    if (!port_valid(colon + 1, n - hlen - 1))
        return false;
    if (s[0] == '[') {
        /* "[v6]:port": the address is not parsed further, only its alphabet */
        if (hlen < 4 || s[hlen - 1] != ']')
            return false;
        for (size_t i = 1; i < hlen - 1; i++)
            if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
                return false;
        return true;
    }
    for (size_t i = 0; i < hlen; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

/* ---- inner --------------------------------------------------------------- */

static int inner_validate(const void *p) {
    const pst_notify_inner *r = p;
    if (r->size < PST_MESSAGE_SIZE_MIN || r->size > PST_MESSAGE_SIZE_MAX)
        return PST_E_RANGE;
    if (r->n_endpoints < 1 || r->n_endpoints > PST_NOTIFY_ENDPOINTS_MAX)
        return PST_E_RANGE;
    for (uint32_t i = 0; i < r->n_endpoints; i++)
        if (!pst_notify_endpoint_valid(r->endpoints[i]))
            return PST_E_RANGE;
    return PST_OK;
}

static void inner_write(pst_writer *w, const void *p) {
    const pst_notify_inner *r = p;
    pst_w_bin(w, r->recipient, PST_SIGN_PK_BYTES);
    pst_w_bin(w, r->msg_id, PST_HASH_BYTES);
    pst_w_uint(w, r->size);
    pst_w_array(w, r->n_endpoints);
    for (uint32_t i = 0; i < r->n_endpoints; i++)
        pst_w_cstr(w, r->endpoints[i]);
    pst_w_bin(w, r->msg_key, PST_MSGKEY_BYTES);
    pst_w_bin(w, r->sender_box_pk, PST_BOX_PK_BYTES);
}

static int inner_read(const msgpack_object *f, void *p) {
    pst_notify_inner *out = p;
    const msgpack_object *eps = NULL;
    uint32_t n = 0;
    int rc;
    if ((rc = pst_r_bin_fixed(&f[0], PST_SIGN_PK_BYTES, out->recipient)) != PST_OK ||
        (rc = pst_r_bin_fixed(&f[1], PST_HASH_BYTES, out->msg_id)) != PST_OK ||
        (rc = pst_r_uint(&f[2], PST_MESSAGE_SIZE_MAX, &out->size)) != PST_OK ||
        (rc = pst_r_array(&f[3], 1, PST_NOTIFY_ENDPOINTS_MAX, &eps, &n)) != PST_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = pst_r_str_copy(&eps[i], out->endpoints[i], sizeof out->endpoints[i])) != PST_OK)
            return rc;
        if (!pst_notify_endpoint_valid(out->endpoints[i]))
            return PST_E_RANGE;
    }
    out->n_endpoints = n;
    if ((rc = pst_r_bin_fixed(&f[4], PST_MSGKEY_BYTES, out->msg_key)) != PST_OK)
        return rc;
    return pst_r_bin_fixed(&f[5], PST_BOX_PK_BYTES, out->sender_box_pk);
}

static const pst_sigrec_kind inner_kind = {PST_SIGREC_KIND(
    pst_notify_inner, inner, PST_REC_NOTIFICATION_INNER, INNER_FIELDS,
    PST_SIGREC_LIMITS(PST_NOTIFY_INNER_MAX, 2, PST_NOTIFY_ENDPOINT_MAX, PST_SIG_BYTES),
    UINT64_MAX)};

/* Notifications always expire, with no cap on the lifetime here (the node
 * bounds how long it keeps them). */
static const pst_sigrec_window inner_window = {.skew = PST_NOTIFY_SKEW_MAX,
                                               .lifetime_max = UINT64_MAX};

PST_SIGREC_DEFINE(pst_notify_inner, inner_kind)
PST_SIGREC_DEFINE_VERIFY(pst_notify_inner, inner_kind, inner_window)

/* ---- outer --------------------------------------------------------------- */

static bool stamp_valid(const char *s) {
    size_t n = strnlen(s, PST_NOTIFY_STAMP_MAX + 1);
    if (n > PST_NOTIFY_STAMP_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

static int outer_validate(const pst_notify *r) {
    if (r->sealed_len <= PST_SEAL_BYTES || r->sealed_len > PST_NOTIFY_SEALED_MAX)
        return PST_E_RANGE;
    if (!stamp_valid(r->stamp))
        return PST_E_RANGE;
    return PST_OK;
}

int pst_notify_encode(const pst_notify *r, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (r == NULL || out == NULL || len == NULL || outer_validate(r) != PST_OK)
        return PST_E_INVAL;
    pst_writer w;
    pst_w_init(&w, out, cap);
    pst_w_array(&w, OUTER_FIELDS);
    pst_w_uint(&w, PST_PROTO_VERSION);
    pst_w_uint(&w, PST_REC_NOTIFICATION);
    pst_w_bin(&w, r->sealed, r->sealed_len);
    pst_w_cstr(&w, r->stamp);
    return pst_w_finish(&w, len);
}

int pst_notify_decode(const uint8_t *in, size_t len, pst_notify *out) {
    if (out == NULL)
        return PST_E_INVAL;
    memset(out, 0, sizeof *out);
    if (in == NULL)
        return PST_E_INVAL;
    pst_limits lim = pst_limits_record;
    lim.max_bytes = PST_NOTIFY_MAX;
    lim.max_depth = 1;
    lim.max_str = PST_NOTIFY_STAMP_MAX;
    lim.max_bin = PST_NOTIFY_SEALED_MAX;
    pst_reader rd;
    const msgpack_object *it = NULL;
    const uint8_t *sealed = NULL;
    int rc = pst_r_parse(&rd, in, len, &lim);
    if (rc == PST_OK)
        rc = pst_r_record(&rd.root, PST_REC_NOTIFICATION, OUTER_FIELDS, &it);
    if (rc == PST_OK)
        rc = pst_r_bin(&it[2], PST_NOTIFY_SEALED_MAX, &sealed, &out->sealed_len);
    if (rc == PST_OK && out->sealed_len > 0)
        memcpy(out->sealed, sealed, out->sealed_len);
    if (rc == PST_OK)
        rc = pst_r_str_copy(&it[3], out->stamp, sizeof out->stamp);
    pst_r_free(&rd);
    if (rc == PST_OK)
        rc = outer_validate(out);
    if (rc == PST_OK) {
        uint8_t re[PST_NOTIFY_MAX];
        size_t n;
        rc = pst_notify_encode(out, re, sizeof re, &n);
        if (rc == PST_OK)
            rc = pst_canonical_check(in, len, re, n);
    }
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int pst_notify_seal(const pst_notify_inner *inner, const uint8_t recipient_box_pk[PST_BOX_PK_BYTES],
                    pst_notify *out) {
    if (out == NULL)
        return PST_E_INVAL;
    memset(out, 0, sizeof *out);
    if (inner == NULL || recipient_box_pk == NULL)
        return PST_E_INVAL;
    uint8_t plain[PST_NOTIFY_INNER_MAX];
    size_t n;
    int rc = pst_notify_inner_encode(inner, plain, sizeof plain, &n);
    if (rc == PST_OK && crypto_box_seal(out->sealed, plain, n, recipient_box_pk) != 0)
        rc = PST_E_CRYPTO;
    if (rc == PST_OK)
        out->sealed_len = n + PST_SEAL_BYTES;
    else
        memset(out, 0, sizeof *out);
    sodium_memzero(plain, sizeof plain);
    return rc;
}

int pst_notify_open(const pst_notify *outer, const uint8_t recipient_box_pk[PST_BOX_PK_BYTES],
                    const uint8_t recipient_box_sk[PST_BOX_SK_BYTES], pst_notify_inner *inner) {
    if (inner == NULL)
        return PST_E_INVAL;
    sodium_memzero(inner, sizeof *inner);
    if (outer == NULL || recipient_box_pk == NULL || recipient_box_sk == NULL ||
        outer->sealed_len <= PST_SEAL_BYTES || outer->sealed_len > PST_NOTIFY_SEALED_MAX)
        return PST_E_INVAL;
    uint8_t plain[PST_NOTIFY_INNER_MAX];
    size_t n = outer->sealed_len - PST_SEAL_BYTES;
    int rc = PST_OK;
    if (crypto_box_seal_open(plain, outer->sealed, outer->sealed_len, recipient_box_pk,
                             recipient_box_sk) != 0)
        rc = PST_E_CRYPTO;
    if (rc == PST_OK)
        rc = pst_notify_inner_decode(plain, n, inner);
    sodium_memzero(plain, sizeof plain);
    return rc;
}

/* ---- stamp binding ------------------------------------------------------- */

static void hex_lower(const uint8_t *in, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

void pst_notify_stamp_ext(const uint8_t *sealed, size_t len,
                          char out[PST_NOTIFY_STAMP_EXT_BUFSIZE]) {
    uint8_t h[PST_HASH_BYTES];
    crypto_generichash(h, sizeof h, sealed, len, NULL, 0);
    memcpy(out, "pn1=", 4);
    hex_lower(h, 16, out + 4);
}

void pst_notify_stamp_resource(const uint8_t recipient_pk[PST_SIGN_PK_BYTES],
                               char out[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE]) {
    pst_fingerprint_format(recipient_pk, out);
}
