/* Sync between the devices of one identity (issue 13), over the mail path:
 * a device sends its own identity a message whose notification is sealed
 * to its other current devices only and flagged (PST_NOTIFY_FLAG_SYNC_*).
 * The pull path gives what sync needs: encryption to the own devices (the
 * DHT sees one more notification, readable by nobody else), durability on
 * the sender until every device has fetched, exactly-once delivery.
 *
 * - Sent: each message sent on a device gets one more, hidden recipient,
 *   the own identity, with the flag SYNC_SENT (send.c adds it, through
 *   pst_sync_sent_copy); the other devices file it in .Sent instead of the
 *   INBOX (inbox_jobs.c).
 * - Trust: `trust set` and `trust rm` send a TrustSync record (proto,
 *   armored in the body) with the flag SYNC_TRUST; the other devices
 *   deliver it into the hidden folder .Sync, and pst_sync_apply applies
 *   and removes every file there (also at start, after a crash between
 *   the delivery and the apply). A record older than the contact's last
 *   change is dropped, so the order of arrival does not matter. The record
 *   carries the contact's whole email list, which replaces the list here
 *   (`trust set --email/--drop-email` is a trust change like any other).
 *
 * The receiving side only ever takes flags from a current device of its
 * own identity (inbox.c: sender == recipient == us, the device checked
 * against our own list). Vouches need no record: they are signed by the
 * identity key and published in the DHT, where every device reads them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outbox_int.h"
#include "pst_armor.h"
#include "pst_log.h"
#include "pst_sync.h"

#include "send_int.h"

#define SYNC_FILE_MAX 65536u /* a .Sync file we read: a TrustSync message is ~1 KiB */
#define SYNC_APPLY_MAX 256u  /* files per pass */

/* Our other current devices (not this one) into devs/boxes; their count. */
static uint32_t other_devices(pst_node *n, uint8_t devs[][PST_SIGN_PK_BYTES],
                              uint8_t boxes[][PST_BOX_PK_BYTES]) {
    pst_devlist l;
    if (n->id == NULL || pst_keys_self_revoked(n) ||
        pst_keys_devlist_cached(n, n->id->sign_pk, &l) != PST_OK)
        return 0;
    const uint8_t *me = pst_node_device_keys(n)->sign_pk;
    uint32_t k = 0;
    for (uint32_t i = 0; i < l.n_devices && i < PST_NOTIFY_DEVICES_MAX; i++) {
        if (memcmp(l.devices[i].sign_pk, me, PST_SIGN_PK_BYTES) == 0)
            continue;
        memcpy(devs[k], l.devices[i].sign_pk, PST_SIGN_PK_BYTES);
        memcpy(boxes[k], l.devices[i].box_pk, PST_BOX_PK_BYTES);
        k++;
    }
    return k;
}

uint32_t pst_sync_devices(pst_node *n, uint8_t devs[][PST_SIGN_PK_BYTES],
                          uint8_t boxes[][PST_BOX_PK_BYTES]) {
    return other_devices(n, devs, boxes);
}

bool pst_sync_sent_copy(struct pst_send_op *op) {
    pst_node *n = op->node;
    if (op->sync_flags != 0 || op->n_rcpts >= PST_SEND_RCPTS_MAX || n->id == NULL)
        return false;
    for (unsigned i = 0; i < op->n_rcpts; i++)
        if (op->rcpts[i].state == RS_OK &&
            memcmp(op->rcpts[i].pk, n->id->sign_pk, PST_SIGN_PK_BYTES) == 0)
            return false; /* written to ourselves: every device gets it anyway */
    send_rcpt *r = &op->rcpts[op->n_rcpts];
    memset(r, 0, sizeof *r);
    r->n_devs = other_devices(n, r->dev_pk, r->dev_box);
    if (r->n_devs == 0)
        return false;
    r->op = op;
    r->state = RS_OK;
    r->kind = PST_STORE_RCPT_BCC;
    r->flags = PST_NOTIFY_FLAG_SYNC_SENT;
    memcpy(r->pk, n->id->sign_pk, PST_SIGN_PK_BYTES);
    memcpy(r->box_pk, n->id->box_pk, PST_BOX_PK_BYTES);
    snprintf(r->query, sizeof r->query, "%s", n->fingerprint);
    op->n_rcpts++;
    op->resolved++;
    return true;
}

/* ---- trust changes: the sending side ------------------------------------- */

static void on_trust_sent(void *user, const char *error, pst_value *body) {
    (void)body;
    pst_node *n = user;
    if (error != NULL) {
        pst_counter_add(n, "sync.trust_unsent", 1);
        pst_log_warn("cannot tell your other devices of a trust change: %s", error);
    } else {
        pst_counter_add(n, "sync.trust_sent", 1);
    }
}

/* Writes the message that carries r into DIR/spool (path out). */
static int write_trust_message(pst_node *n, const pst_trustsync *r, char *path, size_t cap) {
    uint8_t raw[PST_TRUSTSYNC_MAX];
    size_t len = 0;
    char armor[8192], rnd[17]; /* base64 of PST_TRUSTSYNC_MAX, in lines */
    uint8_t b[8];
    int rc = pst_trustsync_encode(r, raw, sizeof raw, &len);
    if (rc == PST_OK)
        rc = pst_armor_encode(PST_TRUSTSYNC_LABEL, NULL, raw, len, armor, sizeof armor);
    if (rc != PST_OK)
        return rc;
    randombytes_buf(b, sizeof b);
    sodium_bin2hex(rnd, sizeof rnd, b, sizeof b);
    if (snprintf(path, cap, "%s/sync-%s", n->outbox->spool, rnd) >= (int)cap)
        return PST_E_NOSPACE;
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(r->subject, fp);
    FILE *f = fopen(path, "wx");
    if (f == NULL)
        return PST_E_IO;
    int w = fprintf(f,
                    "Subject: Postern trust sync: %s\n\n"
                    "A trust change made on another of your devices.\n\n%s",
                    fp, armor);
    if (fclose(f) != 0 || w < 0) {
        (void)unlink(path);
        return PST_E_IO;
    }
    return PST_OK;
}

/* An address the record's rule refuses stays on this device only. */
static int collect_email(const char *email, void *user) {
    pst_trustsync *r = user;
    if (r->n_emails >= PST_TRUSTSYNC_EMAILS_MAX)
        return 1;
    snprintf(r->emails[r->n_emails], sizeof r->emails[0], "%s", email);
    if (pst_contact_emails_ok((const char(*)[PST_TRUSTSYNC_EMAIL_MAX + 1]) r->emails,
                              r->n_emails + 1))
        r->n_emails++;
    else
        memset(r->emails[r->n_emails], 0, sizeof r->emails[0]);
    return 0;
}

void pst_sync_trust_changed(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES]) {
    uint8_t devs[PST_NOTIFY_DEVICES_MAX][PST_SIGN_PK_BYTES];
    uint8_t boxes[PST_NOTIFY_DEVICES_MAX][PST_BOX_PK_BYTES];
    char why[200];
    if (n->outbox == NULL || other_devices(n, devs, boxes) == 0 ||
        pst_send_refusal(n, why, sizeof why) != PST_OK)
        return;
    pst_trustsync r;
    memset(&r, 0, sizeof r);
    r.created = pst_now();
    memcpy(r.subject, pk, PST_SIGN_PK_BYTES);
    pst_store_tier tier = 0;
    if (pst_store_contact_get(n->store, pk, &tier, r.petname, sizeof r.petname) == PST_OK) {
        r.tier = (uint32_t)tier;
        /* in the store's order (ascending bytes), as the encoding wants */
        (void)pst_store_contact_emails(n->store, pk, collect_email, &r);
    } else
        r.petname[0] = '\0'; /* no longer a contact */
    pst_send_request *req = calloc(1, sizeof *req);
    if (req == NULL)
        return;
    int rc = write_trust_message(n, &r, req->path, sizeof req->path);
    pst_send_op *op = NULL;
    if (rc == PST_OK) {
        req->pow = PST_SEND_POW_NEVER;
        req->n_rcpts = 1;
        req->sync_flags = PST_NOTIFY_FLAG_SYNC_TRUST;
        snprintf(req->rcpts[0].query, sizeof req->rcpts[0].query, "%s", n->fingerprint);
        req->rcpts[0].kind = PST_STORE_RCPT_TO;
        rc = pst_send_new(n, req, on_trust_sent, NULL, n, &op);
        if (rc != PST_OK)
            (void)unlink(req->path);
    }
    free(req);
    if (rc != PST_OK) {
        pst_counter_add(n, "sync.trust_unsent", 1);
        pst_log_warn("cannot tell your other devices of a trust change: %s", pst_strerror(rc));
        return;
    }
    pst_send_begin(op);
}

/* ---- trust changes: the receiving side ----------------------------------- */

typedef struct {
    const uint8_t *pk;
    bool found;
    uint64_t updated;
} contact_find;

static int find_contact(const pst_store_contact_row *row, void *user) {
    contact_find *f = user;
    if (memcmp(row->pk, f->pk, PST_SIGN_PK_BYTES) != 0)
        return 0;
    f->found = true;
    f->updated = row->updated;
    return 1;
}

static bool listed(const pst_trustsync *r, const char *email) {
    for (uint32_t i = 0; i < r->n_emails; i++)
        if (strcmp(r->emails[i], email) == 0)
            return true;
    return false;
}

/* Emails here that the record no longer lists, into drop (the store's cap
 * bounds them). */
typedef struct {
    const pst_trustsync *r;
    uint32_t n;
    char drop[PST_STORE_CONTACT_EMAILS_MAX][PST_TRUSTSYNC_EMAIL_MAX + 1];
} email_diff;

static int unlisted_email(const char *email, void *user) {
    email_diff *d = user;
    if (!listed(d->r, email) && d->n < PST_STORE_CONTACT_EMAILS_MAX)
        snprintf(d->drop[d->n++], sizeof d->drop[0], "%s", email);
    return 0;
}

/* Gives r's contact exactly r's emails (inside the caller's batch). An
 * address another contact here carries moves when that contact's last
 * change is not later than r; else it stays there. */
static int replace_emails(pst_node *n, const pst_trustsync *r) {
    email_diff *d = calloc(1, sizeof *d);
    if (d == NULL)
        return PST_E_NOMEM;
    d->r = r;
    int rc = pst_store_contact_emails(n->store, r->subject, unlisted_email, d);
    for (uint32_t i = 0; rc == PST_OK && i < d->n; i++)
        rc = pst_store_contact_email_rm(n->store, r->subject, d->drop[i]);
    free(d);
    for (uint32_t i = 0; rc == PST_OK && i < r->n_emails; i++) {
        rc = pst_store_contact_email_add(n->store, r->subject, r->emails[i]);
        uint8_t owner[PST_SIGN_PK_BYTES];
        pst_store_tier tier;
        if (rc != PST_E_EXISTS ||
            pst_store_contact_by_email(n->store, r->emails[i], owner, &tier) != PST_OK)
            continue;
        contact_find f = {owner, false, 0};
        (void)pst_store_contact_list(n->store, find_contact, &f);
        if (f.updated > r->created) {
            pst_counter_add(n, "sync.email_kept", 1);
            rc = PST_OK; /* a later change here gave it to that contact */
        } else if ((rc = pst_store_contact_email_rm(n->store, owner, r->emails[i])) == PST_OK) {
            rc = pst_store_contact_email_add(n->store, r->subject, r->emails[i]);
        }
    }
    return rc;
}

/* The tier, pet name and emails of r, all or nothing. */
static int set_contact(pst_node *n, const pst_trustsync *r) {
    int rc = pst_store_begin(n->store);
    if (rc != PST_OK)
        return rc;
    rc = pst_store_contact_set(n->store, r->subject, (pst_store_tier)r->tier, r->petname,
                               r->created);
    if (rc == PST_OK)
        rc = replace_emails(n, r);
    if (rc == PST_OK)
        return pst_store_commit(n->store);
    (void)pst_store_rollback(n->store);
    return rc;
}

/* Applies one record: PST_OK (applied or older than what we have), or the
 * reason it is refused. */
static int apply_record(pst_node *n, const pst_trustsync *r) {
    if (memcmp(r->subject, n->id->sign_pk, PST_SIGN_PK_BYTES) == 0)
        return PST_E_INVAL; /* our own key is never a contact */
    contact_find f = {r->subject, false, 0};
    (void)pst_store_contact_list(n->store, find_contact, &f);
    if (f.found && f.updated > r->created) {
        pst_counter_add(n, "sync.trust_older", 1);
        return PST_OK; /* a later change here wins */
    }
    int rc;
    if (r->tier == PST_TRUSTSYNC_TIER_NONE)
        rc = f.found ? pst_store_contact_rm(n->store, r->subject) : PST_OK;
    else
        rc = set_contact(n, r);
    if (rc == PST_OK) {
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(r->subject, fp);
        pst_log_info("trust change from another device: %s is now %s", fp,
                     r->tier == 1   ? "trusted"
                     : r->tier == 2 ? "known"
                     : r->tier == 3 ? "blocked"
                                    : "not a contact");
        pst_counter_add(n, "sync.trust_applied", 1);
    }
    return rc;
}

/* The record in a delivered message: the armor after the header. */
static int read_record(const char *path, pst_trustsync *r) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return PST_E_IO;
    char *buf = malloc(SYNC_FILE_MAX + 1);
    ssize_t got = buf ? read(fd, buf, SYNC_FILE_MAX + 1) : -1;
    close(fd);
    int rc = got < 0 ? PST_E_IO : (size_t)got > SYNC_FILE_MAX ? PST_E_TOOBIG : PST_OK;
    const char *begin = NULL;
    if (rc == PST_OK) {
        buf[got] = '\0';
        begin = strstr(buf, "-----BEGIN POSTERN " PST_TRUSTSYNC_LABEL "-----");
        rc = begin != NULL ? PST_OK : PST_E_MALFORMED;
    }
    uint8_t raw[PST_TRUSTSYNC_MAX];
    size_t len = 0;
    if (rc == PST_OK)
        rc = pst_armor_decode(PST_TRUSTSYNC_LABEL, begin, (size_t)(buf + got - begin), raw,
                              sizeof raw, &len);
    if (rc == PST_OK)
        rc = pst_trustsync_decode(raw, len, r);
    free(buf);
    return rc;
}

static void apply_dir(pst_node *n, const char *dir, unsigned *budget) {
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *de; *budget > 0 && (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.')
            continue;
        char path[PST_PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        (*budget)--;
        pst_trustsync r;
        int rc = read_record(path, &r);
        if (rc == PST_OK)
            rc = apply_record(n, &r);
        if (rc == PST_E_STORE || rc == PST_E_IO || rc == PST_E_DISKFULL)
            continue; /* ours, not the record's: again at the next pass */
        if (rc != PST_OK) {
            char reason[40];
            pst_counter_rejected(n, "sync", pst_err_reason(rc, reason, sizeof reason));
            pst_log_warn("a trust record from another device is refused (%s): %s", path,
                         pst_strerror(rc));
        }
        if (unlink(path) != 0 && errno != ENOENT)
            pst_log_warn("cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
}

void pst_sync_apply(pst_node *n, const char *maildir_root) {
    if (n->id == NULL)
        return;
    unsigned budget = SYNC_APPLY_MAX, before = budget;
    const char *sub[2] = {"new", "cur"};
    for (int i = 0; i < 2; i++) {
        char dir[PST_PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s/%s/%s", maildir_root, PST_SYNC_FOLDER, sub[i]) <
            (int)sizeof dir)
            apply_dir(n, dir, &budget);
    }
    if (budget != before)
        pst_inbox_trust_changed(n); /* the gate judges with the new tiers */
}
