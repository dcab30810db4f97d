/* RFC 5322 header handling for sending (see pst_mailmsg.h). The input goes
 * through the shared line-ending rule (pst_eol) a slice at a time, so the
 * parser below only ever sees LF: a line the recipient's node or a mail
 * client would split at a bare CR is split here too. The filter keeps the
 * pending header field in one fixed buffer: a field is complete when the
 * first byte of the next line is not a space or tab, so it is flushed then,
 * and the buffer never holds more than one field plus the line being read. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pst_identity.h"
#include "pst_mailmsg.h"
#include "pst_utf8.h"

enum { PHASE_HEADER = 0, PHASE_BODY = 1 };

static bool is_wsp(uint8_t c) { return c == ' ' || c == '\t'; }

static uint8_t lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c; }

static bool ieq(const uint8_t *p, size_t n, const char *s) {
    size_t sl = strlen(s);
    if (n != sl)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(p[i]) != (uint8_t)s[i])
            return false;
    return true;
}

/* Printable UTF-8: no controls (C0, DEL, C1) except tab when allowed. */
static bool printable_utf8(const uint8_t *p, size_t n, bool tab_ok) {
    for (size_t i = 0; i < n;) {
        if ((p[i] < 0x20 && !(tab_ok && p[i] == '\t')) || p[i] == 0x7f)
            return false;
        size_t k = pst_utf8_seq(p + i, n - i);
        if (k == 0 || (k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0))
            return false;
        i += k;
    }
    return true;
}

/* ---- the filter ---------------------------------------------------------- */

static int emit(pst_mailmsg_filter *f, pst_mailmsg_out_fn out, void *user, const void *p,
                size_t n) {
    if (f->err)
        return f->err;
    int rc = n ? out(user, p, n) : 0;
    if (rc)
        f->err = rc;
    return rc;
}

static int emit_eol(pst_mailmsg_filter *f, pst_mailmsg_out_fn out, void *user) {
    return emit(f, out, user, "\n", 1);
}

/* The fields the message lacks, at the end of its header section. */
static int emit_additions(pst_mailmsg_filter *f, pst_mailmsg_out_fn out, void *user) {
    static const struct {
        unsigned bit;
        const char *name;
        size_t off;
    } add[] = {
        {PST_MAILMSG_SEEN_FROM, "From: ", offsetof(pst_mailmsg_filter, from)},
        {PST_MAILMSG_SEEN_DATE, "Date: ", offsetof(pst_mailmsg_filter, date)},
        {PST_MAILMSG_SEEN_MSGID, "Message-ID: ", offsetof(pst_mailmsg_filter, message_id)},
    };
    for (size_t i = 0; i < sizeof add / sizeof add[0]; i++) {
        if (f->seen & add[i].bit)
            continue;
        const char *v = (const char *)f + add[i].off;
        int rc = emit(f, out, user, add[i].name, strlen(add[i].name));
        if (rc == 0)
            rc = emit(f, out, user, v, strlen(v));
        if (rc == 0)
            rc = emit_eol(f, out, user);
        if (rc)
            return rc;
    }
    return 0;
}

/* The pending field is field[0..line_start). */
static int flush_field(pst_mailmsg_filter *f, pst_mailmsg_out_fn out, void *user) {
    const uint8_t *p = f->field;
    size_t n = f->line_start;
    f->line_start = 0;
    if (n == 0)
        return 0;
    size_t name = pst_hdr_field_name_len(p, n);
    if (ieq(p, name, "bcc") || ieq(p, name, "resent-bcc")) {
        f->bcc_removed++;
        return 0;
    }
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {
        {"from", PST_MAILMSG_SEEN_FROM},
        {"date", PST_MAILMSG_SEEN_DATE},
        {"message-id", PST_MAILMSG_SEEN_MSGID},
        {"to", PST_MAILMSG_SEEN_TO},
        {"cc", PST_MAILMSG_SEEN_CC},
        {"subject", PST_MAILMSG_SEEN_SUBJECT},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (!ieq(p, name, known[i].name))
            continue;
        if (known[i].bit == PST_MAILMSG_SEEN_SUBJECT && !(f->seen & known[i].bit)) {
            const uint8_t *colon = memchr(p, ':', n);
            size_t off = (size_t)(colon - p) + 1;
            pst_mailmsg_display((const char *)p + off, n - off, f->subject, sizeof f->subject);
        }
        f->seen |= known[i].bit;
    }
    f->fields++;
    const uint8_t *colon = memchr(p, ':', n);
    size_t gap = colon && name > 0 ? (size_t)(colon - p) - name : 0;
    if (gap == 0)
        return emit(f, out, user, p, n);
    /* "Name :" (RFC 5322's obsolete syntax) is written "Name:": Python's
     * email package and others end the header section at such a line, and
     * would read the fields added after it as body. */
    int rc = emit(f, out, user, p, name);
    return rc ? rc : emit(f, out, user, colon, n - name - gap);
}

/* The header section ends before field[0..field_len), which becomes body:
 * the added fields, an empty line, then that line. */
static int start_body_with_line(pst_mailmsg_filter *f, pst_mailmsg_out_fn out, void *user) {
    int rc = emit_additions(f, out, user);
    if (rc == 0)
        rc = emit_eol(f, out, user);
    if (rc == 0)
        rc = emit(f, out, user, f->field, f->field_len);
    f->field_len = 0;
    f->phase = PHASE_BODY;
    return rc;
}

/* A complete line (with its '\n', the only line ending left after pst_eol)
 * is at field[line_start..field_len). */
static int process_line(pst_mailmsg_filter *f, pst_mailmsg_out_fn out, void *user) {
    uint8_t *line = f->field + f->line_start;
    size_t content = f->field_len - f->line_start - 1;
    if (f->line_start > 0) { /* a folded line of the pending field */
        f->line_start = f->field_len;
        return 0;
    }
    if (content == 0) { /* the empty line: the body follows */
        int rc = emit_additions(f, out, user);
        if (rc == 0)
            rc = emit(f, out, user, line, f->field_len);
        f->field_len = 0;
        f->phase = PHASE_BODY;
        return rc;
    }
    if (pst_hdr_field_name_len(line, content) > 0) {
        f->line_start = f->field_len;
        return 0;
    }
    return start_body_with_line(f, out, user);
}

int pst_mailmsg_filter_init(pst_mailmsg_filter *f, const char *from, const char *date,
                            const char *message_id) {
    if (!f)
        return PST_E_INVAL;
    memset(f, 0, offsetof(pst_mailmsg_filter, field));
    pst_eol_init(&f->eol);
    const char *v[3] = {from, date, message_id};
    char *dst[3] = {f->from, f->date, f->message_id};
    for (int i = 0; i < 3; i++) {
        size_t n = v[i] ? strnlen(v[i], PST_MAILMSG_VALUE_MAX + 1) : 0;
        if (n == 0 || n > PST_MAILMSG_VALUE_MAX || !printable_utf8((const uint8_t *)v[i], n, false))
            return f->err = PST_E_INVAL;
        memcpy(dst[i], v[i], n + 1);
    }
    return 0;
}

/* in[0..len) has LF line endings only. */
static int feed_lf(pst_mailmsg_filter *f, const uint8_t *in, size_t len, pst_mailmsg_out_fn out,
                   void *user) {
    size_t i = 0;
    while (i < len && f->phase == PHASE_HEADER) {
        /* at the start of a line after a field: is it a folded line? */
        if (f->line_start > 0 && f->line_start == f->field_len && !is_wsp(in[i])) {
            int rc = flush_field(f, out, user);
            if (rc)
                return rc;
            f->field_len = 0;
        }
        const uint8_t *nl = memchr(in + i, '\n', len - i);
        size_t take = nl ? (size_t)(nl - (in + i)) + 1 : len - i;
        if (memchr(in + i, 0, take))
            return f->err = PST_E_MALFORMED;
        if (take > PST_MAILMSG_FIELD_MAX - f->field_len ||
            take > PST_MAILMSG_HEADER_MAX - f->header_bytes)
            return f->err = PST_E_TOOBIG;
        memcpy(f->field + f->field_len, in + i, take);
        f->field_len += take;
        f->header_bytes += take;
        i += take;
        if (nl) {
            int rc = process_line(f, out, user);
            if (rc)
                return f->err = rc;
        }
    }
    return i < len ? emit(f, out, user, in + i, len - i) : f->err;
}

int pst_mailmsg_filter_feed(pst_mailmsg_filter *f, const uint8_t *in, size_t len,
                            pst_mailmsg_out_fn out, void *user) {
    if (!f || !out || (!in && len))
        return PST_E_INVAL;
    while (f->err == 0 && len > 0) {
        size_t take = len < sizeof f->slice ? len : sizeof f->slice;
        size_t n = pst_eol_normalise(&f->eol, in, take, f->slice);
        int rc = feed_lf(f, f->slice, n, out, user);
        if (rc)
            return f->err = rc;
        in += take;
        len -= take;
    }
    return f->err;
}

static int append_eol(pst_mailmsg_filter *f) {
    if (f->field_len >= PST_MAILMSG_FIELD_MAX)
        return f->err = PST_E_TOOBIG;
    f->field[f->field_len++] = '\n';
    return 0;
}

int pst_mailmsg_filter_finish(pst_mailmsg_filter *f, pst_mailmsg_out_fn out, void *user) {
    if (!f || !out)
        return PST_E_INVAL;
    if (f->err || f->phase == PHASE_BODY)
        return f->err;
    int rc = 0;
    if (f->field_len > f->line_start) { /* the input stopped inside a line */
        size_t content = f->field_len - f->line_start;
        if (f->line_start > 0 ||
            pst_hdr_field_name_len(f->field + f->line_start, content) > 0) { /* a field: end it */
            if ((rc = append_eol(f)))
                return rc;
            f->line_start = f->field_len;
        } else {
            return start_body_with_line(f, out, user);
        }
    }
    if ((rc = flush_field(f, out, user)))
        return rc;
    f->field_len = 0;
    if ((rc = emit_additions(f, out, user)) == 0)
        rc = emit_eol(f, out, user);
    f->phase = PHASE_BODY;
    return rc;
}

/* ---- dates and ids ------------------------------------------------------- */

int pst_mailmsg_format_date(uint64_t t, char out[PST_MAILMSG_DATE_BUFSIZE]) {
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    out[0] = '\0';
    if (t >= 253402300800ull) /* 10000-01-01 */
        return PST_E_RANGE;
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL)
        return PST_E_RANGE;
    snprintf(out, PST_MAILMSG_DATE_BUFSIZE, "%s, %02d %s %04d %02d:%02d:%02d +0000",
             days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    return 0;
}

void pst_mailmsg_make_message_id(const uint8_t rand[PST_MAILMSG_RAND_BYTES], const char *domain,
                                 char out[PST_MAILMSG_MSGID_BUFSIZE]) {
    char hex[2 * PST_MAILMSG_RAND_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, rand, PST_MAILMSG_RAND_BYTES);
    if (!domain || !pst_hostname_is_valid(domain, strlen(domain)))
        domain = PST_MAILMSG_DOMAIN_DEFAULT;
    snprintf(out, PST_MAILMSG_MSGID_BUFSIZE, "<%s@%s>", hex, domain);
}

/* ---- display form -------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t cap, len;
} sink;

static void put(sink *s, const void *p, size_t n) {
    if (n > s->cap - s->len)
        n = s->cap - s->len;
    memcpy(s->p + s->len, p, n);
    s->len += n;
}

static int hexval(uint8_t c) {
    c = lower(c);
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes the encoded word at p[0..n) ("=?charset?enc?text?=") into s and
 * returns its length, or 0 if it is not one Postern decodes. */
static size_t encoded_word(const uint8_t *p, size_t n, sink *s) {
    if (n < 8 || p[0] != '=' || p[1] != '?')
        return 0;
    size_t q[3], k = 0;
    for (size_t i = 2; i < n && k < 3; i++) {
        if (p[i] == ' ' || p[i] == '\t')
            return 0;
        if (p[i] == '?')
            q[k++] = i;
    }
    if (k < 3 || q[2] + 1 >= n || p[q[2] + 1] != '=' || q[1] != q[0] + 2)
        return 0;
    const uint8_t *cs = p + 2;
    size_t cslen = q[0] - 2;
    const uint8_t *star = memchr(cs, '*', cslen); /* RFC 2231 language suffix */
    if (star)
        cslen = (size_t)(star - cs);
    if (!ieq(cs, cslen, "utf-8") && !ieq(cs, cslen, "us-ascii"))
        return 0;
    uint8_t enc = lower(p[q[0] + 1]);
    const uint8_t *text = p + q[1] + 1;
    size_t tlen = q[2] - q[1] - 1;
    uint8_t buf[256];
    size_t blen = 0;
    if (enc == 'b') {
        if (sodium_base642bin(buf, sizeof buf, (const char *)text, tlen, NULL, &blen, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0)
            return 0;
    } else if (enc == 'q') {
        for (size_t i = 0; i < tlen && blen < sizeof buf; i++) {
            if (text[i] == '_') {
                buf[blen++] = ' ';
            } else if (text[i] == '=') {
                if (i + 2 >= tlen)
                    return 0;
                int hi = hexval(text[i + 1]), lo = hexval(text[i + 2]);
                if (hi < 0 || lo < 0)
                    return 0;
                buf[blen++] = (uint8_t)(hi * 16 + lo);
                i += 2;
            } else {
                buf[blen++] = text[i];
            }
        }
    } else {
        return 0;
    }
    put(s, buf, blen);
    return q[2] + 2;
}

void pst_mailmsg_display(const char *raw, size_t len, char *out, size_t cap) {
    if (cap == 0)
        return;
    out[0] = '\0';
    if (!raw)
        return;
    /* unfold and decode into tmp */
    uint8_t unfolded[PST_MAILMSG_DISPLAY_RAW_MAX], tmp[PST_MAILMSG_DISPLAY_RAW_MAX];
    sink u = {unfolded, sizeof unfolded, 0};
    for (size_t i = 0; i < len && u.len < u.cap; i++)
        if (raw[i] != '\r' && raw[i] != '\n')
            put(&u, raw + i, 1);
    sink s = {tmp, sizeof tmp, 0};
    bool after_word = false;
    for (size_t i = 0; i < u.len;) {
        if (after_word && is_wsp(unfolded[i])) {
            /* space between two encoded words is not part of the text */
            size_t j = i;
            while (j < u.len && is_wsp(unfolded[j]))
                j++;
            uint8_t none[1];
            sink probe = {none, 0, 0};
            if (j < u.len && encoded_word(unfolded + j, u.len - j, &probe) > 0) {
                i = j;
                continue;
            }
        }
        size_t w = encoded_word(unfolded + i, u.len - i, &s);
        if (w > 0) {
            after_word = true;
            i += w;
            continue;
        }
        after_word = false;
        put(&s, unfolded + i, 1);
        i++;
    }
    /* sanitize into out, trimming spaces at both ends */
    size_t o = 0, start = 0;
    while (start < s.len && is_wsp(tmp[start]))
        start++;
    for (size_t i = start; i < s.len;) {
        size_t k = pst_utf8_seq(tmp + i, s.len - i);
        const uint8_t *c = tmp + i;
        uint8_t q = '?', sp = ' ';
        if (k == 0) {
            k = 1;
            c = &q;
        } else if (k == 1 && (tmp[i] < 0x20 || tmp[i] == 0x7f)) {
            c = tmp[i] == '\t' ? &sp : &q;
        } else if (k == 2 && tmp[i] == 0xc2 && tmp[i + 1] < 0xa0) {
            c = &q;
        }
        size_t n = c == tmp + i ? k : 1;
        if (o + n > cap - 1)
            break;
        memcpy(out + o, c, n);
        o += n;
        i += k;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* ---- simple messages ----------------------------------------------------- */

typedef struct {
    char *p;
    size_t cap, len;
    bool overflow;
} writer;

static void w_put(writer *w, const char *s, size_t n) {
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void w_str(writer *w, const char *s) { w_put(w, s, strlen(s)); }

static bool address_ok(const char *a) {
    size_t n = a ? strlen(a) : 0;
    if (n == 0 || n > PST_ADDRESS_MAX || !strchr(a, '@'))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)a[i] <= 0x20 || strchr(",;<>()\"\\", a[i]))
            return false;
    return printable_utf8((const uint8_t *)a, n, false);
}

static int address_field(writer *w, const char *name, const char *const *list, unsigned n) {
    if (n == 0)
        return 0;
    if (!list)
        return PST_E_INVAL;
    w_str(w, name);
    size_t col = strlen(name);
    for (unsigned i = 0; i < n; i++) {
        if (!address_ok(list[i]))
            return PST_E_INVAL;
        size_t len = strlen(list[i]);
        if (i > 0) {
            if (col + 2 + len > PST_MAILMSG_LINE_SOFT) {
                w_str(w, ",\n ");
                col = 1;
            } else {
                w_str(w, ", ");
                col += 2;
            }
        }
        w_str(w, list[i]);
        col += len;
    }
    w_str(w, "\n");
    return 0;
}

/* Encoded words of at most this many input bytes stay under 76 columns
 * after "Subject: " (RFC 2047's limit). */
#define WORD_BYTES 39u

static int subject_field(writer *w, const char *s) {
    size_t n = strlen(s);
    if (!printable_utf8((const uint8_t *)s, n, true))
        return PST_E_INVAL;
    bool plain = n <= 900 && strstr(s, "=?") == NULL;
    for (size_t i = 0; plain && i < n; i++)
        plain = (uint8_t)s[i] < 0x80;
    w_str(w, "Subject: ");
    if (plain) {
        w_put(w, s, n);
        w_str(w, "\n");
        return 0;
    }
    for (size_t i = 0; i < n;) {
        size_t take = 0;
        while (i + take < n) {
            size_t k = pst_utf8_seq((const uint8_t *)s + i + take, n - i - take);
            if (take + k > WORD_BYTES)
                break;
            take += k;
        }
        char b64[sodium_base64_ENCODED_LEN(WORD_BYTES, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)s + i, take,
                          sodium_base64_VARIANT_ORIGINAL);
        if (i > 0)
            w_str(w, "\n ");
        w_str(w, "=?UTF-8?B?");
        w_str(w, b64);
        w_str(w, "?=");
        i += take;
    }
    w_str(w, "\n");
    return 0;
}

int pst_mailmsg_simple_headers(const pst_mailmsg_simple *m, char *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (!m || !out || !len)
        return PST_E_INVAL;
    if (m->n_to > PST_MAILMSG_ADDRS_MAX || m->n_cc > PST_MAILMSG_ADDRS_MAX)
        return PST_E_INVAL;
    writer w = {out, cap, 0, false};
    int rc = address_field(&w, "To: ", m->to, m->n_to);
    if (rc == 0)
        rc = address_field(&w, "Cc: ", m->cc, m->n_cc);
    if (rc == 0 && m->subject && m->subject[0])
        rc = subject_field(&w, m->subject);
    if (rc == 0 && (m->body_8bit || m->body_qp))
        w_str(&w, "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                  "Content-Transfer-Encoding: ");
    if (rc == 0 && (m->body_8bit || m->body_qp))
        w_str(&w, m->body_qp ? "quoted-printable\n" : "8bit\n");
    w_str(&w, "\n");
    if (rc == 0 && w.overflow)
        rc = PST_E_NOSPACE;
    if (rc) {
        memset(out, 0, cap);
        return rc;
    }
    *len = w.len;
    return 0;
}
