/* Fetch client: the recipient's half of the TCP fetch exchange
 * (docs/PROTOCOL.md, "Fetch exchange").
 *
 *   -> frame(FetchRequest)          signed by us, offset 0
 *   <- frame(FetchResponse)         signed by the sender, for our request
 *   <- total_size raw bytes         hashed (message id) AND decrypted as they
 *                                   arrive, plaintext appended to tmp/
 *   -> frame(Receipt)               once the file is in new/ and the row is
 *                                   DELIVERED
 *   <- frame(FetchResponse ack)     status 0, total_size 0, offset 0
 *
 * Memory is fixed per connection (one read buffer, one wire chunk, one
 * plaintext chunk; two batches for a large body, fetch_deliver.c): a
 * message of any size streams through in 64 KiB steps.
 * Nothing is read beyond total_size until our receipt is out. Every
 * connection has an idle and a total timeout.
 *
 * This file: the endpoints, the connection and its timeouts, frames in and
 * out, the sender's answers and our receipt; the body, from the first raw
 * byte to the delivered file, is fetch_deliver.c (shared:
 * fetch_client_int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_mail.h"
#include "pst_fetch.h"
#include "pst_framer.h"
#include "pst_log.h"
#include "pst_msgcrypt.h"

#include "fetch_client_int.h"

static void free_conn(pst_fetch_conn *c) {
    sodium_memzero(c, sizeof *c); /* message key, decryptor state, plaintext */
    free(c);
}

static void hold(pst_fetch_conn *c) {
    c->refs++;
    pst_node_handle_ref(c->node);
}

/* Drops one ref; c may be gone afterwards. */
static void release(pst_fetch_conn *c) {
    pst_node *n = c->node;
    if (--c->refs == 0 && c->finished)
        free_conn(c);
    pst_node_handle_unref(n);
}

void pst_fetch_client_hold(pst_fetch_conn *c) { hold(c); }
void pst_fetch_client_release(pst_fetch_conn *c) { release(c); }

static void on_tcp_closed(uv_handle_t *h);
static void start_endpoint(pst_fetch_conn *c);

static void close_tcp(pst_fetch_conn *c) {
    if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

static void on_timer_closed(uv_handle_t *h) {
    pst_fetch_conn *c = h->data;
    c->timer_open = false;
    release(c);
}

void pst_fetch_client_finish(pst_fetch_conn *c, pst_fetch_outcome outcome, const char *reason) {
    if (c->finished)
        return;
    c->finished = true;
    c->phase = PH_DONE;
    if (c->grouped)
        pst_fetch_group_drop(c);
    c->res.outcome = outcome;
    c->res.reason = outcome == PST_FETCH_DONE ? NULL : reason;
    pst_fetch_body_release(c);
    sodium_memzero(c->job.msg_key, sizeof c->job.msg_key);
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai);
    close_tcp(c);
    if (c->timer_open && !uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    pst_fetch_done_cb cb = c->cb;
    c->cb = NULL;
    /* the timer's close is still pending, so c outlives the callback */
    if (cb)
        cb(c->user, &c->res);
    if (c->refs == 0)
        free_conn(c);
}

void pst_fetch_cancel(pst_fetch_conn *c) {
    c->cb = NULL;
    pst_fetch_client_finish(c, PST_FETCH_RETRY, "cancelled");
}

/* ---- writing frames ----------------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
    pst_fetch_conn *c = req->data;
    /* cancelled: we closed the connection ourselves (next_endpoint) */
    if (status < 0 && status != UV_ECANCELED && !c->finished)
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "write");
}

static void write_frame(pst_fetch_conn *c, uv_write_t *wr, uint8_t *buf, size_t len) {
    pst_frame_header_write((uint32_t)len, buf);
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)(len + PST_FRAME_HEADER_BYTES));
    wr->data = c;
    if (uv_write(wr, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0)
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "write");
}

void pst_fetch_client_receipt(pst_fetch_conn *c) {
    pst_node *n = c->node;
    uint64_t now = pst_now();
    pst_receipt r;
    memset(&r, 0, sizeof r);
    r.created = now;
    memcpy(r.msg_id, c->job.msg_id, sizeof r.msg_id);
    /* the receipt names the identity that sent it, whichever device served */
    memcpy(r.sender,
           sodium_is_zero(c->job.identity, sizeof c->job.identity) ? c->job.sender
                                                                   : c->job.identity,
           sizeof r.sender);
    r.stored_at = c->job.stored_at <= now ? c->job.stored_at : now; /* clock stepped back */
    size_t len = 0;
    if (pst_receipt_sign(&r, pst_node_device_keys(n)->sign_sk) != PST_OK ||
        pst_receipt_encode(&r, c->rcpt_out + PST_FRAME_HEADER_BYTES, PST_RECEIPT_MAX, &len) !=
            PST_OK) {
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "internal");
        return;
    }
    c->phase = PH_ACK;
    pst_framer_reset(&c->in);
    write_frame(c, &c->rcpt_write, c->rcpt_out, len);
    if (!c->finished && c->job.acking != NULL)
        c->job.acking(c->user);
}

/* ---- reading frames -------------------------------------------------------------- */

/* Takes bytes of the current frame, never past its end (raw body bytes may
 * follow it); *done when it is complete, in c->frame[0..c->frame_len). */
static size_t take_frame(pst_fetch_conn *c, const uint8_t *p, size_t n, bool *done) {
    size_t used = 0;
    const uint8_t *frame = NULL;
    *done = false;
    /* the cap is the largest response: a longer frame cannot be one. Nothing
     * signed says the sender wrote these bytes (another service may hold its
     * old port until it gets it back), so it is no strike against it */
    if (pst_framer_feed(&c->in, p, n, &used, &frame, &c->frame_len) != PST_OK) {
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "bad_frame");
        return used;
    }
    *done = frame != NULL;
    return used;
}

static const char *status_reason(uint64_t status) {
    static const char *const names[] = {
        "status_ok",          "status_not_found", "status_forbidden",
        "status_bad_request", "status_replay",    "status_busy",
        "status_expired",     "status_too_large", "status_internal"};
    return status < sizeof names / sizeof names[0] ? names[status] : "bad_response";
}

static pst_fetch_outcome status_outcome(uint64_t status) {
    switch (status) {
    case PST_FETCH_NOT_FOUND:
    case PST_FETCH_FORBIDDEN:
    case PST_FETCH_EXPIRED:
    case PST_FETCH_TOO_LARGE:
        return PST_FETCH_GIVE_UP; /* a signed, definite no */
    default:
        return PST_FETCH_RETRY;
    }
}

/* A server over its connection limit answers before it has read anything, so
 * its signed "busy" names no message (all-zero msg_id). From the sender we
 * expect it is a deferral, never a strike: Postfix's 4xx, not 5xx. */
static bool busy_before_request(const pst_fetch_response *r,
                                const uint8_t sender[PST_SIGN_PK_BYTES]) {
    static const uint8_t zero[PST_HASH_BYTES];
    return (r->status == PST_FETCH_BUSY || r->status == PST_FETCH_INTERNAL) &&
           memcmp(r->signer, sender, PST_SIGN_PK_BYTES) == 0 &&
           memcmp(r->msg_id, zero, PST_HASH_BYTES) == 0;
}

/* The answer on this endpoint cannot be pinned on the sender: it does not
 * decode, its signature does not hold, or another key signed it (another
 * node may have the sender's old port). Anyone on the path could have
 * written it, so it is no strike: the next endpoint of the notification is
 * tried, and when none is left the attempt ends as a retry. */
static void next_endpoint(pst_fetch_conn *c, const char *reason) {
    c->last_reason = reason;
    if (c->ep + 1 >= c->job.n_endpoints) {
        pst_fetch_client_finish(c, PST_FETCH_RETRY, reason);
        return;
    }
    pst_framer_reset(&c->in);
    c->next_after_close = true;
    close_tcp(c);
}

/* Decodes and verifies the frame as a FetchResponse (for our request req,
 * NULL for the ack) into *r. On failure *clock says whether it is authentic
 * but refused only for its time: a clock to fix, not a protocol violation. */
static int read_response(pst_fetch_conn *c, const pst_fetch_request *req, pst_fetch_response *r,
                         bool *clock) {
    int vrc = PST_E_MALFORMED;
    *clock = false;
    if (pst_fetch_response_decode(c->frame, c->frame_len, r) != PST_OK ||
        (vrc = pst_fetch_response_verify(r, pst_now(), PST_FETCH_SKEW_DEFAULT)) != PST_OK) {
        *clock =
            vrc != PST_E_MALFORMED && pst_clock_fetch_response(c->node, r, req, c->job.sender, vrc);
        return vrc;
    }
    return PST_OK;
}

static void on_response(pst_fetch_conn *c) {
    pst_fetch_response r;
    bool clock;
    int vrc = read_response(c, &c->req, &r, &clock);
    if (vrc != PST_OK) {
        if (clock)
            pst_fetch_client_finish(c, PST_FETCH_RETRY, "clock_skew");
        else
            next_endpoint(c, "unverified_response");
        return;
    }
    (void)pst_clock_fetch_response(c->node, &r, &c->req, c->job.sender, vrc);
    if (busy_before_request(&r, c->job.sender)) {
        pst_fetch_client_finish(c, PST_FETCH_RETRY, status_reason(r.status));
        return;
    }
    int rc = pst_fetch_response_matches(&r, &c->req, c->job.sender);
    if (rc == PST_E_SIGNER) {
        next_endpoint(c, "response_signer");
        return;
    }
    if (rc != PST_OK) {
        /* the sender signed an answer about another message: provable */
        pst_fetch_client_finish(c, PST_FETCH_PROTOCOL, "bad_response");
        return;
    }
    if (r.status != PST_FETCH_OK) {
        pst_fetch_client_finish(c, status_outcome(r.status), status_reason(r.status));
        return;
    }
    if (r.total_size != c->job.size) {
        pst_fetch_client_finish(c, PST_FETCH_PROTOCOL, "size_mismatch");
        return;
    }
    pst_fetch_body_begin(c, r.total_size);
}

static void on_ack(pst_fetch_conn *c) {
    pst_fetch_response r;
    bool clock;
    if (read_response(c, NULL, &r, &clock) != PST_OK) {
        /* nothing pins these bytes on the sender: the receipt is sent again */
        pst_fetch_client_finish(c, PST_FETCH_RETRY, clock ? "clock_skew" : "unverified_ack");
        return;
    }
    /* a receipt-only connection meets the connection limit like a fetch */
    if (busy_before_request(&r, c->job.sender)) {
        pst_fetch_client_finish(c, PST_FETCH_RETRY, status_reason(r.status));
        return;
    }
    if (memcmp(r.signer, c->job.sender, sizeof r.signer) != 0) {
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "ack_signer");
        return;
    }
    if (memcmp(r.msg_id, c->job.msg_id, sizeof r.msg_id) != 0) {
        pst_fetch_client_finish(c, PST_FETCH_PROTOCOL, "bad_ack");
        return;
    }
    if (r.status == PST_FETCH_BUSY || r.status == PST_FETCH_INTERNAL) {
        /* the sender could not take it now (its store, its load): again later */
        pst_fetch_client_finish(c, PST_FETCH_RETRY, status_reason(r.status));
        return;
    }
    if (r.status != PST_FETCH_OK) {
        /* the sender will not take this receipt (it expired the message, or
         * we are not its recipient): asking again cannot help */
        pst_fetch_client_finish(c, PST_FETCH_GIVE_UP, status_reason(r.status));
        return;
    }
    if (r.total_size != 0 || r.offset != 0) {
        pst_fetch_client_finish(c, PST_FETCH_PROTOCOL, "bad_ack");
        return;
    }
    if (pst_store_inbox_receipt_sent(c->node->store, c->job.msg_id, pst_now()) != PST_OK) {
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "store");
        return;
    }
    pst_fetch_client_finish(c, PST_FETCH_DONE, NULL);
}

static void consume(pst_fetch_conn *c, const uint8_t *p, size_t n) {
    /* next_after_close: this endpoint is done with, the rest of its bytes too */
    while (n > 0 && !c->finished && !c->next_after_close) {
        if (c->phase == PH_HEADER || c->phase == PH_ACK) {
            bool done;
            size_t k = take_frame(c, p, n, &done);
            p += k;
            n -= k;
            if (done)
                c->phase == PH_HEADER ? on_response(c) : on_ack(c);
        } else if (c->phase == PH_BODY) {
            size_t k = n < c->body_left ? n : (size_t)c->body_left;
            pst_fetch_body_bytes(c, p, k);
            p += k;
            n -= k;
            c->body_left -= k;
            if (c->body_left == 0 && !c->finished)
                pst_fetch_body_deliver(c);
        } else {
            pst_fetch_client_finish(c, PST_FETCH_PROTOCOL, "trailing");
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    pst_fetch_conn *c = h->data;
    *buf = uv_buf_init((char *)c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void pst_fetch_client_reading(pst_fetch_conn *c, bool on) {
    if (!c->tcp_open || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (on ? uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0
           : uv_read_stop((uv_stream_t *)&c->tcp) != 0)
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "read");
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    pst_fetch_conn *c = s->data;
    if (c->finished || c->next_after_close || nread == 0)
        return;
    if (nread < 0) {
        pst_fetch_client_finish(c, PST_FETCH_RETRY, nread == UV_EOF ? "closed" : "read");
        return;
    }
    c->active_ms = uv_now(c->node->loop);
    consume(c, c->rbuf, (size_t)nread);
}

/* ---- connecting ------------------------------------------------------------------ */

static void on_connect(uv_connect_t *req, int status) {
    pst_fetch_conn *c = req->data;
    if (c->finished)
        return;
    if (status < 0) {
        c->last_reason = status == UV_ETIMEDOUT ? "timeout" : "connect";
        c->next_after_close = true;
        close_tcp(c);
        return;
    }
    pst_node *n = c->node;
    c->active_ms = uv_now(n->loop);
    c->phase = PH_CONNECT;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "read");
        return;
    }
    if (c->job.receipt_only) {
        pst_fetch_client_receipt(c);
        return;
    }
    size_t len = 0;
    uint8_t nonce[PST_NONCE_BYTES];
    randombytes_buf(nonce, sizeof nonce);
    if (pst_fetch_request_make(&c->req, c->job.msg_id, 0, pst_now(), nonce,
                               pst_node_device_keys(n)->sign_sk) != PST_OK ||
        pst_fetch_request_encode(&c->req, c->req_out + PST_FRAME_HEADER_BYTES,
                                 PST_FETCH_REQUEST_MAX, &len) != PST_OK) {
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "internal");
        return;
    }
    c->phase = PH_HEADER;
    write_frame(c, &c->req_write, c->req_out, len);
}

static void on_tcp_closed(uv_handle_t *h) {
    pst_fetch_conn *c = h->data;
    c->tcp_open = false;
    bool next = c->next_after_close && !c->finished;
    c->next_after_close = false;
    if (next) {
        c->ep++;
        start_endpoint(c);
    }
    release(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai) {
    pst_fetch_conn *c = req->data;
    c->resolving = false;
    if (c->finished || status != 0 || ai == NULL) {
        uv_freeaddrinfo(ai);
        if (!c->finished) {
            c->last_reason = "resolve";
            c->ep++;
            start_endpoint(c);
        }
        release(c);
        return;
    }
    pst_node *n = c->node;
    uv_tcp_init(n->loop, &c->tcp);
    c->tcp.data = c;
    c->tcp_open = true;
    hold(c);
    c->connect_req.data = c;
    if (uv_tcp_connect(&c->connect_req, &c->tcp, ai->ai_addr, on_connect) != 0) {
        c->last_reason = "connect";
        c->next_after_close = true;
        close_tcp(c);
    }
    uv_freeaddrinfo(ai);
    release(c);
}

/* Tries endpoints from c->ep on; a name that does not resolve or a refused
 * connection moves on to the next one within the same attempt. */
static void start_endpoint(pst_fetch_conn *c) {
    pst_node *n = c->node;
    for (; c->ep < c->job.n_endpoints; c->ep++) {
        char host[PST_NOTIFY_ENDPOINT_MAX + 1], port[8];
        if (pst_config_split_hostport(c->job.endpoints[c->ep], host, sizeof host, port,
                                      sizeof port) != PST_OK)
            continue;
        struct addrinfo hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        c->gai.data = c;
        c->phase = PH_START;
        if (uv_getaddrinfo(n->loop, &c->gai, on_resolved, host, port, &hints) == 0) {
            c->resolving = true;
            hold(c);
            return;
        }
    }
    pst_fetch_client_finish(c, PST_FETCH_RETRY, c->last_reason ? c->last_reason : "no_endpoint");
}

static void on_tick(uv_timer_t *t) {
    pst_fetch_conn *c = t->data;
    pst_node *n = c->node;
    uint64_t now = uv_now(n->loop);
    if (c->started_ms == 0) {
        /* first tick: start here so that pst_fetch_start never reports */
        c->started_ms = c->active_ms = now ? now : 1;
        start_endpoint(c);
        return;
    }
    if (now - c->active_ms >= (uint64_t)n->cfg.fetch_idle_timeout_s * 1000u ||
        now - c->started_ms >= (uint64_t)n->cfg.fetch_total_timeout_s * 1000u)
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "timeout");
}

int pst_fetch_start(pst_node *n, const pst_fetch_job *job, const char *maildir,
                    pst_fetch_done_cb cb, void *user, pst_fetch_conn **out) {
    *out = NULL;
    if (job->n_endpoints == 0 || job->n_endpoints > PST_NOTIFY_ENDPOINTS_MAX || n->id == NULL)
        return PST_E_INVAL;
    pst_fetch_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return PST_E_NOMEM;
    c->node = n;
    c->cb = cb;
    c->user = user;
    c->job = *job;
    c->w.fd = -1;
    pst_framer_init(&c->in, PST_FETCH_RESPONSE_MAX, c->frame);
    snprintf(c->root, sizeof c->root, "%s", maildir);
    pst_maildir_base_name(job->msg_id, c->base);
    uv_timer_init(n->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    hold(c);
    uv_timer_start(&c->timer, on_tick, 0, PST_FETCH_CLIENT_TICK_MS);
    *out = c;
    return PST_OK;
}
