/* Key cache, address claims and revocations. The seq high-water tables are
 * what makes replay impossible: a cached record may be purged, its mark
 * never is, so "older than the newest ever seen" survives expiry and
 * restarts. */
#include <sodium.h>

#include "store_int.h"

#define PK_BYTES PST_SIGN_PK_BYTES
#define HASH_BYTES 32u

static void record_hash(const uint8_t *bytes, size_t len, uint8_t out[HASH_BYTES]) {
    crypto_generichash(out, HASH_BYTES, bytes, len, NULL, 0);
}

/* A 32-byte column, or NULL if the row is damaged (callers then read no
 * further than what is there). */
static const uint8_t *col_pk(sqlite3_stmt *s, int col) {
    const void *p = sqlite3_column_blob(s, col);
    return p && sqlite3_column_bytes(s, col) == PK_BYTES ? p : NULL;
}

enum { SEQ_WRITE = 0, SEQ_SAME = 1 };

/* Applies the seq rule to the high-water row s is positioned on (found = 1)
 * or to its absence (found = 0): SEQ_WRITE for a newer record, SEQ_SAME for
 * the same record again, PST_E_STALE otherwise. Resets s. */
static int seq_rule(pst_store *st, sqlite3_stmt *s, int found, uint64_t seq,
                    const uint8_t hash[HASH_BYTES]) {
    if (found < 0)
        return found;
    if (found == 0)
        return SEQ_WRITE;
    uint64_t high = pst_store__col_u64(s, 0);
    const void *h = sqlite3_column_blob(s, 1);
    int rc;
    if (sqlite3_column_bytes(s, 1) != HASH_BYTES || !h)
        rc = pst_store__fail(st, PST_E_STORE, "damaged seq high-water row");
    else if (seq > high)
        rc = SEQ_WRITE;
    else if (seq == high && memcmp(h, hash, HASH_BYTES) == 0)
        rc = SEQ_SAME;
    else
        rc = PST_E_STALE;
    sqlite3_reset(s);
    return rc;
}

/* ---- key records --------------------------------------------------------- */

static const char Q_KEY_HIGH_GET[] = "SELECT seq, hash FROM key_seq_high WHERE pk = ?1";
static const char Q_KEY_HIGH_SET[] =
    "INSERT INTO key_seq_high (pk, seq, hash, seen) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (pk) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,"
    " seen = excluded.seen";
static const char Q_KEY_PUT[] =
    "INSERT INTO keyrec (pk, seq, created, expires, stored, bytes)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT (pk) DO UPDATE SET seq = excluded.seq, created = excluded.created,"
    " expires = excluded.expires, stored = excluded.stored, bytes = excluded.bytes";
static const char Q_KEY_RECACHE[] = "INSERT INTO keyrec (pk, seq, created, expires, stored, bytes)"
                                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (pk) DO NOTHING";
static const char Q_KEY_GET[] = "SELECT seq, expires, bytes FROM keyrec WHERE pk = ?1";
static const char Q_KEY_PURGE[] = "DELETE FROM keyrec WHERE expires != 0 AND expires <= ?1";

static int key_write(pst_store *st, const char *sql, const uint8_t pk[PK_BYTES], uint64_t seq,
                     uint64_t created, uint64_t expires, const uint8_t *bytes, size_t len,
                     uint64_t now) {
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, sql, &s);
    if (rc)
        return rc;
    rc = PST_STORE__BLOB(s, 1, pk, PK_BYTES);
    if (rc == SQLITE_OK)
        rc = PST_STORE__U64(s, 2, seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)created);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, (sqlite3_int64)expires);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 5, (sqlite3_int64)now);
    if (rc == SQLITE_OK)
        rc = PST_STORE__BLOB(s, 6, bytes, len);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__run(st, s);
}

static int key_put_locked(pst_store *st, const uint8_t pk[PK_BYTES], uint64_t seq, uint64_t created,
                          uint64_t expires, const uint8_t *bytes, size_t len, uint64_t now,
                          const uint8_t hash[HASH_BYTES]) {
    sqlite3_stmt *s;
    int rc = pst_store__stmt_key(st, Q_KEY_HIGH_GET, pk, PK_BYTES, &s);
    if (rc)
        return rc;
    rc = seq_rule(st, s, pst_store__row(st, s), seq, hash);
    if (rc == SEQ_SAME) /* purged since: the same, still valid record may return */
        return key_write(st, Q_KEY_RECACHE, pk, seq, created, expires, bytes, len, now);
    if (rc != SEQ_WRITE)
        return rc;
    if ((rc = pst_store__stmt(st, Q_KEY_HIGH_SET, &s)))
        return rc;
    rc = PST_STORE__BLOB(s, 1, pk, PK_BYTES);
    if (rc == SQLITE_OK)
        rc = PST_STORE__U64(s, 2, seq);
    if (rc == SQLITE_OK)
        rc = PST_STORE__BLOB(s, 3, hash, HASH_BYTES);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, (sqlite3_int64)now);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    if ((rc = pst_store__run(st, s)))
        return rc;
    return key_write(st, Q_KEY_PUT, pk, seq, created, expires, bytes, len, now);
}

int pst_store_keyrec_put(pst_store *st, const uint8_t pk[32], uint64_t seq, uint64_t created,
                         uint64_t expires, const uint8_t *bytes, size_t len, uint64_t now) {
    if (!st || !pk)
        return PST_E_INVAL;
    int rc = pst_store__check_blob(bytes, len, 1);
    if (rc)
        return rc;
    if (!PST_STORE__TIME_OK(created) || !PST_STORE__TIME_OK(expires) || !PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    if (expires != 0 && expires < created)
        return PST_E_INVAL;
    if (expires != 0 && expires <= now)
        return PST_E_EXPIRED;
    uint8_t hash[HASH_BYTES];
    record_hash(bytes, len, hash);
    if ((rc = pst_store__tx_begin(st)))
        return rc;
    rc = key_put_locked(st, pk, seq, created, expires, bytes, len, now, hash);
    return pst_store__tx_end(st, rc);
}

int pst_store_keyrec_get(pst_store *st, const uint8_t pk[32], uint8_t *buf, size_t cap, size_t *len,
                         uint64_t *seq, uint64_t *expires) {
    if (seq)
        *seq = 0;
    if (expires)
        *expires = 0;
    if (!len)
        return PST_E_INVAL;
    *len = 0;
    if (!st || !pk || (!buf && cap))
        return PST_E_INVAL;
    if (buf && cap)
        memset(buf, 0, cap);
    sqlite3_stmt *s;
    int rc = pst_store__stmt_key(st, Q_KEY_GET, pk, PK_BYTES, &s);
    if (rc)
        return rc;
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    rc = pst_store__copy_blob(s, 2, buf, cap, len);
    if (rc == 0) {
        if (seq)
            *seq = pst_store__col_u64(s, 0);
        if (expires)
            *expires = (uint64_t)sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc;
}

static int purge(pst_store *st, const char *sql, uint64_t now) {
    if (!st)
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, sql, &s);
    if (rc)
        return rc;
    if ((rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)now)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__run(st, s);
}

int pst_store_keyrec_purge_expired(pst_store *st, uint64_t now) {
    return purge(st, Q_KEY_PURGE, now);
}

int pst_store_seq_high(pst_store *st, const uint8_t pk[32], uint64_t *seq) {
    if (!seq)
        return PST_E_INVAL;
    *seq = 0;
    if (!st || !pk)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt_key(st, Q_KEY_HIGH_GET, pk, PK_BYTES, &s);
    if (rc)
        return rc;
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    *seq = pst_store__col_u64(s, 0);
    sqlite3_reset(s);
    return 0;
}

struct walk {
    pst_store *st;
    union {
        pst_store_keyrec_cb key;
        pst_store_addrclaim_cb addr;
        pst_store_revocation_cb rev;
    } cb;
    void *user;
};

static int damaged(struct walk *w) { return pst_store__fail(w->st, PST_E_STORE, "damaged row"); }

static int keyrec_row(sqlite3_stmt *s, void *ctx) {
    struct walk *w = ctx;
    pst_store_keyrec_row r = {
        .pk = col_pk(s, 0),
        .seq = pst_store__col_u64(s, 1),
        .created = (uint64_t)sqlite3_column_int64(s, 2),
        .expires = (uint64_t)sqlite3_column_int64(s, 3),
        .stored = (uint64_t)sqlite3_column_int64(s, 4),
        .bytes = sqlite3_column_blob(s, 5),
        .len = (size_t)sqlite3_column_bytes(s, 5),
    };
    if (!r.pk || !r.bytes)
        return damaged(w);
    return w->cb.key(&r, w->user);
}

int pst_store_keyrec_list(pst_store *st, pst_store_keyrec_cb cb, void *user) {
    if (!st || !cb)
        return PST_E_INVAL;
    struct walk w = {st, {.key = cb}, user};
    return pst_store__walk(st,
                           "SELECT pk, seq, created, expires, stored, bytes FROM keyrec"
                           " ORDER BY pk",
                           NULL, NULL, keyrec_row, &w);
}

/* ---- address claims ------------------------------------------------------ */

static const char Q_ADDR_HIGH_GET[] =
    "SELECT seq, hash FROM addr_seq_high WHERE address = ?1 AND pk = ?2";
static const char Q_ADDR_HIGH_SET[] =
    "INSERT INTO addr_seq_high (address, pk, seq, hash) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (address, pk) DO UPDATE SET seq = excluded.seq, hash = excluded.hash";
static const char Q_ADDR_PUT[] =
    "INSERT INTO addrclaim (address, pk, seq, expires, bytes) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (address, pk) DO UPDATE SET seq = excluded.seq,"
    " expires = excluded.expires, bytes = excluded.bytes";
static const char Q_ADDR_RECACHE[] =
    "INSERT INTO addrclaim (address, pk, seq, expires, bytes) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (address, pk) DO NOTHING";
static const char Q_ADDR_PURGE[] = "DELETE FROM addrclaim WHERE expires != 0 AND expires <= ?1";

/* Binds (address, pk) as ?1, ?2 of the statement for sql. */
static int addr_stmt(pst_store *st, const char *sql, const char *address,
                     const uint8_t pk[PK_BYTES], sqlite3_stmt **out) {
    int rc = pst_store__stmt(st, sql, out);
    if (rc)
        return rc;
    rc = PST_STORE__TEXT(*out, 1, address);
    if (rc == SQLITE_OK)
        rc = PST_STORE__BLOB(*out, 2, pk, PK_BYTES);
    return rc == SQLITE_OK ? 0 : pst_store__sqlerr(st, rc);
}

static int addr_write(pst_store *st, const char *sql, const char *address,
                      const uint8_t pk[PK_BYTES], uint64_t seq, uint64_t expires,
                      const uint8_t *bytes, size_t len) {
    sqlite3_stmt *s;
    int rc = addr_stmt(st, sql, address, pk, &s);
    if (rc)
        return rc;
    rc = PST_STORE__U64(s, 3, seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, (sqlite3_int64)expires);
    if (rc == SQLITE_OK)
        rc = PST_STORE__BLOB(s, 5, bytes, len);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__run(st, s);
}

static int addr_put_locked(pst_store *st, const char *address, const uint8_t pk[PK_BYTES],
                           uint64_t seq, uint64_t expires, const uint8_t *bytes, size_t len,
                           const uint8_t hash[HASH_BYTES]) {
    sqlite3_stmt *s;
    int rc = addr_stmt(st, Q_ADDR_HIGH_GET, address, pk, &s);
    if (rc)
        return rc;
    rc = seq_rule(st, s, pst_store__row(st, s), seq, hash);
    if (rc == SEQ_SAME)
        return addr_write(st, Q_ADDR_RECACHE, address, pk, seq, expires, bytes, len);
    if (rc != SEQ_WRITE)
        return rc;
    if ((rc = addr_stmt(st, Q_ADDR_HIGH_SET, address, pk, &s)))
        return rc;
    rc = PST_STORE__U64(s, 3, seq);
    if (rc == SQLITE_OK)
        rc = PST_STORE__BLOB(s, 4, hash, HASH_BYTES);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    if ((rc = pst_store__run(st, s)))
        return rc;
    return addr_write(st, Q_ADDR_PUT, address, pk, seq, expires, bytes, len);
}

int pst_store_addrclaim_put(pst_store *st, const char *address, const uint8_t pk[32], uint64_t seq,
                            uint64_t expires, const uint8_t *bytes, size_t len) {
    if (!st || !pk)
        return PST_E_INVAL;
    int rc = pst_store__check_name(address, PST_STORE_ADDRESS_MAX);
    if (rc == 0)
        rc = pst_store__check_blob(bytes, len, 1);
    if (rc)
        return rc;
    if (!PST_STORE__TIME_OK(expires))
        return PST_E_RANGE;
    uint8_t hash[HASH_BYTES];
    record_hash(bytes, len, hash);
    if ((rc = pst_store__tx_begin(st)))
        return rc;
    rc = addr_put_locked(st, address, pk, seq, expires, bytes, len, hash);
    return pst_store__tx_end(st, rc);
}

static int addr_bind(sqlite3_stmt *s, const void *arg) { return PST_STORE__TEXT(s, 1, arg); }

static int addrclaim_row(sqlite3_stmt *s, void *ctx) {
    struct walk *w = ctx;
    pst_store_addrclaim_row r = {
        .pk = col_pk(s, 0),
        .seq = pst_store__col_u64(s, 1),
        .expires = (uint64_t)sqlite3_column_int64(s, 2),
        .bytes = sqlite3_column_blob(s, 3),
        .len = (size_t)sqlite3_column_bytes(s, 3),
    };
    if (!r.pk || !r.bytes)
        return damaged(w);
    return w->cb.addr(&r, w->user);
}

int pst_store_addrclaim_list(pst_store *st, const char *address, pst_store_addrclaim_cb cb,
                             void *user) {
    if (!st || !cb)
        return PST_E_INVAL;
    int rc = pst_store__check_name(address, PST_STORE_ADDRESS_MAX);
    if (rc)
        return rc;
    struct walk w = {st, {.addr = cb}, user};
    return pst_store__walk(st,
                           "SELECT pk, seq, expires, bytes FROM addrclaim WHERE address = ?1"
                           " ORDER BY pk",
                           addr_bind, address, addrclaim_row, &w);
}

int pst_store_addrclaim_purge_expired(pst_store *st, uint64_t now) {
    return purge(st, Q_ADDR_PURGE, now);
}

/* ---- revocations --------------------------------------------------------- */

static const char Q_REV_ADD[] = "INSERT INTO revocation (pk, created, stored, bytes)"
                                " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (pk) DO NOTHING";
static const char Q_REV_GET[] = "SELECT bytes FROM revocation WHERE pk = ?1";

static int rev_find(pst_store *st, const uint8_t pk[PK_BYTES], sqlite3_stmt **out) {
    int rc = pst_store__stmt(st, Q_REV_GET, out);
    if (rc)
        return rc;
    if ((rc = PST_STORE__BLOB(*out, 1, pk, PK_BYTES)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__row(st, *out);
}

/* No transaction needed: a row, once in, never changes, so "insert unless
 * present, then compare with what is there" cannot race. */
int pst_store_revocation_put(pst_store *st, const uint8_t pk[32], const uint8_t *bytes, size_t len,
                             uint64_t created, uint64_t now) {
    if (!st || !pk)
        return PST_E_INVAL;
    int rc = pst_store__check_blob(bytes, len, 1);
    if (rc)
        return rc;
    if (!PST_STORE__TIME_OK(created) || !PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    sqlite3_stmt *s;
    if ((rc = pst_store__stmt(st, Q_REV_ADD, &s)))
        return rc;
    rc = PST_STORE__BLOB(s, 1, pk, PK_BYTES);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)created);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)now);
    if (rc == SQLITE_OK)
        rc = PST_STORE__BLOB(s, 4, bytes, len);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    if ((rc = pst_store__run(st, s)))
        return rc;
    if (sqlite3_changes(st->db) > 0)
        return 0;
    rc = rev_find(st, pk, &s);
    if (rc <= 0)
        return rc ? rc : pst_store__fail(st, PST_E_STORE, "revocation vanished");
    const void *have = sqlite3_column_blob(s, 0);
    bool same = (size_t)sqlite3_column_bytes(s, 0) == len && have && memcmp(have, bytes, len) == 0;
    sqlite3_reset(s);
    return same ? 0 : PST_E_EXISTS;
}

int pst_store_revocation_get(pst_store *st, const uint8_t pk[32], uint8_t *buf, size_t cap,
                             size_t *len) {
    if (!len)
        return PST_E_INVAL;
    *len = 0;
    if (!st || !pk || (!buf && cap))
        return PST_E_INVAL;
    if (buf && cap)
        memset(buf, 0, cap);
    sqlite3_stmt *s;
    int rc = rev_find(st, pk, &s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    rc = pst_store__copy_blob(s, 0, buf, cap, len);
    sqlite3_reset(s);
    return rc;
}

int pst_store_is_revoked(pst_store *st, const uint8_t pk[32]) {
    if (!st || !pk)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = rev_find(st, pk, &s);
    if (rc == 1)
        sqlite3_reset(s);
    return rc;
}

static int revocation_row(sqlite3_stmt *s, void *ctx) {
    struct walk *w = ctx;
    pst_store_revocation_row r = {
        .pk = col_pk(s, 0),
        .created = (uint64_t)sqlite3_column_int64(s, 1),
        .stored = (uint64_t)sqlite3_column_int64(s, 2),
        .bytes = sqlite3_column_blob(s, 3),
        .len = (size_t)sqlite3_column_bytes(s, 3),
    };
    if (!r.pk || !r.bytes)
        return damaged(w);
    return w->cb.rev(&r, w->user);
}

int pst_store_revocation_list(pst_store *st, pst_store_revocation_cb cb, void *user) {
    if (!st || !cb)
        return PST_E_INVAL;
    struct walk w = {st, {.rev = cb}, user};
    return pst_store__walk(st, "SELECT pk, created, stored, bytes FROM revocation ORDER BY pk",
                           NULL, NULL, revocation_row, &w);
}
