/* Endorsement / vouch (type 4): see pst_records.h. The voucher (signer)
 * states that subject is known or trusted until expires. */
#include "pst_records.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"

static bool fields_ok(const pst_endorsement *r) {
    return r->tier <= PST_TIER_TRUSTED && r->expires != 0 &&
           memcmp(r->subject, r->signer, PST_SIGN_PK_BYTES) != 0;
}

static int endorsement_to(const pst_endorsement *r, bool with_sig, uint8_t *out, size_t cap,
                          size_t *len) {
    pst_writer w;
    *len = 0;
    if (out == NULL || !fields_ok(r)) {
        if (out != NULL && cap > 0)
            memset(out, 0, cap);
        return PST_E_INVAL;
    }
    pst_w_init(&w, out, cap);
    pst_w_array(&w, PST_ENDORSEMENT_FIELDS - (with_sig ? 0 : 1));
    pst_w_uint(&w, PST_PROTO_VERSION);
    pst_w_uint(&w, PST_REC_ENDORSEMENT);
    pst_w_uint(&w, r->created);
    pst_w_uint(&w, r->expires);
    pst_w_bin(&w, r->signer, PST_SIGN_PK_BYTES);
    pst_w_bin(&w, r->subject, PST_SIGN_PK_BYTES);
    pst_w_uint(&w, r->tier);
    if (with_sig)
        pst_w_bin(&w, r->sig, PST_SIG_BYTES);
    int rc = pst_w_finish(&w, len);
    if (rc != PST_OK && cap > 0)
        memset(out, 0, cap);
    return rc;
}

int pst_endorsement_encode(const pst_endorsement *r, uint8_t *out, size_t cap, size_t *len) {
    return endorsement_to(r, true, out, cap, len);
}

int pst_endorsement_sign(pst_endorsement *r, const uint8_t sk[PST_SIGN_SK_BYTES]) {
    uint8_t body[PST_DHT_VALUE_MAX];
    size_t len;
    memcpy(r->signer, sk + PST_SEED_BYTES, PST_SIGN_PK_BYTES);
    int rc = endorsement_to(r, false, body, sizeof body, &len);
    if (rc == PST_OK)
        rc = pst_sign_body(body, len, sk, r->sig);
    return rc == PST_E_NOSPACE ? PST_E_INVAL : rc;
}

int pst_endorsement_decode(const uint8_t *in, size_t len, pst_endorsement *out) {
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
        (rc = pst_r_record(&r.root, PST_REC_ENDORSEMENT, PST_ENDORSEMENT_FIELDS, &it)) != PST_OK ||
        (rc = pst_r_uint(&it[2], UINT64_MAX, &out->created)) != PST_OK ||
        (rc = pst_r_uint(&it[3], UINT64_MAX, &out->expires)) != PST_OK ||
        (rc = pst_r_bin_fixed(&it[4], PST_SIGN_PK_BYTES, out->signer)) != PST_OK ||
        (rc = pst_r_bin_fixed(&it[5], PST_SIGN_PK_BYTES, out->subject)) != PST_OK ||
        (rc = pst_r_uint(&it[6], PST_TIER_TRUSTED, &out->tier)) != PST_OK ||
        (rc = pst_r_bin_fixed(&it[7], PST_SIG_BYTES, out->sig)) != PST_OK)
        goto done;
    rc = PST_E_RANGE;
    if (!fields_ok(out))
        goto done;
    rc = pst_endorsement_encode(out, re, sizeof re, &re_len);
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

int pst_endorsement_verify(const pst_endorsement *r, uint64_t now) {
    uint8_t body[PST_DHT_VALUE_MAX];
    size_t len;
    if (r->expires <= r->created || r->expires - r->created > PST_ENDORSEMENT_LIFETIME_MAX)
        return PST_E_RANGE;
    if (r->created > now && r->created - now > PST_CLOCK_SKEW_MAX)
        return PST_E_NOTYET;
    if (r->expires <= now)
        return PST_E_EXPIRED;
    if (endorsement_to(r, false, body, sizeof body, &len) != PST_OK)
        return PST_E_INVAL;
    return pst_verify_body(body, len, r->sig, r->signer);
}

int pst_endorsement_id(const pst_endorsement *r, uint8_t id[PST_HASH_BYTES]) {
    uint8_t enc[PST_DHT_VALUE_MAX];
    size_t len;
    int rc = endorsement_to(r, true, enc, sizeof enc, &len);
    if (rc != PST_OK) {
        memset(id, 0, PST_HASH_BYTES);
        return rc == PST_E_NOSPACE ? PST_E_INVAL : rc;
    }
    crypto_generichash(id, PST_HASH_BYTES, enc, len, NULL, 0);
    return PST_OK;
}
