/* libFuzzer target: From: and Authentication-Results of an Internet message
 * (proto/pst_authres.h), as LMTP reads them. Input: a header section as an
 * MTA hands it over. Checks: the From address, when there is one, is a
 * NUL-terminated local@domain of at most PST_ADDRLIST_ADDR_MAX bytes with a
 * lower-case domain at *domain_at; the verdict passes nothing when the
 * field is malformed or absent; a NUL in the section is refused; nothing
 * reads past the section or the scratch buffer (ASan). Breaks trap. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 70000)
        return 0;
    char *scratch = malloc(size + 1);
    check(scratch != NULL);
    char addr[PST_ADDRLIST_ADDR_MAX + 1];
    size_t at = 0;
    bool has_nul = size > 0 && memchr(data, 0, size) != NULL;
    int rc = pst_authres_from(data, size, scratch, size + 1, addr, &at);
    const char *domain = "example.com";
    if (rc == PST_OK) {
        check(!has_nul);
        size_t n = strlen(addr);
        check(n >= 3 && n <= PST_ADDRLIST_ADDR_MAX && at > 0 && at < n && addr[at - 1] == '@');
        for (const char *d = addr + at; *d; d++)
            check(!(*d >= 'A' && *d <= 'Z'));
        domain = addr + at;
    } else {
        check(addr[0] == '\0' && at == 0);
    }
    pst_authres_verdict v;
    rc = pst_authres_check(data, size, "mx.example.org", domain, scratch, size + 1, &v);
    check(rc == PST_OK || (rc == PST_E_MALFORMED && has_nul));
    if (rc != PST_OK || !v.found || v.malformed)
        check(!v.dmarc_pass && !v.dkim_aligned);
    if (size > 0)
        check(pst_authres_check(data, size, "mx.example.org", domain, scratch, size, &v) ==
              PST_E_INVAL);
    free(scratch);
    return 0;
}
