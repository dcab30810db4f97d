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
static bool endpoint_suspect(const char *reason);
static void relook_sender(struct pst_inbox *ib, job *j);
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
                         uint64_t expires, bool sender_alive, const uint8_t *key) {
    uint64_t now = uv_now(ib->node->loop);
    job *j = job_find(ib, id);
    if (j != NULL && key != NULL) {
        memcpy(j->key, key, SEEN_KEY);
        j->has_key = true;
    }
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
    if (key != NULL) {
        memcpy(j->key, key, SEEN_KEY);
        j->has_key = true;
    }
    /* at the end: pump starts due jobs from the head, so a burst is fetched
     * in the order it came (at the head, the newest went first and the
     * first of a burst waited for its end: seconds of p99) */
    job **at = &ib->jobs;
    while (*at != NULL)
        at = &(*at)->next;
    *at = j;
    ib->n_jobs++;
    pump_soon(ib);
}

void pst_inbox__job_reput(struct pst_inbox *ib, const uint8_t key[SEEN_KEY]) {
    uint64_t now = uv_now(ib->node->loop);
    for (job *j = ib->jobs; j; j = j->next) {
        if (!j->has_key || sodium_memcmp(j->key, key, SEEN_KEY) != 0)
            continue;
        /* a job fetching now, or due soon anyway, needs no wake (a slot
         * holds a copy per put, and a listen hands them all over at once);
         * a replayed copy must not make us call the sender more often than
         * every PST_INBOX_REPUT_WAKE_MS */
        uint64_t soonest = j->last_start_ms + PST_INBOX_RETRY_MIN_MS;
        if (soonest < now)
            soonest = now;
        if (j->conn != NULL || j->due_ms < soonest + PST_INBOX_RETRY_MIN_MS ||
            (j->reput_woken_ms != 0 && now - j->reput_woken_ms < PST_INBOX_REPUT_WAKE_MS))
            return;
        j->reput_woken_ms = now;
        j->due_ms = soonest;
        pst_counter_add(ib->node, "inbox.reput_wakes", 1);
        char id[17];
        pst_inbox__hex8(j->msg_id, id);
        pst_log_info("message %s was notified again: trying its sender now", id);
        pump_soon(ib);
        return;
    }
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
    pst_inbox__job_want(ib, id, false, expires, true, NULL);
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

/* A sender that answered busy has a slot free again within milliseconds
 * (it counts body checks of a few ms each, FETCH_CHECKS_MAX, and answers
 * busy beyond them): try again soon, doubling from PST_INBOX_BUSY_RETRY_MS
 * with jitter, instead of the 5 s meant for a sender that is away; once the
 * doubling reaches that, the usual backoff takes over. Measured: 13-23 of
 * 100 fetches were answered busy with 4 at once, each then waited 5 s (the
 * p99 of send -> Maildir). */
static void busy_backoff(struct pst_inbox *ib, job *j, const char *why) {
    if (j->busy_ms >= PST_INBOX_RETRY_MIN_MS / 2) {
        backoff(ib, j, why);
        return;
    }
    if (j->busy_ms == 0 && !j->receipt_only) /* once: each is a store write */
        note_why(ib->node, j->msg_id, "retrying: ", why);
    j->busy_ms = j->busy_ms == 0 ? PST_INBOX_BUSY_RETRY_MS : 2 * j->busy_ms;
    uint64_t wait = 0;
    if (!pst_inbox_next_try(pst_now(), j->expires, j->busy_ms + randombytes_uniform(j->busy_ms),
                            &wait)) {
        fail_row(ib, j, "the notification expired before the sender answered");
        return;
    }
    j->due_ms = uv_now(ib->node->loop) + wait;
}

/* The receipt is out: the fetch slot goes to the next job while this
 * connection waits for the acknowledgement. */
static void on_fetch_acking(void *user) {
    job *j = user;
    struct pst_inbox *ib = j->ib;
    if (j->acking)
        return;
    j->acking = true;
    ib->running--;
    ib->acking++;
    pump_soon(ib);
}

static void on_fetch_done(void *user, const pst_fetch_result *res) {
    job *j = user;
    struct pst_inbox *ib = j->ib;
    pst_node *n = ib->node;
    if (res->commit_reached && !res->delivered)
        pst_inbox__suspect_add(ib, j->msg_id); /* renamed, maybe, and not recorded */
    uint8_t id_copy[PST_HASH_BYTES];
    memcpy(id_copy, j->msg_id, sizeof id_copy);
    char name[PST_COUNTER_NAME_MAX], id[17];
    pst_inbox__hex8(j->msg_id, id);
    j->conn = NULL;
    if (j->acking) {
        j->acking = false;
        ib->acking--;
    } else {
        ib->running--;
    }
    if (res->delivered) {
        if (!j->receipt_only)
            note_why(n, j->msg_id, "", NULL);
        j->receipt_only = true;
        pst_counter_add(n, "inbox.delivered", 1);
        pst_log_info("message %s %s %s (%llu bytes)", id,
                     res->existed ? "was already in" : "delivered into",
                     pst_maildir_folder_display(res->loc.folder), (unsigned long long)res->bytes);
        if (strcmp(res->loc.folder, PST_SYNC_FOLDER) == 0)
            pst_sync_apply(n, ib->root); /* a trust change from another device */
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
        if (strcmp(res->reason, "status_busy") == 0)
            busy_backoff(ib, j, res->reason);
        else
            backoff(ib, j, res->reason);
        if (endpoint_suspect(res->reason) && job_find(ib, id_copy) == j)
            relook_sender(ib, j);
        break;
    }
    /* on the next turn: the acknowledgements of one group arrive together,
     * and the jobs they free then start with one commit (pump) */
    pump_soon(ib);
}

/* Decodes and opens the stored outer notification. */
static int open_stored(pst_node *n, const row_copy *r, pst_notify *outer, pst_notify_inner *in) {
    int rc = pst_notify_decode(r->notification, r->notification_len, outer);
    if (rc == PST_OK)
        rc = pst_inbox__open(n, outer, in);
    return rc;
}

/* The sender's current fetch endpoints from its cached KeyRecord, merged
 * into fj: a node restarted on a new address or port publishes a new record
 * at once, while the notifications it re-puts still name the old endpoint.
 * A record signed after the notification goes first (it is likelier to be
 * current), an older one fills the free places; at most
 * PST_NOTIFY_ENDPOINTS_MAX in all. Returns how many were added. */
static unsigned merge_keyrec_endpoints(pst_node *n, pst_fetch_job *fj, uint64_t notified) {
    uint8_t buf[PST_RECORD_MAX];
    size_t len = 0;
    uint64_t expires = 0;
    pst_keyrec kr;
    if (pst_store_keyrec_get(n->store, fj->identity, buf, sizeof buf, &len, NULL, &expires) !=
            PST_OK ||
        expires <= pst_now() || pst_keyrec_decode(buf, len, &kr) != PST_OK ||
        sodium_memcmp(kr.signer, fj->identity, PST_SIGN_PK_BYTES) != 0)
        return 0;
    char fresh[PST_NOTIFY_ENDPOINTS_MAX][PST_NOTIFY_ENDPOINT_MAX + 1];
    unsigned n_fresh = 0;
    _Static_assert(sizeof kr.endpoints[0] == sizeof fresh[0], "endpoint sizes differ");
    for (uint32_t i = 0;
         i < kr.n_endpoints && i < PST_KEYREC_ENDPOINTS_MAX && n_fresh < PST_NOTIFY_ENDPOINTS_MAX;
         i++) {
        bool known = !pst_notify_endpoint_valid(kr.endpoints[i]);
        for (uint32_t k = 0; k < fj->n_endpoints && !known; k++)
            known = strcmp(fj->endpoints[k], kr.endpoints[i]) == 0;
        if (!known)
            memcpy(fresh[n_fresh++], kr.endpoints[i], sizeof fresh[0]);
    }
    if (n_fresh == 0)
        return 0;
    char all[PST_NOTIFY_ENDPOINTS_MAX][PST_NOTIFY_ENDPOINT_MAX + 1];
    unsigned n_all = 0, keep = fj->n_endpoints;
    if (kr.created > notified) { /* the record is newer: its endpoints first */
        for (unsigned i = 0; i < n_fresh && n_all < PST_NOTIFY_ENDPOINTS_MAX; i++)
            memcpy(all[n_all++], fresh[i], sizeof all[0]);
        for (unsigned i = 0; i < keep && n_all < PST_NOTIFY_ENDPOINTS_MAX; i++)
            memcpy(all[n_all++], fj->endpoints[i], sizeof all[0]);
    } else {
        for (unsigned i = 0; i < keep && n_all < PST_NOTIFY_ENDPOINTS_MAX; i++)
            memcpy(all[n_all++], fj->endpoints[i], sizeof all[0]);
        for (unsigned i = 0; i < n_fresh && n_all < PST_NOTIFY_ENDPOINTS_MAX; i++)
            memcpy(all[n_all++], fresh[i], sizeof all[0]);
    }
    unsigned added = n_all > keep ? n_all - keep : 0;
    memcpy(fj->endpoints, all, sizeof all);
    fj->n_endpoints = n_all;
    return kr.created > notified ? n_fresh : added;
}

/* Looks the sender's KeyRecord up again after a failure that may mean it
 * moved (refused, timeout, another node's answer on its old port): the
 * result is cached by pst_resolve, and the job is tried at once when the
 * record names an endpoint the notification does not. */
typedef struct {
    pst_node *node;
    uint8_t msg_id[PST_HASH_BYTES];
} relook;

static void on_sender_relooked(void *user, int err, const pst_resolved_key *keys, unsigned nk,
                               const pst_resolve_info *info) {
    (void)err;
    (void)keys;
    (void)nk;
    (void)info;
    relook *r = user;
    pst_node *n = r->node;
    struct pst_inbox *ib = n->inbox;
    job *j = ib != NULL && !n->stopping ? job_find(ib, r->msg_id) : NULL;
    free(r);
    if (j == NULL)
        return;
    j->relook_pending = false;
    if (j->conn != NULL)
        return; /* already trying again: start_job merged the record */
    row_copy rc;
    memset(&rc, 0, sizeof rc);
    pst_notify outer;
    pst_notify_inner in;
    if (pst_store_inbox_get(n->store, j->msg_id, pst_inbox__copy_row, &rc) != PST_OK)
        return;
    if (pst_notify_decode(rc.notification, rc.notification_len, &outer) != PST_OK ||
        pst_inbox__open(n, &outer, &in) != PST_OK)
        return;
    pst_fetch_job fj;
    memset(&fj, 0, sizeof fj);
    memcpy(fj.sender, in.signer, sizeof fj.sender);
    memcpy(fj.identity, in.sender, sizeof fj.identity);
    fj.n_endpoints = in.n_endpoints;
    memcpy(fj.endpoints, in.endpoints, sizeof fj.endpoints);
    uint64_t created = in.created;
    sodium_memzero(&in, sizeof in);
    if (merge_keyrec_endpoints(n, &fj, created) > 0 && j->due_ms > uv_now(n->loop)) {
        char id[17];
        pst_inbox__hex8(j->msg_id, id);
        pst_log_info("message %s: its sender published %s: trying there now", id, fj.endpoints[0]);
        pst_counter_add(n, "inbox.sender_moved", 1);
        uint64_t now = uv_now(n->loop), soonest = j->last_start_ms + PST_INBOX_RETRY_MIN_MS;
        j->due_ms = soonest > now ? soonest : now;
        pump_soon(ib);
    }
}

static bool endpoint_suspect(const char *reason) {
    static const char *const why[] = {"connect",
                                      "timeout",
                                      "resolve",
                                      "no_endpoint",
                                      "bad_frame",
                                      "response_signer",
                                      "unverified_response",
                                      "ack_signer",
                                      "unverified_ack"};
    for (size_t i = 0; i < sizeof why / sizeof why[0]; i++)
        if (strcmp(reason, why[i]) == 0)
            return true;
    return false;
}

static void relook_sender(struct pst_inbox *ib, job *j) {
    pst_node *n = ib->node;
    if (j->relook_pending)
        return; /* one lookup per job at a time */
    relook *r = calloc(1, sizeof *r);
    if (r == NULL)
        return;
    r->node = n;
    memcpy(r->msg_id, j->msg_id, sizeof r->msg_id);
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(j->sender, fp);
    pst_counter_add(n, "inbox.sender_lookups", 1);
    j->relook_pending = true; /* before: the answer may come at once */
    /* not the user's lookup: no clock vote */
    if (pst_resolve(n, fp, false, on_sender_relooked, r) != PST_OK) {
        free(r);
        j->relook_pending = false;
    }
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
    /* the device that signed serves and authors it; trust, revocation and
     * the key record are its identity's */
    memcpy(fj.sender, in.signer, sizeof fj.sender);
    memcpy(fj.identity, in.sender, sizeof fj.identity);
    memcpy(j->sender, in.sender, sizeof j->sender);
    int dev_rc = pst_keys_device_valid(n, in.sender, in.signer);
    /* sync from our other devices (accepted only from them): a Sent copy,
     * or a trust record to apply */
    const char *sync_folder = in.flags == PST_NOTIFY_FLAG_SYNC_SENT    ? PST_SENT_FOLDER
                              : in.flags == PST_NOTIFY_FLAG_SYNC_TRUST ? PST_SYNC_FOLDER
                                                                       : NULL;
    memcpy(fj.msg_key, in.msg_key, sizeof fj.msg_key);
    fj.size = in.size;
    fj.n_endpoints = in.n_endpoints;
    memcpy(fj.endpoints, in.endpoints, sizeof fj.endpoints);
    (void)merge_keyrec_endpoints(n, &fj, in.created);
    sodium_memzero(&in, sizeof in);
    fj.stored_at = r.delivered;
    const char *why = NULL;
    if (!j->receipt_only) {
        char base[PST_MAILDIR_BASE_BUFSIZE], path[PST_PATH_MAX], err[256];
        pst_maildir_loc loc;
        struct stat sb;
        pst_maildir_base_name(j->msg_id, base);
        /* the search of every folder, whose cost grows with the mailbox,
         * only where a copy may be (inbox_copies.c), here and before the
         * rename */
        fj.first_try = !pst_inbox__may_have_copy(ib, j->msg_id);
        bool found = !fj.first_try && pst_maildir_find_any(ib->root, base, &loc) == PST_OK;
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
        } else if (pst_store_is_revoked(n->store, fj.identity) != 0) {
            fail_row(ib, j, "the sender's key is revoked");
            goto out;
        } else if (dev_rc == PST_E_REVOKED) {
            pst_counter_rejected(n, "inbox", "device_revoked");
            fail_row(ib, j, "the sender's device was revoked");
            goto out;
        } else {
            stamp_info st = {.present = outer.stamp[0] != '\0'};
            pst_hashcash_fields hf;
            if (st.present && pst_hashcash_parse(outer.stamp, strlen(outer.stamp), &hf) == PST_OK)
                st.bits = hf.bits; /* verified when the notification was accepted */
            const char *reason;
            bool ask = false;
            const char *folder = pst_inbox__route(n, fj.identity, &st, &reason, &ask);
            if (folder == NULL && ask) {
                (void)pst_trust_vouch_check(n, fj.identity, NULL, NULL);
                backoff(ib, j, "waiting for the sender's vouches");
                goto out;
            }
            if (folder == NULL) {
                pst_counter_rejected(n, "inbox", reason);
                fail_row(ib, j, reason);
                goto out;
            }
            snprintf(fj.folder, sizeof fj.folder, "%s", sync_folder ? sync_folder : folder);
            if (pst_maildir_create(ib->root, fj.folder, err, sizeof err) != PST_OK) {
                pst_log_warn("%s", err);
                why = "cannot create the Maildir folder";
            }
            (void)pst_store_inbox_attempt(n->store, j->msg_id, now);
        }
    }
    fj.receipt_only = j->receipt_only;
    fj.group = &ib->group;
    fj.acking = on_fetch_acking;
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

/* The jobs started here record their attempts in one store commit (a group
 * commit, docs/MAIL.md "Where durability is batched"): it comes before any
 * of their connections does I/O (a fetch begins at its first timer tick,
 * on the next turn of the loop). When it fails, those fetches are called
 * off: the exactly-once search relies on the attempt being durable. */
static void pump(struct pst_inbox *ib) {
    pst_store *st = ib->node->store;
    uint64_t now = uv_now(ib->node->loop);
    uint64_t next = UINT64_MAX;
    job *nx, *started[PST_INBOX_FETCHES_MAX];
    unsigned n_started = 0;
    bool batch = false;
    for (job *j = ib->jobs;
         j && ib->running < PST_INBOX_FETCHES_MAX && ib->acking < PST_INBOX_ACKING_MAX; j = nx) {
        nx = j->next;
        if (j->conn != NULL || j->due_ms > now)
            continue;
        batch = batch || pst_store_begin(st) == PST_OK;
        unsigned before = ib->running;
        start_job(ib, j); /* may free j, or put it off */
        if (ib->running > before)
            started[n_started++] = j;
    }
    if (batch && pst_store_commit(st) != PST_OK) {
        pst_log_warn("cannot record fetch attempts: %s (will retry)", pst_store_last_error(st));
        for (unsigned i = 0; i < n_started; i++) {
            job *j = started[i];
            pst_fetch_cancel(j->conn);
            j->conn = NULL;
            ib->running--;
            pst_counter_add(ib->node, "fetch.retry.store", 1);
            backoff(ib, j, "store"); /* may free j */
        }
    }
    for (job *j = ib->jobs; j; j = j->next)
        if (j->conn == NULL && j->due_ms < next)
            next = j->due_ms;
    /* at the cap, the next fetch that ends pumps again (pump_soon) */
    if (next != UINT64_MAX && ib->running < PST_INBOX_FETCHES_MAX &&
        ib->acking < PST_INBOX_ACKING_MAX)
        uv_timer_start(&ib->pump_timer, on_pump, next > now ? next - now : 0, 0);
}

/* Jobs for every row that needs work: PENDING rows, and (receipts) DELIVERED
 * rows whose receipt the sender has not acknowledged yet. */
static int on_sweep_row(const pst_store_inbox_row *row, void *user) {
    struct pst_inbox *ib = user;
    if (row->state == PST_STORE_IN_PENDING)
        pst_inbox__job_want(ib, row->msg_id, false, row->expires, false, NULL);
    else if (row->state == PST_STORE_IN_DELIVERED && row->receipt_sent == 0 &&
             row->expires > pst_now())
        pst_inbox__job_want(ib, row->msg_id, true, row->expires, false, NULL);
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
