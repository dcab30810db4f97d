/* postern: the command-line client. Dispatches to one cmd_*.c per command. */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pst_build.h"
#include "pst_log.h"

static const pst_cli_command commands[] = {
    {"init", "create your identity (keys and a revocation certificate)", pst_cmd_init},
    {"id", "show your identity as your node publishes it", pst_cmd_id},
    {"status", "show the running node: DHT, ports, published records, counters", pst_cmd_status},
    {"key", "get a key by fingerprint or address, or revoke yours", pst_cmd_key},
    {"send", "send a message (the recipients fetch it from your node)", pst_cmd_send},
    {"sendmail", "send the message on stdin, as sendmail(8) does (-t, -i, -f)", pst_cmd_sendmail},
    {"outbox", "what you sent and who fetched it", pst_cmd_outbox},
    {"unsend", "withdraw a message nobody fetched yet", pst_cmd_unsend},
    {"inbox", "list received messages", pst_cmd_inbox},
    {"read", "print a received message", pst_cmd_read},
    {"trust", "set who is trusted, known or blocked", pst_cmd_trust},
    {"device", "pair, list, rename or revoke this identity's devices", pst_cmd_device},
    {"identity", "print the paper recovery form, or recover from it", pst_cmd_identity},
    {"vouch", "publish that you know or trust a key", pst_cmd_vouch},
    {"unvouch", "withdraw your vouch for a key", pst_cmd_unvouch},
    {"smtp", "show the SMTP submission password (smtp password [--reset])", pst_cmd_smtp},
    {"pow", "mint or check a hashcash proof-of-work stamp", pst_cmd_pow},
};

static void usage(FILE *out) {
    fprintf(out, "usage: postern [--version] [--help] COMMAND [ARGS]\n\n"
                 "Postern is a personal mail node. Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'postern COMMAND --help' for the options of one command.\n"
                 "Exit codes: 0 ok, 1 failure, 64 usage error, 69 the node refused or\n"
                 "dropped the control connection, 78 identity.key damaged or not this home's;\n"
                 "key get adds 2 not found, 3 revoked, 4 expired; init adds 73 (see\n"
                 "docs/CLI.md).\n");
}

/* Called as "sendmail" (a link to postern): sendmail's interface. */
static bool called_as_sendmail(const char *argv0) {
    const char *slash = argv0 != NULL ? strrchr(argv0, '/') : NULL;
    return argv0 != NULL && strcmp(slash ? slash + 1 : argv0, "sendmail") == 0;
}

static int init_runtime(void) {
    /* a node that drops the control connection (refused user, too many
     * connections) makes a write fail with EPIPE, which each caller reports
     * with a message; the default SIGPIPE would kill the CLI silently */
    signal(SIGPIPE, SIG_IGN);
    /* a short-lived node logs from inside this program: say so */
    pst_log_set_program("postern");
    if (sodium_init() < 0) {
        pst_cli_error("libsodium failed to initialise");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 1 && called_as_sendmail(argv[0]))
        return init_runtime() == 0 ? pst_cmd_sendmail(argc, argv) : 75; /* EX_TEMPFAIL */
    if (argc < 2) {
        usage(stderr);
        return PST_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return PST_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("postern %s\n", PST_VERSION);
        return PST_EXIT_OK;
    }
    if (init_runtime() != 0)
        return PST_EXIT_FAIL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    pst_cli_error("unknown command '%s'; run 'postern --help' for the list", argv[1]);
    return PST_EXIT_USAGE;
}
