/* node/core: what every room of the node stands on.
 *
 * struct pst_node is the node's state: the loop, store, DHT, identity,
 * clock, counters and handle count that core/ owns, the few fields the keys
 * room keeps inline (bootstrap, publication, listens), and opaque pointers to
 * the state the higher rooms own (outbox, inbox, trust cache, control
 * server). Each room reads and writes only its own fields; a room never
 * includes the header of a room above it (docs/ARCHITECTURE.md,
 * scripts/layer-check). A call that must go upward (core asking mail to
 * probe a peer's clock) goes through a function pointer the higher room
 * sets at start.
 *
 * Everything here runs on the loop thread. */
#ifndef PST_CORE_H
#define PST_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "pst_clock.h"
#include "pst_config.h"
#include "pst_device.h"
#include "pst_dht.h"
#include "pst_envelope.h"
#include "pst_fetch.h"
#include "pst_identity.h"
#include "pst_node_base.h"
#include "pst_notify.h"
#include "pst_records.h"
#include "pst_store.h"

#define PST_COUNTERS_MAX 128
#define PST_COUNTER_NAME_MAX 64
#define PST_LOOKUP_TIMEOUT_MS 10000u /* a get of ours in the DHT */
#define PST_PUT_TIMEOUT_MS 10000u    /* a put of ours in the DHT */
/* The longest gap between two puts of one notification (mail/outbox.c);
 * the clock watch reasons about it (an expired one within it is a
 * straggler, not a clock), so it lives below both. */
#define PST_OUTBOX_RENOTIFY_MAX_S 590u
#define PST_COUNTER_FLUSH_MS 10000u

/* Published record kinds in the store's published table. */
enum {
    PST_PUB_KEYREC = 1,
    PST_PUB_ADDRCLAIM = 2,
    PST_PUB_REVOCATION = 3,
    PST_PUB_ENDORSEMENT = 4,
    PST_PUB_DEVLIST = 5, /* our identity's newest device list, kept alive by every device */
};

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
    /* devices (keys/devices.c): HOME/device.key when this home has one
     * (else NULL: the identity key is the device key); whether the identity
     * secret key is here; whether our own newest device list dropped this
     * device; the listen on our devices slot */
    pst_identity *device;
    bool holds_identity;
    bool self_revoked;
    bool devlist_poll_busy;
    pst_dht_listen_handle *devlist_listen;
    struct pst_pairing *pairing; /* pending pairing codes (keys/pairing.c) */
    pst_dht_listen_handle *listens[PST_KEYREC_ADDRESSES_MAX + 3];
    void *listen_ctx[PST_KEYREC_ADDRESSES_MAX + 3];
    unsigned n_listens;

    /* mail: sender side (outbox.c, send.c, fetch_server.c) and recipient
     * side (inbox.c, fetch_client.c, maildir.c); each owns its state */
    struct pst_outbox *outbox;
    struct pst_inbox *inbox;
    struct pst_trust *trust;      /* vouch reads and cache (keys/trust_int.h) */
    struct pst_smtp_server *smtp; /* SMTP submission (mail/smtp_server.c) */
    uint16_t smtp_port;           /* its bound port, 0 when off */
    struct pst_smtp_server *lmtp; /* LMTP (mail/lmtp_server.c) */
    char lmtp_path[PST_PATH_MAX]; /* its socket, "" when off */
    struct pst_relay *relay;      /* the smarthost queue (mail/relay.c), NULL when none */

    /* what peers' signed times say about our clock (clock_watch.c) */
    pst_clock clock;
    pst_clock_state clock_logged_state;
    uint64_t clock_logged_mono;
    /* Set by the mail room at start (mail/clock_probe.c): asks the fetch
     * server of a contact whose notification was refused for its time for
     * that message once, so its node sees our signed time. NULL: no probe. */
    void (*clock_probe)(pst_node *n, const pst_notify_inner *in);
    struct pst_clock_probe *clock_probes; /* owned by mail/clock_probe.c */
    unsigned clock_probes_active;

    /* counters */
    pst_counter counters[PST_COUNTERS_MAX];
    unsigned n_counters;
    uv_timer_t flush_timer;

    pst_ctrl_server *ctrl;
    unsigned ops_pending; /* lookups, puts in flight (to wait on stop) */
    bool stopping;
    int handles_open;
    /* Runs when the last handle closes after the stop began (node.c). */
    void (*on_last_handle)(pst_node *n);
    void (*on_stopped)(void *);
    void *stopped_user;
    int lock_fd;
};

/* counters.c: named uint64 counters, kept in memory and flushed to the
 * store every PST_COUNTER_FLUSH_MS and at stop. A name is copied (at most
 * PST_COUNTER_NAME_MAX - 1 bytes; longer ones are cut); when
 * PST_COUNTERS_MAX names exist, new ones are counted under "other". Never
 * fails. */
void pst_counter_add(pst_node *n, const char *name, uint64_t delta);
/* Adds one to "rejected.SLOT_KIND.REASON": every refusal of bad input. */
void pst_counter_rejected(pst_node *n, const char *slot_kind, const char *reason);
/* Writes the pending deltas to the store (a failure is logged and the
 * deltas are kept for the next flush). */
void pst_counters_flush(pst_node *n);
/* "PST_E_NONCANONICAL" -> "noncanonical": the stable reason part of a
 * counter name, written into buf. */
const char *pst_err_reason(int err, char *buf, size_t cap);
/* Loads the counters the store kept (at start; unreadable ones are skipped
 * and logged). */
void pst_counters_load(pst_node *n);

/* node_core.c: time, handles, network state */
/* Wall clock, unix seconds. The one place the node reads it, so tests and
 * the clock watch agree on what "now" is. */
uint64_t pst_now(void);
/* Every uv handle (and other closeable thing) of every room holds one
 * reference from init to its close callback; the node finishes its stop
 * (n->on_last_handle) when the count falls to zero while stopping. */
void pst_node_handle_ref(pst_node *n);
void pst_node_handle_unref(pst_node *n);

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
/* The same for a FetchRequest we serve and for a Receipt. */
bool pst_clock_fetch_request(pst_node *n, const pst_fetch_request *req, int rc);
bool pst_clock_receipt(pst_node *n, const pst_receipt *rec, int rc);
/* Adds "clock" to a status body. */
void pst_clock_describe(pst_node *n, pst_value *body);

/* identity_load.c: the addresses given to `postern init` (store meta "addresses",
 * NUL-separated) into out; returns how many (0 when none or unreadable). */
unsigned pst_node_init_addresses(pst_store *st,
                                 char out[PST_KEYREC_ADDRESSES_MAX][PST_ADDRESS_MAX + 1]);

#endif
