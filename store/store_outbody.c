/* Small outbox bodies kept in the store (issue 14, third round). A message
 * whose ciphertext is at most PST_STORE_BODY_INLINE_MAX bytes is committed
 * in the same transaction as its outbox rows, so the send needs one fsync
 * (the WAL's) before it is acknowledged, where a body file needed three
 * (file, directory, WAL). Larger bodies stay in DIR/outbox/<hex>. A body row
 * goes with its message: a trigger deletes it when the message finishes
 * (done != 0: a receipt from the last pending recipient, unsend, expiry),
 * and the foreign key's cascade when the message row is deleted. */
#include <string.h>

#include "store_int.h"

#define ID_BYTES PST_STORE_MSGID_BYTES

/* Migration 9 (IF NOT EXISTS: a test rewinds a database to version 3 and
 * migrates it again). One row per message, keyed by the message's row id, so the
 * outbox's own rows (walked by `postern outbox` and at start) stay small. */
const char pst_store__outbox_body_v9[] =
    "CREATE TABLE IF NOT EXISTS outbox_body ("
    " msg INTEGER PRIMARY KEY REFERENCES outbox_msg (id) ON DELETE CASCADE,"
    " body BLOB NOT NULL CHECK (length(body) BETWEEN 1 AND 65536)"
    ") STRICT;"
    "CREATE TRIGGER IF NOT EXISTS outbox_body_done AFTER UPDATE OF done ON outbox_msg"
    " WHEN NEW.done != 0"
    " BEGIN DELETE FROM outbox_body WHERE msg = NEW.id; END;";

_Static_assert(PST_STORE_BODY_INLINE_MAX == 65536u, "the CHECK in migration 9 says 65536");

static const char Q_BODY_ADD[] =
    "INSERT INTO outbox_body (msg, body)"
    " SELECT id, ?2 FROM outbox_msg WHERE msg_id = ?1 AND done = 0 AND size = ?3";
static const char Q_BODY_GET[] =
    "SELECT b.body FROM outbox_body b JOIN outbox_msg m ON m.id = b.msg"
    " WHERE m.msg_id = ?1 AND m.done = 0";

int pst_store_outbox_body_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              const uint8_t *body, size_t len) {
    if (!st || !msg_id || !body || len == 0)
        return PST_E_INVAL;
    if (len > PST_STORE_BODY_INLINE_MAX)
        return PST_E_TOOBIG;
    sqlite3_stmt *s;
    int rc = pst_store__stmt_key(st, Q_BODY_ADD, msg_id, ID_BYTES, &s);
    if (rc)
        return rc;
    rc = PST_STORE__BLOB(s, 2, body, len);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)len);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    /* a second body for the message breaks the primary key: PST_E_STORE */
    if ((rc = pst_store__run(st, s)))
        return rc;
    return sqlite3_changes(st->db) > 0 ? 0 : PST_E_NOTFOUND;
}

int pst_store_outbox_body_get(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              uint8_t *buf, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (!st || !msg_id || !len || (!buf && cap))
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt_key(st, Q_BODY_GET, msg_id, ID_BYTES, &s);
    if (rc == 0)
        rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    rc = pst_store__copy_blob(s, 0, buf, cap, len);
    sqlite3_reset(s);
    if (rc && rc != PST_E_NOSPACE)
        *len = 0;
    return rc;
}
