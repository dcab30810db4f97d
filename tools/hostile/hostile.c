/* postern-hostile: a hostile DHT peer for integration tests.
 *
 * It joins a private test network through one loopback seed and puts bad
 * values (tools/hostile/hostile_gen.c, hostile_inbox.c) into a target's key,
 * address, vouch and inbox slots, then reports what it put as JSON. The node
 * under test must reject every value, count it, and keep serving. Two more
 * modes: --fetch attacks a node's fetch port as a client (hostile_fetch.c),
 * --fake-sender notifies the target and then serves it bad bodies
 * (hostile_sender.c). Loopback only, bounded in time, deterministic given
 * --seed-random and --now (except the sealing in --fake-sender and the
 * replayed values). docs/cli/hostile.md. */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "hostile.h"
#include "pst_config.h"
#include "pst_dht.h"
#include "pst_hashcash.h"
#include "pst_home.h"
#include "pst_record.h"

#define EXIT_USAGE 64
#define HOSTILE_COUNT_MAX 5000u
#define HOSTILE_SECONDS_MAX 600u
#define HOSTILE_RATE_MAX 5000u
#define HOSTILE_INFLIGHT_MAX 256u
#define HOSTILE_TICK_MS 10u
#define HOSTILE_PING_EVERY_MS 200u
#define HOSTILE_JOIN_MS_MAX 20000u
#define HOSTILE_PUT_TIMEOUT_MS 10000u
#define HOSTILE_SEQ_GET_MS 5000u
#define HOSTILE_CONNS_MAX 1000u
#define HOSTILE_RENOTIFY_S 5u

static const char USAGE[] =
    "usage: postern-hostile --network ID --seed HOST:PORT --target FINGERPRINT\n"
    "                       [--address ADDR] [--identity FILE] [--count N]\n"
    "                       [--classes LIST] [--seed-random S] [--now UNIX]\n"
    "                       [--current-seq N] [--rate PUTS_PER_S] [--port UDP_PORT]\n"
    "                       [--max-seconds S] [--json] [--dry-run] [--allow-remote]\n"
    "                       [--msg-id HEX]\n"
    "       postern-hostile --fake-sender MODES --network ID --seed HOST:PORT\n"
    "                       --target FINGERPRINT [--stamp-bits N] [--renotify S] ...\n"
    "       postern-hostile --fetch HOST:PORT --attacks LIST [--source IP] [--count N]\n"
    "                       [--conns N] [--msg-id HEX] [--target FINGERPRINT] ...\n"
    "\n"
    "A hostile DHT peer for tests. Joins the network through the seed, then puts\n"
    "N bad values of each class into the target's key, address (with --address)\n"
    "and vouch slots, waits for the puts and prints a summary (--json: one JSON\n"
    "object). --identity is the target's identity.key: with it the tool forges\n"
    "authentic but stale, expired or (class 'revoked') new records of the target.\n"
    "\n"
    "Classes: random truncated oversize badsig mismatch wrongtype stale expired\n"
    "future noncanonical revoked. Default: all but 'revoked' (whose values are\n"
    "valid records, bad only once the target is revoked). 'all' selects every one\n"
    "of these. Inbox classes ('inbox' selects them all): inbox-random\n"
    "inbox-oversize inbox-forged inbox-wrongseal inbox-wrongrcpt inbox-replay\n"
    "inbox-expired inbox-stamp; they need the target's key record in the DHT.\n"
    "--msg-id names a message the target already has (inbox-replay forges\n"
    "other senders' claims of it; --fetch asks for it as a non-recipient).\n"
    "\n"
    "--fake-sender: modes wrong-body wrong-size bad-signer bad-author truncated\n"
    "good (or 'all'): one real message each, notified to the target and served\n"
    "wrongly; 'good' is served right and its notification then replayed.\n"
    "--fetch: attacks not-recipient bad-request garbage oversized receipt\n"
    "slowloris flood (or 'all') against a node's fetch port, from --source.\n"
    "\n"
    "The seed must be on loopback (127.0.0.0/8 or ::1) unless --allow-remote.\n"
    "--dry-run builds the values without any network (see the digest).\n"
    "Never runs longer than --max-seconds (default 60).\n"
    "\n"
    "Exit codes: 0 done, 1 failed (seed silent, timed out), 64 usage error.\n";

typedef struct {
    int c, s;
    uint64_t put, put_ok, put_failed, refused;
} counts;

typedef struct {
    /* options */
    uint32_t network;
    char seed_host[PST_DHT_HOST_MAX + 1], seed_port[8];
    uint16_t port;
    uint32_t count, rate, max_seconds;
    bool classes[PST_HC_COUNT];
    bool json, dry_run, allow_remote, have_current_seq;
    char seed_random[128];
    char target_fp[PST_FINGERPRINT_STRLEN + 1];
    bool have_inbox_class;
    /* --fetch and --fake-sender */
    bool fetch_mode, sender_mode, have_target;
    pst_hostile_fetch_opts fetch;
    pst_hostile_sender_opts sender_opts;
    pst_hostile_sender *sender;
    /* state */
    pst_hostile_gen gen;
    pst_identity *id;
    uint8_t slots[PST_HS_COUNT][PST_SLOT_BYTES];
    uv_loop_t *loop;
    pst_dht dht;
    uv_timer_t tick, deadline;
    uint64_t started_ms, join_deadline_ms, last_ping_ms, put_start_ms;
    uint64_t issued; /* values taken from the generator (put or refused) */
    bool ping_pending, joined, finishing, timed_out, failed, seq_from_flag;
    unsigned lookups; /* gets before the first put: key record, inbox slot */
    uint64_t box_seq; /* seq of the key record the X25519 key comes from */
    uint8_t *replay[PST_HOSTILE_REPLAY_MAX];
    const char *fail_reason;
    uint32_t next_i;
    int next_c, next_s;
    bool all_issued;
    uint32_t inflight;
    counts per[PST_HC_COUNT][PST_HS_COUNT];
    crypto_generichash_state digest;
    uint64_t values;
    int exit_code;
} hostile;

typedef struct {
    hostile *h;
    int c, s;
} put_ctx;

/* ---- options ------------------------------------------------------------ */

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "postern-hostile: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see --help)\n");
    return EXIT_USAGE;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
    char *end;
    if (s == NULL || *s == '\0' || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static bool host_is_loopback(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false; /* a name could resolve anywhere */
}

static int parse_seed(hostile *h, const char *arg) {
    const char *colon = strrchr(arg, ':');
    if (colon == NULL || colon == arg || strlen(colon + 1) == 0 || strlen(colon + 1) > 5)
        return -1;
    const char *host = arg;
    size_t hlen = (size_t)(colon - arg);
    if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    uint64_t port;
    if (hlen == 0 || hlen > PST_DHT_HOST_MAX || parse_u64(colon + 1, 65535, &port) != 0 ||
        port == 0)
        return -1;
    memcpy(h->seed_host, host, hlen);
    h->seed_host[hlen] = '\0';
    snprintf(h->seed_port, sizeof h->seed_port, "%u", (unsigned)port);
    return 0;
}

/* "all": every record class; "inbox": every inbox class; else names. */
static int parse_classes(hostile *h, const char *list) {
    memset(h->classes, 0, sizeof h->classes);
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 3 && memcmp(p, "all", 3) == 0) {
            for (int c = 0; c < PST_HC_RECORD_COUNT; c++)
                h->classes[c] = true;
        } else if (n == 5 && memcmp(p, "inbox", 5) == 0) {
            for (int c = PST_HC_RECORD_COUNT; c < PST_HC_COUNT; c++)
                h->classes[c] = true;
        } else {
            int c = pst_hostile_class_by_name(p, n);
            if (c < 0)
                return -1;
            h->classes[c] = true;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* A comma-separated list of names (or "all") into flags[0..count). */
static int parse_names(const char *list, bool *flags, int count,
                       int (*by_name)(const char *, size_t)) {
    memset(flags, 0, (size_t)count * sizeof *flags);
    if (strcmp(list, "all") == 0) {
        for (int k = 0; k < count; k++)
            flags[k] = true;
        return 0;
    }
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        int k = by_name(p, n);
        if (k < 0)
            return -1;
        flags[k] = true;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int parse_hex32(const char *s, uint8_t out[32]) {
    size_t len = 0;
    if (s == NULL || strlen(s) != 64 ||
        sodium_hex2bin(out, 32, s, 64, NULL, &len, NULL) != 0 || len != 32)
        return -1;
    return 0;
}

static int load_identity(hostile *h, const char *path) {
    uint8_t buf[PST_KEYFILE_MAX];
    size_t len = 0;
    char err[512] = "";
    int rc = pst_secret_file_read(path, buf, sizeof buf, &len, err, sizeof err);
    if (rc == PST_OK)
        rc = pst_identity_import(buf, len, NULL, 0, &h->id);
    sodium_memzero(buf, sizeof buf);
    if (rc != PST_OK) {
        fprintf(stderr, "postern-hostile: --identity %s: %s\n", path,
                err[0] ? err : pst_strerror(rc));
        return -1;
    }
    if (memcmp(h->id->sign_pk, h->gen.target, 32) != 0) {
        fprintf(stderr, "postern-hostile: --identity %s is not the identity of --target\n", path);
        return -1;
    }
    h->gen.id = h->id;
    return 0;
}

/* --fetch HOST:PORT: no DHT; the host must be a loopback IPv4 address. */
static int parse_fetch_mode(hostile *h, const char *fetch, const char *target, bool have_attacks) {
    pst_hostile_fetch_opts *f = &h->fetch;
    char host[PST_DHT_HOST_MAX + 1], port[8];
    uint64_t v;
    if (pst_config_split_hostport(fetch, host, sizeof host, port, sizeof port) != PST_OK ||
        parse_u64(port, 65535, &v) != 0 || v == 0 || strlen(host) >= sizeof f->host)
        return usage_error("--fetch must be HOST:PORT, not '%s'", fetch);
    if (!host_is_loopback(host) || strchr(host, ':') != NULL)
        return usage_error("--fetch host '%s' is not an IPv4 loopback address; this tool is for "
                           "tests on loopback",
                           host);
    if (!have_attacks)
        return usage_error("--fetch needs --attacks%s", "");
    snprintf(f->host, sizeof f->host, "%s", host);
    f->port = (uint16_t)v;
    if (target != NULL) {
        if (pst_fingerprint_parse(target, f->server_pk) != PST_OK)
            return usage_error("--target must be a fingerprint (52 characters)%s", "");
        f->have_server = true;
    }
    f->have_msg_id = h->gen.have_msg_id;
    memcpy(f->msg_id, h->gen.msg_id, sizeof f->msg_id);
    f->count = h->count;
    f->max_seconds = h->max_seconds;
    f->json = h->json;
    if (f->conns == 0)
        f->conns = 16;
    h->fetch_mode = true;
    return 0;
}

static int parse_args(hostile *h, int argc, char **argv) {
    static const struct option opts[] = {
        {"network", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},
        {"port", required_argument, 0, 'p'},
        {"target", required_argument, 0, 't'},
        {"address", required_argument, 0, 'a'},
        {"identity", required_argument, 0, 'i'},
        {"count", required_argument, 0, 'c'},
        {"classes", required_argument, 0, 'C'},
        {"seed-random", required_argument, 0, 'r'},
        {"now", required_argument, 0, 'N'},
        {"current-seq", required_argument, 0, 'q'},
        {"rate", required_argument, 0, 'R'},
        {"max-seconds", required_argument, 0, 'm'},
        {"json", no_argument, 0, 'j'},
        {"dry-run", no_argument, 0, 'd'},
        {"allow-remote", no_argument, 0, 'A'},
        {"msg-id", required_argument, 0, 'M'},
        {"fetch", required_argument, 0, 'F'},
        {"attacks", required_argument, 0, 'X'},
        {"source", required_argument, 0, 'S'},
        {"conns", required_argument, 0, 'K'},
        {"fake-sender", required_argument, 0, 'f'},
        {"stamp-bits", required_argument, 0, 'B'},
        {"renotify", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *identity = NULL, *target = NULL, *seed = NULL, *fetch = NULL;
    bool have_attacks = false;
    uint64_t v;
    bool have_network = false;
    int c, idx;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        switch (c) {
        case 'h':
            fputs(USAGE, stdout);
            exit(0);
        case 'n':
            if (parse_u64(optarg, UINT32_MAX, &v) != 0 || v == 0)
                return usage_error("--network must be a non-zero 32-bit id, not '%s'", optarg);
            h->network = (uint32_t)v;
            have_network = true;
            break;
        case 's':
            seed = optarg;
            break;
        case 'p':
            if (parse_u64(optarg, 65535, &v) != 0)
                return usage_error("--port must be 0..65535, not '%s'", optarg);
            h->port = (uint16_t)v;
            break;
        case 't':
            target = optarg;
            break;
        case 'a':
            if (pst_address_normalize(optarg, h->gen.address, sizeof h->gen.address) != PST_OK)
                return usage_error("--address '%s' is not an address (local@domain)", optarg);
            break;
        case 'i':
            identity = optarg;
            break;
        case 'c':
            if (parse_u64(optarg, HOSTILE_COUNT_MAX, &v) != 0 || v == 0)
                return usage_error("--count must be 1..5000, not '%s'", optarg);
            h->count = (uint32_t)v;
            break;
        case 'C':
            if (parse_classes(h, optarg) != 0)
                return usage_error("--classes: unknown class in '%s'", optarg);
            break;
        case 'r':
            snprintf(h->seed_random, sizeof h->seed_random, "%s", optarg);
            break;
        case 'N':
            if (parse_u64(optarg, UINT32_MAX, &v) != 0 || v < 40u * 86400u)
                return usage_error("--now must be unix seconds, not '%s'", optarg);
            h->gen.now = v;
            break;
        case 'q':
            if (parse_u64(optarg, UINT64_MAX / 2, &v) != 0)
                return usage_error("--current-seq must be a number, not '%s'", optarg);
            h->gen.current_seq = v;
            h->have_current_seq = true;
            h->seq_from_flag = true;
            break;
        case 'R':
            if (parse_u64(optarg, HOSTILE_RATE_MAX, &v) != 0 || v == 0)
                return usage_error("--rate must be 1..5000 puts per second, not '%s'", optarg);
            h->rate = (uint32_t)v;
            break;
        case 'm':
            if (parse_u64(optarg, HOSTILE_SECONDS_MAX, &v) != 0 || v == 0)
                return usage_error("--max-seconds must be 1..600, not '%s'", optarg);
            h->max_seconds = (uint32_t)v;
            break;
        case 'j':
            h->json = true;
            break;
        case 'd':
            h->dry_run = true;
            break;
        case 'A':
            h->allow_remote = true;
            break;
        case 'M':
            if (parse_hex32(optarg, h->gen.msg_id) != 0)
                return usage_error("--msg-id must be 64 hex digits, not '%s'", optarg);
            h->gen.have_msg_id = true;
            break;
        case 'F':
            fetch = optarg;
            break;
        case 'X':
            if (parse_names(optarg, h->fetch.attacks, PST_HF_COUNT, pst_hostile_attack_by_name) !=
                0)
                return usage_error("--attacks: unknown attack in '%s'", optarg);
            have_attacks = true;
            break;
        case 'S':
            if (!host_is_loopback(optarg) || strchr(optarg, ':') != NULL)
                return usage_error("--source must be an IPv4 loopback address, not '%s'", optarg);
            snprintf(h->fetch.source, sizeof h->fetch.source, "%s", optarg);
            break;
        case 'K':
            if (parse_u64(optarg, HOSTILE_CONNS_MAX, &v) != 0 || v == 0)
                return usage_error("--conns must be 1..1000, not '%s'", optarg);
            h->fetch.conns = (uint32_t)v;
            break;
        case 'f':
            if (parse_names(optarg, h->sender_opts.modes, PST_HM_COUNT,
                            pst_hostile_sender_mode_by_name) != 0)
                return usage_error("--fake-sender: unknown mode in '%s'", optarg);
            h->sender_mode = true;
            break;
        case 'B':
            if (parse_u64(optarg, PST_HASHCASH_MINT_BITS_MAX, &v) != 0)
                return usage_error("--stamp-bits must be 0..40, not '%s'", optarg);
            h->sender_opts.stamp_bits = (unsigned)v;
            break;
        case 'T':
            if (parse_u64(optarg, 600, &v) != 0 || v == 0)
                return usage_error("--renotify must be 1..600 seconds, not '%s'", optarg);
            h->sender_opts.renotify_ms = (uint32_t)v * 1000u;
            break;
        default:
            fputs(USAGE, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (fetch != NULL)
        return parse_fetch_mode(h, fetch, target, have_attacks);
    if (target == NULL || pst_fingerprint_parse(target, h->gen.target) != PST_OK)
        return usage_error("--target must be a fingerprint (52 characters)%s", "");
    pst_fingerprint_format(h->gen.target, h->target_fp);
    if (h->sender_mode && h->dry_run)
        return usage_error("--fake-sender needs the network%s", " (not --dry-run)");
    if (!h->dry_run) {
        if (!have_network)
            return usage_error("--network is required%s", "");
        if (h->network == PST_DHT_NETWORK_PUBLIC && !h->allow_remote)
            return usage_error("refusing the public network id%s (tests use a private one)", "");
        if (seed == NULL || parse_seed(h, seed) != 0)
            return usage_error("--seed must be HOST:PORT, not '%s'", seed ? seed : "(none)");
        if (!h->allow_remote && !host_is_loopback(h->seed_host))
            return usage_error("seed '%s' is not a loopback address (127.0.0.0/8 or ::1); "
                               "this tool is for tests on loopback",
                               h->seed_host);
    }
    if (identity != NULL && load_identity(h, identity) != 0)
        return 1;
    return 0;
}

/* ---- summary ------------------------------------------------------------------ */

static void print_summary(hostile *h) {
    uint8_t dg[32];
    char dhex[65];
    crypto_generichash_final(&h->digest, dg, sizeof dg);
    sodium_bin2hex(dhex, sizeof dhex, dg, sizeof dg);
    uint64_t elapsed = h->loop ? uv_now(h->loop) - h->started_ms : 0;
    uint64_t tot[4] = {0}, slot_tot[PST_HS_COUNT][2];
    memset(slot_tot, 0, sizeof slot_tot);
    FILE *o = stdout;
    if (h->json) {
        fprintf(o,
                "{\"target\":\"%s\",\"network\":%" PRIu32 ",\"count\":%" PRIu32 ",\"now\":%" PRIu64
                ",\"current_seq\":%" PRIu64
                ",\"identity\":%s,\"dry_run\":%s,\"timed_out\":%s,\"elapsed_ms\":%" PRIu64
                ",\"classes\":{",
                h->target_fp, h->network, h->count, h->gen.now, h->gen.current_seq,
                h->id ? "true" : "false", h->dry_run ? "true" : "false",
                h->timed_out ? "true" : "false", elapsed);
    } else {
        fprintf(o, "target %s, %" PRIu32 " per class and slot\n%-13s %6s %6s %6s %7s\n",
                h->target_fp, h->count, "class", "put", "ok", "failed", "refused");
    }
    bool first = true;
    for (int c = 0; c < PST_HC_COUNT; c++) {
        if (!h->classes[c])
            continue;
        uint64_t put = 0, ok = 0, failed = 0, refused = 0;
        for (int s = 0; s < PST_HS_COUNT; s++) {
            counts *k = &h->per[c][s];
            put += k->put;
            ok += k->put_ok;
            failed += k->put_failed;
            refused += k->refused;
            slot_tot[s][0] += k->put;
            slot_tot[s][1] += k->put_ok;
        }
        tot[0] += put, tot[1] += ok, tot[2] += failed, tot[3] += refused;
        if (!h->json) {
            fprintf(o, "%-13s %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %7" PRIu64 "\n",
                    pst_hostile_class_name(c), put, ok, failed, refused);
            continue;
        }
        fprintf(o,
                "%s\"%s\":{\"put\":%" PRIu64 ",\"put_ok\":%" PRIu64 ",\"put_failed\":%" PRIu64
                ",\"refused\":%" PRIu64 ",\"skipped\":{",
                first ? "" : ",", pst_hostile_class_name(c), put, ok, failed, refused);
        first = false;
        bool sfirst = true;
        for (int s = 0; s < PST_HS_COUNT; s++) {
            const char *why = pst_hostile_skip_reason(&h->gen, c, s);
            if (why == NULL || !pst_hostile_class_fits(c, s))
                continue;
            fprintf(o, "%s\"%s\":\"%s\"", sfirst ? "" : ",", pst_hostile_slot_name(s), why);
            sfirst = false;
        }
        fprintf(o, "}}");
    }
    if (h->json) {
        fprintf(o, "},\"slots\":{");
        int nslots = h->have_inbox_class ? PST_HS_COUNT : PST_HS_INBOX;
        for (int s = 0; s < nslots; s++)
            fprintf(o, "%s\"%s\":{\"put\":%" PRIu64 ",\"put_ok\":%" PRIu64 "}", s ? "," : "",
                    pst_hostile_slot_name(s), slot_tot[s][0], slot_tot[s][1]);
        fprintf(o,
                "},\"total\":{\"put\":%" PRIu64 ",\"put_ok\":%" PRIu64 ",\"put_failed\":%" PRIu64
                ",\"refused\":%" PRIu64 "},\"values\":%" PRIu64 ",\"digest\":\"%s\"",
                tot[0], tot[1], tot[2], tot[3], h->values, dhex);
        if (h->fail_reason)
            fprintf(o, ",\"error\":\"%s\"", h->fail_reason);
        fprintf(o, "}\n");
    } else {
        fprintf(o, "%-13s %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %7" PRIu64 "\n", "total", tot[0],
                tot[1], tot[2], tot[3]);
        fprintf(o, "values %" PRIu64 ", digest %s%s%s\n", h->values, dhex,
                h->timed_out ? ", TIMED OUT" : "", h->fail_reason ? ", failed: " : "");
        if (h->fail_reason)
            fprintf(o, "%s\n", h->fail_reason);
    }
    fflush(o);
}

/* ---- value iteration ------------------------------------------------------------ */

/* Steps (i, class, slot) in the put order: every class and slot for value 0,
 * then for value 1, ... so a run cut short still covers every class. Returns
 * false when everything was produced. */
static bool next_value(hostile *h, int *c, int *s, uint32_t *i, uint8_t *val, size_t *len) {
    while (h->next_i < h->count) {
        *c = h->next_c;
        *s = h->next_s;
        *i = h->next_i;
        if (++h->next_s == PST_HS_COUNT) {
            h->next_s = 0;
            if (++h->next_c == PST_HC_COUNT) {
                h->next_c = 0;
                h->next_i++;
            }
        }
        if (!h->classes[*c])
            continue;
        *len = pst_hostile_make(&h->gen, *c, *s, *i, val);
        if (*len == 0)
            continue;
        uint8_t hdr[8];
        for (int b = 0; b < 8; b++)
            hdr[b] = (uint8_t)(*len >> (8 * b));
        crypto_generichash_update(&h->digest, hdr, sizeof hdr);
        crypto_generichash_update(&h->digest, val, *len);
        h->values++;
        return true;
    }
    return false;
}

static void dry_run(hostile *h) {
    int c, s;
    uint32_t i;
    uint8_t val[PST_DHT_VALUE_MAX];
    size_t len;
    while (next_value(h, &c, &s, &i, val, &len))
        h->per[c][s].put++;
}

/* ---- network ------------------------------------------------------------------ */

static void on_closed(pst_dht *d) {
    hostile *h = d->data;
    if (h->sender_mode && h->sender != NULL)
        pst_hostile_sender_print(h->sender, h->json, h->timed_out,
                                 uv_now(h->loop) - h->started_ms);
    else if (h->sender_mode)
        printf("%s{\"mode\":\"fake-sender\",\"error\":\"%s\"}\n", "",
               h->fail_reason ? h->fail_reason : "not started");
    else
        print_summary(h);
    uv_close((uv_handle_t *)&h->tick, NULL);
    uv_close((uv_handle_t *)&h->deadline, NULL);
}

static void finish(hostile *h, int exit_code, const char *why) {
    if (h->finishing)
        return;
    h->finishing = true;
    h->exit_code = exit_code;
    if (why)
        h->fail_reason = why;
    uv_timer_stop(&h->tick);
    uv_timer_stop(&h->deadline);
    pst_hostile_sender_close(h->sender);
    pst_dht_close(&h->dht, on_closed);
}

static void on_put(void *user, int status) {
    put_ctx *p = user;
    hostile *h = p->h;
    counts *k = &h->per[p->c][p->s];
    if (status == PST_OK)
        k->put_ok++;
    else
        k->put_failed++;
    h->inflight--;
    free(p);
    if (h->all_issued && h->inflight == 0)
        finish(h, 0, NULL);
}

static void put_some(hostile *h) {
    /* pacing: at most `rate` values per second since the first put, so a
     * loopback node is not pushed into OpenDHT's per-IP rate limit */
    uint64_t allowed = 1 + h->rate * (uv_now(h->loop) - h->put_start_ms) / 1000u;
    uint64_t budget = allowed > h->issued ? allowed - h->issued : 0;
    uint64_t left_ms = h->started_ms + (uint64_t)h->max_seconds * 1000u - uv_now(h->loop);
    uint32_t timeout =
        left_ms < HOSTILE_PUT_TIMEOUT_MS ? (uint32_t)left_ms + 1 : HOSTILE_PUT_TIMEOUT_MS;
    while (budget > 0 && h->inflight < HOSTILE_INFLIGHT_MAX && !h->all_issued) {
        int c, s;
        uint32_t i;
        uint8_t val[PST_DHT_VALUE_MAX];
        size_t len;
        if (!next_value(h, &c, &s, &i, val, &len)) {
            h->all_issued = true;
            break;
        }
        budget--;
        h->issued++;
        put_ctx *p = calloc(1, sizeof *p);
        if (p == NULL) {
            finish(h, 1, "out of memory");
            return;
        }
        p->h = h;
        p->c = c;
        p->s = s;
        int rc = pst_dht_put(&h->dht, h->slots[s], val, len, false, timeout, on_put, p);
        if (rc != PST_OK) {
            h->per[c][s].refused++; /* e.g. PST_E_TOOBIG: counted, not an error */
            free(p);
            continue;
        }
        h->per[c][s].put++;
        h->inflight++;
    }
    if (h->all_issued && h->inflight == 0)
        finish(h, 0, NULL);
}

/* The target's current seq (stale values need it) and its X25519 key
 * (inbox classes and the fake sender seal to it), from its key slot. */
static void on_seq_value(void *user, const uint8_t *val, size_t len) {
    hostile *h = user;
    pst_rec_type type;
    pst_keyrec kr;
    if (pst_record_peek_type(val, len, &type) != PST_OK || type != PST_REC_KEY ||
        pst_keyrec_decode(val, len, &kr) != PST_OK || memcmp(kr.signer, h->gen.target, 32) != 0 ||
        pst_keyrec_verify(&kr, (uint64_t)time(NULL)) != PST_OK)
        return;
    if (h->id != NULL && !h->seq_from_flag && kr.seq > h->gen.current_seq)
        h->gen.current_seq = kr.seq;
    if (!h->gen.have_box_pk || kr.seq > h->box_seq) {
        memcpy(h->gen.target_box_pk, kr.enc_pk, sizeof kr.enc_pk);
        h->gen.have_box_pk = true;
        h->box_seq = kr.seq;
    }
}

static void on_seq_done(void *user, int status) {
    hostile *h = user;
    (void)status; /* nothing found: stale values use seq 0, inbox classes are skipped */
    h->have_current_seq = true;
    h->lookups--;
}

/* What a replay re-puts: the inbox slot's values, verbatim. */
static void on_inbox_value(void *user, const uint8_t *val, size_t len) {
    hostile *h = user;
    uint32_t n = h->gen.n_replay;
    if (n >= PST_HOSTILE_REPLAY_MAX || n >= h->count || len == 0 ||
        (h->replay[n] = malloc(len)) == NULL)
        return;
    memcpy(h->replay[n], val, len);
    h->gen.replay_val[n] = h->replay[n];
    h->gen.replay_len[n] = len;
    h->gen.n_replay++;
}

static void on_inbox_done(void *user, int status) {
    hostile *h = user;
    (void)status;
    h->lookups--;
}

static void on_ping(void *user, int status) {
    hostile *h = user;
    h->ping_pending = false;
    if (status == PST_OK && !h->joined) {
        h->joined = true;
        bool seq = h->id != NULL && !h->have_current_seq;
        if (seq || h->have_inbox_class || h->sender_mode) {
            h->lookups++;
            if (pst_dht_get(&h->dht, h->slots[PST_HS_KEY], HOSTILE_SEQ_GET_MS, on_seq_value,
                            on_seq_done, h) != PST_OK)
                on_seq_done(h, PST_E_IO);
        }
        if (h->classes[PST_HC_INBOX_REPLAY]) {
            h->lookups++;
            if (pst_dht_get(&h->dht, h->slots[PST_HS_INBOX], HOSTILE_SEQ_GET_MS, on_inbox_value,
                            on_inbox_done, h) != PST_OK)
                on_inbox_done(h, PST_E_IO);
        }
    }
}

static void sender_tick(hostile *h) {
    if (h->sender == NULL) {
        if (!h->gen.have_box_pk) {
            finish(h, 1, "the target's key record was not found in the DHT");
            return;
        }
        memcpy(h->sender_opts.target, h->gen.target, sizeof h->sender_opts.target);
        memcpy(h->sender_opts.target_box_pk, h->gen.target_box_pk, PST_BOX_PK_BYTES);
        memcpy(h->sender_opts.seed, h->gen.seed, sizeof h->sender_opts.seed);
        h->sender_opts.listen_host = h->seed_host; /* loopback, checked */
        if (h->sender_opts.renotify_ms == 0)
            h->sender_opts.renotify_ms = HOSTILE_RENOTIFY_S * 1000u;
        if (pst_hostile_sender_start(h->loop, &h->dht, &h->sender_opts, &h->sender) != PST_OK) {
            finish(h, 1, "cannot start the fake sender");
            return;
        }
    }
    pst_hostile_sender_tick(h->sender);
    if (pst_hostile_sender_done(h->sender))
        finish(h, 0, NULL);
}

static void on_tick(uv_timer_t *t) {
    hostile *h = t->data;
    if (h->finishing)
        return;
    if (!h->joined) {
        if (uv_now(h->loop) >= h->join_deadline_ms) {
            finish(h, 1, "the seed did not answer a ping");
            return;
        }
        /* one ping at a time, every HOSTILE_PING_EVERY_MS */
        if (!h->ping_pending && uv_now(h->loop) >= h->last_ping_ms + HOSTILE_PING_EVERY_MS) {
            h->ping_pending = true;
            h->last_ping_ms = uv_now(h->loop);
            if (pst_dht_ping(&h->dht, h->seed_host, h->seed_port, on_ping, h) != PST_OK)
                h->ping_pending = false;
        }
        return;
    }
    if (h->lookups > 0)
        return;
    if (h->sender_mode) {
        sender_tick(h);
        return;
    }
    if (h->put_start_ms == 0)
        h->put_start_ms = uv_now(h->loop);
    put_some(h);
}

static void on_deadline(uv_timer_t *t) {
    hostile *h = t->data;
    h->timed_out = true;
    finish(h, 1,
           h->sender_mode ? "--max-seconds reached before the target's node finished every mode"
                          : "--max-seconds reached before every put finished");
}

static void on_dht_log(void *user, int level, const char *msg) {
    (void)user;
    if (level <= PST_DHT_LOG_ERROR)
        fprintf(stderr, "postern-hostile: dht: %s\n", msg);
}

static int run_network(hostile *h) {
    h->loop = uv_default_loop();
    uv_update_time(h->loop);
    h->started_ms = uv_now(h->loop);
    uint64_t join_ms = (uint64_t)h->max_seconds * 1000u / 2;
    h->join_deadline_ms =
        h->started_ms + (join_ms < HOSTILE_JOIN_MS_MAX ? join_ms : HOSTILE_JOIN_MS_MAX);
    pst_dht_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.network_id = h->network;
    cfg.port = h->port;
    cfg.peer_discovery = false;
    cfg.log = on_dht_log;
    int rc = pst_dht_init(h->loop, &h->dht, &cfg);
    if (rc != PST_OK) {
        fprintf(stderr, "postern-hostile: cannot start a DHT node: %s\n", pst_strerror(rc));
        return 1;
    }
    h->dht.data = h;
    (void)pst_dht_bootstrap(&h->dht, h->seed_host, h->seed_port);
    uv_timer_init(h->loop, &h->tick);
    uv_timer_init(h->loop, &h->deadline);
    h->tick.data = h;
    h->deadline.data = h;
    uv_timer_start(&h->tick, on_tick, 0, HOSTILE_TICK_MS);
    uv_timer_start(&h->deadline, on_deadline, (uint64_t)h->max_seconds * 1000u, 0);
    uv_run(h->loop, UV_RUN_DEFAULT);
    uv_loop_close(h->loop);
    return h->exit_code;
}

int main(int argc, char **argv) {
    static hostile h;
    if (sodium_init() < 0) {
        fprintf(stderr, "postern-hostile: libsodium failed to initialise\n");
        return 1;
    }
    h.count = 20;
    h.rate = 400;
    h.max_seconds = 60;
    snprintf(h.seed_random, sizeof h.seed_random, "1");
    for (int c = 0; c < PST_HC_COUNT; c++)
        h.classes[c] = c < PST_HC_REVOKED;
    int rc = parse_args(&h, argc, argv);
    if (rc != 0) {
        pst_identity_free(h.id);
        return rc;
    }
    for (int c = PST_HC_RECORD_COUNT; c < PST_HC_COUNT; c++)
        h.have_inbox_class |= h.classes[c];
    if (h.fetch_mode) {
        alarm(h.max_seconds + 10);
        crypto_generichash(h.fetch.seed, sizeof h.fetch.seed, (const uint8_t *)h.seed_random,
                           strlen(h.seed_random), (const uint8_t *)"postern-hostile", 15);
        rc = pst_hostile_fetch_run(&h.fetch);
        pst_identity_free(h.id);
        return rc;
    }
    if (h.sender_mode)
        memset(h.classes, 0, sizeof h.classes); /* the fake sender puts only its own */
    /* a hard stop even if the loop hangs somewhere we do not control */
    alarm(h.max_seconds + 10);
    if (h.gen.now == 0)
        h.gen.now = (uint64_t)time(NULL);
    crypto_generichash(h.gen.seed, sizeof h.gen.seed, (const uint8_t *)h.seed_random,
                       strlen(h.seed_random), (const uint8_t *)"postern-hostile", 15);
    pst_hostile_gen_init(&h.gen);
    crypto_generichash_init(&h.digest, NULL, 0, 32);
    pst_slot_key(h.gen.target, h.slots[PST_HS_KEY]);
    pst_slot_vouch(h.gen.target, h.slots[PST_HS_VOUCH]);
    pst_slot_inbox(h.gen.target, h.slots[PST_HS_INBOX]);
    if (h.gen.address[0])
        (void)pst_slot_address(h.gen.address, h.slots[PST_HS_ADDRESS]);
    if (h.dry_run) {
        dry_run(&h);
        print_summary(&h);
        rc = 0;
    } else {
        rc = run_network(&h);
    }
    pst_hostile_gen_wipe(&h.gen);
    pst_identity_free(h.id);
    pst_hostile_sender_free(h.sender);
    for (uint32_t k = 0; k < h.gen.n_replay; k++)
        free(h.replay[k]);
    return rc;
}
