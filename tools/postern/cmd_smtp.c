/* postern smtp password: the SMTP submission password (docs/cli/smtp.md). */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctrl_client.h"
#include "pst_node.h"

static const char help[] =
    "usage: postern smtp password [--reset] [--home DIR] [--json]\n"
    "\n"
    "Prints the password a mail client uses to submit mail to posternd over\n"
    "SMTP (docs/SMTP.md); the user name is your fingerprint or one of your\n"
    "addresses. The password is made by 'postern init' (or here, when the\n"
    "home has none) and kept in DIR/smtp.password (mode 0600). --reset\n"
    "makes a new one; the running node uses it from the next AUTH on.\n"
    "--json prints {\"password\": \"...\", \"file\": \"...\"}.\n"
    "\n"
    "Exit codes: 0 ok, 1 the file cannot be read or written, 64 usage.\n";

static int own_option(void *user, int val, const char *arg) {
    (void)arg;
    if (val == 'r')
        *(bool *)user = true;
    return 0;
}

int pst_cmd_smtp(int argc, char **argv) {
    static const struct option opts[] = {
        {"home", required_argument, 0, 'h'},
        {"reset", no_argument, 0, 'r'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    pst_cli_common common;
    bool reset = false;
    int rc = pst_cli_parse_options(argc, argv, opts, help, &common, own_option, &reset);
    if (rc != 0)
        return rc == PST_CLI_HELP_SHOWN ? PST_EXIT_OK : rc;
    if (optind >= argc || strcmp(argv[optind], "password") != 0 || optind + 1 < argc) {
        pst_cli_error("smtp: expected 'password' (run 'postern smtp --help')");
        return PST_EXIT_USAGE;
    }
    pst_node_config cfg;
    if (pst_cli_load_config(&common, &cfg) != 0)
        return PST_EXIT_USAGE;
    char pw[PST_SMTP_PASSWORD_LEN + 1], err[1024] = "", path[PST_PATH_MAX];
    if (pst_node_smtp_password(cfg.home, reset, pw, err, sizeof err) != PST_OK) {
        pst_cli_error("%s", err);
        return PST_EXIT_FAIL;
    }
    (void)pst_home_path(cfg.home, PST_FILE_SMTP_PASSWORD, path, sizeof path);
    if (common.json) {
        fputs("{\"password\": ", stdout);
        pst_cli_json_string(stdout, pw);
        fputs(", \"file\": ", stdout);
        pst_cli_json_string(stdout, path);
        fputs("}\n", stdout);
    } else {
        printf("%s\n", pw);
    }
    sodium_memzero(pw, sizeof pw);
    return PST_EXIT_OK;
}
