/* From: and Authentication-Results (RFC 8601) of an Internet message, for
 * LMTP's contact tiers (pst_authres.h). The field walk is pst_smtp_header_next
 * (one reader of header sections), the From address pst_addrlist_parse. */
#include <string.h>

#include "pst_authres.h"
#include "pst_smtp.h"

#define AR_TOKEN_MAX 255u    /* a kept value: id, method, result, domain */
#define AR_COMMENT_DEPTH 32u /* nested comments */

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

static bool ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (lower(*a) != lower(*b))
            return false;
    return *a == *b;
}

static bool section_ok(const uint8_t *hdr, size_t len, size_t scratch_cap) {
    return scratch_cap >= len + 1 && (len == 0 || memchr(hdr, 0, len) == NULL);
}

/* ---- From ----------------------------------------------------------------- */

typedef struct {
    unsigned n;
    char *addr;
} from_walk;

static int on_from(void *user, const char *addr, size_t len) {
    from_walk *w = user;
    if (++w->n == 1)
        memcpy(w->addr, addr, len + 1); /* len <= PST_ADDRLIST_ADDR_MAX */
    return 0;
}

int pst_authres_from(const uint8_t *hdr, size_t len, char *scratch, size_t scratch_cap,
                     char addr[PST_ADDRLIST_ADDR_MAX + 1], size_t *domain_at) {
    if (addr != NULL)
        addr[0] = '\0';
    if (domain_at != NULL)
        *domain_at = 0;
    if ((hdr == NULL && len > 0) || scratch == NULL || addr == NULL || domain_at == NULL)
        return PST_E_INVAL;
    if (scratch_cap < len + 1)
        return PST_E_INVAL;
    if (!section_ok(hdr, len, scratch_cap))
        return PST_E_MALFORMED;
    size_t pos = 0;
    if (pst_smtp_header_next(hdr, len, "From", &pos, scratch, scratch_cap) != PST_OK)
        return PST_E_NOTFOUND;
    from_walk w = {0, addr};
    int rc = pst_addrlist_parse((const uint8_t *)scratch, strlen(scratch), on_from, &w, NULL);
    const char *at = w.n == 1 ? strrchr(addr, '@') : NULL;
    /* a second From: which one would be the author? Neither. (The scratch
     * holds the whole section: no field is skipped for its size.) */
    if (rc != PST_OK || w.n != 1 || at == NULL || at[1] == '\0' || at[1] == '[' ||
        pst_smtp_header_next(hdr, len, "From", &pos, scratch, scratch_cap) == PST_OK) {
        addr[0] = '\0';
        return PST_E_MALFORMED;
    }
    for (char *d = (char *)at + 1; *d; d++)
        *d = lower(*d);
    *domain_at = (size_t)(at + 1 - addr);
    return PST_OK;
}

/* ---- Authentication-Results ------------------------------------------------ */

typedef struct {
    const char *p;
    bool bad;
} lexer;

static void skip_cfws(lexer *x) {
    for (;;) {
        while (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' || *x->p == '\n')
            x->p++;
        if (*x->p != '(')
            return;
        unsigned depth = 0;
        do {
            char c = *x->p;
            if (c == '\0' || (unsigned char)c < 0x09) {
                x->bad = true; /* unterminated comment */
                return;
            }
            if (c == '\\' && x->p[1] != '\0')
                x->p++;
            else if (c == '(' && ++depth > AR_COMMENT_DEPTH) {
                x->bad = true;
                return;
            } else if (c == ')')
                depth--;
            x->p++;
        } while (depth > 0);
    }
}

static bool is_keyword_char(char c, bool first) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return first ? alpha : alpha || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* A Keyword (RFC 8601: letters, digits, '-'; '_' as some verifiers write) into
 * out (lower-cased). */
static void keyword(lexer *x, char out[AR_TOKEN_MAX + 1]) {
    size_t n = 0;
    if (!is_keyword_char(*x->p, true)) {
        x->bad = true;
        out[0] = '\0';
        return;
    }
    while (is_keyword_char(*x->p, false)) {
        if (n == AR_TOKEN_MAX) {
            x->bad = true;
            break;
        }
        out[n++] = lower(*x->p++);
    }
    out[n] = '\0';
}

/* A value (RFC 2045 token or quoted string) or, for a pvalue, an address or
 * domain: printable ASCII up to white space, ';' or '('. Kept in out when it
 * fits (else out is "": nothing too long can match), always consumed. out
 * is a terminated string on every return, a refused value included. */
static void value(lexer *x, bool pvalue, char out[AR_TOKEN_MAX + 1]) {
    static const char tspecials[] = "()<>@,;:\\\"/[]?=";
    size_t n = 0;
    bool fits = true;
    out[0] = '\0';
    if (*x->p == '"') {
        x->p++;
        for (;;) {
            char c = *x->p;
            if (c == '\0' || ((unsigned char)c < 0x20 && c != '\t') || (unsigned char)c > 0x7e) {
                x->bad = true;
                out[0] = '\0'; /* the bytes kept so far have no end */
                return;
            }
            x->p++;
            if (c == '"')
                break;
            if (c == '\\') {
                c = *x->p;
                if (c == '\0') {
                    x->bad = true;
                    out[0] = '\0';
                    return;
                }
                x->p++;
            }
            if (n < AR_TOKEN_MAX)
                out[n++] = c;
            else
                fits = false;
        }
    } else {
        for (;;) {
            char c = *x->p;
            if ((unsigned char)c <= 0x20 || (unsigned char)c > 0x7e || c == ';' || c == '(' ||
                c == ')' || c == '"' || c == '\\' || (!pvalue && strchr(tspecials, c) != NULL))
                break;
            if (n < AR_TOKEN_MAX)
                out[n++] = c;
            else
                fits = false;
            x->p++;
        }
        if (n == 0) {
            x->bad = true;
            return;
        }
    }
    out[fits ? n : 0] = '\0';
}

static void expect(lexer *x, char c) {
    skip_cfws(x);
    if (*x->p != c)
        x->bad = true;
    else
        x->p++;
    skip_cfws(x);
}

/* d and f lower-case domains: equal, or one a subdomain of the other, and
 * both with a dot (never a bare top-level domain). */
static bool aligned(const char *d, const char *f) {
    if (strchr(d, '.') == NULL || strchr(f, '.') == NULL || d[0] == '.' || f[0] == '.')
        return false;
    size_t dl = strlen(d), fl = strlen(f);
    if (dl == fl)
        return strcmp(d, f) == 0;
    const char *lg = dl > fl ? d : f, *sh = dl > fl ? f : d;
    size_t ll = dl > fl ? dl : fl, sl = dl > fl ? fl : dl;
    return lg[ll - sl - 1] == '.' && strcmp(lg + ll - sl, sh) == 0;
}

static void lower_str(char *s) {
    for (; *s; s++)
        *s = lower(*s);
}

/* One method's result and the properties we read. */
typedef struct {
    char method[AR_TOKEN_MAX + 1], result[AR_TOKEN_MAX + 1];
    char d[AR_TOKEN_MAX + 1], i[AR_TOKEN_MAX + 1], from[AR_TOKEN_MAX + 1];
} resinfo;

static void judge(const resinfo *r, const char *from_domain, pst_authres_verdict *out) {
    if (strcmp(r->result, "pass") != 0)
        return;
    if (strcmp(r->method, "dmarc") == 0) {
        if (r->from[0] == '\0' || strcmp(r->from, from_domain) == 0)
            out->dmarc_pass = true;
    } else if (strcmp(r->method, "dkim") == 0) {
        const char *dom = r->d;
        if (dom[0] == '\0') {
            const char *at = strrchr(r->i, '@');
            dom = at != NULL ? at + 1 : "";
        }
        if (dom[0] != '\0' && aligned(dom, from_domain))
            out->dkim_aligned = true;
        else
            out->dkim_unaligned = true;
    }
}

/* Parses the value of a field known to be ours (after its authserv-id). */
static void parse_results(lexer *x, const char *from_domain, pst_authres_verdict *out) {
    char tmp[AR_TOKEN_MAX + 1];
    skip_cfws(x);
    if (*x->p >= '0' && *x->p <= '9') { /* authres-version */
        while (*x->p >= '0' && *x->p <= '9')
            x->p++;
        skip_cfws(x);
    }
    unsigned count = 0;
    bool none = false;
    while (!x->bad && *x->p != '\0') {
        if (none || ++count > PST_AUTHRES_RESULTS_MAX) {
            x->bad = true; /* "none" stands alone */
            break;
        }
        expect(x, ';');
        resinfo r;
        memset(&r, 0, sizeof r);
        keyword(x, r.method);
        skip_cfws(x);
        if (count == 1 && strcmp(r.method, "none") == 0 && *x->p == '\0') {
            none = true;
            break;
        }
        if (*x->p == '/') { /* method-version */
            x->p++;
            skip_cfws(x);
            if (!(*x->p >= '0' && *x->p <= '9'))
                x->bad = true;
            while (*x->p >= '0' && *x->p <= '9')
                x->p++;
        }
        expect(x, '=');
        keyword(x, r.result);
        skip_cfws(x);
        while (!x->bad && *x->p != '\0' && *x->p != ';') {
            char ptype[AR_TOKEN_MAX + 1], prop[AR_TOKEN_MAX + 1];
            keyword(x, ptype);
            skip_cfws(x);
            if (strcmp(ptype, "reason") == 0 && *x->p == '=') {
                expect(x, '=');
                value(x, false, tmp);
                skip_cfws(x);
                continue;
            }
            expect(x, '.');
            keyword(x, prop);
            expect(x, '=');
            char *dst = tmp;
            if (strcmp(ptype, "header") == 0)
                dst = strcmp(prop, "d") == 0      ? r.d
                      : strcmp(prop, "i") == 0    ? r.i
                      : strcmp(prop, "from") == 0 ? r.from
                                                  : tmp;
            value(x, true, dst);
            lower_str(dst);
            skip_cfws(x);
        }
        if (!x->bad)
            judge(&r, from_domain, out);
    }
    if (count == 0 && !x->bad)
        x->bad = true; /* an id and nothing else */
}

bool pst_authres_id_ok(const char *s) {
    if (s == NULL || s[0] == '\0' || strlen(s) > PST_AUTHRES_ID_MAX)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s > 0x7e || strchr(";()\"\\", *s))
            return false;
    return true;
}

int pst_authres_check(const uint8_t *hdr, size_t len, const char *authserv_id,
                      const char *from_domain, char *scratch, size_t scratch_cap,
                      pst_authres_verdict *out) {
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if ((hdr == NULL && len > 0) || out == NULL || from_domain == NULL || scratch == NULL ||
        !pst_authres_id_ok(authserv_id) || scratch_cap < len + 1)
        return PST_E_INVAL;
    if (!section_ok(hdr, len, scratch_cap))
        return PST_E_MALFORMED;
    size_t pos = 0;
    while (pst_smtp_header_next(hdr, len, "Authentication-Results", &pos, scratch, scratch_cap) ==
           PST_OK) {
        lexer x = {scratch, false};
        char id[AR_TOKEN_MAX + 1];
        skip_cfws(&x);
        value(&x, false, id);
        if (x.bad || !ieq(id, authserv_id))
            continue; /* another server's, or anyone's: not ours to believe */
        out->found = true;
        parse_results(&x, from_domain, out);
        if (x.bad) {
            bool found = out->found;
            memset(out, 0, sizeof *out);
            out->found = found;
            out->malformed = true;
        }
        break; /* the topmost of ours only */
    }
    return PST_OK;
}
