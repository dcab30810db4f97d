/* postern init: create this home's identity. */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctrl_client.h"
#include "pst_home.h"
#include "pst_node.h"

static void usage(FILE *out) {
    fprintf(out, "usage: postern init [--home DIR] [--address ADDR]... [--passphrase-file F]\n"
                 "       postern init --join CODE [--name NAME] [--home DIR]\n"
                 "\n"
                 "With --join, DIR becomes another device of an existing identity: CODE is\n"
                 "the pairing code 'postern device add' printed on the device that holds\n"
                 "the identity key (its posternd must run). This home gets its own device\n"
                 "key, the device list and the trust list; no identity key.\n"
                 "\n"
                 "Creates your identity in DIR: an Ed25519 identity key, an X25519 encryption\n"
                 "key and an offline revocation key, plus a ready revocation certificate.\n"
                 "Secret files are written with mode 0600 in a 0700 directory. With\n"
                 "--passphrase-file, the keys are encrypted with Argon2id (MODERATE).\n"
                 "\n"
                 "Move DIR/revocation.key and DIR/revocation.cert to offline storage: with\n"
                 "either one you can revoke your key if it is lost or stolen.\n"
                 "\n"
                 "Exit codes: 0 created, 1 failed, 64 usage error, 73 refused: DIR already\n"
                 "has an identity or another init is creating one (nothing was changed).\n");
}

/* postern init --join CODE: this home becomes a device of an identity
 * (issue 13; node/id_join.c). */
static int init_join(const pst_node_config *cfg, const char *code, const char *name, bool extra) {
    char err[1024] = "", info[1024] = "";
    if (extra) {
        pst_cli_error("--address and --passphrase-file do not go with --join: the identity "
                      "exists already");
        return PST_EXIT_USAGE;
    }
    int rc = pst_node_join(cfg, code, name, info, sizeof info, err, sizeof err);
    if (rc != PST_OK) {
        pst_cli_error("%s", err);
        return rc == PST_E_EXISTS ? PST_EXIT_CANTCREAT : PST_EXIT_FAIL;
    }
    fputs(info, stdout);
    char pw[PST_SMTP_PASSWORD_LEN + 1];
    if (pst_node_smtp_password(cfg->home, false, pw, err, sizeof err) != PST_OK)
        pst_cli_error("warning: %s (make it later with 'postern smtp password')", err);
    sodium_memzero(pw, sizeof pw);
    printf("\nThis machine is now a device of the identity above. Start its node:\n"
           "  posternd --home %s\n",
           cfg->home);
    return PST_EXIT_OK;
}

int pst_cmd_init(int argc, char **argv) {
    static const struct option opts[] = {
        {"home", required_argument, 0, 'h'},
        {"address", required_argument, 0, 'a'},
        {"passphrase-file", required_argument, 0, 'P'},
        {"fast-kdf", no_argument, 0, 'F'}, /* tests: INTERACTIVE Argon2id limits */
        {"join", required_argument, 0, 'J'},
        {"name", required_argument, 0, 'N'},
        {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    pst_cli_common common;
    memset(&common, 0, sizeof common);
    pst_config_flags_init(&common.flags);
    const char *addresses[16];
    unsigned n_addr = 0;
    const char *passfile = NULL, *join = NULL, *name = NULL;
    bool fast = false;
    int c, idx;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        switch (c) {
        case 'H':
            usage(stdout);
            return PST_EXIT_OK;
        case 'a':
            if (n_addr >= 8) {
                pst_cli_error("at most 8 addresses");
                return PST_EXIT_USAGE;
            }
            addresses[n_addr++] = optarg;
            break;
        case 'P':
            passfile = optarg;
            break;
        case 'F':
            fast = true;
            break;
        case 'J':
            join = optarg;
            break;
        case 'N':
            name = optarg;
            break;
        case 'h':
            if (pst_cli_common_option(&common, "home", optarg) < 0)
                return PST_EXIT_USAGE;
            break;
        default:
            usage(stderr);
            return PST_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        pst_cli_error("init: unexpected argument '%s'", argv[optind]);
        return PST_EXIT_USAGE;
    }
    char err[1024] = "";
    pst_node_config cfg;
    if (pst_cli_load_config(&common, &cfg) != 0)
        return PST_EXIT_USAGE;
    if (join == NULL && name != NULL) {
        pst_cli_error("--name goes with --join");
        return PST_EXIT_USAGE;
    }
    if (join != NULL)
        return init_join(&cfg, join, name, n_addr > 0 || passfile != NULL);
    char *pass = NULL;
    bool empty = false;
    if (passfile != NULL && (pass = pst_cli_read_passphrase(passfile, &empty)) == NULL)
        return empty ? PST_EXIT_USAGE : PST_EXIT_FAIL;
    char info[2048];
    int rc = pst_node_init_identity(&cfg, addresses, n_addr, pass, fast, info, sizeof info, err,
                                    sizeof err);
    if (pass)
        sodium_free(pass);
    if (rc != PST_OK) {
        pst_cli_error("%s", err);
        return rc == PST_E_EXISTS || rc == PST_E_BUSY || rc == PST_E_MISMATCH ? PST_EXIT_CANTCREAT
                                                                              : PST_EXIT_FAIL;
    }
    fputs(info, stdout);
    /* the mail client's password for SMTP submission (docs/SMTP.md) */
    char pw[PST_SMTP_PASSWORD_LEN + 1];
    if (pst_node_smtp_password(cfg.home, false, pw, err, sizeof err) != PST_OK)
        pst_cli_error("warning: %s (make it later with 'postern smtp password')", err);
    else
        printf("SMTP submission password: %s/%s (shown by 'postern smtp password')\n", cfg.home,
               PST_FILE_SMTP_PASSWORD);
    sodium_memzero(pw, sizeof pw);
    printf("\nYour identity is ready. Store the revocation key and certificate OFFLINE\n"
           "(a USB stick, paper) and delete them here:\n"
           "  %s/%s\n  %s/%s\n"
           "If your identity key is ever lost or stolen, revoke it with:\n"
           "  postern key revoke --cert revocation.cert\n"
           "Then start your node: posternd --home %s\n"
           "(installed by 'meson install -C build'; until then it is ./build/node/posternd\n"
           "in the source tree; as a service: docs/SERVICE.md, man posternd)\n",
           cfg.home, PST_FILE_REVKEY, cfg.home, PST_FILE_REVCERT, cfg.home);
    return PST_EXIT_OK;
}
