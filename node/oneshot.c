/* A short-lived node for one request, used by the CLI when no posternd runs
 * for the home: start, wait (bounded) for a seed to answer, answer the
 * request, stop. It logs as part of `postern` (pst_log_set_program) and
 * leaves "no seed answered" to the answer itself. */
#include <stdio.h>
#include <string.h>

#include "pst_control.h"
#include "pst_node.h"

typedef struct {
    pst_node *node;
    const pst_ctrl_request *req;
    pst_node_reply_cb reply;
    void *user;
    uv_timer_t timer;
    uint64_t deadline;
    bool asked, answered;
} oneshot;

static void on_stopped(void *user) { (void)user; }

static void on_answer(void *user, const pst_ctrl_response *resp) {
    oneshot *o = user;
    o->answered = true;
    o->reply(o->user, resp);
    uv_close((uv_handle_t *)&o->timer, NULL);
    pst_node_stop(o->node, on_stopped, NULL);
}

static void on_tick(uv_timer_t *t) {
    oneshot *o = t->data;
    if (o->asked)
        return;
    pst_node *n = o->node;
    /* ask once a seed answered, or once there is nothing left to wait for:
     * no seeds, or every seed let its first ping go unanswered (OpenDHT
     * keeps trying, but the user waits). An unanswered node says why in its
     * answer (lookup.c), not in a log line of its own. */
    if (pst_node_joined(n) || n->cfg.nseeds == 0 || n->warned_alone ||
        uv_now(t->loop) >= o->deadline) {
        o->asked = true;
        uv_timer_stop(t);
        pst_node_request(o->node, o->req, on_answer, o);
    }
}

int pst_node_oneshot(const pst_node_config *cfg, const pst_ctrl_request *req,
                     uint32_t join_timeout_ms, pst_node_reply_cb reply, void *user, char *err,
                     size_t errcap) {
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        snprintf(err, errcap, "cannot create an event loop");
        return PST_E_NOMEM;
    }
    oneshot o;
    memset(&o, 0, sizeof o);
    o.req = req;
    o.reply = reply;
    o.user = user;
    int rc = pst_node_start(&loop, cfg, PST_NODE_ONESHOT, NULL, &o.node, err, errcap);
    if (rc != PST_OK) {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return rc;
    }
    uv_timer_init(&loop, &o.timer);
    o.timer.data = &o;
    o.deadline = uv_now(&loop) + join_timeout_ms;
    uv_timer_start(&o.timer, on_tick, 0, 50); /* poll for "joined", bounded */
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return o.answered ? PST_OK : PST_E_IO;
}
