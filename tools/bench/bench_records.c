/* KeyRecord throughput: what strict decoding and canonical re-encoding cost on
 * top of the Ed25519 verification that dominates them. */
#include "bench_records.h"

#include "bench.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pst_error.h"
#include "pst_records.h"

#define BENCH_SECONDS 1.5
#define BENCH_BATCH 64
#define BENCH_CREATED 1700000000u

double pst_bench_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    const pst_identity *id;
    pst_keyrec rec;
    uint8_t enc[PST_DHT_VALUE_MAX];
    size_t enc_len;
    uint8_t msg[PST_SIG_CONTEXT_LEN + PST_DHT_VALUE_MAX];
    size_t msg_len;
    uint8_t sig[PST_SIG_BYTES];
} bench_ctx;

typedef int (*bench_fn)(bench_ctx *c);

static int run_raw_verify(bench_ctx *c) {
    return crypto_sign_verify_detached(c->sig, c->msg, c->msg_len, c->id->sign_pk) == 0
               ? PST_OK
               : PST_E_SIGNATURE;
}

static int run_decode_verify(bench_ctx *c) {
    pst_keyrec r;
    int rc = pst_keyrec_decode(c->enc, c->enc_len, &r);
    return rc != PST_OK ? rc : pst_keyrec_verify(&r, BENCH_CREATED);
}

static int run_sign_encode(bench_ctx *c) {
    size_t len;
    c->rec.seq++; /* a different message each time, as in real republishing */
    int rc = pst_keyrec_sign(&c->rec, c->id->sign_sk);
    return rc != PST_OK ? rc : pst_keyrec_encode(&c->rec, c->enc, sizeof c->enc, &len);
}

/* Operations per second, or a negative error. */
static double measure(bench_fn fn, bench_ctx *c, int *err) {
    double start = pst_bench_now_s(), elapsed;
    unsigned long ops = 0;
    *err = PST_OK;
    do {
        for (int i = 0; i < BENCH_BATCH; i++) {
            int rc = fn(c);
            if (rc != PST_OK) {
                *err = rc;
                return 0;
            }
        }
        ops += BENCH_BATCH;
        elapsed = pst_bench_now_s() - start;
    } while (elapsed < BENCH_SECONDS);
    return (double)ops / elapsed;
}

static int setup(bench_ctx *c, pst_identity *id) {
    pst_keyrec *r = &c->rec;
    memset(c, 0, sizeof *c);
    c->id = id;
    r->created = BENCH_CREATED;
    r->expires = BENCH_CREATED + PST_KEYREC_LIFETIME_MAX;
    r->seq = 1;
    memcpy(r->enc_pk, id->box_pk, PST_BOX_PK_BYTES);
    r->has_revocation_pk = true;
    memcpy(r->revocation_pk, id->rev_pk, PST_SIGN_PK_BYTES);
    r->n_addresses = 2;
    strcpy(r->addresses[0], "alice@example.org");
    strcpy(r->addresses[1], "alice@postern.example");
    r->n_endpoints = 2;
    strcpy(r->endpoints[0], "node.example.org:7411");
    strcpy(r->endpoints[1], "[2001:db8::1]:7411");
    r->pow_bits = 20;
    int rc = pst_keyrec_sign(r, id->sign_sk);
    if (rc == PST_OK)
        rc = pst_keyrec_encode(r, c->enc, sizeof c->enc, &c->enc_len);
    if (rc != PST_OK)
        return rc;
    /* the raw baseline signs a message as long as context + signed body */
    c->msg_len = PST_SIG_CONTEXT_LEN + c->enc_len - (PST_SIG_BYTES + 2);
    randombytes_buf(c->msg, c->msg_len);
    crypto_sign_detached(c->sig, NULL, c->msg, c->msg_len, id->sign_sk);
    return PST_OK;
}

int pst_bench_records(void) {
    static bench_ctx c; /* large; not on the stack */
    pst_identity *id;
    uint8_t seeds[3][PST_SEED_BYTES];
    randombytes_buf(seeds, sizeof seeds);
    int rc = pst_identity_from_seeds(seeds[0], seeds[1], seeds[2], &id);
    if (rc != PST_OK)
        return rc;
    rc = setup(&c, id);
    if (rc != PST_OK) {
        pst_identity_free(id);
        return rc;
    }
    int e1, e2, e3;
    double raw = measure(run_raw_verify, &c, &e1);
    double ours = measure(run_decode_verify, &c, &e2);
    double sign = measure(run_sign_encode, &c, &e3);
    pst_identity_free(id);
    if (e1 != PST_OK || e2 != PST_OK || e3 != PST_OK)
        return e1 != PST_OK ? e1 : e2 != PST_OK ? e2 : e3;
    double ratio = ours / raw;
    printf("records: KeyRecord of %zu bytes (signed body %zu bytes)\n", c.enc_len,
           c.msg_len - PST_SIG_CONTEXT_LEN);
    printf("  %-36s %12s %8s\n", "measurement", "ops/s", "vs raw");
    printf("  %-36s %12.0f %7.2fx\n", "crypto_sign_verify_detached (raw)", raw, 1.0);
    printf("  %-36s %12.0f %7.2fx  (target >= 0.90x: %s)\n", "KeyRecord decode + verify", ours,
           ratio, ratio >= 0.9 ? "met" : "MISSED");
    printf("  %-36s %12.0f %7.2fx\n", "KeyRecord sign + encode", sign, sign / raw);
    return PST_OK;
}
