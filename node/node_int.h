/* node/ internals shared by its files. Not for tools/. */
#ifndef PST_NODE_INT_H
#define PST_NODE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "pst_config.h"
#include "pst_dht.h"
#include "pst_envelope.h"
#include "pst_identity.h"
#include "pst_node.h"
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
enum { PST_PUB_KEYREC = 1, PST_PUB_ADDRCLAIM = 2, PST_PUB_REVOCATION = 3 };

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
    bool joined;
    bool warned_alone;

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
void pst_counters_load(pst_node *n);

/* ingest.c: validation of every value that comes out of the DHT. */
typedef enum { PST_SLOT_KEY, PST_SLOT_ADDRESS, PST_SLOT_INBOX, PST_SLOT_VOUCH } pst_slot_kind;
const char *pst_slot_kind_name(pst_slot_kind kind);
/* Validates val found in the key slot of pk. Stores a valid KeyRecord (seq
 * rule) or Revocation. Counts every rejection. Returns PST_OK when accepted,
 * else the reason. When out_keyrec/out_rev are non-NULL they get the decoded
 * record on success (or an expired-but-authentic KeyRecord with
 * PST_E_EXPIRED). */
int pst_ingest_key_value(pst_node *n, const uint8_t pk[32], const uint8_t *val, size_t len,
                         pst_keyrec *out_keyrec, pst_revocation *out_rev, bool *is_revocation);
/* Validates an AddressClaim found in the slot of address; stores it. */
int pst_ingest_address_value(pst_node *n, const char *address, const uint8_t *val, size_t len,
                             pst_address_claim *out);
/* Validates an Endorsement found in the vouch slot of subject. */
int pst_ingest_vouch_value(pst_node *n, const uint8_t subject[32], const uint8_t *val, size_t len,
                           pst_endorsement *out);
/* Starts listening on our own slots (key, addresses, vouch, inbox). */
int pst_ingest_listen_own(pst_node *n);

/* bootstrap.c */
void pst_bootstrap_start(pst_node *n);

/* publish.c */
int pst_publish_start(pst_node *n);
/* Publishes a revocation (already verified) for our key or another's. */
int pst_publish_revocation(pst_node *n, const uint8_t *bytes, size_t len, pst_dht_done_cb done,
                           void *user);
void pst_publish_now(pst_node *n);

/* lookup.c: finding keys (`key get`, and recipients for `send`) */
#define PST_RESOLVE_KEYS_MAX 16u /* keys considered for one address */
typedef enum {
    PST_KEY_VALID = 0,
    PST_KEY_NOT_FOUND = 2,
    PST_KEY_REVOKED = 3,
    PST_KEY_EXPIRED = 4,
} pst_key_status;
typedef struct {
    uint8_t pk[32];
    pst_key_status status;
    bool have_keyrec; /* keyrec valid (or expired, for PST_KEY_EXPIRED) */
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
 * and reports every candidate key with its status. Returns PST_E_INVAL when
 * query is neither (cb not called), else 0 and cb is called exactly once. */
int pst_resolve(pst_node *n, const char *query, pst_resolve_cb cb, void *user);
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
/* Control commands of the mail side (argument and body schemas in
 * docs/CLI.md). */
void pst_node_cmd_send(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user);
void pst_node_cmd_outbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);
void pst_node_cmd_unsend(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);
void pst_node_cmd_inbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                        void *user);
void pst_node_cmd_read(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user);

/* control.c: the unix socket server */
int pst_ctrl_server_start(pst_node *n, char *err, size_t errcap);
void pst_ctrl_server_stop(pst_node *n);

/* commands.c: id, status, revoke */
void pst_node_cmd_id(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply, void *user);
void pst_node_cmd_status(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);
void pst_node_cmd_revoke(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user);

/* Replies with an error status and message. */
void pst_reply_error(pst_node_reply_cb reply, void *user, uint64_t id, int status, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
/* Replies with status 0 and body (borrowed). */
void pst_reply_ok(pst_node_reply_cb reply, void *user, uint64_t id, uint64_t status,
                  pst_value *body);

uint64_t pst_now(void);
void pst_node_handle_ref(pst_node *n);
void pst_node_handle_unref(pst_node *n);

#endif
