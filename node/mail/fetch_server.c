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
 * connection still allows a frame. */
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

#define FETCH_CONNS_MAX 64u       /* connections being served */
#define FETCH_CONNS_HARD_MAX 128u /* beyond this, close without a word */
#define FETCH_NONCES_MAX 4096u    /* accepted request nonces remembered */
#define FETCH_LINGER_MS 5000u     /* after our last frame, wait this long for EOF */
/* body checks at once: libuv's pool has 4 threads, shared with the
 * resolver and file I/O; a request beyond this is answered busy */
#define FETCH_CHECKS_MAX 2u
#define FETCH_BACKLOG 128

typedef enum { S_FIRST, S_STREAM, S_RECEIPT, S_LINGER } conn_state;
typedef enum { NEXT_STREAM, NEXT_CLOSE } next_step;

typedef struct fconn fconn;

typedef struct {
    uint8_t nonce[PST_NONCE_BYTES];
    uint64_t expires;
} nonce_entry;

struct pst_fetch_server {
    pst_node *node;
    struct pst_outbox *o;
    uv_tcp_t tcp;
    unsigned refs; /* the listener + connections */
    bool closing;
    fconn *head;
    unsigned n_conns;
    unsigned n_checks; /* body checks queued or running */
    unsigned n_nonces;
    nonce_entry nonces[FETCH_NONCES_MAX];
    /* every read lands here first: the loop runs one read callback at a
     * time, and the framer copies what it takes into the connection */
    uint8_t rbuf[PST_FRAME_MAX];
};

struct fconn {
    struct pst_fetch_server *srv;
    fconn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_fs_t fs;
    uv_shutdown_t sd;
    int refs; /* handles open + requests pending */
    bool closing;
    conn_state state;
    next_step after_write;
    char ip[64];
    uint64_t deadline_ms;         /* fetch_total_timeout_s after accept */
    pst_framer in;                /* reassembles into frame: never allocates */
    uint8_t frame[PST_FRAME_MAX]; /* the framer's storage */
    uint8_t out[PST_FRAME_HEADER_BYTES + PST_FETCH_RESPONSE_MAX];
    /* the request being served */
    bool have_request;
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t requester[PST_SIGN_PK_BYTES];
    int fd;
    uint64_t off, end;
    size_t in_flight;
    uint8_t *chunk; /* PST_MSG_CHUNK while streaming */
    /* the body's hash, checked in the thread pool before the header goes */
    uv_work_t check;
    int check_rc; /* PST_OK, PST_E_MISMATCH (damaged) or PST_E_IO */
};

static const uint8_t zero_id[PST_HASH_BYTES];

/* ---- lifetime ------------------------------------------------------------ */

static void srv_unref(struct pst_fetch_server *srv) {
    if (--srv->refs > 0)
        return;
    struct pst_outbox *o = srv->o;
    o->fetch = NULL;
    free(srv);
    pst_outbox_release(o);
}

static void conn_unref(fconn *c) {
    if (--c->refs > 0)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->chunk);
    struct pst_fetch_server *srv = c->srv;
    free(c);
    srv_unref(srv);
}

static void on_conn_handle_closed(uv_handle_t *h) { conn_unref(h->data); }

static void conn_close(fconn *c) {
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
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_timer(uv_timer_t *t) {
    fconn *c = t->data;
    if (c->closing)
        return;
    if (c->state != S_LINGER)
        pst_counter_rejected(c->srv->node, "fetch",
                             uv_now(t->loop) >= c->deadline_ms ? "total_timeout" : "idle_timeout");
    conn_close(c);
}

/* The next step must happen within ms (and before the total deadline). */
static void arm(fconn *c, uint64_t ms) {
    uint64_t now = uv_now(c->srv->node->loop);
    uint64_t left = c->deadline_ms > now ? c->deadline_ms - now : 0;
    uv_timer_start(&c->timer, on_timer, ms < left ? ms : left, 0);
}

static uint64_t idle_ms(const fconn *c) {
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
static void respond(fconn *c, const uint8_t *msg_id, uint64_t status, uint64_t total,
                    uint64_t offset, const char *text, next_step next);

static void reject(fconn *c, const uint8_t *msg_id, uint64_t status, uint64_t offset,
                   const char *reason, const char *text) {
    pst_counter_rejected(c->srv->node, "fetch", reason);
    pst_log_debug("fetch from %s refused (%s): %s", c->ip, reason, text);
    respond(c, msg_id, status, offset, offset, text, NEXT_CLOSE);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void start_reading(fconn *c) {
    pst_framer_reset(&c->in);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    arm(c, idle_ms(c));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    fconn *c = s->data;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        if (c->state == S_RECEIPT)
            pst_counter_add(c->srv->node, "fetch.no_receipt", 1);
        conn_close(c);
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
        conn_close(c);
        return;
    }
    if (rc != PST_OK) { /* the only error without our own storage: a bad length */
        uv_read_stop(s);
        char text[80];
        snprintf(text, sizeof text, "frame length must be 1..%u bytes", PST_FRAME_MAX);
        reject(c, zero_id, PST_FETCH_TOO_LARGE, 0, "frame_size", text);
        return;
    }
    if (frame != NULL) {
        uv_read_stop(s);
        uv_timer_stop(&c->timer);
        handle_frame(c, frame, len);
    }
}

/* ---- frames out ------------------------------------------------------------ */

static void start_stream(fconn *c);

static void on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    fconn *c = req->data;
    if (!c->closing) {
        /* wait for the peer's EOF rather than reset a connection whose last
         * frame it may not have read yet */
        c->state = S_LINGER;
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            conn_close(c);
        else
            arm(c, FETCH_LINGER_MS);
    }
    conn_unref(c);
}

static void finish_conn(fconn *c) {
    c->sd.data = c;
    c->refs++;
    if (uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        c->refs--;
        conn_close(c);
    }
}

static void on_response_written(uv_write_t *req, int status) {
    fconn *c = req->data;
    if (!c->closing) {
        if (status < 0)
            conn_close(c);
        else if (c->after_write == NEXT_STREAM)
            start_stream(c);
        else
            finish_conn(c);
    }
    conn_unref(c);
}

static void respond(fconn *c, const uint8_t *msg_id, uint64_t status, uint64_t total,
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
    int rc = pst_fetch_response_sign(&r, n->id->sign_sk);
    if (rc == PST_OK)
        rc = pst_fetch_response_encode(&r, c->out + PST_FRAME_HEADER_BYTES, PST_FETCH_RESPONSE_MAX,
                                       &len);
    if (rc != PST_OK) {
        pst_log_error("cannot build a fetch response: %s", pst_strerror(rc));
        conn_close(c);
        return;
    }
    pst_frame_header_write((uint32_t)len, c->out);
    c->after_write = next;
    c->wr.data = c;
    uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)(len + PST_FRAME_HEADER_BYTES));
    c->refs++;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_response_written) != 0) {
        c->refs--;
        conn_close(c);
        return;
    }
    arm(c, idle_ms(c));
}

/* ---- streaming the ciphertext ------------------------------------------- */

static void stream_next(fconn *c);

static void stream_done(fconn *c) {
    pst_node *n = c->srv->node;
    free(c->chunk);
    c->chunk = NULL;
    close(c->fd);
    c->fd = -1;
    pst_counter_add(n, "fetch.served", 1);
    if (pst_store_outbox_served(n->store, c->msg_id, c->requester, pst_now()) != PST_OK)
        pst_log_warn("cannot record a fetch: %s", pst_store_last_error(n->store));
    c->state = S_RECEIPT;
    start_reading(c);
}

static void on_chunk_written(uv_write_t *req, int status) {
    fconn *c = req->data;
    if (!c->closing) {
        if (status < 0) {
            pst_counter_add(c->srv->node, "fetch.aborted", 1);
            conn_close(c);
        } else {
            c->off += c->in_flight;
            arm(c, idle_ms(c));
            stream_next(c);
        }
    }
    conn_unref(c);
}

static void on_file_read(uv_fs_t *req) {
    fconn *c = req->data;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    if (!c->closing) {
        if (r <= 0) {
            pst_log_error("message body shorter than recorded (%s)",
                          r < 0 ? uv_strerror((int)r) : "end of file");
            conn_close(c);
        } else {
            c->in_flight = (size_t)r;
            uv_buf_t b = uv_buf_init((char *)c->chunk, (unsigned)r);
            c->wr.data = c;
            c->refs++;
            if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_chunk_written) != 0) {
                c->refs--;
                conn_close(c);
            }
        }
    }
    conn_unref(c);
}

static void stream_next(fconn *c) {
    if (c->off >= c->end) {
        stream_done(c);
        return;
    }
    uint64_t left = c->end - c->off;
    size_t want = left < PST_MSG_CHUNK ? (size_t)left : PST_MSG_CHUNK;
    uv_buf_t b = uv_buf_init((char *)c->chunk, (unsigned)want);
    c->fs.data = c;
    c->refs++;
    if (uv_fs_read(c->srv->node->loop, &c->fs, c->fd, &b, 1, (int64_t)c->off, on_file_read) != 0) {
        c->refs--;
        conn_close(c);
    }
}

static void start_stream(fconn *c) {
    c->state = S_STREAM;
    if (c->chunk == NULL && (c->chunk = malloc(PST_MSG_CHUNK)) == NULL) {
        conn_close(c);
        return;
    }
    stream_next(c);
}

/* ---- checking the body before serving it ---------------------------------------
 * The message id is the hash of the ciphertext, so the sender can tell a body
 * damaged on its disk (bit rot, a bad sector, a stray write) from a good one.
 * The whole file is hashed before the header goes out: once a byte is sent the
 * recipient would receive garbage, and the issue is never to send any. Every
 * fetch hashes again, with no cache keyed by size and mtime: bit rot changes
 * neither, and the pass reads what the stream is about to read anyway (from
 * the page cache). A 20 MiB body costs about 25 ms of one thread-pool thread
 * (docs/MAIL.md, "Failures"). */

static void check_work(uv_work_t *w) {
    fconn *c = w->data;
    pst_msgid_hasher h;
    pst_msgid_init(&h);
    uint8_t *buf = malloc(PST_MSG_CHUNK);
    uint64_t off = 0;
    c->check_rc = buf == NULL ? PST_E_NOMEM : PST_OK;
    while (c->check_rc == PST_OK && off < c->end) {
        uint64_t left = c->end - off;
        size_t want = left < PST_MSG_CHUNK ? (size_t)left : PST_MSG_CHUNK;
        ssize_t r = pread(c->fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            c->check_rc = PST_E_IO;
        else if (r == 0)
            c->check_rc = PST_E_MISMATCH; /* shorter than recorded */
        else {
            pst_msgid_update(&h, buf, (size_t)r);
            off += (uint64_t)r;
        }
    }
    uint8_t id[PST_HASH_BYTES];
    pst_msgid_final(&h, id);
    if (c->check_rc == PST_OK) {
        uint8_t extra;
        if (pread(c->fd, &extra, 1, (off_t)c->end) > 0)
            c->check_rc = PST_E_MISMATCH; /* longer than recorded */
        else if (sodium_memcmp(id, c->msg_id, sizeof id) != 0)
            c->check_rc = PST_E_MISMATCH;
    }
    free(buf);
}

static void check_done(uv_work_t *w, int status) {
    fconn *c = w->data;
    pst_node *n = c->srv->node;
    int rc = status == 0 ? c->check_rc : PST_E_CLOSED;
    c->srv->n_checks--;
    if (!c->closing && !n->stopping) {
        if (rc == PST_OK) {
            pst_outbox_body_checked(n, c->msg_id, true);
            respond(c, c->msg_id, PST_FETCH_OK, c->end, c->off, "", NEXT_STREAM);
        } else if (rc == PST_E_MISMATCH) {
            pst_outbox_body_checked(n, c->msg_id, false);
            pst_counter_add(n, "outbox.body_damaged", 1);
            reject(c, c->msg_id, PST_FETCH_INTERNAL, c->off, "body_damaged",
                   "the sender's copy of the message is damaged: retry later");
        } else {
            pst_log_error("fetch: cannot read a message body: %s", pst_strerror(rc));
            reject(c, c->msg_id, PST_FETCH_INTERNAL, c->off, "internal",
                   "the message cannot be read");
        }
    }
    conn_unref(c);
}

/* ---- requests and receipts ------------------------------------------------- */

static bool nonce_seen(const struct pst_fetch_server *srv, const uint8_t *nonce, uint64_t now) {
    for (unsigned i = 0; i < srv->n_nonces; i++)
        if (srv->nonces[i].expires > now &&
            memcmp(srv->nonces[i].nonce, nonce, PST_NONCE_BYTES) == 0)
            return true;
    return false;
}

static bool nonce_add(struct pst_fetch_server *srv, const uint8_t *nonce, uint64_t expires,
                      uint64_t now) {
    unsigned k = 0;
    for (unsigned i = 0; i < srv->n_nonces; i++)
        if (srv->nonces[i].expires > now)
            srv->nonces[k++] = srv->nonces[i];
    srv->n_nonces = k;
    if (k == FETCH_NONCES_MAX)
        return false;
    memcpy(srv->nonces[k].nonce, nonce, PST_NONCE_BYTES);
    srv->nonces[k].expires = expires;
    srv->n_nonces++;
    return true;
}

/* "PST_E_SIGNATURE" -> "signature": counter names by reason. */
static const char *reason_of(int err) {
    const char *name = pst_err_name(err);
    static char buf[40];
    size_t i = 0;
    if (strncmp(name, "PST_E_", 6) == 0)
        name += 6;
    for (; name[i] && i + 1 < sizeof buf; i++)
        buf[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    buf[i] = '\0';
    return buf;
}

static void handle_request(fconn *c, const pst_fetch_request *req) {
    struct pst_fetch_server *srv = c->srv;
    pst_node *n = srv->node;
    uint64_t now = pst_now();
    char text[PST_FETCH_ERROR_TEXT_MAX + 1];
    int rc = pst_fetch_request_verify(req, now, PST_FETCH_SKEW_DEFAULT);
    if (rc != PST_OK) {
        (void)pst_clock_fetch_request(n, req, rc); /* shown per peer: authentic, not in time */
        snprintf(text, sizeof text, "request refused: %s%s", pst_strerror(rc),
                 rc == PST_E_EXPIRED || rc == PST_E_NOTYET ? " (check your clock)" : "");
        reject(c, req->msg_id, rc == PST_E_EXPIRED ? PST_FETCH_EXPIRED : PST_FETCH_BAD_REQUEST,
               req->offset, reason_of(rc), text);
        return;
    }
    if (nonce_seen(srv, req->nonce, now)) {
        reject(c, req->msg_id, PST_FETCH_REPLAY, req->offset, "replay", "replayed request");
        return;
    }
    (void)pst_clock_fetch_request(n, req, rc); /* fresh: a clock sample */
    /* not a recipient and no such message look the same from outside */
    pst_store_out_state state = 0;
    uint64_t size = 0, expires = 0;
    rc = pst_store_outbox_rcpt_state(n->store, req->msg_id, req->signer, &state);
    if (rc == PST_OK && state == PST_STORE_OUT_PENDING)
        rc = pst_store_outbox_get(n->store, req->msg_id, &size, NULL, &expires);
    if (rc == PST_E_NOTFOUND) {
        reject(c, req->msg_id, PST_FETCH_NOT_FOUND, req->offset, "not_recipient",
               "no such message for this key");
        return;
    }
    if (rc != PST_OK) {
        pst_log_error("fetch: store: %s", pst_store_last_error(n->store));
        reject(c, req->msg_id, PST_FETCH_INTERNAL, req->offset, "internal", "internal error");
        return;
    }
    if (state == PST_STORE_OUT_DELIVERED) {
        reject(c, req->msg_id, PST_FETCH_FORBIDDEN, req->offset, "delivered",
               "already delivered: the sender holds your receipt");
        return;
    }
    if (state == PST_STORE_OUT_EXPIRED || (state == PST_STORE_OUT_PENDING && expires <= now)) {
        reject(c, req->msg_id, PST_FETCH_EXPIRED, req->offset, "message_expired",
               "the message expired");
        return;
    }
    if (state != PST_STORE_OUT_PENDING) {
        reject(c, req->msg_id, PST_FETCH_FORBIDDEN, req->offset, "withdrawn",
               "the sender withdrew this message");
        return;
    }
    if (req->offset > size) {
        reject(c, req->msg_id, PST_FETCH_BAD_REQUEST, req->offset, "bad_offset",
               "offset past the end of the message");
        return;
    }
    if (srv->n_checks >= FETCH_CHECKS_MAX) {
        reject(c, req->msg_id, PST_FETCH_BUSY, req->offset, "busy_checking",
               "busy checking other messages: retry later");
        return;
    }
    if (!nonce_add(srv, req->nonce, req->expires, now)) {
        reject(c, req->msg_id, PST_FETCH_BUSY, req->offset, "busy",
               "too many requests: retry later");
        return;
    }
    char path[PST_PATH_MAX];
    int fd = pst_outbox_body_path(srv->o, req->msg_id, path, sizeof path) == PST_OK
                 ? open(path, O_RDONLY | O_CLOEXEC)
                 : -1;
    if (fd < 0) {
        pst_log_error("fetch: cannot open %s: %s", path, strerror(errno));
        reject(c, req->msg_id, PST_FETCH_INTERNAL, req->offset, "internal",
               "the message cannot be read");
        return;
    }
    c->fd = fd;
    c->have_request = true;
    memcpy(c->msg_id, req->msg_id, PST_HASH_BYTES);
    memcpy(c->requester, req->signer, PST_SIGN_PK_BYTES);
    c->off = req->offset;
    c->end = size;
    pst_counter_add(n, "fetch.requests", 1);
    c->check.data = c;
    c->refs++;
    srv->n_checks++;
    /* waiting for a pool thread is our delay, not the peer's idleness: only
     * the total deadline bounds the check */
    arm(c, UINT64_MAX);
    if (uv_queue_work(n->loop, &c->check, check_work, check_done) != 0) {
        c->refs--;
        srv->n_checks--;
        reject(c, req->msg_id, PST_FETCH_INTERNAL, req->offset, "internal", "internal error");
    }
}

/* frame, len: the receipt's bytes, stored as they came. */
static void handle_receipt(fconn *c, const pst_receipt *rec, const uint8_t *frame, uint32_t len) {
    pst_node *n = c->srv->node;
    uint64_t now = pst_now();
    char text[PST_FETCH_ERROR_TEXT_MAX + 1];
    int rc = pst_receipt_verify(rec, now);
    (void)pst_clock_receipt(n, rec, rc);
    if (rc != PST_OK) {
        snprintf(text, sizeof text, "receipt refused: %s", pst_strerror(rc));
        reject(c, rec->msg_id, PST_FETCH_BAD_REQUEST, 0, reason_of(rc), text);
        return;
    }
    if (c->have_request && (memcmp(rec->signer, c->requester, PST_SIGN_PK_BYTES) != 0 ||
                            memcmp(rec->msg_id, c->msg_id, PST_HASH_BYTES) != 0)) {
        reject(c, rec->msg_id, PST_FETCH_BAD_REQUEST, 0, "receipt_mismatch",
               "the receipt does not match the request");
        return;
    }
    if (memcmp(rec->sender, n->id->sign_pk, PST_SIGN_PK_BYTES) != 0) {
        reject(c, rec->msg_id, PST_FETCH_BAD_REQUEST, 0, "receipt_sender",
               "the receipt names another sender");
        return;
    }
    pst_store_out_state before = 0;
    (void)pst_store_outbox_rcpt_state(n->store, rec->msg_id, rec->signer, &before);
    /* the frame is the receipt's canonical encoding (the decoder checked) */
    rc = pst_store_outbox_receipt(n->store, rec->msg_id, rec->signer, frame, len, now);
    if (rc == PST_OK && before == PST_STORE_OUT_DELIVERED)
        rc = PST_E_DUPLICATE; /* the same receipt again */
    if (rc == PST_E_NOTFOUND) {
        reject(c, rec->msg_id, PST_FETCH_NOT_FOUND, 0, "not_recipient",
               "no such message for this key");
        return;
    }
    if (rc == PST_OK) {
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(rec->signer, fp);
        pst_log_info("receipt from %s for message %02x%02x%02x%02x...", fp, rec->msg_id[0],
                     rec->msg_id[1], rec->msg_id[2], rec->msg_id[3]);
        pst_counter_add(n, "fetch.receipts", 1);
        pst_outbox_untrack(n, rec->msg_id, rec->signer);
        pst_outbox_settle(n, rec->msg_id);
    } else if (rc == PST_E_DUPLICATE) {
        pst_counter_add(n, "fetch.receipts_repeated", 1);
    } else if (rc == PST_E_STALE) {
        /* withdrawn or expired meanwhile: the recipient has it all the same */
        pst_counter_add(n, "fetch.receipts_late", 1);
    } else {
        pst_log_error("cannot store a receipt: %s", pst_store_last_error(n->store));
        reject(c, rec->msg_id, PST_FETCH_INTERNAL, 0, "internal", "internal error");
        return;
    }
    respond(c, rec->msg_id, PST_FETCH_OK, 0, 0, "", NEXT_CLOSE);
}

static void handle_frame(fconn *c, const uint8_t *frame, uint32_t len) {
    pst_fetch_request req;
    pst_receipt rec;
    char text[PST_FETCH_ERROR_TEXT_MAX + 1];
    int rc = pst_fetch_request_decode(frame, len, &req);
    if (rc == PST_OK) {
        if (c->state == S_FIRST)
            handle_request(c, &req);
        else
            reject(c, req.msg_id, PST_FETCH_BAD_REQUEST, 0, "unexpected_frame",
                   "expected the Receipt");
        return;
    }
    int rc2 = pst_receipt_decode(frame, len, &rec);
    if (rc2 == PST_OK) {
        handle_receipt(c, &rec, frame, len);
        return;
    }
    if (rc == PST_E_RECTYPE)
        rc = rc2;
    snprintf(text, sizeof text, "not a FetchRequest or Receipt: %s", pst_strerror(rc));
    reject(c, zero_id, PST_FETCH_BAD_REQUEST, 0, reason_of(rc), text);
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
        conn_close(c);
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
        conn_close(c);
    } else if (srv->n_conns > FETCH_CONNS_MAX || conns_from(srv, c->ip) > per_ip) {
        reject(c, zero_id, PST_FETCH_BUSY, 0, "conn_limit", "too many connections: retry later");
    } else {
        start_reading(c);
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

static void on_listener_closed(uv_handle_t *h) { srv_unref(h->data); }

#define META_FETCH_PORT "fetch_port_last"

int pst_fetch_server_start(pst_node *n, char *err, size_t errcap) {
    struct pst_outbox *o = n->outbox;
    struct pst_fetch_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return PST_E_NOMEM;
    srv->node = n;
    srv->o = o;
    srv->refs = 1;
    o->fetch = srv;
    pst_outbox_hold(o);
    uv_tcp_init(n->loop, &srv->tcp);
    srv->tcp.data = srv;
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
        conn_close(srv->head);
    uv_close((uv_handle_t *)&srv->tcp, on_listener_closed);
}
