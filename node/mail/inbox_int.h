/* Private to the recipient side's files (inbox.c: the pipeline, start and
 * stop; inbox_gate.c: the trust gate and strangers parked for a vouch
 * answer; inbox_jobs.c: fetch jobs, back-off, delivery bookkeeping). One
 * struct pst_inbox owned by inbox.c; everything runs on the loop. */
#ifndef PST_INBOX_INT_H
#define PST_INBOX_INT_H

#include "pst_mail.h"
#include "pst_hashcash.h"
#include "pst_seen.h"
#include "recent_int.h"

#define PST_INBOX_SEEN_MAX 8192u      /* values remembered per generation (two) */
#define PST_INBOX_SEEN_ROTATE_S 1800u /* so a sender still notifying hears from us again */
#define PST_INBOX_JOBS_MAX 1024u      /* jobs in memory; the rest wait in the store */
#define PST_INBOX_SUSPECTS_MAX 65536u /* ids held by may_have_copy, 2 MiB */
/* Connections to senders: PST_INBOX_FETCHES_MAX fetching, and up to
 * PST_INBOX_ACKING_MAX more that only wait for a receipt's
 * acknowledgement; together one under a sender's default
 * fetch_conns_per_ip (8), for a connection it has not closed yet. */
#define PST_INBOX_FETCHES_MAX 6u
#define PST_INBOX_ACKING_MAX 1u
#define PST_INBOX_RETRY_MIN_MS 5000u
/* after "busy" from a sender: doubling from this (jittered) up to the above */
#define PST_INBOX_BUSY_RETRY_MS 100u
#define PST_INBOX_RETRY_MAX_MS 600000u
#define PST_INBOX_LAST_TRY_MS 5000u /* the last try before expiry comes this early */
/* A verbatim re-put of a notification we hold wakes its job at most this
 * often: anyone can copy a value from our slot and put it again. */
#define PST_INBOX_REPUT_WAKE_MS 30000u /* = the sender's shortest renotify default */
/* A sender that verifiably broke the protocol gets this many tries; a busy,
 * unreachable or overloaded one is retried with back-off until the
 * notification expires (fetch_client.c decides which is which). */
#define PST_INBOX_PROTO_FAILS_MAX 3u
#define PST_INBOX_POLL_RETRY_MS 5000u
#define PST_INBOX_POLL_DEFER_MAX_MS 60000u /* a busy listen puts the get off at most this long */
#define PST_INBOX_JOIN_WAIT_MS                                                                     \
    100u /* first look for a peer's answer; doubles up to a poll interval */
#define SEEN_KEY PST_SEEN_KEY
#define SEEN_SLOTS (2u * PST_INBOX_SEEN_MAX)
#define PST_INBOX_WAITING_MAX 8192u     /* strangers' notifications waiting for a vouch answer */
#define PST_INBOX_VOUCH_LOOKUPS 4u      /* = keys/trust_int.h's PST_VOUCH_CHECKS_MAX */
#define PST_INBOX_VOUCH_STUCK_MS 30000u /* a lookup whose answer never came back to us */

/* Trust changes count for notifications refused lately (inbox_gate.c): */
#define PST_INBOX_REFUSED_MAX 1024u       /* refused by the gate, remembered to look at again */
#define PST_INBOX_WATCHES 8u              /* strangers' vouch slots listened to at once */
#define PST_INBOX_WATCH_MS 600000u        /* how long one is listened to */
#define PST_INBOX_WATCH_KEEP_MS 60000u    /* a watch this young is not taken for another */
#define PST_INBOX_WATCH_RECHECK_MS 10000u /* at most one vouch lookup per watch this often */

/* A notification the gate refused (no_stamp, stamp_too_weak, blocked): its
 * seen key is forgotten when trust changes, so its next read is judged again. */
typedef struct {
    uint8_t key[SEEN_KEY];
    uint8_t signer[PST_SIGN_PK_BYTES];
} refused_value;

/* A listen on the vouch slot of a stranger we refused: a new vouch by a
 * trusted contact admits its notifications still in our slot. */
typedef struct {
    struct pst_inbox *ib;
    uint8_t pk[PST_SIGN_PK_BYTES];
    pst_dht_listen_handle *h; /* NULL: free */
    uint64_t started_ms, checked_ms;
    bool news;     /* a value that may vouch for pk came: look pk up again */
    bool checking; /* that lookup runs */
} vouch_watch;

/* A stranger's notification, opened and verified, parked until we know
 * whether a trusted contact vouches for its sender (see pst_inbox__wait_add). */
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
    /* bumped at every start: an answer to an earlier use of this slot (a
     * lookup reset as stuck, or freed by a watch's answer) is ignored */
    uint32_t gen;
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
    bool has_key;                      /* key: the seen key of the value that made this job */
    uint8_t key[SEEN_KEY];             /* (or re-notified it last), so a verbatim re-put finds it */
    uint64_t reput_woken_ms;           /* last wake by such a re-put */
    uint8_t sender[PST_SIGN_PK_BYTES]; /* set by the first start */
    bool relook_pending;               /* a lookup of the sender's KeyRecord runs */
    uint32_t busy_ms;                  /* the last wait after a "busy" answer */
    pst_fetch_conn *conn;
    bool acking; /* conn only waits for the sender's acknowledgement */
} job;

/* Device-list look-ups at once, and how many senders' recent look-ups are
 * remembered (a second unknown device of one sender within
 * PST_INBOX_DEVLIST_AGAIN_S is refused without another look-up). */
#define PST_INBOX_DEVLIST_RUNNING 4u
#define PST_INBOX_DEVLIST_HELD 32u /* values kept to judge again when a look-up ends */
#define PST_INBOX_DEVLIST_RECENT 16u
#define PST_INBOX_DEVLIST_AGAIN_S 60u /* also the longest a revocation may go unseen */

/* A notification held for a look-up of its sender's device list. */
typedef struct held_value {
    uint8_t sender[PST_SIGN_PK_BYTES];
    size_t len;
    uint8_t val[PST_DHT_VALUE_MAX];
} held_value;

struct pst_inbox {
    pst_node *node;
    char root[PST_PATH_MAX];
    char resource[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE];
    pst_dht_listen_handle *listen;
    uv_timer_t poll_timer, pump_timer, join_timer; /* join_timer: the first read waits for a peer */
    uint64_t join_wait_ms;                         /* its next wait, doubling */
    bool join_waited;                              /* joined, or gave up waiting */
    int timers_open;
    bool get_in_flight, get_ok_once, sweep_receipts;
    pst_seen seen; /* node/core/seen.c, in seen_mem */
    void *seen_mem;
    job *jobs;
    /* running: connections fetching or sending a receipt, at most
     * PST_INBOX_FETCHES_MAX; acking: connections that only wait for the
     * acknowledgement of a receipt (the sender answers once the receipt is
     * durable, which may wait for its next commit), which take no fetch
     * slot, at most PST_INBOX_ACKING_MAX more */
    unsigned n_jobs, running, acking;
    waiting *wait;                            /* ring of PST_INBOX_WAITING_MAX */
    uint64_t wait_head, wait_next, wait_tail; /* [head, tail); next: first not asked */
    vouch_lookup lookups[PST_INBOX_VOUCH_LOOKUPS];
    uint64_t listen_new_ms, get_started_ms; /* last new value by listen; last get */
    uint32_t get_values;                    /* values the get in flight handed over */
    bool poll_forced;                       /* read the slot at the next poll, busy or not */
    bool own_turn;          /* the next poll reads one of our own slots, not the inbox */
    refused_value *refused; /* ring of PST_INBOX_REFUSED_MAX */
    uint64_t refused_n;     /* values added; the ring holds the last ones */
    vouch_watch watches[PST_INBOX_WATCHES];
    /* messages that may have a copy in the Maildir the store does not
     * record (inbox_copies.c): pending rows an earlier run
     * attempted, and fetches of this run that reached the rename. Sorted. */
    uint8_t (*suspects)[PST_HASH_BYTES];
    size_t n_suspects, cap_suspects;
    bool suspects_loaded, suspects_all; /* all: over the cap, search always */
    /* device-list look-ups for notifications signed by a device we do not
     * know yet (inbox_device.c): how many run, and recent ones per sender */
    unsigned devlist_running;
    pst_recent_key devlist_asked[PST_INBOX_DEVLIST_RECENT];
    struct held_value *held; /* PST_INBOX_DEVLIST_HELD, made at first use */
    unsigned n_held;
    pst_fetch_group group; /* deliveries commit together (fetch_group.c) */
};

/* What a notification's stamp paid for; verified before the seal is opened. */
typedef struct {
    bool present;
    bool spent; /* already taken: only a re-notification of that same message passes */
    /* bound to these sealed bytes for us, but dated outside the window (a
     * re-notification of a message we hold, days later): refused as
     * stamp_date unless it is a duplicate. present is false then. */
    bool stale;
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

/* ---- inbox.c ---- */

/* pst_store_inbox_get/list callback: copies the row into user (row_copy). */
int pst_inbox__copy_row(const pst_store_inbox_row *row, void *user);

/* inbox_device.c */
/* Opens a notification with this device's box key (then the identity's,
 * when this home holds a different one: a device list may name the
 * identity key itself). pst_notify_open's errors. */
int pst_inbox__open(pst_node *n, const pst_notify *outer, pst_notify_inner *in);
/* For an inner signed by a device of in->sender: PST_E_REVOKED
 * (rejected.inbox.device_revoked) if the cached list revokes it; else, when
 * the sender's list was looked up in the last PST_INBOX_DEVLIST_AGAIN_S,
 * PST_OK if the device is current in it and PST_E_SIGNER
 * (rejected.inbox.unknown_device) if not; otherwise PST_E_BUSY: a look-up
 * starts (a few at a time) and a copy of val is held, judged again when a
 * look-up ends. An identity-signed inner is PST_OK. */
int pst_inbox__device_check(struct pst_inbox *ib, const pst_notify_inner *in, const uint8_t *val,
                            size_t len);
/* (inbox.c) A value held back for a device-list look-up, judged again: the
 * same pipeline as a new value (skipped if seen since). */
void pst_inbox__value_again(struct pst_inbox *ib, const uint8_t *val, size_t len);
/* The first 8 bytes of id in hex, for log lines. */
void pst_inbox__hex8(const uint8_t id[PST_HASH_BYTES], char out[17]);
/* Counts rejected.inbox.REASON (reason NULL: named after err) and returns err. */
int pst_inbox__reject(pst_node *n, int err, const char *reason);
/* The poll timer: reads the inbox slot (or one of our own), sweeps the
 * store for work, and pumps the parked strangers. */
void pst_inbox__on_poll(uv_timer_t *t);

/* ---- inbox_gate.c ---- */

/* The sender's tier (PST_STORE_TIER_*; our own key counts as trusted). */
int pst_inbox__sender_tier(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES]);
/* The Maildir folder pk's mail goes to with stamp, or NULL with *reason set
 * (the rejection's name); *ask set when a vouch lookup could still admit it. */
const char *pst_inbox__route(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES],
                             const stamp_info *stamp, const char **reason, bool *ask);
/* Parks a stranger's verified notification (seen key, signer, stamp) until
 * we know whether a trusted contact vouches for the signer. PST_E_BUSY
 * (counted vouch_busy) when the ring is full. */
int pst_inbox__wait_add(struct pst_inbox *ib, const uint8_t key[SEEN_KEY],
                        const uint8_t signer[PST_SIGN_PK_BYTES], const stamp_info *stamp);
/* Starts vouch lookups for parked senders, at most PST_INBOX_VOUCH_LOOKUPS. */
void pst_inbox__wait_pump(struct pst_inbox *ib);
/* Remembers a value refused by route() for reason (its seen key and
 * signer), so a trust change judges it again; for a stranger refused for
 * want of a stamp, also watches the signer's vouch slot (bounded). */
void pst_inbox__refused(struct pst_inbox *ib, const uint8_t key[SEEN_KEY],
                        const uint8_t signer[PST_SIGN_PK_BYTES], const char *reason);
/* With the poll: ends old watches, runs vouch lookups put off. */
void pst_inbox__gate_tick(struct pst_inbox *ib);
/* At stop: cancels the watches, frees the refused ring. */
void pst_inbox__gate_stop(struct pst_inbox *ib);
/* Looks the sender's key record up again (kept fresh for receipts). */
void pst_inbox__refresh_sender(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES]);

/* ---- inbox_jobs.c ---- */

/* Schedules (or keeps) a fetch job for id: a fetch, or only the receipt;
 * now: at once rather than at its back-off time; key (NULL: none): the seen
 * key of the notification that asked for it. */
void pst_inbox__job_want(struct pst_inbox *ib, const uint8_t id[PST_HASH_BYTES], bool receipt_only,
                         uint64_t expires, bool now, const uint8_t *key);
/* A value we have seen came again (the seen set skipped it): when it is the
 * notification of a job waiting out its back-off, the sender is back (it
 * re-puts when it comes online): try now, at most every
 * PST_INBOX_REPUT_WAKE_MS per job. Counted inbox.reput_wakes. */
void pst_inbox__job_reput(struct pst_inbox *ib, const uint8_t key[SEEN_KEY]);
/* Rebuilds jobs from the store (PENDING rows, and with receipts DELIVERED
 * rows whose receipt is not acknowledged yet). */
void pst_inbox__sweep(struct pst_inbox *ib, bool receipts);

/* ---- inbox_copies.c ---- */

/* Whether a copy of id may be in the Maildir without the store recording
 * it: only then does a delivery search every folder for it. Reads the
 * attempted PENDING and FAILED rows once, at the first call of the run. */
bool pst_inbox__may_have_copy(struct pst_inbox *ib, const uint8_t id[PST_HASH_BYTES]);
/* id's fetch reached the rename and was not recorded: search for it. */
void pst_inbox__suspect_add(struct pst_inbox *ib, const uint8_t id[PST_HASH_BYTES]);

/* ---- inbox_purge.c ---- */

/* Past expiry + this, a notification's replay is refused whatever our clock
 * did within the notification skew tolerance. */
#define PST_INBOX_PURGE_GRACE_S PST_NOTIFY_SKEW_MAX
#define PST_INBOX_PURGE_BATCH 1024u /* rows per poll */
/* Strips or deletes inbox rows past the replay window (one batch), with
 * their "why" notes. Errors are logged. */
void pst_inbox__purge(pst_node *n, uint64_t now);

#endif
