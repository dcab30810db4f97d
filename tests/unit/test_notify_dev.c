/* Notifications to identities with several devices (type 15 outer) and
 * inners signed by a device key (type 16). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pst_identity.h"
#include "pst_notify.h"
#include "recutil.h"
#include "testutil.h"

#define NOW 1700000000u

static uint8_t id_pk[32], id_sk[64], dev_pk[32], dev_sk[64], recip_pk[32], recip_sk[64];
static uint8_t dbox_pk[PST_NOTIFY_DEVICES_MAX][32], dbox_sk[PST_NOTIFY_DEVICES_MAX][32];
static uint8_t other_pk[32], other_sk[32], sbox_pk[32], sbox_sk[32];
static uint8_t ckey[PST_NOTIFY_CONTENT_KEY_BYTES];

static void setup(void) {
    cr_assert(sodium_init() >= 0);
    tu_sign_keypair(id_pk, id_sk, 0x01);
    tu_sign_keypair(dev_pk, dev_sk, 0x11);
    tu_sign_keypair(recip_pk, recip_sk, 0x02);
    for (unsigned i = 0; i < PST_NOTIFY_DEVICES_MAX; i++)
        tu_box_keypair(dbox_pk[i], dbox_sk[i], (uint8_t)(0x40 + i));
    tu_box_keypair(other_pk, other_sk, 0x08);
    tu_box_keypair(sbox_pk, sbox_sk, 0x05);
    memset(ckey, 0x33, sizeof ckey);
}

TestSuite(notify_dev, .init = setup);

/* What a node sends today: two short endpoints. */
static pst_notify_inner typical_inner(const uint8_t *sk, const uint8_t *sender) {
    pst_notify_inner r = ru_notify_inner(NOW, 7 * 86400, recip_pk, sbox_pk);
    if (sender != NULL)
        memcpy(r.sender, sender, 32);
    cr_assert_eq(pst_notify_inner_sign(&r, sk), PST_OK);
    return r;
}

TU_DEFINE_SIGNED(inner, pst_notify_inner, NOW)

static int outer_accept(const uint8_t *in, size_t len, void *ctx) {
    pst_notify o;
    pst_notify_inner d;
    int rc = pst_notify_decode(in, len, &o);
    if (rc == PST_OK)
        rc = pst_notify_open(&o, dbox_pk[0], dbox_sk[0], &d);
    if (rc == PST_OK)
        rc = pst_notify_inner_verify(&d, NOW);
    /* the stamp is outside everything signed or sealed: a change there is
     * accepted by design, every other change is not */
    if (rc == PST_OK && ctx != NULL && strcmp(o.stamp, (const char *)ctx) != 0)
        rc = PST_E_MISMATCH;
    return rc;
}

/* ---- inner signed by a device key (type 16) ------------------------------ */

Test(notify_dev, inner_identity_signed_stays_type_6) {
    pst_notify_inner r = typical_inner(id_sk, NULL), d;
    cr_assert_arr_eq(r.sender, id_pk, 32, "sign fills the sender in");
    uint8_t buf[PST_NOTIFY_INNER_MAX];
    size_t len = inner_round_trip(&r, &d, buf, sizeof buf);
    cr_assert_eq(buf[2], PST_REC_NOTIFICATION_INNER);
    cr_assert_arr_eq(d.sender, id_pk, 32);
    /* the stored type-6 vector is unchanged by the new field */
    uint8_t vec[PST_NOTIFY_INNER_MAX];
    long n = ru_read_vector("notify_inner_v1.hex", vec, sizeof vec);
    cr_assert_gt(n, 0);
    cr_assert_eq(pst_notify_inner_decode(vec, (size_t)n, &d), PST_OK);
    cr_assert_arr_eq(d.sender, d.signer, 32);
    (void)len;
}

Test(notify_dev, inner_device_signed_roundtrip_and_mutations) {
    pst_notify_inner r = typical_inner(dev_sk, id_pk), d;
    cr_assert_arr_eq(r.signer, dev_pk, 32);
    cr_assert_arr_eq(r.sender, id_pk, 32);
    uint8_t buf[PST_NOTIFY_INNER_MAX];
    size_t len = inner_round_trip(&r, &d, buf, sizeof buf);
    cr_assert_eq(buf[2], PST_REC_NOTIFICATION_INNER_DEV);
    cr_log_info("type-16 inner: %zu bytes", len);
    tu_check_mutations(buf, len, inner_accept, NULL);
    /* the sender is covered by the signature */
    pst_notify_inner x = r;
    x.sender[0] ^= 1;
    cr_assert_eq(pst_notify_inner_verify(&x, NOW), PST_E_SIGNATURE);
}

/* Hand-built type 16 with the given sender and flags. */
static size_t build_dev_inner(const pst_notify_inner *r, const uint8_t *sender, uint64_t flags,
                              uint8_t *buf, size_t cap) {
    pst_writer w;
    size_t len;
    pst_w_record(&w, buf, cap, PST_REC_NOTIFICATION_INNER_DEV, 14);
    pst_w_uint(&w, r->created);
    pst_w_uint(&w, r->expires);
    pst_w_bin(&w, r->signer, 32);
    pst_w_bin(&w, sender, 32);
    pst_w_uint(&w, flags);
    pst_w_bin(&w, r->recipient, 32);
    pst_w_bin(&w, r->msg_id, 32);
    pst_w_uint(&w, r->size);
    pst_w_array(&w, r->n_endpoints);
    for (uint32_t i = 0; i < r->n_endpoints; i++)
        pst_w_cstr(&w, r->endpoints[i]);
    pst_w_bin(&w, r->msg_key, 32);
    pst_w_bin(&w, r->sender_box_pk, 32);
    pst_w_bin(&w, r->sig, 64);
    cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
    return len;
}

Test(notify_dev, sync_flags) {
    /* the identity key itself may carry flags: then it is type 16 */
    pst_notify_inner r = typical_inner(id_sk, NULL), d;
    r.flags = PST_NOTIFY_FLAG_SYNC_SENT;
    cr_assert_eq(pst_notify_inner_sign(&r, id_sk), PST_OK);
    uint8_t buf[PST_NOTIFY_INNER_MAX];
    inner_round_trip(&r, &d, buf, sizeof buf);
    cr_assert_eq(buf[2], PST_REC_NOTIFICATION_INNER_DEV);
    cr_assert_eq(d.flags, PST_NOTIFY_FLAG_SYNC_SENT);
    /* a device with the trust flag */
    pst_notify_inner t = typical_inner(dev_sk, id_pk);
    t.flags = PST_NOTIFY_FLAG_SYNC_TRUST;
    cr_assert_eq(pst_notify_inner_sign(&t, dev_sk), PST_OK);
    inner_round_trip(&t, &d, buf, sizeof buf);
    /* unknown flags and both kinds at once are refused at sign and decode */
    const uint32_t bad[] = {4, 3, 0x80000000u};
    for (int i = 0; i < 3; i++) {
        pst_notify_inner x = t;
        x.flags = bad[i];
        cr_assert_eq(pst_notify_inner_sign(&x, dev_sk), PST_E_INVAL, "flags %u", bad[i]);
        size_t len = build_dev_inner(&t, id_pk, bad[i], buf, sizeof buf);
        cr_assert_eq(pst_notify_inner_decode(buf, len, &d), PST_E_RANGE, "flags %u", bad[i]);
    }
    /* the flags are signed */
    pst_notify_inner x = t;
    x.flags = PST_NOTIFY_FLAG_SYNC_SENT;
    cr_assert_eq(pst_notify_inner_verify(&x, NOW), PST_E_SIGNATURE);
}

Test(notify_dev, inner_device_type_with_sender_equal_signer_is_refused) {
    /* type 16 naming its own signer as sender, without flags, is a second
     * spelling of a type-6 inner: hand-built, it must not decode */
    pst_notify_inner r = typical_inner(id_sk, NULL);
    uint8_t buf[PST_NOTIFY_INNER_MAX + 64];
    size_t len = build_dev_inner(&r, r.signer, 0, buf, sizeof buf);
    pst_notify_inner d;
    cr_assert_eq(pst_notify_inner_decode(buf, len, &d), PST_E_NONCANONICAL);
    cr_assert(sodium_is_zero((const uint8_t *)&d, sizeof d), "wiped on failure");
}

/* ---- type 15: one box, a key seal per device ----------------------------- */

Test(notify_dev, every_device_opens_its_seal) {
    pst_notify_inner r = typical_inner(id_sk, NULL), d;
    for (uint32_t n = 1; n <= PST_NOTIFY_DEVICES_MAX; n++) {
        pst_notify o, od;
        cr_assert_eq(pst_notify_seal_devices(&r, (const uint8_t(*)[32])dbox_pk, n, ckey, &o),
                     PST_OK);
        uint8_t buf[PST_NOTIFY_MAX];
        size_t len;
        cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_OK);
        cr_assert_eq(buf[2], PST_REC_NOTIFICATION_DEV);
        cr_assert_eq(pst_notify_decode(buf, len, &od), PST_OK);
        cr_assert_eq(od.n_seals, n);
        for (uint32_t i = 0; i < PST_NOTIFY_DEVICES_MAX; i++) {
            int rc = pst_notify_open(&od, dbox_pk[i], dbox_sk[i], &d);
            if (i < n) {
                cr_assert_eq(rc, PST_OK, "%u devices, device %u", n, i);
                cr_assert_eq(memcmp(&d, &r, sizeof d), 0);
                cr_assert_eq(pst_notify_inner_verify(&d, NOW), PST_OK);
            } else {
                cr_assert_eq(rc, PST_E_CRYPTO, "%u devices, device %u not listed", n, i);
                cr_assert(sodium_is_zero((const uint8_t *)&d, sizeof d));
            }
        }
        /* the identity's own box key (not a device) opens nothing */
        cr_assert_eq(pst_notify_open(&od, other_pk, other_sk, &d), PST_E_CRYPTO);
    }
}

Test(notify_dev, outer_mutations_are_refused) {
    /* one device: every byte but the stamp matters to it */
    pst_notify_inner r = typical_inner(dev_sk, id_pk);
    pst_notify o;
    cr_assert_eq(pst_notify_seal_devices(&r, (const uint8_t(*)[32])dbox_pk, 1, ckey, &o), PST_OK);
    uint8_t buf[PST_NOTIFY_MAX];
    size_t len;
    cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(outer_accept(buf, len, ""), PST_OK);
    tu_check_mutations(buf, len, outer_accept, "");
    /* three devices: a change in the box or in device 0's own seal stops
     * device 0; the other seals are not its business (they are bound by
     * the stamp's ext, tested below) */
    cr_assert_eq(pst_notify_seal_devices(&r, (const uint8_t(*)[32])dbox_pk, 3, ckey, &o), PST_OK);
    pst_notify_inner d, d_in;
    for (size_t i = 0; i < o.sealed_len; i += 7) {
        pst_notify x = o;
        x.sealed[i] ^= 0x80;
        cr_assert_eq(pst_notify_open(&x, dbox_pk[0], dbox_sk[0], &d), PST_E_CRYPTO);
    }
    for (size_t i = 0; i < PST_BOX_PK_BYTES; i++) { /* the shared ephemeral key */
        pst_notify x = o;
        x.epk[i] ^= 0x01;
        for (unsigned d = 0; d < 3; d++)
            cr_assert_eq(pst_notify_open(&x, dbox_pk[d], dbox_sk[d], &d_in), PST_E_CRYPTO);
    }
    for (size_t i = 0; i < PST_NOTIFY_KEYSEAL_BYTES; i++) {
        pst_notify x = o;
        x.seals[0][i] ^= 0x01;
        cr_assert_eq(pst_notify_open(&x, dbox_pk[0], dbox_sk[0], &d), PST_E_CRYPTO);
        cr_assert_eq(pst_notify_open(&x, dbox_pk[1], dbox_sk[1], &d), PST_OK);
    }
}

Test(notify_dev, seal_limits_and_bad_arguments) {
    pst_notify_inner r = typical_inner(id_sk, NULL);
    pst_notify o;
    cr_assert_eq(pst_notify_seal_devices(&r, (const uint8_t(*)[32])dbox_pk, 0, ckey, &o),
                 PST_E_INVAL);
    cr_assert_eq(pst_notify_seal_devices(&r, (const uint8_t(*)[32])dbox_pk,
                                         PST_NOTIFY_DEVICES_MAX + 1, ckey, &o),
                 PST_E_INVAL);
    cr_assert_eq(o.n_seals, 0);
    /* 8 devices with every inner field at its largest (device-signed, with
     * a flag) still fit one DHT value; a full 256-byte stamp then does not */
    ru_notify_inner_largest(&r);
    memcpy(r.sender, id_pk, 32);
    r.flags = PST_NOTIFY_FLAG_SYNC_TRUST;
    cr_assert_eq(pst_notify_inner_sign(&r, dev_sk), PST_OK);
    cr_assert_eq(pst_notify_seal_devices(&r, (const uint8_t(*)[32])dbox_pk, 8, ckey, &o), PST_OK);
    uint8_t buf[PST_NOTIFY_MAX];
    size_t len;
    cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_OK);
    cr_log_info("largest type-15 outer without a stamp: %zu bytes", len);
    memset(o.stamp, 'x', PST_NOTIFY_STAMP_MAX);
    o.stamp[PST_NOTIFY_STAMP_MAX] = 0;
    cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &len), PST_E_TOOBIG);
    cr_assert_eq(len, 0);
}

/* Hand-built type-15 outers: [1, 15, box, epk, seals, stamp]. */
static size_t build_dev(uint8_t *out, size_t cap, size_t box_len, uint32_t n_seals, size_t seal_len,
                        const char *stamp) {
    static uint8_t junk[1024];
    pst_writer w;
    size_t len;
    pst_w_record(&w, out, cap, PST_REC_NOTIFICATION_DEV, 6);
    pst_w_bin(&w, junk, box_len);
    pst_w_bin(&w, junk, PST_BOX_PK_BYTES); /* epk */
    pst_w_array(&w, n_seals);
    for (uint32_t i = 0; i < n_seals; i++)
        pst_w_bin(&w, junk, seal_len);
    pst_w_cstr(&w, stamp);
    cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
    return len;
}

Test(notify_dev, decoder_is_strict) {
    uint8_t buf[4096];
    pst_notify o;
    size_t len = build_dev(buf, sizeof buf, 300, 2, PST_NOTIFY_KEYSEAL_BYTES, "ok");
    cr_assert_eq(pst_notify_decode(buf, len, &o), PST_OK);
    cr_assert_eq(o.n_seals, 2);
    cr_assert_eq(o.sealed_len, 300);
    /* no seal, one too many, a seal of the wrong size, a box too short or
     * too long, a bad stamp, the whole over one DHT value */
    len = build_dev(buf, sizeof buf, 300, 0, PST_NOTIFY_KEYSEAL_BYTES, "");
    cr_assert_neq(pst_notify_decode(buf, len, &o), PST_OK);
    len = build_dev(buf, sizeof buf, 100, PST_NOTIFY_DEVICES_MAX + 1, PST_NOTIFY_KEYSEAL_BYTES, "");
    cr_assert_neq(pst_notify_decode(buf, len, &o), PST_OK);
    len = build_dev(buf, sizeof buf, 300, 2, PST_NOTIFY_KEYSEAL_BYTES - 1, "");
    cr_assert_eq(pst_notify_decode(buf, len, &o), PST_E_RANGE);
    len = build_dev(buf, sizeof buf, PST_NOTIFY_BOX_TAG_BYTES, 1, PST_NOTIFY_KEYSEAL_BYTES, "");
    cr_assert_eq(pst_notify_decode(buf, len, &o), PST_E_RANGE);
    len = build_dev(buf, sizeof buf, PST_NOTIFY_INNER_MAX + PST_NOTIFY_BOX_TAG_BYTES + 1, 1,
                    PST_NOTIFY_KEYSEAL_BYTES, "");
    cr_assert_neq(pst_notify_decode(buf, len, &o), PST_OK);
    len = build_dev(buf, sizeof buf, 300, 1, PST_NOTIFY_KEYSEAL_BYTES, "a b");
    cr_assert_eq(pst_notify_decode(buf, len, &o), PST_E_RANGE);
    char big[PST_NOTIFY_STAMP_MAX + 1];
    memset(big, 'x', PST_NOTIFY_STAMP_MAX);
    big[PST_NOTIFY_STAMP_MAX] = 0;
    len = build_dev(buf, sizeof buf, 600, 8, PST_NOTIFY_KEYSEAL_BYTES, big);
    cr_assert_gt(len, PST_NOTIFY_MAX);
    cr_assert_eq(pst_notify_decode(buf, len, &o), PST_E_TOOBIG);
    cr_assert_eq(o.n_seals, 0, "zeroed on failure");
    /* type 15 with type 5's field count, and the reverse */
    len = build_dev(buf, sizeof buf, 300, 1, PST_NOTIFY_KEYSEAL_BYTES, "");
    buf[0] = 0x95;
    cr_assert_neq(pst_notify_decode(buf, len, &o), PST_OK);
    buf[0] = 0x96;
    buf[2] = PST_REC_NOTIFICATION;
    cr_assert_eq(pst_notify_decode(buf, len, &o), PST_E_FIELDS);
}

Test(notify_dev, stamp_ext_binds_box_and_every_seal) {
    pst_notify_inner r = typical_inner(id_sk, NULL);
    pst_notify o;
    char e0[PST_NOTIFY_STAMP_EXT_BUFSIZE], e1[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    cr_assert_eq(pst_notify_seal_devices(&r, (const uint8_t(*)[32])dbox_pk, 4, ckey, &o), PST_OK);
    pst_notify_ext(&o, e0);
    for (uint32_t i = 0; i < 4; i++) {
        pst_notify x = o;
        x.seals[i][PST_NOTIFY_KEYSEAL_BYTES - 1] ^= 1;
        pst_notify_ext(&x, e1);
        cr_assert_str_neq(e0, e1, "seal %u", i);
    }
    pst_notify x = o;
    x.sealed[0] ^= 1;
    pst_notify_ext(&x, e1);
    cr_assert_str_neq(e0, e1);
    x = o;
    x.epk[0] ^= 1;
    pst_notify_ext(&x, e1);
    cr_assert_str_neq(e0, e1, "the ephemeral key is bound too");
    x = o;
    x.n_seals = 3; /* dropping a seal changes the binding too */
    pst_notify_ext(&x, e1);
    cr_assert_str_neq(e0, e1);
    /* type 5: the same string as before */
    cr_assert_eq(pst_notify_seal(&r, dbox_pk[0], &o), PST_OK);
    pst_notify_ext(&o, e0);
    pst_notify_stamp_ext(o.sealed, o.sealed_len, e1);
    cr_assert_str_eq(e0, e1);
}

/* The sizes docs/PROTOCOL.md quotes: a typical inner (two endpoints), with
 * no stamp and with a 20-bit stamp of the usual length. */
Test(notify_dev, sizes) {
    /* 1:20:261207:<52-char fingerprint>:pn1=<32 hex>:<16 rand>:<8 counter> */
    char stamp[160];
    snprintf(stamp, sizeof stamp, "1:20:261207:%052d:pn1=%032d:%016d:%08d", 0, 0, 0, 0);
    for (int signer = 0; signer < 2; signer++) {
        pst_notify_inner r = signer ? typical_inner(dev_sk, id_pk) : typical_inner(id_sk, NULL);
        uint8_t buf[PST_NOTIFY_MAX];
        size_t plain, stamped;
        pst_notify o;
        cr_assert_eq(pst_notify_seal(&r, dbox_pk[0], &o), PST_OK);
        cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &plain), PST_OK);
        strcpy(o.stamp, stamp);
        cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &stamped), PST_OK);
        cr_log_info("%s single seal (type 5): %zu bytes, %zu with a stamp",
                    signer ? "device-signed" : "identity-signed", plain, stamped);
        const uint32_t ns[] = {1, 2, 4, 8};
        for (size_t k = 0; k < 4; k++) {
            cr_assert_eq(
                pst_notify_seal_devices(&r, (const uint8_t(*)[32])dbox_pk, ns[k], ckey, &o),
                PST_OK);
            cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &plain), PST_OK);
            strcpy(o.stamp, stamp);
            cr_assert_eq(pst_notify_encode(&o, buf, sizeof buf, &stamped), PST_OK);
            cr_log_info("%s %u devices (type 15): %zu bytes, %zu with a stamp",
                        signer ? "device-signed" : "identity-signed", ns[k], plain, stamped);
            /* each device adds one key seal: 48 bytes + a 2-byte header */
            cr_assert_leq(stamped, PST_NOTIFY_MAX);
        }
    }
}
