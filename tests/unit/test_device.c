/* DeviceCert (type 13) and DeviceList (type 14). */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "pst_device.h"
#include "pst_records.h"
#include "recutil.h"
#include "testutil.h"

#define CREATED 1700000000u
#define NOW (CREATED + 60)

/* identity: sign seed 00..1f; device i: the identity of seed 0x10 * (i + 1) */
static void kat_device(pst_device *d, unsigned i, const char *name) {
    pst_identity *dev = ru_kat_identity((uint8_t)(0x10 * (i + 1)));
    memset(d, 0, sizeof *d);
    memcpy(d->sign_pk, dev->sign_pk, 32);
    memcpy(d->box_pk, dev->box_pk, 32);
    snprintf(d->name, sizeof d->name, "%s", name);
    d->created = CREATED + i;
    pst_identity_free(dev);
}

static void kat_list(pst_devlist *l, unsigned n, uint64_t seq, size_t name_len) {
    pst_identity *id = ru_kat_identity(0);
    memset(l, 0, sizeof *l);
    l->created = CREATED;
    l->seq = seq;
    for (unsigned i = 0; i < n; i++) {
        char name[PST_DEVICE_NAME_MAX + 1];
        memset(name, 'a' + (int)i, name_len);
        name[name_len] = '\0';
        kat_device(&l->devices[i], i, name);
    }
    l->n_devices = n;
    cr_assert_eq(pst_devlist_sign(l, id->sign_sk), PST_OK);
    pst_identity_free(id);
}

static void kat_cert(pst_devcert *c) {
    pst_identity *id = ru_kat_identity(0);
    pst_device d;
    kat_device(&d, 0, "laptop");
    cr_assert_eq(pst_devcert_build(c, &d, CREATED, id->sign_sk), PST_OK);
    pst_identity_free(id);
}

TU_DEFINE_SIGNED(cert, pst_devcert, NOW)
TU_DEFINE_SIGNED(list, pst_devlist, NOW)

Test(device, cert_round_trip_and_vector) {
    pst_devcert c, back;
    uint8_t enc[PST_DHT_VALUE_MAX], h[32];
    kat_cert(&c);
    size_t len = cert_round_trip(&c, &back, enc, sizeof enc);
    cr_assert_eq(pst_devcert_id(&c, h), PST_OK);
    ru_expect_hash_id(h, enc, len);
    ru_check_vector_accepted("devcert_v1.hex",
                             "DeviceCert v1: identity sign_seed=00..1f, device = keys of seed "
                             "10..2f, name \"laptop\", created=1700000000",
                             enc, len, cert_accept);
    tu_check_mutations(enc, len, cert_accept, NULL);
}

Test(device, list_round_trip_and_vector) {
    pst_devlist l, back;
    uint8_t enc[PST_DHT_VALUE_MAX];
    kat_list(&l, 2, 7, 6);
    l.tombstones[0].revoked_at = CREATED + 5;
    memset(l.tombstones[0].sign_pk, 0x77, 32);
    l.n_tombstones = 1;
    pst_identity *id = ru_kat_identity(0);
    cr_assert_eq(pst_devlist_sign(&l, id->sign_sk), PST_OK);
    size_t len = list_round_trip(&l, &back, enc, sizeof enc);
    ru_check_vector_accepted("devlist_v1.hex",
                             "DeviceList v1: identity sign_seed=00..1f, seq 7, devices of seeds "
                             "10.. and 20.. named aaaaaa and bbbbbb, one tombstone 77..77",
                             enc, len, list_accept);
    tu_check_mutations(enc, len, list_accept, NULL);
    cr_assert_eq(pst_devlist_find(&back, l.devices[1].sign_pk), 1);
    cr_assert_eq(pst_devlist_find(&back, l.tombstones[0].sign_pk), -1);
    cr_assert(pst_devlist_revoked(&back, l.tombstones[0].sign_pk));
    cr_assert(!pst_devlist_revoked(&back, l.devices[0].sign_pk));
    pst_identity_free(id);
}

/* Sizes for docs/PROTOCOL.md: typical names (8 bytes) and the longest. */
Test(device, sizes) {
    static const unsigned counts[] = {1, 2, 4, 8};
    for (size_t i = 0; i < 4; i++) {
        pst_devlist l;
        kat_list(&l, counts[i], 1, 8);
        size_t typical = pst_devlist_encoded_size(&l);
        kat_list(&l, counts[i], 1, PST_DEVICE_NAME_MAX);
        size_t longest = pst_devlist_encoded_size(&l);
        printf("devlist %u devices: %zu bytes (8-byte names), %zu bytes (32-byte names)\n",
               counts[i], typical, longest);
        cr_assert(longest <= PST_DHT_VALUE_MAX, "a full list fits one DHT value");
    }
    pst_devcert c;
    kat_cert(&c);
    uint8_t enc[PST_DHT_VALUE_MAX];
    printf("devcert: %zu bytes (6-byte name)\n", cert_enc(&c, enc, sizeof enc));
}

Test(device, forged_and_wrong_signer) {
    pst_identity *other = ru_kat_identity(0x90), *id = ru_kat_identity(0);
    pst_devlist l;
    kat_list(&l, 2, 3, 6);
    pst_devlist f = l;
    memcpy(f.signer, other->sign_pk, 32);
    cr_assert_eq(pst_devlist_verify(&f, NOW), PST_E_SIGNATURE, "signer swapped");
    f = l;
    f.seq = 4;
    cr_assert_eq(pst_devlist_verify(&f, NOW), PST_E_SIGNATURE, "seq is signed");
    f = l;
    cr_assert_eq(pst_devlist_sign(&f, other->sign_sk), PST_OK);
    cr_assert_eq(pst_devlist_verify(&f, NOW), PST_OK, "valid, but by another identity");
    cr_assert_arr_neq(f.signer, id->sign_pk, 32);
    cr_assert_eq(pst_devlist_verify(&l, CREATED - PST_CLOCK_SKEW_MAX - 1), PST_E_NOTYET);
    /* a cert by another key is not in the identity's list */
    pst_devcert c;
    kat_cert(&c);
    cr_assert_eq(pst_devcert_in_list(&c, &l), PST_OK);
    pst_devcert fc;
    cr_assert_eq(pst_devcert_build(&fc, &c.dev, CREATED, other->sign_sk), PST_OK);
    cr_assert_eq(pst_devcert_verify(&fc, NOW), PST_OK);
    cr_assert_eq(pst_devcert_in_list(&fc, &l), PST_E_SIGNER);
    fc = c;
    fc.dev.box_pk[0] ^= 1;
    cr_assert_eq(pst_devcert_in_list(&fc, &l), PST_E_MISMATCH);
    cr_assert_eq(pst_devcert_verify(&fc, NOW), PST_E_SIGNATURE);
    pst_devlist r = l;
    r.tombstones[0].sign_pk[0] = 0;
    memcpy(r.tombstones[0].sign_pk, r.devices[0].sign_pk, 32);
    r.n_tombstones = 1;
    r.devices[0] = r.devices[1];
    r.n_devices = 1;
    cr_assert_eq(pst_devcert_in_list(&c, &r), PST_E_REVOKED);
    r.n_tombstones = 0;
    cr_assert_eq(pst_devcert_in_list(&c, &r), PST_E_NOTFOUND);
    pst_identity_free(other);
    pst_identity_free(id);
}

Test(device, rules) {
    pst_identity *id = ru_kat_identity(0);
    pst_devlist l, b;
    uint8_t enc[4 * PST_DHT_VALUE_MAX];
    size_t len;
    kat_list(&l, 3, 1, 6);
    b = l;
    b.devices[2] = b.devices[0];
    cr_assert_eq(pst_devlist_encode(&b, enc, sizeof enc, &len), PST_E_INVAL, "listed twice");
    cr_assert_eq(pst_devlist_sign(&b, id->sign_sk), PST_E_INVAL);
    b = l;
    memcpy(b.tombstones[0].sign_pk, b.devices[1].sign_pk, 32);
    b.n_tombstones = 1;
    cr_assert_eq(pst_devlist_sign(&b, id->sign_sk), PST_E_INVAL, "listed and tombstoned");
    b = l;
    memcpy(b.tombstones[0].sign_pk, id->sign_pk, 32);
    b.n_tombstones = 1;
    cr_assert_eq(pst_devlist_sign(&b, id->sign_sk), PST_E_INVAL, "identity tombstoned");
    b = l;
    memset(b.tombstones[0].sign_pk, 1, 32);
    memset(b.tombstones[1].sign_pk, 1, 32);
    b.n_tombstones = 2;
    cr_assert_eq(pst_devlist_sign(&b, id->sign_sk), PST_E_INVAL, "tombstoned twice");
    b = l;
    b.expires = CREATED + 10;
    cr_assert_eq(pst_devlist_sign(&b, id->sign_sk), PST_E_INVAL, "lists never expire");
    b = l;
    b.devices[1].name[0] = '\0';
    cr_assert_eq(pst_devlist_sign(&b, id->sign_sk), PST_E_INVAL, "empty name");
    b = l;
    b.devices[1].name[0] = '\n';
    cr_assert_eq(pst_devlist_sign(&b, id->sign_sk), PST_E_INVAL, "control character");
    b = l;
    b.n_devices = PST_DEVICES_MAX + 1;
    cr_assert_eq(pst_devlist_encode(&b, enc, sizeof enc, &len), PST_E_INVAL, "over the cap");
    cr_assert(pst_device_name_ok("k\xc3\xbc"
                                 "che",
                                 5));
    cr_assert(!pst_device_name_ok("\xc3", 1), "bad UTF-8");
    char longname[40];
    memset(longname, 'x', sizeof longname);
    cr_assert(pst_device_name_ok(longname, PST_DEVICE_NAME_MAX));
    cr_assert(!pst_device_name_ok(longname, PST_DEVICE_NAME_MAX + 1));
    pst_identity_free(id);
}

/* Decoding refuses what encoding refuses, seen from the wire: a list naming
 * nine devices (over the cap), a duplicate, a bad name. */
Test(device, decode_over_cap_and_rules) {
    pst_devlist l;
    uint8_t enc[PST_DHT_VALUE_MAX], out[4096];
    kat_list(&l, 8, 1, 1);
    size_t len = list_enc(&l, enc, sizeof enc), n;
    ru_fields f;
    ru_split(enc, len, &f);
    cr_assert_eq(f.count, PST_DEVLIST_FIELDS);
    /* field 6 = devices: append a copy of the first device with another key */
    ru_raw r;
    memcpy(r.b, f.p[6], f.n[6]);
    r.n = f.n[6];
    cr_assert_eq(r.b[0], 0x98, "fixarray of 8");
    r.b[0] = 0x99;
    size_t one = (f.n[6] - 1) / 8;
    memcpy(r.b + r.n, f.p[6] + 1, one);
    r.b[r.n + 4] ^= 0x55; /* inside the first key */
    r.n += one;
    n = ru_with_field(enc, len, 6, r.b, r.n, out, sizeof out);
    cr_assert_eq(list_decode_rc(out, n), PST_E_TOOBIG, "nine devices");
    /* eight devices where the last repeats the first */
    memcpy(r.b, f.p[6], f.n[6]);
    memcpy(r.b + 1 + 7 * one, f.p[6] + 1, one);
    n = ru_with_field(enc, len, 6, r.b, f.n[6], out, sizeof out);
    cr_assert_eq(list_decode_rc(out, n), PST_E_RANGE, "a device listed twice");
    ru_raw e = ru_raw_uint(5);
    n = ru_with_field(enc, len, 3, e.b, e.n, out, sizeof out);
    cr_assert_eq(list_decode_rc(out, n), PST_E_RANGE, "expires must be 0");
    pst_devlist z;
    memset(&z, 0x33, sizeof z);
    cr_assert_neq(pst_devlist_decode(out, n, &z), PST_OK);
    const uint8_t *p = (const uint8_t *)&z;
    for (size_t i = 0; i < sizeof z; i++)
        cr_assert_eq(p[i], 0);
}

Test(device, trim_and_id) {
    pst_identity *id = ru_kat_identity(0);
    pst_devlist l;
    kat_list(&l, 8, 1, PST_DEVICE_NAME_MAX);
    for (unsigned i = 0; i < 20; i++) {
        memset(l.tombstones[i].sign_pk, 0x40 + (int)i, 32);
        l.tombstones[i].revoked_at = CREATED + 100 - i; /* the last ones are the oldest */
    }
    l.n_tombstones = 20;
    uint8_t enc[PST_DHT_VALUE_MAX];
    size_t len;
    cr_assert_eq(pst_devlist_sign(&l, id->sign_sk), PST_E_INVAL, "over one DHT value");
    unsigned dropped = pst_devlist_trim(&l);
    cr_assert_gt(dropped, 0);
    cr_assert_eq(l.n_tombstones + dropped, 20);
    cr_assert_eq(l.tombstones[0].revoked_at, CREATED + 100, "the newest is kept");
    cr_assert_eq(pst_devlist_sign(&l, id->sign_sk), PST_OK);
    cr_assert_eq(pst_devlist_encode(&l, enc, sizeof enc, &len), PST_OK);
    cr_assert_leq(len, PST_DHT_VALUE_MAX);
    char did[PST_DEVICE_ID_BUFSIZE], fp[PST_FINGERPRINT_STRLEN + 1];
    pst_device_id(id->sign_pk, did);
    pst_fingerprint_format(id->sign_pk, fp);
    cr_assert_eq(strlen(did), 16);
    cr_assert_eq(strncmp(did, fp, 16), 0);
    uint8_t s1[PST_SLOT_BYTES], s2[PST_SLOT_BYTES];
    pst_slot_devices(id->sign_pk, s1);
    pst_slot_key(id->sign_pk, s2);
    cr_assert_arr_neq(s1, s2, PST_SLOT_BYTES);
    pst_identity_free(id);
}

/* ---- pairing (pst_pairing.h) ------------------------------------------------ */
#include "pst_pairing.h"
#include "pst_sync.h"

static void kat_code(pst_pair_code *c) {
    cr_assert_geq(sodium_init(), 0); /* sodium_malloc needs it */
    memset(c, 0, sizeof *c);
    for (unsigned i = 0; i < PST_PAIR_SECRET_BYTES; i++)
        c->secret[i] = (uint8_t)(0xa0 + i);
    c->ipv4[0] = 127;
    c->ipv4[3] = 1;
    c->port = 41234;
}

Test(pairing, code_round_trip) {
    pst_pair_code c, back;
    char s[PST_PAIR_CODE_STRLEN + 1], messy[80];
    kat_code(&c);
    cr_assert_eq(pst_pair_code_format(&c, s), PST_OK);
    cr_assert_eq(strlen(s), PST_PAIR_CODE_STRLEN);
    cr_assert_eq(s[4], '-');
    cr_assert_eq(pst_pair_code_parse(s, &back), PST_OK);
    cr_assert_arr_eq(&back, &c, sizeof c);
    /* typed by a person: upper case, spaces, no dashes */
    size_t o = 0;
    for (size_t i = 0; s[i]; i++)
        if (s[i] != '-') {
            messy[o++] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
            if (o % 5 == 0)
                messy[o++] = ' ';
        }
    messy[o] = '\0';
    cr_assert_eq(pst_pair_code_parse(messy, &back), PST_OK);
    cr_assert_arr_eq(&back, &c, sizeof c);
    cr_assert_eq(pst_pair_code_parse("abcd-efgh", &back), PST_E_INVAL);
    s[0] = '0'; /* not in the alphabet */
    cr_assert_eq(pst_pair_code_parse(s, &back), PST_E_INVAL);
    c.port = 0;
    cr_assert_eq(pst_pair_code_format(&c, s), PST_E_RANGE);
}

Test(pairing, request_and_reply) {
    pst_pair_code c, other;
    pst_pair_keys k, wrong;
    kat_code(&c);
    other = c;
    other.secret[9] ^= 1;
    cr_assert_eq(pst_pair_derive(&c, &k), PST_OK);
    cr_assert_eq(pst_pair_derive(&other, &wrong), PST_OK);
    cr_assert_arr_neq(k.id, wrong.id, PST_PAIR_ID_BYTES);
    pst_pair_request r, back;
    memset(&r, 0, sizeof r);
    memset(r.sign_pk, 1, 32);
    memset(r.box_pk, 2, 32);
    snprintf(r.name, sizeof r.name, "desktop");
    uint8_t nonce[PST_PAIR_NONCE_BYTES] = {9}, frame[PST_PAIR_REQUEST_MAX], id[PST_PAIR_ID_BYTES];
    size_t len;
    cr_assert_eq(pst_pair_request_seal(&k, &r, nonce, frame, sizeof frame, &len), PST_OK);
    cr_assert_eq(pst_pair_request_peek(frame, len, id), PST_OK);
    cr_assert_arr_eq(id, k.id, PST_PAIR_ID_BYTES);
    cr_assert_eq(pst_pair_request_open(&k, frame, len, &back), PST_OK);
    cr_assert_arr_eq(&back, &r, sizeof r);
    cr_assert_eq(pst_pair_request_open(&wrong, frame, len, &back), PST_E_MISMATCH);
    memcpy(wrong.id, k.id, PST_PAIR_ID_BYTES); /* the id without the code */
    cr_assert_eq(pst_pair_request_open(&wrong, frame, len, &back), PST_E_CRYPTO);
    frame[len - 1] ^= 1;
    cr_assert_eq(pst_pair_request_open(&k, frame, len, &back), PST_E_CRYPTO);

    pst_pair_reply *rep = calloc(2, sizeof *rep);
    rep->devcert_len = 3;
    rep->devlist_len = 5;
    rep->n_contacts = 130; /* three chunks */
    for (uint32_t i = 0; i < rep->n_contacts; i++) {
        rep->contacts[i].pk[0] = (uint8_t)i;
        rep->contacts[i].tier = (uint8_t)(1 + i % 3);
        if (i % 2)
            snprintf(rep->contacts[i].petname, sizeof rep->contacts[i].petname, "c%u", i);
        if (i % 5 == 0) { /* some contacts carry addresses, one carries 16 */
            rep->contacts[i].n_emails = i == 125 ? PST_TRUSTSYNC_EMAILS_MAX : 1;
            for (uint32_t e = 0; e < rep->contacts[i].n_emails; e++)
                snprintf(rep->emails[rep->n_emails++], sizeof rep->emails[0], "%c%u@c.example",
                         'a' + e, i);
        }
    }
    uint8_t *big = malloc(PST_PAIR_REPLY_MAX);
    pst_pair_status st;
    cr_assert_eq(pst_pair_reply_seal(&k, PST_PAIR_OK, rep, nonce, big, PST_PAIR_REPLY_MAX, &len),
                 PST_OK);
    cr_assert_eq(pst_pair_reply_open(&k, big, len, &st, &rep[1]), PST_OK);
    cr_assert_eq(st, PST_PAIR_OK);
    cr_assert_eq(memcmp(&rep[0], &rep[1], sizeof *rep), 0);
    cr_assert_eq(pst_pair_reply_open(&wrong, big, len, &st, &rep[1]), PST_E_CRYPTO);
    cr_assert_eq(pst_pair_reply_seal(&k, PST_PAIR_USED, NULL, nonce, big, PST_PAIR_REPLY_MAX, &len),
                 PST_OK);
    cr_assert_eq(pst_pair_reply_open(&wrong, big, len, &st, &rep[1]), PST_OK);
    cr_assert_eq(st, PST_PAIR_USED);
    /* the emails: counts that do not add up, a bad or unsorted address */
    rep->n_emails--;
    cr_assert_eq(pst_pair_reply_encode(rep, big, PST_PAIR_REPLY_MAX, &len), PST_E_INVAL);
    rep->n_emails++;
    snprintf(rep->emails[0], sizeof rep->emails[0], "Upper@c.example");
    cr_assert_eq(pst_pair_reply_encode(rep, big, PST_PAIR_REPLY_MAX, &len), PST_E_INVAL);
    snprintf(rep->emails[0], sizeof rep->emails[0], "a0@c.example");
    snprintf(rep->emails[rep->n_emails - 1], sizeof rep->emails[0], "a@c.example");
    cr_assert_eq(pst_pair_reply_encode(rep, big, PST_PAIR_REPLY_MAX, &len), PST_E_INVAL);
    snprintf(rep->emails[rep->n_emails - 1], sizeof rep->emails[0], "p125@c.example");
    cr_assert_eq(pst_pair_reply_encode(rep, big, PST_PAIR_REPLY_MAX, &len), PST_OK);
    rep->contacts[5].tier = 4;
    cr_assert_eq(pst_pair_reply_encode(rep, big, PST_PAIR_REPLY_MAX, &len), PST_E_INVAL);
    uint8_t hdr[4];
    size_t flen;
    pst_pair_frame_header(513, hdr);
    cr_assert_eq(pst_pair_frame_len(hdr, PST_PAIR_REQUEST_MAX, &flen), PST_E_TOOBIG);
    pst_pair_frame_header(512, hdr);
    cr_assert_eq(pst_pair_frame_len(hdr, PST_PAIR_REQUEST_MAX, &flen), PST_OK);
    cr_assert_eq(flen, 512);
    free(big);
    free(rep);
}

static int req_accept(const uint8_t *in, size_t len, void *ctx) {
    pst_pair_request r;
    return pst_pair_request_open(ctx, in, len, &r);
}

/* Every contact and address the reply can carry, at their longest, fits the
 * frame cap; one address more than the reply's cap is refused. */
Test(pairing, largest_reply_fits) {
    pst_pair_reply *rep = calloc(1, sizeof *rep);
    rep->devcert_len = rep->devlist_len = rep->keyrec_len = PST_DHT_VALUE_MAX;
    rep->n_contacts = PST_PAIR_CONTACTS_MAX;
    for (uint32_t i = 0; i < rep->n_contacts; i++) {
        pst_pair_contact *ct = &rep->contacts[i];
        ct->pk[0] = (uint8_t)i;
        ct->tier = 1;
        memset(ct->petname, 'p', PST_PAIR_PETNAME_MAX);
        ct->n_emails = rep->n_emails < PST_PAIR_EMAILS_MAX ? PST_TRUSTSYNC_EMAILS_MAX : 0;
        for (uint32_t e = 0; e < ct->n_emails; e++) {
            char *a = rep->emails[rep->n_emails++];
            memset(a, 'x', PST_PAIR_EMAIL_MAX);
            a[0] = (char)('a' + e);
            a[1] = '@';
        }
    }
    uint8_t *big = malloc(PST_PAIR_REPLY_MAX), nonce[PST_PAIR_NONCE_BYTES] = {0};
    pst_pair_keys k;
    memset(&k, 3, sizeof k);
    size_t len;
    cr_assert_eq(pst_pair_reply_seal(&k, PST_PAIR_OK, rep, nonce, big, PST_PAIR_REPLY_MAX, &len),
                 PST_OK);
    cr_log_info("largest pairing reply: %zu bytes", len);
    rep->contacts[rep->n_contacts - 1].n_emails = 1; /* the 1,025th address */
    rep->n_emails++;
    cr_assert_eq(pst_pair_reply_encode(rep, big, PST_PAIR_REPLY_MAX, &len), PST_E_INVAL);
    free(big);
    free(rep);
}

Test(pairing, request_mutations_rejected) {
    pst_pair_code c;
    pst_pair_keys k;
    kat_code(&c);
    cr_assert_eq(pst_pair_derive(&c, &k), PST_OK);
    pst_pair_request r;
    memset(&r, 0, sizeof r);
    memset(r.sign_pk, 1, 32);
    uint8_t nonce[PST_PAIR_NONCE_BYTES] = {0}, frame[PST_PAIR_REQUEST_MAX];
    size_t len;
    cr_assert_eq(pst_pair_request_seal(&k, &r, nonce, frame, sizeof frame, &len), PST_OK);
    /* the nonce is not authenticated by itself, but changing it breaks the box */
    tu_check_mutations(frame, len, req_accept, &k);
}
