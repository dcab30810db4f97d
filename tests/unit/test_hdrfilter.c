/* The recipient's Maildir filter (proto/pst_hdrfilter.h): line endings,
 * NUL bytes and the author's X-Postern-* fields, in every chunking. Each
 * case is fed whole, one byte at a time, in every split into two pieces,
 * and in random pieces, with small and large output buffers; the result
 * must be the expected bytes every time, and must also match a reference
 * written over the whole buffer at once. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "pst_hdrfilter.h"
#include "testutil.h"

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

/* Never NULL, so that the mem* calls below are defined for empty buffers. */
static buf buf_new(void) {
    buf b = {malloc(64), 0, 64};
    cr_assert_not_null(b.p);
    return b;
}

static void put(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p);
    }
    if (n > 0)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* Runs in[0..n) through a fresh filter in the given pieces (pieces[k] bytes
 * each, cycling; 0 ends the list), with an output buffer of outcap bytes. */
static buf run(const uint8_t *in, size_t n, const size_t *pieces, size_t outcap,
               pst_hdrfilter *out_state) {
    buf b = buf_new();
    pst_hdrfilter f;
    pst_hdrfilter_init(&f);
    uint8_t *out = malloc(outcap);
    cr_assert_not_null(out);
    size_t pos = 0, k = 0;
    while (pos < n) {
        size_t piece = pieces[k] == 0 ? n - pos : pieces[k];
        k = pieces[k] == 0 || pieces[k + 1] == 0 ? 0 : k + 1;
        if (piece > n - pos)
            piece = n - pos;
        while (piece > 0) {
            size_t used = 0, w = 0;
            cr_assert_eq(pst_hdrfilter_feed(&f, in + pos, piece, &used, out, outcap, &w), PST_OK);
            cr_assert_gt(used, 0, "feed must make progress");
            cr_assert_leq(used, piece);
            cr_assert_leq(w, outcap);
            put(&b, out, w);
            pos += used;
            piece -= used;
        }
    }
    size_t w = pst_hdrfilter_finish(&f, out, outcap);
    put(&b, out, w);
    free(out);
    if (out_state)
        *out_state = f;
    return b;
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

/* The rules of pst_hdrfilter.h, applied to a whole buffer in three passes. */
static buf reference(const uint8_t *in, size_t n) {
    buf norm = buf_new(), out = buf_new();
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
        if (header && end - i == 1 && norm.p[i] == '\n')
            header = false;
        else if (header && starts_ci(norm.p + i, end - i, PST_HDRFILTER_PREFIX))
            put(&out, PST_HDRFILTER_RENAMED, strlen(PST_HDRFILTER_RENAMED));
        put(&out, norm.p + i, end - i);
        i = end;
    }
    free(norm.p);
    return out;
}

/* What no reader of the stored file may find, whatever it takes for a line
 * end: a CR, a NUL, a header line starting with X-Postern-, a first line
 * that continues the node's field above. */
static void check_safe(const buf *o) {
    cr_assert_null(memchr(o->p, '\r', o->n), "a CR in the output");
    cr_assert_null(memchr(o->p, 0, o->n), "a NUL in the output");
    if (o->n > 0)
        cr_assert(o->p[0] != ' ' && o->p[0] != '\t', "the first line continues a field");
    size_t i = 0;
    while (i < o->n) {
        const uint8_t *nl = memchr(o->p + i, '\n', o->n - i);
        size_t end = nl ? (size_t)(nl - o->p) + 1 : o->n;
        if (end - i == 1)
            break; /* the empty line */
        cr_assert(!starts_ci(o->p + i, end - i, PST_HDRFILTER_PREFIX),
                  "an author's X-Postern- field survived at offset %zu", i);
        i = end;
    }
}

/* Every chunking of in gives want (and the reference agrees with want). */
static void expect(const char *in, size_t n, const char *want, size_t wn) {
    const uint8_t *p = (const uint8_t *)in;
    buf ref = reference(p, n);
    cr_assert_eq(ref.n, wn, "reference length %zu, want %zu", ref.n, wn);
    cr_assert_eq(memcmp(ref.p, want, wn), 0, "reference differs");
    free(ref.p);
    static const size_t whole[] = {0}, one[] = {1, 0}, odd[] = {3, 1, 7, 2, 0};
    const size_t *plans[] = {whole, one, odd};
    const size_t caps[] = {PST_HDRFILTER_OUT_MIN, 33, 4096};
    for (size_t pl = 0; pl < 3; pl++)
        for (size_t c = 0; c < 3; c++) {
            buf o = run(p, n, plans[pl], caps[c], NULL);
            cr_assert_eq(o.n, wn, "plan %zu cap %zu: length %zu, want %zu", pl, caps[c], o.n, wn);
            cr_assert_eq(memcmp(o.p, want, wn), 0, "plan %zu cap %zu: bytes differ", pl, caps[c]);
            check_safe(&o);
            free(o.p);
        }
    /* every split into two pieces: a CRLF, a prefix or a NUL cut anywhere */
    for (size_t cut = 1; cut < n; cut++) {
        size_t plan[] = {cut, n, 0};
        buf o = run(p, n, plan, 64, NULL);
        cr_assert_eq(o.n, wn, "cut %zu", cut);
        cr_assert_eq(memcmp(o.p, want, wn), 0, "cut %zu", cut);
        free(o.p);
    }
}

#define EXPECT(in, want) expect(in, sizeof in - 1, want, sizeof want - 1)

Test(hdrfilter, bare_cr_cannot_start_a_field) {
    /* the probe of issue 17: a bare CR ends the line for every reader */
    EXPECT("Subject: hi\rX-Postern-Sender: evil\r\n\r\nbody\r",
           "Subject: hi\nX-Original-X-Postern-Sender: evil\n\nbody\n");
    EXPECT("A: b\n\rX-Postern-Odd: after the empty line\n",
           "A: b\n\nX-Postern-Odd: after the empty line\n");
}

Test(hdrfilter, bare_lf_and_crlf) {
    EXPECT("From: a@example.org\nx-postern-sender: forged\n\nbody\n",
           "From: a@example.org\nX-Original-x-postern-sender: forged\n\nbody\n");
    EXPECT("From: a@example.org\r\nX-POSTERN-MESSAGE-ID: forged\r\n\r\nX-Postern-Sender: body\r\n",
           "From: a@example.org\nX-Original-X-POSTERN-MESSAGE-ID: forged\n\nX-Postern-Sender: "
           "body\n");
}

Test(hdrfilter, mixed_line_endings) {
    EXPECT("A: 1\r\nB: 2\nC: 3\rX-Postern-Sender: x\r\r\nbody\r\n\rend",
           "A: 1\nB: 2\nC: 3\nX-Original-X-Postern-Sender: x\n\nbody\n\nend");
    /* CR CR LF: a bare CR, then a CRLF: two line ends, the second empty */
    EXPECT("A: 1\r\r\nX-Postern-Sender: body\n", "A: 1\n\nX-Postern-Sender: body\n");
}

Test(hdrfilter, folded_fields) {
    EXPECT("Subject: one\r\n X-Postern-Sender: part of the subject\r\n"
           "X-Postern-Folded: a\r\n\tb\r\n\r\nbody",
           "Subject: one\n X-Postern-Sender: part of the subject\n"
           "X-Original-X-Postern-Folded: a\n\tb\n\nbody");
    /* the first line must not continue the node's own field */
    EXPECT(" \tX-Postern-Sender: evil\nA: b\n\n", "X-Original-X-Postern-Sender: evil\nA: b\n\n");
    EXPECT("  \r\nX-Postern-Sender: now in the body\n", "\nX-Postern-Sender: now in the body\n");
}

Test(hdrfilter, names_and_spacing) {
    EXPECT("X-Postern-Sender : space before the colon\nX-Postern-Sender\t: tab\n"
           "X-Poster: shorter stays\nX-Posternx: no hyphen stays\nX-Postern-\n",
           "X-Original-X-Postern-Sender : space before the colon\n"
           "X-Original-X-Postern-Sender\t: tab\nX-Poster: shorter stays\n"
           "X-Posternx: no hyphen stays\nX-Original-X-Postern-\n");
    EXPECT("Subject: X-Postern-Sender: not at a line start\n",
           "Subject: X-Postern-Sender: not at a line start\n");
    /* ends inside a would-be prefix: written as it is */
    EXPECT("A: b\nX-Poster", "A: b\nX-Poster");
    EXPECT("", "");
}

Test(hdrfilter, nul_bytes) {
    pst_hdrfilter st;
    /* a NUL inside a name: no reader that drops NULs can join the name */
    static const char in[] = "X-Post\0ern-Sender: a\nB: \0\n\nbody\0\r\n";
    EXPECT("X-Post\0ern-Sender: a\nB: \0\n\nbody\0\r\n",
           "X-Post\xef\xbf\xbd"
           "ern-Sender: a\nB: \xef\xbf\xbd\n\nbody\xef\xbf\xbd\n");
    size_t whole[] = {0};
    buf o = run((const uint8_t *)in, sizeof in - 1, whole, 64, &st);
    cr_assert_eq(st.nul_replaced, 3);
    cr_assert_eq(st.renamed, 0);
    cr_assert_eq(st.eol.cr_converted, 1);
    free(o.p);
    EXPECT("\0X-Postern-A: b\n", "\xef\xbf\xbdX-Postern-A: b\n");
}

Test(hdrfilter, header_that_never_ends) {
    /* 2 MB of header lines, each a field to rename, no empty line: constant
     * state, every one renamed, in any chunking */
    const char *line = "x-postern-sender: again\r";
    size_t ll = strlen(line), count = 2000000 / ll;
    uint8_t *in = malloc(count * ll);
    cr_assert_not_null(in);
    for (size_t i = 0; i < count; i++)
        memcpy(in + i * ll, line, ll);
    static const size_t plans[][3] = {{0}, {1, 0}, {4093, 17, 0}};
    for (size_t pl = 0; pl < 3; pl++) {
        pst_hdrfilter st;
        buf o = run(in, count * ll, plans[pl], PST_HDRFILTER_OUT_MIN, &st);
        cr_assert_eq(st.renamed, count, "plan %zu", pl);
        cr_assert_eq(o.n, count * (ll + strlen(PST_HDRFILTER_RENAMED)));
        check_safe(&o);
        free(o.p);
    }
    free(in);
}

Test(hdrfilter, random_messages_in_random_chunks) {
    /* messages made of the pieces that matter, in random order, fed in
     * random pieces: always the reference's result, always safe */
    static const char *atoms[] = {
        "X-Postern-", "x-POSTERN-sender", "\r",  "\n", "\r\n", " ", "\t", "", ":",
        "a",          "X-Post",           "\n\n"};
    uint32_t s = 12345;
    for (int round = 0; round < 3000; round++) {
        uint8_t in[256];
        /* atom 7: one NUL */
        size_t n = tu_atom_message(&s, atoms, sizeof atoms / sizeof atoms[0], 7, 200, 9, in);
        size_t plan[5];
        for (int k = 0; k < 4; k++)
            plan[k] = 1 + tu_lcg(&s) % 13;
        plan[4] = 0;
        buf ref = reference(in, n);
        buf o = run(in, n, plan, (round & 1) ? PST_HDRFILTER_OUT_MIN : 512, NULL);
        cr_assert_eq(o.n, ref.n, "round %d", round);
        cr_assert_eq(memcmp(o.p, ref.p, ref.n), 0, "round %d", round);
        check_safe(&o);
        free(o.p);
        free(ref.p);
    }
}

Test(hdrfilter, refuses_a_small_buffer) {
    pst_hdrfilter f;
    pst_hdrfilter_init(&f);
    uint8_t out[PST_HDRFILTER_OUT_MIN];
    size_t used = 9, w = 9;
    cr_assert_eq(pst_hdrfilter_feed(&f, (const uint8_t *)"a", 1, &used, out, sizeof out - 1, &w),
                 PST_E_NOSPACE);
    cr_assert_eq(used, 0);
    cr_assert_eq(w, 0);
    cr_assert_eq(pst_hdrfilter_feed(&f, NULL, 0, &used, out, sizeof out, &w), PST_OK);
}

Test(hdrfilter, eol_rule_alone) {
    /* the line-ending rule the sender's filter shares: in place, any cuts */
    static const char in[] = "a\r\nb\rc\nd\r\r\ne\n\rf\r";
    static const char want[] = "a\nb\nc\nd\n\ne\n\nf\n";
    for (size_t step = 1; step <= sizeof in; step++) {
        uint8_t buf[sizeof in];
        memcpy(buf, in, sizeof in - 1);
        pst_eol e;
        pst_eol_init(&e);
        size_t w = 0;
        for (size_t i = 0; i < sizeof in - 1; i += step) {
            size_t n = sizeof in - 1 - i < step ? sizeof in - 1 - i : step;
            w += pst_eol_normalise(&e, buf + i, n, buf + w);
        }
        cr_assert_eq(w, sizeof want - 1, "step %zu", step);
        cr_assert_eq(memcmp(buf, want, w), 0, "step %zu: [%.*s]", step, (int)w, (char *)buf);
        cr_assert_eq(e.cr_converted, 6, "step %zu", step);
    }
    pst_eol e;
    pst_eol_init(&e);
    cr_assert_eq(pst_eol_byte(&e, '\r'), '\n');
    cr_assert_eq(pst_eol_byte(&e, '\n'), -1);
    cr_assert_eq(pst_eol_byte(&e, '\n'), '\n');
    cr_assert_eq(pst_eol_byte(&e, 0), 0);
}

/* pst_hdrfilter_clean_run: what a caller may write itself, unfiltered. 0 in
 * the header and right after a CR (the next byte may be its LF); in the
 * body, the bytes before the first CR or NUL. Writing those bytes and
 * feeding the rest must give exactly what feeding everything gives. */
Test(hdrfilter, clean_run_is_what_the_filter_copies) {
    static const char msg[] = "Subject: x\r\nX-Postern-Y: z\r\n\r\nbody one\nbody\0two\r\nend\n";
    const uint8_t *in = (const uint8_t *)msg;
    size_t n = sizeof msg - 1;
    pst_hdrfilter f;
    pst_hdrfilter_init(&f);
    cr_assert_eq(pst_hdrfilter_clean_run(&f, in, n), 0, "the header is never clean");
    cr_assert_eq(pst_hdrfilter_clean_run(NULL, in, n), 0);

    /* reference: everything through feed */
    buf want = buf_new(), got = buf_new();
    uint8_t out[PST_HDRFILTER_OUT_MIN];
    for (size_t i = 0, used, w; i < n; i += used) {
        cr_assert_eq(pst_hdrfilter_feed(&f, in + i, n - i, &used, out, sizeof out, &w), PST_OK);
        put(&want, out, w);
    }
    put(&want, out, pst_hdrfilter_finish(&f, out, sizeof out));

    /* the same with every clean run taken by the caller, one byte fed at a time otherwise */
    pst_hdrfilter_init(&f);
    size_t runs = 0, clean = 0;
    for (size_t i = 0, used, w; i < n; i += used) {
        size_t k = pst_hdrfilter_clean_run(&f, in + i, n - i);
        if (k > 0) {
            for (size_t j = 0; j < k; j++)
                cr_assert(in[i + j] != '\r' && in[i + j] != 0, "a CR or NUL at %zu", i + j);
            cr_assert(i + k == n || in[i + k] == '\r' || in[i + k] == 0, "the run stops early");
            put(&got, in + i, k);
            used = k;
            runs++;
            clean += k;
            continue;
        }
        cr_assert_eq(pst_hdrfilter_feed(&f, in + i, 1, &used, out, sizeof out, &w), PST_OK);
        put(&got, out, w);
    }
    put(&got, out, pst_hdrfilter_finish(&f, out, sizeof out));
    cr_assert_eq(got.n, want.n);
    cr_assert_eq(memcmp(got.p, want.p, got.n), 0, "[%.*s]", (int)got.n, (char *)got.p);
    cr_assert_geq(runs, 3, "body runs taken: %zu", runs);
    cr_assert_geq(clean, 20, "clean bytes: %zu", clean);
    free(want.p);
    free(got.p);
}
