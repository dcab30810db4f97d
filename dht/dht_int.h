/* Shared by the two implementations of pst_dht.h: dht.c (OpenDHT) and
 * fake/dht_fake.c (in-process, tests only), so both check arguments and
 * count outcomes the same way. Not for callers of pst_dht.h. */
#ifndef PST_DHT_INT_H
#define PST_DHT_INT_H

#include <stdbool.h>

#include "pst_dht.h"

enum { OP_GET = 1, OP_PUT, OP_PING, OP_LISTEN };

/* Decimal 1..65535, nothing else: OpenDHT would accept service names. */
bool pst_dht__valid_port(const char *port);
/* 1..PST_DHT_HOST_MAX bytes. */
bool pst_dht__valid_host(const char *host);
/* Counts the end of a get, put or ping (kind OP_*) with status in d->st:
 * per-kind counters, and the answered/unanswered order pst_dht_stats
 * documents (PST_E_CLOSED counts as nothing). */
void pst_dht__count_status(pst_dht *d, int kind, int status);

#endif
