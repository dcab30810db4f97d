/* `send`: the sender's half of a delivery up to the acknowledgement, for a
 * request that control/send_cmd.c parsed (pst_send_new, pst_send_begin).
 *
 *   1. resolve every recipient (pst_resolve, a few at a time); each must be
 *      exactly one valid key, else nothing is sent;
 *   2. on a worker thread (send_worker.c): read the message from the file
 *      the CLI gave, filter its headers (pst_mailmsg), encrypt it once with
 *      a fresh message key in PST_MSG_CHUNK pieces, computing the message
 *      id on the way: in memory while the ciphertext is at most
 *      PST_STORE_BODY_INLINE_MAX (64 KiB), else into DIR/outbox/tmp-*,
 *      fsynced; then seal one notification per recipient and mint the
 *      stamps it needs (all cores);
 *   3. still on the worker, for a file: rename it to DIR/outbox/<msg id>,
 *      fsync the directory; on the loop: store the message, its recipients
 *      and a small body in one batch (for a small message that commit's
 *      fsync of the WAL is the only one), and only after the commit reply:
 *      an acknowledged message is durable;
 *   4. hand the notifications to outbox.c, which keeps them alive.
 * Nothing holds a large message in memory: the worker uses three 64 KiB buffers
 * and the header filter's 64 KiB.
 *
 * The operation answers through the callbacks its caller gave
 * (pst_send_new): done once, progress while stamps are minted (a ticker on
 * the loop). The client may cancel (Ctrl-C, pst_send_cancel) until the
 * commit in step 3: the tmp file and the spool copy are removed and nothing
 * reaches the store or the DHT. After the commit the cancel is ignored: the
 * message is durable, and the answer (to a client that only half-closed)
 * says so. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outbox_int.h"
#include "pst_fetch.h"
#include "pst_hashcash.h"
#include "pst_log.h"
#include "pst_mailmsg.h"
#include "pst_msgcrypt.h"

#include "send_int.h"

/* ---- ending an operation ------------------------------------------------- */

static void on_ticker_closed(uv_handle_t *h) {
    struct pst_outbox *o = h->data;
    free(h);
    pst_outbox_release(o);
}

void pst_send_finish(send_op *op) {
    struct pst_outbox *o = op->o;
    if (op->ticker) {
        op->ticker->data = o;
        uv_close((uv_handle_t *)op->ticker, on_ticker_closed);
    }
    if (op->list_prev)
        op->list_prev->list_next = op->list_next;
    else
        o->sends = op->list_next;
    if (op->list_next)
        op->list_next->list_prev = op->list_prev;
    o->sends_active--;
    o->rcpts_reserved -= op->reserved;
    if (op->sec) {
        sodium_memzero(op->sec, sizeof *op->sec);
        if (o->sec_spare == NULL && !o->stopping)
            o->sec_spare = op->sec;
        else
            sodium_free(op->sec);
    }
    if (op->in_fd >= 0)
        close(op->in_fd);
    free(op->inline_body);
    sodium_memzero(op, sizeof *op);
    free(op);
    pst_outbox_release(o);
}

static void fail(send_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_reply(send_op *op, const char *fmt, va_list ap) {
    if (op->replied)
        return;
    char text[PST_SEND_ERROR_MAX + 1];
    vsnprintf(text, sizeof text, fmt, ap);
    op->replied = true;
    op->done(op->user, text, NULL);
}

static void fail(send_op *op, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_reply(op, fmt, ap);
    va_end(ap);
    pst_send_finish(op);
}

/* Answers now; the operation ends later (its lookups still hold it). */
static void fail_early(send_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_early(send_op *op, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_reply(op, fmt, ap);
    va_end(ap);
}

/* After a cancel the client is gone: the spool copy is nobody's any more. */
static void drop_spool(send_op *op) {
    if (op->spool_owned && unlink(op->path) != 0 && errno != ENOENT)
        pst_log_warn("cannot remove %s: %s", op->path, strerror(errno));
}

/* Removes what a failed send wrote (path: its tmp file or placed body, may
 * be ""). A spare it was handed goes back to the outbox, written or not, so
 * a failed send leaves the outbox as it found it. */
static void drop_body(send_op *op, const char *path) {
    if (op->spare[0] != '\0' && (!op->used_spare || strcmp(path, op->spare) == 0 ||
                                 (path[0] != '\0' && rename(path, op->spare) == 0))) {
        if (!op->used_spare && path[0] != '\0')
            (void)unlink(path); /* the worker made a file of its own */
        pst_outbox_spare_return(op->o, op->spare, op->used_spare);
        op->spare[0] = '\0'; /* once */
    } else if (path[0] != '\0') {
        (void)unlink(path);
    }
}

/* ---- commit and acknowledge ---------------------------------------------- */

static int store_rows(send_op *op) {
    pst_store *st = op->node->store;
    int rc = pst_store_begin(st);
    if (rc != PST_OK)
        return rc;
    if (op->reserved > 0) /* else only Internet recipients: nothing for the outbox */
        rc = pst_store_outbox_add(st, op->msg_id, op->size, op->created, op->expires, op->subject);
    if (rc == PST_OK && op->reserved > 0 && op->inline_body != NULL) /* durable with the rows */
        rc = pst_store_outbox_body_add(st, op->msg_id, op->inline_body, (size_t)op->size);
    for (unsigned i = 0; i < op->n_rcpts && rc == PST_OK; i++) {
        const send_rcpt *r = &op->rcpts[i];
        if (send_rcpt_postern(r)) {
            rc = pst_store_outbox_rcpt_add(st, op->msg_id, r->pk, r->kind, r->notif, r->notif_len,
                                           op->created);
            /* each device the notification was sealed to fetches its own copy */
            for (uint32_t d = 0; d < r->n_devs && rc == PST_OK; d++)
                rc = pst_store_outbox_device_add(st, op->msg_id, r->pk, r->dev_pk[d]);
        } else if (r->internet)
            rc = pst_relay_queue(op->node, op->msg_id, r->query, op->from, op->created);
    }
    if (rc != PST_OK) {
        (void)pst_store_rollback(st);
        return rc;
    }
    return pst_store_commit(st);
}

static void acknowledge(send_op *op) {
    pst_node *n = op->node;
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, op->msg_id, PST_HASH_BYTES);
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "message_id", hex);
    pst_value *arr = pst_value_add_array(b, "recipients");
    unsigned count = 0;
    for (unsigned i = 0; i < op->n_rcpts; i++) {
        const send_rcpt *r = &op->rcpts[i];
        if (r->duplicate || r->flags == PST_NOTIFY_FLAG_SYNC_SENT)
            continue; /* the copy for our other devices is not a recipient */
        count++;
        pst_value *e = pst_value_add_map(arr, NULL);
        pst_value_add_str(e, "query", r->query);
        if (r->internet) { /* no key: the smarthost takes it, with an X-Hashcash stamp */
            pst_value_add_str(e, "fingerprint", "");
            pst_value_add_str(e, "kind", pst_store_rcpt_kind_name(r->kind));
            pst_value_add_bool(e, "internet", true);
            pst_value_add_uint(e, "stamp_bits", op->node->cfg.smarthost_stamp_bits);
            continue;
        }
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(r->pk, fp);
        pst_value_add_str(e, "fingerprint", fp);
        pst_value_add_str(e, "kind", pst_store_rcpt_kind_name(r->kind));
        pst_value_add_uint(e, "stamp_bits", r->bits);
    }
    pst_value_add_uint(b, "size", op->size);
    pst_value_add_uint(b, "created", op->created);
    pst_value_add_uint(b, "expires", op->expires);
    pst_value_add_str(b, "subject", op->subject);
    pst_value_add_uint(b, "bcc_removed", op->bcc_removed);
    int err = pst_value_error(b);
    op->replied = true;
    if (err != PST_OK) {
        char text[PST_SEND_ERROR_MAX + 1];
        snprintf(text, sizeof text, "message stored as %s, but: %s", hex, pst_strerror(err));
        op->done(op->user, text, NULL);
    } else {
        op->done(op->user, NULL, b);
    }
    pst_value_free(b);
    pst_counter_add(n, "outbox.messages", 1);
    pst_counter_add(n, "outbox.recipients", count);
    pst_log_info("message %.16s... (%llu bytes) stored for %u recipient%s", hex,
                 (unsigned long long)op->size, count, count == 1 ? "" : "s");
}

static void commit(send_op *op) {
    pst_node *n = op->node;
    char final[PST_PATH_MAX];
    if (op->reserved == 0) {
        /* only Internet recipients: the ciphertext only named the message */
        drop_body(op, op->tmp_path);
        op->tmp_path[0] = '\0';
        snprintf(final, sizeof final, "%s", op->tmp_path);
    } else if (op->placed) {
        snprintf(final, sizeof final, "%s", op->tmp_path); /* renamed, fsynced by the worker */
    } else if (op->inline_body != NULL) {
        final[0] = '\0';      /* no file: the body commits with the rows below */
        drop_body(op, final); /* a spare handed over goes back unused */
    } else if (pst_outbox_body_path(op->o, op->msg_id, final, sizeof final) != PST_OK ||
               rename(op->tmp_path, final) != 0) {
        int e = errno;
        drop_body(op, op->tmp_path);
        fail(op, "cannot store the message in %s: %s", op->o->dir, strerror(e));
        return;
    }
    int rc = op->placed || op->inline_body != NULL ? PST_OK : pst_fsync_dir(op->o->dir);
    char relay_final[PST_PATH_MAX] = "";
    if (rc == PST_OK && op->n_internet > 0)
        rc = pst_relay_commit_body(n, op->relay_tmp, op->msg_id, relay_final, sizeof relay_final);
    if (rc == PST_OK)
        rc = store_rows(op);
    if (rc != PST_OK) {
        drop_body(op, final);
        if (op->relay_tmp[0])
            (void)unlink(op->relay_tmp);
        if (relay_final[0])
            (void)unlink(relay_final);
        fail(op, "cannot store the message: %s",
             rc == PST_E_IO || rc == PST_E_DISKFULL ? strerror(errno)
                                                    : pst_store_last_error(n->store));
        return;
    }
    if (op->pow == PST_SEND_POW_NEVER && op->reserved > 0) /* before the ack: never escalated */
        pst_outbox_pow_never(n, op->msg_id);
    /* durable: the spool copy is ours to delete, and the sender may go */
    if (op->spool_owned && unlink(op->path) != 0 && errno != ENOENT)
        pst_log_warn("cannot remove %s: %s", op->path, strerror(errno));
    acknowledge(op);
    op->o->rcpts_reserved -= op->reserved; /* the slots become real entries */
    op->reserved = 0;
    for (unsigned i = 0; i < op->n_rcpts; i++) {
        const send_rcpt *r = &op->rcpts[i];
        if (send_rcpt_postern(r) &&
            pst_outbox_track(n, op->msg_id, r->pk, r->notif, r->notif_len, op->expires) != PST_OK)
            pst_log_warn("cannot keep a notification alive now; it resumes after a restart");
    }
    if (op->n_internet > 0)
        pst_relay_kick(n);
    pst_send_finish(op);
}

static void work_done(uv_work_t *w, int status) {
    send_op *op = w->data;
    op->working = false;
    bool stopping = op->node->stopping || op->o->stopping;
    /* the worker may have finished just before the cancel: still too early,
     * nothing is committed until the line below */
    if ((status == UV_ECANCELED || atomic_load(&op->cancel) != 0) && op->err == PST_OK)
        pst_send_set_err(op, PST_E_CANCELLED, "cancelled");
    if (op->err == PST_OK && stopping)
        pst_send_set_err(op, PST_E_CLOSED, "the node is shutting down");
    if (op->err != PST_OK) {
        drop_body(op, op->tmp_path);
        if (op->relay_tmp[0])
            (void)unlink(op->relay_tmp);
        if (stopping) {
            fail(op, "not sent: the node is shutting down");
        } else if (op->err == PST_E_CANCELLED) {
            drop_spool(op);
            pst_counter_add(op->node, "outbox.sends_cancelled", 1);
            pst_log_info("send cancelled by the client before anything was stored");
            fail(op, "not sent: cancelled");
        } else {
            /* the node's own disk: tell its operator too */
            if (op->err == PST_E_IO || op->err == PST_E_DISKFULL)
                pst_log_warn("a send failed: %s", op->errmsg);
            fail(op, "not sent: %s", op->errmsg);
        }
        return;
    }
    commit(op);
}

/* ---- progress and cancel ------------------------------------------------- */

static void on_tick(uv_timer_t *t) {
    send_op *op = t->data;
    unsigned idx = atomic_load(&op->minting);
    uint64_t began = atomic_load(&op->mint_ns), now = uv_hrtime();
    if (op->replied || idx == 0 || idx > op->n_rcpts || now - began < PROGRESS_AFTER_NS)
        return;
    const send_rcpt *r = &op->rcpts[idx - 1];
    uint64_t start = atomic_load(&op->stamp_ns), done = atomic_load(&op->hashes),
             at = atomic_load(&op->hashes_ns);
    uint64_t rate = op->last_rate;
    if (done > 0 && at > start)
        rate = (uint64_t)((double)done * 1e9 / (double)(at - start));
    op->last_rate = rate;
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(r->pk, fp);
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "phase", "minting");
    pst_value_add_uint(b, "hashes_done", done);
    pst_value_add_uint(b, "hashes_expected", 1ull << r->bits);
    pst_value_add_uint(b, "rate", rate);
    pst_value_add_uint(b, "elapsed_ms", (now - start) / 1000000u);
    pst_value_add_str(b, "recipient", fp);
    pst_value_add_uint(b, "bits", r->bits);
    pst_value_add_uint(b, "stamp", atomic_load(&op->stamp_no));
    pst_value_add_uint(b, "stamps", op->stamps);
    if (pst_value_error(b) == PST_OK && op->progress != NULL)
        op->progress(op->user, b);
    pst_value_free(b);
}

static void start_ticker(send_op *op) {
    uv_timer_t *t = malloc(sizeof *t);
    if (t == NULL)
        return; /* no progress frames: the send itself is unaffected */
    uv_timer_init(op->node->loop, t);
    t->data = op;
    pst_outbox_hold(op->o);
    op->ticker = t;
    uv_timer_start(t, on_tick, PROGRESS_TICK_MS, PROGRESS_TICK_MS);
}

/* The worker sees the flag within a chunk or a few thousand hashes, and
 * work_done rolls back; a send still looking recipients up answers at once
 * and ends when the lookups do. */
void pst_send_cancel(send_op *op) {
    atomic_store(&op->cancel, 1);
    if (!op->working && !op->replied) {
        drop_spool(op);
        pst_counter_add(op->node, "outbox.sends_cancelled", 1);
        fail_early(op, "not sent: cancelled");
    }
}

/* ---- after resolution ---------------------------------------------------- */

static unsigned pick_bits(send_op *op, const send_rcpt *r) {
    if (op->pow == PST_SEND_POW_NEVER)
        return 0;
    if (op->pow == PST_SEND_POW_AUTO) {
        pst_store_tier tier = 0;
        /* our own node puts our own mail in the INBOX without a stamp */
        if (op->node->id != NULL && memcmp(r->pk, op->node->id->sign_pk, PST_SIGN_PK_BYTES) == 0)
            return 0;
        if (pst_store_contact_get(op->node->store, r->pk, &tier, NULL, 0) == PST_OK &&
            (tier == PST_STORE_TIER_TRUSTED || tier == PST_STORE_TIER_KNOWN))
            return 0;
    }
    return r->bits;
}

void pst_send_resolved_all(send_op *op) {
    pst_node *n = op->node;
    if (op->replied) { /* cancelled while looking up */
        pst_send_finish(op);
        return;
    }
    if (n->stopping || op->o->stopping) {
        fail(op, "not sent: the node is shutting down");
        return;
    }
    if (!pst_send_check_recipients(op))
        return;
    if (op->sync_flags != 0 && (op->n_rcpts != 1 || op->rcpts[0].n_devs == 0)) {
        fail(op, "not sent: no other device of this identity to sync with");
        return;
    }
    if (pst_sync_sent_copy(op))
        pst_counter_add(n, "sync.sent_copies", 1);
    /* one copy per key: the most visible kind wins (to over cc over bcc) */
    unsigned unique = 0;
    for (unsigned i = 0; i < op->n_rcpts; i++) {
        send_rcpt *r = &op->rcpts[i];
        if (r->state == RS_INTERNET) {
            r->internet = true;
            for (unsigned k = 0; k < i && !r->duplicate; k++)
                r->duplicate = op->rcpts[k].internet && !op->rcpts[k].duplicate &&
                               strcasecmp(op->rcpts[k].query, r->query) == 0;
            op->n_internet += !r->duplicate;
            continue;
        }
        for (unsigned k = 0; k < i && !r->duplicate; k++) {
            send_rcpt *first = &op->rcpts[k];
            if (send_rcpt_postern(first) && memcmp(first->pk, r->pk, PST_SIGN_PK_BYTES) == 0) {
                r->duplicate = true;
                if (r->kind < first->kind)
                    first->kind = r->kind;
            }
        }
        if (!r->duplicate) {
            unique++;
            r->bits = pick_bits(op, r);
            op->stamps += r->bits > 0;
            if (r->bits > PST_HASHCASH_MINT_BITS_MAX) {
                fail(op, "not sent: %s asks for a %u-bit stamp, more than Postern mints (%u)",
                     r->query, r->bits, PST_HASHCASH_MINT_BITS_MAX);
                return;
            }
        }
    }
    if (pst_outbox_free_slots(n) < unique) {
        fail(op, "not sent: %u notifications are already waiting for receipts; try again later",
             PST_OUTBOX_NOTIFY_MAX - pst_outbox_free_slots(n));
        return;
    }
    op->reserved = unique;
    op->o->rcpts_reserved += unique;
    op->work.data = op;
    op->working = true;
    if (!pst_outbox_spare_take(op->o, op->spare, sizeof op->spare))
        op->spare[0] = '\0';
    int rc = uv_queue_work(n->loop, &op->work, pst_send_work_run, work_done);
    if (rc != 0) {
        op->working = false;
        if (op->spare[0])
            pst_outbox_spare_return(op->o, op->spare, false);
        fail(op, "not sent: cannot start the encryption: %s", uv_strerror(rc));
        return;
    }
    if (op->stamps > 0)
        start_ticker(op);
}

/* ---- starting ------------------------------------------------------------ */

/* The spool file is ours to delete only when it is directly in DIR/spool. */
static bool in_spool(const struct pst_outbox *o, const char *path) {
    size_t l = strlen(o->spool);
    return strncmp(path, o->spool, l) == 0 && path[l] == '/' && path[l + 1] != '\0' &&
           strchr(path + l + 1, '/') == NULL && strcmp(path + l + 1, "..") != 0 &&
           strcmp(path + l + 1, ".") != 0;
}

static void fill_identity(send_op *op) {
    pst_node *n = op->node;
    if (n->n_addresses > 0)
        snprintf(op->from, sizeof op->from, "%s", n->addresses[0]);
    else
        snprintf(op->from, sizeof op->from, "%s@%s", n->fingerprint, PST_MAILMSG_DOMAIN_DEFAULT);
    const char *at = strrchr(op->from, '@');
    uint8_t rnd[PST_MAILMSG_RAND_BYTES];
    randombytes_buf(rnd, sizeof rnd);
    pst_mailmsg_make_message_id(rnd, at ? at + 1 : NULL, op->message_id);
    op->created = pst_now();
    op->expires = op->created + n->cfg.message_lifetime_s;
    (void)pst_mailmsg_format_date(op->created, op->date);
    snprintf(op->endpoint, sizeof op->endpoint, "%s", n->endpoint);
    /* a device signs with its own key for the identity it belongs to */
    const pst_identity *dk = pst_node_device_keys(n);
    memcpy(op->identity_pk, n->id->sign_pk, PST_SIGN_PK_BYTES);
    memcpy(op->box_pk, dk->box_pk, PST_BOX_PK_BYTES);
    memcpy(op->sec->sign_sk, dk->sign_sk, PST_SIGN_SK_BYTES);
    randombytes_buf(op->sec->msg_key, PST_MSGKEY_BYTES);
    op->max_bytes = n->cfg.max_message_bytes < PST_MESSAGE_SIZE_MAX ? n->cfg.max_message_bytes
                                                                    : PST_MESSAGE_SIZE_MAX;
}

int pst_send_refusal(const pst_node *n, char *why, size_t cap) {
    const struct pst_outbox *o = n->outbox;
    if (o == NULL || o->stopping || n->id == NULL) {
        snprintf(why, cap, "this node cannot send mail now");
        return PST_E_CLOSED;
    }
    if (n->revoked) {
        snprintf(why, cap,
                 "your key is revoked: recipients would refuse the message (make a new "
                 "identity to send mail)");
        return PST_E_REVOKED;
    }
    if (!pst_notify_endpoint_valid(n->endpoint)) {
        snprintf(why, cap,
                 "our fetch endpoint '%s' cannot go into a notification: set advertise "
                 "in postern.conf to a host name or address",
                 n->endpoint);
        return PST_E_INVAL;
    }
    if (cap > 0)
        why[0] = '\0';
    return PST_OK;
}

int pst_send_new(pst_node *n, const pst_send_request *req, pst_send_done_cb done,
                 pst_send_progress_cb progress, void *user, send_op **out) {
    struct pst_outbox *o = n->outbox;
    assert(o != NULL && n->id != NULL);
    *out = NULL;
    if (req->n_rcpts == 0 || req->n_rcpts > PST_SEND_RCPTS_MAX)
        return PST_E_INVAL;
    send_op *op = calloc(1, sizeof *op);
    send_secrets *sec = o->sec_spare ? o->sec_spare : sodium_malloc(sizeof *sec);
    o->sec_spare = NULL;
    int in_fd = req->use_fd ? fcntl(req->fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (op == NULL || sec == NULL || (req->use_fd && in_fd < 0)) {
        free(op);
        if (sec)
            sodium_free(sec);
        if (in_fd >= 0)
            close(in_fd);
        return op == NULL || sec == NULL ? PST_E_NOMEM : PST_E_IO;
    }
    op->in_fd = in_fd;
    op->node = n;
    op->o = o;
    op->done = done;
    op->progress = progress;
    op->user = user;
    atomic_init(&op->cancel, 0);
    atomic_init(&op->minting, 0);
    atomic_init(&op->stamp_no, 0);
    atomic_init(&op->mint_ns, 0);
    atomic_init(&op->stamp_ns, 0);
    atomic_init(&op->hashes, 0);
    atomic_init(&op->hashes_ns, 0);
    op->sec = sec;
    op->pow = req->pow;
    op->sync_flags = req->sync_flags;
    snprintf(op->path, sizeof op->path, "%s", req->path);
    op->n_rcpts = req->n_rcpts;
    for (unsigned i = 0; i < op->n_rcpts; i++) {
        send_rcpt *r = &op->rcpts[i];
        r->op = op;
        r->kind = req->rcpts[i].kind;
        snprintf(r->query, sizeof r->query, "%s", req->rcpts[i].query);
    }
    pst_outbox_hold(o);
    if ((op->list_next = o->sends) != NULL)
        o->sends->list_prev = op;
    o->sends = op;
    o->sends_active++;
    op->spool_owned = !req->use_fd && in_spool(o, op->path);
    fill_identity(op);
    *out = op;
    return PST_OK;
}

void pst_send_begin(send_op *op) { pst_send_pump(op); }

void pst_send_stop(pst_node *n) {
    struct pst_outbox *o = n->outbox;
    if (o == NULL)
        return;
    /* queued work that has not started is dropped; running work sees the
     * cancel flag within one chunk; lookups end when the DHT closes */
    for (send_op *op = o->sends; op != NULL; op = op->list_next) {
        atomic_store(&op->cancel, 1);
        if (op->working)
            (void)uv_cancel((uv_req_t *)&op->work);
    }
}
