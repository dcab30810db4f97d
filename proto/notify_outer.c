/* Notification outers (type 5: one seal; type 15: a content box and a key
 * seal per device), sealing, opening and the stamp binding strings (see
 * pst_notify.h). */
#include "pst_identity.h"
#include "pst_notify.h"

#include <string.h>

#include "codec.h"

#define OUTER_FIELDS 4u

_Static_assert(PST_NOTIFY_SINGLE_MAX <= PST_NOTIFY_MAX, "a type-5 outer always fits");
_Static_assert(PST_NOTIFY_MAX <= PST_DHT_VALUE_MAX, "an outer notification must fit a DHT value");
_Static_assert(PST_SEAL_BYTES == crypto_box_SEALBYTES, "crypto_box_seal overhead");
_Static_assert(PST_NOTIFY_CONTENT_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "content key size");
_Static_assert(PST_NOTIFY_BOX_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "content box tag size");
_Static_assert(PST_NOTIFY_KEYSEAL_BYTES == PST_NOTIFY_CONTENT_KEY_BYTES + crypto_box_MACBYTES,
               "a key seal is the content key and a MAC");

#define BOX_MAX (PST_NOTIFY_INNER_MAX + PST_NOTIFY_BOX_TAG_BYTES)

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
    if (r->n_seals > PST_NOTIFY_DEVICES_MAX)
        return PST_E_RANGE;
    if (r->n_seals == 0 &&
        (r->sealed_len <= PST_SEAL_BYTES || r->sealed_len > PST_NOTIFY_SEALED_MAX))
        return PST_E_RANGE;
    if (r->n_seals > 0 && (r->sealed_len <= PST_NOTIFY_BOX_TAG_BYTES || r->sealed_len > BOX_MAX))
        return PST_E_RANGE;
    if (!stamp_valid(r->stamp))
        return PST_E_RANGE;
    return PST_OK;
}

/* Canonical msgpack header sizes (codec.c writes the shortest form). */
static size_t bin_size(size_t n) { return n + (n < 256 ? 2u : n < 65536 ? 3u : 5u); }
static size_t str_size(size_t n) { return n + (n < 32 ? 1u : n < 256 ? 2u : 3u); }

/* Exact encoded size of a valid r. */
static size_t outer_size(const pst_notify *r) {
    size_t n = 1u + 1u + 1u + bin_size(r->sealed_len) + str_size(strlen(r->stamp));
    if (r->n_seals > 0)
        n += bin_size(PST_BOX_PK_BYTES) + 1u + r->n_seals * bin_size(PST_NOTIFY_KEYSEAL_BYTES);
    return n;
}

int pst_notify_encode(const pst_notify *r, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (r == NULL || out == NULL || len == NULL || outer_validate(r) != PST_OK)
        return PST_E_INVAL;
    if (outer_size(r) > PST_NOTIFY_MAX)
        return PST_E_TOOBIG;
    pst_writer w;
    pst_w_record(&w, out, cap, r->n_seals > 0 ? PST_REC_NOTIFICATION_DEV : PST_REC_NOTIFICATION,
                 OUTER_FIELDS + (r->n_seals > 0 ? 2u : 0u));
    pst_w_bin(&w, r->sealed, r->sealed_len);
    if (r->n_seals > 0) {
        pst_w_bin(&w, r->epk, PST_BOX_PK_BYTES);
        pst_w_array(&w, r->n_seals);
        for (uint32_t i = 0; i < r->n_seals; i++)
            pst_w_bin(&w, r->seals[i], PST_NOTIFY_KEYSEAL_BYTES);
    }
    pst_w_cstr(&w, r->stamp);
    return pst_w_finish(&w, len);
}

/* Fields of a type-15 outer after the parse: box, epk, seals, stamp. */
static int read_dev(const msgpack_object *it, pst_notify *out) {
    const msgpack_object *seals = NULL;
    const uint8_t *box = NULL;
    uint32_t n = 0;
    int rc = pst_r_bin(&it[2], BOX_MAX, &box, &out->sealed_len);
    if (rc == PST_OK && out->sealed_len > 0)
        memcpy(out->sealed, box, out->sealed_len);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[3], PST_BOX_PK_BYTES, out->epk);
    if (rc == PST_OK)
        rc = pst_r_array(&it[4], 1, PST_NOTIFY_DEVICES_MAX, &seals, &n);
    for (uint32_t i = 0; rc == PST_OK && i < n; i++)
        rc = pst_r_bin_fixed(&seals[i], PST_NOTIFY_KEYSEAL_BYTES, out->seals[i]);
    if (rc == PST_OK)
        out->n_seals = n;
    if (rc == PST_OK)
        rc = pst_r_str_copy(&it[5], out->stamp, sizeof out->stamp);
    return rc;
}

int pst_notify_decode(const uint8_t *in, size_t len, pst_notify *out) {
    if (pst_r_start(in, out, sizeof *out) != PST_OK)
        return PST_E_INVAL;
    pst_limits lim = pst_limits_record;
    lim.max_bytes = PST_NOTIFY_MAX;
    lim.max_depth = 2; /* the seals array of type 15 */
    lim.max_elems = PST_NOTIFY_DEVICES_MAX + 1u;
    lim.max_str = PST_NOTIFY_STAMP_MAX;
    lim.max_bin = PST_NOTIFY_SEALED_MAX;
    pst_reader rd;
    const msgpack_object *it = NULL;
    const uint8_t *sealed = NULL;
    int rc = pst_r_parse(&rd, in, len, &lim);
    if (rc == PST_OK) {
        rc = pst_r_record(&rd.root, PST_REC_NOTIFICATION, OUTER_FIELDS, &it);
        if (rc == PST_OK) {
            rc = pst_r_bin(&it[2], PST_NOTIFY_SEALED_MAX, &sealed, &out->sealed_len);
            if (rc == PST_OK && out->sealed_len > 0)
                memcpy(out->sealed, sealed, out->sealed_len);
            if (rc == PST_OK)
                rc = pst_r_str_copy(&it[3], out->stamp, sizeof out->stamp);
        } else if (rc == PST_E_RECTYPE) {
            rc = pst_r_record(&rd.root, PST_REC_NOTIFICATION_DEV, OUTER_FIELDS + 2u, &it);
            if (rc == PST_OK)
                rc = read_dev(it, out);
        }
    }
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

/* ---- sealing ------------------------------------------------------------- */

static const uint8_t box_nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];

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

/* The nonce of a key seal: BLAKE2b-192(epk || device pk), as
 * crypto_box_seal derives its own. */
static void seal_nonce(const uint8_t epk[PST_BOX_PK_BYTES], const uint8_t pk[PST_BOX_PK_BYTES],
                       uint8_t nonce[crypto_box_NONCEBYTES]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, crypto_box_NONCEBYTES);
    crypto_generichash_update(&st, epk, PST_BOX_PK_BYTES);
    crypto_generichash_update(&st, pk, PST_BOX_PK_BYTES);
    crypto_generichash_final(&st, nonce, crypto_box_NONCEBYTES);
}

int pst_notify_seal_devices(const pst_notify_inner *inner,
                            const uint8_t (*device_box_pks)[PST_BOX_PK_BYTES], uint32_t n_devices,
                            const uint8_t content_key[PST_NOTIFY_CONTENT_KEY_BYTES],
                            pst_notify *out) {
    if (out == NULL)
        return PST_E_INVAL;
    memset(out, 0, sizeof *out);
    if (inner == NULL || device_box_pks == NULL || content_key == NULL || n_devices == 0 ||
        n_devices > PST_NOTIFY_DEVICES_MAX)
        return PST_E_INVAL;
    uint8_t plain[PST_NOTIFY_INNER_MAX], eseed[crypto_box_SEEDBYTES];
    uint8_t esk[PST_BOX_SK_BYTES], nonce[crypto_box_NONCEBYTES];
    size_t n;
    unsigned long long clen = 0;
    int rc = pst_notify_inner_encode(inner, plain, sizeof plain, &n);
    if (rc == PST_OK && crypto_aead_xchacha20poly1305_ietf_encrypt(
                            out->sealed, &clen, plain, n, (const uint8_t *)PST_NOTIFY_BOX_AD,
                            sizeof PST_NOTIFY_BOX_AD - 1, NULL, box_nonce, content_key) != 0)
        rc = PST_E_CRYPTO;
    out->sealed_len = (size_t)clen;
    /* one ephemeral key pair for every seal, fresh with the content key */
    crypto_generichash(eseed, sizeof eseed, (const uint8_t *)PST_NOTIFY_EPH_CONTEXT,
                       sizeof PST_NOTIFY_EPH_CONTEXT - 1, content_key,
                       PST_NOTIFY_CONTENT_KEY_BYTES);
    if (rc == PST_OK && crypto_box_seed_keypair(out->epk, esk, eseed) != 0)
        rc = PST_E_CRYPTO;
    for (uint32_t i = 0; rc == PST_OK && i < n_devices; i++) {
        seal_nonce(out->epk, device_box_pks[i], nonce);
        if (crypto_box_easy(out->seals[i], content_key, PST_NOTIFY_CONTENT_KEY_BYTES, nonce,
                            device_box_pks[i], esk) != 0)
            rc = PST_E_CRYPTO;
    }
    out->n_seals = n_devices;
    if (rc == PST_OK && outer_size(out) > PST_NOTIFY_MAX)
        rc = PST_E_TOOBIG;
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    sodium_memzero(plain, sizeof plain);
    sodium_memzero(eseed, sizeof eseed);
    sodium_memzero(esk, sizeof esk);
    return rc;
}

/* The content key from the first seal that opens with this key pair: one
 * X25519 for all of them, then a MAC check each. */
static int open_key_seal(const pst_notify *o, const uint8_t pk[PST_BOX_PK_BYTES],
                         const uint8_t sk[PST_BOX_SK_BYTES],
                         uint8_t key[PST_NOTIFY_CONTENT_KEY_BYTES]) {
    uint8_t shared[crypto_box_BEFORENMBYTES], nonce[crypto_box_NONCEBYTES];
    int rc = PST_E_CRYPTO;
    if (crypto_box_beforenm(shared, o->epk, sk) != 0)
        return PST_E_CRYPTO;
    seal_nonce(o->epk, pk, nonce);
    for (uint32_t i = 0; i < o->n_seals && rc != PST_OK; i++)
        if (crypto_box_open_easy_afternm(key, o->seals[i], PST_NOTIFY_KEYSEAL_BYTES, nonce,
                                         shared) == 0)
            rc = PST_OK;
    sodium_memzero(shared, sizeof shared);
    return rc;
}

int pst_notify_open(const pst_notify *outer, const uint8_t recipient_box_pk[PST_BOX_PK_BYTES],
                    const uint8_t recipient_box_sk[PST_BOX_SK_BYTES], pst_notify_inner *inner) {
    if (inner == NULL)
        return PST_E_INVAL;
    sodium_memzero(inner, sizeof *inner);
    if (outer == NULL || recipient_box_pk == NULL || recipient_box_sk == NULL ||
        outer_validate(outer) != PST_OK)
        return PST_E_INVAL;
    uint8_t plain[PST_NOTIFY_INNER_MAX];
    uint8_t key[PST_NOTIFY_CONTENT_KEY_BYTES];
    size_t n = 0;
    int rc = PST_OK;
    if (outer->n_seals == 0) {
        n = outer->sealed_len - PST_SEAL_BYTES;
        if (crypto_box_seal_open(plain, outer->sealed, outer->sealed_len, recipient_box_pk,
                                 recipient_box_sk) != 0)
            rc = PST_E_CRYPTO;
    } else {
        unsigned long long plen = 0;
        rc = open_key_seal(outer, recipient_box_pk, recipient_box_sk, key);
        if (rc == PST_OK && crypto_aead_xchacha20poly1305_ietf_decrypt(
                                plain, &plen, NULL, outer->sealed, outer->sealed_len,
                                (const uint8_t *)PST_NOTIFY_BOX_AD, sizeof PST_NOTIFY_BOX_AD - 1,
                                box_nonce, key) != 0)
            rc = PST_E_CRYPTO;
        n = (size_t)plen;
    }
    if (rc == PST_OK)
        rc = pst_notify_inner_decode(plain, n, inner);
    sodium_memzero(plain, sizeof plain);
    sodium_memzero(key, sizeof key);
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

static void ext_of_hash(const uint8_t h[PST_HASH_BYTES], char out[PST_NOTIFY_STAMP_EXT_BUFSIZE]) {
    memcpy(out, "pn1=", 4);
    hex_lower(h, 16, out + 4);
}

void pst_notify_stamp_ext(const uint8_t *sealed, size_t len,
                          char out[PST_NOTIFY_STAMP_EXT_BUFSIZE]) {
    uint8_t h[PST_HASH_BYTES];
    crypto_generichash(h, sizeof h, sealed, len, NULL, 0);
    ext_of_hash(h, out);
}

void pst_notify_ext(const pst_notify *r, char out[PST_NOTIFY_STAMP_EXT_BUFSIZE]) {
    if (r->n_seals == 0) {
        pst_notify_stamp_ext(r->sealed, r->sealed_len, out);
        return;
    }
    uint8_t h[PST_HASH_BYTES];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, r->sealed, r->sealed_len);
    crypto_generichash_update(&st, r->epk, PST_BOX_PK_BYTES);
    for (uint32_t i = 0; i < r->n_seals && i < PST_NOTIFY_DEVICES_MAX; i++)
        crypto_generichash_update(&st, r->seals[i], PST_NOTIFY_KEYSEAL_BYTES);
    crypto_generichash_final(&st, h, sizeof h);
    ext_of_hash(h, out);
}

void pst_notify_stamp_resource(const uint8_t recipient_pk[PST_SIGN_PK_BYTES],
                               char out[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE]) {
    pst_fingerprint_format(recipient_pk, out);
}
