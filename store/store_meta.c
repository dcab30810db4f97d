/* Small named values (meta) and persisted counters. */
#include <stdint.h>

#include "store_int.h"

/* ---- meta ---------------------------------------------------------------- */

static const char Q_META_GET[] = "SELECT value FROM meta WHERE name = ?1";
static const char Q_META_SET[] = "INSERT INTO meta (name, value) VALUES (?1, ?2)"
                                 " ON CONFLICT (name) DO UPDATE SET value = excluded.value";
static const char Q_META_DEL[] = "DELETE FROM meta WHERE name = ?1";

/* Checks name and prepares sql with name bound to ?1 (meta and counter
 * rows are both keyed by a checked name). 0 or an error. */
static int name_stmt(pst_store *st, const char *sql, const char *name, sqlite3_stmt **out) {
    int rc = pst_store__check_name(name, PST_STORE_NAME_MAX);
    if (rc)
        return rc;
    if ((rc = pst_store__stmt(st, sql, out)))
        return rc;
    if ((rc = PST_STORE__TEXT(*out, 1, name)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return 0;
}

/* Positions s on the row of name: 1 found (caller resets), 0 absent, < 0. */
static int meta_find(pst_store *st, const char *name, sqlite3_stmt **out) {
    int rc = name_stmt(st, Q_META_GET, name, out);
    return rc ? rc : pst_store__row(st, *out);
}

int pst_store_meta_get_u64(pst_store *st, const char *name, uint64_t *value) {
    if (!value)
        return PST_E_INVAL;
    *value = 0;
    if (!st)
        return PST_E_INVAL;
    sqlite3_stmt *s = NULL;
    int rc = meta_find(st, name, &s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    if (sqlite3_column_type(s, 0) == SQLITE_INTEGER)
        *value = pst_store__col_u64(s, 0);
    else
        rc = PST_E_TYPE;
    sqlite3_reset(s);
    return rc == 1 ? 0 : rc;
}

static int meta_set(pst_store *st, const char *name, const uint64_t *u, const uint8_t *buf,
                    size_t len) {
    sqlite3_stmt *s;
    int rc = name_stmt(st, Q_META_SET, name, &s);
    if (rc)
        return rc;
    /* A zero-length blob must still be a blob, not NULL. */
    static const uint8_t empty[1];
    rc = u ? PST_STORE__U64(s, 2, *u) : PST_STORE__BLOB(s, 2, len ? buf : empty, len);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__run(st, s);
}

int pst_store_meta_set_u64(pst_store *st, const char *name, uint64_t value) {
    if (!st)
        return PST_E_INVAL;
    return meta_set(st, name, &value, NULL, 0);
}

int pst_store_meta_next_u64(pst_store *st, const char *name, uint64_t *value) {
    if (!value)
        return PST_E_INVAL;
    *value = 0;
    if (!st)
        return PST_E_INVAL;
    int rc = pst_store__check_name(name, PST_STORE_NAME_MAX);
    if (rc)
        return rc;
    if ((rc = pst_store__tx_begin(st)))
        return rc;
    uint64_t cur = 0;
    rc = pst_store_meta_get_u64(st, name, &cur);
    if (rc == PST_E_NOTFOUND)
        rc = 0;
    if (rc == 0 && cur == UINT64_MAX)
        rc = PST_E_RANGE;
    cur++;
    if (rc == 0)
        rc = meta_set(st, name, &cur, NULL, 0);
    rc = pst_store__tx_end(st, rc);
    if (rc == 0)
        *value = cur;
    return rc;
}

int pst_store_meta_get_blob(pst_store *st, const char *name, uint8_t *buf, size_t cap,
                            size_t *len) {
    if (!len)
        return PST_E_INVAL;
    *len = 0;
    if (!st || (!buf && cap))
        return PST_E_INVAL;
    if (buf && cap)
        memset(buf, 0, cap);
    sqlite3_stmt *s = NULL;
    int rc = meta_find(st, name, &s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    if (sqlite3_column_type(s, 0) == SQLITE_BLOB)
        rc = pst_store__copy_blob(s, 0, buf, cap, len);
    else
        rc = PST_E_TYPE;
    sqlite3_reset(s);
    return rc;
}

int pst_store_meta_set_blob(pst_store *st, const char *name, const uint8_t *buf, size_t len) {
    if (!st)
        return PST_E_INVAL;
    int rc = pst_store__check_blob(buf, len, 0);
    return rc ? rc : meta_set(st, name, NULL, buf, len);
}

int pst_store_meta_delete(pst_store *st, const char *name) {
    if (!st)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = name_stmt(st, Q_META_DEL, name, &s);
    if (rc)
        return rc;
    rc = pst_store__run(st, s);
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = PST_E_NOTFOUND;
    return rc;
}

/* ---- counters ------------------------------------------------------------ */

static const char Q_COUNTER_GET[] = "SELECT value FROM counter WHERE name = ?1";
/* The CASE keeps the sum in int64: SQLite would silently turn an overflowing
 * integer into a REAL. Overflow yields NULL, which NOT NULL rejects. */
static const char Q_COUNTER_ADD[] =
    "INSERT INTO counter (name, value) VALUES (?1, ?2)"
    " ON CONFLICT (name) DO UPDATE SET value = CASE"
    "  WHEN ?2 > 0 AND value > 9223372036854775807 - ?2 THEN NULL"
    "  WHEN ?2 < 0 AND value < -9223372036854775807 - 1 - ?2 THEN NULL"
    "  ELSE value + ?2 END";

int pst_store_counter_add(pst_store *st, const char *name, int64_t delta) {
    if (!st)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = name_stmt(st, Q_COUNTER_ADD, name, &s);
    if (rc)
        return rc;
    if ((rc = sqlite3_bind_int64(s, 2, delta)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    rc = pst_store__run(st, s);
    /* The NULL of an overflow comes back as a NOT NULL constraint failure. */
    if (rc == PST_E_STORE && (sqlite3_extended_errcode(st->db) & 0xff) == SQLITE_CONSTRAINT)
        rc = PST_E_RANGE;
    return rc;
}

int pst_store_counter_get(pst_store *st, const char *name, int64_t *value) {
    if (!value)
        return PST_E_INVAL;
    *value = 0;
    if (!st)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = name_stmt(st, Q_COUNTER_GET, name, &s);
    if (rc)
        return rc;
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    *value = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return 0;
}

struct counter_walk {
    pst_store_counter_cb cb;
    void *user;
};

static int counter_row(sqlite3_stmt *s, void *ctx) {
    struct counter_walk *w = ctx;
    const unsigned char *name = sqlite3_column_text(s, 0);
    return w->cb(name ? (const char *)name : "", sqlite3_column_int64(s, 1), w->user);
}

int pst_store_counter_list(pst_store *st, pst_store_counter_cb cb, void *user) {
    if (!st || !cb)
        return PST_E_INVAL;
    struct counter_walk w = {cb, user};
    return pst_store__walk(st, "SELECT name, value FROM counter ORDER BY name", NULL, NULL,
                           counter_row, &w);
}
