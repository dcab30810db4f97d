/* KeyRecord (type 1) and AddressClaim (type 2): see pst_records.h. */
#include "pst_records.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <string.h>

#include "codec.h"

/* ---- shared -------------------------------------------------------------- */

static void write_header(pst_writer *w, uint32_t nfields, pst_rec_type type, uint64_t created,
                         uint64_t expires, const uint8_t signer[PST_SIGN_PK_BYTES]) {
    pst_w_array(w, nfields);
    pst_w_uint(w, PST_PROTO_VERSION);
    pst_w_uint(w, (uint64_t)type);
    pst_w_uint(w, created);
    pst_w_uint(w, expires);
    pst_w_bin(w, signer, PST_SIGN_PK_BYTES);
}

/* Lifetime first (a malformed window is a property of the record), then the
 * clock. Written so that no addition can overflow. */
static int window_check(uint64_t created, uint64_t expires, uint64_t lifetime_max, uint64_t now) {
    if (expires <= created || expires - created > lifetime_max)
        return PST_E_RANGE;
    if (created > now && created - now > PST_CLOCK_SKEW_MAX)
        return PST_E_NOTYET;
    if (expires <= now)
        return PST_E_EXPIRED;
    return PST_OK;
}

/* The same parse limits for all four DHT records (field caps are checked
 * per field), so that a record of another type fails with PST_E_RECTYPE
 * rather than with whichever limit it happens to hit first. */
static pst_limits dht_limits(void) {
    pst_limits lim = pst_limits_record;
    lim.max_bytes = PST_DHT_VALUE_MAX;
    lim.max_str = PST_ADDRESS_MAX;
    lim.max_bin = PST_SIG_BYTES;
    return lim;
}

/* Reads the common header fields 2..4 (version, type and count were checked
 * by pst_r_record). */
static int read_header(const msgpack_object *it, uint64_t *created, uint64_t *expires,
                       uint8_t signer[PST_SIGN_PK_BYTES]) {
    int rc;
    if ((rc = pst_r_uint(&it[2], UINT64_MAX, created)) != PST_OK ||
        (rc = pst_r_uint(&it[3], UINT64_MAX, expires)) != PST_OK)
        return rc;
    return pst_r_bin_fixed(&it[4], PST_SIGN_PK_BYTES, signer);
}

/* ---- endpoints ------------------------------------------------------------ */

static bool port_ok(const char *p, size_t n) {
    uint32_t v = 0;
    if (n < 1 || n > 5 || p[0] == '0')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10u + (uint32_t)(p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

static bool ipv6_ok(const char *s, size_t n) {
    char tmp[INET6_ADDRSTRLEN];
    struct in6_addr a;
    if (n < 2 || n >= sizeof tmp)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
            return false;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, &a) == 1;
}

bool pst_endpoint_is_valid(const char *s, size_t n) {
    if (s == NULL || n < 3 || n > PST_ENDPOINT_MAX)
        return false;
    const char *colon = memrchr(s, ':', n);
    if (colon == NULL)
        return false;
    size_t hlen = (size_t)(colon - s);
    if (!port_ok(colon + 1, n - hlen - 1))
        return false;
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']')
        return ipv6_ok(s + 1, hlen - 2);
    return pst_hostname_is_valid(s, hlen);
}

/* ---- KeyRecord ------------------------------------------------------------ */

static bool keyrec_fields_ok(const pst_keyrec *r) {
    size_t total = 0;
    if (r->n_addresses > PST_KEYREC_ADDRESSES_MAX || r->n_endpoints > PST_KEYREC_ENDPOINTS_MAX ||
        r->pow_bits > PST_POW_BITS_MAX)
        return false;
    for (uint32_t i = 0; i < r->n_addresses; i++) {
        size_t n = strnlen(r->addresses[i], PST_ADDRESS_MAX + 1);
        if (!pst_address_is_normalized(r->addresses[i], n))
            return false;
        total += n;
    }
    if (total > PST_KEYREC_ADDRESS_BYTES_MAX)
        return false;
    for (uint32_t i = 0; i < r->n_endpoints; i++) {
        if (!pst_endpoint_is_valid(r->endpoints[i], strnlen(r->endpoints[i], PST_ENDPOINT_MAX + 1)))
            return false;
    }
    return true;
}

static void keyrec_write(pst_writer *w, const pst_keyrec *r, bool with_sig) {
    write_header(w, PST_KEYREC_FIELDS - (with_sig ? 0 : 1), PST_REC_KEY, r->created, r->expires,
                 r->signer);
    pst_w_uint(w, r->seq);
    pst_w_bin(w, r->enc_pk, PST_BOX_PK_BYTES);
    pst_w_bin(w, r->revocation_pk, r->has_revocation_pk ? PST_SIGN_PK_BYTES : 0);
    pst_w_array(w, r->n_addresses);
    for (uint32_t i = 0; i < r->n_addresses; i++)
        pst_w_cstr(w, r->addresses[i]);
    pst_w_array(w, r->n_endpoints);
    for (uint32_t i = 0; i < r->n_endpoints; i++)
        pst_w_cstr(w, r->endpoints[i]);
    pst_w_uint(w, r->pow_bits);
    if (with_sig)
        pst_w_bin(w, r->sig, PST_SIG_BYTES);
}

static int keyrec_to(const pst_keyrec *r, bool with_sig, uint8_t *out, size_t cap, size_t *len) {
    pst_writer w;
    *len = 0;
    if (out == NULL || !keyrec_fields_ok(r)) {
        if (out != NULL && cap > 0)
            memset(out, 0, cap);
        return PST_E_INVAL;
    }
    pst_w_init(&w, out, cap);
    keyrec_write(&w, r, with_sig);
    int rc = pst_w_finish(&w, len);
    if (rc != PST_OK && cap > 0)
        memset(out, 0, cap);
    return rc;
}

int pst_keyrec_encode(const pst_keyrec *r, uint8_t *out, size_t cap, size_t *len) {
    return keyrec_to(r, true, out, cap, len);
}

int pst_keyrec_sign(pst_keyrec *r, const uint8_t sk[PST_SIGN_SK_BYTES]) {
    uint8_t body[PST_DHT_VALUE_MAX];
    size_t len;
    memcpy(r->signer, sk + PST_SEED_BYTES, PST_SIGN_PK_BYTES);
    int rc = keyrec_to(r, false, body, sizeof body, &len);
    if (rc == PST_OK)
        rc = pst_sign_body(body, len, sk, r->sig);
    return rc == PST_E_NOSPACE ? PST_E_INVAL : rc;
}

int pst_keyrec_decode(const uint8_t *in, size_t len, pst_keyrec *out) {
    pst_limits lim = dht_limits();
    pst_reader r;
    const msgpack_object *it, *a;
    const uint8_t *rev;
    size_t rev_len, total = 0, re_len;
    uint32_t n;
    uint8_t re[PST_DHT_VALUE_MAX];

    memset(out, 0, sizeof *out);
    int rc = pst_r_parse(&r, in, len, &lim);
    if (rc != PST_OK ||
        (rc = pst_r_record(&r.root, PST_REC_KEY, PST_KEYREC_FIELDS, &it)) != PST_OK ||
        (rc = read_header(it, &out->created, &out->expires, out->signer)) != PST_OK ||
        (rc = pst_r_uint(&it[5], UINT64_MAX, &out->seq)) != PST_OK ||
        (rc = pst_r_bin_fixed(&it[6], PST_BOX_PK_BYTES, out->enc_pk)) != PST_OK ||
        (rc = pst_r_bin(&it[7], PST_SIGN_PK_BYTES, &rev, &rev_len)) != PST_OK)
        goto done;
    rc = PST_E_RANGE;
    if (rev_len != 0 && rev_len != PST_SIGN_PK_BYTES)
        goto done;
    out->has_revocation_pk = rev_len != 0;
    if (rev_len != 0)
        memcpy(out->revocation_pk, rev, rev_len);

    if ((rc = pst_r_array(&it[8], 0, PST_KEYREC_ADDRESSES_MAX, &a, &n)) != PST_OK)
        goto done;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = pst_r_str_copy(&a[i], out->addresses[i], PST_ADDRESS_MAX + 1)) != PST_OK)
            goto done;
        size_t alen = strlen(out->addresses[i]);
        total += alen;
        rc = total > PST_KEYREC_ADDRESS_BYTES_MAX ? PST_E_TOOBIG : PST_E_RANGE;
        if (total > PST_KEYREC_ADDRESS_BYTES_MAX ||
            !pst_address_is_normalized(out->addresses[i], alen))
            goto done;
    }
    out->n_addresses = n;

    if ((rc = pst_r_array(&it[9], 0, PST_KEYREC_ENDPOINTS_MAX, &a, &n)) != PST_OK)
        goto done;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = pst_r_str_copy(&a[i], out->endpoints[i], PST_ENDPOINT_MAX + 1)) != PST_OK)
            goto done;
        rc = PST_E_RANGE;
        if (!pst_endpoint_is_valid(out->endpoints[i], strlen(out->endpoints[i])))
            goto done;
    }
    out->n_endpoints = n;

    if ((rc = pst_r_uint(&it[10], PST_POW_BITS_MAX, &out->pow_bits)) != PST_OK ||
        (rc = pst_r_bin_fixed(&it[11], PST_SIG_BYTES, out->sig)) != PST_OK)
        goto done;
    rc = pst_keyrec_encode(out, re, sizeof re, &re_len);
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

int pst_keyrec_verify(const pst_keyrec *r, uint64_t now) {
    uint8_t body[PST_DHT_VALUE_MAX];
    size_t len;
    int rc = window_check(r->created, r->expires, PST_KEYREC_LIFETIME_MAX, now);
    if (rc != PST_OK)
        return rc;
    if (keyrec_to(r, false, body, sizeof body, &len) != PST_OK)
        return PST_E_INVAL;
    return pst_verify_body(body, len, r->sig, r->signer);
}

int pst_keyrec_id(const pst_keyrec *r, uint8_t id[PST_HASH_BYTES]) {
    uint8_t enc[PST_DHT_VALUE_MAX];
    size_t len;
    int rc = keyrec_to(r, true, enc, sizeof enc, &len);
    if (rc != PST_OK) {
        memset(id, 0, PST_HASH_BYTES);
        return rc == PST_E_NOSPACE ? PST_E_INVAL : rc;
    }
    crypto_generichash(id, PST_HASH_BYTES, enc, len, NULL, 0);
    return PST_OK;
}

/* ---- AddressClaim --------------------------------------------------------- */

static bool claim_fields_ok(const pst_address_claim *r) {
    return pst_address_is_normalized(r->address, strnlen(r->address, PST_ADDRESS_MAX + 1));
}

static int claim_to(const pst_address_claim *r, bool with_sig, uint8_t *out, size_t cap,
                    size_t *len) {
    pst_writer w;
    *len = 0;
    if (out == NULL || !claim_fields_ok(r)) {
        if (out != NULL && cap > 0)
            memset(out, 0, cap);
        return PST_E_INVAL;
    }
    pst_w_init(&w, out, cap);
    write_header(&w, PST_ADDRESS_CLAIM_FIELDS - (with_sig ? 0 : 1), PST_REC_ADDRESS_CLAIM,
                 r->created, r->expires, r->signer);
    pst_w_cstr(&w, r->address);
    pst_w_uint(&w, r->seq);
    if (with_sig)
        pst_w_bin(&w, r->sig, PST_SIG_BYTES);
    int rc = pst_w_finish(&w, len);
    if (rc != PST_OK && cap > 0)
        memset(out, 0, cap);
    return rc;
}

int pst_address_claim_encode(const pst_address_claim *r, uint8_t *out, size_t cap, size_t *len) {
    return claim_to(r, true, out, cap, len);
}

int pst_address_claim_sign(pst_address_claim *r, const uint8_t sk[PST_SIGN_SK_BYTES]) {
    uint8_t body[PST_DHT_VALUE_MAX];
    size_t len;
    memcpy(r->signer, sk + PST_SEED_BYTES, PST_SIGN_PK_BYTES);
    int rc = claim_to(r, false, body, sizeof body, &len);
    if (rc == PST_OK)
        rc = pst_sign_body(body, len, sk, r->sig);
    return rc == PST_E_NOSPACE ? PST_E_INVAL : rc;
}

int pst_address_claim_decode(const uint8_t *in, size_t len, pst_address_claim *out) {
    pst_limits lim = dht_limits();
    pst_reader r;
    const msgpack_object *it;
    uint8_t re[PST_DHT_VALUE_MAX];
    size_t re_len;

    memset(out, 0, sizeof *out);
    int rc = pst_r_parse(&r, in, len, &lim);
    if (rc != PST_OK ||
        (rc = pst_r_record(&r.root, PST_REC_ADDRESS_CLAIM, PST_ADDRESS_CLAIM_FIELDS, &it)) !=
            PST_OK ||
        (rc = read_header(it, &out->created, &out->expires, out->signer)) != PST_OK ||
        (rc = pst_r_str_copy(&it[5], out->address, sizeof out->address)) != PST_OK ||
        (rc = pst_r_uint(&it[6], UINT64_MAX, &out->seq)) != PST_OK ||
        (rc = pst_r_bin_fixed(&it[7], PST_SIG_BYTES, out->sig)) != PST_OK)
        goto done;
    rc = PST_E_RANGE;
    if (!claim_fields_ok(out))
        goto done;
    rc = pst_address_claim_encode(out, re, sizeof re, &re_len);
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

int pst_address_claim_verify(const pst_address_claim *r, uint64_t now) {
    uint8_t body[PST_DHT_VALUE_MAX];
    size_t len;
    int rc = window_check(r->created, r->expires, PST_KEYREC_LIFETIME_MAX, now);
    if (rc != PST_OK)
        return rc;
    if (claim_to(r, false, body, sizeof body, &len) != PST_OK)
        return PST_E_INVAL;
    return pst_verify_body(body, len, r->sig, r->signer);
}

int pst_address_claim_id(const pst_address_claim *r, uint8_t id[PST_HASH_BYTES]) {
    uint8_t enc[PST_DHT_VALUE_MAX];
    size_t len;
    int rc = claim_to(r, true, enc, sizeof enc, &len);
    if (rc != PST_OK) {
        memset(id, 0, PST_HASH_BYTES);
        return rc == PST_E_NOSPACE ? PST_E_INVAL : rc;
    }
    crypto_generichash(id, PST_HASH_BYTES, enc, len, NULL, 0);
    return PST_OK;
}

int pst_address_claim_matches(const pst_address_claim *claim, const pst_keyrec *keyrec) {
    if (memcmp(claim->signer, keyrec->signer, PST_SIGN_PK_BYTES) != 0)
        return PST_E_MISMATCH;
    for (uint32_t i = 0; i < keyrec->n_addresses && i < PST_KEYREC_ADDRESSES_MAX; i++) {
        if (strcmp(claim->address, keyrec->addresses[i]) == 0)
            return PST_OK;
    }
    return PST_E_MISMATCH;
}
