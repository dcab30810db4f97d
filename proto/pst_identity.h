/* Identity of a Postern user: keys, fingerprints, addresses and DHT slots.
 *
 * An identity is three keypairs: the Ed25519 identity key (signs every record;
 * its public half IS the identity and, printed in z-base-32, its fingerprint),
 * the X25519 encryption key (notifications and message keys are sealed to it)
 * and an optional offline Ed25519 revocation key (can revoke the identity if
 * the identity key is lost; kept in a separate key file, normally offline).
 *
 * Pure: no files, clock, globals or randomness. Fresh key seeds, salts and
 * nonces are drawn by the caller (randombytes_buf) and passed in. */
#ifndef PST_IDENTITY_H
#define PST_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- keys ---------------------------------------------------------------- */

#define PST_SEED_BYTES 32u /* crypto_sign_SEEDBYTES */

/* The secret bundle. Lives only in sodium_malloc'd memory: obtain it from
 * pst_identity_from_seeds() or pst_identity_import() and
 * release it with pst_identity_free(); never copy it to the stack. */
typedef struct pst_identity {
    uint8_t sign_pk[PST_SIGN_PK_BYTES]; /* identity key = fingerprint */
    uint8_t sign_sk[PST_SIGN_SK_BYTES]; /* libsodium layout: seed || pk */
    uint8_t box_pk[PST_BOX_PK_BYTES];
    uint8_t box_sk[PST_BOX_SK_BYTES];
    bool has_rev_pk; /* a revocation key exists; its public half is published */
    bool has_rev_sk; /* ... and its secret half is in this bundle */
    uint8_t rev_pk[PST_SIGN_PK_BYTES];
    uint8_t rev_sk[PST_SIGN_SK_BYTES];
} pst_identity;

/* The public part, as published in a KeyRecord. Plain value type. */
typedef struct pst_public_id {
    uint8_t sign_pk[PST_SIGN_PK_BYTES];
    uint8_t box_pk[PST_BOX_PK_BYTES];
} pst_public_id;

/* The identity made from its seeds: sign = crypto_sign_seed_keypair(sign_seed),
 * box_sk = box_seed (X25519 clamps it; box_pk = crypto_scalarmult_base),
 * revocation keypair from rev_seed unless rev_seed is NULL. A new identity
 * is this with three fresh random seeds from the caller (the same keys
 * crypto_sign_keypair and crypto_box_keypair would make); known-answer tests
 * give fixed ones. *out is owned by the caller (pst_identity_free). Errors:
 * PST_E_NOMEM, PST_E_CRYPTO (sodium_init failed); *out is NULL on error. */
int pst_identity_from_seeds(const uint8_t sign_seed[PST_SEED_BYTES],
                            const uint8_t box_seed[PST_SEED_BYTES], const uint8_t *rev_seed_or_null,
                            pst_identity **out);

/* Wipes and frees id (sodium_free). NULL is a no-op. */
void pst_identity_free(pst_identity *id);

/* Copies the public keys of id into out. */
void pst_identity_public(const pst_identity *id, pst_public_id *out);

/* Wipes the revocation secret key from id, keeping its public half (call
 * after pst_revkey_export() has written it to its offline file). */
void pst_identity_forget_revkey(pst_identity *id);

/* ---- key files ------------------------------------------------------------ */

/* Argon2id cost of a passphrase-protected key file. The file records the
 * values used; import refuses anything below the INTERACTIVE limits (a
 * downgraded file) or above the MAX ones (a denial of service). */
typedef struct pst_kdf_params {
    uint64_t opslimit;
    size_t memlimit;
} pst_kdf_params;

#define PST_KDF_OPSLIMIT_MIN 2u             /* crypto_pwhash_OPSLIMIT_INTERACTIVE */
#define PST_KDF_MEMLIMIT_MIN 67108864u      /* crypto_pwhash_MEMLIMIT_INTERACTIVE */
#define PST_KDF_OPSLIMIT_DEFAULT 3u         /* crypto_pwhash_OPSLIMIT_MODERATE */
#define PST_KDF_MEMLIMIT_DEFAULT 268435456u /* crypto_pwhash_MEMLIMIT_MODERATE */
#define PST_KDF_OPSLIMIT_MAX 16u
#define PST_KDF_MEMLIMIT_MAX 1073741824u /* crypto_pwhash_MEMLIMIT_SENSITIVE */
#define PST_KDF_SALT_BYTES 16u           /* crypto_pwhash_SALTBYTES */
#define PST_PASSPHRASE_MAX 1024u
#define PST_KEYFILE_NONCE_BYTES 24u /* crypto_secretbox_NONCEBYTES */
#define PST_KEYFILE_MAX 512u        /* any exported key file fits in this many bytes */

/* Serializes the identity's secrets (identity seed, X25519 secret key and the
 * revocation PUBLIC key if any; never the revocation secret key) into out.
 * With pass == NULL the file is in the clear; otherwise the secrets are
 * sealed with crypto_secretbox under a key from Argon2id(pass, salt, kdf)
 * (kdf NULL = PST_KDF_*_DEFAULT) with the given nonce. Always writes format
 * PST_KEYFILE_VERSION (with its integrity check). salt (PST_KDF_SALT_BYTES)
 * and nonce (PST_KEYFILE_NONCE_BYTES) are required with a passphrase (give
 * fresh random bytes for each file: proto/ draws none) and ignored without
 * one. Errors: PST_E_INVAL (pass_len 0 or > PST_PASSPHRASE_MAX with pass !=
 * NULL, kdf outside [MIN, MAX], missing salt or nonce), PST_E_NOSPACE,
 * PST_E_NOMEM (Argon2 could not allocate). On error out is zeroed and *len
 * is 0. */
int pst_identity_export(const pst_identity *id, const char *pass, size_t pass_len,
                        const uint8_t *salt, const uint8_t *nonce, const pst_kdf_params *kdf,
                        uint8_t *out, size_t cap, size_t *len);

/* Parses a file made by pst_identity_export(). pass may be NULL for a file in
 * the clear (a passphrase given for such a file is ignored). *out is owned by
 * the caller. Errors: PST_E_CHECKSUM (format 2 file whose integrity check
 * fails: damaged; checked before the passphrase is used), PST_E_PASSPHRASE
 * (file is encrypted and pass is wrong or missing, or the file was tampered
 * with), PST_E_RANGE (KDF limits outside
 * [MIN, MAX]), PST_E_RECTYPE (a revocation key file), decoding errors of a
 * malformed file (PST_E_TRUNCATED, PST_E_FIELDS, PST_E_NONCANONICAL, ...),
 * PST_E_NOMEM. *out is NULL on error. */
int pst_identity_import(const uint8_t *in, size_t len, const char *pass, size_t pass_len,
                        pst_identity **out);

/* Key file format written by the export functions. Format 2 ends with an
 * integrity check (BLAKE2b-256 of the bytes before it) so that a damaged file
 * is refused instead of yielding another key; format 1 files (no check, made
 * by Postern before 0.2) are still read. */
#define PST_KEYFILE_VERSION 2

/* True (1) if in is a key file sealed with a passphrase, 0 if it is in the
 * clear, negative PST_E_* if it is not a sound key file: PST_E_CHECKSUM when
 * its integrity check fails (the file is damaged), decoding errors otherwise.
 * Checks everything that needs no passphrase. Lets the CLI decide whether to
 * prompt. */
int pst_keyfile_is_encrypted(const uint8_t *in, size_t len);

/* The format version of a sound key file (1 or 2; see PST_KEYFILE_VERSION),
 * or the negative PST_E_* of pst_keyfile_is_encrypted(). */
int pst_keyfile_version(const uint8_t *in, size_t len);

/* The offline revocation key, as loaded from its own file: enough to sign a
 * revocation of identity_pk without the identity key. sodium_malloc'd. */
typedef struct pst_revkey {
    uint8_t identity_pk[PST_SIGN_PK_BYTES]; /* the identity it may revoke */
    uint8_t rev_pk[PST_SIGN_PK_BYTES];
    uint8_t rev_sk[PST_SIGN_SK_BYTES];
    uint8_t auth[PST_SIG_BYTES]; /* identity key's signature over rev_pk */
} pst_revkey;

/* Serializes the revocation secret key of id together with the identity
 * public key and the authorisation signature (pst_revocation_auth_make, made
 * now with the identity key), so a revocation can later be signed with this
 * file alone. Same passphrase handling and errors as pst_identity_export();
 * PST_E_NOKEY if id holds no revocation secret key. */
int pst_revkey_export(const pst_identity *id, const char *pass, size_t pass_len,
                      const uint8_t *salt, const uint8_t *nonce, const pst_kdf_params *kdf,
                      uint8_t *out, size_t cap, size_t *len);

/* Parses a file made by pst_revkey_export() and checks its authorisation
 * signature (PST_E_SIGNER if it does not verify). Other errors as
 * pst_identity_import(); PST_E_RECTYPE for an identity key file. */
int pst_revkey_import(const uint8_t *in, size_t len, const char *pass, size_t pass_len,
                      pst_revkey **out);

/* Wipes and frees rk. NULL is a no-op. */
void pst_revkey_free(pst_revkey *rk);

/* ---- fingerprints --------------------------------------------------------- */

/* The fingerprint is the 32-byte identity public key in z-base-32. */
#define PST_FINGERPRINT_STRLEN 52u

/* Writes the 52-character lowercase fingerprint of pk plus a NUL. */
void pst_fingerprint_format(const uint8_t pk[PST_SIGN_PK_BYTES],
                            char out[PST_FINGERPRINT_STRLEN + 1]);

/* Parses exactly PST_FINGERPRINT_STRLEN characters (either case; no spaces or
 * other separators) up to the NUL. Errors: PST_E_INVAL (length or alphabet),
 * PST_E_NONCANONICAL (non-zero trailing bits). pk is zeroed on error. Does not
 * check that pk is a valid curve point: verification will. */
int pst_fingerprint_parse(const char *s, uint8_t pk[PST_SIGN_PK_BYTES]);

/* ---- addresses ------------------------------------------------------------ */

#define PST_ADDRESS_MAX 254u        /* whole normalized address, bytes */
#define PST_ADDRESS_LOCAL_MAX 64u   /* part before '@' */
#define PST_ADDRESS_DOMAIN_MAX 190u /* part after '@' */
#define PST_ADDRESS_LABEL_MAX 63u   /* one DNS label of the domain */

/* Normalizes an e-mail address to the form used in records and slots:
 * "local@domain", ASCII only, lower-cased. local: 1..64 of [a-z0-9._+-], not
 * starting or ending with '.', no "..". domain: 1..190 characters, dot-
 * separated labels of 1..63 [a-z0-9-] not starting or ending with '-'. Total
 * <= PST_ADDRESS_MAX. Nothing is trimmed. Errors: PST_E_INVAL (anything
 * else), PST_E_NOSPACE (cap too small). out is "" on error (when cap > 0). */
int pst_address_normalize(const char *in, char *out, size_t cap);

/* True if s (n bytes, no NUL needed) is already a normalized address. */
bool pst_address_is_normalized(const char *s, size_t n);

#define PST_HOSTNAME_MAX 253u
/* True if s (n bytes) is a lowercase host name: 1..PST_HOSTNAME_MAX bytes of
 * dot-separated labels of 1..63 [a-z0-9-], not starting or ending with '-'
 * (a dotted IPv4 address passes too). Used for endpoints. */
bool pst_hostname_is_valid(const char *s, size_t n);

/* ---- DHT slots ------------------------------------------------------------ */

/* Slot = BLAKE2b with a 20-byte output (BLAKE2b-160, crypto_generichash
 * outlen 20; not a truncated BLAKE2b-256) of a domain-separation string that
 * includes its NUL, followed by the data. The four strings differ before their
 * NUL, so no slot of one kind can equal a slot of another kind. */
#define PST_SLOT_CTX_KEY "postern/v1/slot/key\0"
#define PST_SLOT_CTX_ADDRESS "postern/v1/slot/address\0"
#define PST_SLOT_CTX_INBOX "postern/v1/slot/inbox\0"
#define PST_SLOT_CTX_VOUCH "postern/v1/slot/vouch\0"
#define PST_SLOT_CTX_DEVICES "postern/v1/slot/devices\0"
#define PST_SLOT_HEX_STRLEN 40u

/* Key slot of identity pk: its KeyRecords and Revocations. */
void pst_slot_key(const uint8_t pk[PST_SIGN_PK_BYTES], uint8_t slot[PST_SLOT_BYTES]);
/* Address slot of a normalized address: AddressClaims. PST_E_INVAL (slot
 * zeroed) if address is not normalized: normalize first. */
int pst_slot_address(const char *address, uint8_t slot[PST_SLOT_BYTES]);
/* Inbox slot of pk: sealed notifications for pk. */
void pst_slot_inbox(const uint8_t pk[PST_SIGN_PK_BYTES], uint8_t slot[PST_SLOT_BYTES]);
/* Vouch slot of pk: endorsements of pk. */
void pst_slot_vouch(const uint8_t pk[PST_SIGN_PK_BYTES], uint8_t slot[PST_SLOT_BYTES]);
/* Device slot of identity pk: its DeviceLists (pst_device.h). */
void pst_slot_devices(const uint8_t pk[PST_SIGN_PK_BYTES], uint8_t slot[PST_SLOT_BYTES]);
/* 40 lowercase hex characters plus a NUL (OpenDHT's InfoHash text form). */
void pst_slot_hex(const uint8_t slot[PST_SLOT_BYTES], char out[PST_SLOT_HEX_STRLEN + 1]);

#ifdef __cplusplus
}
#endif
#endif
