/* RFC 5322 address lists: the values of To:, Cc:, Bcc: (and Resent-*),
 * read by `postern sendmail -t` to find a message's recipients.
 *
 * The reader is strict and bounded: it walks the value once, holds no more
 * than one address at a time (in the caller's fixed buffer), and refuses
 * what RFC 5322 does not allow rather than guessing. It understands what
 * mail programs write:
 *  - folded values (CR and LF are white space here: the caller passes the
 *    value with its folded lines);
 *  - comments, nested, with quoted pairs ("a@b (Alice (home))");
 *  - display names of atoms and quoted strings, with RFC 2047 words or raw
 *    UTF-8 (RFC 6532), and the obsolete '.' in a phrase ("J. Doe <j@x>");
 *  - name-addr ("Name <a@b>") and bare addr-spec ("a@b");
 *  - groups ("undisclosed-recipients:;", "team: a@x, b@y;"), not nested;
 *  - empty list elements ("a@x, , b@y": RFC 5322's obsolete list syntax);
 *  - the obsolete source route in "<@relay:a@b>" (ignored);
 *  - quoted local parts and domain literals, returned as written.
 * It refuses: unterminated quotes, comments, angle brackets and domain
 * literals; a missing '@' or domain; two addresses without a comma; a group
 * without its ';'; a NUL or other control character outside white space;
 * invalid UTF-8; a value over PST_ADDRLIST_VALUE_MAX bytes; an addr-spec
 * over PST_ADDRLIST_ADDR_MAX bytes.
 *
 * Each addr-spec is handed to the caller as "local@domain" with the white
 * space, comments and folding removed (a quoted string keeps its quotes and
 * escapes, so it cannot be mistaken for a dot-atom). Pure: no I/O, no
 * allocation, no globals. */
#ifndef PST_ADDRLIST_H
#define PST_ADDRLIST_H

#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"

#define PST_ADDRLIST_VALUE_MAX (64u * 1024u) /* one field value, folded lines included */
/* one addr-spec: RFC 5321 caps a path at 256 octets with its brackets */
#define PST_ADDRLIST_ADDR_MAX 254u
#define PST_ADDRLIST_COMMENT_DEPTH_MAX 32u /* nested comments */

/* Receives one address (addr[0..len), NUL-terminated, len >= 3). A nonzero
 * return stops the walk and is returned by pst_addrlist_parse. */
typedef int (*pst_addrlist_fn)(void *user, const char *addr, size_t len);

/* Walks the address list value[0..len) and calls fn for each address in
 * order (group members included; a group's name is not an address).
 * Returns 0 when the whole value is a well-formed list (an empty list and
 * one of empty elements are well-formed: no calls), PST_E_MALFORMED (the
 * syntax, a NUL or control character, invalid UTF-8; *err_at, when not
 * NULL, is the byte offset where reading stopped), PST_E_TOOBIG (the value
 * or one addr-spec over its cap), PST_E_INVAL (NULL value with len > 0,
 * NULL fn), or fn's nonzero return. Addresses before an error have been
 * handed to fn already: a caller that wants all or nothing collects them
 * and drops them on error. */
int pst_addrlist_parse(const uint8_t *value, size_t len, pst_addrlist_fn fn, void *user,
                       size_t *err_at);

#endif
