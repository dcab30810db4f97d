/* The bad values postern-hostile throws at a node. Each class aims at one
 * check of the node's ingest path (size cap, framing, strict decode, slot
 * match, signature, time window, seq rule, revocation), so a test can tell
 * from the node's counters that every check fired.
 *
 * Records are built with proto/'s encoders and then damaged at the byte
 * level; the malformed headers are written by hand because no encoder will
 * produce them. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostile.h"

#define DAY 86400u
#define VALID_LIFETIME (7u * DAY)

static const char *const class_names[PST_HC_COUNT] = {
    "random",          "truncated",        "oversize",
    "badsig",          "mismatch",         "wrongtype",
    "stale",           "expired",          "future",
    "noncanonical",    "revoked",          "inbox-random",
    "inbox-oversize",  "inbox-forged",     "inbox-wrongseal",
    "inbox-wrongrcpt", "inbox-replay",     "inbox-expired",
    "inbox-stamp",     "inbox-stamp-weak", "inbox-stamp-spent",
    "inbox-nostamp",   "inbox-device",     "dev-forged",
    "dev-replay",      "dev-cert",         "dev-overcap",
};

static const char *const slot_names[PST_HS_COUNT] = {"key", "address", "vouch", "inbox", "devices"};

bool pst_hostile_class_fits(int c, int s) {
    return PST_HC_IS_INBOX(c) == (s == PST_HS_INBOX) &&
           PST_HC_IS_DEVICE(c) == (s == PST_HS_DEVICES);
}

const char *pst_hostile_class_name(int c) {
    return c >= 0 && c < PST_HC_COUNT ? class_names[c] : "unknown";
}

int pst_hostile_class_by_name(const char *name, size_t len) {
    for (int c = 0; c < PST_HC_COUNT; c++)
        if (strlen(class_names[c]) == len && memcmp(class_names[c], name, len) == 0)
            return c;
    return -1;
}

const char *pst_hostile_slot_name(int s) {
    return s >= 0 && s < PST_HS_COUNT ? slot_names[s] : "unknown";
}

static void die(const char *what) {
    fprintf(stderr, "postern-hostile: internal error: %s\n", what);
    exit(1);
}

/* ---- deterministic randomness --------------------------------------------- */

typedef struct {
    uint8_t key[32];
    uint64_t ctr;
} rng;

static void rng_init(rng *r, const pst_hostile_gen *g, int c, int s, uint32_t i) {
    uint8_t in[32 + 12];
    memcpy(in, g->seed, 32);
    in[32] = (uint8_t)c;
    in[33] = (uint8_t)s;
    memcpy(in + 34, &i, sizeof i);
    memset(in + 38, 0x5a, sizeof in - 38);
    crypto_generichash(r->key, sizeof r->key, in, sizeof in, NULL, 0);
    r->ctr = 0;
}

static uint32_t rng_u32(rng *r) {
    uint8_t in[40], out[4];
    memcpy(in, r->key, 32);
    memcpy(in + 32, &r->ctr, 8);
    r->ctr++;
    crypto_generichash(out, sizeof out, in, sizeof in, NULL, 0);
    return (uint32_t)out[0] | (uint32_t)out[1] << 8 | (uint32_t)out[2] << 16 |
           (uint32_t)out[3] << 24;
}

static uint32_t rng_below(rng *r, uint32_t n) { return n ? rng_u32(r) % n : 0; }

static void rng_bytes(rng *r, uint8_t *out, size_t n) {
    uint8_t k[randombytes_SEEDBYTES];
    uint8_t in[40];
    memcpy(in, r->key, 32);
    memcpy(in + 32, &r->ctr, 8);
    r->ctr++;
    crypto_generichash(k, sizeof k, in, sizeof in, NULL, 0);
    randombytes_buf_deterministic(out, n, k);
}

void pst_hostile_gen_init(pst_hostile_gen *g) {
    for (unsigned k = 0; k < PST_HOSTILE_FRESH_KEYS; k++) {
        uint8_t seed[crypto_sign_SEEDBYTES];
        uint8_t in[33];
        memcpy(in, g->seed, 32);
        in[32] = (uint8_t)(0xf0 + k);
        crypto_generichash(seed, sizeof seed, in, sizeof in, NULL, 0);
        crypto_sign_seed_keypair(g->fresh_pk[k], g->fresh_sk[k], seed);
        sodium_memzero(seed, sizeof seed);
    }
}

void pst_hostile_gen_wipe(pst_hostile_gen *g) { sodium_memzero(g->fresh_sk, sizeof g->fresh_sk); }

/* ---- valid records ---------------------------------------------------------- */

static const uint8_t *fresh_sk(const pst_hostile_gen *g, rng *r) {
    return g->fresh_sk[rng_below(r, PST_HOSTILE_FRESH_KEYS)];
}

static void fill_keyrec(pst_keyrec *kr, rng *r, uint64_t seq, uint64_t created, uint64_t expires) {
    memset(kr, 0, sizeof *kr);
    kr->created = created;
    kr->expires = expires;
    kr->seq = seq;
    rng_bytes(r, kr->enc_pk, sizeof kr->enc_pk);
    kr->n_endpoints = 1;
    snprintf(kr->endpoints[0], sizeof kr->endpoints[0], "127.0.0.1:%u",
             1024u + rng_below(r, 60000));
    kr->pow_bits = rng_below(r, PST_POW_BITS_MAX + 1);
}

static size_t keyrec_bytes(pst_keyrec *kr, const uint8_t *sk, uint8_t *out) {
    size_t len = 0;
    if ((sk != NULL && pst_keyrec_sign(kr, sk) != PST_OK) ||
        pst_keyrec_encode(kr, out, PST_DHT_VALUE_MAX, &len) != PST_OK)
        die("cannot build a key record");
    return len;
}

static size_t keyrec(rng *r, const uint8_t *sk, uint64_t seq, uint64_t created, uint64_t expires,
                     uint8_t *out) {
    pst_keyrec kr;
    fill_keyrec(&kr, r, seq, created, expires);
    return keyrec_bytes(&kr, sk, out);
}

static void fill_claim(pst_address_claim *c, const char *address, uint64_t seq, uint64_t created,
                       uint64_t expires) {
    memset(c, 0, sizeof *c);
    c->created = created;
    c->expires = expires;
    c->seq = seq;
    snprintf(c->address, sizeof c->address, "%s", address);
}

static size_t claim_bytes(pst_address_claim *c, const uint8_t *sk, uint8_t *out) {
    size_t len = 0;
    if ((sk != NULL && pst_address_claim_sign(c, sk) != PST_OK) ||
        pst_address_claim_encode(c, out, PST_DHT_VALUE_MAX, &len) != PST_OK)
        die("cannot build an address claim");
    return len;
}

static size_t claim(const uint8_t *sk, const char *address, uint64_t seq, uint64_t created,
                    uint64_t expires, uint8_t *out) {
    pst_address_claim c;
    fill_claim(&c, address, seq, created, expires);
    return claim_bytes(&c, sk, out);
}

static void fill_endorsement(pst_endorsement *e, const uint8_t subject[32], uint64_t tier,
                             uint64_t created, uint64_t expires) {
    memset(e, 0, sizeof *e);
    e->created = created;
    e->expires = expires;
    memcpy(e->subject, subject, 32);
    e->tier = tier;
}

static size_t endorsement_bytes(pst_endorsement *e, const uint8_t *sk, uint8_t *out) {
    size_t len = 0;
    if ((sk != NULL && pst_endorsement_sign(e, sk) != PST_OK) ||
        pst_endorsement_encode(e, out, PST_DHT_VALUE_MAX, &len) != PST_OK)
        die("cannot build an endorsement");
    return len;
}

static size_t endorsement(const uint8_t *sk, const uint8_t subject[32], uint64_t tier,
                          uint64_t created, uint64_t expires, uint8_t *out) {
    pst_endorsement e;
    fill_endorsement(&e, subject, tier, created, expires);
    return endorsement_bytes(&e, sk, out);
}

static size_t revocation(const uint8_t *sk, uint64_t created, uint8_t *out) {
    pst_revocation rev;
    size_t len = 0;
    if (pst_revocation_build_self(&rev, sk, created, PST_REVOKE_RETIRED, "hostile", NULL) !=
            PST_OK ||
        pst_revocation_encode(&rev, out, PST_DHT_VALUE_MAX, &len) != PST_OK)
        die("cannot build a revocation");
    return len;
}

/* A fresh key other than the one at sk (endorsements need subject != signer). */
static const uint8_t *other_pk(const pst_hostile_gen *g, const uint8_t *sk) {
    for (unsigned k = 0; k < PST_HOSTILE_FRESH_KEYS; k++)
        if (g->fresh_sk[k] != sk)
            return g->fresh_pk[k];
    return g->fresh_pk[0];
}

static uint64_t tempting_seq(const pst_hostile_gen *g, uint32_t i) {
    return g->current_seq + 1000u + i;
}

/* The record that belongs in slot s, as valid as the tool can make it: the
 * target's own KeyRecord when its identity is known (else a fresh key's), a
 * fresh key's claim of the address, a fresh key's endorsement of the target.
 * Other classes damage it. */
static size_t base_record(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out,
                          const uint8_t **signer_sk) {
    uint64_t now = g->now;
    const uint8_t *sk = fresh_sk(g, r);
    switch (s) {
    case PST_HS_KEY:
        if (g->id != NULL)
            sk = g->id->sign_sk;
        *signer_sk = sk;
        return keyrec(r, sk, tempting_seq(g, i), now - 60, now + VALID_LIFETIME, out);
    case PST_HS_ADDRESS:
        *signer_sk = sk;
        return claim(sk, g->address, 1 + i, now - 60, now + VALID_LIFETIME, out);
    default:
        *signer_sk = sk;
        return endorsement(sk, g->target, 1 + rng_below(r, 2), now - 60, now + VALID_LIFETIME, out);
    }
}

/* ---- classes ----------------------------------------------------------------- */

static size_t make_random(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out) {
    (void)g;
    (void)s;
    size_t len = i % 4 == 0 ? 1 + rng_below(r, 16) : 1 + rng_below(r, PST_DHT_VALUE_MAX);
    rng_bytes(r, out, len);
    /* a third look like a record header, so they get past the type peek and
     * reach the strict decoders */
    if (i % 3 == 1 && len >= 3) {
        out[0] = (uint8_t)(0x90 | rng_below(r, 16));
        out[1] = PST_PROTO_VERSION;
        out[2] = (uint8_t)rng_below(r, 13);
    } else if (i % 3 == 2 && len >= 3) {
        static const uint8_t types[] = {PST_REC_KEY, PST_REC_ADDRESS_CLAIM, PST_REC_ENDORSEMENT};
        out[0] = 0x9c;
        out[1] = PST_PROTO_VERSION;
        out[2] = types[s];
    }
    return len;
}

static size_t make_truncated(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out) {
    const uint8_t *sk;
    size_t len = s == PST_HS_KEY && i % 3 == 2 ? revocation(fresh_sk(g, r), g->now - 60, out)
                                               : base_record(g, r, s, i, out, &sk);
    return 1 + rng_below(r, (uint32_t)len - 1);
}

/* Writes [version, type, created, expires, signer] of an n-field record. */
static size_t header(uint8_t *out, uint8_t n, uint8_t type, uint64_t now, const uint8_t *pk) {
    size_t o = 0;
    out[o++] = (uint8_t)(0x90 | n);
    out[o++] = PST_PROTO_VERSION;
    out[o++] = type;
    uint32_t t[2] = {(uint32_t)now, (uint32_t)(now + VALID_LIFETIME)};
    for (int k = 0; k < 2; k++) {
        out[o++] = 0xce;
        for (int b = 3; b >= 0; b--)
            out[o++] = (uint8_t)(t[k] >> (8 * b));
    }
    out[o++] = 0xc4;
    out[o++] = 32;
    memcpy(out + o, pk, 32);
    return o + 32;
}

static size_t make_oversize(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out) {
    static const uint8_t types[] = {PST_REC_KEY, PST_REC_ADDRESS_CLAIM, PST_REC_ENDORSEMENT};
    static const uint8_t nfields[] = {PST_KEYREC_FIELDS, PST_ADDRESS_CLAIM_FIELDS,
                                      PST_ENDORSEMENT_FIELDS};
    static const uint8_t huge[][5] = {
        {0xdb, 0xff, 0xff, 0xff, 0xff}, /* str32 of 4 GiB */
        {0xdd, 0xff, 0xff, 0xff, 0xff}, /* array32 of 4 G elements */
        {0xc6, 0x7f, 0xff, 0xff, 0xff}, /* bin32 of 2 GiB */
        {0xdf, 0xff, 0xff, 0xff, 0xff}, /* map32 of 4 G pairs */
        {0xda, 0xea, 0x60, 0x00, 0x00}, /* str16 of 60,000 bytes */
    };
    size_t len = PST_DHT_VALUE_MAX;
    size_t o;
    uint32_t v = i % 7;
    if (v < 5) {
        /* a record head, then a field declaring far more than the value */
        o = header(out, nfields[s], types[s], g->now, g->target);
        memcpy(out + o, huge[v], v == 4 ? 3 : 5);
        o += v == 4 ? 3 : 5;
    } else if (v == 5) {
        /* the outer array declares 65,536 elements, each a valid fixint */
        out[0] = 0xdd;
        out[1] = 0x00;
        out[2] = 0x01;
        out[3] = 0x00;
        out[4] = 0x00;
        memset(out + 5, 0x01, len - 5);
        return len;
    } else {
        /* a valid record padded with junk to just under the cap */
        const uint8_t *sk;
        o = base_record(g, r, s, i, out, &sk);
        len = PST_DHT_VALUE_MAX - 1;
    }
    rng_bytes(r, out + o, len - o);
    return len;
}

static size_t make_badsig(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out) {
    uint64_t now = g->now;
    const uint8_t *sk = fresh_sk(g, r);
    size_t len;
    bool flip = i % 2 == 0; /* else: change a field after signing */
    if (s == PST_HS_KEY) {
        pst_keyrec kr;
        fill_keyrec(&kr, r, tempting_seq(g, i), now - 60, now + VALID_LIFETIME);
        if (pst_keyrec_sign(&kr, g->id != NULL ? g->id->sign_sk : sk) != PST_OK)
            die("sign");
        memcpy(kr.signer, g->target, 32); /* a fresh key's signature claims to be the target's */
        if (!flip)
            kr.pow_bits = kr.pow_bits == 0 ? 1 : kr.pow_bits - 1;
        len = keyrec_bytes(&kr, NULL, out);
    } else if (s == PST_HS_ADDRESS) {
        pst_address_claim c;
        fill_claim(&c, g->address, 1 + i, now - 60, now + VALID_LIFETIME);
        if (pst_address_claim_sign(&c, sk) != PST_OK)
            die("sign");
        if (!flip)
            c.seq++;
        len = claim_bytes(&c, NULL, out);
    } else {
        pst_endorsement e;
        fill_endorsement(&e, g->target, 1, now - 60, now + VALID_LIFETIME);
        if (pst_endorsement_sign(&e, sk) != PST_OK)
            die("sign");
        if (!flip)
            e.tier = PST_TIER_TRUSTED;
        len = endorsement_bytes(&e, NULL, out);
    }
    if (flip)
        out[len - PST_SIG_BYTES + i / 2 % PST_SIG_BYTES] ^= (uint8_t)(1u << (i % 8));
    return len;
}

static size_t make_mismatch(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out) {
    uint64_t now = g->now;
    const uint8_t *sk = fresh_sk(g, r);
    char other[64];
    switch (s) {
    case PST_HS_KEY: /* another key's record or revocation in the target's slot */
        if (i % 2)
            return revocation(sk, now - 60, out);
        return keyrec(r, sk, 1 + i, now - 60, now + VALID_LIFETIME, out);
    case PST_HS_ADDRESS: /* a claim of another address */
        snprintf(other, sizeof other, "x%u@mismatch.example", (unsigned)i);
        return claim(sk, other, 1, now - 60, now + VALID_LIFETIME, out);
    default: /* an endorsement of someone else */
        return endorsement(sk, other_pk(g, sk), 1, now - 60, now + VALID_LIFETIME, out);
    }
}

static size_t make_wrongtype(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out) {
    uint64_t now = g->now;
    const uint8_t *sk = fresh_sk(g, r);
    uint32_t v = i % 3;
    if (v == 2) {
        /* a record head of a type no DHT slot holds (notification .. trailer) */
        size_t o = header(out, 8, (uint8_t)(PST_REC_NOTIFICATION + rng_below(r, 8)), now, sk + 32);
        size_t len = o + 16 + rng_below(r, 200);
        rng_bytes(r, out + o, len - o);
        return len;
    }
    switch (s) {
    case PST_HS_KEY:
        return v == 0 ? endorsement(sk, g->target, 1, now - 60, now + VALID_LIFETIME, out)
                      : claim(sk, g->address[0] ? g->address : "x@wrongtype.example", 1, now - 60,
                              now + VALID_LIFETIME, out);
    case PST_HS_ADDRESS:
        return v == 0 ? keyrec(r, sk, 1, now - 60, now + VALID_LIFETIME, out)
                      : revocation(sk, now - 60, out);
    default:
        return v == 0 ? keyrec(r, sk, 1, now - 60, now + VALID_LIFETIME, out)
                      : claim(sk, "x@wrongtype.example", 1, now - 60, now + VALID_LIFETIME, out);
    }
}

static size_t make_stale(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out) {
    /* authentic, inside its window, created in the past: only the seq is old */
    uint64_t seq = g->current_seq > 1 ? i % g->current_seq : 0;
    uint64_t created = g->now - 3600 - i % 3000;
    if (s == PST_HS_KEY)
        return keyrec(r, g->id->sign_sk, seq, created, created + VALID_LIFETIME, out);
    return claim(g->id->sign_sk, g->address, seq, created, created + VALID_LIFETIME, out);
}

static size_t make_window(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out,
                          bool past) {
    uint64_t created, expires;
    if (past) {
        created = g->now - 20u * DAY - i;
        expires = g->now - 3600 - i % DAY;
    } else {
        created = g->now + PST_CLOCK_SKEW_MAX + 600 + i % DAY;
        expires = created + VALID_LIFETIME;
    }
    const uint8_t *sk = g->id != NULL && i % 2 == 0 ? g->id->sign_sk : fresh_sk(g, r);
    switch (s) {
    case PST_HS_KEY:
        return keyrec(r, g->id != NULL ? g->id->sign_sk : sk, tempting_seq(g, i), created, expires,
                      out);
    case PST_HS_ADDRESS:
        return claim(sk, g->address, 1 + i, created, expires, out);
    default:
        if (g->id != NULL && sk == g->id->sign_sk)
            sk = g->fresh_sk[0]; /* subject == signer is refused earlier */
        return endorsement(sk, g->target, 1, created, expires, out);
    }
}

/* Re-encodes a canonical record (fixarray head, version and type as fixints,
 * created as uint32, signer as bin8, signature as the last bin8 of 64) with
 * one element in a wider form than needed, and signs that form, so only the
 * decoder's canonical check stands in the way. */
static size_t make_noncanonical(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out) {
    uint8_t canon[PST_DHT_VALUE_MAX];
    const uint8_t *sk;
    size_t clen = base_record(g, r, s, i, canon, &sk);
    size_t sig_field = 2 + PST_SIG_BYTES;
    if (clen < 40 || (canon[0] & 0xf0) != 0x90 || canon[3] != 0xce || canon[8] != 0xce ||
        canon[13] != 0xc4)
        die("unexpected canonical layout");
    uint8_t n = canon[0] & 0x0f;
    const uint8_t *mid = canon + 1; /* fields 0 .. n-2 */
    size_t mid_len = clen - 1 - sig_field;
    uint8_t body[PST_DHT_VALUE_MAX + 16];
    size_t b = 0;
    uint32_t v = i % 5;
    /* the array head: array16 instead of fixarray */
    if (v == 0) {
        body[b++] = 0xdc;
        body[b++] = 0;
        body[b++] = (uint8_t)(n - 1);
    } else {
        body[b++] = (uint8_t)(0x90 | (n - 1));
    }
    switch (v) {
    case 1: /* version as uint8 */
        body[b++] = 0xcc;
        memcpy(body + b, mid, mid_len);
        b += mid_len;
        break;
    case 2: /* type as uint16 */
        body[b++] = mid[0];
        body[b++] = 0xcd;
        body[b++] = 0;
        memcpy(body + b, mid + 1, mid_len - 1);
        b += mid_len - 1;
        break;
    case 3: /* created as uint64 */
        memcpy(body + b, mid, 2);
        b += 2;
        body[b++] = 0xcf;
        memset(body + b, 0, 4);
        b += 4;
        memcpy(body + b, mid + 3, mid_len - 3);
        b += mid_len - 3;
        break;
    case 4: /* signer as bin16 */
        memcpy(body + b, mid, 12);
        b += 12;
        body[b++] = 0xc5;
        body[b++] = 0;
        memcpy(body + b, mid + 13, mid_len - 13);
        b += mid_len - 13;
        break;
    default:
        memcpy(body + b, mid, mid_len);
        b += mid_len;
    }
    if (b + sig_field + 1 > PST_DHT_VALUE_MAX)
        die("non-canonical record too long");
    uint8_t msg[PST_SIG_CONTEXT_LEN + PST_DHT_VALUE_MAX + 16];
    memcpy(msg, PST_SIG_CONTEXT, PST_SIG_CONTEXT_LEN);
    memcpy(msg + PST_SIG_CONTEXT_LEN, body, b);
    uint8_t sig[PST_SIG_BYTES];
    crypto_sign_detached(sig, NULL, msg, PST_SIG_CONTEXT_LEN + b, sk);
    /* the whole record: same head with n elements, fields, signature */
    memcpy(out, body, b);
    if (v == 0)
        out[2] = n;
    else
        out[0] = (uint8_t)(0x90 | n);
    out[b] = 0xc4;
    out[b + 1] = PST_SIG_BYTES;
    memcpy(out + b + 2, sig, PST_SIG_BYTES);
    return b + sig_field;
}

static size_t make_revoked(const pst_hostile_gen *g, rng *r, int s, uint32_t i, uint8_t *out) {
    /* perfectly valid and newer than anything published: refused only because
     * the target is revoked */
    if (s == PST_HS_KEY)
        return keyrec(r, g->id->sign_sk, tempting_seq(g, i), g->now - 60, g->now + VALID_LIFETIME,
                      out);
    return claim(g->id->sign_sk, g->address, tempting_seq(g, i), g->now - 60,
                 g->now + VALID_LIFETIME, out);
}

const char *pst_hostile_skip_reason(const pst_hostile_gen *g, int c, int s) {
    if (!pst_hostile_class_fits(c, s))
        return PST_HC_IS_INBOX(c)    ? "inbox classes aim at the inbox slot only"
               : PST_HC_IS_DEVICE(c) ? "device classes aim at the devices slot only"
                                     : "record classes aim at the key, address and vouch slots";
    if (PST_HC_IS_DEVICE(c))
        return c == PST_HC_DEV_REPLAY && g->id == NULL ? "needs --identity" : NULL;
    if (PST_HC_IS_INBOX(c)) {
        if (!g->have_box_pk)
            return "the target's key record (its X25519 key) was not found";
        if (c == PST_HC_INBOX_REPLAY && g->n_replay == 0 && !g->have_msg_id)
            return "nothing in the target's inbox slot to replay, and no --msg-id";
        if (c == PST_HC_INBOX_STAMP_WEAK && g->target_pow_bits < 2)
            return "the target asks for fewer than 2 bits";
        if (c == PST_HC_INBOX_STAMP_SPENT && g->n_spent == 0)
            return "no stamped notification in the target's inbox slot";
        return NULL;
    }
    if (s == PST_HS_ADDRESS && g->address[0] == '\0')
        return "needs --address";
    if (c == PST_HC_STALE || c == PST_HC_REVOKED) {
        if (s == PST_HS_VOUCH)
            return "endorsements carry no seq";
        if (g->id == NULL)
            return "needs --identity";
    }
    return NULL;
}

size_t pst_hostile_make(const pst_hostile_gen *g, int c, int s, uint32_t i,
                        uint8_t out[PST_DHT_VALUE_MAX]) {
    if (c < 0 || c >= PST_HC_COUNT || s < 0 || s >= PST_HS_COUNT ||
        pst_hostile_skip_reason(g, c, s) != NULL)
        return 0;
    if (PST_HC_IS_INBOX(c))
        return pst_hostile_make_inbox(g, c, i, out);
    if (PST_HC_IS_DEVICE(c))
        return pst_hostile_make_device(g, c, i, out);
    rng r;
    rng_init(&r, g, c, s, i);
    switch (c) {
    case PST_HC_RANDOM:
        return make_random(g, &r, s, i, out);
    case PST_HC_TRUNCATED:
        return make_truncated(g, &r, s, i, out);
    case PST_HC_OVERSIZE:
        return make_oversize(g, &r, s, i, out);
    case PST_HC_BADSIG:
        return make_badsig(g, &r, s, i, out);
    case PST_HC_MISMATCH:
        return make_mismatch(g, &r, s, i, out);
    case PST_HC_WRONGTYPE:
        return make_wrongtype(g, &r, s, i, out);
    case PST_HC_STALE:
        return make_stale(g, &r, s, i, out);
    case PST_HC_EXPIRED:
        return make_window(g, &r, s, i, out, true);
    case PST_HC_FUTURE:
        return make_window(g, &r, s, i, out, false);
    case PST_HC_NONCANONICAL:
        return make_noncanonical(g, &r, s, i, out);
    default:
        return make_revoked(g, &r, s, i, out);
    }
}
