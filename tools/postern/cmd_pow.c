/* postern pow: mint or check a hashcash stamp (docs/cli/pow.md). */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "pst_mint.h"

/* Set by SIGINT; the mint's threads poll it. A lock-free atomic_int is one
 * of the few things a signal handler may touch. */
static atomic_int pow_cancel;

static void on_sigint(int sig) {
    (void)sig;
    atomic_store(&pow_cancel, 1);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: postern pow mint --bits N [--ext EXT] [--threads N] RESOURCE\n"
            "       postern pow check --bits N --resource R [--ext EXT] [--max-age S]\n"
            "                         [--max-future S] [--json] STAMP\n"
            "\n"
            "mint   prints a hashcash v1 stamp for RESOURCE worth N bits (1..%u) on\n"
            "       stdout, using N threads (default 0: every online core). A\n"
            "       progress line is drawn on stderr after one second. Ctrl-C cancels.\n"
            "check  verifies STAMP: at least N bits claimed and paid, resource R\n"
            "       exactly, ext EXT exactly if given, dated at most S seconds ago\n"
            "       (--max-age, default %u) and at most S seconds ahead\n"
            "       (--max-future, default %u). --json prints the result as JSON.\n"
            "       The spent-stamp table is not consulted.\n"
            "\n"
            "Exit codes: 0 stamp minted / valid, 1 invalid stamp, cancelled or failed,\n"
            "64 usage error.\n",
            PST_HASHCASH_MINT_BITS_MAX, PST_HASHCASH_MAX_AGE_DEFAULT,
            PST_HASHCASH_MAX_FUTURE_DEFAULT);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
    va_list ap;
    fputs("postern: pow: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nrun 'postern pow --help' for usage\n", stderr);
    return PST_EXIT_USAGE;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- mint ------------------------------------------------------------------ */

typedef struct {
    double start;
    bool enabled, drawn;
} progress_line;

static void on_progress(uint64_t done, double expected, void *user) {
    progress_line *pl = user;
    double elapsed = mono_now() - pl->start;
    if (!pl->enabled || elapsed < 1.0)
        return;
    double rate = (double)done / elapsed;
    char el[PST_CLI_DURATION_BUFSIZE], ex[PST_CLI_DURATION_BUFSIZE];
    pst_cli_duration(elapsed, el);
    pst_cli_duration(rate > 0 ? expected / rate : 0.0, ex);
    /* Expected = mean time for this many bits at the current rate; any one
     * mint may take much less or several times more. */
    fprintf(stderr, "\rpow: %.2f Mhash/s, %s elapsed, %s expected   ", rate / 1e6, el, ex);
    fflush(stderr);
    pl->drawn = true;
}

static void clear_line(progress_line *pl) {
    if (pl->drawn)
        fprintf(stderr, "\r%70s\r", "");
}

static int pow_mint(int argc, char **argv) {
    static const struct option opts[] = {
        {"bits", required_argument, NULL, 'b'},
        {"ext", required_argument, NULL, 'x'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t bits = 0, threads = 0;
    const char *ext = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "b:x:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!pst_cli_parse_u64(optarg, 1, PST_HASHCASH_MINT_BITS_MAX, &bits))
                return usage_error("--bits must be 1..%u, not '%s'", PST_HASHCASH_MINT_BITS_MAX,
                                   optarg);
            break;
        case 'x':
            ext = optarg;
            break;
        case 't':
            if (!pst_cli_parse_u64(optarg, 0, PST_HASHCASH_THREADS_MAX, &threads))
                return usage_error("--threads must be 0..%u, not '%s'", PST_HASHCASH_THREADS_MAX,
                                   optarg);
            break;
        case 'h':
            usage(stdout);
            return PST_EXIT_OK;
        default:
            return usage_error("unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    if (bits == 0)
        return usage_error("mint needs --bits N");
    if (optind != argc - 1)
        return usage_error("mint needs exactly one RESOURCE");
    const char *resource = argv[optind];
    if (!pst_hashcash_field_valid(resource, false))
        return usage_error("bad resource '%s' (1..128 visible ASCII characters, no ':')", resource);
    if (ext != NULL && !pst_hashcash_field_valid(ext, true))
        return usage_error("bad ext '%s' (0..128 visible ASCII characters, no ':')", ext);

    progress_line pl = {.start = mono_now(), .enabled = pst_cli_progress_enabled()};
    pst_hashcash_mint_params p;
    memset(&p, 0, sizeof p);
    p.bits = (unsigned)bits;
    p.resource = resource;
    p.ext = ext;
    p.now = (uint64_t)time(NULL);
    randombytes_buf(p.rand, sizeof p.rand);
    p.threads = (unsigned)threads;
    p.progress = on_progress;
    p.user = &pl;
    p.cancel = &pow_cancel;

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    atomic_store(&pow_cancel, 0);
    sigaction(SIGINT, &sa, &old);
    char stamp[PST_HASHCASH_STAMP_MAX + 1];
    int rc = pst_hashcash_mint(&p, stamp, sizeof stamp);
    sigaction(SIGINT, &old, NULL);
    clear_line(&pl);

    if (rc == PST_E_CANCELLED) {
        pst_cli_error("pow: cancelled after %.1f s", mono_now() - pl.start);
        return PST_EXIT_FAIL;
    }
    if (rc != PST_OK) {
        pst_cli_error("pow: mint failed: %s", pst_strerror(rc));
        return PST_EXIT_FAIL;
    }
    printf("%s\n", stamp);
    return fflush(stdout) == 0 ? PST_EXIT_OK : PST_EXIT_FAIL;
}

/* ---- check ----------------------------------------------------------------- */

static void iso_date(uint64_t t, char out[32]) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%llu", (unsigned long long)t);
}

static void print_json(const char *stamp, int rc, const pst_hashcash_result *r) {
    printf("{\"stamp\":");
    pst_cli_json_string(stdout, stamp);
    if (rc != PST_OK) {
        printf(",\"valid\":false,\"error\":\"%s\",\"reason\":", pst_err_name(rc));
        pst_cli_json_string(stdout, pst_strerror(rc));
        printf("}\n");
        return;
    }
    pst_hashcash_fields f;
    if (pst_hashcash_parse(stamp, strlen(stamp), &f) != PST_OK)
        memset(&f, 0, sizeof f);
    char hex[2 * PST_HASHCASH_SPENT_KEY_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, r->spent_key, sizeof r->spent_key);
    printf(",\"valid\":true,\"bits\":%u,\"actual_bits\":%u,\"date\":%llu,\"resource\":", r->bits,
           pst_hashcash_count_bits(stamp, strlen(stamp)), (unsigned long long)r->date);
    pst_cli_json_string(stdout, f.resource);
    printf(",\"ext\":");
    pst_cli_json_string(stdout, f.ext);
    printf(",\"remember_until\":%llu,\"spent_key\":\"%s\"}\n",
           (unsigned long long)r->remember_until, hex);
}

static int pow_check(int argc, char **argv) {
    static const struct option opts[] = {
        {"bits", required_argument, NULL, 'b'},
        {"resource", required_argument, NULL, 'r'},
        {"ext", required_argument, NULL, 'x'},
        {"max-age", required_argument, NULL, 'a'},
        {"max-future", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t bits = 0;
    bool have_bits = false, json = false;
    const char *resource = NULL;
    pst_hashcash_policy pol;
    pst_hashcash_policy_init(&pol, 0, NULL);
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "b:r:x:a:f:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!pst_cli_parse_u64(optarg, 0, PST_HASHCASH_BITS_MAX, &bits))
                return usage_error("--bits must be 0..160, not '%s'", optarg);
            have_bits = true;
            break;
        case 'r':
            resource = optarg;
            break;
        case 'x':
            pol.ext = optarg;
            break;
        case 'a':
            if (!pst_cli_parse_u64(optarg, 0, UINT64_MAX, &pol.max_age))
                return usage_error("bad --max-age '%s'", optarg);
            break;
        case 'f':
            if (!pst_cli_parse_u64(optarg, 0, UINT64_MAX, &pol.max_future))
                return usage_error("bad --max-future '%s'", optarg);
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return PST_EXIT_OK;
        default:
            return usage_error("unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    if (!have_bits || resource == NULL)
        return usage_error("check needs --bits N and --resource R");
    if (optind != argc - 1)
        return usage_error("check needs exactly one STAMP");
    const char *stamp = argv[optind];
    pol.min_bits = (unsigned)bits;
    pol.resource = resource;

    pst_hashcash_result r;
    int rc = pst_hashcash_verify(stamp, strlen(stamp), &pol, (uint64_t)time(NULL), &r);
    if (json)
        print_json(stamp, rc, &r);
    if (rc != PST_OK) {
        pst_cli_error("pow: invalid stamp: %s (%s)", pst_strerror(rc), pst_err_name(rc));
        return PST_EXIT_FAIL;
    }
    if (!json) {
        char date[32];
        iso_date(r.date, date);
        printf("valid: %u bits, dated %s\n", r.bits, date);
    }
    return fflush(stdout) == 0 ? PST_EXIT_OK : PST_EXIT_FAIL;
}

int pst_cmd_pow(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return PST_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        usage(stdout);
        return PST_EXIT_OK;
    }
    if (strcmp(sub, "mint") == 0)
        return pow_mint(argc - 1, argv + 1);
    if (strcmp(sub, "check") == 0)
        return pow_check(argc - 1, argv + 1);
    return usage_error("unknown subcommand '%s' (mint or check)", sub);
}
