/* Notifications to identities with several devices (issue 13): the size of
 * one notification for 1, 2, 4 and 8 devices next to today's single seal,
 * and what opening one costs the recipient's device (one X25519 with the
 * ephemeral key, then a MAC check per key seal until its own). */
#include "bench.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "pst_notify.h"

#define BENCH_SECONDS 1.0
#define NOW 1700000000u

static uint8_t dev_pk[PST_NOTIFY_DEVICES_MAX][32], dev_sk[PST_NOTIFY_DEVICES_MAX][32];

/* What a node sends: two endpoints; signed by the identity or a device. */
static int make_inner(pst_notify_inner *r, bool by_device) {
    uint8_t id_pk[32], id_sk[64], d_pk[32], d_sk[64], seed[32];
    memset(seed, 1, sizeof seed);
    crypto_sign_seed_keypair(id_pk, id_sk, seed);
    memset(seed, 0x11, sizeof seed);
    crypto_sign_seed_keypair(d_pk, d_sk, seed);
    memset(r, 0, sizeof *r);
    r->created = NOW;
    r->expires = NOW + 7 * 86400;
    if (by_device)
        memcpy(r->sender, id_pk, 32);
    memset(r->recipient, 2, 32);
    memset(r->msg_id, 7, 32);
    r->size = 4096;
    r->n_endpoints = 2;
    strcpy(r->endpoints[0], "mail.example.org:7401");
    strcpy(r->endpoints[1], "[2001:db8::1]:7401");
    memset(r->msg_key, 6, 32);
    memset(r->sender_box_pk, 5, 32);
    return pst_notify_inner_sign(r, by_device ? d_sk : id_sk);
}

static size_t encoded(pst_notify *o, const char *stamp) {
    uint8_t buf[PST_NOTIFY_MAX];
    size_t len = 0;
    snprintf(o->stamp, sizeof o->stamp, "%s", stamp);
    return pst_notify_encode(o, buf, sizeof buf, &len) == PST_OK ? len : 0;
}

/* Opens per second as device `who` of a notification sealed to n. */
static double open_rate(const pst_notify *o, unsigned who) {
    pst_notify_inner in;
    unsigned done = 0;
    double t0 = pst_bench_now_s(), t;
    do {
        for (int k = 0; k < 16; k++) {
            if (pst_notify_open(o, dev_pk[who], dev_sk[who], &in) != PST_OK)
                return -1;
            done++;
        }
        t = pst_bench_now_s() - t0;
    } while (t < BENCH_SECONDS);
    return done / t;
}

int pst_bench_notify(void) {
    char stamp[160];
    snprintf(stamp, sizeof stamp, "1:20:261207:%052d:pn1=%032d:%016d:%08d", 0, 0, 0, 0);
    for (unsigned i = 0; i < PST_NOTIFY_DEVICES_MAX; i++) {
        uint8_t seed[32];
        memset(seed, (int)(0x40 + i), sizeof seed);
        crypto_box_seed_keypair(dev_pk[i], dev_sk[i], seed);
    }
    uint8_t ckey[PST_NOTIFY_CONTENT_KEY_BYTES];
    memset(ckey, 0x33, sizeof ckey);
    printf("Notification size (bytes; over 562, OpenDHT sends the value in parts)\n");
    printf("%-22s %10s %10s %10s %10s\n", "recipient", "identity", "+stamp", "device", "+stamp");
    const unsigned ns[] = {0, 1, 2, 3, 4, 8};
    pst_notify o;
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        size_t sz[4];
        for (int dev = 0; dev < 2; dev++) {
            pst_notify_inner in;
            if (make_inner(&in, dev) != PST_OK)
                return 1;
            int rc = ns[k] == 0 ? pst_notify_seal(&in, dev_pk[0], &o)
                                : pst_notify_seal_devices(&in, (const uint8_t(*)[32])dev_pk, ns[k],
                                                          ckey, &o);
            if (rc != PST_OK)
                return 1;
            sz[2 * dev] = encoded(&o, "");
            sz[2 * dev + 1] = encoded(&o, stamp);
        }
        char label[32];
        if (ns[k] == 0)
            snprintf(label, sizeof label, "no device list (5)");
        else
            snprintf(label, sizeof label, "%u device%s (15)", ns[k], ns[k] == 1 ? "" : "s");
        printf("%-22s %10zu %10zu %10zu %10zu\n", label, sz[0], sz[1], sz[2], sz[3]);
    }
    printf("\nOpening one notification (one X25519, then the key seals' MACs in order)\n");
    printf("%-22s %14s %14s\n", "recipient", "first dev/s", "last dev/s");
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        pst_notify_inner in;
        if (make_inner(&in, false) != PST_OK)
            return 1;
        int rc = ns[k] == 0
                     ? pst_notify_seal(&in, dev_pk[0], &o)
                     : pst_notify_seal_devices(&in, (const uint8_t(*)[32])dev_pk, ns[k], ckey, &o);
        if (rc != PST_OK)
            return 1;
        unsigned last = ns[k] == 0 ? 0 : ns[k] - 1;
        double first = open_rate(&o, 0), lastr = open_rate(&o, last);
        if (first < 0 || lastr < 0)
            return 1;
        char label[32];
        snprintf(label, sizeof label, ns[k] == 0 ? "no device list (5)" : "%u devices (15)", ns[k]);
        printf("%-22s %14.0f %14.0f\n", label, first, lastr);
    }
    return 0;
}
