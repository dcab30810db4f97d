/* SMTP submission: the message. DATA's bytes (already dot-unstuffed and
 * counted by proto's input machine) go into a memfd while the message is
 * at most SMTP_MEM_SPOOL_MAX, else into a file DIR/spool/smtp-*, the
 * first 64 KiB are kept to see which recipients the To: and Cc: fields
 * name; at CRLF.CRLF the message is refused whole when it broke a rule
 * (too big, a bare CR or LF, a NUL, a non-ASCII header without SMTPUTF8),
 * else handed to the same send operation as `postern send` (pst_send_new,
 * pst_send_begin): an envelope recipient the headers do not name is a Bcc
 * recipient (it gets the message and appears in nobody's copy; the
 * message's own Bcc: field is removed by the send's header filter). The
 * 250 goes out from the send's done callback, that is once the message is
 * durable in the outbox; the send deletes the spool file then (a memfd is
 * closed by the session). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "outbox_int.h"
#include "smtp_int.h"

static void spool_drop(smtp_session *s) {
    if (s->spool_fd >= 0) {
        close(s->spool_fd);
        s->spool_fd = -1;
    }
    if (s->spool_path[0] != '\0' && unlink(s->spool_path) != 0 && errno != ENOENT)
        pst_log_warn("smtp: cannot remove %s: %s", s->spool_path, strerror(errno));
    s->spool_path[0] = '\0';
    free(s->spool_buf);
    s->spool_buf = NULL;
    free(s->hdr);
    s->hdr = NULL;
    s->spool_len = s->hdr_len = 0;
    s->spool_mem = false;
    s->spool_total = 0;
}

static int spool_create(smtp_session *s) {
    pst_node *n = s->node;
    uint8_t rnd[12];
    char hex[2 * sizeof rnd + 1];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    if (snprintf(s->spool_path, sizeof s->spool_path, "%s/smtp-%s", n->outbox->spool, hex) >=
        (int)sizeof s->spool_path) {
        s->spool_path[0] = '\0';
        return -1;
    }
    int fd = open(s->spool_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        pst_log_warn("smtp: cannot create %s: %s", s->spool_path, strerror(errno));
        s->spool_path[0] = '\0';
    }
    return fd;
}

/* The message outgrew memory: its bytes so far move to a file in the spool,
 * which takes the rest. */
static bool spool_spill(smtp_session *s) {
    int fd = spool_create(s);
    if (fd < 0)
        return false;
    uint8_t *buf = malloc(SMTP_SPOOL_BUF);
    bool ok = buf != NULL;
    off_t off = 0;
    while (ok && off < (off_t)s->spool_total) {
        ssize_t r = pread(s->spool_fd, buf, SMTP_SPOOL_BUF, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ok = false;
            break;
        }
        for (ssize_t w = 0; ok && w < r;) {
            ssize_t k = write(fd, buf + w, (size_t)(r - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                ok = false;
            else
                w += k;
        }
        off += r;
    }
    free(buf);
    close(s->spool_fd);
    s->spool_fd = fd;
    s->spool_mem = false;
    if (!ok)
        pst_log_warn("smtp: cannot write %s: %s", s->spool_path, strerror(errno));
    return ok;
}

void pst_smtp__data_begin(smtp_session *s) {
    pst_node *n = s->node;
    struct pst_outbox *o = n->outbox;
    s->spool_failed = false;
    s->spool_path[0] = '\0';
    s->spool_total = 0;
    s->spool_buf = malloc(SMTP_SPOOL_BUF);
    s->hdr = malloc(SMTP_HEADER_KEEP);
    if (o == NULL || s->spool_buf == NULL || s->hdr == NULL) {
        spool_drop(s);
        pst_smtp__reply(s, "451 4.3.0 cannot take a message now");
        return;
    }
    /* no memfd (an old kernel, no descriptors left): the file at once */
    s->spool_fd = memfd_create("postern-smtp", MFD_CLOEXEC);
    s->spool_mem = s->spool_fd >= 0;
    if (s->spool_fd < 0)
        s->spool_fd = spool_create(s);
    if (s->spool_fd < 0) {
        spool_drop(s);
        pst_smtp__reply(s, "451 4.3.0 cannot take a message now: the spool is not writable");
        return;
    }
    pst_smtp_in_data(&s->in, pst_smtp__size_limit(n));
    s->state = SS_DATA;
    pst_smtp__reply(s, "354 2.0.0 send the message, end with <CRLF>.<CRLF>");
}

/* Writes the buffered bytes to the spool file. A local disk on the loop:
 * 64 KiB at a time, the same as the send's worker reads it back. */
static void spool_flush(smtp_session *s) {
    if (s->spool_mem && s->spool_total + s->spool_len > SMTP_MEM_SPOOL_MAX && !s->spool_failed &&
        !spool_spill(s))
        s->spool_failed = true;
    size_t off = 0;
    while (off < s->spool_len && !s->spool_failed) {
        ssize_t w = write(s->spool_fd, s->spool_buf + off, s->spool_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            pst_log_warn("smtp: cannot write %s: %s", s->spool_path, strerror(errno));
            s->spool_failed = true;
        } else {
            off += (size_t)w;
            s->spool_total += (uint64_t)w;
        }
    }
    s->spool_len = 0;
}

void pst_smtp__data_bytes(smtp_session *s, const uint8_t *p, size_t n) {
    if (s->spool_fd < 0 || s->spool_failed)
        return;
    if (s->hdr_len < SMTP_HEADER_KEEP) {
        size_t k = SMTP_HEADER_KEEP - s->hdr_len < n ? SMTP_HEADER_KEEP - s->hdr_len : n;
        memcpy(s->hdr + s->hdr_len, p, k);
        s->hdr_len += k;
    }
    while (n > 0) {
        size_t k = SMTP_SPOOL_BUF - s->spool_len < n ? SMTP_SPOOL_BUF - s->spool_len : n;
        memcpy(s->spool_buf + s->spool_len, p, k);
        s->spool_len += k;
        p += k;
        n -= k;
        if (s->spool_len == SMTP_SPOOL_BUF)
            spool_flush(s);
    }
}

const char *pst_smtp__data_refusal(const pst_smtp_event *ev, bool utf8_header_ok,
                                   const char **reason) {
    unsigned f = ev->data_flags;
    if (f & PST_SMTP_DATA_TOO_BIG) {
        *reason = "too_big";
        return "552 5.3.4 message size exceeds the limit";
    }
    if (f & PST_SMTP_DATA_BARE_EOL) {
        *reason = "bare_newline";
        return "554 5.6.0 message refused: it holds a bare CR or LF (lines must end with CRLF)";
    }
    if (f & PST_SMTP_DATA_NUL) {
        *reason = "nul";
        return "554 5.6.0 message refused: it holds a NUL byte";
    }
    if ((f & PST_SMTP_DATA_8BIT_HEADER) && !utf8_header_ok) {
        *reason = "8bit_header";
        return "554 5.6.7 message refused: non-ASCII header fields need MAIL FROM with SMTPUTF8";
    }
    if (ev->header_bytes > SMTP_HEADER_KEEP) {
        *reason = "header_too_big";
        return "554 5.6.0 message refused: the header section is over 64 KiB";
    }
    return NULL;
}

static void on_send_done(void *user, const char *error, pst_value *body) {
    smtp_session *s = user;
    s->op = NULL;
    if (error == NULL)
        s->spool_path[0] = '\0'; /* the send deleted it; a failed one leaves it to us */
    spool_drop(s);
    if (s->closing) {
        pst_smtp__unref(s);
        return;
    }
    pst_smtp__reset(s);
    if (error != NULL && s->timed_out) {
        /* cancelled at the total timeout, before the commit: not stored */
        pst_smtp__end(s);
        pst_smtp__reply(s, "421 4.4.2 %s: session too long, closing: the message was not sent",
                        SMTP_HOSTNAME);
        pst_smtp__unref(s);
        return;
    }
    if (error != NULL) {
        pst_counter_rejected(s->node, "smtp", "send_failed");
        bool temp = s->node->stopping || strstr(error, "try again") != NULL ||
                    strstr(error, "cannot store") != NULL;
        pst_smtp__reply(s, "%s %s", temp ? "451 4.3.0" : "554 5.0.0", error);
    } else {
        const char *id = pst_value_as_str(pst_value_get(body, "message_id"), NULL);
        s->messages++;
        pst_counter_add(s->node, "smtp.messages", 1);
        pst_smtp__reply(s, "250 2.0.0 OK: stored as %.64s", id ? id : "?");
    }
    if (s->timed_out) { /* committed before the total timeout's cancel: acknowledged, then 421 */
        pst_smtp__end(s);
        pst_smtp__reply(s, "421 4.4.2 %s: session too long, closing", SMTP_HOSTNAME);
    } else {
        pst_smtp__resume(s);
    }
    pst_smtp__unref(s);
}

void pst_smtp__data_end(smtp_session *s, const pst_smtp_event *ev) {
    pst_node *n = s->node;
    s->state = SS_CMD;
    if (s->spool_fd >= 0) {
        spool_flush(s);
        if (!s->spool_mem) { /* a memfd stays open: it is the message */
            if (close(s->spool_fd) != 0)
                s->spool_failed = true;
            s->spool_fd = -1;
        }
    }
    const char *reason = NULL;
    const char *refusal = pst_smtp__data_refusal(ev, s->smtputf8, &reason);
    if (refusal == NULL && s->spool_failed) {
        reason = "spool";
        refusal = "451 4.3.0 cannot write the message to the spool: try again later";
    }
    if (refusal != NULL) {
        pst_counter_rejected(n, "smtp", reason);
        spool_drop(s);
        pst_smtp__reset(s);
        pst_smtp__reply(s, "%s", refusal);
        return;
    }
    pst_send_request *req = calloc(1, sizeof *req);
    char why[PST_SEND_ERROR_MAX + 1];
    if (req == NULL || pst_send_refusal(n, why, sizeof why) != PST_OK) {
        free(req);
        spool_drop(s);
        pst_smtp__reset(s);
        pst_smtp__reply(s, "451 4.3.0 %s", req == NULL ? "out of memory" : why);
        return;
    }
    if (s->spool_mem) {
        snprintf(req->path, sizeof req->path, "the SMTP message");
        req->use_fd = true;
        req->fd = s->spool_fd;
    } else {
        snprintf(req->path, sizeof req->path, "%s", s->spool_path);
    }
    req->pow = PST_SEND_POW_AUTO;
    size_t hl = ev->header_bytes < s->hdr_len ? ev->header_bytes : s->hdr_len;
    for (unsigned i = 0; i < s->n_rcpts; i++) {
        const smtp_rcpt *r = &s->rcpts[i];
        int named = pst_smtp_header_names(s->hdr, hl, r->addr);
        pst_send_rcpt *sr = &req->rcpts[req->n_rcpts++];
        snprintf(sr->query, sizeof sr->query, "%s", r->query);
        sr->kind = named == 1   ? PST_STORE_RCPT_TO
                   : named == 2 ? PST_STORE_RCPT_CC
                                : PST_STORE_RCPT_BCC;
    }
    free(s->hdr);
    s->hdr = NULL;
    s->hdr_len = 0;
    int rc = pst_send_new(n, req, on_send_done, NULL, s, &s->op);
    free(req);
    if (rc != PST_OK) {
        spool_drop(s);
        pst_smtp__reset(s);
        pst_smtp__reply(s, "451 4.3.0 cannot send: %s", pst_strerror(rc));
        return;
    }
    s->refs++;
    pst_smtp__wait(s); /* the node works for the client now */
    pst_send_begin(s->op);
}

void pst_smtp__data_abort(smtp_session *s) {
    if (s->op != NULL) {
        /* the client will not see the 250: before the commit nothing is
         * stored, so its retry will not duplicate the message */
        pst_send_cancel(s->op);
        return; /* on_send_done cleans up */
    }
    spool_drop(s);
}
