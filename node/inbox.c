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

#include "node_int.h"
#include "pst_hashcash.h"
#include "pst_log.h"
#include "pst_seen.h"

#define PST_INBOX_SEEN_MAX 8192u      /* values remembered per generation (two) */
#define PST_INBOX_SEEN_ROTATE_S 1800u /* so a sender still notifying hears from us again */
#define PST_INBOX_JOBS_MAX 1024u      /* jobs in memory; the rest wait in the store */
#define PST_INBOX_FETCHES_MAX 4u      /* simultaneous connections to senders */
#define PST_INBOX_RETRY_MIN_MS 5000u
#define PST_INBOX_RETRY_MAX_MS 600000u
#define PST_INBOX_LAST_TRY_MS 5000u /* the last try before expiry comes this early */
/* A sender that verifiably broke the protocol gets this many tries; a busy,
 * unreachable or overloaded one is retried with back-off until the
 * notification expires (fetch_client.c decides which is which). */
#define PST_INBOX_PROTO_FAILS_MAX 3u
#define PST_INBOX_POLL_RETRY_MS 5000u
#define PST_INBOX_POLL_DEFER_MAX_MS 60000u /* a busy listen puts the get off at most this long */
#define SEEN_KEY PST_SEEN_KEY
#define SEEN_SLOTS (2u * PST_INBOX_SEEN_MAX)
#define PST_INBOX_WAITING_MAX 8192u     /* strangers' notifications waiting for a vouch answer */
#define PST_INBOX_VOUCH_LOOKUPS 4u      /* = trust.c's PST_VOUCH_CHECKS_MAX */
#define PST_INBOX_VOUCH_STUCK_MS 30000u /* a lookup whose answer never came back to us */

/* A stranger's notification, opened and verified, parked until we know
 * whether a trusted contact vouches for its sender (see wait_add). */
typedef struct {
    uint8_t key[SEEN_KEY]; /* the value's seen key; all zero: settled */
    uint8_t signer[PST_SIGN_PK_BYTES];
    bool stamp_present, asked;
    unsigned stamp_bits;
} waiting;

typedef struct {
    uint8_t pk[PST_SIGN_PK_BYTES];
    bool busy;
    uint64_t started_ms;
} vouch_lookup;

typedef struct job {
    struct job *next;
    struct pst_inbox *ib;
    uint8_t msg_id[PST_HASH_BYTES];
    bool receipt_only;
    uint64_t expires; /* the notification's: give up then */
    uint64_t due_ms, last_start_ms;
    uint32_t backoff_ms;
    unsigned proto_fails;
    pst_fetch_conn *conn;
} job;

struct pst_inbox {
    pst_node *node;
    char root[PST_PATH_MAX];
    char resource[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE];
    pst_dht_listen_handle *listen;
    uv_timer_t poll_timer, pump_timer;
    int timers_open;
    bool get_in_flight, get_ok_once, sweep_receipts;
    pst_seen seen; /* node/seen.c, in seen_mem */
    void *seen_mem;
    job *jobs;
    unsigned n_jobs, running;
    waiting *wait;                            /* ring of PST_INBOX_WAITING_MAX */
    uint64_t wait_head, wait_next, wait_tail; /* [head, tail); next: first not asked */
    vouch_lookup lookups[PST_INBOX_VOUCH_LOOKUPS];
    uint64_t listen_new_ms, get_started_ms; /* last new value by listen; last get */
    bool poll_forced;                       /* read the slot at the next poll, busy or not */
    bool own_turn; /* the next poll reads one of our own slots, not the inbox */
};

/* What a notification's stamp paid for; verified before the seal is opened. */
typedef struct {
    bool present;
    bool spent; /* already taken: only a re-notification of that same message passes */
    unsigned bits;
    uint8_t spent_key[PST_HASHCASH_SPENT_KEY_BYTES];
    uint64_t remember_until;
} stamp_info;

/* A copy of the parts of an inbox row we use after the store callback. */
typedef struct {
    pst_store_in_state state;
    uint8_t sender[PST_SIGN_PK_BYTES];
    uint64_t expires, delivered, receipt_sent;
    uint8_t notification[PST_STORE_BLOB_MAX];
    size_t notification_len;
} row_copy;

static int copy_row(const pst_store_inbox_row *row, void *user) {
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

static void hex8(const uint8_t id[PST_HASH_BYTES], char out[17]) { sodium_bin2hex(out, 17, id, 8); }

/* Counts a rejection; reason NULL: named after err (pst_err_reason). */
static int reject(pst_node *n, int err, const char *reason) {
    char buf[40];
    if (reason == NULL)
        reason = pst_err_reason(err, buf, sizeof buf);
    pst_counter_rejected(n, "inbox", reason);
    return err;
}

/* ---- the trust gate ------------------------------------------------------------ */

/* Our own key is trusted: mail to oneself goes to the INBOX (the contact
 * list cannot hold it: `postern trust set` refuses one's own key). */
static int sender_tier(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES]) {
    if (n->id != NULL && memcmp(pk, n->id->sign_pk, PST_SIGN_PK_BYTES) == 0)
        return PST_STORE_TIER_TRUSTED;
    pst_store_tier tier;
    return pst_store_contact_get(n->store, pk, &tier, NULL, 0) == PST_OK ? (int)tier : 0;
}

/* The one place that decides where mail from a sender goes (DESIGN.md,
 * "Trust tiers"): trusted (and we ourselves) -> INBOX, known -> .Known, blocked -> dropped
 * before anything is fetched, unknown -> .Known when a trusted contact
 * vouches for it (vouch_depth), else .Unknown only with a verified stamp of at
 * least the bits we publish. Returns the Maildir folder, or NULL with *reason
 * (a counter name). *ask_vouch is set when the answer depends on vouches not
 * looked up yet: the caller starts the lookup and tries again. It runs again
 * before every fetch, so a tier changed meanwhile applies to pending mail. */
static const char *route(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES], const stamp_info *stamp,
                         const char **reason, bool *ask_vouch) {
    *reason = NULL;
    *ask_vouch = false;
    switch (sender_tier(n, pk)) {
    case PST_STORE_TIER_TRUSTED:
        return "";
    case PST_STORE_TIER_KNOWN:
        return ".Known";
    case PST_STORE_TIER_BLOCKED:
        *reason = "blocked";
        return NULL;
    default:
        break;
    }
    int vouched = pst_trust_vouched(n, pk);
    if (vouched == 1)
        return ".Known";
    if (stamp->present && stamp->bits >= n->cfg.pow_bits)
        return ".Unknown";
    if (vouched < 0 && n->cfg.vouch_depth > 0) {
        *ask_vouch = true;
        *reason = "waiting_for_vouches";
        return NULL;
    }
    *reason = stamp->present ? "stamp_too_weak" : "no_stamp";
    return NULL;
}

static void on_poll(uv_timer_t *t);

/* ---- strangers waiting for a vouch answer ----------------------------------------
 * A stranger without a good stamp gets in only when a trusted contact vouches
 * for it, and finding that out is a DHT lookup: the dearest step of the gate.
 * Its notification is opened and verified once, then parked here (seen key,
 * sender, stamp bits; no bytes) while at most PST_INBOX_VOUCH_LOOKUPS lookups
 * run, oldest sender first. The value stays in the seen set, so a flood's
 * re-deliveries cost one BLAKE2b each, and nothing here delays a contact's
 * notification, which route() admits without any lookup. The answer settles
 * every parked value of that sender, counted once: no_stamp or
 * stamp_too_weak, or (vouched, or trusted meanwhile) forgotten from the seen
 * set and read again from the slot. A full ring refuses as vouch_busy. */

static waiting *wait_at(struct pst_inbox *ib, uint64_t i) {
    return &ib->wait[i % PST_INBOX_WAITING_MAX];
}

static bool wait_live(const waiting *w) { return (w->key[SEEN_KEY - 1] & 1) != 0; }

static void wait_trim(struct pst_inbox *ib) {
    while (ib->wait_head < ib->wait_tail && !wait_live(wait_at(ib, ib->wait_head)))
        ib->wait_head++;
    if (ib->wait_next < ib->wait_head)
        ib->wait_next = ib->wait_head;
}

/* Settles the parked values of pk whose answer route() now has. */
static void wait_settle(struct pst_inbox *ib, const uint8_t pk[PST_SIGN_PK_BYTES]) {
    pst_node *n = ib->node;
    bool again = false;
    for (uint64_t i = ib->wait_head; i < ib->wait_tail; i++) {
        waiting *w = wait_at(ib, i);
        if (!wait_live(w) || memcmp(w->signer, pk, PST_SIGN_PK_BYTES) != 0)
            continue;
        stamp_info st = {.present = w->stamp_present, .bits = w->stamp_bits};
        const char *reason;
        bool ask = false;
        if (route(n, pk, &st, &reason, &ask) != NULL) {
            /* now welcome: the next read of the slot admits it */
            pst_seen_forget(&ib->seen, w->key);
            again = true;
        } else if (ask) {
            w->asked = false; /* no answer after all: ask again */
            if (i < ib->wait_next)
                ib->wait_next = i;
            continue;
        } else {
            pst_counter_rejected(n, "inbox", reason);
        }
        memset(w, 0, sizeof *w);
    }
    wait_trim(ib);
    ib->poll_forced |= again;
    if (again && !n->stopping)
        uv_timer_start(&ib->poll_timer, on_poll, 0, (uint64_t)n->cfg.inbox_poll_s * 1000u);
}

static void wait_pump(struct pst_inbox *ib);

static void on_wait_vouches(pst_node *n, void *user) {
    vouch_lookup *l = user;
    struct pst_inbox *ib = n->inbox; /* not called once the node stops */
    if (ib == NULL || !l->busy)
        return;
    l->busy = false;
    wait_settle(ib, l->pk);
    wait_pump(ib);
}

static bool wait_asking(struct pst_inbox *ib, const uint8_t pk[PST_SIGN_PK_BYTES]) {
    for (unsigned k = 0; k < PST_INBOX_VOUCH_LOOKUPS; k++)
        if (ib->lookups[k].busy && memcmp(ib->lookups[k].pk, pk, PST_SIGN_PK_BYTES) == 0)
            return true;
    return false;
}

/* Starts lookups for the oldest senders not asked yet. */
static void wait_pump(struct pst_inbox *ib) {
    pst_node *n = ib->node;
    uint64_t now = uv_now(n->loop);
    vouch_lookup *free_l = NULL;
    for (unsigned k = 0; k < PST_INBOX_VOUCH_LOOKUPS; k++) {
        vouch_lookup *l = &ib->lookups[k];
        /* someone else's lookup for this sender was running, so ours never
         * reports: its answer is cached by now, or we ask again */
        if (l->busy && now - l->started_ms >= PST_INBOX_VOUCH_STUCK_MS) {
            l->busy = false;
            wait_settle(ib, l->pk);
        }
    }
    while (ib->wait_next < ib->wait_tail && !n->stopping) {
        waiting *w = wait_at(ib, ib->wait_next);
        if (!wait_live(w) || w->asked) {
            ib->wait_next++;
            continue;
        }
        if (pst_trust_vouched(n, w->signer) >= 0) {
            uint8_t pk[PST_SIGN_PK_BYTES];
            memcpy(pk, w->signer, sizeof pk);
            wait_settle(ib, pk); /* answered meanwhile (cached) */
            continue;
        }
        if (wait_asking(ib, w->signer)) {
            w->asked = true;
            ib->wait_next++;
            continue;
        }
        free_l = NULL;
        for (unsigned k = 0; k < PST_INBOX_VOUCH_LOOKUPS && free_l == NULL; k++)
            if (!ib->lookups[k].busy)
                free_l = &ib->lookups[k];
        if (free_l == NULL)
            return; /* the next answer pumps again */
        memcpy(free_l->pk, w->signer, PST_SIGN_PK_BYTES);
        free_l->busy = true;
        free_l->started_ms = now;
        int rc = pst_trust_vouch_check(n, w->signer, on_wait_vouches, free_l);
        if (rc == PST_E_BUSY) { /* the node's lookups are taken (key get): at the next poll */
            free_l->busy = false;
            return;
        }
        if (rc != PST_OK) {
            free_l->busy = false;
            pst_counter_rejected(n, "inbox", "vouch_failed");
            /* our failure, not the value's: the next read looks at it again */
            pst_seen_forget(&ib->seen, w->key);
            memset(w, 0, sizeof *w);
            wait_trim(ib);
            continue;
        }
        w->asked = true;
        ib->wait_next++;
    }
}

/* Parks a stranger's notification (key: its seen key) until its sender's
 * vouch answer is known. PST_OK: parked (not a verdict yet; the value is
 * remembered as seen); PST_E_BUSY counted as vouch_busy when the ring is
 * full. */
static int wait_add(struct pst_inbox *ib, const uint8_t key[SEEN_KEY],
                    const uint8_t signer[PST_SIGN_PK_BYTES], const stamp_info *stamp) {
    pst_node *n = ib->node;
    for (uint64_t i = ib->wait_head; i < ib->wait_tail; i++) /* forgotten by the seen set */
        if (memcmp(wait_at(ib, i)->key, key, SEEN_KEY) == 0)
            return PST_OK;
    wait_trim(ib);
    if (ib->wait == NULL || ib->wait_tail - ib->wait_head >= PST_INBOX_WAITING_MAX)
        return reject(n, PST_E_BUSY, "vouch_busy");
    waiting *w = wait_at(ib, ib->wait_tail++);
    memset(w, 0, sizeof *w);
    memcpy(w->key, key, SEEN_KEY);
    memcpy(w->signer, signer, PST_SIGN_PK_BYTES);
    w->stamp_present = stamp->present;
    w->stamp_bits = stamp->bits;
    pst_counter_add(n, "inbox.waiting_for_vouches", 1);
    wait_pump(ib);
    return PST_OK;
}

/* Caches the sender's KeyRecord (the listing shows whether it lists the
 * From: address) and learns a revocation before we fetch. */
static void on_sender_resolved(void *user, int err, const pst_resolved_key *keys, unsigned n,
                               const pst_resolve_info *info) {
    (void)user;
    (void)err;
    (void)keys;
    (void)n;
    (void)info;
}

static void refresh_sender(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES]) {
    uint8_t buf[PST_RECORD_MAX];
    size_t len;
    uint64_t expires = 0;
    if (pst_store_keyrec_get(n->store, pk, buf, sizeof buf, &len, NULL, &expires) == PST_OK &&
        expires > pst_now())
        return;
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(pk, fp);
    (void)pst_resolve(n, fp, false, on_sender_resolved, NULL); /* not the user's: no clock vote */
}

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
static void job_want(struct pst_inbox *ib, const uint8_t id[PST_HASH_BYTES], bool receipt_only,
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
    job_want(ib, id, false, expires, true);
}

static void fail_row(struct pst_inbox *ib, job *j, const char *why) {
    char id[17];
    hex8(j->msg_id, id);
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
    hex8(j->msg_id, id);
    pst_log_debug("message %s: %s, next try in %u s", id, why, (unsigned)(wait / 1000u));
}

static void on_fetch_done(void *user, const pst_fetch_result *res) {
    job *j = user;
    struct pst_inbox *ib = j->ib;
    pst_node *n = ib->node;
    char name[PST_COUNTER_NAME_MAX], id[17];
    hex8(j->msg_id, id);
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
    if (pst_store_inbox_get(n->store, j->msg_id, copy_row, &r) != PST_OK ||
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
    hex8(j->msg_id, id);
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
            const char *folder = route(n, fj.sender, &st, &reason, &ask);
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
        job_want(ib, row->msg_id, false, row->expires, false);
    else if (row->state == PST_STORE_IN_DELIVERED && row->receipt_sent == 0 &&
             row->expires > pst_now())
        job_want(ib, row->msg_id, true, row->expires, false);
    return 0;
}

static void sweep(struct pst_inbox *ib, bool receipts) {
    pst_store *st = ib->node->store;
    if (receipts)
        ib->sweep_receipts = false;
    (void)pst_store_inbox_list(st, PST_STORE_IN_PENDING, on_sweep_row, ib);
    if (receipts)
        (void)pst_store_inbox_list(st, PST_STORE_IN_DELIVERED, on_sweep_row, ib);
}

/* ---- the pipeline ---------------------------------------------------------------- */

static int check_stamp(struct pst_inbox *ib, const pst_notify *outer, uint64_t now,
                       stamp_info *out) {
    pst_node *n = ib->node;
    char ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    pst_notify_stamp_ext(outer->sealed, outer->sealed_len, ext);
    pst_hashcash_policy pol;
    pst_hashcash_policy_init(&pol, 0, ib->resource);
    pol.ext = ext;
    pst_hashcash_result hr;
    int rc = pst_hashcash_verify(outer->stamp, strlen(outer->stamp), &pol, now, &hr);
    if (rc != PST_OK)
        return reject(n, rc, NULL);
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
static int seen_before(struct pst_inbox *ib, const row_copy *r, const pst_notify_inner *in) {
    pst_node *n = ib->node;
    if (memcmp(r->sender, in->signer, PST_SIGN_PK_BYTES) != 0)
        return reject(n, PST_E_MISMATCH, "msgid_conflict");
    if (r->state == PST_STORE_IN_DELIVERED) {
        /* the sender may still wait (our receipt or its acknowledgement was
         * lost): receipt again, at most once per re-notification the seen set
         * lets through. Never to a sender blocked or revoked since: their
         * nodes are not contacted. */
        if (sender_tier(n, in->signer) != PST_STORE_TIER_BLOCKED &&
            pst_store_is_revoked(n->store, in->signer) == 0) {
            char id[17];
            hex8(in->msg_id, id);
            pst_log_info("message %s was notified again: sending its receipt again", id);
            job_want(ib, in->msg_id, true, r->expires, true);
        }
    } else if (r->state == PST_STORE_IN_PENDING)
        job_want(ib, in->msg_id, false, r->expires, true);
    return reject(n, PST_E_DUPLICATE, "duplicate");
}

static int admit(struct pst_inbox *ib, const pst_notify_inner *in, const stamp_info *stamp,
                 const uint8_t *val, size_t len, const uint8_t key[SEEN_KEY], uint64_t now) {
    pst_node *n = ib->node;
    row_copy r;
    memset(&r, 0, sizeof r);
    int rc = pst_store_inbox_get(n->store, in->msg_id, copy_row, &r);
    if (rc == PST_OK)
        return seen_before(ib, &r, in); /* also with a spent stamp: the receipt again */
    if (rc != PST_E_NOTFOUND)
        return rc;
    if (stamp->spent) /* paid once already, for a message we do not hold */
        return reject(n, PST_E_DUPLICATE, "stamp_spent");
    rc = pst_store_is_revoked(n->store, in->signer);
    if (rc != 0)
        return rc < 0 ? rc : reject(n, PST_E_REVOKED, "revoked_key");
    const char *reason;
    bool ask = false;
    if (route(n, in->signer, stamp, &reason, &ask) == NULL) {
        if (ask) {
            int wrc = wait_add(ib, key, in->signer, stamp);
            /* a full ring is not the value's fault: PST_E_BUSY is not
             * remembered as seen, so the next re-put is looked at again */
            return wrc;
        }
        return reject(n, PST_E_PERM, reason);
    }
    /* the row and the spent stamp together, so a crash keeps both or neither */
    if ((rc = pst_store_begin(n->store)) != PST_OK)
        return rc;
    int added = pst_store_inbox_add(n->store, in->msg_id, in->signer, val, len, in->expires, now);
    rc = added;
    if (rc == PST_OK && stamp->present)
        rc = pst_store_stamp_spend(n->store, stamp->spent_key, sizeof stamp->spent_key,
                                   stamp->remember_until);
    if (rc == PST_OK)
        rc = pst_store_commit(n->store);
    else
        (void)pst_store_rollback(n->store);
    if (rc == PST_E_DUPLICATE)
        return reject(n, rc, added == PST_E_DUPLICATE ? "duplicate" : "stamp_spent");
    if (rc != PST_OK) {
        pst_log_warn("cannot record a notification: %s", pst_store_last_error(n->store));
        return rc;
    }
    char id[17], fp[PST_FINGERPRINT_STRLEN + 1];
    hex8(in->msg_id, id);
    pst_fingerprint_format(in->signer, fp);
    pst_log_info("notification for message %s from %s (%llu bytes)", id, fp,
                 (unsigned long long)in->size);
    pst_counter_add(n, "inbox.accepted", 1);
    refresh_sender(n, in->signer);
    job_want(ib, in->msg_id, false, in->expires, true);
    return PST_OK;
}

static int accept_notification(struct pst_inbox *ib, const uint8_t *val, size_t len,
                               const uint8_t key[SEEN_KEY]) {
    pst_node *n = ib->node;
    uint64_t now = pst_now();
    pst_notify outer;
    int rc = pst_notify_decode(val, len, &outer);
    if (rc != PST_OK)
        return reject(n, rc, NULL);
    stamp_info stamp;
    memset(&stamp, 0, sizeof stamp);
    /* an invalid stamp costs one SHA-1; the seal costs an X25519 */
    if (outer.stamp[0] != '\0' && (rc = check_stamp(ib, &outer, now, &stamp)) != PST_OK)
        return rc;
    pst_notify_inner in;
    rc = pst_notify_open(&outer, n->id->box_pk, n->id->box_sk, &in);
    if (rc != PST_OK)
        return reject(n, rc, NULL);
    if ((rc = pst_notify_inner_verify(&in, now)) != PST_OK)
        rc = reject(n, rc, pst_clock_notification(n, &in, rc)); /* clock: named and logged */
    else if (memcmp(in.recipient, n->id->sign_pk, PST_SIGN_PK_BYTES) != 0)
        rc = reject(n, PST_E_MISMATCH, "wrong_recipient");
    else if (in.size > n->cfg.max_message_bytes)
        rc = reject(n, PST_E_TOOBIG, "too_large");
    else
        rc = admit(ib, &in, &stamp, val, len, key, now);
    sodium_memzero(&in, sizeof in);
    return rc;
}

static void on_inbox_value(struct pst_inbox *ib, const uint8_t *val, size_t len, bool from_listen) {
    pst_node *n = ib->node;
    pst_counter_add(n, "inbox.values_seen", 1);
    if (len > PST_DHT_VALUE_MAX) {
        reject(n, PST_E_TOOBIG, "oversize");
        return;
    }
    uint8_t key[SEEN_KEY];
    pst_seen_key(&ib->seen, NULL, 0, val, len, key);
    if (pst_seen_has(&ib->seen, key))
        return;
    if (from_listen)
        ib->listen_new_ms = uv_now(n->loop);
    int rc = accept_notification(ib, val, len, key);
    /* a local failure is not the value's fault: look at it again next time */
    if (rc != PST_E_STORE && rc != PST_E_BUSY && rc != PST_E_NOMEM && rc != PST_E_IO)
        pst_seen_add(&ib->seen, key, pst_now());
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
    if (!g->node->stopping && g->node->inbox != NULL)
        on_inbox_value(g->node->inbox, val, len, false);
}

static void on_poll(uv_timer_t *t);

static void on_get_done(void *user, int status) {
    get_ctx *g = user;
    pst_node *n = g->node;
    free(g);
    if (n->stopping || n->inbox == NULL)
        return;
    struct pst_inbox *ib = n->inbox;
    ib->get_in_flight = false;
    if (status == PST_OK) {
        ib->get_ok_once = true;
    } else if (!ib->get_ok_once) {
        /* not joined yet: do not wait a whole poll interval for the first look */
        uint64_t every = (uint64_t)n->cfg.inbox_poll_s * 1000u;
        uv_timer_start(&ib->poll_timer, on_poll, PST_INBOX_POLL_RETRY_MS, every);
    }
}

static void on_poll(uv_timer_t *t) {
    struct pst_inbox *ib = t->data;
    pst_node *n = ib->node;
    sweep(ib, ib->sweep_receipts);
    wait_pump(ib);
    (void)pst_store_stamp_purge_expired(n->store, pst_now());
    /* one full-slot read at a time, inbox or own slots: together they could
     * overrun the DHT layer's queue (PST_DHT_QUEUE_MAX) */
    if (ib->get_in_flight || pst_ingest_own_get_busy(n))
        return;
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
    if (removed > 0)
        pst_log_info("removed %u unfinished file%s from the tmp/ of %s", removed,
                     removed == 1 ? "" : "s", ib->root);
    if ((ib->seen_mem = calloc(1, PST_SEEN_MEM_BYTES(SEEN_SLOTS))) == NULL)
        return PST_E_NOMEM;
    pst_seen_init(&ib->seen, ib->seen_mem, SEEN_SLOTS, PST_INBOX_SEEN_ROTATE_S, pst_now());
    if ((ib->wait = calloc(PST_INBOX_WAITING_MAX, sizeof *ib->wait)) == NULL)
        return PST_E_NOMEM;
    pst_notify_stamp_resource(n->id->sign_pk, ib->resource);

    uv_timer_t *timers[2] = {&ib->poll_timer, &ib->pump_timer};
    for (int i = 0; i < 2; i++) {
        uv_timer_init(n->loop, timers[i]);
        timers[i]->data = ib;
        ib->timers_open++;
        pst_node_handle_ref(n);
    }
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_inbox(n->id->sign_pk, slot);
    rc = pst_dht_listen(&n->dht, slot, on_listen_value, ib, &ib->listen);
    if (rc != PST_OK) {
        snprintf(err, errcap, "cannot listen on our inbox slot: %s", pst_strerror(rc));
        return rc;
    }
    ib->sweep_receipts = true; /* the first poll resumes: PENDING rows, owed receipts */
    uint64_t every = (uint64_t)n->cfg.inbox_poll_s * 1000u;
    uv_timer_start(&ib->poll_timer, on_poll, 0, every ? every : 1000u);
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
    while (ib->jobs != NULL) {
        job *j = ib->jobs;
        ib->jobs = j->next;
        if (j->conn != NULL)
            pst_fetch_cancel(j->conn);
        free(j);
    }
    ib->n_jobs = ib->running = 0;
    free(ib->seen_mem);
    ib->seen_mem = NULL;
    free(ib->wait);
    ib->wait = NULL;
    if (ib->timers_open == 0) {
        free(ib);
        return;
    }
    uv_close((uv_handle_t *)&ib->poll_timer, on_timer_closed);
    uv_close((uv_handle_t *)&ib->pump_timer, on_timer_closed);
}
