/* Notification inner records and endpoint syntax (see pst_notify.h; the
 * outer, sealing and stamp binding are in notify_outer.c). */
#include "pst_identity.h"
#include "pst_notify.h"

#include <string.h>

#include "sigrec.h"

#define INNER_FIELDS 12u

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

static int body_validate(const pst_notify_inner *r) {
    if (r->size < PST_MESSAGE_SIZE_MIN || r->size > PST_MESSAGE_SIZE_MAX)
        return PST_E_RANGE;
    if (r->n_endpoints < 1 || r->n_endpoints > PST_NOTIFY_ENDPOINTS_MAX)
        return PST_E_RANGE;
    for (uint32_t i = 0; i < r->n_endpoints; i++)
        if (!pst_notify_endpoint_valid(r->endpoints[i]))
            return PST_E_RANGE;
    return PST_OK;
}

/* Type 6 carries no flags. */
static int inner_validate(const void *p) {
    const pst_notify_inner *r = p;
    return r->flags != 0 ? PST_E_RANGE : body_validate(r);
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

/* Type 16: the same body after the sender's identity key and the flags,
 * for an inner signed by one of the sender's device keys or carrying
 * flags. An identity signing for itself without flags has exactly one
 * spelling, type 6: type 16 refuses it. */
static int inner_dev_validate(const void *p) {
    const pst_notify_inner *r = p;
    if (sodium_is_zero(r->sender, PST_SIGN_PK_BYTES) ||
        (memcmp(r->sender, r->signer, PST_SIGN_PK_BYTES) == 0 && r->flags == 0))
        return PST_E_NONCANONICAL;
    if ((r->flags & ~PST_NOTIFY_FLAGS_ALL) != 0 ||
        (r->flags & PST_NOTIFY_FLAGS_ALL) == PST_NOTIFY_FLAGS_ALL)
        return PST_E_RANGE; /* unknown, or two sync kinds at once */
    return body_validate(r);
}

static void inner_dev_write(pst_writer *w, const void *p) {
    const pst_notify_inner *r = p;
    pst_w_bin(w, r->sender, PST_SIGN_PK_BYTES);
    pst_w_uint(w, r->flags);
    inner_write(w, p);
}

static int inner_dev_read(const msgpack_object *f, void *p) {
    pst_notify_inner *out = p;
    uint64_t flags = 0;
    int rc = pst_r_bin_fixed(&f[0], PST_SIGN_PK_BYTES, out->sender);
    if (rc == PST_OK)
        rc = pst_r_uint(&f[1], UINT32_MAX, &flags);
    out->flags = (uint32_t)flags;
    return rc == PST_OK ? inner_read(f + 2, p) : rc;
}

static const pst_sigrec_kind inner_dev_kind = {PST_SIGREC_KIND(
    pst_notify_inner, inner_dev, PST_REC_NOTIFICATION_INNER_DEV, INNER_FIELDS + 2u,
    PST_SIGREC_LIMITS(PST_NOTIFY_INNER_MAX, 2, PST_NOTIFY_ENDPOINT_MAX, PST_SIG_BYTES),
    UINT64_MAX)};

/* Notifications always expire, with no cap on the lifetime here (the node
 * bounds how long it keeps them). */
static const pst_sigrec_window inner_window = {.skew = PST_NOTIFY_SKEW_MAX,
                                               .lifetime_max = UINT64_MAX};

/* An identity that signs itself without flags leaves sender zero or equal
 * to signer: type 6. Anything else (a device signing for sender, or flags)
 * is type 16. */
static bool is_device_signed(const pst_notify_inner *r) {
    return r->flags != 0 || (!sodium_is_zero(r->sender, PST_SIGN_PK_BYTES) &&
                             memcmp(r->sender, r->signer, PST_SIGN_PK_BYTES) != 0);
}

int pst_notify_inner_encode(const pst_notify_inner *r, uint8_t *out, size_t cap, size_t *len) {
    if (r == NULL) {
        if (len)
            *len = 0;
        return PST_E_INVAL;
    }
    return pst_sigrec_encode(is_device_signed(r) ? &inner_dev_kind : &inner_kind, r, true, out, cap,
                             len);
}

int pst_notify_inner_sign(pst_notify_inner *r, const uint8_t sk[PST_SIGN_SK_BYTES]) {
    if (r == NULL || sk == NULL)
        return PST_E_INVAL;
    uint8_t pk[PST_SIGN_PK_BYTES];
    crypto_sign_ed25519_sk_to_pk(pk, sk);
    if (sodium_is_zero(r->sender, PST_SIGN_PK_BYTES))
        memcpy(r->sender, pk, PST_SIGN_PK_BYTES);
    bool dev = r->flags != 0 || memcmp(r->sender, pk, PST_SIGN_PK_BYTES) != 0;
    return pst_sigrec_sign(dev ? &inner_dev_kind : &inner_kind, r, sk);
}

int pst_notify_inner_decode(const uint8_t *in, size_t len, pst_notify_inner *out) {
    int rc = pst_sigrec_decode(&inner_kind, in, len, out);
    if (rc == PST_E_RECTYPE)
        rc = pst_sigrec_decode(&inner_dev_kind, in, len, out);
    else if (rc == PST_OK)
        memcpy(out->sender, out->signer, PST_SIGN_PK_BYTES);
    return rc;
}

int pst_notify_inner_verify(const pst_notify_inner *r, uint64_t now) {
    if (r == NULL)
        return PST_E_INVAL;
    return pst_sigrec_verify(is_device_signed(r) ? &inner_dev_kind : &inner_kind, r, &inner_window,
                             now);
}
