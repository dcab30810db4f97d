/* Mail state: the outbox (messages and per-recipient delivery state), the
 * inbox index (idempotent by message id) and spent hashcash stamps. */
#include <stdlib.h>

#include "store_int.h"

#define PK_BYTES PST_SIGN_PK_BYTES
#define ID_BYTES PST_STORE_MSGID_BYTES

/* Migration 2. Its outbox tables are replaced by migration 3 (store.c):
 * bodies moved out of the database into files the node owns. */
const char pst_store__mail_schema[] =
    "CREATE TABLE outbox_msg ("
    " id INTEGER PRIMARY KEY,"
    " msg_id BLOB NOT NULL UNIQUE CHECK (length(msg_id) = 32),"
    " created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " body BLOB NOT NULL," /* x'' once nobody is pending */
    " done INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    "CREATE TABLE outbox_rcpt ("
    " msg INTEGER NOT NULL REFERENCES outbox_msg (id) ON DELETE CASCADE,"
    " rcpt BLOB NOT NULL CHECK (length(rcpt) = 32),"
    " state INTEGER NOT NULL CHECK (state IN (1, 2, 3, 4)),"
    " notification BLOB NOT NULL CHECK (length(notification) BETWEEN 1 AND 8192),"
    " receipt BLOB CHECK (receipt IS NULL OR length(receipt) BETWEEN 1 AND 8192),"
    " updated INTEGER NOT NULL,"
    " PRIMARY KEY (msg, rcpt)"
    ") STRICT;"
    "CREATE INDEX outbox_rcpt_state ON outbox_rcpt (state);"
    "CREATE TABLE inbox ("
    " msg_id BLOB PRIMARY KEY NOT NULL CHECK (length(msg_id) = 32),"
    " sender BLOB NOT NULL CHECK (length(sender) = 32),"
    " state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),"
    " notification BLOB NOT NULL CHECK (length(notification) BETWEEN 1 AND 8192),"
    " expires INTEGER NOT NULL,"
    " received INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " last_attempt INTEGER NOT NULL DEFAULT 0,"
    " delivered INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL DEFAULT 0,"
    " folder TEXT,"
    " filename TEXT,"
    " receipt_sent INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    "CREATE INDEX inbox_state ON inbox (state);"
    "CREATE INDEX inbox_expires ON inbox (expires) WHERE expires != 0;"
    "CREATE TABLE spent_stamp ("
    " id BLOB PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 64),"
    " expires INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE INDEX spent_stamp_expires ON spent_stamp (expires);";

/* Migration 4 (store.c): the sealed notification, the bulk of an inbox
 * row, moves to a table of its own, so that forgetting it frees whole pages
 * (reused by later mail) instead of leaving every old page of the inbox a
 * third full. inbox gets an explicit id (arrival order, the old rowid),
 * which VACUUM never renumbers; msg_id stays UNIQUE (idempotency). */
const char pst_store__inbox_v4[] =
    "ALTER TABLE inbox RENAME TO inbox_v3;"
    "CREATE TABLE inbox ("
    " id INTEGER PRIMARY KEY,"
    " msg_id BLOB NOT NULL UNIQUE CHECK (length(msg_id) = 32),"
    " sender BLOB NOT NULL CHECK (length(sender) = 32),"
    " state INTEGER NOT NULL CHECK (state IN (1, 2, 3)),"
    " expires INTEGER NOT NULL,"
    " received INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " last_attempt INTEGER NOT NULL DEFAULT 0,"
    " delivered INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER NOT NULL DEFAULT 0,"
    " folder TEXT,"
    " filename TEXT,"
    " receipt_sent INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    /* present while a replay may still matter (pst_store_inbox_purge) */
    "CREATE TABLE inbox_notification ("
    " id INTEGER PRIMARY KEY REFERENCES inbox (id) ON DELETE CASCADE,"
    " notification BLOB NOT NULL CHECK (length(notification) BETWEEN 1 AND 8192)"
    ") STRICT;"
    "INSERT INTO inbox (id, msg_id, sender, state, expires, received, attempts, last_attempt,"
    " delivered, size, folder, filename, receipt_sent)"
    " SELECT rowid, msg_id, sender, state, expires, received, attempts, last_attempt,"
    " delivered, size, folder, filename, receipt_sent FROM inbox_v3 ORDER BY rowid;"
    "INSERT INTO inbox_notification (id, notification)"
    " SELECT rowid, notification FROM inbox_v3 ORDER BY rowid;"
    "DROP TABLE inbox_v3;"
    "CREATE INDEX inbox_state ON inbox (state);"
    /* delivered rows whose file a mail client deleted */
    "CREATE INDEX inbox_gone ON inbox (expires) WHERE state = 2 AND filename IS NULL;";

/* Binds blob a (alen bytes) as ?1 and, if b, blob b as ?2. */
static int bind2(pst_store *st, const char *sql, const uint8_t *a, size_t alen, const uint8_t *b,
                 size_t blen, sqlite3_stmt **out) {
    int rc = pst_store__stmt(st, sql, out);
    if (rc)
        return rc;
    rc = PST_STORE__BLOB(*out, 1, a, alen);
    if (rc == SQLITE_OK && b)
        rc = PST_STORE__BLOB(*out, 2, b, blen);
    return rc == SQLITE_OK ? 0 : pst_store__sqlerr(st, rc);
}

static int changed_or(pst_store *st, int rc, int none) {
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        return none;
    return rc;
}

/* ---- outbox -------------------------------------------------------------- */

/* The schema of the outbox is migration 3 (store.c): bodies live in files
 * the node owns, the database keeps their size, the recipients and states. */

static const char Q_OUT_ADD[] =
    "INSERT INTO outbox_msg (msg_id, created, expires, size, subject) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (msg_id) DO NOTHING";
static const char Q_OUT_GET[] =
    "SELECT id, size, created, expires FROM outbox_msg WHERE msg_id = ?1 AND done = 0";
static const char Q_OUT_RCPT_ADD[] =
    "INSERT INTO outbox_rcpt (msg, rcpt, kind, state, notification, updated)"
    " SELECT id, ?2, ?5, 1, ?3, ?4 FROM outbox_msg WHERE msg_id = ?1 AND done = 0"
    " ON CONFLICT (msg, rcpt) DO NOTHING";
static const char Q_OUT_DONE[] = "SELECT done FROM outbox_msg WHERE msg_id = ?1";
static const char Q_OUT_RCPT_GET[] =
    "SELECT r.state, r.receipt FROM outbox_rcpt r JOIN outbox_msg m ON m.id = r.msg"
    " WHERE m.msg_id = ?1 AND r.rcpt = ?2";
static const char Q_OUT_RCPT_SET[] =
    "UPDATE outbox_rcpt SET state = ?3, receipt = ?4, updated = ?5"
    " WHERE msg = (SELECT id FROM outbox_msg WHERE msg_id = ?1) AND rcpt = ?2 AND state = 1";
static const char Q_OUT_NOTIFIED[] =
    "UPDATE outbox_rcpt SET notified = ?3, notify_count = notify_count + 1"
    " WHERE msg = (SELECT id FROM outbox_msg WHERE msg_id = ?1) AND rcpt = ?2 AND state = 1";
static const char Q_OUT_SERVED[] =
    "UPDATE outbox_rcpt SET served = ?3, serve_count = serve_count + 1"
    " WHERE msg = (SELECT id FROM outbox_msg WHERE msg_id = ?1) AND rcpt = ?2";
static const char Q_OUT_WITHDRAW[] =
    "UPDATE outbox_rcpt SET state = 5, updated = ?2"
    " WHERE msg = (SELECT id FROM outbox_msg WHERE msg_id = ?1) AND state = 1";
/* A message with nobody pending no longer needs its body. done = max(now,
 * 1) so that a finished message never reads as live. */
static const char Q_OUT_SETTLE[] =
    "UPDATE outbox_msg SET done = max(?1, 1) WHERE done = 0"
    " AND (EXISTS (SELECT 1 FROM outbox_rcpt r WHERE r.msg = outbox_msg.id)"
    "      OR (expires != 0 AND expires <= ?1))"
    " AND NOT EXISTS (SELECT 1 FROM outbox_rcpt r WHERE r.msg = outbox_msg.id AND r.state = 1)";
static const char Q_OUT_EXPIRE[] =
    "UPDATE outbox_rcpt SET state = 4, updated = ?1 WHERE state = 1 AND msg IN"
    " (SELECT id FROM outbox_msg WHERE expires != 0 AND expires <= ?1)";
static const char Q_OUT_DELETE[] = "DELETE FROM outbox_msg WHERE done != 0 AND done <= ?1";

int pst_store_outbox_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES], uint64_t size,
                         uint64_t created, uint64_t expires, const char *subject) {
    if (!st || !msg_id || size == 0)
        return PST_E_INVAL;
    if (size > PST_STORE_BODY_MAX)
        return PST_E_TOOBIG;
    if (!PST_STORE__TIME_OK(created) || !PST_STORE__TIME_OK(expires))
        return PST_E_RANGE;
    if (!subject)
        subject = "";
    int rc = subject[0] ? pst_store__check_name(subject, PST_STORE_SUBJECT_MAX) : 0;
    if (rc)
        return rc;
    sqlite3_stmt *s;
    if ((rc = bind2(st, Q_OUT_ADD, msg_id, ID_BYTES, NULL, 0, &s)))
        return rc;
    rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)created);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)expires);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, (sqlite3_int64)size);
    if (rc == SQLITE_OK)
        rc = PST_STORE__TEXT(s, 5, subject);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return changed_or(st, pst_store__run(st, s), PST_E_EXISTS);
}

/* Why adding a recipient changed nothing. */
static int rcpt_add_failed(pst_store *st, const uint8_t *msg_id) {
    sqlite3_stmt *s;
    int rc = bind2(st, Q_OUT_DONE, msg_id, ID_BYTES, NULL, 0, &s);
    if (rc)
        return rc;
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    bool done = sqlite3_column_int64(s, 0) != 0;
    sqlite3_reset(s);
    return done ? PST_E_STALE : PST_E_EXISTS;
}

int pst_store_outbox_rcpt_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              const uint8_t rcpt[32], pst_store_rcpt_kind kind,
                              const uint8_t *notification, size_t len, uint64_t now) {
    if (!st || !msg_id || !rcpt || kind < PST_STORE_RCPT_TO || kind > PST_STORE_RCPT_BCC)
        return PST_E_INVAL;
    int rc = pst_store__check_put(notification, len, now);
    if (rc)
        return rc;
    sqlite3_stmt *s;
    if ((rc = bind2(st, Q_OUT_RCPT_ADD, msg_id, ID_BYTES, rcpt, PK_BYTES, &s)))
        return rc;
    rc = PST_STORE__BLOB(s, 3, notification, len);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, (sqlite3_int64)now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 5, (int)kind);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    if ((rc = pst_store__run(st, s)))
        return rc;
    if (sqlite3_changes(st->db) > 0)
        return 0;
    return rcpt_add_failed(st, msg_id);
}

int pst_store_outbox_get(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES], uint64_t *size,
                         uint64_t *created, uint64_t *expires) {
    uint64_t *outs[3] = {size, created, expires};
    for (int i = 0; i < 3; i++)
        if (outs[i])
            *outs[i] = 0;
    if (!st || !msg_id)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = bind2(st, Q_OUT_GET, msg_id, ID_BYTES, NULL, 0, &s);
    if (rc == 0)
        rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    for (int i = 0; i < 3; i++)
        if (outs[i])
            *outs[i] = (uint64_t)sqlite3_column_int64(s, i + 1);
    sqlite3_reset(s);
    return 0;
}

int pst_store_outbox_rcpt_state(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                const uint8_t rcpt[32], pst_store_out_state *state) {
    if (!state)
        return PST_E_INVAL;
    *state = 0;
    if (!st || !msg_id || !rcpt)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = bind2(st, Q_OUT_RCPT_GET, msg_id, ID_BYTES, rcpt, PK_BYTES, &s);
    if (rc)
        return rc;
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    *state = (pst_store_out_state)sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    return 0;
}

/* Runs an UPDATE of one recipient (?1 msg_id, ?2 rcpt, ?3 now); when it
 * matched nothing, PST_E_NOTFOUND unless rcpt is a recipient. */
static int rcpt_touch(pst_store *st, const char *sql, const uint8_t *msg_id, const uint8_t *rcpt,
                      uint64_t now) {
    if (!st || !msg_id || !rcpt)
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    sqlite3_stmt *s;
    int rc = bind2(st, sql, msg_id, ID_BYTES, rcpt, PK_BYTES, &s);
    if (rc)
        return rc;
    if ((rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)now)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    if ((rc = pst_store__run_lazy(st, s)))
        return rc;
    if (sqlite3_changes(st->db) > 0)
        return 0;
    pst_store_out_state state;
    return pst_store_outbox_rcpt_state(st, msg_id, rcpt, &state);
}

int pst_store_outbox_notified(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              const uint8_t rcpt[32], uint64_t now) {
    return rcpt_touch(st, Q_OUT_NOTIFIED, msg_id, rcpt, now);
}

int pst_store_outbox_served(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                            const uint8_t rcpt[32], uint64_t now) {
    return rcpt_touch(st, Q_OUT_SERVED, msg_id, rcpt, now);
}

static int run_time(pst_store *st, const char *sql, uint64_t t) {
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, sql, &s);
    if (rc)
        return rc;
    if ((rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)t)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__run(st, s);
}

/* Moves a pending recipient to state (with receipt for DELIVERED) and
 * settles the message; inside a unit. 1 when nothing was pending. */
static int outbox_finish(pst_store *st, const uint8_t *msg_id, const uint8_t *rcpt, int state,
                         const uint8_t *receipt, size_t len, uint64_t now) {
    sqlite3_stmt *s;
    int rc = bind2(st, Q_OUT_RCPT_SET, msg_id, ID_BYTES, rcpt, PK_BYTES, &s);
    if (rc)
        return rc;
    rc = sqlite3_bind_int(s, 3, state);
    if (rc == SQLITE_OK && receipt)
        rc = PST_STORE__BLOB(s, 4, receipt, len);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 5, (sqlite3_int64)now);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    if ((rc = pst_store__run(st, s)))
        return rc;
    if (sqlite3_changes(st->db) == 0)
        return 1;
    return run_time(st, Q_OUT_SETTLE, now);
}

static int receipt_locked(pst_store *st, const uint8_t *msg_id, const uint8_t *rcpt,
                          const uint8_t *receipt, size_t len, uint64_t now) {
    int rc = outbox_finish(st, msg_id, rcpt, PST_STORE_OUT_DELIVERED, receipt, len, now);
    if (rc != 1)
        return rc;
    sqlite3_stmt *s;
    if ((rc = bind2(st, Q_OUT_RCPT_GET, msg_id, ID_BYTES, rcpt, PK_BYTES, &s)))
        return rc;
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    int state = sqlite3_column_int(s, 0);
    const void *have = sqlite3_column_blob(s, 1);
    bool same = have && (size_t)sqlite3_column_bytes(s, 1) == len && !memcmp(have, receipt, len);
    sqlite3_reset(s);
    if (state != PST_STORE_OUT_DELIVERED)
        return PST_E_STALE;
    return same ? 0 : PST_E_DUPLICATE;
}

int pst_store_outbox_receipt(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                             const uint8_t rcpt[32], const uint8_t *receipt, size_t len,
                             uint64_t now) {
    if (!st || !msg_id || !rcpt)
        return PST_E_INVAL;
    int rc = pst_store__check_put(receipt, len, now);
    if (rc)
        return rc;
    if ((rc = pst_store__tx_begin(st)))
        return rc;
    rc = receipt_locked(st, msg_id, rcpt, receipt, len, now);
    return pst_store__tx_end(st, rc);
}

int pst_store_outbox_receipt_lazy(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                  const uint8_t rcpt[32], const uint8_t *receipt, size_t len,
                                  uint64_t now) {
    if (!st)
        return PST_E_INVAL;
    bool on = pst_store__lazy_on(st);
    return pst_store__lazy_off(st, on,
                               pst_store_outbox_receipt(st, msg_id, rcpt, receipt, len, now));
}

int pst_store_outbox_fail(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                          const uint8_t rcpt[32], uint64_t now) {
    if (!st || !msg_id || !rcpt)
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    int rc = pst_store__tx_begin(st);
    if (rc)
        return rc;
    rc = outbox_finish(st, msg_id, rcpt, PST_STORE_OUT_FAILED, NULL, 0, now);
    return pst_store__tx_end(st, rc == 1 ? 0 : rc);
}

static int withdraw_locked(pst_store *st, const uint8_t *msg_id, uint64_t now, unsigned *count) {
    sqlite3_stmt *s;
    int rc = bind2(st, Q_OUT_DONE, msg_id, ID_BYTES, NULL, 0, &s);
    if (rc == 0)
        rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    sqlite3_reset(s);
    if ((rc = bind2(st, Q_OUT_WITHDRAW, msg_id, ID_BYTES, NULL, 0, &s)))
        return rc;
    if ((rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)now)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    if ((rc = pst_store__run(st, s)))
        return rc;
    *count = (unsigned)sqlite3_changes(st->db);
    return run_time(st, Q_OUT_SETTLE, now);
}

int pst_store_outbox_withdraw(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              uint64_t now, unsigned *withdrawn) {
    unsigned count = 0;
    if (withdrawn)
        *withdrawn = 0;
    if (!st || !msg_id)
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    int rc = pst_store__tx_begin(st);
    if (rc)
        return rc;
    rc = pst_store__tx_end(st, withdraw_locked(st, msg_id, now, &count));
    if (rc == 0 && withdrawn)
        *withdrawn = count;
    return rc;
}

int pst_store_outbox_gc(pst_store *st, uint64_t now, uint64_t keep_done) {
    if (!st)
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    int rc = pst_store__tx_begin(st);
    if (rc)
        return rc;
    rc = run_time(st, Q_OUT_EXPIRE, now);
    if (rc == 0)
        rc = run_time(st, Q_OUT_SETTLE, now);
    if (rc == 0 && keep_done < now)
        rc = run_time(st, Q_OUT_DELETE, now - keep_done);
    return pst_store__tx_end(st, rc);
}

struct mail_walk {
    pst_store *st;
    union {
        pst_store_outbox_cb out;
        pst_store_inbox_cb in;
    } cb;
    void *user;
};

static int damaged(struct mail_walk *w) {
    return pst_store__fail(w->st, PST_E_STORE, "damaged row");
}

static const uint8_t *col_fixed(sqlite3_stmt *s, int col, int n) {
    const void *p = sqlite3_column_blob(s, col);
    return p && sqlite3_column_bytes(s, col) == n ? p : NULL;
}

static uint64_t col_time(sqlite3_stmt *s, int col) {
    return (uint64_t)sqlite3_column_int64(s, col);
}

static int outbox_row(sqlite3_stmt *s, void *ctx) {
    struct mail_walk *w = ctx;
    const unsigned char *subject = sqlite3_column_text(s, 10);
    pst_store_outbox_row r = {
        .msg_id = col_fixed(s, 0, ID_BYTES),
        .rcpt = col_fixed(s, 1, PK_BYTES),
        .state = (pst_store_out_state)sqlite3_column_int(s, 2),
        .notification = sqlite3_column_blob(s, 3),
        .notification_len = (size_t)sqlite3_column_bytes(s, 3),
        .receipt = sqlite3_column_blob(s, 4),
        .receipt_len = (size_t)sqlite3_column_bytes(s, 4),
        .created = col_time(s, 5),
        .expires = col_time(s, 6),
        .size = col_time(s, 7),
        .updated = col_time(s, 8),
        .kind = (pst_store_rcpt_kind)sqlite3_column_int(s, 9),
        .subject = subject ? (const char *)subject : "",
        .done = col_time(s, 11),
        .notified = col_time(s, 12),
        .notify_count = col_time(s, 13),
        .served = col_time(s, 14),
        .serve_count = col_time(s, 15),
    };
    if (!r.msg_id || !r.rcpt || !r.notification)
        return damaged(w);
    return w->cb.out(&r, w->user);
}

static int bind_state(sqlite3_stmt *s, const void *arg) {
    return sqlite3_bind_int(s, 1, *(const int *)arg);
}

static int bind_out_id(sqlite3_stmt *s, const void *arg) {
    return PST_STORE__BLOB(s, 1, arg, ID_BYTES);
}

#define OUTBOX_COLS                                                                                \
    "SELECT m.msg_id, r.rcpt, r.state, r.notification, r.receipt, m.created, m.expires, m.size,"   \
    " r.updated, r.kind, m.subject, m.done, r.notified, r.notify_count, r.served, r.serve_count"   \
    " FROM outbox_rcpt r JOIN outbox_msg m ON m.id = r.msg"

int pst_store_outbox_list(pst_store *st, int state, pst_store_outbox_cb cb, void *user) {
    if (!st || !cb || state < 0 || state > PST_STORE_OUT_WITHDRAWN)
        return PST_E_INVAL;
    struct mail_walk w = {st, {.out = cb}, user};
    return pst_store__walk(st, OUTBOX_COLS " WHERE ?1 = 0 OR r.state = ?1 ORDER BY m.id, r.rcpt",
                           bind_state, &state, outbox_row, &w);
}

int pst_store_outbox_list_msg(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              pst_store_outbox_cb cb, void *user) {
    if (!st || !msg_id || !cb)
        return PST_E_INVAL;
    struct mail_walk w = {st, {.out = cb}, user};
    return pst_store__walk(st, OUTBOX_COLS " WHERE m.msg_id = ?1 ORDER BY r.rcpt", bind_out_id,
                           msg_id, outbox_row, &w);
}

/* ---- inbox --------------------------------------------------------------- */

static const char Q_IN_ADD[] = "INSERT INTO inbox (msg_id, sender, state, expires, received)"
                               " VALUES (?1, ?2, 1, ?3, ?4) ON CONFLICT (msg_id) DO NOTHING";
static const char Q_IN_ADD_NOTIF[] =
    "INSERT INTO inbox_notification (id, notification) VALUES (last_insert_rowid(), ?1)";
static const char Q_IN_ATTEMPT[] =
    "UPDATE inbox SET attempts = attempts + 1, last_attempt = ?2 WHERE msg_id = ?1";
static const char Q_IN_DELIVER[] =
    "UPDATE inbox SET state = 2, folder = ?2, filename = ?3, size = ?4, delivered = ?5"
    " WHERE msg_id = ?1 AND state = 1";
static const char Q_IN_RELOCATE[] =
    "UPDATE inbox SET folder = ?2, filename = ?3 WHERE msg_id = ?1 AND state = 2";
static const char Q_IN_STATE[] = "SELECT state, folder, filename FROM inbox WHERE msg_id = ?1";
static const char Q_IN_FAIL[] =
    "UPDATE inbox SET state = 3, last_attempt = ?2 WHERE msg_id = ?1 AND state = 1";
static const char Q_IN_RETRY[] =
    "UPDATE inbox SET state = 1, attempts = 0"
    " WHERE msg_id = ?1 AND state = 3 AND (expires = 0 OR expires > ?2)";
static const char Q_IN_RECEIPT[] =
    "UPDATE inbox SET receipt_sent = ?2 WHERE msg_id = ?1 AND state = 2";
/* What the purge may touch: rows still holding a notification (few: those
 * of the last days), then rows of deleted files that no longer do. */
static const char Q_IN_PURGE_LIVE[] =
    "SELECT i.msg_id, i.state = 3 OR i.filename IS NULL FROM inbox_notification n"
    " JOIN inbox i ON i.id = n.id"
    " WHERE i.state != 1 AND i.expires != 0 AND i.expires <= ?1 ORDER BY i.expires LIMIT ?2";
static const char Q_IN_PURGE_GONE[] =
    "SELECT msg_id, 1 FROM inbox WHERE state = 2 AND filename IS NULL"
    " AND expires != 0 AND expires <= ?1"
    " AND NOT EXISTS (SELECT 1 FROM inbox_notification n WHERE n.id = inbox.id)"
    " ORDER BY expires LIMIT ?2";
static const char Q_IN_STRIP[] =
    "DELETE FROM inbox_notification WHERE id = (SELECT id FROM inbox WHERE msg_id = ?1)";
static const char Q_IN_DELETE[] = "DELETE FROM inbox WHERE msg_id = ?1"; /* cascades */

static int inbox_add_locked(pst_store *st, const uint8_t *msg_id, const uint8_t *sender,
                            const uint8_t *notification, size_t len, uint64_t expires,
                            uint64_t now) {
    sqlite3_stmt *s;
    int rc = bind2(st, Q_IN_ADD, msg_id, ID_BYTES, sender, PK_BYTES, &s);
    if (rc)
        return rc;
    rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)expires);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, (sqlite3_int64)now);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    if ((rc = changed_or(st, pst_store__run(st, s), PST_E_DUPLICATE)))
        return rc;
    if ((rc = bind2(st, Q_IN_ADD_NOTIF, notification, len, NULL, 0, &s)))
        return rc;
    return pst_store__run(st, s);
}

int pst_store_inbox_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                        const uint8_t sender[32], const uint8_t *notification, size_t len,
                        uint64_t expires, uint64_t now) {
    if (!st || !msg_id || !sender)
        return PST_E_INVAL;
    int rc = pst_store__check_blob(notification, len, 1);
    if (rc)
        return rc;
    if (!PST_STORE__TIME_OK(expires) || !PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    if ((rc = pst_store__tx_begin(st)))
        return rc;
    rc = inbox_add_locked(st, msg_id, sender, notification, len, expires, now);
    return pst_store__tx_end(st, rc);
}

static int in_update_time(pst_store *st, const char *sql, const uint8_t *msg_id, uint64_t t,
                          sqlite3_stmt **out) {
    if (!PST_STORE__TIME_OK(t))
        return PST_E_RANGE;
    int rc = bind2(st, sql, msg_id, ID_BYTES, NULL, 0, out);
    if (rc)
        return rc;
    if ((rc = sqlite3_bind_int64(*out, 2, (sqlite3_int64)t)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return 0;
}

int pst_store_inbox_attempt(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                            uint64_t now) {
    if (!st || !msg_id)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = in_update_time(st, Q_IN_ATTEMPT, msg_id, now, &s);
    return rc ? rc : changed_or(st, pst_store__run(st, s), PST_E_NOTFOUND);
}

/* Why an update of msg_id matched nothing: PST_E_NOTFOUND, or the current
 * state (> 0) with folder/filename compared against the given ones. */
static int in_state(pst_store *st, const uint8_t *msg_id, const char *folder, const char *filename,
                    bool *same_place) {
    sqlite3_stmt *s;
    int rc = bind2(st, Q_IN_STATE, msg_id, ID_BYTES, NULL, 0, &s);
    if (rc)
        return rc;
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    int state = sqlite3_column_int(s, 0);
    if (same_place) {
        const char *f = (const char *)sqlite3_column_text(s, 1);
        const char *n = (const char *)sqlite3_column_text(s, 2);
        *same_place = f && n && !strcmp(f, folder) && !strcmp(n, filename);
    }
    sqlite3_reset(s);
    return state;
}

int pst_store_inbox_delivered(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                              const char *folder, const char *filename, uint64_t size,
                              uint64_t now) {
    if (!st || !msg_id || !folder)
        return PST_E_INVAL;
    int rc = folder[0] ? pst_store__check_name(folder, PST_STORE_FOLDER_MAX) : 0;
    if (rc == 0)
        rc = pst_store__check_name(filename, PST_STORE_FILENAME_MAX);
    if (rc)
        return rc;
    if (strchr(folder, '/') || strchr(filename, '/'))
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now) || size > (uint64_t)INT64_MAX)
        return PST_E_RANGE;
    if ((rc = pst_store__tx_begin(st)))
        return rc;
    sqlite3_stmt *s;
    rc = bind2(st, Q_IN_DELIVER, msg_id, ID_BYTES, NULL, 0, &s);
    if (rc == 0) {
        int b = PST_STORE__TEXT(s, 2, folder);
        if (b == SQLITE_OK)
            b = PST_STORE__TEXT(s, 3, filename);
        if (b == SQLITE_OK)
            b = sqlite3_bind_int64(s, 4, (sqlite3_int64)size);
        if (b == SQLITE_OK)
            b = sqlite3_bind_int64(s, 5, (sqlite3_int64)now);
        rc = b == SQLITE_OK ? pst_store__run(st, s) : pst_store__sqlerr(st, b);
    }
    if (rc == 0 && sqlite3_changes(st->db) == 0) {
        bool same = false;
        rc = in_state(st, msg_id, folder, filename, &same);
        if (rc > 0)
            rc = rc == PST_STORE_IN_DELIVERED ? (same ? 0 : PST_E_DUPLICATE) : PST_E_STALE;
    }
    return pst_store__tx_end(st, rc);
}

int pst_store_inbox_relocate(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                             const char *folder, const char *filename) {
    if (!st || !msg_id || !folder || !filename)
        return PST_E_INVAL;
    int rc = folder[0] ? pst_store__check_name(folder, PST_STORE_FOLDER_MAX) : 0;
    if (rc == 0 && filename[0])
        rc = pst_store__check_name(filename, PST_STORE_FILENAME_MAX);
    if (rc)
        return rc;
    if (strchr(folder, '/') || strchr(filename, '/'))
        return PST_E_INVAL;
    sqlite3_stmt *s;
    rc = bind2(st, Q_IN_RELOCATE, msg_id, ID_BYTES, NULL, 0, &s);
    if (rc == 0) {
        int b = PST_STORE__TEXT(s, 2, folder);
        /* no file name: a mail client deleted the message */
        if (b == SQLITE_OK)
            b = filename[0] ? PST_STORE__TEXT(s, 3, filename) : sqlite3_bind_null(s, 3);
        rc = b == SQLITE_OK ? pst_store__run(st, s) : pst_store__sqlerr(st, b);
    }
    return changed_or(st, rc, PST_E_NOTFOUND);
}

/* Checks the arguments of a public transition, then runs it. */
static int in_transition(pst_store *st, const char *sql, const uint8_t *msg_id, uint64_t now,
                         int ok_state) {
    if (!st || !msg_id)
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    sqlite3_stmt *s;
    int rc = pst_store__tx_begin(st);
    if (rc)
        return rc;
    rc = in_update_time(st, sql, msg_id, now, &s);
    if (rc == 0)
        rc = pst_store__run(st, s);
    if (rc == 0 && sqlite3_changes(st->db) == 0) {
        rc = in_state(st, msg_id, NULL, NULL, NULL);
        if (rc > 0)
            rc = rc == ok_state ? 0 : PST_E_STALE;
    }
    return pst_store__tx_end(st, rc);
}

int pst_store_inbox_fail(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES], uint64_t now) {
    return in_transition(st, Q_IN_FAIL, msg_id, now, PST_STORE_IN_FAILED);
}

int pst_store_inbox_retry(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                          uint64_t now) {
    return in_transition(st, Q_IN_RETRY, msg_id, now, PST_STORE_IN_PENDING);
}

int pst_store_inbox_receipt_sent(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                 uint64_t now) {
    /* lost in a power loss, the receipt is sent again at start: harmless */
    bool lazy = st != NULL && pst_store__lazy_on(st);
    return pst_store__lazy_off(st, lazy, in_transition(st, Q_IN_RECEIPT, msg_id, now, -1));
}

static int inbox_row(sqlite3_stmt *s, void *ctx) {
    struct mail_walk *w = ctx;
    const unsigned char *folder = sqlite3_column_text(s, 10);
    const unsigned char *filename = sqlite3_column_text(s, 11);
    pst_store_inbox_row r = {
        .msg_id = col_fixed(s, 0, ID_BYTES),
        .sender = col_fixed(s, 1, PK_BYTES),
        .state = (pst_store_in_state)sqlite3_column_int(s, 2),
        .notification = sqlite3_column_blob(s, 3),
        .notification_len = (size_t)sqlite3_column_bytes(s, 3),
        .expires = (uint64_t)sqlite3_column_int64(s, 4),
        .received = (uint64_t)sqlite3_column_int64(s, 5),
        .attempts = (uint64_t)sqlite3_column_int64(s, 6),
        .last_attempt = (uint64_t)sqlite3_column_int64(s, 7),
        .delivered = (uint64_t)sqlite3_column_int64(s, 8),
        .size = (uint64_t)sqlite3_column_int64(s, 9),
        .folder = folder ? (const char *)folder : "",
        .filename = filename ? (const char *)filename : "",
        .receipt_sent = (uint64_t)sqlite3_column_int64(s, 12),
    };
    if (!r.msg_id || !r.sender)
        return damaged(w);
    if (!r.notification) { /* forgotten past the replay window */
        r.notification = (const uint8_t *)"";
        r.notification_len = 0;
    }
    return w->cb.in(&r, w->user);
}

#define INBOX_COLS                                                                                 \
    "SELECT i.msg_id, i.sender, i.state, n.notification, i.expires, i.received, i.attempts,"       \
    " i.last_attempt, i.delivered, i.size, i.folder, i.filename, i.receipt_sent"                   \
    " FROM inbox i LEFT JOIN inbox_notification n ON n.id = i.id"

static int bind_id(sqlite3_stmt *s, const void *arg) {
    return PST_STORE__BLOB(s, 1, arg, ID_BYTES);
}

int pst_store_inbox_get(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                        pst_store_inbox_cb cb, void *user) {
    if (!st || !msg_id || !cb)
        return PST_E_INVAL;
    int rc = in_state(st, msg_id, NULL, NULL, NULL);
    if (rc < 0)
        return rc;
    struct mail_walk w = {st, {.in = cb}, user};
    return pst_store__walk(st, INBOX_COLS " WHERE i.msg_id = ?1", bind_id, msg_id, inbox_row, &w);
}

int pst_store_inbox_list(pst_store *st, int state, pst_store_inbox_cb cb, void *user) {
    if (!st || !cb || state < 0 || state > PST_STORE_IN_FAILED)
        return PST_E_INVAL;
    struct mail_walk w = {st, {.in = cb}, user};
    return pst_store__walk(st, INBOX_COLS " WHERE ?1 = 0 OR i.state = ?1 ORDER BY i.id", bind_state,
                           &state, inbox_row, &w);
}

typedef struct {
    uint8_t id[ID_BYTES];
    bool drop; /* delete the row; else strip its notification */
} purge_item;

struct purge_walk {
    purge_item *items;
    unsigned n, cap;
};

struct purge_args {
    uint64_t before;
    unsigned limit;
};

static int bind_purge(sqlite3_stmt *s, const void *arg) {
    const struct purge_args *a = arg;
    int rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)a->before);
    return rc == SQLITE_OK ? sqlite3_bind_int(s, 2, (int)a->limit) : rc;
}

static int purge_row(sqlite3_stmt *s, void *ctx) {
    struct purge_walk *w = ctx;
    const uint8_t *id = col_fixed(s, 0, ID_BYTES);
    if (!id || w->n >= w->cap)
        return id ? 0 : PST_E_STORE;
    memcpy(w->items[w->n].id, id, ID_BYTES);
    w->items[w->n++].drop = sqlite3_column_int(s, 1) != 0;
    return 0;
}

static int purge_locked(pst_store *st, uint64_t before, struct purge_walk *w,
                        pst_store_inbox_purge_cb cb, void *user) {
    struct purge_args a = {before, w->cap};
    int rc = pst_store__walk(st, Q_IN_PURGE_LIVE, bind_purge, &a, purge_row, w);
    if (rc == 0 && w->n < w->cap) {
        a.limit = w->cap - w->n;
        rc = pst_store__walk(st, Q_IN_PURGE_GONE, bind_purge, &a, purge_row, w);
    }
    if (rc == PST_E_STORE)
        return pst_store__fail(st, PST_E_STORE, "damaged row");
    for (unsigned i = 0; rc == 0 && i < w->n; i++) {
        purge_item *it = &w->items[i];
        if (cb && (rc = cb(it->id, it->drop, user)) != 0)
            break;
        sqlite3_stmt *s;
        rc = bind2(st, it->drop ? Q_IN_DELETE : Q_IN_STRIP, it->id, ID_BYTES, NULL, 0, &s);
        if (rc == 0)
            rc = pst_store__run(st, s);
    }
    return rc;
}

int pst_store_inbox_purge(pst_store *st, uint64_t before, unsigned limit,
                          pst_store_inbox_purge_cb cb, void *user, unsigned *purged) {
    if (purged)
        *purged = 0;
    if (!st || limit == 0)
        return PST_E_INVAL;
    if (limit > PST_STORE_INBOX_PURGE_MAX)
        return PST_E_RANGE;
    if (!PST_STORE__TIME_OK(before))
        return PST_E_RANGE;
    struct purge_walk w = {calloc(limit, sizeof(purge_item)), 0, limit};
    if (!w.items)
        return PST_E_NOMEM;
    int rc = pst_store__tx_begin(st);
    if (rc == 0)
        rc = pst_store__tx_end(st, purge_locked(st, before, &w, cb, user));
    if (rc == 0 && purged)
        *purged = w.n;
    free(w.items);
    return rc;
}

/* ---- spent stamps -------------------------------------------------------- */

static const char Q_STAMP_ADD[] =
    "INSERT INTO spent_stamp (id, expires) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING";
static const char Q_STAMP_GET[] = "SELECT 1 FROM spent_stamp WHERE id = ?1";
static const char Q_STAMP_PURGE[] = "DELETE FROM spent_stamp WHERE expires <= ?1";

static int stamp_args(pst_store *st, const uint8_t *id, size_t len) {
    if (!st || !id || len == 0)
        return PST_E_INVAL;
    return len > PST_STORE_STAMP_ID_MAX ? PST_E_TOOBIG : 0;
}

int pst_store_stamp_spend(pst_store *st, const uint8_t *id, size_t len, uint64_t expires) {
    int rc = stamp_args(st, id, len);
    if (rc)
        return rc;
    if (!PST_STORE__TIME_OK(expires))
        return PST_E_RANGE;
    sqlite3_stmt *s;
    if ((rc = bind2(st, Q_STAMP_ADD, id, len, NULL, 0, &s)))
        return rc;
    if ((rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)expires)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return changed_or(st, pst_store__run(st, s), PST_E_DUPLICATE);
}

int pst_store_stamp_is_spent(pst_store *st, const uint8_t *id, size_t len) {
    int rc = stamp_args(st, id, len);
    if (rc)
        return rc;
    sqlite3_stmt *s;
    if ((rc = bind2(st, Q_STAMP_GET, id, len, NULL, 0, &s)))
        return rc;
    rc = pst_store__row(st, s);
    if (rc == 1)
        sqlite3_reset(s);
    return rc;
}

int pst_store_stamp_purge_expired(pst_store *st, uint64_t now) {
    if (!st)
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    return run_time(st, Q_STAMP_PURGE, now);
}

const char *pst_store_rcpt_kind_name(pst_store_rcpt_kind k) {
    static const char *const names[] = {
        [PST_STORE_RCPT_TO] = "to",
        [PST_STORE_RCPT_CC] = "cc",
        [PST_STORE_RCPT_BCC] = "bcc",
    };
    return PST_NAME_OF(names, k, "to");
}
