/* Encoded size of every value Postern puts in the DHT, typical and largest,
 * next to OpenDHT's inline limit: a reply or put whose values add up to
 * under MAX_PACKET_VALUE_SIZE (600 bytes, OpenDHT 2.4 network_engine.h,
 * counted over OpenDHT's serialized Value) goes in one UDP packet; above it
 * the values follow as separate "value parts" of up to 1,280 bytes (MTU). */
#include "bench_sizes.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "pst_error.h"
#include "pst_hashcash.h"
#include "pst_mint.h"
#include "pst_notify.h"
#include "pst_records.h"

#define SIZES_NOW 1796600000u /* a fixed date: stamps and records are dated */
#define OPENDHT_INLINE_MAX 600u
#define LONG_RUN "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 64 */
/* OpenDHT's serialized Value (dht::Value::getPacked(), what a put carries and
 * what its 600-byte test counts) around our bytes: 35 bytes of fields (value
 * id, type, ...) plus the msgpack bin header of the data, 2 bytes up to 255
 * bytes and 3 above. Measured with libopendht 2.4.12 for 100..1,105 bytes
 * (+37 up to 255, +38 above); see docs/SCALE.md. */
static size_t opendht_value_size(size_t len) { return 35u + (len <= 255u ? 2u : 3u) + len; }

static void row(const char *what, size_t len) {
    size_t wire = opendht_value_size(len);
    printf("| %-66s | %5zu | %5zu | %-9s |\n", what, len, wire,
           wire < OPENDHT_INLINE_MAX ? "inline" : "parts");
}

/* Signs r with sk, encodes it and prints its row. */
static int keyrec_row(pst_keyrec *r, const uint8_t *sk, const char *what) {
    uint8_t buf[PST_DHT_VALUE_MAX];
    size_t len;
    int rc = pst_keyrec_sign(r, sk);
    if (rc == PST_OK && (rc = pst_keyrec_encode(r, buf, sizeof buf, &len)) == PST_OK)
        row(what, len);
    return rc;
}

static int keyrecs(const pst_identity *id) {
    pst_keyrec r;
    memset(&r, 0, sizeof r);
    r.created = SIZES_NOW;
    r.expires = SIZES_NOW + 604800u;
    r.seq = 12;
    memcpy(r.enc_pk, id->box_pk, sizeof r.enc_pk);
    r.has_revocation_pk = true;
    memcpy(r.revocation_pk, id->rev_pk, sizeof r.revocation_pk);
    r.n_addresses = 1;
    strcpy(r.addresses[0], "alice@example.org");
    r.n_endpoints = 1;
    strcpy(r.endpoints[0], "203.0.113.7:7411");
    r.pow_bits = 20;
    int rc = keyrec_row(&r, id->sign_sk, "KeyRecord: 1 address, 1 IPv4 endpoint (typical)");
    r.n_addresses = 2;
    strcpy(r.addresses[1], "alice.liddell@postern.example");
    r.n_endpoints = 2;
    strcpy(r.endpoints[1], "[2001:db8:85a3::8a2e:370:7334]:7411");
    if (rc == PST_OK)
        rc = keyrec_row(&r, id->sign_sk, "KeyRecord: 2 addresses, IPv4 + IPv6 endpoints");
    /* every list full: 8 addresses of 80 bytes (640 in all), 4 endpoints of 64 */
    r.n_addresses = PST_KEYREC_ADDRESSES_MAX;
    for (unsigned i = 0; i < PST_KEYREC_ADDRESSES_MAX; i++) {
        size_t total = PST_KEYREC_ADDRESS_BYTES_MAX / PST_KEYREC_ADDRESSES_MAX; /* 80 */
        /* a local part has at most 64 bytes: 63 + "@example-mail.org" */
        memset(r.addresses[i], 'a' + (int)i, total - 17);
        memcpy(r.addresses[i] + total - 17, "@example-mail.org", 18);
    }
    r.n_endpoints = PST_KEYREC_ENDPOINTS_MAX;
    for (unsigned i = 0; i < PST_KEYREC_ENDPOINTS_MAX; i++) {
        memset(r.endpoints[i], 'h', 57);
        snprintf(r.endpoints[i] + 57, 8, "%u:65535", i % 10u);
    }
    if (rc == PST_OK)
        rc = keyrec_row(&r, id->sign_sk,
                        "KeyRecord: largest (8 addresses = 640 B, 4 endpoints of 64 B)");
    return rc;
}

static int claims(const pst_identity *id) {
    static const char *const what[2] = {"AddressClaim: alice@example.org",
                                        "AddressClaim: largest (254-byte address)"};
    pst_address_claim c;
    uint8_t buf[PST_DHT_VALUE_MAX];
    size_t len;
    int rc = PST_OK;
    for (int i = 0; i < 2 && rc == PST_OK; i++) {
        memset(&c, 0, sizeof c);
        c.created = SIZES_NOW;
        c.expires = SIZES_NOW + 604800u;
        c.seq = 12;
        if (i == 0) /* else a 64-byte local part, 189-byte domain of labels of <= 63 bytes */
            strcpy(c.address, "alice@example.org");
        else
            snprintf(c.address, sizeof c.address, "%.64s@%.63s.%.63s.%.57s.org", LONG_RUN, LONG_RUN,
                     LONG_RUN, LONG_RUN);
        rc = pst_address_claim_sign(&c, id->sign_sk);
        if (rc == PST_OK && (rc = pst_address_claim_encode(&c, buf, sizeof buf, &len)) == PST_OK)
            row(what[i], len);
    }
    return rc;
}

static int revocations(const pst_identity *id) {
    pst_revocation r;
    uint8_t buf[PST_DHT_VALUE_MAX];
    size_t len;
    int rc = pst_revocation_build_self(&r, id->sign_sk, SIZES_NOW, PST_REVOKE_RETIRED, NULL, NULL);
    if (rc == PST_OK && (rc = pst_revocation_encode(&r, buf, sizeof buf, &len)) == PST_OK)
        row("Revocation: by the identity key, no text", len);
    static pst_revkey rk; /* holds a secret; a throw-away key here */
    memcpy(rk.identity_pk, id->sign_pk, sizeof rk.identity_pk);
    memcpy(rk.rev_pk, id->rev_pk, sizeof rk.rev_pk);
    memcpy(rk.rev_sk, id->rev_sk, sizeof rk.rev_sk);
    if (rc == PST_OK)
        rc = pst_revocation_auth_make(id->sign_sk, id->rev_pk, rk.auth);
    char text[PST_REVOCATION_REASON_TEXT_MAX + 1];
    memset(text, 'x', PST_REVOCATION_REASON_TEXT_MAX);
    text[PST_REVOCATION_REASON_TEXT_MAX] = '\0';
    uint8_t repl[PST_SIGN_PK_BYTES];
    memset(repl, 0x42, sizeof repl);
    if (rc == PST_OK &&
        (rc = pst_revocation_build_by_revkey(&r, &rk, SIZES_NOW, PST_REVOKE_KEY_COMPROMISED, text,
                                             repl)) == PST_OK &&
        (rc = pst_revocation_encode(&r, buf, sizeof buf, &len)) == PST_OK)
        row("Revocation: largest (revocation key, 200-byte text, replacement)", len);
    sodium_memzero(&rk, sizeof rk);
    return rc;
}

static int vouch(const pst_identity *id) {
    pst_endorsement e;
    uint8_t buf[PST_DHT_VALUE_MAX];
    size_t len;
    memset(&e, 0, sizeof e);
    e.created = SIZES_NOW;
    e.expires = SIZES_NOW + PST_ENDORSEMENT_LIFETIME_MAX;
    memset(e.subject, 0x17, sizeof e.subject);
    e.tier = PST_TIER_TRUSTED;
    int rc = pst_endorsement_sign(&e, id->sign_sk);
    if (rc == PST_OK && (rc = pst_endorsement_encode(&e, buf, sizeof buf, &len)) == PST_OK)
        row("Endorsement (vouch): every one is this size", len);
    return rc;
}

static int notification(const pst_identity *sender, const pst_identity *rcpt, unsigned n_ep,
                        unsigned ep_len, unsigned bits, const char *what) {
    pst_notify_inner in;
    memset(&in, 0, sizeof in);
    in.created = SIZES_NOW;
    in.expires = SIZES_NOW + 604800u;
    memcpy(in.recipient, rcpt->sign_pk, sizeof in.recipient);
    randombytes_buf(in.msg_id, sizeof in.msg_id);
    in.size = 25u * 1024u * 1024u; /* the size field's encoding grows with it */
    in.n_endpoints = n_ep;
    for (unsigned i = 0; i < n_ep; i++) {
        if (ep_len == 0) {
            strcpy(in.endpoints[i], "203.0.113.7:7411");
        } else {
            memset(in.endpoints[i], 'h', ep_len - 7);
            snprintf(in.endpoints[i] + ep_len - 7, 8, "%u:65535", i % 10);
        }
    }
    randombytes_buf(in.msg_key, sizeof in.msg_key);
    memcpy(in.sender_box_pk, sender->box_pk, sizeof in.sender_box_pk);
    static pst_notify out;
    uint8_t buf[PST_NOTIFY_MAX];
    size_t len;
    int rc = pst_notify_inner_sign(&in, sender->sign_sk);
    if (rc == PST_OK)
        rc = pst_notify_seal(&in, rcpt->box_pk, &out);
    sodium_memzero(&in, sizeof in);
    if (rc == PST_OK && bits > 0) {
        char resource[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE], ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
        pst_notify_stamp_resource(rcpt->sign_pk, resource);
        pst_notify_stamp_ext(out.sealed, out.sealed_len, ext);
        pst_hashcash_mint_params p = {
            .bits = bits, .resource = resource, .ext = ext, .now = SIZES_NOW, .threads = 1};
        randombytes_buf(p.rand, sizeof p.rand);
        rc = pst_hashcash_mint(&p, out.stamp, sizeof out.stamp);
    }
    if (rc == PST_OK && (rc = pst_notify_encode(&out, buf, sizeof buf, &len)) == PST_OK)
        row(what, len);
    return rc;
}

int pst_bench_sizes(void) {
    pst_identity *a = NULL, *b = NULL;
    uint8_t seeds[6][PST_SEED_BYTES];
    randombytes_buf(seeds, sizeof seeds);
    int rc = pst_identity_from_seeds(seeds[0], seeds[1], seeds[2], &a);
    if (rc == PST_OK)
        rc = pst_identity_from_seeds(seeds[3], seeds[4], seeds[5], &b);
    sodium_memzero(seeds, sizeof seeds);
    printf("sizes: every value Postern puts, encoded (bytes), and OpenDHT's serialized Value\n"
           "around it; 'inline' when it alone fits OpenDHT's %u-byte single-packet limit\n\n",
           OPENDHT_INLINE_MAX);
    printf("| %-66s | %5s | %5s | %-9s |\n", "value", "ours", "Value", "one put");
    printf("| %-66s | %5s | %5s | %-9s |\n", "---", "---:", "---:", "---");
    if (rc == PST_OK)
        rc = keyrecs(a);
    if (rc == PST_OK)
        rc = claims(a);
    if (rc == PST_OK)
        rc = revocations(a);
    if (rc == PST_OK)
        rc = vouch(a);
    if (rc == PST_OK)
        rc = notification(a, b, 1, 0, 0, "Notification: 1 IPv4 endpoint, no stamp (typical)");
    if (rc == PST_OK)
        rc = notification(a, b, 1, 0, 20, "Notification: 1 IPv4 endpoint, 20-bit stamp");
    if (rc == PST_OK)
        rc = notification(a, b, PST_NOTIFY_ENDPOINTS_MAX, PST_NOTIFY_ENDPOINT_MAX, 0,
                          "Notification: largest inner (4 endpoints of 64 B), no stamp");
    if (rc == PST_OK)
        rc = notification(a, b, PST_NOTIFY_ENDPOINTS_MAX, PST_NOTIFY_ENDPOINT_MAX, 20,
                          "Notification: largest inner, 20-bit stamp");
    printf("\nNotification bound: PST_NOTIFY_MAX = %u bytes (a 256-byte stamp over the largest\n"
           "inner); PST_DHT_VALUE_MAX = %u.\n",
           (unsigned)PST_NOTIFY_MAX, (unsigned)PST_DHT_VALUE_MAX);
    if (rc != PST_OK)
        fprintf(stderr, "bench sizes: a value could not be built: %s\n", pst_strerror(rc));
    pst_identity_free(a);
    pst_identity_free(b);
    return rc;
}
