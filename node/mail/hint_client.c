/* The sender's side of direct hints (hint_int.h, docs/MAIL.md "Hints").
 *
 * Right after a new notification's first DHT put, pst_hint_send queues the
 * same bytes, wrapped in a Hint frame, for every endpoint of the
 * recipient's cached key record. One connection per endpoint is kept open
 * while hints flow (closed after PST_HINT_IDLE_MS of quiet), frames queued
 * meanwhile go out together in one write, and nothing is read back but a
 * refusal. Best effort throughout: a hint that cannot be delivered within
 * its timeouts is counted and forgotten, since the notification is in the
 * DHT and re-put there until the receipt comes.
 *
 * Bounds: PST_HINT_PEERS_MAX endpoints, PST_HINT_QUEUE_MAX hints waiting in
 * all (beyond, the oldest is dropped: hint.out.dropped), PST_HINT_AGE_MAX_MS
 * in a queue. An endpoint that failed is left alone for PST_HINT_BACKOFF_MS
 * (PST_HINT_REFUSED_MS after a refusal), so an offline recipient costs one
 * failed connect per back-off, not one per message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hint_int.h"
#include "outbox_int.h"
#include "pst_log.h"

typedef struct hint_item {
    struct hint_item *next;
    uint64_t seq, queued_ms;
    uint32_t len; /* frame bytes, the length prefix included */
    uint8_t frame[PST_FRAME_HEADER_BYTES + PST_HINT_MAX];
} hint_item;

typedef enum { P_IDLE, P_RESOLVING, P_CONNECTING, P_READY, P_CLOSING } peer_state;

typedef struct hint_peer {
    struct pst_hint_client *hc;
    char endpoint[PST_NOTIFY_ENDPOINT_MAX + 1];
    peer_state state;
    unsigned refs; /* timer, tcp handle, resolver in flight: a node handle ref each */
    bool abandon;  /* the resolver's answer comes after a failure: ignore it */
    bool writing;  /* batch is in flight */
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    hint_item *head, *tail;
    unsigned queued;
    hint_item *batch[PST_HINT_BATCH_MAX];
    unsigned n_batch;
    uint64_t last_ms, retry_at_ms;
    uint8_t rbuf[64]; /* a refusal's first bytes; never parsed */
} hint_peer;

struct pst_hint_client {
    pst_node *node;
    bool stopping;
    unsigned refs; /* 1 while running, + 1 per peer not yet freed */
    uint64_t seq;
    unsigned queued;
    hint_peer *peers[PST_HINT_PEERS_MAX];
};

static void connect_peer(hint_peer *p);
static void flush(hint_peer *p);

/* ---- lifetime -------------------------------------------------------------- */

static void hc_unref(struct pst_hint_client *hc) {
    if (--hc->refs == 0)
        free(hc);
}

static void peer_ref(hint_peer *p) {
    p->refs++;
    pst_node_handle_ref(p->hc->node);
}

static void peer_unref(hint_peer *p) {
    struct pst_hint_client *hc = p->hc;
    pst_node *n = hc->node;
    if (--p->refs == 0 && hc->stopping) {
        free(p);
        hc_unref(hc);
    }
    pst_node_handle_unref(n);
}

static void on_handle_closed(uv_handle_t *h) {
    hint_peer *p = h->data;
    if (h == (uv_handle_t *)&p->tcp) {
        p->state = P_IDLE;
        if (!p->hc->stopping && p->queued > 0 && uv_now(p->hc->node->loop) >= p->retry_at_ms)
            connect_peer(p);
    }
    peer_unref(p);
}

/* ---- the queue -------------------------------------------------------------- */

static void free_queue(hint_peer *p, const char *counter) {
    while (p->head != NULL) {
        hint_item *it = p->head;
        p->head = it->next;
        free(it);
        p->queued--;
        p->hc->queued--;
        if (counter != NULL)
            pst_counter_add(p->hc->node, counter, 1);
    }
    p->tail = NULL;
}

static hint_item *pop(hint_peer *p) {
    hint_item *it = p->head;
    if (it != NULL) {
        p->head = it->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        p->hc->queued--;
    }
    return it;
}

/* The whole queue is full: the oldest hint of any endpoint gives way. */
static void drop_oldest(struct pst_hint_client *hc) {
    hint_peer *oldest = NULL;
    for (unsigned i = 0; i < PST_HINT_PEERS_MAX; i++) {
        hint_peer *p = hc->peers[i];
        if (p != NULL && p->head != NULL && (oldest == NULL || p->head->seq < oldest->head->seq))
            oldest = p;
    }
    if (oldest != NULL) {
        free(pop(oldest));
        pst_counter_add(hc->node, "hint.out.dropped", 1);
        pst_outbox_hints_failed(hc->node);
    }
}

/* ---- the connection ---------------------------------------------------------- */

static void close_conn(hint_peer *p) {
    if (p->state == P_CONNECTING || p->state == P_READY) {
        p->state = P_CLOSING;
        uv_close((uv_handle_t *)&p->tcp, on_handle_closed);
    } else if (p->state == P_RESOLVING) {
        p->abandon = true;
        uv_cancel((uv_req_t *)&p->gai);
    }
    uv_timer_stop(&p->timer);
}

/* This endpoint failed: what waits for it is given up (the DHT has it),
 * and it is left alone for a while. */
static void fail(hint_peer *p, const char *why) {
    pst_log_debug("hint to %s failed (%s): %u waiting hint%s left to the DHT", p->endpoint, why,
                  p->queued, p->queued == 1 ? "" : "s");
    free_queue(p, "hint.out.failed");
    p->retry_at_ms = uv_now(p->hc->node->loop) + PST_HINT_BACKOFF_MS;
    close_conn(p);
    pst_outbox_hints_failed(p->hc->node); /* their first puts wait no longer */
}

static void on_timer(uv_timer_t *t) {
    hint_peer *p = t->data;
    if (p->state == P_RESOLVING || p->state == P_CONNECTING || (p->state == P_READY && p->writing))
        fail(p, "timeout");
    else if (p->state == P_READY)
        close_conn(p); /* quiet for PST_HINT_IDLE_MS */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    hint_peer *p = h->data;
    *buf = uv_buf_init((char *)p->rbuf, sizeof p->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    hint_peer *p = s->data;
    if (nread == 0 || p->state != P_READY)
        return;
    if (nread > 0) {
        /* the recipient answers a hint only to refuse it (hints off there,
         * or that endpoint is no longer the recipient's) */
        pst_counter_add(p->hc->node, "hint.out.refused", 1);
        fail(p, "refused");
        p->retry_at_ms = uv_now(p->hc->node->loop) + PST_HINT_REFUSED_MS;
        return;
    }
    /* the recipient closed (its idle or total timeout, a restart): what
     * waits goes on a new connection */
    close_conn(p);
}

static void on_write(uv_write_t *req, int status) {
    hint_peer *p = req->data;
    pst_node *n = p->hc->node;
    p->writing = false;
    pst_counter_add(n, status == 0 ? "hint.out.sent" : "hint.out.failed", p->n_batch);
    for (unsigned i = 0; i < p->n_batch; i++)
        free(p->batch[i]);
    p->n_batch = 0;
    if (p->hc->stopping || p->state != P_READY)
        return;
    if (status < 0) {
        fail(p, uv_strerror(status));
        return;
    }
    p->last_ms = uv_now(n->loop);
    flush(p);
}

/* Writes what waits, up to PST_HINT_BATCH_MAX frames in one write. */
static void flush(hint_peer *p) {
    if (p->state != P_READY || p->writing)
        return;
    uint64_t now = uv_now(p->hc->node->loop);
    bool dropped = false;
    while (p->head != NULL && now - p->head->queued_ms > PST_HINT_AGE_MAX_MS) {
        free(pop(p));
        pst_counter_add(p->hc->node, "hint.out.dropped", 1);
        dropped = true;
    }
    if (dropped)
        pst_outbox_hints_failed(p->hc->node);
    if (p->head == NULL) {
        uv_timer_start(&p->timer, on_timer, PST_HINT_IDLE_MS, 0);
        return;
    }
    uv_buf_t bufs[PST_HINT_BATCH_MAX];
    while (p->n_batch < PST_HINT_BATCH_MAX && p->head != NULL) {
        hint_item *it = pop(p);
        bufs[p->n_batch] = uv_buf_init((char *)it->frame, it->len);
        p->batch[p->n_batch++] = it;
    }
    p->wr.data = p;
    if (uv_write(&p->wr, (uv_stream_t *)&p->tcp, bufs, p->n_batch, on_write) != 0) {
        pst_counter_add(p->hc->node, "hint.out.failed", p->n_batch);
        for (unsigned i = 0; i < p->n_batch; i++)
            free(p->batch[i]);
        p->n_batch = 0;
        fail(p, "write");
        return;
    }
    p->writing = true;
    uv_timer_start(&p->timer, on_timer, PST_HINT_WRITE_MS, 0);
}

static void on_connect(uv_connect_t *req, int status) {
    hint_peer *p = req->data;
    if (p->hc->stopping || p->state != P_CONNECTING)
        return; /* closed meanwhile: on_handle_closed does the rest */
    if (status < 0) {
        fail(p, uv_strerror(status));
        return;
    }
    p->state = P_READY;
    pst_counter_add(p->hc->node, "hint.out.connects", 1);
    if (uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read) != 0) {
        fail(p, "read");
        return;
    }
    uv_timer_stop(&p->timer);
    flush(p);
}

static void start_tcp(hint_peer *p, const struct sockaddr *sa) {
    pst_node *n = p->hc->node;
    uv_tcp_init(n->loop, &p->tcp);
    p->tcp.data = p;
    peer_ref(p);
    p->state = P_CONNECTING;
    (void)uv_tcp_nodelay(&p->tcp, 1); /* a hint is one small frame: no Nagle wait */
    p->conn.data = p;
    if (uv_tcp_connect(&p->conn, &p->tcp, sa, on_connect) != 0) {
        fail(p, "connect");
        return;
    }
    uv_timer_start(&p->timer, on_timer, PST_HINT_CONNECT_MS, 0);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai) {
    hint_peer *p = req->data;
    bool abandon = p->abandon;
    p->abandon = false;
    p->state = P_IDLE;
    if (!p->hc->stopping && !abandon) {
        if (status != 0 || ai == NULL)
            fail(p, "resolve");
        else
            start_tcp(p, ai->ai_addr);
    }
    uv_freeaddrinfo(ai);
    peer_unref(p);
}

/* From P_IDLE: a numeric endpoint is connected at once, a name resolved
 * first (in libuv's pool). */
static void connect_peer(hint_peer *p) {
    pst_node *n = p->hc->node;
    char host[PST_NOTIFY_ENDPOINT_MAX + 1], port[8];
    if (p->state != P_IDLE)
        return;
    if (pst_config_split_hostport(p->endpoint, host, sizeof host, port, sizeof port) != PST_OK) {
        fail(p, "endpoint");
        return;
    }
    struct sockaddr_storage ss;
    int portnum = atoi(port);
    if (uv_ip4_addr(host, portnum, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, portnum, (struct sockaddr_in6 *)&ss) == 0) {
        start_tcp(p, (const struct sockaddr *)&ss);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    p->gai.data = p;
    if (uv_getaddrinfo(n->loop, &p->gai, on_resolved, host, port, &hints) != 0) {
        fail(p, "resolve");
        return;
    }
    peer_ref(p);
    p->state = P_RESOLVING;
    uv_timer_start(&p->timer, on_timer, PST_HINT_CONNECT_MS, 0);
}

/* ---- endpoints -------------------------------------------------------------- */

/* The peer of endpoint: its own, else a new one, else the place of one
 * with nothing to do (quiet the longest); NULL when all are busy. */
static hint_peer *peer_for(struct pst_hint_client *hc, const char *endpoint) {
    hint_peer *idle = NULL;
    int free_slot = -1;
    for (unsigned i = 0; i < PST_HINT_PEERS_MAX; i++) {
        hint_peer *p = hc->peers[i];
        if (p == NULL) {
            if (free_slot < 0)
                free_slot = (int)i;
            continue;
        }
        if (strcmp(p->endpoint, endpoint) == 0)
            return p;
        if (p->state == P_IDLE && p->queued == 0 && (idle == NULL || p->last_ms < idle->last_ms))
            idle = p;
    }
    if (free_slot >= 0) {
        hint_peer *p = calloc(1, sizeof *p);
        if (p == NULL)
            return NULL;
        p->hc = hc;
        hc->refs++;
        uv_timer_init(hc->node->loop, &p->timer);
        p->timer.data = p;
        peer_ref(p);
        hc->peers[free_slot] = p;
        idle = p;
    } else if (idle == NULL) {
        return NULL;
    }
    snprintf(idle->endpoint, sizeof idle->endpoint, "%s", endpoint);
    idle->retry_at_ms = 0;
    return idle;
}

bool pst_hint_send(struct pst_hint_client *hc, const uint8_t rcpt[PST_SIGN_PK_BYTES],
                   const uint8_t *notification, size_t len) {
    if (hc == NULL || hc->stopping || !hc->node->cfg.hints || len == 0 || len > PST_NOTIFY_MAX)
        return false;
    pst_node *n = hc->node;
    if (n->id == NULL || memcmp(rcpt, n->id->sign_pk, PST_SIGN_PK_BYTES) == 0)
        return false; /* our own devices read our own slot */
    /* the endpoints of the key record the send resolved (the store's copy,
     * kept fresh by the key cache's listens) */
    uint8_t rec[PST_DHT_VALUE_MAX];
    size_t rec_len = 0;
    uint64_t expires = 0;
    pst_keyrec kr;
    if (pst_store_keyrec_get(n->store, rcpt, rec, sizeof rec, &rec_len, NULL, &expires) != PST_OK ||
        (expires != 0 && expires <= pst_now()) || pst_keyrec_decode(rec, rec_len, &kr) != PST_OK ||
        kr.n_endpoints == 0) {
        pst_counter_add(n, "hint.out.no_endpoint", 1);
        return false;
    }
    static hint_item proto; /* one frame, copied per endpoint; loop thread only */
    static pst_hint h;
    memcpy(h.recipient, rcpt, PST_SIGN_PK_BYTES);
    memcpy(h.notification, notification, len);
    h.notification_len = len;
    size_t flen = 0;
    if (pst_hint_encode(&h, proto.frame + PST_FRAME_HEADER_BYTES, PST_HINT_MAX, &flen) != PST_OK)
        return false;
    pst_frame_header_write((uint32_t)flen, proto.frame);
    proto.len = (uint32_t)(flen + PST_FRAME_HEADER_BYTES);
    uint64_t now = uv_now(n->loop);
    bool queued = false;
    for (uint32_t e = 0; e < kr.n_endpoints; e++) {
        hint_peer *p = peer_for(hc, kr.endpoints[e]);
        if (p == NULL || now < p->retry_at_ms) {
            pst_counter_add(n, p == NULL ? "hint.out.failed" : "hint.out.backoff", 1);
            continue;
        }
        hint_item *it = malloc(sizeof *it);
        if (it == NULL) {
            pst_counter_add(n, "hint.out.failed", 1);
            continue;
        }
        if (hc->queued >= PST_HINT_QUEUE_MAX)
            drop_oldest(hc);
        it->next = NULL;
        it->seq = ++hc->seq;
        it->queued_ms = now;
        it->len = proto.len;
        memcpy(it->frame, proto.frame, proto.len);
        if (p->tail != NULL)
            p->tail->next = it;
        else
            p->head = it;
        p->tail = it;
        p->queued++;
        hc->queued++;
        queued = true;
        if (p->state == P_IDLE)
            connect_peer(p);
        else
            flush(p);
    }
    return queued;
}

int pst_hint_client_start(pst_node *n, struct pst_hint_client **out) {
    *out = NULL;
    struct pst_hint_client *hc = calloc(1, sizeof *hc);
    if (hc == NULL)
        return PST_E_NOMEM;
    hc->node = n;
    hc->refs = 1;
    *out = hc;
    return PST_OK;
}

void pst_hint_client_stop(struct pst_hint_client *hc) {
    if (hc == NULL || hc->stopping)
        return;
    hc->stopping = true;
    for (unsigned i = 0; i < PST_HINT_PEERS_MAX; i++) {
        hint_peer *p = hc->peers[i];
        if (p == NULL)
            continue;
        hc->peers[i] = NULL;
        free_queue(p, NULL);
        close_conn(p);
        uv_close((uv_handle_t *)&p->timer, on_handle_closed);
    }
    hc_unref(hc);
}
