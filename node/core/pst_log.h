/* Logging to stderr with levels. One line per event, prefixed with the
 * time and level, so a person reading the terminal sees what the node does.
 * Under systemd (stderr is the journal: $JOURNAL_STREAM) a line is prefixed
 * with its syslog priority "<N>" instead of the time (docs/SERVICE.md). */
#ifndef PST_LOG_H
#define PST_LOG_H

typedef enum { PST_LOG_ERROR = 0, PST_LOG_WARN, PST_LOG_INFO, PST_LOG_DEBUG } pst_log_level;

/* Sets the process-wide level (the daemon is one process with one log). */
void pst_log_set_level(pst_log_level level);
pst_log_level pst_log_get_level(void);
/* Sets the program name each line carries ("posternd" until set); name must
 * outlive every later pst_log call (a string literal). */
void pst_log_set_program(const char *name);
/* Parses "error|warn|info|debug"; returns 0 or PST_E_INVAL. */
int pst_log_parse_level(const char *s, pst_log_level *out);
void pst_log(pst_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pst_log_error(...) pst_log(PST_LOG_ERROR, __VA_ARGS__)
#define pst_log_warn(...) pst_log(PST_LOG_WARN, __VA_ARGS__)
#define pst_log_info(...) pst_log(PST_LOG_INFO, __VA_ARGS__)
#define pst_log_debug(...) pst_log(PST_LOG_DEBUG, __VA_ARGS__)

#endif
