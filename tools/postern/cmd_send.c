/* postern send / postern outbox / postern unsend.
 *
 * The message never travels in a control frame (1 MiB cap): send copies it
 * (or builds it from --subject/--body) into DIR/spool/ (mode 0600 in the
 * 0700 home) and passes the node the file's path. The node answers once the
 * message is durable in its outbox; the spool copy is removed either way. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ctrl_client.h"
#include "json.h"
#include "pst_fetch.h"
#include "pst_home.h"
#include "pst_identity.h"
#include "pst_mailmsg.h"
#include "pst_qp.h"
#include "send_common.h"

#define SEND_RCPTS_MAX (PST_CTRL_ARGS_MAX - 2) /* the other args: file, pow */
#define COPY_CHUNK 65536u
/* Lookups of 30 recipients take longer than the CLI's usual 60 s, and a
 * send that timed out here would still be stored by the node, and the user
 * would send it again. Progress frames while minting restart the wait. */
#define SEND_TIMEOUT_S 1800

static const char SEND_HELP[] =
    "usage: postern send --to R [--to R]... [--cc R]... [--bcc R]...\n"
    "                    [--pow auto|always|never] [--json] [--home DIR]\n"
    "                    (--subject S [--body B | FILE | -] | FILE | -)\n"
    "\n"
    "Sends a message. R is a fingerprint or an address; an address must belong\n"
    "to exactly one valid key (else the candidates are listed and nothing is\n"
    "sent). The message is an RFC 5322 message from FILE or stdin (-), sent as\n"
    "is except that line endings become LF (a bare CR ends a line too), Bcc:\n"
    "fields are removed and From:, Date: and Message-ID: are added when\n"
    "missing; or a simple text message built from --subject and\n"
    "--body (or with FILE/- as its body), with To:/Cc: from the flags. Bcc\n"
    "recipients appear in nobody's copy.\n"
    "\n"
    "The message is encrypted once and kept by your node, which leaves a sealed\n"
    "notification for each recipient in the DHT; their nodes fetch it from\n"
    "yours. --pow: auto (default) pays a hashcash stamp to recipients who are\n"
    "not your trusted or known contacts, always pays everyone, never pays.\n"
    "Minting uses every core; when it takes over a second a progress line with\n"
    "the expected time is drawn on stderr. Ctrl-C cancels: nothing is sent.\n"
    "\n"
    "Prints the message id. Exit codes: 0 the message is durably in your\n"
    "outbox, 1 not sent (the message says why), 64 usage error. Needs a\n"
    "running posternd.\n";

static const char OUTBOX_HELP[] =
    "usage: postern outbox [MESSAGE_ID] [--limit N] [--json] [--home DIR]\n"
    "\n"
    "Lists what you sent, newest last (the last N messages, default 20), or one\n"
    "message by id (or a unique prefix of 8+ hex digits): size, dates, subject,\n"
    "and per recipient the kind (to/cc/bcc), the state (pending, notified,\n"
    "fetched, expired, failed, withdrawn), the last notification, the last\n"
    "fetch and the recipient's signed receipt; for a recipient without the\n"
    "message, why (never fetched, fetched without a receipt, expired, ...).\n"
    "A message whose stored body is damaged says so: it is never served.\n"
    "\n"
    "postern outbox retry MESSAGE_ID: offer the message again now to every\n"
    "recipient still waiting for it (its notification is put again at once and\n"
    "the back-off starts over), like Postfix's 'postqueue -i'. A recipient\n"
    "whose notification expired cannot be offered it again: send it again.\n";

static const char UNSEND_HELP[] =
    "usage: postern unsend MESSAGE_ID [--json] [--home DIR]\n"
    "\n"
    "Withdraws a message from every recipient who has not fetched it yet: your\n"
    "node stops notifying them, refuses their fetches and deletes the message\n"
    "once nobody may fetch it. Notifications already in the DHT cannot be\n"
    "deleted; they expire within 10 minutes, and fetching fails. Exit 1 when\n"
    "every recipient already fetched it (or nobody is waiting).\n";

enum { OPT_TO = 1000, OPT_CC, OPT_BCC, OPT_POW, OPT_SUBJECT, OPT_BODY, OPT_LIMIT };

#define COMMON_OPTS                                                                                \
    {"home", required_argument, 0, 'h'}, {"json", no_argument, 0, 'j'},                            \
        {"help", no_argument, 0, 'H'}, {                                                           \
        "log-level", required_argument, 0, 'l'                                                     \
    }

typedef struct {
    const char *to[SEND_RCPTS_MAX], *cc[SEND_RCPTS_MAX], *bcc[SEND_RCPTS_MAX];
    unsigned n_to, n_cc, n_bcc;
    const char *pow, *subject, *body;
    uint64_t limit;
    bool have_limit;
} send_opts;

/* pst_cli_own_option_fn for send_opts */
static int own_option(void *user, int val, const char *arg) {
    send_opts *o = user;
    const char **list = NULL;
    unsigned *count = NULL;
    switch (val) {
    case OPT_TO:
        list = o->to, count = &o->n_to;
        break;
    case OPT_CC:
        list = o->cc, count = &o->n_cc;
        break;
    case OPT_BCC:
        list = o->bcc, count = &o->n_bcc;
        break;
    case OPT_POW:
        o->pow = arg;
        return 0;
    case OPT_SUBJECT:
        o->subject = arg;
        return 0;
    case OPT_BODY:
        o->body = arg;
        return 0;
    case OPT_LIMIT:
        if (!pst_cli_parse_u64(arg, 1, 1000, &o->limit)) {
            pst_cli_error("--limit must be 1..1000");
            return PST_EXIT_USAGE;
        }
        o->have_limit = true;
        return 0;
    default:
        return PST_EXIT_USAGE;
    }
    if (o->n_to + o->n_cc + o->n_bcc >= SEND_RCPTS_MAX) {
        pst_cli_error("at most %u recipients per message", SEND_RCPTS_MAX);
        return PST_EXIT_USAGE;
    }
    list[(*count)++] = arg;
    return 0;
}

/* Parses options; 0 ok, PST_CLI_HELP_SHOWN, else an exit code. */
static int parse(int argc, char **argv, const struct option *opts, const char *help,
                 pst_cli_common *common, send_opts *o) {
    int rc = pst_cli_parse_options(argc, argv, opts, help, common, own_option, o);
    common->no_oneshot = true;
    return rc;
}

static int call(pst_cli_common *common, pst_ctrl_request *req, pst_ctrl_response *resp) {
    bool oneshot;
    return pst_cli_call(common, req, resp, &oneshot);
}

/* ---- send: the progress line --------------------------------------------- */

typedef struct {
    bool enabled;
    int width; /* of the line drawn last, to blank it */
} progress_line;

static uint64_t body_uint(const pst_value *b, const char *key) {
    uint64_t v = 0;
    (void)pst_value_as_uint(pst_value_get(b, key), &v);
    return v;
}

/* One \r-updated line on stderr. The expected time is the mean for the
 * remaining share of the work at the current rate: a stamp may come much
 * sooner or several times later (each hash is a fresh lottery ticket). */
static void draw_progress(progress_line *pl, const pst_value *b) {
    size_t n;
    const char *phase = pst_value_as_str(pst_value_get(b, "phase"), &n);
    const char *fp = pst_value_as_str(pst_value_get(b, "recipient"), &n);
    if (!pl->enabled || phase == NULL || strcmp(phase, "minting") != 0 || fp == NULL)
        return;
    uint64_t done = body_uint(b, "hashes_done"), expected = body_uint(b, "hashes_expected");
    uint64_t rate = body_uint(b, "rate"), stamp = body_uint(b, "stamp"),
             stamps = body_uint(b, "stamps");
    char line[160], of[32] = "", speed[32] = "", left[48] = "";
    if (stamps > 1)
        snprintf(of, sizeof of, " (%llu of %llu)", (unsigned long long)stamp,
                 (unsigned long long)stamps);
    if (rate >= 1000000)
        snprintf(speed, sizeof speed, " (%.1f MH/s)", (double)rate / 1e6);
    else if (rate > 0)
        snprintf(speed, sizeof speed, " (%.0f kH/s)", (double)rate / 1e3);
    unsigned pct = 0;
    if (expected > 0 && done < expected) {
        pct = (unsigned)((double)done * 100.0 / (double)expected);
        if (rate > 0) {
            char d[PST_CLI_DURATION_BUFSIZE];
            double left_s = (double)(expected - done) / (double)rate;
            pst_cli_duration(left_s < 1 ? 1 : left_s, d);
            snprintf(left, sizeof left, ", about %s left", d);
        }
    } else if (expected > 0) {
        snprintf(left, sizeof left, ", longer than average");
        pct = 100;
    }
    int len = snprintf(line, sizeof line, "minting a %llu-bit stamp for %.8s%s: %u%%%s%s",
                       (unsigned long long)body_uint(b, "bits"), fp, of, pct, speed, left);
    if (len < 0)
        return;
    int pad = pl->width > len ? pl->width - len : 0;
    fprintf(stderr, "\r%s%*s", line, pad, "");
    fflush(stderr);
    pl->width = len;
}

static void clear_progress(progress_line *pl) {
    if (pl->width > 0) {
        fprintf(stderr, "\r%*s\r", pl->width, "");
        fflush(stderr);
    }
    pl->width = 0;
}

/* pst_cli_long_call.progress */
static void on_progress(void *user, const pst_value *body) {
    if (body != NULL)
        draw_progress(user, body);
    else
        clear_progress(user);
}

static int write_all(int fd, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies in to fd, at most max bytes in all (counting already). */
static int copy_stream(FILE *in, int fd, uint64_t *written, uint64_t max, const char *what) {
    static uint8_t buf[COPY_CHUNK];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, in)) > 0) {
        if (r > max - *written) {
            pst_cli_error("%s is larger than this node's max_message_size (%llu bytes)", what,
                          (unsigned long long)max);
            return PST_EXIT_FAIL;
        }
        if (write_all(fd, buf, r) != 0) {
            pst_cli_error("cannot write the spool file: %s", strerror(errno));
            return PST_EXIT_FAIL;
        }
        *written += r;
    }
    if (ferror(in)) {
        pst_cli_error("cannot read %s: %s", what, strerror(errno));
        return PST_EXIT_FAIL;
    }
    return 0;
}

/* The To:/Cc: value for R: the address as normalised, or a fingerprint as
 * FP@postern.invalid (the key's owner is named by its key). */
static int header_address(const char *r, char *out, size_t cap) {
    uint8_t pk[32];
    if (pst_fingerprint_parse(r, pk) == 0) {
        snprintf(out, cap, "%s@%s", r, PST_MAILMSG_DOMAIN_DEFAULT);
        return 0;
    }
    return pst_address_normalize(r, out, cap) == 0 ? 0 : -1;
}

static int build_headers(const send_opts *o, bool body_8bit, bool body_qp, int fd,
                         uint64_t *written) {
    static char to[SEND_RCPTS_MAX][PST_ADDRESS_MAX + 1], cc[SEND_RCPTS_MAX][PST_ADDRESS_MAX + 1];
    const char *top[SEND_RCPTS_MAX], *ccp[SEND_RCPTS_MAX];
    for (unsigned i = 0; i < o->n_to + o->n_cc; i++) {
        bool is_to = i < o->n_to;
        const char *r = is_to ? o->to[i] : o->cc[i - o->n_to];
        char *dst = is_to ? to[i] : cc[i - o->n_to];
        if (header_address(r, dst, PST_ADDRESS_MAX + 1) != 0) {
            pst_cli_error("'%s' is neither a fingerprint nor an address", r);
            return PST_EXIT_USAGE;
        }
        if (is_to)
            top[i] = dst;
        else
            ccp[i - o->n_to] = dst;
    }
    pst_mailmsg_simple m = {top, o->n_to, ccp, o->n_cc, o->subject, body_8bit, body_qp};
    static char hdr[64 * 1024];
    size_t len = 0;
    int rc = pst_mailmsg_simple_headers(&m, hdr, sizeof hdr, &len);
    if (rc != 0) {
        pst_cli_error("cannot build the message: %s",
                      rc == PST_E_INVAL ? "the subject contains control characters or invalid "
                                          "UTF-8"
                                        : "header too long");
        return PST_EXIT_USAGE;
    }
    if (write_all(fd, hdr, len) != 0) {
        pst_cli_error("cannot write the spool file: %s", strerror(errno));
        return PST_EXIT_FAIL;
    }
    *written += len;
    return 0;
}

/* The quoted-printable form of --body b[0..n), ending in a line break as
 * the 7bit/8bit forms do: a malloc'd *out (the caller frees it). A body
 * comes from argv, so it is small (128 KiB on Linux) and the bound is too. */
static int encode_body(const char *b, size_t n, char **out, size_t *len) {
    bool nl = n > 0 && b[n - 1] == '\n';
    size_t in_len = n + !nl, cap = pst_qp_encode_bound(in_len);
    uint8_t *in = malloc(in_len ? in_len : 1);
    *out = cap ? malloc(cap) : NULL;
    if (!in || !*out) {
        free(in);
        free(*out);
        *out = NULL;
        pst_cli_error("the body is too large to encode");
        return PST_EXIT_FAIL;
    }
    memcpy(in, b, n);
    if (!nl)
        in[n] = '\n';
    int rc = pst_qp_encode(in, in_len, *out, cap, len);
    free(in);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        pst_cli_error("cannot encode the body: %s", pst_strerror(rc));
        return PST_EXIT_FAIL;
    }
    return 0;
}

/* Writes the message into the spool file fd. */
static int spool_message(const send_opts *o, const char *input, int fd, uint64_t max) {
    uint64_t written = 0;
    bool simple = o->subject || o->body;
    FILE *in = NULL;
    int rc = 0;
    if (input) {
        in = strcmp(input, "-") == 0 ? stdin : fopen(input, "rb");
        if (in == NULL) {
            pst_cli_error("cannot open %s: %s", input, strerror(errno));
            return PST_EXIT_FAIL;
        }
    }
    if (simple) {
        bool body_8bit = in != NULL; /* unknown before reading it: declare UTF-8 */
        char *qp = NULL;
        size_t qp_len = 0, bl = o->body ? strlen(o->body) : 0;
        pst_cte cte = o->body ? pst_qp_choose((const uint8_t *)o->body, bl) : PST_CTE_7BIT;
        if (cte == PST_CTE_QP && (rc = encode_body(o->body, bl, &qp, &qp_len)) != 0)
            return rc;
        body_8bit = body_8bit || cte == PST_CTE_8BIT;
        rc = build_headers(o, body_8bit, cte == PST_CTE_QP, fd, &written);
        if (rc == 0 && o->body) {
            bool nl = bl > 0 && o->body[bl - 1] == '\n';
            int w = qp ? write_all(fd, qp, qp_len)
                       : write_all(fd, o->body, bl) != 0 || (!nl && write_all(fd, "\n", 1) != 0);
            if (w != 0) {
                pst_cli_error("cannot write the spool file: %s", strerror(errno));
                rc = PST_EXIT_FAIL;
            }
        }
        free(qp);
        if (rc != 0 && in && in != stdin)
            fclose(in);
        if (rc != 0)
            return rc;
    }
    if (rc == 0 && in)
        rc = copy_stream(in, fd, &written, max, strcmp(input, "-") == 0 ? "stdin" : input);
    if (in && in != stdin)
        fclose(in);
    return rc;
}

/* Below the node's one-line error: every problem once. With a single
 * problem the error line already explains it: only its candidates follow. */
void pst_cli_print_send_problems(const pst_value *body) {
    const pst_value *rs = pst_value_get(body, "recipients");
    size_t n;
    unsigned nbad = 0;
    for (const pst_value *r = pst_value_first(rs); r; r = pst_value_next(r)) {
        const char *status = pst_value_as_str(pst_value_get(r, "status"), &n);
        nbad += status != NULL && strcmp(status, "ok") != 0;
    }
    for (const pst_value *r = pst_value_first(rs); r; r = pst_value_next(r)) {
        const char *status = pst_value_as_str(pst_value_get(r, "status"), &n);
        if (status == NULL || strcmp(status, "ok") == 0)
            continue;
        const char *query = pst_value_as_str(pst_value_get(r, "query"), &n);
        const char *why = pst_value_as_str(pst_value_get(r, "error"), &n);
        if (nbad > 1 && why != NULL)
            fprintf(stderr, "  %s\n", why);
        else if (nbad > 1)
            fprintf(stderr, "  %s: %s\n", query ? query : "?", status);
        /* the keys an address led to; a fingerprint's own key is the
         * problem already named */
        const pst_value *cs = pst_value_get(r, "candidates");
        for (const pst_value *c = pst_value_first(cs); c; c = pst_value_next(c)) {
            const char *fp = pst_value_as_str(pst_value_get(c, "fingerprint"), &n);
            if (fp != NULL && query != NULL && strcasecmp(fp, query) == 0)
                continue;
            fprintf(stderr, "    %s  %s\n", fp ? fp : "?",
                    pst_value_as_str(pst_value_get(c, "status"), &n));
        }
    }
}

static void print_sent(const pst_value *b) {
    size_t n;
    uint64_t size = 0;
    const pst_value *rs = pst_value_get(b, "recipients");
    pst_value_as_uint(pst_value_get(b, "size"), &size);
    printf("%s\n", pst_value_as_str(pst_value_get(b, "message_id"), &n));
    fprintf(stderr, "postern: %llu bytes encrypted, stored in your outbox for %u recipient%s:\n",
            (unsigned long long)size, pst_value_count(rs), pst_value_count(rs) == 1 ? "" : "s");
    for (const pst_value *r = pst_value_first(rs); r; r = pst_value_next(r)) {
        uint64_t bits = 0;
        pst_value_as_uint(pst_value_get(r, "stamp_bits"), &bits);
        fprintf(stderr, "  %-3s %s (%s)", pst_value_as_str(pst_value_get(r, "kind"), &n),
                pst_value_as_str(pst_value_get(r, "fingerprint"), &n),
                pst_value_as_str(pst_value_get(r, "query"), &n));
        bool internet = false;
        pst_value_as_bool(pst_value_get(r, "internet"), &internet);
        if (internet)
            fprintf(stderr, ", through the smarthost with an X-Hashcash stamp");
        else if (bits)
            fprintf(stderr, ", %llu-bit stamp", (unsigned long long)bits);
        fputc('\n', stderr);
    }
    fprintf(stderr, "postern: their nodes fetch it from yours; see 'postern outbox'\n");
}

int pst_cmd_send(int argc, char **argv) {
    static const struct option opts[] = {COMMON_OPTS,
                                         {"to", required_argument, 0, OPT_TO},
                                         {"cc", required_argument, 0, OPT_CC},
                                         {"bcc", required_argument, 0, OPT_BCC},
                                         {"pow", required_argument, 0, OPT_POW},
                                         {"subject", required_argument, 0, OPT_SUBJECT},
                                         {"body", required_argument, 0, OPT_BODY},
                                         {0, 0, 0, 0}};
    pst_cli_common common;
    static send_opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, opts, SEND_HELP, &common, &o);
    if (rc != 0)
        return rc == PST_CLI_HELP_SHOWN ? PST_EXIT_OK : rc;
    const char *input = optind < argc ? argv[optind] : NULL;
    if (argc - optind > 1) {
        pst_cli_error("send takes one FILE (or - for stdin)");
        return PST_EXIT_USAGE;
    }
    if (o.n_to + o.n_cc + o.n_bcc == 0) {
        pst_cli_error("send needs at least one --to, --cc or --bcc recipient");
        return PST_EXIT_USAGE;
    }
    if (o.pow && strcmp(o.pow, "auto") && strcmp(o.pow, "always") && strcmp(o.pow, "never")) {
        pst_cli_error("--pow must be auto, always or never");
        return PST_EXIT_USAGE;
    }
    if (o.body && input) {
        pst_cli_error("give the body with --body or as FILE/-, not both");
        return PST_EXIT_USAGE;
    }
    if (!input && !o.subject && !o.body) {
        pst_cli_error("no message: give FILE, - (stdin) or --subject/--body (see --help)");
        return PST_EXIT_USAGE;
    }
    pst_node_config cfg;
    if (pst_cli_load_config(&common, &cfg) != 0)
        return PST_EXIT_USAGE;
    char path[PST_PATH_MAX];
    int fd;
    bool no_home;
    if ((rc = pst_cli_spool_create(cfg.home, path, &fd, &no_home)) != 0)
        return rc;
    rc = spool_message(&o, input, fd, cfg.max_message_bytes);
    if (close(fd) != 0 && rc == 0) {
        pst_cli_error("cannot write %s: %s", path, strerror(errno));
        rc = PST_EXIT_FAIL;
    }
    static pst_ctrl_request req;
    (void)pst_ctrl_request_init(&req, 1, "send");
    if (rc == 0 && pst_cli_add_arg(&req, "file", path, "spool path too long: %s", path) != 0)
        rc = PST_EXIT_FAIL;
    const char *const *lists[3] = {o.to, o.cc, o.bcc};
    const unsigned counts[3] = {o.n_to, o.n_cc, o.n_bcc};
    static const char *const keys[3] = {"to", "cc", "bcc"};
    for (int k = 0; k < 3 && rc == 0; k++)
        for (unsigned i = 0; i < counts[k] && rc == 0; i++)
            rc = pst_cli_add_arg(&req, keys[k], lists[k][i], "recipient too long: %.60s...",
                                 lists[k][i]);
    if (rc == 0 && o.pow)
        rc = pst_cli_add_arg(&req, "pow", o.pow, "--pow too long");
    pst_ctrl_response resp;
    if (rc == 0) {
        rc = pst_cli_send_spooled(&common, &req, path, &resp);
        /* send.md promises 1 for every "not sent", a refused or dropped
         * connection included */
        if (rc == PST_EXIT_UNAVAILABLE)
            rc = PST_EXIT_FAIL;
    } else if (unlink(path) != 0 && errno != ENOENT) {
        pst_cli_error("cannot remove %s: %s", path, strerror(errno));
    }
    if (rc != 0)
        return rc;
    rc = (int)resp.status;
    if (resp.status != PST_CTRL_STATUS_OK) {
        pst_cli_error("%s", resp.error);
        if (resp.body)
            pst_cli_print_send_problems(resp.body);
    } else if (common.json) {
        pst_cli_print_json(resp.body);
    } else {
        print_sent(resp.body);
    }
    pst_ctrl_response_free(&resp);
    return rc;
}

int pst_cli_spool_create(const char *home, char path[PST_PATH_MAX], int *fd, bool *no_home) {
    /* the node runs elsewhere: it needs an absolute path */
    char spool[PST_PATH_MAX], abs[PST_PATH_MAX];
    *fd = -1;
    *no_home = false;
    if (pst_home_path(home, "spool", spool, sizeof spool) != PST_OK) {
        pst_cli_error("home directory path too long");
        return PST_EXIT_FAIL;
    }
    if (mkdir(spool, 0700) != 0 && errno != EEXIST) {
        if (errno == ENOENT) {
            *no_home = true;
            pst_cli_error("no Postern home at %s: run 'postern init', then start posternd", home);
        } else {
            pst_cli_error("cannot create %s: %s", spool, strerror(errno));
        }
        return PST_EXIT_FAIL;
    }
    if (realpath(spool, abs) == NULL ||
        snprintf(path, PST_PATH_MAX, "%s/send-XXXXXX", abs) >= PST_PATH_MAX) {
        pst_cli_error("cannot use %s: %s", spool, strerror(errno));
        return PST_EXIT_FAIL;
    }
    *fd = mkstemp(path); /* mode 0600 */
    if (*fd < 0) {
        pst_cli_error("cannot create a file in %s: %s", spool, strerror(errno));
        return PST_EXIT_FAIL;
    }
    return 0;
}

int pst_cli_send_spooled(pst_cli_common *common, pst_ctrl_request *req, const char *path,
                         pst_ctrl_response *resp) {
    progress_line pl = {.enabled = pst_cli_progress_enabled(), .width = 0};
    pst_cli_long_call lc = {
        .timeout_s = SEND_TIMEOUT_S,
        .progress = on_progress,
        .user = &pl,
        .lost_hint = "the message may or may not be in the outbox (check 'postern outbox' "
                     "before sending again)",
        .unconfirmed_hint = "check 'postern outbox' before sending again",
    };
    common->long_call = &lc;
    memset(resp, 0, sizeof *resp);
    int rc = call(common, req, resp);
    common->long_call = NULL;
    if (rc == 0 && lc.cancelled) {
        if (resp->status != PST_CTRL_STATUS_OK) {
            /* whatever else went wrong, nothing was stored */
            pst_cli_error("cancelled: the message was not sent");
            pst_ctrl_response_free(resp);
            rc = PST_EXIT_FAIL;
        } else {
            pst_cli_error("too late to cancel: the message was already stored in your outbox");
        }
    }
    /* the node removed it once stored; otherwise it is ours to remove */
    if (unlink(path) != 0 && errno != ENOENT)
        pst_cli_error("cannot remove %s: %s", path, strerror(errno));
    return rc;
}

/* ---- outbox -------------------------------------------------------------- */

static void print_rcpt(const pst_value *r) {
    size_t n;
    char t1[40];
    uint64_t notified = 0, count = 0, served = 0, fetched = 0;
    const char *state = pst_value_as_str(pst_value_get(r, "state"), &n);
    pst_value_as_uint(pst_value_get(r, "notified"), &notified);
    pst_value_as_uint(pst_value_get(r, "notify_count"), &count);
    pst_value_as_uint(pst_value_get(r, "served"), &served);
    printf("  %-3s %s  %s", pst_value_as_str(pst_value_get(r, "kind"), &n),
           pst_value_as_str(pst_value_get(r, "fingerprint"), &n), state ? state : "?");
    const pst_value *rec = pst_value_get(r, "receipt");
    if (rec && pst_value_as_uint(pst_value_get(r, "fetched"), &fetched) == 0) {
        uint64_t stored = 0;
        pst_value_as_uint(pst_value_get(rec, "stored_at"), &stored);
        printf(" %s, receipt: stored at %s", pst_cli_time(fetched, t1, sizeof t1),
               pst_cli_time(stored, t1, sizeof t1));
    } else if (count > 0) {
        printf(" (%llu notification%s, last %s)", (unsigned long long)count, count == 1 ? "" : "s",
               pst_cli_time(notified, t1, sizeof t1));
    }
    if (served > 0 && !rec)
        printf(", body served %s", pst_cli_time(served, t1, sizeof t1));
    printf("\n");
    const char *why = pst_value_as_str(pst_value_get(r, "why"), &n);
    if (why != NULL && strcmp(state ? state : "", "withdrawn") != 0)
        printf("      %s\n", why);
    /* an identity with several devices: each fetches its own copy */
    const pst_value *ds = pst_value_get(r, "devices");
    for (const pst_value *d = pst_value_first(ds); d; d = pst_value_next(d)) {
        uint64_t fetches = 0, received = 0;
        const char *name = pst_value_as_str(pst_value_get(d, "name"), &n);
        const char *dstate = pst_value_as_str(pst_value_get(d, "state"), &n);
        pst_value_as_uint(pst_value_get(d, "serve_count"), &fetches);
        pst_value_as_uint(pst_value_get(d, "received"), &received);
        printf("      device %s%s%s%s: %s", pst_value_as_str(pst_value_get(d, "id"), &n),
               name && *name ? " (" : "", name && *name ? name : "", name && *name ? ")" : "",
               dstate ? dstate : "?");
        if (received > 0)
            printf(" %s", pst_cli_time(received, t1, sizeof t1));
        printf(", fetched %llu time%s\n", (unsigned long long)fetches, fetches == 1 ? "" : "s");
    }
}

static void print_outbox(const pst_value *b) {
    const pst_value *ms = pst_value_get(b, "messages");
    size_t n;
    char t1[40], t2[40];
    if (pst_value_count(ms) == 0)
        printf("(the outbox is empty)\n");
    for (const pst_value *m = pst_value_first(ms); m; m = pst_value_next(m)) {
        uint64_t created = 0, expires = 0, size = 0;
        pst_value_as_uint(pst_value_get(m, "created"), &created);
        pst_value_as_uint(pst_value_get(m, "expires"), &expires);
        pst_value_as_uint(pst_value_get(m, "size"), &size);
        const char *subject = pst_value_as_str(pst_value_get(m, "subject"), &n);
        printf("%s\n  sent %s, expires %s, %llu bytes, %s\n",
               pst_value_as_str(pst_value_get(m, "message_id"), &n),
               pst_cli_time(created, t1, sizeof t1), pst_cli_time(expires, t2, sizeof t2),
               (unsigned long long)size, pst_value_as_str(pst_value_get(m, "state"), &n));
        if (subject && *subject)
            printf("  subject: %s\n", subject);
        uint64_t damaged = 0;
        if (pst_value_as_uint(pst_value_get(m, "body_damaged"), &damaged) == 0 && damaged > 0)
            printf("  BODY DAMAGED on disk (found %s): its hash is not the message id, so it "
                   "is not served; restore the file or send the message again\n",
                   pst_cli_time(damaged, t1, sizeof t1));
        const pst_value *rs = pst_value_get(m, "recipients");
        for (const pst_value *r = pst_value_first(rs); r; r = pst_value_next(r))
            print_rcpt(r);
    }
    /* Internet recipients, through the smarthost (docs/SMARTHOST.md) */
    const pst_value *in = pst_value_get(b, "internet");
    if (pst_value_count(in) > 0)
        printf("Internet recipients (through the smarthost), newest first:\n");
    for (const pst_value *r = pst_value_first(in); r; r = pst_value_next(r)) {
        uint64_t next = 0, attempts = 0;
        const char *state = pst_value_as_str(pst_value_get(r, "state"), &n);
        const char *err = pst_value_as_str(pst_value_get(r, "error"), &n);
        pst_value_as_uint(pst_value_get(r, "next_try"), &next);
        pst_value_as_uint(pst_value_get(r, "attempts"), &attempts);
        printf("  %.16s...  %s  %s", pst_value_as_str(pst_value_get(r, "message_id"), &n),
               pst_value_as_str(pst_value_get(r, "recipient"), &n), state ? state : "?");
        if (state && strcmp(state, "retrying") == 0)
            printf(" (%llu tr%s, next %s): %s", (unsigned long long)attempts,
                   attempts == 1 ? "y" : "ies", pst_cli_time(next, t1, sizeof t1), err ? err : "");
        else if (err && *err)
            printf(": %s", err);
        printf("\n");
    }
    bool truncated = false;
    uint64_t total = 0;
    pst_value_as_bool(pst_value_get(b, "truncated"), &truncated);
    pst_value_as_uint(pst_value_get(b, "total"), &total);
    if (truncated)
        printf("(%u of %llu messages shown: use --limit or give a message id)\n",
               pst_value_count(ms), (unsigned long long)total);
}

static int simple_command(int argc, char **argv, const char *command, const char *help,
                          bool id_required) {
    static const struct option opts[] = {
        COMMON_OPTS, {"limit", required_argument, 0, OPT_LIMIT}, {0, 0, 0, 0}};
    pst_cli_common common;
    send_opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, opts, help, &common, &o);
    if (rc != 0)
        return rc == PST_CLI_HELP_SHOWN ? PST_EXIT_OK : rc;
    if (argc - optind > 1 || (id_required && argc - optind != 1)) {
        pst_cli_error("%s takes %s MESSAGE_ID (see --help)",
                      strcmp(command, "outbox-retry") == 0 ? "outbox retry" : command,
                      id_required ? "one" : "one optional");
        return PST_EXIT_USAGE;
    }
    if (id_required && o.have_limit) {
        pst_cli_error("%s takes no --limit", command);
        return PST_EXIT_USAGE;
    }
    static pst_ctrl_request req;
    (void)pst_ctrl_request_init(&req, 1, command);
    char lim[24];
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)o.limit);
    if ((optind < argc &&
         (rc = pst_cli_add_arg(&req, "message", argv[optind], "message id too long")) != 0) ||
        (o.have_limit && (rc = pst_cli_add_arg(&req, "limit", lim, "message id too long")) != 0))
        return rc;
    pst_ctrl_response resp;
    if ((rc = call(&common, &req, &resp)) != 0)
        return rc;
    rc = (int)resp.status;
    if (resp.status != PST_CTRL_STATUS_OK) {
        pst_cli_error("%s", resp.error);
    } else if (common.json) {
        pst_cli_print_json(resp.body);
    } else if (strcmp(command, "outbox-retry") == 0) {
        size_t n;
        const pst_value *off = pst_value_get(resp.body, "offered");
        const pst_value *no = pst_value_get(resp.body, "not_offered");
        printf("offered %s again to %u recipient%s\n",
               pst_value_as_str(pst_value_get(resp.body, "message_id"), &n), pst_value_count(off),
               pst_value_count(off) == 1 ? "" : "s");
        for (const pst_value *e = pst_value_first(off); e; e = pst_value_next(e))
            printf("  offered     %s\n", pst_value_as_str(e, &n));
        for (const pst_value *e = pst_value_first(no); e; e = pst_value_next(e))
            printf("  not offered %s: %s\n", pst_value_as_str(pst_value_get(e, "fingerprint"), &n),
                   pst_value_as_str(pst_value_get(e, "why"), &n));
        if (pst_value_get(resp.body, "body_damaged") != NULL)
            printf("note: the stored body is damaged: fetches are refused until the file is "
                   "restored\n");
    } else if (id_required) {
        size_t n;
        const pst_value *w = pst_value_get(resp.body, "withdrawn");
        const pst_value *f = pst_value_get(resp.body, "already_fetched");
        printf("withdrew %s from %u recipient%s\n",
               pst_value_as_str(pst_value_get(resp.body, "message_id"), &n), pst_value_count(w),
               pst_value_count(w) == 1 ? "" : "s");
        for (const pst_value *e = pst_value_first(w); e; e = pst_value_next(e))
            printf("  withdrawn       %s\n", pst_value_as_str(e, &n));
        for (const pst_value *e = pst_value_first(f); e; e = pst_value_next(e))
            printf("  already fetched %s\n", pst_value_as_str(e, &n));
        printf("note: %s\n", pst_value_as_str(pst_value_get(resp.body, "note"), &n));
    } else {
        print_outbox(resp.body);
    }
    pst_ctrl_response_free(&resp);
    return rc;
}

int pst_cmd_outbox(int argc, char **argv) {
    /* `outbox retry ID`: "retry" is not hex, so it is never a message id */
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            if (strcmp(argv[i], "--home") == 0 || strcmp(argv[i], "--log-level") == 0 ||
                strcmp(argv[i], "--limit") == 0)
                i++; /* its value */
            continue;
        }
        if (strcmp(argv[i], "retry") != 0)
            break;
        char *sub[64];
        int k = 0;
        for (int j = 0; j < argc && k < 63; j++)
            if (j != i)
                sub[k++] = argv[j];
        sub[k] = NULL;
        return simple_command(k, sub, "outbox-retry", OUTBOX_HELP, true);
    }
    return simple_command(argc, argv, "outbox", OUTBOX_HELP, false);
}

int pst_cmd_unsend(int argc, char **argv) {
    return simple_command(argc, argv, "unsend", UNSEND_HELP, true);
}
