/* Identity keys, key files, fingerprints, addresses and slots (see
 * pst_identity.h). */
#include "pst_identity.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"
#include "pst_base32.h"
#include "pst_error.h"
#include "pst_records.h"

_Static_assert(PST_KDF_OPSLIMIT_MIN == crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE, "kdf min");
_Static_assert(PST_KDF_MEMLIMIT_MIN == crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE, "kdf min");
_Static_assert(PST_KDF_OPSLIMIT_DEFAULT == crypto_pwhash_argon2id_OPSLIMIT_MODERATE, "kdf def");
_Static_assert(PST_KDF_MEMLIMIT_DEFAULT == crypto_pwhash_argon2id_MEMLIMIT_MODERATE, "kdf def");
_Static_assert(PST_KDF_MEMLIMIT_MAX == crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE, "kdf max");
_Static_assert(PST_KDF_SALT_BYTES == crypto_pwhash_SALTBYTES, "salt size");
_Static_assert(PST_SEED_BYTES == crypto_sign_SEEDBYTES, "seed size");
_Static_assert(PST_FINGERPRINT_STRLEN == PST_BASE32_ENCODED_LEN(PST_SIGN_PK_BYTES), "fpr");

/* ---- keys ---------------------------------------------------------------- */

/* Guarded, zeroed memory for secrets, or NULL with *rc set. */
static void *alloc_bundle(size_t size, int *rc) {
    /* sodium_malloc needs the page size that sodium_init records */
    if (sodium_init() < 0) {
        *rc = PST_E_CRYPTO;
        return NULL;
    }
    void *p = sodium_malloc(size);
    if (p == NULL) {
        *rc = PST_E_NOMEM;
        return NULL;
    }
    sodium_memzero(p, size);
    *rc = PST_OK;
    return p;
}

static void set_box(pst_identity *id, const uint8_t box_sk[PST_BOX_SK_BYTES]) {
    memcpy(id->box_sk, box_sk, PST_BOX_SK_BYTES);
    crypto_scalarmult_base(id->box_pk, id->box_sk);
}

int pst_identity_from_seeds(const uint8_t sign_seed[PST_SEED_BYTES],
                            const uint8_t box_seed[PST_SEED_BYTES], const uint8_t *rev_seed_or_null,
                            pst_identity **out) {
    int rc;
    pst_identity *id = alloc_bundle(sizeof *id, &rc);
    *out = NULL;
    if (rc != PST_OK)
        return rc;
    crypto_sign_seed_keypair(id->sign_pk, id->sign_sk, sign_seed);
    set_box(id, box_seed);
    if (rev_seed_or_null != NULL) {
        crypto_sign_seed_keypair(id->rev_pk, id->rev_sk, rev_seed_or_null);
        id->has_rev_pk = true;
        id->has_rev_sk = true;
    }
    *out = id;
    return PST_OK;
}

void pst_identity_free(pst_identity *id) {
    if (id != NULL)
        sodium_free(id); /* wipes before unmapping */
}

void pst_identity_public(const pst_identity *id, pst_public_id *out) {
    memcpy(out->sign_pk, id->sign_pk, PST_SIGN_PK_BYTES);
    memcpy(out->box_pk, id->box_pk, PST_BOX_PK_BYTES);
}

void pst_identity_forget_revkey(pst_identity *id) {
    sodium_memzero(id->rev_sk, sizeof id->rev_sk);
    id->has_rev_sk = false;
}

/* ---- key files ------------------------------------------------------------
 * outer v2: [2, kind, prot, opslimit, memlimit, salt, nonce, body, check]
 * outer v1: [1, kind, prot, opslimit, memlimit, salt, nonce, body] (read only)
 *   prot 0: opslimit = memlimit = 0, salt and nonce empty, body = inner
 *   prot 1: body = crypto_secretbox(inner, nonce, Argon2id13(pass, salt))
 *   check: BLAKE2b-256(KEYFILE_CHECK_CTX || every byte of the file before the
 *   check field). A clear file has no MAC: without the check one flipped bit
 *   in a seed silently gives another valid identity. It is not a MAC (no
 *   secret): it catches damage, the secretbox catches tampering. It needs no
 *   passphrase, so a damaged sealed file is named as such before Argon2 runs.
 * inner identity: [1, sign_seed, box_sk, rev_pk (bin 0 or 32)]
 * inner revkey:   [2, identity_pk, rev_seed, auth]
 * The kind is repeated inside so that the MAC covers it. */

enum { KEYFILE_IDENTITY = 1, KEYFILE_REVKEY = 2 };
enum { PROT_CLEAR = 0, PROT_ARGON2ID_SECRETBOX = 1 };
enum { KEYFILE_V1 = 1, KEYFILE_V2 = 2 };
#define KEYFILE_FIELDS_V1 8u
#define KEYFILE_FIELDS_V2 9u
#define KEYFILE_CHECK_BYTES 32u
#define KEYFILE_CHECK_CTX "postern/keyfile/check\0"
#define KEYFILE_CHECK_ENCODED (2u + KEYFILE_CHECK_BYTES) /* bin8 header + bytes */
#define INNER_MAX 160u
#define NONCE_BYTES PST_KEYFILE_NONCE_BYTES
_Static_assert(PST_KEYFILE_NONCE_BYTES == crypto_secretbox_NONCEBYTES, "secretbox nonce");
#define MAC_BYTES crypto_secretbox_MACBYTES

_Static_assert(PST_KEYFILE_VERSION == KEYFILE_V2, "key file version");

static bool kdf_in_range(uint64_t ops, uint64_t mem) {
    return ops >= PST_KDF_OPSLIMIT_MIN && ops <= PST_KDF_OPSLIMIT_MAX &&
           mem >= PST_KDF_MEMLIMIT_MIN && mem <= PST_KDF_MEMLIMIT_MAX;
}

static int derive_key(uint8_t key[crypto_secretbox_KEYBYTES], const char *pass, size_t pass_len,
                      const uint8_t *salt, uint64_t ops, size_t mem) {
    if (sodium_init() < 0)
        return PST_E_CRYPTO;
    if (crypto_pwhash(key, crypto_secretbox_KEYBYTES, pass, pass_len, salt, ops, mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return PST_E_NOMEM; /* Argon2 fails only when it cannot allocate */
    return PST_OK;
}

static void keyfile_check(const uint8_t *prefix, size_t n, uint8_t out[KEYFILE_CHECK_BYTES]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, KEYFILE_CHECK_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)KEYFILE_CHECK_CTX,
                              sizeof(KEYFILE_CHECK_CTX) - 1);
    crypto_generichash_update(&st, prefix, n);
    crypto_generichash_final(&st, out, KEYFILE_CHECK_BYTES);
}

/* Writes the outer array. v2 ends with a check over what came before, which
 * needs the bytes written so far: w must write into a flat buffer. */
static void write_outer(pst_writer *w, int version, int kind, int prot, uint64_t ops, uint64_t mem,
                        const uint8_t *salt, const uint8_t *nonce, const uint8_t *body,
                        size_t body_len, const uint8_t *check_or_null) {
    bool sealed = prot == PROT_ARGON2ID_SECRETBOX;
    pst_w_array(w, version == KEYFILE_V1 ? KEYFILE_FIELDS_V1 : KEYFILE_FIELDS_V2);
    pst_w_uint(w, (uint64_t)version);
    pst_w_uint(w, (uint64_t)kind);
    pst_w_uint(w, (uint64_t)prot);
    pst_w_uint(w, ops);
    pst_w_uint(w, mem);
    pst_w_bin(w, salt, sealed ? PST_KDF_SALT_BYTES : 0);
    pst_w_bin(w, nonce, sealed ? NONCE_BYTES : 0);
    pst_w_bin(w, body, body_len);
    if (version == KEYFILE_V2) {
        static const uint8_t zero[KEYFILE_CHECK_BYTES];
        pst_w_bin(w, check_or_null ? check_or_null : zero, KEYFILE_CHECK_BYTES);
    }
}

/* Writes a v2 file into out and fills in its check. */
static int write_v2(int kind, int prot, uint64_t ops, uint64_t mem, const uint8_t *salt,
                    const uint8_t *nonce, const uint8_t *body, size_t body_len, uint8_t *out,
                    size_t cap, size_t *len) {
    pst_writer w;
    uint8_t check[KEYFILE_CHECK_BYTES];
    pst_w_init(&w, out, cap);
    write_outer(&w, KEYFILE_V2, kind, prot, ops, mem, salt, nonce, body, body_len, NULL);
    int rc = pst_w_finish(&w, len);
    if (rc != PST_OK)
        return rc;
    /* the check is the last KEYFILE_CHECK_BYTES bytes of the encoding */
    keyfile_check(out, *len - KEYFILE_CHECK_ENCODED, check);
    memcpy(out + *len - KEYFILE_CHECK_BYTES, check, KEYFILE_CHECK_BYTES);
    return PST_OK;
}

static int keyfile_write(int kind, const uint8_t *inner, size_t inner_len, const char *pass,
                         size_t pass_len, const uint8_t *salt, const uint8_t *nonce,
                         const pst_kdf_params *kdf, uint8_t *out, size_t cap, size_t *len) {
    uint8_t key[crypto_secretbox_KEYBYTES];
    uint8_t boxed[INNER_MAX + MAC_BYTES];
    int rc;

    *len = 0;
    if (out == NULL)
        return PST_E_INVAL;
    if (sodium_init() < 0)
        return PST_E_CRYPTO;
    if (pass == NULL) {
        rc = write_v2(kind, PROT_CLEAR, 0, 0, NULL, NULL, inner, inner_len, out, cap, len);
        goto done;
    }
    uint64_t ops = kdf ? kdf->opslimit : PST_KDF_OPSLIMIT_DEFAULT;
    uint64_t mem = kdf ? kdf->memlimit : PST_KDF_MEMLIMIT_DEFAULT;
    if (pass_len == 0 || pass_len > PST_PASSPHRASE_MAX || salt == NULL || nonce == NULL ||
        !kdf_in_range(ops, mem) || inner_len > INNER_MAX) {
        rc = PST_E_INVAL;
        goto done;
    }
    rc = derive_key(key, pass, pass_len, salt, ops, (size_t)mem);
    if (rc != PST_OK)
        goto done;
    crypto_secretbox_easy(boxed, inner, inner_len, nonce, key);
    rc = write_v2(kind, PROT_ARGON2ID_SECRETBOX, ops, mem, salt, nonce, boxed,
                  inner_len + MAC_BYTES, out, cap, len);
done:
    sodium_memzero(key, sizeof key);
    if (rc != PST_OK) {
        if (cap > 0)
            memset(out, 0, cap);
        *len = 0;
    }
    return rc;
}

/* The outer layer of a key file, decoded and checked; pointers into in. */
typedef struct {
    uint64_t version, kind, prot, ops, mem;
    const uint8_t *salt, *nonce, *body;
    size_t salt_len, nonce_len, body_len;
} keyfile_outer;

/* Strictly decodes and checks everything that needs no passphrase: shape,
 * version, ranges, canonical encoding and (v2) the integrity check. The
 * check is compared before any field is interpreted, so a damaged v2 file is
 * PST_E_CHECKSUM whatever byte changed, unless the change breaks the msgpack
 * structure itself (then the decoding error). want_kind 0 = either kind. */
static int outer_read(const uint8_t *in, size_t len, int want_kind, keyfile_outer *o) {
    pst_limits lim = pst_limits_record;
    pst_reader r;
    const msgpack_object *it;
    uint32_t n;
    uint8_t re[PST_KEYFILE_MAX];
    size_t re_len;
    pst_writer w;
    memset(o, 0, sizeof *o);
    if (in == NULL)
        return PST_E_INVAL;
    lim.max_bytes = PST_KEYFILE_MAX;
    lim.max_depth = 1;
    int rc = pst_r_parse(&r, in, len, &lim);
    if (rc != PST_OK) /* the reader is freed on every path, failed parses too */
        goto done;
    if ((rc = pst_r_array(&r.root, KEYFILE_FIELDS_V1, KEYFILE_FIELDS_V2, &it, &n)) != PST_OK ||
        (rc = pst_r_uint(&it[0], UINT64_MAX, &o->version)) != PST_OK)
        goto done;
    rc = PST_E_VERSION;
    if (o->version != KEYFILE_V1 && o->version != KEYFILE_V2)
        goto done;
    rc = PST_E_FIELDS;
    if (n != (o->version == KEYFILE_V1 ? KEYFILE_FIELDS_V1 : KEYFILE_FIELDS_V2))
        goto done;
    if (o->version == KEYFILE_V2) {
        const uint8_t *check;
        size_t check_len;
        uint8_t want[KEYFILE_CHECK_BYTES];
        if ((rc = pst_r_bin(&it[8], KEYFILE_CHECK_BYTES, &check, &check_len)) != PST_OK)
            goto done;
        rc = PST_E_CHECKSUM;
        if (check_len != KEYFILE_CHECK_BYTES || len < KEYFILE_CHECK_ENCODED)
            goto done;
        keyfile_check(in, len - KEYFILE_CHECK_ENCODED, want);
        /* the check's own position is confirmed by the canonical re-encoding */
        if (sodium_memcmp(want, check, KEYFILE_CHECK_BYTES) != 0)
            goto done;
    }
    if ((rc = pst_r_uint(&it[1], KEYFILE_REVKEY, &o->kind)) != PST_OK ||
        (rc = pst_r_uint(&it[2], PROT_ARGON2ID_SECRETBOX, &o->prot)) != PST_OK ||
        (rc = pst_r_uint(&it[3], UINT64_MAX, &o->ops)) != PST_OK ||
        (rc = pst_r_uint(&it[4], UINT64_MAX, &o->mem)) != PST_OK ||
        (rc = pst_r_bin(&it[5], PST_KDF_SALT_BYTES, &o->salt, &o->salt_len)) != PST_OK ||
        (rc = pst_r_bin(&it[6], NONCE_BYTES, &o->nonce, &o->nonce_len)) != PST_OK ||
        (rc = pst_r_bin(&it[7], INNER_MAX + MAC_BYTES, &o->body, &o->body_len)) != PST_OK)
        goto done;
    rc = PST_E_RECTYPE;
    if (o->kind == 0 || (want_kind != 0 && o->kind != (uint64_t)want_kind))
        goto done;
    rc = PST_E_RANGE;
    if (o->prot == PROT_CLEAR &&
        (o->ops != 0 || o->mem != 0 || o->salt_len != 0 || o->nonce_len != 0))
        goto done;
    if (o->prot == PROT_ARGON2ID_SECRETBOX &&
        (!kdf_in_range(o->ops, o->mem) || o->salt_len != PST_KDF_SALT_BYTES ||
         o->nonce_len != NONCE_BYTES || o->body_len < MAC_BYTES ||
         o->body_len - MAC_BYTES > INNER_MAX))
        goto done;
    if (o->prot == PROT_CLEAR && o->body_len > INNER_MAX)
        goto done;
    pst_w_init(&w, re, sizeof re);
    write_outer(&w, (int)o->version, (int)o->kind, (int)o->prot, o->ops, o->mem, o->salt, o->nonce,
                o->body, o->body_len,
                o->version == KEYFILE_V2 ? in + len - KEYFILE_CHECK_BYTES : NULL);
    if ((rc = pst_w_finish(&w, &re_len)) == PST_OK)
        rc = pst_canonical_check(in, len, re, re_len);
    sodium_memzero(re, sizeof re);
done:
    pst_r_free(&r);
    /* pointers into in are meaningless after an error: do not leave them */
    if (rc != PST_OK)
        memset(o, 0, sizeof *o);
    return rc;
}

int pst_keyfile_is_encrypted(const uint8_t *in, size_t len) {
    keyfile_outer o;
    int rc = outer_read(in, len, 0, &o);
    return rc != PST_OK ? rc : o.prot == PROT_ARGON2ID_SECRETBOX;
}

int pst_keyfile_version(const uint8_t *in, size_t len) {
    keyfile_outer o;
    int rc = outer_read(in, len, 0, &o);
    return rc != PST_OK ? rc : (int)o.version;
}

/* Decodes the outer layer, opens it and copies the inner encoding (secret)
 * into inner. */
static int keyfile_read(const uint8_t *in, size_t len, const char *pass, size_t pass_len,
                        int want_kind, uint8_t *inner, size_t *inner_len) {
    keyfile_outer o;
    uint8_t key[crypto_secretbox_KEYBYTES];

    *inner_len = 0;
    sodium_memzero(key, sizeof key);
    int rc = outer_read(in, len, want_kind, &o);
    if (rc != PST_OK)
        goto done;
    if (o.prot == PROT_CLEAR) {
        memcpy(inner, o.body, o.body_len);
        *inner_len = o.body_len;
        goto done;
    }
    rc = PST_E_PASSPHRASE;
    if (pass == NULL || pass_len == 0 || pass_len > PST_PASSPHRASE_MAX)
        goto done;
    if ((rc = derive_key(key, pass, pass_len, o.salt, o.ops, (size_t)o.mem)) != PST_OK)
        goto done;
    if (crypto_secretbox_open_easy(inner, o.body, o.body_len, o.nonce, key) != 0) {
        rc = PST_E_PASSPHRASE;
        goto done;
    }
    *inner_len = o.body_len - MAC_BYTES;
done:
    sodium_memzero(key, sizeof key);
    if (rc != PST_OK) {
        sodium_memzero(inner, INNER_MAX);
        *inner_len = 0;
    }
    return rc;
}

/* Decodes the secret inner array: [kind, a (bin32), b (bin32), c (bin)].
 * A malformed inner layer of a sealed file can only come from tampering
 * with the right passphrase, so every error maps to PST_E_PASSPHRASE there. */
static int inner_read(const uint8_t *inner, size_t inner_len, int kind, uint8_t a[32],
                      uint8_t b[32], uint8_t *c, size_t c_max, size_t *c_len) {
    pst_limits lim = pst_limits_record;
    pst_reader r;
    const msgpack_object *it;
    uint32_t n;
    uint64_t k;
    const uint8_t *cp;
    uint8_t re[INNER_MAX];
    size_t re_len;
    pst_writer w;
    lim.max_bytes = INNER_MAX;
    lim.max_depth = 1;
    int rc = pst_r_parse(&r, inner, inner_len, &lim);
    if (rc == PST_OK)
        rc = pst_r_array(&r.root, 4, 4, &it, &n);
    if (rc == PST_OK && (rc = pst_r_uint(&it[0], UINT64_MAX, &k)) == PST_OK && k != (uint64_t)kind)
        rc = PST_E_RECTYPE;
    if (rc == PST_OK && (rc = pst_r_bin_fixed(&it[1], 32, a)) == PST_OK &&
        (rc = pst_r_bin_fixed(&it[2], 32, b)) == PST_OK &&
        (rc = pst_r_bin(&it[3], c_max, &cp, c_len)) == PST_OK) {
        memcpy(c, cp, *c_len);
        pst_w_init(&w, re, sizeof re);
        pst_w_array(&w, 4);
        pst_w_uint(&w, k);
        pst_w_bin(&w, a, 32);
        pst_w_bin(&w, b, 32);
        pst_w_bin(&w, c, *c_len);
        if ((rc = pst_w_finish(&w, &re_len)) == PST_OK)
            rc = pst_canonical_check(inner, inner_len, re, re_len);
        sodium_memzero(re, sizeof re);
    }
    pst_r_free(&r);
    return rc;
}

int pst_identity_export(const pst_identity *id, const char *pass, size_t pass_len,
                        const uint8_t *salt, const uint8_t *nonce, const pst_kdf_params *kdf,
                        uint8_t *out, size_t cap, size_t *len) {
    uint8_t inner[INNER_MAX];
    size_t inner_len = 0;
    pst_writer w;
    pst_w_init(&w, inner, sizeof inner);
    pst_w_array(&w, 4);
    pst_w_uint(&w, KEYFILE_IDENTITY);
    pst_w_bin(&w, id->sign_sk, PST_SEED_BYTES); /* sign_sk starts with the seed */
    pst_w_bin(&w, id->box_sk, PST_BOX_SK_BYTES);
    pst_w_bin(&w, id->rev_pk, id->has_rev_pk ? PST_SIGN_PK_BYTES : 0);
    int rc = pst_w_finish(&w, &inner_len);
    if (rc == PST_OK)
        rc = keyfile_write(KEYFILE_IDENTITY, inner, inner_len, pass, pass_len, salt, nonce, kdf,
                           out, cap, len);
    else if (out != NULL && cap > 0)
        memset(out, 0, cap);
    sodium_memzero(inner, sizeof inner);
    return rc;
}

int pst_identity_import(const uint8_t *in, size_t len, const char *pass, size_t pass_len,
                        pst_identity **out) {
    uint8_t inner[INNER_MAX];
    size_t inner_len;
    uint8_t seed[PST_SEED_BYTES], box_sk[PST_BOX_SK_BYTES], rev_pk[PST_SIGN_PK_BYTES];
    size_t rev_len = 0;
    pst_identity *id = NULL;
    *out = NULL;
    int enc = pst_keyfile_is_encrypted(in, len);
    int rc = keyfile_read(in, len, pass, pass_len, KEYFILE_IDENTITY, inner, &inner_len);
    if (rc == PST_OK) {
        rc = inner_read(inner, inner_len, KEYFILE_IDENTITY, seed, box_sk, rev_pk, PST_SIGN_PK_BYTES,
                        &rev_len);
        if (rc == PST_OK && rev_len != 0 && rev_len != PST_SIGN_PK_BYTES)
            rc = PST_E_RANGE;
        if (rc != PST_OK && enc == 1)
            rc = PST_E_PASSPHRASE;
    }
    if (rc == PST_OK)
        rc = pst_identity_from_seeds(seed, box_sk, NULL, &id);
    if (rc == PST_OK && rev_len == PST_SIGN_PK_BYTES) {
        memcpy(id->rev_pk, rev_pk, PST_SIGN_PK_BYTES);
        id->has_rev_pk = true;
    }
    sodium_memzero(inner, sizeof inner);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(box_sk, sizeof box_sk);
    *out = id;
    return rc;
}

int pst_revkey_export(const pst_identity *id, const char *pass, size_t pass_len,
                      const uint8_t *salt, const uint8_t *nonce, const pst_kdf_params *kdf,
                      uint8_t *out, size_t cap, size_t *len) {
    uint8_t inner[INNER_MAX];
    uint8_t auth[PST_SIG_BYTES];
    size_t inner_len = 0;
    pst_writer w;
    int rc = PST_E_NOKEY;
    *len = 0;
    if (id->has_rev_sk) {
        rc = pst_revocation_auth_make(id->sign_sk, id->rev_pk, auth);
    }
    if (rc == PST_OK) {
        pst_w_init(&w, inner, sizeof inner);
        pst_w_array(&w, 4);
        pst_w_uint(&w, KEYFILE_REVKEY);
        pst_w_bin(&w, id->sign_pk, PST_SIGN_PK_BYTES);
        pst_w_bin(&w, id->rev_sk, PST_SEED_BYTES);
        pst_w_bin(&w, auth, PST_SIG_BYTES);
        rc = pst_w_finish(&w, &inner_len);
    }
    if (rc == PST_OK)
        rc = keyfile_write(KEYFILE_REVKEY, inner, inner_len, pass, pass_len, salt, nonce, kdf, out,
                           cap, len);
    else if (out != NULL && cap > 0)
        memset(out, 0, cap);
    sodium_memzero(inner, sizeof inner);
    return rc;
}

int pst_revkey_import(const uint8_t *in, size_t len, const char *pass, size_t pass_len,
                      pst_revkey **out) {
    uint8_t inner[INNER_MAX];
    size_t inner_len, auth_len = 0;
    uint8_t identity_pk[PST_SIGN_PK_BYTES], seed[PST_SEED_BYTES], auth[PST_SIG_BYTES];
    pst_revkey *rk = NULL;
    *out = NULL;
    int enc = pst_keyfile_is_encrypted(in, len);
    int rc = keyfile_read(in, len, pass, pass_len, KEYFILE_REVKEY, inner, &inner_len);
    if (rc == PST_OK) {
        rc = inner_read(inner, inner_len, KEYFILE_REVKEY, identity_pk, seed, auth, PST_SIG_BYTES,
                        &auth_len);
        if (rc == PST_OK && auth_len != PST_SIG_BYTES)
            rc = PST_E_RANGE;
        if (rc != PST_OK && enc == 1)
            rc = PST_E_PASSPHRASE;
    }
    if (rc == PST_OK)
        rk = alloc_bundle(sizeof *rk, &rc);
    if (rc == PST_OK) {
        memcpy(rk->identity_pk, identity_pk, PST_SIGN_PK_BYTES);
        crypto_sign_seed_keypair(rk->rev_pk, rk->rev_sk, seed);
        memcpy(rk->auth, auth, PST_SIG_BYTES);
        rc = pst_revocation_auth_verify(rk->identity_pk, rk->rev_pk, rk->auth);
        if (rc != PST_OK) {
            pst_revkey_free(rk);
            rk = NULL;
        }
    }
    sodium_memzero(inner, sizeof inner);
    sodium_memzero(seed, sizeof seed);
    *out = rk;
    return rc;
}

void pst_revkey_free(pst_revkey *rk) {
    if (rk != NULL)
        sodium_free(rk);
}

/* ---- fingerprints --------------------------------------------------------- */

void pst_fingerprint_format(const uint8_t pk[PST_SIGN_PK_BYTES],
                            char out[PST_FINGERPRINT_STRLEN + 1]) {
    (void)pst_base32_encode(pk, PST_SIGN_PK_BYTES, out, PST_FINGERPRINT_STRLEN + 1);
}

int pst_fingerprint_parse(const char *s, uint8_t pk[PST_SIGN_PK_BYTES]) {
    size_t n;
    memset(pk, 0, PST_SIGN_PK_BYTES);
    if (s == NULL || strnlen(s, PST_FINGERPRINT_STRLEN + 1) != PST_FINGERPRINT_STRLEN)
        return PST_E_INVAL;
    return pst_base32_decode(s, PST_FINGERPRINT_STRLEN, pk, PST_SIGN_PK_BYTES, &n);
}

/* ---- addresses ------------------------------------------------------------ */

static bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

static bool local_ok(const char *s, size_t n) {
    if (n < 1 || n > PST_ADDRESS_LOCAL_MAX || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '+' && c != '-')
            return false;
        if (c == '.' && i + 1 < n && s[i + 1] == '.')
            return false;
    }
    return true;
}

/* Dot-separated LDH labels, 1..max bytes in all. Shared with endpoints. */
static bool domain_ok(const char *s, size_t n, size_t max) {
    if (n < 1 || n > max)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? s[i] : '.';
        if (c == '.') {
            if (label == 0 || label > PST_ADDRESS_LABEL_MAX || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!is_lower_alnum(c) && c != '-')
            return false;
        if (c == '-' && label == 0)
            return false;
        label++;
    }
    return true;
}

bool pst_address_is_normalized(const char *s, size_t n) {
    if (s == NULL || n > PST_ADDRESS_MAX)
        return false;
    const char *at = memchr(s, '@', n);
    if (at == NULL)
        return false;
    size_t local = (size_t)(at - s);
    return local_ok(s, local) && domain_ok(at + 1, n - local - 1, PST_ADDRESS_DOMAIN_MAX);
}

bool pst_hostname_is_valid(const char *s, size_t n) {
    return s != NULL && domain_ok(s, n, PST_HOSTNAME_MAX);
}

int pst_address_normalize(const char *in, char *out, size_t cap) {
    char tmp[PST_ADDRESS_MAX + 1];
    if (out != NULL && cap > 0)
        out[0] = '\0';
    if (in == NULL || out == NULL)
        return PST_E_INVAL;
    size_t n = strnlen(in, PST_ADDRESS_MAX + 1);
    if (n > PST_ADDRESS_MAX)
        return PST_E_INVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            return PST_E_INVAL;
        tmp[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    if (!pst_address_is_normalized(tmp, n))
        return PST_E_INVAL;
    if (n >= cap)
        return PST_E_NOSPACE;
    memcpy(out, tmp, n);
    out[n] = '\0';
    return PST_OK;
}

/* ---- DHT slots ------------------------------------------------------------ */

static void slot_hash(const char *ctx, size_t ctx_len, const void *data, size_t n,
                      uint8_t slot[PST_SLOT_BYTES]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, PST_SLOT_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)ctx, ctx_len);
    crypto_generichash_update(&st, data, n);
    crypto_generichash_final(&st, slot, PST_SLOT_BYTES);
}

/* sizeof - 1 keeps the explicit NUL and drops the implicit one */
#define SLOT(ctx, data, n, slot) slot_hash(ctx, sizeof(ctx) - 1, data, n, slot)

void pst_slot_key(const uint8_t pk[PST_SIGN_PK_BYTES], uint8_t slot[PST_SLOT_BYTES]) {
    SLOT(PST_SLOT_CTX_KEY, pk, PST_SIGN_PK_BYTES, slot);
}

int pst_slot_address(const char *address, uint8_t slot[PST_SLOT_BYTES]) {
    size_t n = address ? strnlen(address, PST_ADDRESS_MAX + 1) : 0;
    if (!pst_address_is_normalized(address, n)) {
        memset(slot, 0, PST_SLOT_BYTES);
        return PST_E_INVAL;
    }
    SLOT(PST_SLOT_CTX_ADDRESS, address, n, slot);
    return PST_OK;
}

void pst_slot_inbox(const uint8_t pk[PST_SIGN_PK_BYTES], uint8_t slot[PST_SLOT_BYTES]) {
    SLOT(PST_SLOT_CTX_INBOX, pk, PST_SIGN_PK_BYTES, slot);
}

void pst_slot_vouch(const uint8_t pk[PST_SIGN_PK_BYTES], uint8_t slot[PST_SLOT_BYTES]) {
    SLOT(PST_SLOT_CTX_VOUCH, pk, PST_SIGN_PK_BYTES, slot);
}

void pst_slot_devices(const uint8_t pk[PST_SIGN_PK_BYTES], uint8_t slot[PST_SLOT_BYTES]) {
    SLOT(PST_SLOT_CTX_DEVICES, pk, PST_SIGN_PK_BYTES, slot);
}

void pst_slot_hex(const uint8_t slot[PST_SLOT_BYTES], char out[PST_SLOT_HEX_STRLEN + 1]) {
    sodium_bin2hex(out, PST_SLOT_HEX_STRLEN + 1, slot, PST_SLOT_BYTES);
}
