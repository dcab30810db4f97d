/* The TCP fetch exchange between a recipient's node and a sender's node, and
 * the recipient's Receipt (chain of custody).
 *
 *   recipient -> sender : frame(FetchRequest)
 *   sender -> recipient : frame(FetchResponse header)
 *                         then, only when status == PST_FETCH_OK, the raw
 *                         ciphertext bytes [offset, total_size): exactly
 *                         total_size - offset bytes, no further framing
 *   recipient -> sender : frame(Receipt), once the message is durable
 *
 * frame = length (u32 big-endian, 1..PST_FRAME_MAX) || record. */
#ifndef PST_FETCH_H
#define PST_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_msgcrypt.h"
#include "pst_types.h"

/* ---- frames -------------------------------------------------------------- */

#define PST_FRAME_HEADER_BYTES 4u
/* Largest record in a fetch frame: any record at all. */
#define PST_FRAME_MAX PST_RECORD_MAX

/* Writes len big-endian into hdr. */
void pst_frame_header_write(uint32_t len, uint8_t hdr[PST_FRAME_HEADER_BYTES]);
/* Reads the length that follows hdr. PST_E_TOOBIG if it is 0 or > max (an
 * empty frame is never valid and a peer announcing more than max is cut off
 * before anything is read or allocated). *len = 0 on failure. */
int pst_frame_header_parse(const uint8_t hdr[PST_FRAME_HEADER_BYTES], uint32_t max, uint32_t *len);

/* ---- time windows -------------------------------------------------------- */

/* Default clock skew accepted both ways for requests and responses, and the
 * longest lifetime (expires - created) one may claim. A node remembers the
 * nonces of accepted requests until they expire (anti-replay). */
#define PST_FETCH_SKEW_DEFAULT 300u
#define PST_FETCH_LIFETIME_MAX 600u
/* A receipt's created may be this far in the future. */
#define PST_RECEIPT_SKEW_MAX 3600u

/* ---- FetchRequest (type 7), signed by the requester ----------------------
 * [1, 7, created, expires, signer, msg_id (bin 32), nonce (bin 16),
 *  offset (u64 <= PST_MESSAGE_SIZE_MAX), sig] */
typedef struct {
    uint64_t created;
    uint64_t expires;
    uint8_t signer[PST_SIGN_PK_BYTES];
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t nonce[PST_NONCE_BYTES];
    uint64_t offset; /* resume position in the ciphertext */
    uint8_t sig[PST_SIG_BYTES];
} pst_fetch_request;

#define PST_FETCH_REQUEST_MAX 192u /* 178 bytes at most */

int pst_fetch_request_encode(const pst_fetch_request *r, uint8_t *out, size_t cap, size_t *len);
/* Sets r->signer from sk and r->sig. */
int pst_fetch_request_sign(pst_fetch_request *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
/* Fills a complete request: created = now, expires = now +
 * PST_FETCH_SKEW_DEFAULT, the caller's nonce (fresh random bytes: proto/
 * draws none; the server refuses a nonce it has seen), signed by sk.
 * PST_E_INVAL for a NULL argument or a field over its limit; *r zeroed on
 * error. */
int pst_fetch_request_make(pst_fetch_request *r, const uint8_t msg_id[PST_HASH_BYTES],
                           uint64_t offset, uint64_t now, const uint8_t nonce[PST_NONCE_BYTES],
                           const uint8_t sk[PST_SIGN_SK_BYTES]);
int pst_fetch_request_decode(const uint8_t *in, size_t len, pst_fetch_request *out);
/* created within now +- max_skew (PST_E_NOTYET ahead, PST_E_EXPIRED too old),
 * expires > now (PST_E_EXPIRED), created < expires <= created +
 * PST_FETCH_LIFETIME_MAX (PST_E_RANGE), then the signature by r->signer
 * (PST_E_SIGNATURE). Whether the signer may fetch msg_id and whether the
 * nonce is fresh is the node's business. */
__attribute__((warn_unused_result)) int pst_fetch_request_verify(const pst_fetch_request *r,
                                                                 uint64_t now, uint64_t max_skew);

/* ---- FetchResponse header (type 8), signed by the serving node ----------
 * [1, 8, created, expires, signer, msg_id, status (u64), total_size (u64),
 *  offset (u64), error_text (str <= 200), sig] */
typedef enum {
    PST_FETCH_OK = 0,
    PST_FETCH_NOT_FOUND = 1,
    PST_FETCH_FORBIDDEN = 2,
    PST_FETCH_BAD_REQUEST = 3,
    PST_FETCH_REPLAY = 4,
    PST_FETCH_BUSY = 5,
    PST_FETCH_EXPIRED = 6,
    PST_FETCH_TOO_LARGE = 7,
    PST_FETCH_INTERNAL = 8,
} pst_fetch_status;
#define PST_FETCH_STATUS_LAST PST_FETCH_INTERNAL
#define PST_FETCH_ERROR_TEXT_MAX 200u

typedef struct {
    uint64_t created;
    uint64_t expires;
    uint8_t signer[PST_SIGN_PK_BYTES];
    uint8_t msg_id[PST_HASH_BYTES];
    uint64_t status;                               /* a pst_fetch_status */
    uint64_t total_size;                           /* <= PST_MESSAGE_SIZE_MAX */
    uint64_t offset;                               /* <= total_size */
    char error_text[PST_FETCH_ERROR_TEXT_MAX + 1]; /* "" when status is OK */
    uint8_t sig[PST_SIG_BYTES];
} pst_fetch_response;

#define PST_FETCH_RESPONSE_MAX 384u /* 368 bytes at most */

/* Stable lowercase name ("ok", "not_found", ...), "unknown" otherwise. */
const char *pst_fetch_status_name(uint64_t status);
int pst_fetch_response_encode(const pst_fetch_response *r, uint8_t *out, size_t cap, size_t *len);
int pst_fetch_response_sign(pst_fetch_response *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
int pst_fetch_response_decode(const uint8_t *in, size_t len, pst_fetch_response *out);
/* Same time rules as pst_fetch_request_verify, then the signature. */
__attribute__((warn_unused_result)) int pst_fetch_response_verify(const pst_fetch_response *r,
                                                                  uint64_t now, uint64_t max_skew);
/* Does a verified response answer req from the node we meant to contact?
 * PST_E_SIGNER if r->signer != server_pk, PST_E_MISMATCH if msg_id or
 * offset differ from the request. */
__attribute__((warn_unused_result)) int
pst_fetch_response_matches(const pst_fetch_response *r, const pst_fetch_request *req,
                           const uint8_t server_pk[PST_SIGN_PK_BYTES]);

/* ---- Receipt (type 9), signed by the recipient ----------------------------
 * [1, 9, created, expires=0, signer=recipient, msg_id (bin 32),
 *  sender (bin 32), stored_at (u64 <= created), sig]
 * "I stored this message durably": the sender may drop it for this
 * recipient once it holds a verified receipt. */
typedef struct {
    uint64_t created;
    uint64_t expires; /* always 0 */
    uint8_t signer[PST_SIGN_PK_BYTES];
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t sender[PST_SIGN_PK_BYTES];
    uint64_t stored_at;
    uint8_t sig[PST_SIG_BYTES];
} pst_receipt;

#define PST_RECEIPT_MAX 208u /* 190 bytes at most */

int pst_receipt_encode(const pst_receipt *r, uint8_t *out, size_t cap, size_t *len);
int pst_receipt_sign(pst_receipt *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
int pst_receipt_decode(const uint8_t *in, size_t len, pst_receipt *out);
/* created <= now + PST_RECEIPT_SKEW_MAX (PST_E_NOTYET), then the signature
 * by r->signer. The sender then checks signer == the recipient it wrote to
 * and sender == itself. */
__attribute__((warn_unused_result)) int pst_receipt_verify(const pst_receipt *r, uint64_t now);

#endif
