/* Forgetting inbox state no replay can need: a year of mail must not grow
 * the store forever. A notification is refused as expired before it reaches
 * the store (proto's pst_notify_inner_verify(), run first in the pipeline),
 * so once it is past expiry plus the clock tolerance of notifications its
 * sealed bytes (the bulk of a row) serve nothing: a delivered row keeps what
 * `postern inbox` and `read` need and its message id (a duplicate stays a
 * duplicate), a given-up row and one whose file a mail client deleted go,
 * and the "why" note of each goes with it. */
#include "inbox_int.h"
#include "pst_log.h"

static int forget_why(const uint8_t msg_id[PST_STORE_MSGID_BYTES], bool drop, void *user) {
    (void)drop;
    pst_node *n = user;
    char name[PST_INBOX_WHY_NAME_BUFSIZE];
    pst_inbox_why_name(msg_id, name);
    int rc = pst_store_meta_delete(n->store, name);
    return rc == PST_E_NOTFOUND ? PST_OK : rc;
}

void pst_inbox__purge(pst_node *n, uint64_t now) {
    if (now <= PST_INBOX_PURGE_GRACE_S)
        return;
    unsigned purged = 0;
    /* one bounded batch per poll: a backlog (a database from before the
     * purge) goes in a few polls without stalling the loop */
    int rc = pst_store_inbox_purge(n->store, now - PST_INBOX_PURGE_GRACE_S, PST_INBOX_PURGE_BATCH,
                                   forget_why, n, &purged);
    if (rc != PST_OK)
        pst_log_warn("inbox clean-up failed: %s", pst_store_last_error(n->store));
    else if (purged > 0)
        pst_counter_add(n, "inbox.purged", purged);
}
