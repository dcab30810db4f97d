/* The node's wall clock, its handle count, and whether it is in touch with
 * the network: the three things every room asks of the node as a whole. */
#include <time.h>

#include "pst_core.h"

uint64_t pst_now(void) { return (uint64_t)time(NULL); }

void pst_node_handle_ref(pst_node *n) { n->handles_open++; }

void pst_node_handle_unref(pst_node *n) {
    if (--n->handles_open == 0 && n->stopping && n->on_last_handle)
        n->on_last_handle(n);
}

bool pst_node_joined(const pst_node *n) {
    struct pst_dht_stats ds;
    pst_dht_stats(&n->dht, &ds);
    return ds.last_answered_op > ds.last_unanswered_op;
}
