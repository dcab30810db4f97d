/* KeyRecord (type 1) and AddressClaim (type 2): see pst_records.h. */
#include "pst_records.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <string.h>

#include "sigrec.h"

/* KeyRecords and AddressClaims: the lifetime is checked before the clock. */
static const pst_sigrec_window dht_window = {
    .skew = PST_CLOCK_SKEW_MAX, .lifetime_max = PST_KEYREC_LIFETIME_MAX, .lifetime_first = true};

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

static int keyrec_validate(const void *p) { return keyrec_fields_ok(p) ? PST_OK : PST_E_RANGE; }

static void keyrec_write(pst_writer *w, const void *p) {
    const pst_keyrec *r = p;
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
}

static int keyrec_read(const msgpack_object *f, void *p) {
    pst_keyrec *out = p;
    const msgpack_object *a;
    size_t total = 0;
    uint32_t n;
    int rc;
    if ((rc = pst_r_uint(&f[0], UINT64_MAX, &out->seq)) != PST_OK ||
        (rc = pst_r_bin_fixed(&f[1], PST_BOX_PK_BYTES, out->enc_pk)) != PST_OK ||
        (rc = pst_r_bin_opt(&f[2], PST_SIGN_PK_BYTES, out->revocation_pk,
                            &out->has_revocation_pk)) != PST_OK ||
        (rc = pst_r_array(&f[3], 0, PST_KEYREC_ADDRESSES_MAX, &a, &n)) != PST_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = pst_r_str_copy(&a[i], out->addresses[i], PST_ADDRESS_MAX + 1)) != PST_OK)
            return rc;
        size_t alen = strlen(out->addresses[i]);
        total += alen;
        if (total > PST_KEYREC_ADDRESS_BYTES_MAX)
            return PST_E_TOOBIG;
        if (!pst_address_is_normalized(out->addresses[i], alen))
            return PST_E_RANGE;
    }
    out->n_addresses = n;
    if ((rc = pst_r_array(&f[4], 0, PST_KEYREC_ENDPOINTS_MAX, &a, &n)) != PST_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = pst_r_str_copy(&a[i], out->endpoints[i], PST_ENDPOINT_MAX + 1)) != PST_OK)
            return rc;
        if (!pst_endpoint_is_valid(out->endpoints[i], strlen(out->endpoints[i])))
            return PST_E_RANGE;
    }
    out->n_endpoints = n;
    return pst_r_uint(&f[5], PST_POW_BITS_MAX, &out->pow_bits);
}

static const pst_sigrec_kind keyrec_kind = {PST_SIGREC_KIND(
    pst_keyrec, keyrec, PST_REC_KEY, PST_KEYREC_FIELDS, PST_SIGREC_DHT_LIMITS, UINT64_MAX)};

PST_SIGREC_DEFINE(pst_keyrec, keyrec_kind)
PST_SIGREC_DEFINE_VERIFY(pst_keyrec, keyrec_kind, dht_window)
PST_SIGREC_DEFINE_ID(pst_keyrec, keyrec_kind)

/* ---- AddressClaim --------------------------------------------------------- */

static int claim_validate(const void *p) {
    const pst_address_claim *r = p;
    return pst_address_is_normalized(r->address, strnlen(r->address, PST_ADDRESS_MAX + 1))
               ? PST_OK
               : PST_E_RANGE;
}

static void claim_write(pst_writer *w, const void *p) {
    const pst_address_claim *r = p;
    pst_w_cstr(w, r->address);
    pst_w_uint(w, r->seq);
}

static int claim_read(const msgpack_object *f, void *p) {
    pst_address_claim *out = p;
    int rc = pst_r_str_copy(&f[0], out->address, sizeof out->address);
    return rc == PST_OK ? pst_r_uint(&f[1], UINT64_MAX, &out->seq) : rc;
}

static const pst_sigrec_kind claim_kind = {
    PST_SIGREC_KIND(pst_address_claim, claim, PST_REC_ADDRESS_CLAIM, PST_ADDRESS_CLAIM_FIELDS,
                    PST_SIGREC_DHT_LIMITS, UINT64_MAX)};

PST_SIGREC_DEFINE(pst_address_claim, claim_kind)
PST_SIGREC_DEFINE_VERIFY(pst_address_claim, claim_kind, dht_window)
PST_SIGREC_DEFINE_ID(pst_address_claim, claim_kind)

int pst_address_claim_matches(const pst_address_claim *claim, const pst_keyrec *keyrec) {
    if (memcmp(claim->signer, keyrec->signer, PST_SIGN_PK_BYTES) != 0)
        return PST_E_MISMATCH;
    for (uint32_t i = 0; i < keyrec->n_addresses && i < PST_KEYREC_ADDRESSES_MAX; i++) {
        if (strcmp(claim->address, keyrec->addresses[i]) == 0)
            return PST_OK;
    }
    return PST_E_MISMATCH;
}
