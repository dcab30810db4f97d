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
#include "pst_node_base.h"
#include "pst_request.h"
#include "pst_smtp_password.h"

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

/* ---- devices (id_join.c, issue 13) ----------------------------------------------- */

/* `postern init --join CODE`: in a new home (none of its files may exist:
 * PST_E_EXISTS), makes a device key, pairs over TCP with the device that
 * made the code (pst_pairing.h), checks its answer (DeviceCert and
 * DeviceList signed by one identity, naming our keys), then writes the
 * store (identity, list, key record, trust list) and HOME/device.key last.
 * name may be NULL. PST_E_PERM when the old device refused (used, expired
 * or unknown code, 8 devices); err says why; info gets what was made. */
int pst_node_join(const pst_node_config *cfg, const char *code, const char *name, char *info,
                  size_t infocap, char *err, size_t errcap);
/* `postern identity export-paper`: the armored identity secret key of the
 * home (label "IDENTITY RECOVERY FORM") into out. Errors as
 * pst_identity_load, PST_E_NOSPACE. */
int pst_node_paper_export(const pst_node_config *cfg, const char *passphrase, char *out, size_t cap,
                          char *err, size_t errcap);
/* `postern identity recover`: from the form's text, into a new home: the
 * identity key, a new device key, and a mark that makes posternd replace
 * the device list by one that revokes every old device. */
int pst_node_recover(const pst_node_config *cfg, const char *form, size_t form_len, char *info,
                     size_t infocap, char *err, size_t errcap);

#endif
