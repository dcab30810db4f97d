/* Recipient side of mail delivery: our inbox slot -> validated notification
 * -> inbox row -> fetch job -> Maildir + receipt.
 *
 * Notifications arrive by listen and by a periodic get (a listen can miss
 * values and keeps at most 4,096 per key). Both paths meet in
 * on_inbox_value(), which skips values it has seen (our own keyed hash of
 * the bytes, never OpenDHT's value id) and runs the pipeline, cheapest check
 * first, counting every rejection as rejected.inbox.REASON.
 *
 * The store is the source of truth: a row is PENDING until the file is in
 * new/ (DELIVERED), then receipt_sent once the sender acknowledged our
 * receipt. Jobs in memory only schedule work for those rows (backoff, at
 * most PST_INBOX_FETCHES_MAX connections); they are rebuilt from the store on
 * start and at every poll, so a crash loses nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hint_int.h"
#include "inbox_int.h"
#include "pst_log.h"

int pst_inbox__copy_row(const pst_store_inbox_row *row, void *user) {
    row_copy *r = user;
    r->state = row->state;
    memcpy(r->sender, row->sender, sizeof r->sender);
    r->expires = row->expires;
    r->delivered = row->delivered;
    r->receipt_sent = row->receipt_sent;
    r->notification_len =
        row->notification_len <= sizeof r->notification ? row->notification_len : 0;
    memcpy(r->notification, row->notification, r->notification_len);
    return 0;
}

void pst_inbox__hex8(const uint8_t id[PST_HASH_BYTES], char out[17]) {
    sodium_bin2hex(out, 17, id, 8);
}

/* Counts a rejection; reason NULL: named after err (pst_err_reason). */
int pst_inbox__reject(pst_node *n, int err, const char *reason) {
    char buf[40];
    if (reason == NULL)
        reason = pst_err_reason(err, buf, sizeof buf);
    pst_counter_rejected(n, "inbox", reason);
    return err;
}

/* ---- the pipeline ---------------------------------------------------------------- */

static int check_stamp(struct pst_inbox *ib, const pst_notify *outer, uint64_t now,
                       stamp_info *out) {
    pst_node *n = ib->node;
    char ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    pst_notify_ext(outer, ext);
    pst_hashcash_policy pol;
    pst_hashcash_policy_init(&pol, 0, ib->resource);
    pol.ext = ext;
    pst_hashcash_result hr;
    int rc = pst_hashcash_verify(outer->stamp, strlen(outer->stamp), &pol, now, &hr);
    if (rc == PST_E_STAMP_DATE) {
        /* the sender still re-notifies a message we hold (our receipt was
         * lost) days after it paid: a duplicate, answered with the receipt,
         * not a stamp refusal; admit() decides once it knows the id. An old
         * date costs no more than a stampless value: one X25519. */
        out->stale = true;
        return PST_OK;
    }
    if (rc != PST_OK)
        return pst_inbox__reject(n, rc, NULL);
    rc = pst_store_stamp_is_spent(n->store, hr.spent_key, sizeof hr.spent_key);
    if (rc < 0)
        return rc;
    /* A spent stamp that verified is bound (ext) to these very sealed bytes:
     * most likely the sender re-notifying a message we already hold, whose
     * receipt it still waits for. admit() decides once it knows the id. */
    out->spent = rc == 1;
    out->present = true;
    out->bits = hr.bits;
    memcpy(out->spent_key, hr.spent_key, sizeof out->spent_key);
    out->remember_until = hr.remember_until;
    return PST_OK;
}

/* A notification for a message we already know. */
static int seen_before(struct pst_inbox *ib, const row_copy *r, const pst_notify_inner *in,
                       const uint8_t key[SEEN_KEY]) {
    pst_node *n = ib->node;
    if (memcmp(r->sender, in->sender, PST_SIGN_PK_BYTES) != 0)
        return pst_inbox__reject(n, PST_E_MISMATCH, "msgid_conflict");
    if (r->state == PST_STORE_IN_DELIVERED) {
        /* the sender may still wait (our receipt or its acknowledgement was
         * lost): receipt again, at most once per re-notification the seen set
         * lets through. Never to a sender blocked or revoked since: their
         * nodes are not contacted. */
        if (pst_inbox__sender_tier(n, in->sender) != PST_STORE_TIER_BLOCKED &&
            pst_store_is_revoked(n->store, in->sender) == 0) {
            char id[17];
            pst_inbox__hex8(in->msg_id, id);
            pst_log_info("message %s was notified again: sending its receipt again", id);
            pst_inbox__job_want(ib, in->msg_id, true, r->expires, true, key);
        }
    } else if (r->state == PST_STORE_IN_PENDING)
        pst_inbox__job_want(ib, in->msg_id, false, r->expires, true, key);
    return pst_inbox__reject(n, PST_E_DUPLICATE, "duplicate");
}

static int admit(struct pst_inbox *ib, const pst_notify_inner *in, const stamp_info *stamp,
                 const uint8_t *val, size_t len, const uint8_t key[SEEN_KEY], uint64_t now) {
    pst_node *n = ib->node;
    row_copy r;
    memset(&r, 0, sizeof r);
    int rc = pst_store_inbox_get(n->store, in->msg_id, pst_inbox__copy_row, &r);
    if (rc == PST_OK)
        return seen_before(ib, &r, in, key); /* also with a spent stamp: the receipt again */
    if (rc != PST_E_NOTFOUND)
        return rc;
    if (stamp->stale) /* dated out of the window, for a message we do not hold */
        return pst_inbox__reject(n, PST_E_STAMP_DATE, NULL);
    if (stamp->spent) /* paid once already, for a message we do not hold */
        return pst_inbox__reject(n, PST_E_DUPLICATE, "stamp_spent");
    rc = pst_store_is_revoked(n->store, in->sender);
    if (rc != 0)
        return rc < 0 ? rc : pst_inbox__reject(n, PST_E_REVOKED, "revoked_key");
    const char *reason;
    bool ask = false;
    if (pst_inbox__route(n, in->sender, stamp, &reason, &ask) == NULL) {
        if (ask) {
            int wrc = pst_inbox__wait_add(ib, key, in->sender, stamp);
            /* a full ring is not the value's fault: PST_E_BUSY is not
             * remembered as seen, so the next re-put is looked at again */
            return wrc;
        }
        pst_inbox__refused(ib, key, in->sender, reason); /* a trust change judges it again */
        return pst_inbox__reject(n, PST_E_PERM, reason);
    }
    /* the row and the spent stamp together, so a crash keeps both or neither;
     * without an fsync of their own: nobody is told they are stored (the
     * sender puts the notification again until our receipt), and the
     * attempt's commit before the fetch makes them durable with it */
    if ((rc = pst_store_begin_lazy(n->store)) != PST_OK)
        return rc;
    int added = pst_store_inbox_add(n->store, in->msg_id, in->sender, val, len, in->expires, now);
    rc = added;
    if (rc == PST_OK && stamp->present)
        rc = pst_store_stamp_spend(n->store, stamp->spent_key, sizeof stamp->spent_key,
                                   stamp->remember_until);
    if (rc == PST_OK)
        rc = pst_store_commit(n->store);
    else
        (void)pst_store_rollback(n->store);
    if (rc == PST_E_DUPLICATE)
        return pst_inbox__reject(n, rc, added == PST_E_DUPLICATE ? "duplicate" : "stamp_spent");
    if (rc != PST_OK) {
        pst_log_warn("cannot record a notification: %s", pst_store_last_error(n->store));
        return rc;
    }
    char id[17], fp[PST_FINGERPRINT_STRLEN + 1];
    pst_inbox__hex8(in->msg_id, id);
    pst_fingerprint_format(in->sender, fp);
    pst_log_info("notification for message %s from %s (%llu bytes)", id, fp,
                 (unsigned long long)in->size);
    pst_counter_add(n, "inbox.accepted", 1);
    pst_inbox__refresh_sender(n, in->sender);
    pst_inbox__job_want(ib, in->msg_id, false, in->expires, true, key);
    return PST_OK;
}

static int accept_notification(struct pst_inbox *ib, const uint8_t *val, size_t len,
                               const uint8_t key[SEEN_KEY]) {
    pst_node *n = ib->node;
    uint64_t now = pst_now();
    pst_notify outer;
    int rc = pst_notify_decode(val, len, &outer);
    if (rc != PST_OK)
        return pst_inbox__reject(n, rc, NULL);
    stamp_info stamp;
    memset(&stamp, 0, sizeof stamp);
    /* an invalid stamp costs one SHA-1; the seal costs an X25519 */
    if (outer.stamp[0] != '\0' && (rc = check_stamp(ib, &outer, now, &stamp)) != PST_OK)
        return rc;
    pst_notify_inner in;
    rc = pst_inbox__open(n, &outer, &in);
    if (rc != PST_OK)
        return pst_inbox__reject(n, rc, NULL);
    if ((rc = pst_notify_inner_verify(&in, now)) != PST_OK)
        rc = pst_inbox__reject(n, rc,
                               pst_clock_notification(n, &in, rc)); /* clock: named and logged */
    else if (memcmp(in.recipient, n->id->sign_pk, PST_SIGN_PK_BYTES) != 0)
        rc = pst_inbox__reject(n, PST_E_MISMATCH, "wrong_recipient");
    else if (in.size > n->cfg.max_message_bytes)
        rc = pst_inbox__reject(n, PST_E_TOOBIG, "too_large");
    else if (in.flags != 0 && memcmp(in.sender, n->id->sign_pk, PST_SIGN_PK_BYTES) != 0)
        rc = pst_inbox__reject(n, PST_E_SIGNER, "sync_not_own"); /* sync: our devices only */
    else if ((rc = pst_inbox__device_check(ib, &in, val, len)) == PST_OK)
        rc = admit(ib, &in, &stamp, val, len, key, now);
    sodium_memzero(&in, sizeof in);
    return rc;
}

static void on_inbox_value(struct pst_inbox *ib, const uint8_t *val, size_t len, bool from_listen) {
    pst_node *n = ib->node;
    pst_counter_add(n, "inbox.values_seen", 1);
    if (len > PST_DHT_VALUE_MAX) {
        pst_inbox__reject(n, PST_E_TOOBIG, "oversize");
        return;
    }
    uint8_t key[SEEN_KEY];
    pst_seen_key(&ib->seen, NULL, 0, val, len, key);
    if (pst_seen_has(&ib->seen, key)) {
        /* a listen hands over a value when it is put (again): the sender
         * may be back. A get returns what the slot holds, old puts too. */
        if (from_listen)
            pst_inbox__job_reput(ib, key);
        return;
    }
    if (from_listen)
        ib->listen_new_ms = uv_now(n->loop);
    int rc = accept_notification(ib, val, len, key);
    /* a local failure is not the value's fault: look at it again next time */
    if (rc != PST_E_STORE && rc != PST_E_BUSY && rc != PST_E_NOMEM && rc != PST_E_IO)
        pst_seen_add(&ib->seen, key, pst_now());
}

/* A value not from the slot's listen: skipped when seen (*seen; with wake,
 * as a sender's sign of life, like a listen's re-put), else judged and
 * remembered unless the failure was ours. */
static int judge_value(struct pst_inbox *ib, const uint8_t *val, size_t len, bool wake,
                       bool *seen) {
    uint8_t key[SEEN_KEY];
    pst_seen_key(&ib->seen, NULL, 0, val, len, key);
    *seen = pst_seen_has(&ib->seen, key);
    if (*seen) {
        if (wake)
            pst_inbox__job_reput(ib, key);
        return PST_E_DUPLICATE;
    }
    int rc = accept_notification(ib, val, len, key);
    if (rc != PST_E_STORE && rc != PST_E_BUSY && rc != PST_E_NOMEM && rc != PST_E_IO)
        pst_seen_add(&ib->seen, key, pst_now());
    return rc;
}

void pst_inbox__value_again(struct pst_inbox *ib, const uint8_t *val, size_t len) {
    bool seen;
    (void)judge_value(ib, val, len, false, &seen);
}

pst_hint_outcome pst_inbox_hint(pst_node *n, const uint8_t *val, size_t len) {
    struct pst_inbox *ib = n->inbox;
    if (ib == NULL || n->stopping || len == 0 || len > PST_DHT_VALUE_MAX)
        return PST_HINT_LATER; /* the hint decoder caps len: never from the wire */
    bool seen;
    /* a seen hint wakes a job waiting out a back-off, as a listen's re-put
     * does; anyone can hint a copy, which costs at most one early try per
     * PST_INBOX_REPUT_WAKE_MS (pst_inbox__job_reput) */
    int rc = judge_value(ib, val, len, true, &seen);
    if (seen)
        return PST_HINT_SEEN;
    if (rc == PST_OK)
        return PST_HINT_TAKEN;
    if (rc == PST_E_STORE || rc == PST_E_BUSY || rc == PST_E_NOMEM || rc == PST_E_IO)
        return PST_HINT_LATER;
    return PST_HINT_REFUSED;
}

static void on_listen_value(void *user, const uint8_t *val, size_t len, bool expired) {
    struct pst_inbox *ib = user;
    if (!expired && !ib->node->stopping)
        on_inbox_value(ib, val, len, true);
}

/* Gets carry only the node: they may end (PST_E_CLOSED) after the inbox is
 * gone, and then only free their context. */
typedef struct {
    pst_node *node;
} get_ctx;

static void on_get_value(void *user, const uint8_t *val, size_t len) {
    get_ctx *g = user;
    if (!g->node->stopping && g->node->inbox != NULL) {
        g->node->inbox->get_values++;
        on_inbox_value(g->node->inbox, val, len, false);
    }
}

static void on_get_done(void *user, int status) {
    get_ctx *g = user;
    pst_node *n = g->node;
    free(g);
    if (n->stopping || n->inbox == NULL)
        return;
    struct pst_inbox *ib = n->inbox;
    ib->get_in_flight = false;
    pst_counter_add(n, "dht.own_slot_reads.inbox", 1);
    pst_log_debug("inbox slot read: %u values in %llu ms (%s)", (unsigned)ib->get_values,
                  (unsigned long long)(uv_now(n->loop) - ib->get_started_ms), pst_strerror(status));
    if (status == PST_OK) {
        ib->get_ok_once = true;
        pst_counter_add(n, "dht.own_slot_reads_ok.inbox", 1);
    } else if (!ib->get_ok_once) {
        /* not joined yet: do not wait a whole poll interval for the first look */
        uint64_t every = (uint64_t)n->cfg.inbox_poll_s * 1000u;
        uv_timer_start(&ib->poll_timer, pst_inbox__on_poll, PST_INBOX_POLL_RETRY_MS, every);
    }
}

static void read_slot(struct pst_inbox *ib);

static uint64_t poll_every_ms(const pst_node *n) {
    uint64_t every = (uint64_t)n->cfg.inbox_poll_s * 1000u;
    return every ? every : 1000u;
}

static bool in_touch(const pst_node *n) { return n->bootstrapped || pst_node_joined(n); }

/* Looks for a peer's answer at doubling intervals; at a poll interval it
 * reads anyway: a node whose seeds are all gone may still have peers that
 * joined through it, and its reads then go through. */
static void on_join_wait(uv_timer_t *t) {
    struct pst_inbox *ib = t->data;
    pst_node *n = ib->node;
    if (n->stopping)
        return;
    uint64_t every = poll_every_ms(n);
    if (!in_touch(n) && ib->join_wait_ms < every) {
        ib->join_wait_ms = ib->join_wait_ms * 2 > every ? every : ib->join_wait_ms * 2;
        uv_timer_start(&ib->join_timer, on_join_wait, ib->join_wait_ms, 0);
        return;
    }
    if (!in_touch(n))
        pst_log_debug("inbox: no peer answered yet; reading the inbox slot anyway");
    ib->join_waited = true;
    read_slot(ib);
}

void pst_inbox__on_poll(uv_timer_t *t) {
    struct pst_inbox *ib = t->data;
    pst_node *n = ib->node;
    pst_inbox__sweep(ib, ib->sweep_receipts);
    pst_inbox__wait_pump(ib);
    pst_inbox__gate_tick(ib);
    (void)pst_store_stamp_purge_expired(n->store, pst_now());
    pst_inbox__purge(n, pst_now());
    /* A read before any peer has answered reaches no storing node, and
     * OpenDHT still ends it "done" with nothing in it; taken as the first
     * read, it put the next one off by two poll intervals, so a restarted
     * node did not see what waited in its slot (only what its listen
     * happened to hand over). So the first read waits for the join. */
    if (!ib->join_waited && !in_touch(n)) {
        if (!uv_is_active((uv_handle_t *)&ib->join_timer)) {
            ib->join_wait_ms = PST_INBOX_JOIN_WAIT_MS;
            uv_timer_start(&ib->join_timer, on_join_wait, ib->join_wait_ms, 0);
        }
        return;
    }
    ib->join_waited = true;
    read_slot(ib);
}

static void read_slot(struct pst_inbox *ib) {
    pst_node *n = ib->node;
    /* one full-slot read at a time, inbox or own slots: together they could
     * overrun the DHT layer's queue (PST_DHT_QUEUE_MAX) */
    if (ib->get_in_flight || pst_ingest_own_get_busy(n)) {
        pst_log_debug("inbox poll: a slot read is still running (%s)",
                      ib->get_in_flight ? "inbox" : "own slot");
        return;
    }
    /* While the listen keeps handing over new values (a flood), a get of the
     * whole slot arrives as one burst larger than the DHT layer's queue
     * (PST_DHT_QUEUE_MAX), and what the burst pushes out are the listen's
     * fresh values: read the slot once the listen is quiet for an interval,
     * or at the latest PST_INBOX_POLL_DEFER_MAX_MS after the read was due
     * (one interval after the last one). */
    uint64_t now = uv_now(n->loop), every = (uint64_t)n->cfg.inbox_poll_s * 1000u;
    if (ib->get_ok_once && !ib->poll_forced && ib->listen_new_ms != 0 &&
        now - ib->listen_new_ms < (every > 1000u ? every : 1000u) &&
        now - ib->get_started_ms < every + PST_INBOX_POLL_DEFER_MAX_MS) {
        pst_counter_add(n, "inbox.polls_deferred", 1);
        return;
    }
    bool forced = ib->poll_forced;
    ib->poll_forced = false;
    if (ib->get_ok_once && !forced && (ib->own_turn = !ib->own_turn)) {
        pst_ingest_poll_own(n); /* every other poll: one of our own slots */
        return;
    }
    get_ctx *g = calloc(1, sizeof *g);
    if (g == NULL)
        return;
    g->node = n;
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_inbox(n->id->sign_pk, slot);
    if (pst_dht_get(&n->dht, slot, PST_LOOKUP_TIMEOUT_MS, on_get_value, on_get_done, g) != PST_OK) {
        free(g);
    } else {
        ib->get_in_flight = true;
        ib->get_started_ms = now;
        ib->get_values = 0;
    }
}

/* ---- start and stop ----------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h) {
    struct pst_inbox *ib = h->data;
    pst_node *n = ib->node;
    if (--ib->timers_open == 0)
        free(ib);
    pst_node_handle_unref(n);
}

int pst_inbox_start(pst_node *n, char *err, size_t errcap) {
    struct pst_inbox *ib = calloc(1, sizeof *ib);
    if (ib == NULL)
        return PST_E_NOMEM;
    ib->node = n;
    n->inbox = ib;
    int rc = pst_home_path(n->cfg.home, PST_MAILDIR_DIR, ib->root, sizeof ib->root);
    if (rc == PST_OK)
        rc = pst_maildir_create(ib->root, "", err, errcap);
    if (rc != PST_OK)
        return rc;
    unsigned removed = 0;
    (void)pst_maildir_clean_tmp(ib->root, pst_now(), &removed);
    pst_sync_apply(n, ib->root); /* trust records delivered before a crash */
    if (removed > 0)
        pst_log_info("removed %u unfinished file%s from the tmp/ of %s", removed,
                     removed == 1 ? "" : "s", ib->root);
    if ((ib->seen_mem = calloc(1, PST_SEEN_MEM_BYTES(SEEN_SLOTS))) == NULL)
        return PST_E_NOMEM;
    pst_seen_init(&ib->seen, ib->seen_mem, SEEN_SLOTS, PST_INBOX_SEEN_ROTATE_S, pst_now());
    if ((ib->wait = calloc(PST_INBOX_WAITING_MAX, sizeof *ib->wait)) == NULL)
        return PST_E_NOMEM;
    pst_notify_stamp_resource(n->id->sign_pk, ib->resource);

    uv_timer_t *timers[3] = {&ib->poll_timer, &ib->pump_timer, &ib->join_timer};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(n->loop, timers[i]);
        timers[i]->data = ib;
        ib->timers_open++;
        pst_node_handle_ref(n);
    }
    pst_fetch_group_init(n, &ib->group); /* two handles, closed like the timers */
    ib->timers_open += 2;
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_inbox(n->id->sign_pk, slot);
    /* inbox_listen = no: only tests, to show what the poll and hints do alone */
    rc = n->cfg.inbox_listen ? pst_dht_listen(&n->dht, slot, on_listen_value, ib, &ib->listen)
                             : PST_OK;
    if (rc != PST_OK) {
        snprintf(err, errcap, "cannot listen on our inbox slot: %s", pst_strerror(rc));
        return rc;
    }
    ib->sweep_receipts = true; /* the first poll resumes: PENDING rows, owed receipts */
    uint64_t every = (uint64_t)n->cfg.inbox_poll_s * 1000u;
    uv_timer_start(&ib->poll_timer, pst_inbox__on_poll, 0, every ? every : 1000u);
    return PST_OK;
}

void pst_inbox_stop(pst_node *n) {
    struct pst_inbox *ib = n->inbox;
    if (ib == NULL)
        return;
    n->inbox = NULL;
    if (ib->listen != NULL)
        pst_dht_listen_cancel(&n->dht, ib->listen);
    ib->listen = NULL;
    pst_inbox__gate_stop(ib);
    while (ib->jobs != NULL) {
        job *j = ib->jobs;
        ib->jobs = j->next;
        if (j->conn != NULL)
            pst_fetch_cancel(j->conn);
        free(j);
    }
    ib->n_jobs = ib->running = ib->acking = 0;
    free(ib->seen_mem);
    ib->seen_mem = NULL;
    free(ib->wait);
    ib->wait = NULL;
    free(ib->suspects);
    ib->suspects = NULL;
    ib->n_suspects = ib->cap_suspects = 0;
    free(ib->held);
    ib->held = NULL;
    ib->n_held = 0;
    if (ib->timers_open == 0) {
        free(ib);
        return;
    }
    uv_close((uv_handle_t *)&ib->poll_timer, on_timer_closed);
    uv_close((uv_handle_t *)&ib->pump_timer, on_timer_closed);
    uv_close((uv_handle_t *)&ib->join_timer, on_timer_closed);
    pst_fetch_group_close(&ib->group, ib, on_timer_closed);
}
