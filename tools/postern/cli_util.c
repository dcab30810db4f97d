#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "pst_home.h"
#include "pst_identity.h"

void pst_cli_verror(const char *fmt, va_list ap) {
    fputs("postern: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void pst_cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pst_cli_verror(fmt, ap);
    va_end(ap);
}

bool pst_cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = (uint64_t)v;
    return true;
}

void pst_cli_json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

void pst_cli_duration(double s, char out[PST_CLI_DURATION_BUFSIZE]) {
    if (s < 120)
        snprintf(out, PST_CLI_DURATION_BUFSIZE, "%.0f s", s);
    else if (s < 7200)
        snprintf(out, PST_CLI_DURATION_BUFSIZE, "%.0f min", s / 60);
    else if (s < 172800)
        snprintf(out, PST_CLI_DURATION_BUFSIZE, "%.1f h", s / 3600);
    else
        snprintf(out, PST_CLI_DURATION_BUFSIZE, "%.0f d", s / 86400);
}

bool pst_cli_progress_enabled(void) {
    const char *force = getenv("POSTERN_PROGRESS");
    if (force != NULL)
        return strcmp(force, "1") == 0;
    return isatty(STDERR_FILENO) == 1;
}

char *pst_cli_read_passphrase(const char *path, bool *empty) {
    char err[512] = "";
    size_t len = 0;
    char *pass = sodium_malloc(PST_PASSPHRASE_MAX + 1);
    *empty = false;
    if (pass == NULL || pst_secret_file_read(path, (uint8_t *)pass, PST_PASSPHRASE_MAX, &len, err,
                                             sizeof err) != PST_OK) {
        pst_cli_error("passphrase file: %s", pass == NULL ? "out of memory" : err);
        sodium_free(pass);
        return NULL;
    }
    while (len > 0 && (pass[len - 1] == '\n' || pass[len - 1] == '\r'))
        len--;
    pass[len] = '\0';
    if (len == 0) {
        pst_cli_error("the passphrase file is empty");
        *empty = true;
        sodium_free(pass);
        return NULL;
    }
    return pass;
}
