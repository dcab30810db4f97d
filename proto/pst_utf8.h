/* UTF-8, the one validator every layer uses (names in the store, header
 * values read back from the Maildir, message bodies, wire strings). Pure. */
#ifndef PST_UTF8_H
#define PST_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the well-formed UTF-8 sequence at p, n bytes left (n >=
 * 1), or 0 when there is none: no overlong forms, no surrogates, nothing
 * above U+10FFFF. A NUL byte is a sequence of length 1. */
size_t pst_utf8_seq(const uint8_t *p, size_t n);

/* True when p[0..n) is well-formed UTF-8 (NUL bytes allowed: callers that
 * refuse them say so themselves). */
bool pst_utf8_valid(const uint8_t *p, size_t n);

#endif
