/* node/mail: the mail room. Sender side: the outbox (bodies kept until
 * fetched, notifications kept alive until receipts come), `send` and its
 * worker, the fetch server. Recipient side: the inbox pipeline (gate,
 * park-for-vouch, fetch scheduling, delivery, purge), the fetch client, the
 * Maildir, message formatting. The clock probe asks a contact's fetch
 * server for its signed time (wired into core by node.c).
 *
 * Stands on keys/ and core/. Replies to control requests are built in
 * control/; this room reports through its own callbacks. */
#ifndef PST_MAIL_H
#define PST_MAIL_H

#include "pst_keys.h"
#include "pst_maildir.h"
#include "pst_smtp_password.h"

/* ---- mail ------------------------------------------------------------------
 * Sender side: the outbox keeps notifications alive until receipts arrive;
 * the fetch server (started right after it, stopped right before it, both
 * by node.c) binds the fetch port (n->fetch_port is set on return, it goes
 * into our KeyRecord) and serves fetches; the sends in flight are failed by
 * pst_send_stop before either stops. Recipient side: listens on and polls our inbox slot,
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
/* That name for message id, into name. */
void pst_inbox_why_name(const uint8_t id[PST_HASH_BYTES], char name[PST_INBOX_WHY_NAME_BUFSIZE]);
/* Tries message id (a PENDING row) now, back-off and strikes reset: after
 * `postern inbox retry`. */
void pst_inbox_wake(pst_node *n, const uint8_t id[PST_HASH_BYTES], uint64_t expires);
/* When to try a message again after a failed attempt: in backoff_ms, but
 * never past the notification's expiry (the last try comes a little before
 * it). Pure. false (and *wait_ms 0) once now_s >= expires_s: give up. */
bool pst_inbox_next_try(uint64_t now_s, uint64_t expires_s, uint32_t backoff_ms, uint64_t *wait_ms);

/* fetch_client.c: one TCP exchange with a sender's node, recipient side:
 * FetchRequest, verified FetchResponse, the ciphertext streamed through the
 * message-id hasher and the decryptor into a Maildir tmp/ file, delivery
 * (fsync, rename, inbox row DELIVERED), then the Receipt and its
 * acknowledgement (inbox row receipt_sent). With receipt_only the first
 * frame is the Receipt of a message stored earlier. */
#define PST_FETCH_CLIENT_TICK_MS 1000u /* granularity of the idle/total timeouts */
typedef struct pst_fetch_conn pst_fetch_conn;

/* Group commit of deliveries (fetch_group.c): fetches whose bodies were
 * checked, fsynced and renamed into new/ in the same turn of the loop share
 * one fsync per new/ directory and one store commit of their DELIVERED
 * rows; only after both does any of them send its receipt. Nothing waits
 * for company: the group is flushed at the end of the loop's poll phase in
 * which its first member came (a message that finishes alone commits at
 * once), and when PST_FETCH_GROUP_MAX members wait. Caller-owned; init and
 * close on the loop. */
#define PST_FETCH_GROUP_MAX 16u
typedef struct {
    pst_node *node;
    uv_check_t check; /* flushes after the poll phase that queued a member */
    uv_idle_t idle;   /* keeps that poll from blocking while a member waits */
    pst_fetch_conn *waiting[PST_FETCH_GROUP_MAX];
    unsigned n_waiting;
} pst_fetch_group;
/* Initialises both handles (each holds a node handle reference until its
 * close). Cannot fail. */
void pst_fetch_group_init(pst_node *n, pst_fetch_group *g);
/* Forgets the waiting members (their fetches are being cancelled) and
 * closes both handles with close_cb (h->data is set to data first). */
void pst_fetch_group_close(pst_fetch_group *g, void *data, uv_close_cb close_cb);
typedef struct {
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t sender[PST_SIGN_PK_BYTES]; /* signs the responses and authors the message */
    /* the sender's identity: sender itself, or the identity whose device
     * sender is (a type-16 notification); all zero reads as sender */
    uint8_t identity[PST_SIGN_PK_BYTES];
    uint8_t msg_key[PST_MSGKEY_BYTES]; /* secret: the client wipes its copy */
    uint64_t size;                     /* ciphertext bytes the notification announced */
    uint32_t n_endpoints;
    char endpoints[PST_NOTIFY_ENDPOINTS_MAX][PST_NOTIFY_ENDPOINT_MAX + 1];
    char folder[PST_MAILDIR_FOLDER_MAX + 1]; /* where to deliver; must exist */
    bool receipt_only;
    uint64_t stored_at; /* receipt_only: when the message became durable */
    /* the first attempt ever to deliver it (the store has none on record):
     * no copy can be in the Maildir, the commit does not search for one */
    bool first_try;
    /* deliveries commit together in this group (NULL: each at once) */
    pst_fetch_group *group;
    /* optional, called once (with the user of pst_fetch_start) when the
     * receipt is written and only the sender's acknowledgement is awaited:
     * the message is delivered, and the fetch no longer needs its slot */
    void (*acking)(void *user);
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
    /* the Maildir commit (rename) was tried: a copy may exist */
    bool commit_reached;
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
 * Message bodies (ciphertext) live in DIR/outbox/<msg id hex>, or, up to
 * PST_STORE_BODY_INLINE_MAX bytes, in the store with their rows; the store
 * keeps what is needed to serve, notify and report them. Every handle, work
 * request and connection of the sender side holds a reference on the outbox
 * (pst_outbox_hold/release); the outbox holds one node handle reference until
 * pst_outbox_stop has run and the last reference is gone. */
#define PST_OUTBOX_DIRNAME "outbox"
#define PST_SPOOL_DIRNAME "spool"
#define PST_OUTBOX_NOTIFY_MAX 4096u /* notifications kept alive at once */
#define PST_OUTBOX_GC_MS 60000u
#define PST_OUTBOX_KEEP_DONE_S (30u * 86400u) /* finished messages stay listed */
#define PST_SPOOL_KEEP_S 86400u               /* orphaned spool files are removed after */
struct pst_outbox;
/* Takes one reference on the outbox (released by pst_outbox_release). */
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
/* The devices msg_id was sealed to for recipient rcpt (an identity with a
 * device list), as an array "devices" added to the map rcpt_map, one map
 * per device: id, name ("" when the cached
 * list no longer names it), state (delivered, fetched, waiting, revoked),
 * serve_count, served, received. Returns how many (0: no device list, no
 * array added); each map is at most PST_OUTBOX_DEVICE_NODES values.
 * (fetch_device.c) */
#define PST_OUTBOX_DEVICE_NODES 8u
unsigned pst_outbox_devices_describe(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES],
                                     const uint8_t rcpt[PST_SIGN_PK_BYTES], pst_value *rcpt_map);
/* `outbox retry` of one pending recipient row: its notification is put again
 * now and its back-off starts over (a kept entry keeps its bytes: they may
 * carry a minted stamp). PST_E_BUSY when no notification slot is free. */
int pst_outbox_reoffer(pst_node *n, const pst_store_outbox_row *row);
/* True when msg_id's body is gone: no file DIR/outbox/<hex> and no copy in
 * the store (outbox_body.c). */
bool pst_outbox_body_gone(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES]);
/* DIR/outbox/<hex of msg_id> into out[cap]. */
int pst_outbox_body_path(const struct pst_outbox *o, const uint8_t msg_id[PST_HASH_BYTES],
                         char *out, size_t cap);
/* Starts keeping rcpt's notification (outer bytes) alive: a put now (and
 * the same bytes as a direct hint to rcpt's endpoints, hint_int.h), then
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
/* send.c: one message to send, as `send` asked for it (parsed by
 * control/send_cmd.c). */
/* Recipients of one message, from any door (the control request, SMTP).
 * control/send_cmd.c checks that a request can carry them. */
#define PST_SEND_RCPTS_MAX 30u
/* Bytes of the text a send's failure is told in (pst_send_done_cb). */
#define PST_SEND_ERROR_MAX 512u
typedef enum { PST_SEND_POW_AUTO, PST_SEND_POW_ALWAYS, PST_SEND_POW_NEVER } pst_send_pow;
typedef struct {
    char query[PST_ADDRESS_MAX + 1]; /* a fingerprint or an address */
    pst_store_rcpt_kind kind;
} pst_send_rcpt;
typedef struct {
    char path[PST_PATH_MAX]; /* the message file: absolute */
    /* use_fd: read the message from fd instead of path (an open file the
     * caller keeps open and unchanged until done: SMTP's in-memory spool;
     * pst_send_new takes its own dup, read from offset 0; path is then only
     * the name used in errors and is never removed) */
    bool use_fd;
    int fd;
    pst_send_pow pow;
    /* 0 for mail; a PST_NOTIFY_FLAG_SYNC_* for a sync record sent to our
     * own identity (sync.c): sealed to our other devices only */
    uint32_t sync_flags;
    unsigned n_rcpts; /* 1..PST_SEND_RCPTS_MAX */
    pst_send_rcpt rcpts[PST_SEND_RCPTS_MAX];
} pst_send_request;
/* PST_OK when this node can send now; else an error and why (a sentence
 * for the user) in why[cap]. */
int pst_send_refusal(const pst_node *n, char *why, size_t cap);
/* How a send ends, exactly once: error NULL and body the acknowledgement
 * (the message is durable), or error the text for the user and body NULL or
 * the recipients with their problems. body is borrowed: valid during the
 * call. */
typedef void (*pst_send_done_cb)(void *user, const char *error, pst_value *body);
/* While stamps are minted, every few hundred ms until done: the mint's
 * progress (body borrowed). */
typedef void (*pst_send_progress_cb)(void *user, const pst_value *body);
typedef struct pst_send_op pst_send_op;
/* Makes the operation that sends req (copied; pst_send_refusal said
 * PST_OK) in *out; nothing runs and no callback comes until
 * pst_send_begin. PST_E_INVAL when req has no recipient or more than
 * PST_SEND_RCPTS_MAX, PST_E_NOMEM (then *out is NULL). progress may be
 * NULL. */
int pst_send_new(pst_node *n, const pst_send_request *req, pst_send_done_cb done,
                 pst_send_progress_cb progress, void *user, pst_send_op **out);
/* Starts op: resolves the recipients, encrypts, mints, stores durably, and
 * calls done exactly once (possibly during the call). op frees itself once
 * done has come and its lookups and worker have ended. */
void pst_send_begin(pst_send_op *op);
/* The client cancelled (before done only): until the commit nothing is
 * stored or sent and done comes with "not sent: cancelled" (at once, or
 * when the worker stops); after the commit it is ignored. */
void pst_send_cancel(pst_send_op *op);
/* send.c: fails the sends in flight (their replies say the node stops). */
void pst_send_stop(pst_node *n);
/* fetch_server.c: listens on cfg.fetch_port (sets n->fetch_port); stop
 * closes the listener and every connection. */
int pst_fetch_server_start(pst_node *n, char *err, size_t errcap); /* after pst_outbox_start */
void pst_fetch_server_stop(pst_node *n);

/* smtp_server.c: SMTP submission (docs/SMTP.md) on cfg.smtp_address and
 * cfg.smtp_port (sets n->smtp_port; nothing when the port is 0 and not
 * "any"), after pst_outbox_start; makes HOME/smtp.password when missing.
 * Errors name the address and port in err. stop closes the listener and
 * every session (a send in flight is cancelled) before pst_send_stop. */
int pst_smtp_server_start(pst_node *n, char *err, size_t errcap);
void pst_smtp_server_stop(pst_node *n);

/* lmtp_server.c: LMTP (RFC 2033, docs/LMTP.md) on the unix socket
 * cfg.lmtp_path (relative to the home unless absolute; nothing when ""),
 * mode 0660; sets n->lmtp_path. A stale socket file left by a crash is
 * replaced (the home's lock says no other node of this home runs); any
 * other file there is an error. Mail goes into the Maildir (INBOX's tmp,
 * then .Unknown or .Legacy). Stop removes the socket file. */
int pst_lmtp_server_start(pst_node *n, char *err, size_t errcap);
void pst_lmtp_server_stop(pst_node *n);

/* relay.c, relay_worker.c: Internet mail out through the smarthost
 * (docs/SMARTHOST.md). start does nothing without cfg.smarthost; else it
 * reads cfg.smarthost_auth_file (refused unless mode 0600: the message says
 * so), makes DIR/relay and resumes the queue the store keeps. Each Internet
 * recipient gets its own copy with its own X-Hashcash stamp, sent by libcurl
 * on a worker thread (never on the loop); failures are retried with backoff
 * until cfg.smarthost_giveup_s after submission, then (or at once on a 5xx
 * from the smarthost) a bounce with the original attached goes into the
 * sender's INBOX. stop cancels a transfer in flight (it is retried after a
 * restart: nothing acknowledged is lost). */
int pst_relay_start(pst_node *n, char *err, size_t errcap);
void pst_relay_stop(pst_node *n);
/* True when addr (normalized) goes to the smarthost once no Postern key
 * claims it: a smarthost is configured and addr is not @postern.invalid. */
bool pst_relay_takes(const pst_node *n, const char *addr);
/* DIR/relay: where a send writes the plaintext copy (tmp-*) for the
 * smarthost. Only valid while pst_relay_takes can be true. */
const char *pst_relay_dir(const pst_node *n);
/* Renames tmp (in DIR/relay) to DIR/relay/<msg id hex> and fsyncs the
 * directory; final[cap] gets the new name (even on a failed fsync, so the
 * caller can remove it). PST_E_IO with errno set. */
int pst_relay_commit_body(pst_node *n, const char *tmp, const uint8_t msg_id[PST_HASH_BYTES],
                          char *final, size_t cap);
/* Queues rcpt for msg_id (inside the caller's store batch). */
int pst_relay_queue(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES], const char *rcpt,
                    const char *sender, uint64_t now);
/* Looks at the queue now (after a commit added to it). */
void pst_relay_kick(pst_node *n);
/* Adds the smarthost's settings and queue length to a status map (key
 * "smarthost"), and the newest limit Internet recipients with their state
 * to arr (for `outbox`). Errors go into the value trees. */
void pst_relay_status(pst_node *n, pst_value *map);
void pst_relay_list(pst_node *n, pst_value *arr, unsigned limit); /* newest first */

/* True while the sender side takes new work (started, not stopping). */
bool pst_outbox_accepting(const pst_node *n);

/* inbox_gate.c: the contact list changed (trust set / rm): vouch answers are
 * dropped and the notifications the gate refused lately are looked at again
 * (docs/TRUST.md). */
void pst_inbox_trust_changed(pst_node *n);

/* ---- sync between the devices of one identity: sync.c (issue 13) --------- */
#define PST_SYNC_FOLDER ".Sync" /* trust records land here, applied and removed */
#define PST_SENT_FOLDER ".Sent" /* copies of what our other devices sent */
/* After a trust change (set or rm) of contact pk on this device: sends the
 * contact's new state to our other current devices (no-op without any).
 * Failures are logged and counted (sync.trust_unsent), never the
 * caller's. */
void pst_sync_trust_changed(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES]);
/* Applies every trust record delivered into MAILDIR/.Sync (a bounded
 * number per call) and removes it; a record older than the contact's last
 * change is dropped, a malformed one counted (rejected.sync.*) and
 * removed. */
void pst_sync_apply(pst_node *n, const char *maildir_root);

/* clock_probe.c: asks the fetch server of in's sender (a contact whose
 * notification was refused for its time) for that message once, so the
 * sender's node sees our signed time and learns its clock disagrees. */
void pst_clock_probe(pst_node *n, const pst_notify_inner *in);
/* Closes the probes in flight (node stop). */
void pst_clock_probe_stop(pst_node *n);
#endif
