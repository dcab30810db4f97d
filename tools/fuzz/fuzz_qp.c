/* libFuzzer target: the quoted-printable encoder of `send --body`
 * (proto/pst_qp.h). Input: any bytes, encoded whole. The output must fit
 * pst_qp_encode_bound, end in a line break, have no line over
 * PST_QP_LINE_MAX characters, no line ending in white space, no line
 * starting with "From " or '.', no byte outside printable ASCII, space, tab
 * and LF, and decode (RFC 2045, strictly: only "=XX" in upper-case hex and
 * a final '=' as a soft break) to the input with each CRLF as LF. A body
 * pst_qp_choose lets go unencoded has no line over 998 octets, no NUL and
 * no bare CR. Breaks trap. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_qp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

static int hexdig(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static size_t decode(const char *q, size_t n, uint8_t *out) {
    size_t o = 0, i = 0;
    check(n == 0 || q[n - 1] == '\n');
    while (i < n) {
        const char *l = q + i;
        size_t len = (size_t)((const char *)memchr(l, '\n', n - i) - l);
        check(len <= PST_QP_LINE_MAX);
        check(len < 5 || memcmp(l, "From ", 5) != 0);
        check(len == 0 || l[0] != '.');
        bool soft = len > 0 && l[len - 1] == '=';
        size_t end = soft ? len - 1 : len;
        check(soft || end == 0 || (l[end - 1] != ' ' && l[end - 1] != '\t'));
        for (size_t k = 0; k < end; k++) {
            uint8_t c = (uint8_t)l[k];
            if (c == '=') {
                check(k + 2 < end);
                int hi = hexdig(l[k + 1]), lo = hexdig(l[k + 2]);
                check(hi >= 0 && lo >= 0);
                out[o++] = (uint8_t)(hi * 16 + lo);
                k += 2;
            } else {
                check((c >= 33 && c <= 126) || c == ' ' || c == '\t');
                out[o++] = c;
            }
        }
        if (!soft)
            out[o++] = '\n';
        i += len + 1;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t cap = pst_qp_encode_bound(size), len = 0;
    char *q = malloc(cap ? cap : 1);
    uint8_t *dec = malloc(5 * size + 2), *want = malloc(size + 1);
    check(q && dec && want);
    check(pst_qp_encode(data, size, q, cap, &len) == 0 && len <= cap);
    size_t wn = 0;
    for (size_t i = 0; i < size; i++)
        if (!(data[i] == '\r' && i + 1 < size && data[i + 1] == '\n'))
            want[wn++] = data[i];
    size_t dn = decode(q, len, dec);
    check(dn == wn && memcmp(dec, want, wn) == 0);
    if (pst_qp_choose(data, size) != PST_CTE_QP) {
        size_t line = 0;
        for (size_t i = 0; i < wn; i++) {
            check(want[i] != 0 && want[i] != '\r');
            line = want[i] == '\n' ? 0 : line + 1;
            check(line <= PST_QP_RAW_LINE_MAX);
        }
    }
    /* one byte short of what it wrote must fail cleanly */
    if (len > 0) {
        size_t l2 = 1;
        check(pst_qp_encode(data, size, q, len - 1, &l2) == PST_E_NOSPACE && l2 == 0);
    }
    free(q);
    free(dec);
    free(want);
    return 0;
}
