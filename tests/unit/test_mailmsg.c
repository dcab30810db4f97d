/* node/mail/mailmsg.c: the header filter applied before sending, dates, ids, the
 * display form of subjects and the simple message of `send --subject`. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_mailmsg.h"
#include "testutil.h"

#define FROM "alice@example.org"
#define DATE "Tue, 14 Nov 2023 22:13:20 +0000"
#define MSGID "<0011@example.org>"
#define ADDED_LF "From: " FROM "\nDate: " DATE "\nMessage-ID: " MSGID "\n"

typedef struct {
    uint8_t *p;
    size_t len, cap;
    size_t limit; /* fail with PST_E_TOOBIG past this many bytes (0 = none) */
} buf;

static int collect(void *user, const uint8_t *p, size_t n) {
    buf *b = user;
    if (b->limit && b->len + n > b->limit)
        return PST_E_TOOBIG;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        cr_assert_not_null(b->p);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static pst_mailmsg_filter *new_filter(void) {
    pst_mailmsg_filter *f = malloc(sizeof *f);
    cr_assert_not_null(f);
    cr_assert_eq(pst_mailmsg_filter_init(f, FROM, DATE, MSGID), PST_OK);
    return f;
}

/* Runs the filter over in, fed in pieces of `step` bytes. */
static int run(pst_mailmsg_filter *f, const char *in, size_t len, size_t step, buf *out) {
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        int rc = pst_mailmsg_filter_feed(f, (const uint8_t *)in + i, n, collect, out);
        if (rc)
            return rc;
    }
    return pst_mailmsg_filter_finish(f, collect, out);
}

/* The filter after in went through it whole, step bytes a feed (output
 * dropped): for its counters and fields. The caller frees it. */
static pst_mailmsg_filter *filter_all(const char *in, size_t step) {
    pst_mailmsg_filter *f = new_filter();
    buf out = {0};
    cr_assert_eq(run(f, in, strlen(in), step, &out), PST_OK);
    free(out.p);
    return f;
}

/* filter_all(in, step) must have removed bcc Bcc fields and counted fields
 * other fields. */
static void expect_counts(const char *in, size_t step, unsigned bcc, unsigned fields) {
    pst_mailmsg_filter *f = filter_all(in, step);
    cr_assert_eq(f->bcc_removed, bcc);
    cr_assert_eq(f->fields, fields);
    free(f);
}

/* The output must not depend on how the input is cut. */
static void expect(const char *in, const char *want) {
    size_t len = strlen(in);
    for (size_t step = 1; step <= len + 1; step++) {
        pst_mailmsg_filter *f = new_filter();
        buf out = {0};
        cr_assert_eq(run(f, in, len, step, &out), PST_OK, "step %zu", step);
        cr_assert_eq(out.len, strlen(want), "step %zu: got [%.*s]", step, (int)out.len,
                     (const char *)out.p);
        cr_assert(out.len == 0 || memcmp(out.p, want, out.len) == 0, "step %zu: got [%.*s]", step,
                  (int)out.len, (const char *)out.p);
        free(out.p);
        free(f);
    }
}

Test(mailmsg, adds_missing_fields_at_end_of_headers) {
    expect("Subject: hi\nTo: bob@example.org\n\nbody\n",
           "Subject: hi\nTo: bob@example.org\n" ADDED_LF "\nbody\n");
}

Test(mailmsg, keeps_existing_fields) {
    const char *in = "from: Carol <carol@example.org>\nDATE: Mon, 1 Jan 2024 00:00:00 +0000\n"
                     "Message-Id: <x@y>\nSubject: s\n\nbody";
    expect(in, in);
    pst_mailmsg_filter *f = filter_all(in, 7);
    cr_assert_eq(f->seen, PST_MAILMSG_SEEN_FROM | PST_MAILMSG_SEEN_DATE | PST_MAILMSG_SEEN_MSGID |
                              PST_MAILMSG_SEEN_SUBJECT);
    cr_assert_str_eq(f->subject, "s");
    cr_assert_eq(f->fields, 4);
    free(f);
}

Test(mailmsg, adds_only_what_is_missing) {
    expect("From: me@example.org\nSubject: x\n\nb\n",
           "From: me@example.org\nSubject: x\nDate: " DATE "\nMessage-ID: " MSGID "\n\nb\n");
}

Test(mailmsg, strips_bcc_and_folded_lines) {
    expect("To: a@example.org\nBcc: secret@example.org,\n other@example.org\n"
           "Subject: s\nRESENT-BCC: x@example.org\nbcc : y@example.org\n\nBcc: not a header\n",
           "To: a@example.org\nSubject: s\n" ADDED_LF "\nBcc: not a header\n");
    expect_counts("Bcc: a@b\nBcc:\n\tc@d\n\n", 3, 2, 0);
}

Test(mailmsg, bcc_as_last_field_without_newline) {
    expect("Subject: s\nBcc: hidden@example.org", "Subject: s\n" ADDED_LF "\n");
    expect("Bcc: hidden@example.org\n", ADDED_LF "\n");
}

Test(mailmsg, crlf_line_endings_become_lf) {
    /* LF throughout: what the recipient's node stores anyway */
    expect("Subject: hi\r\nBcc: x@y\r\n\r\nline 1\r\nline 2\r\n",
           "Subject: hi\n" ADDED_LF "\nline 1\nline 2\n");
}

Test(mailmsg, body_untouched_but_line_endings) {
    /* header-like lines in the body are body: nothing is removed there */
    expect("Subject: hi\n\nBcc: x\r\n\nFrom: y\rz\n",
           "Subject: hi\n" ADDED_LF "\nBcc: x\n\nFrom: y\nz\n");
}

Test(mailmsg, folded_header_kept_whole) {
    expect("Subject: a very\n long\n\tsubject\nX-A: 1\n\nb",
           "Subject: a very\n long\n\tsubject\nX-A: 1\n" ADDED_LF "\nb");
    pst_mailmsg_filter *f = filter_all("Subject: a very\n long\n\tsubject\n\n", 1);
    cr_assert_str_eq(f->subject, "a very long subject");
    free(f);
}

Test(mailmsg, long_header_near_the_cap) {
    size_t n = PST_MAILMSG_FIELD_MAX - 16;
    char *in = malloc(n + 64);
    strcpy(in, "X-Long: ");
    size_t len = strlen(in);
    while (len < n - 1) {
        if (len % 70 == 0) {
            in[len++] = '\n';
            in[len++] = ' ';
        } else {
            in[len++] = 'a';
        }
    }
    in[len++] = '\n';
    memcpy(in + len, "\nbody", 6);
    len += 5;
    pst_mailmsg_filter *f = new_filter();
    buf out = {0};
    cr_assert_eq(run(f, in, len, 4096, &out), PST_OK);
    cr_assert_eq(out.len, len + strlen(ADDED_LF));
    free(out.p);
    free(f);
    free(in);
}

Test(mailmsg, header_field_over_cap) {
    size_t n = PST_MAILMSG_FIELD_MAX + 10;
    char *in = malloc(n);
    memcpy(in, "X-Long: ", 8);
    memset(in + 8, 'a', n - 8);
    pst_mailmsg_filter *f = new_filter();
    buf out = {0};
    cr_assert_eq(run(f, in, n, 1000, &out), PST_E_TOOBIG);
    /* sticky */
    cr_assert_eq(pst_mailmsg_filter_feed(f, (const uint8_t *)"\n", 1, collect, &out), PST_E_TOOBIG);
    cr_assert_eq(pst_mailmsg_filter_finish(f, collect, &out), PST_E_TOOBIG);
    free(out.p);
    free(f);
    free(in);
}

Test(mailmsg, header_section_over_cap) {
    /* many small fields: each under the field cap, together over the section cap */
    size_t per = 1000, count = PST_MAILMSG_HEADER_MAX / per + 2;
    char *line = malloc(per + 1);
    memcpy(line, "X-F: ", 5);
    memset(line + 5, 'b', per - 6);
    line[per - 1] = '\n';
    pst_mailmsg_filter *f = new_filter();
    buf out = {0};
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = pst_mailmsg_filter_feed(f, (const uint8_t *)line, per, collect, &out);
    cr_assert_eq(rc, PST_E_TOOBIG);
    free(out.p);
    free(f);
    free(line);
}

Test(mailmsg, nul_in_headers_refused_but_fine_in_body) {
    pst_mailmsg_filter *f = new_filter();
    buf out = {0};
    static const char bad[] = "Subject: a\0b\n\n";
    cr_assert_eq(run(f, bad, sizeof bad - 1, 64, &out), PST_E_MALFORMED);
    free(out.p);
    free(f);
    f = new_filter();
    memset(&out, 0, sizeof out);
    static const char ok[] = "Subject: a\n\nx\0y";
    cr_assert_eq(run(f, ok, sizeof ok - 1, 64, &out), PST_OK);
    cr_assert_eq(out.len, sizeof ok - 1 + strlen(ADDED_LF));
    free(out.p);
    free(f);
}

Test(mailmsg, no_body) {
    expect("Subject: only headers\n", "Subject: only headers\n" ADDED_LF "\n");
    expect("Subject: no newline", "Subject: no newline\n" ADDED_LF "\n");
    expect("Subject: hi\r\nTo: x@y", "Subject: hi\nTo: x@y\n" ADDED_LF "\n");
    expect("Subject: empty body\n\n", "Subject: empty body\n" ADDED_LF "\n");
}

Test(mailmsg, empty_input) { expect("", ADDED_LF "\n"); }

Test(mailmsg, body_without_headers) {
    expect("Hello Bob,\nhow are you?\n", ADDED_LF "\nHello Bob,\nhow are you?\n");
    expect("hello", ADDED_LF "\nhello");
    expect("\nstarts with an empty line\n", ADDED_LF "\nstarts with an empty line\n");
    expect(" indented first line\n", ADDED_LF "\n indented first line\n");
    expect("From alice Mon Jan 1\nSubject: x\n", ADDED_LF "\nFrom alice Mon Jan 1\nSubject: x\n");
    expect("Dear Bob:\n", ADDED_LF "\nDear Bob:\n");
    expect("Hello\r\nworld\r\n", ADDED_LF "\nHello\nworld\n");
}

Test(mailmsg, non_header_line_ends_the_header_section) {
    expect("Subject: s\nthis is the body\n", "Subject: s\n" ADDED_LF "\nthis is the body\n");
    expect("Subject: s\nBcc: x@y\nbody", "Subject: s\n" ADDED_LF "\nbody");
}

Test(mailmsg, obsolete_space_before_colon) {
    /* kept as "Name:", so that readers which end the header section at
     * "Name :" (Python's email package) still see the added fields */
    expect("Subject : s\n\nb", "Subject: s\n" ADDED_LF "\nb");
    expect("X-A \t: 1\n fold : 2\nTo: t@example.org\n\nb",
           "X-A: 1\n fold : 2\nTo: t@example.org\n" ADDED_LF "\nb");
    expect("X-A :", "X-A:\n" ADDED_LF "\n");
}

Test(mailmsg, output_error_is_sticky_and_returned) {
    pst_mailmsg_filter *f = new_filter();
    buf out = {.limit = 10};
    const char *in = "Subject: something long enough\n\nbody";
    cr_assert_eq(run(f, in, strlen(in), 5, &out), PST_E_TOOBIG);
    cr_assert_eq(pst_mailmsg_filter_finish(f, collect, &out), PST_E_TOOBIG);
    free(out.p);
    free(f);
}

Test(mailmsg, init_rejects_bad_values) {
    pst_mailmsg_filter *f = malloc(sizeof *f);
    cr_assert_eq(pst_mailmsg_filter_init(f, "", DATE, MSGID), PST_E_INVAL);
    cr_assert_eq(pst_mailmsg_filter_init(f, FROM, NULL, MSGID), PST_E_INVAL);
    cr_assert_eq(pst_mailmsg_filter_init(f, FROM, DATE, "<a>\r\nBcc: x"), PST_E_INVAL);
    char big[PST_MAILMSG_VALUE_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(pst_mailmsg_filter_init(f, big, DATE, MSGID), PST_E_INVAL);
    cr_assert_eq(pst_mailmsg_filter_init(f, "\xc3\xa9t\xc3\xa9@example.org", DATE, MSGID), PST_OK);
    cr_assert_eq(pst_mailmsg_filter_feed(NULL, NULL, 0, collect, NULL), PST_E_INVAL);
    free(f);
}

/* ---- line endings: every form ends a line, as the recipient counts them --- */

/* The test's own line-ending rule (CRLF, then a bare CR, become LF), written
 * independently of pst_eol. */
static char *lf_only(const char *in, size_t len, size_t *out_len) {
    char *o = malloc(len + 1);
    cr_assert_not_null(o);
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
            continue;
        o[w++] = in[i] == '\r' ? '\n' : in[i];
    }
    o[w] = '\0';
    *out_len = w;
    return o;
}

/* Names of the header fields of an LF-only message, lowercased, spaces
 * before the colon dropped, as Python's email package and mail clients see
 * them: one per line up to the first empty line, folded lines skipped. */
static size_t header_names(const uint8_t *p, size_t n, char names[][32], size_t max) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const uint8_t *nl = memchr(p + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (p + i)) : n - i;
        if (len == 0)
            break;
        if (p[i] != ' ' && p[i] != '\t' && k < max) {
            size_t j = 0;
            while (j < len && j < 31 && p[i + j] != ':' && p[i + j] != ' ' && p[i + j] != '\t') {
                uint8_t c = p[i + j];
                names[k][j++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
            names[k++][j] = '\0';
        }
        i += len + 1;
    }
    return k;
}

static size_t count_name(char names[][32], size_t k, const char *name) {
    size_t c = 0;
    for (size_t i = 0; i < k; i++)
        c += strcmp(names[i], name) == 0;
    return c;
}

/* One message in each line-ending form: the same LF output whatever the
 * form and however the input is cut, with the Bcc removed and the From
 * noticed. */
Test(mailmsg, every_line_ending_form) {
    static const char *const forms[] = {
        /* bare LF */
        "Subject: x\nBcc: y@example.org\nFrom: me@example.org\n\nline 1\nline 2\n",
        /* CRLF */
        "Subject: x\r\nBcc: y@example.org\r\nFrom: me@example.org\r\n\r\nline 1\r\nline 2\r\n",
        /* bare CR */
        "Subject: x\rBcc: y@example.org\rFrom: me@example.org\r\rline 1\rline 2\r",
        /* mixed */
        "Subject: x\r\nBcc: y@example.org\rFrom: me@example.org\n\r\nline 1\rline 2\r\n",
        "Subject: x\rBcc: y@example.org\nFrom: me@example.org\r\n\rline 1\nline 2\r",
    };
    const char *want = "Subject: x\nFrom: me@example.org\nDate: " DATE "\nMessage-ID: " MSGID
                       "\n\nline 1\nline 2\n";
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        expect(forms[i], want);
        pst_mailmsg_filter *f = new_filter();
        buf out = {0};
        cr_assert_eq(run(f, forms[i], strlen(forms[i]), 5, &out), PST_OK);
        cr_assert_eq(f->bcc_removed, 1, "form %zu", i);
        cr_assert_eq(f->seen & PST_MAILMSG_SEEN_FROM, PST_MAILMSG_SEEN_FROM, "form %zu", i);
        cr_assert_str_eq(f->subject, "x", "form %zu", i);
        free(out.p);
        free(f);
    }
}

Test(mailmsg, bare_cr_bcc_is_removed) {
    /* the field that leaked: one line to the sender, two to the recipient */
    expect("Subject: x\rBcc: y@example.org\n\nb", "Subject: x\n" ADDED_LF "\nb");
    expect("To: a@example.org\rbcc: y@example.org\rSubject: s\r\rb",
           "To: a@example.org\nSubject: s\n" ADDED_LF "\nb");
    expect("To: a@example.org\rBCC : y@example.org\r\rb", "To: a@example.org\n" ADDED_LF "\nb");
    expect("To: a@example.org\rResent-Bcc: y@example.org\r\nSubject: s\r\n\r\nb",
           "To: a@example.org\nSubject: s\n" ADDED_LF "\nb");
}

Test(mailmsg, bare_cr_from_is_noticed) {
    expect("Subject: x\rFrom: me@example.org\n\nb",
           "Subject: x\nFrom: me@example.org\nDate: " DATE "\nMessage-ID: " MSGID "\n\nb");
    expect("Subject: x\rfrom: me@example.org\rDate: " DATE "\rMessage-ID: <m@x>\r\rb",
           "Subject: x\nfrom: me@example.org\nDate: " DATE "\nMessage-ID: <m@x>\n\nb");
}

Test(mailmsg, folded_bcc_removed_whole_in_every_form) {
    expect("Bcc: a@example.org,\r b@example.org,\r\n\tc@example.org\rSubject: s\r\rb",
           "Subject: s\n" ADDED_LF "\nb");
    expect("Subject: s\r\nBcc:\r\n a@example.org\r b@example.org\r\n\r\nb",
           "Subject: s\n" ADDED_LF "\nb");
    expect_counts("Bcc: a@b,\r c@d\rX: 1\r\rb", 1, 1, 1);
}

Test(mailmsg, bcc_last_before_the_body_in_every_form) {
    expect("Subject: s\rBcc: x@example.org\r\rbody\r", "Subject: s\n" ADDED_LF "\nbody\n");
    expect("Subject: s\r\nBcc: x@example.org\r\r\nbody", "Subject: s\n" ADDED_LF "\nbody");
    expect("Subject: s\rBcc: x@example.org", "Subject: s\n" ADDED_LF "\n");
    expect("Subject: s\rBcc: x@example.org\r", "Subject: s\n" ADDED_LF "\n");
    /* a line that is no field ends the header section: the Bcc before it goes */
    expect("Subject: s\rBcc: x@example.org\rbody", "Subject: s\n" ADDED_LF "\nbody");
}

Test(mailmsg, random_messages_any_form_any_chunks) {
    /* whatever the line endings and the cuts: no CR out, the same output as
     * for the message with LF endings, no Bcc field, exactly one From when
     * the input has none */
    static const char *atoms[] = {
        "Bcc: b@x", "bcc :", "Resent-BCC: r", "Subject: s", "X-A: 1", " fold", "\t",       "\r",
        "\n",       "\r\n",  "\r\r",          "\n\r",       ":",      "a@b",   "From: f@x"};
    uint32_t s = 4242;
    for (int round = 0; round < 2000; round++) {
        char in[512];
        size_t n = tu_atom_message(&s, atoms, sizeof atoms / sizeof atoms[0], SIZE_MAX, 400, 17,
                                   (uint8_t *)in);
        size_t ln;
        char *lf = lf_only(in, n, &ln);
        pst_mailmsg_filter *f = new_filter();
        buf ref = {0};
        cr_assert_eq(run(f, lf, ln, ln + 1, &ref), PST_OK);
        free(f);
        size_t step = 1 + tu_lcg(&s) % 11;
        f = new_filter();
        buf out = {0};
        cr_assert_eq(run(f, in, n, step, &out), PST_OK, "round %d", round);
        cr_assert_eq(out.len, ref.len, "round %d: [%.*s]", round, (int)out.len, (char *)out.p);
        cr_assert_eq(memcmp(out.p, ref.p, ref.len), 0, "round %d", round);
        cr_assert_null(memchr(out.p, '\r', out.len), "round %d", round);
        char names[256][32];
        size_t k = header_names(out.p, out.len, names, 256);
        cr_assert_eq(count_name(names, k, "bcc") + count_name(names, k, "resent-bcc"), 0,
                     "round %d: [%.*s]", round, (int)out.len, (char *)out.p);
        size_t lk = 0;
        char lnames[256][32];
        lk = header_names((const uint8_t *)lf, ln, lnames, 256);
        if (count_name(lnames, lk, "from") == 0)
            cr_assert_eq(count_name(names, k, "from"), 1, "round %d", round);
        free(out.p);
        free(ref.p);
        free(lf);
        free(f);
    }
}

Test(mailmsg, format_date) {
    char d[PST_MAILMSG_DATE_BUFSIZE];
    cr_assert_eq(pst_mailmsg_format_date(1700000000, d), PST_OK);
    cr_assert_str_eq(d, "Tue, 14 Nov 2023 22:13:20 +0000");
    cr_assert_eq(pst_mailmsg_format_date(0, d), PST_OK);
    cr_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 +0000");
    cr_assert_eq(pst_mailmsg_format_date(253402300800ull, d), PST_E_RANGE);
    cr_assert_str_eq(d, "");
}

Test(mailmsg, message_id) {
    uint8_t r[PST_MAILMSG_RAND_BYTES];
    memset(r, 0xab, sizeof r);
    char id[PST_MAILMSG_MSGID_BUFSIZE];
    pst_mailmsg_make_message_id(r, "example.org", id);
    cr_assert_str_eq(id, "<abababababababababababababababab@example.org>");
    pst_mailmsg_make_message_id(r, NULL, id);
    cr_assert_str_eq(id, "<abababababababababababababababab@postern.invalid>");
    pst_mailmsg_make_message_id(r, "bad domain>", id);
    cr_assert_str_eq(id, "<abababababababababababababababab@postern.invalid>");
}

static void display(const char *raw, const char *want, size_t cap) {
    char out[300];
    cr_assert(cap <= sizeof out);
    pst_mailmsg_display(raw, strlen(raw), out, cap);
    cr_assert_str_eq(out, want, "raw [%s]", raw);
}

Test(mailmsg, display_form) {
    display("  plain  ", "plain", 300);
    display(" =?UTF-8?B?w6l0w6k=?=", "\xc3\xa9t\xc3\xa9", 300);
    display("=?utf-8?q?caf=C3=A9_au_lait?=", "caf\xc3\xa9 au lait", 300);
    display("=?UTF-8?B?YWI=?= =?UTF-8?B?Y2Q=?=", "abcd", 300);          /* space dropped */
    display("=?UTF-8?B?YWI=?= x =?UTF-8?B?Y2Q=?=", "ab x cd", 300);     /* kept */
    display("=?ISO-8859-1?Q?caf=E9?=", "=?ISO-8859-1?Q?caf=E9?=", 300); /* not decoded */
    display("=?UTF-8?B?!!!?=", "=?UTF-8?B?!!!?=", 300);
    display("=?UTF-8?Q?bad=G?=", "=?UTF-8?Q?bad=G?=", 300);
    display("a\r\n b", "a b", 300);
    display("tab\there", "tab here", 300);
    display("bell\x07 and \xff bad", "bell? and ? bad", 300);
    display("=?UTF-8?B?AQI=?=", "??", 300);             /* controls decoded are still replaced */
    display("\xc3\xa9\xc3\xa9\xc3\xa9", "\xc3\xa9", 4); /* never cut a character */
    display("abcdef", "abc", 4);
    char one[1];
    pst_mailmsg_display("abc", 3, one, 1);
    cr_assert_eq(one[0], '\0');
}

static const char *simple(pst_mailmsg_simple *m, char *out, size_t cap) {
    size_t len;
    int rc = pst_mailmsg_simple_headers(m, out, cap, &len);
    cr_assert_eq(rc, PST_OK);
    cr_assert_eq(len, strlen(out));
    return out;
}

Test(mailmsg, simple_headers) {
    const char *to[] = {"bob@example.org", "carol@example.org"};
    const char *cc[] = {"dave@example.org"};
    struct {
        pst_mailmsg_simple m;
        const char *want;
    } cases[] = {
        {{to, 2, cc, 1, "Hello", false, false},
         "To: bob@example.org, carol@example.org\nCc: dave@example.org\n"
         "Subject: Hello\n\n"},
        {{NULL, 0, NULL, 0, NULL, false, false}, "\n"},
        {{to, 1, NULL, 0, "caf\xc3\xa9", true, false},
         "To: bob@example.org\nSubject: =?UTF-8?B?Y2Fmw6k=?=\n"
         "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
         "Content-Transfer-Encoding: 8bit\n\n"},
        {{to, 1, NULL, 0, "long", false, true},
         "To: bob@example.org\nSubject: long\n"
         "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
         "Content-Transfer-Encoding: quoted-printable\n\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[4096] = {0};
        cr_assert_str_eq(simple(&cases[i].m, out, sizeof out), cases[i].want, "case %zu", i);
    }
}

Test(mailmsg, simple_headers_fold_and_roundtrip) {
    const char *to[PST_MAILMSG_ADDRS_MAX];
    char addrs[8][40];
    for (int i = 0; i < 8; i++) {
        snprintf(addrs[i], sizeof addrs[i], "someone%d@example.org", i);
        to[i] = addrs[i];
    }
    /* 60 two-byte characters: several encoded words, none splitting one */
    char subject[200] = "";
    for (int i = 0; i < 60; i++)
        strcat(subject, "\xc3\xa9");
    pst_mailmsg_simple m = {to, 8, NULL, 0, subject, false, false};
    char out[4096] = {0};
    simple(&m, out, sizeof out);
    for (const char *line = out; *line;) {
        const char *nl = strchr(line, '\n');
        cr_assert_leq((size_t)(nl - line), 76, "line too long: %.*s", (int)(nl - line), line);
        line = nl + 1;
    }
    /* the filter decodes what the builder encoded */
    pst_mailmsg_filter *f = new_filter();
    buf o = {0};
    cr_assert_eq(run(f, out, strlen(out), 13, &o), PST_OK);
    char want[PST_MAILMSG_SUBJECT_MAX + 1];
    memcpy(want, subject, 120);
    want[120] = '\0';
    cr_assert_str_eq(f->subject, want);
    cr_assert(f->seen & PST_MAILMSG_SEEN_TO);
    free(o.p);
    free(f);
}

Test(mailmsg, simple_headers_refuses_injection_and_overflow) {
    char out[256];
    size_t len = 7;
    const char *bad_to[] = {"bob@example.org\nBcc: x@y"};
    pst_mailmsg_simple m = {bad_to, 1, NULL, 0, NULL, false, false};
    cr_assert_eq(pst_mailmsg_simple_headers(&m, out, sizeof out, &len), PST_E_INVAL);
    cr_assert_eq(len, 0);
    const char *commas[] = {"a@b, c@d"};
    m.to = commas;
    cr_assert_eq(pst_mailmsg_simple_headers(&m, out, sizeof out, &len), PST_E_INVAL);
    const char *noat[] = {"bob"};
    m.to = noat;
    cr_assert_eq(pst_mailmsg_simple_headers(&m, out, sizeof out, &len), PST_E_INVAL);
    const char *ok[] = {"bob@example.org"};
    m.to = ok;
    m.subject = "line\nBcc: x";
    cr_assert_eq(pst_mailmsg_simple_headers(&m, out, sizeof out, &len), PST_E_INVAL);
    m.subject = "bad \xff utf-8";
    cr_assert_eq(pst_mailmsg_simple_headers(&m, out, sizeof out, &len), PST_E_INVAL);
    m.subject = "fine";
    cr_assert_eq(pst_mailmsg_simple_headers(&m, out, 10, &len), PST_E_NOSPACE);
    m.n_to = PST_MAILMSG_ADDRS_MAX + 1;
    cr_assert_eq(pst_mailmsg_simple_headers(&m, out, sizeof out, &len), PST_E_INVAL);
}
