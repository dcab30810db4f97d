/* Group commit of the recipient's deliveries (docs/MAIL.md, "Where
 * durability is batched"). A fetch whose body is checked fsyncs its own
 * file and renames it into new/ at once (pst_maildir_place); what it still
 * needs before its receipt, the fsync of new/ and the store commit of its
 * DELIVERED row, it shares with every other fetch placed in the same turn
 * of the loop. The flush runs in the check phase right after the poll
 * phase that queued the first member: the bodies that came in that poll
 * are what is "already waiting" (they piled up while the loop was in the
 * previous flush's fsyncs), and nothing is held back for company. */
#include <string.h>

#include "pst_log.h"

#include "fetch_client_int.h"

static void flush(pst_fetch_group *g);
static void on_check(uv_check_t *h) { flush(h->data); }
static void on_idle(uv_idle_t *h) { (void)h; }

void pst_fetch_group_init(pst_node *n, pst_fetch_group *g) {
    memset(g, 0, sizeof *g);
    g->node = n;
    uv_check_init(n->loop, &g->check);
    uv_idle_init(n->loop, &g->idle);
    g->check.data = g->idle.data = g;
    for (int i = 0; i < 2; i++) /* one reference per handle, dropped at its close */
        pst_node_handle_ref(n);
}

void pst_fetch_group_close(pst_fetch_group *g, void *data, uv_close_cb close_cb) {
    for (unsigned i = 0; i < g->n_waiting; i++)
        g->waiting[i]->grouped = false;
    g->n_waiting = 0;
    g->check.data = g->idle.data = data;
    uv_close((uv_handle_t *)&g->check, close_cb);
    uv_close((uv_handle_t *)&g->idle, close_cb);
}

void pst_fetch_group_add(pst_fetch_conn *c) {
    pst_fetch_group *g = c->job.group;
    if (g->n_waiting == PST_FETCH_GROUP_MAX)
        flush(g); /* the hard cap: never more than this many in one commit */
    if (g->n_waiting == 0) {
        uv_check_start(&g->check, on_check);
        uv_idle_start(&g->idle, on_idle); /* a poll after this must not block */
    }
    c->grouped = true;
    g->waiting[g->n_waiting++] = c;
}

void pst_fetch_group_drop(pst_fetch_conn *c) {
    pst_fetch_group *g = c->job.group;
    c->grouped = false;
    for (unsigned i = 0; i < g->n_waiting; i++)
        if (g->waiting[i] == c) {
            memmove(&g->waiting[i], &g->waiting[i + 1], (g->n_waiting - i - 1) * sizeof c);
            g->n_waiting--;
            return;
        }
}

static bool same_dir(const pst_maildir_loc *a, const pst_maildir_loc *b) {
    return strcmp(a->folder, b->folder) == 0 && strcmp(a->sub, b->sub) == 0;
}

/* One fsync per directory, one store commit, then every receipt (in the
 * order the members came). A member whose directory fsync failed is not
 * recorded; when the commit fails none is acknowledged: each retries, finds
 * its file (commit_reached) and records it then. */
static void flush(pst_fetch_group *g) {
    uv_check_stop(&g->check);
    uv_idle_stop(&g->idle);
    unsigned n = g->n_waiting;
    if (n == 0)
        return;
    pst_fetch_conn *m[PST_FETCH_GROUP_MAX];
    int dir_rc[PST_FETCH_GROUP_MAX], store_rc[PST_FETCH_GROUP_MAX];
    memcpy(m, g->waiting, n * sizeof m[0]);
    g->n_waiting = 0;
    for (unsigned i = 0; i < n; i++) {
        m[i]->grouped = false;
        pst_fetch_client_hold(m[i]); /* a settle's callbacks may end another */
        dir_rc[i] = PST_OK;          /* a copy found had its directory fsynced */
        if (m[i]->res.existed)
            continue;
        unsigned k = 0;
        while (k < i && (m[k]->res.existed || !same_dir(&m[k]->res.loc, &m[i]->res.loc)))
            k++;
        dir_rc[i] = k < i ? dir_rc[k] : pst_maildir_sync_loc(m[i]->root, &m[i]->res.loc);
    }
    pst_store *st = g->node->store;
    bool batch = n > 1 && pst_store_begin(st) == PST_OK;
    for (unsigned i = 0; i < n; i++)
        store_rc[i] = dir_rc[i] == PST_OK ? pst_fetch_body_record(m[i]) : PST_OK;
    int crc = batch ? pst_store_commit(st) : PST_OK;
    pst_counter_add(g->node, "fetch.group_commits", 1);
    pst_counter_add(g->node, "fetch.group_members", n);
    for (unsigned i = 0; i < n; i++) {
        pst_fetch_body_settle(m[i], dir_rc[i], crc != PST_OK ? crc : store_rc[i]);
        pst_fetch_client_release(m[i]);
    }
}
