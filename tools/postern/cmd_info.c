/* postern id / postern status: what the running node says about itself. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctrl_client.h"
#include "pst_node.h"

static int run_simple(int argc, char **argv, const char *command, const char *help,
                      pst_cli_offline_fn offline) {
    static const struct option opts[] = {
        {"home", required_argument, 0, 'h'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'H'},
        {0, 0, 0, 0},
    };
    pst_cli_common common;
    int rc = pst_cli_parse_options(argc, argv, opts, help, &common, NULL, NULL);
    if (rc != 0)
        return rc == PST_CLI_HELP_SHOWN ? PST_EXIT_OK : rc;
    common.no_oneshot = true;
    common.offline = offline;
    if (optind < argc) {
        pst_cli_error("%s: unexpected argument '%s'", argv[0], argv[optind]);
        return PST_EXIT_USAGE;
    }
    static pst_ctrl_request req;
    (void)pst_ctrl_request_init(&req, 1, command);
    return pst_cli_call_and_print(&common, &req);
}

int pst_cmd_id(int argc, char **argv) {
    return run_simple(argc, argv, "id",
                      "usage: postern id [--home DIR] [--json]\n"
                      "\n"
                      "Shows your identity as the running node publishes it: fingerprint,\n"
                      "addresses, fetch endpoints, required PoW bits, record seq.\n"
                      "--json prints one JSON object (docs/CLI.md): fingerprint,\n"
                      "encryption_key, revocation_key, addresses[], endpoints[],\n"
                      "pow_bits, seq, revoked.\n"
                      "\n"
                      "With no node running it reads the home itself: the key record the node\n"
                      "signed last (before the first start: the key file and the addresses\n"
                      "of init), and says so (node_running: no).\n"
                      "\n"
                      "Exit codes: 0 ok, 1 failure (no identity in the home; a key file\n"
                      "sealed with a passphrase before the node's first start), 64 usage,\n"
                      "69 the node refused the connection, 78 identity.key damaged or not\n"
                      "this home's identity.\n",
                      pst_node_id_offline);
}

int pst_cmd_status(int argc, char **argv) {
    return run_simple(argc, argv, "status",
                      "usage: postern status [--home DIR] [--json]\n"
                      "\n"
                      "Shows the running node: DHT node id, network, bound ports, seeds that\n"
                      "answered, records it publishes and their age, and counters of rejected\n"
                      "values by slot and reason. --json prints one JSON object (docs/CLI.md):\n"
                      "version, uptime_s, fingerprint, revoked, dht{node_id, network, port4,\n"
                      "port6, joined, state (joined|joining|alone), summary, seeds,\n"
                      "seeds_good, seeds_dubious, values_received, gets_failed, ...},\n"
                      "ports{dht, fetch, smtp}, smtp{enabled, address, port}, lmtp{enabled,\n"
                      "path, unknown}, device{id, holds_identity_key, revoked},\n"
                      "published[{kind, slot, seq, signed_at, last_put,\n"
                      "age_s}], notices[], clock{state, off_by_s, peers, tolerance_s,\n"
                      "summary, peers_disagreeing[]}, counters{NAME: N}.\n"
                      "clock says whether this machine's clock agrees with the signed times\n"
                      "of the peers the node talks to (docs/cli/status.md).\n"
                      "\n"
                      "Exit codes: 0 ok, 1 failure (no node running: start posternd), 64 usage.\n",
                      NULL);
}
