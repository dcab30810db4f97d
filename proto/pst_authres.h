/* Who an Internet message is from, as far as the receiving mail server
 * vouches for it: the From: address, and the Authentication-Results field
 * (RFC 8601) the server wrote under its own authserv-id. LMTP reads both to
 * give a contact's mail its tier (docs/LMTP.md, "Contacts").
 *
 * Both readers are strict and bounded. They read a header section as
 * received (CRLF or LF line ends, up to its first empty line) with
 * pst_smtp_header_next, into a caller's buffer that holds the whole section
 * (so no field can be skipped for its size: a skipped field could let a
 * forged one below it count), and refuse a section holding a NUL. Pure: no
 * I/O, no allocation, no globals. */
#ifndef PST_AUTHRES_H
#define PST_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_addrlist.h"
#include "pst_error.h"

#define PST_AUTHRES_ID_MAX 255u     /* an authserv-id we are configured with */
#define PST_AUTHRES_RESULTS_MAX 64u /* resinfo entries read in one field */

/* The one From: address of hdr[0..len): exactly one From field holding
 * exactly one address (RFC 5322's several authors, a group, a domain
 * literal or no '@' are refused), as "local@domain" with the domain
 * lower-cased; its domain at *domain_at (an offset into addr). scratch
 * (scratch_cap >= len + 1 bytes) is the caller's room for the field value.
 * PST_OK; PST_E_NOTFOUND (no From field); PST_E_MALFORMED (two From fields,
 * not one address, a NUL in the section, an unreadable list); PST_E_INVAL
 * (NULL, scratch too small). addr is "" on failure. */
__attribute__((warn_unused_result)) int pst_authres_from(const uint8_t *hdr, size_t len,
                                                         char *scratch, size_t scratch_cap,
                                                         char addr[PST_ADDRLIST_ADDR_MAX + 1],
                                                         size_t *domain_at);

/* What the topmost Authentication-Results field of authserv_id says about
 * from_domain (lower case). */
typedef struct {
    bool found;          /* a field of authserv_id was there (the topmost is read) */
    bool malformed;      /* ... but it could not be read: nothing passes */
    bool dmarc_pass;     /* dmarc=pass (and its header.from, if given, is from_domain) */
    bool dkim_aligned;   /* dkim=pass with header.d (or header.i's domain) aligned */
    bool dkim_unaligned; /* dkim=pass, but for another domain only */
} pst_authres_verdict;

/* Reads hdr[0..len) for Authentication-Results fields. Fields of any other
 * authserv-id are ignored (anyone can write one); of those naming
 * authserv_id (compared without regard to case) only the topmost is read:
 * the receiving server adds its own above the ones that came with the
 * message. Its resinfo list is parsed strictly (RFC 8601 section 2.2:
 * comments, quoted strings, "none", a version after the id, method/version,
 * reason=, ptype.property=value; at most PST_AUTHRES_RESULTS_MAX results);
 * anything else makes it malformed, and a malformed field passes nothing.
 * Alignment is simplified from DMARC's organizational domains to: the DKIM
 * domain equals from_domain, or one is a subdomain of the other, and the
 * DKIM domain has at least one dot. Returns PST_OK with *out filled (found
 * false when there is no such field), PST_E_MALFORMED for a NUL in the
 * section, PST_E_INVAL for NULL, an empty authserv_id or a scratch buffer
 * under len + 1. *out is zeroed first. */
__attribute__((warn_unused_result)) int
pst_authres_check(const uint8_t *hdr, size_t len, const char *authserv_id, const char *from_domain,
                  char *scratch, size_t scratch_cap, pst_authres_verdict *out);

/* Whether s is usable as our authserv-id: 1..PST_AUTHRES_ID_MAX bytes of
 * printable ASCII without white space, ';', '(', ')' or '"'. */
bool pst_authres_id_ok(const char *s);

#endif
