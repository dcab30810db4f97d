/* The outbox per device (issue 13): a recipient identity that publishes a
 * device list is expected to fetch a message once per device. One row per
 * (message, recipient, device) counts that device's fetches and keeps its
 * receipt; the recipient's own row (outbox_rcpt) stays PENDING, so the
 * body, the notification and unsend stay, until every expected device has
 * a receipt (or was dropped from the list: revoked). */
#include <string.h>

#include "store_int.h"

#define PK_BYTES PST_SIGN_PK_BYTES
#define ID_BYTES PST_STORE_MSGID_BYTES

/* Migration 8 (7 on its own branch). dropped: when a device the message was sealed to left the
 * recipient's device list (revoked): nobody waits for its receipt. */
const char pst_store__outbox_device_v8[] =
    "CREATE TABLE IF NOT EXISTS outbox_device ("
    " msg INTEGER NOT NULL REFERENCES outbox_msg (id) ON DELETE CASCADE,"
    " rcpt BLOB NOT NULL CHECK (length(rcpt) = 32),"
    " device BLOB NOT NULL CHECK (length(device) = 32),"
    " served INTEGER NOT NULL DEFAULT 0,"
    " serve_count INTEGER NOT NULL DEFAULT 0,"
    " receipt BLOB CHECK (receipt IS NULL OR length(receipt) BETWEEN 1 AND 8192),"
    " received INTEGER NOT NULL DEFAULT 0,"
    " dropped INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (msg, rcpt, device)"
    ") STRICT;"
    "CREATE INDEX IF NOT EXISTS outbox_device_key ON outbox_device (msg, device);";

static const char Q_DEV_ADD[] =
    "INSERT INTO outbox_device (msg, rcpt, device)"
    " SELECT m.id, ?2, ?3 FROM outbox_msg m JOIN outbox_rcpt r ON r.msg = m.id"
    " WHERE m.msg_id = ?1 AND m.done = 0 AND r.rcpt = ?2"
    " ON CONFLICT (msg, rcpt, device) DO NOTHING";
/* The recipient that expects device: a pending one first. */
static const char Q_DEV_RCPT[] =
    "SELECT d.rcpt FROM outbox_device d JOIN outbox_msg m ON m.id = d.msg"
    " JOIN outbox_rcpt r ON r.msg = d.msg AND r.rcpt = d.rcpt"
    " WHERE m.msg_id = ?1 AND d.device = ?2 ORDER BY r.state = 1 DESC, d.rcpt LIMIT 1";
static const char Q_DEV_SERVED[] =
    "UPDATE outbox_device SET served = ?4, serve_count = serve_count + 1"
    " WHERE msg = (SELECT id FROM outbox_msg WHERE msg_id = ?1) AND rcpt = ?2 AND device = ?3";
static const char Q_DEV_GET[] =
    "SELECT receipt FROM outbox_device"
    " WHERE msg = (SELECT id FROM outbox_msg WHERE msg_id = ?1) AND rcpt = ?2 AND device = ?3";
static const char Q_DEV_RECEIPT[] =
    "UPDATE outbox_device SET receipt = ?4, received = ?5"
    " WHERE msg = (SELECT id FROM outbox_msg WHERE msg_id = ?1) AND rcpt = ?2 AND device = ?3"
    " AND receipt IS NULL";
static const char Q_DEV_MISSING[] =
    "SELECT count(*) FROM outbox_device"
    " WHERE msg = (SELECT id FROM outbox_msg WHERE msg_id = ?1) AND rcpt = ?2"
    " AND receipt IS NULL AND dropped = 0";
static const char Q_DEV_DROP[] =
    "UPDATE outbox_device SET dropped = max(?4, 1)"
    " WHERE msg = (SELECT id FROM outbox_msg WHERE msg_id = ?1) AND rcpt = ?2 AND device = ?3"
    " AND receipt IS NULL AND dropped = 0";

/* Binds msg_id, rcpt and device as ?1, ?2, ?3. */
static int bind3(pst_store *st, const char *sql, const uint8_t *msg_id, const uint8_t *rcpt,
                 const uint8_t *device, sqlite3_stmt **out) {
    int rc = pst_store__stmt(st, sql, out);
    if (rc)
        return rc;
    rc = PST_STORE__BLOB(*out, 1, msg_id, ID_BYTES);
    if (rc == SQLITE_OK && rcpt)
        rc = PST_STORE__BLOB(*out, 2, rcpt, PK_BYTES);
    if (rc == SQLITE_OK && device)
        rc = PST_STORE__BLOB(*out, 3, device, PK_BYTES);
    return rc == SQLITE_OK ? 0 : pst_store__sqlerr(st, rc);
}

int pst_store_outbox_device_add(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                const uint8_t rcpt[32], const uint8_t device[32]) {
    if (!st || !msg_id || !rcpt || !device)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = bind3(st, Q_DEV_ADD, msg_id, rcpt, device, &s);
    if (rc == 0)
        rc = pst_store__run(st, s);
    if (rc == 0 && sqlite3_changes(st->db) == 0) {
        pst_store_out_state state;
        rc = pst_store_outbox_rcpt_state(st, msg_id, rcpt, &state);
        rc = rc ? rc : PST_E_EXISTS;
    }
    return rc;
}

int pst_store_outbox_device_rcpt(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                 const uint8_t device[32], uint8_t rcpt[32]) {
    if (rcpt)
        memset(rcpt, 0, PK_BYTES);
    if (!st || !msg_id || !device || !rcpt)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, Q_DEV_RCPT, &s);
    if (rc)
        return rc;
    rc = PST_STORE__BLOB(s, 1, msg_id, ID_BYTES);
    if (rc == SQLITE_OK)
        rc = PST_STORE__BLOB(s, 2, device, PK_BYTES);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    const void *p = sqlite3_column_blob(s, 0);
    if (p && sqlite3_column_bytes(s, 0) == (int)PK_BYTES)
        memcpy(rcpt, p, PK_BYTES);
    else
        rc = pst_store__fail(st, PST_E_STORE, "damaged row");
    sqlite3_reset(s);
    return rc < 0 ? rc : 0;
}

/* Runs a statement on one device row with ?4 = t (and ?5 = t2 when a blob
 * is bound as ?4 by the caller instead); PST_E_NOTFOUND when no row of
 * that device exists. */
static int device_touch(pst_store *st, const char *sql, const uint8_t *msg_id, const uint8_t *rcpt,
                        const uint8_t *device, uint64_t now, int *changed) {
    if (!st || !msg_id || !rcpt || !device)
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    sqlite3_stmt *s;
    int rc = bind3(st, sql, msg_id, rcpt, device, &s);
    if (rc)
        return rc;
    if ((rc = PST_STORE__U64(s, 4, now)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    if ((rc = pst_store__run(st, s)))
        return rc;
    *changed = sqlite3_changes(st->db);
    if (*changed > 0)
        return 0;
    if ((rc = bind3(st, Q_DEV_GET, msg_id, rcpt, device, &s)))
        return rc;
    rc = pst_store__row(st, s);
    if (rc > 0)
        sqlite3_reset(s);
    return rc < 0 ? rc : rc == 0 ? PST_E_NOTFOUND : 0;
}

int pst_store_outbox_device_served(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                   const uint8_t rcpt[32], const uint8_t device[32], uint64_t now) {
    int changed = 0;
    return device_touch(st, Q_DEV_SERVED, msg_id, rcpt, device, now, &changed);
}

int pst_store_outbox_device_drop(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                 const uint8_t rcpt[32], const uint8_t device[32], uint64_t now) {
    int changed = 0;
    return device_touch(st, Q_DEV_DROP, msg_id, rcpt, device, now, &changed);
}

static int count_missing(pst_store *st, const uint8_t *msg_id, const uint8_t *rcpt,
                         unsigned *missing) {
    sqlite3_stmt *s;
    int rc = bind3(st, Q_DEV_MISSING, msg_id, rcpt, NULL, &s);
    if (rc)
        return rc;
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : pst_store__fail(st, PST_E_STORE, "count returned no row");
    *missing = (unsigned)sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    return 0;
}

static int device_receipt_locked(pst_store *st, const uint8_t *msg_id, const uint8_t *rcpt,
                                 const uint8_t *device, const uint8_t *receipt, size_t len,
                                 uint64_t now, unsigned *missing) {
    sqlite3_stmt *s;
    int rc = bind3(st, Q_DEV_RECEIPT, msg_id, rcpt, device, &s);
    if (rc)
        return rc;
    rc = PST_STORE__BLOB(s, 4, receipt, len);
    if (rc == SQLITE_OK)
        rc = PST_STORE__U64(s, 5, now);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    if ((rc = pst_store__run(st, s)))
        return rc;
    int result = 0;
    if (sqlite3_changes(st->db) == 0) {
        /* a receipt is there already, or the device is not expected */
        if ((rc = bind3(st, Q_DEV_GET, msg_id, rcpt, device, &s)))
            return rc;
        rc = pst_store__row(st, s);
        if (rc <= 0)
            return rc ? rc : PST_E_NOTFOUND;
        const void *have = sqlite3_column_blob(s, 0);
        bool same =
            have && (size_t)sqlite3_column_bytes(s, 0) == len && memcmp(have, receipt, len) == 0;
        sqlite3_reset(s);
        result = same ? 0 : PST_E_DUPLICATE;
    }
    rc = count_missing(st, msg_id, rcpt, missing);
    return rc ? rc : result;
}

int pst_store_outbox_device_receipt(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                    const uint8_t rcpt[32], const uint8_t device[32],
                                    const uint8_t *receipt, size_t len, uint64_t now,
                                    unsigned *missing) {
    unsigned m = 0;
    if (missing)
        *missing = 0;
    if (!st || !msg_id || !rcpt || !device || !missing)
        return PST_E_INVAL;
    int rc = pst_store__check_put(receipt, len, now);
    if (rc)
        return rc;
    if ((rc = pst_store__tx_begin(st)))
        return rc;
    rc = pst_store__tx_end(st,
                           device_receipt_locked(st, msg_id, rcpt, device, receipt, len, now, &m));
    if (rc == 0 || rc == PST_E_DUPLICATE)
        *missing = m;
    return rc;
}

int pst_store_outbox_device_missing(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                    const uint8_t rcpt[32], unsigned *missing) {
    if (missing)
        *missing = 0;
    if (!st || !msg_id || !rcpt || !missing)
        return PST_E_INVAL;
    return count_missing(st, msg_id, rcpt, missing);
}

struct dev_walk {
    pst_store *st;
    pst_store_outbox_device_cb cb;
    void *user;
};

static int device_row(sqlite3_stmt *s, void *ctx) {
    struct dev_walk *w = ctx;
    const void *dev = pst_store__col_fixed(s, 0, PK_BYTES);
    if (!dev)
        return pst_store__fail(w->st, PST_E_STORE, "damaged row");
    pst_store_outbox_device_row r = {
        .device = dev,
        .served = pst_store__col_u64(s, 1),
        .serve_count = pst_store__col_u64(s, 2),
        .received = pst_store__col_u64(s, 3),
        .dropped = pst_store__col_u64(s, 4),
        .has_receipt = sqlite3_column_type(s, 5) != SQLITE_NULL,
    };
    return w->cb(&r, w->user);
}

struct dev_key {
    const uint8_t *msg_id, *rcpt;
};

static int bind_dev_key(sqlite3_stmt *s, const void *arg) {
    const struct dev_key *k = arg;
    int rc = PST_STORE__BLOB(s, 1, k->msg_id, ID_BYTES);
    return rc == SQLITE_OK ? PST_STORE__BLOB(s, 2, k->rcpt, PK_BYTES) : rc;
}

int pst_store_outbox_device_list(pst_store *st, const uint8_t msg_id[PST_STORE_MSGID_BYTES],
                                 const uint8_t rcpt[32], pst_store_outbox_device_cb cb,
                                 void *user) {
    if (!st || !msg_id || !rcpt || !cb)
        return PST_E_INVAL;
    struct dev_walk w = {st, cb, user};
    struct dev_key k = {msg_id, rcpt};
    return pst_store__walk(st,
                           "SELECT d.device, d.served, d.serve_count, d.received, d.dropped,"
                           " d.receipt FROM outbox_device d JOIN outbox_msg m ON m.id = d.msg"
                           " WHERE m.msg_id = ?1 AND d.rcpt = ?2 ORDER BY d.rowid",
                           bind_dev_key, &k, device_row, &w);
}
