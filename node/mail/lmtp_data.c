/* LMTP: the message into the Maildir (docs/LMTP.md).
 *
 * DATA's bytes (dot-unstuffed and counted by proto's input machine) stream
 * into a file in the INBOX's tmp/ through the Maildir writer (line ends
 * become LF, the author's X-Postern-* fields are renamed), under the
 * node's own fields; the first 64 KiB are kept to read the X-Hashcash
 * fields. At CRLF.CRLF:
 * - a message that broke one of DATA's rules (submission's: too big, a bare
 *   CR or LF, a NUL, a header section over 64 KiB) is refused for every
 *   recipient and its tmp file removed: never half-written;
 * - each recipient is judged on its own: an X-Hashcash v1 stamp whose
 *   resource is its address, of at least pow_bits, dated within 28 days (2
 *   days of grace either way) and not spent before makes it "stamped";
 * - one copy is delivered, the user having one Maildir: when the From: is a
 *   contact's address vouched for by the mail server's Authentication-Results
 *   (lmtp_tier.c), by the contact's tier (INBOX, .Known, or refused for
 *   every recipient when blocked); else into .Unknown when a recipient is
 *   stamped, else into .Legacy (lmtp_unknown = folder), else (reject)
 *   nowhere. The file is fsync'd, renamed into the folder's new/
 *   and new/ fsync'd (pst_maildir_commit); then the stamps are recorded as
 *   spent (the same table as Postern stamps, kept until they expire);
 * - then one reply per accepted recipient, in RCPT order: 250 when its copy
 *   is durable; with reject, 550 for one with no valid stamp, saying how to
 *   mint one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pst_hashcash.h"
#include "pst_maildir.h"
#include "pst_store.h"
#include "smtp_int.h"

#define LMTP_STAMP_MAX_AGE ((28u + 2u) * 86400u) /* the hashcash tool's validity + grace */
#define LMTP_STAMP_MAX_FUTURE (2u * 86400u)      /* its grace for clocks ahead */
#define LMTP_FOLDER_STAMPED ".Unknown"
#define LMTP_FOLDER_KNOWN ".Known"
#define LMTP_FOLDER_INBOX ""
#define LMTP_FOLDER_LEGACY ".Legacy"

struct lmtp_msg {
    pst_maildir_writer w;
    char root[PST_PATH_MAX];
    size_t hdr_len;
    uint8_t hdr[SMTP_HEADER_KEEP];
    char scratch[SMTP_HEADER_KEEP + 1]; /* room to read a field of hdr */
};

/* What a recipient's stamps came to; a larger value says more. */
typedef enum {
    ST_NONE = 0, /* no X-Hashcash field for this address */
    ST_BAD,      /* one that is not a v1 stamp */
    ST_WEAK,     /* fewer bits than pow_bits */
    ST_DATE,     /* dated outside the window */
    ST_SPENT,    /* valid, but used before */
    ST_OK,
} stamp_verdict;

typedef struct {
    stamp_verdict v;
    unsigned bits;
    pst_hashcash_result hr;
} rcpt_stamp;

void pst_lmtp__data_abort(smtp_session *s) {
    if (s->lm == NULL)
        return;
    pst_maildir_abort(&s->lm->w);
    free(s->lm);
    s->lm = NULL;
}

static void refuse_all(smtp_session *s, const char *reply) {
    for (unsigned i = 0; i < s->n_rcpts; i++)
        pst_smtp__reply(s, "%s", reply);
}

void pst_lmtp__data_begin(smtp_session *s) {
    pst_node *n = s->node;
    char why[PST_PATH_MAX + 128];
    uint8_t id[PST_HASH_BYTES];
    char base[PST_MAILDIR_BASE_BUFSIZE];
    struct lmtp_msg *m = calloc(1, sizeof *m);
    if (m == NULL) {
        pst_smtp__reply(s, "451 4.3.0 cannot take a message now: out of memory");
        return;
    }
    m->w.fd = -1;
    randombytes_buf(id, sizeof id); /* a fresh name: Internet mail has no Postern id */
    pst_maildir_base_name(id, base);
    int rc = pst_home_path(n->cfg.home, PST_MAILDIR_DIR, m->root, sizeof m->root);
    if (rc == PST_OK)
        rc = pst_maildir_create(m->root, "", why, sizeof why);
    else
        snprintf(why, sizeof why, "home path too long");
    if (rc == PST_OK && (rc = pst_maildir_open(&m->w, m->root, "", base)) != PST_OK)
        snprintf(why, sizeof why, "cannot create a file in %s/tmp: %s", m->root, pst_strerror(rc));
    if (rc == PST_OK) {
        char fields[PST_SMTP_PATH_MAX + 64];
        int fl = snprintf(fields, sizeof fields, "Return-Path: <%s>\nX-Postern-Via: lmtp\n",
                          s->mail_from);
        rc = pst_maildir_write(&m->w, fields, (size_t)fl);
        if (rc != PST_OK)
            snprintf(why, sizeof why, "cannot write %s: %s", m->w.tmp_path, pst_strerror(rc));
    }
    if (rc != PST_OK) {
        pst_log_warn("lmtp: %s", why);
        pst_maildir_abort(&m->w);
        free(m);
        pst_counter_rejected(n, "lmtp", "maildir");
        pst_smtp__reply(s, "451 4.3.0 cannot take a message now: the Maildir is not writable");
        return;
    }
    s->lm = m;
    pst_smtp_in_data(&s->in, pst_smtp__size_limit(n));
    s->state = SS_DATA;
    pst_smtp__reply(s, "354 2.0.0 send the message, end with <CRLF>.<CRLF>");
}

void pst_lmtp__data_bytes(smtp_session *s, const uint8_t *p, size_t n) {
    struct lmtp_msg *m = s->lm;
    if (m == NULL || n == 0)
        return;
    if (m->hdr_len < sizeof m->hdr) {
        size_t k = sizeof m->hdr - m->hdr_len < n ? sizeof m->hdr - m->hdr_len : n;
        memcpy(m->hdr + m->hdr_len, p, k);
        m->hdr_len += k;
    }
    (void)pst_maildir_write_message(&m->w, p, n); /* an error is sticky: commit refuses */
}

/* The best of the X-Hashcash fields naming addr in hdr[0..len). */
static void judge(pst_node *n, const uint8_t *hdr, size_t len, const char *addr, uint64_t now,
                  rcpt_stamp *out) {
    memset(out, 0, sizeof *out);
    char v[PST_HASHCASH_STAMP_MAX + 1];
    size_t pos = 0;
    while (out->v != ST_OK &&
           pst_smtp_header_next(hdr, len, "X-Hashcash", &pos, v, sizeof v) == PST_OK) {
        pst_hashcash_fields f;
        size_t vl = strlen(v);
        if (pst_hashcash_parse(v, vl, &f) != PST_OK) {
            if (out->v < ST_BAD)
                out->v = ST_BAD;
            continue;
        }
        if (strcasecmp(f.resource, addr) != 0)
            continue; /* a stamp for another recipient */
        pst_hashcash_policy pol;
        pst_hashcash_policy_init(&pol, n->cfg.pow_bits, f.resource);
        pol.max_age = LMTP_STAMP_MAX_AGE;
        pol.max_future = LMTP_STAMP_MAX_FUTURE;
        pst_hashcash_result hr;
        int rc = pst_hashcash_verify(v, vl, &pol, now, &hr);
        stamp_verdict got = rc == PST_E_STAMP_BITS   ? ST_WEAK
                            : rc == PST_E_STAMP_DATE ? ST_DATE
                            : rc != PST_OK           ? ST_BAD
                                                     : ST_OK;
        if (got == ST_OK &&
            pst_store_stamp_is_spent(n->store, hr.spent_key, sizeof hr.spent_key) != 0)
            got = ST_SPENT; /* spent, or the table cannot say: not paid for */
        if (got > out->v) {
            out->v = got;
            out->bits = f.bits;
            out->hr = hr;
        }
    }
}

static const char *verdict_text(stamp_verdict v) {
    switch (v) {
    case ST_BAD:
        return "its X-Hashcash field is not a version 1 stamp";
    case ST_WEAK:
        return "its X-Hashcash stamp has too few bits";
    case ST_DATE:
        return "its X-Hashcash stamp is dated outside the 28-day window";
    case ST_SPENT:
        return "its X-Hashcash stamp was used before";
    default:
        return "it carries no X-Hashcash stamp for this address";
    }
}

/* Records the stamps of the stamped recipients as spent: after the copy is
 * durable (a crash in between lets a stamp pay twice, never loses mail). */
static void spend(pst_node *n, const rcpt_stamp *st, unsigned count) {
    if (pst_store_begin(n->store) != PST_OK)
        goto fail;
    for (unsigned i = 0; i < count; i++) {
        if (st[i].v != ST_OK)
            continue;
        int rc = pst_store_stamp_spend(n->store, st[i].hr.spent_key, sizeof st[i].hr.spent_key,
                                       st[i].hr.remember_until);
        if (rc != PST_OK && rc != PST_E_DUPLICATE) { /* the same stamp twice in one message */
            (void)pst_store_rollback(n->store);
            goto fail;
        }
    }
    if (pst_store_commit(n->store) == PST_OK)
        return;
fail:
    pst_log_warn("lmtp: cannot record spent stamps: %s", pst_store_last_error(n->store));
}

void pst_lmtp__data_end(smtp_session *s, const pst_smtp_event *ev) {
    pst_node *n = s->node;
    struct lmtp_msg *m = s->lm;
    s->state = SS_CMD;
    const char *reason = NULL;
    /* 8-bit header fields are Internet mail's reality: the MTA took them */
    const char *refusal = pst_smtp__data_refusal(ev, true, &reason);
    if (refusal == NULL && m == NULL) {
        reason = "maildir";
        refusal = "451 4.3.0 cannot write the message: try again later";
    }
    if (refusal != NULL) {
        pst_counter_rejected(n, "lmtp", reason);
        pst_lmtp__data_abort(s);
        refuse_all(s, refusal);
        pst_smtp__reset(s);
        return;
    }
    rcpt_stamp st[SMTP_RCPTS_MAX];
    size_t hl = ev->header_bytes < m->hdr_len ? ev->header_bytes : m->hdr_len;
    uint64_t now = pst_now();
    unsigned stamped = 0;
    for (unsigned i = 0; i < s->n_rcpts; i++) {
        judge(n, m->hdr, hl, s->rcpts[i].addr, now, &st[i]);
        stamped += st[i].v == ST_OK;
    }
    /* a contact's tier decides for every recipient: one Maildir */
    pst_store_tier tier = pst_lmtp__contact_tier(n, m->hdr, hl, m->scratch, sizeof m->scratch);
    if (tier == PST_STORE_TIER_BLOCKED) {
        pst_counter_rejected(n, "lmtp", "blocked");
        pst_log_info("lmtp: a message from a blocked contact refused");
        pst_lmtp__data_abort(s);
        for (unsigned i = 0; i < s->n_rcpts; i++)
            pst_smtp__reply(s, "550 5.7.1 <%s>: delivery not authorized", s->rcpts[i].addr);
        pst_smtp__reset(s);
        return;
    }
    bool reject = n->cfg.lmtp_reject_unknown && tier == 0;
    const char *folder = tier == PST_STORE_TIER_TRUSTED ? LMTP_FOLDER_INBOX
                         : tier == PST_STORE_TIER_KNOWN ? LMTP_FOLDER_KNOWN
                         : stamped > 0                  ? LMTP_FOLDER_STAMPED
                         : reject                       ? NULL
                                                        : LMTP_FOLDER_LEGACY;
    int rc = PST_OK;
    char why[512] = "";
    if (folder == NULL) {
        pst_lmtp__data_abort(s);
    } else {
        pst_maildir_loc loc;
        rc = pst_maildir_create(m->root, folder, why, sizeof why);
        if (rc == PST_OK) {
            /* written in the INBOX's tmp/, renamed into the folder's new/:
             * one file system, one Maildir */
            snprintf(m->w.folder, sizeof m->w.folder, "%s", folder);
            rc = pst_maildir_commit(&m->w, &loc);
            if (rc != PST_OK)
                snprintf(why, sizeof why, "%s", pst_strerror(rc));
        }
        pst_lmtp__data_abort(s);
        if (rc != PST_OK) {
            pst_log_warn("lmtp: cannot deliver into %s: %s", folder, why);
            pst_counter_rejected(n, "lmtp", "maildir");
        } else {
            if (tier == 0) /* a contact's mail needs no stamp: none is spent */
                spend(n, st, s->n_rcpts);
            s->messages++;
            pst_counter_add(n,
                            tier == PST_STORE_TIER_TRUSTED ? "lmtp.delivered_inbox"
                            : tier == PST_STORE_TIER_KNOWN ? "lmtp.delivered_known"
                            : stamped > 0                  ? "lmtp.delivered_unknown"
                                                           : "lmtp.delivered_legacy",
                            1);
            pst_log_info("lmtp: a message from <%s> (%llu bytes) into %s", s->mail_from,
                         (unsigned long long)ev->data_bytes, pst_maildir_folder_display(folder));
        }
    }
    for (unsigned i = 0; i < s->n_rcpts; i++) {
        const char *addr = s->rcpts[i].addr;
        if (reject && st[i].v != ST_OK) {
            pst_counter_rejected(n, "lmtp", "unstamped");
            pst_smtp__reply(s,
                            "550 5.7.1 <%s>: %s: this address takes mail from outside Postern "
                            "only with a hashcash stamp of %u bits for it: mint one with "
                            "'hashcash -m -b %u %s' and add it as an X-Hashcash: header field",
                            addr, verdict_text(st[i].v), n->cfg.pow_bits, n->cfg.pow_bits, addr);
        } else if (rc != PST_OK) {
            pst_smtp__reply(s,
                            "451 4.3.0 <%s>: cannot write the message into the Maildir: try "
                            "again later",
                            addr);
        } else {
            pst_smtp__reply(s, "250 2.0.0 <%s> delivered into %s", addr,
                            pst_maildir_folder_display(folder));
        }
    }
    pst_smtp__reset(s);
}
