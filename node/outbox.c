/* Sender side of Internet-Mail-2000 delivery: the outbox. Bodies (ciphertext)
 * live in DIR/outbox/<msg id hex>, their rows in the store. This file keeps
 * every pending recipient's notification alive in its inbox slot (a put
 * after the send, then re-puts with back-off, renotify_s doubling up to
 * 590 s, under OpenDHT's 600 s expiry) until its receipt arrives or the
 * message expires; it resumes from the store after a restart, collects
 * garbage (expired messages, bodies nobody may fetch any more, orphaned
 * spool and tmp files) and answers `outbox` and `unsend`. send.c prepares
 * and stores messages; fetch_server.c serves them. */
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node_int.h"
#include "pst_fetch.h"
#include "pst_hashcash.h"
#include "pst_log.h"

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
    uint16_t len;
    uint8_t bytes[PST_NOTIFY_MAX];
};

typedef struct {
    pst_node *node;
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t rcpt[PST_SIGN_PK_BYTES];
} put_ctx;

void pst_outbox_hold(struct pst_outbox *o) { o->refs++; }

void pst_outbox_release(struct pst_outbox *o) {
    if (--o->refs > 0)
        return;
    pst_node *n = o->node;
    n->outbox = NULL;
    free(o->entries);
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

static void escalate_work(uv_work_t *w) {
    escalation *x = w->data;
    char resource[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE], ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
    pst_notify_stamp_resource(x->rcpt, resource);
    pst_notify_stamp_ext(x->outer.sealed, x->outer.sealed_len, ext);
    pst_hashcash_mint_params p;
    memset(&p, 0, sizeof p);
    p.bits = x->bits;
    p.resource = resource;
    p.ext = ext;
    p.now = x->now;
    randombytes_buf(p.rand, sizeof p.rand);
    p.threads = 0;
    p.cancel = &x->o->cancel;
    x->rc = pst_hashcash_mint(&p, x->outer.stamp, sizeof x->outer.stamp);
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
        if (!e->in_flight && !e->minting && e->due_ms <= now_ms)
            put_entry(o, e, now_ms);
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
    put_entry(o, find_entry(o, msg_id, rcpt), now_ms);
    arm(o);
    return PST_OK;
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

/* Store meta name of a body's damage mark (fetch_server.c's verdict). */
static void damaged_name(const uint8_t msg_id[PST_HASH_BYTES], char name[48]) {
    char hex[33];
    sodium_bin2hex(hex, sizeof hex, msg_id, 16);
    snprintf(name, 48, "body.damaged.%s", hex);
}

static void delete_body(struct pst_outbox *o, const uint8_t *msg_id) {
    char path[PST_PATH_MAX];
    if (pst_outbox_body_path(o, msg_id, path, sizeof path) != PST_OK)
        return;
    if (unlink(path) == 0) {
        pst_counter_add(o->node, "outbox.bodies_deleted", 1);
        char name[48];
        damaged_name(msg_id, name);
        (void)pst_store_meta_delete(o->node->store, name); /* a damage mark goes with it */
    } else if (errno != ENOENT)
        pst_log_warn("cannot delete %s: %s", path, strerror(errno));
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
 * tmp files of sends a crash interrupted. Files are renamed into place on
 * the loop thread right before their rows commit, so this never races a
 * send. */
static void sweep_outbox(struct pst_outbox *o, bool startup) {
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
    if ((rc = pst_fetch_server_start(n, err, errcap)) != PST_OK)
        return rc;
    uv_timer_init(n->loop, &o->renotify_timer);
    uv_timer_init(n->loop, &o->gc_timer);
    o->renotify_timer.data = o;
    o->gc_timer.data = o;
    pst_outbox_hold(o);
    pst_outbox_hold(o);
    o->timers_init = true;
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
    pst_send_stop(n);
    pst_fetch_server_stop(n);
    if (o->timers_init) {
        uv_close((uv_handle_t *)&o->renotify_timer, on_timer_closed);
        uv_close((uv_handle_t *)&o->gc_timer, on_timer_closed);
    }
    free(o->entries);
    o->entries = NULL;
    o->n_entries = o->cap_entries = 0;
    pst_outbox_release(o);
}

/* ---- damaged bodies ---------------------------------------------------------
 * The fetch server hashes a body before serving it (fetch_server.c); a body
 * whose hash is not its message id is remembered here (store meta, so that
 * `postern outbox` shows it across restarts) and logged once, not at every
 * fetch. A later good check (the file was restored) clears it. */

static uint64_t body_damaged_since(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES]) {
    char name[48];
    uint64_t v = 0;
    damaged_name(msg_id, name);
    return pst_store_meta_get_u64(n->store, name, &v) == PST_OK ? v : 0;
}

void pst_outbox_body_checked(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES], bool good) {
    char name[48], hex[2 * PST_HASH_BYTES + 1], path[PST_PATH_MAX] = "?";
    uint64_t since = body_damaged_since(n, msg_id);
    damaged_name(msg_id, name);
    sodium_bin2hex(hex, sizeof hex, msg_id, PST_HASH_BYTES);
    if (n->outbox != NULL)
        (void)pst_outbox_body_path(n->outbox, msg_id, path, sizeof path);
    if (good && since != 0) {
        (void)pst_store_meta_delete(n->store, name);
        pst_log_info("message %.16s...: its body %s is intact again and is served", hex, path);
    } else if (!good && since == 0) {
        (void)pst_store_meta_set_u64(n->store, name, pst_now());
        pst_log_error("message %.16s...: its body %s is damaged (its hash is not the message id): "
                      "not served; restore the file from a backup, or send the message again",
                      hex, path);
    }
}

/* ---- `outbox` and `unsend` ----------------------------------------------- */

/* Message id from full hex or a unique prefix of at least 8 digits. */
typedef struct {
    char prefix[2 * PST_HASH_BYTES + 1];
    size_t len;
    unsigned matches;
    uint8_t id[PST_HASH_BYTES];
    uint8_t last[PST_HASH_BYTES];
    bool have_last;
} id_search;

static int on_id_row(const pst_store_outbox_row *row, void *user) {
    id_search *s = user;
    if (s->have_last && memcmp(s->last, row->msg_id, PST_HASH_BYTES) == 0)
        return 0;
    memcpy(s->last, row->msg_id, PST_HASH_BYTES);
    s->have_last = true;
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, row->msg_id, PST_HASH_BYTES);
    if (strncmp(hex, s->prefix, s->len) == 0) {
        s->matches++;
        memcpy(s->id, row->msg_id, PST_HASH_BYTES);
    }
    return 0;
}

/* 0 and *id set, or replies with the error itself and returns -1. */
static int find_message(pst_node *n, const char *arg, uint8_t id[PST_HASH_BYTES],
                        pst_node_reply_cb reply, void *user) {
    id_search s;
    memset(&s, 0, sizeof s);
    s.len = strlen(arg);
    bool hex = s.len >= 8 && s.len <= 2 * PST_HASH_BYTES;
    for (size_t i = 0; hex && i < s.len; i++)
        hex = (arg[i] >= '0' && arg[i] <= '9') || (arg[i] >= 'a' && arg[i] <= 'f') ||
              (arg[i] >= 'A' && arg[i] <= 'F');
    if (!hex) {
        pst_reply_error(reply, user, 0, 64,
                        "'%s' is not a message id (64 hex digits, or a unique prefix of 8 or more)",
                        arg);
        return -1;
    }
    for (size_t i = 0; i < s.len; i++)
        s.prefix[i] = (char)(arg[i] | 0x20);
    int rc = pst_store_outbox_list(n->store, 0, on_id_row, &s);
    if (rc < 0) {
        pst_reply_error(reply, user, 0, 1, "cannot read the outbox: %s",
                        pst_store_last_error(n->store));
        return -1;
    }
    if (s.matches != 1) {
        pst_reply_error(reply, user, 0, 1,
                        s.matches == 0 ? "no message %s in the outbox (see 'postern outbox')"
                                       : "message id prefix %s is ambiguous: give more digits",
                        arg);
        return -1;
    }
    memcpy(id, s.id, PST_HASH_BYTES);
    return 0;
}

static const char *kind_name(pst_store_rcpt_kind k) {
    return k == PST_STORE_RCPT_CC ? "cc" : k == PST_STORE_RCPT_BCC ? "bcc" : "to";
}

static const char *state_name(const pst_store_outbox_row *r) {
    switch (r->state) {
    case PST_STORE_OUT_PENDING:
        return r->notify_count > 0 ? "notified" : "pending";
    case PST_STORE_OUT_DELIVERED:
        return "fetched";
    case PST_STORE_OUT_EXPIRED:
        return "expired";
    case PST_STORE_OUT_WITHDRAWN:
        return "withdrawn";
    default:
        return "failed";
    }
}

/* A value tree is capped at PST_VALUE_NODES_MAX values: messages are
 * listed newest first while this budget lasts. */
#define LIST_BUDGET 3600u
#define MSG_NODES 12u
#define RCPT_NODES 18u

typedef struct {
    uint64_t skip;  /* messages to pass over (older ones) */
    uint64_t total; /* messages seen */
    uint8_t last[PST_HASH_BYTES];
    bool have_last;
    pst_value *arr;
    pst_value *cur; /* recipients array of the current message */
    pst_node *node;
    uint64_t damaged; /* of the current message: since when, 0 if intact */
    unsigned nodes;
    bool truncated;
} list_walk;

/* Why a recipient does not have the message (yet), in words: the sender only
 * sees its own side (notification puts, complete fetches, receipts), so a
 * body fetched without a receipt is what a recipient's node that gave up
 * (or refused it) looks like from here. NULL when fetched. */
static const char *rcpt_why(const pst_store_outbox_row *row, bool damaged) {
    switch (row->state) {
    case PST_STORE_OUT_PENDING:
        if (damaged)
            return "waiting: the body on disk is damaged, so fetches are refused";
        if (row->notify_count == 0)
            return "waiting: no notification put confirmed yet";
        return row->serve_count > 0 ? "fetched without a receipt so far: waiting for it"
                                    : "waiting for the recipient's node to fetch it";
    case PST_STORE_OUT_EXPIRED:
        if (damaged)
            return "expired: the body on disk was damaged, fetches were refused";
        return row->serve_count > 0
                   ? "expired: fetched but no receipt came (the recipient's node gave up on it "
                     "or lost it)"
                   : "expired: never fetched before the message expired";
    case PST_STORE_OUT_WITHDRAWN:
        return "withdrawn with 'postern unsend'";
    case PST_STORE_OUT_FAILED:
        return "given up";
    default:
        return NULL;
    }
}

static void add_rcpt(pst_value *arr, const pst_store_outbox_row *row, bool damaged) {
    pst_value *e = pst_value_add_map(arr, NULL);
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(row->rcpt, fp);
    pst_value_add_str(e, "fingerprint", fp);
    pst_value_add_str(e, "kind", kind_name(row->kind));
    pst_value_add_str(e, "state", state_name(row));
    pst_value_add_uint(e, "updated", row->updated);
    pst_value_add_uint(e, "notified", row->notified);
    pst_value_add_uint(e, "notify_count", row->notify_count);
    pst_value_add_uint(e, "served", row->served);
    pst_value_add_uint(e, "serve_count", row->serve_count);
    const char *why = rcpt_why(row, damaged);
    if (why != NULL)
        pst_value_add_str(e, "why", why);
    pst_receipt rc;
    if (row->receipt && pst_receipt_decode(row->receipt, row->receipt_len, &rc) == PST_OK) {
        pst_value_add_uint(e, "fetched", row->updated);
        pst_value *r = pst_value_add_map(e, "receipt");
        pst_value_add_uint(r, "created", rc.created);
        pst_value_add_uint(r, "stored_at", rc.stored_at);
        pst_value_add_bool(r, "verified", true);
        pst_value_add_bin(r, "bytes", row->receipt, row->receipt_len);
    }
}

static void add_message(list_walk *w, const pst_store_outbox_row *row, uint64_t damaged) {
    pst_value *m = pst_value_add_map(w->arr, NULL);
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, row->msg_id, PST_HASH_BYTES);
    pst_value_add_str(m, "message_id", hex);
    pst_value_add_uint(m, "created", row->created);
    pst_value_add_uint(m, "expires", row->expires);
    pst_value_add_uint(m, "size", row->size);
    pst_value_add_str(m, "subject", row->subject);
    pst_value_add_str(m, "state", row->done ? "done" : "live");
    if (row->done)
        pst_value_add_uint(m, "done_at", row->done);
    if (damaged != 0)
        pst_value_add_uint(m, "body_damaged", damaged);
    w->cur = pst_value_add_array(m, "recipients");
}

static int on_list_row(const pst_store_outbox_row *row, void *user) {
    list_walk *w = user;
    bool fresh = !w->have_last || memcmp(w->last, row->msg_id, PST_HASH_BYTES) != 0;
    if (fresh) {
        memcpy(w->last, row->msg_id, PST_HASH_BYTES);
        w->have_last = true;
        w->total++;
    }
    if (w->arr == NULL || w->total <= w->skip || w->truncated)
        return 0;
    if (w->nodes + (fresh ? MSG_NODES : 0) + RCPT_NODES > LIST_BUDGET) {
        w->truncated = true;
        return 0;
    }
    if (fresh) {
        w->damaged = body_damaged_since(w->node, row->msg_id);
        add_message(w, row, w->damaged);
        w->nodes += MSG_NODES;
    }
    add_rcpt(w->cur, row, w->damaged != 0);
    w->nodes += RCPT_NODES;
    return 0;
}

static bool arg_value(const pst_ctrl_request *req, const char *key, const char **out) {
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < req->n_args; i++)
        if (strncmp(req->args[i], key, kl) == 0 && req->args[i][kl] == '=') {
            *out = req->args[i] + kl + 1;
            return true;
        }
    return false;
}

static bool args_known(const pst_ctrl_request *req, const char *const *keys, size_t nkeys) {
    for (uint32_t i = 0; i < req->n_args; i++) {
        bool ok = false;
        for (size_t k = 0; k < nkeys && !ok; k++) {
            size_t kl = strlen(keys[k]);
            ok = strncmp(req->args[i], keys[k], kl) == 0 && req->args[i][kl] == '=';
        }
        if (!ok)
            return false;
    }
    return true;
}

void pst_node_cmd_outbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user) {
    static const char *const keys[] = {"limit", "message"};
    const char *v;
    uint64_t limit = 20;
    if (!args_known(req, keys, 2)) {
        pst_reply_error(reply, user, 0, 64, "outbox takes limit=N and message=ID");
        return;
    }
    if (arg_value(req, "limit", &v)) {
        char *end;
        unsigned long long l = strtoull(v, &end, 10);
        if (*v == '\0' || *end != '\0' || l == 0 || l > 1000) {
            pst_reply_error(reply, user, 0, 64, "limit must be 1..1000");
            return;
        }
        limit = l;
    }
    list_walk w;
    memset(&w, 0, sizeof w);
    w.node = n;
    pst_value *b = pst_value_new_map();
    int rc;
    if (arg_value(req, "message", &v)) {
        uint8_t id[PST_HASH_BYTES];
        if (find_message(n, v, id, reply, user) != 0) {
            pst_value_free(b);
            return;
        }
        w.arr = pst_value_add_array(b, "messages");
        rc = pst_store_outbox_list_msg(n->store, id, on_list_row, &w);
    } else {
        rc = pst_store_outbox_list(n->store, 0, on_list_row, &w); /* count */
        w.skip = w.total > limit ? w.total - limit : 0;
        w.total = 0;
        w.have_last = false;
        w.arr = pst_value_add_array(b, "messages");
        if (rc >= 0)
            rc = pst_store_outbox_list(n->store, 0, on_list_row, &w);
    }
    if (rc < 0) {
        pst_value_free(b);
        pst_reply_error(reply, user, 0, 1, "cannot read the outbox: %s",
                        pst_store_last_error(n->store));
        return;
    }
    pst_value_add_uint(b, "total", w.total);
    pst_value_add_bool(b, "truncated", w.truncated || w.skip > 0);
    pst_reply_tree(reply, user, b, 0);
}

typedef struct {
    unsigned pending, delivered, other;
    pst_value *withdrawn, *fetched;
} unsend_walk;

static int on_unsend_row(const pst_store_outbox_row *row, void *user) {
    unsend_walk *w = user;
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(row->rcpt, fp);
    if (row->state == PST_STORE_OUT_PENDING) {
        w->pending++;
        if (w->withdrawn)
            pst_value_add_str(w->withdrawn, NULL, fp);
    } else if (row->state == PST_STORE_OUT_DELIVERED) {
        w->delivered++;
        if (w->fetched)
            pst_value_add_str(w->fetched, NULL, fp);
    } else {
        w->other++;
    }
    return 0;
}

void pst_node_cmd_unsend(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user) {
    static const char *const keys[] = {"message"};
    const char *v;
    if (!args_known(req, keys, 1) || !arg_value(req, "message", &v)) {
        pst_reply_error(reply, user, 0, 64, "unsend takes message=ID");
        return;
    }
    uint8_t id[PST_HASH_BYTES];
    if (find_message(n, v, id, reply, user) != 0)
        return;
    unsend_walk w;
    memset(&w, 0, sizeof w);
    int rc = pst_store_outbox_list_msg(n->store, id, on_unsend_row, &w);
    if (rc >= 0 && w.pending == 0) {
        if (w.other == 0)
            pst_reply_error(reply, user, 0, 1,
                            "every recipient already fetched this message (their receipts are "
                            "in 'postern outbox'): it cannot be withdrawn");
        else
            pst_reply_error(reply, user, 0, 1,
                            "nothing to withdraw: no recipient is waiting for this message "
                            "(%u fetched, %u expired, failed or withdrawn)",
                            w.delivered, w.other);
        return;
    }
    unsigned withdrawn = 0;
    pst_value *b = pst_value_new_map();
    memset(&w, 0, sizeof w);
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, id, PST_HASH_BYTES);
    pst_value_add_str(b, "message_id", hex);
    w.withdrawn = pst_value_add_array(b, "withdrawn");
    w.fetched = pst_value_add_array(b, "already_fetched");
    if (rc >= 0)
        rc = pst_store_outbox_list_msg(n->store, id, on_unsend_row, &w);
    if (rc >= 0)
        rc = pst_store_outbox_withdraw(n->store, id, pst_now(), &withdrawn);
    if (rc < 0) {
        pst_value_free(b);
        pst_reply_error(reply, user, 0, 1, "cannot withdraw the message: %s",
                        pst_store_last_error(n->store));
        return;
    }
    pst_outbox_untrack(n, id, NULL);
    pst_outbox_settle(n, id);
    char path[PST_PATH_MAX];
    struct stat sb;
    bool gone = pst_outbox_body_path(n->outbox, id, path, sizeof path) == PST_OK &&
                stat(path, &sb) != 0 && errno == ENOENT;
    pst_counter_add(n, "outbox.withdrawn", withdrawn);
    pst_value_add_bool(b, "body_deleted", gone);
    pst_value_add_str(b, "note",
                      "the recipients' nodes can no longer fetch the message; notifications "
                      "already in the DHT cannot be deleted and expire within 10 minutes");
    pst_log_info("message %.16s... withdrawn from %u recipient%s", hex, withdrawn,
                 withdrawn == 1 ? "" : "s");
    pst_reply_tree(reply, user, b, 0);
}

/* ---- `outbox retry`: flush one message now (postqueue -i) ---------------------
 * Every recipient still waiting gets its notification put again at once, and
 * its back-off starts over (first re-put after renotify_s), as if the message
 * had just been sent (a stamp already minted by --pow auto stays). A recipient whose
 * notification expired cannot be re-offered: its expiry is signed inside the
 * seal and the node does not keep the message key, so the answer says to send
 * the message again. */

typedef struct {
    pst_node *node;
    unsigned offered, expired, other;
    uint64_t now, now_ms;
    pst_value *offered_to, *not_offered;
} retry_walk;

static int on_retry_row(const pst_store_outbox_row *row, void *user) {
    retry_walk *w = user;
    struct pst_outbox *o = w->node->outbox;
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(row->rcpt, fp);
    if (row->state == PST_STORE_OUT_DELIVERED)
        return 0;
    if (row->state != PST_STORE_OUT_PENDING || row->expires <= w->now) {
        bool expired = row->state == PST_STORE_OUT_EXPIRED || row->expires <= w->now;
        expired ? w->expired++ : w->other++;
        pst_value *e = pst_value_add_map(w->not_offered, NULL);
        pst_value_add_str(e, "fingerprint", fp);
        pst_value_add_str(e, "why",
                          expired ? "its notification expired: send the message again"
                                  : rcpt_why(row, false));
        return 0;
    }
    struct pst_outbox_entry *e = find_entry(o, row->msg_id, row->rcpt);
    int rc = PST_OK;
    if (e != NULL) {
        /* keep its bytes: they may carry a stamp minted by --pow auto */
        e->due_ms = w->now_ms;
        e->interval_s = w->node->cfg.renotify_s ? w->node->cfg.renotify_s : PST_DEFAULT_RENOTIFY_S;
    } else {
        rc = add_entry(o, row->msg_id, row->rcpt, row->notification, row->notification_len,
                       row->expires, w->now_ms, row->created);
    }
    if (rc != PST_OK) {
        w->other++;
        pst_value *e = pst_value_add_map(w->not_offered, NULL);
        pst_value_add_str(e, "fingerprint", fp);
        pst_value_add_str(
            e, "why", rc == PST_E_BUSY ? "too many notifications kept alive" : pst_strerror(rc));
        return 0;
    }
    w->offered++;
    pst_value_add_str(w->offered_to, NULL, fp);
    return 0;
}

void pst_node_cmd_outbox_retry(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                               void *user) {
    static const char *const keys[] = {"message"};
    const char *v;
    struct pst_outbox *o = n->outbox;
    if (!args_known(req, keys, 1) || !arg_value(req, "message", &v)) {
        pst_reply_error(reply, user, 0, 64, "outbox-retry takes message=ID");
        return;
    }
    if (o == NULL || o->stopping) {
        pst_reply_error(reply, user, 0, 1, "this node cannot send mail now");
        return;
    }
    uint8_t id[PST_HASH_BYTES];
    if (find_message(n, v, id, reply, user) != 0)
        return;
    retry_walk w;
    memset(&w, 0, sizeof w);
    w.node = n;
    w.now = pst_now();
    w.now_ms = uv_now(n->loop);
    pst_value *b = pst_value_new_map();
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, id, PST_HASH_BYTES);
    pst_value_add_str(b, "message_id", hex);
    w.offered_to = pst_value_add_array(b, "offered");
    w.not_offered = pst_value_add_array(b, "not_offered");
    int rc = pst_store_outbox_list_msg(n->store, id, on_retry_row, &w);
    if (rc < 0) {
        pst_value_free(b);
        pst_reply_error(reply, user, 0, 1, "cannot read the outbox: %s",
                        pst_store_last_error(n->store));
        return;
    }
    arm(o);
    uint64_t damaged = body_damaged_since(n, id);
    if (damaged != 0)
        pst_value_add_uint(b, "body_damaged", damaged);
    pst_counter_add(n, "outbox.retried", w.offered);
    pst_log_info("message %.16s...: offered again to %u recipient%s", hex, w.offered,
                 w.offered == 1 ? "" : "s");
    if (w.offered == 0) {
        pst_value_free(b);
        if (w.expired > 0)
            pst_reply_error(reply, user, 0, 1,
                            "nothing to retry: the message expired for %u recipient%s (the "
                            "notification's expiry is signed: send the message again)",
                            w.expired, w.expired == 1 ? "" : "s");
        else
            pst_reply_error(reply, user, 0, 1,
                            "nothing to retry: no recipient is waiting for this message");
        return;
    }
    pst_reply_tree(reply, user, b, 0);
}
