/* The fetch server, serving a body: a FetchRequest is checked (time,
 * signature, replayed nonce, a pending recipient of the message, an offset
 * within it), the whole body (its file, or a memfd of the store's copy of a
 * small body: outbox_body.c) is hashed in the thread pool (a body whose
 * hash is not its message id was damaged on our disk: refused as internal,
 * never sent), then the signed header goes out and the ciphertext follows
 * from the requested offset one 64 KiB chunk at a time (the next file read
 * starts when the previous write completed). The connection, its frames
 * and its timers are fetch_server.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "outbox_int.h"
#include "pst_fetch.h"
#include "pst_log.h"

#include "fetch_server_int.h"

/* ---- streaming the ciphertext ------------------------------------------- */

static void stream_next(fconn *c);

static void stream_done(fconn *c) {
    pst_node *n = c->srv->node;
    free(c->chunk);
    c->chunk = NULL;
    close(c->fd);
    c->fd = -1;
    pst_counter_add(n, "fetch.served", 1);
    uint64_t now = pst_now();
    if (pst_store_outbox_served(n->store, c->msg_id, c->rcpt, now) != PST_OK ||
        (c->by_device &&
         pst_store_outbox_device_served(n->store, c->msg_id, c->rcpt, c->requester, now) != PST_OK))
        pst_log_warn("cannot record a fetch: %s", pst_store_last_error(n->store));
    c->state = S_RECEIPT;
    pst_fetch_srv_read(c);
}

static void on_chunk_written(uv_write_t *req, int status) {
    fconn *c = req->data;
    if (!c->closing) {
        if (status < 0) {
            pst_counter_add(c->srv->node, "fetch.aborted", 1);
            pst_fetch_srv_close(c);
        } else {
            c->off += c->in_flight;
            pst_fetch_srv_arm(c, pst_fetch_srv_idle_ms(c));
            stream_next(c);
        }
    }
    pst_fetch_srv_unref(c);
}

/* r bytes of the body are in c->chunk (or r <= 0: a read failed). */
static void send_chunk(fconn *c, ssize_t r) {
    if (r <= 0) {
        pst_log_error("message body shorter than recorded (%s)",
                      r < 0 ? uv_strerror((int)r) : "end of file");
        pst_fetch_srv_close(c);
        return;
    }
    c->in_flight = (size_t)r;
    uv_buf_t b = uv_buf_init((char *)c->chunk, (unsigned)r);
    c->wr.data = c;
    c->refs++;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_chunk_written) != 0) {
        c->refs--;
        pst_fetch_srv_close(c);
    }
}

static void on_file_read(uv_fs_t *req) {
    fconn *c = req->data;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    if (!c->closing)
        send_chunk(c, r);
    pst_fetch_srv_unref(c);
}

static void stream_next(fconn *c) {
    if (c->off >= c->end) {
        stream_done(c);
        return;
    }
    uint64_t left = c->end - c->off;
    size_t want = left < PST_MSG_CHUNK ? (size_t)left : PST_MSG_CHUNK;
    /* the check has just read the body, so it is in the page cache and a
     * read is a copy: done here, with no trip through the pool and back
     * (RWF_NOWAIT: never waits for the disk, EAGAIN instead). A 20 MiB
     * body is 320 chunks, and each trip costs two thread wake-ups */
    struct iovec iov = {c->chunk, want};
    ssize_t r = preadv2(c->fd, &iov, 1, (off_t)c->off, RWF_NOWAIT);
    if (r > 0) {
        send_chunk(c, r);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->chunk, (unsigned)want);
    c->fs.data = c;
    c->refs++;
    if (uv_fs_read(c->srv->node->loop, &c->fs, c->fd, &b, 1, (int64_t)c->off, on_file_read) != 0) {
        c->refs--;
        pst_fetch_srv_close(c);
    }
}

void pst_fetch_srv_stream(fconn *c) {
    c->state = S_STREAM;
    if (c->chunk == NULL && (c->chunk = malloc(PST_MSG_CHUNK)) == NULL) {
        pst_fetch_srv_close(c);
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
    (void)posix_fadvise(c->fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* larger readahead */
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

/* Answers c with the result rc of the check of its message; first: the
 * connection that ran the check (the outbox hears of the result once). */
static void check_answer(fconn *c, int rc, bool first) {
    pst_node *n = c->srv->node;
    if (rc == PST_OK) {
        if (first)
            pst_outbox_body_checked(n, c->msg_id, true);
        pst_fetch_srv_respond(c, c->msg_id, PST_FETCH_OK, c->end, c->off, "", NEXT_STREAM);
    } else if (rc == PST_E_MISMATCH) {
        if (first) {
            pst_outbox_body_checked(n, c->msg_id, false);
            pst_counter_add(n, "outbox.body_damaged", 1);
        }
        pst_fetch_srv_reject(c, c->msg_id, PST_FETCH_INTERNAL, c->off, "body_damaged",
                             "the sender's copy of the message is damaged: retry later");
    } else {
        if (first)
            pst_log_error("fetch: cannot read a message body: %s", pst_strerror(rc));
        pst_fetch_srv_reject(c, c->msg_id, PST_FETCH_INTERNAL, c->off, "internal",
                             "the message cannot be read");
    }
}

static void check_done(uv_work_t *w, int status) {
    fconn *c = w->data;
    pst_node *n = c->srv->node;
    int rc = status == 0 ? c->check_rc : PST_E_CLOSED;
    c->srv->n_checks--;
    c->checking = false;
    bool told = false; /* the outbox heard of the result */
    if (!c->closing && !n->stopping) {
        check_answer(c, rc, true);
        told = true;
    }
    for (fconn *x = c->waiters, *next; x != NULL; x = next) {
        next = x->next_waiter;
        x->next_waiter = NULL;
        if (!x->closing && !n->stopping) {
            check_answer(x, rc, !told);
            told = true;
        }
        pst_fetch_srv_unref(x);
    }
    c->waiters = NULL;
    pst_fetch_srv_unref(c);
}

/* A connection whose check of msg_id is queued or running, or NULL. */
static fconn *checking(struct pst_fetch_server *srv, const uint8_t *msg_id) {
    for (fconn *x = srv->head; x != NULL; x = x->next)
        if (x->checking && !x->closing && memcmp(x->msg_id, msg_id, PST_HASH_BYTES) == 0)
            return x;
    return NULL;
}

/* ---- the request ------------------------------------------------------------ */

void pst_fetch_srv_request(fconn *c, const pst_fetch_request *req) {
    struct pst_fetch_server *srv = c->srv;
    pst_node *n = srv->node;
    uint64_t now = pst_now();
    char text[PST_FETCH_ERROR_TEXT_MAX + 1], why[40];
    int rc = pst_fetch_request_verify(req, now, PST_FETCH_SKEW_DEFAULT);
    if (rc != PST_OK) {
        (void)pst_clock_fetch_request(n, req, rc); /* shown per peer: authentic, not in time */
        snprintf(text, sizeof text, "request refused: %s%s", pst_strerror(rc),
                 rc == PST_E_EXPIRED || rc == PST_E_NOTYET ? " (check your clock)" : "");
        pst_fetch_srv_reject(c, req->msg_id,
                             rc == PST_E_EXPIRED ? PST_FETCH_EXPIRED : PST_FETCH_BAD_REQUEST,
                             req->offset, pst_err_reason(rc, why, sizeof why), text);
        return;
    }
    if (pst_nonce_set_has(&srv->nonces, req->nonce, now)) {
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_REPLAY, req->offset, "replay",
                             "replayed request");
        return;
    }
    (void)pst_clock_fetch_request(n, req, rc); /* fresh: a clock sample */
    /* not a recipient and no such message look the same from outside */
    pst_store_out_state state = 0;
    uint64_t size = 0, expires = 0;
    uint8_t rcpt[PST_SIGN_PK_BYTES];
    bool by_device = false;
    rc = pst_fetch_srv_whose(n, req->msg_id, req->signer, rcpt, &by_device);
    if (rc == PST_E_REVOKED) {
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_FORBIDDEN, req->offset, "device_revoked",
                             "this device was revoked from its identity");
        return;
    }
    if (rc == PST_OK)
        rc = pst_store_outbox_rcpt_state(n->store, req->msg_id, rcpt, &state);
    if (rc == PST_OK && state == PST_STORE_OUT_PENDING)
        rc = pst_store_outbox_get(n->store, req->msg_id, &size, NULL, &expires);
    if (rc == PST_E_NOTFOUND) {
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_NOT_FOUND, req->offset, "not_recipient",
                             "no such message for this key");
        return;
    }
    if (rc != PST_OK) {
        pst_log_error("fetch: store: %s", pst_store_last_error(n->store));
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_INTERNAL, req->offset, "internal",
                             "internal error");
        return;
    }
    if (state == PST_STORE_OUT_DELIVERED) {
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_FORBIDDEN, req->offset, "delivered",
                             "already delivered: the sender holds your receipt");
        return;
    }
    if (state == PST_STORE_OUT_EXPIRED || (state == PST_STORE_OUT_PENDING && expires <= now)) {
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_EXPIRED, req->offset, "message_expired",
                             "the message expired");
        return;
    }
    if (state != PST_STORE_OUT_PENDING) {
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_FORBIDDEN, req->offset, "withdrawn",
                             "the sender withdrew this message");
        return;
    }
    if (req->offset > size) {
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_BAD_REQUEST, req->offset, "bad_offset",
                             "offset past the end of the message");
        return;
    }
    fconn *owner = checking(srv, req->msg_id);
    if (owner == NULL && size > FETCH_CHECK_INLINE_MAX && srv->n_checks >= FETCH_CHECKS_MAX) {
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_BUSY, req->offset, "busy_checking",
                             "busy checking other messages: retry later");
        return;
    }
    if (!pst_nonce_set_add(&srv->nonces, req->nonce, req->expires, now)) {
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_BUSY, req->offset, "busy",
                             "too many requests: retry later");
        return;
    }
    char path[PST_PATH_MAX];
    int fd = pst_outbox_body_open(srv->o, req->msg_id, path, sizeof path); /* file or store */
    if (fd < 0) {
        pst_log_error("fetch: cannot open %s: %s", path, strerror(errno));
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_INTERNAL, req->offset, "internal",
                             "the message cannot be read");
        return;
    }
    c->fd = fd;
    c->have_request = true;
    memcpy(c->msg_id, req->msg_id, PST_HASH_BYTES);
    memcpy(c->requester, req->signer, PST_SIGN_PK_BYTES);
    memcpy(c->rcpt, rcpt, PST_SIGN_PK_BYTES);
    c->by_device = by_device;
    c->off = req->offset;
    c->end = size;
    pst_counter_add(n, "fetch.requests", 1);
    c->refs++;
    /* waiting for a pool thread is our delay, not the peer's idleness: only
     * the total deadline bounds the check */
    pst_fetch_srv_arm(c, UINT64_MAX);
    if (owner != NULL) { /* the same message is being checked: share it */
        c->next_waiter = owner->waiters;
        owner->waiters = c;
        pst_counter_add(n, "fetch.checks_shared", 1);
        return;
    }
    c->check.data = c;
    c->checking = true;
    srv->n_checks++;
    if (size <= FETCH_CHECK_INLINE_MAX) {
        /* one read and a hash of microseconds: on the loop, with no pool
         * thread to wait for and no "busy" (4 fetches at once of small
         * messages met busy_checking 1 time in 4, each then retried) */
        check_work(&c->check);
        check_done(&c->check, 0);
        return;
    }
    if (uv_queue_work(n->loop, &c->check, check_work, check_done) != 0) {
        c->refs--;
        c->checking = false;
        srv->n_checks--;
        pst_fetch_srv_reject(c, req->msg_id, PST_FETCH_INTERNAL, req->offset, "internal",
                             "internal error");
    }
}
