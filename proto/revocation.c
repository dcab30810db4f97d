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

#include "sigrec.h"

static int rev_validate(const void *p) {
    const pst_revocation *r = p;
    size_t tlen = strnlen(r->reason_text, PST_REVOCATION_REASON_TEXT_MAX + 1);
    if (r->expires != 0 || r->reason > PST_REVOKE_REASON_MAX ||
        tlen > PST_REVOCATION_REASON_TEXT_MAX ||
        !pst_r_text_ok(r->reason_text, tlen, PST_REVOCATION_REASON_TEXT_MAX))
        return PST_E_RANGE;
    /* a key cannot be replaced by itself */
    if (r->has_replacement && memcmp(r->replacement, r->revoked_key, PST_SIGN_PK_BYTES) == 0)
        return PST_E_RANGE;
    return PST_OK;
}

static void rev_write(pst_writer *w, const void *p) {
    const pst_revocation *r = p;
    pst_w_bin(w, r->revoked_key, PST_SIGN_PK_BYTES);
    pst_w_uint(w, r->reason);
    pst_w_cstr(w, r->reason_text);
    pst_w_bin(w, r->replacement, r->has_replacement ? PST_SIGN_PK_BYTES : 0);
    pst_w_bin(w, r->auth, r->has_auth ? PST_SIG_BYTES : 0);
}

static int rev_read(const msgpack_object *f, void *p) {
    pst_revocation *out = p;
    int rc;
    if ((rc = pst_r_bin_fixed(&f[0], PST_SIGN_PK_BYTES, out->revoked_key)) != PST_OK ||
        (rc = pst_r_uint(&f[1], PST_REVOKE_REASON_MAX, &out->reason)) != PST_OK ||
        (rc = pst_r_str_copy(&f[2], out->reason_text, sizeof out->reason_text)) != PST_OK ||
        (rc = pst_r_bin_opt(&f[3], PST_SIGN_PK_BYTES, out->replacement, &out->has_replacement)) !=
            PST_OK)
        return rc;
    return pst_r_bin_opt(&f[4], PST_SIG_BYTES, out->auth, &out->has_auth);
}

/* Who may sign: the revoked key itself without auth, or the revocation key
 * that the revoked key authorised. */
static int rev_signer_check(const void *p) {
    const pst_revocation *r = p;
    bool self = memcmp(r->signer, r->revoked_key, PST_SIGN_PK_BYTES) == 0;
    if (!r->has_auth)
        return self ? PST_OK : PST_E_SIGNER;
    /* a key authorising itself would make auth meaningless */
    if (self)
        return PST_E_SIGNER;
    return pst_revocation_auth_verify(r->revoked_key, r->signer, r->auth);
}

static const pst_sigrec_kind rev_kind = {PST_SIGREC_KIND(pst_revocation, rev, PST_REC_REVOCATION,
                                                         PST_REVOCATION_FIELDS,
                                                         PST_SIGREC_DHT_LIMITS, 0),
                                         .verify_extra = rev_signer_check};

static const pst_sigrec_window rev_window = {.skew = PST_CLOCK_SKEW_MAX};

PST_SIGREC_DEFINE(pst_revocation, rev_kind)
PST_SIGREC_DEFINE_VERIFY(pst_revocation, rev_kind, rev_window)
PST_SIGREC_DEFINE_ID(pst_revocation, rev_kind)

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
