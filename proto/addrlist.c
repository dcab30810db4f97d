/* RFC 5322 address lists (see pst_addrlist.h). A first pass refuses the
 * bytes no part of a header value may hold (NUL, controls, invalid UTF-8),
 * so the tokenizer below only decides structure. Tokens are read one at a
 * time after the white space and comments before them; the parser looks at
 * most one token ahead, so the whole walk is linear in the value. */
#include <stdbool.h>
#include <string.h>

#include "pst_addrlist.h"
#include "pst_utf8.h"

enum { T_END, T_ATOM, T_QSTR, T_DLIT, T_SPECIAL };

typedef struct {
    int type;
    size_t start, len; /* the token's bytes in the value */
    uint8_t c;         /* T_SPECIAL: the character */
} token;

typedef struct {
    const uint8_t *p;
    size_t n, i;
    int err;
    char out[PST_ADDRLIST_ADDR_MAX + 1];
    size_t olen;
    bool overflow; /* out could not take everything: refused if it is an address */
    pst_addrlist_fn fn;
    void *user;
} reader;

static bool is_atext(uint8_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
        return true;
    return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* What a quoted pair may quote: not the CR or LF of a folded line, which
 * unfolding removes (the backslash would then quote the next byte). */
static bool quotable(uint8_t c) { return c != '\r' && c != '\n'; }

static int fail(reader *r) {
    if (r->err == 0)
        r->err = PST_E_MALFORMED;
    return r->err;
}

/* White space and comments (nested, with quoted pairs). */
static int skip_cfws(reader *r) {
    while (r->i < r->n) {
        uint8_t c = r->p[r->i];
        if (is_ws(c)) {
            r->i++;
            continue;
        }
        if (c != '(')
            return 0;
        unsigned depth = 0;
        do {
            c = r->p[r->i];
            if (c == '\\') {
                if (r->i + 1 >= r->n || !quotable(r->p[r->i + 1]))
                    return fail(r);
                r->i++;
            } else if (c == '(') {
                if (++depth > PST_ADDRLIST_COMMENT_DEPTH_MAX)
                    return fail(r);
            } else if (c == ')') {
                depth--;
            }
            r->i++;
        } while (depth > 0 && r->i < r->n);
        if (depth > 0)
            return fail(r);
    }
    return 0;
}

/* A quoted string or domain literal from r->i (at its opening byte) to its
 * closing byte, quoted pairs included. */
static int delimited(reader *r, uint8_t close) {
    for (r->i++; r->i < r->n; r->i++) {
        uint8_t c = r->p[r->i];
        if (c == '\\') {
            if (++r->i >= r->n || !quotable(r->p[r->i]))
                break;
        } else if (c == close) {
            r->i++;
            return 0;
        } else if (close == ']' && c == '[') {
            return fail(r);
        }
    }
    return fail(r);
}

static int next(reader *r, token *t) {
    memset(t, 0, sizeof *t);
    if (skip_cfws(r) != 0)
        return r->err;
    t->start = r->i;
    if (r->i >= r->n) {
        t->type = T_END;
        return 0;
    }
    uint8_t c = r->p[r->i];
    if (is_atext(c)) {
        while (r->i < r->n && is_atext(r->p[r->i]))
            r->i++;
        t->type = T_ATOM;
    } else if (c == '"' || c == '[') {
        if (delimited(r, c == '"' ? '"' : ']') != 0)
            return r->err;
        t->type = c == '"' ? T_QSTR : T_DLIT;
    } else if (strchr("<>@,;:.", c) != NULL) {
        r->i++;
        t->type = T_SPECIAL;
        t->c = c;
    } else { /* ')', ']', '\\' out of place */
        return fail(r);
    }
    t->len = r->i - t->start;
    return 0;
}

static int peek(reader *r, token *t) {
    size_t at = r->i;
    int rc = next(r, t);
    if (rc == 0)
        r->i = at;
    return rc;
}

static bool special(const token *t, uint8_t c) { return t->type == T_SPECIAL && t->c == c; }

/* Appends a token's bytes to the address, without the CR and LF of folding. */
static void append(reader *r, const uint8_t *s, size_t n) {
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '\r' || s[k] == '\n')
            continue;
        if (r->olen >= PST_ADDRLIST_ADDR_MAX) {
            r->overflow = true;
            return;
        }
        r->out[r->olen++] = (char)s[k];
    }
}

static void reset_out(reader *r) {
    r->olen = 0;
    r->overflow = false;
}

typedef struct {
    unsigned words;
    bool local_ok; /* word *("." word) so far */
    bool phrase_ok;
    bool last_word;
} words_info;

/* Words and dots: a local part or a display name, appended to out (which
 * the caller resets when it turns out to be a name). Stops before any other
 * token. */
static int read_words(reader *r, words_info *w) {
    memset(w, 0, sizeof *w);
    w->local_ok = w->phrase_ok = true;
    for (;;) {
        token t;
        if (peek(r, &t) != 0)
            return r->err;
        if (t.type == T_ATOM || t.type == T_QSTR) {
            if (w->last_word)
                w->local_ok = false; /* "john doe@x": two words without a dot */
            w->words++;
            w->last_word = true;
        } else if (special(&t, '.')) {
            if (!w->last_word)
                w->local_ok = false;
            if (w->words == 0)
                w->phrase_ok = false;
            w->last_word = false;
        } else {
            return 0;
        }
        (void)next(r, &t);
        append(r, r->p + t.start, t.len);
    }
}

/* "@" domain: a dot-atom (obsolete white space between its parts allowed)
 * or a domain literal. The '@' is the next token. */
static int read_domain(reader *r) {
    token t;
    if (next(r, &t) != 0 || !special(&t, '@'))
        return fail(r);
    append(r, (const uint8_t *)"@", 1);
    if (next(r, &t) != 0)
        return r->err;
    if (t.type == T_DLIT) {
        append(r, r->p + t.start, t.len);
        return 0;
    }
    if (t.type != T_ATOM)
        return fail(r);
    append(r, r->p + t.start, t.len);
    for (;;) {
        if (peek(r, &t) != 0)
            return r->err;
        if (!special(&t, '.'))
            return 0;
        (void)next(r, &t);
        if (next(r, &t) != 0 || t.type != T_ATOM)
            return fail(r);
        append(r, (const uint8_t *)".", 1);
        append(r, r->p + t.start, t.len);
    }
}

static int emit(reader *r) {
    if (r->overflow)
        return r->err = PST_E_TOOBIG;
    r->out[r->olen] = '\0';
    int rc = r->fn(r->user, r->out, r->olen);
    if (rc != 0)
        r->err = rc;
    return rc;
}

/* local-part "@" domain, the local part's words already read into out. */
static int finish_addr_spec(reader *r, const words_info *w) {
    if (w->words == 0 || !w->local_ok || !w->last_word)
        return fail(r);
    if (read_domain(r) != 0)
        return r->err;
    return 0;
}

/* After '<': [obs-route ":"] addr-spec ">". */
static int angle_addr(reader *r) {
    token t;
    if (peek(r, &t) != 0)
        return r->err;
    if (special(&t, '@')) { /* "@relay1,@relay2:" is ignored, as RFC 5322 says */
        for (;;) {
            reset_out(r);
            if (read_domain(r) != 0)
                return r->err;
            if (next(r, &t) != 0)
                return r->err;
            while (special(&t, ',')) {
                if (next(r, &t) != 0)
                    return r->err;
            }
            if (special(&t, ':'))
                break;
            if (!special(&t, '@'))
                return fail(r);
            r->i = t.start; /* read_domain wants the '@' */
        }
    }
    reset_out(r);
    words_info w;
    if (read_words(r, &w) != 0 || finish_addr_spec(r, &w) != 0)
        return r->err;
    if (next(r, &t) != 0 || !special(&t, '>'))
        return fail(r);
    return emit(r);
}

static int read_list(reader *r, bool in_group);

/* One address (a mailbox, or outside a group a group). */
static int read_address(reader *r, bool in_group) {
    reset_out(r);
    words_info w;
    if (read_words(r, &w) != 0)
        return r->err;
    token t;
    if (next(r, &t) != 0)
        return r->err;
    if (special(&t, '@')) {
        r->i = t.start;
        if (finish_addr_spec(r, &w) != 0)
            return r->err;
        return emit(r);
    }
    if (special(&t, '<')) {
        if (!w.phrase_ok) /* a display name starts with a word */
            return fail(r);
        return angle_addr(r);
    }
    if (special(&t, ':') && !in_group && w.words > 0 && w.phrase_ok)
        return read_list(r, true);
    r->i = t.start;
    return fail(r); /* a bare word, a nested group, a stray special */
}

/* Addresses separated by commas, empty ones allowed; a group's ends at its
 * ';' (consumed), the outer one at the end of the value. */
static int read_list(reader *r, bool in_group) {
    for (;;) {
        token t;
        if (peek(r, &t) != 0)
            return r->err;
        if (t.type == T_END)
            return in_group ? fail(r) : 0;
        if (special(&t, ',')) {
            (void)next(r, &t);
            continue;
        }
        if (in_group && special(&t, ';')) {
            (void)next(r, &t);
            return 0;
        }
        if (read_address(r, in_group) != 0)
            return r->err;
        if (peek(r, &t) != 0)
            return r->err;
        if (t.type != T_END && !special(&t, ',') && !(in_group && special(&t, ';')))
            return fail(r);
    }
}

/* Offset of the first byte no header value may hold, or n. */
static size_t first_bad_byte(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
            return i;
        size_t k = pst_utf8_seq(p + i, n - i);
        if (k == 0)
            return i;
        i += k;
    }
    return n;
}

int pst_addrlist_parse(const uint8_t *value, size_t len, pst_addrlist_fn fn, void *user,
                       size_t *err_at) {
    if (err_at)
        *err_at = 0;
    if ((value == NULL && len > 0) || fn == NULL)
        return PST_E_INVAL;
    if (len > PST_ADDRLIST_VALUE_MAX)
        return PST_E_TOOBIG;
    reader r = {.p = value, .n = len, .fn = fn, .user = user};
    size_t bad = first_bad_byte(value, len);
    if (bad < len) {
        if (err_at)
            *err_at = bad;
        return PST_E_MALFORMED;
    }
    int rc = read_list(&r, false);
    if (rc != 0 && err_at)
        *err_at = r.i;
    return rc;
}
