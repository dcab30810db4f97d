/* The four signed DHT records about identities: KeyRecord, AddressClaim,
 * Revocation and Endorsement. docs/PROTOCOL.md has the field tables.
 *
 * Every record is a msgpack array
 *   [version=1, type, created, expires, signer, ...fields..., signature]
 * and the signature is Ed25519 by signer over PST_SIG_CONTEXT || the canonical
 * encoding of the same array without its last element. Decoders are strict
 * (canonical encoding only, whole input, bounded) and do not check the
 * signature; pst_*_verify() does, together with the time window for a given
 * `now` (unix seconds).
 *
 * Per record X: pst_X_encode (PST_E_INVAL if the struct breaks a limit,
 * PST_E_NOSPACE if cap is too small; out zeroed and *len 0 on error),
 * pst_X_sign (sets signer to the public half of sk, then the signature),
 * pst_X_decode (out zeroed on error), pst_X_verify and pst_X_id (BLAKE2b-256 of
 * the canonical encoding including the signature: a deduplication key). The
 * structs are fixed-size values: no allocation, nothing to free. */
#ifndef PST_RECORDS_H
#define PST_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_identity.h"
#include "pst_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A record may be created at most this far in the future of `now`. */
#define PST_CLOCK_SKEW_MAX 3600u
/* KeyRecords and AddressClaims live at most 30 days (re-signed before). */
#define PST_KEYREC_LIFETIME_MAX (30u * 86400u)
/* Endorsements live at most 2 years of 365 days. */
#define PST_ENDORSEMENT_LIFETIME_MAX (2u * 365u * 86400u)

/* ---- KeyRecord (type 1) -------------------------------------------------- */

#define PST_KEYREC_ADDRESSES_MAX 8u
/* Sum of the lengths of all addresses of one KeyRecord: keeps a record with
 * every list full under PST_DHT_VALUE_MAX. */
#define PST_KEYREC_ADDRESS_BYTES_MAX 640u
#define PST_KEYREC_ENDPOINTS_MAX 4u
#define PST_ENDPOINT_MAX 64u /* "host:port" or "[v6]:port", bytes */
#define PST_POW_BITS_MAX 40u
#define PST_KEYREC_FIELDS 12u

typedef struct pst_keyrec {
    uint64_t created;
    uint64_t expires;
    uint8_t signer[PST_SIGN_PK_BYTES]; /* the identity key */
    uint64_t seq;                      /* higher replaces lower */
    uint8_t enc_pk[PST_BOX_PK_BYTES];  /* X25519 */
    bool has_revocation_pk;
    uint8_t revocation_pk[PST_SIGN_PK_BYTES];
    uint32_t n_addresses;
    char addresses[PST_KEYREC_ADDRESSES_MAX][PST_ADDRESS_MAX + 1]; /* normalized */
    uint32_t n_endpoints;
    char endpoints[PST_KEYREC_ENDPOINTS_MAX][PST_ENDPOINT_MAX + 1];
    uint64_t pow_bits; /* stamp bits required from unknown senders */
    uint8_t sig[PST_SIG_BYTES];
} pst_keyrec;

int pst_keyrec_encode(const pst_keyrec *r, uint8_t *out, size_t cap, size_t *len);
int pst_keyrec_sign(pst_keyrec *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
/* Errors: PST_E_TOOBIG (input over PST_DHT_VALUE_MAX, a list or string over its
 * cap), PST_E_TRUNCATED, PST_E_TRAILING, PST_E_MALFORMED, PST_E_TYPE,
 * PST_E_VERSION, PST_E_RECTYPE, PST_E_FIELDS, PST_E_RANGE (pow_bits, invalid
 * address or endpoint, key sizes), PST_E_NONCANONICAL. */
int pst_keyrec_decode(const uint8_t *in, size_t len, pst_keyrec *out);
/* PST_E_RANGE (expires <= created or lifetime over PST_KEYREC_LIFETIME_MAX),
 * PST_E_NOTYET (created > now + PST_CLOCK_SKEW_MAX), PST_E_EXPIRED
 * (expires <= now), PST_E_SIGNATURE, PST_E_INVAL (struct breaks a limit). */
__attribute__((warn_unused_result)) int pst_keyrec_verify(const pst_keyrec *r, uint64_t now);
int pst_keyrec_id(const pst_keyrec *r, uint8_t id[PST_HASH_BYTES]);
/* Checks that s is a valid endpoint: "host:port" (host: dot-separated
 * [a-z0-9-] labels, so also dotted IPv4) or "[ipv6]:port", port 1..65535
 * without leading zeros, at most PST_ENDPOINT_MAX bytes. */
bool pst_endpoint_is_valid(const char *s, size_t n);

/* ---- AddressClaim (type 2) ----------------------------------------------- */

#define PST_ADDRESS_CLAIM_FIELDS 8u

typedef struct pst_address_claim {
    uint64_t created;
    uint64_t expires;
    uint8_t signer[PST_SIGN_PK_BYTES]; /* the identity key claiming address */
    char address[PST_ADDRESS_MAX + 1]; /* normalized */
    uint64_t seq;
    uint8_t sig[PST_SIG_BYTES];
} pst_address_claim;

int pst_address_claim_encode(const pst_address_claim *r, uint8_t *out, size_t cap, size_t *len);
int pst_address_claim_sign(pst_address_claim *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
/* Errors as pst_keyrec_decode(). */
int pst_address_claim_decode(const uint8_t *in, size_t len, pst_address_claim *out);
/* Same rules and errors as pst_keyrec_verify(). */
__attribute__((warn_unused_result)) int pst_address_claim_verify(const pst_address_claim *r,
                                                                 uint64_t now);
int pst_address_claim_id(const pst_address_claim *r, uint8_t id[PST_HASH_BYTES]);
/* 0 if claim and key record have the same signer and the key record lists
 * the claimed address, else PST_E_MISMATCH. Checks no signature: verify both
 * first. */
__attribute__((warn_unused_result)) int pst_address_claim_matches(const pst_address_claim *claim,
                                                                  const pst_keyrec *keyrec);

/* ---- Revocation (type 3) ------------------------------------------------- */

#define PST_REVOCATION_REASON_TEXT_MAX 200u
#define PST_REVOCATION_FIELDS 11u
/* Domain of the authorisation signature: the identity key signs
 * PST_REVKEY_AUTH_CONTEXT || revocation_pk with plain Ed25519. */
#define PST_REVKEY_AUTH_CONTEXT "postern/v1/revkey\0"
#define PST_REVKEY_AUTH_CONTEXT_LEN 18u

typedef enum {
    PST_REVOKE_UNSPECIFIED = 0,
    PST_REVOKE_KEY_COMPROMISED = 1,
    PST_REVOKE_SUPERSEDED = 2,
    PST_REVOKE_RETIRED = 3,
} pst_revoke_reason;
#define PST_REVOKE_REASON_MAX 3u

typedef struct pst_revocation {
    uint64_t created;
    uint64_t expires; /* always 0: revocations are permanent */
    /* the revoked identity key (auth empty) or its revocation key (auth set) */
    uint8_t signer[PST_SIGN_PK_BYTES];
    uint8_t revoked_key[PST_SIGN_PK_BYTES];
    uint64_t reason; /* pst_revoke_reason */
    char reason_text[PST_REVOCATION_REASON_TEXT_MAX + 1];
    bool has_replacement;
    uint8_t replacement[PST_SIGN_PK_BYTES]; /* the identity that replaces it */
    bool has_auth;
    uint8_t auth[PST_SIG_BYTES]; /* revoked key's signature over signer */
    uint8_t sig[PST_SIG_BYTES];
} pst_revocation;

int pst_revocation_encode(const pst_revocation *r, uint8_t *out, size_t cap, size_t *len);
int pst_revocation_sign(pst_revocation *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
/* Errors as pst_keyrec_decode(); PST_E_RANGE also for expires != 0, an
 * unknown reason or replacement == revoked_key. */
int pst_revocation_decode(const uint8_t *in, size_t len, pst_revocation *out);
/* PST_E_NOTYET (created > now + skew), PST_E_SIGNER (auth empty and signer is
 * not revoked_key; or auth set and signer is revoked_key or auth is not the
 * revoked key's signature over signer), PST_E_SIGNATURE, PST_E_INVAL. */
__attribute__((warn_unused_result)) int pst_revocation_verify(const pst_revocation *r,
                                                              uint64_t now);
int pst_revocation_id(const pst_revocation *r, uint8_t id[PST_HASH_BYTES]);

/* auth = Ed25519(identity_sk, PST_REVKEY_AUTH_CONTEXT || revocation_pk):
 * made once at init, it lets a revocation signed by the offline key be
 * verified on its own. Returns PST_E_CRYPTO (auth zeroed) on failure. */
int pst_revocation_auth_make(const uint8_t identity_sk[PST_SIGN_SK_BYTES],
                             const uint8_t revocation_pk[PST_SIGN_PK_BYTES],
                             uint8_t auth[PST_SIG_BYTES]);
/* 0 if auth is identity_pk's authorisation of revocation_pk, else
 * PST_E_SIGNER. */
__attribute__((warn_unused_result)) int
pst_revocation_auth_verify(const uint8_t identity_pk[PST_SIGN_PK_BYTES],
                           const uint8_t revocation_pk[PST_SIGN_PK_BYTES],
                           const uint8_t auth[PST_SIG_BYTES]);

/* Builds and signs a revocation of the identity key's own key (expires 0,
 * no auth). reason_text may be NULL (empty); replacement may be NULL.
 * Errors: PST_E_INVAL (limits), PST_E_CRYPTO; out zeroed on error. */
int pst_revocation_build_self(pst_revocation *out, const uint8_t identity_sk[PST_SIGN_SK_BYTES],
                              uint64_t created, pst_revoke_reason reason, const char *reason_text,
                              const uint8_t *replacement);
/* Builds and signs a revocation of rk->identity_pk with the offline key,
 * carrying rk->auth. Same errors. */
int pst_revocation_build_by_revkey(pst_revocation *out, const pst_revkey *rk, uint64_t created,
                                   pst_revoke_reason reason, const char *reason_text,
                                   const uint8_t *replacement);
/* True if r names a replacement identity; copies it to out when not NULL. */
bool pst_revocation_replacement(const pst_revocation *r, uint8_t *out);

/* ---- Endorsement (type 4) ------------------------------------------------ */

#define PST_ENDORSEMENT_FIELDS 8u

/* For one (signer, subject) pair the endorsement with the newest `created`
 * wins (on a tie, the lower tier); WITHDRAWN is how a voucher takes a vouch back (`postern
 * unvouch`): OpenDHT cannot delete a value, and the old signed vouch could otherwise be replayed
 * until it expires. */
typedef enum {
    PST_TIER_WITHDRAWN = 0,
    PST_TIER_KNOWN = 1,
    PST_TIER_TRUSTED = 2,
} pst_endorsement_tier;

typedef struct pst_endorsement {
    uint64_t created;
    uint64_t expires;                  /* required */
    uint8_t signer[PST_SIGN_PK_BYTES]; /* the voucher */
    uint8_t subject[PST_SIGN_PK_BYTES];
    uint64_t tier; /* pst_endorsement_tier */
    uint8_t sig[PST_SIG_BYTES];
} pst_endorsement;

int pst_endorsement_encode(const pst_endorsement *r, uint8_t *out, size_t cap, size_t *len);
int pst_endorsement_sign(pst_endorsement *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
/* Errors as pst_keyrec_decode(); PST_E_RANGE also for an unknown tier or
 * subject == signer. */
int pst_endorsement_decode(const uint8_t *in, size_t len, pst_endorsement *out);
/* PST_E_RANGE (expires <= created or over PST_ENDORSEMENT_LIFETIME_MAX),
 * PST_E_NOTYET, PST_E_EXPIRED, PST_E_SIGNATURE, PST_E_INVAL. */
__attribute__((warn_unused_result)) int pst_endorsement_verify(const pst_endorsement *r,
                                                               uint64_t now);
int pst_endorsement_id(const pst_endorsement *r, uint8_t id[PST_HASH_BYTES]);

#ifdef __cplusplus
}
#endif
#endif
