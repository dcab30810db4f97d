/* Revocation (type 3): see pst_records.h.
 *
 * Two ways to sign: the revoked identity key itself (auth empty), or the
 * offline revocation key, in which case auth carries the identity key's
 * signature over that revocation key. The auth is made at init time, so the
 * offline key can revoke after the identity key is lost, and anyone can check
 * such a revocation without fetching the key record. */
#include "pst_records.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"

/* The decoder's own rule (UTF-8, no NUL, bounded), so that encode never
 * produces what decode refuses. */
static bool text_ok(const char *s, size_t n) {
    msgpack_object o;
    const char *p;
    size_t m;
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t)n;
    return pst_r_str(&o, PST_REVOCATION_REASON_TEXT_MAX, &p, &m) == PST_OK;
}

static bool fields_ok(const pst_revocation *r) {
    size_t tlen = strnlen(r->reason_text, PST_REVOCATION_REASON_TEXT_MAX + 1);
    if (r->expires != 0 || r->reason > PST_REVOKE_REASON_MAX ||
        tlen > PST_REVOCATION_REASON_TEXT_MAX || !text_ok(r->reason_text, tlen))
        return false;
    /* a key cannot be replaced by itself */
    if (r->has_replacement && memcmp(r->replacement, r->revoked_key, PST_SIGN_PK_BYTES) == 0)
        return false;
    return true;
}

static int rev_to(const pst_revocation *r, bool with_sig, uint8_t *out, size_t cap, size_t *len) {
    pst_writer w;
    *len = 0;
    if (out == NULL || !fields_ok(r)) {
        if (out != NULL && cap > 0)
            memset(out, 0, cap);
        return PST_E_INVAL;
    }
    pst_w_init(&w, out, cap);
    pst_w_array(&w, PST_REVOCATION_FIELDS - (with_sig ? 0 : 1));
    pst_w_uint(&w, PST_PROTO_VERSION);
    pst_w_uint(&w, PST_REC_REVOCATION);
    pst_w_uint(&w, r->created);
    pst_w_uint(&w, r->expires);
    pst_w_bin(&w, r->signer, PST_SIGN_PK_BYTES);
    pst_w_bin(&w, r->revoked_key, PST_SIGN_PK_BYTES);
    pst_w_uint(&w, r->reason);
    pst_w_cstr(&w, r->reason_text);
    pst_w_bin(&w, r->replacement, r->has_replacement ? PST_SIGN_PK_BYTES : 0);
    pst_w_bin(&w, r->auth, r->has_auth ? PST_SIG_BYTES : 0);
    if (with_sig)
        pst_w_bin(&w, r->sig, PST_SIG_BYTES);
    int rc = pst_w_finish(&w, len);
    if (rc != PST_OK && cap > 0)
        memset(out, 0, cap);
    return rc;
}

int pst_revocation_encode(const pst_revocation *r, uint8_t *out, size_t cap, size_t *len) {
    return rev_to(r, true, out, cap, len);
}

int pst_revocation_sign(pst_revocation *r, const uint8_t sk[PST_SIGN_SK_BYTES]) {
    uint8_t body[PST_DHT_VALUE_MAX];
    size_t len;
    memcpy(r->signer, sk + PST_SEED_BYTES, PST_SIGN_PK_BYTES);
    int rc = rev_to(r, false, body, sizeof body, &len);
    if (rc == PST_OK)
        rc = pst_sign_body(body, len, sk, r->sig);
    return rc == PST_E_NOSPACE ? PST_E_INVAL : rc;
}

/* bin of exactly 0 or n bytes */
static int read_optional(const msgpack_object *o, size_t n, uint8_t *out, bool *present) {
    const uint8_t *p;
    size_t len;
    int rc = pst_r_bin(o, n, &p, &len);
    if (rc != PST_OK)
        return rc;
    if (len != 0 && len != n)
        return PST_E_RANGE;
    *present = len != 0;
    if (len != 0)
        memcpy(out, p, n);
    return PST_OK;
}

int pst_revocation_decode(const uint8_t *in, size_t len, pst_revocation *out) {
    pst_limits lim = pst_limits_record;
    pst_reader r;
    const msgpack_object *it;
    uint8_t re[PST_DHT_VALUE_MAX];
    size_t re_len;

    /* as every DHT record (see keyrec.c): field caps are checked per field */
    lim.max_bytes = PST_DHT_VALUE_MAX;
    lim.max_str = PST_ADDRESS_MAX;
    lim.max_bin = PST_SIG_BYTES;
    memset(out, 0, sizeof *out);
    int rc = pst_r_parse(&r, in, len, &lim);
    if (rc != PST_OK ||
        (rc = pst_r_record(&r.root, PST_REC_REVOCATION, PST_REVOCATION_FIELDS, &it)) != PST_OK ||
        (rc = pst_r_uint(&it[2], UINT64_MAX, &out->created)) != PST_OK ||
        (rc = pst_r_uint(&it[3], 0, &out->expires)) != PST_OK ||
        (rc = pst_r_bin_fixed(&it[4], PST_SIGN_PK_BYTES, out->signer)) != PST_OK ||
        (rc = pst_r_bin_fixed(&it[5], PST_SIGN_PK_BYTES, out->revoked_key)) != PST_OK ||
        (rc = pst_r_uint(&it[6], PST_REVOKE_REASON_MAX, &out->reason)) != PST_OK ||
        (rc = pst_r_str_copy(&it[7], out->reason_text, sizeof out->reason_text)) != PST_OK ||
        (rc = read_optional(&it[8], PST_SIGN_PK_BYTES, out->replacement, &out->has_replacement)) !=
            PST_OK ||
        (rc = read_optional(&it[9], PST_SIG_BYTES, out->auth, &out->has_auth)) != PST_OK ||
        (rc = pst_r_bin_fixed(&it[10], PST_SIG_BYTES, out->sig)) != PST_OK)
        goto done;
    rc = PST_E_RANGE;
    if (!fields_ok(out))
        goto done;
    rc = pst_revocation_encode(out, re, sizeof re, &re_len);
    if (rc == PST_OK)
        rc = pst_canonical_check(in, len, re, re_len);
    else
        rc = PST_E_NONCANONICAL;
done:
    pst_r_free(&r);
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int pst_revocation_verify(const pst_revocation *r, uint64_t now) {
    uint8_t body[PST_DHT_VALUE_MAX];
    size_t len;
    if (r->created > now && r->created - now > PST_CLOCK_SKEW_MAX)
        return PST_E_NOTYET;
    bool self = memcmp(r->signer, r->revoked_key, PST_SIGN_PK_BYTES) == 0;
    if (!r->has_auth && !self)
        return PST_E_SIGNER;
    if (r->has_auth) {
        /* a key authorising itself would make auth meaningless */
        if (self)
            return PST_E_SIGNER;
        int rc = pst_revocation_auth_verify(r->revoked_key, r->signer, r->auth);
        if (rc != PST_OK)
            return rc;
    }
    if (rev_to(r, false, body, sizeof body, &len) != PST_OK)
        return PST_E_INVAL;
    return pst_verify_body(body, len, r->sig, r->signer);
}

int pst_revocation_id(const pst_revocation *r, uint8_t id[PST_HASH_BYTES]) {
    uint8_t enc[PST_DHT_VALUE_MAX];
    size_t len;
    int rc = rev_to(r, true, enc, sizeof enc, &len);
    if (rc != PST_OK) {
        memset(id, 0, PST_HASH_BYTES);
        return rc == PST_E_NOSPACE ? PST_E_INVAL : rc;
    }
    crypto_generichash(id, PST_HASH_BYTES, enc, len, NULL, 0);
    return PST_OK;
}

static void auth_message(const uint8_t revocation_pk[PST_SIGN_PK_BYTES],
                         uint8_t msg[PST_REVKEY_AUTH_CONTEXT_LEN + PST_SIGN_PK_BYTES]) {
    memcpy(msg, PST_REVKEY_AUTH_CONTEXT, PST_REVKEY_AUTH_CONTEXT_LEN);
    memcpy(msg + PST_REVKEY_AUTH_CONTEXT_LEN, revocation_pk, PST_SIGN_PK_BYTES);
}

int pst_revocation_auth_make(const uint8_t identity_sk[PST_SIGN_SK_BYTES],
                             const uint8_t revocation_pk[PST_SIGN_PK_BYTES],
                             uint8_t auth[PST_SIG_BYTES]) {
    uint8_t msg[PST_REVKEY_AUTH_CONTEXT_LEN + PST_SIGN_PK_BYTES];
    auth_message(revocation_pk, msg);
    if (crypto_sign_detached(auth, NULL, msg, sizeof msg, identity_sk) != 0) {
        memset(auth, 0, PST_SIG_BYTES);
        return PST_E_CRYPTO;
    }
    return PST_OK;
}

int pst_revocation_auth_verify(const uint8_t identity_pk[PST_SIGN_PK_BYTES],
                               const uint8_t revocation_pk[PST_SIGN_PK_BYTES],
                               const uint8_t auth[PST_SIG_BYTES]) {
    uint8_t msg[PST_REVKEY_AUTH_CONTEXT_LEN + PST_SIGN_PK_BYTES];
    auth_message(revocation_pk, msg);
    if (crypto_sign_verify_detached(auth, msg, sizeof msg, identity_pk) != 0)
        return PST_E_SIGNER;
    return PST_OK;
}

static int build(pst_revocation *out, const uint8_t revoked[PST_SIGN_PK_BYTES], const uint8_t *auth,
                 const uint8_t sk[PST_SIGN_SK_BYTES], uint64_t created, pst_revoke_reason reason,
                 const char *reason_text, const uint8_t *replacement) {
    memset(out, 0, sizeof *out);
    int rc = PST_E_INVAL;
    if (reason_text == NULL)
        reason_text = "";
    size_t tlen = strnlen(reason_text, PST_REVOCATION_REASON_TEXT_MAX + 1);
    if (tlen > PST_REVOCATION_REASON_TEXT_MAX)
        goto fail;
    out->created = created;
    memcpy(out->revoked_key, revoked, PST_SIGN_PK_BYTES);
    out->reason = (uint64_t)reason;
    memcpy(out->reason_text, reason_text, tlen);
    if (replacement != NULL) {
        out->has_replacement = true;
        memcpy(out->replacement, replacement, PST_SIGN_PK_BYTES);
    }
    if (auth != NULL) {
        out->has_auth = true;
        memcpy(out->auth, auth, PST_SIG_BYTES);
    }
    if ((rc = pst_revocation_sign(out, sk)) == PST_OK)
        return PST_OK;
fail:
    memset(out, 0, sizeof *out);
    return rc;
}

int pst_revocation_build_self(pst_revocation *out, const uint8_t identity_sk[PST_SIGN_SK_BYTES],
                              uint64_t created, pst_revoke_reason reason, const char *reason_text,
                              const uint8_t *replacement) {
    return build(out, identity_sk + PST_SEED_BYTES, NULL, identity_sk, created, reason, reason_text,
                 replacement);
}

int pst_revocation_build_by_revkey(pst_revocation *out, const pst_revkey *rk, uint64_t created,
                                   pst_revoke_reason reason, const char *reason_text,
                                   const uint8_t *replacement) {
    return build(out, rk->identity_pk, rk->auth, rk->rev_sk, created, reason, reason_text,
                 replacement);
}

bool pst_revocation_replacement(const pst_revocation *r, uint8_t *out) {
    if (!r->has_replacement)
        return false;
    if (out != NULL)
        memcpy(out, r->replacement, PST_SIGN_PK_BYTES);
    return true;
}
