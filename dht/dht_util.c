/* Argument checks and outcome counting shared by dht.c and fake/dht_fake.c
 * (dht_int.h). */
#include <string.h>
#include <uv.h>

#include "dht_int.h"

bool pst_dht__valid_port(const char *port) {
    size_t n = strlen(port);
    if (n == 0 || n > 5 || port[0] == '0')
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (port[i] < '0' || port[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(port[i] - '0');
    }
    return v <= 65535;
}

bool pst_dht__valid_host(const char *host) {
    size_t n = strnlen(host, PST_DHT_HOST_MAX + 1);
    return n > 0 && n <= PST_DHT_HOST_MAX;
}

void pst_dht__count_status(pst_dht *d, int kind, int status) {
    struct pst_dht_stats *s = &d->st;
    uint64_t *ok = NULL, *timeout = NULL, *fail = NULL;
    if (kind == OP_GET)
        ok = &s->gets_ok, timeout = &s->gets_timed_out, fail = &s->gets_failed;
    else if (kind == OP_PUT)
        ok = &s->puts_ok, timeout = &s->puts_timed_out, fail = &s->puts_failed;
    else
        ok = &s->pings_ok, timeout = &s->pings_failed, fail = &s->pings_failed;
    if (status == PST_OK)
        (*ok)++;
    else if (status == PST_E_TIMEOUT)
        (*timeout)++;
    else if (status != PST_E_CLOSED)
        (*fail)++;
    if (status == PST_E_CLOSED)
        return;
    s->ops_ended++;
    if (status == PST_OK) {
        s->last_answered_op = s->ops_ended;
        s->last_answered_ms = uv_now(d->loop);
    } else if (status == PST_E_IO && kind != OP_PING) {
        s->last_unanswered_op = s->ops_ended;
    }
}
