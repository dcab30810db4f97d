#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ctrl_client.h"
#include "json.h"
#include "pst_fetch.h"
#include "pst_home.h"
#include "pst_log.h"
#include "pst_node.h"

#define PST_CLI_TIMEOUT_S 60
/* How long after Ctrl-C a long call waits for the node to confirm. */
#define PST_CLI_CANCEL_WAIT_S 10

int pst_cli_common_option(pst_cli_common *c, const char *name, const char *value) {
    if (strcmp(name, "json") == 0) {
        c->json = true;
        return 1;
    }
    static const char *const common[] = {"home",    "seed", "seeds-file",
                                         "network", "port", "log-level"};
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
        if (strcmp(name, common[i]) != 0)
            continue;
        char err[256];
        if (pst_config_flag(&c->flags, name, value, err, sizeof err) != PST_OK) {
            pst_cli_error("--%s: %s", name, err);
            return -1;
        }
        if (c->n_flags == PST_CLI_FLAGS_MAX) {
            pst_cli_error("--%s: more than %d node flags", name, PST_CLI_FLAGS_MAX);
            return -1;
        }
        c->flag_names[c->n_flags] = common[i];
        c->flag_values[c->n_flags++] = value;
        return 1;
    }
    return 0;
}

int pst_cli_parse_options(int argc, char **argv, const struct option *opts, const char *help,
                          pst_cli_common *c, pst_cli_own_option_fn own, void *user) {
    return pst_cli_parse_options_short(argc, argv, "", opts, help, c, own, user);
}

int pst_cli_parse_options_short(int argc, char **argv, const char *shortopts,
                                const struct option *opts, const char *help, pst_cli_common *c,
                                pst_cli_own_option_fn own, void *user) {
    memset(c, 0, sizeof *c);
    pst_config_flags_init(&c->flags);
    int val, idx = -1;
    optind = 1;
    while ((val = getopt_long(argc, argv, shortopts, opts, &idx)) != -1) {
        if (val == 'H') {
            fputs(help, stdout);
            return PST_CLI_HELP_SHOWN;
        }
        if (val == '?') {
            fputs(help, stderr);
            return PST_EXIT_USAGE;
        }
        /* getopt sets idx for a long option only */
        int r = idx >= 0 ? pst_cli_common_option(c, opts[idx].name, optarg) : 0;
        idx = -1;
        if (r < 0)
            return PST_EXIT_USAGE;
        if (r == 0 && (r = own != NULL ? own(user, val, optarg) : PST_EXIT_USAGE) != 0)
            return r;
    }
    return 0;
}

/* MSG_NOSIGNAL: a node that closed the connection (it refused this user, or
 * is over its connection limit) is an error to report, not a SIGPIPE death. */
int pst_cli_write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* -1 with errno set; EOF is errno 0 */
static int read_all(int fd, uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            errno = 0;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int pst_cli_read_response(int fd, uint8_t *buf, pst_ctrl_response *resp) {
    uint32_t len;
    if (read_all(fd, buf, PST_FRAME_HEADER_BYTES) != 0)
        return -1;
    if (pst_frame_header_parse(buf, PST_CTRL_FRAME_MAX, &len) != PST_OK ||
        read_all(fd, buf, len) != 0)
        return -2;
    return pst_ctrl_response_decode(buf, len, resp) == PST_OK ? 0 : -3;
}

void pst_cli_report_dropped(const char *home, int err, bool wrote) {
    if (err == EAGAIN || err == EWOULDBLOCK)
        pst_cli_error("the node at %s did not answer within %d s (is it stuck? see its log)", home,
                      PST_CLI_TIMEOUT_S);
    else
        pst_cli_error("the node at %s closed the control connection %s (%s): it is stopping, "
                      "overloaded (too many connections at once), or refused this user (the "
                      "control socket serves only the user the node runs as, and root); see the "
                      "node's log, then try again",
                      home, wrote ? "without answering" : "before reading the request",
                      err == 0 ? "end of file" : strerror(err));
}

/* Counts SIGINTs during a long call; the wait loop polls it (a handler may
 * only touch a sig_atomic_t). */
static volatile sig_atomic_t call_interrupts;

static void on_sigint(int sig) {
    (void)sig;
    call_interrupts++;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until fd is readable (1), a new SIGINT arrived (0) or the deadline
 * passed (-1, errno EAGAIN). Polls in slices: a signal landing just before
 * poll() would otherwise be noticed only at the next frame. */
static int wait_readable(int fd, double deadline, sig_atomic_t *seen) {
    for (;;) {
        if (call_interrupts != *seen) {
            *seen = call_interrupts;
            return 0;
        }
        double left = deadline - mono_now();
        if (left <= 0) {
            errno = EAGAIN;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, left < 0.2 ? (int)(left * 1000) + 1 : 200);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* How a call over the socket ended. */
typedef enum {
    SOCK_ANSWERED,    /* resp holds the final answer */
    SOCK_NO_NODE,     /* nobody listens: nothing printed */
    SOCK_FAILED,      /* printed */
    SOCK_UNAVAILABLE, /* the node refused or dropped the connection (printed) */
} sock_result;

/* After the request went out: reads frames until the final answer, handing
 * progress frames to lc (or skipping them). On Ctrl-C during a long call it
 * shuts its writing half down, which cancels the request in the node, and
 * waits SEND_CANCEL_WAIT_S more for the answer that says how it ended. */
static sock_result read_answer(int fd, uint8_t *buf, const char *home, pst_cli_long_call *lc,
                               pst_ctrl_response *resp) {
    unsigned patience = lc != NULL ? lc->timeout_s : PST_CLI_TIMEOUT_S;
    double deadline = mono_now() + patience;
    sig_atomic_t seen = call_interrupts;
    bool cancelled = false;
    for (;;) {
        int w = wait_readable(fd, deadline, &seen);
        if (w == 0 && !cancelled && lc != NULL) {
            cancelled = lc->cancelled = true;
            if (lc->progress != NULL)
                lc->progress(lc->user, NULL);
            (void)shutdown(fd, SHUT_WR);
            deadline = mono_now() + PST_CLI_CANCEL_WAIT_S;
            continue;
        }
        int e = w < 0 ? errno : 0;
        int r = w == 0 ? -1 : w < 0 ? -1 : pst_cli_read_response(fd, buf, resp);
        if (r == 0 && resp->status == PST_CTRL_STATUS_PROGRESS) {
            if (lc != NULL && lc->progress != NULL && !cancelled)
                lc->progress(lc->user, resp->body);
            pst_ctrl_response_free(resp);
            deadline = mono_now() + patience;
            continue;
        }
        if (r == -1 && w > 0)
            e = errno;
        if (lc != NULL && lc->progress != NULL)
            lc->progress(lc->user, NULL);
        if (r == 0)
            return SOCK_ANSWERED;
        if (r == -3) {
            pst_cli_error("the node sent an answer this CLI cannot read (version mismatch?)");
            return SOCK_FAILED;
        }
        if (cancelled) {
            pst_cli_error("cancelled, but the node did not confirm it in time: %s",
                          lc->unconfirmed_hint);
            return SOCK_FAILED;
        }
        if (lc != NULL) {
            pst_cli_error("the node at %s did not answer: %s", home, lc->lost_hint);
            return SOCK_FAILED;
        }
        if (r == -1) {
            pst_cli_report_dropped(home, e, true);
            return SOCK_UNAVAILABLE;
        }
        pst_cli_error("the node at %s sent a broken answer (see its log)", home);
        return SOCK_FAILED;
    }
}

static sock_result call_socket(const char *home, pst_ctrl_request *req, pst_cli_long_call *lc,
                               pst_ctrl_response *resp) {
    char path[PST_PATH_MAX];
    struct sockaddr_un sa;
    if (pst_home_path(home, PST_FILE_CONTROL, path, sizeof path) != PST_OK ||
        strlen(path) >= sizeof sa.sun_path) {
        pst_cli_error("control socket path too long: %s", path);
        return SOCK_FAILED;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SOCK_FAILED;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED)
            return SOCK_NO_NODE;
        if (e == EACCES || e == EPERM) {
            pst_cli_error("cannot connect to %s: %s: the node serves only the user it runs as "
                          "(and root); run postern as that user",
                          path, strerror(e));
            return SOCK_UNAVAILABLE;
        }
        pst_cli_error("cannot connect to %s: %s", path, strerror(e));
        return SOCK_FAILED;
    }
    /* a frame, once it starts, arrives whole: only a stuck node stalls here */
    struct timeval tv = {PST_CLI_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sigaction sa_int, old_int;
    if (lc != NULL) {
        lc->cancelled = false;
        memset(&sa_int, 0, sizeof sa_int);
        sa_int.sa_handler = on_sigint; /* no SA_RESTART: poll returns EINTR */
        sigemptyset(&sa_int.sa_mask);
        sigaction(SIGINT, &sa_int, &old_int);
    }
    uint8_t *buf = malloc(PST_FRAME_HEADER_BYTES + PST_CTRL_FRAME_MAX);
    size_t len = 0;
    sock_result rc = SOCK_FAILED;
    if (buf == NULL || pst_ctrl_request_encode(req, buf + PST_FRAME_HEADER_BYTES,
                                               PST_CTRL_FRAME_MAX, &len) != PST_OK) {
        pst_cli_error("request too large");
        goto out;
    }
    pst_frame_header_write((uint32_t)len, buf);
    if (pst_cli_write_all(fd, buf, len + PST_FRAME_HEADER_BYTES) != 0) {
        int e = errno;
        /* the node may have said why before closing: show that */
        if (pst_cli_read_response(fd, buf, resp) == 0) {
            rc = SOCK_ANSWERED;
            goto out;
        }
        pst_ctrl_response_free(resp);
        pst_cli_report_dropped(home, e, false); /* nothing was done */
        rc = SOCK_UNAVAILABLE;
        goto out;
    }
    rc = read_answer(fd, buf, home, lc, resp);
out:
    if (lc != NULL)
        sigaction(SIGINT, &old_int, NULL);
    free(buf);
    close(fd);
    return rc;
}

int pst_cli_load_config(const pst_cli_common *c, pst_node_config *cfg) {
    char err[1024] = "";
    if (pst_config_load(cfg, &c->flags, err, sizeof err) == PST_OK)
        return 0;
    pst_cli_error("%s", err);
    return PST_EXIT_USAGE;
}

int pst_cli_call(pst_cli_common *c, pst_ctrl_request *req, pst_ctrl_response *resp,
                 bool *via_oneshot) {
    *via_oneshot = false;
    memset(resp, 0, sizeof *resp);
    char err[1024] = "";
    pst_node_config cfg;
    if (pst_cli_load_config(c, &cfg) != 0)
        return PST_EXIT_USAGE;
    pst_log_set_level(cfg.log_level == PST_LOG_INFO ? PST_LOG_WARN : cfg.log_level);
    sock_result sr = call_socket(cfg.home, req, c->long_call, resp);
    if (sr == SOCK_ANSWERED)
        return 0;
    if (sr == SOCK_UNAVAILABLE)
        return PST_EXIT_UNAVAILABLE;
    if (sr != SOCK_NO_NODE)
        return PST_EXIT_FAIL;
    int rc;
    if (c->offline != NULL) {
        rc = c->offline(&cfg, &resp->body, err, sizeof err);
        if (rc == PST_OK)
            return 0;
        pst_cli_error("%s", err[0] ? err : pst_strerror(rc));
        return rc == PST_E_CHECKSUM || rc == PST_E_MISMATCH ? PST_EXIT_CONFIG : PST_EXIT_FAIL;
    }
    if (c->no_oneshot) {
        /* posternd would refuse this home: say why rather than "start it" */
        int irc = pst_cli_check_identity(cfg.home);
        if (irc != PST_EXIT_OK)
            return irc;
        pst_cli_error("no node is running for %s: start it with 'posternd --home %s'", cfg.home,
                      cfg.home);
        return c->no_node_exit != 0 ? c->no_node_exit : PST_EXIT_FAIL;
    }
    if (pst_cli_progress_enabled())
        fprintf(stderr, "postern: no node running for %s; starting a short-lived one...\n",
                cfg.home);
    *via_oneshot = true;
    return pst_cli_oneshot(c, req, resp);
}

int pst_cli_add_arg(pst_ctrl_request *req, const char *key, const char *value,
                    const char *too_long_fmt, ...) {
    int rc = pst_ctrl_request_add_arg(req, key, value);
    if (rc == PST_OK)
        return 0;
    if (rc == PST_E_INVAL) {
        pst_cli_error("argument '%s' is not valid UTF-8", key ? key : req->command);
        return PST_EXIT_USAGE;
    }
    va_list ap;
    va_start(ap, too_long_fmt);
    pst_cli_verror(too_long_fmt, ap);
    va_end(ap);
    return PST_EXIT_USAGE;
}

int pst_cli_check_identity(const char *home) {
    char idpath[PST_PATH_MAX], dbpath[PST_PATH_MAX], err[1024] = "";
    if (pst_home_path(home, PST_FILE_IDENTITY, idpath, sizeof idpath) != PST_OK ||
        pst_home_path(home, PST_FILE_STORE, dbpath, sizeof dbpath) != PST_OK ||
        access(idpath, F_OK) != 0)
        return PST_EXIT_OK;
    pst_store *st = NULL;
    if (access(dbpath, F_OK) == 0 && pst_store_open_ex(&st, dbpath, err, sizeof err) != PST_OK) {
        pst_cli_error("%s", err);
        return PST_EXIT_FAIL;
    }
    pst_identity *id = NULL;
    int rc = pst_identity_load(home, NULL, st, PST_IDLOAD_CHECK_ONLY, &id, err, sizeof err);
    pst_identity_free(id);
    pst_store_close(st);
    if (rc == PST_E_CHECKSUM || rc == PST_E_MISMATCH) {
        pst_cli_error("%s", err);
        return PST_EXIT_CONFIG;
    }
    return PST_EXIT_OK; /* other problems are posternd's to report */
}

const char *pst_cli_time(uint64_t t, char *buf, size_t cap) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

void pst_cli_print_json(const pst_value *v) {
    pst_value_write_json(v, stdout);
    fputc('\n', stdout);
}

void pst_cli_print_value(FILE *out, const pst_value *v, int indent) {
    for (const pst_value *m = pst_value_first(v); m != NULL; m = pst_value_next(m)) {
        const char *key = pst_value_key(m);
        fprintf(out, "%*s", indent, "");
        if (key)
            fprintf(out, "%s:", key);
        else
            fprintf(out, "-");
        uint64_t u;
        bool b;
        size_t n;
        switch (pst_value_type(m)) {
        case PST_VALUE_UINT:
            pst_value_as_uint(m, &u);
            fprintf(out, " %llu\n", (unsigned long long)u);
            break;
        case PST_VALUE_BOOL:
            pst_value_as_bool(m, &b);
            fprintf(out, " %s\n", b ? "yes" : "no");
            break;
        case PST_VALUE_STR:
            fprintf(out, " %s\n", pst_value_as_str(m, &n));
            break;
        case PST_VALUE_BIN: {
            const uint8_t *p = pst_value_as_bin(m, &n);
            fputc(' ', out);
            for (size_t i = 0; i < n; i++)
                fprintf(out, "%02x", p[i]);
            fputc('\n', out);
            break;
        }
        case PST_VALUE_ARRAY:
        case PST_VALUE_MAP:
            if (pst_value_count(m) == 0) {
                fprintf(out, " (none)\n");
            } else {
                fputc('\n', out);
                pst_cli_print_value(out, m, indent + 2);
            }
            break;
        default:
            fputc('\n', out);
        }
    }
}

int pst_cli_call_and_print(pst_cli_common *common, pst_ctrl_request *req) {
    pst_ctrl_response resp;
    bool oneshot;
    int rc = pst_cli_call(common, req, &resp, &oneshot);
    if (rc != 0)
        return rc;
    rc = (int)resp.status;
    if (resp.error[0] != '\0') {
        pst_cli_error("%s", resp.error);
    } else if (common->json) {
        pst_cli_print_json(resp.body);
    } else {
        pst_cli_print_value(stdout, resp.body, 0);
    }
    pst_ctrl_response_free(&resp);
    return rc;
}
