#include "recutil.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "testutil.h"

void ru_seed_bytes(uint8_t s[32], uint8_t base) {
    for (int i = 0; i < 32; i++)
        s[i] = (uint8_t)(base + i);
}

/* Fixed identity: sign seed 00..1f, box seed 20..3f, revocation seed 40..5f. */
pst_identity *ru_kat_identity(uint8_t base) {
    uint8_t a[32], b[32], c[32];
    ru_seed_bytes(a, base);
    ru_seed_bytes(b, (uint8_t)(base + 0x20));
    ru_seed_bytes(c, (uint8_t)(base + 0x40));
    pst_identity *id;
    cr_assert_eq(pst_identity_from_seeds(a, b, c, &id), PST_OK);
    return id;
}

void ru_address(char *out, size_t local, size_t len) {
    size_t domain = len - local - 1;
    memset(out, 'a', local);
    out[local] = '@';
    for (size_t i = 0; i < domain; i++)
        out[local + 1 + i] = (i % 64 == 63 && i + 1 < domain) ? '.' : 'b';
    out[len] = '\0';
}

pst_notify_inner ru_notify_inner(uint64_t now, uint64_t lifetime, const uint8_t recipient[32],
                                 const uint8_t sender_box_pk[32]) {
    pst_notify_inner r;
    memset(&r, 0, sizeof r);
    r.created = now;
    r.expires = now + lifetime;
    memcpy(r.recipient, recipient, 32);
    memset(r.msg_id, 0x07, 32);
    r.size = 4096;
    r.n_endpoints = 2;
    strcpy(r.endpoints[0], "mail.example.org:7401");
    strcpy(r.endpoints[1], "[2001:db8::1]:7401");
    memset(r.msg_key, 0x06, 32);
    memcpy(r.sender_box_pk, sender_box_pk, 32);
    return r;
}

void ru_notify_inner_largest(pst_notify_inner *r) {
    r->created = UINT64_MAX - 1;
    r->expires = UINT64_MAX;
    r->size = PST_MESSAGE_SIZE_MAX;
    r->n_endpoints = PST_NOTIFY_ENDPOINTS_MAX;
    for (unsigned i = 0; i < PST_NOTIFY_ENDPOINTS_MAX; i++) {
        memset(r->endpoints[i], 'a', PST_NOTIFY_ENDPOINT_MAX - 6);
        strcpy(r->endpoints[i] + PST_NOTIFY_ENDPOINT_MAX - 6, ":65535");
        cr_assert_eq(strlen(r->endpoints[i]), PST_NOTIFY_ENDPOINT_MAX);
    }
}

void ru_split(const uint8_t *enc, size_t len, ru_fields *f) {
    cr_assert(enc[0] >= 0x90 && enc[0] <= 0x9f, "fixarray expected");
    f->count = enc[0] & 0x0fu;
    size_t off = 1;
    for (uint32_t i = 0; i < f->count; i++) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t start = off;
        cr_assert_eq(msgpack_unpack_next(&u, (const char *)enc, len, &off), MSGPACK_UNPACK_SUCCESS);
        msgpack_unpacked_destroy(&u);
        f->p[i] = enc + start;
        f->n[i] = off - start;
    }
    cr_assert_eq(off, len);
}

/* Re-assembles enc with field idx replaced by ru_raw (ru_raw NULL: field removed;
 * idx == count: ru_raw appended). Returns the new length. */
size_t ru_with_field(const uint8_t *enc, size_t len, uint32_t idx, const void *ru_raw,
                     size_t raw_len, uint8_t *out, size_t cap) {
    ru_fields f;
    pst_writer w;
    size_t n;
    ru_split(enc, len, &f);
    uint32_t count = f.count - (ru_raw == NULL ? 1 : 0) + (idx == f.count ? 1 : 0);
    pst_w_init(&w, out, cap);
    pst_w_array(&w, count);
    for (uint32_t i = 0; i <= f.count; i++) {
        if (i == idx) {
            if (ru_raw != NULL)
                pst_w_raw(&w, ru_raw, raw_len);
        } else if (i < f.count) {
            pst_w_raw(&w, f.p[i], f.n[i]);
        }
    }
    cr_assert_eq(pst_w_finish(&w, &n), PST_OK);
    return n;
}

size_t ru_finish_fields(pst_writer *w, uint32_t written, uint32_t nfields) {
    for (uint32_t i = written; i < nfields; i++)
        pst_w_uint(w, 0);
    size_t len;
    cr_assert_eq(pst_w_finish(w, &len), PST_OK);
    return len;
}

typedef enum { RAW_UINT, RAW_BIN, RAW_STR } raw_kind;

static ru_raw raw_value(raw_kind kind, uint64_t v, const void *p, size_t n) {
    ru_raw r;
    pst_writer w;
    pst_w_init(&w, r.b, sizeof r.b);
    if (kind == RAW_UINT)
        pst_w_uint(&w, v);
    else if (kind == RAW_BIN)
        pst_w_bin(&w, p, n);
    else
        pst_w_cstr(&w, p);
    cr_assert_eq(pst_w_finish(&w, &r.n), PST_OK);
    return r;
}

ru_raw ru_raw_uint(uint64_t v) { return raw_value(RAW_UINT, v, NULL, 0); }

ru_raw ru_raw_bin(const void *p, size_t n) { return raw_value(RAW_BIN, 0, p, n); }

ru_raw ru_raw_str(const char *s) { return raw_value(RAW_STR, 0, s, 0); }

long ru_read_vector(const char *name, uint8_t *out, size_t cap) {
    size_t n;
    uint8_t *file = tu_read_file(tu_vector_path(name), &n);
    if (file == NULL)
        return -1;
    char *hex = malloc(n + 1);
    size_t h = 0;
    bool comment = false, bol = true;
    for (size_t i = 0; i < n; i++) {
        char c = (char)file[i];
        if (bol && c == '#')
            comment = true;
        bol = c == '\n';
        if (bol)
            comment = false;
        else if (!comment && isxdigit((unsigned char)c))
            hex[h++] = c;
    }
    hex[h] = '\0';
    long k = tu_hex_decode(hex, out, cap);
    free(hex);
    free(file);
    return k;
}

size_t ru_load_vector(const char *name, uint8_t *out, size_t cap) {
    long k = ru_read_vector(name, out, cap);
    cr_assert_gt(k, 0, "missing or bad vector %s", name);
    return (size_t)k;
}

void ru_expect_vector(const char *name, const uint8_t *enc, size_t len) {
    char *hex = malloc(2 * len + 1);
    tu_hex_encode(enc, len, hex);
    uint8_t *want = malloc(len + 64);
    long n = ru_read_vector(name, want, len + 64);
    cr_assert_eq(n, (long)len, "%s missing or of another size, got %s", name, hex);
    cr_assert_arr_eq(want, enc, len, "%s differs, got %s", name, hex);
    free(want);
    free(hex);
}

/* Known-answer vector files: '#' comment lines, then hex. With
 * PST_WRITE_VECTORS set the file is (re)written instead of compared. */
void ru_check_vector(const char *name, const char *comment, const uint8_t *enc, size_t len) {
    const char *path = tu_vector_path(name);
    if (getenv("PST_WRITE_VECTORS")) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "%s", path);
        fprintf(f, "# %s\n", comment);
        for (size_t i = 0; i < len; i++)
            fprintf(f, "%02x%s", enc[i], (i % 32 == 31 || i + 1 == len) ? "\n" : "");
        fclose(f);
    }
    uint8_t got[PST_DHT_VALUE_MAX];
    size_t n = ru_load_vector(name, got, sizeof got);
    cr_assert_eq(n, len, "%s: length %zu, expected %zu", name, n, len);
    cr_assert_arr_eq(got, enc, len, "%s differs from the re-encoding", name);
}

void ru_check_vector_accepted(const char *name, const char *comment, const uint8_t *enc, size_t len,
                              tu_accept_fn accept) {
    uint8_t file[PST_DHT_VALUE_MAX];
    ru_check_vector(name, comment, enc, len);
    size_t n = ru_load_vector(name, file, sizeof file);
    cr_assert_eq(accept(file, n, NULL), PST_OK, "%s", name);
}

void ru_expect_hash_id(const uint8_t id[32], const uint8_t *enc, size_t len) {
    uint8_t want[32];
    crypto_generichash(want, 32, enc, len, NULL, 0);
    cr_assert_arr_eq(id, want, 32, "id = BLAKE2b-256 of the encoding");
}

pst_value *ru_sample_value(void) {
    pst_value *b = pst_value_new_map();
    cr_assert_not_null(b);
    cr_assert_eq(pst_value_add_str(b, "fingerprint", "ybndrfg8"), PST_OK);
    cr_assert_eq(pst_value_add_uint(b, "seq", 3), PST_OK);
    cr_assert_eq(pst_value_add_bool(b, "revoked", false), PST_OK);
    const uint8_t key[4] = {0x00, 0xff, 0x10, 0xab};
    cr_assert_eq(pst_value_add_bin(b, "key", key, sizeof key), PST_OK);
    pst_value *addrs = pst_value_add_array(b, "addresses");
    cr_assert_eq(pst_value_add_str(addrs, NULL, "alice@example.org"), PST_OK);
    pst_value *ep = pst_value_add_map(addrs, NULL);
    cr_assert_eq(pst_value_add_str(ep, "host", "a\"b\\c\n\t\x01"), PST_OK);
    cr_assert_eq(pst_value_add_uint(ep, "port", 7401), PST_OK);
    cr_assert_not_null(pst_value_add_map(b, "empty"));
    cr_assert_not_null(pst_value_add_array(b, "none"));
    cr_assert_eq(pst_value_add_str(b, "utf", "caf\xc3\xa9"), PST_OK);
    cr_assert_eq(pst_value_add_uint(b, "big", UINT64_MAX), PST_OK);
    cr_assert_eq(pst_value_error(b), PST_OK);
    return b;
}
