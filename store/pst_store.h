/* Postern's durable state: one SQLite database behind a small C interface.
 * store/ is the only code that includes sqlite3.h. Records are kept as opaque
 * bytes plus the metadata needed to query them; the caller verifies every
 * record with proto/ before storing it. docs/store.md describes the schema.
 *
 * Conventions for every function below:
 * - Returns 0 (PST_OK) or a negative PST_E_* code. SQLite failures give
 *   PST_E_STORE (PST_E_BUSY when the database stays locked past the busy
 *   timeout, PST_E_NOMEM when SQLite runs out of memory); the text is then
 *   in pst_store_last_error().
 * - A write that returned 0 is durable (fsync'd) unless it was made inside
 *   an explicit pst_store_begin()/pst_store_commit() batch, which is durable
 *   when pst_store_commit() returns 0.
 * - Keys are 32-byte Ed25519 public keys. Times are unix seconds and must
 *   fit in int64 (else PST_E_RANGE); expires = 0 means never. Sequence
 *   numbers use the full uint64 range.
 * - Blob outputs: if cap is too small, PST_E_NOSPACE with *len set to the
 *   length needed and the other outputs zeroed. On any other failure all
 *   outputs are zeroed.
 * - List functions call cb once per row, in a stable order. A nonzero return
 *   from cb stops the walk and becomes the list function's return value (so
 *   cb may return a PST_E_* code). Pointers in a row are valid only during
 *   the call. cb may call other store functions; rows it changes in the table
 *   being listed may or may not be seen. cb is never called when the list
 *   function fails before the first row.
 * - A handle belongs to one thread at a time (the node's libuv loop). */
#ifndef PST_STORE_H
#define PST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Schema version this code writes (PRAGMA user_version). A database with a
 * newer version is refused with PST_E_VERSION. */
#define PST_STORE_SCHEMA_VERSION 9

#define PST_STORE_BLOB_MAX PST_RECORD_MAX /* any stored record or meta blob */
#define PST_STORE_NAME_MAX 64u            /* meta and counter names, bytes */
#define PST_STORE_PETNAME_MAX 64u         /* contact petname, bytes of UTF-8 */
#define PST_STORE_ADDRESS_MAX 254u        /* mail address (RFC 5321 path) */
#define PST_STORE_KIND_MAX 255            /* published record kind: 0..255 */
#define PST_STORE_FOLDER_MAX 64u          /* Maildir folder name, bytes */
#define PST_STORE_FILENAME_MAX 255u       /* Maildir file name, bytes */
#define PST_STORE_ERR_MAX 256u            /* pst_store_last_error() text */

typedef struct pst_store pst_store;

/* On calls whose result is a decision (stale? revoked? seen?), not a mere
 * status. */
#define PST_STORE_MUST_CHECK __attribute__((warn_unused_result))

/* ---- handle -------------------------------------------------------------- */

/* Opens (creating if needed, mode 0600) the database at path, or a private
 * in-memory one for ":memory:". Sets WAL journal mode (files), synchronous
 * = FULL, foreign keys and a busy timeout, then applies pending schema
 * migrations, one transaction each. *out is NULL on failure. Errors:
 * PST_E_INVAL, PST_E_NOMEM, PST_E_IO (cannot create/open the file),
 * PST_E_VERSION (schema newer than this code), PST_E_STORE (not a database,
 * not a Postern database, corrupt, or WAL unavailable), PST_E_BUSY. */
int pst_store_open(pst_store **out, const char *path);

/* pst_store_open() that also explains a failure: writes a NUL-terminated
 * message (e.g. "file is not a database") to err (errcap bytes, may be 0). */
int pst_store_open_ex(pst_store **out, const char *path, char *err, size_t errcap);

/* Rolls back an unfinished batch, frees everything. NULL is a no-op. */
void pst_store_close(pst_store *st);

/* Message of the last failure recorded on st (SQLite's text, or the store's
 * own explanation); "" when none. Static storage inside st: valid until the
 * next call on st. Never NULL. */
const char *pst_store_last_error(const pst_store *st);

/* Explicit batch: everything between begin and commit is one transaction,
 * made durable by commit. A failing call inside the batch undoes only its own
 * changes. begin inside a batch, or commit/rollback outside one, is
 * PST_E_INVAL. If commit fails the batch is rolled back. */
int pst_store_begin(pst_store *st);
/* pst_store_begin for a batch nobody is told about (the recipient's record
 * of a notification it accepted: the sender puts it again until a receipt
 * comes): its commit writes the WAL without an fsync of its own, so it
 * survives a crash of the process and becomes durable with the next
 * ordinary commit (in the node: the fetch attempt, before the fetch); a
 * power loss before that may take it back. */
int pst_store_begin_lazy(pst_store *st);
int pst_store_commit(pst_store *st);
int pst_store_rollback(pst_store *st);

/* Group commit for lazy writes (ones made without an fsync of their own:
 * pst_store_begin_lazy, pst_store_outbox_receipt_lazy). pst_store_synced is
 * a count that grows with every commit that wrote and fsynced the WAL file;
 * such a commit makes every lazy write before it durable too. So a lazy
 * write is durable once pst_store_synced() is above the value it had right
 * after the write. pst_store_sync makes such a commit now (it writes one meta
 * row, "store_synced"): for a caller that cannot wait for the next one.
 * Outside a batch only (PST_E_INVAL). */
uint64_t pst_store_synced(const pst_store *st);
int pst_store_sync(pst_store *st);

typedef struct {
    int schema_version;
    char journal_mode[16]; /* "wal" for files, "memory" for ":memory:" */
    int synchronous;       /* 0 off, 1 normal, 2 full, 3 extra */
    int foreign_keys;      /* 1 when enforced */
    uint64_t page_size;
    uint64_t page_count;
    uint64_t freelist_count;
} pst_store_info;

/* Settings actually in effect and size figures (for `postern status`). */
int pst_store_info_get(pst_store *st, pst_store_info *out);

/* Runs SQLite's quick_check: 0 when the file is sound, PST_E_STORE with the
 * first problem in pst_store_last_error() otherwise. Linear in file size. */
int pst_store_check(pst_store *st);

/* ---- meta: small named values (own sequence counter, network id, ...) ---- */

/* name is 1..PST_STORE_NAME_MAX bytes. A value has one type: getting a u64
 * that was set as a blob (or the reverse) is PST_E_TYPE. Unknown name:
 * PST_E_NOTFOUND. */
int pst_store_meta_get_u64(pst_store *st, const char *name, uint64_t *value);
int pst_store_meta_set_u64(pst_store *st, const char *name, uint64_t value);
/* Atomically adds 1 (an absent value counts as 0) and returns the new value:
 * for sequence numbers that must never repeat. PST_E_RANGE at UINT64_MAX. */
int pst_store_meta_next_u64(pst_store *st, const char *name, uint64_t *value);
/* Blobs are 0..PST_STORE_BLOB_MAX bytes (else PST_E_TOOBIG). */
int pst_store_meta_get_blob(pst_store *st, const char *name, uint8_t *buf, size_t cap, size_t *len);
int pst_store_meta_set_blob(pst_store *st, const char *name, const uint8_t *buf, size_t len);
/* PST_E_NOTFOUND when absent. */
int pst_store_meta_delete(pst_store *st, const char *name);

/* ---- key cache and the per-key sequence high-water mark ------------------ */

/* Caches a verified key record (bytes: 1..PST_STORE_BLOB_MAX, else
 * PST_E_INVAL / PST_E_TOOBIG). The highest seq ever accepted for pk is kept
 * forever in key_seq_high with a hash of its bytes, so after purge or restart
 * an old record still never wins:
 * - seq below the highest known: PST_E_STALE;
 * - seq equal, same bytes: 0 (no change, or re-cached if purged);
 * - seq equal, other bytes: PST_E_STALE;
 * - otherwise stored, replacing the cached record: 0.
 * Already expired at now (expires != 0 && expires <= now): PST_E_EXPIRED,
 * expires before created: PST_E_INVAL. Nothing changes on failure. */
int pst_store_keyrec_put(pst_store *st, const uint8_t pk[32], uint64_t seq, uint64_t created,
                         uint64_t expires, const uint8_t *bytes, size_t len, uint64_t now);

/* The cached record of pk (possibly expired: check expires). seq and
 * expires may be NULL. PST_E_NOTFOUND when none is cached. */
int pst_store_keyrec_get(pst_store *st, const uint8_t pk[32], uint8_t *buf, size_t cap, size_t *len,
                         uint64_t *seq, uint64_t *expires);

/* Deletes cached records with expires != 0 && expires <= now. The
 * high-water marks stay. */
int pst_store_keyrec_purge_expired(pst_store *st, uint64_t now);

/* Highest seq ever accepted for pk; PST_E_NOTFOUND if never seen. */
int pst_store_seq_high(pst_store *st, const uint8_t pk[32], uint64_t *seq);

typedef struct {
    const uint8_t *pk; /* 32 bytes */
    uint64_t seq, created, expires;
    uint64_t stored; /* now at the put that cached it */
    const uint8_t *bytes;
    size_t len;
} pst_store_keyrec_row;
typedef int (*pst_store_keyrec_cb)(const pst_store_keyrec_row *row, void *user);

/* Every cached key record, ordered by pk. */
int pst_store_keyrec_list(pst_store *st, pst_store_keyrec_cb cb, void *user);

/* ---- address claims ------------------------------------------------------ */

/* Caches the claim of address (1..PST_STORE_ADDRESS_MAX bytes, no control
 * characters; stored exactly as given, so normalise first) by pk. Same seq
 * rule as keys, per (address, pk), with its own permanent high-water mark. */
int pst_store_addrclaim_put(pst_store *st, const char *address, const uint8_t pk[32], uint64_t seq,
                            uint64_t expires, const uint8_t *bytes, size_t len);

typedef struct {
    const uint8_t *pk; /* the claiming key, 32 bytes */
    uint64_t seq, expires;
    const uint8_t *bytes;
    size_t len;
} pst_store_addrclaim_row;
typedef int (*pst_store_addrclaim_cb)(const pst_store_addrclaim_row *row, void *user);

/* Every cached claim of address (several keys may claim one), ordered by pk.
 * No claims: 0 and no call. */
int pst_store_addrclaim_list(pst_store *st, const char *address, pst_store_addrclaim_cb cb,
                             void *user);

/* Deletes claims with expires != 0 && expires <= now; high-water marks stay. */
int pst_store_addrclaim_purge_expired(pst_store *st, uint64_t now);

/* ---- revocations: permanent ---------------------------------------------- */

/* Stores the revocation of pk. The first one stored wins forever: another
 * with identical bytes is 0, with different bytes PST_E_EXISTS. There is no
 * delete. */
int pst_store_revocation_put(pst_store *st, const uint8_t pk[32], const uint8_t *bytes, size_t len,
                             uint64_t created, uint64_t now);
/* PST_E_NOTFOUND when pk is not revoked. */
int pst_store_revocation_get(pst_store *st, const uint8_t pk[32], uint8_t *buf, size_t cap,
                             size_t *len);
/* 1 when pk is revoked, 0 when not, a negative PST_E_* on error (so a test
 * `if (pst_store_is_revoked(...))` fails safe). */
PST_STORE_MUST_CHECK int pst_store_is_revoked(pst_store *st, const uint8_t pk[32]);

typedef struct {
    const uint8_t *pk;
    uint64_t created, stored;
    const uint8_t *bytes;
    size_t len;
} pst_store_revocation_row;
typedef int (*pst_store_revocation_cb)(const pst_store_revocation_row *row, void *user);
int pst_store_revocation_list(pst_store *st, pst_store_revocation_cb cb, void *user);

/* ---- device lists (issue 13) --------------------------------------------- */

/* Caches the verified DeviceList (bytes) of identity. The row is replaced,
 * never deleted, so its seq is a permanent high-water mark: seq below it,
 * or equal with other bytes: PST_E_STALE (a replay); equal with the same
 * bytes: 0, no change; higher: replaced, 0. Verify before putting. */
int pst_store_devlist_put(pst_store *st, const uint8_t identity[32], uint64_t seq,
                          const uint8_t *bytes, size_t len, uint64_t now);
/* The cached list of identity; seq may be NULL. PST_E_NOTFOUND if none,
 * PST_E_NOSPACE if cap is too small. */
int pst_store_devlist_get(pst_store *st, const uint8_t identity[32], uint8_t *buf, size_t cap,
                          size_t *len, uint64_t *seq);
/* Remembers the name and creation time of a device of identity (a
 * tombstone carries neither). name: 1..64 bytes, no controls. */
int pst_store_device_seen_put(pst_store *st, const uint8_t identity[32], const uint8_t device[32],
                              const char *name, uint64_t created);
/* name (cap bytes, NUL-terminated) and created of a device seen before;
 * PST_E_NOTFOUND if never seen. */
int pst_store_device_seen_get(pst_store *st, const uint8_t identity[32], const uint8_t device[32],
                              char *name, size_t cap, uint64_t *created);

/* ---- contacts and trust tiers -------------------------------------------- */

/* Wire-independent values; 0 is "no contact" and never stored. */
typedef enum {
    PST_STORE_TIER_TRUSTED = 1,
    PST_STORE_TIER_KNOWN = 2,
    PST_STORE_TIER_BLOCKED = 3,
} pst_store_tier;

/* Creates or updates the contact pk. petname: NULL keeps the current one
 * (none for a new contact), "" removes it, otherwise 1..PST_STORE_PETNAME_MAX
 * bytes without control characters (else PST_E_INVAL / PST_E_TOOBIG). */
int pst_store_contact_set(pst_store *st, const uint8_t pk[32], pst_store_tier tier,
                          const char *petname, uint64_t now);
/* PST_E_NOTFOUND when pk is not a contact. */
int pst_store_contact_rm(pst_store *st, const uint8_t pk[32]);
/* tier may be NULL; petname may be NULL (not wanted), else receives the
 * petname or "" (cap >= PST_STORE_PETNAME_MAX + 1 always suffices; smaller
 * and too small: PST_E_NOSPACE). Unknown pk: PST_E_NOTFOUND. */
int pst_store_contact_get(pst_store *st, const uint8_t pk[32], pst_store_tier *tier, char *petname,
                          size_t cap);

typedef struct {
    const uint8_t *pk;
    pst_store_tier tier;
    const char *petname; /* "" when none */
    uint64_t created, updated;
} pst_store_contact_row;
typedef int (*pst_store_contact_cb)(const pst_store_contact_row *row, void *user);
int pst_store_contact_list(pst_store *st, pst_store_contact_cb cb, void *user);

/* Email addresses a contact carries (Internet mail over LMTP gets the
 * contact's tier when the receiving server vouches for its From:,
 * docs/LMTP.md). An address is stored in ASCII lower case, 3..254 bytes
 * with an '@' and no control character or white space, and belongs to one
 * contact only. Removing the contact removes its addresses. */
#define PST_STORE_CONTACT_EMAILS_MAX 16u /* per contact */
/* Adds email to contact pk: PST_OK (also when pk has it already),
 * PST_E_EXISTS (another contact has it), PST_E_NOTFOUND (pk is not a
 * contact), PST_E_TOOBIG (pk has PST_STORE_CONTACT_EMAILS_MAX already),
 * PST_E_INVAL (not an address). */
int pst_store_contact_email_add(pst_store *st, const uint8_t pk[32], const char *email);
/* PST_E_NOTFOUND when pk does not carry email. */
int pst_store_contact_email_rm(pst_store *st, const uint8_t pk[32], const char *email);
/* The contact carrying email (compared in ASCII lower case): its key into
 * pk and its tier. PST_E_NOTFOUND when none; pk and *tier zeroed then. */
int pst_store_contact_by_email(pst_store *st, const char *email, uint8_t pk[32],
                               pst_store_tier *tier);
/* Calls cb with each address of pk, in order; a nonzero return stops. */
typedef int (*pst_store_email_cb)(const char *email, void *user);
int pst_store_contact_emails(pst_store *st, const uint8_t pk[32], pst_store_email_cb cb,
                             void *user);

/* ---- own published records (re-put after restart and before DHT expiry) -- */

/* Stores our own record of kind (0..PST_STORE_KIND_MAX, e.g. a pst_rec_type)
 * for DHT slot, replacing the previous one of (kind, slot) and marking it
 * published at now. A seq lower than the stored one is PST_E_STALE (never
 * go back to an older record); equal or higher replaces. */
int pst_store_published_put(pst_store *st, int kind, const uint8_t slot[PST_SLOT_BYTES],
                            const uint8_t *bytes, size_t len, uint64_t seq, uint64_t now);
/* Records that (kind, slot) was re-put at now. PST_E_NOTFOUND if absent. */
int pst_store_published_touch(pst_store *st, int kind, const uint8_t slot[PST_SLOT_BYTES],
                              uint64_t now);
/* Stops publishing (kind, slot). PST_E_NOTFOUND if absent. */
int pst_store_published_rm(pst_store *st, int kind, const uint8_t slot[PST_SLOT_BYTES]);

typedef struct {
    int kind;
    const uint8_t *slot; /* PST_SLOT_BYTES */
    uint64_t seq;
    uint64_t stored;    /* now at the put */
    uint64_t published; /* now at the last put or touch */
    const uint8_t *bytes;
    size_t len;
} pst_store_published_row;
typedef int (*pst_store_published_cb)(const pst_store_published_row *row, void *user);
/* Ordered by (kind, slot). */
int pst_store_published_list(pst_store *st, pst_store_published_cb cb, void *user);

/* ---- persisted counters (rejections by reason, ...) ---------------------- */

/* Adds delta to counter name (1..PST_STORE_NAME_MAX bytes; created at 0). A
 * result outside int64 is PST_E_RANGE and changes nothing. */
int pst_store_counter_add(pst_store *st, const char *name, int64_t delta);
/* PST_E_NOTFOUND for a counter never added to. */
int pst_store_counter_get(pst_store *st, const char *name, int64_t *value);
typedef int (*pst_store_counter_cb)(const char *name, int64_t value, void *user);
/* Ordered by name. */
int pst_store_counter_list(pst_store *st, pst_store_counter_cb cb, void *user);

/* ---- mail: outbox, inbox index, spent stamps (store_mail.c) -------------- */

/* The outbox keeps what the sender must remember about each message: its
 * size and times, and per recipient the kind, the notification to keep alive,
 * the delivery state and the receipt. The ciphertext itself is NOT in the
 * database, except a small one (PST_STORE_BODY_INLINE_MAX, below): the node
 * keeps it in a file named after the message id (DIR/outbox/<hex>), written
 * and fsync'd before the rows are committed, so a message of tens of MiB
 * never passes through SQLite (nor its WAL) and the fetch server streams it
 * with plain file reads. A message is "live" while
 * any recipient is pending; once none is, pst_store_outbox_get() says
 * PST_E_NOTFOUND and the node deletes the file. */
#define PST_STORE_BODY_MAX (64u * 1024u * 1024u) /* ciphertext bytes (= PST_MESSAGE_SIZE_MAX) */
#define PST_STORE_MSGID_BYTES PST_HASH_BYTES     /* message id: hash of the ciphertext */
#define PST_STORE_STAMP_ID_MAX 64u               /* spent-stamp key (e.g. its SHA-1) */
#define PST_STORE_SUBJECT_MAX 200u               /* subject kept for `postern outbox`, bytes */

typedef enum {
    PST_STORE_OUT_PENDING = 1,   /* notification kept alive, waiting for a receipt */
    PST_STORE_OUT_DELIVERED = 2, /* receipt stored */
    PST_STORE_OUT_FAILED = 3,    /* given up (e.g. recipient revoked) */
    PST_STORE_OUT_EXPIRED = 4,   /* message expired before a receipt came */
    PST_STORE_OUT_WITHDRAWN = 5, /* the sender withdrew it before it was fetched */
} pst_store_out_state;

/* How the sender addressed a recipient. Kept for the sender only (chain of
 * custody): a Bcc recipient appears in nobody's copy of the message. */
typedef enum {
    PST_STORE_RCPT_TO = 1,
    PST_STORE_RCPT_CC = 2,
    PST_STORE_RCPT_BCC = 3,
} pst_store_rcpt_kind;
/* "to", "cc" or "bcc" (as `send` and `outbox` show them); "to" for any
 * other value, as the store reads an unknown kind as a plain recipient. */
const char *pst_store_rcpt_kind_name(pst_store_rcpt_kind k);

/* Records an outgoing message of size ciphertext bytes (1..PST_STORE_BODY_MAX,
 * else PST_E_INVAL / PST_E_TOOBIG) whose body the caller has made durable.
 * subject: NULL or "" for none, else <= PST_STORE_SUBJECT_MAX bytes of UTF-8
 * without control characters (PST_E_INVAL / PST_E_TOOBIG). Add it and its
 * recipients in one pst_store_begin() batch so a crash leaves all or
 * nothing. PST_E_EXISTS if msg_id is already there. */
int pst_store_outbox_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES], uint64_t size,
                         uint64_t created, uint64_t expires, const char *subject);
/* Adds recipient rcpt of kind (state PENDING) with the notification that the
 * node keeps alive in its inbox slot (1..PST_STORE_BLOB_MAX bytes).
 * PST_E_INVAL for a bad kind, PST_E_NOTFOUND if the message is not in the
 * outbox, PST_E_EXISTS if rcpt is already a recipient, PST_E_STALE if the
 * message is already finished. */
int pst_store_outbox_rcpt_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              const uint8_t rcpt[32], pst_store_rcpt_kind kind,
                              const uint8_t *notification, size_t len, uint64_t now);
/* Small bodies in the store (store_outbody.c, migration 9): a ciphertext of
 * at most PST_STORE_BODY_INLINE_MAX bytes is kept in the database instead of
 * a file, committed in the same batch as the message's rows, so that the
 * send waits for one fsync (the WAL's) instead of three (file, directory,
 * WAL). It is deleted with the message's body: as soon as the message
 * finishes (nobody pending: the last receipt, unsend, expiry), in the same
 * transaction. */
#define PST_STORE_BODY_INLINE_MAX 65536u
/* Stores body (len bytes, 1..PST_STORE_BODY_INLINE_MAX, else PST_E_INVAL /
 * PST_E_TOOBIG) as the ciphertext of live message msg_id, whose recorded size
 * must be len. Call it in the pst_store_begin() batch that adds the message
 * (after pst_store_outbox_add). PST_E_NOTFOUND when no live message msg_id
 * of that size exists; PST_E_STORE when it already has a body. */
int pst_store_outbox_body_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              const uint8_t *body, size_t len);
/* Copies the stored body of live message msg_id into buf (cap bytes),
 * *len its length. PST_E_NOTFOUND when the message is not live or its body
 * is not in the store (a file); PST_E_NOSPACE (with *len the length
 * needed) when cap is too small. */
int pst_store_outbox_body_get(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              uint8_t *buf, size_t cap, size_t *len);
/* Size and times of a live message (any recipient pending: its body is
 * still needed). All outputs optional. PST_E_NOTFOUND otherwise. */
int pst_store_outbox_get(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES], uint64_t *size,
                         uint64_t *created, uint64_t *expires);
/* State of recipient rcpt of msg_id (PST_E_NOTFOUND if not a recipient):
 * the fetch server serves a message only to its pending recipients. */
int pst_store_outbox_rcpt_state(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                const uint8_t rcpt[32], pst_store_out_state *state);
/* Records that rcpt's notification was put into the DHT at now (time of the
 * last put and a count). Nothing changes unless rcpt is pending; 0 then too.
 * PST_E_NOTFOUND if rcpt is not a recipient. Outside a batch it commits
 * without an fsync of its own: durable with the next commit, kept across a
 * crash of the process, may be lost in a power loss before that. */
int pst_store_outbox_notified(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              const uint8_t rcpt[32], uint64_t now);
/* Records that the whole body was streamed to rcpt at now (time of the last
 * complete fetch and a count), whatever its state. PST_E_NOTFOUND if rcpt
 * is not a recipient. Durable like pst_store_outbox_notified. */
int pst_store_outbox_served(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                            const uint8_t rcpt[32], uint64_t now);
/* Stores rcpt's verified receipt: state DELIVERED. The first receipt stays:
 * the same bytes again are 0, different ones PST_E_DUPLICATE. When no
 * recipient is left pending the message is finished. PST_E_NOTFOUND if rcpt
 * is not a recipient; PST_E_STALE if it is FAILED, EXPIRED or WITHDRAWN. */
int pst_store_outbox_receipt(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                             const uint8_t rcpt[32], const uint8_t *receipt, size_t len,
                             uint64_t now);
/* pst_store_outbox_receipt without an fsync of its own (outside a batch):
 * it survives a crash of the process; it is durable once pst_store_synced()
 * has grown past its value after the call (the caller answers the receipt's
 * sender only then). Inside a batch it is the batch's. */
int pst_store_outbox_receipt_lazy(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                  const uint8_t rcpt[32], const uint8_t *receipt, size_t len,
                                  uint64_t now);
/* Gives up on a pending recipient: state FAILED (a no-op if not pending). */
int pst_store_outbox_fail(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                          const uint8_t rcpt[32], uint64_t now);
/* Withdraws every pending recipient of msg_id (state WITHDRAWN) and finishes
 * the message. *withdrawn (optional) gets how many were pending. Delivered
 * recipients keep their state and receipt. PST_E_NOTFOUND if msg_id is not
 * in the outbox. */
int pst_store_outbox_withdraw(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              uint64_t now, unsigned *withdrawn);
/* Marks pending recipients of expired messages EXPIRED, finishes messages
 * with nobody pending, and deletes finished messages (with their receipts)
 * finished more than keep_done seconds before now. */
int pst_store_outbox_gc(pst_store *st, uint64_t now, uint64_t keep_done);

typedef struct {
    const uint8_t *msg_id; /* PST_STORE_MSGID_BYTES */
    const uint8_t *rcpt;   /* 32 bytes */
    pst_store_rcpt_kind kind;
    pst_store_out_state state;
    const uint8_t *notification;
    size_t notification_len;
    const uint8_t *receipt; /* NULL unless DELIVERED */
    size_t receipt_len;
    uint64_t created, expires; /* of the message */
    uint64_t size;             /* ciphertext bytes */
    const char *subject;       /* "" when none */
    uint64_t done;             /* when the message finished (nobody pending), 0 if live */
    uint64_t updated;          /* last state change (for DELIVERED: the receipt's arrival) */
    uint64_t notified;         /* last DHT put, 0 if none yet */
    uint64_t notify_count;     /* DHT puts that succeeded */
    uint64_t served;           /* last complete fetch, 0 if none */
    uint64_t serve_count;      /* complete fetches */
} pst_store_outbox_row;
typedef int (*pst_store_outbox_cb)(const pst_store_outbox_row *row, void *user);
/* One row per (message, recipient), oldest message first, then by rcpt;
 * state 0 lists every state, else only that one (PENDING: what to keep
 * alive). */
int pst_store_outbox_list(pst_store *st, int state, pst_store_outbox_cb cb, void *user);
/* The rows of one message (every state), ordered by rcpt. No rows (unknown
 * message): 0 and no call. */
int pst_store_outbox_list_msg(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              pst_store_outbox_cb cb, void *user);

/* ---- the outbox per device (store_outdev.c, issue 13) ----------------------
 * A recipient identity with a device list gets one notification sealed to
 * each of its devices, and each device fetches its own copy: the sender
 * expects a receipt per device. The recipient's row stays PENDING (body,
 * notification and unsend stay) until every expected device that was not
 * dropped has a receipt; the node then stores the recipient's receipt with
 * pst_store_outbox_receipt. */

/* Expects device to fetch msg_id for recipient rcpt (call in the send's
 * batch, after pst_store_outbox_rcpt_add). PST_E_NOTFOUND if rcpt is not a
 * recipient of a live message, PST_E_EXISTS if already expected. */
int pst_store_outbox_device_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                const uint8_t rcpt[32], const uint8_t device[32]);
/* The recipient of msg_id that expects device (a pending recipient first)
 * into rcpt; PST_E_NOTFOUND (rcpt zeroed) when none does. */
int pst_store_outbox_device_rcpt(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                 const uint8_t device[32], uint8_t rcpt[32]);
/* Counts a complete fetch by device at now. PST_E_NOTFOUND if not
 * expected. */
int pst_store_outbox_device_served(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                   const uint8_t rcpt[32], const uint8_t device[32], uint64_t now);
/* Stores device's verified receipt (1..PST_STORE_BLOB_MAX bytes). The first
 * stays: the same bytes again are 0, others PST_E_DUPLICATE. *missing gets
 * how many expected devices of rcpt still have no receipt and were not
 * dropped (also on PST_E_DUPLICATE). PST_E_NOTFOUND if not expected. */
int pst_store_outbox_device_receipt(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                    const uint8_t rcpt[32], const uint8_t device[32],
                                    const uint8_t *receipt, size_t len, uint64_t now,
                                    unsigned *missing);
/* How many expected devices of rcpt have neither a receipt nor been
 * dropped (0 for a recipient without device rows). */
int pst_store_outbox_device_missing(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                    const uint8_t rcpt[32], unsigned *missing);
/* Stops expecting a device that has no receipt (it was revoked). 0 also
 * when it already had one or was dropped; PST_E_NOTFOUND if not expected. */
int pst_store_outbox_device_drop(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                 const uint8_t rcpt[32], const uint8_t device[32], uint64_t now);

typedef struct {
    const uint8_t *device; /* 32 bytes */
    uint64_t served;       /* last complete fetch, 0 if none */
    uint64_t serve_count;
    uint64_t received; /* when its receipt came, 0 if none */
    uint64_t dropped;  /* when it stopped being expected, 0 if it is */
    bool has_receipt;
} pst_store_outbox_device_row;
typedef int (*pst_store_outbox_device_cb)(const pst_store_outbox_device_row *row, void *user);
/* The expected devices of rcpt for msg_id, in the order they were added. No
 * rows: 0 and no call. */
int pst_store_outbox_device_list(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                 const uint8_t rcpt[32], pst_store_outbox_device_cb cb, void *user);

typedef enum {
    PST_STORE_IN_PENDING = 1,   /* notification accepted, body not yet fetched */
    PST_STORE_IN_DELIVERED = 2, /* in the Maildir */
    PST_STORE_IN_FAILED = 3,    /* fetch or verification failed for good */
} pst_store_in_state;

/* Records an accepted notification for msg_id from sender (state PENDING).
 * The UNIQUE msg_id makes delivery idempotent: a second notification for the
 * same message is PST_E_DUPLICATE and changes nothing. */
PST_STORE_MUST_CHECK int pst_store_inbox_add(pst_store *st,
                                             const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                             const uint8_t sender[32], const uint8_t *notification,
                                             size_t len, uint64_t expires, uint64_t now);
/* Counts a fetch attempt at now (for retry back-off). PST_E_NOTFOUND. */
int pst_store_inbox_attempt(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                            uint64_t now);
/* Records delivery into Maildir folder ("" = INBOX, else <=
 * PST_STORE_FOLDER_MAX bytes) as filename (1..PST_STORE_FILENAME_MAX bytes,
 * no '/'): state DELIVERED. Call after the file is durable. Same place again
 * is 0; a different one PST_E_DUPLICATE; unknown msg_id PST_E_NOTFOUND. */
int pst_store_inbox_delivered(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              const char *folder, const char *filename, uint64_t size,
                              uint64_t now);
/* Where a mail client moved or renamed a DELIVERED message: folder (as for
 * delivered) and filename without the ":2,FLAGS" info part; filename ""
 * records that the message is gone (deleted by a client), so listings do
 * not look for it again. Same place again is 0; PST_E_NOTFOUND unless the
 * row is DELIVERED. */
int pst_store_inbox_relocate(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                             const char *folder, const char *filename);
/* Gives up on a pending message: state FAILED. PST_E_NOTFOUND if unknown,
 * PST_E_STALE if already delivered. */
int pst_store_inbox_fail(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES], uint64_t now);
/* Takes a FAILED message up again (state PENDING, attempts 0) while its
 * notification has not expired at now: the user's `postern inbox retry`.
 * 0 also if it is PENDING already; PST_E_STALE if delivered or expired,
 * PST_E_NOTFOUND if unknown. */
int pst_store_inbox_retry(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES], uint64_t now);
/* Records that the receipt went out. PST_E_NOTFOUND if unknown, PST_E_STALE
 * unless DELIVERED (a receipt promises durability). Durable like
 * pst_store_outbox_notified (a receipt not recorded is sent again). */
int pst_store_inbox_receipt_sent(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                 uint64_t now);

typedef struct {
    const uint8_t *msg_id;
    const uint8_t *sender;
    pst_store_in_state state;
    const uint8_t *notification;
    size_t notification_len;
    uint64_t expires, received;
    uint64_t attempts, last_attempt;
    uint64_t delivered, size; /* 0 until DELIVERED */
    const char *folder;       /* "" until DELIVERED */
    const char *filename;     /* "" until DELIVERED */
    uint64_t receipt_sent;    /* time, 0 if not yet */
} pst_store_inbox_row;
typedef int (*pst_store_inbox_cb)(const pst_store_inbox_row *row, void *user);
/* The row of msg_id through cb (PST_E_NOTFOUND if none). */
int pst_store_inbox_get(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                        pst_store_inbox_cb cb, void *user);
/* Rows in arrival order; state 0 lists all, else only that state. */
int pst_store_inbox_list(pst_store *st, int state, pst_store_inbox_cb cb, void *user);
#define PST_STORE_INBOX_PURGE_MAX 4096u /* rows per pst_store_inbox_purge() call */
/* Called for each row pst_store_inbox_purge() changes, inside its
 * transaction and before the change: drop is true when the row goes, false
 * when it only loses its notification. It may use the store (to delete what
 * the caller keeps about the message); nonzero undoes the whole call and is
 * returned. */
typedef int (*pst_store_inbox_purge_cb)(const uint8_t msg_id[PST_STORE_MSGID_BYTES], bool drop,
                                        void *user);
/* Forgets what no replay can need, for rows whose notification expired at
 * or before `before` (expires != 0; the caller passes now minus its clock
 * tolerance, since a replay is refused as expired before it reaches the
 * store):
 * - DELIVERED: the notification goes (rows read it back as length 0); the
 *   row stays with everything `postern inbox` and `read` need, and its
 *   msg_id keeps a duplicate a duplicate;
 * - FAILED, and DELIVERED whose file a mail client deleted (filename ""):
 *   the row goes;
 * - PENDING: never touched (the node gives it up first).
 * At most limit (1..PST_STORE_INBOX_PURGE_MAX, else PST_E_INVAL /
 * PST_E_RANGE) rows, oldest expiry first, in one transaction; cb may be
 * NULL. *purged (may be NULL): rows changed; == limit means call again. */
int pst_store_inbox_purge(pst_store *st, uint64_t before, unsigned limit,
                          pst_store_inbox_purge_cb cb, void *user, unsigned *purged);

/* Remembers a spent stamp id (1..PST_STORE_STAMP_ID_MAX bytes) until
 * expires. PST_E_DUPLICATE if it was already spent. */
PST_STORE_MUST_CHECK int pst_store_stamp_spend(pst_store *st, const uint8_t *id, size_t len,
                                               uint64_t expires);
/* 1 spent, 0 not, negative on error. */
PST_STORE_MUST_CHECK int pst_store_stamp_is_spent(pst_store *st, const uint8_t *id, size_t len);
/* Forgets stamps with expires <= now. */
int pst_store_stamp_purge_expired(pst_store *st, uint64_t now);

/* ---- the smarthost queue (store_relay.c, migration 5) ---------------------
 * One row per (message, Internet recipient). States: queued (never tried),
 * retrying (a try failed: error says why), sent (the smarthost took it),
 * bounced (given up; a notice went to the sender's INBOX). */
typedef enum {
    PST_STORE_RELAY_QUEUED = 1,
    PST_STORE_RELAY_RETRYING = 2,
    PST_STORE_RELAY_SENT = 3,
    PST_STORE_RELAY_BOUNCED = 4,
} pst_store_relay_state;

#define PST_STORE_RELAY_ERROR_MAX 300u

typedef struct {
    int64_t id;
    uint8_t msg_id[PST_STORE_MSGID_BYTES];
    char rcpt[PST_STORE_ADDRESS_MAX + 1];
    char sender[PST_STORE_ADDRESS_MAX + 1];
    pst_store_relay_state state;
    unsigned attempts;
    uint64_t created, giveup, next_try, updated;
    char error[PST_STORE_RELAY_ERROR_MAX + 1];
} pst_store_relay_row;

/* Queues rcpt (an Internet address, 3..254 bytes) for the message msg_id
 * from sender, due now (created), given up at giveup. A row already there
 * is kept as it is. PST_E_INVAL, store errors. */
int pst_store_relay_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                        const char *rcpt, const char *sender, uint64_t created, uint64_t giveup);
/* The queued or retrying row with the earliest next_try (due or not) into
 * *out; PST_E_NOTFOUND when none is pending. */
int pst_store_relay_next(pst_store *st, pst_store_relay_row *out);
/* Sets a row's state, attempts, next try and error (cut to
 * PST_STORE_RELAY_ERROR_MAX bytes). */
int pst_store_relay_update(pst_store *st, int64_t id, pst_store_relay_state state,
                           unsigned attempts, uint64_t next_try, const char *error, uint64_t now);
/* Rows queued or retrying: all of them, or those of one message. */
int pst_store_relay_pending(pst_store *st, uint64_t *count);
int pst_store_relay_msg_pending(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                uint64_t *count);
/* Calls cb for the newest limit rows, newest first; a nonzero return stops
 * the walk and is returned. */
typedef int (*pst_store_relay_cb)(const pst_store_relay_row *row, void *user);
int pst_store_relay_list(pst_store *st, unsigned limit, pst_store_relay_cb cb, void *user);
/* "queued", "retrying", "sent", "bounced". */
const char *pst_store_relay_state_name(pst_store_relay_state s);

#ifdef __cplusplus
}
#endif
#endif
