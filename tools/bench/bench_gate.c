/* bench_gate: what the inbox gate pays, per core, to refuse a notification.
 *
 * In process, over proto/ only, with the calls node/mail/inbox.c makes in
 * on_inbox_value() and accept_notification(), in the same order:
 *
 *   bad stamp      keyed BLAKE2b of the value (the seen-set key),
 *                  pst_notify_decode, pst_notify_stamp_ext (BLAKE2b of the
 *                  sealed bytes), pst_hashcash_verify with our resource and
 *                  that ext: a stamp whose format, bits claim, resource, ext
 *                  and date are right but whose SHA-1 falls short, i.e. the
 *                  dearest stamp to refuse (one SHA-1 more than the others).
 *   no stamp       seen-set key, pst_notify_decode, pst_notify_open (one
 *                  X25519 + XSalsa20-Poly1305 + the strict inner decode),
 *                  pst_notify_inner_verify (one Ed25519), recipient check.
 *                  The node then asks its store (message id seen? sender
 *                  revoked? tier? vouch cache) before refusing: not counted.
 *   good stamp     the bad-stamp path with a stamp that verifies, then the
 *                  no-stamp path: what an accepted stranger costs up to the
 *                  store.
 *
 * Each path runs over GATE_VALUES distinct notifications (fresh seals,
 * fresh stamps) for GATE_SECONDS on one thread, then on every online core at
 * once. --emit prints notifications for an end-to-end run against a node
 * (tools/bench/bench_trust.py puts them with stampcraft). */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pst_mint.h"
#include "pst_identity.h"
#include "pst_notify.h"

#define GATE_VALUES 256u
#define GATE_SECONDS 1.0
#define GATE_THREADS_MAX 64u
#define GATE_EMIT_MAX 5000u
#define GATE_BITS_DEFAULT 20u
#define SEEN_KEY 16u

typedef struct {
    uint8_t bytes[PST_NOTIFY_MAX];
    size_t len;
} value;

typedef struct {
    uint8_t box_pk[PST_BOX_PK_BYTES], box_sk[PST_BOX_SK_BYTES];
    uint8_t sign_pk[PST_SIGN_PK_BYTES];
    char resource[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE];
    uint8_t seen_key[crypto_generichash_KEYBYTES];
    unsigned bits;
} recipient;

typedef enum { PATH_BAD_STAMP, PATH_NO_STAMP, PATH_GOOD_STAMP, PATH_COUNT } gate_path;

static const char *const path_name[PATH_COUNT] = {"bad stamp", "no stamp", "good stamp"};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "bench_gate: %s: %s\n", what, pst_strerror(rc));
    exit(1);
}

/* ---- building notifications ---------------------------------------------------- */

/* A notification from sender_sk to r, sealed afresh (stamp ""). */
static void seal_one(const recipient *r, const uint8_t *sender_sk, const uint8_t *sender_box_pk,
                     uint64_t now, pst_notify *out) {
    pst_notify_inner in;
    memset(&in, 0, sizeof in);
    in.created = now;
    in.expires = now + 7u * 86400u;
    memcpy(in.recipient, r->sign_pk, sizeof in.recipient);
    randombytes_buf(in.msg_id, sizeof in.msg_id);
    in.size = 4096;
    in.n_endpoints = 1;
    snprintf(in.endpoints[0], sizeof in.endpoints[0], "127.0.0.1:40000");
    randombytes_buf(in.msg_key, sizeof in.msg_key);
    memcpy(in.sender_box_pk, sender_box_pk, sizeof in.sender_box_pk);
    int rc = pst_notify_inner_sign(&in, sender_sk);
    if (rc == PST_OK)
        rc = pst_notify_seal(&in, r->box_pk, out);
    sodium_memzero(&in, sizeof in);
    if (rc != PST_OK)
        die("cannot seal a notification", rc);
}

/* Sets out->stamp: a valid stamp of r->bits over out->sealed, or (bad) one
 * claiming r->bits whose SHA-1 has fewer leading zero bits. */
static void stamp_one(const recipient *r, pst_notify *out, uint64_t now, bool bad) {
    char ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    pst_notify_stamp_ext(out->sealed, out->sealed_len, ext);
    if (!bad) {
        pst_hashcash_mint_params p;
        memset(&p, 0, sizeof p);
        p.bits = r->bits;
        p.resource = r->resource;
        p.ext = ext;
        p.now = now;
        randombytes_buf(p.rand, sizeof p.rand);
        int rc = pst_hashcash_mint(&p, out->stamp, sizeof out->stamp);
        if (rc != PST_OK)
            die("cannot mint", rc);
        return;
    }
    char date[PST_HASHCASH_DATE_MAX + 1];
    (void)pst_hashcash_format_date(now, date);
    uint8_t rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    char rand64[sodium_base64_ENCODED_LEN(sizeof rnd, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(rand64, sizeof rand64, rnd, sizeof rnd, sodium_base64_VARIANT_ORIGINAL);
    for (unsigned c = 0;; c++) {
        int n = snprintf(out->stamp, sizeof out->stamp, "1:%u:%s:%s:%s:%s:%u", r->bits, date,
                         r->resource, ext, rand64, c);
        if (pst_hashcash_count_bits(out->stamp, (size_t)n) < r->bits)
            return;
    }
}

static void encode(const pst_notify *o, value *v) {
    int rc = pst_notify_encode(o, v->bytes, sizeof v->bytes, &v->len);
    if (rc != PST_OK)
        die("cannot encode a notification", rc);
}

/* GATE_VALUES notifications for path p, each from a fresh sender. */
static void make_values(const recipient *r, gate_path p, uint64_t now, value *vals) {
    for (unsigned i = 0; i < GATE_VALUES; i++) {
        uint8_t spk[PST_SIGN_PK_BYTES], ssk[PST_SIGN_SK_BYTES];
        uint8_t bpk[PST_BOX_PK_BYTES], bsk[PST_BOX_SK_BYTES];
        crypto_sign_keypair(spk, ssk);
        crypto_box_keypair(bpk, bsk);
        pst_notify o;
        seal_one(r, ssk, bpk, now, &o);
        if (p != PATH_NO_STAMP)
            stamp_one(r, &o, now, p == PATH_BAD_STAMP);
        encode(&o, &vals[i]);
        sodium_memzero(ssk, sizeof ssk);
    }
}

/* ---- the gate, as node/mail/inbox.c runs it ------------------------------------------- */

/* Returns the gate's verdict: a PST_E_STAMP_* for a refused stamp, PST_OK
 * when the value would go on to the store checks. */
static int gate(const recipient *r, const value *v, uint64_t now) {
    uint8_t seen[SEEN_KEY];
    crypto_generichash(seen, sizeof seen, v->bytes, v->len, r->seen_key, sizeof r->seen_key);
    pst_notify outer;
    int rc = pst_notify_decode(v->bytes, v->len, &outer);
    if (rc != PST_OK)
        return rc;
    if (outer.stamp[0] != '\0') {
        char ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
        pst_notify_stamp_ext(outer.sealed, outer.sealed_len, ext);
        pst_hashcash_policy pol;
        pst_hashcash_policy_init(&pol, 0, r->resource);
        pol.ext = ext;
        pst_hashcash_result hr;
        if ((rc = pst_hashcash_verify(outer.stamp, strlen(outer.stamp), &pol, now, &hr)) != PST_OK)
            return rc;
    }
    pst_notify_inner in;
    rc = pst_notify_open(&outer, r->box_pk, r->box_sk, &in);
    if (rc == PST_OK)
        rc = pst_notify_inner_verify(&in, now);
    if (rc == PST_OK && memcmp(in.recipient, r->sign_pk, sizeof in.recipient) != 0)
        rc = PST_E_MISMATCH;
    sodium_memzero(&in, sizeof in);
    return rc;
}

typedef struct {
    const recipient *r;
    const value *vals;
    uint64_t now;
    int want;
    uint64_t done;
    double seconds;
    int bad_verdicts;
} run_arg;

static void *run(void *user) {
    run_arg *a = user;
    double t0 = now_s();
    uint64_t n = 0;
    do {
        for (unsigned i = 0; i < GATE_VALUES; i++)
            if (gate(a->r, &a->vals[i], a->now) != a->want)
                a->bad_verdicts++;
        n += GATE_VALUES;
    } while (now_s() - t0 < GATE_SECONDS);
    a->seconds = now_s() - t0;
    a->done = n;
    return NULL;
}

/* Values per second over `threads` threads at once (the sum of theirs). */
static double measure(const recipient *r, const value *vals, uint64_t now, int want,
                      unsigned threads) {
    run_arg args[GATE_THREADS_MAX];
    pthread_t th[GATE_THREADS_MAX];
    double rate = 0;
    for (unsigned t = 0; t < threads; t++) {
        args[t] = (run_arg){.r = r, .vals = vals, .now = now, .want = want};
        if (t > 0 && pthread_create(&th[t], NULL, run, &args[t]) != 0)
            die("cannot start a thread", PST_E_NOMEM);
    }
    run(&args[0]);
    for (unsigned t = 0; t < threads; t++) {
        if (t > 0)
            pthread_join(th[t], NULL);
        if (args[t].bad_verdicts > 0)
            die("the gate gave an unexpected verdict", PST_E_INVAL);
        rate += (double)args[t].done / args[t].seconds;
    }
    return rate;
}

/* ---- main ------------------------------------------------------------------------- */

static void make_recipient(recipient *r, unsigned bits) {
    uint8_t sk[PST_SIGN_SK_BYTES];
    crypto_sign_keypair(r->sign_pk, sk);
    sodium_memzero(sk, sizeof sk);
    crypto_box_keypair(r->box_pk, r->box_sk);
    pst_notify_stamp_resource(r->sign_pk, r->resource);
    randombytes_buf(r->seen_key, sizeof r->seen_key);
    r->bits = bits;
}

/* --emit bad-stamp|no-stamp|strangers N FINGERPRINT BOX_PK_HEX [BITS]:
 * notifications to that recipient, one hex value per line. bad-stamp and
 * no-stamp come from one fresh sender (the node then answers the sender's
 * vouch question once, from its cache); strangers are stampless, each from
 * its own fresh sender (one vouch lookup each). */
static int emit(int argc, char **argv) {
    recipient r;
    memset(&r, 0, sizeof r);
    unsigned long n = argc >= 4 ? strtoul(argv[3], NULL, 10) : 0;
    bool bad = argc >= 3 && strcmp(argv[2], "bad-stamp") == 0;
    bool many = argc >= 3 && strcmp(argv[2], "strangers") == 0;
    if (argc < 6 || (!bad && !many && strcmp(argv[2], "no-stamp") != 0) || n == 0 ||
        n > GATE_EMIT_MAX || pst_fingerprint_parse(argv[4], r.sign_pk) != PST_OK ||
        sodium_hex2bin(r.box_pk, sizeof r.box_pk, argv[5], strlen(argv[5]), NULL, NULL, NULL) !=
            0) {
        fprintf(stderr, "usage: bench_gate --emit bad-stamp|no-stamp|strangers N FINGERPRINT "
                        "BOX_PK_HEX [BITS]\n");
        return 64;
    }
    r.bits = argc >= 7 ? (unsigned)strtoul(argv[6], NULL, 10) : GATE_BITS_DEFAULT;
    pst_notify_stamp_resource(r.sign_pk, r.resource);
    uint8_t spk[PST_SIGN_PK_BYTES], ssk[PST_SIGN_SK_BYTES], bpk[PST_BOX_PK_BYTES],
        bsk[PST_BOX_SK_BYTES];
    crypto_sign_keypair(spk, ssk);
    crypto_box_keypair(bpk, bsk);
    uint64_t now = (uint64_t)time(NULL);
    char hex[2 * PST_NOTIFY_MAX + 1];
    for (unsigned long i = 0; i < n; i++) {
        pst_notify o;
        value v;
        if (many && i > 0) {
            crypto_sign_keypair(spk, ssk);
            crypto_box_keypair(bpk, bsk);
        }
        seal_one(&r, ssk, bpk, now, &o);
        if (bad)
            stamp_one(&r, &o, now, true);
        encode(&o, &v);
        puts(sodium_bin2hex(hex, sizeof hex, v.bytes, v.len));
    }
    sodium_memzero(ssk, sizeof ssk);
    return 0;
}

int main(int argc, char **argv) {
    if (sodium_init() < 0)
        die("libsodium", PST_E_CRYPTO);
    if (argc >= 2 && strcmp(argv[1], "--emit") == 0)
        return emit(argc, argv);
    bool json = argc >= 2 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !json)) {
        fprintf(stderr, "usage: bench_gate [--json]\n       bench_gate --emit ...\n");
        return 64;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned cores = online < 1                  ? 1u
                     : online > GATE_THREADS_MAX ? GATE_THREADS_MAX
                                                 : (unsigned)online;
    recipient r;
    make_recipient(&r, GATE_BITS_DEFAULT);
    uint64_t now = (uint64_t)time(NULL);
    static value vals[GATE_VALUES];
    static const int want[PATH_COUNT] = {PST_E_STAMP_BITS, PST_OK, PST_OK};
    double one[PATH_COUNT], all[PATH_COUNT];
    for (int p = 0; p < PATH_COUNT; p++) {
        make_values(&r, (gate_path)p, now, vals);
        one[p] = measure(&r, vals, now, want[p], 1);
        all[p] = measure(&r, vals, now, want[p], cores);
    }
    if (json) {
        printf("{\"cores\":%u,\"bits\":%u,\"values\":%u,\"seconds\":%.1f,\"paths\":{", cores,
               r.bits, GATE_VALUES, GATE_SECONDS);
        for (int p = 0; p < PATH_COUNT; p++)
            printf("%s\"%s\":{\"per_core\":%.0f,\"all_cores\":%.0f,\"us\":%.2f}", p ? "," : "",
                   path_name[p], one[p], all[p], 1e6 / one[p]);
        printf("}}\n");
        return 0;
    }
    printf("| path | µs per notification (1 core) | per second, 1 core | per second, %u cores |\n",
           cores);
    printf("| --- | ---: | ---: | ---: |\n");
    for (int p = 0; p < PATH_COUNT; p++)
        printf("| %s | %.2f | %.0f | %.0f |\n", path_name[p], 1e6 / one[p], one[p], all[p]);
    return 0;
}
