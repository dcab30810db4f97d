/* The Postern node: one libuv loop that owns the store, the DHT node, the
 * control socket and the publication of our records. posternd runs one for
 * as long as the user wants; `postern key get` without a running node runs a
 * short-lived one ("one-shot") for a single request.
 *
 * Every request, from the control socket or a one-shot, goes through
 * pst_node_request(): one code path answers both. */
#ifndef PST_NODE_H
#define PST_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "pst_config.h"
#include "pst_envelope.h"
#include "pst_error.h"
#include "pst_identity.h"
#include "pst_store.h"

typedef struct pst_node pst_node;

typedef enum {
    PST_NODE_DAEMON = 0,  /* publishes, listens, serves the control socket */
    PST_NODE_ONESHOT = 1, /* only answers requests; needs no identity */
} pst_node_mode;

/* Reply to one request. resp->body is borrowed for the call only. */
typedef void (*pst_node_reply_cb)(void *user, const pst_ctrl_response *resp);

/* Creates a node on loop. Loads and checks the identity (daemon mode:
 * PST_E_NOKEY when there is none), opens the store, starts the DHT node and
 * bootstraps. passphrase may be NULL. err gets a message a person can act
 * on. On error nothing needs closing. */
int pst_node_start(uv_loop_t *loop, const pst_node_config *cfg, pst_node_mode mode,
                   const char *passphrase, pst_node **out, char *err, size_t errcap);

/* Begins a graceful stop: control socket closed, counters flushed, DHT shut
 * down, store closed. on_stopped runs on the loop when everything is freed
 * (the node pointer is invalid afterwards). */
void pst_node_stop(pst_node *node, void (*on_stopped)(void *user), void *user);

/* Answers one control request asynchronously. reply is called exactly once,
 * on the loop, possibly before this returns. */
void pst_node_request(pst_node *node, const pst_ctrl_request *req, pst_node_reply_cb reply,
                      void *user);

/* A request being answered; valid until its reply callback has run. */
typedef struct pst_node_req pst_node_req;

/* pst_node_request with interim answers: progress (may be NULL) gets
 * responses with status PST_CTRL_STATUS_PROGRESS and the request's id (body
 * borrowed for the call) any number of times before reply, never after, both
 * with the same user. Returns the handle for pst_node_cancel_request, or
 * NULL when reply already ran (or ran out of memory: it then says so). */
pst_node_req *pst_node_request_ex(pst_node *node, const pst_ctrl_request *req,
                                  pst_node_reply_cb reply, pst_node_reply_cb progress, void *user);

/* The client of r went away (or asked to stop): runs the command's cancel
 * hook once and drops further progress. reply still runs exactly once,
 * possibly before this returns, and says what happened: a command that is
 * past its point of no return (send: the message is stored) ignores the
 * cancel and answers normally. r must not be answered yet; the caller may
 * not use r after this returns. */
void pst_node_cancel_request(pst_node_req *r);

/* True when this node is in touch with another node of its network: the
 * last get, put or ping another node answered is more recent than the last
 * get or put that no node answered. A node with no seeds, or whose seeds
 * never answered (or whose only seed is itself), is alone: false. */
bool pst_node_joined(const pst_node *node);

/* Runs a one-shot node for one request on a private loop, waiting up to
 * join_timeout_ms for a seed to answer first. Calls reply once, then stops the
 * node and returns. Returns 0 or the error that prevented starting (err set). */
int pst_node_oneshot(const pst_node_config *cfg, const pst_ctrl_request *req,
                     uint32_t join_timeout_ms, pst_node_reply_cb reply, void *user, char *err,
                     size_t errcap);

/* ---- the home's identity --------------------------------------------------- */

/* `postern id` when no node runs: *out (caller frees with pst_value_free)
 * gets the fields the node's `id` answers, read from cfg->home alone (the
 * key record the node signed last, else the key file and the addresses of
 * `postern init`), plus node_running false and published (whether a key
 * record was ever signed). Nothing is written. Errors as pst_identity_load
 * (err says what to do); PST_E_PASSPHRASE when the key file is sealed and
 * the node never started (nothing else knows the fingerprint). */
int pst_node_id_offline(const pst_node_config *cfg, pst_value **out, char *err, size_t errcap);

#define PST_IDLOAD_RECORD 1u     /* record the fingerprint in a store that has none */
#define PST_IDLOAD_CHECK_ONLY 2u /* no passphrase for a sealed file: check, load nothing */

/* Loads HOME/identity.key (passphrase may be NULL) into *out (caller frees
 * with pst_identity_free) and, when st is not NULL, checks it is the identity
 * st was made for (pst_identity_bind_store). With PST_IDLOAD_CHECK_ONLY a
 * sealed file without a passphrase is only checked for damage and *out stays
 * NULL (returns 0). err gets a message that names the file and says what to
 * do. Errors: PST_E_NOKEY (no identity.key), PST_E_PERM (file open to
 * others), PST_E_PASSPHRASE (needed or wrong), PST_E_CHECKSUM (damaged or not
 * a key file), PST_E_MISMATCH (another identity than the store's),
 * PST_E_STORE / PST_E_IO (the store could not be read; the message names the
 * database). *out is NULL on error. */
int pst_identity_load(const char *home, const char *passphrase, pst_store *st, unsigned flags,
                      pst_identity **out, char *err, size_t errcap);

/* Compares pk with the identity recorded in st (meta "identity_pk", written
 * by init). A store without one (made by Postern before 0.2) is checked
 * against the key records it published, then, if record, given pk.
 * PST_E_MISMATCH with a message naming both fingerprints when they differ;
 * store errors name HOME/postern.db. */
int pst_identity_bind_store(const char *home, pst_store *st, const uint8_t pk[PST_SIGN_PK_BYTES],
                            bool record, char *err, size_t errcap);

/* The identity recorded in st: 0, PST_E_NOTFOUND, or a store error. pk is
 * zeroed unless 0. */
int pst_identity_stored(pst_store *st, uint8_t pk[PST_SIGN_PK_BYTES]);

/* Creates the identity in cfg->home: identity key file, offline revocation
 * key file, revocation certificate, and the address list. Refuses
 * (PST_E_EXISTS) when an identity exists. passphrase may be NULL. Writes a
 * summary for the user into info (fingerprint and file paths). */
int pst_node_init_identity(const pst_node_config *cfg, const char *const *addresses,
                           unsigned n_addresses, const char *passphrase, bool fast_kdf, char *info,
                           size_t infocap, char *err, size_t errcap);

/* ---- SMTP submission's password (mail/smtp_password.c, docs/SMTP.md) -------- */
#define PST_FILE_SMTP_PASSWORD "smtp.password"
#define PST_SMTP_PASSWORD_LEN 24u /* base64 of 18 random bytes */
/* HOME/smtp.password (mode 0600, kept in clear so it can be shown again)
 * into out: created with a fresh random password when it does not exist or
 * when reset is set (the running node reads it at every AUTH, so a reset
 * takes effect at once). Errors: PST_E_PERM (the file is open to others:
 * err says how to fix it), PST_E_IO, PST_E_CHECKSUM (not a password file);
 * out is zeroed then. */
int pst_node_smtp_password(const char *home, bool reset, char out[PST_SMTP_PASSWORD_LEN + 1],
                           char *err, size_t errcap);
#endif
