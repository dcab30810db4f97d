/* postern inbox / postern read: the messages the running node delivered into
 * DIR/Maildir. `read` asks the node where the file is and copies it itself:
 * message bodies never travel in control frames. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ctrl_client.h"
#include "json.h"

static const char INBOX_HELP[] =
    "usage: postern inbox [--folder F] [--limit N] [--json] [--home DIR]\n"
    "\n"
    "Lists the messages the running node fetched and delivered into DIR/Maildir,\n"
    "oldest first, at most N (default 100, at most 300): id, when it arrived,\n"
    "sender, size and subject. The sender is the address in the message's From:\n"
    "header, marked '(unverified)' when the sender's key record does not list\n"
    "it: only the fingerprint (--json: \"from\") was verified. F is INBOX or a\n"
    "Maildir++ folder such as Known. Messages deleted in a mail client are not\n"
    "listed. Read one with 'postern read ID' (a unique prefix of 8+ digits is\n"
    "enough), or point any Maildir mail client at DIR/Maildir.\n"
    "\n"
    "Messages whose fetch failed are listed after the others with the reason:\n"
    "the node retries them with back-off until the sender's notification\n"
    "expires, and gives up only on a sender that broke the protocol or refused\n"
    "for good.\n"
    "\n"
    "postern inbox retry ID: fetch that message again now (one the node gave up\n"
    "on, while its notification lasts; or one waiting out its back-off).\n"
    "\n"
    "--json prints one JSON object (fields in docs/CLI.md).\n"
    "Exit codes: 0 ok, 1 failure (no node running: start posternd), 64 usage.\n";

static const char READ_HELP[] =
    "usage: postern read ID [--json] [--home DIR]\n"
    "\n"
    "Prints a delivered message exactly as stored in DIR/Maildir (the node adds\n"
    "X-Postern-Sender and X-Postern-Message-Id header lines at the top). ID is\n"
    "the message id shown by 'postern inbox', or a unique prefix of at least 8\n"
    "hex digits. --json prints where the message is instead of its text.\n"
    "\n"
    "Exit codes: 0 ok, 1 unknown id, not fetched yet, or failure, 64 usage.\n";

typedef struct {
    const char *folder;
    const char *limit;
} inbox_opts;

typedef struct {
    inbox_opts *o; /* NULL: the command takes neither */
    const char *help;
} own_options;

/* pst_cli_own_option_fn for --folder and --limit */
static int own_option(void *user, int val, const char *arg) {
    own_options *own = user;
    if (own->o == NULL) {
        fputs(own->help, stderr);
        return PST_EXIT_USAGE;
    }
    *(val == 'f' ? &own->o->folder : &own->o->limit) = arg;
    return 0;
}

/* Parses options; PST_CLI_HELP_SHOWN, else 0 or an exit code. */
static int parse(int argc, char **argv, pst_cli_common *common, const char *help, inbox_opts *o) {
    static const struct option opts[] = {
        {"home", required_argument, 0, 'h'},  {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'H'},        {"folder", required_argument, 0, 'f'},
        {"limit", required_argument, 0, 'n'}, {0, 0, 0, 0},
    };
    own_options own = {o, help};
    int rc = pst_cli_parse_options(argc, argv, opts, help, common, own_option, &own);
    common->no_oneshot = true; /* only the daemon has an inbox */
    return rc;
}

static int call(pst_cli_common *common, pst_ctrl_request *req, pst_ctrl_response *resp) {
    bool oneshot;
    int rc = pst_cli_call(common, req, resp, &oneshot);
    if (rc != 0)
        return rc;
    if (resp->status != PST_CTRL_STATUS_OK) {
        pst_cli_error("%s", resp->error);
        rc = (int)resp->status;
        pst_ctrl_response_free(resp);
    }
    return rc;
}

static const char *str(const pst_value *m, const char *key) {
    size_t n;
    const char *s = pst_value_as_str(pst_value_get(m, key), &n);
    return s ? s : "";
}

static uint64_t num(const pst_value *m, const char *key) {
    uint64_t u = 0;
    pst_value_as_uint(pst_value_get(m, key), &u);
    return u;
}

static void human_size(uint64_t b, char *out, size_t cap) {
    if (b < 1024)
        snprintf(out, cap, "%lluB", (unsigned long long)b);
    else if (b < 1024 * 1024)
        snprintf(out, cap, "%.1fK", (double)b / 1024.0);
    else
        snprintf(out, cap, "%.1fM", (double)b / (1024.0 * 1024.0));
}

static void print_inbox(const pst_value *body) {
    const pst_value *msgs = pst_value_get(body, "messages");
    char when[40], size[16], from[300];
    for (const pst_value *m = pst_value_first(msgs); m; m = pst_value_next(m)) {
        bool listed = false, seen = false, flagged = false;
        pst_value_as_bool(pst_value_get(m, "address_listed"), &listed);
        pst_value_as_bool(pst_value_get(m, "seen"), &seen);
        pst_value_as_bool(pst_value_get(m, "flagged"), &flagged);
        const char *addr = str(m, "address");
        if (addr[0] == '\0')
            snprintf(from, sizeof from, "%.12s...", str(m, "from"));
        else
            snprintf(from, sizeof from, "%s%s", addr, listed ? "" : " (unverified)");
        pst_cli_time(num(m, "received"), when, sizeof when);
        human_size(num(m, "size"), size, sizeof size);
        const char *subject = str(m, "subject");
        printf("%.8s %c%c %.16s  %-32s %6s  %s%s%s\n", str(m, "id"), seen ? ' ' : 'N',
               flagged ? '!' : ' ', when, from, size, subject[0] ? subject : "(no subject)",
               strcmp(str(m, "folder"), "INBOX") == 0 ? "" : "  in ",
               strcmp(str(m, "folder"), "INBOX") == 0 ? "" : str(m, "folder"));
    }
    uint64_t shown = pst_value_count(msgs), total = num(body, "delivered");
    const char *folder = str(body, "folder");
    printf("%llu message%s%s%s", (unsigned long long)shown, shown == 1 ? "" : "s",
           folder[0] ? " in " : "", folder);
    if (total > shown + num(body, "missing"))
        printf(" (the newest of %llu: use --limit)", (unsigned long long)total);
    uint64_t pending = num(body, "pending"), failed = num(body, "failed");
    if (pending > 0)
        printf("; %llu waiting to be fetched", (unsigned long long)pending);
    if (failed > 0)
        printf("; %llu given up", (unsigned long long)failed);
    printf("\n");
    const pst_value *probs = pst_value_get(body, "undelivered");
    if (pst_value_count(probs) > 0)
        printf("not delivered (postern inbox retry ID fetches one again):\n");
    for (const pst_value *m = pst_value_first(probs); m; m = pst_value_next(m)) {
        char expires[40];
        pst_cli_time(num(m, "expires"), expires, sizeof expires);
        printf("%.8s %-7s from %.16s...  %llu attempt%s, expires %s: %s\n", str(m, "id"),
               str(m, "state"), str(m, "from"), (unsigned long long)num(m, "attempts"),
               num(m, "attempts") == 1 ? "" : "s", expires, str(m, "why"));
    }
}

static int inbox_retry(pst_cli_common *common, const char *id) {
    static pst_ctrl_request req;
    (void)pst_ctrl_request_init(&req, 1, "inbox-retry");
    if (strlen(id) > 64) {
        pst_cli_error("'%s' is not a message id", id);
        return PST_EXIT_USAGE;
    }
    int rc = pst_cli_add_arg(&req, "id", id, "'%s' is not a message id", id);
    pst_ctrl_response resp;
    if (rc == 0)
        rc = call(common, &req, &resp);
    if (rc != 0)
        return rc;
    if (common->json) {
        pst_cli_print_json(resp.body);
    } else {
        printf("%s: %s\n", str(resp.body, "id"),
               strcmp(str(resp.body, "was"), "failed") == 0
                   ? "taken up again: the node fetches it now"
                   : "the node fetches it now");
    }
    pst_ctrl_response_free(&resp);
    return PST_EXIT_OK;
}

int pst_cmd_inbox(int argc, char **argv) {
    pst_cli_common common;
    inbox_opts o = {NULL, NULL};
    int rc = parse(argc, argv, &common, INBOX_HELP, &o);
    if (rc != 0)
        return rc == PST_CLI_HELP_SHOWN ? PST_EXIT_OK : rc;
    if (optind < argc && strcmp(argv[optind], "retry") == 0) {
        if (argc - optind != 2 || o.folder || o.limit) {
            pst_cli_error("usage: postern inbox retry ID");
            return PST_EXIT_USAGE;
        }
        return inbox_retry(&common, argv[optind + 1]);
    }
    if (optind < argc) {
        pst_cli_error("inbox: unexpected argument '%s' (see --help)", argv[optind]);
        return PST_EXIT_USAGE;
    }
    uint64_t limit = 0;
    if (o.limit && !pst_cli_parse_u64(o.limit, 1, 300, &limit)) {
        pst_cli_error("--limit must be a number from 1 to 300");
        return PST_EXIT_USAGE;
    }
    static pst_ctrl_request req;
    (void)pst_ctrl_request_init(&req, 1, "inbox");
    char lim[24];
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)limit);
    pst_ctrl_response resp;
    if ((o.folder && (rc = pst_cli_add_arg(&req, "folder", o.folder, "--folder: name too long"))) ||
        (o.limit && (rc = pst_cli_add_arg(&req, "limit", lim, "--limit too long"))) ||
        (rc = call(&common, &req, &resp)) != 0)
        return rc;
    if (common.json) {
        pst_cli_print_json(resp.body);
    } else {
        print_inbox(resp.body);
    }
    /* notices (a contact's key revoked) are shown once, also in human mode */
    const pst_value *notices = pst_value_get(resp.body, "notices");
    for (const pst_value *m = pst_value_first(notices); m; m = pst_value_next(m)) {
        size_t n;
        if (!common.json)
            fprintf(stderr, "postern: notice: %s\n", pst_value_as_str(m, &n));
    }
    pst_ctrl_response_free(&resp);
    return PST_EXIT_OK;
}

/* Copies the file at path to stdout. 0, or errno of the open (ENOENT: a
 * mail client moved it meanwhile), or -1 after a read/write failure. */
static int copy_out(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno;
    static char buf[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (fwrite(buf, 1, n, stdout) != n) {
            rc = -1;
            break;
        }
    if (ferror(f))
        rc = -1;
    fclose(f);
    if (fflush(stdout) != 0)
        rc = -1;
    return rc;
}

int pst_cmd_read(int argc, char **argv) {
    pst_cli_common common;
    int rc = parse(argc, argv, &common, READ_HELP, NULL);
    if (rc != 0)
        return rc == PST_CLI_HELP_SHOWN ? PST_EXIT_OK : rc;
    if (argc - optind != 1) {
        pst_cli_error("read takes one message ID (see --help)");
        return PST_EXIT_USAGE;
    }
    const char *id = argv[optind];
    size_t len = strlen(id);
    if (len < 8 || len > 64 || strspn(id, "0123456789abcdefABCDEF") != len) {
        pst_cli_error("'%s' is not a message id: give at least 8 of its hex digits", id);
        return PST_EXIT_USAGE;
    }
    static pst_ctrl_request req;
    (void)pst_ctrl_request_init(&req, 1, "read");
    if ((rc = pst_cli_add_arg(&req, "id", id, "'%s' is not a message id", id)) != 0)
        return rc;
    /* a mail client may move the file between the answer and the open: ask again once */
    for (int attempt = 0; attempt < 2; attempt++) {
        pst_ctrl_response resp;
        if ((rc = call(&common, &req, &resp)) != 0)
            return rc;
        if (common.json) {
            pst_cli_print_json(resp.body);
            pst_ctrl_response_free(&resp);
            return PST_EXIT_OK;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s", str(resp.body, "path"));
        pst_ctrl_response_free(&resp);
        rc = copy_out(path);
        if (rc == 0)
            return PST_EXIT_OK;
        if (rc != ENOENT || attempt == 1) {
            pst_cli_error("cannot print %s: %s", path,
                          rc > 0 ? strerror(rc) : "read or write error");
            return PST_EXIT_FAIL;
        }
    }
    return PST_EXIT_FAIL;
}
