/* The bad notifications postern-hostile puts into a target's inbox slot.
 * Each class aims at one step of the node's inbox pipeline (docs/MAIL.md,
 * "Notifications"): size and strict decode of the outer, the stamp binding,
 * the seal, the sender's signature and time window, the recipient, the
 * seen-message check. Every value that gets past the step it aims at would
 * be a valid notification naming an endpoint nobody serves (127.0.0.1:9),
 * so a node that wrongly accepts one shows it in inbox.accepted.
 *
 * Values are a function of the generator's seed, the class and the index
 * (the seal's ephemeral key included, see pst_hostile_seal), except the
 * replays, which are whatever the slot held. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostile.h"
#include "pst_device.h"
#include "pst_mint.h"
#include "pst_notify.h"

#define DAY 86400u
#define DEAD_ENDPOINT "127.0.0.1:9" /* discard: nothing listens there */
#define STAMP_BITS 8u               /* cheap to mint; the binding is what is wrong */

static void die(const char *what) {
    fprintf(stderr, "postern-hostile: internal error: %s\n", what);
    exit(1);
}

/* Deterministic bytes for (class, index, label). */
static void derive(const pst_hostile_gen *g, int c, uint32_t i, const char *label, uint8_t *out,
                   size_t n) {
    uint8_t in[32 + 1 + 4 + 16], k[randombytes_SEEDBYTES];
    memset(in, 0, sizeof in);
    memcpy(in, g->seed, 32);
    in[32] = (uint8_t)c;
    memcpy(in + 33, &i, sizeof i);
    snprintf((char *)in + 37, 16, "%s", label);
    crypto_generichash(k, sizeof k, in, sizeof in, (const uint8_t *)"hostile-inbox", 13);
    randombytes_buf_deterministic(out, n, k);
}

static uint32_t derive_u32(const pst_hostile_gen *g, int c, uint32_t i, const char *label) {
    uint8_t b[4];
    derive(g, c, i, label, b, sizeof b);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

void pst_hostile_seal(const uint8_t *m, size_t len, const uint8_t pk[PST_BOX_PK_BYTES],
                      const uint8_t eseed[32], uint8_t *out) {
    uint8_t epk[crypto_box_PUBLICKEYBYTES], esk[crypto_box_SECRETKEYBYTES];
    uint8_t nonce[crypto_box_NONCEBYTES];
    crypto_box_seed_keypair(epk, esk, eseed);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof nonce);
    crypto_generichash_update(&st, epk, sizeof epk);
    crypto_generichash_update(&st, pk, PST_BOX_PK_BYTES);
    crypto_generichash_final(&st, nonce, sizeof nonce);
    memcpy(out, epk, sizeof epk);
    if (crypto_box_easy(out + sizeof epk, m, len, nonce, pk, esk) != 0)
        die("crypto_box_easy");
    sodium_memzero(esk, sizeof esk);
}

/* A notification that is valid in every respect, from fresh key k, for an
 * endpoint nobody serves: the classes break one thing in it. */
static void inner_base(const pst_hostile_gen *g, int c, uint32_t i, pst_notify_inner *in) {
    memset(in, 0, sizeof *in);
    in->created = g->now - 60;
    in->expires = g->now + 7u * DAY;
    memcpy(in->recipient, g->target, sizeof in->recipient);
    derive(g, c, i, "msgid", in->msg_id, sizeof in->msg_id);
    in->size = PST_MESSAGE_SIZE_MIN + derive_u32(g, c, i, "size") % (1u << 20);
    in->n_endpoints = 1;
    snprintf(in->endpoints[0], sizeof in->endpoints[0], "%s", DEAD_ENDPOINT);
    derive(g, c, i, "msgkey", in->msg_key, sizeof in->msg_key);
    derive(g, c, i, "boxpk", in->sender_box_pk, sizeof in->sender_box_pk);
}

static const uint8_t *signer_sk(const pst_hostile_gen *g, int c, uint32_t i) {
    return g->fresh_sk[derive_u32(g, c, i, "signer") % PST_HOSTILE_FRESH_KEYS];
}

static size_t inner_bytes(const pst_notify_inner *in, uint8_t out[PST_NOTIFY_INNER_MAX]) {
    size_t len = 0;
    if (pst_notify_inner_encode(in, out, PST_NOTIFY_INNER_MAX, &len) != PST_OK)
        die("cannot encode an inner notification");
    return len;
}

/* Seals inner bytes to pk into an outer with stamp, encoded into out. */
static size_t outer_bytes(const pst_hostile_gen *g, int c, uint32_t i, const uint8_t *inner,
                          size_t inner_len, const uint8_t pk[PST_BOX_PK_BYTES], const char *stamp,
                          pst_notify *outer, uint8_t *out) {
    uint8_t eseed[32];
    memset(outer, 0, sizeof *outer);
    derive(g, c, i, "eseed", eseed, sizeof eseed);
    pst_hostile_seal(inner, inner_len, pk, eseed, outer->sealed);
    outer->sealed_len = inner_len + PST_SEAL_BYTES;
    snprintf(outer->stamp, sizeof outer->stamp, "%s", stamp ? stamp : "");
    size_t len = 0;
    if (pst_notify_encode(outer, out, PST_DHT_VALUE_MAX, &len) != PST_OK)
        die("cannot encode an outer notification");
    return len;
}

static size_t signed_for(const pst_hostile_gen *g, int c, uint32_t i, pst_notify_inner *in,
                         const uint8_t box_pk[PST_BOX_PK_BYTES], const char *stamp, uint8_t *out) {
    uint8_t buf[PST_NOTIFY_INNER_MAX];
    pst_notify outer;
    if (pst_notify_inner_sign(in, signer_sk(g, c, i)) != PST_OK)
        die("cannot sign an inner notification");
    size_t n = inner_bytes(in, buf);
    size_t len = outer_bytes(g, c, i, buf, n, box_pk, stamp, &outer, out);
    sodium_memzero(in, sizeof *in);
    return len;
}

/* ---- classes ------------------------------------------------------------------- */

static size_t make_random(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    size_t len = i % 4 == 0 ? 1 + derive_u32(g, c, i, "len") % 16
                            : 1 + derive_u32(g, c, i, "len") % PST_DHT_VALUE_MAX;
    derive(g, c, i, "bytes", out, len);
    if (i % 3 == 1 && len >= 4) { /* an outer head, then junk */
        out[0] = 0x94;
        out[1] = PST_PROTO_VERSION;
        out[2] = PST_REC_NOTIFICATION;
    } else if (i % 3 == 2 && len >= 8) { /* ... and a plausible sealed bin8 */
        out[0] = 0x94;
        out[1] = PST_PROTO_VERSION;
        out[2] = PST_REC_NOTIFICATION;
        out[3] = 0xc4;
        out[4] = (uint8_t)(PST_SEAL_BYTES + 1 + derive_u32(g, c, i, "bin") % 200);
    }
    return len;
}

static size_t make_oversize(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    size_t o = 0, len;
    switch (i % 5) {
    case 0: /* sealed declared as a bin32 of 2 GiB */
        len = PST_DHT_VALUE_MAX;
        out[o++] = 0x94, out[o++] = PST_PROTO_VERSION, out[o++] = PST_REC_NOTIFICATION;
        out[o++] = 0xc6, out[o++] = 0x7f, out[o++] = 0xff, out[o++] = 0xff, out[o++] = 0xff;
        derive(g, c, i, "junk", out + o, len - o);
        return len;
    case 1: /* a sealed box of 1,000 bytes: over PST_NOTIFY_SEALED_MAX */
        len = 3 + 3 + 1000 + 1;
        out[o++] = 0x94, out[o++] = PST_PROTO_VERSION, out[o++] = PST_REC_NOTIFICATION;
        out[o++] = 0xc5, out[o++] = 1000 >> 8, out[o++] = 1000 & 0xff;
        derive(g, c, i, "sealed", out + o, 1000);
        out[o + 1000] = 0xa0; /* stamp "" */
        return len;
    case 2: { /* a stamp of 600 printable bytes: over PST_NOTIFY_STAMP_MAX */
        len = 3 + 2 + 100 + 3 + 600;
        out[o++] = 0x94, out[o++] = PST_PROTO_VERSION, out[o++] = PST_REC_NOTIFICATION;
        out[o++] = 0xc4, out[o++] = 100;
        derive(g, c, i, "sealed", out + o, 100);
        o += 100;
        out[o++] = 0xda, out[o++] = 600 >> 8, out[o++] = 600 & 0xff;
        memset(out + o, 'A', 600);
        return len;
    }
    case 3: { /* a valid notification padded to just under the value cap */
        pst_notify_inner in;
        inner_base(g, c, i, &in);
        size_t n = signed_for(g, c, i, &in, g->target_box_pk, "", out);
        derive(g, c, i, "pad", out + n, PST_DHT_VALUE_MAX - 1 - n);
        return PST_DHT_VALUE_MAX - 1;
    }
    default: /* an outer array declaring 65,536 elements (positive fixints) */
        len = PST_DHT_VALUE_MAX - i % 64;
        out[0] = 0xdd, out[1] = 0, out[2] = 1, out[3] = 0, out[4] = 0;
        derive(g, c, i, "ints", out + 5, len - 5);
        for (size_t k = 5; k < len; k++)
            out[k] &= 0x7f;
        return len;
    }
}

static size_t make_forged(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    pst_notify_inner in;
    uint8_t buf[PST_NOTIFY_INNER_MAX];
    pst_notify outer;
    inner_base(g, c, i, &in);
    if (pst_notify_inner_sign(&in, signer_sk(g, c, i)) != PST_OK)
        die("sign");
    switch (i % 3) {
    case 0: /* one bit of the signature */
        in.sig[i / 3 % PST_SIG_BYTES] ^= (uint8_t)(1u << (i % 8));
        break;
    case 1: /* the size, after signing */
        in.size++;
        break;
    default: /* the endpoint, after signing: a redirect to someone else's port */
        snprintf(in.endpoints[0], sizeof in.endpoints[0], "127.0.0.1:%u",
                 1024u + derive_u32(g, c, i, "port") % 60000u);
        break;
    }
    size_t n = inner_bytes(&in, buf);
    sodium_memzero(&in, sizeof in);
    return outer_bytes(g, c, i, buf, n, g->target_box_pk, "", &outer, out);
}

static size_t make_wrongseal(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    pst_notify_inner in;
    uint8_t other_pk[PST_BOX_PK_BYTES], other_sk[PST_BOX_SK_BYTES], seed[32];
    inner_base(g, c, i, &in);
    derive(g, c, i, "otherbox", seed, sizeof seed);
    crypto_box_seed_keypair(other_pk, other_sk, seed);
    sodium_memzero(other_sk, sizeof other_sk);
    return signed_for(g, c, i, &in, other_pk, "", out);
}

static size_t make_wrongrcpt(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    pst_notify_inner in;
    inner_base(g, c, i, &in);
    /* for another recipient (a fresh key), or for the sender itself */
    memcpy(in.recipient, g->fresh_pk[derive_u32(g, c, i, "rcpt") % PST_HOSTILE_FRESH_KEYS],
           sizeof in.recipient);
    return signed_for(g, c, i, &in, g->target_box_pk, "", out);
}

/* A device key of fresh identity k: "revoked" (its list tombstones it) or
 * "unlisted" (no list names it). */
static void device_key(const pst_hostile_gen *g, unsigned k, const char *label,
                       uint8_t pk[PST_SIGN_PK_BYTES], uint8_t sk[PST_SIGN_SK_BYTES]) {
    uint8_t seed[32];
    derive(g, PST_HC_INBOX_DEVICE, k, label, seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(seed, sizeof seed);
}

size_t pst_hostile_device_list(const pst_hostile_gen *g, unsigned k, uint8_t slot[PST_SLOT_BYTES],
                               uint8_t out[PST_DHT_VALUE_MAX]) {
    pst_devlist l;
    uint8_t pk[PST_SIGN_PK_BYTES], sk[PST_SIGN_SK_BYTES];
    size_t len = 0;
    k %= PST_HOSTILE_FRESH_KEYS;
    memset(&l, 0, sizeof l);
    l.created = g->now - 120;
    l.seq = 1;
    memcpy(l.devices[0].sign_pk, g->fresh_pk[k], PST_SIGN_PK_BYTES);
    derive(g, PST_HC_INBOX_DEVICE, k, "homebox", l.devices[0].box_pk, PST_BOX_PK_BYTES);
    snprintf(l.devices[0].name, sizeof l.devices[0].name, "home");
    l.devices[0].created = g->now - 3600;
    l.n_devices = 1;
    device_key(g, k, "revoked", pk, sk);
    sodium_memzero(sk, sizeof sk);
    memcpy(l.tombstones[0].sign_pk, pk, PST_SIGN_PK_BYTES);
    l.tombstones[0].revoked_at = g->now - 120;
    l.n_tombstones = 1;
    if (pst_devlist_sign(&l, g->fresh_sk[k]) != PST_OK ||
        pst_devlist_encode(&l, out, PST_DHT_VALUE_MAX, &len) != PST_OK)
        return 0;
    pst_slot_devices(g->fresh_pk[k], slot);
    return len;
}

/* Signed by a device of fresh identity k for it (type 16): the revoked one
 * (i even) or one no list names (i odd). Every node must refuse both. */
static size_t make_device(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    pst_notify_inner in;
    uint8_t buf[PST_NOTIFY_INNER_MAX], pk[PST_SIGN_PK_BYTES], sk[PST_SIGN_SK_BYTES];
    pst_notify outer;
    unsigned k = (i / 2) % PST_HOSTILE_FRESH_KEYS;
    inner_base(g, c, i, &in);
    memcpy(in.sender, g->fresh_pk[k], PST_SIGN_PK_BYTES);
    device_key(g, k, i % 2 == 0 ? "revoked" : "unlisted", pk, sk);
    int rc = pst_notify_inner_sign(&in, sk);
    sodium_memzero(sk, sizeof sk);
    if (rc != PST_OK)
        die("cannot sign a device's inner notification");
    size_t n = inner_bytes(&in, buf);
    sodium_memzero(&in, sizeof in);
    return outer_bytes(g, c, i, buf, n, g->target_box_pk, "", &outer, out);
}

bool pst_hostile_is_verbatim(const pst_hostile_gen *g, int c, uint32_t i) {
    return c == PST_HC_INBOX_REPLAY && g->n_replay > 0 && (!g->have_msg_id || i % 2 == 0);
}

void pst_hostile_gen_find_stamps(pst_hostile_gen *g) {
    g->n_spent = 0;
    for (uint32_t k = 0; k < g->n_replay && g->n_spent < PST_HOSTILE_SPENT_MAX; k++) {
        pst_notify outer;
        if (pst_notify_decode(g->replay_val[k], g->replay_len[k], &outer) != PST_OK ||
            outer.stamp[0] == '\0')
            continue;
        bool dup = false;
        for (uint32_t j = 0; j < g->n_spent && !dup; j++)
            dup = strcmp(g->spent[j], outer.stamp) == 0;
        if (!dup)
            snprintf(g->spent[g->n_spent++], PST_HOSTILE_STAMP_BUFSIZE, "%s", outer.stamp);
    }
}

static size_t make_replay(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    if (pst_hostile_is_verbatim(g, c, i)) {
        uint32_t k = (g->have_msg_id ? i / 2 : i) % g->n_replay;
        memcpy(out, g->replay_val[k], g->replay_len[k]);
        return g->replay_len[k];
    }
    /* another sender claims a message id the target already knows */
    pst_notify_inner in;
    inner_base(g, c, i, &in);
    memcpy(in.msg_id, g->msg_id, sizeof in.msg_id);
    return signed_for(g, c, i, &in, g->target_box_pk, "", out);
}

static size_t make_expired(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    pst_notify_inner in;
    inner_base(g, c, i, &in);
    if (i % 3 == 2) { /* created beyond the allowed skew */
        in.created = g->now + PST_NOTIFY_SKEW_MAX + 600 + i % DAY;
        in.expires = in.created + 7u * DAY;
    } else {
        in.created = g->now - 20u * DAY - i;
        in.expires = g->now - 60 - i % DAY;
    }
    return signed_for(g, c, i, &in, g->target_box_pk, "", out);
}

/* A stamp with real work in it (bits of it), bound to resource and ext. */
static void mint(const pst_hostile_gen *g, int c, uint32_t i, unsigned bits, const char *resource,
                 const char *ext, uint64_t date, char out[PST_NOTIFY_STAMP_MAX + 1]) {
    pst_hashcash_mint_params p;
    memset(&p, 0, sizeof p);
    p.bits = bits;
    p.resource = resource;
    p.ext = ext;
    p.now = date;
    p.threads = 1; /* one thread searches from counter 0: deterministic */
    derive(g, c, i, "rand", p.rand, sizeof p.rand);
    if (pst_hashcash_mint(&p, out, PST_NOTIFY_STAMP_MAX + 1) != PST_OK)
        die("cannot mint a stamp");
}

/* The outer notification of value i without its stamp: a valid inner,
 * signed and sealed to the target; res and ext are what a stamp on it must
 * be bound to. */
static void sealed_for_stamp(const pst_hostile_gen *g, int c, uint32_t i, pst_notify *outer,
                             char res[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE],
                             char ext[PST_NOTIFY_STAMP_EXT_BUFSIZE]) {
    pst_notify_inner in;
    uint8_t buf[PST_NOTIFY_INNER_MAX], eseed[32];
    inner_base(g, c, i, &in);
    if (pst_notify_inner_sign(&in, signer_sk(g, c, i)) != PST_OK)
        die("sign");
    size_t n = inner_bytes(&in, buf);
    sodium_memzero(&in, sizeof in);
    memset(outer, 0, sizeof *outer);
    derive(g, c, i, "eseed", eseed, sizeof eseed);
    pst_hostile_seal(buf, n, g->target_box_pk, eseed, outer->sealed);
    outer->sealed_len = n + PST_SEAL_BYTES;
    pst_notify_stamp_resource(g->target, res);
    pst_notify_stamp_ext(outer->sealed, outer->sealed_len, ext);
}

/* outer with stamp on it, encoded into out; its length. */
static size_t encode_stamped(pst_notify *outer, const char *stamp, uint8_t *out) {
    snprintf(outer->stamp, sizeof outer->stamp, "%s", stamp);
    size_t len = 0;
    if (pst_notify_encode(outer, out, PST_DHT_VALUE_MAX, &len) != PST_OK)
        die("cannot encode a stamped notification");
    return len;
}

static size_t make_stamp(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    pst_notify outer;
    char res[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE], ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    char stamp[PST_NOTIFY_STAMP_MAX + 1];
    sealed_for_stamp(g, c, i, &outer, res, ext);
    switch (i % 5) {
    case 0: { /* paid for another recipient */
        char other[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE];
        pst_notify_stamp_resource(g->fresh_pk[i % PST_HOSTILE_FRESH_KEYS], other);
        mint(g, c, i, STAMP_BITS, other, ext, g->now, stamp);
        break;
    }
    case 1: { /* paid for another notification to the target */
        uint8_t junk[64];
        char other[PST_NOTIFY_STAMP_EXT_BUFSIZE];
        derive(g, c, i, "otherext", junk, sizeof junk);
        pst_notify_stamp_ext(junk, sizeof junk, other);
        mint(g, c, i, STAMP_BITS, res, other, g->now, stamp);
        break;
    }
    case 2: /* bound right, dated three days ago */
        mint(g, c, i, STAMP_BITS, res, ext, g->now - 3u * DAY, stamp);
        break;
    case 3: { /* bound right, claiming 32 bits it does not have */
        mint(g, c, i, STAMP_BITS, res, ext, g->now, stamp);
        char *bits = strchr(stamp, ':') + 1;
        char fixed[PST_NOTIFY_STAMP_MAX + 1];
        snprintf(fixed, sizeof fixed, "1:32%s", strchr(bits, ':'));
        memcpy(stamp, fixed, sizeof stamp);
        break;
    }
    default: /* not a stamp */
        snprintf(stamp, sizeof stamp, "1:%u:not-a-date:%s:%s:x:y", STAMP_BITS, res, ext);
        break;
    }
    return encode_stamped(&outer, stamp, out);
}

/* A valid notification from fresh key k with a real stamp bound right, of
 * fewer bits than the target publishes: refused as stamp_too_weak (after
 * the node found no vouch for the sender). */
static size_t make_stamp_weak(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    pst_notify outer;
    char res[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE], ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    char stamp[PST_NOTIFY_STAMP_MAX + 1];
    sealed_for_stamp(g, c, i, &outer, res, ext);
    unsigned short_by = 1 + i % 4, bits = g->target_pow_bits;
    mint(g, c, i, bits > short_by ? bits - short_by : 1, res, ext, g->now, stamp);
    return encode_stamped(&outer, stamp, out);
}

/* A stamp the target already took (from a notification in its slot), put on
 * a new valid notification: the stamp's ext names other sealed bytes, so the
 * double spend is refused as stamp_ext before the spent table is read. */
static size_t make_stamp_spent(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    pst_notify_inner in;
    inner_base(g, c, i, &in);
    return signed_for(g, c, i, &in, g->target_box_pk, g->spent[i % g->n_spent], out);
}

/* A valid stampless notification from a stranger of its own (a key derived
 * for this value): refused as no_stamp once the node found no vouch. */
static size_t make_nostamp(const pst_hostile_gen *g, int c, uint32_t i, uint8_t *out) {
    pst_notify_inner in;
    uint8_t seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES], buf[PST_NOTIFY_INNER_MAX];
    pst_notify outer;
    inner_base(g, c, i, &in);
    derive(g, c, i, "stranger", seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    if (pst_notify_inner_sign(&in, sk) != PST_OK)
        die("sign");
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(seed, sizeof seed);
    size_t n = inner_bytes(&in, buf);
    sodium_memzero(&in, sizeof in);
    return outer_bytes(g, c, i, buf, n, g->target_box_pk, "", &outer, out);
}

size_t pst_hostile_make_inbox(const pst_hostile_gen *g, int c, uint32_t i,
                              uint8_t out[PST_DHT_VALUE_MAX]) {
    if (pst_hostile_skip_reason(g, c, PST_HS_INBOX) != NULL)
        return 0;
    switch (c) {
    case PST_HC_INBOX_RANDOM:
        return make_random(g, c, i, out);
    case PST_HC_INBOX_OVERSIZE:
        return make_oversize(g, c, i, out);
    case PST_HC_INBOX_FORGED:
        return make_forged(g, c, i, out);
    case PST_HC_INBOX_WRONGSEAL:
        return make_wrongseal(g, c, i, out);
    case PST_HC_INBOX_WRONGRCPT:
        return make_wrongrcpt(g, c, i, out);
    case PST_HC_INBOX_REPLAY:
        return make_replay(g, c, i, out);
    case PST_HC_INBOX_EXPIRED:
        return make_expired(g, c, i, out);
    case PST_HC_INBOX_STAMP:
        return make_stamp(g, c, i, out);
    case PST_HC_INBOX_STAMP_WEAK:
        return make_stamp_weak(g, c, i, out);
    case PST_HC_INBOX_STAMP_SPENT:
        return make_stamp_spent(g, c, i, out);
    case PST_HC_INBOX_NOSTAMP:
        return make_nostamp(g, c, i, out);
    case PST_HC_INBOX_DEVICE:
        return make_device(g, c, i, out);
    default:
        return 0;
    }
}
