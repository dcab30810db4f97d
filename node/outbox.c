/* Sender side of mail delivery (placeholder being replaced): binds the fetch
 * port so the published endpoint is real; mail commands answer "not yet". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"
#include "pst_log.h"

struct pst_outbox {
    pst_node *node;
    uv_tcp_t server;
};

static void on_connection(uv_stream_t *server, int status) {
    pst_node *n = ((struct pst_outbox *)server->data)->node;
    if (status < 0)
        return;
    uv_tcp_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_init(n->loop, c);
    if (uv_accept(server, (uv_stream_t *)c) == 0)
        pst_counter_add(n, "fetch.connections", 1);
    uv_close((uv_handle_t *)c, (uv_close_cb)free);
}

int pst_outbox_start(pst_node *n, char *err, size_t errcap) {
    struct pst_outbox *o = calloc(1, sizeof *o);
    if (o == NULL)
        return PST_E_NOMEM;
    o->node = n;
    n->outbox = o;
    struct sockaddr_storage ss;
    const char *host = n->cfg.advertise;
    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host, n->cfg.fetch_port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, n->cfg.fetch_port, (struct sockaddr_in6 *)&ss) != 0)
        uv_ip4_addr("0.0.0.0", n->cfg.fetch_port, (struct sockaddr_in *)&ss);
    uv_tcp_init(n->loop, &o->server);
    o->server.data = o;
    pst_node_handle_ref(n);
    int rc = uv_tcp_bind(&o->server, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&o->server, 128, on_connection);
    if (rc != 0) {
        snprintf(err, errcap, "cannot listen on fetch port %u: %s (choose another --fetch-port)",
                 n->cfg.fetch_port, uv_strerror(rc));
        return PST_E_IO;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&o->server, (struct sockaddr *)&bound, &blen);
    n->fetch_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
    return PST_OK;
}

static void on_closed(uv_handle_t *h) {
    struct pst_outbox *o = h->data;
    pst_node *n = o->node;
    n->outbox = NULL;
    free(o);
    pst_node_handle_unref(n);
}

void pst_outbox_stop(pst_node *n) {
    if (n->outbox != NULL && !uv_is_closing((uv_handle_t *)&n->outbox->server))
        uv_close((uv_handle_t *)&n->outbox->server, on_closed);
}

static void not_yet(pst_node_reply_cb reply, void *user, const char *what) {
    pst_reply_error(reply, user, 0, 1, "%s is not available in this version", what);
}

void pst_node_cmd_send(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user) {
    (void)n;
    (void)req;
    not_yet(reply, user, "send");
}

void pst_node_cmd_outbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user) {
    (void)n;
    (void)req;
    not_yet(reply, user, "outbox");
}

void pst_node_cmd_unsend(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user) {
    (void)n;
    (void)req;
    not_yet(reply, user, "unsend");
}
