/* SMTP submission: the listener and each session's connection (docs/SMTP.md).
 *
 * The listener binds smtp_address (127.0.0.1 unless the user sets another)
 * on smtp_port. Each session reads into a fixed 8 KiB buffer and feeds the
 * pure input machine (proto/pst_smtp.h) one event at a time, so pipelined
 * commands are answered in order: while a recipient is looked up or a
 * message is being stored (SS_WAIT) nothing more is read or parsed, and
 * neither while more than SMTP_WRITE_QUEUE_MAX bytes of replies wait for a
 * client that does not read them.
 *
 * Limits: smtp_max_sessions at once (the next one is told 421 and closed;
 * past SMTP_SESSIONS_HARD_MAX closed unanswered); a session idle for
 * smtp_idle_timeout_s or older than smtp_total_timeout_s is told 421 and
 * closed. While the node works for the client (a recipient lookup, the
 * send after DATA) the idle timeout stops but the total one holds: the
 * lookup is abandoned, a send not yet committed is cancelled (a committed
 * one still gets its 250), then 421. Every refusal is counted
 * (rejected.smtp.REASON). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_int.h"

/* ---- lifetime ------------------------------------------------------------ */

static void srv_unref(struct pst_smtp_server *srv) {
    if (--srv->refs > 0)
        return;
    pst_node *n = srv->node;
    if (n->smtp == srv)
        n->smtp = NULL;
    if (n->lmtp == srv)
        n->lmtp = NULL;
    free(srv);
}

void pst_smtp__unref(smtp_session *s) {
    if (--s->refs > 0)
        return;
    struct pst_smtp_server *srv = s->srv;
    free(s->spool_buf);
    free(s->hdr);
    sodium_memzero(s, sizeof *s);
    free(s);
    srv_unref(srv);
}

static void on_handle_closed(uv_handle_t *h) {
    smtp_session *s = h->data;
    pst_node_handle_unref(s->node);
    pst_smtp__unref(s);
}

void pst_smtp__close(smtp_session *s) {
    if (s->closing)
        return;
    s->closing = true;
    struct pst_smtp_server *srv = s->srv;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->n_sessions--;
    if (srv->lmtp)
        pst_lmtp__data_abort(s);
    else
        pst_smtp__data_abort(s);
    uv_close((uv_handle_t *)&s->conn.stream, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

/* ---- timers ---------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
    smtp_session *s = t->data;
    if (s->closing)
        return;
    if (s->state == SS_CLOSING) { /* the last reply was not taken in time */
        pst_smtp__close(s);
        return;
    }
    bool total = uv_now(t->loop) >= s->deadline_ms;
    if (s->state == SS_WAIT) {
        /* the node works for the client: it is not idle, but the session
         * is still bounded (a slot held past the total otherwise) */
        if (!total) {
            pst_smtp__wait(s);
            return;
        }
        pst_counter_rejected(s->node, s->srv->name, "total_timeout");
        s->timed_out = true;
        if (s->op != NULL) {
            /* before the commit the send stops and nothing is stored; after
             * it the message is durable and its 250 still goes out: either
             * way on_send_done (smtp_data.c) sends the 421 */
            pst_send_cancel(s->op);
            return;
        }
        /* a recipient lookup: abandoned, its answer is dropped when it comes */
        pst_smtp__end(s);
        pst_smtp__reply(s,
                        "421 4.4.2 %s: session too long (a recipient lookup was still "
                        "running), closing",
                        SMTP_HOSTNAME);
        return;
    }
    pst_counter_rejected(s->node, s->srv->name, total ? "total_timeout" : "idle_timeout");
    pst_smtp__end(s);
    pst_smtp__reply(s, "421 4.4.2 %s: session %s, closing", SMTP_HOSTNAME,
                    total ? "too long" : "idle too long");
}

void pst_smtp__end(smtp_session *s) {
    s->state = SS_CLOSING;
    if (!s->closing)
        uv_timer_start(&s->timer, on_timer, SMTP_LINGER_MS, 0);
}

/* Idle time starts over (a line came, or the node's own work ended). */
static void arm(smtp_session *s) {
    const pst_node_config *c = &s->node->cfg;
    uint64_t now = uv_now(s->node->loop);
    uint64_t idle = (uint64_t)(c->smtp_idle_timeout_s ? c->smtp_idle_timeout_s : 300u) * 1000u;
    uint64_t left = s->deadline_ms > now ? s->deadline_ms - now : 0;
    uv_timer_start(&s->timer, on_timer, idle < left ? idle : left, 0);
}

void pst_smtp__wait(smtp_session *s) {
    s->state = SS_WAIT;
    if (s->closing)
        return;
    uint64_t now = uv_now(s->node->loop);
    uv_timer_start(&s->timer, on_timer, s->deadline_ms > now ? s->deadline_ms - now : 0, 0);
}

/* ---- replies --------------------------------------------------------------- */

typedef struct {
    uv_write_t req;
    smtp_session *s;
    size_t len;
    char data[];
} smtp_write;

static void pump(smtp_session *s);

static void on_written(uv_write_t *req, int status) {
    smtp_write *w = (smtp_write *)req;
    smtp_session *s = w->s;
    free(w);
    if (!s->closing) {
        if (status < 0)
            pst_smtp__close(s);
        else if (s->state == SS_CLOSING && uv_stream_get_write_queue_size(&s->conn.stream) == 0)
            pst_smtp__close(s);
        else
            pump(s); /* input may have waited for the queue to drain */
    }
    pst_smtp__unref(s);
}

void pst_smtp__reply_raw(smtp_session *s, const char *text, size_t len) {
    if (s->closing)
        return;
    smtp_write *w = malloc(sizeof *w + len);
    if (w == NULL) {
        pst_smtp__close(s);
        return;
    }
    w->s = s;
    w->len = len;
    memcpy(w->data, text, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    s->refs++;
    if (uv_write(&w->req, &s->conn.stream, &b, 1, on_written) != 0) {
        free(w);
        s->refs--;
        pst_smtp__close(s);
    }
}

void pst_smtp__reply(smtp_session *s, const char *fmt, ...) {
    char line[SMTP_REPLY_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, SMTP_REPLY_MAX, fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    if ((size_t)len >= SMTP_REPLY_MAX)
        len = SMTP_REPLY_MAX - 1;
    /* text from elsewhere (an address, an error) must not end the line */
    for (int i = 0; i < len; i++)
        if ((unsigned char)line[i] < ' ' || (unsigned char)line[i] >= 0x7f)
            line[i] = '?';
    line[len++] = '\r';
    line[len++] = '\n';
    pst_smtp__reply_raw(s, line, (size_t)len);
}

/* ---- input ----------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    smtp_session *s = h->data;
    if (s->roff > 0) {
        memmove(s->rbuf, s->rbuf + s->roff, s->rlen - s->roff);
        s->rlen -= s->roff;
        s->roff = 0;
    }
    *buf = uv_buf_init((char *)s->rbuf + s->rlen, (unsigned)(sizeof s->rbuf - s->rlen));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    smtp_session *s = st->data;
    if (s->closing || nread == 0)
        return;
    if (nread < 0) {
        if (s->have_mail || s->state == SS_DATA)
            pst_counter_add(
                s->node, s->srv->lmtp ? "lmtp.dropped_transactions" : "smtp.dropped_transactions",
                1);
        pst_smtp__close(s);
        return;
    }
    s->rlen += (size_t)nread;
    if (s->state != SS_WAIT)
        arm(s);
    pump(s);
}

static bool input_blocked(smtp_session *s) {
    return s->state == SS_WAIT || s->state == SS_CLOSING ||
           uv_stream_get_write_queue_size(&s->conn.stream) > SMTP_WRITE_QUEUE_MAX;
}

/* Feeds the machine until the input is used up or the session must wait. */
static void pump(smtp_session *s) {
    s->refs++; /* an event may close the session */
    while (!s->closing && !input_blocked(s) && s->roff < s->rlen) {
        size_t used = 0;
        pst_smtp_event ev;
        pst_smtp_in_feed(&s->in, s->rbuf + s->roff, s->rlen - s->roff, &used, &ev);
        s->roff += used;
        if (ev.kind != PST_SMTP_EV_NONE)
            pst_smtp__event(s, &ev);
    }
    if (!s->closing) {
        bool want = !input_blocked(s) && s->rlen - s->roff < sizeof s->rbuf;
        if (want && !s->reading)
            s->reading = uv_read_start(&s->conn.stream, on_alloc, on_read) == 0;
        else if (!want && s->reading) {
            uv_read_stop(&s->conn.stream);
            s->reading = false;
        }
    }
    pst_smtp__unref(s);
}

void pst_smtp__resume(smtp_session *s) {
    if (s->closing)
        return;
    if (s->state == SS_WAIT)
        s->state = SS_CMD;
    arm(s);
    pump(s);
}

uint64_t pst_smtp__size_limit(const pst_node *n) {
    uint64_t max = n->cfg.max_message_bytes < PST_MESSAGE_SIZE_MAX ? n->cfg.max_message_bytes
                                                                   : PST_MESSAGE_SIZE_MAX;
    /* the limit is on the ciphertext: leave room for the encryption's
     * per-chunk overhead and the header fields the node adds */
    uint64_t room = max / 256u + 4096u;
    return max > room ? max - room : 0;
}

/* ---- accepting --------------------------------------------------------------- */

static void on_connection(uv_stream_t *server, int status) {
    struct pst_smtp_server *srv = server->data;
    pst_node *n = srv->node;
    if (status < 0 || srv->closing)
        return;
    smtp_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return;
    s->srv = srv;
    s->node = n;
    s->spool_fd = -1;
    s->refs = 2; /* the two handles */
    srv->refs++;
    if (srv->lmtp)
        uv_pipe_init(n->loop, &s->conn.pipe, 0);
    else
        uv_tcp_init(n->loop, &s->conn.tcp);
    uv_timer_init(n->loop, &s->timer);
    pst_node_handle_ref(n);
    pst_node_handle_ref(n);
    s->conn.stream.data = s;
    s->timer.data = s;
    pst_smtp_in_init(&s->in);
    if ((s->next = srv->head) != NULL)
        srv->head->prev = s;
    srv->head = s;
    srv->n_sessions++;
    if (uv_accept(server, &s->conn.stream) != 0) {
        pst_smtp__close(s);
        return;
    }
    pst_counter_add(n, srv->lmtp ? "lmtp.sessions" : "smtp.sessions", 1);
    uint32_t total = n->cfg.smtp_total_timeout_s ? n->cfg.smtp_total_timeout_s : 3600u;
    s->deadline_ms = uv_now(n->loop) + (uint64_t)total * 1000u;
    unsigned max = n->cfg.smtp_max_sessions ? n->cfg.smtp_max_sessions : 1u;
    if (srv->n_sessions > SMTP_SESSIONS_HARD_MAX) {
        pst_counter_rejected(n, srv->name, "session_limit");
        pst_smtp__close(s);
        return;
    }
    arm(s);
    if (srv->n_sessions > max) {
        pst_counter_rejected(n, srv->name, "session_limit");
        pst_smtp__end(s);
        pst_smtp__reply(s, "421 4.7.0 %s: too many sessions (at most %u): try again later",
                        SMTP_HOSTNAME, max);
        return;
    }
    if (srv->lmtp)
        pst_smtp__reply(s, "220 %s LMTP Postern", SMTP_HOSTNAME);
    else
        pst_smtp__reply(s, "220 %s ESMTP Postern submission", SMTP_HOSTNAME);
    pump(s);
}

static void on_listener_closed(uv_handle_t *h) {
    struct pst_smtp_server *srv = h->data;
    pst_node *n = srv->node;
    srv_unref(srv);
    pst_node_handle_unref(n);
}

struct pst_smtp_server *pst_smtp__server_new(pst_node *n, bool lmtp) {
    struct pst_smtp_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    srv->node = n;
    srv->refs = 1;
    srv->lmtp = lmtp;
    srv->name = lmtp ? "lmtp" : "smtp";
    if (lmtp)
        uv_pipe_init(n->loop, &srv->listener.pipe, 0);
    else
        uv_tcp_init(n->loop, &srv->listener.tcp);
    pst_node_handle_ref(n);
    srv->listener.stream.data = srv;
    return srv;
}

int pst_smtp__server_listen(struct pst_smtp_server *srv) {
    return uv_listen(&srv->listener.stream, SMTP_BACKLOG, on_connection);
}

void pst_smtp__server_close(struct pst_smtp_server *srv) {
    if (srv == NULL || srv->closing)
        return;
    srv->closing = true;
    while (srv->head != NULL)
        pst_smtp__close(srv->head);
    uv_close((uv_handle_t *)&srv->listener.stream, on_listener_closed);
}

int pst_smtp_server_start(pst_node *n, char *err, size_t errcap) {
    n->smtp_port = 0;
    if (n->cfg.smtp_port == 0 && !n->cfg.smtp_port_any)
        return PST_OK; /* turned off */
    /* a home made before the listener existed gets its password now */
    char pw[PST_SMTP_PASSWORD_LEN + 1], why[512];
    int rc = pst_node_smtp_password(n->cfg.home, false, pw, why, sizeof why);
    sodium_memzero(pw, sizeof pw);
    if (rc != PST_OK) {
        snprintf(err, errcap, "SMTP submission: %s", why);
        return rc;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    uint16_t port = n->cfg.smtp_port_any ? 0 : n->cfg.smtp_port;
    if (uv_ip4_addr(n->cfg.smtp_address, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(n->cfg.smtp_address, port, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(err, errcap, "smtp_address '%s' is not an IP address", n->cfg.smtp_address);
        return PST_E_INVAL;
    }
    struct pst_smtp_server *srv = pst_smtp__server_new(n, false);
    if (srv == NULL)
        return PST_E_NOMEM;
    n->smtp = srv;
    rc = uv_tcp_bind(&srv->listener.tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = pst_smtp__server_listen(srv);
    if (rc == UV_EADDRINUSE && !n->cfg.smtp_port_chosen) {
        /* the default port, taken (another posternd on this machine, or
         * another program): the node still runs, without submission */
        pst_log_warn("SMTP submission is off: %s port %u is taken; set smtp_port in "
                     "postern.conf (or --smtp-port) to a free port, or to 0 to silence this",
                     n->cfg.smtp_address, port);
        pst_counter_add(n, "smtp.default_port_taken", 1);
        pst_smtp_server_stop(n);
        return PST_OK;
    }
    if (rc != 0) {
        snprintf(err, errcap,
                 "cannot listen for SMTP submission on %s port %u: %s (choose another "
                 "--smtp-port, or 0 to turn it off)",
                 n->cfg.smtp_address, port, uv_strerror(rc));
        return PST_E_IO; /* the stop closes the handle */
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&srv->listener.tcp, (struct sockaddr *)&bound, &blen);
    n->smtp_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                     : ((struct sockaddr_in *)&bound)->sin_port);
    return PST_OK;
}

void pst_smtp_server_stop(pst_node *n) {
    n->smtp_port = 0;
    pst_smtp__server_close(n->smtp);
}
