#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pst_error.h"
#include "pst_log.h"

/* The log level is the one piece of process-wide state: every module logs
 * through it and it is set once from the configuration. */
static pst_log_level current_level = PST_LOG_INFO;
/* the program a line comes from: a one-shot node runs inside `postern`, and
 * a line labelled "posternd" would name a program the user never started */
static const char *program = "posternd";

void pst_log_set_level(pst_log_level level) { current_level = level; }
void pst_log_set_program(const char *name) { program = name; }
pst_log_level pst_log_get_level(void) { return current_level; }

int pst_log_parse_level(const char *s, pst_log_level *out) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (pst_log_level)i;
            return PST_OK;
        }
    }
    return PST_E_INVAL;
}

/* True when stderr is the journal (a systemd service): systemd sets
 * JOURNAL_STREAM to "DEV:INODE" of the stream it connected, which stays in
 * the environment of children whose stderr goes elsewhere, so both must
 * match (sd_journal_stream_fd(3), systemd.exec(5)). Checked per line: a
 * log line is rare and the answer may change when stderr is redirected. */
static bool stderr_is_journal(void) {
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void pst_log(pst_log_level level, const char *fmt, ...) {
    static const char *const tags[] = {"error", "warn", "info", "debug"};
    /* syslog priorities: err, warning, info, debug */
    static const int prio[] = {3, 4, 6, 7};
    if (level > current_level)
        return;
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (stderr_is_journal()) {
        /* the journal stamps and names the line itself; "<N>" sets its
         * priority, so journalctl -p warning shows errors and warnings */
        fprintf(stderr, "<%d>%s: %s\n", prio[level], tags[level], line);
        return;
    }
    fprintf(stderr, "%s.%03ldZ %s %s: %s\n", stamp, ts.tv_nsec / 1000000, program, tags[level],
            line);
}
