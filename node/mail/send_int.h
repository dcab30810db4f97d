/* The parts of a `send` operation shared by send.c (start, commit,
 * acknowledgement, progress, cancel: the loop side), send_resolve.c (the
 * recipients' lookups and their problems) and send_worker.c (filter,
 * encrypt, seal and mint: the worker thread). Private to node/mail/. */
#ifndef PST_SEND_INT_H
#define PST_SEND_INT_H

#include <stdatomic.h>

#include "pst_mail.h"
#include "pst_mailmsg.h"

#define SEND_RESOLVE_PARALLEL 4u
#define SEND_ERRMSG_MAX 300u
#define SEND_IO_CHUNK 65536u
#define PROGRESS_TICK_MS 250u
#define PROGRESS_AFTER_NS 1000000000ull /* quick mints show nothing */

typedef enum {
    RS_WAIT = 0,
    RS_OK,
    RS_NOT_FOUND,
    RS_REVOKED,
    RS_EXPIRED,
    RS_AMBIGUOUS, /* several valid keys claim the address */
    RS_NO_VALID,  /* keys claim the address, none of them valid */
    RS_ERROR,
    RS_FROM_FUTURE, /* its only record is too new for this machine's clock */
    RS_INTERNET,    /* no Postern key claims the address: the smarthost takes it */
} rcpt_state;

typedef struct {
    uint8_t pk[PST_SIGN_PK_BYTES];
    pst_key_status status;
} send_candidate;

typedef struct {
    struct pst_send_op *op;
    char query[PST_ADDRESS_MAX + 1];
    pst_store_rcpt_kind kind;
    rcpt_state state;
    bool by_address;
    bool duplicate; /* same key as an earlier recipient: merged into it */
    bool internet;  /* RS_INTERNET: queued for the smarthost, no key, no notification */
    unsigned n_cands;
    send_candidate cands[PST_RESOLVE_KEYS_MAX];
    uint8_t pk[PST_SIGN_PK_BYTES];
    uint8_t box_pk[PST_BOX_PK_BYTES];
    unsigned bits; /* stamp to mint, 0 = none */
    uint8_t notif[PST_NOTIFY_MAX];
    size_t notif_len;
    /* the recipient's current devices (send_devices.c): 0 = no device list,
     * one seal to box_pk (type 5); else one key seal per device (type 15) */
    uint32_t n_devs;
    uint8_t dev_pk[PST_NOTIFY_DEVICES_MAX][PST_SIGN_PK_BYTES];
    uint8_t dev_box[PST_NOTIFY_DEVICES_MAX][PST_BOX_PK_BYTES];
    uint32_t flags; /* PST_NOTIFY_FLAG_SYNC_*: a copy for our own other devices */
} send_rcpt;

typedef struct {
    uint8_t sign_sk[PST_SIGN_SK_BYTES];
    uint8_t msg_key[PST_MSGKEY_BYTES];
} send_secrets;

struct pst_send_op {
    struct pst_send_op *list_prev, *list_next;
    pst_node *node;
    struct pst_outbox *o;
    pst_send_done_cb done;
    pst_send_progress_cb progress; /* may be NULL */
    void *user;
    char path[PST_PATH_MAX];
    int in_fd; /* -1, or the dup of the request's fd (read instead of path) */
    bool spool_owned;
    pst_send_pow pow;
    uint32_t sync_flags; /* the request's: a sync record to our own devices */
    send_rcpt rcpts[PST_SEND_RCPTS_MAX];
    unsigned n_rcpts, next_rcpt, resolving, resolved;
    bool pumping, all_resolved;
    unsigned reserved;
    /* set on the loop by the client's cancel or the outbox stop; the
     * worker's encryption and mint poll it */
    atomic_int cancel;
    bool replied; /* the client has its answer (finish may come later) */
    /* mint progress: the worker writes, the ticker (on the loop) reads */
    unsigned stamps;      /* stamps to mint */
    atomic_uint minting;  /* rcpts index + 1 of the stamp being minted, 0 = none yet */
    atomic_uint stamp_no; /* 1..stamps */
    atomic_uint_least64_t mint_ns, stamp_ns; /* uv_hrtime: minting began, this stamp began */
    atomic_uint_least64_t hashes, hashes_ns; /* last report of the mint, and when */
    uv_timer_t *ticker;
    uint64_t last_rate; /* hashes/s of the previous stamp, until this one reports */
    /* worker inputs */
    char endpoint[PST_NOTIFY_ENDPOINT_MAX + 1];
    char from[PST_MAILMSG_VALUE_MAX + 1];
    char date[PST_MAILMSG_DATE_BUFSIZE];
    char message_id[PST_MAILMSG_MSGID_BUFSIZE];
    uint8_t box_pk[PST_BOX_PK_BYTES];       /* this device's */
    uint8_t identity_pk[PST_SIGN_PK_BYTES]; /* the sender named in a device-signed inner */
    uint64_t created, expires, max_bytes;
    send_secrets *sec;
    uv_work_t work;
    bool working;
    /* worker outputs */
    int err;
    char errmsg[SEND_ERRMSG_MAX];
    char tmp_path[PST_PATH_MAX];
    char spare[PST_PATH_MAX]; /* a spare file to write into (outbox_spare.c), or "" */
    bool placed;     /* the worker renamed tmp_path to the body's name and fsynced the directory */
    bool used_spare; /* the worker wrote into spare (tmp_path was spare until placed) */
    /* the whole ciphertext (size bytes, at most PST_STORE_BODY_INLINE_MAX)
     * when it is small enough for the store: no file then, tmp_path is "" */
    uint8_t *inline_body;
    /* Internet recipients: the filtered plaintext also goes to
     * DIR/relay/tmp-* (relay_tmp), renamed to DIR/relay/<msg id> at commit */
    unsigned n_internet;
    char relay_tmp[PST_PATH_MAX];
    uint8_t msg_id[PST_HASH_BYTES];
    uint64_t size;
    char subject[PST_MAILMSG_SUBJECT_MAX + 1];
    unsigned bcc_removed;
};

typedef struct pst_send_op send_op; /* pst_mail.h's pst_send_op */

/* A recipient that gets a Postern notification: not merged into an earlier
 * one, not an Internet address. */
static inline bool send_rcpt_postern(const send_rcpt *r) { return !r->duplicate && !r->internet; }

/* Sets the operation's error code and the message the client gets (the
 * last call wins; truncated to SEND_ERRMSG_MAX). Called on the worker, or on
 * the loop once the worker is done: never from both at once. */
void pst_send_set_err(send_op *op, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends op: closes its ticker, unlinks it from the outbox, returns its
 * reserved notification slots, wipes and frees it (and the secrets). */
void pst_send_finish(send_op *op);
/* Starts the recipients' lookups, SEND_RESOLVE_PARALLEL at a time, and calls
 * pst_send_resolved_all once all have answered. Re-entrant: a lookup may
 * answer before pst_resolve returns. (send_resolve.c) */
void pst_send_pump(send_op *op);
/* Every recipient must be exactly one valid key: true when so; else replies
 * with the problems (each query once, with its candidates), finishes op and
 * returns false. (send_resolve.c) */
bool pst_send_check_recipients(send_op *op);
/* A recipient's lookups are over (its key, then its devices): counts it
 * and pumps the next. (send_resolve.c) */
void pst_send_rcpt_resolved(send_rcpt *r);
/* For a recipient resolved to a valid key: fills r's devices from the
 * cached device list; waits for a DHT look-up of it the first time, and
 * when a cached list is older than PST_OUTBOX_DEVLIST_FRESH_S; repeats the
 * look-up in the background when none was found PST_OUTBOX_DEVCHECK_S ago
 * (send_devices.c says why). Calls pst_send_rcpt_resolved once, now or
 * when the look-up ends. (send_devices.c) */
void pst_send_devices_resolve(send_rcpt *r);

/* (sync.c) Our other current devices (not this one), from our own cached
 * device list: their count, keys into devs and boxes. */
uint32_t pst_sync_devices(pst_node *n, uint8_t devs[][PST_SIGN_PK_BYTES],
                          uint8_t boxes[][PST_BOX_PK_BYTES]);
/* (sync.c) Adds the hidden recipient that carries a copy of op's message
 * to our other devices' .Sent (flag SYNC_SENT): not for a sync record,
 * nor when a recipient is ourselves, nor without other devices. Call once
 * every recipient is resolved and checked. True when added. */
bool pst_sync_sent_copy(send_op *op);

/* After the last lookup: checks the recipients, merges duplicates, reserves
 * notification slots and queues the worker; fails op when it cannot. */
void pst_send_resolved_all(send_op *op);

/* The uv_work_t body (w->data is the send_op): reads, filters and encrypts
 * the message into memory (op->inline_body) or, past
 * PST_STORE_BODY_INLINE_MAX, into DIR/outbox/tmp-*, seals a notification per
 * recipient and mints the stamps. Sets op->err/op->errmsg on failure (the tmp file, if
 * made, is named in op->tmp_path for the loop to remove). Touches only the
 * op's worker fields and its atomics. */
void pst_send_work_run(uv_work_t *w);

#endif
