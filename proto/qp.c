/* Quoted-printable (RFC 2045, section 6.7) and the choice of a body's
 * transfer encoding; see pst_qp.h. */
#include <stdbool.h>
#include <string.h>

#include "pst_qp.h"
#include "pst_utf8.h"

pst_cte pst_qp_choose(const uint8_t *body, size_t n) {
    if (!body)
        return PST_CTE_7BIT;
    bool high = false;
    size_t line = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = body[i];
        if (c == '\n' || (c == '\r' && i + 1 < n && body[i + 1] == '\n')) {
            i += c == '\r' ? 2 : 1;
            line = 0;
            continue;
        }
        if (c == '\r' || c == 0)
            return PST_CTE_QP;
        size_t k = pst_utf8_seq(body + i, n - i);
        if (k == 0)
            return PST_CTE_QP;
        high |= k > 1;
        line += k;
        if (line > PST_QP_RAW_LINE_MAX)
            return PST_CTE_QP;
        i += k;
    }
    return high ? PST_CTE_8BIT : PST_CTE_7BIT;
}

size_t pst_qp_encode_bound(size_t n) {
    /* at most "=XX" per byte, plus a soft break ("=\n") before each and
     * one at the end */
    if (n > (SIZE_MAX - 2) / 5)
        return 0;
    return 5 * n + 2;
}

typedef struct {
    char *p;
    size_t cap, len, col;
    bool overflow;
} qp_out;

static void put(qp_out *o, const char *s, size_t n) {
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* One encoded unit (a literal byte or "=XX"), after a soft break when it
 * would not leave room for one on this line. */
static void unit(qp_out *o, const char *s, size_t n) {
    if (o->col + n > PST_QP_LINE_MAX - 1) {
        put(o, "=\n", 2);
        o->col = 0;
    }
    put(o, s, n);
    o->col += n;
}

int pst_qp_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (!out || !len || (!in && n)) {
        if (out)
            memset(out, 0, cap);
        return PST_E_INVAL;
    }
    static const char hex[] = "0123456789ABCDEF";
    qp_out o = {out, cap, 0, 0, false};
    bool line_start = true;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = in[i];
        if (c == '\n' || (c == '\r' && i + 1 < n && in[i + 1] == '\n')) {
            i += c == '\r';
            put(&o, "\n", 1);
            o.col = 0;
            line_start = true;
            continue;
        }
        bool ends_line = i + 1 == n || in[i + 1] == '\n' ||
                         (in[i + 1] == '\r' && i + 2 < n && in[i + 2] == '\n');
        bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !ends_line);
        /* at the start of an encoded line, whether the message's own or one
         * a soft break begins */
        bool starts = line_start || o.col + 1 > PST_QP_LINE_MAX - 1;
        if (starts && (c == '.' || (c == 'F' && n - i >= 5 && memcmp(in + i, "From ", 5) == 0)))
            literal = false;
        if (literal) {
            char ch = (char)c;
            unit(&o, &ch, 1);
        } else {
            char q[3] = {'=', hex[c >> 4], hex[c & 15]};
            unit(&o, q, 3);
        }
        line_start = false;
    }
    if (n > 0 && in[n - 1] != '\n')
        put(&o, "=\n", 2);
    if (o.overflow) {
        memset(out, 0, cap);
        return PST_E_NOSPACE;
    }
    *len = o.len;
    return 0;
}
