/* posternd: the Postern daemon. Runs in the foreground, logs to stderr,
 * stops cleanly on SIGINT/SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "pst_build.h"
#include "pst_fetch.h"
#include "pst_home.h"
#include "pst_log.h"
#include "pst_node.h"

#define EXIT_USAGE 64
/* sysexits' EX_CONFIG: the home itself is wrong (identity.key damaged, or not
 * the identity the store was made for). Restarting cannot help, so service
 * managers can be told not to (systemd: RestartPreventExitStatus=78). */
#define EXIT_IDENTITY 78
/* --oneshot: how long to wait for a seed to answer before asking anyway */
#define PST_ONESHOT_JOIN_MS 5000u

static void usage(FILE *out) {
    fprintf(out, "usage: posternd [--home DIR] [--port UDP_PORT] [--fetch-port TCP_PORT]\n"
                 "                [--seed HOST:PORT]... [--seeds-file F] [--network ID]\n"
                 "                [--log-level error|warn|info|debug] [--advertise HOST]\n"
                 "                [--pow-bits N] [--republish SECONDS] [--peer-discovery yes|no]\n"
                 "                [--passphrase-file F] [--inbox-poll S] [--renotify S]\n"
                 "                [--max-message-size BYTES] [--message-lifetime S]\n"
                 "                [--pow-escalate S] [--smtp-port N|0|any]\n"
                 "                [--smtp-address ADDR] [--smtp-idle-timeout S]\n"
                 "                [--smtp-total-timeout S] [--smtp-max-sessions N]\n"
                 "                [--lmtp PATH|off] [--lmtp-unknown folder|reject]\n"
                 "                [--smarthost HOST:PORT] [--smarthost-tls none|starttls|tls]\n"
                 "                [--smarthost-auth-file F] [--smarthost-giveup S]\n"
                 "                [--smarthost-retry S] [--smarthost-stamp-bits N]\n"
                 "                [--smarthost-ca-file PATH]\n"
                 "                [--lmtp-authserv-id ID] [--oneshot]\n"
                 "\n"
                 "Runs your Postern node in the foreground: joins the DHT from the seeds,\n"
                 "publishes and re-publishes your key record, serves the control socket\n"
                 "DIR/control.sock for the postern CLI. Stop it with Ctrl-C (SIGINT) or SIGTERM.\n"
                 "\n"
                 "DIR is --home, else $POSTERN_HOME, else ~/.local/share/postern. Settings may\n"
                 "also be in DIR/postern.conf (see docs/CONFIG.md); flags win.\n"
                 "--oneshot is the short-lived node postern starts when no posternd runs:\n"
                 "one control request on stdin, its answer on stdout, then it exits.\n"
                 "Port 0 picks a free port. Network 0 is the public network.\n"
                 "SMTP submission listens on 127.0.0.1:1587 (--smtp-port 0 turns it off, any\n"
                 "picks a free port; docs/SMTP.md). LMTP for Internet mail listens on the unix\n"
                 "socket DIR/lmtp.sock (--lmtp off turns it off; docs/LMTP.md). Internet\n"
                 "recipients go out through --smarthost (docs/SMARTHOST.md).\n"
                 "\n"
                 "Exit codes: 0 stopped cleanly, 1 failed to start or crashed, 64 usage error,\n"
                 "78 identity.key is damaged or is not the identity of this home's store\n"
                 "(nothing was published; see the message).\n");
}

static uv_signal_t sig_int, sig_term;
static pst_node *node;
static int stopping;

static void on_stopped(void *user) {
    (void)user;
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
    (void)s;
    if (stopping++) {
        pst_log_warn("second signal: exiting now");
        exit(1);
    }
    pst_log_info("received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    pst_node_stop(node, on_stopped, NULL);
}

/* --oneshot: the short-lived node `postern` runs when no posternd serves
 * the home (tools/postern/oneshot_spawn.c). It lives here, not in the CLI,
 * so that the CLI links only what the control-socket client needs (no
 * OpenDHT, GnuTLS or libuv: a process start of about a millisecond).
 * Protocol: one control request frame (pst_frame_header_write + request) on
 * stdin, one response frame on stdout, errors as "postern: ..." on stderr;
 * exit 0 when it answered, 1 otherwise. */
static int read_full(int fd, uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef struct {
    uint8_t *buf; /* header + PST_CTRL_FRAME_MAX */
    size_t len;   /* 0: no answer */
} oneshot_out;

static void on_oneshot_answer(void *user, const pst_ctrl_response *r) {
    oneshot_out *o = user;
    size_t len = 0;
    if (pst_ctrl_response_encode(r, o->buf + PST_FRAME_HEADER_BYTES, PST_CTRL_FRAME_MAX, &len) ==
        PST_OK) {
        pst_frame_header_write((uint32_t)len, o->buf);
        o->len = len + PST_FRAME_HEADER_BYTES;
    }
}

static int run_oneshot(const pst_node_config *cfg) {
    char err[1024] = "";
    uint8_t *buf = malloc(PST_FRAME_HEADER_BYTES + PST_CTRL_FRAME_MAX);
    pst_ctrl_request *req = malloc(sizeof *req);
    uint32_t len = 0;
    int rc = 1;
    if (buf == NULL || req == NULL) {
        fprintf(stderr, "postern: out of memory\n");
        goto out;
    }
    if (read_full(0, buf, PST_FRAME_HEADER_BYTES) != 0 ||
        pst_frame_header_parse(buf, PST_CTRL_FRAME_MAX, &len) != PST_OK ||
        read_full(0, buf, len) != 0 || pst_ctrl_request_decode(buf, len, req) != PST_OK) {
        fprintf(stderr, "postern: the short-lived node got no readable request\n");
        goto out;
    }
    oneshot_out o = {buf, 0};
    int nrc =
        pst_node_oneshot(cfg, req, PST_ONESHOT_JOIN_MS, on_oneshot_answer, &o, err, sizeof err);
    if (nrc != PST_OK || o.len == 0) {
        fprintf(stderr, "postern: %s\n", err[0] ? err : "the short-lived node could not answer");
        goto out;
    }
    rc = write_full(1, buf, o.len) == 0 ? 0 : 1;
out:
    free(req);
    free(buf);
    return rc;
}

static char *read_passphrase(const char *path, char *err, size_t errcap) {
    char *buf = sodium_malloc(1025);
    size_t len = 0;
    if (buf == NULL)
        return NULL;
    int rc = pst_secret_file_read(path, (uint8_t *)buf, 1024, &len, err, errcap);
    if (rc != PST_OK) {
        sodium_free(buf);
        return NULL;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    return buf;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"home", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {"fetch-port", required_argument, 0, 'f'},
        {"seed", required_argument, 0, 's'},
        {"seeds-file", required_argument, 0, 'S'},
        {"network", required_argument, 0, 'n'},
        {"log-level", required_argument, 0, 'l'},
        {"advertise", required_argument, 0, 'a'},
        {"pow-bits", required_argument, 0, 'b'},
        {"republish", required_argument, 0, 'r'},
        {"peer-discovery", required_argument, 0, 'd'},
        {"inbox-poll", required_argument, 0, 'i'},
        {"renotify", required_argument, 0, 'N'},
        {"max-message-size", required_argument, 0, 'm'},
        {"message-lifetime", required_argument, 0, 'L'},
        {"pow-escalate", required_argument, 0, 'E'},
        {"smtp-port", required_argument, 0, 'T'},
        {"smtp-address", required_argument, 0, 'A'},
        {"smtp-idle-timeout", required_argument, 0, 'I'},
        {"smtp-total-timeout", required_argument, 0, 'O'},
        {"smtp-max-sessions", required_argument, 0, 'M'},
        {"lmtp", required_argument, 0, 'U'},
        {"lmtp-unknown", required_argument, 0, 'K'},
        {"smarthost", required_argument, 0, 'x'},
        {"smarthost-tls", required_argument, 0, 'x'},
        {"smarthost-auth-file", required_argument, 0, 'x'},
        {"smarthost-ca-file", required_argument, 0, 'x'},
        {"smarthost-giveup", required_argument, 0, 'x'},
        {"smarthost-retry", required_argument, 0, 'x'},
        {"smarthost-stamp-bits", required_argument, 0, 'x'},
        {"lmtp-authserv-id", required_argument, 0, 'R'},
        {"passphrase-file", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'H'},
        {"version", no_argument, 0, 'V'},
        {"oneshot", no_argument, 0, 'o'},
        {0, 0, 0, 0},
    };
    pst_config_flags flags;
    pst_config_flags_init(&flags);
    const char *passfile = NULL;
    bool oneshot = false;
    char err[1024] = "";
    int c, idx;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        if (c == 'H') {
            usage(stdout);
            return 0;
        }
        if (c == 'V') {
            printf("posternd %s\n", PST_VERSION);
            return 0;
        }
        if (c == 'o') {
            oneshot = true;
            continue;
        }
        if (c == 'P') {
            passfile = optarg;
            continue;
        }
        if (c == '?') {
            usage(stderr);
            return EXIT_USAGE;
        }
        if (pst_config_flag(&flags, opts[idx].name, optarg, err, sizeof err) != PST_OK) {
            fprintf(stderr, "posternd: --%s: %s\n", opts[idx].name, err);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "posternd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    /* secrets must never end up in a core file */
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) {
        fprintf(stderr, "posternd: libsodium failed to initialise\n");
        return 1;
    }
    pst_node_config cfg;
    if (pst_config_load(&cfg, &flags, err, sizeof err) != PST_OK) {
        fprintf(stderr, "posternd: %s\n", err);
        return EXIT_USAGE;
    }
    if (oneshot) {
        /* it answers for the CLI, which hides info lines unless asked */
        pst_log_set_program("postern");
        pst_log_set_level(cfg.log_level == PST_LOG_INFO ? PST_LOG_WARN : cfg.log_level);
        return run_oneshot(&cfg);
    }
    pst_log_set_level(cfg.log_level);
    char *pass = NULL;
    if (passfile != NULL && (pass = read_passphrase(passfile, err, sizeof err)) == NULL) {
        fprintf(stderr, "posternd: passphrase file: %s\n", err);
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    int rc = pst_node_start(loop, &cfg, PST_NODE_DAEMON, pass, &node, err, sizeof err);
    if (pass)
        sodium_free(pass);
    if (rc != PST_OK) {
        pst_log_error("%s", err);
        uv_loop_close(loop);
        return rc == PST_E_CHECKSUM || rc == PST_E_MISMATCH ? EXIT_IDENTITY : 1;
    }
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    pst_log_info("stopped");
    return 0;
}
