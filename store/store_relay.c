/* The smarthost queue (migration 5): one row per (message, Internet
 * recipient), its state and its next try. The message itself is a file
 * (DIR/relay/<msg id>), written by node/mail before the row is committed. */
#include <stdio.h>

#include "store_int.h"

/* IF NOT EXISTS: a test may rewind user_version over a current schema */
const char pst_store__relay_v5[] =
    "CREATE TABLE IF NOT EXISTS relay_rcpt ("
    " id INTEGER PRIMARY KEY,"
    " msg_id BLOB NOT NULL CHECK (length(msg_id) = 32),"
    " rcpt TEXT NOT NULL CHECK (length(CAST(rcpt AS BLOB)) BETWEEN 3 AND 254),"
    " sender TEXT NOT NULL CHECK (length(CAST(sender AS BLOB)) BETWEEN 1 AND 254),"
    " state INTEGER NOT NULL CHECK (state IN (1, 2, 3, 4)),"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL,"
    " giveup INTEGER NOT NULL,"
    " next_try INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " error TEXT NOT NULL DEFAULT '' CHECK (length(CAST(error AS BLOB)) <= 300),"
    " UNIQUE (msg_id, rcpt)"
    ") STRICT;"
    "CREATE INDEX IF NOT EXISTS relay_rcpt_due ON relay_rcpt (state, next_try);";

static const char Q_ADD[] =
    "INSERT INTO relay_rcpt (msg_id, rcpt, sender, state, created, giveup, next_try, updated)"
    " VALUES (?1, ?2, ?3, 1, ?4, ?5, ?4, ?4) ON CONFLICT (msg_id, rcpt) DO NOTHING";
static const char Q_NEXT[] = "SELECT id, msg_id, rcpt, sender, state, attempts, created, giveup,"
                             " next_try, updated, error FROM relay_rcpt WHERE state IN (1, 2)"
                             " ORDER BY next_try, id LIMIT 1";
static const char Q_UPDATE[] = "UPDATE relay_rcpt SET state = ?2, attempts = ?3, next_try = ?4,"
                               " error = ?5, updated = ?6 WHERE id = ?1";
static const char Q_PENDING[] = "SELECT count(*) FROM relay_rcpt WHERE state IN (1, 2)";
static const char Q_MSG_PENDING[] =
    "SELECT count(*) FROM relay_rcpt WHERE msg_id = ?1 AND state IN (1, 2)";

int pst_store_relay_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                        const char *rcpt, const char *sender, uint64_t created, uint64_t giveup) {
    if (!st || !msg_id || !rcpt || !sender || !PST_STORE__TIME_OK(created) ||
        !PST_STORE__TIME_OK(giveup))
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, Q_ADD, &s);
    if (rc)
        return rc;
    if ((rc = PST_STORE__BLOB(s, 1, msg_id, PST_STORE_MSGID_BYTES)) != SQLITE_OK ||
        (rc = PST_STORE__TEXT(s, 2, rcpt)) != SQLITE_OK ||
        (rc = PST_STORE__TEXT(s, 3, sender)) != SQLITE_OK ||
        (rc = PST_STORE__U64(s, 4, created)) != SQLITE_OK ||
        (rc = PST_STORE__U64(s, 5, giveup)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__run(st, s);
}

static void copy_text(sqlite3_stmt *s, int col, char *out, size_t cap) {
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static void fill_row(sqlite3_stmt *s, pst_store_relay_row *r) {
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(s, 0);
    size_t len = 0;
    (void)pst_store__copy_blob(s, 1, r->msg_id, sizeof r->msg_id, &len);
    copy_text(s, 2, r->rcpt, sizeof r->rcpt);
    copy_text(s, 3, r->sender, sizeof r->sender);
    r->state = (pst_store_relay_state)sqlite3_column_int(s, 4);
    r->attempts = (unsigned)sqlite3_column_int(s, 5);
    r->created = pst_store__col_u64(s, 6);
    r->giveup = pst_store__col_u64(s, 7);
    r->next_try = pst_store__col_u64(s, 8);
    r->updated = pst_store__col_u64(s, 9);
    copy_text(s, 10, r->error, sizeof r->error);
}

int pst_store_relay_next(pst_store *st, pst_store_relay_row *out) {
    if (!st || !out)
        return PST_E_INVAL;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, Q_NEXT, &s);
    if (rc == 0)
        rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    fill_row(s, out);
    sqlite3_reset(s);
    return 0;
}

int pst_store_relay_update(pst_store *st, int64_t id, pst_store_relay_state state,
                           unsigned attempts, uint64_t next_try, const char *error, uint64_t now) {
    if (!st || state < PST_STORE_RELAY_QUEUED || state > PST_STORE_RELAY_BOUNCED ||
        !PST_STORE__TIME_OK(next_try) || !PST_STORE__TIME_OK(now))
        return PST_E_INVAL;
    char err[PST_STORE_RELAY_ERROR_MAX + 1];
    snprintf(err, sizeof err, "%s", error ? error : ""); /* the CHECK's cap, cut short */
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, Q_UPDATE, &s);
    if (rc)
        return rc;
    if ((rc = sqlite3_bind_int64(s, 1, id)) != SQLITE_OK ||
        (rc = sqlite3_bind_int(s, 2, (int)state)) != SQLITE_OK ||
        (rc = sqlite3_bind_int(s, 3, (int)attempts)) != SQLITE_OK ||
        (rc = PST_STORE__U64(s, 4, next_try)) != SQLITE_OK ||
        (rc = PST_STORE__TEXT(s, 5, err)) != SQLITE_OK ||
        (rc = PST_STORE__U64(s, 6, now)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__run(st, s);
}

static int count_of(pst_store *st, sqlite3_stmt *s, uint64_t *count) {
    int rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_STORE;
    *count = pst_store__col_u64(s, 0);
    sqlite3_reset(s);
    return 0;
}

int pst_store_relay_pending(pst_store *st, uint64_t *count) {
    if (!count)
        return PST_E_INVAL;
    *count = 0;
    if (!st)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, Q_PENDING, &s);
    return rc ? rc : count_of(st, s, count);
}

int pst_store_relay_msg_pending(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                uint64_t *count) {
    if (!count)
        return PST_E_INVAL;
    *count = 0;
    if (!st || !msg_id)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt_key(st, Q_MSG_PENDING, msg_id, PST_STORE_MSGID_BYTES, &s);
    return rc ? rc : count_of(st, s, count);
}

struct relay_walk {
    pst_store_relay_cb cb;
    void *user;
};

static int relay_row(sqlite3_stmt *s, void *ctx) {
    struct relay_walk *w = ctx;
    pst_store_relay_row r;
    fill_row(s, &r);
    return w->cb(&r, w->user);
}

static int bind_limit(sqlite3_stmt *s, const void *arg) {
    return sqlite3_bind_int64(s, 1, (sqlite3_int64) * (const unsigned *)arg);
}

int pst_store_relay_list(pst_store *st, unsigned limit, pst_store_relay_cb cb, void *user) {
    if (!st || !cb)
        return PST_E_INVAL;
    struct relay_walk w = {cb, user};
    return pst_store__walk(st,
                           "SELECT id, msg_id, rcpt, sender, state, attempts, created, giveup,"
                           " next_try, updated, error FROM relay_rcpt ORDER BY id DESC LIMIT ?1",
                           bind_limit, &limit, relay_row, &w);
}

const char *pst_store_relay_state_name(pst_store_relay_state s) {
    switch (s) {
    case PST_STORE_RELAY_QUEUED:
        return "queued";
    case PST_STORE_RELAY_RETRYING:
        return "retrying";
    case PST_STORE_RELAY_SENT:
        return "sent";
    case PST_STORE_RELAY_BOUNCED:
        return "bounced";
    }
    return "?";
}
