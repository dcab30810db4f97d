/* Pairing code and messages: see pst_pairing.h. */
#include "pst_pairing.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pst_base32.h"
#include "pst_sync.h"

#define PAIR_CONTEXT "postern/v1/pair\0"
#define PAIR_CONTEXT_LEN 16u
#define KDF_CONTEXT "pstpair_"                                 /* crypto_kdf_CONTEXTBYTES = 8 */
#define CODE_CHARS PST_BASE32_ENCODED_LEN(PST_PAIR_CODE_BYTES) /* 26 */
#define CHUNK PST_ELEMENTS_MAX /* contacts per chunk, chunks per reply */

/* Scratch for plaintexts (a trust list is private): wiped before it is
 * freed. Plain malloc, so callers need not have run sodium_init. */
static uint8_t *scratch_new(size_t n) { return malloc(n); }
static void scratch_free(uint8_t *p, size_t n) {
    if (p != NULL) {
        sodium_memzero(p, n);
        free(p);
    }
}

_Static_assert(PST_PAIR_CONTACTS_MAX == CHUNK * CHUNK, "contacts travel in 64 chunks of 64");
_Static_assert(PST_PAIR_EMAIL_MAX == PST_TRUSTSYNC_EMAIL_MAX, "one address rule");
_Static_assert(crypto_secretbox_NONCEBYTES == PST_PAIR_NONCE_BYTES, "nonce size");
_Static_assert(crypto_secretbox_MACBYTES == PST_PAIR_MAC_BYTES, "mac size");

/* ---- the code --------------------------------------------------------------- */

static void code_bytes(const pst_pair_code *c, uint8_t b[PST_PAIR_CODE_BYTES]) {
    memcpy(b, c->secret, PST_PAIR_SECRET_BYTES);
    memcpy(b + PST_PAIR_SECRET_BYTES, c->ipv4, 4);
    b[14] = (uint8_t)(c->port >> 8);
    b[15] = (uint8_t)c->port;
}

int pst_pair_code_format(const pst_pair_code *c, char out[PST_PAIR_CODE_STRLEN + 1]) {
    uint8_t b[PST_PAIR_CODE_BYTES];
    char plain[CODE_CHARS + 1];
    memset(out, 0, PST_PAIR_CODE_STRLEN + 1);
    if (c == NULL || c->port == 0)
        return PST_E_RANGE;
    code_bytes(c, b);
    int rc = pst_base32_encode(b, sizeof b, plain, sizeof plain);
    sodium_memzero(b, sizeof b);
    if (rc != PST_OK)
        return rc;
    size_t o = 0;
    for (size_t i = 0; i < CODE_CHARS; i++) {
        if (i > 0 && i % 4 == 0)
            out[o++] = '-';
        out[o++] = plain[i];
    }
    sodium_memzero(plain, sizeof plain);
    return PST_OK;
}

int pst_pair_code_parse(const char *s, pst_pair_code *out) {
    char plain[CODE_CHARS + 1];
    uint8_t b[PST_PAIR_CODE_BYTES];
    size_t n = 0, blen = 0;
    memset(out, 0, sizeof *out);
    if (s == NULL)
        return PST_E_INVAL;
    for (size_t i = 0; s[i] != '\0' && i < 4 * PST_PAIR_CODE_STRLEN; i++) {
        if (s[i] == '-' || s[i] == ' ')
            continue;
        if (n >= CODE_CHARS)
            return PST_E_INVAL;
        plain[n++] = s[i];
    }
    if (n != CODE_CHARS)
        return PST_E_INVAL;
    int rc = pst_base32_decode(plain, n, b, sizeof b, &blen);
    sodium_memzero(plain, sizeof plain);
    if (rc == PST_OK && blen != sizeof b)
        rc = PST_E_INVAL;
    if (rc == PST_OK) {
        memcpy(out->secret, b, PST_PAIR_SECRET_BYTES);
        memcpy(out->ipv4, b + PST_PAIR_SECRET_BYTES, 4);
        out->port = (uint16_t)((b[14] << 8) | b[15]);
        if (out->port == 0)
            rc = PST_E_RANGE;
    }
    sodium_memzero(b, sizeof b);
    if (rc != PST_OK)
        sodium_memzero(out, sizeof *out);
    return rc;
}

int pst_pair_derive(const pst_pair_code *c, pst_pair_keys *out) {
    uint8_t in[PAIR_CONTEXT_LEN + PST_PAIR_CODE_BYTES], master[crypto_kdf_KEYBYTES];
    memcpy(in, PAIR_CONTEXT, PAIR_CONTEXT_LEN);
    code_bytes(c, in + PAIR_CONTEXT_LEN);
    int rc =
        crypto_generichash(master, sizeof master, in, sizeof in, NULL, 0) == 0 &&
                crypto_kdf_derive_from_key(out->k_req, sizeof out->k_req, 1, KDF_CONTEXT, master) ==
                    0 &&
                crypto_kdf_derive_from_key(out->k_rep, sizeof out->k_rep, 2, KDF_CONTEXT, master) ==
                    0 &&
                crypto_kdf_derive_from_key(out->id, sizeof out->id, 3, KDF_CONTEXT, master) == 0
            ? PST_OK
            : PST_E_CRYPTO;
    sodium_memzero(in, sizeof in);
    sodium_memzero(master, sizeof master);
    if (rc != PST_OK)
        sodium_memzero(out, sizeof *out);
    return rc;
}

/* ---- plaintext: request ----------------------------------------------------- */

static bool name_ok(const char *name) {
    size_t n = strnlen(name, PST_DEVICE_NAME_MAX + 1);
    return n == 0 || pst_device_name_ok(name, n);
}

int pst_pair_request_encode(const pst_pair_request *r, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (r == NULL || out == NULL || len == NULL || !name_ok(r->name))
        return PST_E_INVAL;
    pst_writer w;
    pst_w_init(&w, out, cap);
    pst_w_array(&w, 4);
    pst_w_uint(&w, PST_PROTO_VERSION);
    pst_w_bin(&w, r->sign_pk, PST_SIGN_PK_BYTES);
    pst_w_bin(&w, r->box_pk, PST_BOX_PK_BYTES);
    pst_w_cstr(&w, r->name);
    return pst_w_finish(&w, len);
}

static int read_version(const msgpack_object *root, uint32_t n, const msgpack_object **it) {
    uint32_t got;
    uint64_t v;
    int rc = pst_r_array(root, n, n, it, &got);
    if (rc == PST_E_RANGE || rc == PST_E_TOOBIG)
        rc = PST_E_FIELDS;
    if (rc == PST_OK && (rc = pst_r_uint(&(*it)[0], UINT64_MAX, &v)) == PST_OK &&
        v != PST_PROTO_VERSION)
        rc = PST_E_VERSION;
    return rc;
}

/* The shared steps of the two plaintext decoders: parse within lim, the
 * version and field count, the fields (read), then the canonical check
 * against encode (scratch of lim->max_bytes). out (size bytes) is zeroed on
 * error. */
typedef struct {
    pst_limits lim;
    uint32_t nfields;
    int (*read_fields)(const msgpack_object *it, void *out);
    int (*encode)(const void *r, uint8_t *out, size_t cap, size_t *len);
    size_t size;
} plain_kind;

static int decode_plain(const plain_kind *k, const uint8_t *in, size_t len, void *out) {
    if (pst_r_start(in, out, k->size) != PST_OK)
        return PST_E_INVAL;
    pst_reader rd;
    const msgpack_object *it = NULL;
    int rc = pst_r_parse(&rd, in, len, &k->lim);
    if (rc == PST_OK)
        rc = read_version(&rd.root, k->nfields, &it);
    if (rc == PST_OK)
        rc = k->read_fields(it, out);
    pst_r_free(&rd);
    if (rc == PST_OK) {
        uint8_t *re = scratch_new(k->lim.max_bytes);
        size_t n;
        rc = re == NULL ? PST_E_NOMEM : k->encode(out, re, k->lim.max_bytes, &n);
        if (rc == PST_OK)
            rc = pst_canonical_check(in, len, re, n);
        scratch_free(re, k->lim.max_bytes);
    }
    if (rc != PST_OK)
        memset(out, 0, k->size);
    return rc;
}

static int request_read(const msgpack_object *it, void *p) {
    pst_pair_request *out = p;
    int rc;
    if ((rc = pst_r_bin_fixed(&it[1], PST_SIGN_PK_BYTES, out->sign_pk)) != PST_OK ||
        (rc = pst_r_bin_fixed(&it[2], PST_BOX_PK_BYTES, out->box_pk)) != PST_OK ||
        (rc = pst_r_str_copy(&it[3], out->name, sizeof out->name)) != PST_OK)
        return rc;
    return name_ok(out->name) ? PST_OK : PST_E_RANGE;
}

static int request_encode(const void *r, uint8_t *out, size_t cap, size_t *len) {
    return pst_pair_request_encode(r, out, cap, len);
}

static const plain_kind request_kind = {
    .lim = {.max_bytes = PST_PAIR_REQUEST_MAX,
            .max_depth = 1,
            .max_elems = PST_ELEMENTS_MAX,
            .max_str = PST_DEVICE_NAME_MAX,
            .max_bin = PST_SIGN_PK_BYTES,
            .allow_maps = false},
    .nfields = 4,
    .read_fields = request_read,
    .encode = request_encode,
    .size = sizeof(pst_pair_request),
};

int pst_pair_request_decode(const uint8_t *in, size_t len, pst_pair_request *out) {
    return decode_plain(&request_kind, in, len, out);
}

/* ---- plaintext: reply ------------------------------------------------------- */

static bool contact_ok(const pst_pair_contact *c) {
    size_t n = strnlen(c->petname, PST_PAIR_PETNAME_MAX + 1);
    if (c->tier < 1 || c->tier > 3 || n > PST_PAIR_PETNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c->petname[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

static bool reply_ok(const pst_pair_reply *r) {
    if (r->devcert_len < 1 || r->devcert_len > PST_DHT_VALUE_MAX || r->devlist_len < 1 ||
        r->devlist_len > PST_DHT_VALUE_MAX || r->keyrec_len > PST_DHT_VALUE_MAX ||
        r->n_contacts > PST_PAIR_CONTACTS_MAX || r->n_emails > PST_PAIR_EMAILS_MAX)
        return false;
    uint32_t e = 0;
    for (uint32_t i = 0; i < r->n_contacts; i++) {
        const pst_pair_contact *c = &r->contacts[i];
        if (!contact_ok(c) || c->n_emails > r->n_emails - e ||
            !pst_contact_emails_ok(&r->emails[e], c->n_emails))
            return false;
        e += c->n_emails;
    }
    return e == r->n_emails;
}

int pst_pair_reply_encode(const pst_pair_reply *r, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (r == NULL || out == NULL || len == NULL || !reply_ok(r))
        return PST_E_INVAL;
    pst_writer w;
    pst_w_init(&w, out, cap);
    pst_w_array(&w, 5);
    pst_w_uint(&w, PST_PROTO_VERSION);
    pst_w_bin(&w, r->devcert, r->devcert_len);
    pst_w_bin(&w, r->devlist, r->devlist_len);
    pst_w_bin(&w, r->keyrec, r->keyrec_len);
    uint32_t chunks = (r->n_contacts + CHUNK - 1) / CHUNK, e = 0;
    pst_w_array(&w, chunks);
    for (uint32_t c = 0; c < chunks; c++) {
        uint32_t first = c * CHUNK,
                 n = r->n_contacts - first < CHUNK ? r->n_contacts - first : CHUNK;
        pst_w_array(&w, n);
        for (uint32_t i = first; i < first + n; i++) {
            const pst_pair_contact *ct = &r->contacts[i];
            pst_w_array(&w, 4);
            pst_w_bin(&w, ct->pk, PST_SIGN_PK_BYTES);
            pst_w_uint(&w, ct->tier);
            pst_w_cstr(&w, ct->petname);
            pst_w_array(&w, ct->n_emails);
            for (uint32_t k = 0; k < ct->n_emails; k++)
                pst_w_cstr(&w, r->emails[e++]);
        }
    }
    return pst_w_finish(&w, len);
}

static int read_blob(const msgpack_object *o, size_t min, uint8_t *buf, size_t *len) {
    const uint8_t *p;
    int rc = pst_r_bin(o, PST_DHT_VALUE_MAX, &p, len);
    if (rc == PST_OK && *len < min)
        rc = PST_E_RANGE;
    if (rc == PST_OK && *len > 0)
        memcpy(buf, p, *len);
    return rc;
}

/* A contact's addresses, appended to out's emails (PST_E_TOOBIG past the
 * reply's cap). */
static int read_emails(const msgpack_object *o, pst_pair_reply *out, pst_pair_contact *ct) {
    const msgpack_object *items;
    int rc = pst_r_array(o, 0, PST_TRUSTSYNC_EMAILS_MAX, &items, &ct->n_emails);
    if (rc == PST_OK && ct->n_emails > PST_PAIR_EMAILS_MAX - out->n_emails)
        rc = PST_E_TOOBIG;
    char(*mine)[PST_PAIR_EMAIL_MAX + 1] = &out->emails[out->n_emails];
    for (uint32_t k = 0; rc == PST_OK && k < ct->n_emails; k++)
        rc = pst_r_str_copy(&items[k], mine[k], sizeof mine[k]);
    if (rc == PST_OK &&
        !pst_contact_emails_ok((const char(*)[PST_PAIR_EMAIL_MAX + 1]) mine, ct->n_emails))
        rc = PST_E_RANGE;
    if (rc == PST_OK)
        out->n_emails += ct->n_emails;
    return rc;
}

/* Contacts arrive in full chunks of 64 but the last (canonical: one way to
 * write a count). */
static int read_contacts(const msgpack_object *o, pst_pair_reply *out) {
    const msgpack_object *chunks, *items, *f;
    uint32_t nc, ni, nf;
    uint64_t tier;
    int rc = pst_r_array(o, 0, CHUNK, &chunks, &nc);
    for (uint32_t c = 0; rc == PST_OK && c < nc; c++) {
        rc = pst_r_array(&chunks[c], 1, CHUNK, &items, &ni);
        if (rc == PST_OK && c + 1 < nc && ni != CHUNK)
            rc = PST_E_NONCANONICAL;
        for (uint32_t i = 0; rc == PST_OK && i < ni; i++) {
            pst_pair_contact *ct = &out->contacts[out->n_contacts];
            if ((rc = pst_r_array(&items[i], 4, 4, &f, &nf)) == PST_OK &&
                (rc = pst_r_bin_fixed(&f[0], PST_SIGN_PK_BYTES, ct->pk)) == PST_OK &&
                (rc = pst_r_uint(&f[1], 3, &tier)) == PST_OK &&
                (rc = pst_r_str_copy(&f[2], ct->petname, sizeof ct->petname)) == PST_OK) {
                ct->tier = (uint8_t)tier;
                rc = contact_ok(ct) ? PST_OK : PST_E_RANGE;
                out->n_contacts++;
                if (rc == PST_OK)
                    rc = read_emails(&f[3], out, ct);
            }
        }
    }
    return rc;
}

static int reply_read(const msgpack_object *it, void *p) {
    pst_pair_reply *out = p;
    int rc;
    if ((rc = read_blob(&it[1], 1, out->devcert, &out->devcert_len)) != PST_OK ||
        (rc = read_blob(&it[2], 1, out->devlist, &out->devlist_len)) != PST_OK ||
        (rc = read_blob(&it[3], 0, out->keyrec, &out->keyrec_len)) != PST_OK)
        return rc;
    return read_contacts(&it[4], out);
}

static int reply_encode(const void *r, uint8_t *out, size_t cap, size_t *len) {
    return pst_pair_reply_encode(r, out, cap, len);
}

static const plain_kind reply_kind = {
    .lim = {.max_bytes = PST_PAIR_REPLY_MAX,
            .max_depth = 5, /* reply, chunks, chunk, contact, emails */
            .max_elems = CHUNK,
            .max_str = PST_PAIR_EMAIL_MAX, /* the pet name is held to its own cap */
            .max_bin = PST_DHT_VALUE_MAX,
            .allow_maps = false},
    .nfields = 5,
    .read_fields = reply_read,
    .encode = reply_encode,
    .size = sizeof(pst_pair_reply),
};

int pst_pair_reply_decode(const uint8_t *in, size_t len, pst_pair_reply *out) {
    return decode_plain(&reply_kind, in, len, out);
}

/* ---- sealed frames ------------------------------------------------------------ */

/* [1, head (bin or uint), nonce, box] */
static int seal(const uint8_t key[PST_PAIR_KEY_BYTES], const uint8_t *id, uint64_t status,
                const uint8_t *plain, size_t plen, const uint8_t nonce[PST_PAIR_NONCE_BYTES],
                uint8_t *out, size_t cap, size_t *len) {
    uint8_t *box = NULL;
    size_t blen = plen > 0 ? plen + PST_PAIR_MAC_BYTES : 0;
    if (blen > 0) {
        if ((box = scratch_new(blen)) == NULL)
            return PST_E_NOMEM;
        crypto_secretbox_easy(box, plain, plen, nonce, key);
    }
    pst_writer w;
    pst_w_init(&w, out, cap);
    pst_w_array(&w, 4);
    pst_w_uint(&w, PST_PROTO_VERSION);
    if (id != NULL)
        pst_w_bin(&w, id, PST_PAIR_ID_BYTES);
    else
        pst_w_uint(&w, status);
    pst_w_bin(&w, nonce, blen > 0 ? PST_PAIR_NONCE_BYTES : 0);
    pst_w_bin(&w, box, blen);
    int rc = pst_w_finish(&w, len);
    scratch_free(box, blen);
    return rc;
}

int pst_pair_request_seal(const pst_pair_keys *k, const pst_pair_request *r,
                          const uint8_t nonce[PST_PAIR_NONCE_BYTES], uint8_t *out, size_t cap,
                          size_t *len) {
    uint8_t plain[PST_PAIR_REQUEST_MAX];
    size_t plen = 0;
    int rc = pst_pair_request_encode(r, plain, sizeof plain, &plen);
    if (rc == PST_OK)
        rc = seal(k->k_req, k->id, 0, plain, plen, nonce, out, cap, len);
    sodium_memzero(plain, sizeof plain);
    return rc;
}

/* Parses a sealed frame: the head field and pointers to nonce and box. */
static int parse_frame(const uint8_t *in, size_t len, size_t max, pst_reader *rd,
                       const msgpack_object **it) {
    pst_limits lim = pst_limits_record;
    lim.max_bytes = max;
    lim.max_depth = 1;
    lim.max_str = 0;
    lim.max_bin = (uint32_t)max;
    int rc = pst_r_parse(rd, in, len, &lim);
    if (rc == PST_OK)
        rc = read_version(&rd->root, 4, it);
    return rc;
}

int pst_pair_request_peek(const uint8_t *in, size_t len, uint8_t id[PST_PAIR_ID_BYTES]) {
    pst_reader rd;
    const msgpack_object *it = NULL;
    memset(id, 0, PST_PAIR_ID_BYTES);
    int rc = parse_frame(in, len, PST_PAIR_REQUEST_MAX, &rd, &it);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[1], PST_PAIR_ID_BYTES, id);
    pst_r_free(&rd);
    return rc;
}

/* Opens the box of a parsed frame into plain (cap bytes): PST_E_CRYPTO. */
static int open_box(const uint8_t key[PST_PAIR_KEY_BYTES], const msgpack_object *it, uint8_t *plain,
                    size_t cap, size_t *plen) {
    uint8_t nonce[PST_PAIR_NONCE_BYTES];
    const uint8_t *box;
    size_t blen;
    int rc = pst_r_bin_fixed(&it[2], PST_PAIR_NONCE_BYTES, nonce);
    if (rc == PST_OK)
        rc = pst_r_bin(&it[3], cap + PST_PAIR_MAC_BYTES, &box, &blen);
    if (rc == PST_OK && blen <= PST_PAIR_MAC_BYTES)
        rc = PST_E_RANGE;
    if (rc == PST_OK && crypto_secretbox_open_easy(plain, box, blen, nonce, key) != 0)
        rc = PST_E_CRYPTO;
    *plen = rc == PST_OK ? blen - PST_PAIR_MAC_BYTES : 0;
    return rc;
}

int pst_pair_request_open(const pst_pair_keys *k, const uint8_t *in, size_t len,
                          pst_pair_request *out) {
    pst_reader rd;
    const msgpack_object *it = NULL;
    uint8_t id[PST_PAIR_ID_BYTES], plain[PST_PAIR_REQUEST_MAX];
    size_t plen = 0;
    memset(out, 0, sizeof *out);
    int rc = parse_frame(in, len, PST_PAIR_REQUEST_MAX, &rd, &it);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[1], PST_PAIR_ID_BYTES, id);
    if (rc == PST_OK && sodium_memcmp(id, k->id, PST_PAIR_ID_BYTES) != 0)
        rc = PST_E_MISMATCH;
    if (rc == PST_OK)
        rc = open_box(k->k_req, it, plain, sizeof plain, &plen);
    pst_r_free(&rd);
    if (rc == PST_OK)
        rc = pst_pair_request_decode(plain, plen, out);
    sodium_memzero(plain, sizeof plain);
    return rc;
}

int pst_pair_reply_seal(const pst_pair_keys *k, pst_pair_status status, const pst_pair_reply *r,
                        const uint8_t nonce[PST_PAIR_NONCE_BYTES], uint8_t *out, size_t cap,
                        size_t *len) {
    if (status > PST_PAIR_STATUS_MAX || (status == PST_PAIR_OK && r == NULL))
        return PST_E_INVAL;
    if (status != PST_PAIR_OK)
        return seal(k->k_rep, NULL, status, NULL, 0, nonce, out, cap, len);
    uint8_t *plain = scratch_new(PST_PAIR_REPLY_MAX);
    size_t plen = 0;
    if (plain == NULL)
        return PST_E_NOMEM;
    int rc = pst_pair_reply_encode(r, plain, PST_PAIR_REPLY_MAX - 64, &plen);
    if (rc == PST_OK)
        rc = seal(k->k_rep, NULL, PST_PAIR_OK, plain, plen, nonce, out, cap, len);
    scratch_free(plain, PST_PAIR_REPLY_MAX);
    return rc;
}

int pst_pair_reply_open(const pst_pair_keys *k, const uint8_t *in, size_t len,
                        pst_pair_status *status, pst_pair_reply *out) {
    pst_reader rd;
    const msgpack_object *it = NULL;
    uint64_t st = 0;
    *status = PST_PAIR_FAILED;
    memset(out, 0, sizeof *out);
    int rc = parse_frame(in, len, PST_PAIR_REPLY_MAX, &rd, &it);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[1], PST_PAIR_STATUS_MAX, &st);
    uint8_t *plain = NULL;
    size_t plen = 0;
    if (rc == PST_OK && st == PST_PAIR_OK) {
        plain = scratch_new(PST_PAIR_REPLY_MAX);
        rc = plain == NULL ? PST_E_NOMEM : open_box(k->k_rep, it, plain, PST_PAIR_REPLY_MAX, &plen);
    } else if (rc == PST_OK) {
        const uint8_t *p;
        size_t n1, n2;
        /* a refusal carries no box */
        if ((rc = pst_r_bin(&it[2], 0, &p, &n1)) == PST_OK)
            rc = pst_r_bin(&it[3], 0, &p, &n2);
    }
    pst_r_free(&rd);
    if (rc == PST_OK && st == PST_PAIR_OK)
        rc = pst_pair_reply_decode(plain, plen, out);
    scratch_free(plain, PST_PAIR_REPLY_MAX);
    if (rc == PST_OK)
        *status = (pst_pair_status)st;
    return rc;
}

void pst_pair_frame_header(size_t len, uint8_t hdr[4]) {
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

int pst_pair_frame_len(const uint8_t hdr[4], size_t max, size_t *len) {
    uint32_t v =
        ((uint32_t)hdr[0] << 24) | ((uint32_t)hdr[1] << 16) | ((uint32_t)hdr[2] << 8) | hdr[3];
    *len = 0;
    if (v == 0)
        return PST_E_RANGE;
    if (v > max)
        return PST_E_TOOBIG;
    *len = v;
    return PST_OK;
}

const char *pst_pair_status_text(pst_pair_status s) {
    static const char *const t[] = {
        [PST_PAIR_OK] = "paired",
        [PST_PAIR_UNKNOWN] = "no pending pairing has this code (mistyped, guessed, elsewhere)",
        [PST_PAIR_USED] = "this pairing code was used already: run 'postern device add' again",
        [PST_PAIR_EXPIRED] = "this pairing code expired: run 'postern device add' again",
        [PST_PAIR_FULL] = "the identity has 8 devices already (the cap): revoke one first",
        [PST_PAIR_FAILED] = "the old device could not finish the pairing (see its log)",
    };
    return PST_NAME_OF(t, s, "unknown answer");
}
