/* libFuzzer target: the recipient's Maildir filter (proto/pst_hdrfilter.h).
 * Input: one byte of chunking (low 4 bits: piece size 1..16, or the whole
 * input when 0; high 4 bits: output room PST_HDRFILTER_OUT_MIN + 0..15 *
 * 16), then the message. The message is filtered whole into a large buffer
 * and in the chosen pieces into the chosen room; both must give the same
 * bytes, equal to a reference that applies the documented rules to the
 * whole buffer in passes, and the result must hold no CR, no NUL, no first
 * line that starts with white space and no header line (up to the first
 * empty line) that starts with "X-Postern-" in any case. The line-ending
 * rule alone (pst_eol_normalise, shared with the sender's filter), in the
 * same pieces and in place, must give the reference's line endings.
 * Breaks trap. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_hdrfilter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        check(b->p != NULL);
    }
    if (n > 0)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static bool starts_ci(const uint8_t *p, size_t n, const char *s) {
    size_t l = strlen(s);
    if (n < l)
        return false;
    for (size_t i = 0; i < l; i++) {
        uint8_t c = p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i];
        uint8_t d = s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i];
        if (c != d)
            return false;
    }
    return true;
}

static buf filter(const uint8_t *in, size_t n, size_t piece, size_t room) {
    buf b = {0};
    uint8_t *out = malloc(room);
    check(out != NULL);
    pst_hdrfilter f;
    pst_hdrfilter_init(&f);
    size_t pos = 0;
    while (pos < n) {
        size_t k = piece == 0 || piece > n - pos ? n - pos : piece;
        while (k > 0) {
            size_t used = 0, w = 0;
            /* odd pieces: the caller writes the clean runs itself, as the
             * Maildir writer does; the output must not change */
            size_t run = piece % 2 == 1 ? pst_hdrfilter_clean_run(&f, in + pos, k) : 0;
            if (run > 0) {
                check(run <= k);
                put(&b, in + pos, run);
                pos += run;
                k -= run;
                continue;
            }
            check(pst_hdrfilter_feed(&f, in + pos, k, &used, out, room, &w) == PST_OK);
            check(used > 0 && used <= k && w <= room);
            put(&b, out, w);
            pos += used;
            k -= used;
        }
    }
    put(&b, out, pst_hdrfilter_finish(&f, out, room));
    free(out);
    return b;
}

static buf reference(const uint8_t *in, size_t n) {
    buf norm = {0}, out = {0};
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\r') {
            put(&norm, "\n", 1);
            if (i + 1 < n && in[i + 1] == '\n')
                i++;
        } else if (in[i] == 0) {
            put(&norm, "\xef\xbf\xbd", 3);
        } else {
            put(&norm, in + i, 1);
        }
    }
    size_t i = 0;
    while (i < norm.n && (norm.p[i] == ' ' || norm.p[i] == '\t'))
        i++;
    bool header = true;
    while (i < norm.n) {
        const uint8_t *nl = memchr(norm.p + i, '\n', norm.n - i);
        size_t end = nl ? (size_t)(nl - norm.p) + 1 : norm.n;
        if (header && end - i == 1)
            header = false;
        else if (header && starts_ci(norm.p + i, end - i, PST_HDRFILTER_PREFIX))
            put(&out, PST_HDRFILTER_RENAMED, strlen(PST_HDRFILTER_RENAMED));
        put(&out, norm.p + i, end - i);
        i = end;
    }
    free(norm.p);
    return out;
}

static void check_eol(const uint8_t *in, size_t n, size_t piece) {
    uint8_t *b = malloc(n + 1);
    check(b != NULL);
    if (n > 0)
        memcpy(b, in, n);
    pst_eol e;
    pst_eol_init(&e);
    size_t w = 0;
    for (size_t pos = 0; pos < n;) {
        size_t k = piece == 0 || piece > n - pos ? n - pos : piece;
        size_t got = pst_eol_normalise(&e, b + pos, k, b + w);
        check(got <= k);
        w += got;
        pos += k;
    }
    size_t r = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = in[i];
        if (c == '\r' && i + 1 < n && in[i + 1] == '\n')
            i++;
        check(r < w && b[r++] == (c == '\r' ? '\n' : c));
    }
    check(r == w);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    size_t piece = data[0] & 15u, room = PST_HDRFILTER_OUT_MIN + (size_t)(data[0] >> 4) * 16u;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    buf whole = filter(in, n, 0, 1u << 16);
    buf pieces = filter(in, n, piece, room);
    buf ref = reference(in, n);
    check_eol(in, n, piece);
    check(whole.n == pieces.n && (whole.n == 0 || memcmp(whole.p, pieces.p, whole.n) == 0));
    check(whole.n == ref.n && (ref.n == 0 || memcmp(whole.p, ref.p, ref.n) == 0));
    check(whole.n == 0 ||
          (memchr(whole.p, '\r', whole.n) == NULL && memchr(whole.p, 0, whole.n) == NULL &&
           whole.p[0] != ' ' && whole.p[0] != '\t'));
    for (size_t i = 0; i < whole.n;) {
        const uint8_t *nl = memchr(whole.p + i, '\n', whole.n - i);
        size_t end = nl ? (size_t)(nl - whole.p) + 1 : whole.n;
        if (end - i == 1)
            break;
        check(!starts_ci(whole.p + i, end - i, PST_HDRFILTER_PREFIX));
        i = end;
    }
    free(whole.p);
    free(pieces.p);
    free(ref.p);
    return 0;
}
