/* proto/ internal: the one signed-record envelope.
 *
 * Every signed record (KeyRecord, AddressClaim, Revocation, Endorsement,
 * NotificationInner, FetchRequest, FetchResponse, Receipt, MessageTrailer)
 * is the msgpack array
 *   [version=1, type, created, expires, signer (bin 32), ...body..., sig (bin 64)]
 * and sig is Ed25519 by signer over PST_SIG_CONTEXT || the canonical encoding
 * of the same array without its last element (docs/PROTOCOL.md, "Signed
 * records" and "One envelope for every signed record"). This module writes
 * and reads that frame, signs and verifies it, and checks the time window; a record file only
 * describes its own body fields in a pst_sigrec_kind. The records keep their own public structs, so
 * the kind says where created/expires/signer/sig live in them (offsetof).
 *
 * Like codec.h, only proto/ .c files include this: it exposes msgpack. */
#ifndef PST_SIGREC_H
#define PST_SIGREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* Number of envelope fields before the body: version, type, created,
 * expires, signer. Body field i is item PST_SIGREC_HEAD + i. */
#define PST_SIGREC_HEAD 5u

/* When a record is valid in time. created may be at most `skew` ahead of
 * now (PST_E_NOTYET). */
typedef struct {
    uint64_t skew;
    /* 0: no bound; else a created older than now - max_age is PST_E_EXPIRED
     * (short-lived exchange records: both clocks must roughly agree). */
    uint64_t max_age;
    /* 0: the record never expires (expires is not looked at here; the kind's
     * decoder pins it to 0). Else created < expires <= created + lifetime_max
     * (PST_E_RANGE) and expires > now (PST_E_EXPIRED). */
    uint64_t lifetime_max;
    /* Check the lifetime (PST_E_RANGE) before the clock: for DHT records a
     * malformed window is a property of the record, not of our clock. */
    bool lifetime_first;
} pst_sigrec_window;

/* Parse limits of a signed record: the shared element cap and the record's
 * own byte, nesting, str and bin caps. */
#define PST_SIGREC_LIMITS(bytes, depth, str, bin)                                                  \
    {                                                                                              \
        .max_bytes = (bytes), .max_depth = (depth), .max_elems = PST_ELEMENTS_MAX,                 \
        .max_str = (str), .max_bin = (bin), .allow_maps = false                                    \
    }
/* The same parse limits for all four DHT records (field caps are checked per
 * field), so that a record of another type fails with PST_E_RECTYPE rather
 * than with whichever limit it happens to hit first. */
#define PST_SIGREC_DHT_LIMITS                                                                      \
    PST_SIGREC_LIMITS(PST_DHT_VALUE_MAX, PST_MSGPACK_DEPTH_MAX, PST_ADDRESS_MAX, PST_SIG_BYTES)

/* Where the envelope fields live in a record struct T, which names them
 * created, expires, signer and sig. */
#define PST_SIGREC_STRUCT(T)                                                                       \
    .size = sizeof(T), .off_created = offsetof(T, created), .off_expires = offsetof(T, expires),   \
    .off_signer = offsetof(T, signer), .off_sig = offsetof(T, sig)

/* The members of a kind for record struct X whose callbacks are P_validate,
 * P_write and P_read (the naming every record file follows); use inside
 * braces, optionally followed by .verify_extra. */
#define PST_SIGREC_KIND(X, P, TYPE, NFIELDS, LIMITS, EXPIRES_MAX)                                  \
    .type = (TYPE), .nfields = (NFIELDS), .limits = LIMITS, .expires_max = (EXPIRES_MAX),          \
    PST_SIGREC_STRUCT(X), .validate = P##_validate, .write_body = P##_write, .read_body = P##_read

/* Describes one record type. All callbacks get the record struct. */
typedef struct {
    pst_rec_type type;
    uint32_t nfields; /* whole array, envelope and sig included */
    /* Parse limits; limits.max_bytes is also the largest encoding (sign,
     * verify and the canonical re-encoding use a scratch of that size). */
    pst_limits limits;
    uint64_t expires_max; /* decode bound of expires: UINT64_MAX, or 0 if always 0 */
    size_t size;          /* sizeof the record struct (zeroed on failure) */
    size_t off_created, off_expires, off_signer, off_sig;
    /* Field rules beyond the wire types: PST_OK or the error decode returns
     * (encode and sign return PST_E_INVAL instead). */
    int (*validate)(const void *rec);
    /* Writes the body fields (between signer and sig). */
    void (*write_body)(pst_writer *w, const void *rec);
    /* Reads the body fields: f[0] is the first one. f has nfields - 6
     * items. */
    int (*read_body)(const msgpack_object *f, void *rec);
    /* Optional: a check between the time window and the signature (the
     * Revocation's authorisation). */
    int (*verify_extra)(const void *rec);
} pst_sigrec_kind;

/* Canonical encoding of rec, with its sig or without (the signed body).
 * PST_E_INVAL (NULL argument, or rec fails validate), PST_E_NOSPACE. On
 * error *len is 0 and out[0..cap) zeroed. */
int pst_sigrec_encode(const pst_sigrec_kind *k, const void *rec, bool with_sig, uint8_t *out,
                      size_t cap, size_t *len);

/* Sets the signer to the public half of sk, then the signature over the
 * body. PST_E_INVAL (NULL, rec breaks a limit), PST_E_CRYPTO; the sig is
 * zeroed on error. */
int pst_sigrec_sign(const pst_sigrec_kind *k, void *rec, const uint8_t sk[PST_SIGN_SK_BYTES]);

/* Strict decode of exactly one record spanning in[0..len): limits, type,
 * field count, the envelope, the body, the kind's rules, then the canonical
 * check (re-encode and compare). No signature check. rec (k->size bytes) is
 * wiped on error. */
int pst_sigrec_decode(const pst_sigrec_kind *k, const uint8_t *in, size_t len, void *rec);

/* The time window win at now, then k->verify_extra, then the signature by
 * the record's signer (PST_E_SIGNATURE). PST_E_INVAL for NULL or a record
 * that breaks a limit. The window is the caller's policy (the fetch records
 * take their skew as an argument), not part of the kind. */
__attribute__((warn_unused_result)) int pst_sigrec_verify(const pst_sigrec_kind *k, const void *rec,
                                                          const pst_sigrec_window *win,
                                                          uint64_t now);

/* BLAKE2b-256 of the full canonical encoding (a deduplication key). id is
 * zeroed and PST_E_INVAL returned if rec does not encode. */
int pst_sigrec_id(const pst_sigrec_kind *k, const void *rec, uint8_t id[PST_HASH_BYTES]);

/* The public functions of a signed record X (struct X too, kind K) are the
 * envelope's, so they are defined once here rather than written out per
 * record: X_encode, X_sign and X_decode (PST_SIGREC_DEFINE), X_verify(r, now)
 * with a fixed window W (PST_SIGREC_DEFINE_VERIFY) and X_id
 * (PST_SIGREC_DEFINE_ID). Their contracts are in the record's header. */
#define PST_SIGREC_DEFINE(X, K)                                                                    \
    int X##_encode(const X *r, uint8_t *out, size_t cap, size_t *len) {                            \
        return pst_sigrec_encode(&(K), r, true, out, cap, len);                                    \
    }                                                                                              \
    int X##_sign(X *r, const uint8_t sk[PST_SIGN_SK_BYTES]) {                                      \
        return pst_sigrec_sign(&(K), r, sk);                                                       \
    }                                                                                              \
    int X##_decode(const uint8_t *in, size_t len, X *out) {                                        \
        return pst_sigrec_decode(&(K), in, len, out);                                              \
    }
#define PST_SIGREC_DEFINE_VERIFY(X, K, W)                                                          \
    int X##_verify(const X *r, uint64_t now) { return pst_sigrec_verify(&(K), r, &(W), now); }
#define PST_SIGREC_DEFINE_ID(X, K)                                                                 \
    int X##_id(const X *r, uint8_t id[PST_HASH_BYTES]) { return pst_sigrec_id(&(K), r, id); }

/* Ed25519 over PST_SIG_CONTEXT || body. */
int pst_sign_body(const uint8_t *body, size_t body_len, const uint8_t sk[PST_SIGN_SK_BYTES],
                  uint8_t sig[PST_SIG_BYTES]);
__attribute__((warn_unused_result)) int pst_verify_body(const uint8_t *body, size_t body_len,
                                                        const uint8_t sig[PST_SIG_BYTES],
                                                        const uint8_t pk[PST_SIGN_PK_BYTES]);

#endif
