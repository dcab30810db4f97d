/* Notifications: what a sender leaves in the recipient's DHT inbox slot.
 *
 * Inner (type 6), signed by the sender, never travels in the clear:
 *   [1, 6, created, expires, signer=sender pk, recipient (bin 32),
 *    msg_id (bin 32), size (u64), endpoints (array 1..4 of str),
 *    msg_key (bin 32), sender_box_pk (bin 32), sig (bin 64)]
 * Inner (type 16), the same signed by one of the sender's device keys, or
 * carrying flags:
 *   [1, 16, created, expires, signer=device pk, sender=identity pk (bin 32),
 *    flags (uint, PST_NOTIFY_FLAG_*), recipient, msg_id, size, endpoints,
 *    msg_key, sender_box_pk, sig]
 *   (sender != signer or flags != 0; the recipient checks signer against
 *   sender's device list, which proto/ does not see).
 * Outer (type 5), NOT signed, so that nothing outside the seal names the
 * sender:
 *   [1, 5, sealed (bin, crypto_box_seal of the inner encoding to the
 *    recipient's X25519 key), stamp (str, "" or a hashcash stamp)]
 * Outer (type 15), for a recipient that publishes a device list: the inner
 * encrypted once under a fresh content key, that key sealed to each device
 * with libsodium's sealed-box construction sharing one ephemeral key:
 *   [1, 15, box (bin, XChaCha20-Poly1305 of the inner under the content
 *    key, nonce 0, ad PST_NOTIFY_BOX_AD), epk (bin 32, the ephemeral
 *    X25519 key), seals (array 1..8 of bin 48: crypto_box_easy of the
 *    content key from the ephemeral key to each device's X25519 key, nonce
 *    BLAKE2b-192(epk || device pk) as crypto_box_seal makes it), stamp
 *    (str)]
 * The outer has no created/expires/signer/sig: the seal authenticates
 * nothing about the sender, the inner record carries all of that. */
#ifndef PST_NOTIFY_H
#define PST_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_msgcrypt.h"
#include "pst_types.h"

#define PST_NOTIFY_ENDPOINT_MAX 64u /* bytes in one "host:port" or "[v6]:port" */
#define PST_NOTIFY_ENDPOINTS_MAX 4u /* fetch endpoints in one notification */
#define PST_NOTIFY_STAMP_MAX 256u   /* bytes in the outer stamp string */
/* Flags of a type-16 inner: sync between the devices of one identity
 * (sender == recipient). At most one is set. */
#define PST_NOTIFY_FLAG_SYNC_SENT 1u  /* a copy of a message sent on another device: .Sent */
#define PST_NOTIFY_FLAG_SYNC_TRUST 2u /* a trust-list change made on another device */
#define PST_NOTIFY_FLAGS_ALL 3u
#define PST_NOTIFY_SKEW_MAX 3600u /* inner created may be this far ahead */

/* Largest inner encoding (527 bytes with every field at its maximum, 561
 * for type 16). */
#define PST_NOTIFY_INNER_MAX 600u
#define PST_NOTIFY_SEALED_MAX (PST_NOTIFY_INNER_MAX + PST_SEAL_BYTES)
/* Largest type-5 outer encoding (913 bytes). */
#define PST_NOTIFY_SINGLE_MAX                                                                      \
    (1u + 1u + 1u + 3u + PST_NOTIFY_SEALED_MAX + 3u + PST_NOTIFY_STAMP_MAX)
/* Type 15: devices one notification seals to (= PST_DEVICES_MAX of
 * pst_device.h), the content key, the AEAD tag, one key seal. */
#define PST_NOTIFY_DEVICES_MAX 8u
#define PST_NOTIFY_CONTENT_KEY_BYTES 32u /* crypto_aead_xchacha20poly1305_ietf_KEYBYTES */
#define PST_NOTIFY_BOX_TAG_BYTES 16u     /* crypto_aead_xchacha20poly1305_ietf_ABYTES */
#define PST_NOTIFY_KEYSEAL_BYTES (PST_NOTIFY_CONTENT_KEY_BYTES + 16u) /* + crypto_box_MACBYTES */
#define PST_NOTIFY_BOX_AD "postern/v1/notify-box"
/* BLAKE2b-256 keyed with the content key over this string: the seed of
 * the ephemeral X25519 key pair of a type-15 outer's key seals. */
#define PST_NOTIFY_EPH_CONTEXT "postern/v1/notify-eph"
/* Largest outer of either type: every notification is one DHT value. A
 * type-15 outer with 8 devices, 4 long endpoints and a long stamp would
 * not fit: pst_notify_encode refuses it (PST_E_TOOBIG), see
 * docs/PROTOCOL.md for the sizes that do. */
#define PST_NOTIFY_MAX PST_DHT_VALUE_MAX

/* "pn1=" + 32 lowercase hex digits + NUL */
#define PST_NOTIFY_STAMP_EXT_BUFSIZE 37u
/* 64 lowercase hex digits + NUL */
#define PST_NOTIFY_STAMP_RESOURCE_BUFSIZE 53u /* a fingerprint + NUL */

typedef struct {
    uint64_t created;
    uint64_t expires;                  /* must be > created: notifications always expire */
    uint8_t signer[PST_SIGN_PK_BYTES]; /* the key that signed: identity or device key */
    /* The sender's identity key. Equal to signer (type 6) when the identity
     * signs; sign fills it in when left zero; decode of type 6 sets it. */
    uint8_t sender[PST_SIGN_PK_BYTES];
    uint32_t flags; /* 0, or one PST_NOTIFY_FLAG_SYNC_* (type 16 only) */
    uint8_t recipient[PST_SIGN_PK_BYTES];
    uint8_t msg_id[PST_HASH_BYTES]; /* BLAKE2b-256 of the whole ciphertext */
    uint64_t size;        /* ciphertext bytes, PST_MESSAGE_SIZE_MIN..PST_MESSAGE_SIZE_MAX */
    uint32_t n_endpoints; /* 1..PST_NOTIFY_ENDPOINTS_MAX */
    char endpoints[PST_NOTIFY_ENDPOINTS_MAX][PST_NOTIFY_ENDPOINT_MAX + 1];
    uint8_t msg_key[PST_MSGKEY_BYTES]; /* secret: wipe the struct after use */
    uint8_t sender_box_pk[PST_BOX_PK_BYTES];
    uint8_t sig[PST_SIG_BYTES];
} pst_notify_inner;

typedef struct {
    /* n_seals == 0: type 5, crypto_box_seal of the inner,
     *   PST_SEAL_BYTES + 1 .. PST_NOTIFY_SEALED_MAX bytes.
     * n_seals > 0: type 15, the AEAD box of the inner,
     *   PST_NOTIFY_BOX_TAG_BYTES + 1 .. PST_NOTIFY_INNER_MAX + tag bytes. */
    uint8_t sealed[PST_NOTIFY_SEALED_MAX];
    size_t sealed_len;
    uint32_t n_seals;              /* 0, or 1..PST_NOTIFY_DEVICES_MAX key seals (type 15) */
    uint8_t epk[PST_BOX_PK_BYTES]; /* type 15: the ephemeral key of every seal */
    uint8_t seals[PST_NOTIFY_DEVICES_MAX][PST_NOTIFY_KEYSEAL_BYTES];
    char stamp[PST_NOTIFY_STAMP_MAX + 1]; /* "" or printable ASCII without spaces */
} pst_notify;

/* An endpoint is "host:port" (host = letters, digits, '-', '.') or
 * "[v6]:port" (hex digits, ':', '.'), port 1..65535 in decimal without
 * leading zeros, at most PST_NOTIFY_ENDPOINT_MAX bytes. */
bool pst_notify_endpoint_valid(const char *s);

/* ---- inner (type 6) ------------------------------------------------------ */

/* Canonical encoding into out[cap] (PST_NOTIFY_INNER_MAX always fits).
 * PST_E_INVAL if r breaks a limit, PST_E_NOSPACE; *len = 0 on failure. */
int pst_notify_inner_encode(const pst_notify_inner *r, uint8_t *out, size_t cap, size_t *len);
/* Sets r->signer from sk and r->sig. PST_E_INVAL if r breaks a limit. */
int pst_notify_inner_sign(pst_notify_inner *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
/* Strict decode; no signature check. *out wiped on failure. */
int pst_notify_inner_decode(const uint8_t *in, size_t len, pst_notify_inner *out);
/* Signature by r->signer, created <= now + PST_NOTIFY_SKEW_MAX (else
 * PST_E_NOTYET), expires > now (else PST_E_EXPIRED). The caller then checks
 * that recipient is its own key. */
__attribute__((warn_unused_result)) int pst_notify_inner_verify(const pst_notify_inner *r,
                                                                uint64_t now);

/* ---- outer (type 5) ------------------------------------------------------ */

/* Type 5 or 15 by r->n_seals. PST_E_INVAL if r breaks a limit,
 * PST_E_TOOBIG if the encoding would exceed PST_NOTIFY_MAX, PST_E_NOSPACE;
 * *len = 0 on failure. */
int pst_notify_encode(const pst_notify *r, uint8_t *out, size_t cap, size_t *len);
/* Strict decode of either outer type (cheap: no crypto). *out zeroed on
 * failure. */
int pst_notify_decode(const uint8_t *in, size_t len, pst_notify *out);

/* Encodes inner and seals it to recipient_box_pk into out (stamp ""; the
 * stamp is minted afterwards over out->sealed). NOT deterministic:
 * crypto_box_seal draws an ephemeral key from libsodium's RNG. Does not
 * check the signature. PST_E_INVAL if inner breaks a limit, PST_E_CRYPTO.
 * *out zeroed on failure. */
int pst_notify_seal(const pst_notify_inner *inner, const uint8_t recipient_box_pk[PST_BOX_PK_BYTES],
                    pst_notify *out);
/* Type 15 for n_devices (1..PST_NOTIFY_DEVICES_MAX) device box keys:
 * encrypts the inner once under content_key (the caller's fresh random
 * key, used for this notification only: the nonce is fixed at 0) and seals
 * content_key to each device, in the order given, from one ephemeral key
 * pair derived from content_key (keyed BLAKE2b: fresh with it). Stamp "".
 * Deterministic for a given content_key. PST_E_INVAL (NULL, n_devices out
 * of range, inner breaks a limit), PST_E_CRYPTO, PST_E_TOOBIG when the
 * outer would not fit PST_NOTIFY_MAX even with an empty stamp. *out zeroed
 * on failure. */
int pst_notify_seal_devices(const pst_notify_inner *inner,
                            const uint8_t (*device_box_pks)[PST_BOX_PK_BYTES], uint32_t n_devices,
                            const uint8_t content_key[PST_NOTIFY_CONTENT_KEY_BYTES],
                            pst_notify *out);
/* Opens the outer with this device's (or identity's) X25519 key pair and
 * strictly decodes the inner (no signature check: call
 * pst_notify_inner_verify). Type 5: the one seal. Type 15: one X25519 with
 * the ephemeral key, then each key seal's MAC in turn (at most
 * PST_NOTIFY_DEVICES_MAX), then the box.
 * PST_E_CRYPTO if nothing opens, else decode errors. *inner wiped on
 * failure. */
int pst_notify_open(const pst_notify *outer, const uint8_t recipient_box_pk[PST_BOX_PK_BYTES],
                    const uint8_t recipient_box_sk[PST_BOX_SK_BYTES], pst_notify_inner *inner);

/* ---- hashcash binding strings --------------------------------------------
 * A stamp in the outer is only worth something if it cannot be reused for
 * another notification or another recipient: its resource names the
 * recipient and its ext names the exact sealed bytes. */

/* ext = "pn1=" + lowercase hex of the first 16 bytes of
 * BLAKE2b-256(sealed). Only [a-z0-9=], valid in a classic hashcash ext. */
void pst_notify_stamp_ext(const uint8_t *sealed, size_t len,
                          char out[PST_NOTIFY_STAMP_EXT_BUFSIZE]);
/* The ext of either outer type: type 5 as pst_notify_stamp_ext over
 * sealed; type 15 the same over box || epk || seal_1 || ... || seal_n, so a
 * stamp cannot be moved to a notification that differs in any sealed
 * byte. */
void pst_notify_ext(const pst_notify *r, char out[PST_NOTIFY_STAMP_EXT_BUFSIZE]);
/* resource = the recipient's fingerprint (z-base-32 of its identity key,
 * 52 characters): what `postern key get` and `postern pow mint` show, and a
 * valid classic hashcash resource. */
void pst_notify_stamp_resource(const uint8_t recipient_pk[PST_SIGN_PK_BYTES],
                               char out[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE]);

#endif
