/* Identity: z-base-32, fingerprints, address normalisation, slots, key files. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "pst_base32.h"
#include "pst_error.h"
#include "pst_identity.h"
#include "pst_records.h"
#include "recutil.h"
#include "testutil.h"

static const pst_kdf_params fast_kdf = {PST_KDF_OPSLIMIT_MIN, PST_KDF_MEMLIMIT_MIN};
static const uint8_t kf_nonce[PST_KEYFILE_NONCE_BYTES] = {4};

/* A new identity as the node makes one: three fresh random seeds. */
static pst_identity *fresh_identity(void) {
    uint8_t s[3][PST_SEED_BYTES];
    pst_identity *id = NULL;
    randombytes_buf(s, sizeof s);
    cr_assert_eq(pst_identity_from_seeds(s[0], s[1], s[2], &id), PST_OK);
    return id;
}

static void seeds(uint8_t s[32], uint8_t base) {
    for (int i = 0; i < 32; i++)
        s[i] = (uint8_t)(base + i);
}

static pst_identity *kat_identity(bool with_rev) {
    uint8_t a[32], b[32], c[32];
    seeds(a, 0x00);
    seeds(b, 0x20);
    seeds(c, 0x40);
    pst_identity *id;
    cr_assert_eq(pst_identity_from_seeds(a, b, with_rev ? c : NULL, &id), PST_OK);
    return id;
}

/* ---- base32 ---------------------------------------------------------------- */

/* Answers computed with Python's RFC 4648 base32 and the alphabet swapped;
 * f0bfc7 and d47a04 are the examples of the z-base-32 specification. */
static const struct {
    const char *hex;
    const char *z;
} b32_kat[] = {
    {"", ""},
    {"00", "yy"},
    {"ff", "9h"},
    {"f0bfc7", "6n9hq"},
    {"d47a04", "4t7ye"},
    {"68656c6c6f", "pb1sa5dx"},
    {"506f737465726e", "kbzzg7dfqjzy"},
    {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "yyyoryarywdyqnyjbefoadeqbhebnrounoktcfaadrpbs8y7daxo"},
    {"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
     "999999999999999999999999999999999999999999999999999o"},
};

Test(base32, known_answers) {
    for (size_t i = 0; i < sizeof b32_kat / sizeof b32_kat[0]; i++) {
        uint8_t bin[64], back[64];
        char z[128];
        long n = tu_hex_decode(b32_kat[i].hex, bin, sizeof bin);
        cr_assert_geq(n, 0);
        cr_assert_eq(pst_base32_encode(bin, (size_t)n, z, sizeof z), PST_OK);
        cr_assert_str_eq(z, b32_kat[i].z);
        cr_assert_eq(strlen(z), PST_BASE32_ENCODED_LEN(n));
        size_t m;
        cr_assert_eq(pst_base32_decode(z, strlen(z), back, sizeof back, &m), PST_OK);
        cr_assert_eq(m, (size_t)n);
        cr_assert_arr_eq(back, bin, m);
    }
}

Test(base32, strict_decoding) {
    uint8_t out[8];
    size_t n;
    cr_assert_eq(pst_base32_decode("6N9HQ", 5, out, sizeof out, &n), PST_OK, "upper case");
    cr_assert_eq(out[0], 0xf0);
    /* characters outside the alphabet: 0 l v 2 are deliberately missing */
    const char *bad[] = {"6n9h0", "6n9hl", "6n9hv", "6n9h2", "6n9h ", "6n9h=", "6n9h\xc3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(pst_base32_decode(bad[i], 5, out, sizeof out, &n), PST_E_INVAL, "%s", bad[i]);
        cr_assert_eq(n, 0);
    }
    /* lengths no byte string encodes to */
    cr_assert_eq(pst_base32_decode("y", 1, out, sizeof out, &n), PST_E_INVAL);
    cr_assert_eq(pst_base32_decode("yyy", 3, out, sizeof out, &n), PST_E_INVAL);
    cr_assert_eq(pst_base32_decode("yyyyyy", 6, out, sizeof out, &n), PST_E_INVAL);
    /* "yo" = 00000 10000: a set bit in the 2 unused trailing bits */
    cr_assert_eq(pst_base32_decode("yb", 2, out, sizeof out, &n), PST_E_NONCANONICAL);
    cr_assert_eq(pst_base32_decode("9h", 2, out, sizeof out, &n), PST_OK);
    cr_assert_eq(pst_base32_decode("99", 2, out, sizeof out, &n), PST_E_NONCANONICAL);
    cr_assert_eq(pst_base32_decode("6n9hq", 5, out, 2, &n), PST_E_NOSPACE);
    char z[4];
    cr_assert_eq(pst_base32_encode((const uint8_t *)"ab", 2, z, sizeof z), PST_E_NOSPACE);
    cr_assert_str_eq(z, "");
}

Test(base32, random_round_trip) {
    for (uint32_t seed = 1; seed < 200; seed++) {
        uint8_t in[40], back[40];
        char z[80];
        size_t n = seed % sizeof in, m;
        tu_fill(in, n, seed);
        cr_assert_eq(pst_base32_encode(in, n, z, sizeof z), PST_OK);
        cr_assert_eq(pst_base32_decode(z, strlen(z), back, sizeof back, &m), PST_OK);
        cr_assert_eq(m, n);
        cr_assert_arr_eq(back, in, n);
    }
}

/* ---- fingerprints ---------------------------------------------------------- */

Test(fingerprint, format_parse_round_trip) {
    for (uint32_t seed = 1; seed < 100; seed++) {
        uint8_t pk[32], back[32];
        char fpr[PST_FINGERPRINT_STRLEN + 1];
        tu_fill(pk, sizeof pk, seed);
        pst_fingerprint_format(pk, fpr);
        cr_assert_eq(strlen(fpr), 52);
        cr_assert_eq(strpbrk(fpr, "0lv2OIL"), NULL, "ambiguous character in %s", fpr);
        cr_assert_eq(pst_fingerprint_parse(fpr, back), PST_OK);
        cr_assert_arr_eq(back, pk, 32);
        for (char *c = fpr; *c; c++)
            *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
        cr_assert_eq(pst_fingerprint_parse(fpr, back), PST_OK, "upper case accepted");
        cr_assert_arr_eq(back, pk, 32);
    }
}

Test(fingerprint, parse_rejects) {
    uint8_t pk[32];
    char fpr[PST_FINGERPRINT_STRLEN + 1], buf[80];
    memset(pk, 0xab, sizeof pk);
    pst_fingerprint_format(pk, fpr);
    cr_assert_eq(pst_fingerprint_parse("", pk), PST_E_INVAL);
    cr_assert_eq(pst_fingerprint_parse(NULL, pk), PST_E_INVAL);
    memcpy(buf, fpr, 51);
    buf[51] = '\0';
    cr_assert_eq(pst_fingerprint_parse(buf, pk), PST_E_INVAL, "51 chars");
    snprintf(buf, sizeof buf, "%sy", fpr);
    cr_assert_eq(pst_fingerprint_parse(buf, pk), PST_E_INVAL, "53 chars");
    snprintf(buf, sizeof buf, " %s", fpr);
    buf[52] = '\0';
    cr_assert_eq(pst_fingerprint_parse(buf, pk), PST_E_INVAL, "leading space");
    memcpy(buf, fpr, 53);
    buf[10] = '-';
    cr_assert_eq(pst_fingerprint_parse(buf, pk), PST_E_INVAL, "separator");
    for (int i = 0; i < 32; i++)
        cr_assert_eq(pk[i], 0, "zeroed on error");
    /* 256 bits in 52 characters leave 4 unused bits in the last one */
    memcpy(buf, fpr, 53);
    buf[51] = 'b'; /* value 1 */
    cr_assert_eq(pst_fingerprint_parse(buf, pk), PST_E_NONCANONICAL);
    buf[51] = 'o'; /* value 16: the last real bit */
    cr_assert_eq(pst_fingerprint_parse(buf, pk), PST_OK);
}

/* ---- addresses ------------------------------------------------------------- */

static void long_address(char *out, size_t len) {
    size_t local = len - 1 - 190 > 64 ? 64 : len - 1 - 190;
    if (len < 1 + 190 + 1)
        local = len / 3;
    ru_address(out, local, len);
}

Test(address, normalize_cases) {
    char out[PST_ADDRESS_MAX + 1];
    const struct {
        const char *in, *want;
    } ok[] = {
        {"alice@example.org", "alice@example.org"},
        {"Alice@Example.ORG", "alice@example.org"},
        {"a.b_c+tag-x@mail-1.example.co.uk", "a.b_c+tag-x@mail-1.example.co.uk"},
        {"a@b", "a@b"},
        {"0@1.2", "0@1.2"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_assert_eq(pst_address_normalize(ok[i].in, out, sizeof out), PST_OK, "%s", ok[i].in);
        cr_assert_str_eq(out, ok[i].want);
        cr_assert(pst_address_is_normalized(out, strlen(out)));
    }
    const char *bad[] = {
        "",
        "alice",
        "@example.org",
        "alice@",
        "a@@b",
        "a@b@c",
        " alice@example.org",
        "alice@example.org ",
        "al ice@x.y",
        "alice@ex_ample",
        "alice@.example",
        "alice@example.",
        "alice@ex..a",
        "alice@-ex.org",
        "alice@ex-.org",
        ".alice@x.y",
        "alice.@x.y",
        "al..ice@x.y",
        "al\"ice@x.y",
        "alice@exämple.org",
        "ålice@x.y",
        "alice@x.y\n",
        "al(ice)@x.y",
        "alice@[1.2.3.4]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(pst_address_normalize(bad[i], out, sizeof out), PST_E_INVAL, "%s", bad[i]);
        cr_assert_str_eq(out, "");
    }
    cr_assert_eq(pst_address_normalize("alice@example.org", out, 17), PST_E_NOSPACE);
    cr_assert_eq(pst_address_normalize("alice@example.org", out, 18), PST_OK);
    cr_assert(!pst_address_is_normalized("Alice@example.org", 17), "upper case is not normal");
}

Test(address, length_limits) {
    char in[400], out[PST_ADDRESS_MAX + 1];
    /* local part: 64 ok, 65 not */
    memset(in, 'a', 64);
    strcpy(in + 64, "@x.y");
    cr_assert_eq(pst_address_normalize(in, out, sizeof out), PST_OK);
    memset(in, 'a', 65);
    strcpy(in + 65, "@x.y");
    cr_assert_eq(pst_address_normalize(in, out, sizeof out), PST_E_INVAL);
    /* a label: 63 ok, 64 not */
    in[0] = 'a';
    in[1] = '@';
    memset(in + 2, 'b', 63);
    in[65] = '\0';
    cr_assert_eq(pst_address_normalize(in, out, sizeof out), PST_OK);
    memset(in + 2, 'b', 64);
    in[66] = '\0';
    cr_assert_eq(pst_address_normalize(in, out, sizeof out), PST_E_INVAL);
    /* whole address: 254 ok (64 + 1 + 189), 255 not (domain would be 190 with
     * local 64: over the total) */
    long_address(in, 254);
    cr_assert_eq(strlen(in), 254);
    cr_assert_eq(pst_address_normalize(in, out, sizeof out), PST_OK, "%s", in);
    long_address(in, 255);
    cr_assert_eq(pst_address_normalize(in, out, sizeof out), PST_E_INVAL);
    /* domain: 190 ok, 191 not (with a short local part) */
    in[0] = 'a';
    in[1] = '@';
    for (size_t i = 0; i < 191; i++)
        in[2 + i] = (i % 64 == 63) ? '.' : 'b';
    in[2 + 190] = '\0';
    cr_assert_eq(pst_address_normalize(in, out, sizeof out), PST_OK);
    in[2 + 190] = 'b';
    in[2 + 191] = '\0';
    cr_assert_eq(pst_address_normalize(in, out, sizeof out), PST_E_INVAL);
}

/* ---- slots ----------------------------------------------------------------- */

/* Answers from an independent implementation:
 *   printf 'postern/v1/slot/key\0' | cat - pk.bin | b2sum -l 160
 * and Python's hashlib.blake2b(..., digest_size=20), pk = bytes 00..1f. */
Test(slots, known_answers) {
    uint8_t pk[32], slot[PST_SLOT_BYTES];
    char hex[PST_SLOT_HEX_STRLEN + 1];
    for (int i = 0; i < 32; i++)
        pk[i] = (uint8_t)i;
    pst_slot_key(pk, slot);
    pst_slot_hex(slot, hex);
    cr_assert_str_eq(hex, "810fd8d76fc063a0d6250e557c1a4d931b72164a");
    pst_slot_inbox(pk, slot);
    pst_slot_hex(slot, hex);
    cr_assert_str_eq(hex, "6598bc71dfba8110fb11e88991abc9178fd9a50b");
    pst_slot_vouch(pk, slot);
    pst_slot_hex(slot, hex);
    cr_assert_str_eq(hex, "b5316473ae9a1e73d7d2839e58477f6f4337412c");
    cr_assert_eq(pst_slot_address("alice@example.org", slot), PST_OK);
    pst_slot_hex(slot, hex);
    cr_assert_str_eq(hex, "51e30fd50b019ceab115d236a29692eb173458ff");
}

Test(slots, domain_separation) {
    for (uint32_t seed = 1; seed < 50; seed++) {
        uint8_t pk[32], s[4][PST_SLOT_BYTES];
        tu_fill(pk, sizeof pk, seed);
        pst_slot_key(pk, s[0]);
        pst_slot_inbox(pk, s[1]);
        pst_slot_vouch(pk, s[2]);
        /* an "address" spelled with the same bytes cannot exist (not ASCII),
         * so compare with the address slot of the fingerprint text */
        char fpr[PST_FINGERPRINT_STRLEN + 1], addr[80];
        pst_fingerprint_format(pk, fpr);
        snprintf(addr, sizeof addr, "%s@x.y", fpr);
        cr_assert_eq(pst_slot_address(addr, s[3]), PST_OK);
        for (int i = 0; i < 4; i++)
            for (int j = i + 1; j < 4; j++)
                cr_assert_neq(memcmp(s[i], s[j], PST_SLOT_BYTES), 0, "slots %d and %d collide", i,
                              j);
    }
    uint8_t slot[PST_SLOT_BYTES];
    cr_assert_eq(pst_slot_address("Alice@example.org", slot), PST_E_INVAL, "normalize first");
    cr_assert_eq(pst_slot_address(NULL, slot), PST_E_INVAL);
}

/* ---- keys and key files ----------------------------------------------------- */

Test(identity, new_and_seeds) {
    pst_identity *a = fresh_identity(), *b = fresh_identity();
    cr_assert_neq(memcmp(a->sign_pk, b->sign_pk, 32), 0);
    cr_assert(a->has_rev_pk && a->has_rev_sk);
    uint8_t pk[32];
    crypto_scalarmult_base(pk, a->box_sk);
    cr_assert_arr_eq(pk, a->box_pk, 32);
    crypto_sign_ed25519_sk_to_pk(pk, a->sign_sk);
    cr_assert_arr_eq(pk, a->sign_pk, 32);
    pst_public_id pub;
    pst_identity_public(a, &pub);
    cr_assert_arr_eq(pub.sign_pk, a->sign_pk, 32);
    cr_assert_arr_eq(pub.box_pk, a->box_pk, 32);
    pst_identity_forget_revkey(a);
    cr_assert(a->has_rev_pk && !a->has_rev_sk);
    pst_identity_free(a);
    pst_identity_free(b);
    pst_identity_free(NULL);

    pst_identity *k1 = kat_identity(true), *k2 = kat_identity(true);
    cr_assert_arr_eq(k1->sign_sk, k2->sign_sk, 64, "deterministic from seeds");
    pst_identity_free(k1);
    pst_identity_free(k2);
}

/* The fixed identity's fingerprint and slots, recorded in
 * tests/vectors/identity_v1.txt. */
Test(identity, kat_vector) {
    pst_identity *id = kat_identity(true);
    char fpr[PST_FINGERPRINT_STRLEN + 1], hex[PST_SLOT_HEX_STRLEN + 1], want[4096];
    uint8_t slot[PST_SLOT_BYTES];
    size_t off = 0;
    pst_fingerprint_format(id->sign_pk, fpr);
    off += (size_t)snprintf(want + off, sizeof want - off,
                            "# identity v1: sign_seed=00..1f box_seed=20..3f rev_seed=40..5f "
                            "(bytes i, i+1, ...)\n");
    char pkhex[65];
    tu_hex_encode(id->sign_pk, 32, pkhex);
    off += (size_t)snprintf(want + off, sizeof want - off, "sign_pk %s\n", pkhex);
    tu_hex_encode(id->box_pk, 32, pkhex);
    off += (size_t)snprintf(want + off, sizeof want - off, "box_pk %s\n", pkhex);
    tu_hex_encode(id->rev_pk, 32, pkhex);
    off += (size_t)snprintf(want + off, sizeof want - off, "rev_pk %s\n", pkhex);
    off += (size_t)snprintf(want + off, sizeof want - off, "fingerprint %s\n", fpr);
    pst_slot_key(id->sign_pk, slot);
    pst_slot_hex(slot, hex);
    off += (size_t)snprintf(want + off, sizeof want - off, "slot_key %s\n", hex);
    pst_slot_inbox(id->sign_pk, slot);
    pst_slot_hex(slot, hex);
    off += (size_t)snprintf(want + off, sizeof want - off, "slot_inbox %s\n", hex);
    pst_slot_vouch(id->sign_pk, slot);
    pst_slot_hex(slot, hex);
    off += (size_t)snprintf(want + off, sizeof want - off, "slot_vouch %s\n", hex);
    cr_assert_eq(pst_slot_address("alice@example.org", slot), PST_OK);
    pst_slot_hex(slot, hex);
    off +=
        (size_t)snprintf(want + off, sizeof want - off, "slot_address alice@example.org %s\n", hex);
    /* the identity key file in the clear, format 2 (deterministic: no nonce) */
    uint8_t kf[PST_KEYFILE_MAX];
    size_t kflen;
    char kfhex[2 * PST_KEYFILE_MAX + 1];
    cr_assert_eq(pst_identity_export(id, NULL, 0, NULL, NULL, NULL, kf, sizeof kf, &kflen), PST_OK);
    tu_hex_encode(kf, kflen, kfhex);
    off += (size_t)snprintf(want + off, sizeof want - off, "keyfile_clear %s\n", kfhex);
    const char *path = tu_vector_path("identity_v1.txt");
    if (getenv("PST_WRITE_VECTORS")) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(want, f);
        fclose(f);
    }
    size_t n;
    uint8_t *got = tu_read_file(path, &n);
    cr_assert_not_null(got, "missing %s", path);
    cr_assert_eq(n, off);
    cr_assert_arr_eq(got, want, n);
    free(got);
    pst_identity_free(id);
}

static void check_same(const pst_identity *a, const pst_identity *b) {
    cr_assert_arr_eq(a->sign_sk, b->sign_sk, 64);
    cr_assert_arr_eq(a->sign_pk, b->sign_pk, 32);
    cr_assert_arr_eq(a->box_sk, b->box_sk, 32);
    cr_assert_arr_eq(a->box_pk, b->box_pk, 32);
    cr_assert_eq(a->has_rev_pk, b->has_rev_pk);
    cr_assert_arr_eq(a->rev_pk, b->rev_pk, 32);
}

/* Format 2 ends with bin8(32) check = BLAKE2b-256(ctx || bytes before it). */
#define KF_CHECK_ENCODED 34u
static void recheck(uint8_t *buf, size_t len) {
    static const char ctx[] = "postern/keyfile/check\0";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof ctx - 1);
    crypto_generichash_update(&st, buf, len - KF_CHECK_ENCODED);
    crypto_generichash_final(&st, buf + len - 32, 32);
}

/* Every single-byte change of a key file is refused: never a different key,
 * never a crash. Three patterns per byte: one bit, all bits, and a value
 * that keeps msgpack's type tags plausible. */
static void flip_every_byte(const uint8_t *good, size_t len, bool revkey, const char *pass) {
    uint8_t buf[PST_KEYFILE_MAX];
    const uint8_t masks[] = {0x01, 0xff, 0x40};
    for (size_t i = 0; i < len; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            memcpy(buf, good, len);
            buf[i] ^= masks[m];
            size_t plen = pass ? strlen(pass) : 0;
            int rc;
            if (revkey) {
                pst_revkey *rk = (pst_revkey *)1;
                rc = pst_revkey_import(buf, len, pass, plen, &rk);
                cr_assert_null(rk);
            } else {
                pst_identity *back = (pst_identity *)1;
                rc = pst_identity_import(buf, len, pass, plen, &back);
                cr_assert_null(back);
            }
            cr_assert_neq(rc, PST_OK, "byte %zu ^ %02x accepted", i, masks[m]);
            cr_assert_neq(rc, PST_E_PASSPHRASE, "byte %zu ^ %02x: blamed on the passphrase", i,
                          masks[m]);
            cr_assert_lt(pst_keyfile_is_encrypted(buf, len), 0, "byte %zu ^ %02x", i, masks[m]);
        }
    }
}

Test(keyfile, every_flipped_byte_refused, .timeout = 120) {
    pst_identity *id = kat_identity(true);
    uint8_t buf[PST_KEYFILE_MAX], salt[PST_KDF_SALT_BYTES] = {3};
    size_t len;
    cr_assert_eq(pst_identity_export(id, NULL, 0, NULL, NULL, NULL, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_keyfile_version(buf, len), PST_KEYFILE_VERSION);
    flip_every_byte(buf, len, false, NULL);
    cr_assert_eq(pst_revkey_export(id, NULL, 0, NULL, NULL, NULL, buf, sizeof buf, &len), PST_OK);
    flip_every_byte(buf, len, true, NULL);
    /* sealed files: the check fails before Argon2 runs, so this stays fast */
    cr_assert_eq(pst_identity_export(id, "pw", 2, salt, kf_nonce, &fast_kdf, buf, sizeof buf, &len),
                 PST_OK);
    flip_every_byte(buf, len, false, "pw");
    cr_assert_eq(pst_revkey_export(id, "pw", 2, salt, kf_nonce, &fast_kdf, buf, sizeof buf, &len),
                 PST_OK);
    flip_every_byte(buf, len, true, "pw");
    pst_identity_free(id);
}

/* Files written before the check existed (format 1: 8 fields, version 1, no
 * check) still load, so existing homes keep working. */
Test(keyfile, format1_still_read, .timeout = 120) {
    pst_identity *id = kat_identity(true), *back;
    uint8_t buf[PST_KEYFILE_MAX], v1[PST_KEYFILE_MAX], salt[PST_KDF_SALT_BYTES] = {5};
    size_t len;
    for (int sealed = 0; sealed < 2; sealed++) {
        cr_assert_eq(pst_identity_export(id, sealed ? "pw" : NULL, sealed ? 2 : 0, salt, kf_nonce,
                                         &fast_kdf, buf, sizeof buf, &len),
                     PST_OK);
        /* v2 = [0x99, 2, fields 1..7, check]; v1 = [0x98, 1, fields 1..7] */
        cr_assert_eq(buf[0], 0x99);
        cr_assert_eq(buf[1], 0x02);
        size_t v1len = len - KF_CHECK_ENCODED;
        memcpy(v1, buf, v1len);
        v1[0] = 0x98;
        v1[1] = 0x01;
        cr_assert_eq(pst_keyfile_version(v1, v1len), 1);
        cr_assert_eq(pst_keyfile_is_encrypted(v1, v1len), sealed);
        cr_assert_eq(pst_identity_import(v1, v1len, "pw", 2, &back), PST_OK);
        check_same(id, back);
        pst_identity_free(back);
        /* a version 1 file with a check, or a version 2 one without: refused */
        buf[1] = 0x01;
        cr_assert_eq(pst_identity_import(buf, len, "pw", 2, &back), PST_E_FIELDS);
        v1[1] = 0x02;
        cr_assert_eq(pst_identity_import(v1, v1len, "pw", 2, &back), PST_E_FIELDS);
        v1[1] = 0x03;
        cr_assert_eq(pst_identity_import(v1, v1len, "pw", 2, &back), PST_E_VERSION);
    }
    pst_identity_free(id);
}

Test(keyfile, export_import_clear) {
    pst_identity *id = kat_identity(true), *back;
    uint8_t buf[PST_KEYFILE_MAX];
    size_t len;
    cr_assert_eq(pst_identity_export(id, NULL, 0, NULL, NULL, NULL, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_keyfile_is_encrypted(buf, len), 0);
    cr_assert_eq(pst_identity_import(buf, len, NULL, 0, &back), PST_OK);
    check_same(id, back);
    cr_assert(!back->has_rev_sk, "the revocation secret never goes into the identity file");
    for (size_t i = 0; i < 64; i++)
        cr_assert_eq(back->rev_sk[i], 0);
    pst_identity_free(back);
    /* a passphrase given for a clear file is ignored */
    cr_assert_eq(pst_identity_import(buf, len, "x", 1, &back), PST_OK);
    pst_identity_free(back);
    /* truncations and a trailing byte are rejected */
    for (size_t cut = 0; cut < len; cut++) {
        cr_assert_neq(pst_identity_import(buf, cut, NULL, 0, &back), PST_OK);
        cr_assert_null(back);
    }
    buf[len] = 0;
    cr_assert_eq(pst_identity_import(buf, len + 1, NULL, 0, &back), PST_E_TRAILING);
    /* without a revocation key */
    pst_identity *norev = kat_identity(false);
    cr_assert_eq(pst_identity_export(norev, NULL, 0, NULL, NULL, NULL, buf, sizeof buf, &len),
                 PST_OK);
    cr_assert_eq(pst_identity_import(buf, len, NULL, 0, &back), PST_OK);
    check_same(norev, back);
    pst_identity_free(back);
    pst_identity_free(norev);
    /* too small a buffer: zeroed */
    memset(buf, 0x55, sizeof buf);
    cr_assert_eq(pst_identity_export(id, NULL, 0, NULL, NULL, NULL, buf, 20, &len), PST_E_NOSPACE);
    cr_assert_eq(len, 0);
    for (size_t i = 0; i < 20; i++)
        cr_assert_eq(buf[i], 0);
    pst_identity_free(id);
}

Test(keyfile, export_import_passphrase, .timeout = 120) {
    pst_identity *id = kat_identity(true), *back;
    uint8_t buf[PST_KEYFILE_MAX], salt[PST_KDF_SALT_BYTES];
    size_t len;
    memset(salt, 7, sizeof salt);
    cr_assert_eq(pst_identity_export(id, "correct horse", 13, salt, kf_nonce, &fast_kdf, buf,
                                     sizeof buf, &len),
                 PST_OK);
    cr_assert_eq(pst_keyfile_is_encrypted(buf, len), 1);
    /* the seeds must not appear in the clear */
    for (size_t i = 0; i + 32 <= len; i++)
        cr_assert_neq(memcmp(buf + i, id->sign_sk, 32), 0);
    cr_assert_eq(pst_identity_import(buf, len, "correct horse", 13, &back), PST_OK);
    check_same(id, back);
    pst_identity_free(back);
    cr_assert_eq(pst_identity_import(buf, len, "correct horsE", 13, &back), PST_E_PASSPHRASE);
    cr_assert_null(back);
    cr_assert_eq(pst_identity_import(buf, len, NULL, 0, &back), PST_E_PASSPHRASE);
    /* tamper with the ciphertext, the nonce and the salt. The file ends with
     * salt (16), nonce (24), the sealed body (104 + 16 MAC) and the check
     * (32), each behind a 2-byte bin header. The check names the damage; a
     * tamperer who recomputes it still meets the MAC. */
    const size_t positions[] = {len - 1, len - 40, len - 134, len - 164, len - 184};
    for (size_t k = 0; k < sizeof positions / sizeof positions[0]; k++) {
        buf[positions[k]] ^= 0x01;
        int rc = pst_identity_import(buf, len, "correct horse", 13, &back);
        cr_assert_eq(rc, PST_E_CHECKSUM, "byte %zu: %s", positions[k], pst_err_name(rc));
        cr_assert_lt(pst_keyfile_is_encrypted(buf, len), 0);
        if (positions[k] < len - KF_CHECK_ENCODED) {
            recheck(buf, len);
            rc = pst_identity_import(buf, len, "correct horse", 13, &back);
            cr_assert_eq(rc, PST_E_PASSPHRASE, "byte %zu: %s", positions[k], pst_err_name(rc));
        }
        buf[positions[k]] ^= 0x01;
        recheck(buf, len);
    }
    cr_assert_eq(pst_identity_import(buf, len, "correct horse", 13, &back), PST_OK);
    pst_identity_free(back);
    pst_identity_free(id);
}

Test(keyfile, kdf_limits_recorded_and_enforced, .timeout = 120) {
    pst_identity *id = kat_identity(false), *back;
    uint8_t buf[PST_KEYFILE_MAX], salt[PST_KDF_SALT_BYTES] = {1};
    size_t len;
    /* refused on export */
    pst_kdf_params weak = {PST_KDF_OPSLIMIT_MIN - 1, PST_KDF_MEMLIMIT_MIN};
    cr_assert_eq(pst_identity_export(id, "pw", 2, salt, kf_nonce, &weak, buf, sizeof buf, &len),
                 PST_E_INVAL);
    weak = (pst_kdf_params){PST_KDF_OPSLIMIT_MIN, PST_KDF_MEMLIMIT_MIN / 2};
    cr_assert_eq(pst_identity_export(id, "pw", 2, salt, kf_nonce, &weak, buf, sizeof buf, &len),
                 PST_E_INVAL);
    cr_assert_eq(pst_identity_export(id, "", 0, salt, kf_nonce, &fast_kdf, buf, sizeof buf, &len),
                 PST_E_INVAL);
    cr_assert_eq(pst_identity_export(id, "pw", 2, NULL, kf_nonce, &fast_kdf, buf, sizeof buf, &len),
                 PST_E_INVAL);
    /* the header records the limits: [2, 1, 1, ops, mem, ...] */
    cr_assert_eq(pst_identity_export(id, "pw", 2, salt, kf_nonce, &fast_kdf, buf, sizeof buf, &len),
                 PST_OK);
    const uint8_t head[] = {0x99, 0x02, 0x01, 0x01, 0x02, 0xce, 0x04, 0x00, 0x00, 0x00};
    cr_assert_arr_eq(buf, head, sizeof head);
    /* a file downgraded to opslimit 1 (check recomputed, as a tamperer would)
     * is refused before any KDF work */
    buf[4] = 0x01;
    cr_assert_eq(pst_identity_import(buf, len, "pw", 2, &back), PST_E_CHECKSUM);
    recheck(buf, len);
    cr_assert_eq(pst_identity_import(buf, len, "pw", 2, &back), PST_E_RANGE);
    buf[4] = 0x03; /* upgraded: wrong key, so the MAC fails */
    recheck(buf, len);
    cr_assert_eq(pst_identity_import(buf, len, "pw", 2, &back), PST_E_PASSPHRASE);
    /* the default is MODERATE */
    cr_assert_eq(pst_identity_export(id, "pw", 2, salt, kf_nonce, NULL, buf, sizeof buf, &len),
                 PST_OK);
    const uint8_t moderate[] = {0x99, 0x02, 0x01, 0x01, 0x03, 0xce, 0x10, 0x00, 0x00, 0x00};
    cr_assert_arr_eq(buf, moderate, sizeof moderate);
    cr_assert_eq(pst_identity_import(buf, len, "pw", 2, &back), PST_OK);
    pst_identity_free(back);
    pst_identity_free(id);
}

/* proto/ draws no random bytes: the sealed file is a function of the
 * caller's salt and nonce, and a missing nonce is refused. */
Test(keyfile, nonce_from_caller, .timeout = 120) {
    pst_identity *id = kat_identity(true), *back;
    uint8_t a[PST_KEYFILE_MAX], b[PST_KEYFILE_MAX], salt[PST_KDF_SALT_BYTES] = {2};
    uint8_t other[PST_KEYFILE_NONCE_BYTES] = {5};
    size_t alen, blen;
    cr_assert_eq(pst_identity_export(id, "pw", 2, salt, kf_nonce, &fast_kdf, a, sizeof a, &alen),
                 PST_OK);
    cr_assert_eq(pst_identity_export(id, "pw", 2, salt, kf_nonce, &fast_kdf, b, sizeof b, &blen),
                 PST_OK);
    cr_assert_eq(alen, blen);
    cr_assert_arr_eq(a, b, alen, "same salt and nonce, same file");
    cr_assert(memmem(a, alen, kf_nonce, sizeof kf_nonce) != NULL, "the caller's nonce is in it");
    cr_assert_eq(pst_identity_export(id, "pw", 2, salt, other, &fast_kdf, b, sizeof b, &blen),
                 PST_OK);
    cr_assert_neq(memcmp(a, b, alen), 0);
    cr_assert_eq(pst_identity_import(b, blen, "pw", 2, &back), PST_OK);
    check_same(id, back);
    pst_identity_free(back);
    cr_assert_eq(pst_identity_export(id, "pw", 2, salt, NULL, &fast_kdf, b, sizeof b, &blen),
                 PST_E_INVAL);
    cr_assert_eq(blen, 0);
    cr_assert_eq(pst_revkey_export(id, "pw", 2, salt, NULL, &fast_kdf, b, sizeof b, &blen),
                 PST_E_INVAL);
    pst_identity_free(id);
}

Test(keyfile, revkey_export_import, .timeout = 120) {
    pst_identity *id = kat_identity(true), *back;
    pst_revkey *rk;
    uint8_t buf[PST_KEYFILE_MAX], salt[PST_KDF_SALT_BYTES] = {9};
    size_t len;
    cr_assert_eq(pst_revkey_export(id, NULL, 0, NULL, NULL, NULL, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_revkey_import(buf, len, NULL, 0, &rk), PST_OK);
    cr_assert_arr_eq(rk->identity_pk, id->sign_pk, 32);
    cr_assert_arr_eq(rk->rev_pk, id->rev_pk, 32);
    cr_assert_arr_eq(rk->rev_sk, id->rev_sk, 64);
    cr_assert_eq(pst_revocation_auth_verify(id->sign_pk, id->rev_pk, rk->auth), PST_OK);
    pst_revkey_free(rk);
    /* the two kinds of file are not interchangeable */
    cr_assert_eq(pst_identity_import(buf, len, NULL, 0, &back), PST_E_RECTYPE);
    /* a broken authorisation in a clear file: the auth is the last 64 bytes
     * before the check; damaged, then deliberately changed */
    buf[len - KF_CHECK_ENCODED - 5] ^= 0x10;
    cr_assert_eq(pst_revkey_import(buf, len, NULL, 0, &rk), PST_E_CHECKSUM);
    recheck(buf, len);
    cr_assert_eq(pst_revkey_import(buf, len, NULL, 0, &rk), PST_E_SIGNER);
    cr_assert_null(rk);
    /* with a passphrase */
    cr_assert_eq(pst_revkey_export(id, "pw", 2, salt, kf_nonce, &fast_kdf, buf, sizeof buf, &len),
                 PST_OK);
    cr_assert_eq(pst_revkey_import(buf, len, "pw", 2, &rk), PST_OK);
    cr_assert_arr_eq(rk->rev_sk, id->rev_sk, 64);
    pst_revkey_free(rk);
    cr_assert_eq(pst_revkey_import(buf, len, "pW", 2, &rk), PST_E_PASSPHRASE);
    /* an identity file is not a revocation key file */
    cr_assert_eq(pst_identity_export(id, NULL, 0, NULL, NULL, NULL, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_revkey_import(buf, len, NULL, 0, &rk), PST_E_RECTYPE);
    /* nothing to export once the secret is gone */
    pst_identity_forget_revkey(id);
    cr_assert_eq(pst_revkey_export(id, NULL, 0, NULL, NULL, NULL, buf, sizeof buf, &len),
                 PST_E_NOKEY);
    pst_revkey_free(NULL);
    pst_identity_free(id);
}

Test(keyfile, garbage_rejected) {
    pst_identity *back;
    const uint8_t junk[][6] = {
        {0x90}, {0x91, 0x01}, {0xc0}, {0x98, 0x02, 1, 0, 0, 0}, {0x99, 0x01, 1, 0, 0, 0}};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        cr_assert_neq(pst_identity_import(junk[i], sizeof junk[i], NULL, 0, &back), PST_OK);
    cr_assert_lt(pst_keyfile_is_encrypted(junk[0], 1), 0);
}
