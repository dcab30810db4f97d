/* `send`: the sender's half of a delivery up to the acknowledgement.
 *
 *   1. resolve every recipient (pst_resolve, a few at a time); each must be
 *      exactly one valid key, else nothing is sent;
 *   2. on a worker thread (send_worker.c): read the message from the file
 *      the CLI gave, filter its headers (pst_mailmsg), encrypt it once with
 *      a fresh message key in PST_MSG_CHUNK pieces into DIR/outbox/tmp-*,
 *      computing the message id on the way, fsync; then seal one
 *      notification per recipient and mint the stamps it needs (all cores);
 *   3. on the loop: rename the file to DIR/outbox/<msg id>, fsync the
 *      directory, store the message and its recipients in one batch, and only
 *      after the commit reply: an acknowledged message is durable;
 *   4. hand the notifications to outbox.c, which keeps them alive.
 * Nothing holds the message in memory: the worker uses three 64 KiB buffers
 * and the header filter's 64 KiB.
 *
 * While stamps are minted a ticker on the loop sends progress frames. The
 * client may cancel (Ctrl-C) until the commit in step 3: the tmp file and the
 * spool copy are removed and nothing reaches the store or the DHT. After the
 * commit the cancel is ignored: the message is durable, and the answer (to a
 * client that only half-closed) says so. */
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
#include "pst_control.h"
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

static void finish(send_op *op) {
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
    if (op->sec)
        sodium_free(op->sec);
    sodium_memzero(op, sizeof *op);
    free(op);
    pst_outbox_release(o);
}

static void fail(send_op *op, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_reply(send_op *op, int status, const char *fmt, va_list ap) {
    if (op->replied)
        return;
    pst_ctrl_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = (uint64_t)status;
    vsnprintf(resp.error, sizeof resp.error, fmt, ap);
    op->replied = true;
    op->reply(op->user, &resp);
}

static void fail(send_op *op, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_reply(op, status, fmt, ap);
    va_end(ap);
    finish(op);
}

/* Answers now; the operation ends later (its lookups still hold it). */
static void fail_early(send_op *op, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_early(send_op *op, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_reply(op, status, fmt, ap);
    va_end(ap);
}

/* After a cancel the client is gone: the spool copy is nobody's any more. */
static void drop_spool(send_op *op) {
    if (op->spool_owned && unlink(op->path) != 0 && errno != ENOENT)
        pst_log_warn("cannot remove %s: %s", op->path, strerror(errno));
}

/* ---- resolution ---------------------------------------------------------- */

static void resolved_all(send_op *op);
static void pump(send_op *op);

static void on_resolved(void *user, int err, const pst_resolved_key *keys, unsigned n,
                        const pst_resolve_info *info) {
    send_rcpt *r = user;
    send_op *op = r->op;
    if (err != PST_OK) {
        r->state = RS_ERROR;
    } else {
        r->by_address = info->by_address;
        unsigned valid = 0;
        const pst_resolved_key *pick = NULL;
        for (unsigned i = 0; i < n; i++) {
            if (r->n_cands < PST_RESOLVE_KEYS_MAX) {
                memcpy(r->cands[r->n_cands].pk, keys[i].pk, PST_SIGN_PK_BYTES);
                r->cands[r->n_cands++].status = keys[i].status;
            }
            if (keys[i].status == PST_KEY_VALID && keys[i].have_keyrec) {
                valid++;
                pick = &keys[i];
            }
        }
        if (valid == 1) {
            r->state = RS_OK;
            memcpy(r->pk, pick->pk, PST_SIGN_PK_BYTES);
            memcpy(r->box_pk, pick->keyrec.enc_pk, PST_BOX_PK_BYTES);
            r->bits = (unsigned)pick->keyrec.pow_bits;
        } else if (valid > 1) {
            r->state = RS_AMBIGUOUS;
        } else if (!info->by_address && n == 1) {
            r->state = keys[0].status == PST_KEY_REVOKED       ? RS_REVOKED
                       : keys[0].status == PST_KEY_EXPIRED     ? RS_EXPIRED
                       : keys[0].status == PST_KEY_FROM_FUTURE ? RS_FROM_FUTURE
                                                               : RS_NOT_FOUND;
        } else {
            r->state = n == 0 ? RS_NOT_FOUND : RS_NO_VALID;
        }
    }
    op->resolving--;
    op->resolved++;
    pump(op);
}

/* Starts lookups, SEND_RESOLVE_PARALLEL at a time. Re-entrant: a lookup may
 * answer before pst_resolve returns (e.g. when the DHT refuses the get). */
static void pump(send_op *op) {
    if (op->pumping)
        return;
    op->pumping = true;
    if (op->replied) { /* cancelled: look nobody else up */
        op->resolved += op->n_rcpts - op->next_rcpt;
        op->next_rcpt = op->n_rcpts;
    }
    while (op->resolving < SEND_RESOLVE_PARALLEL && op->next_rcpt < op->n_rcpts) {
        send_rcpt *r = &op->rcpts[op->next_rcpt++];
        op->resolving++;
        if (pst_resolve(op->node, r->query, true, on_resolved, r) != PST_OK) {
            op->resolving--;
            op->resolved++;
            r->state = RS_ERROR;
        }
    }
    op->pumping = false;
    if (op->resolved == op->n_rcpts && !op->all_resolved) {
        op->all_resolved = true;
        resolved_all(op);
    }
}

/* Name and explanation (with the query for %s) of each recipient state. */
static const struct {
    const char *name, *why;
} rcpt_states[] = {
    [RS_WAIT] = {"error", "cannot look %s up"},
    [RS_OK] = {"ok", ""},
    [RS_NOT_FOUND] = {"not_found", "no key %s found in the DHT"},
    [RS_REVOKED] = {"revoked", "the key of %s is revoked: its owner no longer reads mail with it"},
    [RS_EXPIRED] = {"expired",
                    "the key of %s has expired (its owner's node has not republished it)"},
    [RS_AMBIGUOUS] = {"ambiguous", "%s is claimed by several valid keys: check with its owner "
                                   "and send to the fingerprint"},
    [RS_NO_VALID] = {"no_valid_key", "no valid key claims %s (only revoked or expired ones)"},
    [RS_ERROR] = {"error", "cannot look %s up"},
    [RS_FROM_FUTURE] = {"from_future", "the key record of %s was created in the future by this "
                                       "machine's clock: check this machine's clock"},
};

static void explain(const send_rcpt *r, char *out, size_t cap) {
    const char *fmt = r->state == RS_NOT_FOUND && r->by_address
                          ? "no key claims %s (is the address right? has its owner's node "
                            "published it?)"
                          : rcpt_states[r->state].why;
    snprintf(out, cap, fmt, r->query);
}

/* The same query given earlier in the list (to, cc or bcc): its problem is
 * reported there, once. */
static bool repeated_query(const send_op *op, unsigned i) {
    for (unsigned k = 0; k < i; k++)
        if (strcasecmp(op->rcpts[k].query, op->rcpts[i].query) == 0)
            return true;
    return false;
}

/* Every recipient must be exactly one valid key: else the reply names the
 * problem (or how many there are) and its body lists every recipient once,
 * with its candidates and, for a problem, its explanation: a CLI prints
 * each problem once. */
static bool check_recipients(send_op *op) {
    const send_rcpt *bad = NULL;
    unsigned nbad = 0;
    for (unsigned i = 0; i < op->n_rcpts; i++)
        if (op->rcpts[i].state != RS_OK && !repeated_query(op, i)) {
            nbad++;
            if (bad == NULL)
                bad = &op->rcpts[i];
        }
    if (bad == NULL)
        return true;
    pst_value *b = pst_value_new_map();
    pst_value *arr = pst_value_add_array(b, "recipients");
    for (unsigned i = 0; i < op->n_rcpts; i++) {
        const send_rcpt *r = &op->rcpts[i];
        if (repeated_query(op, i))
            continue;
        pst_value *e = pst_value_add_map(arr, NULL);
        pst_value_add_str(e, "query", r->query);
        pst_value_add_str(e, "status", rcpt_states[r->state].name);
        if (r->state != RS_OK) {
            char why[400];
            explain(r, why, sizeof why);
            pst_value_add_str(e, "error", why);
        }
        pst_value *c = pst_value_add_array(e, "candidates");
        for (unsigned k = 0; k < r->n_cands; k++) {
            char fp[PST_FINGERPRINT_STRLEN + 1];
            pst_fingerprint_format(r->cands[k].pk, fp);
            pst_value *ce = pst_value_add_map(c, NULL);
            pst_value_add_str(ce, "fingerprint", fp);
            pst_value_add_str(ce, "status", pst_key_status_name(r->cands[k].status));
        }
    }
    pst_ctrl_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = PST_CTRL_STATUS_FAIL;
    char why[400];
    explain(bad, why, sizeof why);
    if (nbad > 1)
        snprintf(resp.error, sizeof resp.error, "not sent: %u recipients have a problem", nbad);
    else
        snprintf(resp.error, sizeof resp.error, "not sent: %s", why);
    resp.body = pst_value_error(b) == PST_OK ? b : NULL;
    op->replied = true;
    op->reply(op->user, &resp);
    pst_value_free(b);
    finish(op);
    return false;
}

/* ---- commit and acknowledge ---------------------------------------------- */

static int store_rows(send_op *op) {
    pst_store *st = op->node->store;
    int rc = pst_store_begin(st);
    if (rc != PST_OK)
        return rc;
    rc = pst_store_outbox_add(st, op->msg_id, op->size, op->created, op->expires, op->subject);
    for (unsigned i = 0; i < op->n_rcpts && rc == PST_OK; i++) {
        const send_rcpt *r = &op->rcpts[i];
        if (!r->duplicate)
            rc = pst_store_outbox_rcpt_add(st, op->msg_id, r->pk, r->kind, r->notif, r->notif_len,
                                           op->created);
    }
    if (rc != PST_OK) {
        (void)pst_store_rollback(st);
        return rc;
    }
    return pst_store_commit(st);
}

static const char *kind_name(pst_store_rcpt_kind k) {
    return k == PST_STORE_RCPT_CC ? "cc" : k == PST_STORE_RCPT_BCC ? "bcc" : "to";
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
        if (r->duplicate)
            continue;
        count++;
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(r->pk, fp);
        pst_value *e = pst_value_add_map(arr, NULL);
        pst_value_add_str(e, "query", r->query);
        pst_value_add_str(e, "fingerprint", fp);
        pst_value_add_str(e, "kind", kind_name(r->kind));
        pst_value_add_uint(e, "stamp_bits", r->bits);
    }
    pst_value_add_uint(b, "size", op->size);
    pst_value_add_uint(b, "created", op->created);
    pst_value_add_uint(b, "expires", op->expires);
    pst_value_add_str(b, "subject", op->subject);
    pst_value_add_uint(b, "bcc_removed", op->bcc_removed);
    int err = pst_value_error(b);
    op->replied = true;
    if (err != PST_OK)
        pst_reply_error(op->reply, op->user, 0, PST_CTRL_STATUS_FAIL,
                        "message stored as %s, but: %s", hex, pst_strerror(err));
    else
        pst_reply_ok(op->reply, op->user, 0, PST_CTRL_STATUS_OK, b);
    pst_value_free(b);
    pst_counter_add(n, "outbox.messages", 1);
    pst_counter_add(n, "outbox.recipients", count);
    pst_log_info("message %.16s... (%llu bytes) stored for %u recipient%s", hex,
                 (unsigned long long)op->size, count, count == 1 ? "" : "s");
}

static void commit(send_op *op) {
    pst_node *n = op->node;
    char final[PST_PATH_MAX];
    if (pst_outbox_body_path(op->o, op->msg_id, final, sizeof final) != PST_OK ||
        rename(op->tmp_path, final) != 0) {
        int e = errno;
        (void)unlink(op->tmp_path);
        fail(op, PST_CTRL_STATUS_FAIL, "cannot store the message in %s: %s", op->o->dir,
             strerror(e));
        return;
    }
    int rc = pst_fsync_dir(op->o->dir);
    if (rc == PST_OK)
        rc = store_rows(op);
    if (rc != PST_OK) {
        (void)unlink(final);
        fail(op, PST_CTRL_STATUS_FAIL, "cannot store the message: %s",
             rc == PST_E_IO || rc == PST_E_DISKFULL ? strerror(errno)
                                                    : pst_store_last_error(n->store));
        return;
    }
    if (op->pow == POW_NEVER) /* before the acknowledgement: never escalated */
        pst_outbox_pow_never(n, op->msg_id);
    /* durable: the spool copy is ours to delete, and the sender may go */
    if (op->spool_owned && unlink(op->path) != 0 && errno != ENOENT)
        pst_log_warn("cannot remove %s: %s", op->path, strerror(errno));
    acknowledge(op);
    op->o->rcpts_reserved -= op->reserved; /* the slots become real entries */
    op->reserved = 0;
    for (unsigned i = 0; i < op->n_rcpts; i++) {
        const send_rcpt *r = &op->rcpts[i];
        if (!r->duplicate &&
            pst_outbox_track(n, op->msg_id, r->pk, r->notif, r->notif_len, op->expires) != PST_OK)
            pst_log_warn("cannot keep a notification alive now; it resumes after a restart");
    }
    finish(op);
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
        if (op->tmp_path[0])
            (void)unlink(op->tmp_path);
        if (stopping) {
            fail(op, PST_CTRL_STATUS_FAIL, "not sent: the node is shutting down");
        } else if (op->err == PST_E_CANCELLED) {
            drop_spool(op);
            pst_counter_add(op->node, "outbox.sends_cancelled", 1);
            pst_log_info("send cancelled by the client before anything was stored");
            fail(op, PST_CTRL_STATUS_FAIL, "not sent: cancelled");
        } else {
            /* the node's own disk: tell its operator too */
            if (op->err == PST_E_IO || op->err == PST_E_DISKFULL)
                pst_log_warn("a send failed: %s", op->errmsg);
            fail(op, PST_CTRL_STATUS_FAIL, "not sent: %s", op->errmsg);
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
    if (pst_value_error(b) == PST_OK)
        pst_node_progress(op->user, b);
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

/* The client went away or pressed Ctrl-C. The worker sees the flag within
 * a chunk or a few thousand hashes, and work_done rolls back; a send still
 * looking recipients up answers at once and ends when the lookups do. */
static void on_client_cancel(void *arg) {
    send_op *op = arg;
    atomic_store(&op->cancel, 1);
    if (!op->working && !op->replied) {
        drop_spool(op);
        pst_counter_add(op->node, "outbox.sends_cancelled", 1);
        fail_early(op, 1, "not sent: cancelled");
    }
}

/* ---- after resolution ---------------------------------------------------- */

static unsigned pick_bits(send_op *op, const send_rcpt *r) {
    if (op->pow == POW_NEVER)
        return 0;
    if (op->pow == POW_AUTO) {
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

static void resolved_all(send_op *op) {
    pst_node *n = op->node;
    if (op->replied) { /* cancelled while looking up */
        finish(op);
        return;
    }
    if (n->stopping || op->o->stopping) {
        fail(op, PST_CTRL_STATUS_FAIL, "not sent: the node is shutting down");
        return;
    }
    if (!check_recipients(op))
        return;
    /* one copy per key: the most visible kind wins (to over cc over bcc) */
    unsigned unique = 0;
    for (unsigned i = 0; i < op->n_rcpts; i++) {
        send_rcpt *r = &op->rcpts[i];
        for (unsigned k = 0; k < i && !r->duplicate; k++) {
            send_rcpt *first = &op->rcpts[k];
            if (!first->duplicate && memcmp(first->pk, r->pk, PST_SIGN_PK_BYTES) == 0) {
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
                fail(op, PST_CTRL_STATUS_FAIL,
                     "not sent: %s asks for a %u-bit stamp, more than Postern mints (%u)", r->query,
                     r->bits, PST_HASHCASH_MINT_BITS_MAX);
                return;
            }
        }
    }
    if (pst_outbox_free_slots(n) < unique) {
        fail(op, PST_CTRL_STATUS_FAIL,
             "not sent: %u notifications are already waiting for receipts; try again later",
             PST_OUTBOX_NOTIFY_MAX - pst_outbox_free_slots(n));
        return;
    }
    op->reserved = unique;
    op->o->rcpts_reserved += unique;
    op->work.data = op;
    op->working = true;
    int rc = uv_queue_work(n->loop, &op->work, pst_send_work_run, work_done);
    if (rc != 0) {
        op->working = false;
        fail(op, PST_CTRL_STATUS_FAIL, "not sent: cannot start the encryption: %s",
             uv_strerror(rc));
        return;
    }
    if (op->stamps > 0)
        start_ticker(op);
}

/* ---- the command --------------------------------------------------------- */

static bool query_ok(const char *q) {
    uint8_t pk[PST_SIGN_PK_BYTES];
    char addr[PST_ADDRESS_MAX + 1];
    return pst_fingerprint_parse(q, pk) == PST_OK ||
           (strchr(q, '@') != NULL && pst_address_normalize(q, addr, sizeof addr) == PST_OK);
}

/* Fills op from "key=value" arguments; replies and returns -1 on a bad one. */
static int parse_args(send_op *op, const pst_ctrl_request *req) {
    bool have_file = false;
    for (uint32_t i = 0; i < req->n_args; i++) {
        const char *a = req->args[i];
        const char *eq = strchr(a, '=');
        const char *v = eq ? eq + 1 : "";
        size_t kl = eq ? (size_t)(eq - a) : strlen(a);
        pst_store_rcpt_kind kind = 0;
        if (kl == 2 && strncmp(a, "to", 2) == 0)
            kind = PST_STORE_RCPT_TO;
        else if (kl == 2 && strncmp(a, "cc", 2) == 0)
            kind = PST_STORE_RCPT_CC;
        else if (kl == 3 && strncmp(a, "bcc", 3) == 0)
            kind = PST_STORE_RCPT_BCC;
        if (kind != 0) {
            if (op->n_rcpts == SEND_RCPTS_MAX) {
                pst_reply_error(op->reply, op->user, 0, PST_CTRL_STATUS_USAGE,
                                "at most %u recipients per message", SEND_RCPTS_MAX);
                return -1;
            }
            if (strlen(v) > PST_ADDRESS_MAX || !query_ok(v)) {
                pst_reply_error(op->reply, op->user, 0, PST_CTRL_STATUS_USAGE,
                                "'%.200s' is neither a fingerprint (52 characters of z-base-32) "
                                "nor an address (local@domain)",
                                v);
                return -1;
            }
            send_rcpt *r = &op->rcpts[op->n_rcpts++];
            r->op = op;
            r->kind = kind;
            snprintf(r->query, sizeof r->query, "%s", v);
        } else if (kl == 4 && strncmp(a, "file", 4) == 0 && !have_file) {
            if (v[0] != '/' || strlen(v) >= sizeof op->path) {
                pst_reply_error(op->reply, op->user, 0, PST_CTRL_STATUS_USAGE,
                                "file must be an absolute path");
                return -1;
            }
            snprintf(op->path, sizeof op->path, "%s", v);
            have_file = true;
        } else if (kl == 3 && strncmp(a, "pow", 3) == 0) {
            if (strcmp(v, "auto") == 0)
                op->pow = POW_AUTO;
            else if (strcmp(v, "always") == 0)
                op->pow = POW_ALWAYS;
            else if (strcmp(v, "never") == 0)
                op->pow = POW_NEVER;
            else {
                pst_reply_error(op->reply, op->user, 0, PST_CTRL_STATUS_USAGE,
                                "pow must be auto, always or never");
                return -1;
            }
        } else {
            pst_reply_error(op->reply, op->user, 0, PST_CTRL_STATUS_USAGE,
                            "send takes file=PATH, to=R, cc=R, bcc=R and pow=MODE (got '%.64s')",
                            a);
            return -1;
        }
    }
    if (!have_file || op->n_rcpts == 0) {
        pst_reply_error(op->reply, op->user, 0, PST_CTRL_STATUS_USAGE,
                        "send needs file=PATH and at least one to=, cc= or bcc= recipient");
        return -1;
    }
    return 0;
}

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
    memcpy(op->box_pk, n->id->box_pk, PST_BOX_PK_BYTES);
    memcpy(op->sec->sign_sk, n->id->sign_sk, PST_SIGN_SK_BYTES);
    randombytes_buf(op->sec->msg_key, PST_MSGKEY_BYTES);
    op->max_bytes = n->cfg.max_message_bytes < PST_MESSAGE_SIZE_MAX ? n->cfg.max_message_bytes
                                                                    : PST_MESSAGE_SIZE_MAX;
}

void pst_node_cmd_send(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user) {
    struct pst_outbox *o = n->outbox;
    if (o == NULL || o->stopping || n->id == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "this node cannot send mail now");
        return;
    }
    if (n->revoked) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "your key is revoked: recipients would refuse the message (make a new "
                        "identity to send mail)");
        return;
    }
    if (!pst_notify_endpoint_valid(n->endpoint)) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "our fetch endpoint '%s' cannot go into a notification: set advertise "
                        "in postern.conf to a host name or address",
                        n->endpoint);
        return;
    }
    send_op *op = calloc(1, sizeof *op);
    send_secrets *sec = sodium_malloc(sizeof *sec);
    if (op == NULL || sec == NULL) {
        free(op);
        if (sec)
            sodium_free(sec);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "out of memory");
        return;
    }
    op->node = n;
    op->o = o;
    op->reply = reply;
    op->user = user;
    atomic_init(&op->cancel, 0);
    atomic_init(&op->minting, 0);
    atomic_init(&op->stamp_no, 0);
    atomic_init(&op->mint_ns, 0);
    atomic_init(&op->stamp_ns, 0);
    atomic_init(&op->hashes, 0);
    atomic_init(&op->hashes_ns, 0);
    op->sec = sec;
    op->pow = POW_AUTO;
    pst_outbox_hold(o);
    if ((op->list_next = o->sends) != NULL)
        o->sends->list_prev = op;
    o->sends = op;
    o->sends_active++;
    if (parse_args(op, req) != 0) {
        finish(op);
        return;
    }
    op->spool_owned = in_spool(o, op->path);
    fill_identity(op);
    pst_node_on_cancel(user, on_client_cancel, op);
    pump(op);
}

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
