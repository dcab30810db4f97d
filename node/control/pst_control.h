/* node/control: the control room. The unix socket server (control.c) and
 * the dispatch of requests to command handlers (dispatch.c); each handler
 * checks its arguments, calls the rooms below, and builds the reply
 * (commands.c, key_cmd.c, trust_cmd.c, send_cmd.c, inbox_cmd.c,
 * outbox_cmd.c). The only room that reads pst_ctrl_request or writes
 * pst_ctrl_response. Argument and body schemas: docs/CLI.md.
 *
 * Every handler has the signature of pst_node_cmd_fn: reply is called
 * exactly once, with user, from inside the call or later on the loop. */
#ifndef PST_CONTROL_H
#define PST_CONTROL_H

#include "pst_mail.h"
#include "pst_request.h"

typedef void (*pst_node_cmd_fn)(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                                void *user);

/* control.c: the unix socket server on HOME/control.sock (mode 0600; the
 * home's lock already proves no other node runs, so a socket file left by
 * a crash is replaced). PST_E_IO with err naming the path when it cannot
 * listen. stop closes the listener and every connection; requests in
 * flight still get their reply callbacks, which then write nowhere. */
int pst_ctrl_server_start(pst_node *n, char *err, size_t errcap);
void pst_ctrl_server_stop(pst_node *n);

/* commands.c: `id` (our fingerprint, keys, addresses), `status` (ports,
 * DHT, counters, clock, mail queues) and `key-revoke` (store and publish
 * a revocation given as hex bytes). Handlers below follow pst_node_cmd_fn;
 * argument and body schemas in docs/CLI.md. */
void pst_node_cmd_id(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply, void *user);
void pst_node_cmd_status(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);
void pst_node_cmd_revoke(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);

/* For command handlers: reply_user is the user their reply callback came
 * with (the dispatcher's pst_node_req; valid until the reply).
 * pst_node_progress sends body (borrowed) as an interim answer, or nothing
 * when the client takes no progress or went away. pst_node_on_cancel
 * registers fn(arg) to run at most once if the client cancels before the
 * reply (NULL fn unregisters); when it already did, fn runs before this
 * returns. fn may reply. */
void pst_node_progress(void *reply_user, const pst_value *body);
void pst_node_on_cancel(void *reply_user, void (*fn)(void *arg), void *arg);

/* Replies with an error status and message. */
void pst_reply_error(pst_node_reply_cb reply, void *user, uint64_t id, int status, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
/* Replies with body (then freed) and status, or with an error when the
 * tree's builder failed (b NULL or its sticky error). */
void pst_reply_tree(pst_node_reply_cb reply, void *user, pst_value *b, int status);
/* Replies to a command that put a record (status: the put's): b (then
 * freed) gets "published" and, when no DHT node confirmed it, a warning. */
void pst_reply_published(pst_node_reply_cb reply, void *user, pst_value *b, int status);
/* Replies with status 0 and body (borrowed). */
void pst_reply_ok(pst_node_reply_cb reply, void *user, uint64_t id, uint64_t status,
                  pst_value *body);

/* args.c: the one reader of a request's "key=value" arguments. */
/* True when arg is "key=..." for exactly this key; *value (may be NULL)
 * then points into arg just past the '='. */
bool pst_req_arg_is(const char *arg, const char *key, const char **value);
/* The value of the first argument "key=value" in req (borrowed), NULL when
 * absent. */
const char *pst_req_arg(const pst_ctrl_request *req, const char *key);
/* True when every argument of req is "K=..." for one of the n keys. */
bool pst_req_args_known(const pst_ctrl_request *req, const char *const *keys, size_t n);
/* v as a count in 1..max: digits only, no sign or space. */
bool pst_req_count(const char *v, uint64_t max, uint64_t *out);

/* device_cmd.c (issue 13): device-add, device-list, device-rename,
 * device-revoke (daemon only). */
void pst_node_cmd_device_add(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                             void *user);
void pst_node_cmd_device_list(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                              void *user);
void pst_node_cmd_device_rename(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                                void *user);
void pst_node_cmd_device_revoke(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                                void *user);

/* key_cmd.c: `key get` */
void pst_lookup_key(pst_node *n, const char *query, pst_node_reply_cb reply, void *user);

/* trust_cmd.c */
void pst_node_cmd_trust_set(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                            void *user);
void pst_node_cmd_trust_rm(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                           void *user);
void pst_node_cmd_trust_list(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                             void *user);
void pst_node_cmd_vouch(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                        void *user);
void pst_node_cmd_unvouch(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                          void *user);

/* inbox_cmd.c, outbox_cmd.c, send_cmd.c */
void pst_node_cmd_inbox_retry(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                              void *user);
/* Control commands of the mail side (argument and body schemas in
 * docs/CLI.md). */
void pst_node_cmd_send(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user);
void pst_node_cmd_outbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);
/* `outbox retry`: puts the notifications of every recipient still waiting
 * for message=ID again now and restarts their back-off. */
void pst_node_cmd_outbox_retry(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                               void *user);
void pst_node_cmd_unsend(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);
void pst_node_cmd_inbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                        void *user);
void pst_node_cmd_read(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user);

#endif
