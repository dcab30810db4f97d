/* Argument helpers of the test peers (pst_peerargs.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "pst_peerargs.h"

int pst_peer_usage_error(const char *prog, const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see --help)\n");
    return 64;
}

int pst_peer_parse_u64(const char *s, uint64_t max, uint64_t *out) {
    char *end;
    if (s == NULL || *s == '\0' || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

bool pst_peer_host_is_loopback(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false; /* a name could resolve anywhere */
}
