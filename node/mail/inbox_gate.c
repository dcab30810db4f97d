/* The recipient's trust gate: which tier a sender is in and which folder
 * its mail goes to, and strangers' notifications parked until we know
 * whether a trusted contact vouches for them (docs/TRUST.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inbox_int.h"
#include "pst_log.h"

/* ---- the trust gate ------------------------------------------------------------ */

/* Our own key is trusted: mail to oneself goes to the INBOX (the contact
 * list cannot hold it: `postern trust set` refuses one's own key). */
int pst_inbox__sender_tier(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES]) {
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
const char *pst_inbox__route(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES],
                             const stamp_info *stamp, const char **reason, bool *ask_vouch) {
    *reason = NULL;
    *ask_vouch = false;
    switch (pst_inbox__sender_tier(n, pk)) {
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

/* ---- strangers waiting for a vouch answer ----------------------------------------
 * A stranger without a good stamp gets in only when a trusted contact vouches
 * for it, and finding that out is a DHT lookup: the dearest step of the gate.
 * Its notification is opened and verified once, then parked here (seen key,
 * sender, stamp bits; no bytes) while at most PST_INBOX_VOUCH_LOOKUPS lookups
 * run, oldest sender first. The value stays in the seen set, so a flood's
 * re-deliveries cost one BLAKE2b each, and nothing here delays a contact's
 * notification, which pst_inbox__route() admits without any lookup. The answer settles
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

/* Settles the parked values of pk whose answer pst_inbox__route() now has. */
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
        if (pst_inbox__route(n, pk, &st, &reason, &ask) != NULL) {
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
            pst_inbox__refused(ib, w->key, w->signer, reason);
        }
        memset(w, 0, sizeof *w);
    }
    wait_trim(ib);
    ib->poll_forced |= again;
    if (again && !n->stopping)
        uv_timer_start(&ib->poll_timer, pst_inbox__on_poll, 0,
                       (uint64_t)n->cfg.inbox_poll_s * 1000u);
}

/* The callback's user value names the slot and the use of it, so that a
 * late answer never ends another sender's lookup: slot * 2^24 + generation. */
#define LOOKUP_GEN_MASK 0xffffffu
static void *lookup_token(unsigned k, uint32_t gen) {
    return (void *)(uintptr_t)((uintptr_t)k << 24 | (gen & LOOKUP_GEN_MASK));
}

static void on_wait_vouches(pst_node *n, void *user) {
    uintptr_t token = (uintptr_t)user;
    unsigned k = (unsigned)(token >> 24);
    struct pst_inbox *ib = n->inbox; /* not called once the node stops */
    if (ib == NULL || k >= PST_INBOX_VOUCH_LOOKUPS)
        return;
    vouch_lookup *l = &ib->lookups[k];
    if (!l->busy || (l->gen & LOOKUP_GEN_MASK) != (token & LOOKUP_GEN_MASK))
        return;
    l->busy = false;
    wait_settle(ib, l->pk);
    pst_inbox__wait_pump(ib);
}

static bool wait_asking(struct pst_inbox *ib, const uint8_t pk[PST_SIGN_PK_BYTES]) {
    for (unsigned k = 0; k < PST_INBOX_VOUCH_LOOKUPS; k++)
        if (ib->lookups[k].busy && memcmp(ib->lookups[k].pk, pk, PST_SIGN_PK_BYTES) == 0)
            return true;
    return false;
}

/* Starts lookups for the oldest senders not asked yet. */
void pst_inbox__wait_pump(struct pst_inbox *ib) {
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
        unsigned slot = 0;
        for (unsigned k = 0; k < PST_INBOX_VOUCH_LOOKUPS && free_l == NULL; k++)
            if (!ib->lookups[k].busy)
                free_l = &ib->lookups[slot = k];
        if (free_l == NULL)
            return; /* the next answer pumps again */
        memcpy(free_l->pk, w->signer, PST_SIGN_PK_BYTES);
        free_l->busy = true;
        free_l->started_ms = now;
        free_l->gen++;
        int rc =
            pst_trust_vouch_check(n, w->signer, on_wait_vouches, lookup_token(slot, free_l->gen));
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
int pst_inbox__wait_add(struct pst_inbox *ib, const uint8_t key[SEEN_KEY],
                        const uint8_t signer[PST_SIGN_PK_BYTES], const stamp_info *stamp) {
    pst_node *n = ib->node;
    for (uint64_t i = ib->wait_head; i < ib->wait_tail; i++) /* forgotten by the seen set */
        if (memcmp(wait_at(ib, i)->key, key, SEEN_KEY) == 0)
            return PST_OK;
    wait_trim(ib);
    if (ib->wait == NULL || ib->wait_tail - ib->wait_head >= PST_INBOX_WAITING_MAX)
        return pst_inbox__reject(n, PST_E_BUSY, "vouch_busy");
    waiting *w = wait_at(ib, ib->wait_tail++);
    memset(w, 0, sizeof *w);
    memcpy(w->key, key, SEEN_KEY);
    memcpy(w->signer, signer, PST_SIGN_PK_BYTES);
    w->stamp_present = stamp->present;
    w->stamp_bits = stamp->bits;
    pst_counter_add(n, "inbox.waiting_for_vouches", 1);
    pst_inbox__wait_pump(ib);
    return PST_OK;
}

/* ---- trust that takes effect at once ------------------------------------------------
 * A refused notification is remembered as seen (re-deliveries cost one
 * BLAKE2b), so by itself it would never be judged again, while its sender
 * keeps it in our slot until it expires. The last PST_INBOX_REFUSED_MAX
 * refusals are kept (seen key, signer: 48 bytes each): a change of the
 * contact list forgets all of them from the seen set and reads the slot at
 * once; a new vouch for one sender forgets that sender's. A new vouch is
 * learnt by listening to the vouch slots of the last few strangers refused
 * for want of a stamp (PST_INBOX_WATCHES, each PST_INBOX_WATCH_MS; a watch
 * younger than PST_INBOX_WATCH_KEEP_MS is never taken over, so a flood of
 * strangers starts at most PST_INBOX_WATCHES listens a minute). A value there
 * that could vouch (pst_trust_vouch_news) leads to one vouch lookup, at most
 * every PST_INBOX_WATCH_RECHECK_MS per watch; only a "vouched" answer
 * re-admits, so a replayed or flooded vouch slot costs lookups, not opens. */

/* Forgets the seen keys of the refused values of pk (NULL: all) and reads
 * the slot at once: each is judged again by the gate. */
static void readmit(struct pst_inbox *ib, const uint8_t *pk) {
    pst_node *n = ib->node;
    if (ib->refused == NULL)
        return;
    uint64_t from =
        ib->refused_n > PST_INBOX_REFUSED_MAX ? ib->refused_n - PST_INBOX_REFUSED_MAX : 0;
    unsigned forgotten = 0;
    for (uint64_t i = from; i < ib->refused_n; i++) {
        refused_value *r = &ib->refused[i % PST_INBOX_REFUSED_MAX];
        static const uint8_t zero[SEEN_KEY];
        if (memcmp(r->key, zero, SEEN_KEY) == 0 ||
            (pk != NULL && memcmp(r->signer, pk, PST_SIGN_PK_BYTES) != 0))
            continue;
        pst_seen_forget(&ib->seen, r->key);
        memset(r, 0, sizeof *r);
        forgotten++;
    }
    if (forgotten == 0)
        return;
    pst_counter_add(n, "inbox.readmitted", forgotten);
    ib->poll_forced = true;
    if (!n->stopping)
        uv_timer_start(&ib->poll_timer, pst_inbox__on_poll, 0,
                       (uint64_t)n->cfg.inbox_poll_s * 1000u);
}

void pst_inbox_trust_changed(pst_node *n) {
    pst_trust_forget_answers(n, NULL);
    if (n->inbox != NULL)
        readmit(n->inbox, NULL);
}

static void on_watch_answer(pst_node *n, void *user) {
    vouch_watch *w = user;
    struct pst_inbox *ib = n->inbox;
    if (ib == NULL || w->ib != ib || !w->checking)
        return;
    w->checking = false;
    /* values parked meanwhile asked a lookup that was ours: settle them too */
    for (unsigned k = 0; k < PST_INBOX_VOUCH_LOOKUPS; k++)
        if (ib->lookups[k].busy && memcmp(ib->lookups[k].pk, w->pk, PST_SIGN_PK_BYTES) == 0)
            ib->lookups[k].busy = false;
    wait_settle(ib, w->pk);
    pst_inbox__wait_pump(ib);
    if (pst_trust_vouched(n, w->pk) == 1) {
        pst_counter_add(n, "trust.vouch_news_admitted", 1);
        readmit(ib, w->pk); /* route() now sends them to .Known */
    }
}

/* A lookup of w's sender, if its rate allows; else later (gate_tick). */
static void watch_check(vouch_watch *w, uint64_t now) {
    pst_node *n = w->ib->node;
    if (w->checking || (w->checked_ms != 0 && now - w->checked_ms < PST_INBOX_WATCH_RECHECK_MS) ||
        pst_trust_vouch_pending(n, w->pk))
        return;
    pst_trust_forget_answers(n, w->pk);
    w->checked_ms = now;
    w->checking = true;
    if (pst_trust_vouch_check(n, w->pk, on_watch_answer, w) != PST_OK) {
        w->checking = false;
        return; /* busy: the next tick tries again */
    }
    w->news = false;
}

static void on_watch_value(void *user, const uint8_t *val, size_t len, bool expired) {
    vouch_watch *w = user;
    pst_node *n = w->ib->node;
    if (expired || n->stopping || w->news)
        return; /* a lookup is due anyway: it reads the whole slot */
    if (!pst_trust_vouch_news(n, w->pk, val, len))
        return;
    /* during a lookup: it may have read the slot before this value came, so
     * one more follows (gate_tick, PST_INBOX_WATCH_RECHECK_MS later) */
    w->news = true;
    watch_check(w, uv_now(n->loop));
}

static void watch_end(struct pst_inbox *ib, vouch_watch *w) {
    if (w->h != NULL)
        pst_dht_listen_cancel(&ib->node->dht, w->h);
    memset(w, 0, sizeof *w);
}

static void watch_start(struct pst_inbox *ib, const uint8_t pk[PST_SIGN_PK_BYTES]) {
    pst_node *n = ib->node;
    uint64_t now = uv_now(n->loop);
    vouch_watch *pick = NULL;
    for (unsigned k = 0; k < PST_INBOX_WATCHES; k++) {
        vouch_watch *w = &ib->watches[k];
        if (w->h != NULL && memcmp(w->pk, pk, PST_SIGN_PK_BYTES) == 0) {
            w->started_ms = now; /* still notifying: watch it longer */
            return;
        }
        if (w->h == NULL) {
            if (pick == NULL || pick->h != NULL)
                pick = w;
        } else if (now - w->started_ms >= PST_INBOX_WATCH_KEEP_MS &&
                   (pick == NULL || (pick->h != NULL && w->started_ms < pick->started_ms))) {
            pick = w;
        }
    }
    if (pick == NULL) {
        pst_counter_add(n, "trust.vouch_watch_full", 1);
        return;
    }
    watch_end(ib, pick);
    pick->ib = ib;
    memcpy(pick->pk, pk, PST_SIGN_PK_BYTES);
    pick->started_ms = now;
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_vouch(pk, slot);
    if (pst_dht_listen(&n->dht, slot, on_watch_value, pick, &pick->h) != PST_OK) {
        memset(pick, 0, sizeof *pick);
        return;
    }
    pst_counter_add(n, "trust.vouch_watches", 1);
}

void pst_inbox__refused(struct pst_inbox *ib, const uint8_t key[SEEN_KEY],
                        const uint8_t signer[PST_SIGN_PK_BYTES], const char *reason) {
    pst_node *n = ib->node;
    if (ib->refused == NULL &&
        (ib->refused = calloc(PST_INBOX_REFUSED_MAX, sizeof *ib->refused)) == NULL)
        return;
    refused_value *r = &ib->refused[ib->refused_n++ % PST_INBOX_REFUSED_MAX];
    memcpy(r->key, key, SEEN_KEY);
    memcpy(r->signer, signer, PST_SIGN_PK_BYTES);
    if (n->cfg.vouch_depth > 0 && !n->stopping &&
        (strcmp(reason, "no_stamp") == 0 || strcmp(reason, "stamp_too_weak") == 0))
        watch_start(ib, signer);
}

void pst_inbox__gate_tick(struct pst_inbox *ib) {
    uint64_t now = uv_now(ib->node->loop);
    for (unsigned k = 0; k < PST_INBOX_WATCHES; k++) {
        vouch_watch *w = &ib->watches[k];
        if (w->h == NULL)
            continue;
        if (w->checking && now - w->checked_ms >= PST_INBOX_VOUCH_STUCK_MS)
            w->checking = false; /* its answer never came back to us */
        if (w->news)
            watch_check(w, now);
        else if (!w->checking && now - w->started_ms >= PST_INBOX_WATCH_MS)
            watch_end(ib, w);
    }
}

void pst_inbox__gate_stop(struct pst_inbox *ib) {
    for (unsigned k = 0; k < PST_INBOX_WATCHES; k++)
        watch_end(ib, &ib->watches[k]);
    free(ib->refused);
    ib->refused = NULL;
    ib->refused_n = 0;
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

void pst_inbox__refresh_sender(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES]) {
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
