/* Talking to the node: through DIR/control.sock when a posternd runs for the
 * home, else through a one-shot in-process node. */
#ifndef PST_CTRL_CLIENT_H
#define PST_CTRL_CLIENT_H

#include <getopt.h>
#include <stdbool.h>

#include "pst_config.h"
#include "pst_envelope.h"

/* Answers a command from the home alone when no node runs (see offline):
 * fills *body (caller frees) or returns a PST_E_* with err set. */
typedef int (*pst_cli_offline_fn)(const pst_node_config *cfg, pst_value **body, char *err,
                                  size_t errcap);

/* A call that may run long and changes state (send): the node sends
 * progress frames and Ctrl-C cancels it. */
typedef struct {
    unsigned timeout_s; /* patience for the next frame; each progress frame restarts it */
    /* draws one progress body; NULL body: erase what was drawn. NULL: none */
    void (*progress)(void *user, const pst_value *body);
    void *user;
    /* after "the node at HOME did not answer: ", when the connection ends
     * after the request went out: whether it took effect is unknown */
    const char *lost_hint;
    /* after "cancelled, but the node did not confirm it in time: " */
    const char *unconfirmed_hint;
    bool cancelled; /* out: Ctrl-C was pressed; the answer says how it ended */
} pst_cli_long_call;

/* How many shared flags (--seed may repeat) a command line may give. */
#define PST_CLI_FLAGS_MAX 64

typedef struct {
    pst_config_flags flags; /* --home, --seed, --network, ... */
    /* the same flags as given (argv's strings), for the short-lived node */
    const char *flag_names[PST_CLI_FLAGS_MAX], *flag_values[PST_CLI_FLAGS_MAX];
    unsigned n_flags;
    bool json;
    bool no_oneshot; /* the command needs a running node */
    /* with no_oneshot: the exit code when no node runs (0: PST_EXIT_FAIL);
     * sendmail says EX_UNAVAILABLE, as programs that call it expect */
    int no_node_exit;
    /* when set and no node runs: answers from the home (`postern id`), no
     * one-shot node, no "start posternd" error */
    pst_cli_offline_fn offline;
    /* NULL: a usual call (60 s, progress frames skipped, Ctrl-C ends the
     * CLI); else the running node answers it as described there */
    pst_cli_long_call *long_call;
} pst_cli_common;

/* Handles the flags every node-facing command shares; returns 1 when the
 * option was one of them, 0 when not, -1 on a bad value (message printed). */
int pst_cli_common_option(pst_cli_common *c, const char *name, const char *value);

/* A command's own option: 0, or an exit code after printing why. */
typedef int (*pst_cli_own_option_fn)(void *user, int val, const char *arg);
#define PST_CLI_HELP_SHOWN (-2)
/* Clears c, then parses argv's long options (opts ends with a zero row;
 * --help must have val 'H'): --help prints help on stdout and returns
 * PST_CLI_HELP_SHOWN; an unknown option prints help on stderr and returns
 * PST_EXIT_USAGE; the shared flags go to c (pst_cli_common_option); any
 * other goes to own (NULL: none expected), whose non-zero answer is
 * returned. 0 when all were good: optind is then the first operand. */
int pst_cli_parse_options(int argc, char **argv, const struct option *opts, const char *help,
                          pst_cli_common *c, pst_cli_own_option_fn own, void *user);
/* The same with short options too (getopt's optstring): a short option
 * always goes to own (the shared flags are long ones). */
int pst_cli_parse_options_short(int argc, char **argv, const char *shortopts,
                                const struct option *opts, const char *help, pst_cli_common *c,
                                pst_cli_own_option_fn own, void *user);

/* pst_config_load with c's flags; 0, or PST_EXIT_USAGE after printing why. */
int pst_cli_load_config(const pst_cli_common *c, pst_node_config *cfg);

/* Sends req and fills resp (caller frees with pst_ctrl_response_free). Uses
 * the running node when there is one, else (unless no_oneshot) a one-shot
 * node bootstrapped from the configured seeds. Returns 0, or an exit code
 * after printing why (PST_EXIT_UNAVAILABLE when the node refused or dropped
 * the connection, PST_EXIT_CONFIG when the home's identity is damaged).
 * *via_oneshot tells which path answered. With c->long_call, a connection
 * that ends after the request went out, or a cancel the node did not
 * confirm, is PST_EXIT_FAIL with the hints printed. */
int pst_cli_call(pst_cli_common *c, pst_ctrl_request *req, pst_ctrl_response *resp,
                 bool *via_oneshot);

/* Writes n bytes to the socket fd (send with MSG_NOSIGNAL: a peer that
 * closed is an error to report, not a SIGPIPE). 0, or -1 with errno. */
int pst_cli_write_all(int fd, const uint8_t *p, size_t n);

/* One response frame from fd into resp: 0; -1 nothing came (errno, 0 = end
 * of file); -2 the frame broke off or has a bad length; -3 it does not
 * decode. buf holds PST_CTRL_FRAME_MAX bytes. */
int pst_cli_read_response(int fd, uint8_t *buf, pst_ctrl_response *resp);

/* oneshot_spawn.c: answers req through a short-lived node, `posternd
 * --oneshot` with c's flags (the request on its stdin, the answer on its
 * stdout, its errors on our stderr). posternd is $POSTERN_POSTERND, else the
 * one next to this program, else the build tree's (when this program runs
 * from it), else the installed one. 0 with resp filled (caller frees), or
 * PST_EXIT_FAIL after printing why. */
int pst_cli_oneshot(const pst_cli_common *c, const pst_ctrl_request *req, pst_ctrl_response *resp);

/* When HOME has an identity.key that is damaged or not the identity of its
 * store, prints what posternd would and returns PST_EXIT_CONFIG; else
 * PST_EXIT_OK (PST_EXIT_FAIL if the store cannot be opened). Needs no
 * passphrase: a sealed file is checked for damage only. */
int pst_cli_check_identity(const char *home);

/* Prints why a control connection ended early: err is the errno of the
 * failed write or read (0 = end of file), wrote whether the request went out.
 * Callers exit with PST_EXIT_UNAVAILABLE. */
void pst_cli_report_dropped(const char *home, int err, bool wrote);

/* pst_ctrl_request_add_arg (key NULL: value alone) with the CLI's answer to
 * a failure: 0, or PST_EXIT_USAGE after printing the too_long message (the
 * argument is over PST_CTRL_ARG_MAX or the request is full) or that it is
 * not UTF-8. */
int pst_cli_add_arg(pst_ctrl_request *req, const char *key, const char *value,
                    const char *too_long_fmt, ...) __attribute__((format(printf, 4, 5)));

/* pst_cli_call, then prints the answer: the error on stderr, else the body as
 * JSON (--json) or as indented lines. Returns the exit code. */
int pst_cli_call_and_print(pst_cli_common *c, pst_ctrl_request *req);
/* Prints v as the --json output: one JSON object and a line break on stdout. */
void pst_cli_print_json(const pst_value *v);
/* Prints a value tree as indented "key: value" lines. */
void pst_cli_print_value(FILE *out, const pst_value *v, int indent);
/* Formats a unix time as "YYYY-MM-DD HH:MM:SS UTC". */
const char *pst_cli_time(uint64_t t, char *buf, size_t cap);

#endif
