/* The fetch server: recipients' nodes connect over TCP to fetch a message's
 * ciphertext and to hand in their receipts (docs/PROTOCOL.md section 4,
 * "Fetch exchange"). Per connection:
 *
 *   first frame FetchRequest: verify (time, signature), refuse a replayed
 *     nonce, serve only a pending recipient of the message (anyone else gets
 *     not_found, whether the message exists or not), hash the whole body
 *     file in the thread pool (a body whose hash is not its message id was
 *     damaged on our disk: refused as internal, never sent), reply a signed
 *     header,
 *     stream the ciphertext from the requested offset one 64 KiB chunk at a
 *     time (the next file read starts when the previous write completed),
 *     then wait for the Receipt frame;
 *   first frame Receipt: a receipt for a message fetched earlier.
 *   first frame Hint: a notification handed to us directly, and more may
 *     follow on the same connection; never answered unless refused
 *     (fetch_hint.c).
 *   A verified Receipt is stored and answered with the acknowledgement
 *   (status ok, total_size 0, offset 0), then the connection closes.
 *
 * Limits: PST_FRAME_MAX per frame, never read past its end (reads land in
 * the server's one 8 KiB buffer, capped at what the frame still needs, and
 * pst_framer copies them into the connection's frame);
 * connections per address (fetch_conns_per_ip) and in all; a whole frame must
 * arrive within fetch_idle_timeout_s and every streamed chunk must be taken
 * within it (a slow peer is dropped); a connection ends after
 * fetch_total_timeout_s. Every refusal is counted (rejected.fetch.REASON) and
 * answered with a signed FetchResponse whose error_text says why, when the
 * connection still allows a frame.
 *
 * This file: the listener, each connection's lifetime and timers, frames in
 * and out, and what the first frame is. Serving a body is fetch_serve.c,
 * taking a receipt fetch_receipt.c (shared: fetch_server_int.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "outbox_int.h"
#include "pst_fetch.h"
#include "pst_framer.h"
#include "pst_log.h"
#include "pst_record.h"

#include "fetch_server_int.h"

static const uint8_t zero_id[PST_HASH_BYTES];

/* ---- lifetime ------------------------------------------------------------ */

void pst_fetch_srv_server_unref(struct pst_fetch_server *srv) {
    if (--srv->refs > 0)
        return;
    struct pst_outbox *o = srv->o;
    o->fetch = NULL;
    pst_nonce_set_free(&srv->nonces);
    free(srv);
    pst_outbox_release(o);
}

void pst_fetch_srv_unref(fconn *c) {
    if (--c->refs > 0)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->chunk);
    struct pst_fetch_server *srv = c->srv;
    free(c);
    pst_fetch_srv_server_unref(srv);
}

static void on_conn_handle_closed(uv_handle_t *h) { pst_fetch_srv_unref(h->data); }

void pst_fetch_srv_close(fconn *c) {
    if (c->closing)
        return;
    c->closing = true;
    struct pst_fetch_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    pst_fetch_srv_sync_drop(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timer(uv_timer_t *t) {
    fconn *c = t->data;
    if (c->closing)
        return;
    /* a hint connection falls quiet when its sender has nothing to say */
    if (c->state != S_LINGER && c->state != S_HINTS)
        pst_counter_rejected(c->srv->node, "fetch",
                             uv_now(t->loop) >= c->deadline_ms ? "total_timeout" : "idle_timeout");
    pst_fetch_srv_close(c);
}

/* The next step must happen within ms (and before the total deadline). */
void pst_fetch_srv_arm(fconn *c, uint64_t ms) {
    uint64_t now = uv_now(c->srv->node->loop);
    uint64_t left = c->deadline_ms > now ? c->deadline_ms - now : 0;
    uv_timer_start(&c->timer, on_timer, ms < left ? ms : left, 0);
}

uint64_t pst_fetch_srv_idle_ms(const fconn *c) {
    uint32_t s = c->srv->node->cfg.fetch_idle_timeout_s;
    return (uint64_t)(s ? s : PST_DEFAULT_FETCH_IDLE_S) * 1000u;
}

/* ---- frames in ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    fconn *c = h->data;
    /* read exactly what the current frame still needs: nothing is buffered
     * beyond it, and a peer that sends more waits in the kernel */
    size_t want = c->state == S_LINGER ? sizeof c->srv->rbuf : pst_framer_want(&c->in);
    *buf = uv_buf_init((char *)c->srv->rbuf, (unsigned)want);
}

static void handle_frame(fconn *c, const uint8_t *frame, uint32_t len);
void pst_fetch_srv_reject(fconn *c, const uint8_t *msg_id, uint64_t status, uint64_t offset,
                          const char *reason, const char *text) {
    pst_counter_rejected(c->srv->node, "fetch", reason);
    pst_log_debug("fetch from %s refused (%s): %s", c->ip, reason, text);
    pst_fetch_srv_respond(c, msg_id, status, offset, offset, text, NEXT_CLOSE);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void pst_fetch_srv_read(fconn *c) {
    pst_framer_reset(&c->in);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        pst_fetch_srv_close(c);
        return;
    }
    pst_fetch_srv_arm(c, pst_fetch_srv_idle_ms(c));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    fconn *c = s->data;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        if (c->state == S_RECEIPT)
            pst_counter_add(c->srv->node, "fetch.no_receipt", 1);
        pst_fetch_srv_close(c);
        return;
    }
    if (c->state == S_LINGER)
        return; /* discarded until the peer closes */
    /* on_alloc asked for no more than the frame needs: all of it is taken */
    size_t used = 0;
    const uint8_t *frame = NULL;
    uint32_t len = 0;
    int rc =
        pst_framer_feed(&c->in, (const uint8_t *)buf->base, (size_t)nread, &used, &frame, &len);
    if (rc == PST_OK && used != (size_t)nread) {
        /* cannot happen while on_alloc caps reads; never read past a frame */
        pst_log_warn("fetch: read past the frame (%zu of %zd bytes taken): closing", used, nread);
        pst_fetch_srv_close(c);
        return;
    }
    if (rc != PST_OK) { /* the only error without our own storage: a bad length */
        uv_read_stop(s);
        char text[80];
        snprintf(text, sizeof text, "frame length must be 1..%u bytes", PST_FRAME_MAX);
        pst_fetch_srv_reject(c, zero_id, PST_FETCH_TOO_LARGE, 0, "frame_size", text);
        return;
    }
    if (frame != NULL) {
        uv_read_stop(s);
        uv_timer_stop(&c->timer);
        handle_frame(c, frame, len);
    }
}

/* ---- frames out ------------------------------------------------------------ */

static void on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    fconn *c = req->data;
    if (!c->closing) {
        /* wait for the peer's EOF rather than reset a connection whose last
         * frame it may not have read yet */
        c->state = S_LINGER;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            pst_fetch_srv_close(c);
        else
            pst_fetch_srv_arm(c, FETCH_LINGER_MS);
    }
    pst_fetch_srv_unref(c);
}

static void finish_conn(fconn *c) {
    c->sd.data = c;
    c->refs++;
    if (uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        c->refs--;
        pst_fetch_srv_close(c);
    }
}

static void on_response_written(uv_write_t *req, int status) {
    fconn *c = req->data;
    if (!c->closing) {
        if (status < 0)
            pst_fetch_srv_close(c);
        else if (c->after_write == NEXT_STREAM)
            pst_fetch_srv_stream(c);
        else
            finish_conn(c);
    }
    pst_fetch_srv_unref(c);
}

void pst_fetch_srv_respond(fconn *c, const uint8_t *msg_id, uint64_t status, uint64_t total,
                           uint64_t offset, const char *text, next_step next) {
    pst_node *n = c->srv->node;
    pst_fetch_response r;
    memset(&r, 0, sizeof r);
    r.created = pst_now();
    r.expires = r.created + PST_FETCH_SKEW_DEFAULT;
    memcpy(r.msg_id, msg_id, PST_HASH_BYTES);
    r.status = status;
    r.total_size = total;
    r.offset = offset;
    snprintf(r.error_text, sizeof r.error_text, "%s", status == PST_FETCH_OK ? "" : text);
    size_t len = 0;
    int rc = pst_fetch_response_sign(&r, pst_node_device_keys(n)->sign_sk);
    if (rc == PST_OK)
        rc = pst_fetch_response_encode(&r, c->out + PST_FRAME_HEADER_BYTES, PST_FETCH_RESPONSE_MAX,
                                       &len);
    if (rc != PST_OK) {
        pst_log_error("cannot build a fetch response: %s", pst_strerror(rc));
        pst_fetch_srv_close(c);
        return;
    }
    pst_frame_header_write((uint32_t)len, c->out);
    c->after_write = next;
    c->wr.data = c;
    uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)(len + PST_FRAME_HEADER_BYTES));
    c->refs++;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_response_written) != 0) {
        c->refs--;
        pst_fetch_srv_close(c);
        return;
    }
    pst_fetch_srv_arm(c, pst_fetch_srv_idle_ms(c));
}

static void handle_frame(fconn *c, const uint8_t *frame, uint32_t len) {
    pst_fetch_request req;
    pst_receipt rec;
    char text[PST_FETCH_ERROR_TEXT_MAX + 1];
    pst_rec_type type;
    if (pst_record_peek_type(frame, len, &type) == PST_OK && type == PST_REC_HINT) {
        pst_fetch_srv_hint(c, frame, len);
        return;
    }
    if (c->state == S_HINTS) {
        pst_fetch_srv_reject(c, zero_id, PST_FETCH_BAD_REQUEST, 0, "unexpected_frame",
                             "expected a Hint");
        return;
    }
    int rc = pst_fetch_request_decode(frame, len, &req);
    if (rc == PST_OK) {
        if (c->state == S_FIRST)
            pst_fetch_srv_request(c, &req);
        else
            pst_fetch_srv_reject(c, req.msg_id, PST_FETCH_BAD_REQUEST, 0, "unexpected_frame",
                                 "expected the Receipt");
        return;
    }
    int rc2 = pst_receipt_decode(frame, len, &rec);
    if (rc2 == PST_OK) {
        pst_fetch_srv_receipt(c, &rec, frame, len);
        return;
    }
    if (rc == PST_E_RECTYPE)
        rc = rc2;
    snprintf(text, sizeof text, "not a FetchRequest or Receipt: %s", pst_strerror(rc));
    char why[40];
    pst_fetch_srv_reject(c, zero_id, PST_FETCH_BAD_REQUEST, 0, pst_err_reason(rc, why, sizeof why),
                         text);
}

/* ---- accepting ------------------------------------------------------------- */

static unsigned conns_from(const struct pst_fetch_server *srv, const char *ip) {
    unsigned k = 0;
    for (const fconn *c = srv->head; c != NULL; c = c->next)
        k += strcmp(c->ip, ip) == 0;
    return k;
}

static void peer_name(fconn *c) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    snprintf(c->ip, sizeof c->ip, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof c->ip);
    else
        uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof c->ip);
}

static void on_connection(uv_stream_t *server, int status) {
    struct pst_fetch_server *srv = server->data;
    pst_node *n = srv->node;
    if (status < 0 || srv->closing)
        return;
    fconn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return; /* libuv retries the accept on the next connection */
    c->srv = srv;
    c->fd = -1;
    c->refs = 2;
    srv->refs++;
    uv_tcp_init(n->loop, &c->tcp);
    uv_timer_init(n->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    pst_framer_init(&c->in, PST_FRAME_MAX, c->frame);
    if ((c->next = srv->head) != NULL)
        srv->head->prev = c;
    srv->head = c;
    srv->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        pst_fetch_srv_close(c);
        return;
    }
    peer_name(c);
    pst_counter_add(n, "fetch.connections", 1);
    uint32_t total =
        n->cfg.fetch_total_timeout_s ? n->cfg.fetch_total_timeout_s : PST_DEFAULT_FETCH_TOTAL_S;
    c->deadline_ms = uv_now(n->loop) + (uint64_t)total * 1000u;
    c->state = S_FIRST;
    unsigned per_ip = n->cfg.fetch_conns_per_ip ? n->cfg.fetch_conns_per_ip : 1;
    if (srv->n_conns > FETCH_CONNS_HARD_MAX) {
        pst_counter_rejected(n, "fetch", "conn_limit");
        pst_fetch_srv_close(c);
    } else if (srv->n_conns > FETCH_CONNS_MAX || conns_from(srv, c->ip) > per_ip) {
        pst_fetch_srv_reject(c, zero_id, PST_FETCH_BUSY, 0, "conn_limit",
                             "too many connections: retry later");
    } else {
        pst_fetch_srv_read(c);
    }
}

static void fill_addr(const pst_node *n, uint16_t port, struct sockaddr_storage *ss) {
    const char *host = n->cfg.advertise;
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) != 0)
        uv_ip4_addr("0.0.0.0", port, (struct sockaddr_in *)ss);
}

/* A bound, non-blocking socket, or -errno. */
static int bind_socket(const struct sockaddr_storage *ss) {
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static void on_listener_closed(uv_handle_t *h) { pst_fetch_srv_server_unref(h->data); }

#define META_FETCH_PORT "fetch_port_last"

int pst_fetch_server_start(pst_node *n, char *err, size_t errcap) {
    struct pst_outbox *o = n->outbox;
    struct pst_fetch_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return PST_E_NOMEM;
    srv->node = n;
    srv->o = o;
    srv->refs = 1;
    pst_nonce_set_init(&srv->nonces);
    o->fetch = srv;
    pst_outbox_hold(o);
    uv_tcp_init(n->loop, &srv->tcp);
    srv->tcp.data = srv;
    pst_fetch_srv_sync_init(srv);
    /* Notifications already in the DHT name our endpoint: with an ephemeral
     * port (fetch_port 0) take the previous run's port again when it is
     * free, so a restart does not strand them. */
    struct sockaddr_storage ss;
    uint64_t last = 0;
    int fd = -1;
    if (n->cfg.fetch_port == 0 &&
        pst_store_meta_get_u64(n->store, META_FETCH_PORT, &last) == PST_OK && last > 0 &&
        last <= 65535) {
        fill_addr(n, (uint16_t)last, &ss);
        fd = bind_socket(&ss);
    }
    if (fd < 0) {
        fill_addr(n, n->cfg.fetch_port, &ss);
        fd = bind_socket(&ss);
    }
    int rc = fd;
    if (fd >= 0 && (rc = uv_tcp_open(&srv->tcp, fd)) != 0)
        close(fd); /* not adopted by the handle */
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->tcp, FETCH_BACKLOG, on_connection);
    if (rc != 0) {
        snprintf(err, errcap, "cannot listen on fetch port %u: %s (choose another --fetch-port)",
                 n->cfg.fetch_port, uv_strerror(rc));
        return PST_E_IO;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&bound, &blen);
    n->fetch_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
    if (n->fetch_port != last &&
        pst_store_meta_set_u64(n->store, META_FETCH_PORT, n->fetch_port) != PST_OK)
        pst_log_warn("cannot remember the fetch port: %s", pst_store_last_error(n->store));
    return PST_OK;
}

void pst_fetch_server_stop(pst_node *n) {
    struct pst_outbox *o = n->outbox;
    struct pst_fetch_server *srv = o ? o->fetch : NULL;
    if (srv == NULL || srv->closing)
        return;
    srv->closing = true;
    while (srv->head != NULL)
        pst_fetch_srv_close(srv->head);
    pst_fetch_srv_sync_close(srv);
    uv_close((uv_handle_t *)&srv->tcp, on_listener_closed);
}
