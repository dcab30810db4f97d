/* Log lines: timestamped on a terminal or file, prefixed with the syslog
 * priority when stderr is the journal (a systemd service), so journalctl
 * -p can filter them. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pst_log.h"

/* Runs pst_log with stderr on a temporary file; returns what it wrote. */
static void capture(bool journal, pst_log_level level, const char *msg, char *out, size_t cap) {
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    int saved = dup(STDERR_FILENO);
    fflush(stderr);
    cr_assert_geq(dup2(fileno(f), STDERR_FILENO), 0);
    struct stat st;
    cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
    char js[64];
    if (journal) {
        snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
    } else {
        /* a parent's journal stream: set, but not this stderr */
        snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + 1);
    }
    setenv("JOURNAL_STREAM", js, 1);
    pst_log(level, "%s", msg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    unsetenv("JOURNAL_STREAM");
    rewind(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

Test(log, journal_gets_priority_prefix) {
    char out[512];
    pst_log_set_level(PST_LOG_DEBUG);
    capture(true, PST_LOG_ERROR, "disk full", out, sizeof out);
    cr_assert_str_eq(out, "<3>error: disk full\n");
    capture(true, PST_LOG_WARN, "no seed answers", out, sizeof out);
    cr_assert_str_eq(out, "<4>warn: no seed answers\n");
    capture(true, PST_LOG_INFO, "up", out, sizeof out);
    cr_assert_str_eq(out, "<6>info: up\n");
    capture(true, PST_LOG_DEBUG, "detail", out, sizeof out);
    cr_assert_str_eq(out, "<7>debug: detail\n");
}

Test(log, elsewhere_keeps_time_and_name) {
    char out[512];
    pst_log_set_level(PST_LOG_INFO);
    capture(false, PST_LOG_WARN, "no seed answers", out, sizeof out);
    /* 2026-01-02T03:04:05.678Z posternd warn: ... */
    cr_assert_eq(strlen(out), 24 + strlen(" posternd warn: no seed answers\n"), "%s", out);
    cr_assert_eq(out[4], '-');
    cr_assert_eq(out[23], 'Z');
    cr_assert_str_eq(out + 24, " posternd warn: no seed answers\n");
    capture(false, PST_LOG_DEBUG, "hidden", out, sizeof out);
    cr_assert_str_eq(out, "");
}

/* A one-shot node runs inside `postern`: its lines must not name posternd,
 * a program the user never started. */
Test(log, program_label_is_settable) {
    char out[512];
    pst_log_set_level(PST_LOG_INFO);
    pst_log_set_program("postern");
    capture(false, PST_LOG_WARN, "no seed answers", out, sizeof out);
    pst_log_set_program("posternd");
    cr_assert_str_eq(out + 24, " postern warn: no seed answers\n");
    cr_assert_null(strstr(out, "posternd"), "%s", out);
}
