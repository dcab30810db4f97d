/* `send`: the command. Checks that this node can send now, parses the
 * arguments (file=PATH, to=R, cc=R, bcc=R, pow=MODE; docs/CLI.md) into a
 * pst_send_request and hands it to mail/send.c, which runs the operation
 * (resolution, encryption, commit); turns its end into the reply, its mint
 * progress into progress frames, and the client's cancel into
 * pst_send_cancel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_control.h"

_Static_assert(PST_SEND_RCPTS_MAX + 2 <= PST_CTRL_ARGS_MAX,
               "a send request carries every recipient plus file= and pow=");
_Static_assert(PST_SEND_ERROR_MAX <= PST_CTRL_ERROR_MAX,
               "a send's failure text fits a control response");

static bool query_ok(const char *q) {
    uint8_t pk[PST_SIGN_PK_BYTES];
    char addr[PST_ADDRESS_MAX + 1];
    return pst_fingerprint_parse(q, pk) == PST_OK ||
           (strchr(q, '@') != NULL && pst_address_normalize(q, addr, sizeof addr) == PST_OK);
}

/* Fills sr from "key=value" arguments; replies and returns -1 on a bad one. */
static int parse_args(pst_send_request *sr, const pst_ctrl_request *req, pst_node_reply_cb reply,
                      void *user) {
    bool have_file = false;
    for (uint32_t i = 0; i < req->n_args; i++) {
        const char *a = req->args[i], *v;
        pst_store_rcpt_kind kind = 0;
        if (pst_req_arg_is(a, "to", &v))
            kind = PST_STORE_RCPT_TO;
        else if (pst_req_arg_is(a, "cc", &v))
            kind = PST_STORE_RCPT_CC;
        else if (pst_req_arg_is(a, "bcc", &v))
            kind = PST_STORE_RCPT_BCC;
        if (kind != 0) {
            if (sr->n_rcpts == PST_SEND_RCPTS_MAX) {
                pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                                "at most %u recipients per message", PST_SEND_RCPTS_MAX);
                return -1;
            }
            if (strlen(v) > PST_ADDRESS_MAX || !query_ok(v)) {
                pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                                "'%.200s' is neither a fingerprint (52 characters of z-base-32) "
                                "nor an address (local@domain)",
                                v);
                return -1;
            }
            pst_send_rcpt *r = &sr->rcpts[sr->n_rcpts++];
            r->kind = kind;
            snprintf(r->query, sizeof r->query, "%s", v);
        } else if (!have_file && pst_req_arg_is(a, "file", &v)) {
            if (v[0] != '/' || strlen(v) >= sizeof sr->path) {
                pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                                "file must be an absolute path");
                return -1;
            }
            snprintf(sr->path, sizeof sr->path, "%s", v);
            have_file = true;
        } else if (pst_req_arg_is(a, "pow", &v)) {
            if (strcmp(v, "auto") == 0)
                sr->pow = PST_SEND_POW_AUTO;
            else if (strcmp(v, "always") == 0)
                sr->pow = PST_SEND_POW_ALWAYS;
            else if (strcmp(v, "never") == 0)
                sr->pow = PST_SEND_POW_NEVER;
            else {
                pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                                "pow must be auto, always or never");
                return -1;
            }
        } else {
            pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                            "send takes file=PATH, to=R, cc=R, bcc=R and pow=MODE (got '%.64s')",
                            a);
            return -1;
        }
    }
    if (!have_file || sr->n_rcpts == 0) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "send needs file=PATH and at least one to=, cc= or bcc= recipient");
        return -1;
    }
    return 0;
}

/* The request's reply callback, kept until the send's done. */
typedef struct {
    pst_node_reply_cb reply;
    void *user;
} send_call;

static void on_send_done(void *user, const char *error, pst_value *body) {
    send_call *s = user;
    pst_ctrl_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = error != NULL ? PST_CTRL_STATUS_FAIL : PST_CTRL_STATUS_OK;
    if (error != NULL)
        snprintf(resp.error, sizeof resp.error, "%s", error);
    resp.body = body;
    s->reply(s->user, &resp);
    free(s);
}

static void on_send_progress(void *user, const pst_value *body) {
    send_call *s = user;
    pst_node_progress(s->user, body);
}

/* The client went away or pressed Ctrl-C (only before the reply). */
static void on_client_cancel(void *op) { pst_send_cancel(op); }

void pst_node_cmd_send(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user) {
    char why[PST_CTRL_ERROR_MAX + 1];
    if (pst_send_refusal(n, why, sizeof why) != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "%s", why);
        return;
    }
    pst_send_request sr;
    memset(&sr, 0, sizeof sr);
    sr.pow = PST_SEND_POW_AUTO;
    if (parse_args(&sr, req, reply, user) != 0)
        return;
    send_call *s = calloc(1, sizeof *s);
    pst_send_op *op = NULL;
    int rc = s == NULL ? PST_E_NOMEM : pst_send_new(n, &sr, on_send_done, on_send_progress, s, &op);
    if (rc != PST_OK) {
        free(s);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot send: %s", pst_strerror(rc));
        return;
    }
    s->reply = reply;
    s->user = user;
    pst_node_on_cancel(user, on_client_cancel, op);
    pst_send_begin(op);
}
