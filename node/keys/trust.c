/* Trust: contacts and their tiers (`postern trust`), vouches (`postern
 * vouch` / `unvouch`), and the vouches of a key (`key get`, and the tier of a
 * sender).
 *
 * Vouch slots are open to everyone, so a flood of endorsements (as the SKS
 * keyservers suffered in 2019) must cost little: every value is decoded
 * (microseconds, no allocation), only endorsements signed by one of my
 * contacts are always verified, and at most PST_VOUCH_STRANGERS_MAX others
 * are verified for display. Nothing from a vouch slot is ever added to a key
 * record, so no flood can grow a record or slow a key lookup. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_control.h"
#include "pst_log.h"
#include "pst_record.h"

#define PST_VOUCH_STRANGERS_MAX 16u
#define PST_VOUCH_SIGNERS_MAX 64u

static const char *tier_name(pst_store_tier t) {
    switch (t) {
    case PST_STORE_TIER_TRUSTED:
        return "trusted";
    case PST_STORE_TIER_KNOWN:
        return "known";
    case PST_STORE_TIER_BLOCKED:
        return "blocked";
    }
    return "unknown";
}

static int parse_tier(const char *s, pst_store_tier *out) {
    if (strcmp(s, "trusted") == 0)
        *out = PST_STORE_TIER_TRUSTED;
    else if (strcmp(s, "known") == 0)
        *out = PST_STORE_TIER_KNOWN;
    else if (strcmp(s, "blocked") == 0)
        *out = PST_STORE_TIER_BLOCKED;
    else
        return PST_E_INVAL;
    return PST_OK;
}

/* "key=value" argument lookup; NULL when absent. */
static const char *arg(const pst_ctrl_request *req, const char *key) {
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < req->n_args; i++)
        if (strncmp(req->args[i], key, kl) == 0 && req->args[i][kl] == '=')
            return req->args[i] + kl + 1;
    return NULL;
}

static bool parse_fp(const pst_ctrl_request *req, uint8_t pk[32], pst_node_reply_cb reply,
                     void *user) {
    const char *fp = arg(req, "fingerprint");
    if (fp == NULL || pst_fingerprint_parse(fp, pk) != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "a fingerprint is 52 characters of z-base-32 (see postern key get)");
        return false;
    }
    return true;
}

/* ---- trust set / rm / list --------------------------------------------------- */

void pst_node_cmd_trust_set(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                            void *user) {
    uint8_t pk[32];
    pst_store_tier tier;
    if (!parse_fp(req, pk, reply, user))
        return;
    const char *t = arg(req, "tier");
    if (t == NULL || parse_tier(t, &tier) != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "the tier is trusted, known or blocked");
        return;
    }
    if (n->id != NULL && memcmp(pk, n->id->sign_pk, 32) == 0) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "that is your own key");
        return;
    }
    const char *name = arg(req, "name");
    int rc = pst_store_contact_set(n->store, pk, tier, name ? name : "", pst_now());
    if (rc != PST_OK) {
        pst_reply_error(reply, user, 0,
                        rc == PST_E_INVAL || rc == PST_E_TOOBIG ? PST_CTRL_STATUS_USAGE
                                                                : PST_CTRL_STATUS_FAIL,
                        "cannot save the contact: %s (a name is at most %u bytes of text)",
                        pst_strerror(rc), PST_STORE_PETNAME_MAX);
        return;
    }
    /* counts for the next notification, and for the ones refused lately */
    pst_inbox_trust_changed(n);
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "fingerprint", arg(req, "fingerprint"));
    pst_value_add_str(b, "tier", tier_name(tier));
    pst_value_add_str(b, "name", name ? name : "");
    if (pst_store_is_revoked(n->store, pk) == 1)
        pst_value_add_str(b, "warning",
                          "this key is revoked: its mail is dropped whatever its "
                          "tier");
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

void pst_node_cmd_trust_rm(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                           void *user) {
    uint8_t pk[32];
    if (!parse_fp(req, pk, reply, user))
        return;
    int rc = pst_store_contact_rm(n->store, pk);
    if (rc == PST_E_NOTFOUND) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "that key is not in your contacts (postern trust list)");
        return;
    }
    if (rc != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot remove the contact: %s",
                        pst_strerror(rc));
        return;
    }
    pst_inbox_trust_changed(n);
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "fingerprint", arg(req, "fingerprint"));
    pst_value_add_str(b, "tier", "unknown");
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

static int on_contact(const pst_store_contact_row *row, void *user) {
    void **ctx = user;
    pst_node *n = ctx[0];
    pst_value *arr = ctx[1];
    pst_value *e = pst_value_add_map(arr, NULL);
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(row->pk, fp);
    pst_value_add_str(e, "fingerprint", fp);
    pst_value_add_str(e, "tier", tier_name(row->tier));
    pst_value_add_str(e, "name", row->petname);
    pst_value_add_uint(e, "since", row->created);
    pst_value_add_uint(e, "updated", row->updated);
    pst_value_add_bool(e, "revoked", pst_store_is_revoked(n->store, row->pk) == 1);
    return 0;
}

void pst_node_cmd_trust_list(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                             void *user) {
    (void)req;
    pst_value *b = pst_value_new_map();
    pst_value *arr = pst_value_add_array(b, "contacts");
    void *ctx[2] = {n, arr};
    int rc = pst_store_contact_list(n->store, on_contact, ctx);
    if (rc != PST_OK) {
        pst_value_free(b);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot list contacts: %s",
                        pst_strerror(rc));
        return;
    }
    pst_value_add_uint(b, "vouch_depth", n->cfg.vouch_depth);
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

/* ---- vouch / unvouch -------------------------------------------------------- */

typedef struct {
    pst_node_reply_cb reply;
    void *user;
    pst_value *body;
} vouch_put;

static void on_vouch_put(void *user, int status) {
    vouch_put *v = user;
    pst_value_add_bool(v->body, "published", status == PST_OK);
    if (status != PST_OK)
        pst_value_add_str(v->body, "warning",
                          "no DHT node confirmed the put yet; the node keeps re-publishing it");
    pst_reply_tree(v->reply, v->user, v->body, PST_CTRL_STATUS_OK);
    free(v);
}

static void vouch_common(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user, bool withdraw) {
    uint8_t pk[32];
    if (n->id == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "%s", pst_strerror(PST_E_NOKEY));
        return;
    }
    if (!parse_fp(req, pk, reply, user))
        return;
    if (memcmp(pk, n->id->sign_pk, 32) == 0) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "you cannot vouch for yourself");
        return;
    }
    pst_endorsement e;
    memset(&e, 0, sizeof e);
    e.created = pst_now();
    memcpy(e.subject, pk, 32);
    if (withdraw) {
        e.tier = PST_TIER_WITHDRAWN;
        /* outlive any vouch we may have made: nobody can replay an old one */
        e.expires = e.created + PST_ENDORSEMENT_LIFETIME_MAX;
    } else {
        const char *t = arg(req, "tier");
        e.tier = t == NULL || strcmp(t, "known") == 0 ? PST_TIER_KNOWN
                 : strcmp(t, "trusted") == 0          ? PST_TIER_TRUSTED
                                                      : 99;
        if (e.tier == 99) {
            pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "--tier is known or trusted");
            return;
        }
        uint64_t days = 365;
        const char *d = arg(req, "expires_days");
        if (d != NULL) {
            char *end;
            days = strtoull(d, &end, 10);
            if (*d == '\0' || *end != '\0' || days < 1 ||
                days * 86400u > PST_ENDORSEMENT_LIFETIME_MAX) {
                pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "--expires is 1 to %u days",
                                PST_ENDORSEMENT_LIFETIME_MAX / 86400u);
                return;
            }
        }
        e.expires = e.created + days * 86400u;
    }
    uint8_t buf[PST_DHT_VALUE_MAX];
    size_t len;
    int rc = pst_endorsement_sign(&e, n->id->sign_sk);
    if (rc == PST_OK)
        rc = pst_endorsement_encode(&e, buf, sizeof buf, &len);
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_vouch(pk, slot);
    /* one published vouch per subject: it replaces the previous one and is
     * re-put with our other records */
    if (rc == PST_OK)
        rc = pst_store_published_put(n->store, PST_PUB_ENDORSEMENT, slot, buf, len, e.created,
                                     pst_now());
    if (rc != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot make the endorsement: %s",
                        pst_strerror(rc));
        return;
    }
    vouch_put *v = calloc(1, sizeof *v);
    if (v == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "out of memory");
        return;
    }
    v->reply = reply;
    v->user = user;
    v->body = pst_value_new_map();
    pst_value_add_str(v->body, "fingerprint", arg(req, "fingerprint"));
    pst_value_add_str(v->body, "tier",
                      withdraw                     ? "withdrawn"
                      : e.tier == PST_TIER_TRUSTED ? "trusted"
                                                   : "known");
    pst_value_add_uint(v->body, "created", e.created);
    pst_value_add_uint(v->body, "expires", e.expires);
    rc = pst_publish_put(n, PST_PUB_ENDORSEMENT, slot, buf, len, on_vouch_put, v);
    if (rc != PST_OK)
        on_vouch_put(v, rc);
}

void pst_node_cmd_vouch(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                        void *user) {
    vouch_common(n, req, reply, user, false);
}

void pst_node_cmd_unvouch(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                          void *user) {
    vouch_common(n, req, reply, user, true);
}

/* ---- the vouches of a key -------------------------------------------------
 * A vouch slot is open to anyone, and OpenDHT reads a slot of hundreds of
 * values one value at a time (~1 s on loopback for 430): a reader that must
 * answer a person (`key get`) gets what came within its wait, plus the
 * contacts' vouches remembered from the last reads of that key (the ones
 * that matter to us), while the read goes on and refreshes that memory. */

#define PST_VOUCH_RECALL_SUBJECTS 128u /* keys whose contacts' vouches we remember */
#define PST_VOUCH_RECALL_PER 8u        /* contacts' vouches remembered per key */

typedef struct {
    uint8_t subject[32];
    uint64_t at;              /* pst_now() of the last read that ended; 0 = free */
    uint64_t more;            /* values the last complete read did not examine */
    uint64_t values, done_ms; /* values it saw; uv_now() when it ended */
    unsigned n;
    pst_vouch v[PST_VOUCH_RECALL_PER];
} recalled;

#define PST_VOUCH_WAITERS 8u /* callers sharing one read of a slot */
/* A slot that held more values than this at its last complete read is
 * flooded: while OpenDHT reads it (one value at a time) the node's other
 * gets wait behind it, so for display it is read again at most every
 * PST_VOUCH_FLOODED_REREAD_MS; `key get` meanwhile answers from memory. */
#define PST_VOUCH_FLOODED 64u
#define PST_VOUCH_FLOODED_REREAD_MS 10000u

typedef struct {
    pst_vouches_cb cb; /* NULL: free or answered */
    void *user;
    uint64_t due_ms; /* uv_now() to answer with what came so far; UINT64_MAX: at the end */
} vouch_waiter;

/* One read of a vouch slot; everyone asking for the same slot meanwhile
 * shares it, so a flooded slot is read once at a time. */
typedef struct vouch_get vouch_get;
struct vouch_get {
    vouch_get *next; /* the node's reads in flight */
    pst_node *node;
    uint8_t subject[32];
    vouch_waiter waiters[PST_VOUCH_WAITERS];
    pst_vouch vouches[PST_VOUCH_SIGNERS_MAX];
    unsigned n_vouches;
    unsigned strangers_verified;
    uint64_t values_seen, more;
    uv_timer_t timer;
    bool timer_open, done;
    bool memory_only; /* no read: answered from memory (flooded slot) */
};

#define PST_VOUCH_CACHE 512u
#define PST_VOUCH_CACHE_TTL_S 600u
/* "not vouched for" is kept shorter: a vouch made meanwhile counts within a
 * minute even for a sender whose vouch slot nobody watches (inbox_gate.c
 * watches a few), at the cost of one more DHT get per stranger a minute */
#define PST_VOUCH_CACHE_NEG_TTL_S 60u
#define PST_VOUCH_CHECKS_MAX 4u
#define PST_VOUCH_DEPTH2_MAX 4u

typedef struct {
    uint8_t pk[32];
    uint64_t until; /* 0 = free slot */
    bool known, pending;
} vouch_entry;

struct pst_trust {
    vouch_entry cache[PST_VOUCH_CACHE];
    unsigned checks_running;
    uint64_t generation; /* bumped when the contact list changes */
    recalled recall[PST_VOUCH_RECALL_SUBJECTS];
    vouch_get *reads; /* in flight */
};

static struct pst_trust *trust_of(pst_node *n) {
    if (n->trust == NULL)
        n->trust = calloc(1, sizeof *n->trust);
    return n->trust;
}

static recalled *recall_find(pst_node *n, const uint8_t subject[32], bool create);

static void keep_vouch_in(pst_vouch *vs, unsigned *nv, unsigned cap, uint64_t *more,
                          const pst_vouch *in) {
    for (unsigned i = 0; i < *nv; i++) {
        if (memcmp(vs[i].voucher, in->voucher, 32) != 0)
            continue;
        /* newest per signer wins; on a tie the weaker statement (a withdrawal
         * first) wins, so an unvouch in the same second still takes effect */
        if (in->created > vs[i].created ||
            (in->created == vs[i].created && in->tier < vs[i].tier)) {
            vs[i].tier = in->tier;
            vs[i].created = in->created;
            vs[i].expires = in->expires;
        }
        return;
    }
    if (*nv >= cap) {
        if (more != NULL)
            (*more)++;
        return;
    }
    vs[(*nv)++] = *in;
}

static void keep_vouch(vouch_get *g, const pst_endorsement *e, bool contact,
                       pst_store_tier contact_tier) {
    pst_vouch v;
    memset(&v, 0, sizeof v);
    memcpy(v.voucher, e->signer, 32);
    v.tier = (unsigned)e->tier;
    v.created = e->created;
    v.expires = e->expires;
    v.voucher_is_contact = contact;
    v.voucher_tier = contact_tier;
    keep_vouch_in(g->vouches, &g->n_vouches, PST_VOUCH_SIGNERS_MAX, &g->more, &v);
}

static void on_vouch_value(void *user, const uint8_t *val, size_t len) {
    vouch_get *g = user;
    pst_node *n = g->node;
    g->values_seen++;
    pst_endorsement e;
    /* decode first (cheap); decide whether the signature is worth checking */
    if (len > PST_DHT_VALUE_MAX || pst_endorsement_decode(val, len, &e) != PST_OK ||
        memcmp(e.subject, g->subject, 32) != 0) {
        pst_counter_rejected(n, "vouch", "invalid");
        return;
    }
    /* the same value comes from every node that stores it: a statement that
     * cannot replace the one we hold is not worth a signature check */
    for (unsigned i = 0; i < g->n_vouches; i++)
        if (memcmp(g->vouches[i].voucher, e.signer, 32) == 0 &&
            (g->vouches[i].created > e.created ||
             (g->vouches[i].created == e.created && g->vouches[i].tier <= (unsigned)e.tier)))
            return;
    pst_store_tier tier = 0;
    bool contact = pst_store_contact_get(n->store, e.signer, &tier, NULL, 0) == PST_OK;
    if (!contact) {
        if (g->strangers_verified >= PST_VOUCH_STRANGERS_MAX) {
            g->more++;
            return;
        }
        g->strangers_verified++;
    }
    /* bounded: every contact's, at most PST_VOUCH_STRANGERS_MAX others' per read */
    pst_counter_add(n, "trust.vouch_signatures_verified", 1);
    if (pst_endorsement_verify(&e, pst_now()) != PST_OK ||
        pst_store_is_revoked(n->store, e.signer) != 0) {
        pst_counter_rejected(n, "vouch", "signature_or_expired");
        return;
    }
    keep_vouch(g, &e, contact, tier);
}

/* What the read found so far, and the contacts' vouches of earlier reads
 * (their tier as the contact list says now). */
static void answer_partial(vouch_get *g, vouch_waiter *w) {
    pst_node *n = g->node;
    pst_vouch vs[PST_VOUCH_SIGNERS_MAX];
    unsigned nv = g->n_vouches;
    uint64_t more = g->more;
    memcpy(vs, g->vouches, nv * sizeof vs[0]);
    recalled *r = recall_find(n, g->subject, false);
    for (unsigned i = 0; r != NULL && i < r->n; i++) {
        pst_vouch v = r->v[i];
        if (pst_store_contact_get(n->store, v.voucher, &v.voucher_tier, NULL, 0) != PST_OK ||
            pst_store_is_revoked(n->store, v.voucher) != 0)
            continue; /* no longer a contact: it counted only as one */
        keep_vouch_in(vs, &nv, PST_VOUCH_SIGNERS_MAX, &more, &v);
    }
    if (r != NULL && r->more > more)
        more = r->more;
    pst_vouches_cb cb = w->cb;
    w->cb = NULL;
    cb(w->user, PST_E_TIMEOUT, vs, nv, more);
}

static void on_vouch_timer_closed(uv_handle_t *h) {
    vouch_get *g = h->data;
    pst_node *n = g->node;
    g->timer_open = false;
    if (g->done)
        free(g);
    pst_node_handle_unref(n); /* may finalize n: last */
}

static void on_vouch_deadline(uv_timer_t *t);

/* Arms the timer for the next waiter due before the read ends. */
static void vouch_arm(vouch_get *g) {
    pst_node *n = g->node;
    uint64_t due = UINT64_MAX;
    for (unsigned i = 0; i < PST_VOUCH_WAITERS; i++)
        if (g->waiters[i].cb != NULL && g->waiters[i].due_ms < due)
            due = g->waiters[i].due_ms;
    if (due == UINT64_MAX || n->stopping)
        return;
    if (!g->timer_open) {
        if (uv_timer_init(n->loop, &g->timer) != 0)
            return; /* answered when the read ends */
        g->timer.data = g;
        g->timer_open = true;
        pst_node_handle_ref(n);
    }
    uint64_t now = uv_now(n->loop);
    uv_timer_start(&g->timer, on_vouch_deadline, due > now ? due - now : 0, 0);
}

static void on_vouch_deadline(uv_timer_t *t) {
    vouch_get *g = t->data;
    uint64_t now = uv_now(g->node->loop);
    if (g->memory_only) {
        if (g->waiters[0].cb != NULL)
            answer_partial(g, &g->waiters[0]);
        g->done = true;
        uv_close((uv_handle_t *)&g->timer, on_vouch_timer_closed); /* frees g */
        return;
    }
    for (unsigned i = 0; i < PST_VOUCH_WAITERS && !g->done; i++)
        if (g->waiters[i].cb != NULL && g->waiters[i].due_ms <= now)
            answer_partial(g, &g->waiters[i]);
    if (!g->done)
        vouch_arm(g);
}

/* Remembers the contacts' vouches a read found: a complete read replaces
 * what was remembered, an incomplete one adds to it. */
static void recall_store(vouch_get *g, bool complete) {
    recalled *r = recall_find(g->node, g->subject, true);
    if (r == NULL)
        return;
    if (complete) {
        r->n = 0;
        r->more = g->more;
        r->values = g->values_seen;
        r->done_ms = uv_now(g->node->loop);
    }
    for (unsigned i = 0; i < g->n_vouches; i++)
        if (g->vouches[i].voucher_is_contact)
            keep_vouch_in(r->v, &r->n, PST_VOUCH_RECALL_PER, NULL, &g->vouches[i]);
    r->at = pst_now();
}

static void reads_unlink(vouch_get *g) {
    struct pst_trust *t = g->node->trust;
    for (vouch_get **p = t ? &t->reads : NULL; p != NULL && *p != NULL; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            return;
        }
}

static void on_vouch_done(void *user, int status) {
    vouch_get *g = user;
    pst_node *n = g->node;
    n->ops_pending--;
    reads_unlink(g);
    pst_counter_add(n, "trust.vouch_reads_ended", 1);
    if (!n->stopping)
        recall_store(g, status == PST_OK);
    g->done = true;
    for (unsigned i = 0; i < PST_VOUCH_WAITERS; i++) {
        vouch_waiter *w = &g->waiters[i];
        if (w->cb != NULL) {
            pst_vouches_cb cb = w->cb;
            w->cb = NULL;
            cb(w->user, status, g->vouches, g->n_vouches, g->more);
        }
    }
    if (g->timer_open) {
        if (!uv_is_closing((uv_handle_t *)&g->timer))
            uv_close((uv_handle_t *)&g->timer, on_vouch_timer_closed); /* frees g */
    } else {
        free(g);
    }
}

int pst_trust_vouches_within(pst_node *n, const uint8_t subject[32], uint32_t wait_ms,
                             pst_vouches_cb cb, void *user) {
    struct pst_trust *t = trust_of(n);
    if (t == NULL)
        return PST_E_NOMEM;
    uint64_t due = wait_ms > 0 ? uv_now(n->loop) + wait_ms : UINT64_MAX;
    for (vouch_get *g = t->reads; g != NULL; g = g->next) {
        if (memcmp(g->subject, subject, 32) != 0)
            continue;
        for (unsigned i = 0; i < PST_VOUCH_WAITERS; i++)
            if (g->waiters[i].cb == NULL) { /* share the read in flight */
                g->waiters[i] = (vouch_waiter){cb, user, due};
                pst_counter_add(n, "trust.vouch_reads_shared", 1);
                vouch_arm(g);
                return PST_OK;
            }
    }
    vouch_get *g = calloc(1, sizeof *g);
    if (g == NULL)
        return PST_E_NOMEM;
    g->node = n;
    memcpy(g->subject, subject, 32);
    recalled *r = wait_ms > 0 ? recall_find(n, subject, false) : NULL;
    if (r != NULL && r->values > PST_VOUCH_FLOODED &&
        uv_now(n->loop) - r->done_ms < PST_VOUCH_FLOODED_REREAD_MS && !n->stopping) {
        g->memory_only = true; /* answered on the next loop turn */
        g->waiters[0] = (vouch_waiter){cb, user, uv_now(n->loop)};
        pst_counter_add(n, "trust.vouch_reads_spared", 1);
        vouch_arm(g);
        if (g->timer_open)
            return PST_OK;
        free(g);
        return PST_E_NOMEM;
    }
    g->waiters[0] = (vouch_waiter){cb, user, due};
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_vouch(subject, slot);
    n->ops_pending++;
    int rc = pst_dht_get(&n->dht, slot, PST_LOOKUP_TIMEOUT_MS, on_vouch_value, on_vouch_done, g);
    if (rc != PST_OK) {
        n->ops_pending--;
        free(g);
        return rc;
    }
    pst_counter_add(n, "trust.vouch_reads", 1);
    /* the DHT layer's callbacks come from the loop, never during the call */
    g->next = t->reads;
    t->reads = g;
    vouch_arm(g);
    return PST_OK;
}

int pst_trust_vouches(pst_node *n, const uint8_t subject[32], pst_vouches_cb cb, void *user) {
    return pst_trust_vouches_within(n, subject, 0, cb, user);
}

bool pst_vouch_makes_known(const pst_vouch *v, uint64_t now) {
    return v->voucher_is_contact && v->voucher_tier == PST_STORE_TIER_TRUSTED &&
           v->tier != PST_TIER_WITHDRAWN && v->expires > now;
}

void pst_vouches_describe(pst_value *arr, const pst_vouch *v, unsigned count, pst_node *n) {
    for (unsigned i = 0; i < count; i++) {
        pst_value *e = pst_value_add_map(arr, NULL);
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(v[i].voucher, fp);
        pst_value_add_str(e, "voucher", fp);
        pst_value_add_str(e, "tier",
                          v[i].tier == PST_TIER_TRUSTED ? "trusted"
                          : v[i].tier == PST_TIER_KNOWN ? "known"
                                                        : "withdrawn");
        pst_value_add_uint(e, "created", v[i].created);
        pst_value_add_uint(e, "expires", v[i].expires);
        pst_value_add_str(e, "voucher_tier",
                          v[i].voucher_is_contact ? tier_name(v[i].voucher_tier) : "unknown");
        char name[PST_STORE_PETNAME_MAX + 1] = "";
        pst_store_tier t;
        if (v[i].voucher_is_contact &&
            pst_store_contact_get(n->store, v[i].voucher, &t, name, sizeof name) == PST_OK &&
            name[0] != '\0')
            pst_value_add_str(e, "voucher_name", name);
        pst_value_add_bool(e, "counts", pst_vouch_makes_known(&v[i], pst_now()));
    }
}

/* ---- is a sender vouched for? ------------------------------------------------
 * The inbox asks for every unknown sender without a good stamp. Answers are
 * cached (PST_VOUCH_CACHE_TTL_S) and at most PST_VOUCH_CHECKS_MAX lookups run
 * at once: a flood of strangers costs a bounded number of DHT gets, and a
 * stranger refused because the table was busy is looked at again when its
 * notification comes back (senders re-notify). */

static recalled *recall_find(pst_node *n, const uint8_t subject[32], bool create) {
    struct pst_trust *t = trust_of(n);
    if (t == NULL)
        return NULL;
    recalled *oldest = NULL;
    for (unsigned i = 0; i < PST_VOUCH_RECALL_SUBJECTS; i++) {
        recalled *r = &t->recall[i];
        if (r->at != 0 && memcmp(r->subject, subject, 32) == 0)
            return r;
        if (oldest == NULL || r->at < oldest->at)
            oldest = r;
    }
    if (!create || oldest == NULL)
        return NULL;
    memset(oldest, 0, sizeof *oldest);
    memcpy(oldest->subject, subject, 32);
    return oldest;
}

void pst_trust_free(pst_node *n) {
    free(n->trust);
    n->trust = NULL;
}

static vouch_entry *cache_find(struct pst_trust *t, const uint8_t pk[32], bool create) {
    uint64_t now = pst_now();
    vouch_entry *free_slot = NULL, *oldest = NULL;
    for (unsigned i = 0; i < PST_VOUCH_CACHE; i++) {
        vouch_entry *e = &t->cache[i];
        if (e->until != 0 && memcmp(e->pk, pk, 32) == 0)
            return e;
        if (e->until == 0 || (!e->pending && e->until <= now))
            free_slot = free_slot ? free_slot : e;
        else if (!e->pending && (oldest == NULL || e->until < oldest->until))
            oldest = e;
    }
    if (!create)
        return NULL;
    vouch_entry *e = free_slot ? free_slot : oldest;
    if (e != NULL) {
        memset(e, 0, sizeof *e);
        memcpy(e->pk, pk, 32);
    }
    return e;
}

int pst_trust_vouched(pst_node *n, const uint8_t pk[32]) {
    if (n->cfg.vouch_depth == 0)
        return 0;
    struct pst_trust *t = trust_of(n);
    vouch_entry *e = t ? cache_find(t, pk, false) : NULL;
    if (e == NULL || e->pending || e->until <= pst_now())
        return -1;
    return e->known ? 1 : 0;
}

typedef struct vouch_check vouch_check;
struct vouch_check {
    pst_node *node;
    uint8_t pk[32];
    bool known;
    unsigned pending;    /* depth-2 lookups in flight */
    uint64_t generation; /* of the contact list it was asked under */
    void (*done)(pst_node *, void *);
    void *user;
};

static void check_finish(vouch_check *c) {
    pst_node *n = c->node;
    struct pst_trust *t = trust_of(n);
    if (t != NULL) {
        t->checks_running--;
        vouch_entry *e = cache_find(t, c->pk, true);
        if (e != NULL && c->generation != t->generation) {
            memset(e, 0, sizeof e[0]); /* judged by a contact list since changed: ask again */
        } else if (e != NULL) {
            e->pending = false;
            e->known = c->known;
            e->until = pst_now() + (c->known ? PST_VOUCH_CACHE_TTL_S : PST_VOUCH_CACHE_NEG_TTL_S);
        }
    }
    if (c->known)
        pst_counter_add(n, "trust.vouched_known", 1);
    if (c->done && !n->stopping)
        c->done(n, c->user);
    free(c);
}

static void on_depth2(void *user, int status, const pst_vouch *v, unsigned count, uint64_t more) {
    vouch_check *c = user;
    (void)status;
    (void)more;
    for (unsigned i = 0; i < count; i++)
        if (pst_vouch_makes_known(&v[i], pst_now()))
            c->known = true;
    if (--c->pending == 0)
        check_finish(c);
}

static void on_depth1(void *user, int status, const pst_vouch *v, unsigned count, uint64_t more) {
    vouch_check *c = user;
    pst_node *n = c->node;
    (void)status;
    (void)more;
    uint64_t now = pst_now();
    for (unsigned i = 0; i < count; i++)
        if (pst_vouch_makes_known(&v[i], now))
            c->known = true;
    if (!c->known && n->cfg.vouch_depth >= 2 && !n->stopping) {
        /* vouched for by someone whom a trusted contact vouches for */
        c->pending = 1;
        unsigned asked = 0;
        for (unsigned i = 0; i < count && asked < PST_VOUCH_DEPTH2_MAX; i++) {
            if (v[i].tier == PST_TIER_WITHDRAWN || v[i].expires <= now ||
                (v[i].voucher_is_contact && v[i].voucher_tier == PST_STORE_TIER_BLOCKED))
                continue;
            c->pending++;
            if (pst_trust_vouches(n, v[i].voucher, on_depth2, c) != PST_OK)
                c->pending--;
            else
                asked++;
        }
        if (--c->pending > 0)
            return;
    }
    check_finish(c);
}

int pst_trust_vouch_check(pst_node *n, const uint8_t pk[32], void (*done)(pst_node *, void *),
                          void *user) {
    struct pst_trust *t = trust_of(n);
    if (t == NULL)
        return PST_E_NOMEM;
    if (n->cfg.vouch_depth == 0)
        return PST_E_INVAL;
    vouch_entry *e = cache_find(t, pk, false);
    if (e != NULL && e->pending)
        return PST_OK; /* already on its way */
    if (t->checks_running >= PST_VOUCH_CHECKS_MAX) {
        pst_counter_add(n, "trust.vouch_checks_busy", 1);
        return PST_E_BUSY;
    }
    e = cache_find(t, pk, true);
    if (e == NULL)
        return PST_E_BUSY;
    vouch_check *c = calloc(1, sizeof *c);
    if (c == NULL)
        return PST_E_NOMEM;
    c->node = n;
    memcpy(c->pk, pk, 32);
    c->done = done;
    c->user = user;
    c->generation = t->generation;
    e->pending = true;
    e->until = UINT64_MAX;
    t->checks_running++;
    int rc = pst_trust_vouches(n, pk, on_depth1, c);
    if (rc != PST_OK) {
        t->checks_running--;
        memset(e, 0, sizeof *e);
        free(c);
    }
    return rc;
}

void pst_trust_forget_answers(pst_node *n, const uint8_t pk[32]) {
    struct pst_trust *t = n->trust;
    if (t == NULL)
        return;
    if (pk == NULL)
        t->generation++; /* lookups in flight were asked under the old list */
    for (unsigned i = 0; i < PST_VOUCH_CACHE; i++) {
        vouch_entry *e = &t->cache[i];
        if (e->until != 0 && !e->pending && (pk == NULL || memcmp(e->pk, pk, 32) == 0))
            memset(e, 0, sizeof *e);
    }
}

bool pst_trust_vouch_pending(pst_node *n, const uint8_t pk[32]) {
    struct pst_trust *t = n->trust;
    vouch_entry *e = t ? cache_find(t, pk, false) : NULL;
    return e != NULL && e->pending;
}

bool pst_trust_vouch_news(pst_node *n, const uint8_t subject[32], const uint8_t *val, size_t len) {
    pst_endorsement e;
    if (n->cfg.vouch_depth == 0 || len > PST_DHT_VALUE_MAX ||
        pst_endorsement_decode(val, len, &e) != PST_OK || memcmp(e.subject, subject, 32) != 0 ||
        e.tier == PST_TIER_WITHDRAWN)
        return false;
    pst_store_tier tier;
    bool contact = pst_store_contact_get(n->store, e.signer, &tier, NULL, 0) == PST_OK;
    if (contact && tier == PST_STORE_TIER_TRUSTED)
        return pst_endorsement_verify(&e, pst_now()) == PST_OK; /* one Ed25519 */
    /* deeper: the voucher's own standing is what the lookup finds out; the
     * caller rate-limits those lookups, so an unverified value is enough */
    return n->cfg.vouch_depth >= 2 && !(contact && tier == PST_STORE_TIER_BLOCKED);
}

/* ---- notices: a contact's key was revoked ------------------------------------
 * Shown once (by `postern status` or `postern inbox`, whichever comes first),
 * remembered in the store so a restart does not repeat it. */

typedef struct {
    pst_node *node;
    pst_value *arr;
    unsigned added;
} notice_walk;

static int on_notice_contact(const pst_store_contact_row *row, void *user) {
    notice_walk *w = user;
    pst_node *n = w->node;
    if (pst_store_is_revoked(n->store, row->pk) != 1)
        return 0;
    char hex[33], name[48];
    sodium_bin2hex(hex, sizeof hex, row->pk, 16);
    snprintf(name, sizeof name, "notice.revoked.%s", hex);
    uint64_t shown = 0;
    if (pst_store_meta_get_u64(n->store, name, &shown) == PST_OK && shown != 0)
        return 0;
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(row->pk, fp);
    char text[PST_CTRL_ERROR_MAX];
    int off = snprintf(text, sizeof text,
                       "your %s contact %s%s%s is revoked: its mail is "
                       "dropped from now on",
                       tier_name(row->tier), fp, row->petname[0] ? " " : "", row->petname);
    uint8_t buf[PST_RECORD_MAX];
    size_t len;
    pst_revocation rev;
    if (off > 0 && (size_t)off < sizeof text &&
        pst_store_revocation_get(n->store, row->pk, buf, sizeof buf, &len) == PST_OK &&
        pst_revocation_decode(buf, len, &rev) == PST_OK && rev.has_replacement) {
        char rfp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(rev.replacement, rfp);
        snprintf(text + off, sizeof text - (size_t)off,
                 "; the revocation names %s as its replacement: that key is NOT trusted "
                 "because of it, check it with its owner before you trust it",
                 rfp);
    }
    pst_value_add_str(w->arr, NULL, text);
    (void)pst_store_meta_set_u64(n->store, name, pst_now());
    w->added++;
    return 0;
}

unsigned pst_trust_notices(pst_node *n, pst_value *arr) {
    notice_walk w = {n, arr, 0};
    (void)pst_store_contact_list(n->store, on_notice_contact, &w);
    return w.added;
}
