/* node/ internals shared by its files. Not for tools/. */
#ifndef PST_NODE_INT_H
#define PST_NODE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "pst_clock.h"
#include "pst_config.h"
#include "pst_dht.h"
#include "pst_envelope.h"
#include "pst_fetch.h"
#include "pst_identity.h"
#include "pst_maildir.h"
#include "pst_node.h"
#include "pst_notify.h"
#include "pst_records.h"
#include "pst_store.h"

#define PST_COUNTERS_MAX 128
#define PST_COUNTER_NAME_MAX 64
#define PST_LOOKUP_TIMEOUT_MS 10000u
#define PST_PUT_TIMEOUT_MS 10000u
#define PST_BOOTSTRAP_BACKOFF_MIN_MS 1000u
#define PST_BOOTSTRAP_BACKOFF_MAX_MS 60000u
#define PST_COUNTER_FLUSH_MS 10000u

/* Published record kinds in the store's published table. */
enum { PST_PUB_KEYREC = 1, PST_PUB_ADDRCLAIM = 2, PST_PUB_REVOCATION = 3, PST_PUB_ENDORSEMENT = 4 };

typedef struct {
    char name[PST_COUNTER_NAME_MAX];
    uint64_t value;   /* since the store was created (loaded + this run) */
    uint64_t pending; /* not yet flushed to the store */
} pst_counter;

typedef struct pst_ctrl_server pst_ctrl_server;

struct pst_node {
    uv_loop_t *loop;
    pst_node_config cfg;
    pst_node_mode mode;
    pst_store *store;
    pst_identity *id; /* NULL in one-shot mode */
    char fingerprint[PST_FINGERPRINT_STRLEN + 1];
    char addresses[PST_KEYREC_ADDRESSES_MAX][PST_ADDRESS_MAX + 1];
    unsigned n_addresses;
    pst_dht dht;
    bool dht_live;
    uint64_t started_at;

    /* bootstrap */
    uv_timer_t bootstrap_timer;
    uint32_t bootstrap_backoff_ms;
    unsigned seeds_answered;
    unsigned seeds_pending;
    /* a seed answered, or there is none to wait for: the ping rounds stop.
     * Not "in touch with the network": that is pst_node_joined() */
    bool bootstrapped;
    bool warned_alone; /* a whole ping round went unanswered */

    /* publication */
    uv_timer_t republish_timer;
    uint64_t own_seq;
    unsigned publish_round; /* index into the fast-start re-put schedule */
    bool revoked;           /* our own key is revoked: publish only the revocation */
    uint16_t fetch_port;
    char endpoint[PST_ENDPOINT_MAX + 1];
    pst_dht_listen_handle *listens[PST_KEYREC_ADDRESSES_MAX + 3];
    void *listen_ctx[PST_KEYREC_ADDRESSES_MAX + 3];
    unsigned n_listens;

    /* mail: sender side (outbox.c, send.c, fetch_server.c) and recipient
     * side (inbox.c, fetch_client.c, maildir.c); each owns its state */
    struct pst_outbox *outbox;
    struct pst_inbox *inbox;
    struct pst_trust *trust; /* vouch cache (trust.c) */

    /* what peers' signed times say about our clock (clock_watch.c) */
    pst_clock clock;
    pst_clock_state clock_logged_state;
    uint64_t clock_logged_mono;
    struct pst_clock_probe *clock_probes; /* clock_probe.c */
    unsigned clock_probes_active;

    /* counters */
    pst_counter counters[PST_COUNTERS_MAX];
    unsigned n_counters;
    uv_timer_t flush_timer;

    pst_ctrl_server *ctrl;
    unsigned ops_pending; /* lookups, puts in flight (to wait on stop) */
    bool stopping;
    int handles_open;
    void (*on_stopped)(void *);
    void *stopped_user;
    int lock_fd;
};

/* counters.c */
void pst_counter_add(pst_node *n, const char *name, uint64_t delta);
void pst_counter_rejected(pst_node *n, const char *slot_kind, const char *reason);
void pst_counters_flush(pst_node *n);
/* "PST_E_NONCANONICAL" -> "noncanonical": the stable reason part of a
 * counter name, written into buf. */
const char *pst_err_reason(int err, char *buf, size_t cap);
void pst_counters_load(pst_node *n);

/* ingest.c: validation of every value that comes out of the DHT. */
typedef enum { PST_SLOT_KEY, PST_SLOT_ADDRESS, PST_SLOT_INBOX, PST_SLOT_VOUCH } pst_slot_kind;
const char *pst_slot_kind_name(pst_slot_kind kind);
/* Validates val found in the key slot of pk. Stores a valid KeyRecord (seq
 * rule) or Revocation. Counts every rejection. Returns PST_OK when accepted,
 * else the reason. When out_keyrec/out_rev are non-NULL they get the decoded
 * record on success (or an expired-but-authentic KeyRecord with
 * PST_E_EXPIRED, or one created too far in the future with PST_E_NOTYET). */
int pst_ingest_key_value(pst_node *n, const uint8_t pk[32], const uint8_t *val, size_t len,
                         pst_keyrec *out_keyrec, pst_revocation *out_rev, bool *is_revocation);
/* Validates an AddressClaim found in the slot of address; stores it.
 * PST_E_REVOKED (with *out filled) for an authentic claim of a revoked key. */
int pst_ingest_address_value(pst_node *n, const char *address, const uint8_t *val, size_t len,
                             pst_address_claim *out);
/* Validates an Endorsement found in the vouch slot of subject. */
int pst_ingest_vouch_value(pst_node *n, const uint8_t subject[32], const uint8_t *val, size_t len,
                           pst_endorsement *out);
/* Starts listening on our own slots (key, addresses, vouch, inbox). */
int pst_ingest_listen_own(pst_node *n);
/* Reads our own key, address and vouch slots once (a listen can miss values
 * under load); values already looked at are skipped, so each is counted
 * once. Called with the inbox poll. */
void pst_ingest_poll_own(pst_node *n);
/* True while a read started by pst_ingest_poll_own runs (one at a time). */
bool pst_ingest_own_get_busy(pst_node *n);

/* clock_watch.c: feeds pst_clock from signed times the node verifies, logs
 * what it concludes, and describes it for `status`. Every function takes
 * records whose signature it checks itself (at the record's own time, so a
 * record refused only for its time still counts); peer == our own key is
 * ignored. */
/* An authentic time of peer: a sample (chosen: see pst_clock.h). */
void pst_clock_note(pst_node *n, const uint8_t peer[32], uint64_t peer_time, pst_clock_kind kind,
                    bool chosen);
/* A value of peer refused for its time (what: "notification", "key record",
 * ...; future: created too far ahead, else expired): one log line per peer
 * per PST_CLOCK_LOG_INTERVAL_S (returns true when it logged). The caller
 * counts the rejection. */
bool pst_clock_refused_log(pst_node *n, const uint8_t peer[32], const char *what, uint64_t created,
                           uint64_t expires, bool future);
/* For a notification whose pst_notify_inner_verify gave rc: when rc is
 * PST_E_NOTYET or PST_E_EXPIRED, checks the signature alone, samples,
 * logs a future one (an expired one may be a replay: a contact's node is
 * probed instead, unlogged), and returns the counter reason ("notyet", "expired" or
 * "signature": a forgery is not a clock); NULL for other rc (name it
 * after rc). */
const char *pst_clock_notification(pst_node *n, const pst_notify_inner *in, int rc);
/* A key record of pk that pst_ingest_key_value gave rc (asked: the user
 * looked pk up by fingerprint, so it may vote). */
void pst_clock_keyrec(pst_node *n, const pst_keyrec *kr, const uint8_t pk[32], bool asked, int rc);
/* The fetch exchange: r/req/rec were decoded; rc is what the time-checking
 * verify said. Samples when authentic (and fresh: a response only if it
 * matches our request req, NULL when none; a request in time only once its
 * nonce was found new); returns true when the value is authentic (and from
 * the expected signer, for a response) but refused only for its time. */
bool pst_clock_fetch_response(pst_node *n, const pst_fetch_response *r,
                              const pst_fetch_request *req, const uint8_t sender[32], int rc);
bool pst_clock_fetch_request(pst_node *n, const pst_fetch_request *req, int rc);
bool pst_clock_receipt(pst_node *n, const pst_receipt *rec, int rc);
/* clock_probe.c: asks the fetch server of in's sender (a contact whose
 * notification was refused for its time) for that message once, so the
 * sender's node sees our signed time and learns its clock disagrees. */
void pst_clock_probe(pst_node *n, const pst_notify_inner *in);
/* Closes the probes in flight (node stop). */
void pst_clock_probe_stop(pst_node *n);
/* Adds "clock" to a status body. */
void pst_clock_describe(pst_node *n, pst_value *body);

/* node.c: the addresses given to `postern init` (store meta "addresses",
 * NUL-separated) into out; returns how many (0 when none or unreadable). */
unsigned pst_node_init_addresses(pst_store *st,
                                 char out[PST_KEYREC_ADDRESSES_MAX][PST_ADDRESS_MAX + 1]);

/* bootstrap.c */
void pst_bootstrap_start(pst_node *n);
/* Why this node is alone (pst_node_joined() is false), in words for one
 * line: why (e.g. "no seed answered (127.0.0.1:4222 tried)")
 * and advice (what to do). Returns a stable word for JSON: "no_seed",
 * "no_seed_answered" or "no_answer" (seeds answered, gets and puts do not). */
const char *pst_bootstrap_describe_alone(const pst_node *n, char *why, size_t whycap, char *advice,
                                         size_t advicecap);

/* publish.c */
int pst_publish_start(pst_node *n);
/* Publishes a revocation (already verified) for our key or another's. */
int pst_publish_revocation(pst_node *n, const uint8_t *bytes, size_t len, pst_dht_done_cb done,
                           void *user);
void pst_publish_now(pst_node *n);
/* Puts one of our records now (kind PST_PUB_*; its last-put time is updated
 * on success). done may be NULL. Returns 0 or the error of pst_dht_put
 * (then done is not called). */
int pst_publish_put(pst_node *n, int kind, const uint8_t slot[PST_SLOT_BYTES], const uint8_t *bytes,
                    size_t len, pst_dht_done_cb done, void *user);

/* lookup.c: finding keys (`key get`, and recipients for `send`) */
#define PST_RESOLVE_KEYS_MAX 16u /* keys considered for one address */
typedef enum {
    PST_KEY_VALID = 0,
    PST_KEY_NOT_FOUND = 2,
    PST_KEY_REVOKED = 3,
    PST_KEY_EXPIRED = 4,
    PST_KEY_FROM_FUTURE = 5, /* only records created too far ahead of our clock */
} pst_key_status;
typedef struct {
    uint8_t pk[32];
    pst_key_status status;
    bool have_keyrec; /* keyrec valid (or the refused one, for EXPIRED/FROM_FUTURE) */
    pst_keyrec keyrec;
    pst_revocation revocation; /* when status == PST_KEY_REVOKED */
    bool from_dht;             /* the DHT answered for this key */
} pst_resolved_key;
typedef struct {
    bool by_address;
    char address[PST_ADDRESS_MAX + 1]; /* normalized, when by_address */
    bool dht_ok;                       /* every DHT get finished in time */
    uint64_t started_ms, lookup_ms;
} pst_resolve_info;
/* keys/info are valid during the call only. err != 0 only for internal
 * failures; "nothing found" is n == 0 (address) or PST_KEY_NOT_FOUND. */
typedef void (*pst_resolve_cb)(void *user, int err, const pst_resolved_key *keys, unsigned n,
                               const pst_resolve_info *info);
/* Looks query (fingerprint or address) up in the DHT, stores what is valid,
 * and reports every candidate key with its status. asked: the user asked
 * for it (`key get`, `send`), so a key looked up by fingerprint votes on
 * this node's clock (pst_clock.h); a background refresh passes false.
 * Returns PST_E_INVAL when query is neither (cb not called), else 0 and cb
 * is called exactly once. */
int pst_resolve(pst_node *n, const char *query, bool asked, pst_resolve_cb cb, void *user);
const char *pst_key_status_name(pst_key_status s);
void pst_lookup_key(pst_node *n, const char *query, pst_node_reply_cb reply, void *user);

/* ---- mail ------------------------------------------------------------------
 * Sender side: binds the fetch port (n->fetch_port must be set on return, it
 * goes into our KeyRecord), serves fetches, keeps notifications alive until
 * receipts arrive. Recipient side: listens on and polls our inbox slot,
 * fetches, delivers into DIR/Maildir, sends receipts. Both register their uv
 * handles with pst_node_handle_ref() and close them in *_stop (each close
 * callback calls pst_node_handle_unref()). *_stop runs before the DHT is
 * closed; DHT callbacks of their pending operations still arrive afterwards
 * with PST_E_CLOSED and must only free memory then (n->stopping is true). */
int pst_outbox_start(pst_node *n, char *err, size_t errcap);
void pst_outbox_stop(pst_node *n);
int pst_inbox_start(pst_node *n, char *err, size_t errcap);
void pst_inbox_stop(pst_node *n);
/* Store meta name under which inbox.c keeps why the last fetch of a message
 * failed (a short text: "retrying: REASON" or "gave up: REASON"). */
#define PST_INBOX_WHY_NAME_BUFSIZE 48u
void pst_inbox_why_name(const uint8_t id[PST_HASH_BYTES], char name[PST_INBOX_WHY_NAME_BUFSIZE]);
/* Tries message id (a PENDING row) now, back-off and strikes reset: after
 * `postern inbox retry`. */
void pst_inbox_wake(pst_node *n, const uint8_t id[PST_HASH_BYTES], uint64_t expires);
/* When to try a message again after a failed attempt: in backoff_ms, but
 * never past the notification's expiry (the last try comes a little before
 * it). Pure. false (and *wait_ms 0) once now_s >= expires_s: give up. */
bool pst_inbox_next_try(uint64_t now_s, uint64_t expires_s, uint32_t backoff_ms, uint64_t *wait_ms);
void pst_node_cmd_inbox_retry(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                              void *user);
/* Control commands of the mail side (argument and body schemas in
 * docs/CLI.md). */
void pst_node_cmd_send(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user);
void pst_node_cmd_outbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);
/* `outbox retry`: puts the notifications of every recipient still waiting
 * for message=ID again now and restarts their back-off. */
void pst_node_cmd_outbox_retry(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                               void *user);
void pst_node_cmd_unsend(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);
void pst_node_cmd_inbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                        void *user);
void pst_node_cmd_read(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user);

/* fetch_client.c: one TCP exchange with a sender's node, recipient side:
 * FetchRequest, verified FetchResponse, the ciphertext streamed through the
 * message-id hasher and the decryptor into a Maildir tmp/ file, delivery
 * (fsync, rename, inbox row DELIVERED), then the Receipt and its
 * acknowledgement (inbox row receipt_sent). With receipt_only the first
 * frame is the Receipt of a message stored earlier. */
#define PST_FETCH_CLIENT_TICK_MS 1000u /* granularity of the idle/total timeouts */
typedef struct pst_fetch_conn pst_fetch_conn;
typedef struct {
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t sender[PST_SIGN_PK_BYTES]; /* signs the responses and authors the message */
    uint8_t msg_key[PST_MSGKEY_BYTES]; /* secret: the client wipes its copy */
    uint64_t size;                     /* ciphertext bytes the notification announced */
    uint32_t n_endpoints;
    char endpoints[PST_NOTIFY_ENDPOINTS_MAX][PST_NOTIFY_ENDPOINT_MAX + 1];
    char folder[PST_MAILDIR_FOLDER_MAX + 1]; /* where to deliver; must exist */
    bool receipt_only;
    uint64_t stored_at; /* receipt_only: when the message became durable */
} pst_fetch_job;
typedef enum {
    PST_FETCH_DONE = 0,     /* stored and the receipt acknowledged */
    PST_FETCH_RETRY = 1,    /* transient (offline, timeout, busy, local I/O): try later */
    PST_FETCH_PROTOCOL = 2, /* the sender misbehaved (bad frame, hash, author) */
    PST_FETCH_GIVE_UP = 3,  /* the sender refused for good (not_found, forbidden, ...) */
} pst_fetch_outcome;
typedef struct {
    pst_fetch_outcome outcome;
    bool delivered;     /* durable in the Maildir and the row DELIVERED (this run) */
    bool existed;       /* delivered found an earlier copy instead of writing one */
    const char *reason; /* stable counter name part when outcome != DONE */
    pst_maildir_loc loc;
    uint64_t bytes; /* file size when delivered */
} pst_fetch_result;
/* Called once, on the loop, unless the fetch was cancelled. */
typedef void (*pst_fetch_done_cb)(void *user, const pst_fetch_result *res);
/* Starts the exchange; maildir is the Maildir root (copied). PST_E_NOMEM,
 * PST_E_INVAL (no endpoint); cb is not called then. */
int pst_fetch_start(pst_node *n, const pst_fetch_job *job, const char *maildir,
                    pst_fetch_done_cb cb, void *user, pst_fetch_conn **out);
/* Closes everything of c without calling its callback; c is invalid after. */
void pst_fetch_cancel(pst_fetch_conn *c);

/* ---- sender side: outbox.c, send.c, fetch_server.c ------------------------
 * Message bodies (ciphertext) live in DIR/outbox/<msg id hex>; the store
 * keeps what is needed to serve, notify and report them. Every handle, work
 * request and connection of the sender side holds a reference on the outbox
 * (pst_outbox_hold/release); the outbox holds one node handle reference until
 * pst_outbox_stop has run and the last reference is gone. */
#define PST_OUTBOX_DIRNAME "outbox"
#define PST_SPOOL_DIRNAME "spool"
#define PST_OUTBOX_NOTIFY_MAX 4096u /* notifications kept alive at once */
#define PST_OUTBOX_RENOTIFY_MAX_S 590u
#define PST_OUTBOX_GC_MS 60000u
#define PST_OUTBOX_KEEP_DONE_S (30u * 86400u) /* finished messages stay listed */
#define PST_SPOOL_KEEP_S 86400u               /* orphaned spool files are removed after */
struct pst_outbox_entry;
struct pst_fetch_server;
struct pst_send_op;
struct pst_outbox {
    pst_node *node;
    unsigned refs;
    bool stopping;
    atomic_int cancel; /* set by stop: encryption and minting give up */
    bool timers_init;
    uv_timer_t renotify_timer, gc_timer;
    struct pst_outbox_entry *entries; /* notifications kept alive */
    unsigned n_entries, cap_entries;
    struct pst_fetch_server *fetch;
    struct pst_send_op *sends; /* in flight, to fail them on stop */
    unsigned sends_active;
    unsigned rcpts_reserved;  /* notification slots promised to sends in flight */
    char dir[PST_PATH_MAX];   /* DIR/outbox */
    char spool[PST_PATH_MAX]; /* DIR/spool */
};
void pst_outbox_hold(struct pst_outbox *o);
/* Remembers that msg_id was sent with --pow never: never escalated. */
void pst_outbox_pow_never(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES]);
/* Frees the outbox at the last reference once stopping. */
void pst_outbox_release(struct pst_outbox *o);
/* The fetch server's verdict on a body it hashed before serving: damaged
 * (good false) is remembered for `postern outbox` and logged once; good
 * clears an earlier verdict. */
void pst_outbox_body_checked(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES], bool good);
/* Unix seconds since the fetch server found msg_id's body damaged, or 0. */
uint64_t pst_outbox_body_damaged_since(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES]);
/* `outbox retry` of one pending recipient row: its notification is put again
 * now and its back-off starts over (a kept entry keeps its bytes: they may
 * carry a minted stamp). PST_E_BUSY when no notification slot is free. */
int pst_outbox_reoffer(pst_node *n, const pst_store_outbox_row *row);
/* DIR/outbox/<hex of msg_id> into out[cap]. */
int pst_outbox_body_path(const struct pst_outbox *o, const uint8_t msg_id[PST_HASH_BYTES],
                         char *out, size_t cap);
/* Starts keeping rcpt's notification (outer bytes) alive: a put now, then
 * re-puts with back-off until untracked or expires. PST_E_BUSY when
 * PST_OUTBOX_NOTIFY_MAX notifications are already kept. */
int pst_outbox_track(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES], const uint8_t rcpt[32],
                     const uint8_t *notification, size_t len, uint64_t expires);
/* Stops notifying rcpt (NULL: every recipient) of msg_id. */
void pst_outbox_untrack(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES], const uint8_t *rcpt);
/* After a state change of msg_id: deletes its body once nobody may fetch it. */
void pst_outbox_settle(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES]);
/* Free notification slots for a new send (PST_OUTBOX_NOTIFY_MAX minus kept
 * and reserved ones). */
unsigned pst_outbox_free_slots(const pst_node *n);
/* send.c: fails the sends in flight (their replies say the node stops). */
void pst_send_stop(pst_node *n);
/* fetch_server.c: listens on cfg.fetch_port (sets n->fetch_port); stop
 * closes the listener and every connection. */
int pst_fetch_server_start(pst_node *n, char *err, size_t errcap);
void pst_fetch_server_stop(pst_node *n);

/* ---- trust (trust.c) --------------------------------------------------------- */
void pst_node_cmd_trust_set(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                            void *user);
void pst_node_cmd_trust_rm(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                           void *user);
void pst_node_cmd_trust_list(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                             void *user);
void pst_node_cmd_vouch(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                        void *user);
void pst_node_cmd_unvouch(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                          void *user);
/* One voucher's newest endorsement of a key. */
typedef struct {
    uint8_t voucher[32];
    unsigned tier; /* pst_endorsement_tier; 0 = withdrawn */
    uint64_t created, expires;
    bool voucher_is_contact;
    pst_store_tier voucher_tier; /* when voucher_is_contact */
} pst_vouch;
/* vouches valid during the call; more = values not examined (caps). */
typedef void (*pst_vouches_cb)(void *user, int status, const pst_vouch *vouches, unsigned n,
                               uint64_t more);
/* Gets and checks the vouch slot of subject. 0 and cb once, or an error and
 * no cb. */
int pst_trust_vouches(pst_node *n, const uint8_t subject[32], pst_vouches_cb cb, void *user);
/* The same, but cb comes at the latest wait_ms (0: no limit) after the
 * call: then with status PST_E_TIMEOUT, the vouches found so far plus the
 * contacts' vouches remembered from earlier reads of subject, and more the
 * larger of the values not examined so far and by the last complete read.
 * The read goes on and refreshes that memory. */
int pst_trust_vouches_within(pst_node *n, const uint8_t subject[32], uint32_t wait_ms,
                             pst_vouches_cb cb, void *user);
/* True when v makes its subject "known": a current vouch by a trusted contact. */
bool pst_vouch_makes_known(const pst_vouch *v, uint64_t now);
/* Is pk vouched for (known through vouch_depth)? 1 yes, 0 no, -1 not looked
 * up yet (or the answer is older than the cache lifetime). */
int pst_trust_vouched(pst_node *n, const uint8_t pk[32]);
/* Looks pk's vouches up (bounded: PST_E_BUSY when too many run) and caches
 * the answer; done (may be NULL) runs when it is known. */
int pst_trust_vouch_check(pst_node *n, const uint8_t pk[32], void (*done)(pst_node *, void *),
                          void *user);
/* Drops the cached vouch answers: every one (pk NULL; the contact list
 * changed, so lookups in flight are not cached either) or pk's. Lookups
 * in flight for pk are kept. */
void pst_trust_forget_answers(pst_node *n, const uint8_t pk[32]);
/* True while a vouch lookup for pk runs. */
bool pst_trust_vouch_pending(pst_node *n, const uint8_t pk[32]);
/* Could the vouch-slot value val change subject's answer to "vouched"? An
 * endorsement of subject, not a withdrawal, signed (verified: one Ed25519)
 * by a trusted contact; with vouch_depth >= 2 also one by anyone not
 * blocked (unverified: the lookup this leads to checks it). */
bool pst_trust_vouch_news(pst_node *n, const uint8_t subject[32], const uint8_t *val, size_t len);
/* The contact list changed (trust set / rm): vouch answers are dropped and
 * the notifications the gate refused lately are looked at again
 * (inbox_gate.c; docs/TRUST.md). */
void pst_inbox_trust_changed(pst_node *n);
void pst_trust_free(pst_node *n);
/* Appends (as strings) the notices not shown yet: contacts whose key was
 * revoked, and a replacement key they name, which is never trusted by
 * itself. Marks them shown. Returns how many. */
unsigned pst_trust_notices(pst_node *n, pst_value *arr);
/* Appends one map per vouch to arr (for key get). */
void pst_vouches_describe(pst_value *arr, const pst_vouch *v, unsigned count, pst_node *n);

/* control.c: the unix socket server */
int pst_ctrl_server_start(pst_node *n, char *err, size_t errcap);
void pst_ctrl_server_stop(pst_node *n);

/* commands.c: id, status, revoke */
void pst_node_cmd_id(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply, void *user);
void pst_node_cmd_status(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);
void pst_node_cmd_revoke(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);

/* For command handlers: reply_user is the user their reply callback came
 * with (the dispatcher's pst_node_req; valid until the reply).
 * pst_node_progress sends body (borrowed) as an interim answer, or nothing
 * when the client takes no progress or went away. pst_node_on_cancel
 * registers fn(arg) to run at most once if the client cancels before the
 * reply (NULL fn unregisters); when it already did, fn runs before this
 * returns. fn may reply. */
void pst_node_progress(void *reply_user, const pst_value *body);
void pst_node_on_cancel(void *reply_user, void (*fn)(void *arg), void *arg);

/* Replies with an error status and message. */
void pst_reply_error(pst_node_reply_cb reply, void *user, uint64_t id, int status, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
/* Replies with body (then freed) and status, or with an error when the
 * tree's builder failed (b NULL or its sticky error). */
void pst_reply_tree(pst_node_reply_cb reply, void *user, pst_value *b, int status);
/* Replies with status 0 and body (borrowed). */
void pst_reply_ok(pst_node_reply_cb reply, void *user, uint64_t id, uint64_t status,
                  pst_value *body);

uint64_t pst_now(void);
void pst_node_handle_ref(pst_node *n);
void pst_node_handle_unref(pst_node *n);

#endif
