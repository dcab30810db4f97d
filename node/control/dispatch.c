/* Request dispatch: the table of control commands, the life of one request
 * (reply once, progress, cancel), and the reply builders every handler
 * uses. The socket (control.c) and the one-shot node (oneshot.c) both come
 * in through pst_node_request_ex. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_build.h"
#include "pst_control.h"

void pst_reply_error(pst_node_reply_cb reply, void *user, uint64_t id, int status, const char *fmt,
                     ...) {
    pst_ctrl_response resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.status = status > 0 ? (uint64_t)status : PST_CTRL_STATUS_FAIL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(resp.error, sizeof resp.error, fmt, ap);
    va_end(ap);
    reply(user, &resp);
}

void pst_reply_ok(pst_node_reply_cb reply, void *user, uint64_t id, uint64_t status,
                  pst_value *body) {
    pst_ctrl_response resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.status = status;
    resp.body = body;
    reply(user, &resp);
}

void pst_reply_tree(pst_node_reply_cb reply, void *user, pst_value *b, int status) {
    int err = pst_value_error(b);
    if (b == NULL || err != PST_OK)
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot build the answer: %s",
                        pst_strerror(b ? err : PST_E_NOMEM));
    else
        pst_reply_ok(reply, user, 0, (uint64_t)status, b);
    pst_value_free(b);
}

void pst_reply_published(pst_node_reply_cb reply, void *user, pst_value *b, int status) {
    pst_value_add_bool(b, "published", status == PST_OK);
    if (status != PST_OK)
        pst_value_add_str(b, "warning",
                          "no DHT node confirmed the put yet; the node keeps re-publishing it");
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

/* Lives from pst_node_request_ex until the reply: handlers get it as their
 * reply user, so nothing else needs to track requests in flight. */
struct pst_node_req {
    pst_node_reply_cb reply, progress;
    void *user;
    uint64_t id;
    void (*on_cancel)(void *);
    void *cancel_arg;
    bool cancelled;   /* progress goes nowhere; the hook has run */
    bool dispatching; /* inside pst_node_request_ex: it frees */
    bool answered;
};
typedef struct pst_node_req request_ctx;

static void on_request_done(void *user, const pst_ctrl_response *resp) {
    request_ctx *r = user;
    pst_ctrl_response copy = *resp;
    copy.id = r->id;
    r->answered = true;
    r->on_cancel = NULL;
    r->reply(r->user, &copy);
    if (!r->dispatching)
        free(r);
}

void pst_node_progress(void *reply_user, const pst_value *body) {
    request_ctx *r = reply_user;
    if (r->progress == NULL || r->cancelled || r->answered)
        return;
    pst_ctrl_response resp;
    memset(&resp, 0, sizeof resp);
    resp.id = r->id;
    resp.status = PST_CTRL_STATUS_PROGRESS;
    resp.body = (pst_value *)body; /* encoding only reads it */
    r->progress(r->user, &resp);
}

void pst_node_on_cancel(void *reply_user, void (*fn)(void *arg), void *arg) {
    request_ctx *r = reply_user;
    if (r->answered)
        return;
    if (r->cancelled) {
        if (fn)
            fn(arg);
        return;
    }
    r->on_cancel = fn;
    r->cancel_arg = arg;
}

void pst_node_cancel_request(pst_node_req *r) {
    if (r == NULL || r->cancelled || r->answered)
        return;
    r->cancelled = true;
    void (*fn)(void *) = r->on_cancel;
    r->on_cancel = NULL;
    if (fn)
        fn(r->cancel_arg); /* may reply: r is gone then */
}

static void dispatch(pst_node *n, const pst_ctrl_request *req, request_ctx *r);

pst_node_req *pst_node_request_ex(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                                  pst_node_reply_cb progress, void *user) {
    request_ctx *r = calloc(1, sizeof *r);
    if (r == NULL) {
        pst_reply_error(reply, user, req->id, PST_CTRL_STATUS_FAIL, "out of memory");
        return NULL;
    }
    r->reply = reply;
    r->progress = progress;
    r->user = user;
    r->id = req->id;
    r->dispatching = true;
    dispatch(n, req, r);
    r->dispatching = false;
    if (r->answered) {
        free(r);
        return NULL;
    }
    return r;
}

void pst_node_request(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                      void *user) {
    (void)pst_node_request_ex(n, req, reply, NULL, user);
}

static void cmd_ping(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                     void *user) {
    (void)req;
    pst_value *b = pst_value_new_map();
    pst_value_add_bool(b, "joined", pst_node_joined(n));
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

static void cmd_key_get(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                        void *user) {
    if (req->n_args != 1)
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "key-get takes one fingerprint or address");
    else
        pst_lookup_key(n, req->args[0], reply, user);
}

/* One row per command; daemon_only commands need the identity and the mail
 * rooms, which a one-shot node has not started. */
static const struct {
    const char *name;
    pst_node_cmd_fn fn;
    bool daemon_only;
} commands[] = {
    {"ping", cmd_ping, false},
    {"id", pst_node_cmd_id, false},
    {"status", pst_node_cmd_status, false},
    {"key-get", cmd_key_get, false},
    {"key-revoke", pst_node_cmd_revoke, false},
    {"trust-set", pst_node_cmd_trust_set, false},
    {"trust-rm", pst_node_cmd_trust_rm, false},
    {"trust-list", pst_node_cmd_trust_list, false},
    {"vouch", pst_node_cmd_vouch, true},
    {"unvouch", pst_node_cmd_unvouch, true},
    {"send", pst_node_cmd_send, true},
    {"outbox", pst_node_cmd_outbox, true},
    {"outbox-retry", pst_node_cmd_outbox_retry, true},
    {"inbox-retry", pst_node_cmd_inbox_retry, true},
    {"unsend", pst_node_cmd_unsend, true},
    {"inbox", pst_node_cmd_inbox, true},
    {"read", pst_node_cmd_read, true},
    {"device-add", pst_node_cmd_device_add, true},
    {"device-list", pst_node_cmd_device_list, true},
    {"device-rename", pst_node_cmd_device_rename, true},
    {"device-revoke", pst_node_cmd_device_revoke, true},
};

static void dispatch(pst_node *n, const pst_ctrl_request *req, request_ctx *r) {
    pst_counter_add(n, "control.requests", 1);
    if (n->stopping) {
        pst_reply_error(on_request_done, r, 0, PST_CTRL_STATUS_FAIL, "the node is shutting down");
        return;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(req->command, commands[i].name) == 0 &&
            (!commands[i].daemon_only || n->mode == PST_NODE_DAEMON)) {
            commands[i].fn(n, req, on_request_done, r);
            return;
        }
    }
    pst_reply_error(on_request_done, r, 0, PST_CTRL_STATUS_USAGE,
                    "unknown command '%s' (this node runs Postern %s; is the CLI newer?)",
                    req->command, PST_VERSION);
}
