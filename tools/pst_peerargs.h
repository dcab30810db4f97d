/* Argument helpers shared by the test peers that talk to a test network
 * (postern-hostile, stampcraft): both must refuse any address that is not
 * loopback, and both report usage errors the same way. */
#ifndef PST_PEERARGS_H
#define PST_PEERARGS_H

#include <stdbool.h>
#include <stdint.h>

/* Prints "PROG: " + fmt (with arg) + a pointer to --help on stderr; returns
 * 64 (EX_USAGE) for the caller to exit with. */
int pst_peer_usage_error(const char *prog, const char *fmt, const char *arg);
/* s as an unsigned number (decimal, 0x hex or 0 octal, as strtoull) up to
 * max into *out: 0, or -1 (no sign, nothing after the digits). */
int pst_peer_parse_u64(const char *s, uint64_t max, uint64_t *out);
/* True only for a literal 127.0.0.0/8 or ::1 address: a name could resolve
 * anywhere, so it is refused. */
bool pst_peer_host_is_loopback(const char *host);

#endif
