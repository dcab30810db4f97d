/* A control request's way into the node (control/dispatch.c): the control
 * socket, the one-shot node and posternd's tests all call these; the rooms
 * below control never do. Included by node/pst_node.h for the top and for
 * tools/. */
#ifndef PST_REQUEST_H
#define PST_REQUEST_H

#include "pst_node_base.h"

/* Answers one control request asynchronously. reply is called exactly once,
 * on the loop, possibly before this returns. */
void pst_node_request(pst_node *node, const pst_ctrl_request *req, pst_node_reply_cb reply,
                      void *user);

/* pst_node_request with interim answers: progress (may be NULL) gets
 * responses with status PST_CTRL_STATUS_PROGRESS and the request's id (body
 * borrowed for the call) any number of times before reply, never after, both
 * with the same user. Returns the handle for pst_node_cancel_request, or
 * NULL when reply already ran (or ran out of memory: it then says so). */
pst_node_req *pst_node_request_ex(pst_node *node, const pst_ctrl_request *req,
                                  pst_node_reply_cb reply, pst_node_reply_cb progress, void *user);

/* The client of r went away (or asked to stop): runs the command's cancel
 * hook once and drops further progress. reply still runs exactly once,
 * possibly before this returns, and says what happened: a command that is
 * past its point of no return (send: the message is stored) ignores the
 * cancel and answers normally. r must not be answered yet; the caller may
 * not use r after this returns. */
void pst_node_cancel_request(pst_node_req *r);

#endif
