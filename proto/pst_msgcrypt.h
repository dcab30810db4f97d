/* Message encryption: one random key per message, libsodium secretstream
 * (XChaCha20-Poly1305) in chunks, and a signed MessageTrailer in the final
 * chunk so the author is verified before the recipient stores anything.
 * Pure and streaming: the caller feeds chunks and writes the output; no
 * function here needs the whole message in memory.
 *
 * Ciphertext layout (what the sender stores and serves, what msg_id hashes):
 *
 *   header (24 B, secretstream)
 *   chunk*      : len (u32 big-endian) || secretstream box of len bytes
 *                 data chunks: TAG_MESSAGE, 1..PST_MSG_CHUNK plaintext bytes
 *   final chunk : len || box with TAG_FINAL whose plaintext is exactly one
 *                 MessageTrailer record (type 12)
 *
 * The length prefix makes the ciphertext self-delimiting, so a stored or
 * streamed message can be split into chunks without out-of-band framing. */
#ifndef PST_MSGCRYPT_H
#define PST_MSGCRYPT_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_types.h"

#define PST_MSG_CHUNK 65536u       /* plaintext bytes per data chunk, at most */
#define PST_MSG_HEADER_BYTES 24u   /* crypto_secretstream_xchacha20poly1305_HEADERBYTES */
#define PST_MSG_ABYTES 17u         /* crypto_secretstream_xchacha20poly1305_ABYTES */
#define PST_MSG_CHUNK_PREFIX 4u    /* u32 big-endian length before each box */
#define PST_MSG_CHUNK_OVERHEAD 21u /* prefix + ABYTES */
/* Largest wire chunk (prefix included), i.e. the buffer one chunk needs. */
#define PST_MSG_WIRE_CHUNK_MAX (PST_MSG_CHUNK + PST_MSG_CHUNK_OVERHEAD)
/* Largest box (without prefix) a length prefix may announce. */
#define PST_MSG_BOX_MAX (PST_MSG_CHUNK + PST_MSG_ABYTES)

/* Encoded MessageTrailer: at most 156 bytes (all integers at 9 bytes), at
 * least 140 (all integers at 1 byte). */
#define PST_MSG_TRAILER_MAX 160u
#define PST_MSG_TRAILER_MIN 140u
/* Largest final wire chunk. */
#define PST_MSG_FINAL_CHUNK_MAX (PST_MSG_TRAILER_MAX + PST_MSG_CHUNK_OVERHEAD)

/* Ciphertext size caps (header + all wire chunks). proto enforces the
 * protocol-wide cap; a node enforces its own, lower, configured limit. */
#define PST_MESSAGE_SIZE_MAX (64u * 1024u * 1024u)
#define PST_MESSAGE_SIZE_MIN                                                                       \
    (PST_MSG_HEADER_BYTES + PST_MSG_CHUNK_OVERHEAD + PST_MSG_TRAILER_MIN) /* empty content */

/* How far in the future a trailer's created may be (author clock skew). */
#define PST_MSG_SKEW_MAX 3600u

/* ---- MessageTrailer record (type 12) --------------------------------------
 * [1, 12, created, expires=0, signer=author pk, content_size (u64 plaintext
 *  bytes, <= PST_MESSAGE_SIZE_MAX), content_hash (bin 32, BLAKE2b-256 of the
 *  plaintext), sig (bin 64)] */
typedef struct {
    uint64_t created;
    uint64_t expires; /* always 0: a message does not expire */
    uint8_t signer[PST_SIGN_PK_BYTES];
    uint64_t content_size;
    uint8_t content_hash[PST_HASH_BYTES];
    uint8_t sig[PST_SIG_BYTES];
} pst_msg_trailer;

/* Canonical encoding of r into out[cap]. PST_E_INVAL if r breaks a limit
 * (expires != 0, content_size over the cap), PST_E_NOSPACE if cap is too
 * small (PST_MSG_TRAILER_MAX always fits). *len = 0 on failure. */
int pst_msg_trailer_encode(const pst_msg_trailer *r, uint8_t *out, size_t cap, size_t *len);
/* Sets r->signer to the public half of sk and r->sig over all other fields.
 * PST_E_INVAL if r breaks a limit (then sig is zeroed). */
int pst_msg_trailer_sign(pst_msg_trailer *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
/* Strict decode of exactly one canonical trailer; does not verify the
 * signature. *out zeroed on failure. */
int pst_msg_trailer_decode(const uint8_t *in, size_t len, pst_msg_trailer *out);
/* Signature by r->signer and created <= now + PST_MSG_SKEW_MAX.
 * PST_E_SIGNATURE, PST_E_NOTYET. */
__attribute__((warn_unused_result)) int pst_msg_trailer_verify(const pst_msg_trailer *r,
                                                               uint64_t now);

/* ---- keys and message id ------------------------------------------------- */

/* A message key is PST_MSGKEY_BYTES fresh random bytes that the caller
 * draws (randombytes_buf: proto/ draws no key, nonce or seed of its own;
 * only libsodium's secretstream header and sealed-box key are drawn inside
 * their calls, docs/ARCHITECTURE.md), keeps in locked memory and wipes
 * with sodium_memzero. */

/* Message id = BLAKE2b-256 over every ciphertext byte (header, prefixes and
 * boxes), computed incrementally while sending or receiving. */
typedef struct {
    crypto_generichash_state st;
    uint64_t bytes;
} pst_msgid_hasher;

void pst_msgid_init(pst_msgid_hasher *h);
void pst_msgid_update(pst_msgid_hasher *h, const uint8_t *p, size_t n);
/* Writes the id and resets h (call pst_msgid_init to reuse it). */
void pst_msgid_final(pst_msgid_hasher *h, uint8_t id[PST_HASH_BYTES]);
/* One-shot convenience over a ciphertext held in memory. */
void pst_msgid_compute(const uint8_t *ct, size_t len, uint8_t id[PST_HASH_BYTES]);

/* ---- streaming encryption ------------------------------------------------ */

/* Fixed-size state: holds the stream key, so close (or finish) it to wipe. */
typedef struct {
    crypto_secretstream_xchacha20poly1305_state ss;
    crypto_generichash_state content_hash;
    uint64_t content_size;
    uint64_t total; /* ciphertext bytes emitted, header included */
    int state;      /* internal: 0 closed, 1 open, 2 finished */
} pst_msg_encryptor;

/* Starts a message under key and writes the secretstream header (random:
 * encryption is not deterministic). Always succeeds with valid pointers;
 * PST_E_INVAL otherwise. */
int pst_msg_encryptor_init(pst_msg_encryptor *enc, const uint8_t key[PST_MSGKEY_BYTES],
                           uint8_t header_out[PST_MSG_HEADER_BYTES]);
/* Encrypts in[1..PST_MSG_CHUNK] as one data chunk into out: writes
 * in_len + PST_MSG_CHUNK_OVERHEAD bytes (prefix + box). PST_E_INVAL for
 * in_len 0 or > PST_MSG_CHUNK or an encryptor not open, PST_E_NOSPACE if
 * out_cap is too small (state unchanged), PST_E_TOOBIG when the message
 * would pass PST_MESSAGE_SIZE_MAX. */
int pst_msg_encrypt_chunk(pst_msg_encryptor *enc, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len);
/* Signs a trailer (author_sk, created, content size and hash of everything
 * encrypted so far) and writes it as the final chunk (at most
 * PST_MSG_FINAL_CHUNK_MAX bytes). The encryptor is wiped afterwards,
 * whatever the result; on error *out_len = 0. */
int pst_msg_encrypt_final(pst_msg_encryptor *enc, const uint8_t author_sk[PST_SIGN_SK_BYTES],
                          uint64_t created, uint8_t *out, size_t cap, size_t *out_len);
/* Wipes the state (abort path). Safe to call more than once. */
void pst_msg_encryptor_close(pst_msg_encryptor *enc);

/* ---- streaming decryption ------------------------------------------------ */

typedef struct {
    crypto_secretstream_xchacha20poly1305_state ss;
    crypto_generichash_state content_hash;
    uint64_t content_size;
    uint64_t total;
    uint8_t trailer[PST_MSG_TRAILER_MAX];
    size_t trailer_len;
    int err;   /* sticky: first failure, returned by every later call */
    int state; /* internal: 0 closed, 1 open, 2 final chunk seen */
} pst_msg_decryptor;

/* Parses a chunk's 4-byte prefix: *box_len = bytes that follow it. Rejects
 * a box shorter than PST_MSG_ABYTES + 1 (PST_E_MALFORMED) or longer than
 * PST_MSG_BOX_MAX (PST_E_TOOBIG). *box_len = 0 on failure. */
int pst_msg_chunk_header_parse(const uint8_t prefix[PST_MSG_CHUNK_PREFIX], uint32_t *box_len);

int pst_msg_decryptor_init(pst_msg_decryptor *dec, const uint8_t key[PST_MSGKEY_BYTES],
                           const uint8_t header[PST_MSG_HEADER_BYTES]);
/* Decrypts one whole wire chunk (prefix + box, exactly as written by the
 * encryptor). Data chunks write their plaintext to out (out_cap >= in_len -
 * PST_MSG_CHUNK_OVERHEAD, else PST_E_NOSPACE and no state change) and set
 * *is_final = false; the final chunk writes nothing (*out_len = 0), keeps
 * the trailer inside and sets *is_final = true. Errors are sticky:
 * PST_E_CRYPTO (wrong key, tampered, reordered or truncated box),
 * PST_E_MALFORMED (prefix does not match in_len, empty data chunk, unknown
 * tag, oversized trailer), PST_E_TOOBIG (chunk or message over its cap),
 * PST_E_TRAILING (any chunk after the final one). out is wiped on error. */
int pst_msg_decrypt_chunk(pst_msg_decryptor *dec, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len, bool *is_final);
/* Ends the stream: decodes the trailer, verifies its signature (and that
 * the author is expected_author_pk unless NULL), the content size and the
 * content hash. Call it before storing or showing anything. The trailer's
 * created is not checked against a clock here (it is the message date).
 * PST_E_TRUNCATED (no final chunk), decode errors, PST_E_SIGNATURE,
 * PST_E_SIGNER, PST_E_MISMATCH, or the sticky error. *trailer zeroed on
 * failure. The decryptor is wiped afterwards, whatever the result. */
__attribute__((warn_unused_result)) int pst_msg_decrypt_finish(pst_msg_decryptor *dec,
                                                               const uint8_t *expected_author_pk,
                                                               pst_msg_trailer *trailer);
void pst_msg_decryptor_close(pst_msg_decryptor *dec);

#endif
