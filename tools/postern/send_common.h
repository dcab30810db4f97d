/* What `postern send` (cmd_send.c) and `postern sendmail` (cmd_sendmail.c)
 * share: the spool file the message travels in, and the long `send` call
 * with its progress line and Ctrl-C. One path to the outbox. */
#ifndef PST_SEND_COMMON_H
#define PST_SEND_COMMON_H

#include <stdbool.h>

#include "ctrl_client.h"
#include "pst_home.h"

/* Creates DIR/spool/send-XXXXXX (mode 0600, DIR/spool made 0700 when
 * missing) for home, with its absolute path in path (the node runs
 * elsewhere) and an open fd. 0, or PST_EXIT_FAIL after printing why;
 * *no_home is set when home itself does not exist. */
int pst_cli_spool_create(const char *home, char path[PST_PATH_MAX], int *fd, bool *no_home);

/* Sends req (a `send` request naming the spool file path) as a long call:
 * the minting progress line, Ctrl-C cancels. Removes the spool file in
 * every case (the node removed it once stored). Returns 0 with *resp the
 * node's answer (any status: the caller prints it and frees resp), or an
 * exit code with nothing to free: pst_cli_call's, or PST_EXIT_FAIL after a
 * cancel that stored nothing (printed). */
int pst_cli_send_spooled(pst_cli_common *common, pst_ctrl_request *req, const char *path,
                         pst_ctrl_response *resp);

/* Prints, below the node's one-line error, each recipient's problem once
 * (from the failed answer's body). */
void pst_cli_print_send_problems(const pst_value *body);

#endif
