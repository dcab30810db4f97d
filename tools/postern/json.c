/* JSON writer for `--json` (see json.h). Uses only the value tree's public
 * accessors. */
#include "json.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

static const char hex[] = "0123456789abcdef";

static bool json_string(FILE *f, const char *s, size_t n) {
    bool ok = fputc('"', f) != EOF;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            ok = fputc('\\', f) != EOF && fputc(c, f) != EOF;
        } else if (c == '\n') {
            ok = fputs("\\n", f) != EOF;
        } else if (c == '\t') {
            ok = fputs("\\t", f) != EOF;
        } else if (c == '\r') {
            ok = fputs("\\r", f) != EOF;
        } else if (c < 0x20 || c == 0x7f) {
            ok = fprintf(f, "\\u00%c%c", hex[c >> 4], hex[c & 15]) > 0;
        } else {
            ok = fputc(c, f) != EOF; /* UTF-8 was validated when built */
        }
    }
    return ok && fputc('"', f) != EOF;
}

static bool json_value(FILE *f, const pst_value *v) {
    bool ok = true;
    uint64_t u = 0;
    bool b = false;
    size_t n = 0;
    switch (pst_value_type(v)) {
    case PST_VALUE_UINT:
        return pst_value_as_uint(v, &u) == PST_OK && fprintf(f, "%" PRIu64, u) > 0;
    case PST_VALUE_BOOL:
        return pst_value_as_bool(v, &b) == PST_OK && fputs(b ? "true" : "false", f) != EOF;
    case PST_VALUE_STR: {
        const char *s = pst_value_as_str(v, &n);
        return json_string(f, s, n);
    }
    case PST_VALUE_BIN: {
        const uint8_t *p = pst_value_as_bin(v, &n);
        ok = fputc('"', f) != EOF;
        for (size_t i = 0; ok && i < n; i++)
            ok = fputc(hex[p[i] >> 4], f) != EOF && fputc(hex[p[i] & 15], f) != EOF;
        return ok && fputc('"', f) != EOF;
    }
    case PST_VALUE_ARRAY:
    case PST_VALUE_MAP: {
        bool map = pst_value_type(v) == PST_VALUE_MAP;
        ok = fputc(map ? '{' : '[', f) != EOF;
        for (const pst_value *c = pst_value_first(v); ok && c != NULL; c = pst_value_next(c)) {
            if (c != pst_value_first(v))
                ok = fputc(',', f) != EOF;
            if (ok && map) {
                const char *k = pst_value_key(c);
                ok = json_string(f, k, strlen(k)) && fputc(':', f) != EOF;
            }
            if (ok)
                ok = json_value(f, c);
        }
        return ok && fputc(map ? '}' : ']', f) != EOF;
    }
    default:
        return false;
    }
}

int pst_value_write_json(const pst_value *v, FILE *f) {
    if (v == NULL || f == NULL)
        return PST_E_INVAL;
    return json_value(f, v) ? PST_OK : PST_E_IO;
}
