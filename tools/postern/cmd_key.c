/* postern key get / postern key revoke */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ctrl_client.h"
#include "json.h"
#include "pst_armor.h"
#include "pst_home.h"
#include "pst_identity.h"
#include "pst_node.h"
#include "pst_records.h"

static const char GET_HELP[] =
    "usage: postern key get FINGERPRINT|ADDRESS [--json] [--home DIR]\n"
    "                       [--seed HOST:PORT]... [--network ID]\n"
    "\n"
    "Finds a key in the DHT and verifies it. Asks the running node of DIR; when\n"
    "none runs, starts a short-lived node bootstrapped from the same seeds.\n"
    "Prints fingerprint, addresses, endpoints, PoW bits, seq, created/expires\n"
    "and a status: valid, revoked (with reason and date), expired, not_found, or\n"
    "from_future: a record was found but created further in the future than\n"
    "this machine's clock allows (check this machine's clock; clock_note says\n"
    "by how much).\n"
    "An address lists every key that claims it, each verified: a claim is not\n"
    "proof of ownership.\n"
    "\n"
    "--json prints one JSON object (docs/CLI.md): query, kind (fingerprint|\n"
    "address), lookup_ms, then for a fingerprint: fingerprint, status, seq,\n"
    "created, expires, addresses[], endpoints[], pow_bits, encryption_key,\n"
    "revocation_key, revocation{reason,reason_text,date,signed_by,replacement},\n"
    "vouches[{voucher,tier,voucher_tier,counts,...}], devices[{id,name,\n"
    "created,revoked,...}] (issue 13), source (dht|cache);\n"
    "for an address: address, note, keys[] of those entries.\n"
    "When the DHT could not be asked (no seed, none answered, no answer in\n"
    "time) one line on stderr says why and what to do: a warning when the\n"
    "local cache answers, else the error (exit 1: 'not found' needs an answer).\n"
    "Exit codes: 0 valid, 2 not found (the DHT answered), 3 revoked, 4 expired,\n"
    "5 from_future (this machine's clock looks behind), 1 the DHT could not be\n"
    "asked and nothing is cached, or another failure, 64 usage error.\n"
    "For an address: 0 if any key is valid, else 3, 4, 5 or 2.\n";

static const char REVOKE_HELP[] =
    "usage: postern key revoke [--reason TEXT] [--code CODE] [--replacement FINGERPRINT]\n"
    "                          [--cert FILE] [--passphrase-file F] [--json] [--home DIR]\n"
    "                          [--seed HOST:PORT]... [--network ID]\n"
    "\n"
    "Revokes your key for good and publishes the revocation. Without --cert it is\n"
    "signed by your identity key; with --cert FILE the certificate made by\n"
    "'postern init' is published (use it when the identity key is lost or\n"
    "stolen). CODE: unspecified, compromised, superseded or retired. A revoked\n"
    "key is reported revoked by every node and none of its records is accepted\n"
    "again. This cannot be undone.\n"
    "\n"
    "Exit codes: 0 published, 1 failure, 64 usage error.\n";

static void print_entry(const pst_value *e, int indent) {
    char tbuf[40];
    uint64_t u;
    const char *s;
    size_t n;
    const pst_value *v;
#define FIELD(label) fprintf(stdout, "%*s%-13s", indent, "", label)
    if ((s = pst_value_as_str(pst_value_get(e, "fingerprint"), &n))) {
        FIELD("fingerprint:");
        printf("%s\n", s);
    }
    if ((s = pst_value_as_str(pst_value_get(e, "status"), &n))) {
        FIELD("status:");
        printf("%s\n", s);
    }
    if ((v = pst_value_get(e, "revocation")) != NULL) {
        FIELD("revoked:");
        pst_value_as_uint(pst_value_get(v, "date"), &u);
        printf("%s, reason %s", pst_cli_time(u, tbuf, sizeof tbuf),
               pst_value_as_str(pst_value_get(v, "reason"), &n));
        s = pst_value_as_str(pst_value_get(v, "reason_text"), &n);
        if (s && *s)
            printf(" (\"%s\")", s);
        s = pst_value_as_str(pst_value_get(v, "signed_by"), &n);
        printf(", signed by the %s\n",
               s && strcmp(s, "revocation_key") == 0 ? "offline revocation key" : "identity key");
        if ((s = pst_value_as_str(pst_value_get(v, "replacement"), &n))) {
            FIELD("replacement:");
            printf("%s\n%*s  (named by the revocation; NOT trusted because of that: check it "
                   "with its owner)\n",
                   s, indent, "");
        }
    }
    const char *lists[] = {"addresses", "endpoints"};
    for (int i = 0; i < 2; i++) {
        if ((v = pst_value_get(e, lists[i])) == NULL)
            continue;
        char label[20];
        snprintf(label, sizeof label, "%s:", lists[i]);
        FIELD(label);
        if (pst_value_count(v) == 0)
            printf("(none)");
        for (const pst_value *m = pst_value_first(v); m; m = pst_value_next(m))
            printf("%s%s", m == pst_value_first(v) ? "" : ", ", pst_value_as_str(m, &n));
        printf("\n");
    }
    if (pst_value_as_uint(pst_value_get(e, "pow_bits"), &u) == 0) {
        FIELD("pow bits:");
        printf("%llu\n", (unsigned long long)u);
    }
    if (pst_value_as_uint(pst_value_get(e, "seq"), &u) == 0) {
        FIELD("seq:");
        printf("%llu\n", (unsigned long long)u);
    }
    if (pst_value_as_uint(pst_value_get(e, "created"), &u) == 0) {
        FIELD("created:");
        printf("%s\n", pst_cli_time(u, tbuf, sizeof tbuf));
    }
    if (pst_value_as_uint(pst_value_get(e, "expires"), &u) == 0) {
        FIELD("expires:");
        printf("%s\n", pst_cli_time(u, tbuf, sizeof tbuf));
    }
    if ((s = pst_value_as_str(pst_value_get(e, "revocation_key"), &n))) {
        FIELD("revoker:");
        printf("%s (offline revocation key)\n", s);
    }
    if ((v = pst_value_get(e, "devices")) != NULL && pst_value_count(v) > 0) {
        FIELD("devices:");
        printf("\n");
        for (const pst_value *m = pst_value_first(v); m; m = pst_value_next(m)) {
            bool revoked = false;
            pst_value_as_bool(pst_value_get(m, "revoked"), &revoked);
            u = 0;
            pst_value_as_uint(pst_value_get(m, "created"), &u);
            const char *dn = pst_value_as_str(pst_value_get(m, "name"), &n);
            printf("%*s  %s  %-24s %s%s\n", indent, "",
                   pst_value_as_str(pst_value_get(m, "id"), &n), dn && *dn ? dn : "(unnamed)",
                   u ? pst_cli_time(u, tbuf, sizeof tbuf) : "-", revoked ? "  REVOKED" : "");
        }
    }
    if ((v = pst_value_get(e, "vouches")) != NULL) {
        FIELD("vouches:");
        if (pst_value_count(v) == 0)
            printf("none");
        printf("\n");
        for (const pst_value *m = pst_value_first(v); m; m = pst_value_next(m)) {
            const char *name = pst_value_as_str(pst_value_get(m, "voucher_name"), &n);
            const char *vt = pst_value_as_str(pst_value_get(m, "voucher_tier"), &n);
            bool counts = false;
            pst_value_as_bool(pst_value_get(m, "counts"), &counts);
            pst_value_as_uint(pst_value_get(m, "expires"), &u);
            printf("%*s  %s%s%s (%s to you): %s until %s%s\n", indent, "",
                   pst_value_as_str(pst_value_get(m, "voucher"), &n), name ? " " : "",
                   name ? name : "", vt ? vt : "unknown",
                   pst_value_as_str(pst_value_get(m, "tier"), &n),
                   pst_cli_time(u, tbuf, sizeof tbuf),
                   counts ? " -- counts: you trust the voucher" : "");
        }
        if (pst_value_as_uint(pst_value_get(e, "vouches_not_examined"), &u) == 0)
            printf("%*s  (%llu more not examined: only vouches by your contacts are always "
                   "checked)\n",
                   indent, "", (unsigned long long)u);
        bool complete = true;
        if (pst_value_as_bool(pst_value_get(e, "vouches_complete"), &complete) == 0 && !complete)
            printf("%*s  (the vouch slot holds many values and is still being read: your "
                   "contacts' vouches seen earlier are shown; ask again in a few seconds)\n",
                   indent, "");
    }
    if ((s = pst_value_as_str(pst_value_get(e, "clock_note"), &n))) {
        FIELD("clock:");
        printf("%s\n", s);
    }
    bool b;
    if (pst_value_as_bool(pst_value_get(e, "key_record_lists_address"), &b) == 0 && !b) {
        FIELD("warning:");
        printf("the key record itself does not list this address\n");
    }
#undef FIELD
}

#define COMMON_OPTS                                                                                \
    {"home", required_argument, 0, 'h'}, {"seed", required_argument, 0, 's'},                      \
        {"seeds-file", required_argument, 0, 'S'}, {"network", required_argument, 0, 'n'},         \
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'H'}, {                            \
        "log-level", required_argument, 0, 'l'                                                     \
    }

static int key_get(int argc, char **argv) {
    static const struct option opts[] = {COMMON_OPTS, {0, 0, 0, 0}};
    pst_cli_common common;
    int rc = pst_cli_parse_options(argc, argv, opts, GET_HELP, &common, NULL, NULL);
    if (rc == PST_CLI_HELP_SHOWN)
        return PST_EXIT_OK;
    if (rc != 0)
        return rc;
    if (argc - optind != 1) {
        pst_cli_error("key get takes one FINGERPRINT or ADDRESS (see --help)");
        return PST_EXIT_USAGE;
    }
    static pst_ctrl_request req;
    (void)pst_ctrl_request_init(&req, 1, "key-get");
    if (strlen(argv[optind]) > PST_CTRL_ARG_MAX) {
        pst_cli_error("query too long");
        return PST_EXIT_USAGE;
    }
    {
        /* a bad query is a usage error now, not after a node starts */
        uint8_t pk[32];
        char addr[PST_ADDRESS_MAX + 1];
        if (pst_fingerprint_parse(argv[optind], pk) != PST_OK &&
            (strchr(argv[optind], '@') == NULL ||
             pst_address_normalize(argv[optind], addr, sizeof addr) != PST_OK)) {
            pst_cli_error("'%s' is neither a fingerprint (52 characters of z-base-32) nor an "
                          "address (local@domain)",
                          argv[optind]);
            return PST_EXIT_USAGE;
        }
    }
    if ((rc = pst_cli_add_arg(&req, NULL, argv[optind], "query too long")) != 0)
        return rc;
    pst_ctrl_response resp;
    bool oneshot;
    rc = pst_cli_call(&common, &req, &resp, &oneshot);
    if (rc != 0)
        return rc;
    rc = (int)resp.status;
    size_t n;
    const char *berr = pst_value_as_str(pst_value_get(resp.body, "error"), &n);
    if (resp.error[0] != '\0') {
        pst_cli_error("%s", resp.error);
    } else if (common.json) {
        pst_cli_print_json(resp.body);
    } else if (berr) {
        /* the network was not asked: one line says why and what to do, and
         * no "not_found" on stdout pretends it was */
        pst_cli_error("%s", berr);
    } else {
        const char *kind = pst_value_as_str(pst_value_get(resp.body, "kind"), &n);
        const char *warn = pst_value_as_str(pst_value_get(resp.body, "warning"), &n);
        if (warn)
            fprintf(stderr, "postern: warning: %s\n", warn);
        if (kind && strcmp(kind, "address") == 0) {
            const pst_value *keys = pst_value_get(resp.body, "keys");
            printf("address:     %s\n", pst_value_as_str(pst_value_get(resp.body, "address"), &n));
            printf("note:        %s\n", pst_value_as_str(pst_value_get(resp.body, "note"), &n));
            printf("keys:        %u claim%s found\n", pst_value_count(keys),
                   pst_value_count(keys) == 1 ? "" : "s");
            for (const pst_value *e = pst_value_first(keys); e; e = pst_value_next(e)) {
                printf("\n");
                print_entry(e, 2);
            }
        } else {
            print_entry(resp.body, 0);
        }
    }
    pst_ctrl_response_free(&resp);
    return rc;
}

typedef struct {
    const char *reason, *code, *replacement, *cert, *passfile;
} revoke_opts;

/* pst_cli_own_option_fn for revoke_opts */
static int revoke_option(void *u, int c, const char *arg) {
    revoke_opts *o = u;
    switch (c) {
    case 'r':
        o->reason = arg;
        return 0;
    case 'c':
        o->code = arg;
        return 0;
    case 'R':
        o->replacement = arg;
        return 0;
    case 'C':
        o->cert = arg;
        return 0;
    case 'P':
        o->passfile = arg;
        return 0;
    }
    return PST_EXIT_USAGE;
}

static int read_cert(const char *path, uint8_t *out, size_t cap, size_t *len) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        pst_cli_error("cannot open %s: no such file or not readable", path);
        return PST_EXIT_FAIL;
    }
    char text[PST_ARMOR_TEXT_MAX];
    size_t n = fread(text, 1, sizeof text, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    int rc =
        more ? PST_E_TOOBIG : pst_armor_decode("REVOCATION CERTIFICATE", text, n, out, cap, len);
    if (rc != PST_OK) {
        pst_cli_error("%s is not a Postern revocation certificate: %s", path, pst_strerror(rc));
        return PST_EXIT_FAIL;
    }
    return 0;
}

static int parse_code(const char *s, pst_revoke_reason *out) {
    static const char *const names[] = {"unspecified", "compromised", "superseded", "retired"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (pst_revoke_reason)i;
            return 0;
        }
    return -1;
}

static int build_self_revocation(pst_cli_common *common, const revoke_opts *o, uint8_t *out,
                                 size_t cap, size_t *len) {
    char err[1024] = "";
    pst_node_config cfg;
    if (pst_cli_load_config(common, &cfg) != 0)
        return PST_EXIT_USAGE;
    pst_revoke_reason code = PST_REVOKE_UNSPECIFIED;
    if (o->code && parse_code(o->code, &code) != 0) {
        pst_cli_error("--code must be unspecified, compromised, superseded or retired");
        return PST_EXIT_USAGE;
    }
    uint8_t repl[32];
    if (o->replacement && pst_fingerprint_parse(o->replacement, repl) != PST_OK) {
        pst_cli_error("--replacement must be a fingerprint (52 characters)");
        return PST_EXIT_USAGE;
    }
    if (o->reason && strlen(o->reason) > PST_REVOCATION_REASON_TEXT_MAX) {
        pst_cli_error("--reason is limited to %u bytes", PST_REVOCATION_REASON_TEXT_MAX);
        return PST_EXIT_USAGE;
    }
    char *pass = NULL;
    pst_identity *id = NULL;
    pst_store *st = NULL;
    int rc = PST_EXIT_FAIL;
    if (o->passfile) {
        size_t plen = 0;
        pass = sodium_malloc(1025);
        if (pass == NULL || pst_secret_file_read(o->passfile, (uint8_t *)pass, 1024, &plen, err,
                                                 sizeof err) != PST_OK) {
            pst_cli_error("passphrase file: %s", err);
            goto out;
        }
        while (plen > 0 && (pass[plen - 1] == '\n' || pass[plen - 1] == '\r'))
            plen--;
        pass[plen] = '\0';
    }
    /* the same checks as posternd: a damaged key, or one that is not this
     * home's identity, must not sign a revocation in this home's name */
    char dbpath[PST_PATH_MAX];
    if (pst_home_path(cfg.home, PST_FILE_STORE, dbpath, sizeof dbpath) == PST_OK &&
        access(dbpath, F_OK) == 0 && pst_store_open_ex(&st, dbpath, err, sizeof err) != PST_OK) {
        pst_cli_error("%s", err);
        goto out;
    }
    int prc = pst_identity_load(cfg.home, pass, st, 0, &id, err, sizeof err);
    if (prc != PST_OK) {
        if (prc == PST_E_NOKEY)
            pst_cli_error("%s (use --cert FILE if the identity key is lost)", err);
        else
            pst_cli_error("%s", err);
        rc = prc == PST_E_CHECKSUM || prc == PST_E_MISMATCH ? PST_EXIT_CONFIG : PST_EXIT_FAIL;
        goto out;
    }
    pst_revocation rev;
    if (pst_revocation_build_self(&rev, id->sign_sk, (uint64_t)time(NULL), code,
                                  o->reason ? o->reason : "",
                                  o->replacement ? repl : NULL) != PST_OK ||
        pst_revocation_encode(&rev, out, cap, len) != PST_OK) {
        pst_cli_error("cannot build the revocation");
        goto out;
    }
    rc = 0;
out:
    pst_identity_free(id);
    pst_store_close(st);
    if (pass)
        sodium_free(pass);
    return rc;
}

static int key_revoke(int argc, char **argv) {
    static const struct option opts[] = {COMMON_OPTS,
                                         {"reason", required_argument, 0, 'r'},
                                         {"code", required_argument, 0, 'c'},
                                         {"replacement", required_argument, 0, 'R'},
                                         {"cert", required_argument, 0, 'C'},
                                         {"passphrase-file", required_argument, 0, 'P'},
                                         {0, 0, 0, 0}};
    pst_cli_common common;
    revoke_opts o;
    memset(&o, 0, sizeof o);
    int rc = pst_cli_parse_options(argc, argv, opts, REVOKE_HELP, &common, revoke_option, &o);
    if (rc == PST_CLI_HELP_SHOWN)
        return PST_EXIT_OK;
    if (rc != 0)
        return rc;
    if (optind != argc) {
        pst_cli_error("key revoke takes no arguments (see --help)");
        return PST_EXIT_USAGE;
    }
    if (o.cert && (o.reason || o.code || o.replacement)) {
        pst_cli_error("--cert publishes the certificate as made: --reason, --code and "
                      "--replacement do not apply");
        return PST_EXIT_USAGE;
    }
    uint8_t rec[PST_RECORD_MAX];
    size_t len = 0;
    rc = o.cert ? read_cert(o.cert, rec, sizeof rec, &len)
                : build_self_revocation(&common, &o, rec, sizeof rec, &len);
    if (rc != 0)
        return rc;
    static pst_ctrl_request req;
    static char hex[2 * PST_RECORD_MAX + 1];
    (void)pst_ctrl_request_init(&req, 1, "key-revoke");
    sodium_bin2hex(hex, sizeof hex, rec, len);
    if ((rc = pst_cli_add_arg(&req, NULL, hex, "revocation too large")) != 0)
        return rc;
    return pst_cli_call_and_print(&common, &req);
}

int pst_cmd_key(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *out = argc < 2 ? stderr : stdout;
        fprintf(out, "usage: postern key get|revoke ...\n\n%s\n%s", GET_HELP, REVOKE_HELP);
        return argc < 2 ? PST_EXIT_USAGE : PST_EXIT_OK;
    }
    if (strcmp(argv[1], "get") == 0)
        return key_get(argc - 1, argv + 1);
    if (strcmp(argv[1], "revoke") == 0)
        return key_revoke(argc - 1, argv + 1);
    pst_cli_error("unknown key command '%s': use get or revoke", argv[1]);
    return PST_EXIT_USAGE;
}
