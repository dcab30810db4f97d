/* SMTP submission's wire side (pst_smtp.h): the input machine (command
 * lines, DATA with dot-unstuffing, bare CR/LF detection and size count),
 * the command parser and AUTH's decoders. */
#include <sodium.h>
#include <string.h>

#include "pst_smtp.h"
#include "pst_utf8.h"

/* ---- input machine ------------------------------------------------------- */

enum { C_TEXT = 0, C_CR };
/* DATA: at a line start, after a line-start ".", after ".\r", mid-line,
 * after a mid-line "\r", after a line-start "\r", end seen */
enum { D_LS = 0, D_DOT, D_DOT_CR, D_MID, D_CR, D_LS_CR, D_END };

void pst_smtp_in_init(pst_smtp_in *in) { memset(in, 0, sizeof *in); }

void pst_smtp_in_data(pst_smtp_in *in, uint64_t cap) {
    in->data = true;
    in->state = D_LS;
    in->cap = cap;
    in->count = 0;
    in->flags = 0;
    in->in_header = true;
    in->header_bytes = 0;
    in->len = 0;
}

static void emit(pst_smtp_in *in, uint8_t c) {
    in->count++;
    if (c == 0)
        in->flags |= PST_SMTP_DATA_NUL;
    if (c >= 0x80)
        in->flags |= in->in_header ? PST_SMTP_DATA_8BIT_HEADER : PST_SMTP_DATA_8BIT_BODY;
    if (in->in_header)
        in->header_bytes++;
    if (in->count > in->cap) {
        in->flags |= PST_SMTP_DATA_TOO_BIG;
        return;
    }
    in->line[in->len++] = c;
}

static void bare(pst_smtp_in *in) { in->flags |= PST_SMTP_DATA_BARE_EOL; }

/* One byte of DATA in state in->state. */
static void data_byte(pst_smtp_in *in, uint8_t c) {
    for (;;) {
        switch (in->state) {
        case D_LS:
            if (c == '.') {
                in->state = D_DOT;
            } else if (c == '\r') {
                in->state = D_LS_CR;
            } else {
                if (c == '\n')
                    bare(in);
                emit(in, c);
                in->state = D_MID;
            }
            return;
        case D_DOT:
            if (c == '\r') {
                in->state = D_DOT_CR;
                return;
            }
            /* the leading dot was stuffing: it is dropped */
            in->state = D_MID;
            continue;
        case D_DOT_CR:
            if (c == '\n') {
                in->state = D_END;
                return;
            }
            /* ".\r" then something else: the dot was stuffing, the CR bare */
            bare(in);
            emit(in, '\r');
            in->state = D_MID;
            continue;
        case D_LS_CR:
        case D_CR:
            if (c == '\n') {
                bool empty = in->state == D_LS_CR;
                emit(in, '\r');
                emit(in, '\n');
                if (empty)
                    in->in_header = false;
                in->state = D_LS;
                return;
            }
            bare(in);
            emit(in, '\r');
            in->state = D_MID;
            continue;
        case D_MID:
            if (c == '\r') {
                in->state = D_CR;
                return;
            }
            if (c == '\n') {
                bare(in);
                /* not a line start: only CRLF makes one */
            }
            emit(in, c);
            return;
        default:
            return;
        }
    }
}

/* In the body, mid-line: the bytes before the next CR or LF, at most
 * room, none past the cap, taken at once. What data_byte would do for each
 * (emit: count, flags, copy) is done for the run as a whole. Returns the
 * bytes taken (0: the next byte needs data_byte). */
static size_t data_run(pst_smtp_in *in, const uint8_t *p, size_t n, size_t room) {
    if (in->state != D_MID || in->in_header)
        return 0;
    size_t k = n < room ? n : room;
    if (in->count + k > in->cap)
        return 0; /* past the cap: byte by byte, as before */
    const uint8_t *cr = memchr(p, '\r', k);
    k = cr ? (size_t)(cr - p) : k;
    const uint8_t *lf = memchr(p, '\n', k);
    k = lf ? (size_t)(lf - p) : k;
    uint8_t any = 0;
    for (size_t j = 0; j < k; j++) /* vectorised: one OR per byte */
        any |= p[j];
    if (any & 0x80)
        in->flags |= PST_SMTP_DATA_8BIT_BODY;
    if (k > 0 && memchr(p, 0, k) != NULL)
        in->flags |= PST_SMTP_DATA_NUL;
    memcpy(in->line + in->len, p, k);
    in->len += k;
    in->count += k;
    return k;
}

static void data_feed(pst_smtp_in *in, const uint8_t *p, size_t n, size_t *used,
                      pst_smtp_event *ev) {
    size_t i = 0;
    in->len = 0;
    /* each byte emits at most three ("\r" withheld twice, then itself) */
    while (i < n && in->len + 3 <= sizeof in->line && in->state != D_END) {
        /* the common case, a body line, at once (a byte loop here was a
         * fifth of a sender's CPU for a 20 MiB message) */
        size_t k = data_run(in, p + i, n - i, sizeof in->line - 3 - in->len);
        if (k > 0) {
            i += k;
            continue;
        }
        data_byte(in, p[i++]);
    }
    *used = i;
    ev->line = in->line;
    ev->len = in->len;
    if (in->state != D_END) {
        ev->kind = in->len > 0 ? PST_SMTP_EV_DATA : PST_SMTP_EV_NONE;
        return;
    }
    /* the last bytes come with the end */
    ev->kind = PST_SMTP_EV_DATA_END;
    ev->data_flags = in->flags;
    ev->data_bytes = in->count;
    ev->header_bytes = in->in_header ? (size_t)in->count : in->header_bytes;
    in->data = false;
    in->state = C_TEXT;
    in->bad = in->overflow = false;
    in->ended = true;
}

void pst_smtp_in_feed(pst_smtp_in *in, const uint8_t *p, size_t n, size_t *used,
                      pst_smtp_event *ev) {
    memset(ev, 0, sizeof *ev);
    *used = 0;
    if (in->ended) { /* the event that handed them out is over */
        in->ended = false;
        in->len = 0;
    }
    if (in->data) {
        data_feed(in, p, n, used, ev);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\n') {
            *used = i + 1;
            ev->line = in->line;
            ev->len = in->len;
            ev->kind = in->state != C_CR ? PST_SMTP_EV_BARE_LF
                       : in->overflow    ? PST_SMTP_EV_LONG_LINE
                       : in->bad         ? PST_SMTP_EV_BAD_LINE
                                         : PST_SMTP_EV_LINE;
            in->state = C_TEXT;
            in->len = 0;
            in->bad = in->overflow = false;
            return;
        }
        if (in->state == C_CR)
            in->bad = true; /* the CR before this byte was not a line end */
        if (c == '\r') {
            in->state = C_CR;
            continue;
        }
        in->state = C_TEXT;
        if (in->len < sizeof in->line)
            in->line[in->len++] = c;
        else
            in->overflow = true;
    }
    *used = n;
}

/* ---- commands ------------------------------------------------------------ */

static char upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c; }

static bool prefix_ci(const char *s, size_t len, const char *word) {
    size_t w = strlen(word);
    if (len < w)
        return false;
    for (size_t i = 0; i < w; i++)
        if (upper(s[i]) != word[i])
            return false;
    return true;
}

static const struct {
    const char *name;
    pst_smtp_verb verb;
} verbs[] = {
    {"EHLO", PST_SMTP_CMD_EHLO}, {"HELO", PST_SMTP_CMD_HELO}, {"MAIL", PST_SMTP_CMD_MAIL},
    {"RCPT", PST_SMTP_CMD_RCPT}, {"DATA", PST_SMTP_CMD_DATA}, {"RSET", PST_SMTP_CMD_RSET},
    {"NOOP", PST_SMTP_CMD_NOOP}, {"QUIT", PST_SMTP_CMD_QUIT}, {"VRFY", PST_SMTP_CMD_VRFY},
    {"HELP", PST_SMTP_CMD_HELP}, {"AUTH", PST_SMTP_CMD_AUTH}, {"STARTTLS", PST_SMTP_CMD_STARTTLS},
    {"BDAT", PST_SMTP_CMD_BDAT}, {"LHLO", PST_SMTP_CMD_LHLO},
};

/* A mailbox character: printable ASCII other than the ones that delimit a
 * path or a parameter, or (SMTPUTF8) any byte of UTF-8. */
static bool mailbox_char(uint8_t c, bool utf8_ok, bool *nonascii) {
    if (c >= 0x80) {
        *nonascii = true;
        return utf8_ok;
    }
    return c > ' ' && c < 0x7f && c != '<' && c != '>' && c != '(' && c != ')' && c != ',' &&
           c != ';' && c != ':' && c != '\\' && c != '[' && c != ']';
}

/* "<" [route ":"] local "@" domain ">" at s[0..len) (exactly); mailbox into
 * out. null_ok: "<>" allowed (MAIL). Returns PST_SMTP_PARSE_*. */
static int parse_path(const char *s, size_t len, bool null_ok, bool utf8_ok, char *out) {
    out[0] = '\0';
    if (len < 2 || s[0] != '<' || s[len - 1] != '>')
        return PST_SMTP_PARSE_SYNTAX;
    s++;
    len -= 2;
    if (len == 0)
        return null_ok ? PST_SMTP_PARSE_OK : PST_SMTP_PARSE_PATH;
    if (s[0] == '@') { /* a source route "@a,@b:" is ignored (RFC 5321 C) */
        const char *colon = memchr(s, ':', len);
        if (colon == NULL)
            return PST_SMTP_PARSE_PATH;
        len -= (size_t)(colon + 1 - s);
        s = colon + 1;
    }
    if (len == 0 || len > PST_SMTP_PATH_MAX)
        return PST_SMTP_PARSE_PATH;
    const char *at = NULL;
    bool nonascii = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '@') {
            if (at != NULL)
                return PST_SMTP_PARSE_PATH;
            at = s + i;
        } else if (!mailbox_char((uint8_t)s[i], utf8_ok, &nonascii)) {
            return nonascii && !utf8_ok ? PST_SMTP_PARSE_NONASCII : PST_SMTP_PARSE_PATH;
        }
    }
    if (at == NULL || at == s || at == s + len - 1 || s[0] == '.' || at[-1] == '.' ||
        at[1] == '.' || s[len - 1] == '.')
        return PST_SMTP_PARSE_PATH;
    if (nonascii && !pst_utf8_valid((const uint8_t *)s, len))
        return PST_SMTP_PARSE_PATH;
    memcpy(out, s, len);
    out[len] = '\0';
    return PST_SMTP_PARSE_OK;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out) {
    if (n == 0 || n > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* MAIL's parameters: s[0..len), words separated by single spaces. */
static int mail_params(const char *s, size_t len, pst_smtp_cmd *cmd) {
    size_t i = 0;
    while (i < len) {
        const char *w = s + i;
        const char *sp = memchr(w, ' ', len - i);
        size_t wl = sp ? (size_t)(sp - w) : len - i;
        i += wl + 1;
        if (wl == 0)
            return PST_SMTP_PARSE_SYNTAX;
        if (prefix_ci(w, wl, "SIZE=")) {
            if (cmd->has_size || !parse_u64(w + 5, wl - 5, &cmd->size))
                return PST_SMTP_PARSE_PARAM;
            cmd->has_size = true;
        } else if (prefix_ci(w, wl, "BODY=")) {
            if (cmd->body != PST_SMTP_BODY_NONE)
                return PST_SMTP_PARSE_PARAM;
            if (wl == 9 && prefix_ci(w + 5, 4, "7BIT"))
                cmd->body = PST_SMTP_BODY_7BIT;
            else if (wl == 13 && prefix_ci(w + 5, 8, "8BITMIME"))
                cmd->body = PST_SMTP_BODY_8BITMIME;
            else
                return PST_SMTP_PARSE_PARAM;
        } else if (wl == 8 && prefix_ci(w, wl, "SMTPUTF8")) {
            if (cmd->smtputf8)
                return PST_SMTP_PARSE_PARAM;
            cmd->smtputf8 = true;
        } else if (prefix_ci(w, wl, "AUTH=")) {
            /* RFC 4954 5: the submitter's identity; ours is the session's */
        } else {
            return PST_SMTP_PARSE_PARAM;
        }
    }
    return PST_SMTP_PARSE_OK;
}

/* "FROM:" / "TO:", optional spaces, "<path>", then parameters. */
static int parse_mail_rcpt(const char *s, size_t len, bool utf8_ok, pst_smtp_cmd *cmd) {
    bool mail = cmd->verb == PST_SMTP_CMD_MAIL;
    const char *kw = mail ? "FROM:" : "TO:";
    size_t kl = strlen(kw);
    if (!prefix_ci(s, len, kw))
        return PST_SMTP_PARSE_SYNTAX;
    s += kl;
    len -= kl;
    while (len > 0 && *s == ' ') {
        s++;
        len--;
    }
    const char *gt = memchr(s, '>', len);
    if (len == 0 || *s != '<' || gt == NULL)
        return PST_SMTP_PARSE_SYNTAX;
    size_t plen = (size_t)(gt + 1 - s);
    const char *rest = gt + 1;
    size_t rlen = len - plen;
    if (rlen > 0 && *rest != ' ')
        return PST_SMTP_PARSE_SYNTAX;
    if (rlen > 0) {
        rest++;
        rlen--;
    }
    if (mail) {
        int rc = mail_params(rest, rlen, cmd);
        if (rc != PST_SMTP_PARSE_OK)
            return rc;
        utf8_ok = cmd->smtputf8;
    } else if (rlen > 0) {
        return PST_SMTP_PARSE_PARAM;
    }
    return parse_path(s, plen, mail, utf8_ok, cmd->arg);
}

int pst_smtp_cmd_parse(const uint8_t *line, size_t len, bool utf8_ok, pst_smtp_cmd *cmd) {
    memset(cmd, 0, sizeof *cmd);
    const char *s = (const char *)line;
    size_t vl = 0;
    while (vl < len && s[vl] != ' ')
        vl++;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (vl == strlen(verbs[i].name) && prefix_ci(s, vl, verbs[i].name))
            cmd->verb = verbs[i].verb;
    if (cmd->verb == PST_SMTP_CMD_UNKNOWN)
        return PST_SMTP_PARSE_UNKNOWN;
    const char *a = s + vl;
    size_t al = len - vl;
    if (al > 0) { /* exactly one space between verb and arguments */
        a++;
        al--;
        if (al == 0)
            return PST_SMTP_PARSE_SYNTAX;
    }
    for (size_t i = 0; i < al; i++) /* printable ASCII or UTF-8, no controls */
        if ((uint8_t)a[i] < ' ' || a[i] == 0x7f)
            return PST_SMTP_PARSE_SYNTAX;
    int rc = PST_SMTP_PARSE_OK;
    switch (cmd->verb) {
    case PST_SMTP_CMD_EHLO:
    case PST_SMTP_CMD_HELO:
    case PST_SMTP_CMD_LHLO:
        if (al == 0 || al > PST_SMTP_DOMAIN_MAX || memchr(a, ' ', al) != NULL)
            return PST_SMTP_PARSE_SYNTAX;
        memcpy(cmd->arg, a, al);
        cmd->arg[al] = '\0';
        break;
    case PST_SMTP_CMD_MAIL:
    case PST_SMTP_CMD_RCPT:
        rc = parse_mail_rcpt(a, al, utf8_ok, cmd);
        break;
    case PST_SMTP_CMD_AUTH: {
        const char *sp = memchr(a, ' ', al);
        size_t ml = sp ? (size_t)(sp - a) : al;
        if (ml == 0 || ml > PST_SMTP_MECH_MAX)
            return PST_SMTP_PARSE_SYNTAX;
        for (size_t i = 0; i < ml; i++)
            cmd->arg[i] = upper(a[i]);
        cmd->arg[ml] = '\0';
        if (sp != NULL) {
            size_t el = al - ml - 1;
            if (el == 0 || el >= sizeof cmd->extra || memchr(sp + 1, ' ', el) != NULL)
                return PST_SMTP_PARSE_SYNTAX;
            memcpy(cmd->extra, sp + 1, el);
            cmd->extra[el] = '\0';
            cmd->has_extra = true;
        }
        break;
    }
    case PST_SMTP_CMD_DATA:
    case PST_SMTP_CMD_RSET:
    case PST_SMTP_CMD_QUIT:
    case PST_SMTP_CMD_STARTTLS:
        if (al != 0)
            return PST_SMTP_PARSE_SYNTAX;
        break;
    default: /* NOOP, HELP, VRFY, BDAT: arguments ignored */
        break;
    }
    if (rc != PST_SMTP_PARSE_OK) {
        pst_smtp_verb v = cmd->verb;
        memset(cmd, 0, sizeof *cmd);
        cmd->verb = v;
    }
    return rc;
}

/* ---- AUTH ---------------------------------------------------------------- */

/* base64 (RFC 4648, padded) into out[cap]; PST_E_INVAL when bad or too big. */
static int b64_decode(const char *b64, uint8_t *out, size_t cap, size_t *len) {
    size_t bl = strlen(b64);
    *len = 0;
    if (bl == 0 || bl > 4 * ((cap + 2) / 3))
        return PST_E_INVAL;
    const char *end = NULL;
    if (sodium_base642bin(out, cap, b64, bl, NULL, len, &end, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        end != b64 + bl) {
        sodium_memzero(out, cap);
        *len = 0;
        return PST_E_INVAL;
    }
    return PST_OK;
}

int pst_smtp_auth_plain_decode(const char *b64, char user[PST_SMTP_AUTH_FIELD_MAX + 1],
                               char pass[PST_SMTP_AUTH_FIELD_MAX + 1]) {
    uint8_t buf[3 * PST_SMTP_AUTH_FIELD_MAX + 2];
    size_t n = 0;
    memset(user, 0, PST_SMTP_AUTH_FIELD_MAX + 1);
    memset(pass, 0, PST_SMTP_AUTH_FIELD_MAX + 1);
    if (b64_decode(b64, buf, sizeof buf, &n) != PST_OK)
        return PST_E_INVAL;
    int rc = PST_E_INVAL;
    const uint8_t *z1 = memchr(buf, 0, n);
    const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, n - (size_t)(z1 + 1 - buf)) : NULL;
    if (z2 != NULL) {
        size_t zl = (size_t)(z1 - buf), ul = (size_t)(z2 - z1 - 1), pl = n - (size_t)(z2 + 1 - buf);
        bool authz_ok = zl == 0 || (zl == ul && memcmp(buf, z1 + 1, ul) == 0);
        if (authz_ok && ul > 0 && ul <= PST_SMTP_AUTH_FIELD_MAX && pl > 0 &&
            pl <= PST_SMTP_AUTH_FIELD_MAX && memchr(z2 + 1, 0, pl) == NULL) {
            memcpy(user, z1 + 1, ul);
            memcpy(pass, z2 + 1, pl);
            rc = PST_OK;
        }
    }
    sodium_memzero(buf, sizeof buf);
    if (rc != PST_OK) {
        sodium_memzero(user, PST_SMTP_AUTH_FIELD_MAX + 1);
        sodium_memzero(pass, PST_SMTP_AUTH_FIELD_MAX + 1);
    }
    return rc;
}

int pst_smtp_auth_b64_decode(const char *b64, char out[PST_SMTP_AUTH_FIELD_MAX + 1]) {
    uint8_t buf[PST_SMTP_AUTH_FIELD_MAX + 1];
    size_t n = 0;
    memset(out, 0, PST_SMTP_AUTH_FIELD_MAX + 1);
    int rc = b64_decode(b64, buf, sizeof buf, &n);
    if (rc == PST_OK && (n == 0 || n > PST_SMTP_AUTH_FIELD_MAX || memchr(buf, 0, n) != NULL))
        rc = PST_E_INVAL;
    if (rc == PST_OK)
        memcpy(out, buf, n);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

/* ---- header fields ------------------------------------------------------- */

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static bool addr_char(uint8_t c) {
    return c >= 0x80 || (c > ' ' && c < 0x7f && c != '<' && c != '>' && c != ',' && c != ';' &&
                         c != ':' && c != '"' && c != '(' && c != ')' && c != '[' && c != ']');
}

/* Whether addr occurs in v[0..n) with no address character around it. */
static bool value_names(const char *v, size_t n, const char *addr) {
    size_t al = strlen(addr);
    if (al == 0 || al > n)
        return false;
    for (size_t i = 0; i + al <= n; i++) {
        size_t k = 0;
        while (k < al && lower(v[i + k]) == lower(addr[k]))
            k++;
        if (k == al && (i == 0 || !addr_char((uint8_t)v[i - 1])) &&
            (i + al == n || !addr_char((uint8_t)v[i + al])))
            return true;
    }
    return false;
}

/* The field at h[*i..len): its first line and every folded line after it
 * (*f, *fl); *i moves past it. False at the empty line that ends the header
 * section, or at len. */
static bool next_field(const char *h, size_t len, size_t *i, const char **f, size_t *fl) {
    if (*i >= len)
        return false;
    size_t start = *i;
    do {
        const char *nl = memchr(h + *i, '\n', len - *i);
        *i = nl ? (size_t)(nl - h) + 1 : len;
    } while (*i < len && (h[*i] == ' ' || h[*i] == '\t'));
    *f = h + start;
    *fl = *i - start;
    return !((*f)[0] == '\n' || ((*f)[0] == '\r' && *fl >= 2 && (*f)[1] == '\n'));
}

int pst_smtp_header_names(const uint8_t *hdr, size_t len, const char *addr) {
    const char *h = (const char *)hdr;
    int found = 0;
    size_t i = 0, fl;
    const char *f;
    while (next_field(h, len, &i, &f, &fl)) {
        int kind = 0;
        if (fl >= 3 && lower(f[0]) == 't' && lower(f[1]) == 'o' && f[2] == ':')
            kind = 1;
        else if (fl >= 3 && lower(f[0]) == 'c' && lower(f[1]) == 'c' && f[2] == ':')
            kind = 2;
        if (kind != 0 && value_names(f + 3, fl - 3, addr) && (found == 0 || kind < found))
            found = kind;
    }
    return found;
}

int pst_smtp_header_next(const uint8_t *hdr, size_t len, const char *name, size_t *pos, char *out,
                         size_t cap) {
    if (cap == 0)
        return PST_E_INVAL;
    out[0] = '\0';
    const char *h = (const char *)hdr;
    size_t nl_len = strlen(name);
    size_t i = *pos, fl;
    const char *f;
    while (next_field(h, len, &i, &f, &fl)) {
        if (fl <= nl_len || f[nl_len] != ':')
            continue;
        size_t k = 0;
        while (k < nl_len && lower(f[k]) == lower(name[k]))
            k++;
        if (k != nl_len)
            continue;
        size_t o = 0;
        bool fits = true;
        for (size_t j = nl_len + 1; j < fl; j++) {
            char c = f[j];
            if (c == '\r' || c == '\n')
                continue;
            if (c == '\0' || o + 1 >= cap) {
                fits = false;
                break;
            }
            if (o == 0 && (c == ' ' || c == '\t'))
                continue;
            out[o++] = c;
        }
        while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
            o--;
        out[o] = '\0';
        if (!fits) {
            out[0] = '\0';
            continue;
        }
        *pos = i;
        return PST_OK;
    }
    *pos = len;
    return PST_E_NOTFOUND;
}
