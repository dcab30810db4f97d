/* postern CLI: shared declarations. Each subcommand lives in its own
 * cmd_*.c file and has a doc page in docs/cli/. Exit codes follow sysexits:
 * 0 ok, 1 failure, 64 usage error (EX_USAGE); key lookups add 2/3/4; 69 the
 * node refused or dropped the control connection; init adds 73. */
#ifndef PST_CLI_H
#define PST_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pst_envelope.h"

/* A node's reply status is the exit code: the shared ones are its names. */
#define PST_EXIT_OK ((int)PST_CTRL_STATUS_OK)
#define PST_EXIT_FAIL ((int)PST_CTRL_STATUS_FAIL)
#define PST_EXIT_NOTFOUND ((int)PST_CTRL_STATUS_NOT_FOUND)
#define PST_EXIT_REVOKED ((int)PST_CTRL_STATUS_REVOKED)
#define PST_EXIT_EXPIRED ((int)PST_CTRL_STATUS_EXPIRED)
#define PST_EXIT_USAGE ((int)PST_CTRL_STATUS_USAGE)
/* EX_UNAVAILABLE: the node refused or dropped the call */
#define PST_EXIT_UNAVAILABLE ((int)PST_CTRL_STATUS_REFUSED)
#define PST_EXIT_CANTCREAT 73 /* EX_CANTCREAT: init refused, nothing changed */
#define PST_EXIT_CONFIG 78    /* EX_CONFIG: identity.key damaged or not the store's */

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} pst_cli_command;

/* Subcommands (each returns an exit code). */
int pst_cmd_pow(int argc, char **argv);
int pst_cmd_init(int argc, char **argv);
int pst_cmd_id(int argc, char **argv);
int pst_cmd_status(int argc, char **argv);
int pst_cmd_key(int argc, char **argv);
int pst_cmd_send(int argc, char **argv);     /* cmd_send.c */
int pst_cmd_outbox(int argc, char **argv);   /* cmd_send.c */
int pst_cmd_unsend(int argc, char **argv);   /* cmd_send.c */
int pst_cmd_sendmail(int argc, char **argv); /* cmd_sendmail.c */
int pst_cmd_inbox(int argc, char **argv);    /* cmd_inbox.c */
int pst_cmd_read(int argc, char **argv);     /* cmd_inbox.c */
int pst_cmd_trust(int argc, char **argv);    /* cmd_trust.c */
int pst_cmd_device(int argc, char **argv);   /* cmd_device.c */
int pst_cmd_identity(int argc, char **argv); /* cmd_device.c */
int pst_cmd_vouch(int argc, char **argv);    /* cmd_trust.c */
int pst_cmd_unvouch(int argc, char **argv);  /* cmd_trust.c */
int pst_cmd_smtp(int argc, char **argv);     /* cmd_smtp.c */

/* Prints "postern: " + message to stderr. */
void pst_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pst_cli_verror(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Parses a decimal unsigned integer in [min, max]; false on any junk. */
bool pst_cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Writes s as a JSON string literal (quotes and escapes included). */
void pst_cli_json_string(FILE *out, const char *s);
/* Seconds as "42 s", "17 min", "3.5 h" or "12 d": expected times of
 * proof-of-work span many orders of magnitude. */
#define PST_CLI_DURATION_BUFSIZE 16
void pst_cli_duration(double s, char out[PST_CLI_DURATION_BUFSIZE]);
/* Reads a passphrase file (secret-file rules: 0600) into a new
 * sodium_malloc'd string without its trailing line break; the caller
 * frees it with sodium_free. NULL after printing why (unreadable, or
 * empty: *empty set). */
char *pst_cli_read_passphrase(const char *path, bool *empty);
/* True when stderr is a terminal (progress lines are drawn only then, or
 * when forced with POSTERN_PROGRESS=1). */
bool pst_cli_progress_enabled(void);

#endif
