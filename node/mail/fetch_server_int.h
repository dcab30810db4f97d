/* Private to the fetch server's files (fetch_server.c: the listener,
 * connections, frames in and out; fetch_serve.c: a request, the body check
 * and the stream; fetch_receipt.c: a receipt). One struct pst_fetch_server
 * per node, owned by the outbox; everything runs on the loop except the body
 * check, which runs in the thread pool on its own connection's fields. */
#ifndef PST_FETCH_SERVER_INT_H
#define PST_FETCH_SERVER_INT_H

#include "fetch_nonces.h"
#include "hint_int.h"
#include "outbox_int.h"
#include "pst_fetch.h"
#include "pst_framer.h"

#define FETCH_CONNS_MAX 64u       /* connections being served */
#define FETCH_CONNS_HARD_MAX 128u /* beyond this, close without a word */
#define FETCH_LINGER_MS 5000u     /* after our last frame, wait this long for EOF */
/* body checks at once: libuv's pool has 4 threads, shared with the
 * resolver and file I/O; a request beyond this is answered busy */
#define FETCH_CHECKS_MAX 2u
/* a body up to this size is checked on the loop (fetch_serve.c) */
#define FETCH_CHECK_INLINE_MAX 65536u
#define FETCH_BACKLOG 128
/* a stored receipt is answered once a commit that fsyncs the WAL made it
 * durable (fetch_receipt.c): the commit of a send under way, or, when there
 * is none or it has not come after this long, a commit of its own */
#define FETCH_RECEIPT_SYNC_MS 3u

/* S_HINTS: the first frame was a Hint; more hints may follow (fetch_hint.c) */
typedef enum { S_FIRST, S_STREAM, S_RECEIPT, S_LINGER, S_HINTS } conn_state;
typedef enum { NEXT_STREAM, NEXT_CLOSE } next_step;

typedef struct fconn fconn;

struct pst_fetch_server {
    pst_node *node;
    struct pst_outbox *o;
    uv_tcp_t tcp;
    unsigned refs; /* the listener + connections */
    bool closing;
    fconn *head;
    unsigned n_conns;
    unsigned n_checks;       /* body checks queued or running */
    pst_nonce_set nonces;    /* of the requests accepted, until they expire */
    pst_hint_rate hint_rate; /* hints taken per address (fetch_hint.c) */
    /* receipts stored lazily, waiting to be durable before their answer
     * (fetch_receipt.c): looked at after every turn of the loop, and made
     * durable by a commit of their own after FETCH_RECEIPT_SYNC_MS */
    fconn *sync_head;
    uv_check_t sync_check;
    uv_timer_t sync_timer;
    /* every read lands here first: the loop runs one read callback at a
     * time, and the framer copies what it takes into the connection */
    uint8_t rbuf[PST_FRAME_MAX];
};

struct fconn {
    struct pst_fetch_server *srv;
    fconn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_fs_t fs;
    uv_shutdown_t sd;
    int refs; /* handles open + requests pending */
    bool closing;
    conn_state state;
    next_step after_write;
    char ip[64];
    uint64_t deadline_ms;         /* fetch_total_timeout_s after accept */
    pst_framer in;                /* reassembles into frame: never allocates */
    uint8_t frame[PST_FRAME_MAX]; /* the framer's storage */
    uint8_t out[PST_FRAME_HEADER_BYTES + PST_FETCH_RESPONSE_MAX];
    /* the request being served */
    bool have_request;
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t requester[PST_SIGN_PK_BYTES];
    /* the recipient identity the requester fetches for: the requester
     * itself, or the identity one of whose devices it is (by_device) */
    uint8_t rcpt[PST_SIGN_PK_BYTES];
    bool by_device;
    int fd;
    uint64_t off, end;
    size_t in_flight;
    uint8_t *chunk; /* PST_MSG_CHUNK while streaming */
    /* the body's hash, checked in the thread pool before the header goes */
    uv_work_t check;
    int check_rc;  /* PST_OK, PST_E_MISMATCH (damaged) or PST_E_IO */
    bool checking; /* its check is queued or running */
    /* requests for the same message that arrived meanwhile (each holding a
     * reference) share this check's result: the devices of one recipient
     * fetch a message at once, and it is hashed once for all of them */
    fconn *waiters, *next_waiter;
    /* its receipt is stored, not yet durable: answered once
     * pst_store_synced() > sync_ticket (holds a reference meanwhile) */
    bool sync_wait;
    uint64_t sync_ticket;
    uint8_t sync_msg_id[PST_HASH_BYTES];
    fconn *next_sync;
};

/* fetch_server.c */
/* Drops one reference of the server (the listener, the receipt wait's two
 * handles, each connection); the last frees it. */
void pst_fetch_srv_server_unref(struct pst_fetch_server *srv);
/* Drops one reference of c (handles open and requests pending); the last
 * frees it and drops its reference on the server. */
void pst_fetch_srv_unref(fconn *c);
/* Unlinks c and closes its handles; once only. */
void pst_fetch_srv_close(fconn *c);
/* The next step must happen within ms (and before the total deadline),
 * else the connection is closed (counted as a timeout). */
void pst_fetch_srv_arm(fconn *c, uint64_t ms);
/* fetch_idle_timeout_s in ms (its default when 0). */
uint64_t pst_fetch_srv_idle_ms(const fconn *c);
/* Reads the next frame (idle timeout armed); handed to the dispatcher. */
void pst_fetch_srv_read(fconn *c);
/* Sends a signed FetchResponse; then streams the body (NEXT_STREAM) or
 * shuts the connection down and lingers for the peer's EOF (NEXT_CLOSE).
 * A failure closes the connection. */
void pst_fetch_srv_respond(fconn *c, const uint8_t *msg_id, uint64_t status, uint64_t total,
                           uint64_t offset, const char *text, next_step next);
/* Counts rejected.fetch.<reason> and answers status with text, then closes. */
void pst_fetch_srv_reject(fconn *c, const uint8_t *msg_id, uint64_t status, uint64_t offset,
                          const char *reason, const char *text);

/* fetch_serve.c */
/* Serves a decoded FetchRequest, the connection's first frame: refuses
 * (pst_fetch_srv_reject) or checks the body and answers with the header. */
void pst_fetch_srv_request(fconn *c, const pst_fetch_request *req);
/* Streams c->fd from c->off to c->end, then reads the Receipt frame. */
void pst_fetch_srv_stream(fconn *c);

/* fetch_hint.c */
/* Takes a Hint frame (its record type said so): refuses it (counted
 * rejected.hint.REASON, answered, closed) or hands its notification to the
 * inbox and reads the next frame. */
void pst_fetch_srv_hint(fconn *c, const uint8_t *frame, uint32_t len);

/* fetch_receipt.c */
/* Takes a decoded Receipt; frame/len are its bytes, stored as they came. */
void pst_fetch_srv_receipt(fconn *c, const pst_receipt *rec, const uint8_t *frame, uint32_t len);

/* Sets up / closes the wait for durable receipts (the server's
 * sync_check and sync_timer: each holds a reference on the server). */
void pst_fetch_srv_sync_init(struct pst_fetch_server *srv);
void pst_fetch_srv_sync_close(struct pst_fetch_server *srv);
/* c leaves the wait (it is closing): drops the wait's reference. */
void pst_fetch_srv_sync_drop(fconn *c);

/* Which recipient of msg_id the key signer fetches or answers for
 * (fetch_device.c): a device the message was sealed to (*by_device, rcpt
 * = its identity), else signer itself. PST_E_REVOKED (counted, the caller
 * refuses) for a device revoked since the send. */
int pst_fetch_srv_whose(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES],
                        const uint8_t signer[PST_SIGN_PK_BYTES], uint8_t rcpt[PST_SIGN_PK_BYTES],
                        bool *by_device);
/* A verified receipt of a device for rcpt (fetch_device.c): stored per
 * device; once no expected device of rcpt is missing (revoked ones are
 * dropped here), it is stored as rcpt's and ends rcpt's notifications.
 * Returns what pst_store_outbox_receipt would (0, PST_E_DUPLICATE,
 * PST_E_NOTFOUND, PST_E_STALE, a store error). */
int pst_fetch_srv_device_receipt(pst_node *n, const pst_receipt *rec,
                                 const uint8_t rcpt[PST_SIGN_PK_BYTES], const uint8_t *frame,
                                 uint32_t len, uint64_t now);

#endif
