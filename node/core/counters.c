/* Counters by name (rejections by slot and reason, and other events). Kept
 * in memory for `postern status` and flushed to the store in batches, so a
 * flood of bad values costs one UPSERT per counter per flush, not one per
 * value. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "pst_core.h"
#include "pst_log.h"

static pst_counter *find(pst_node *n, const char *name) {
    for (unsigned i = 0; i < n->n_counters; i++)
        if (strcmp(n->counters[i].name, name) == 0)
            return &n->counters[i];
    if (n->n_counters >= PST_COUNTERS_MAX)
        return NULL;
    pst_counter *c = &n->counters[n->n_counters++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

void pst_counter_add(pst_node *n, const char *name, uint64_t delta) {
    pst_counter *c = find(n, name);
    if (c == NULL)
        c = find(n, "other"); /* table full: never lose the count entirely */
    if (c == NULL)
        return;
    c->value += delta;
    c->pending += delta;
}

void pst_counter_rejected(pst_node *n, const char *slot_kind, const char *reason) {
    char name[PST_COUNTER_NAME_MAX];
    snprintf(name, sizeof name, "rejected.%s.%s", slot_kind, reason);
    pst_counter_add(n, name, 1);
    pst_counter_add(n, "rejected.total", 1);
}

void pst_counters_flush(pst_node *n) {
    if (n->store == NULL)
        return;
    for (unsigned i = 0; i < n->n_counters; i++) {
        pst_counter *c = &n->counters[i];
        if (c->pending == 0)
            continue;
        int rc = pst_store_counter_add(n->store, c->name, (int64_t)c->pending);
        if (rc != PST_OK) {
            pst_log_warn("cannot save counter %s: %s", c->name, pst_store_last_error(n->store));
            return;
        }
        c->pending = 0;
    }
}

static int on_counter_row(const char *name, int64_t value, void *user) {
    pst_node *n = user;
    pst_counter *c = find(n, name);
    if (c != NULL && value > 0)
        c->value = (uint64_t)value;
    return 0;
}

void pst_counters_load(pst_node *n) {
    if (n->store != NULL)
        (void)pst_store_counter_list(n->store, on_counter_row, n);
}

const char *pst_err_reason(int err, char *buf, size_t cap) {
    const char *name = pst_err_name(err);
    if (strncmp(name, "PST_E_", 6) == 0)
        name += 6;
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++)
        buf[i] = (char)tolower((unsigned char)name[i]);
    buf[i] = '\0';
    return buf;
}
