#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pst_error.h"
#include "pst_log.h"

/* The log level is the one piece of process-wide state: every module logs
 * through it and it is set once from the configuration. */
static pst_log_level current_level = PST_LOG_INFO;

void pst_log_set_level(pst_log_level level) { current_level = level; }
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

void pst_log(pst_log_level level, const char *fmt, ...) {
    static const char *const tags[] = {"error", "warn", "info", "debug"};
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
    fprintf(stderr, "%s.%03ldZ posternd %s: %s\n", stamp, ts.tv_nsec / 1000000, tags[level], line);
}
