/* node/keys: the keys room. Publishes this node's own records (key record,
 * address claims, endorsements, revocations) and keeps them alive
 * (publish.c); joins the network from the seeds (bootstrap.c); checks every
 * value that comes out of the key, address and vouch slots (ingest.c);
 * finds keys for `key get` and `send` and caches them in the store
 * (lookup.c); reads the vouches of a key (vouch.c), answers "is this sender
 * vouched for?" (vouch_check.c), and makes our own vouches and the notices
 * about revoked contacts (trust.c).
 *
 * Stands on core/ only. Nothing here parses control requests or replies to
 * them: control/ turns requests into these calls. */
#ifndef PST_KEYS_H
#define PST_KEYS_H

#include "pst_core.h"
#include "pst_pairing.h"

#define PST_BOOTSTRAP_BACKOFF_MIN_MS 1000u
#define PST_BOOTSTRAP_BACKOFF_MAX_MS 60000u

/* ingest.c: validation of every value that comes out of the DHT. */
typedef enum {
    PST_SLOT_KEY,
    PST_SLOT_ADDRESS,
    PST_SLOT_INBOX,
    PST_SLOT_VOUCH,
    PST_SLOT_DEVICES
} pst_slot_kind;
/* "key", "address", "inbox", "vouch" or "devices": the slot part of counter names. */
const char *pst_slot_kind_name(pst_slot_kind kind);
/* Validates val found in the key slot of pk. Stores a valid KeyRecord (seq
 * rule) or Revocation. Counts every rejection. Returns PST_OK when accepted,
 * else the reason. When out_keyrec/out_rev are non-NULL they get the decoded
 * record on success (or an expired-but-authentic KeyRecord with
 * PST_E_EXPIRED, or one created too far in the future with PST_E_NOTYET). */
int pst_ingest_key_value(pst_node *n, const uint8_t pk[32], const uint8_t *val, size_t len,
                         pst_keyrec *out_keyrec, pst_revocation *out_rev, bool *is_revocation);
/* Validates an AddressClaim found in the slot of address; stores it.
 * PST_E_REVOKED (with *out filled) for an authentic claim of a revoked key. */
int pst_ingest_address_value(pst_node *n, const char *address, const uint8_t *val, size_t len,
                             pst_address_claim *out);
/* Validates an Endorsement found in the vouch slot of subject. */
int pst_ingest_vouch_value(pst_node *n, const uint8_t subject[32], const uint8_t *val, size_t len,
                           pst_endorsement *out);
/* The checks every value of subject's vouch slot passes, in two steps so a
 * reader of that open slot can decide between them whether a value is worth
 * an Ed25519 (vouch.c): _decode is cheap (size cap, record type, strict
 * decode, subject); _verify checks signature, time and that the signer is
 * not revoked. Both return PST_OK or the error and set *reason (may be
 * NULL) to the counter reason, NULL when it is named after the error
 * (pst_err_reason); neither counts. *out is zeroed on failure. */
int pst_vouch_value_decode(const uint8_t subject[32], const uint8_t *val, size_t len,
                           pst_endorsement *out, const char **reason);
__attribute__((warn_unused_result)) int
pst_vouch_value_verify(pst_node *n, const pst_endorsement *e, const char **reason);
/* Starts listening on our own slots (key, addresses, vouch, inbox). */
int pst_ingest_listen_own(pst_node *n);
/* Reads our own key, address and vouch slots once (a listen can miss values
 * under load); values already looked at are skipped, so each is counted
 * once. Called with the inbox poll. */
void pst_ingest_poll_own(pst_node *n);
/* True while a read started by pst_ingest_poll_own runs (one at a time). */
bool pst_ingest_own_get_busy(pst_node *n);

/* bootstrap.c */
void pst_bootstrap_start(pst_node *n);
/* Why this node is alone (pst_node_joined() is false), in words for one
 * line: why (e.g. "no seed answered (127.0.0.1:4222 tried)")
 * and advice (what to do). Returns a stable word for JSON: "no_seed",
 * "no_seed_answered" or "no_answer" (seeds answered, gets and puts do not). */
const char *pst_bootstrap_describe_alone(const pst_node *n, char *why, size_t whycap, char *advice,
                                         size_t advicecap);

/* publish.c */
int pst_publish_start(pst_node *n);
/* Publishes a revocation (already verified) for our key or another's. */
int pst_publish_revocation(pst_node *n, const uint8_t *bytes, size_t len, pst_dht_done_cb done,
                           void *user);
/* Re-puts every record we publish now (after a change of our records or
 * of the network), outside the republish schedule. */
void pst_publish_now(pst_node *n);
/* Puts one of our records now (kind PST_PUB_*; its last-put time is updated
 * on success). done may be NULL. Returns 0 or the error of pst_dht_put
 * (then done is not called). */
int pst_publish_put(pst_node *n, int kind, const uint8_t slot[PST_SLOT_BYTES], const uint8_t *bytes,
                    size_t len, pst_dht_done_cb done, void *user);

/* lookup.c: finding keys (`key get`, and recipients for `send`) */
#define PST_RESOLVE_KEYS_MAX 16u /* keys considered for one address */
typedef enum {
    PST_KEY_VALID = 0,
    PST_KEY_NOT_FOUND = 2,
    PST_KEY_REVOKED = 3,
    PST_KEY_EXPIRED = 4,
    PST_KEY_FROM_FUTURE = 5, /* only records created too far ahead of our clock */
} pst_key_status;
typedef struct {
    uint8_t pk[32];
    pst_key_status status;
    bool have_keyrec; /* keyrec valid (or the refused one, for EXPIRED/FROM_FUTURE) */
    pst_keyrec keyrec;
    pst_revocation revocation; /* when status == PST_KEY_REVOKED */
    bool from_dht;             /* the DHT answered for this key */
    /* ... through the listen that keeps the watched cache fresh
     * (keycache.c), without a get */
    bool listened;
} pst_resolved_key;
typedef struct {
    bool by_address;
    char address[PST_ADDRESS_MAX + 1]; /* normalized, when by_address */
    bool dht_ok;                       /* every DHT get finished in time */
    bool address_listened;             /* the address slot: watched, no get */
    uint64_t started_ms, lookup_ms;
} pst_resolve_info;
/* keys/info are valid during the call only. err != 0 only for internal
 * failures; "nothing found" is n == 0 (address) or PST_KEY_NOT_FOUND. */
typedef void (*pst_resolve_cb)(void *user, int err, const pst_resolved_key *keys, unsigned n,
                               const pst_resolve_info *info);
/* Looks query (fingerprint or address) up in the DHT, stores what is valid,
 * and reports every candidate key with its status. asked: the user asked
 * for it (`key get`, `send`), so a key looked up by fingerprint votes on
 * this node's clock (pst_clock.h); a background refresh passes false.
 * Returns PST_E_INVAL when query is neither (cb not called), else 0 and cb
 * is called exactly once. */
int pst_resolve(pst_node *n, const char *query, bool asked, pst_resolve_cb cb, void *user);
/* "valid", "revoked", "expired", "from_future" or "not_found" (JSON). */
const char *pst_key_status_name(pst_key_status s);

/* keycache.c: the key and address slots of keys a person looked up are
 * listened to (values go through ingest into the store), so lookups of
 * them are answered from the store without a DHT get while fresh: the
 * listen runs and a get answered within PST_KEYCACHE_RECHECK_MS. */
#define PST_KEYCACHE_WATCH_MAX 64u      /* slots watched; LRU gives way */
#define PST_KEYCACHE_RECHECK_MS 600000u /* a get at least this often */
/* Whether the slot of pk (by_address false) or of address is watched and
 * fresh; marks it used. */
bool pst_keycache_fresh(pst_node *n, bool by_address, const uint8_t pk[32], const char *address);
/* A get answered for that slot: it is fresh from now, listened to from now
 * (daemon only; a failed listen leaves it unwatched). */
void pst_keycache_checked(pst_node *n, bool by_address, const uint8_t pk[32], const char *address);
/* Slots listened to now (status). */
unsigned pst_keycache_watched(const pst_node *n);
/* Cancels every listen and frees the cache (the node's stop, before the
 * DHT closes; the cache's timer holds a node handle until it is closed). */
void pst_keycache_stop(pst_node *n);
/* Revocation re-puts bounded (issue 16): a node that received at least this
 * many copies of a revocation since its last re-put of it skips the next
 * one; the key's owner always re-puts. PST_REVSEEN_MAX revocations are
 * counted; one not counted is re-put (never skipped for lack of memory). */
#define PST_REVOCATION_COPIES_ENOUGH 8u
#define PST_REVSEEN_MAX 64u
/* A copy of pk's revocation, already in the store, reached us (ingest). */
void pst_keycache_revocation_copy(pst_node *n, const uint8_t pk[32]);
/* Whether this round re-puts pk's revocation: false when enough copies
 * came since the last round. Starts a new count either way. */
bool pst_keycache_revocation_reput(pst_node *n, const uint8_t pk[32]);
/* ---- vouches: trust.c, vouch.c, vouch_check.c --------------------------------- */
/* "trusted", "known", "blocked" or "unknown" (static strings). */
const char *pst_trust_tier_name(pst_store_tier t);
/* An endorsement's tier (pst_endorsement_tier): "trusted", "known" or
 * "withdrawn" (static strings). */
const char *pst_vouch_tier_name(unsigned tier);
/* Signs e (subject, tier, created and expires set by the caller) with our
 * identity key (n->id must be set), stores it as our one published vouch
 * for its subject (replacing the previous one; re-put with our other
 * records) and puts it now. Returns the error when it cannot be made or
 * stored (done not called; PST_E_NOKEY on a device without the identity
 * key); else PST_OK and done(user, status of the put)
 * once, during the call when the put cannot start. */
int pst_trust_vouch_publish(pst_node *n, pst_endorsement *e, pst_dht_done_cb done, void *user);
/* One voucher's newest endorsement of a key. */
typedef struct {
    uint8_t voucher[32];
    unsigned tier; /* pst_endorsement_tier; 0 = withdrawn */
    uint64_t created, expires;
    bool voucher_is_contact;
    pst_store_tier voucher_tier; /* when voucher_is_contact */
} pst_vouch;
/* vouches valid during the call; more = values not examined (caps). */
typedef void (*pst_vouches_cb)(void *user, int status, const pst_vouch *vouches, unsigned n,
                               uint64_t more);
/* Gets and checks the vouch slot of subject. 0 and cb once, or an error and
 * no cb. */
int pst_trust_vouches(pst_node *n, const uint8_t subject[32], pst_vouches_cb cb, void *user);
/* The same, but cb comes at the latest wait_ms (0: no limit) after the
 * call: then with status PST_E_TIMEOUT, the vouches found so far plus the
 * contacts' vouches remembered from earlier reads of subject, and more the
 * larger of the values not examined so far and by the last complete read.
 * The read goes on and refreshes that memory. */
int pst_trust_vouches_within(pst_node *n, const uint8_t subject[32], uint32_t wait_ms,
                             pst_vouches_cb cb, void *user);
/* True when v makes its subject "known": a current vouch by a trusted contact. */
bool pst_vouch_makes_known(const pst_vouch *v, uint64_t now);
/* Is pk vouched for (known through vouch_depth)? 1 yes, 0 no, -1 not looked
 * up yet (or the answer is older than the cache lifetime). */
int pst_trust_vouched(pst_node *n, const uint8_t pk[32]);
/* Looks pk's vouches up (bounded: PST_E_BUSY when too many run) and caches
 * the answer; done (may be NULL) runs when it is known. */
int pst_trust_vouch_check(pst_node *n, const uint8_t pk[32], void (*done)(pst_node *, void *),
                          void *user);
/* Drops the cached vouch answers: every one (pk NULL; the contact list
 * changed, so lookups in flight are not cached either) or pk's. Lookups
 * in flight for pk are kept. */
void pst_trust_forget_answers(pst_node *n, const uint8_t pk[32]);
/* True while a vouch lookup for pk runs. */
bool pst_trust_vouch_pending(pst_node *n, const uint8_t pk[32]);
/* Could the vouch-slot value val change subject's answer to "vouched"? An
 * endorsement of subject, not a withdrawal, signed (verified: one Ed25519)
 * by a trusted contact; with vouch_depth >= 2 also one by anyone not
 * blocked (unverified: the lookup this leads to checks it). */
bool pst_trust_vouch_news(pst_node *n, const uint8_t subject[32], const uint8_t *val, size_t len);
/* Frees the vouch cache and the reads in flight (at the node\'s finalize,
 * after the DHT closed: their callbacks have run). */
void pst_trust_free(pst_node *n);
/* Appends (as strings) the notices not shown yet: contacts whose key was
 * revoked, and a replacement key they name, which is never trusted by
 * itself. Marks them shown. Returns how many. */
unsigned pst_trust_notices(pst_node *n, pst_value *arr);
/* Appends one map per vouch to arr (for key get). */
void pst_vouches_describe(pst_value *arr, const pst_vouch *v, unsigned count, pst_node *n);

/* ---- devices: devices.c, devices_dht.c (issue 13) --------------------------- */
/* At start, after the identity (node.c): loads HOME/device.key when present
 * into n->device. A home with device.key and no identity.key is a joined
 * device: n->id then carries the identity's public key (the store's
 * identity_pk) and this device's box keys, and no identity secret key
 * (n->holds_identity false). Errors name the file (err). */
int pst_keys_devices_load(pst_node *n, bool have_identity_file, char *err, size_t errcap);
/* The key pair this node signs mail/receipts with and opens notifications
 * with: HOME/device.key when present, else the identity key. NULL in a
 * one-shot node. */
const pst_identity *pst_node_device_keys(pst_node *n);
/* The highest-seq verified device list of identity_pk from the store: 0 or
 * PST_E_NOTFOUND (or a store error); out zeroed on error. Synchronous. */
int pst_keys_devlist_cached(pst_node *n, const uint8_t identity_pk[32], pst_devlist *out);
/* list is valid during the call only; rc 0 with the best list, or
 * PST_E_NOTFOUND when the identity publishes none (or an error). */
typedef void (*pst_keys_devlist_cb)(pst_node *n, int rc, const pst_devlist *list, void *arg);
/* DHT get of the devices slot of identity_pk: every value is checked
 * (pst_keys_devlist_ingest), the best is cached, then cb once on the loop.
 * Returns an error (and never calls cb) if it could not start. */
int pst_keys_devlist_fetch(pst_node *n, const uint8_t identity_pk[32], pst_keys_devlist_cb cb,
                           void *arg);
/* 0 if device_pk is identity_pk or a current device of the cached list;
 * PST_E_REVOKED if tombstoned (or dropped from a list that once named it);
 * PST_E_NOTFOUND if not in the cached list (fetch, then ask again). */
int pst_keys_device_valid(pst_node *n, const uint8_t identity_pk[32], const uint8_t device_pk[32]);
/* True when our own identity's newest list no longer names this device. */
bool pst_keys_self_revoked(pst_node *n);
/* The one check of a device-slot value of identity_pk: size cap, type,
 * strict decode, signer == identity_pk (PST_E_SIGNER), verify, then the
 * store's seq rule (PST_E_STALE for a replay); caches it and the device
 * names. Counts every refusal as rejected.devices.REASON. out (may be NULL)
 * gets the list on success. For our own identity it also updates
 * self-revocation and keeps the list alive with our records. */
int pst_keys_devlist_ingest(pst_node *n, const uint8_t identity_pk[32], const uint8_t *val,
                            size_t len, pst_devlist *out);
/* Signs l with our identity key (PST_E_NOKEY on a device without it), sets
 * signer and created, trims tombstones to fit, ingests it (its seq must be
 * above the cached one) and puts it in the DHT. done may be NULL. */
int pst_keys_devlist_publish(pst_node *n, pst_devlist *l, pst_dht_done_cb done, void *user);
/* Listens on our own devices slot (new devices, our own revocation); the
 * republish round backs it up with a get (pst_keys_devlist_poll_own). */
int pst_keys_devlist_listen_own(pst_node *n);
void pst_keys_devlist_poll_own(pst_node *n);
/* The name of the first device in a list (the one holding the identity
 * key) until it is renamed. */
#define PST_DEVICE_FIRST_NAME "first device"
/* Store meta set by `postern identity recover` until the node published the
 * list that revokes every old device. */
#define PST_META_RECOVER_PENDING "recover_pending"
/* pairing.c: `postern device add`. Makes a one-time code for a device named
 * name (valid ttl_s seconds) and listens for it on the advertised IPv4
 * address. PST_E_NOKEY (this device does not hold the identity key),
 * PST_E_BUSY (PST_DEVICES_MAX devices already), PST_E_INVAL (no IPv4
 * endpoint), PST_E_IO; err says what to do. */
#define PST_PAIR_TTL_DEFAULT_S 600u
#define PST_PAIR_TTL_MAX_S 3600u
int pst_pairing_add(pst_node *n, const char *name, uint32_t ttl_s,
                    char code_out[PST_PAIR_CODE_STRLEN + 1], uint64_t *expires, char *err,
                    size_t errcap);
/* Closes the pairing listener (at stop); _free releases the codes after
 * the handles closed (finalize). */
void pst_pairing_stop(pst_node *n);
void pst_pairing_free(pst_node *n);
/* Cancels the listen (at stop, before the DHT closes). */
void pst_keys_devices_stop(pst_node *n);
/* Appends one map per device of identity_pk's cached list (current and
 * tombstoned: id, name, created, revoked, this_device) to arr. Returns the
 * count, 0 when no list is cached. */
unsigned pst_keys_devices_describe(pst_node *n, const uint8_t identity_pk[32], pst_value *arr);

#endif
