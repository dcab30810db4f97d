/* stampcraft: moves raw values in and out of a test network's DHT slots, and
 * crafts endorsements from throw-away keys, for the trust tests
 * (tests/trust/) and the trust benchmark (tools/bench/bench_trust.py).
 *
 *   stampcraft get --network ID --seed HOST:PORT --target FP --slot S
 *   stampcraft put --network ID --seed HOST:PORT --target FP --slot S [--rate N]
 *   stampcraft endorse --subject FP --count N [--tier T] [--seed-random S] [--now T]
 *
 * The tests build every hostile notification themselves (stamps are bytes
 * they can mint and re-encode); what they cannot do without a DHT node is
 * read a slot or put bytes into one, and what they cannot do without
 * Ed25519 is sign endorsements. postern-hostile generates its own classes
 * of bad values; this tool puts exactly the bytes it is given.
 *
 * Loopback seeds only, never the public network, bounded by --max-seconds
 * (and an alarm 10 s later if the loop hangs). Values are lowercase hex, one
 * per line (stdin for put, a JSON array for get). */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "pst_peerargs.h"
#include "pst_dht.h"
#include "pst_identity.h"
#include "pst_records.h"

#define EXIT_USAGE 64
#define CRAFT_VALUES_MAX 5000u
#define CRAFT_SECONDS_MAX 600u
#define CRAFT_RATE_MAX 5000u
#define CRAFT_INFLIGHT_MAX 256u
#define CRAFT_TICK_MS 10u
#define CRAFT_PING_EVERY_MS 200u
#define CRAFT_JOIN_MS_MAX 20000u
#define CRAFT_OP_TIMEOUT_MS 10000u
#define CRAFT_ENDORSE_LIFETIME (30u * 86400u)

static const char USAGE[] =
    "usage: stampcraft get --network ID --seed HOST:PORT --target FP --slot key|vouch|inbox\n"
    "                      [--max-seconds S]\n"
    "       stampcraft put --network ID --seed HOST:PORT --target FP --slot key|vouch|inbox\n"
    "                      [--rate PUTS_PER_S] [--max-seconds S]   (hex values on stdin)\n"
    "       stampcraft endorse --subject FP --count N [--tier known|trusted]\n"
    "                      [--seed-random S] [--now UNIX]\n"
    "\n"
    "get prints {\"values\":[HEX,...],\"status\":\"ok|...\"}; put prints\n"
    "{\"put\",\"put_ok\",\"put_failed\",\"refused\",\"elapsed_ms\"}; endorse prints N\n"
    "endorsements of FP (hex, one per line), each signed by a fresh key derived\n"
    "from --seed-random. Test tool: loopback seeds and private networks only.\n";

typedef enum { OP_GET, OP_PUT, OP_ENDORSE } craft_op;

typedef struct {
    craft_op op;
    uint32_t network, rate, max_seconds;
    char seed_host[PST_DHT_HOST_MAX + 1], seed_port[8];
    uint8_t target[PST_SIGN_PK_BYTES], slot[PST_SLOT_BYTES];
    /* put: the values read from stdin */
    uint8_t **vals;
    size_t *lens;
    uint32_t n_vals, next, inflight;
    uint64_t put_ok, put_failed, refused;
    /* get: values found (printed as they come, the JSON closed at the end) */
    uint64_t found;
    /* network state */
    uv_loop_t *loop;
    pst_dht dht;
    uv_timer_t tick, deadline;
    uint64_t started_ms, join_deadline_ms, last_ping_ms, op_start_ms;
    bool ping_pending, joined, op_started, finishing;
    const char *status;
    int exit_code;
} craft;

/* ---- arguments --------------------------------------------------------------- */

static int parse_seed(craft *k, const char *arg) {
    const char *colon = arg ? strrchr(arg, ':') : NULL;
    uint64_t port;
    if (colon == NULL || colon == arg || pst_peer_parse_u64(colon + 1, 65535, &port) != 0 ||
        port == 0)
        return -1;
    size_t hlen = (size_t)(colon - arg);
    if (arg[0] == '[' && hlen >= 2 && arg[hlen - 1] == ']') {
        arg++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen > PST_DHT_HOST_MAX)
        return -1;
    memcpy(k->seed_host, arg, hlen);
    k->seed_host[hlen] = '\0';
    snprintf(k->seed_port, sizeof k->seed_port, "%u", (unsigned)port);
    return pst_peer_host_is_loopback(k->seed_host) ? 0 : -1;
}

static int set_slot(craft *k, const char *name) {
    if (strcmp(name, "key") == 0)
        pst_slot_key(k->target, k->slot);
    else if (strcmp(name, "vouch") == 0)
        pst_slot_vouch(k->target, k->slot);
    else if (strcmp(name, "inbox") == 0)
        pst_slot_inbox(k->target, k->slot);
    else
        return -1;
    return 0;
}

/* Reads hex values, one per line (blank lines skipped), into k->vals. */
static int read_values(craft *k) {
    size_t cap = 2 * PST_DHT_VALUE_MAX + 4;
    char *line = malloc(cap);
    k->vals = calloc(CRAFT_VALUES_MAX, sizeof *k->vals);
    k->lens = calloc(CRAFT_VALUES_MAX, sizeof *k->lens);
    if (line == NULL || k->vals == NULL || k->lens == NULL) {
        free(line);
        return pst_peer_usage_error("stampcraft", "out of memory%s", "");
    }
    int rc = 0;
    while (rc == 0 && fgets(line, (int)cap, stdin) != NULL) {
        size_t n = strcspn(line, "\r\n");
        if (line[n] == '\0' && !feof(stdin)) {
            rc = pst_peer_usage_error("stampcraft", "a value on stdin is longer than %s bytes",
                                      "1200");
            break;
        }
        line[n] = '\0';
        if (n == 0)
            continue;
        uint8_t *v = malloc(PST_DHT_VALUE_MAX);
        size_t len = 0;
        if (k->n_vals >= CRAFT_VALUES_MAX)
            rc = pst_peer_usage_error("stampcraft", "more than %s values on stdin", "5000");
        else if (v == NULL ||
                 sodium_hex2bin(v, PST_DHT_VALUE_MAX, line, n, NULL, &len, NULL) != 0 || len == 0)
            rc = pst_peer_usage_error("stampcraft", "'%.40s' is not a hex value of 1..1200 bytes",
                                      line);
        if (rc != 0) {
            free(v);
            break;
        }
        k->vals[k->n_vals] = v;
        k->lens[k->n_vals++] = len;
    }
    free(line);
    return rc;
}

static int parse_args(craft *k, int argc, char **argv, const char **seed_random, uint64_t *count,
                      uint64_t *tier, uint64_t *now) {
    static const struct option opts[] = {
        {"network", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},
        {"target", required_argument, 0, 't'},
        {"subject", required_argument, 0, 't'},
        {"slot", required_argument, 0, 'S'},
        {"rate", required_argument, 0, 'R'},
        {"max-seconds", required_argument, 0, 'm'},
        {"count", required_argument, 0, 'c'},
        {"tier", required_argument, 0, 'T'},
        {"seed-random", required_argument, 0, 'r'},
        {"now", required_argument, 0, 'N'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        exit(argc < 2 ? EXIT_USAGE : 0);
    }
    if (strcmp(argv[1], "get") == 0)
        k->op = OP_GET;
    else if (strcmp(argv[1], "put") == 0)
        k->op = OP_PUT;
    else if (strcmp(argv[1], "endorse") == 0)
        k->op = OP_ENDORSE;
    else
        return pst_peer_usage_error("stampcraft", "unknown command '%s' (get, put or endorse)",
                                    argv[1]);
    const char *target = NULL, *seed = NULL, *slot = NULL;
    uint64_t v;
    int c, idx;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        switch (c) {
        case 'h':
            fputs(USAGE, stdout);
            exit(0);
        case 'n':
            if (pst_peer_parse_u64(optarg, UINT32_MAX, &v) != 0 || v == 0 ||
                v == PST_DHT_NETWORK_PUBLIC)
                return pst_peer_usage_error(
                    "stampcraft", "--network must be a private non-zero 32-bit id, not '%s'",
                    optarg);
            k->network = (uint32_t)v;
            break;
        case 's':
            seed = optarg;
            break;
        case 't':
            target = optarg;
            break;
        case 'S':
            slot = optarg;
            break;
        case 'R':
            if (pst_peer_parse_u64(optarg, CRAFT_RATE_MAX, &v) != 0 || v == 0)
                return pst_peer_usage_error(
                    "stampcraft", "--rate must be 1..5000 puts per second, not '%s'", optarg);
            k->rate = (uint32_t)v;
            break;
        case 'm':
            if (pst_peer_parse_u64(optarg, CRAFT_SECONDS_MAX, &v) != 0 || v == 0)
                return pst_peer_usage_error("stampcraft", "--max-seconds must be 1..600, not '%s'",
                                            optarg);
            k->max_seconds = (uint32_t)v;
            break;
        case 'c':
            if (pst_peer_parse_u64(optarg, CRAFT_VALUES_MAX, &v) != 0 || v == 0)
                return pst_peer_usage_error("stampcraft", "--count must be 1..5000, not '%s'",
                                            optarg);
            *count = v;
            break;
        case 'T':
            if (strcmp(optarg, "known") != 0 && strcmp(optarg, "trusted") != 0)
                return pst_peer_usage_error("stampcraft", "--tier is known or trusted, not '%s'",
                                            optarg);
            *tier = strcmp(optarg, "known") == 0 ? PST_TIER_KNOWN : PST_TIER_TRUSTED;
            break;
        case 'r':
            *seed_random = optarg;
            break;
        case 'N':
            if (pst_peer_parse_u64(optarg, UINT32_MAX, &v) != 0 || v < 86400u)
                return pst_peer_usage_error("stampcraft", "--now must be unix seconds, not '%s'",
                                            optarg);
            *now = v;
            break;
        default:
            fputs(USAGE, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        return pst_peer_usage_error("stampcraft", "unexpected argument '%s'", argv[optind]);
    if (target == NULL || pst_fingerprint_parse(target, k->target) != PST_OK)
        return pst_peer_usage_error(
            "stampcraft", "--target/--subject must be a fingerprint (52 characters)%s", "");
    if (k->op == OP_ENDORSE)
        return *count > 0 ? 0 : pst_peer_usage_error("stampcraft", "--count is required%s", "");
    if (k->network == 0)
        return pst_peer_usage_error("stampcraft", "--network is required%s", "");
    if (parse_seed(k, seed) != 0)
        return pst_peer_usage_error(
            "stampcraft", "--seed must be a loopback HOST:PORT (127.0.0.0/8 or ::1), not '%s'",
            seed ? seed : "(none)");
    if (slot == NULL || set_slot(k, slot) != 0)
        return pst_peer_usage_error("stampcraft", "--slot is key, vouch or inbox%s", "");
    return k->op == OP_PUT ? read_values(k) : 0;
}

/* ---- endorse: no network ------------------------------------------------------ */

static int endorse(const craft *k, const char *seed_random, uint64_t count, uint64_t tier,
                   uint64_t now) {
    uint8_t master[32], seed[32], pk[PST_SIGN_PK_BYTES], buf[PST_DHT_VALUE_MAX];
    char hex[2 * PST_DHT_VALUE_MAX + 1];
    crypto_generichash(master, sizeof master, (const uint8_t *)seed_random, strlen(seed_random),
                       (const uint8_t *)"stampcraft-endorse", 18);
    unsigned char *sk = sodium_malloc(PST_SIGN_SK_BYTES);
    if (sk == NULL)
        return 1;
    int rc = PST_OK;
    for (uint64_t i = 0; i < count && rc == PST_OK; i++) {
        uint8_t idx[8];
        for (int b = 0; b < 8; b++)
            idx[b] = (uint8_t)(i >> (8 * b));
        crypto_generichash(seed, sizeof seed, idx, sizeof idx, master, sizeof master);
        crypto_sign_seed_keypair(pk, sk, seed);
        pst_endorsement e;
        memset(&e, 0, sizeof e);
        e.created = now - 60;
        e.expires = now + CRAFT_ENDORSE_LIFETIME;
        memcpy(e.subject, k->target, sizeof e.subject);
        e.tier = tier;
        size_t len = 0;
        rc = pst_endorsement_sign(&e, sk);
        if (rc == PST_OK)
            rc = pst_endorsement_encode(&e, buf, sizeof buf, &len);
        if (rc == PST_OK)
            puts(sodium_bin2hex(hex, sizeof hex, buf, len));
    }
    sodium_free(sk);
    sodium_memzero(seed, sizeof seed);
    if (rc != PST_OK)
        fprintf(stderr, "stampcraft: cannot make an endorsement: %s\n", pst_strerror(rc));
    return rc == PST_OK ? 0 : 1;
}

/* ---- network ------------------------------------------------------------------ */

/* elapsed_ms counts from the start, op_ms from the first get or put (after
 * the seed answered). */
static void print_result(craft *k) {
    uint64_t now = uv_now(k->loop);
    uint64_t elapsed = now - k->started_ms, op = k->op_started ? now - k->op_start_ms : 0;
    if (k->op == OP_GET)
        printf("%s],\"count\":%" PRIu64, k->found ? "" : "{\"values\":[", k->found);
    else
        printf("{\"put\":%" PRIu32 ",\"put_ok\":%" PRIu64 ",\"put_failed\":%" PRIu64
               ",\"refused\":%" PRIu64,
               k->next, k->put_ok, k->put_failed, k->refused);
    printf(",\"status\":\"%s\",\"elapsed_ms\":%" PRIu64 ",\"op_ms\":%" PRIu64 "}\n", k->status,
           elapsed, op);
    fflush(stdout);
}

static void on_closed(pst_dht *d) {
    craft *k = d->data;
    print_result(k);
    uv_close((uv_handle_t *)&k->tick, NULL);
    uv_close((uv_handle_t *)&k->deadline, NULL);
}

static void finish(craft *k, int exit_code, const char *status) {
    if (k->finishing)
        return;
    k->finishing = true;
    k->exit_code = exit_code;
    k->status = status;
    uv_timer_stop(&k->tick);
    uv_timer_stop(&k->deadline);
    pst_dht_close(&k->dht, on_closed);
}

static void on_get_value(void *user, const uint8_t *val, size_t len) {
    craft *k = user;
    char hex[2 * PST_DHT_VALUE_MAX + 1];
    printf("%s\"%s\"", k->found++ ? "," : "{\"values\":[",
           sodium_bin2hex(hex, sizeof hex, val, len));
}

static void on_get_done(void *user, int status) {
    craft *k = user;
    finish(k, status == PST_OK ? 0 : 1, status == PST_OK ? "ok" : pst_err_name(status));
}

static void on_put(void *user, int status) {
    craft *k = user;
    if (status == PST_OK)
        k->put_ok++;
    else
        k->put_failed++;
    k->inflight--;
    if (k->next == k->n_vals && k->inflight == 0)
        finish(k, k->put_failed ? 1 : 0, k->put_failed ? "some puts failed" : "ok");
}

/* At most `rate` puts per second since the first: loopback peers share one
 * source address and OpenDHT drops requests beyond ~1,024/s per address. */
static void put_some(craft *k) {
    uint64_t now = uv_now(k->loop);
    uint64_t allowed = 1 + (uint64_t)k->rate * (now - k->op_start_ms) / 1000u;
    while (k->next < k->n_vals && k->next < allowed && k->inflight < CRAFT_INFLIGHT_MAX) {
        uint32_t i = k->next++;
        if (pst_dht_put(&k->dht, k->slot, k->vals[i], k->lens[i], false, CRAFT_OP_TIMEOUT_MS,
                        on_put, k) != PST_OK)
            k->refused++;
        else
            k->inflight++;
    }
    if (k->next == k->n_vals && k->inflight == 0)
        finish(k, k->refused ? 1 : 0, k->refused ? "some puts were refused" : "ok");
}

static void on_ping(void *user, int status) {
    craft *k = user;
    k->ping_pending = false;
    if (status == PST_OK)
        k->joined = true;
}

static void on_tick(uv_timer_t *t) {
    craft *k = t->data;
    uint64_t now = uv_now(k->loop);
    if (k->finishing)
        return;
    if (!k->joined) {
        if (now >= k->join_deadline_ms) {
            finish(k, 1, "the seed did not answer a ping");
        } else if (!k->ping_pending && now >= k->last_ping_ms + CRAFT_PING_EVERY_MS) {
            k->last_ping_ms = now;
            k->ping_pending =
                pst_dht_ping(&k->dht, k->seed_host, k->seed_port, on_ping, k) == PST_OK;
        }
        return;
    }
    if (!k->op_started) {
        k->op_started = true;
        k->op_start_ms = now;
        if (k->op == OP_GET && pst_dht_get(&k->dht, k->slot, CRAFT_OP_TIMEOUT_MS, on_get_value,
                                           on_get_done, k) != PST_OK)
            finish(k, 1, "the get was refused");
    }
    if (k->op == OP_PUT)
        put_some(k);
}

static void on_deadline(uv_timer_t *t) { finish(t->data, 1, "--max-seconds reached"); }

static void on_dht_log(void *user, int level, const char *msg) {
    (void)user;
    if (level <= PST_DHT_LOG_ERROR)
        fprintf(stderr, "stampcraft: dht: %s\n", msg);
}

static int run_network(craft *k) {
    k->loop = uv_default_loop();
    uv_update_time(k->loop);
    k->started_ms = uv_now(k->loop);
    uint64_t join_ms = (uint64_t)k->max_seconds * 1000u / 2;
    k->join_deadline_ms =
        k->started_ms + (join_ms < CRAFT_JOIN_MS_MAX ? join_ms : CRAFT_JOIN_MS_MAX);
    pst_dht_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.network_id = k->network;
    cfg.peer_discovery = false;
    cfg.log = on_dht_log;
    int rc = pst_dht_init(k->loop, &k->dht, &cfg);
    if (rc != PST_OK) {
        fprintf(stderr, "stampcraft: cannot start a DHT node: %s\n", pst_strerror(rc));
        return 1;
    }
    k->dht.data = k;
    (void)pst_dht_bootstrap(&k->dht, k->seed_host, k->seed_port);
    uv_timer_init(k->loop, &k->tick);
    uv_timer_init(k->loop, &k->deadline);
    k->tick.data = k;
    k->deadline.data = k;
    uv_timer_start(&k->tick, on_tick, 0, CRAFT_TICK_MS);
    uv_timer_start(&k->deadline, on_deadline, (uint64_t)k->max_seconds * 1000u, 0);
    uv_run(k->loop, UV_RUN_DEFAULT);
    uv_loop_close(k->loop);
    return k->exit_code;
}

int main(int argc, char **argv) {
    static craft k;
    if (sodium_init() < 0) {
        fprintf(stderr, "stampcraft: libsodium failed to initialise\n");
        return 1;
    }
    k.rate = 250;
    k.max_seconds = 30;
    const char *seed_random = "1";
    uint64_t count = 0, tier = PST_TIER_KNOWN, now = 0;
    int rc = parse_args(&k, argc, argv, &seed_random, &count, &tier, &now);
    if (rc == 0 && k.op == OP_ENDORSE) {
        rc = endorse(&k, seed_random, count, tier, now ? now : (uint64_t)time(NULL));
    } else if (rc == 0) {
        alarm(k.max_seconds + 10); /* a hard stop even if the loop hangs */
        rc = run_network(&k);
    }
    for (uint32_t i = 0; i < k.n_vals; i++)
        free(k.vals[i]);
    free(k.vals);
    free(k.lens);
    return rc;
}
