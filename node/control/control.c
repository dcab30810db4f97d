/* The control socket: DIR/control.sock, mode 0600 inside a 0700 home, so
 * only the owner's CLI can talk to the node. Frames are a 4-byte big-endian
 * length and a msgpack envelope (proto/pst_envelope.h). A bad frame gets an
 * error reply and the connection is closed; the node keeps running.
 *
 * One request at a time per connection; it may get progress frames before
 * its answer. A client that goes away (or shuts its writing half down, as
 * the CLI does on Ctrl-C) cancels the request in flight; a half-closed
 * client still gets the final answer, which says whether the cancel came in
 * time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pst_control.h"
#include "pst_fetch.h"
#include "pst_framer.h"
#include "pst_log.h"

#define PST_CTRL_CONNS_MAX 32u
#define PST_CTRL_IDLE_MS 60000u

typedef struct ctrl_conn ctrl_conn;

struct pst_ctrl_server {
    pst_node *node;
    uv_pipe_t pipe;
    char path[PST_PATH_MAX];
    unsigned conns;
    bool closing;
    ctrl_conn *head; /* open connections, closed with the server */
};

struct ctrl_conn {
    pst_ctrl_server *srv;
    uv_pipe_t pipe;
    uv_timer_t idle;
    pst_framer in; /* PST_CTRL_FRAME_MAX cap, allocated per frame */
    ctrl_conn *prev, *next;
    int refs;               /* handles open + replies pending */
    bool closing;           /* no more reads or writes */
    bool busy;              /* a request is being answered: one at a time */
    bool eof;               /* the client stopped writing: close after the answer */
    unsigned writes;        /* frames queued, not yet written */
    pst_node_req *inflight; /* until its reply */
};

typedef struct {
    uv_write_t req;
    ctrl_conn *conn;
    uint8_t *buf;
    bool close_after;
} ctrl_write;

static void conn_unref(ctrl_conn *c) {
    if (--c->refs == 0) {
        pst_framer_close(&c->in);
        free(c);
    }
}

static void on_conn_handle_closed(uv_handle_t *h) { conn_unref(h->data); }

static void conn_close(ctrl_conn *c) {
    if (c->closing)
        return;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->srv->conns--; /* the server may be gone before a pending reply ends */
    uv_timer_stop(&c->idle);
    uv_close((uv_handle_t *)&c->pipe, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_conn_handle_closed);
    /* the reply still comes (and goes nowhere): it holds a reference, and
     * the handles' close callbacks hold two more until the next turn */
    pst_node_req *r = c->inflight;
    c->inflight = NULL;
    pst_node_cancel_request(r);
}

static void on_written(uv_write_t *req, int status) {
    ctrl_write *w = (ctrl_write *)req;
    ctrl_conn *c = w->conn;
    c->writes--;
    free(w->buf);
    if (status < 0 || w->close_after || (c->eof && !c->busy && c->writes == 0))
        conn_close(c);
    free(w);
    conn_unref(c);
}

static void send_response(ctrl_conn *c, const pst_ctrl_response *resp, bool close_after) {
    if (c->closing)
        return;
    uint8_t *buf = malloc(PST_FRAME_HEADER_BYTES + PST_CTRL_FRAME_MAX);
    size_t len = 0;
    int rc =
        buf ? pst_ctrl_response_encode(resp, buf + PST_FRAME_HEADER_BYTES, PST_CTRL_FRAME_MAX, &len)
            : PST_E_NOMEM;
    if (rc != PST_OK && buf != NULL) {
        /* the body did not fit or broke a limit: say so instead */
        pst_ctrl_response err;
        memset(&err, 0, sizeof err);
        err.id = resp->id;
        err.status = PST_CTRL_STATUS_FAIL;
        snprintf(err.error, sizeof err.error, "the node could not encode its answer: %s",
                 pst_strerror(rc));
        rc = pst_ctrl_response_encode(&err, buf + PST_FRAME_HEADER_BYTES, PST_CTRL_FRAME_MAX, &len);
    }
    ctrl_write *w = calloc(1, sizeof *w);
    if (rc != PST_OK || w == NULL) {
        free(buf);
        free(w);
        conn_close(c);
        return;
    }
    pst_frame_header_write((uint32_t)len, buf);
    w->conn = c;
    w->buf = buf;
    w->close_after = close_after;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)(len + PST_FRAME_HEADER_BYTES));
    c->refs++;
    c->writes++;
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0) {
        c->writes--;
        free(buf);
        free(w);
        conn_close(c);
        conn_unref(c);
    }
}

static void bad_frame(ctrl_conn *c, const char *why) {
    uv_read_stop((uv_stream_t *)&c->pipe);
    c->busy = true; /* nothing more is read or answered on this connection */
    pst_counter_rejected(c->srv->node, "control", "bad_frame");
    pst_ctrl_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = PST_CTRL_STATUS_FAIL;
    snprintf(resp.error, sizeof resp.error, "bad request: %s", why);
    send_response(c, &resp, true);
}

static void on_reply(void *user, const pst_ctrl_response *resp) {
    ctrl_conn *c = user;
    c->busy = false;
    c->inflight = NULL;
    send_response(c, resp, c->eof);
    conn_unref(c);
}

/* Progress is advisory: while an earlier frame still waits for a slow (or
 * stopped) client, newer ones are dropped instead of queued without bound. */
static void on_progress(void *user, const pst_ctrl_response *resp) {
    ctrl_conn *c = user;
    if (!c->eof && c->writes == 0)
        send_response(c, resp, false);
}

static void handle_frame(ctrl_conn *c, const uint8_t *frame, uint32_t len) {
    pst_ctrl_request *req = malloc(sizeof *req);
    if (req == NULL) {
        pst_framer_release(&c->in);
        bad_frame(c, "out of memory");
        return;
    }
    int rc = pst_ctrl_request_decode(frame, len, req);
    pst_framer_release(&c->in); /* not held while the request runs */
    if (rc != PST_OK) {
        free(req);
        bad_frame(c, pst_strerror(rc));
        return;
    }
    c->busy = true;
    c->refs++;
    /* NULL when already answered: on_reply ran and the slot stays empty */
    pst_node_req *r = pst_node_request_ex(c->srv->node, req, on_reply, on_progress, c);
    if (c->busy)
        c->inflight = r;
    free(req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    static char slab[65536]; /* the loop is single-threaded: one read at a time */
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    ctrl_conn *c = s->data;
    if (nread == UV_EOF && (c->inflight != NULL || (c->writes > 0 && !c->busy))) {
        /* cancel, but keep the writing half for the answer */
        c->eof = true;
        uv_read_stop(s);
        pst_node_req *r = c->inflight;
        c->inflight = NULL;
        pst_node_cancel_request(r);
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    uv_timer_again(&c->idle);
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t left = (size_t)nread;
    while (left > 0 && !c->closing) {
        if (c->busy) { /* one request at a time: a pipelining client is broken */
            bad_frame(c, "a second request arrived before the first was answered");
            return;
        }
        size_t used = 0;
        const uint8_t *frame = NULL;
        uint32_t len = 0;
        int rc = pst_framer_feed(&c->in, p, left, &used, &frame, &len);
        p += used;
        left -= used;
        if (rc != PST_OK) {
            bad_frame(c, rc == PST_E_NOMEM ? "out of memory"
                                           : "frame length is zero or over the 1 MiB limit");
            return;
        }
        if (frame != NULL)
            handle_frame(c, frame, len);
    }
}

static void on_idle(uv_timer_t *t) {
    ctrl_conn *c = t->data;
    if (!c->busy)
        conn_close(c);
}

/* The socket is 0600 in a 0700 home, but a chmod of either (or a root-owned
 * home shared by mistake) must not hand the node to another user: the kernel
 * says who connected, and only the node's own uid and root are served. */
static bool peer_allowed(ctrl_conn *c, char *why, size_t cap) {
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
        snprintf(why, cap, "cannot tell who connected");
        return false;
    }
    uid_t me = geteuid();
    if (cred.uid == me || cred.uid == 0)
        return true;
    snprintf(why, cap, "uid %ld (pid %ld); this node serves only uid %ld and root", (long)cred.uid,
             (long)cred.pid, (long)me);
    return false;
}

/* Answers once with an error and closes, without reading: the client learns
 * why instead of meeting a closed socket. */
static void refuse(ctrl_conn *c, const char *msg) {
    c->busy = true;
    pst_ctrl_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = PST_CTRL_STATUS_REFUSED;
    snprintf(resp.error, sizeof resp.error, "%s", msg);
    send_response(c, &resp, true);
}

static void on_connection(uv_stream_t *server, int status) {
    pst_ctrl_server *srv = server->data;
    if (status < 0 || srv->closing)
        return;
    ctrl_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->srv = srv;
    pst_framer_init(&c->in, PST_CTRL_FRAME_MAX, NULL);
    uv_pipe_init(srv->node->loop, &c->pipe, 0);
    uv_timer_init(srv->node->loop, &c->idle);
    c->pipe.data = c;
    c->idle.data = c;
    c->refs = 2; /* the two handles */
    srv->conns++;
    c->next = srv->head;
    if (srv->head)
        srv->head->prev = c;
    srv->head = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        conn_close(c);
        return;
    }
    char why[128], msg[256];
    if (!peer_allowed(c, why, sizeof why)) {
        pst_counter_rejected(srv->node, "control", "peer_uid");
        pst_log_warn("control socket: refused a connection from %s", why);
        snprintf(msg, sizeof msg,
                 "refused: the control socket serves only the user the node runs as (%s)", why);
        refuse(c, msg);
        return;
    }
    if (srv->conns > PST_CTRL_CONNS_MAX) {
        pst_counter_rejected(srv->node, "control", "too_many_connections");
        snprintf(msg, sizeof msg,
                 "the node is busy: %u control connections are open; try again shortly",
                 PST_CTRL_CONNS_MAX);
        refuse(c, msg);
        return;
    }
    uv_timer_start(&c->idle, on_idle, PST_CTRL_IDLE_MS, PST_CTRL_IDLE_MS);
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

static void on_failed_server_closed(uv_handle_t *h) { free(h->data); }

int pst_ctrl_server_start(pst_node *n, char *err, size_t errcap) {
    pst_ctrl_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return PST_E_NOMEM;
    srv->node = n;
    if (pst_home_path(n->cfg.home, PST_FILE_CONTROL, srv->path, sizeof srv->path) != PST_OK) {
        free(srv);
        snprintf(err, errcap, "home path too long");
        return PST_E_NOSPACE;
    }
    /* the lock file guarantees no other node owns this home: a socket file
     * left by a crash is stale */
    unlink(srv->path);
    uv_pipe_init(n->loop, &srv->pipe, 0);
    srv->pipe.data = srv;
    mode_t old = umask(0077); /* created 0600 from the start: no window */
    int rc = uv_pipe_bind(&srv->pipe, srv->path);
    umask(old);
    if (rc == 0)
        rc = chmod(srv->path, 0600) == 0 ? 0 : UV_EPERM;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->pipe, 16, on_connection);
    if (rc != 0) {
        snprintf(err, errcap, "cannot listen on %s: %s", srv->path, uv_strerror(rc));
        srv->closing = true;
        uv_close((uv_handle_t *)&srv->pipe, on_failed_server_closed);
        return PST_E_IO;
    }
    n->ctrl = srv;
    pst_node_handle_ref(n);
    return PST_OK;
}

static void on_server_closed(uv_handle_t *h) {
    pst_ctrl_server *srv = h->data;
    pst_node *n = srv->node;
    unlink(srv->path);
    free(srv);
    n->ctrl = NULL;
    pst_node_handle_unref(n);
}

void pst_ctrl_server_stop(pst_node *n) {
    pst_ctrl_server *srv = n->ctrl;
    if (srv == NULL || srv->closing)
        return;
    srv->closing = true;
    while (srv->head != NULL)
        conn_close(srv->head);
    uv_close((uv_handle_t *)&srv->pipe, on_server_closed);
}
