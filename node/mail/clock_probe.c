/* Telling a contact its clock is off, with the exchange it already serves.
 *
 * A notification refused for its time never leads to a fetch, so its sender
 * would hear nothing and show "notified" until the message expires. When
 * the sender is a contact, the recipient asks the sender's fetch server for
 * that message once: one signed FetchRequest, one FetchResponse header
 * read, then the connection is closed. The sender refuses the request for
 * its time (it is further off than the fetch window), and its server takes
 * the request's signed time as a sample from one of its recipients
 * (clock_watch.c): its `status` and log then say whose clock disagrees and
 * by how much. The signed refusal is one more sample for the recipient.
 *
 * Bounded: one probe per sender per PST_CLOCK_LOG_INTERVAL_S (it rides on
 * the refusal's log line), PST_CLOCK_PROBES_MAX at once, the first endpoint
 * only, PST_CLOCK_PROBE_TIMEOUT_MS each. A stranger's notification never
 * makes this node connect anywhere. */
#include <stdlib.h>
#include <string.h>

#include "pst_mail.h"
#include "pst_log.h"

#define PST_CLOCK_PROBES_MAX 4u
#define PST_CLOCK_PROBE_TIMEOUT_MS 10000u

struct pst_clock_probe {
    pst_node *node;
    struct pst_clock_probe *next;
    unsigned refs; /* pending getaddrinfo, open tcp, open timer */
    bool done;
    bool resolving;
    bool tcp_open;
    uint8_t sender[PST_SIGN_PK_BYTES];
    uint8_t msg_id[PST_HASH_BYTES];
    pst_fetch_request req; /* what we sent: an answer must match it */
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timer;
    uint8_t out[PST_FRAME_HEADER_BYTES + PST_FETCH_REQUEST_MAX];
    uint8_t in[PST_FRAME_HEADER_BYTES + PST_FETCH_RESPONSE_MAX];
    size_t got;
};

static void release(struct pst_clock_probe *p) {
    if (--p->refs > 0)
        return;
    pst_node *n = p->node;
    for (struct pst_clock_probe **q = &n->clock_probes; *q; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            break;
        }
    n->clock_probes_active--;
    free(p);
    pst_node_handle_unref(n);
}

static void on_closed(uv_handle_t *h) { release(h->data); }

static void finish(struct pst_clock_probe *p) {
    if (p->done)
        return;
    p->done = true;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_closed);
    if (p->tcp_open) {
        p->tcp_open = false;
        uv_close((uv_handle_t *)&p->tcp, on_closed);
    }
}

static void on_timeout(uv_timer_t *t) { finish(t->data); }

static void on_response(struct pst_clock_probe *p, const uint8_t *frame, uint32_t len) {
    pst_fetch_response r;
    bool answer = pst_fetch_response_decode(frame, len, &r) == PST_OK &&
                  memcmp(r.signer, p->sender, sizeof r.signer) == 0;
    if (answer) {
        int rc = pst_fetch_response_verify(&r, pst_now(), PST_FETCH_SKEW_DEFAULT);
        bool clock = pst_clock_fetch_response(p->node, &r, &p->req, p->sender, rc);
        /* counted as an answer: authentic (in time or not) and ours */
        answer =
            (rc == PST_OK || clock) && pst_fetch_response_matches(&r, &p->req, p->sender) == PST_OK;
    }
    pst_counter_add(p->node, answer ? "clock.probes_answered" : "clock.probes_bad_answer", 1);
    finish(p);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    struct pst_clock_probe *p = h->data;
    *buf = uv_buf_init((char *)p->in + p->got, (unsigned)(sizeof p->in - p->got));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    struct pst_clock_probe *p = s->data;
    if (p->done || nread == 0)
        return;
    if (nread < 0) {
        finish(p);
        return;
    }
    p->got += (size_t)nread;
    if (p->got < PST_FRAME_HEADER_BYTES)
        return;
    uint32_t len;
    if (pst_frame_header_parse(p->in, PST_FETCH_RESPONSE_MAX, &len) != PST_OK) {
        pst_counter_add(p->node, "clock.probes_bad_answer", 1);
        finish(p);
        return;
    }
    if (p->got >= PST_FRAME_HEADER_BYTES + len)
        on_response(p, p->in + PST_FRAME_HEADER_BYTES, len);
}

static void on_write(uv_write_t *w, int status) {
    if (status < 0)
        finish(w->data);
}

static void on_connect(uv_connect_t *c, int status) {
    struct pst_clock_probe *p = c->data;
    pst_node *n = p->node;
    if (p->done)
        return;
    pst_fetch_request *req = &p->req;
    size_t len = 0;
    uint8_t nonce[PST_NONCE_BYTES];
    randombytes_buf(nonce, sizeof nonce);
    if (status < 0 || n->id == NULL ||
        pst_fetch_request_make(req, p->msg_id, 0, pst_now(), nonce,
                               pst_node_device_keys(n)->sign_sk) != PST_OK ||
        pst_fetch_request_encode(req, p->out + PST_FRAME_HEADER_BYTES, PST_FETCH_REQUEST_MAX,
                                 &len) != PST_OK ||
        uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read) != 0) {
        finish(p);
        return;
    }
    pst_frame_header_write((uint32_t)len, p->out);
    uv_buf_t b = uv_buf_init((char *)p->out, (unsigned)(len + PST_FRAME_HEADER_BYTES));
    p->write.data = p;
    if (uv_write(&p->write, (uv_stream_t *)&p->tcp, &b, 1, on_write) != 0)
        finish(p);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *ai) {
    struct pst_clock_probe *p = g->data;
    pst_node *n = p->node;
    p->resolving = false;
    if (!p->done && status == 0 && ai != NULL && uv_tcp_init(n->loop, &p->tcp) == 0) {
        p->tcp.data = p;
        p->tcp_open = true;
        p->refs++;
        p->connect.data = p;
        if (uv_tcp_connect(&p->connect, &p->tcp, ai->ai_addr, on_connect) != 0)
            finish(p);
    } else {
        finish(p);
    }
    uv_freeaddrinfo(ai);
    release(p); /* the getaddrinfo's reference */
}

void pst_clock_probe(pst_node *n, const pst_notify_inner *in) {
    if (n->stopping || n->clock_probes_active >= PST_CLOCK_PROBES_MAX || in->n_endpoints == 0)
        return;
    char host[PST_NOTIFY_ENDPOINT_MAX + 1], port[8];
    if (pst_config_split_hostport(in->endpoints[0], host, sizeof host, port, sizeof port) != PST_OK)
        return;
    struct pst_clock_probe *p = calloc(1, sizeof *p);
    if (p == NULL)
        return;
    p->node = n;
    memcpy(p->sender, in->signer, sizeof p->sender);
    memcpy(p->msg_id, in->msg_id, sizeof p->msg_id);
    uv_timer_init(n->loop, &p->timer);
    p->timer.data = p;
    p->refs = 1; /* the timer */
    pst_node_handle_ref(n);
    n->clock_probes_active++;
    p->next = n->clock_probes;
    n->clock_probes = p;
    uv_timer_start(&p->timer, on_timeout, PST_CLOCK_PROBE_TIMEOUT_MS, 0);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    p->gai.data = p;
    p->refs++;
    if (uv_getaddrinfo(n->loop, &p->gai, on_resolved, host, port, &hints) != 0) {
        p->refs--;
        finish(p);
        return;
    }
    p->resolving = true;
    pst_counter_add(n, "clock.probes", 1);
}

void pst_clock_probe_stop(pst_node *n) {
    for (struct pst_clock_probe *p = n->clock_probes; p; p = p->next) {
        if (p->resolving)
            (void)uv_cancel((uv_req_t *)&p->gai); /* its callback still comes */
        finish(p);
    }
}
