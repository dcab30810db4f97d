/* The one signed-record envelope (see sigrec.h). */
#include "sigrec.h"

#include <sodium.h>
#include <string.h>

/* Scratch buffers (signed body, re-encoding, id) hold any record; a kind's
 * limits.max_bytes above it is clamped, so such a record fails to encode
 * (PST_E_INVAL) instead of overflowing. */
#define SCRATCH_MAX PST_RECORD_MAX

/* The envelope fields of a record struct, found by the kind's offsets. */
static const void *at(const void *rec, size_t off) { return (const unsigned char *)rec + off; }
static void *at_mut(void *rec, size_t off) { return (unsigned char *)rec + off; }
#define U64(rec, off) (*(const uint64_t *)at(rec, off))

static size_t scratch_cap(const pst_sigrec_kind *k) {
    return k->limits.max_bytes < SCRATCH_MAX ? k->limits.max_bytes : SCRATCH_MAX;
}

int pst_sigrec_encode(const pst_sigrec_kind *k, const void *rec, bool with_sig, uint8_t *out,
                      size_t cap, size_t *len) {
    pst_writer w;
    if (len != NULL)
        *len = 0;
    if (k == NULL || rec == NULL || out == NULL || len == NULL || k->validate(rec) != PST_OK) {
        if (out != NULL && cap > 0)
            memset(out, 0, cap);
        return PST_E_INVAL;
    }
    pst_w_record(&w, out, cap, k->type, with_sig ? k->nfields : k->nfields - 1);
    pst_w_uint(&w, U64(rec, k->off_created));
    pst_w_uint(&w, U64(rec, k->off_expires));
    pst_w_bin(&w, at(rec, k->off_signer), PST_SIGN_PK_BYTES);
    k->write_body(&w, rec);
    if (with_sig)
        pst_w_bin(&w, at(rec, k->off_sig), PST_SIG_BYTES);
    int rc = pst_w_finish(&w, len);
    if (rc != PST_OK && cap > 0)
        memset(out, 0, cap);
    return rc;
}

int pst_sigrec_sign(const pst_sigrec_kind *k, void *rec, const uint8_t sk[PST_SIGN_SK_BYTES]) {
    uint8_t body[SCRATCH_MAX];
    size_t len;
    if (k == NULL || rec == NULL || sk == NULL)
        return PST_E_INVAL;
    uint8_t *sig = at_mut(rec, k->off_sig);
    memset(sig, 0, PST_SIG_BYTES);
    /* before validate: some rules compare a field with the signer */
    crypto_sign_ed25519_sk_to_pk(at_mut(rec, k->off_signer), sk);
    int rc = pst_sigrec_encode(k, rec, false, body, scratch_cap(k), &len);
    if (rc == PST_OK)
        rc = pst_sign_body(body, len, sk, sig);
    sodium_memzero(body, scratch_cap(k)); /* a body may hold a secret (msg_key) */
    if (rc != PST_OK)
        memset(sig, 0, PST_SIG_BYTES);
    return rc == PST_E_NOSPACE ? PST_E_INVAL : rc;
}

int pst_sigrec_decode(const pst_sigrec_kind *k, const uint8_t *in, size_t len, void *rec) {
    pst_reader rd;
    const msgpack_object *it = NULL;
    uint8_t re[SCRATCH_MAX];
    size_t re_len;

    if (k == NULL || rec == NULL)
        return PST_E_INVAL;
    memset(rec, 0, k->size);
    int rc = pst_r_open(&rd, in, len, &k->limits, k->type, k->nfields, &it);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[2], UINT64_MAX, (uint64_t *)at_mut(rec, k->off_created));
    if (rc == PST_OK)
        rc = pst_r_uint(&it[3], k->expires_max, (uint64_t *)at_mut(rec, k->off_expires));
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[4], PST_SIGN_PK_BYTES, at_mut(rec, k->off_signer));
    if (rc == PST_OK)
        rc = k->read_body(&it[PST_SIGREC_HEAD], rec);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[k->nfields - 1], PST_SIG_BYTES, at_mut(rec, k->off_sig));
    pst_r_free(&rd);
    if (rc == PST_OK)
        rc = k->validate(rec);
    if (rc == PST_OK) {
        /* the only encoding we accept is the one we would write */
        rc = pst_sigrec_encode(k, rec, true, re, scratch_cap(k), &re_len);
        rc = rc == PST_OK ? pst_canonical_check(in, len, re, re_len) : PST_E_NONCANONICAL;
        sodium_memzero(re, scratch_cap(k));
    }
    if (rc != PST_OK)
        sodium_memzero(rec, k->size);
    return rc;
}

/* Written so that no addition can overflow. */
static int window_check(const pst_sigrec_window *win, uint64_t created, uint64_t expires,
                        uint64_t now) {
    bool bad_lifetime =
        win->lifetime_max != 0 && (expires <= created || expires - created > win->lifetime_max);
    if (win->lifetime_first && bad_lifetime)
        return PST_E_RANGE;
    if (created > now && created - now > win->skew)
        return PST_E_NOTYET;
    if (win->max_age != 0 && now > created && now - created > win->max_age)
        return PST_E_EXPIRED;
    if (win->lifetime_max != 0 && expires <= now)
        return PST_E_EXPIRED;
    return bad_lifetime ? PST_E_RANGE : PST_OK;
}

int pst_sigrec_verify(const pst_sigrec_kind *k, const void *rec, const pst_sigrec_window *win,
                      uint64_t now) {
    uint8_t body[SCRATCH_MAX];
    size_t len;
    if (k == NULL || rec == NULL || win == NULL)
        return PST_E_INVAL;
    int rc = window_check(win, U64(rec, k->off_created), U64(rec, k->off_expires), now);
    if (rc == PST_OK && k->verify_extra != NULL)
        rc = k->verify_extra(rec);
    if (rc != PST_OK)
        return rc;
    rc = pst_sigrec_encode(k, rec, false, body, scratch_cap(k), &len);
    if (rc == PST_OK)
        rc = pst_verify_body(body, len, at(rec, k->off_sig), at(rec, k->off_signer));
    else
        rc = PST_E_INVAL;
    sodium_memzero(body, scratch_cap(k));
    return rc;
}

int pst_sigrec_id(const pst_sigrec_kind *k, const void *rec, uint8_t id[PST_HASH_BYTES]) {
    uint8_t enc[SCRATCH_MAX];
    size_t len;
    int rc = pst_sigrec_encode(k, rec, true, enc, scratch_cap(k), &len);
    if (rc != PST_OK) {
        memset(id, 0, PST_HASH_BYTES);
        return PST_E_INVAL;
    }
    crypto_generichash(id, PST_HASH_BYTES, enc, len, NULL, 0);
    return PST_OK;
}

int pst_sign_body(const uint8_t *body, size_t body_len, const uint8_t sk[PST_SIGN_SK_BYTES],
                  uint8_t sig[PST_SIG_BYTES]) {
    /* Plain Ed25519 over the concatenation (not Ed25519ph): records are
     * small (< PST_RECORD_MAX), one stack buffer is enough. */
    uint8_t msg[PST_SIG_CONTEXT_LEN + PST_RECORD_MAX];
    if (body_len > PST_RECORD_MAX) {
        memset(sig, 0, PST_SIG_BYTES);
        return PST_E_TOOBIG;
    }
    memcpy(msg, PST_SIG_CONTEXT, PST_SIG_CONTEXT_LEN);
    memcpy(msg + PST_SIG_CONTEXT_LEN, body, body_len);
    if (crypto_sign_detached(sig, NULL, msg, PST_SIG_CONTEXT_LEN + body_len, sk) != 0) {
        memset(sig, 0, PST_SIG_BYTES);
        return PST_E_CRYPTO;
    }
    return PST_OK;
}

int pst_verify_body(const uint8_t *body, size_t body_len, const uint8_t sig[PST_SIG_BYTES],
                    const uint8_t pk[PST_SIGN_PK_BYTES]) {
    uint8_t msg[PST_SIG_CONTEXT_LEN + PST_RECORD_MAX];
    if (body_len > PST_RECORD_MAX)
        return PST_E_TOOBIG;
    memcpy(msg, PST_SIG_CONTEXT, PST_SIG_CONTEXT_LEN);
    memcpy(msg + PST_SIG_CONTEXT_LEN, body, body_len);
    if (crypto_sign_verify_detached(sig, msg, PST_SIG_CONTEXT_LEN + body_len, pk) != 0)
        return PST_E_SIGNATURE;
    return PST_OK;
}
