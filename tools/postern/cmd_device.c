/* postern device add|list|rename|revoke (issue 13): one identity on
 * several devices. The node does the work (node/control/device_cmd.c). */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctrl_client.h"
#include "pst_armor.h"
#include "pst_home.h"
#include "pst_node.h"

static const char DEVICE_HELP[] =
    "usage: postern device add [--name NAME] [--ttl SECONDS] [--json]\n"
    "       postern device list [--json]\n"
    "       postern device rename ID NAME\n"
    "       postern device revoke ID\n"
    "       (all take --home DIR and need the running node)\n"
    "\n"
    "One identity may live on up to 8 devices (laptop, desktop, home server),\n"
    "each with its own key. 'device add', on the device that holds the identity\n"
    "key, prints a one-time pairing code (last line; 'code' with --json), valid\n"
    "10 minutes (--ttl, at most 3600 s) and usable once: type it on the new\n"
    "machine with 'postern init --join CODE --home DIR'. The new device gets its\n"
    "certificate, the device list and your trust list from this node.\n"
    "\n"
    "'device list' shows every device (id, name, created, revoked; * marks this\n"
    "one). 'rename' and 'revoke' publish a new device list (seq + 1) and run on\n"
    "the device holding the identity key: a revoked device gets no new mail and\n"
    "its signatures are refused; its 'postern status' says it was revoked.\n"
    "\n"
    "Exit codes: 0 ok, 1 failure (also: the 9th device, a device without the\n"
    "identity key), 2 no such device, 64 usage error.\n";

static pst_ctrl_request req; /* ~128 KiB: not on the stack */

typedef struct {
    const char *name, *ttl;
} device_opts;

static int device_option(void *user, int val, const char *arg) {
    device_opts *o = user;
    *(val == 'n' ? &o->name : &o->ttl) = arg;
    return 0;
}

static int add_arg(const char *key, const char *value) {
    return pst_cli_add_arg(&req, key, value, "argument too long: %s", key);
}

static int print_add(const pst_value *b) {
    const char *code = pst_value_as_str(pst_value_get(b, "code"), NULL);
    const char *name = pst_value_as_str(pst_value_get(b, "name"), NULL);
    uint64_t ttl = 0;
    (void)pst_value_as_uint(pst_value_get(b, "expires_in_s"), &ttl);
    if (code == NULL) {
        pst_cli_error("the node answered without a code");
        return PST_EXIT_FAIL;
    }
    printf("Pairing code for a new device named \"%s\". On the new machine run\n"
           "  postern init --join CODE --home DIR\n"
           "within %llu minute%s; the code works once. Code:\n%s\n",
           name ? name : "", (unsigned long long)((ttl + 59) / 60), ttl > 60 ? "s" : "", code);
    return PST_EXIT_OK;
}

static void print_list(const pst_value *b) {
    const pst_value *devs = pst_value_get(b, "devices");
    uint64_t seq = 0;
    (void)pst_value_as_uint(pst_value_get(b, "seq"), &seq);
    printf("identity %s, device list seq %llu\n",
           pst_value_as_str(pst_value_get(b, "identity"), NULL), (unsigned long long)seq);
    for (const pst_value *d = pst_value_first(devs); d != NULL; d = pst_value_next(d)) {
        bool revoked = false, self = false;
        uint64_t created = 0;
        char when[40] = "-";
        (void)pst_value_as_bool(pst_value_get(d, "revoked"), &revoked);
        (void)pst_value_as_bool(pst_value_get(d, "this_device"), &self);
        (void)pst_value_as_uint(pst_value_get(d, "created"), &created);
        if (created != 0)
            pst_cli_time(created, when, sizeof when);
        printf("%s %s  %-24s %s%s\n", self ? "*" : " ",
               pst_value_as_str(pst_value_get(d, "id"), NULL),
               pst_value_as_str(pst_value_get(d, "name"), NULL), when, revoked ? "  REVOKED" : "");
    }
    bool gone = false;
    (void)pst_value_as_bool(pst_value_get(b, "this_device_revoked"), &gone);
    if (gone)
        printf("this device was revoked: it gets no new mail for this identity\n");
}

int pst_cmd_device(int argc, char **argv) {
    static const struct option opts[] = {
        {"home", required_argument, 0, 'h'}, {"json", no_argument, 0, 'j'},
        {"name", required_argument, 0, 'n'}, {"ttl", required_argument, 0, 't'},
        {"help", no_argument, 0, 'H'},       {0, 0, 0, 0},
    };
    pst_cli_common common;
    device_opts o = {NULL, NULL};
    int rc = pst_cli_parse_options(argc, argv, opts, DEVICE_HELP, &common, device_option, &o);
    if (rc != 0)
        return rc == PST_CLI_HELP_SHOWN ? PST_EXIT_OK : rc;
    common.no_oneshot = true;
    int rest = argc - optind;
    char **av = argv + optind;
    const char *sub = rest >= 1 ? av[0] : "";
    bool add = strcmp(sub, "add") == 0, list = strcmp(sub, "list") == 0;
    if ((o.name || o.ttl) && !add) {
        pst_cli_error("--name and --ttl go with device add");
        return PST_EXIT_USAGE;
    }
    if (add && rest == 1) {
        (void)pst_ctrl_request_init(&req, 1, "device-add");
        if ((o.name && add_arg("name", o.name)) || (o.ttl && add_arg("ttl", o.ttl)))
            return PST_EXIT_USAGE;
    } else if (list && rest == 1) {
        (void)pst_ctrl_request_init(&req, 1, "device-list");
    } else if (strcmp(sub, "rename") == 0 && rest == 3) {
        (void)pst_ctrl_request_init(&req, 1, "device-rename");
        if (add_arg("id", av[1]) || add_arg("name", av[2]))
            return PST_EXIT_USAGE;
    } else if (strcmp(sub, "revoke") == 0 && rest == 2) {
        (void)pst_ctrl_request_init(&req, 1, "device-revoke");
        if (add_arg("id", av[1]))
            return PST_EXIT_USAGE;
    } else {
        fputs(DEVICE_HELP, stderr);
        return PST_EXIT_USAGE;
    }
    if (common.json || (!add && !list))
        return pst_cli_call_and_print(&common, &req);
    pst_ctrl_response resp;
    bool oneshot;
    if ((rc = pst_cli_call(&common, &req, &resp, &oneshot)) != 0)
        return rc;
    rc = (int)resp.status;
    if (resp.error[0] != '\0')
        pst_cli_error("%s", resp.error);
    else if (add)
        rc = print_add(resp.body);
    else
        print_list(resp.body);
    pst_ctrl_response_free(&resp);
    return rc;
}

static const char IDENTITY_HELP[] =
    "usage: postern identity export-paper [--home DIR] [--passphrase-file F]\n"
    "       postern identity recover --home NEWDIR [--form FILE]\n"
    "\n"
    "export-paper prints a recovery form: your identity SECRET key as text to\n"
    "print and keep offline (anyone holding it is you). With it, 'identity\n"
    "recover' makes a new home after every device is lost: it reads the form\n"
    "(from FILE, or standard input), writes the identity key and a new device\n"
    "key; the next posternd started there publishes a device list that revokes\n"
    "every old device. The fingerprint your contacts trust stays the same.\n"
    "\n"
    "Exit codes: 0 ok, 1 failure, 64 usage error, 73 NEWDIR is not a new home.\n";

static int identity_option(void *user, int val, const char *arg) {
    const char **o = user;
    o[val == 'f' ? 0 : 1] = arg;
    return 0;
}

int pst_cmd_identity(int argc, char **argv) {
    static const struct option opts[] = {
        {"home", required_argument, 0, 'h'},
        {"form", required_argument, 0, 'f'},
        {"passphrase-file", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    pst_cli_common common;
    const char *o[2] = {NULL, NULL}; /* form, passphrase file */
    int rc = pst_cli_parse_options(argc, argv, opts, IDENTITY_HELP, &common, identity_option, o);
    if (rc != 0)
        return rc == PST_CLI_HELP_SHOWN ? PST_EXIT_OK : rc;
    const char *sub = argc - optind == 1 ? argv[optind] : "";
    bool paper = strcmp(sub, "export-paper") == 0, recover = strcmp(sub, "recover") == 0;
    if ((!paper && !recover) || (paper && o[0]) || (recover && o[1])) {
        fputs(IDENTITY_HELP, stderr);
        return PST_EXIT_USAGE;
    }
    pst_node_config cfg;
    if (pst_cli_load_config(&common, &cfg) != 0)
        return PST_EXIT_USAGE;
    char err[1024] = "", info[1024] = "";
    static char text[PST_ARMOR_TEXT_MAX];
    if (paper) {
        char *pass = NULL;
        bool empty = false;
        if (o[1] != NULL && (pass = pst_cli_read_passphrase(o[1], &empty)) == NULL)
            return empty ? PST_EXIT_USAGE : PST_EXIT_FAIL;
        rc = pst_node_paper_export(&cfg, pass, text, sizeof text, err, sizeof err);
        if (pass != NULL)
            sodium_free(pass);
        if (rc != PST_OK) {
            pst_cli_error("%s", err);
            return PST_EXIT_FAIL;
        }
        printf("Postern identity recovery form. Print it and keep it offline: it IS your\n"
               "identity. To use it: postern identity recover --home NEWDIR --form FILE\n\n%s",
               text);
        sodium_memzero(text, sizeof text);
        return PST_EXIT_OK;
    }
    FILE *f = o[0] ? fopen(o[0], "r") : stdin;
    if (f == NULL) {
        pst_cli_error("cannot open %s", o[0]);
        return PST_EXIT_FAIL;
    }
    size_t len = fread(text, 1, sizeof text - 1, f);
    if (f != stdin)
        fclose(f);
    rc = pst_node_recover(&cfg, text, len, info, sizeof info, err, sizeof err);
    sodium_memzero(text, sizeof text);
    if (rc != PST_OK) {
        pst_cli_error("%s", err);
        return rc == PST_E_EXISTS ? PST_EXIT_CANTCREAT : PST_EXIT_FAIL;
    }
    fputs(info, stdout);
    return PST_EXIT_OK;
}
