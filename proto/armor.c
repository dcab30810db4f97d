#include <sodium.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include "pst_armor.h"
#include "pst_error.h"

int pst_armor_encode(const char *label, const char *comment, const uint8_t *data, size_t len,
                     char *out, size_t cap) {
    if (label == NULL || strlen(label) > PST_ARMOR_LABEL_MAX || data == NULL || cap == 0 ||
        (comment != NULL && strchr(comment, '\n') != NULL))
        return PST_E_INVAL;
    size_t b64cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char b64[PST_ARMOR_TEXT_MAX];
    if (b64cap > sizeof b64)
        return PST_E_NOSPACE;
    sodium_bin2base64(b64, sizeof b64, data, len, sodium_base64_VARIANT_ORIGINAL);
    size_t off = 0;
    int n = snprintf(out, cap, "-----BEGIN POSTERN %s-----\n", label);
    if (n < 0 || (size_t)n >= cap)
        goto nospace;
    off = (size_t)n;
    if (comment != NULL) {
        n = snprintf(out + off, cap - off, "Comment: %s\n", comment);
        if (n < 0 || (size_t)n >= cap - off)
            goto nospace;
        off += (size_t)n;
    }
    n = snprintf(out + off, cap - off, "\n");
    if (n < 0 || (size_t)n >= cap - off)
        goto nospace;
    off += (size_t)n;
    size_t total = strlen(b64);
    for (size_t i = 0; i < total; i += 64) {
        size_t chunk = total - i < 64 ? total - i : 64;
        if (chunk + 2 > cap - off)
            goto nospace;
        memcpy(out + off, b64 + i, chunk);
        off += chunk;
        out[off++] = '\n';
    }
    n = snprintf(out + off, cap - off, "-----END POSTERN %s-----\n", label);
    if (n < 0 || (size_t)n >= cap - off)
        goto nospace;
    return PST_OK;
nospace:
    out[0] = '\0';
    return PST_E_NOSPACE;
}

/* Finds line starting at *pos; returns its length without the newline. */
static size_t next_line(const char *text, size_t len, size_t *pos, const char **line) {
    size_t start = *pos;
    size_t i = start;
    while (i < len && text[i] != '\n')
        i++;
    *line = text + start;
    size_t l = i - start;
    if (l > 0 && text[start + l - 1] == '\r')
        l--;
    *pos = i < len ? i + 1 : i;
    return l;
}

int pst_armor_decode(const char *label, const char *text, size_t text_len, uint8_t *out, size_t cap,
                     size_t *len) {
    *len = 0;
    if (label == NULL || text == NULL || strlen(label) > PST_ARMOR_LABEL_MAX)
        return PST_E_INVAL;
    if (text_len > PST_ARMOR_TEXT_MAX)
        return PST_E_TOOBIG;
    char begin[PST_ARMOR_LABEL_MAX + 40], end[PST_ARMOR_LABEL_MAX + 40];
    snprintf(begin, sizeof begin, "-----BEGIN POSTERN %s-----", label);
    snprintf(end, sizeof end, "-----END POSTERN %s-----", label);
    size_t pos = 0;
    const char *line;
    size_t l;
    /* skip blank lines before BEGIN */
    do {
        if (pos >= text_len)
            return PST_E_MALFORMED;
        l = next_line(text, text_len, &pos, &line);
    } while (l == 0);
    if (l != strlen(begin) || memcmp(line, begin, l) != 0)
        return PST_E_MALFORMED;
    /* headers until the blank line */
    for (;;) {
        if (pos >= text_len)
            return PST_E_MALFORMED;
        l = next_line(text, text_len, &pos, &line);
        if (l == 0)
            break;
        if (memchr(line, ':', l) == NULL)
            return PST_E_MALFORMED;
    }
    char b64[PST_ARMOR_TEXT_MAX];
    size_t b64len = 0;
    bool done = false;
    while (pos < text_len) {
        l = next_line(text, text_len, &pos, &line);
        if (l == strlen(end) && memcmp(line, end, l) == 0) {
            done = true;
            break;
        }
        if (l > 76 || b64len + l >= sizeof b64)
            return PST_E_MALFORMED;
        memcpy(b64 + b64len, line, l);
        b64len += l;
    }
    if (!done)
        return PST_E_MALFORMED;
    for (; pos < text_len; pos++)
        if (text[pos] != '\n' && text[pos] != '\r' && text[pos] != ' ' && text[pos] != '\t')
            return PST_E_MALFORMED;
    size_t n = 0;
    const char *b64end = NULL;
    if (sodium_base642bin(out, cap, b64, b64len, NULL, &n, &b64end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        b64end != b64 + b64len || n == 0) {
        sodium_memzero(out, cap);
        return n >= cap ? PST_E_NOSPACE : PST_E_MALFORMED;
    }
    *len = n;
    return PST_OK;
}
