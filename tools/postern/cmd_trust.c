/* postern trust set|rm|list, postern vouch, postern unvouch */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctrl_client.h"

static const char TRUST_HELP[] =
    "usage: postern trust set FINGERPRINT trusted|known|blocked [--name PETNAME]\n"
    "                         [--email ADDR]... [--drop-email ADDR]...\n"
    "       postern trust rm FINGERPRINT\n"
    "       postern trust list [--json]\n"
    "       (all take --home DIR)\n"
    "\n"
    "Your contacts decide where their mail goes: trusted -> INBOX, known ->\n"
    ".Known, blocked -> dropped before anything is fetched. Anyone not listed is\n"
    "unknown and reaches .Unknown only with a proof-of-work stamp of the bits you\n"
    "publish. A sender vouched for by one of your trusted contacts counts as\n"
    "known (never trusted; see vouch_depth in docs/CONFIG.md).\n"
    "\n"
    "--email gives the contact an email address (repeatable; one contact per\n"
    "address), --drop-email takes one away: Internet mail over LMTP from it gets\n"
    "the contact's tier when your mail server's Authentication-Results says\n"
    "DMARC or aligned DKIM passed (lmtp_authserv_id, docs/LMTP.md).\n"
    "\n"
    "Exit codes: 0 ok, 1 failure, 64 usage error.\n";

static const char VOUCH_HELP[] =
    "usage: postern vouch FINGERPRINT [--tier known|trusted] [--expires DAYS] [--home DIR]\n"
    "       postern unvouch FINGERPRINT [--home DIR]\n"
    "\n"
    "vouch publishes your signed endorsement of a key in its vouch slot (default\n"
    "tier known, valid 365 days, at most 730): people who trust you then treat\n"
    "its owner as known. unvouch publishes a signed withdrawal that replaces it\n"
    "(an old vouch cannot be replayed: the newest statement wins). Both need\n"
    "your running node, which keeps re-publishing them.\n"
    "\n"
    "Exit codes: 0 published, 1 failure, 64 usage error.\n";

static int add_arg(pst_ctrl_request *req, const char *key, const char *value) {
    return pst_cli_add_arg(req, key, value, "argument too long: --%s", key);
}

static pst_ctrl_request req; /* ~128 KiB: not on the stack */

#define TRUST_EMAILS_MAX 16u /* --email and --drop-email in one call */

typedef struct {
    const char *name;
    unsigned n_emails;
    const char *emails[TRUST_EMAILS_MAX];
    bool drop[TRUST_EMAILS_MAX];
} trust_opts;

/* pst_cli_own_option_fn: --name, --email, --drop-email */
static int trust_option(void *user, int val, const char *arg) {
    trust_opts *o = user;
    if (val == 'n') {
        o->name = arg;
        return 0;
    }
    if (o->n_emails == TRUST_EMAILS_MAX) {
        pst_cli_error("at most %u --email and --drop-email in one call", TRUST_EMAILS_MAX);
        return PST_EXIT_USAGE;
    }
    o->drop[o->n_emails] = val == 'd';
    o->emails[o->n_emails++] = arg;
    return 0;
}

int pst_cmd_trust(int argc, char **argv) {
    static const struct option opts[] = {
        {"home", required_argument, 0, 'h'},
        {"json", no_argument, 0, 'j'},
        {"name", required_argument, 0, 'n'},
        {"email", required_argument, 0, 'e'},
        {"drop-email", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    pst_cli_common common;
    trust_opts o;
    memset(&o, 0, sizeof o);
    int rc = pst_cli_parse_options(argc, argv, opts, TRUST_HELP, &common, trust_option, &o);
    if (rc != 0)
        return rc == PST_CLI_HELP_SHOWN ? PST_EXIT_OK : rc;
    int rest = argc - optind;
    char **av = argv + optind;
    if (rest >= 1 && strcmp(av[0], "set") == 0 && rest == 3) {
        (void)pst_ctrl_request_init(&req, 1, "trust-set");
        if (add_arg(&req, "fingerprint", av[1]) || add_arg(&req, "tier", av[2]) ||
            (o.name && add_arg(&req, "name", o.name)))
            return PST_EXIT_USAGE;
        for (unsigned i = 0; i < o.n_emails; i++)
            if (add_arg(&req, o.drop[i] ? "drop_email" : "email", o.emails[i]))
                return PST_EXIT_USAGE;
    } else if (o.name != NULL || o.n_emails > 0) {
        pst_cli_error("--name, --email and --drop-email go with trust set");
        return PST_EXIT_USAGE;
    } else if (rest == 2 && strcmp(av[0], "rm") == 0) {
        (void)pst_ctrl_request_init(&req, 1, "trust-rm");
        if (add_arg(&req, "fingerprint", av[1]))
            return PST_EXIT_USAGE;
    } else if (rest == 1 && strcmp(av[0], "list") == 0) {
        (void)pst_ctrl_request_init(&req, 1, "trust-list");
    } else {
        fputs(TRUST_HELP, stderr);
        return PST_EXIT_USAGE;
    }
    return pst_cli_call_and_print(&common, &req);
}

typedef struct {
    bool withdraw;
    const char *tier, *expires;
} vouch_opts;

/* pst_cli_own_option_fn: --tier, --expires */
static int vouch_option(void *user, int val, const char *arg) {
    vouch_opts *o = user;
    if (o->withdraw) {
        pst_cli_error("unvouch takes no --%s", val == 't' ? "tier" : "expires");
        return PST_EXIT_USAGE;
    }
    *(val == 't' ? &o->tier : &o->expires) = arg;
    return 0;
}

static int vouch_common(int argc, char **argv, bool withdraw) {
    static const struct option opts[] = {
        {"home", required_argument, 0, 'h'}, {"json", no_argument, 0, 'j'},
        {"tier", required_argument, 0, 't'}, {"expires", required_argument, 0, 'e'},
        {"help", no_argument, 0, 'H'},       {0, 0, 0, 0},
    };
    pst_cli_common common;
    vouch_opts o = {withdraw, NULL, NULL};
    int rc = pst_cli_parse_options(argc, argv, opts, VOUCH_HELP, &common, vouch_option, &o);
    if (rc != 0)
        return rc == PST_CLI_HELP_SHOWN ? PST_EXIT_OK : rc;
    common.no_oneshot = true;
    const char *tier = o.tier, *expires = o.expires;
    if (argc - optind != 1) {
        fputs(VOUCH_HELP, stderr);
        return PST_EXIT_USAGE;
    }
    (void)pst_ctrl_request_init(&req, 1, withdraw ? "unvouch" : "vouch");
    if (add_arg(&req, "fingerprint", argv[optind]) || (tier && add_arg(&req, "tier", tier)) ||
        (expires && add_arg(&req, "expires_days", expires)))
        return PST_EXIT_USAGE;
    return pst_cli_call_and_print(&common, &req);
}

int pst_cmd_vouch(int argc, char **argv) { return vouch_common(argc, argv, false); }
int pst_cmd_unvouch(int argc, char **argv) { return vouch_common(argc, argv, true); }
