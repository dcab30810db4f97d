/* Device lists (issue 13): the newest verified DeviceList of each identity,
 * own and others', and the names of every device ever listed (a tombstone
 * carries no name, `device list` still shows one). A list row is never
 * deleted, so an older list can never win after a restart. The store does
 * not parse records: the keys room verifies before it puts. */
#include <sodium.h>

#include "store_int.h"

#define PK_BYTES PST_SIGN_PK_BYTES
#define HASH_BYTES 32u

const char pst_store__devices_v7[] =
    "CREATE TABLE devlist ("
    " identity BLOB PRIMARY KEY NOT NULL CHECK (length(identity) = 32),"
    " seq INTEGER NOT NULL,"
    " hash BLOB NOT NULL CHECK (length(hash) = 32),"
    " stored INTEGER NOT NULL,"
    " bytes BLOB NOT NULL CHECK (length(bytes) BETWEEN 1 AND 8192)"
    ") STRICT;"
    "CREATE TRIGGER devlist_keep BEFORE DELETE ON devlist"
    " BEGIN SELECT RAISE(ABORT, 'device lists are replaced, never deleted'); END;"
    "CREATE TABLE device_seen ("
    " identity BLOB NOT NULL CHECK (length(identity) = 32),"
    " device BLOB NOT NULL CHECK (length(device) = 32),"
    " name TEXT NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 64),"
    " created INTEGER NOT NULL,"
    " PRIMARY KEY (identity, device)"
    ") STRICT;";

static const char Q_DL_GET[] = "SELECT seq, hash, bytes FROM devlist WHERE identity = ?1";
static const char Q_DL_SET[] =
    "INSERT INTO devlist (identity, seq, hash, stored, bytes) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (identity) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,"
    " stored = excluded.stored, bytes = excluded.bytes";
static const char Q_SEEN_SET[] =
    "INSERT INTO device_seen (identity, device, name, created) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (identity, device) DO UPDATE SET name = excluded.name,"
    " created = excluded.created";
static const char Q_SEEN_GET[] =
    "SELECT name, created FROM device_seen WHERE identity = ?1 AND device = ?2";

/* Positions *s on identity's row: 1, 0 when there is none, or an error. */
static int dl_find(pst_store *st, const uint8_t identity[PK_BYTES], sqlite3_stmt **s) {
    int rc = pst_store__stmt_key(st, Q_DL_GET, identity, PK_BYTES, s);
    return rc ? rc : pst_store__row(st, *s);
}

/* The seq rule of key records, inside the caller's transaction. */
static int dl_check(pst_store *st, const uint8_t identity[PK_BYTES], uint64_t seq,
                    const uint8_t hash[HASH_BYTES], bool *same) {
    sqlite3_stmt *s;
    *same = false;
    int rc = dl_find(st, identity, &s);
    if (rc <= 0)
        return rc;
    rc = 0;
    uint64_t high = pst_store__col_u64(s, 0);
    const void *h = sqlite3_column_blob(s, 1);
    if (sqlite3_column_bytes(s, 1) != HASH_BYTES || !h)
        rc = pst_store__fail(st, PST_E_STORE, "damaged device list row");
    else if (seq == high && memcmp(h, hash, HASH_BYTES) == 0)
        *same = true;
    else if (seq <= high)
        rc = PST_E_STALE;
    sqlite3_reset(s);
    return rc;
}

int pst_store_devlist_put(pst_store *st, const uint8_t identity[32], uint64_t seq,
                          const uint8_t *bytes, size_t len, uint64_t now) {
    if (!st || !identity)
        return PST_E_INVAL;
    int rc = pst_store__check_put(bytes, len, now);
    if (rc)
        return rc;
    uint8_t hash[HASH_BYTES];
    crypto_generichash(hash, HASH_BYTES, bytes, len, NULL, 0);
    if ((rc = pst_store__tx_begin(st)))
        return rc;
    bool same = false;
    rc = dl_check(st, identity, seq, hash, &same);
    if (rc == 0 && !same) {
        sqlite3_stmt *s;
        if ((rc = pst_store__stmt(st, Q_DL_SET, &s)) == 0) {
            int b = PST_STORE__BLOB(s, 1, identity, PK_BYTES);
            if (b == SQLITE_OK)
                b = PST_STORE__U64(s, 2, seq);
            if (b == SQLITE_OK)
                b = PST_STORE__BLOB(s, 3, hash, HASH_BYTES);
            if (b == SQLITE_OK)
                b = sqlite3_bind_int64(s, 4, (sqlite3_int64)now);
            if (b == SQLITE_OK)
                b = PST_STORE__BLOB(s, 5, bytes, len);
            rc = b != SQLITE_OK ? pst_store__sqlerr(st, b) : pst_store__run(st, s);
        }
    }
    return pst_store__tx_end(st, rc);
}

int pst_store_devlist_get(pst_store *st, const uint8_t identity[32], uint8_t *buf, size_t cap,
                          size_t *len, uint64_t *seq) {
    if (!len)
        return PST_E_INVAL;
    *len = 0;
    if (seq)
        *seq = 0;
    if (!st || !identity || (!buf && cap))
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = dl_find(st, identity, &s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    if (seq)
        *seq = pst_store__col_u64(s, 0);
    rc = pst_store__copy_blob(s, 2, buf, cap, len);
    sqlite3_reset(s);
    return rc;
}

int pst_store_device_seen_put(pst_store *st, const uint8_t identity[32], const uint8_t device[32],
                              const char *name, uint64_t created) {
    if (!st || !identity || !device || !PST_STORE__TIME_OK(created))
        return PST_E_INVAL;
    int rc = pst_store__check_name(name, 64);
    if (rc)
        return rc;
    sqlite3_stmt *s;
    if ((rc = pst_store__stmt(st, Q_SEEN_SET, &s)))
        return rc;
    int b = PST_STORE__BLOB(s, 1, identity, PK_BYTES);
    if (b == SQLITE_OK)
        b = PST_STORE__BLOB(s, 2, device, PK_BYTES);
    if (b == SQLITE_OK)
        b = PST_STORE__TEXT(s, 3, name);
    if (b == SQLITE_OK)
        b = sqlite3_bind_int64(s, 4, (sqlite3_int64)created);
    return b != SQLITE_OK ? pst_store__sqlerr(st, b) : pst_store__run(st, s);
}

int pst_store_device_seen_get(pst_store *st, const uint8_t identity[32], const uint8_t device[32],
                              char *name, size_t cap, uint64_t *created) {
    if (name && cap)
        memset(name, 0, cap);
    if (created)
        *created = 0;
    if (!st || !identity || !device || !name || cap == 0)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt_key(st, Q_SEEN_GET, identity, PK_BYTES, &s);
    if (rc)
        return rc;
    if ((rc = PST_STORE__BLOB(s, 2, device, PK_BYTES)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    const unsigned char *t = sqlite3_column_text(s, 0);
    size_t n = t ? (size_t)sqlite3_column_bytes(s, 0) : 0;
    rc = n >= cap ? PST_E_NOSPACE : 0;
    if (rc == 0 && n)
        memcpy(name, t, n);
    if (created)
        *created = pst_store__col_u64(s, 1);
    sqlite3_reset(s);
    return rc;
}
