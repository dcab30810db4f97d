/* libFuzzer target: the RFC 5322 address-list reader (proto/addrlist.c),
 * which `postern sendmail -t` runs over the To:, Cc: and Bcc: of a message
 * from any program. Checks beyond "no crash": every address handed out is
 * NUL-terminated, 3..PST_ADDRLIST_ADDR_MAX bytes, holds an '@' and no
 * CR, LF or NUL; a walk is deterministic; and a list that parsed, written
 * back as "a1, a2, ...", parses to exactly the same addresses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_addrlist.h"

#define KEEP_MAX 64u

typedef struct {
    char addr[KEEP_MAX][PST_ADDRLIST_ADDR_MAX + 1];
    size_t n;
} list;

static int keep(void *user, const char *addr, size_t len) {
    list *l = user;
    if (len < 3 || len > PST_ADDRLIST_ADDR_MAX || addr[len] != '\0' || strlen(addr) != len ||
        memchr(addr, '@', len) == NULL || memchr(addr, '\r', len) || memchr(addr, '\n', len))
        abort();
    if (l->n < KEEP_MAX)
        memcpy(l->addr[l->n], addr, len + 1);
    l->n++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static list a, b;
    a.n = b.n = 0;
    size_t at_a = 0, at_b = 0;
    int rc = pst_addrlist_parse(data, size, keep, &a, &at_a);
    int rc2 = pst_addrlist_parse(data, size, keep, &b, &at_b);
    if (rc != rc2 || at_a != at_b || a.n != b.n)
        abort();
    if (rc != 0 && at_a > size)
        abort();
    if (rc != 0 || a.n == 0 || a.n > KEEP_MAX)
        return 0;
    static char joined[KEEP_MAX * (PST_ADDRLIST_ADDR_MAX + 2)];
    size_t len = 0;
    for (size_t i = 0; i < a.n; i++) {
        size_t l = strlen(a.addr[i]);
        memcpy(joined + len, a.addr[i], l);
        len += l;
        if (i + 1 < a.n) {
            memcpy(joined + len, ", ", 2);
            len += 2;
        }
    }
    b.n = 0;
    if (pst_addrlist_parse((const uint8_t *)joined, len, keep, &b, NULL) != 0 || b.n != a.n)
        abort();
    for (size_t i = 0; i < a.n; i++)
        if (strcmp(a.addr[i], b.addr[i]) != 0)
            abort();
    return 0;
}
