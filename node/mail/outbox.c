/* Sender side of Internet-Mail-2000 delivery: the outbox. Bodies (ciphertext)
 * live in DIR/outbox/<msg id hex>, or up to 64 KiB in the store with their
 * rows (outbox_body.c), their rows in the store. This file keeps
 * every pending recipient's notification alive in its inbox slot (a put
 * after the send, then re-puts with back-off, renotify_s doubling up to
 * 590 s, under OpenDHT's 600 s expiry) until its receipt arrives or the
 * message expires; it resumes from the store after a restart, collects
 * garbage (expired messages, bodies nobody may fetch any more, orphaned
 * spool and tmp files) and remembers bodies the fetch server found damaged.
 * send.c prepares and stores messages; fetch_server.c serves them;
 * outbox_cmd.c answers `outbox`, `unsend` and `outbox retry`. */
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hint_int.h"
#include "outbox_int.h"
#include "pst_fetch.h"
#include "pst_mint.h"
#include "pst_log.h"
#include "pst_record.h"

struct pst_outbox_entry {
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t rcpt[PST_SIGN_PK_BYTES];
    uint64_t expires;    /* unix seconds: stop then */
    uint64_t due_ms;     /* uv_now() of the next put */
    uint32_t interval_s; /* wait after the next put */
    bool in_flight;
    uint64_t since; /* unix seconds the message was sent: escalation clock */
    bool escalated; /* looked at for --pow auto escalation (done or not needed) */
    bool minting;   /* a stamp is being minted for it */
    bool held;      /* its first put waits for the receipt of its hint (due_ms) */
    uint16_t len;
    uint8_t bytes[PST_NOTIFY_MAX];
};

typedef struct {
    pst_node *node;
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t rcpt[PST_SIGN_PK_BYTES];
} put_ctx;

bool pst_outbox_accepting(const pst_node *n) { return n->outbox != NULL && !n->outbox->stopping; }

void pst_outbox_hold(struct pst_outbox *o) { o->refs++; }

void pst_outbox_release(struct pst_outbox *o) {
    if (--o->refs > 0)
        return;
    pst_node *n = o->node;
    n->outbox = NULL;
    free(o->entries);
    if (o->sec_spare)
        sodium_free(o->sec_spare);
    free(o);
    pst_node_handle_unref(n);
}

int pst_outbox_body_path(const struct pst_outbox *o, const uint8_t msg_id[PST_HASH_BYTES],
                         char *out, size_t cap) {
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, msg_id, PST_HASH_BYTES);
    int len = snprintf(out, cap, "%s/%s", o->dir, hex);
    return len < 0 || (size_t)len >= cap ? PST_E_NOSPACE : PST_OK;
}

/* ---- keeping notifications alive ----------------------------------------- */

static struct pst_outbox_entry *find_entry(struct pst_outbox *o, const uint8_t *msg_id,
                                           const uint8_t *rcpt) {
    for (unsigned i = 0; i < o->n_entries; i++)
        if (memcmp(o->entries[i].msg_id, msg_id, PST_HASH_BYTES) == 0 &&
            memcmp(o->entries[i].rcpt, rcpt, PST_SIGN_PK_BYTES) == 0)
            return &o->entries[i];
    return NULL;
}

static void remove_at(struct pst_outbox *o, unsigned i) {
    if (o->entries[i].held) /* answered before its first put: none was needed */
        pst_counter_add(o->node, "outbox.first_puts_spared", 1);
    if (i + 1 < o->n_entries)
        o->entries[i] = o->entries[o->n_entries - 1];
    o->n_entries--;
}

static void on_renotify(uv_timer_t *t);

/* Arms the timer for the earliest due put (puts in flight re-arm when they
 * finish). */
static void arm(struct pst_outbox *o) {
    if (o->stopping || !o->timers_init)
        return;
    uint64_t now = uv_now(o->node->loop), next = UINT64_MAX;
    for (unsigned i = 0; i < o->n_entries; i++)
        if (!o->entries[i].in_flight && !o->entries[i].minting && o->entries[i].due_ms < next)
            next = o->entries[i].due_ms;
    if (next == UINT64_MAX) {
        uv_timer_stop(&o->renotify_timer);
        return;
    }
    uv_timer_start(&o->renotify_timer, on_renotify, next > now ? next - now : 0, 0);
}

static void on_put_done(void *user, int status) {
    put_ctx *p = user;
    pst_node *n = p->node;
    n->ops_pending--;
    struct pst_outbox *o = n->outbox;
    /* after stop only memory is left to free (the store may be closing) */
    if (status == PST_E_CLOSED || n->stopping || o == NULL || o->stopping) {
        free(p);
        return;
    }
    struct pst_outbox_entry *e = find_entry(o, p->msg_id, p->rcpt);
    if (e)
        e->in_flight = false;
    if (status == PST_OK) {
        pst_counter_add(n, "outbox.notify_puts_ok", 1);
        int rc = pst_store_outbox_notified(n->store, p->msg_id, p->rcpt, pst_now());
        if (rc != PST_OK)
            pst_log_warn("cannot record a notification put: %s", pst_store_last_error(n->store));
    } else {
        pst_counter_add(n, "outbox.notify_puts_failed", 1);
        pst_log_debug("notification put failed: %s (retried with back-off)", pst_strerror(status));
    }
    free(p);
    arm(o);
}

static void put_entry(struct pst_outbox *o, struct pst_outbox_entry *e, uint64_t now_ms) {
    pst_node *n = o->node;
    e->held = false;
    e->due_ms = now_ms + (uint64_t)e->interval_s * 1000u;
    e->interval_s = e->interval_s * 2 > PST_OUTBOX_RENOTIFY_MAX_S ? PST_OUTBOX_RENOTIFY_MAX_S
                                                                  : e->interval_s * 2;
    put_ctx *p = calloc(1, sizeof *p);
    if (p == NULL)
        return;
    p->node = n;
    memcpy(p->msg_id, e->msg_id, PST_HASH_BYTES);
    memcpy(p->rcpt, e->rcpt, PST_SIGN_PK_BYTES);
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_inbox(e->rcpt, slot);
    pst_counter_add(n, "outbox.notify_puts", 1);
    int rc =
        pst_dht_put(&n->dht, slot, e->bytes, e->len, false, PST_PUT_TIMEOUT_MS, on_put_done, p);
    if (rc != PST_OK) {
        free(p);
        pst_counter_add(n, "outbox.notify_puts_failed", 1);
        return;
    }
    n->ops_pending++;
    e->in_flight = true;
}

/* ---- --pow auto escalation ---------------------------------------------------
 * A notification sent without a stamp (the recipient was our contact, so we
 * assumed it knows us) that got no receipt within pow_escalate_s is given a
 * stamp of the bits the recipient's KeyRecord asks for, minted over the same
 * sealed bytes, and re-put: if the recipient did not know us after all, the
 * stamped notification gets through. `--pow never` is remembered per message
 * (store meta) and never escalated. */

typedef struct {
    uv_work_t work;
    struct pst_outbox *o;
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t rcpt[PST_SIGN_PK_BYTES];
    pst_notify outer;
    unsigned bits;
    uint64_t now;
    int rc;
    uint8_t bytes[PST_NOTIFY_MAX];
    size_t len;
} escalation;

int pst_outbox_mint_stamp(pst_notify *outer, const uint8_t rcpt[32], unsigned bits, uint64_t now,
                          const atomic_int *cancel,
                          void (*progress)(uint64_t done, double expected, void *user),
                          void *user) {
    char resource[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE], ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    pst_notify_stamp_resource(rcpt, resource);
    pst_notify_ext(outer, ext);
    pst_hashcash_mint_params p;
    memset(&p, 0, sizeof p);
    p.bits = bits;
    p.resource = resource;
    p.ext = ext;
    p.now = now;
    randombytes_buf(p.rand, sizeof p.rand);
    p.threads = 0; /* every core */
    p.cancel = cancel;
    p.progress = progress;
    p.user = user;
    return pst_hashcash_mint(&p, outer->stamp, sizeof outer->stamp);
}

static void escalate_work(uv_work_t *w) {
    escalation *x = w->data;
    x->rc = pst_outbox_mint_stamp(&x->outer, x->rcpt, x->bits, x->now, &x->o->cancel, NULL, NULL);
    if (x->rc == PST_OK)
        x->rc = pst_notify_encode(&x->outer, x->bytes, sizeof x->bytes, &x->len);
}

static void escalate_done(uv_work_t *w, int status) {
    escalation *x = w->data;
    struct pst_outbox *o = x->o;
    pst_node *n = o->node;
    struct pst_outbox_entry *e = o->stopping ? NULL : find_entry(o, x->msg_id, x->rcpt);
    if (e != NULL) {
        e->minting = false;
        e->escalated = true;
        if (status == 0 && x->rc == PST_OK) {
            memcpy(e->bytes, x->bytes, x->len);
            e->len = (uint16_t)x->len;
            e->interval_s = n->cfg.renotify_s ? n->cfg.renotify_s : PST_DEFAULT_RENOTIFY_S;
            e->due_ms = uv_now(n->loop); /* put the stamped one now */
            pst_counter_add(n, "outbox.escalated", 1);
            char fp[PST_FINGERPRINT_STRLEN + 1];
            pst_fingerprint_format(x->rcpt, fp);
            pst_log_info("no receipt from %s yet: re-sending the notification with a %u-bit "
                         "stamp",
                         fp, x->bits);
            arm(o);
        }
    }
    pst_outbox_release(o);
    free(x);
}

static bool pow_never(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES]) {
    char name[48], hex[33];
    sodium_bin2hex(hex, sizeof hex, msg_id, 16);
    snprintf(name, sizeof name, "pow.never.%s", hex);
    uint64_t v = 0;
    return pst_store_meta_get_u64(n->store, name, &v) == PST_OK && v != 0;
}

void pst_outbox_pow_never(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES]) {
    char name[48], hex[33];
    sodium_bin2hex(hex, sizeof hex, msg_id, 16);
    snprintf(name, sizeof name, "pow.never.%s", hex);
    (void)pst_store_meta_set_u64(n->store, name, 1);
}

static void maybe_escalate(struct pst_outbox *o, struct pst_outbox_entry *e, uint64_t now) {
    pst_node *n = o->node;
    if (e->escalated || e->minting || n->cfg.pow_escalate_s == 0 ||
        e->since + n->cfg.pow_escalate_s > now)
        return;
    e->escalated = true; /* whatever happens below, look once */
    escalation *x = calloc(1, sizeof *x);
    if (x == NULL)
        return;
    uint8_t buf[PST_RECORD_MAX];
    size_t len;
    pst_keyrec kr;
    if (pst_notify_decode(e->bytes, e->len, &x->outer) != PST_OK || x->outer.stamp[0] != '\0' ||
        pow_never(n, e->msg_id) ||
        pst_store_keyrec_get(n->store, e->rcpt, buf, sizeof buf, &len, NULL, NULL) != PST_OK ||
        pst_keyrec_decode(buf, len, &kr) != PST_OK || kr.pow_bits == 0 ||
        kr.pow_bits > PST_POW_BITS_MAX) {
        free(x);
        return;
    }
    x->o = o;
    memcpy(x->msg_id, e->msg_id, PST_HASH_BYTES);
    memcpy(x->rcpt, e->rcpt, PST_SIGN_PK_BYTES);
    x->bits = (unsigned)kr.pow_bits;
    x->now = now;
    x->work.data = x;
    pst_outbox_hold(o);
    if (uv_queue_work(n->loop, &x->work, escalate_work, escalate_done) != 0) {
        pst_outbox_release(o);
        free(x);
        return;
    }
    e->minting = true;
}

static void on_renotify(uv_timer_t *t) {
    struct pst_outbox *o = t->data;
    uint64_t now_ms = uv_now(o->node->loop), now = pst_now();
    for (unsigned i = 0; i < o->n_entries;) {
        struct pst_outbox_entry *e = &o->entries[i];
        if (e->expires <= now) { /* the gc marks it expired */
            remove_at(o, i);
            continue;
        }
        maybe_escalate(o, e, now);
        if (!e->in_flight && !e->minting && e->due_ms <= now_ms) {
            put_entry(o, e, now_ms);
            /* A re-put of the same bytes refreshes the DHT value, which a
             * listen does not hand over again: the hint is what tells a
             * recipient waiting out a back-off that we are back (it wakes
             * the job, pst_inbox_hint) when we were unreachable without a
             * restart (a suspended laptop). */
            pst_hint_send(o->hints, e->rcpt, e->bytes, e->len);
        }
        i++;
    }
    arm(o);
}

static int add_entry(struct pst_outbox *o, const uint8_t *msg_id, const uint8_t *rcpt,
                     const uint8_t *bytes, size_t len, uint64_t expires, uint64_t due_ms,
                     uint64_t since) {
    if (len == 0 || len > PST_NOTIFY_MAX)
        return PST_E_INVAL;
    struct pst_outbox_entry *e = find_entry(o, msg_id, rcpt);
    if (e == NULL) {
        if (o->n_entries == o->cap_entries) {
            if (o->cap_entries >= PST_OUTBOX_NOTIFY_MAX)
                return PST_E_BUSY;
            unsigned cap = o->cap_entries ? o->cap_entries * 2 : 16;
            if (cap > PST_OUTBOX_NOTIFY_MAX)
                cap = PST_OUTBOX_NOTIFY_MAX;
            struct pst_outbox_entry *grown = realloc(o->entries, cap * sizeof *grown);
            if (grown == NULL)
                return PST_E_NOMEM;
            o->entries = grown;
            o->cap_entries = cap;
        }
        e = &o->entries[o->n_entries++];
        memset(e, 0, sizeof *e);
    }
    memcpy(e->msg_id, msg_id, PST_HASH_BYTES);
    memcpy(e->rcpt, rcpt, PST_SIGN_PK_BYTES);
    memcpy(e->bytes, bytes, len);
    e->len = (uint16_t)len;
    e->expires = expires;
    e->due_ms = due_ms;
    e->since = since;
    e->escalated = false;
    e->minting = false;
    e->held = false;
    e->interval_s = o->node->cfg.renotify_s ? o->node->cfg.renotify_s : PST_DEFAULT_RENOTIFY_S;
    return PST_OK;
}

int pst_outbox_track(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES], const uint8_t rcpt[32],
                     const uint8_t *notification, size_t len, uint64_t expires) {
    struct pst_outbox *o = n->outbox;
    if (o == NULL || o->stopping)
        return PST_E_CLOSED;
    uint64_t now_ms = uv_now(n->loop);
    int rc = add_entry(o, msg_id, rcpt, notification, len, expires, now_ms, pst_now());
    if (rc != PST_OK)
        return rc;
    /* an online recipient hears of the message from the hint without
     * waiting for its slot's listen. A notification sealed to one key
     * (type 5: no device list, so the endpoint's node is the only reader)
     * whose hint is on its way waits hint_put_delay for the receipt before
     * its first put: the recipient fetches within milliseconds and the put
     * is never needed (no DHT traffic, no value on the storing nodes). Any
     * hint given up puts it at once (pst_outbox_hints_failed); so does the
     * delay running out. The sender's store holds it all along: the put is
     * the recipient's way to hear of it, not the message's durability. */
    struct pst_outbox_entry *e = find_entry(o, msg_id, rcpt);
    if (e == NULL || e->in_flight)
        return PST_OK;
    pst_rec_type type = 0;
    /* held before the hint is handed over: a hint that fails within
     * pst_hint_send (a bad endpoint) releases it through
     * pst_outbox_hints_failed like one that fails later */
    bool hold = n->cfg.hint_put_delay_s > 0 &&
                pst_record_peek_type(notification, len, &type) == PST_OK &&
                type == PST_REC_NOTIFICATION;
    if (hold) {
        e->held = true;
        e->due_ms = now_ms + (uint64_t)n->cfg.hint_put_delay_s * 1000u;
    }
    /* (hints_failed changes entries in place: e stays valid) */
    bool hinted = pst_hint_send(o->hints, rcpt, notification, len);
    if (hold && hinted)
        pst_counter_add(n, "outbox.first_puts_held", 1);
    else if (e->held || !hold)
        put_entry(o, e, now_ms); /* no hint on its way: the put at once */
    arm(o);
    return PST_OK;
}

void pst_outbox_hints_failed(pst_node *n) {
    struct pst_outbox *o = n->outbox;
    if (o == NULL || o->stopping)
        return;
    uint64_t now_ms = uv_now(n->loop);
    bool any = false;
    for (unsigned i = 0; i < o->n_entries; i++)
        if (o->entries[i].held) {
            o->entries[i].held = false; /* put at the timer, now */
            o->entries[i].due_ms = now_ms;
            pst_counter_add(n, "outbox.first_puts_unheld", 1);
            any = true;
        }
    if (any)
        arm(o);
}

void pst_outbox_untrack(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES], const uint8_t *rcpt) {
    struct pst_outbox *o = n->outbox;
    if (o == NULL)
        return;
    for (unsigned i = 0; i < o->n_entries;) {
        struct pst_outbox_entry *e = &o->entries[i];
        if (memcmp(e->msg_id, msg_id, PST_HASH_BYTES) == 0 &&
            (rcpt == NULL || memcmp(e->rcpt, rcpt, PST_SIGN_PK_BYTES) == 0))
            remove_at(o, i);
        else
            i++;
    }
    arm(o);
}

unsigned pst_outbox_free_slots(const pst_node *n) {
    const struct pst_outbox *o = n->outbox;
    if (o == NULL)
        return 0;
    unsigned used = o->n_entries + o->rcpts_reserved;
    return used >= PST_OUTBOX_NOTIFY_MAX ? 0 : PST_OUTBOX_NOTIFY_MAX - used;
}

/* ---- bodies and garbage -------------------------------------------------- */

static void delete_body(struct pst_outbox *o, const uint8_t *msg_id) {
    char path[PST_PATH_MAX];
    if (pst_outbox_body_path(o, msg_id, path, sizeof path) != PST_OK)
        return;
    int err = pst_outbox_spare_keep(o, path); /* deleted, or emptied for the next send */
    if (err == 0)
        pst_counter_add(o->node, "outbox.bodies_deleted", 1);
    else if (err != ENOENT)
        pst_log_warn("cannot delete %s: %s", path, strerror(err));
    if (err == 0 || err == ENOENT) {
        /* a damage mark goes with its body, also one found missing (the
         * mark is what said so): nothing else would ever delete it */
        char name[48];
        pst_outbox__damaged_name(msg_id, name);
        (void)pst_store_meta_delete(o->node->store, name);
    }
}

void pst_outbox_settle(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES]) {
    struct pst_outbox *o = n->outbox;
    if (o == NULL || n->store == NULL)
        return;
    if (pst_store_outbox_get(n->store, msg_id, NULL, NULL, NULL) == PST_E_NOTFOUND) {
        pst_outbox_untrack(n, msg_id, NULL);
        delete_body(o, msg_id);
    }
}

/* Deletes bodies nobody may fetch any more (their message finished, or a
 * crash left them before their rows were committed) and, at startup, the
 * tmp files of sends a crash interrupted. A send's worker renames its body
 * into place before the loop commits its rows: the sweep waits until no
 * send is in flight, so it never takes such a body for garbage. */
static void sweep_outbox(struct pst_outbox *o, bool startup) {
    if (o->sends_active > 0) /* a send's worker may have placed a body not committed yet */
        return;
    DIR *d = opendir(o->dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint8_t id[PST_HASH_BYTES];
        size_t idlen = 0;
        if (strlen(de->d_name) == 2 * PST_HASH_BYTES &&
            sodium_hex2bin(id, sizeof id, de->d_name, 2 * PST_HASH_BYTES, NULL, &idlen, NULL) ==
                0 &&
            idlen == PST_HASH_BYTES) {
            if (pst_store_outbox_get(o->node->store, id, NULL, NULL, NULL) == PST_E_NOTFOUND)
                delete_body(o, id);
        } else if (startup && strncmp(de->d_name, "tmp-", 4) == 0) {
            char path[PST_PATH_MAX];
            if (snprintf(path, sizeof path, "%s/%s", o->dir, de->d_name) < (int)sizeof path)
                (void)unlink(path);
        }
    }
    closedir(d);
}

/* The CLI removes its spool file after the answer; one it left behind (it
 * was killed) goes after a day. */
static void sweep_spool(struct pst_outbox *o) {
    DIR *d = opendir(o->spool);
    if (d == NULL)
        return;
    struct dirent *de;
    uint64_t now = pst_now();
    while ((de = readdir(d)) != NULL) {
        char path[PST_PATH_MAX];
        struct stat sb;
        if (de->d_name[0] == '.' ||
            snprintf(path, sizeof path, "%s/%s", o->spool, de->d_name) >= (int)sizeof path ||
            lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if ((uint64_t)sb.st_mtime + PST_SPOOL_KEEP_S < now)
            (void)unlink(path);
    }
    closedir(d);
}

static void collect_garbage(struct pst_outbox *o, bool startup) {
    pst_node *n = o->node;
    int rc = pst_store_outbox_gc(n->store, pst_now(), PST_OUTBOX_KEEP_DONE_S);
    if (rc != PST_OK)
        pst_log_warn("outbox clean-up failed: %s", pst_store_last_error(n->store));
    sweep_outbox(o, startup);
    sweep_spool(o);
}

static void on_gc(uv_timer_t *t) { collect_garbage(t->data, false); }

/* ---- start and stop ------------------------------------------------------ */

static int resume_row(const pst_store_outbox_row *row, void *user) {
    struct pst_outbox *o = user;
    if (row->expires <= pst_now())
        return 0;
    /* a moment after start, so that the DHT node may have joined */
    int rc = add_entry(o, row->msg_id, row->rcpt, row->notification, row->notification_len,
                       row->expires, uv_now(o->node->loop) + 2000u, row->created);
    if (rc == PST_E_BUSY) {
        pst_log_warn("more than %u notifications pending: the others wait for a restart",
                     PST_OUTBOX_NOTIFY_MAX);
        return 1;
    }
    return 0;
}

static int make_dir(const char *path, char *err, size_t errcap) {
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errcap, "cannot create %s: %s", path, strerror(errno));
        return PST_E_IO;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errcap, "%s is not a directory", path);
        return PST_E_IO;
    }
    return PST_OK;
}

static void on_timer_closed(uv_handle_t *h) { pst_outbox_release(h->data); }

int pst_outbox_start(pst_node *n, char *err, size_t errcap) {
    struct pst_outbox *o = calloc(1, sizeof *o);
    if (o == NULL)
        return PST_E_NOMEM;
    o->node = n;
    o->refs = 1; /* running: dropped by pst_outbox_stop */
    atomic_init(&o->cancel, 0);
    n->outbox = o;
    pst_node_handle_ref(n);
    int rc;
    if (pst_home_path(n->cfg.home, PST_OUTBOX_DIRNAME, o->dir, sizeof o->dir) != PST_OK ||
        pst_home_path(n->cfg.home, PST_SPOOL_DIRNAME, o->spool, sizeof o->spool) != PST_OK) {
        snprintf(err, errcap, "home directory path too long");
        return PST_E_NOSPACE;
    }
    if ((rc = make_dir(o->dir, err, errcap)) != PST_OK ||
        (rc = make_dir(o->spool, err, errcap)) != PST_OK)
        return rc;
    /* the CLI names spool files by absolute path: compare like with like */
    char abs[PST_PATH_MAX];
    if (realpath(o->spool, abs) != NULL)
        snprintf(o->spool, sizeof o->spool, "%s", abs);
    if (realpath(o->dir, abs) != NULL)
        snprintf(o->dir, sizeof o->dir, "%s", abs);
    uv_timer_init(n->loop, &o->renotify_timer);
    uv_timer_init(n->loop, &o->gc_timer);
    o->renotify_timer.data = o;
    o->gc_timer.data = o;
    pst_outbox_hold(o);
    pst_outbox_hold(o);
    o->timers_init = true;
    if (pst_hint_client_start(n, &o->hints) != PST_OK)
        pst_log_warn("no memory for direct hints: notifications go by the DHT only");
    collect_garbage(o, true);
    rc = pst_store_outbox_list(n->store, PST_STORE_OUT_PENDING, resume_row, o);
    if (rc < 0)
        pst_log_warn("cannot resume the outbox: %s", pst_store_last_error(n->store));
    if (o->n_entries > 0)
        pst_log_info("outbox: keeping %u notification%s alive", o->n_entries,
                     o->n_entries == 1 ? "" : "s");
    uv_timer_start(&o->gc_timer, on_gc, PST_OUTBOX_GC_MS, PST_OUTBOX_GC_MS);
    arm(o);
    return PST_OK;
}

void pst_outbox_stop(pst_node *n) {
    struct pst_outbox *o = n->outbox;
    if (o == NULL || o->stopping)
        return;
    o->stopping = true;
    atomic_store(&o->cancel, 1);
    pst_hint_client_stop(o->hints);
    o->hints = NULL;
    if (o->timers_init) {
        uv_close((uv_handle_t *)&o->renotify_timer, on_timer_closed);
        uv_close((uv_handle_t *)&o->gc_timer, on_timer_closed);
    }
    free(o->entries);
    o->entries = NULL;
    o->n_entries = o->cap_entries = 0;
    pst_outbox_release(o);
}

/* ---- re-offering ------------------------------------------------------------- */

int pst_outbox_reoffer(pst_node *n, const pst_store_outbox_row *row) {
    struct pst_outbox *o = n->outbox;
    uint64_t now_ms = uv_now(n->loop);
    struct pst_outbox_entry *e = find_entry(o, row->msg_id, row->rcpt);
    int rc = PST_OK;
    if (e != NULL) {
        /* keep its bytes: they may carry a stamp minted by --pow auto */
        e->due_ms = now_ms;
        e->interval_s = n->cfg.renotify_s ? n->cfg.renotify_s : PST_DEFAULT_RENOTIFY_S;
    } else {
        rc = add_entry(o, row->msg_id, row->rcpt, row->notification, row->notification_len,
                       row->expires, now_ms, row->created);
    }
    if (rc == PST_OK)
        arm(o);
    return rc;
}
