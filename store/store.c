/* The store handle: open with durable settings, schema migrations, the
 * statement cache, transactions, and the small tables (meta, counters). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pst_utf8.h"
#include "store_int.h"

/* "PSTN": marks the file as ours, so we never add tables to someone else's
 * database that happens to sit at our path. */
#define PST_STORE_APP_ID 0x5053544e

/* Long enough to ride out a checkpoint or a CLI reader, short enough that a
 * second daemon on the same file fails visibly. */
#define PST_STORE_BUSY_MS 5000

/* Migrations, in order: migrations[i] takes user_version i to i + 1. Never
 * edit a step that has shipped; append a new one. */
static const char *const migrations[] = {
    /* 1: identity-side state, key cache, trust. */
    "PRAGMA application_id = 1347638350;"
    "CREATE TABLE meta ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " value ANY NOT NULL CHECK (typeof(value) IN ('integer', 'blob'))"
    ") STRICT;"
    "CREATE TABLE counter ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " value INTEGER NOT NULL"
    ") STRICT;"
    /* Never deleted: remembers the newest record of every key ever seen. */
    "CREATE TABLE key_seq_high ("
    " pk BLOB PRIMARY KEY NOT NULL CHECK (length(pk) = 32),"
    " seq INTEGER NOT NULL,"
    " hash BLOB NOT NULL CHECK (length(hash) = 32),"
    " seen INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TRIGGER key_seq_high_keep BEFORE DELETE ON key_seq_high"
    " BEGIN SELECT RAISE(ABORT, 'key_seq_high rows are permanent'); END;"
    "CREATE TABLE keyrec ("
    " pk BLOB PRIMARY KEY NOT NULL REFERENCES key_seq_high (pk),"
    " seq INTEGER NOT NULL,"
    " created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL,"
    " stored INTEGER NOT NULL,"
    " bytes BLOB NOT NULL CHECK (length(bytes) BETWEEN 1 AND 8192)"
    ") STRICT;"
    "CREATE INDEX keyrec_expires ON keyrec (expires) WHERE expires != 0;"
    "CREATE TABLE addr_seq_high ("
    " address TEXT NOT NULL,"
    " pk BLOB NOT NULL CHECK (length(pk) = 32),"
    " seq INTEGER NOT NULL,"
    " hash BLOB NOT NULL CHECK (length(hash) = 32),"
    " PRIMARY KEY (address, pk)"
    ") STRICT;"
    "CREATE TRIGGER addr_seq_high_keep BEFORE DELETE ON addr_seq_high"
    " BEGIN SELECT RAISE(ABORT, 'addr_seq_high rows are permanent'); END;"
    "CREATE TABLE addrclaim ("
    " address TEXT NOT NULL,"
    " pk BLOB NOT NULL,"
    " seq INTEGER NOT NULL,"
    " expires INTEGER NOT NULL,"
    " bytes BLOB NOT NULL CHECK (length(bytes) BETWEEN 1 AND 8192),"
    " PRIMARY KEY (address, pk),"
    " FOREIGN KEY (address, pk) REFERENCES addr_seq_high (address, pk)"
    ") STRICT;"
    "CREATE INDEX addrclaim_expires ON addrclaim (expires) WHERE expires != 0;"
    "CREATE TABLE revocation ("
    " pk BLOB PRIMARY KEY NOT NULL CHECK (length(pk) = 32),"
    " created INTEGER NOT NULL,"
    " stored INTEGER NOT NULL,"
    " bytes BLOB NOT NULL CHECK (length(bytes) BETWEEN 1 AND 8192)"
    ") STRICT;"
    "CREATE TRIGGER revocation_keep_u BEFORE UPDATE ON revocation"
    " BEGIN SELECT RAISE(ABORT, 'revocations are permanent'); END;"
    "CREATE TRIGGER revocation_keep_d BEFORE DELETE ON revocation"
    " BEGIN SELECT RAISE(ABORT, 'revocations are permanent'); END;"
    "CREATE TABLE contact ("
    " pk BLOB PRIMARY KEY NOT NULL CHECK (length(pk) = 32),"
    " tier INTEGER NOT NULL CHECK (tier IN (1, 2, 3)),"
    " petname TEXT CHECK (petname IS NULL OR length(CAST(petname AS BLOB)) BETWEEN 1 AND 64),"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE published ("
    " kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 255),"
    " slot BLOB NOT NULL CHECK (length(slot) = 20),"
    " seq INTEGER NOT NULL,"
    " stored INTEGER NOT NULL,"
    " published INTEGER NOT NULL,"
    " bytes BLOB NOT NULL CHECK (length(bytes) BETWEEN 1 AND 8192),"
    " PRIMARY KEY (kind, slot)"
    ") STRICT;",
    /* 2: mail (store_mail.c). */
    pst_store__mail_schema,
    /* 3: the outbox keeps message bodies in files (DIR/outbox/<msg id>) instead
     * of blobs, and records how each recipient was addressed, DHT puts,
     * fetches and withdrawals. Version 2's outbox was never written by any
     * node (sending came with this version), so its tables are replaced. */
    "DROP TABLE outbox_rcpt;"
    "DROP TABLE outbox_msg;"
    "CREATE TABLE outbox_msg ("
    " id INTEGER PRIMARY KEY,"
    " msg_id BLOB NOT NULL UNIQUE CHECK (length(msg_id) = 32),"
    " created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL,"
    " size INTEGER NOT NULL CHECK (size BETWEEN 1 AND 67108864),"
    " subject TEXT NOT NULL DEFAULT '' CHECK (length(CAST(subject AS BLOB)) <= 200),"
    " done INTEGER NOT NULL DEFAULT 0" /* when nobody was pending any more; 0 = live */
    ") STRICT;"
    "CREATE TABLE outbox_rcpt ("
    " msg INTEGER NOT NULL REFERENCES outbox_msg (id) ON DELETE CASCADE,"
    " rcpt BLOB NOT NULL CHECK (length(rcpt) = 32),"
    " kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),"
    " state INTEGER NOT NULL CHECK (state IN (1, 2, 3, 4, 5)),"
    " notification BLOB NOT NULL CHECK (length(notification) BETWEEN 1 AND 8192),"
    " receipt BLOB CHECK (receipt IS NULL OR length(receipt) BETWEEN 1 AND 8192),"
    " updated INTEGER NOT NULL,"
    " notified INTEGER NOT NULL DEFAULT 0,"
    " notify_count INTEGER NOT NULL DEFAULT 0,"
    " served INTEGER NOT NULL DEFAULT 0,"
    " serve_count INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (msg, rcpt)"
    ") STRICT;"
    "CREATE INDEX outbox_rcpt_state ON outbox_rcpt (state);",
    /* 4: inbox notifications move to inbox_notification, so that the purge
     * (pst_store_inbox_purge) frees whole pages; inbox gets an explicit id
     * (its old rowid: arrival order). store_mail.c has the SQL. */
    pst_store__inbox_v4,
    /* 5: the smarthost queue (store_relay.c has the SQL). */
    pst_store__relay_v5,
    /* 6: contacts' email addresses, for LMTP's tiers (store_trust.c). */
    pst_store__contact_email_v6,
    /* 7: device lists and device names (store_devices.c, issue 13). */
    pst_store__devices_v7,
    /* 8: the outbox per device of a recipient (store_outdev.c). */
    pst_store__outbox_device_v8,
    /* 9: small outbox bodies in the store (store_outbody.c). */
    pst_store__outbox_body_v9,
};
_Static_assert(sizeof migrations / sizeof migrations[0] == PST_STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* ---- errors -------------------------------------------------------------- */

static void set_err(char *buf, size_t cap, const char *fmt, va_list ap) {
    if (buf && cap)
        vsnprintf(buf, cap, fmt, ap);
}

int pst_store__fail(pst_store *st, int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_err(st->err, sizeof st->err, fmt, ap);
    va_end(ap);
    return err;
}

static int map_rc(int rc) {
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return PST_E_BUSY;
    case SQLITE_NOMEM:
        return PST_E_NOMEM;
    default:
        return PST_E_STORE;
    }
}

int pst_store__sqlerr(pst_store *st, int rc) {
    const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    snprintf(st->err, sizeof st->err, "%s", msg);
    return map_rc(rc);
}

const char *pst_store_last_error(const pst_store *st) { return st ? st->err : ""; }

/* ---- statements ---------------------------------------------------------- */

int pst_store__stmt(pst_store *st, const char *sql, sqlite3_stmt **out) {
    *out = NULL;
    for (size_t i = 0; i < st->nstmts; i++) {
        if (st->stmts[i].sql == sql) {
            sqlite3_stmt *s = st->stmts[i].stmt;
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            *out = s;
            return 0;
        }
    }
    if (st->nstmts == PST_STORE_STMTS_MAX)
        return pst_store__fail(st, PST_E_NOMEM, "statement cache full (raise PST_STORE_STMTS_MAX)");
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(s);
        return pst_store__sqlerr(st, rc);
    }
    st->stmts[st->nstmts].sql = sql;
    st->stmts[st->nstmts].stmt = s;
    st->nstmts++;
    *out = s;
    return 0;
}

int pst_store__stmt_key(pst_store *st, const char *sql, const uint8_t *key, size_t len,
                        sqlite3_stmt **out) {
    int rc = pst_store__stmt(st, sql, out);
    if (rc)
        return rc;
    if ((rc = PST_STORE__BLOB(*out, 1, key, len)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return 0;
}

int pst_store__run(pst_store *st, sqlite3_stmt *s) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        sqlite3_reset(s);
        return 0;
    }
    int err = pst_store__sqlerr(st, rc);
    sqlite3_reset(s);
    return err;
}

int pst_store__row(pst_store *st, sqlite3_stmt *s) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        return 0;
    }
    int err = pst_store__sqlerr(st, rc);
    sqlite3_reset(s);
    return err;
}

/* Not a cached statement: SQLite applies a synchronous pragma when it
 * compiles it, so a prepared one run again would change nothing. */
bool pst_store__lazy_on(pst_store *st) {
    bool on = sqlite3_get_autocommit(st->db) &&
              sqlite3_exec(st->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) == SQLITE_OK;
    if (on)
        st->sync_normal = true;
    return on;
}

int pst_store__lazy_off(pst_store *st, bool on, int rc) {
    if (!on)
        return rc;
    /* back before anything else commits: every other write waits for its fsync */
    int r = sqlite3_exec(st->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    if (r == SQLITE_OK)
        st->sync_normal = false;
    return rc == 0 && r != SQLITE_OK ? pst_store__sqlerr(st, r) : rc;
}

int pst_store__run_lazy(pst_store *st, sqlite3_stmt *s) {
    bool on = pst_store__lazy_on(st);
    return pst_store__lazy_off(st, on, pst_store__run(st, s));
}

static int exec_cached(pst_store *st, const char *sql) {
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, sql, &s);
    return rc ? rc : pst_store__run(st, s);
}

/* The cached statement of a walk's sql, unless it is in use (a row callback
 * walking the same list again) or the cache is full: then a fresh one,
 * finalized by walk_done. Preparing costs more than a short walk's step. */
static int walk_stmt(pst_store *st, const char *sql, sqlite3_stmt **out, bool *cached) {
    bool known = false, busy = false;
    for (size_t i = 0; i < st->nstmts && !known; i++)
        if (st->stmts[i].sql == sql) {
            known = true;
            busy = sqlite3_stmt_busy(st->stmts[i].stmt);
        }
    *cached = !busy && (known || st->nstmts < PST_STORE_STMTS_MAX);
    if (*cached)
        return pst_store__stmt(st, sql, out);
    *out = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, out, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(*out);
        *out = NULL;
        return pst_store__sqlerr(st, rc);
    }
    return 0;
}

static void walk_done(sqlite3_stmt *s, bool cached) {
    if (cached) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    } else {
        sqlite3_finalize(s);
    }
}

int pst_store__walk(pst_store *st, const char *sql, pst_store__bind_fn bind, const void *arg,
                    pst_store__row_fn row, void *ctx) {
    sqlite3_stmt *s = NULL;
    bool cached = false;
    int rc = walk_stmt(st, sql, &s, &cached);
    if (rc)
        return rc;
    rc = bind ? bind(s, arg) : SQLITE_OK;
    if (rc != SQLITE_OK) {
        int err = pst_store__sqlerr(st, rc);
        walk_done(s, cached);
        return err;
    }
    int ret = 0;
    for (;;) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            ret = row(s, ctx);
            if (ret != 0)
                break;
        } else {
            if (rc != SQLITE_DONE)
                ret = pst_store__sqlerr(st, rc);
            break;
        }
    }
    walk_done(s, cached);
    return ret;
}

int pst_store__copy_blob(sqlite3_stmt *s, int col, uint8_t *buf, size_t cap, size_t *len) {
    const void *p = sqlite3_column_blob(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (n > 0 && !p)
        return PST_E_NOMEM;
    if (n < 0)
        n = 0;
    if ((size_t)n > cap) {
        if (buf && cap)
            memset(buf, 0, cap);
        *len = (size_t)n;
        return PST_E_NOSPACE;
    }
    if (n > 0)
        memcpy(buf, p, (size_t)n);
    *len = (size_t)n;
    return 0;
}

int pst_store__check_blob(const uint8_t *bytes, size_t len, size_t min) {
    if (len > PST_STORE_BLOB_MAX)
        return PST_E_TOOBIG;
    if (len < min || (len > 0 && !bytes))
        return PST_E_INVAL;
    return 0;
}

int pst_store__check_put(const uint8_t *bytes, size_t len, uint64_t now) {
    int rc = pst_store__check_blob(bytes, len, 1);
    if (rc == 0 && !PST_STORE__TIME_OK(now))
        rc = PST_E_RANGE;
    return rc;
}

const void *pst_store__col_fixed(sqlite3_stmt *s, int col, size_t n) {
    const void *p = sqlite3_column_blob(s, col);
    return p != NULL && sqlite3_column_bytes(s, col) == (int)n ? p : NULL;
}

/* Names end up in logs and terminals: valid UTF-8 without control
 * characters, so nothing stored can inject escape sequences. */
int pst_store__check_name(const char *name, size_t max) {
    if (!name || !name[0])
        return PST_E_INVAL;
    size_t n = strnlen(name, max + 1);
    if (n > max)
        return PST_E_TOOBIG;
    const unsigned char *p = (const unsigned char *)name;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x20 || p[i] == 0x7f)
            return PST_E_INVAL;
        size_t k = pst_utf8_seq(p + i, n - i);
        if (k == 0 || (k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) /* C1 controls */
            return PST_E_INVAL;
        i += k;
    }
    return 0;
}

/* ---- transactions -------------------------------------------------------- */

static const char Q_BEGIN[] = "BEGIN IMMEDIATE";
static const char Q_COMMIT[] = "COMMIT";
static const char Q_ROLLBACK[] = "ROLLBACK";
static const char Q_SAVEPOINT[] = "SAVEPOINT pst_unit";
static const char Q_RELEASE[] = "RELEASE pst_unit";
static const char Q_ROLLBACK_TO[] = "ROLLBACK TO pst_unit";

/* Opens the outermost transaction; notes the change count so its commit
 * knows whether it wrote (a commit that wrote nothing syncs nothing).
 * IMMEDIATE takes the write lock up front: a deferred read-then-write
 * transaction could fail with SQLITE_BUSY_SNAPSHOT without waiting. */
static int open_tx(pst_store *st) {
    st->changes_open = sqlite3_total_changes64(st->db);
    return exec_cached(st, Q_BEGIN);
}

/* The outermost commit; one that wrote with synchronous=FULL fsynced the WAL
 * file, and with it every lazy write before it. */
static int commit_tx(pst_store *st) {
    bool wrote = sqlite3_total_changes64(st->db) != st->changes_open;
    int rc = exec_cached(st, Q_COMMIT);
    if (rc == 0 && wrote && !st->sync_normal)
        st->synced_gen++;
    return rc;
}

int pst_store__tx_begin(pst_store *st) {
    if (sqlite3_get_autocommit(st->db))
        return open_tx(st);
    int rc = exec_cached(st, Q_SAVEPOINT);
    if (rc == 0)
        st->savepoints++;
    return rc;
}

int pst_store__tx_end(pst_store *st, int rc) {
    if (st->savepoints > 0) {
        st->savepoints--;
        if (sqlite3_get_autocommit(st->db))
            return rc ? rc : pst_store__fail(st, PST_E_STORE, "batch was rolled back");
        if (rc != 0) {
            char keep[PST_STORE_ERR_MAX];
            memcpy(keep, st->err, sizeof keep);
            exec_cached(st, Q_ROLLBACK_TO);
            exec_cached(st, Q_RELEASE);
            memcpy(st->err, keep, sizeof keep);
            return rc;
        }
        return exec_cached(st, Q_RELEASE);
    }
    if (sqlite3_get_autocommit(st->db)) /* SQLite already rolled back (I/O error) */
        return rc ? rc : pst_store__fail(st, PST_E_STORE, "transaction was rolled back");
    if (rc == 0) {
        rc = commit_tx(st);
        if (rc == 0)
            return 0;
    }
    char keep[PST_STORE_ERR_MAX];
    memcpy(keep, st->err, sizeof keep);
    exec_cached(st, Q_ROLLBACK);
    memcpy(st->err, keep, sizeof keep);
    return rc;
}

int pst_store_begin(pst_store *st) {
    if (!st || st->batch || !sqlite3_get_autocommit(st->db))
        return PST_E_INVAL;
    int rc = open_tx(st);
    if (rc == 0)
        st->batch = true;
    return rc;
}

int pst_store_begin_lazy(pst_store *st) {
    if (!st || st->batch || !sqlite3_get_autocommit(st->db))
        return PST_E_INVAL;
    bool on = pst_store__lazy_on(st);
    int rc = open_tx(st);
    if (rc != 0)
        return pst_store__lazy_off(st, on, rc);
    st->batch = true;
    st->batch_lazy = on;
    return 0;
}

/* Ends a batch's lazy mode (synchronous back to FULL) once it is over. */
static int batch_over(pst_store *st, int rc) {
    bool on = st->batch_lazy;
    st->batch_lazy = false;
    return pst_store__lazy_off(st, on, rc);
}

int pst_store_commit(pst_store *st) {
    if (!st || !st->batch)
        return PST_E_INVAL;
    st->batch = false;
    return batch_over(st, pst_store__tx_end(st, 0));
}

uint64_t pst_store_synced(const pst_store *st) { return st ? st->synced_gen : 0; }

int pst_store_sync(pst_store *st) {
    if (!st || st->batch || !sqlite3_get_autocommit(st->db))
        return PST_E_INVAL;
    if (st->sync_normal)
        return pst_store__fail(st, PST_E_INVAL, "sync inside a lazy write");
    int rc = open_tx(st);
    if (rc)
        return rc;
    /* a row must change for the commit to write, and so to fsync */
    rc = pst_store_meta_set_u64(st, "store_synced", st->synced_gen + 1);
    return pst_store__tx_end(st, rc);
}

int pst_store_rollback(pst_store *st) {
    if (!st || !st->batch)
        return PST_E_INVAL;
    st->batch = false;
    if (sqlite3_get_autocommit(st->db))
        return batch_over(st, 0);
    return batch_over(st, exec_cached(st, Q_ROLLBACK));
}

/* ---- open / close -------------------------------------------------------- */

static int pragma_text(pst_store *st, const char *sql, char *out, size_t cap) {
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        snprintf(out, cap, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        out[0] = '\0';
        rc = SQLITE_OK;
    }
    int err = rc == SQLITE_OK ? 0 : pst_store__sqlerr(st, rc);
    sqlite3_finalize(s);
    return err;
}

static int pragma_int(pst_store *st, const char *sql, sqlite3_int64 *v) {
    char buf[32];
    int rc = pragma_text(st, sql, buf, sizeof buf);
    *v = rc == 0 ? strtoll(buf, NULL, 10) : 0;
    return rc;
}

static int exec_script(pst_store *st, const char *sql) {
    char *msg = NULL;
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return 0;
    snprintf(st->err, sizeof st->err, "%s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return map_rc(rc);
}

static int migrate_one(pst_store *st, int from) {
    int rc = exec_cached(st, Q_BEGIN);
    if (rc)
        return rc;
    /* Re-read under the write lock: another process may have migrated. */
    sqlite3_int64 v = 0, tables = 0, app = 0;
    rc = pragma_int(st, "PRAGMA user_version", &v);
    if (rc == 0 && v == from && from == 0) {
        rc = pragma_int(st, "SELECT count(*) FROM sqlite_schema", &tables);
        if (rc == 0)
            rc = pragma_int(st, "PRAGMA application_id", &app);
        if (rc == 0 && (tables != 0 || (app != 0 && app != PST_STORE_APP_ID)))
            rc = pst_store__fail(st, PST_E_STORE, "not a Postern database (it has other tables)");
    }
    if (rc == 0 && v == from) {
        rc = exec_script(st, migrations[from]);
        if (rc == 0) {
            char sql[48];
            snprintf(sql, sizeof sql, "PRAGMA user_version = %d", from + 1);
            rc = exec_script(st, sql);
        }
    }
    return pst_store__tx_end(st, rc);
}

static int migrate(pst_store *st) {
    for (;;) {
        sqlite3_int64 v = 0, app = 0;
        int rc = pragma_int(st, "PRAGMA user_version", &v);
        if (rc == 0)
            rc = pragma_int(st, "PRAGMA application_id", &app);
        if (rc)
            return rc;
        if (v > 0 && app != PST_STORE_APP_ID)
            return pst_store__fail(st, PST_E_STORE, "not a Postern database (application_id %lld)",
                                   (long long)app);
        if (v > PST_STORE_SCHEMA_VERSION || v < 0)
            return pst_store__fail(st, PST_E_VERSION,
                                   "database schema version %lld is newer than this postern "
                                   "supports (%d): upgrade postern",
                                   (long long)v, PST_STORE_SCHEMA_VERSION);
        if (v == PST_STORE_SCHEMA_VERSION)
            return 0;
        rc = migrate_one(st, (int)v);
        if (rc)
            return rc;
    }
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A truncated database file (a bad copy, a full disk in a restore) would
 * otherwise open and fail later on some query, with SQLite's "database disk
 * image is malformed" and no file name. The header says how many pages the
 * file has (valid when the change counter matches version-valid-for). With a
 * non-empty -wal file SQLite reads newer pages from there (a checkpoint cut
 * short may have grown the header first), so the file length is not checked
 * then. */
static int check_length(pst_store *st, const char *path) {
    uint8_t h[100];
    struct stat sb, wal;
    char walpath[PATH_MAX + 8];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return pst_store__fail(st, PST_E_IO, "cannot open %s: %s", path, strerror(errno));
    ssize_t n;
    do
        n = pread(fd, h, sizeof h, 0);
    while (n < 0 && errno == EINTR);
    int e = errno;
    int frc = fstat(fd, &sb);
    close(fd);
    if (n < 0 || frc != 0)
        return pst_store__fail(st, PST_E_IO, "cannot read %s: %s", path, strerror(e));
    if (n < (ssize_t)sizeof h)
        return pst_store__fail(st, PST_E_STORE,
                               "%s is truncated (%lld bytes, shorter than a database header): "
                               "the database is damaged; restore it from a backup",
                               path, (long long)sb.st_size);
    snprintf(walpath, sizeof walpath, "%s-wal", path);
    if (stat(walpath, &wal) == 0 && wal.st_size > 0)
        return 0;
    uint64_t page = (uint64_t)h[16] << 8 | h[17];
    if (page == 1)
        page = 65536;
    uint64_t pages = be32(h + 28);
    if (pages == 0 || be32(h + 24) != be32(h + 92))
        return 0; /* no valid in-header size: SQLite uses the file's */
    if ((uint64_t)sb.st_size < pages * page)
        return pst_store__fail(st, PST_E_STORE,
                               "%s is truncated (%lld bytes; its header says %llu pages of %llu "
                               "bytes): the database is damaged; restore it from a backup",
                               path, (long long)sb.st_size, (unsigned long long)pages,
                               (unsigned long long)page);
    return 0;
}

/* Creates the file owner-only before SQLite sees it; SQLite gives the -wal
 * and -shm files the same mode. An existing file keeps its mode, and must be
 * empty or start with SQLite's magic: SQLite would silently reinitialise a
 * very short foreign file. */
static int precreate(pst_store *st, const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return pst_store__fail(st, errno == EACCES || errno == EPERM ? PST_E_PERM : PST_E_IO,
                               "cannot open %s: %s", path, strerror(errno));
    static const char magic[16] = "SQLite format 3";
    char head[sizeof magic];
    ssize_t n;
    do
        n = pread(fd, head, sizeof head, 0);
    while (n < 0 && errno == EINTR);
    int err = errno;
    close(fd);
    if (n < 0)
        return pst_store__fail(st, PST_E_IO, "cannot read %s: %s", path, strerror(err));
    if (n > 0 && (n < (ssize_t)sizeof head || memcmp(head, magic, sizeof magic) != 0))
        return pst_store__fail(st, PST_E_STORE, "%s: file is not a database", path);
    return n > 0 ? check_length(st, path) : 0;
}

static int configure(pst_store *st, const char *path) {
    int rc = sqlite3_open_v2(
        path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (!st->db)
            return pst_store__fail(st, PST_E_NOMEM, "out of memory");
        return pst_store__sqlerr(st, rc);
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, PST_STORE_BUSY_MS);
    /* No writable_schema tricks, no SQL functions run from schema content. */
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(st->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);

    const char *file = sqlite3_db_filename(st->db, "main");
    bool in_memory = !file || !file[0];
    char mode[16];
    /* The first statement that reads the header: a foreign file fails here. */
    rc = pragma_text(st, in_memory ? "PRAGMA journal_mode" : "PRAGMA journal_mode = WAL", mode,
                     sizeof mode);
    if (rc)
        return rc;
    if (!in_memory && strcmp(mode, "wal") != 0)
        return pst_store__fail(st, PST_E_STORE, "cannot use WAL journal mode (got %s)", mode);
    /* FULL: in WAL mode NORMAL may lose the last commits on power loss, and a
     * commit that returned must survive (receipts are sent after it).
     * cell_size_check: a damaged page is an error, not a wild read.
     * journal_size_limit: outbox bodies pass through the WAL; do not keep a
     * huge WAL file around after each checkpoint. */
    rc = exec_script(st, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                         "PRAGMA cell_size_check = ON; PRAGMA journal_size_limit = 67108864;");
    if (rc)
        return rc;
    return migrate(st);
}

int pst_store_open_ex(pst_store **out, const char *path, char *err, size_t errcap) {
    if (err && errcap)
        err[0] = '\0';
    if (!out)
        return PST_E_INVAL;
    *out = NULL;
    if (!path || !path[0]) {
        if (err && errcap)
            snprintf(err, errcap, "no database path");
        return PST_E_INVAL;
    }
    if (sodium_init() < 0) {
        if (err && errcap)
            snprintf(err, errcap, "libsodium failed to initialise");
        return PST_E_CRYPTO;
    }
    pst_store *st = calloc(1, sizeof *st);
    if (!st) {
        if (err && errcap)
            snprintf(err, errcap, "out of memory");
        return PST_E_NOMEM;
    }
    int rc = 0;
    if (strcmp(path, ":memory:") != 0)
        rc = precreate(st, path);
    if (rc == 0)
        rc = configure(st, path);
    if (rc) {
        /* the message names the file: a home has several, and SQLite's own
         * errors ("database disk image is malformed") do not */
        const char *why = st->err[0] ? st->err : pst_strerror(rc);
        if (err && errcap && strstr(why, path) != NULL)
            snprintf(err, errcap, "%s", why);
        else if (err && errcap)
            snprintf(err, errcap, "database %s: %s%s", path, why,
                     rc == PST_E_STORE ? " (the file is damaged or not a Postern database; "
                                         "restore it from a backup)"
                                       : "");
        pst_store_close(st);
        return rc;
    }
    st->err[0] = '\0';
    *out = st;
    return 0;
}

int pst_store_open(pst_store **out, const char *path) {
    return pst_store_open_ex(out, path, NULL, 0);
}

void pst_store_close(pst_store *st) {
    if (!st)
        return;
    if (st->db && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    for (size_t i = 0; i < st->nstmts; i++)
        sqlite3_finalize(st->stmts[i].stmt);
    /* v2: never leaves the connection half-open if something is still live. */
    sqlite3_close_v2(st->db);
    free(st);
}

int pst_store_info_get(pst_store *st, pst_store_info *out) {
    if (!out)
        return PST_E_INVAL;
    memset(out, 0, sizeof *out);
    if (!st)
        return PST_E_INVAL;
    sqlite3_int64 v[6] = {0};
    static const char *const q[6] = {
        "PRAGMA user_version", "PRAGMA synchronous", "PRAGMA foreign_keys",
        "PRAGMA page_size",    "PRAGMA page_count",  "PRAGMA freelist_count",
    };
    int rc = pragma_text(st, "PRAGMA journal_mode", out->journal_mode, sizeof out->journal_mode);
    for (size_t i = 0; rc == 0 && i < 6; i++)
        rc = pragma_int(st, q[i], &v[i]);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->schema_version = (int)v[0];
    out->synchronous = (int)v[1];
    out->foreign_keys = (int)v[2];
    out->page_size = (uint64_t)v[3];
    out->page_count = (uint64_t)v[4];
    out->freelist_count = (uint64_t)v[5];
    return 0;
}

int pst_store_check(pst_store *st) {
    if (!st)
        return PST_E_INVAL;
    char res[PST_STORE_ERR_MAX];
    int rc = pragma_text(st, "PRAGMA quick_check(1)", res, sizeof res);
    if (rc)
        return rc;
    if (strcmp(res, "ok") != 0)
        return pst_store__fail(st, PST_E_STORE, "%s", res);
    return 0;
}
