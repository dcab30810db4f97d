/* The body transfer encoding of `send --body` (proto/pst_qp.h): the choice
 * between 7bit, 8bit and quoted-printable, and the encoder, checked by a
 * strict decoder written here from RFC 2045 (section 6.7) that also
 * rejects every encoded line a relay or reader could change. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "pst_qp.h"

static int hexdig(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes q[0..n) into out (room for n bytes), checking the rules of the
 * encoder's contract; returns the decoded length. */
static size_t strict_decode(const char *q, size_t n, uint8_t *out) {
    size_t o = 0, i = 0;
    cr_assert(n == 0 || q[n - 1] == '\n', "the output does not end in a line break");
    while (i < n) {
        const char *nl = memchr(q + i, '\n', n - i);
        size_t len = (size_t)(nl - (q + i));
        const char *l = q + i;
        cr_assert_leq(len, PST_QP_LINE_MAX, "an encoded line of %zu characters", len);
        cr_assert(len < 5 || memcmp(l, "From ", 5) != 0, "a line starts with From");
        cr_assert(len == 0 || l[0] != '.', "a line starts with a dot");
        /* an escape ends in a hex digit: a final '=' is a soft break */
        bool soft = len > 0 && l[len - 1] == '=';
        size_t end = soft ? len - 1 : len;
        cr_assert(soft || end == 0 || (l[end - 1] != ' ' && l[end - 1] != '\t'),
                  "a line ends in white space");
        for (size_t k = 0; k < end; k++) {
            if (l[k] == '=') {
                cr_assert(k + 2 < end, "a cut escape");
                int hi = hexdig(l[k + 1]), lo = hexdig(l[k + 2]);
                cr_assert(hi >= 0 && lo >= 0, "a bad escape");
                out[o++] = (uint8_t)(hi * 16 + lo);
                k += 2;
            } else {
                uint8_t c = (uint8_t)l[k];
                cr_assert((c >= 33 && c <= 126) || c == ' ' || c == '\t', "a literal byte 0x%02x",
                          c);
                out[o++] = c;
            }
        }
        if (!soft)
            out[o++] = '\n';
        i += len + 1;
    }
    return o;
}

static char *encode(const void *in, size_t n, size_t *len) {
    size_t cap = pst_qp_encode_bound(n);
    cr_assert_gt(cap, 0);
    char *out = malloc(cap);
    cr_assert_not_null(out);
    cr_assert_eq(pst_qp_encode(in, n, out, cap, len), 0);
    cr_assert_leq(*len, cap);
    return out;
}

/* in with each CRLF as LF: what decoding the encoding gives back. */
static size_t canonical(const uint8_t *in, size_t n, uint8_t *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
            continue;
        out[o++] = in[i];
    }
    return o;
}

static void roundtrip(const uint8_t *in, size_t n) {
    size_t len;
    char *q = encode(in, n, &len);
    uint8_t *dec = malloc(len + 1), *want = malloc(n + 1);
    cr_assert(dec && want);
    size_t dn = strict_decode(q, len, dec), wn = canonical(in, n, want);
    cr_assert_eq(dn, wn, "decoded %zu bytes, want %zu", dn, wn);
    cr_assert(memcmp(dec, want, wn) == 0, "the round trip changed the bytes");
    free(q);
    free(dec);
    free(want);
}

static void expect(const char *in, const char *want) {
    size_t len;
    char *q = encode(in, strlen(in), &len);
    cr_assert_eq(len, strlen(want), "%s: got %.*s", in, (int)len, q);
    cr_assert(memcmp(q, want, len) == 0, "%s: got %.*s, want %s", in, (int)len, q, want);
    free(q);
    roundtrip((const uint8_t *)in, strlen(in));
}

Test(qp, exact_forms) {
    expect("", "");
    expect("hello\n", "hello\n");
    expect("a=b\n", "a=3Db\n");
    expect("x", "x=\n");
    expect("a \n", "a=20\n");
    expect("a\t\n", "a=09\n");
    expect("a b\n", "a b\n");
    expect("trailing ", "trailing=20=\n");
    expect("From me\nFrom\nx From y\n", "=46rom me\nFrom\nx From y\n");
    expect(".\n..x\na.\n", "=2E\n=2E.x\na.\n");
    expect("a\r\nb", "a\nb=\n");
    expect("a \r\nb\n", "a=20\nb\n");
    expect("a\rb\n", "a=0Db\n");
    expect("a\r", "a=0D=\n");
    expect("caf\xc3\xa9\n", "caf=C3=A9\n");
    expect("\n\n", "\n\n");
}

Test(qp, soft_breaks_at_76) {
    /* in: in_a times 'a', then in_tail; want: want_a times 'a', then
     * want_tail */
    static const struct {
        size_t in_a;
        const char *in_tail;
        size_t want_a;
        const char *want_tail;
    } cases[] = {
        {80, "\n", 75, "=\naaaaa\n"},
        /* an escape never straddles a soft break */
        {74, "==\n", 74, "=\n=3D=3D\n"},
        /* a space before a soft break stays literal; "From " or a dot that a
         * soft break would start a line with is encoded */
        {74, " From x\n", 74, " =\n=46rom x\n"},
        {75, ".b\n", 75, "=\n=2Eb\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[200], want[220];
        memset(in, 'a', cases[i].in_a);
        strcpy(in + cases[i].in_a, cases[i].in_tail);
        memset(want, 'a', cases[i].want_a);
        strcpy(want + cases[i].want_a, cases[i].want_tail);
        expect(in, want);
    }
}

Test(qp, long_line) {
    static uint8_t in[5001];
    for (size_t i = 0; i < 5000; i++)
        in[i] = (uint8_t)('a' + i % 26);
    in[5000] = '\n';
    size_t len;
    char *q = encode(in, sizeof in, &len);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += q[i] == '\n';
    cr_assert_eq(lines, (5000 + 74) / 75, "%zu lines", lines);
    free(q);
    roundtrip(in, sizeof in);
}

Test(qp, every_byte) {
    uint8_t in[256 * 3];
    for (int b = 0; b < 256; b++)
        in[b] = (uint8_t)b;
    roundtrip(in, 256);
    /* each byte alone, at the end of a line, at the end of the input and
     * between two letters */
    for (int b = 0; b < 256; b++) {
        uint8_t one[4] = {(uint8_t)b, '\n'}, mid[3] = {'x', (uint8_t)b, 'y'};
        roundtrip(one, 1);
        roundtrip(one, 2);
        roundtrip(mid, 3);
        size_t len;
        char *q = encode(one, 2, &len);
        bool literal = (b >= 33 && b <= 126 && b != '=' && b != '.') || b == '\n';
        cr_assert_eq(len,
                     b == '\r'   ? 1
                     : b == '\n' ? 2
                     : literal   ? 2
                                 : 4,
                     "byte 0x%02x: %.*s", b, (int)len, q);
        free(q);
    }
    for (int b = 0; b < 256; b++)
        in[3 * b] = (uint8_t)b, in[3 * b + 1] = ' ', in[3 * b + 2] = (uint8_t)(255 - b);
    roundtrip(in, sizeof in);
}

Test(qp, random_roundtrip) {
    static const uint8_t alphabet[] = "ab =.F\r\n\t\x00\xc3\xa9\xff"
                                      "From ";
    uint8_t in[600];
    srand(12);
    for (int round = 0; round < 3000; round++) {
        size_t n = (size_t)rand() % sizeof in;
        for (size_t i = 0; i < n; i++)
            in[i] =
                (rand() & 3) ? alphabet[(size_t)rand() % (sizeof alphabet - 1)] : (uint8_t)rand();
        roundtrip(in, n);
    }
}

Test(qp, no_space) {
    char out[16];
    size_t len = 7;
    memset(out, 'z', sizeof out);
    cr_assert_eq(pst_qp_encode((const uint8_t *)"====== long", 11, out, sizeof out, &len),
                 PST_E_NOSPACE);
    cr_assert_eq(len, 0);
    for (size_t i = 0; i < sizeof out; i++)
        cr_assert_eq(out[i], 0);
    cr_assert_eq(pst_qp_encode(NULL, 1, out, sizeof out, &len), PST_E_INVAL);
    cr_assert_eq(pst_qp_encode_bound(SIZE_MAX), 0);
    /* the bound holds for the worst case: every byte escaped */
    uint8_t worst[300];
    memset(worst, 0xff, sizeof worst);
    size_t cap = pst_qp_encode_bound(sizeof worst);
    char *big = malloc(cap);
    cr_assert_eq(pst_qp_encode(worst, sizeof worst, big, cap, &len), 0);
    free(big);
}

static pst_cte choose(const char *s, size_t n) { return pst_qp_choose((const uint8_t *)s, n); }

Test(qp, choose) {
    cr_assert_eq(choose("", 0), PST_CTE_7BIT);
    cr_assert_eq(choose("hi\nthere\n", 9), PST_CTE_7BIT);
    cr_assert_eq(choose("hi\r\nthere\r\n", 11), PST_CTE_7BIT);
    cr_assert_eq(choose("caf\xc3\xa9\n", 6), PST_CTE_8BIT);
    cr_assert_eq(choose("a\rb", 3), PST_CTE_QP);
    cr_assert_eq(choose("a\r", 2), PST_CTE_QP);
    cr_assert_eq(choose("a\0b", 3), PST_CTE_QP);
    cr_assert_eq(choose("caf\xe9\n", 5), PST_CTE_QP);      /* Latin-1, not UTF-8 */
    cr_assert_eq(choose("\xed\xa0\x80\n", 4), PST_CTE_QP); /* a surrogate */
    static char line[1200];
    memset(line, 'a', sizeof line);
    line[998] = '\n';
    cr_assert_eq(choose(line, 999), PST_CTE_7BIT); /* 998 octets and LF */
    line[998] = 'a';
    line[999] = '\r';
    line[1000] = '\n';
    cr_assert_eq(choose(line, 1001), PST_CTE_QP); /* 999 octets */
    cr_assert_eq(choose(line, 999), PST_CTE_QP);
    /* 998 octets of UTF-8 (two-byte characters) fit, 1000 do not */
    for (int i = 0; i < 1000; i += 2)
        line[i] = '\xc3', line[i + 1] = '\xa9';
    cr_assert_eq(choose(line, 998), PST_CTE_8BIT);
    cr_assert_eq(choose(line, 1000), PST_CTE_QP);
    cr_assert_eq(pst_qp_choose(NULL, 0), PST_CTE_7BIT);
}
