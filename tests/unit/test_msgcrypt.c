#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pst_msgcrypt.h"
#include "recutil.h"
#include "testutil.h"

#define NOW 1700000000u

static uint8_t author_pk[32], author_sk[64], other_pk[32], other_sk[64];

static void setup(void) {
    cr_assert(sodium_init() >= 0);
    tu_sign_keypair(author_pk, author_sk, 0x01);
    tu_sign_keypair(other_pk, other_sk, 0x02);
}

TestSuite(msgcrypt, .init = setup);

static void fixed_key(uint8_t key[32]) { memset(key, 0x06, 32); }

/* ---- trailer ------------------------------------------------------------- */

static pst_msg_trailer fixed_trailer(void) {
    pst_msg_trailer t;
    memset(&t, 0, sizeof t);
    t.created = NOW;
    t.content_size = 5;
    crypto_generichash(t.content_hash, 32, (const uint8_t *)"hello", 5, NULL, 0);
    cr_assert_eq(pst_msg_trailer_sign(&t, author_sk), PST_OK);
    return t;
}

TU_DEFINE_SIGNED(trailer, pst_msg_trailer, NOW)

Test(msgcrypt, trailer_roundtrip_and_mutations) {
    pst_msg_trailer t = fixed_trailer(), d;
    cr_assert_arr_eq(t.signer, author_pk, 32);
    uint8_t buf[PST_MSG_TRAILER_MAX];
    size_t len = trailer_round_trip(&t, &d, buf, sizeof buf);
    tu_check_mutations(buf, len, trailer_accept, NULL);
}

Test(msgcrypt, trailer_size_bounds) {
    pst_msg_trailer t;
    memset(&t, 0, sizeof t);
    uint8_t buf[256];
    size_t len;
    cr_assert_eq(pst_msg_trailer_encode(&t, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(len, PST_MSG_TRAILER_MIN);
    t.created = UINT64_MAX;
    t.content_size = PST_MESSAGE_SIZE_MAX;
    cr_assert_eq(pst_msg_trailer_encode(&t, buf, sizeof buf, &len), PST_OK);
    cr_assert_leq(len, PST_MSG_TRAILER_MAX);
    cr_assert_eq(pst_msg_trailer_decode(buf, len, &t), PST_OK);
    t.content_size = PST_MESSAGE_SIZE_MAX + 1ull;
    cr_assert_eq(pst_msg_trailer_encode(&t, buf, sizeof buf, &len), PST_E_INVAL);
    cr_assert_eq(len, 0);
    cr_assert_eq(pst_msg_trailer_sign(&t, author_sk), PST_E_INVAL);
    t.content_size = 0;
    t.expires = 1;
    cr_assert_eq(pst_msg_trailer_encode(&t, buf, sizeof buf, &len), PST_E_INVAL);
    cr_assert_eq(pst_msg_trailer_encode(&t, buf, 10, &len), PST_E_INVAL);
    t.expires = 0;
    cr_assert_eq(pst_msg_trailer_encode(&t, buf, 10, &len), PST_E_NOSPACE);
}

/* Writes a trailer-shaped array with chosen fields, for malformed inputs. */
static size_t raw_trailer(uint8_t *out, uint32_t nfields, uint64_t version, uint64_t type,
                          uint64_t expires, uint64_t size) {
    pst_msg_trailer t = fixed_trailer();
    pst_writer w;
    pst_w_init(&w, out, 512);
    pst_w_array(&w, nfields);
    pst_w_uint(&w, version);
    pst_w_uint(&w, type);
    pst_w_uint(&w, t.created);
    pst_w_uint(&w, expires);
    pst_w_bin(&w, t.signer, 32);
    pst_w_uint(&w, size);
    pst_w_bin(&w, t.content_hash, 32);
    pst_w_bin(&w, t.sig, 64);
    return ru_finish_fields(&w, 8, nfields);
}

Test(msgcrypt, trailer_malformed) {
    uint8_t buf[512];
    pst_msg_trailer t;
    size_t len = raw_trailer(buf, 8, 1, 12, 0, 5);
    cr_assert_eq(pst_msg_trailer_decode(buf, len, &t), PST_OK);
    cr_assert_eq(pst_msg_trailer_verify(&t, NOW), PST_OK);
    len = raw_trailer(buf, 8, 2, 12, 0, 5);
    cr_assert_eq(pst_msg_trailer_decode(buf, len, &t), PST_E_VERSION);
    len = raw_trailer(buf, 8, 1, 9, 0, 5);
    cr_assert_eq(pst_msg_trailer_decode(buf, len, &t), PST_E_RECTYPE);
    len = raw_trailer(buf, 9, 1, 12, 0, 5);
    cr_assert_eq(pst_msg_trailer_decode(buf, len, &t), PST_E_FIELDS);
    len = raw_trailer(buf, 8, 1, 12, 7, 5);
    cr_assert_eq(pst_msg_trailer_decode(buf, len, &t), PST_E_RANGE);
    len = raw_trailer(buf, 8, 1, 12, 0, PST_MESSAGE_SIZE_MAX + 1ull);
    cr_assert_eq(pst_msg_trailer_decode(buf, len, &t), PST_E_RANGE);
    cr_assert_eq(t.created, 0, "output zeroed on failure");
    len = raw_trailer(buf, 8, 1, 12, 0, 5);
    buf[len] = 0x00;
    cr_assert_eq(pst_msg_trailer_decode(buf, len + 1, &t), PST_E_TRAILING);

    /* created 1700000000 as uint64 instead of uint32: non-canonical */
    uint8_t nc[512];
    len = raw_trailer(buf, 8, 1, 12, 0, 5);
    cr_assert_eq(buf[3], 0xce);
    memcpy(nc, buf, 3);
    nc[3] = 0xcf;
    memset(nc + 4, 0, 4);
    memcpy(nc + 8, buf + 4, len - 4);
    cr_assert_eq(pst_msg_trailer_decode(nc, len + 4, &t), PST_E_NONCANONICAL);
}

Test(msgcrypt, trailer_verify_errors) {
    pst_msg_trailer t = fixed_trailer();
    cr_assert_eq(pst_msg_trailer_verify(&t, NOW - PST_MSG_SKEW_MAX), PST_OK);
    cr_assert_eq(pst_msg_trailer_verify(&t, NOW - PST_MSG_SKEW_MAX - 1), PST_E_NOTYET);
    memcpy(t.signer, other_pk, 32);
    cr_assert_eq(pst_msg_trailer_verify(&t, NOW), PST_E_SIGNATURE);
}

Test(msgcrypt, trailer_vector) {
    pst_msg_trailer t = fixed_trailer();
    uint8_t buf[PST_MSG_TRAILER_MAX];
    size_t len;
    cr_assert_eq(pst_msg_trailer_encode(&t, buf, sizeof buf, &len), PST_OK);
    ru_expect_vector("msgcrypt_trailer_v1.hex", buf, len);
    pst_msg_trailer d;
    cr_assert_eq(pst_msg_trailer_decode(buf, len, &d), PST_OK);
    cr_assert_eq(pst_msg_trailer_verify(&d, NOW), PST_OK);
}

/* ---- streaming ----------------------------------------------------------- */

/* Encrypts pt[len] in chunks of at most step bytes; returns a malloc'd
 * ciphertext and checks the streaming message id against the one-shot. */
static uint8_t *encrypt_msg(const uint8_t *pt, size_t len, size_t step, const uint8_t key[32],
                            size_t *ct_len) {
    size_t nchunks = len / step + 2;
    size_t cap =
        PST_MSG_HEADER_BYTES + len + nchunks * PST_MSG_CHUNK_OVERHEAD + PST_MSG_TRAILER_MAX;
    uint8_t *ct = malloc(cap);
    cr_assert_not_null(ct);
    pst_msg_encryptor enc;
    pst_msgid_hasher h;
    pst_msgid_init(&h);
    cr_assert_eq(pst_msg_encryptor_init(&enc, key, ct), PST_OK);
    pst_msgid_update(&h, ct, PST_MSG_HEADER_BYTES);
    size_t off = PST_MSG_HEADER_BYTES, n;
    for (size_t i = 0; i < len; i += step) {
        size_t m = len - i < step ? len - i : step;
        cr_assert_eq(pst_msg_encrypt_chunk(&enc, pt + i, m, ct + off, cap - off, &n), PST_OK);
        cr_assert_eq(n, m + PST_MSG_CHUNK_OVERHEAD);
        pst_msgid_update(&h, ct + off, n);
        off += n;
    }
    cr_assert_eq(pst_msg_encrypt_final(&enc, author_sk, NOW, ct + off, cap - off, &n), PST_OK);
    cr_assert_leq(n, PST_MSG_FINAL_CHUNK_MAX);
    pst_msgid_update(&h, ct + off, n);
    off += n;
    uint8_t id1[32], id2[32];
    pst_msgid_final(&h, id1);
    pst_msgid_compute(ct, off, id2);
    cr_assert_arr_eq(id1, id2, 32);
    *ct_len = off;
    return ct;
}

/* Splits ct as a receiver would and decrypts; returns the first error. */
static int decrypt_msg(const uint8_t *ct, size_t len, const uint8_t key[32], const uint8_t *author,
                       uint8_t *pt, size_t *pt_len, pst_msg_trailer *tr) {
    static uint8_t chunk[PST_MSG_CHUNK];
    pst_msg_decryptor dec;
    *pt_len = 0;
    if (len < PST_MSG_HEADER_BYTES)
        return PST_E_TRUNCATED;
    int rc = pst_msg_decryptor_init(&dec, key, ct);
    size_t off = PST_MSG_HEADER_BYTES;
    while (rc == PST_OK && off < len) {
        size_t avail = len - off, want = avail, n;
        uint32_t box;
        bool fin;
        if (avail >= 4 && pst_msg_chunk_header_parse(ct + off, &box) == PST_OK &&
            avail > 4 + (size_t)box)
            want = 4 + box;
        rc = pst_msg_decrypt_chunk(&dec, ct + off, want, chunk, sizeof chunk, &n, &fin);
        if (rc == PST_OK) {
            memcpy(pt + *pt_len, chunk, n);
            *pt_len += n;
            cr_assert(!fin || n == 0);
        }
        off += want;
    }
    int frc = pst_msg_decrypt_finish(&dec, author, tr);
    return rc != PST_OK ? rc : frc;
}

/* The fixture of the tamper tests: pt (n bytes) filled from seed, key the
 * fixed key, and pt encrypted with it in step-byte chunks (caller frees). */
static uint8_t *encrypt_fixed(uint8_t *pt, size_t n, uint32_t seed, size_t step, uint8_t key[32],
                              size_t *ct_len) {
    tu_fill(pt, n, seed);
    fixed_key(key);
    return encrypt_msg(pt, n, step, key, ct_len);
}

static void roundtrip(size_t len, size_t step) {
    uint8_t *pt = malloc(len + 1), *back = malloc(len + 1);
    cr_assert(pt && back);
    tu_fill(pt, len, (uint32_t)len);
    uint8_t key[32];
    randombytes_buf(key, PST_MSGKEY_BYTES);
    size_t ct_len, back_len;
    uint8_t *ct = encrypt_msg(pt, len, step, key, &ct_len);
    size_t chunks = (len + step - 1) / step;
    size_t fixed = PST_MSG_HEADER_BYTES + len + (chunks + 1) * PST_MSG_CHUNK_OVERHEAD;
    cr_assert(ct_len >= fixed + PST_MSG_TRAILER_MIN && ct_len <= fixed + PST_MSG_TRAILER_MAX);
    pst_msg_trailer tr;
    cr_assert_eq(decrypt_msg(ct, ct_len, key, author_pk, back, &back_len, &tr), PST_OK, "size %zu",
                 len);
    cr_assert_eq(back_len, len);
    cr_assert_eq(memcmp(back, pt, len), 0);
    cr_assert_eq(tr.content_size, len);
    cr_assert_arr_eq(tr.signer, author_pk, 32);
    cr_assert_eq(tr.created, NOW);
    /* without an expected author the signature is still checked */
    cr_assert_eq(decrypt_msg(ct, ct_len, key, NULL, back, &back_len, &tr), PST_OK);
    free(ct);
    free(pt);
    free(back);
}

Test(msgcrypt, roundtrip_sizes) {
    const size_t sizes[] = {
        0, 1, PST_MSG_CHUNK - 1, PST_MSG_CHUNK, PST_MSG_CHUNK + 1, 3u * 1024 * 1024};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        roundtrip(sizes[i], PST_MSG_CHUNK);
    roundtrip(1000, 7); /* small uneven chunks are fine too */
}

Test(msgcrypt, wrong_author_and_wrong_key) {
    uint8_t pt[100], back[100], key[32], bad[32];
    size_t ct_len, n;
    uint8_t *ct = encrypt_fixed(pt, sizeof pt, 9, PST_MSG_CHUNK, key, &ct_len);
    memcpy(bad, key, 32);
    bad[0] ^= 1;
    pst_msg_trailer tr;
    cr_assert_eq(decrypt_msg(ct, ct_len, key, other_pk, back, &n, &tr), PST_E_SIGNER);
    cr_assert_eq(tr.content_size, 0, "trailer zeroed on failure");
    cr_assert_eq(decrypt_msg(ct, ct_len, bad, author_pk, back, &n, &tr), PST_E_CRYPTO);
    free(ct);
}

Test(msgcrypt, truncation_and_extra_chunks) {
    uint8_t pt[3000], back[3000 + PST_MSG_CHUNK], key[32];
    size_t ct_len, n;
    uint8_t *ct = encrypt_fixed(pt, sizeof pt, 3, 1000, key, &ct_len);
    pst_msg_trailer tr;
    size_t final_start = PST_MSG_HEADER_BYTES + 3 * (1000 + PST_MSG_CHUNK_OVERHEAD);
    /* every truncation fails: at a chunk boundary (no final), or mid-chunk */
    for (size_t cut = 0; cut < ct_len; cut++)
        cr_assert_neq(decrypt_msg(ct, cut, key, author_pk, back, &n, &tr), PST_OK, "cut %zu", cut);
    cr_assert_eq(decrypt_msg(ct, final_start, key, author_pk, back, &n, &tr), PST_E_TRUNCATED);

    /* a data chunk repeated after the final chunk */
    uint8_t *ext = malloc(ct_len + 1000 + PST_MSG_CHUNK_OVERHEAD);
    memcpy(ext, ct, ct_len);
    memcpy(ext + ct_len, ct + PST_MSG_HEADER_BYTES, 1000 + PST_MSG_CHUNK_OVERHEAD);
    cr_assert_eq(
        decrypt_msg(ext, ct_len + 1000 + PST_MSG_CHUNK_OVERHEAD, key, author_pk, back, &n, &tr),
        PST_E_TRAILING);
    /* swapped data chunks */
    memcpy(ext, ct, ct_len);
    memcpy(ext + PST_MSG_HEADER_BYTES, ct + PST_MSG_HEADER_BYTES + 1021, 1021);
    memcpy(ext + PST_MSG_HEADER_BYTES + 1021, ct + PST_MSG_HEADER_BYTES, 1021);
    cr_assert_eq(decrypt_msg(ext, ct_len, key, author_pk, back, &n, &tr), PST_E_CRYPTO);
    /* final chunk moved before the last data chunk */
    memcpy(ext, ct, final_start - 1021);
    memcpy(ext + final_start - 1021, ct + final_start, ct_len - final_start);
    memcpy(ext + final_start - 1021 + ct_len - final_start, ct + final_start - 1021, 1021);
    cr_assert_eq(decrypt_msg(ext, ct_len, key, author_pk, back, &n, &tr), PST_E_CRYPTO);
    free(ext);
    free(ct);
}

Test(msgcrypt, every_flipped_byte_rejected) {
    uint8_t pt[300], back[300 + PST_MSG_CHUNK], key[32];
    size_t ct_len, n;
    uint8_t *ct = encrypt_fixed(pt, sizeof pt, 4, 100, key, &ct_len);
    pst_msg_trailer tr;
    for (size_t i = 0; i < ct_len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            ct[i] ^= (uint8_t)(1u << bit);
            cr_assert_neq(decrypt_msg(ct, ct_len, key, author_pk, back, &n, &tr), PST_OK,
                          "byte %zu bit %d", i, bit);
            ct[i] ^= (uint8_t)(1u << bit);
        }
    }
    cr_assert_eq(decrypt_msg(ct, ct_len, key, author_pk, back, &n, &tr), PST_OK);
    free(ct);
}

Test(msgcrypt, chunk_prefix_limits) {
    uint8_t p[4];
    uint32_t box;
    p[0] = 0;
    p[1] = 0x01;
    p[2] = 0x00;
    p[3] = 0x11; /* 65553 = PST_MSG_BOX_MAX */
    cr_assert_eq(pst_msg_chunk_header_parse(p, &box), PST_OK);
    cr_assert_eq(box, PST_MSG_BOX_MAX);
    p[3] = 0x12;
    cr_assert_eq(pst_msg_chunk_header_parse(p, &box), PST_E_TOOBIG);
    cr_assert_eq(box, 0);
    memset(p, 0, 4);
    p[3] = PST_MSG_ABYTES;
    cr_assert_eq(pst_msg_chunk_header_parse(p, &box), PST_E_MALFORMED);
    p[3] = PST_MSG_ABYTES + 1;
    cr_assert_eq(pst_msg_chunk_header_parse(p, &box), PST_OK);

    /* an oversized chunk is refused by the decryptor before decrypting */
    uint8_t key[32], hdr[24], out[16];
    fixed_key(key);
    memset(hdr, 0, sizeof hdr);
    pst_msg_decryptor dec;
    cr_assert_eq(pst_msg_decryptor_init(&dec, key, hdr), PST_OK);
    static uint8_t big[PST_MSG_BOX_MAX + 8];
    memset(big, 0, sizeof big);
    big[1] = 0x01;
    big[3] = 0x12;
    size_t n;
    bool fin;
    cr_assert_eq(pst_msg_decrypt_chunk(&dec, big, PST_MSG_BOX_MAX + 5, out, sizeof out, &n, &fin),
                 PST_E_TOOBIG);
    /* sticky */
    cr_assert_eq(pst_msg_decrypt_chunk(&dec, big, 30, out, sizeof out, &n, &fin), PST_E_TOOBIG);
    pst_msg_trailer tr;
    cr_assert_eq(pst_msg_decrypt_finish(&dec, NULL, &tr), PST_E_TOOBIG);
}

Test(msgcrypt, encryptor_misuse) {
    uint8_t key[32], hdr[24], in[PST_MSG_CHUNK + 1], out[PST_MSG_WIRE_CHUNK_MAX + 1];
    fixed_key(key);
    memset(in, 0, sizeof in);
    pst_msg_encryptor enc;
    size_t n;
    cr_assert_eq(pst_msg_encryptor_init(&enc, key, hdr), PST_OK);
    cr_assert_eq(pst_msg_encrypt_chunk(&enc, in, 0, out, sizeof out, &n), PST_E_INVAL);
    cr_assert_eq(pst_msg_encrypt_chunk(&enc, in, PST_MSG_CHUNK + 1, out, sizeof out, &n),
                 PST_E_INVAL);
    cr_assert_eq(pst_msg_encrypt_chunk(&enc, in, 10, out, 30, &n), PST_E_NOSPACE);
    cr_assert_eq(pst_msg_encrypt_chunk(&enc, in, 10, out, 31, &n), PST_OK);
    cr_assert_eq(n, 31);
    cr_assert_eq(pst_msg_encrypt_chunk(&enc, in, PST_MSG_CHUNK, out, PST_MSG_WIRE_CHUNK_MAX, &n),
                 PST_OK);
    cr_assert_eq(pst_msg_encrypt_final(&enc, author_sk, NOW, out, 20, &n), PST_E_NOSPACE);
    cr_assert_eq(n, 0);
    /* the encryptor is closed after final, whatever happened */
    cr_assert_eq(pst_msg_encrypt_chunk(&enc, in, 10, out, sizeof out, &n), PST_E_INVAL);
    cr_assert_eq(pst_msg_encrypt_final(&enc, author_sk, NOW, out, sizeof out, &n), PST_E_INVAL);
}

Test(msgcrypt, decryptor_output_too_small_is_not_sticky) {
    uint8_t pt[100], key[32], back[PST_MSG_CHUNK], small[10];
    size_t ct_len, n;
    uint8_t *ct = encrypt_fixed(pt, sizeof pt, 5, 100, key, &ct_len);
    pst_msg_decryptor dec;
    bool fin;
    cr_assert_eq(pst_msg_decryptor_init(&dec, key, ct), PST_OK);
    cr_assert_eq(pst_msg_decrypt_chunk(&dec, ct + 24, 121, small, sizeof small, &n, &fin),
                 PST_E_NOSPACE);
    cr_assert_eq(pst_msg_decrypt_chunk(&dec, ct + 24, 121, back, sizeof back, &n, &fin), PST_OK);
    cr_assert_eq(n, 100);
    cr_assert_eq(pst_msg_decrypt_chunk(&dec, ct + 145, ct_len - 145, back, sizeof back, &n, &fin),
                 PST_OK);
    cr_assert(fin);
    pst_msg_trailer tr;
    cr_assert_eq(pst_msg_decrypt_finish(&dec, author_pk, &tr), PST_OK);
    free(ct);
}

/* A whole message under a fixed key: pins the ciphertext layout. */
Test(msgcrypt, message_vector) {
    uint8_t ct[512], back[PST_MSG_CHUNK], key[32];
    long n = ru_read_vector("msgcrypt_message_v1.hex", ct, sizeof ct);
    if (n < 0) {
        fixed_key(key);
        size_t ct_len;
        uint8_t *fresh = encrypt_msg((const uint8_t *)"hello", 5, PST_MSG_CHUNK, key, &ct_len);
        char *hex = malloc(2 * ct_len + 1);
        tu_hex_encode(fresh, ct_len, hex);
        cr_assert_fail("missing vector, a fresh one: %s", hex);
    }
    fixed_key(key);
    size_t blen;
    pst_msg_trailer tr;
    cr_assert_eq(decrypt_msg(ct, (size_t)n, key, author_pk, back, &blen, &tr), PST_OK);
    cr_assert_eq(blen, 5);
    cr_assert_eq(memcmp(back, "hello", 5), 0);
    pst_msg_trailer want = fixed_trailer();
    cr_assert_eq(memcmp(&tr, &want, sizeof tr), 0);
    uint8_t id[32];
    char idhex[65];
    pst_msgid_compute(ct, (size_t)n, id);
    tu_hex_encode(id, 32, idhex);
    cr_assert_str_eq(idhex, "7a868ac1f1bd77eb7074034bd62856e8d5f6a3bf5f451f88917eedadf0abe745");
}
