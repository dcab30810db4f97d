/* The node's types and the parts of its outer face that core/ implements:
 * every room may include this (core does), while node/pst_node.h, which
 * also declares start, stop, requests and the one-shot node (node.c and
 * control/), is for the top and for tools/. */
#ifndef PST_NODE_BASE_H
#define PST_NODE_BASE_H

#include <stdbool.h>
#include <stdint.h>

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

/* A request being answered; valid until its reply callback has run. */
typedef struct pst_node_req pst_node_req;

/* True when this node is in touch with another node of its network: the
 * last get, put or ping another node answered is more recent than the last
 * get or put that no node answered. A node with no seeds, or whose seeds
 * never answered (or whose only seed is itself), is alone: false. */
bool pst_node_joined(const pst_node *node);

/* ---- the home's identity (core/identity_load.c, core/identity_init.c) ----- */

#define PST_IDLOAD_RECORD 1u     /* record the fingerprint in a store that has none */
#define PST_IDLOAD_CHECK_ONLY 2u /* no passphrase for a sealed file: check, load nothing */

/* Reads the key file HOME/name (secret-file rules) into *buf, a new
 * sodium_malloc'd buffer of PST_KEYFILE_MAX bytes the caller frees with
 * sodium_free (also on error). Errors of pst_secret_file_read (err says
 * why), PST_E_NOSPACE, PST_E_NOMEM. */
int pst_keyfile_read(const char *home, const char *name, uint8_t **buf, size_t *len, char *err,
                     size_t errcap);

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

#endif
