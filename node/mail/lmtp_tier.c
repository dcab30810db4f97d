/* LMTP: the contact tier of an Internet message (docs/LMTP.md, "Contacts").
 * The From: address earns the tier of the contact carrying it only when the
 * mail server in front vouches for it: the topmost Authentication-Results
 * field of the configured lmtp_authserv_id says dmarc=pass, or dkim=pass
 * for a domain aligned with the From domain (proto/authres.c reads both).
 * Without lmtp_authserv_id no message earns a tier: a From: line alone is
 * anybody's to write. A revoked contact's address earns nothing (the
 * message is judged by its stamp, as a stranger's). */
#include <stdio.h>

#include "pst_authres.h"
#include "pst_store.h"
#include "smtp_int.h"

pst_store_tier pst_lmtp__contact_tier(pst_node *n, const uint8_t *hdr, size_t len, char *scratch,
                                      size_t cap) {
    if (n->cfg.lmtp_authserv_id[0] == '\0')
        return 0;
    char from[PST_ADDRLIST_ADDR_MAX + 1];
    size_t dom_at;
    if (pst_authres_from(hdr, len, scratch, cap, from, &dom_at) != PST_OK)
        return 0;
    uint8_t pk[32];
    pst_store_tier tier;
    if (pst_store_contact_by_email(n->store, from, pk, &tier) != PST_OK)
        return 0; /* not a contact's address (or the store cannot say: no tier) */
    pst_authres_verdict v;
    if (pst_authres_check(hdr, len, n->cfg.lmtp_authserv_id, from + dom_at, scratch, cap, &v) !=
            PST_OK ||
        !(v.dmarc_pass || v.dkim_aligned)) {
        pst_counter_add(n, "lmtp.contact_unverified", 1);
        pst_log_info("lmtp: From <%s> is a contact's address, but %s: judged as a stranger's", from,
                     !v.found      ? "no Authentication-Results of our mail server vouches for it"
                     : v.malformed ? "our mail server's Authentication-Results cannot be read"
                     : v.dkim_unaligned ? "its DKIM signature is for another domain"
                                        : "neither DMARC nor DKIM passed");
        return 0;
    }
    if (pst_store_is_revoked(n->store, pk) != 0) {
        pst_counter_add(n, "lmtp.contact_revoked", 1);
        return 0;
    }
    return tier;
}
