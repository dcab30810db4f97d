/* RFC 5322 address lists (proto/pst_addrlist.h): what mail programs write
 * parses to the right addr-specs, and hostile values (unterminated quotes
 * and comments, 10k commas, NUL, overlong values and addresses, deep
 * comments) are refused or walked in bounded time without a crash. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "pst_addrlist.h"

#define GOT_MAX 16

typedef struct {
    char addr[GOT_MAX][PST_ADDRLIST_ADDR_MAX + 1];
    unsigned n, calls;
} got;

static int collect(void *user, const char *addr, size_t len) {
    got *g = user;
    cr_assert_eq(strlen(addr), len);
    cr_assert_geq(len, 3);
    g->calls++;
    if (g->n < GOT_MAX)
        strcpy(g->addr[g->n++], addr);
    return 0;
}

static int parse(const char *s, got *g) {
    memset(g, 0, sizeof *g);
    return pst_addrlist_parse((const uint8_t *)s, strlen(s), collect, g, NULL);
}

/* s parses into exactly the addresses given (NULL-terminated). */
static void expect(const char *s, ...) {
    got g;
    int rc = parse(s, &g);
    cr_assert_eq(rc, 0, "'%s' refused (%d)", s, rc);
    va_list ap;
    va_start(ap, s);
    unsigned i = 0;
    for (const char *a; (a = va_arg(ap, const char *)) != NULL; i++) {
        cr_assert_lt(i, g.n, "'%s': only %u addresses", s, g.n);
        cr_assert_str_eq(g.addr[i], a, "'%s': address %u", s, i);
    }
    va_end(ap);
    cr_assert_eq(g.n, i, "'%s': %u addresses, expected %u", s, g.n, i);
}

static void refused(const char *s) {
    got g;
    int rc = parse(s, &g);
    cr_assert_eq(rc, PST_E_MALFORMED, "'%s' gave %d", s, rc);
}

Test(addrlist, what_mail_programs_write) {
    expect("a@example.org", "a@example.org", NULL);
    expect("  a@example.org  ", "a@example.org", NULL);
    expect("Alice <a@example.org>", "a@example.org", NULL);
    expect("\"Doe, John\" <j@x.org>, b@y.org", "j@x.org", "b@y.org", NULL);
    expect("J. Doe <j@x.org>", "j@x.org", NULL);
    expect("<a@x.org>", "a@x.org", NULL);
    expect("\"\" <a@x.org>", "a@x.org", NULL);
    expect("a@x.org (Alice (at home)), b@y.org (Bob)", "a@x.org", "b@y.org", NULL);
    expect("=?UTF-8?Q?J=C3=B6rg?= <j@x.org>", "j@x.org", NULL);
    expect("J\xc3\xb6rg <j@x.org>", "j@x.org", NULL); /* RFC 6532 */
    expect("a@x.org,\r\n b@y.org,\n\tc@z.org", "a@x.org", "b@y.org", "c@z.org", NULL);
    expect("Alice\r\n <a@x.org>", "a@x.org", NULL);
    expect("first . last @ x . org", "first.last@x.org", NULL); /* obsolete CFWS */
    expect("\"john doe\"@x.org", "\"john doe\"@x.org", NULL);
    expect("a@[192.0.2.1]", "a@[192.0.2.1]", NULL);
    expect("<@relay.example,@r2.example:a@x.org>", "a@x.org", NULL);
}

Test(addrlist, groups_and_empty_elements) {
    expect("undisclosed-recipients:;", NULL);
    expect("Undisclosed recipients: ;", NULL);
    expect("team: a@x.org, Bob <b@y.org>;, c@z.org", "a@x.org", "b@y.org", "c@z.org", NULL);
    expect("team: a@x.org; (comment)", "a@x.org", NULL);
    expect("", NULL);
    expect("   ", NULL);
    expect(", , a@x.org,,", "a@x.org", NULL);
    expect("team:, a@x.org,;", "a@x.org", NULL);
}

Test(addrlist, refused) {
    refused("alice");                   /* no domain */
    refused("alice@");                  /* empty domain */
    refused("@x.org");                  /* no local part */
    refused("a@x.org b@y.org");         /* no comma */
    refused("a@x.org <b@y.org>");       /* an address as a display name */
    refused("\"unterminated@x.org");    /* quote */
    refused("Alice <a@x.org");          /* angle */
    refused("a@x.org (comment");        /* comment */
    refused("a@x.org)");                /* stray ')' */
    refused("a@[192.0.2.1");            /* domain literal */
    refused("a@[1[2]");                 /* '[' inside a literal */
    refused("team: a@x.org");           /* group without ';' */
    refused("outer: inner: a@x.org;;"); /* nested group */
    refused(": a@x.org;");              /* group without a name */
    refused("<>");                      /* null path */
    refused("a..b@x.org");              /* empty word in a local part */
    refused("a.@x.org");                /* dot at the end */
    refused("a@x..org");                /* empty label */
    refused(". <a@x.org>");             /* phrase of a dot */
    refused("a@x.org\\");               /* stray backslash */
    refused("Alice <a@x.org> >");       /* stray '>' */
    refused("a@x.org\x01");             /* control character */
    refused("a@x.org\x7f");             /* DEL */
    refused("J\xc3 <j@x.org>");         /* cut UTF-8 */
    refused("\"a\\");                   /* escape at the end */
}

Test(addrlist, nul_is_refused_where_it_stands) {
    static const uint8_t v[] = "a@x.org, b\0@y.org";
    got g;
    memset(&g, 0, sizeof g);
    size_t at = 99;
    cr_assert_eq(pst_addrlist_parse(v, sizeof v - 1, collect, &g, &at), PST_E_MALFORMED);
    cr_assert_eq(at, 10);
    cr_assert_eq(g.calls, 0, "nothing is handed out before the bytes are checked");
}

Test(addrlist, ten_thousand_commas) {
    size_t n = 10000;
    char *s = malloc(n + 32);
    memset(s, ',', n);
    strcpy(s + n, "a@x.org");
    got g;
    cr_assert_eq(parse(s, &g), 0);
    cr_assert_eq(g.calls, 1);
    /* and 10k addresses: each one handed out */
    size_t per = strlen("a@x.org,");
    char *t = malloc(5000 * per + 1);
    for (size_t i = 0; i < 5000; i++)
        memcpy(t + i * per, "a@x.org,", per);
    t[5000 * per] = '\0';
    cr_assert_eq(parse(t, &g), 0);
    cr_assert_eq(g.calls, 5000);
    free(s);
    free(t);
}

Test(addrlist, overlong) {
    /* a value over the cap, whatever it holds */
    size_t n = PST_ADDRLIST_VALUE_MAX + 1;
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, ' ', n);
    s[n] = '\0';
    got g;
    cr_assert_eq(parse(s, &g), PST_E_TOOBIG);
    /* an addr-spec over PST_ADDRLIST_ADDR_MAX */
    memset(s, 'a', 300);
    strcpy(s + 300, "@x.org");
    cr_assert_eq(parse(s, &g), PST_E_TOOBIG);
    /* exactly at the cap: accepted */
    memset(s, 'a', PST_ADDRLIST_ADDR_MAX - 6);
    strcpy(s + PST_ADDRLIST_ADDR_MAX - 6, "@x.org");
    cr_assert_eq(parse(s, &g), 0);
    cr_assert_eq(strlen(g.addr[0]), PST_ADDRLIST_ADDR_MAX);
    /* a long display name is no address: it does not count */
    memset(s, 'n', 1000);
    strcpy(s + 1000, " <a@x.org>");
    expect(s, "a@x.org", NULL);
    /* comments nested past the cap */
    char deep[200] = "a@x.org ";
    size_t l = strlen(deep);
    for (unsigned i = 0; i < PST_ADDRLIST_COMMENT_DEPTH_MAX + 1; i++)
        deep[l++] = '(';
    for (unsigned i = 0; i < PST_ADDRLIST_COMMENT_DEPTH_MAX + 1; i++)
        deep[l++] = ')';
    deep[l] = '\0';
    refused(deep);
    free(s);
}

static int stop_at_second(void *user, const char *addr, size_t len) {
    (void)addr;
    (void)len;
    return ++*(int *)user == 2 ? PST_E_RANGE : 0;
}

Test(addrlist, callback_stops_the_walk) {
    int calls = 0;
    const char *s = "a@x.org, b@x.org, c@x.org";
    cr_assert_eq(pst_addrlist_parse((const uint8_t *)s, strlen(s), stop_at_second, &calls, NULL),
                 PST_E_RANGE);
    cr_assert_eq(calls, 2);
    cr_assert_eq(pst_addrlist_parse(NULL, 1, stop_at_second, &calls, NULL), PST_E_INVAL);
    cr_assert_eq(pst_addrlist_parse((const uint8_t *)s, 1, NULL, NULL, NULL), PST_E_INVAL);
}
