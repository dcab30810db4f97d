/* Fetch jobs of the recipient side: one per inbox row that still needs
 * work, scheduled with back-off, at most PST_INBOX_FETCHES_MAX connections,
 * given up only once the notification has expired; a finished fetch is
 * recorded (delivered, receipt sent, or why not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inbox_int.h"
#include "pst_log.h"

/* ---- jobs ------------------------------------------------------------------------ */

static void pump(struct pst_inbox *ib);
static void on_pump(uv_timer_t *t) { pump(t->data); }
static void pump_soon(struct pst_inbox *ib) { uv_timer_start(&ib->pump_timer, on_pump, 0, 0); }

static job *job_find(struct pst_inbox *ib, const uint8_t id[PST_HASH_BYTES]) {
    for (job *j = ib->jobs; j; j = j->next)
        if (memcmp(j->msg_id, id, PST_HASH_BYTES) == 0)
            return j;
    return NULL;
}

static void job_remove(struct pst_inbox *ib, job *j) {
    for (job **p = &ib->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            ib->n_jobs--;
            free(j);
            return;
        }
}

/* Schedules work for a row. sender_alive: a fresh notification just came, so
 * a job waiting out a long backoff is tried again (not more often than
 * every PST_INBOX_RETRY_MIN_MS, whatever a sender puts in our slot). */
void pst_inbox__job_want(struct pst_inbox *ib, const uint8_t id[PST_HASH_BYTES], bool receipt_only,
                         uint64_t expires, bool sender_alive) {
    uint64_t now = uv_now(ib->node->loop);
    job *j = job_find(ib, id);
    if (j != NULL) {
        j->receipt_only |= receipt_only;
        uint64_t soonest = j->last_start_ms + PST_INBOX_RETRY_MIN_MS;
        if (sender_alive && j->conn == NULL && j->due_ms > soonest) {
            j->due_ms = soonest > now ? soonest : now;
            pump_soon(ib);
        }
        return;
    }
    if (ib->n_jobs >= PST_INBOX_JOBS_MAX || (j = calloc(1, sizeof *j)) == NULL) {
        ib->sweep_receipts = true; /* the row waits in the store for the next sweep */
        return;
    }
    j->ib = ib;
    memcpy(j->msg_id, id, PST_HASH_BYTES);
    j->receipt_only = receipt_only;
    j->expires = expires;
    j->due_ms = now;
    j->next = ib->jobs;
    ib->jobs = j;
    ib->n_jobs++;
    pump_soon(ib);
}

/* Why the last attempt at a message failed, kept in the store (meta) so that
 * `postern inbox` can say it after a restart too: "retrying: ..." or
 * "gave up: ...". NULL clears it (delivered). */
static void note_why(pst_node *n, const uint8_t id[PST_HASH_BYTES], const char *prefix,
                     const char *why) {
    char name[PST_INBOX_WHY_NAME_BUFSIZE], text[160];
    pst_inbox_why_name(id, name);
    if (why == NULL) {
        (void)pst_store_meta_delete(n->store, name);
        return;
    }
    int len = snprintf(text, sizeof text, "%s%s", prefix, why);
    if (len > 0)
        (void)pst_store_meta_set_blob(n->store, name, (const uint8_t *)text,
                                      (size_t)len < sizeof text ? (size_t)len : sizeof text - 1);
}

void pst_inbox_why_name(const uint8_t id[PST_HASH_BYTES], char name[PST_INBOX_WHY_NAME_BUFSIZE]) {
    char hex[33];
    sodium_bin2hex(hex, sizeof hex, id, 16);
    snprintf(name, PST_INBOX_WHY_NAME_BUFSIZE, "inbox.why.%s", hex);
}

void pst_inbox_wake(pst_node *n, const uint8_t id[PST_HASH_BYTES], uint64_t expires) {
    struct pst_inbox *ib = n->inbox;
    if (ib == NULL || n->stopping)
        return;
    job *j = job_find(ib, id);
    if (j != NULL && j->conn == NULL) {
        j->due_ms = uv_now(n->loop);
        j->backoff_ms = 0;
        j->proto_fails = 0;
        pump_soon(ib);
        return;
    }
    pst_inbox__job_want(ib, id, false, expires, true);
}

static void fail_row(struct pst_inbox *ib, job *j, const char *why) {
    char id[17];
    pst_inbox__hex8(j->msg_id, id);
    if (!j->receipt_only) {
        note_why(ib->node, j->msg_id, "gave up: ", why);
        (void)pst_store_inbox_fail(ib->node->store, j->msg_id, pst_now());
        pst_counter_add(ib->node, "inbox.failed", 1);
        pst_log_warn("giving up on message %s: %s", id, why);
    } else {
        pst_log_info("giving up sending the receipt of message %s: %s", id, why);
    }
    job_remove(ib, j);
}

bool pst_inbox_next_try(uint64_t now_s, uint64_t expires_s, uint32_t backoff_ms,
                        uint64_t *wait_ms) {
    *wait_ms = 0;
    if (now_s >= expires_s)
        return false;
    /* a sender back a minute before expiry still gets its mail through: the
     * last try is PST_INBOX_LAST_TRY_MS before expiry (or halfway there) */
    uint64_t left = (expires_s - now_s) * 1000u;
    uint64_t margin = left / 2 < PST_INBOX_LAST_TRY_MS ? left / 2 : PST_INBOX_LAST_TRY_MS;
    *wait_ms = backoff_ms < left - margin ? backoff_ms : left - margin;
    return true;
}

/* Next try after a failure, or give up once the notification has expired. */
static void backoff(struct pst_inbox *ib, job *j, const char *why) {
    j->backoff_ms = j->backoff_ms == 0                            ? PST_INBOX_RETRY_MIN_MS
                    : j->backoff_ms >= PST_INBOX_RETRY_MAX_MS / 2 ? PST_INBOX_RETRY_MAX_MS
                                                                  : 2 * j->backoff_ms;
    uint64_t wait = 0;
    if (!pst_inbox_next_try(pst_now(), j->expires, j->backoff_ms, &wait)) {
        fail_row(ib, j, "the notification expired before the sender answered");
        return;
    }
    j->due_ms = uv_now(ib->node->loop) + wait;
    if (!j->receipt_only)
        note_why(ib->node, j->msg_id, "retrying: ", why);
    char id[17];
    pst_inbox__hex8(j->msg_id, id);
    pst_log_debug("message %s: %s, next try in %u s", id, why, (unsigned)(wait / 1000u));
}

static void on_fetch_done(void *user, const pst_fetch_result *res) {
    job *j = user;
    struct pst_inbox *ib = j->ib;
    pst_node *n = ib->node;
    char name[PST_COUNTER_NAME_MAX], id[17];
    pst_inbox__hex8(j->msg_id, id);
    j->conn = NULL;
    ib->running--;
    if (res->delivered) {
        if (!j->receipt_only)
            note_why(n, j->msg_id, "", NULL);
        j->receipt_only = true;
        pst_counter_add(n, "inbox.delivered", 1);
        pst_log_info("message %s %s %s (%llu bytes)", id,
                     res->existed ? "was already in" : "delivered into",
                     pst_maildir_folder_display(res->loc.folder), (unsigned long long)res->bytes);
    }
    switch (res->outcome) {
    case PST_FETCH_DONE:
        pst_counter_add(n, "inbox.receipts_acked", 1);
        job_remove(ib, j);
        break;
    case PST_FETCH_GIVE_UP:
        snprintf(name, sizeof name, "fetch.refused.%s", res->reason);
        pst_counter_add(n, name, 1);
        fail_row(ib, j, res->reason);
        break;
    case PST_FETCH_PROTOCOL:
        pst_counter_rejected(n, "fetch", res->reason);
        if (++j->proto_fails >= PST_INBOX_PROTO_FAILS_MAX)
            fail_row(ib, j, res->reason);
        else
            backoff(ib, j, res->reason);
        break;
    case PST_FETCH_RETRY:
        snprintf(name, sizeof name, "fetch.retry.%s", res->reason);
        pst_counter_add(n, name, 1);
        backoff(ib, j, res->reason);
        break;
    }
    pump(ib);
}

/* Decodes and opens the stored outer notification. */
static int open_stored(pst_node *n, const row_copy *r, pst_notify *outer, pst_notify_inner *in) {
    int rc = pst_notify_decode(r->notification, r->notification_len, outer);
    if (rc == PST_OK)
        rc = pst_notify_open(outer, n->id->box_pk, n->id->box_sk, in);
    return rc;
}

static void start_job(struct pst_inbox *ib, job *j) {
    pst_node *n = ib->node;
    uint64_t now = pst_now();
    row_copy r;
    memset(&r, 0, sizeof r);
    if (pst_store_inbox_get(n->store, j->msg_id, pst_inbox__copy_row, &r) != PST_OK ||
        r.state == PST_STORE_IN_FAILED ||
        (r.state == PST_STORE_IN_DELIVERED && !j->receipt_only && r.receipt_sent != 0)) {
        job_remove(ib, j);
        return;
    }
    j->expires = r.expires;
    j->receipt_only |= r.state == PST_STORE_IN_DELIVERED;
    if (r.expires <= now) {
        fail_row(ib, j, "the notification expired");
        return;
    }
    pst_notify outer;
    pst_notify_inner in;
    if (open_stored(n, &r, &outer, &in) != PST_OK) {
        fail_row(ib, j, "the stored notification does not open");
        return;
    }
    char id[17];
    pst_inbox__hex8(j->msg_id, id);
    pst_fetch_job fj;
    memset(&fj, 0, sizeof fj);
    memcpy(fj.msg_id, j->msg_id, sizeof fj.msg_id);
    memcpy(fj.sender, in.signer, sizeof fj.sender);
    memcpy(fj.msg_key, in.msg_key, sizeof fj.msg_key);
    fj.size = in.size;
    fj.n_endpoints = in.n_endpoints;
    memcpy(fj.endpoints, in.endpoints, sizeof fj.endpoints);
    sodium_memzero(&in, sizeof in);
    fj.stored_at = r.delivered;
    const char *why = NULL;
    if (!j->receipt_only) {
        char base[PST_MAILDIR_BASE_BUFSIZE], path[PST_PATH_MAX], err[256];
        pst_maildir_loc loc;
        struct stat sb;
        pst_maildir_base_name(j->msg_id, base);
        bool found = pst_maildir_find_any(ib->root, base, &loc) == PST_OK;
        if (found && pst_maildir_sync_loc(ib->root, &loc) != PST_OK) {
            /* its rename may not be on the disk yet: no receipt until it is */
            why = "the copy already in the Maildir cannot be made durable";
        } else if (found) {
            /* a crash came between the rename into new/ and the store; the
             * message was delivered when its file was written, and the
             * receipt (sent now, maybe again) says that time */
            uint64_t size = 0, at = now;
            if (pst_maildir_loc_path(ib->root, &loc, path, sizeof path) == PST_OK &&
                stat(path, &sb) == 0) {
                size = (uint64_t)sb.st_size;
                if (sb.st_mtime > 0 && (uint64_t)sb.st_mtime < now)
                    at = (uint64_t)sb.st_mtime;
            }
            int rc = pst_store_inbox_delivered(n->store, j->msg_id, loc.folder, base, size, at);
            if (rc != PST_OK && rc != PST_E_DUPLICATE)
                why = "cannot record the delivery";
            j->receipt_only = true;
            fj.stored_at = at;
            pst_counter_add(n, "inbox.recovered", 1);
            pst_log_info("message %s was already in %s (stored before a restart)", id,
                         pst_maildir_folder_display(loc.folder));
        } else if (fj.size > n->cfg.max_message_bytes) {
            fail_row(ib, j, "larger than max_message_size");
            goto out;
        } else if (pst_store_is_revoked(n->store, fj.sender) != 0) {
            fail_row(ib, j, "the sender's key is revoked");
            goto out;
        } else {
            stamp_info st = {.present = outer.stamp[0] != '\0'};
            pst_hashcash_fields hf;
            if (st.present && pst_hashcash_parse(outer.stamp, strlen(outer.stamp), &hf) == PST_OK)
                st.bits = hf.bits; /* verified when the notification was accepted */
            const char *reason;
            bool ask = false;
            const char *folder = pst_inbox__route(n, fj.sender, &st, &reason, &ask);
            if (folder == NULL && ask) {
                (void)pst_trust_vouch_check(n, fj.sender, NULL, NULL);
                backoff(ib, j, "waiting for the sender's vouches");
                goto out;
            }
            if (folder == NULL) {
                pst_counter_rejected(n, "inbox", reason);
                fail_row(ib, j, reason);
                goto out;
            }
            snprintf(fj.folder, sizeof fj.folder, "%s", folder);
            if (pst_maildir_create(ib->root, folder, err, sizeof err) != PST_OK) {
                pst_log_warn("%s", err);
                why = "cannot create the Maildir folder";
            }
            (void)pst_store_inbox_attempt(n->store, j->msg_id, now);
        }
    }
    fj.receipt_only = j->receipt_only;
    if (why == NULL && pst_fetch_start(n, &fj, ib->root, on_fetch_done, j, &j->conn) != PST_OK)
        why = "cannot start a connection";
    if (why != NULL) {
        backoff(ib, j, why);
    } else {
        ib->running++;
        j->last_start_ms = uv_now(n->loop);
    }
out:
    sodium_memzero(&fj, sizeof fj);
}

static void pump(struct pst_inbox *ib) {
    uint64_t now = uv_now(ib->node->loop);
    uint64_t next = UINT64_MAX;
    job *nx;
    for (job *j = ib->jobs; j && ib->running < PST_INBOX_FETCHES_MAX; j = nx) {
        nx = j->next;
        if (j->conn == NULL && j->due_ms <= now)
            start_job(ib, j); /* may free j, or put it off */
    }
    for (job *j = ib->jobs; j; j = j->next)
        if (j->conn == NULL && j->due_ms < next)
            next = j->due_ms;
    /* at the cap, the next fetch that ends pumps again */
    if (next != UINT64_MAX && ib->running < PST_INBOX_FETCHES_MAX)
        uv_timer_start(&ib->pump_timer, on_pump, next > now ? next - now : 0, 0);
}

/* Jobs for every row that needs work: PENDING rows, and (receipts) DELIVERED
 * rows whose receipt the sender has not acknowledged yet. */
static int on_sweep_row(const pst_store_inbox_row *row, void *user) {
    struct pst_inbox *ib = user;
    if (row->state == PST_STORE_IN_PENDING)
        pst_inbox__job_want(ib, row->msg_id, false, row->expires, false);
    else if (row->state == PST_STORE_IN_DELIVERED && row->receipt_sent == 0 &&
             row->expires > pst_now())
        pst_inbox__job_want(ib, row->msg_id, true, row->expires, false);
    return 0;
}

void pst_inbox__sweep(struct pst_inbox *ib, bool receipts) {
    pst_store *st = ib->node->store;
    if (receipts)
        ib->sweep_receipts = false;
    (void)pst_store_inbox_list(st, PST_STORE_IN_PENDING, on_sweep_row, ib);
    if (receipts)
        (void)pst_store_inbox_list(st, PST_STORE_IN_DELIVERED, on_sweep_row, ib);
}
