/* Recipient side of mail delivery (placeholder being replaced). */
#include "node_int.h"

int pst_inbox_start(pst_node *n, char *err, size_t errcap) {
    (void)n;
    (void)err;
    (void)errcap;
    return PST_OK;
}

void pst_inbox_stop(pst_node *n) { (void)n; }

void pst_node_cmd_inbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                        void *user) {
    (void)n;
    (void)req;
    pst_reply_error(reply, user, 0, 1, "inbox is not available in this version");
}

void pst_node_cmd_read(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user) {
    (void)n;
    (void)req;
    pst_reply_error(reply, user, 0, 1, "read is not available in this version");
}
