/* Message encryption and the MessageTrailer record (see pst_msgcrypt.h). */
#include "pst_msgcrypt.h"

#include <string.h>

#include "sigrec.h"

#define TRAILER_FIELDS 8u

_Static_assert(PST_MSG_HEADER_BYTES == crypto_secretstream_xchacha20poly1305_HEADERBYTES,
               "secretstream header size");
_Static_assert(PST_MSG_ABYTES == crypto_secretstream_xchacha20poly1305_ABYTES,
               "secretstream overhead");
_Static_assert(PST_MSGKEY_BYTES == crypto_secretstream_xchacha20poly1305_KEYBYTES,
               "secretstream key size");
_Static_assert(PST_HASH_BYTES == crypto_generichash_BYTES, "BLAKE2b-256");

/* ---- MessageTrailer ------------------------------------------------------ */

static int trailer_validate(const void *p) {
    const pst_msg_trailer *r = p;
    if (r->expires != 0 || r->content_size > PST_MESSAGE_SIZE_MAX)
        return PST_E_RANGE;
    return PST_OK;
}

static void trailer_write(pst_writer *w, const void *p) {
    const pst_msg_trailer *r = p;
    pst_w_uint(w, r->content_size);
    pst_w_bin(w, r->content_hash, PST_HASH_BYTES);
}

static int trailer_read(const msgpack_object *f, void *p) {
    pst_msg_trailer *out = p;
    int rc = pst_r_uint(&f[0], PST_MESSAGE_SIZE_MAX, &out->content_size);
    return rc == PST_OK ? pst_r_bin_fixed(&f[1], PST_HASH_BYTES, out->content_hash) : rc;
}

static const pst_sigrec_kind trailer_kind = {
    PST_SIGREC_KIND(pst_msg_trailer, trailer, PST_REC_MESSAGE_TRAILER, TRAILER_FIELDS,
                    PST_SIGREC_LIMITS(PST_MSG_TRAILER_MAX, 1, 0, PST_SIG_BYTES), 0)};

static const pst_sigrec_window trailer_window = {.skew = PST_MSG_SKEW_MAX};

PST_SIGREC_DEFINE(pst_msg_trailer, trailer_kind)
PST_SIGREC_DEFINE_VERIFY(pst_msg_trailer, trailer_kind, trailer_window)

/* ---- keys and message id ------------------------------------------------- */

void pst_msgid_init(pst_msgid_hasher *h) {
    crypto_generichash_init(&h->st, NULL, 0, PST_HASH_BYTES);
    h->bytes = 0;
}

void pst_msgid_update(pst_msgid_hasher *h, const uint8_t *p, size_t n) {
    if (n == 0)
        return;
    crypto_generichash_update(&h->st, p, n);
    h->bytes += n;
}

void pst_msgid_final(pst_msgid_hasher *h, uint8_t id[PST_HASH_BYTES]) {
    crypto_generichash_final(&h->st, id, PST_HASH_BYTES);
    sodium_memzero(h, sizeof *h);
}

void pst_msgid_compute(const uint8_t *ct, size_t len, uint8_t id[PST_HASH_BYTES]) {
    crypto_generichash(id, PST_HASH_BYTES, ct, len, NULL, 0);
}

/* ---- encryption ---------------------------------------------------------- */

enum { ST_CLOSED = 0, ST_OPEN = 1, ST_DONE = 2 };

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int pst_msg_encryptor_init(pst_msg_encryptor *enc, const uint8_t key[PST_MSGKEY_BYTES],
                           uint8_t header_out[PST_MSG_HEADER_BYTES]) {
    if (enc == NULL)
        return PST_E_INVAL;
    sodium_memzero(enc, sizeof *enc);
    if (key == NULL || header_out == NULL)
        return PST_E_INVAL;
    if (crypto_secretstream_xchacha20poly1305_init_push(&enc->ss, header_out, key) != 0) {
        sodium_memzero(enc, sizeof *enc);
        return PST_E_CRYPTO;
    }
    crypto_generichash_init(&enc->content_hash, NULL, 0, PST_HASH_BYTES);
    enc->total = PST_MSG_HEADER_BYTES;
    enc->state = ST_OPEN;
    return PST_OK;
}

/* Writes prefix + box of m[mlen] with tag; the caller checked the sizes. */
static int push_chunk(pst_msg_encryptor *enc, const uint8_t *m, size_t mlen, uint8_t tag,
                      uint8_t *out) {
    unsigned long long clen = 0;
    put_be32(out, (uint32_t)(mlen + PST_MSG_ABYTES));
    if (crypto_secretstream_xchacha20poly1305_push(&enc->ss, out + PST_MSG_CHUNK_PREFIX, &clen, m,
                                                   mlen, NULL, 0, tag) != 0)
        return PST_E_CRYPTO;
    enc->total += PST_MSG_CHUNK_PREFIX + clen;
    return PST_OK;
}

int pst_msg_encrypt_chunk(pst_msg_encryptor *enc, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len) {
    if (out_len)
        *out_len = 0;
    if (enc == NULL || in == NULL || out == NULL || out_len == NULL || enc->state != ST_OPEN ||
        in_len == 0 || in_len > PST_MSG_CHUNK)
        return PST_E_INVAL;
    size_t need = in_len + PST_MSG_CHUNK_OVERHEAD;
    if (out_cap < need)
        return PST_E_NOSPACE;
    /* the final chunk must still fit under the cap */
    if (enc->total + need + PST_MSG_FINAL_CHUNK_MAX > PST_MESSAGE_SIZE_MAX)
        return PST_E_TOOBIG;
    int rc = push_chunk(enc, in, in_len, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, out);
    if (rc != PST_OK) {
        pst_msg_encryptor_close(enc);
        return rc;
    }
    crypto_generichash_update(&enc->content_hash, in, in_len);
    enc->content_size += in_len;
    *out_len = need;
    return PST_OK;
}

int pst_msg_encrypt_final(pst_msg_encryptor *enc, const uint8_t author_sk[PST_SIGN_SK_BYTES],
                          uint64_t created, uint8_t *out, size_t cap, size_t *out_len) {
    if (out_len)
        *out_len = 0;
    if (enc == NULL)
        return PST_E_INVAL;
    int rc = PST_OK;
    if (author_sk == NULL || out == NULL || out_len == NULL || enc->state != ST_OPEN)
        rc = PST_E_INVAL;
    pst_msg_trailer t;
    memset(&t, 0, sizeof t);
    uint8_t enc_trailer[PST_MSG_TRAILER_MAX];
    size_t tlen = 0;
    if (rc == PST_OK) {
        t.created = created;
        t.content_size = enc->content_size;
        crypto_generichash_final(&enc->content_hash, t.content_hash, PST_HASH_BYTES);
        rc = pst_msg_trailer_sign(&t, author_sk);
    }
    if (rc == PST_OK)
        rc = pst_msg_trailer_encode(&t, enc_trailer, sizeof enc_trailer, &tlen);
    if (rc == PST_OK && cap < tlen + PST_MSG_CHUNK_OVERHEAD)
        rc = PST_E_NOSPACE;
    if (rc == PST_OK)
        rc = push_chunk(enc, enc_trailer, tlen, crypto_secretstream_xchacha20poly1305_TAG_FINAL,
                        out);
    if (rc == PST_OK)
        *out_len = tlen + PST_MSG_CHUNK_OVERHEAD;
    else if (out != NULL)
        sodium_memzero(out, cap < PST_MSG_FINAL_CHUNK_MAX ? cap : PST_MSG_FINAL_CHUNK_MAX);
    pst_msg_encryptor_close(enc);
    return rc;
}

void pst_msg_encryptor_close(pst_msg_encryptor *enc) {
    if (enc != NULL)
        sodium_memzero(enc, sizeof *enc);
}

/* ---- decryption ---------------------------------------------------------- */

int pst_msg_chunk_header_parse(const uint8_t prefix[PST_MSG_CHUNK_PREFIX], uint32_t *box_len) {
    if (box_len == NULL)
        return PST_E_INVAL;
    *box_len = 0;
    if (prefix == NULL)
        return PST_E_INVAL;
    uint32_t n = get_be32(prefix);
    if (n > PST_MSG_BOX_MAX)
        return PST_E_TOOBIG;
    if (n < PST_MSG_ABYTES + 1)
        return PST_E_MALFORMED;
    *box_len = n;
    return PST_OK;
}

int pst_msg_decryptor_init(pst_msg_decryptor *dec, const uint8_t key[PST_MSGKEY_BYTES],
                           const uint8_t header[PST_MSG_HEADER_BYTES]) {
    if (dec == NULL)
        return PST_E_INVAL;
    sodium_memzero(dec, sizeof *dec);
    if (key == NULL || header == NULL)
        return PST_E_INVAL;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&dec->ss, header, key) != 0) {
        sodium_memzero(dec, sizeof *dec);
        return PST_E_CRYPTO;
    }
    crypto_generichash_init(&dec->content_hash, NULL, 0, PST_HASH_BYTES);
    dec->total = PST_MSG_HEADER_BYTES;
    dec->state = ST_OPEN;
    return PST_OK;
}

/* Records the first failure; the stream can never be resumed after one. */
static int dec_fail(pst_msg_decryptor *dec, int err) {
    if (dec->err == 0)
        dec->err = err;
    return dec->err;
}

int pst_msg_decrypt_chunk(pst_msg_decryptor *dec, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len, bool *is_final) {
    if (out_len)
        *out_len = 0;
    if (is_final)
        *is_final = false;
    if (dec == NULL || in == NULL || out == NULL || out_len == NULL || is_final == NULL)
        return PST_E_INVAL;
    if (dec->err != 0)
        return dec->err;
    if (dec->state == ST_DONE)
        return dec_fail(dec, PST_E_TRAILING);
    if (dec->state != ST_OPEN)
        return PST_E_INVAL;
    if (in_len < PST_MSG_CHUNK_PREFIX)
        return dec_fail(dec, PST_E_TRUNCATED);
    uint32_t box_len;
    int rc = pst_msg_chunk_header_parse(in, &box_len);
    if (rc != PST_OK)
        return dec_fail(dec, rc);
    if ((size_t)box_len != in_len - PST_MSG_CHUNK_PREFIX)
        return dec_fail(dec,
                        in_len - PST_MSG_CHUNK_PREFIX < box_len ? PST_E_TRUNCATED : PST_E_TRAILING);
    if (dec->total + in_len > PST_MESSAGE_SIZE_MAX)
        return dec_fail(dec, PST_E_TOOBIG);
    size_t mmax = box_len - PST_MSG_ABYTES;
    if (out_cap < mmax)
        return PST_E_NOSPACE; /* caller bug, stream state untouched */

    unsigned long long mlen = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(
            &dec->ss, out, &mlen, &tag, in + PST_MSG_CHUNK_PREFIX, box_len, NULL, 0) != 0) {
        sodium_memzero(out, mmax);
        return dec_fail(dec, PST_E_CRYPTO);
    }
    dec->total += in_len;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
        /* mlen >= 1: the prefix check guarantees box_len >= ABYTES + 1 */
        crypto_generichash_update(&dec->content_hash, out, (size_t)mlen);
        dec->content_size += mlen;
        *out_len = (size_t)mlen;
        return PST_OK;
    }
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL && mlen <= PST_MSG_TRAILER_MAX) {
        memcpy(dec->trailer, out, (size_t)mlen);
        dec->trailer_len = (size_t)mlen;
        sodium_memzero(out, (size_t)mlen);
        dec->state = ST_DONE;
        *is_final = true;
        return PST_OK;
    }
    /* PUSH/REKEY tags or an oversized final chunk: never written by us */
    sodium_memzero(out, (size_t)mlen);
    return dec_fail(dec, PST_E_MALFORMED);
}

int pst_msg_decrypt_finish(pst_msg_decryptor *dec, const uint8_t *expected_author_pk,
                           pst_msg_trailer *trailer) {
    if (trailer != NULL)
        memset(trailer, 0, sizeof *trailer);
    if (dec == NULL || trailer == NULL) {
        pst_msg_decryptor_close(dec);
        return PST_E_INVAL;
    }
    int rc = dec->err;
    if (rc == PST_OK && dec->state != ST_DONE)
        rc = PST_E_TRUNCATED;
    if (rc == PST_OK)
        rc = pst_msg_trailer_decode(dec->trailer, dec->trailer_len, trailer);
    if (rc == PST_OK) {
        /* created is the message date: any value is acceptable here */
        rc = pst_msg_trailer_verify(trailer, trailer->created);
    }
    if (rc == PST_OK && expected_author_pk != NULL &&
        sodium_memcmp(expected_author_pk, trailer->signer, PST_SIGN_PK_BYTES) != 0)
        rc = PST_E_SIGNER;
    if (rc == PST_OK && trailer->content_size != dec->content_size)
        rc = PST_E_MISMATCH;
    if (rc == PST_OK) {
        uint8_t h[PST_HASH_BYTES];
        crypto_generichash_final(&dec->content_hash, h, sizeof h);
        if (sodium_memcmp(h, trailer->content_hash, PST_HASH_BYTES) != 0)
            rc = PST_E_MISMATCH;
    }
    if (rc != PST_OK)
        memset(trailer, 0, sizeof *trailer);
    pst_msg_decryptor_close(dec);
    return rc;
}

void pst_msg_decryptor_close(pst_msg_decryptor *dec) {
    if (dec != NULL)
        sodium_memzero(dec, sizeof *dec);
}
