/* postern-hostile's command line: options, checks (loopback only, the
 * public network id refused), and the --fetch mode's settings. */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_peerargs.h"
#include "hostile_int.h"
#include "pst_config.h"
#include "pst_hashcash.h"
#include "pst_home.h"

#define EXIT_USAGE 64
#define HOSTILE_COUNT_MAX 10000u /* per class and slot */
#define HOSTILE_SECONDS_MAX 600u
#define HOSTILE_RATE_MAX 5000u
#define HOSTILE_CONNS_MAX 1000u

static const char USAGE[] =
    "usage: postern-hostile --network ID --seed HOST:PORT --target FINGERPRINT\n"
    "                       [--address ADDR] [--identity FILE] [--count N]\n"
    "                       [--classes LIST] [--seed-random S] [--now UNIX]\n"
    "                       [--current-seq N] [--rate PUTS_PER_S] [--port UDP_PORT]\n"
    "                       [--max-seconds S] [--json] [--dry-run] [--allow-remote]\n"
    "                       [--msg-id HEX] [--flood N] [--linger]\n"
    "       postern-hostile --fake-sender MODES --network ID --seed HOST:PORT\n"
    "                       --target FINGERPRINT [--stamp-bits N] [--renotify S] ...\n"
    "       postern-hostile --fetch HOST:PORT --attacks LIST [--source IP] [--count N]\n"
    "                       [--conns N] [--msg-id HEX] [--target FINGERPRINT] ...\n"
    "       postern-hostile --pair CODE [--count N] [--json]\n"
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
    "of these. Inbox classes ('inbox' selects the first eight, 'inbox-all'\n"
    "every one): inbox-random inbox-oversize inbox-forged inbox-wrongseal\n"
    "inbox-wrongrcpt inbox-replay inbox-expired inbox-stamp inbox-stamp-weak\n"
    "inbox-stamp-spent inbox-nostamp inbox-device; they need the target's key\n"
    "record in the DHT (inbox-stamp-spent also a stamped notification in its\n"
    "inbox slot; inbox-device puts eight fresh identities' device lists first,\n"
    "then notifications signed by a device those lists revoke or do not name).\n"
    "Device classes ('devices' selects them all; issue 13), for the target's\n"
    "devices slot: dev-forged dev-replay (needs --identity; the target must\n"
    "publish a device list) dev-cert dev-overcap.\n"
    "--pair CODE: N pairing requests with CODE (a used or expired code of the\n"
    "target) and N with guessed codes for the same address; none may pair.\n"
    "--flood N is --classes\n"
    "inbox-nostamp --count N: N valid stampless notifications, each from its own\n"
    "fresh stranger. --linger: print the summary when the puts are done, then\n"
    "stay in the DHT (serving what this node stores) until stdin closes.\n"
    "--msg-id names a message the target already has (inbox-replay forges\n"
    "other senders' claims of it; --fetch asks for it as a non-recipient).\n"
    "\n"
    "--fake-sender: modes wrong-body wrong-size bad-signer bad-author truncated\n"
    "good bad-tail extra-tail (or 'all'): one real message each, notified to the\n"
    "target and served wrongly; 'good' is served right and its notification then\n"
    "replayed.\n"
    "--fetch: attacks not-recipient bad-request garbage oversized receipt\n"
    "slowloris flood hint hint-flood (or 'all') against a node's fetch port,\n"
    "from --source.\n"
    "\n"
    "The seed must be on loopback (127.0.0.0/8 or ::1) unless --allow-remote.\n"
    "--dry-run builds the values without any network (see the digest).\n"
    "Never runs longer than --max-seconds (default 60).\n"
    "\n"
    "Exit codes: 0 done, 1 failed (seed silent, timed out), 64 usage error.\n";

/* ---- options ------------------------------------------------------------ */

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
    if (hlen == 0 || hlen > PST_DHT_HOST_MAX || pst_peer_parse_u64(colon + 1, 65535, &port) != 0 ||
        port == 0)
        return -1;
    memcpy(h->seed_host, host, hlen);
    h->seed_host[hlen] = '\0';
    snprintf(h->seed_port, sizeof h->seed_port, "%u", (unsigned)port);
    return 0;
}

/* "all": every record class; "inbox": the inbox classes up to inbox-stamp
 * (bad notifications, each needing only the target's key record);
 * "inbox-all": every inbox class; else names. */
static int parse_classes(hostile *h, const char *list) {
    memset(h->classes, 0, sizeof h->classes);
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 3 && memcmp(p, "all", 3) == 0) {
            for (int c = 0; c < PST_HC_RECORD_COUNT; c++)
                h->classes[c] = true;
        } else if (n == 5 && memcmp(p, "inbox", 5) == 0) {
            for (int c = PST_HC_RECORD_COUNT; c <= PST_HC_INBOX_STAMP; c++)
                h->classes[c] = true;
        } else if (n == 9 && memcmp(p, "inbox-all", 9) == 0) {
            for (int c = PST_HC_RECORD_COUNT; c < PST_HC_DEV_FORGED; c++)
                h->classes[c] = true;
        } else if (n == 7 && memcmp(p, "devices", 7) == 0) {
            for (int c = PST_HC_DEV_FORGED; c < PST_HC_COUNT; c++)
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
    if (s == NULL || strlen(s) != 64 || sodium_hex2bin(out, 32, s, 64, NULL, &len, NULL) != 0 ||
        len != 32)
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
        pst_peer_parse_u64(port, 65535, &v) != 0 || v == 0 || strlen(host) >= sizeof f->host)
        return pst_peer_usage_error("postern-hostile", "--fetch must be HOST:PORT, not '%s'",
                                    fetch);
    if (!pst_peer_host_is_loopback(host) || strchr(host, ':') != NULL)
        return pst_peer_usage_error(
            "postern-hostile",
            "--fetch host '%s' is not an IPv4 loopback address; this tool is for "
            "tests on loopback",
            host);
    if (!have_attacks)
        return pst_peer_usage_error("postern-hostile", "--fetch needs --attacks%s", "");
    snprintf(f->host, sizeof f->host, "%s", host);
    f->port = (uint16_t)v;
    if (target != NULL) {
        if (pst_fingerprint_parse(target, f->server_pk) != PST_OK)
            return pst_peer_usage_error("postern-hostile",
                                        "--target must be a fingerprint (52 characters)%s", "");
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

int pst_hostile_parse_args(hostile *h, int argc, char **argv) {
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
        {"flood", required_argument, 0, 'L'},
        {"linger", no_argument, 0, 'G'},
        {"pair", required_argument, 0, 'P'},
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
            if (pst_peer_parse_u64(optarg, UINT32_MAX, &v) != 0 || v == 0)
                return pst_peer_usage_error(
                    "postern-hostile", "--network must be a non-zero 32-bit id, not '%s'", optarg);
            h->network = (uint32_t)v;
            have_network = true;
            break;
        case 's':
            seed = optarg;
            break;
        case 'p':
            if (pst_peer_parse_u64(optarg, 65535, &v) != 0)
                return pst_peer_usage_error("postern-hostile", "--port must be 0..65535, not '%s'",
                                            optarg);
            h->port = (uint16_t)v;
            break;
        case 't':
            target = optarg;
            break;
        case 'a':
            if (pst_address_normalize(optarg, h->gen.address, sizeof h->gen.address) != PST_OK)
                return pst_peer_usage_error(
                    "postern-hostile", "--address '%s' is not an address (local@domain)", optarg);
            break;
        case 'i':
            identity = optarg;
            break;
        case 'c':
            if (pst_peer_parse_u64(optarg, HOSTILE_COUNT_MAX, &v) != 0 || v == 0)
                return pst_peer_usage_error("postern-hostile", "--count must be 1..10000, not '%s'",
                                            optarg);
            h->count = (uint32_t)v;
            break;
        case 'C':
            if (parse_classes(h, optarg) != 0)
                return pst_peer_usage_error("postern-hostile", "--classes: unknown class in '%s'",
                                            optarg);
            break;
        case 'r':
            snprintf(h->seed_random, sizeof h->seed_random, "%s", optarg);
            break;
        case 'N':
            if (pst_peer_parse_u64(optarg, UINT32_MAX, &v) != 0 || v < 40u * 86400u)
                return pst_peer_usage_error("postern-hostile",
                                            "--now must be unix seconds, not '%s'", optarg);
            h->gen.now = v;
            break;
        case 'q':
            if (pst_peer_parse_u64(optarg, UINT64_MAX / 2, &v) != 0)
                return pst_peer_usage_error("postern-hostile",
                                            "--current-seq must be a number, not '%s'", optarg);
            h->gen.current_seq = v;
            h->have_current_seq = true;
            h->seq_from_flag = true;
            break;
        case 'R':
            if (pst_peer_parse_u64(optarg, HOSTILE_RATE_MAX, &v) != 0 || v == 0)
                return pst_peer_usage_error(
                    "postern-hostile", "--rate must be 1..5000 puts per second, not '%s'", optarg);
            h->rate = (uint32_t)v;
            break;
        case 'm':
            if (pst_peer_parse_u64(optarg, HOSTILE_SECONDS_MAX, &v) != 0 || v == 0)
                return pst_peer_usage_error("postern-hostile",
                                            "--max-seconds must be 1..600, not '%s'", optarg);
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
                return pst_peer_usage_error("postern-hostile",
                                            "--msg-id must be 64 hex digits, not '%s'", optarg);
            h->gen.have_msg_id = true;
            break;
        case 'F':
            fetch = optarg;
            break;
        case 'P':
            h->pair_code = optarg;
            break;
        case 'X':
            if (parse_names(optarg, h->fetch.attacks, PST_HF_COUNT, pst_hostile_attack_by_name) !=
                0)
                return pst_peer_usage_error("postern-hostile", "--attacks: unknown attack in '%s'",
                                            optarg);
            have_attacks = true;
            break;
        case 'S':
            if (!pst_peer_host_is_loopback(optarg) || strchr(optarg, ':') != NULL)
                return pst_peer_usage_error("postern-hostile",
                                            "--source must be an IPv4 loopback address, not '%s'",
                                            optarg);
            snprintf(h->fetch.source, sizeof h->fetch.source, "%s", optarg);
            break;
        case 'K':
            if (pst_peer_parse_u64(optarg, HOSTILE_CONNS_MAX, &v) != 0 || v == 0)
                return pst_peer_usage_error("postern-hostile", "--conns must be 1..1000, not '%s'",
                                            optarg);
            h->fetch.conns = (uint32_t)v;
            break;
        case 'f':
            if (parse_names(optarg, h->sender_opts.modes, PST_HM_COUNT,
                            pst_hostile_sender_mode_by_name) != 0)
                return pst_peer_usage_error("postern-hostile",
                                            "--fake-sender: unknown mode in '%s'", optarg);
            h->sender_mode = true;
            break;
        case 'B':
            if (pst_peer_parse_u64(optarg, PST_HASHCASH_MINT_BITS_MAX, &v) != 0)
                return pst_peer_usage_error("postern-hostile",
                                            "--stamp-bits must be 0..40, not '%s'", optarg);
            h->sender_opts.stamp_bits = (unsigned)v;
            h->stamp_bits_flag = true;
            break;
        case 'G':
            h->linger = true;
            break;
        case 'L':
            if (pst_peer_parse_u64(optarg, HOSTILE_COUNT_MAX, &v) != 0 || v == 0)
                return pst_peer_usage_error("postern-hostile", "--flood must be 1..10000, not '%s'",
                                            optarg);
            memset(h->classes, 0, sizeof h->classes);
            h->classes[PST_HC_INBOX_NOSTAMP] = true;
            h->count = (uint32_t)v;
            break;
        case 'T':
            if (pst_peer_parse_u64(optarg, 600, &v) != 0 || v == 0)
                return pst_peer_usage_error("postern-hostile",
                                            "--renotify must be 1..600 seconds, not '%s'", optarg);
            h->sender_opts.renotify_ms = (uint32_t)v * 1000u;
            break;
        default:
            fputs(USAGE, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        return pst_peer_usage_error("postern-hostile", "unexpected argument '%s'", argv[optind]);
    if (h->pair_code != NULL)
        return 0; /* the code names the (loopback-checked) address */
    if (fetch != NULL)
        return parse_fetch_mode(h, fetch, target, have_attacks);
    if (target == NULL || pst_fingerprint_parse(target, h->gen.target) != PST_OK)
        return pst_peer_usage_error("postern-hostile",
                                    "--target must be a fingerprint (52 characters)%s", "");
    pst_fingerprint_format(h->gen.target, h->target_fp);
    if (h->sender_mode && h->dry_run)
        return pst_peer_usage_error("postern-hostile", "--fake-sender needs the network%s",
                                    " (not --dry-run)");
    if (!h->dry_run) {
        if (!have_network)
            return pst_peer_usage_error("postern-hostile", "--network is required%s", "");
        if (h->network == PST_DHT_NETWORK_PUBLIC && !h->allow_remote)
            return pst_peer_usage_error(
                "postern-hostile", "refusing the public network id%s (tests use a private one)",
                "");
        if (seed == NULL || parse_seed(h, seed) != 0)
            return pst_peer_usage_error("postern-hostile", "--seed must be HOST:PORT, not '%s'",
                                        seed ? seed : "(none)");
        if (!h->allow_remote && !pst_peer_host_is_loopback(h->seed_host))
            return pst_peer_usage_error("postern-hostile",
                                        "seed '%s' is not a loopback address (127.0.0.0/8 or ::1); "
                                        "this tool is for tests on loopback",
                                        h->seed_host);
    }
    if (identity != NULL && load_identity(h, identity) != 0)
        return 1;
    return 0;
}
