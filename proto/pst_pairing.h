/* Pairing a new device with an identity (issue 13): the one-time code and
 * the two sealed messages exchanged over TCP. docs/PROTOCOL.md, "Pairing".
 *
 * The code carries 10 random bytes (80 bits) plus the IPv4 address and TCP
 * port where the old device (the one holding the identity key) waits: 16
 * bytes, 26 z-base-32 characters, printed in groups of four. Both sides
 * derive from the code, with libsodium only:
 *   master = BLAKE2b-256("postern/v1/pair\0" || code bytes)
 *   k_req  = crypto_kdf_derive_from_key(32, 1, "pstpair_", master)
 *   k_rep  = crypto_kdf_derive_from_key(32, 2, "pstpair_", master)
 *   id     = crypto_kdf_derive_from_key(16, 3, "pstpair_", master)
 * The new device sends [1, id, nonce, secretbox(k_req, request)]: the id
 * lets the old device find the pending pairing, and a box that opens
 * proves the sender was shown the code. The old device answers
 * [1, status, nonce, secretbox(k_rep, reply)] (status 0), or [1, status,
 * "", ""] when it refuses. Frames are a 4-byte big-endian length and the
 * message. Pure: nonces come from the caller. */
#ifndef PST_PAIRING_H
#define PST_PAIRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_device.h"
#include "pst_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PST_PAIR_SECRET_BYTES 10u
#define PST_PAIR_CODE_BYTES 16u  /* secret, IPv4, port */
#define PST_PAIR_CODE_STRLEN 32u /* 26 characters in groups of 4 with '-' */
#define PST_PAIR_ID_BYTES 16u
#define PST_PAIR_KEY_BYTES 32u
#define PST_PAIR_NONCE_BYTES 24u    /* crypto_secretbox_NONCEBYTES */
#define PST_PAIR_MAC_BYTES 16u      /* crypto_secretbox_MACBYTES */
#define PST_PAIR_REQUEST_MAX 512u   /* a whole request frame */
#define PST_PAIR_CONTACTS_MAX 4096u /* trust-list entries carried (64 chunks of 64) */
#define PST_PAIR_PETNAME_MAX 64u
#define PST_PAIR_EMAILS_MAX 1024u          /* contacts' email addresses, in all */
#define PST_PAIR_EMAIL_MAX 254u            /* = PST_TRUSTSYNC_EMAIL_MAX */
#define PST_PAIR_REPLY_MAX (1024u * 1024u) /* a whole reply frame */

/* Refusals (status of a reply). */
typedef enum {
    PST_PAIR_OK = 0,
    PST_PAIR_UNKNOWN = 1, /* no pending pairing has this code: mistyped or guessed */
    PST_PAIR_USED = 2,    /* the code was used already */
    PST_PAIR_EXPIRED = 3,
    PST_PAIR_FULL = 4,   /* the identity has PST_DEVICES_MAX devices */
    PST_PAIR_FAILED = 5, /* the old device could not finish (see its log) */
} pst_pair_status;
#define PST_PAIR_STATUS_MAX 5u

typedef struct {
    uint8_t secret[PST_PAIR_SECRET_BYTES];
    uint8_t ipv4[4];
    uint16_t port;
} pst_pair_code;

typedef struct {
    uint8_t k_req[PST_PAIR_KEY_BYTES];
    uint8_t k_rep[PST_PAIR_KEY_BYTES];
    uint8_t id[PST_PAIR_ID_BYTES];
} pst_pair_keys;

/* What the new device sends (inside the box). name may be "" (the old
 * device then uses the name given to `device add`). */
typedef struct {
    uint8_t sign_pk[PST_SIGN_PK_BYTES];
    uint8_t box_pk[PST_BOX_PK_BYTES];
    char name[PST_DEVICE_NAME_MAX + 1];
} pst_pair_request;

typedef struct {
    uint8_t pk[PST_SIGN_PK_BYTES];
    uint8_t tier; /* 1 trusted, 2 known, 3 blocked (the store's tiers) */
    char petname[PST_PAIR_PETNAME_MAX + 1];
    uint32_t n_emails; /* 0..16: the next n_emails of the reply's emails */
} pst_pair_contact;

/* What the old device answers (inside the box). Large: allocate it. */
typedef struct {
    size_t devcert_len, devlist_len, keyrec_len; /* keyrec_len may be 0 */
    uint8_t devcert[PST_DHT_VALUE_MAX];
    uint8_t devlist[PST_DHT_VALUE_MAX];
    uint8_t keyrec[PST_DHT_VALUE_MAX];
    uint32_t n_contacts;
    pst_pair_contact contacts[PST_PAIR_CONTACTS_MAX];
    /* every contact's addresses in contact order (pst_contact_emails_ok
     * per contact); n_emails is the sum of the contacts' counts */
    uint32_t n_emails;
    char emails[PST_PAIR_EMAILS_MAX][PST_PAIR_EMAIL_MAX + 1];
} pst_pair_reply;

/* "abcd-efgh-...-yz" plus a NUL. PST_E_RANGE for port 0. */
int pst_pair_code_format(const pst_pair_code *c, char out[PST_PAIR_CODE_STRLEN + 1]);
/* Parses a code typed by a user: case is ignored, and so are '-' and
 * spaces. PST_E_INVAL (length or alphabet), PST_E_NONCANONICAL, PST_E_RANGE
 * (port 0). out zeroed on error. */
int pst_pair_code_parse(const char *s, pst_pair_code *out);
/* The keys and id of a code (see above). PST_E_CRYPTO; out zeroed. */
int pst_pair_derive(const pst_pair_code *c, pst_pair_keys *out);

/* The plaintext inside the boxes: strict, canonical, fuzzed. Errors as the
 * other decoders (PST_E_TOOBIG, PST_E_TYPE, PST_E_FIELDS, PST_E_VERSION,
 * PST_E_RANGE for a bad name, tier or petname, PST_E_NONCANONICAL). */
int pst_pair_request_encode(const pst_pair_request *r, uint8_t *out, size_t cap, size_t *len);
int pst_pair_request_decode(const uint8_t *in, size_t len, pst_pair_request *out);
int pst_pair_reply_encode(const pst_pair_reply *r, uint8_t *out, size_t cap, size_t *len);
int pst_pair_reply_decode(const uint8_t *in, size_t len, pst_pair_reply *out);

/* The framed messages. seal: PST_E_INVAL, PST_E_NOSPACE. open:
 * PST_E_CRYPTO when the box does not open (a wrong code), else decode
 * errors; outputs zeroed on error. */
int pst_pair_request_seal(const pst_pair_keys *k, const pst_pair_request *r,
                          const uint8_t nonce[PST_PAIR_NONCE_BYTES], uint8_t *out, size_t cap,
                          size_t *len);
/* The id a request names, so the old device can pick the pending pairing. */
int pst_pair_request_peek(const uint8_t *in, size_t len, uint8_t id[PST_PAIR_ID_BYTES]);
__attribute__((warn_unused_result)) int
pst_pair_request_open(const pst_pair_keys *k, const uint8_t *in, size_t len, pst_pair_request *out);
/* r is ignored (may be NULL) when status != PST_PAIR_OK. */
int pst_pair_reply_seal(const pst_pair_keys *k, pst_pair_status status, const pst_pair_reply *r,
                        const uint8_t nonce[PST_PAIR_NONCE_BYTES], uint8_t *out, size_t cap,
                        size_t *len);
/* *status gets the old device's answer; out is filled only for
 * PST_PAIR_OK. */
__attribute__((warn_unused_result)) int pst_pair_reply_open(const pst_pair_keys *k,
                                                            const uint8_t *in, size_t len,
                                                            pst_pair_status *status,
                                                            pst_pair_reply *out);
/* A frame header: the 4-byte big-endian length of the message, which must
 * be 1..max (PST_E_TOOBIG, PST_E_RANGE for 0). */
void pst_pair_frame_header(size_t len, uint8_t hdr[4]);
int pst_pair_frame_len(const uint8_t hdr[4], size_t max, size_t *len);
/* "refused: ..." words for a status. */
const char *pst_pair_status_text(pst_pair_status s);

#ifdef __cplusplus
}
#endif
#endif
