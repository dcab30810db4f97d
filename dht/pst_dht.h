/* pst_dht: Postern's only door to OpenDHT.
 *
 * One pst_dht runs one threaded OpenDHT runner and hands every result to the
 * caller's libuv loop: OpenDHT calls back on its own thread, we copy what it
 * gives us into a mutex-protected queue and wake the loop with uv_async_send.
 * Every callback below therefore runs on the loop thread, from inside
 * uv_run(). docs/dht.md explains the threading model and the teardown order.
 *
 * Rules shared by every function here (libuv style):
 * - Call them only from the loop thread.
 * - A callback is never called when the call that registered it returned an
 *   error.
 * - A get, put or ping calls its done callback exactly once: with PST_OK, with
 *   an error, with PST_E_TIMEOUT when our own timer fires first, or with
 *   PST_E_CLOSED when pst_dht_close() ends it. The caller can always free its
 *   per-operation memory from that callback.
 * - After pst_dht_close() no value or listen callback runs again.
 */
#ifndef PST_DHT_H
#define PST_DHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "pst_error.h"
#include "pst_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Postern's public network is OpenDHT's public network, id 0 (the one Jami
 * uses): it exists and has bootstrap nodes today. Because 0 is also what an
 * unset field holds, pst_dht_init accepts it only with public_network = true,
 * so nothing joins the internet by accident. OpenDHT nodes drop every packet
 * whose network id differs from their own: tests run on private ids. */
#define PST_DHT_NETWORK_PUBLIC 0u

#define PST_DHT_TIMEOUT_DEFAULT_MS 15000u /* get/put timeout when 0 is passed */
#define PST_DHT_TIMEOUT_MAX_MS 600000u    /* longest get/put timeout accepted */
#define PST_DHT_PING_TIMEOUT_MS 3000u     /* OpenDHT itself gives up after ~9 s */
#define PST_DHT_SHUTDOWN_MAX_MS 2000u     /* wait for the state save on close */
#define PST_DHT_OPS_MAX 8192u             /* live operations per pst_dht */
#define PST_DHT_QUEUE_MAX 4096u           /* values waiting for the loop */
#define PST_DHT_HOST_MAX 255u             /* host names given to bootstrap/ping */
/* A put of the bytes this node already put at the slot re-puts the same
 * OpenDHT value (same value id): storing nodes refresh it instead of keeping
 * one more copy (docs/dht.md). Values remembered for that, per pst_dht, and
 * how long one is kept after its last put (OpenDHT's value lifetime). */
#define PST_DHT_REPUT_MAX 512u
#define PST_DHT_REPUT_KEEP_MS 600000u

/* Log levels, numbered like syslog's. */
enum {
    PST_DHT_LOG_ERROR = 3,
    PST_DHT_LOG_WARN = 4,
    PST_DHT_LOG_INFO = 6,
    PST_DHT_LOG_DEBUG = 7,
};

typedef struct pst_dht pst_dht;
typedef struct pst_dht_op pst_dht_listen_handle;

/* msg is valid only during the call. */
typedef void (*pst_dht_log_cb)(void *user, int level, const char *msg);
/* status: PST_OK or a negative PST_E_* code. */
typedef void (*pst_dht_done_cb)(void *user, int status);
/* val/len: one value as stored in the DHT (len <= PST_DHT_VALUE_MAX), valid
 * only during the call. Anyone can put anything at any slot: validate it. */
typedef void (*pst_dht_value_cb)(void *user, const uint8_t *val, size_t len);
/* Like pst_dht_value_cb; expired is true when OpenDHT reports that the value
 * has expired from the slot. The same value can be reported more than once. */
typedef void (*pst_dht_listen_cb)(void *user, const uint8_t *val, size_t len, bool expired);

typedef struct {
    /* A private id (tests), or PST_DHT_NETWORK_PUBLIC (0) together with
     * public_network = true. 0 without the flag is refused. */
    uint32_t network_id;
    bool public_network; /* the deliberate opt-in for network id 0 */
    uint16_t port;       /* UDP port on 0.0.0.0 and [::]; 0 = ephemeral */
    bool peer_discovery; /* LAN multicast discovery and announcement */
    /* File where OpenDHT keeps its node id and routing table, or NULL. It is
     * written only when the node closes. */
    const char *persist_path;
    pst_dht_log_cb log; /* optional; called on the loop thread only */
    void *log_user;
    /* Every put a value of its own (a new value id), as before issue 16:
     * for test tools that replay the same bytes and want each copy stored
     * and handed to listeners (postern-hostile). Nodes leave it false. */
    bool every_put_new_value;
} pst_dht_config;

/* A plain struct tag, not a typedef: the name pst_dht_stats is the function. */
struct pst_dht_stats {
    char node_id[2 * PST_SLOT_BYTES + 1]; /* lowercase hex */
    uint16_t port4, port6;                /* bound UDP ports (0 = not bound) */
    uint32_t network_id;
    uint64_t values_received;         /* delivered to a value or listen callback */
    uint64_t values_dropped_oversize; /* over PST_DHT_VALUE_MAX, never delivered */
    uint64_t values_dropped_backlog;  /* PST_DHT_QUEUE_MAX reached or no memory */
    uint64_t gets_ok, gets_failed, gets_timed_out;
    uint64_t puts_ok, puts_failed, puts_timed_out;
    uint64_t pings_ok, pings_failed;
    /* Whether other nodes answer at all. Every get, put and ping that ends is
     * numbered in order (1, 2, ...): last_answered_op is the number of the
     * last one another node answered (PST_OK), last_unanswered_op that of the
     * last get or put no node answered (PST_E_IO: OpenDHT had no node to
     * ask); 0 = none yet. Timeouts count as neither: a slow network is not an
     * absent one. last_answered_ms: uv_now() when last_answered_op ended. */
    uint64_t ops_ended, last_answered_op, last_unanswered_op, last_answered_ms;
    uint64_t puts_refreshed; /* puts that re-put a value remembered (same value id) */
    /* Values this node refused to store for another node because they broke
     * the policy of the Postern value type they carry (over
     * PST_DHT_VALUE_MAX, or not a record of that type: docs/dht.md). */
    uint64_t values_refused_store;
    /* false: OpenDHT's value handle was not what the type shim expects, so
     * Postern's types are not registered and values go out untyped (and
     * always in the fake DHT, which has no types). */
    bool value_types;
    uint32_t listens_active; /* registered and not cancelled */
    uint32_t ops_live;       /* operation records held, counted against OPS_MAX */
};

/* The handle. Caller-owned (embed or allocate it); it must stay valid from
 * pst_dht_init() until on_closed runs. Only `data` is for the caller: every
 * other field is private. */
struct pst_dht {
    void *data;

    /* private */
    uv_loop_t *loop;
    void *runner; /* dht_runner *, opaque so callers need not see OpenDHT */
    uv_async_t async;
    uv_timer_t timer;
    uv_mutex_t mu;
    /* guarded by mu: the hand-off queue from OpenDHT's threads */
    struct pst_dht_event *q_head, *q_tail;
    uint32_t q_values;
    bool q_closed;
    uint64_t q_dropped_oversize, q_dropped_backlog;
    bool q_runner_down; /* the shutdown started by close has completed */
    /* loop thread only */
    struct pst_dht_op *timed; /* gets, puts, pings */
    struct pst_dht_op *listens;
    uint64_t timer_due; /* uv_now() of the armed timer, 0 = not armed */
    int state;
    int handles_open;
    uint32_t resolving; /* pings waiting for uv_getaddrinfo */
    bool persist;
    void (*on_closed)(pst_dht *);
    pst_dht_log_cb log;
    void *log_user;
    struct pst_dht_stats st;
    struct pst_dht_reput *reput; /* PST_DHT_REPUT_MAX entries, allocated on first put */
    bool every_put_new_value;
    bool typed;             /* Postern's value types registered (dht_types.h) */
    uint64_t refused_store; /* written by OpenDHT's thread: atomic builtins */
};

/* Starts an OpenDHT node on its own thread and attaches it to loop. cfg is
 * read during the call only. Returns PST_OK, PST_E_INVAL (NULL argument,
 * network_id 0), PST_E_IO (OpenDHT could not start, e.g. the port is taken)
 * or PST_E_NOMEM. On error nothing needs closing and d is zeroed. */
int pst_dht_init(uv_loop_t *loop, pst_dht *d, const pst_dht_config *cfg);

/* Stops the node and releases everything. Gets, puts and pings that have not
 * had their answer yet get their done callback with PST_E_CLOSED; listen
 * handles are freed (do not cancel them afterwards); then on_closed (may be
 * NULL) runs, after which the caller may free d. Every callback still runs on
 * the loop, from uv_run(): keep the loop running until on_closed. With a
 * persist_path the node first saves its state, waiting at most
 * PST_DHT_SHUTDOWN_MAX_MS. Calls after the first are ignored. */
void pst_dht_close(pst_dht *d, void (*on_closed)(pst_dht *));

/* Adds host:port (a name or a numeric address; port 1..65535 in decimal) to
 * the nodes OpenDHT contacts to join the network; it keeps retrying while
 * disconnected. Returns PST_OK, PST_E_INVAL or PST_E_CLOSED. Success says
 * nothing about reachability: use pst_dht_ping for that. */
int pst_dht_bootstrap(pst_dht *d, const char *host, const char *port);

/* Asks host:port whether it is a live node of our network (a reply also adds
 * it to the routing table). cb gets PST_OK when it answered, PST_E_TIMEOUT when
 * it did not within PST_DHT_PING_TIMEOUT_MS, PST_E_NOTFOUND when the name did
 * not resolve, PST_E_CLOSED on close. Names are resolved on libuv's thread
 * pool, numeric addresses at once. Returns PST_OK, PST_E_INVAL, PST_E_CLOSED,
 * PST_E_BUSY (PST_DHT_OPS_MAX) or PST_E_NOMEM. */
int pst_dht_ping(pst_dht *d, const char *host, const char *port, pst_dht_done_cb cb, void *user);

/* Stores val (copied during the call) at slot. The same bytes put again at
 * the same slot within PST_DHT_REPUT_KEEP_MS are the same OpenDHT value
 * (value id): storing nodes refresh its lifetime instead of holding one copy
 * per put, so a slot keeps one value per distinct record and its replies
 * stay small (docs/dht.md). The value carries the OpenDHT type id of its
 * record's kind (docs/PROTOCOL.md), so storing nodes that run Postern apply
 * Postern's store policy to it. While the previous put of that value has not
 * ended, a new put of it is a value of its own (OpenDHT would end the
 * previous one as failed). permanent: OpenDHT re-puts it
 * about every 10 minutes for as long as this node runs, and it cannot be
 * withdrawn before close. timeout_ms: 0 = PST_DHT_TIMEOUT_DEFAULT_MS, at most
 * PST_DHT_TIMEOUT_MAX_MS. cb (may be NULL) gets PST_OK when at least one node
 * stored it, PST_E_IO when OpenDHT reports failure (e.g. no peers: the value is
 * then kept locally only), PST_E_TIMEOUT or PST_E_CLOSED. Returns PST_OK,
 * PST_E_INVAL (NULL, len 0, bad timeout), PST_E_TOOBIG (len >
 * PST_DHT_VALUE_MAX), PST_E_CLOSED, PST_E_BUSY or PST_E_NOMEM. */
int pst_dht_put(pst_dht *d, const uint8_t slot[PST_SLOT_BYTES], const uint8_t *val, size_t len,
                bool permanent, uint32_t timeout_ms, pst_dht_done_cb cb, void *user);

/* Fetches the values at slot: on_value once per value found (values over
 * PST_DHT_VALUE_MAX are dropped and counted), then on_done exactly once with
 * PST_OK (the search finished; zero values is a valid answer), PST_E_IO
 * (OpenDHT could not search, e.g. no peers: local values may still have been
 * reported), PST_E_TIMEOUT or PST_E_CLOSED. on_value is never called after
 * on_done. timeout_ms as for pst_dht_put. Both callbacks are required. Returns
 * as pst_dht_put, without PST_E_TOOBIG. */
int pst_dht_get(pst_dht *d, const uint8_t slot[PST_SLOT_BYTES], uint32_t timeout_ms,
                pst_dht_value_cb on_value, pst_dht_done_cb on_done, void *user);

/* Reports every value put at slot from now on (and the ones already known),
 * until pst_dht_listen_cancel or close. *out receives the handle (NULL on
 * error). Listening has no timeout and no done callback: back it up with a
 * periodic get. Returns PST_OK, PST_E_INVAL, PST_E_CLOSED, PST_E_BUSY or
 * PST_E_NOMEM. */
int pst_dht_listen(pst_dht *d, const uint8_t slot[PST_SLOT_BYTES], pst_dht_listen_cb cb, void *user,
                   pst_dht_listen_handle **out);

/* Stops a listen: cb is not called again once this returns. h must come from
 * pst_dht_listen on the same d and is invalid afterwards (it may already be
 * freed). A NULL h, or any cancel once pst_dht_close() was called, is ignored:
 * close frees every listen handle itself. */
void pst_dht_listen_cancel(pst_dht *d, pst_dht_listen_handle *h);

/* Copies the node's identity, ports and counters into *out. Routing-table
 * sizes are not available through OpenDHT's C API. */
void pst_dht_stats(const pst_dht *d, struct pst_dht_stats *out);

#ifdef __cplusplus
}
#endif
#endif
