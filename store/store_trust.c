/* Contacts with trust tiers, and the node's own published records. */
#include "store_int.h"

#define PK_BYTES PST_SIGN_PK_BYTES

/* ---- contacts ------------------------------------------------------------ */

/* ?5 says whether the petname is being set (1) or kept (0). */
static const char Q_CONTACT_SET[] =
    "INSERT INTO contact (pk, tier, petname, created, updated) VALUES (?1, ?2, ?3, ?4, ?4)"
    " ON CONFLICT (pk) DO UPDATE SET tier = excluded.tier,"
    " petname = CASE WHEN ?5 THEN excluded.petname ELSE petname END,"
    " updated = excluded.updated";
static const char Q_CONTACT_GET[] = "SELECT tier, petname FROM contact WHERE pk = ?1";
static const char Q_CONTACT_RM[] = "DELETE FROM contact WHERE pk = ?1";

static bool tier_ok(int tier) {
    return tier == PST_STORE_TIER_TRUSTED || tier == PST_STORE_TIER_KNOWN ||
           tier == PST_STORE_TIER_BLOCKED;
}

int pst_store_contact_set(pst_store *st, const uint8_t pk[32], pst_store_tier tier,
                          const char *petname, uint64_t now) {
    if (!st || !pk || !tier_ok((int)tier))
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    int rc;
    if (petname && petname[0] && (rc = pst_store__check_name(petname, PST_STORE_PETNAME_MAX)))
        return rc;
    sqlite3_stmt *s;
    if ((rc = pst_store__stmt(st, Q_CONTACT_SET, &s)))
        return rc;
    rc = PST_STORE__BLOB(s, 1, pk, PK_BYTES);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 2, (int)tier);
    if (rc == SQLITE_OK && petname && petname[0])
        rc = PST_STORE__TEXT(s, 3, petname);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, (sqlite3_int64)now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 5, petname != NULL);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__run(st, s);
}

int pst_store_contact_rm(pst_store *st, const uint8_t pk[32]) {
    if (!st || !pk)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt_key(st, Q_CONTACT_RM, pk, PK_BYTES, &s);
    if (rc)
        return rc;
    rc = pst_store__run(st, s);
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = PST_E_NOTFOUND;
    return rc;
}

int pst_store_contact_get(pst_store *st, const uint8_t pk[32], pst_store_tier *tier, char *petname,
                          size_t cap) {
    if (tier)
        *tier = 0;
    if (petname && cap)
        memset(petname, 0, cap);
    if (!st || !pk || (petname && cap == 0))
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt_key(st, Q_CONTACT_GET, pk, PK_BYTES, &s);
    if (rc)
        return rc;
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    rc = 0;
    if (petname) {
        const unsigned char *name = sqlite3_column_text(s, 1);
        size_t n = name ? (size_t)sqlite3_column_bytes(s, 1) : 0;
        if (n >= cap)
            rc = PST_E_NOSPACE;
        else if (n)
            memcpy(petname, name, n);
    }
    if (rc == 0 && tier)
        *tier = (pst_store_tier)sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    return rc;
}

struct contact_walk {
    pst_store *st;
    pst_store_contact_cb cb;
    void *user;
};

static int contact_row(sqlite3_stmt *s, void *ctx) {
    struct contact_walk *w = ctx;
    const void *pk = pst_store__col_fixed(s, 0, PK_BYTES);
    if (!pk)
        return pst_store__fail(w->st, PST_E_STORE, "damaged row");
    const unsigned char *name = sqlite3_column_text(s, 2);
    pst_store_contact_row r = {
        .pk = pk,
        .tier = (pst_store_tier)sqlite3_column_int(s, 1),
        .petname = name ? (const char *)name : "",
        .created = (uint64_t)sqlite3_column_int64(s, 3),
        .updated = (uint64_t)sqlite3_column_int64(s, 4),
    };
    return w->cb(&r, w->user);
}

int pst_store_contact_list(pst_store *st, pst_store_contact_cb cb, void *user) {
    if (!st || !cb)
        return PST_E_INVAL;
    struct contact_walk w = {st, cb, user};
    return pst_store__walk(st,
                           "SELECT pk, tier, petname, created, updated FROM contact ORDER BY pk",
                           NULL, NULL, contact_row, &w);
}

/* ---- contacts' email addresses (migration 6) --------------------------------- */

/* Independent of migration 5 (another table): only contact (migration 1). */
const char pst_store__contact_email_v6[] =
    "CREATE TABLE contact_email ("
    " email TEXT PRIMARY KEY NOT NULL"
    "  CHECK (length(CAST(email AS BLOB)) BETWEEN 3 AND 254 AND email = lower(email)),"
    " pk BLOB NOT NULL REFERENCES contact (pk) ON DELETE CASCADE"
    ") STRICT;"
    "CREATE INDEX contact_email_pk ON contact_email (pk);";

static const char Q_EMAIL_OWNER[] = "SELECT pk FROM contact_email WHERE email = lower(?1)";
static const char Q_EMAIL_COUNT[] = "SELECT count(*) FROM contact_email WHERE pk = ?1";
static const char Q_EMAIL_ADD[] = "INSERT INTO contact_email (email, pk) VALUES (lower(?2), ?1)";
static const char Q_EMAIL_RM[] = "DELETE FROM contact_email WHERE pk = ?1 AND email = lower(?2)";
static const char Q_EMAIL_TIER[] = "SELECT c.pk, c.tier FROM contact_email e"
                                   " JOIN contact c ON c.pk = e.pk WHERE e.email = lower(?1)";

static int email_ok(const char *e) {
    size_t n = e ? strlen(e) : 0;
    if (n < 3 || n > 254 || strchr(e, '@') == NULL)
        return PST_E_INVAL;
    for (const char *p = e; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return PST_E_INVAL;
    return 0;
}

static int email_add_locked(pst_store *st, const uint8_t pk[32], const char *email) {
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, Q_EMAIL_OWNER, &s);
    if (rc)
        return rc;
    if ((rc = PST_STORE__TEXT(s, 1, email)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    rc = pst_store__row(st, s);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        const void *owner = sqlite3_column_blob(s, 0);
        bool same =
            owner && sqlite3_column_bytes(s, 0) == PK_BYTES && memcmp(owner, pk, PK_BYTES) == 0;
        sqlite3_reset(s);
        return same ? 0 : PST_E_EXISTS;
    }
    pst_store_tier tier;
    if ((rc = pst_store_contact_get(st, pk, &tier, NULL, 0)))
        return rc;
    if ((rc = pst_store__stmt_key(st, Q_EMAIL_COUNT, pk, PK_BYTES, &s)))
        return rc;
    rc = pst_store__row(st, s);
    if (rc < 0)
        return rc;
    sqlite3_int64 have = rc == 1 ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (have >= (sqlite3_int64)PST_STORE_CONTACT_EMAILS_MAX)
        return PST_E_TOOBIG;
    if ((rc = pst_store__stmt_key(st, Q_EMAIL_ADD, pk, PK_BYTES, &s)))
        return rc;
    if ((rc = PST_STORE__TEXT(s, 2, email)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__run(st, s);
}

int pst_store_contact_email_add(pst_store *st, const uint8_t pk[32], const char *email) {
    if (!st || !pk || email_ok(email))
        return PST_E_INVAL;
    int rc = pst_store__tx_begin(st);
    if (rc)
        return rc;
    return pst_store__tx_end(st, email_add_locked(st, pk, email));
}

int pst_store_contact_email_rm(pst_store *st, const uint8_t pk[32], const char *email) {
    if (!st || !pk || !email)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt_key(st, Q_EMAIL_RM, pk, PK_BYTES, &s);
    if (rc)
        return rc;
    if ((rc = PST_STORE__TEXT(s, 2, email)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    rc = pst_store__run(st, s);
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = PST_E_NOTFOUND;
    return rc;
}

int pst_store_contact_by_email(pst_store *st, const char *email, uint8_t pk[32],
                               pst_store_tier *tier) {
    if (pk)
        memset(pk, 0, PK_BYTES);
    if (tier)
        *tier = 0;
    if (!st || !email || !pk || !tier)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pst_store__stmt(st, Q_EMAIL_TIER, &s);
    if (rc)
        return rc;
    if ((rc = PST_STORE__TEXT(s, 1, email)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    rc = pst_store__row(st, s);
    if (rc <= 0)
        return rc ? rc : PST_E_NOTFOUND;
    const void *owner = pst_store__col_fixed(s, 0, PK_BYTES);
    if (!owner) {
        sqlite3_reset(s);
        return pst_store__fail(st, PST_E_STORE, "damaged row");
    }
    memcpy(pk, owner, PK_BYTES);
    *tier = (pst_store_tier)sqlite3_column_int(s, 1);
    sqlite3_reset(s);
    return 0;
}

struct email_walk {
    pst_store_email_cb cb;
    void *user;
};

static int bind_pk(sqlite3_stmt *s, const void *arg) {
    return PST_STORE__BLOB(s, 1, arg, PK_BYTES);
}

static int email_row(sqlite3_stmt *s, void *ctx) {
    struct email_walk *w = ctx;
    const unsigned char *e = sqlite3_column_text(s, 0);
    return w->cb(e ? (const char *)e : "", w->user);
}

int pst_store_contact_emails(pst_store *st, const uint8_t pk[32], pst_store_email_cb cb,
                             void *user) {
    if (!st || !pk || !cb)
        return PST_E_INVAL;
    struct email_walk w = {cb, user};
    return pst_store__walk(st, "SELECT email FROM contact_email WHERE pk = ?1 ORDER BY email",
                           bind_pk, pk, email_row, &w);
}

/* ---- own published records ----------------------------------------------- */

static const char Q_PUB_SEQ[] = "SELECT seq FROM published WHERE kind = ?1 AND slot = ?2";
static const char Q_PUB_PUT[] =
    "INSERT INTO published (kind, slot, seq, stored, published, bytes)"
    " VALUES (?1, ?2, ?3, ?4, ?4, ?5)"
    " ON CONFLICT (kind, slot) DO UPDATE SET seq = excluded.seq, stored = excluded.stored,"
    " published = excluded.published, bytes = excluded.bytes";
static const char Q_PUB_TOUCH[] =
    "UPDATE published SET published = ?3 WHERE kind = ?1 AND slot = ?2";
static const char Q_PUB_RM[] = "DELETE FROM published WHERE kind = ?1 AND slot = ?2";

/* Binds (kind, slot) as ?1, ?2 of the statement for sql. */
static int pub_stmt(pst_store *st, const char *sql, int kind, const uint8_t *slot,
                    sqlite3_stmt **out) {
    int rc = pst_store__stmt(st, sql, out);
    if (rc)
        return rc;
    rc = sqlite3_bind_int(*out, 1, kind);
    if (rc == SQLITE_OK)
        rc = PST_STORE__BLOB(*out, 2, slot, PST_SLOT_BYTES);
    return rc == SQLITE_OK ? 0 : pst_store__sqlerr(st, rc);
}

static int pub_put_locked(pst_store *st, int kind, const uint8_t *slot, const uint8_t *bytes,
                          size_t len, uint64_t seq, uint64_t now) {
    sqlite3_stmt *s;
    int rc = pub_stmt(st, Q_PUB_SEQ, kind, slot, &s);
    if (rc)
        return rc;
    rc = pst_store__row(st, s);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        uint64_t have = pst_store__col_u64(s, 0);
        sqlite3_reset(s);
        if (seq < have)
            return PST_E_STALE;
    }
    if ((rc = pub_stmt(st, Q_PUB_PUT, kind, slot, &s)))
        return rc;
    rc = PST_STORE__U64(s, 3, seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, (sqlite3_int64)now);
    if (rc == SQLITE_OK)
        rc = PST_STORE__BLOB(s, 5, bytes, len);
    if (rc != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    return pst_store__run(st, s);
}

int pst_store_published_put(pst_store *st, int kind, const uint8_t slot[PST_SLOT_BYTES],
                            const uint8_t *bytes, size_t len, uint64_t seq, uint64_t now) {
    if (!st || !slot || kind < 0 || kind > PST_STORE_KIND_MAX)
        return PST_E_INVAL;
    int rc = pst_store__check_put(bytes, len, now);
    if (rc)
        return rc;
    if ((rc = pst_store__tx_begin(st)))
        return rc;
    rc = pub_put_locked(st, kind, slot, bytes, len, seq, now);
    return pst_store__tx_end(st, rc);
}

int pst_store_published_touch(pst_store *st, int kind, const uint8_t slot[PST_SLOT_BYTES],
                              uint64_t now) {
    if (!st || !slot || kind < 0 || kind > PST_STORE_KIND_MAX)
        return PST_E_INVAL;
    if (!PST_STORE__TIME_OK(now))
        return PST_E_RANGE;
    sqlite3_stmt *s;
    int rc = pub_stmt(st, Q_PUB_TOUCH, kind, slot, &s);
    if (rc)
        return rc;
    if ((rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)now)) != SQLITE_OK)
        return pst_store__sqlerr(st, rc);
    rc = pst_store__run(st, s);
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = PST_E_NOTFOUND;
    return rc;
}

int pst_store_published_rm(pst_store *st, int kind, const uint8_t slot[PST_SLOT_BYTES]) {
    if (!st || !slot || kind < 0 || kind > PST_STORE_KIND_MAX)
        return PST_E_INVAL;
    sqlite3_stmt *s;
    int rc = pub_stmt(st, Q_PUB_RM, kind, slot, &s);
    if (rc)
        return rc;
    rc = pst_store__run(st, s);
    if (rc == 0 && sqlite3_changes(st->db) == 0)
        rc = PST_E_NOTFOUND;
    return rc;
}

struct pub_walk {
    pst_store *st;
    pst_store_published_cb cb;
    void *user;
};

static int published_row(sqlite3_stmt *s, void *ctx) {
    struct pub_walk *w = ctx;
    pst_store_published_row r = {
        .kind = sqlite3_column_int(s, 0),
        .slot = sqlite3_column_blob(s, 1),
        .seq = pst_store__col_u64(s, 2),
        .stored = (uint64_t)sqlite3_column_int64(s, 3),
        .published = (uint64_t)sqlite3_column_int64(s, 4),
        .bytes = sqlite3_column_blob(s, 5),
        .len = (size_t)sqlite3_column_bytes(s, 5),
    };
    if (!r.slot || sqlite3_column_bytes(s, 1) != PST_SLOT_BYTES || !r.bytes)
        return pst_store__fail(w->st, PST_E_STORE, "damaged row");
    return w->cb(&r, w->user);
}

int pst_store_published_list(pst_store *st, pst_store_published_cb cb, void *user) {
    if (!st || !cb)
        return PST_E_INVAL;
    struct pub_walk w = {st, cb, user};
    return pst_store__walk(st,
                           "SELECT kind, slot, seq, stored, published, bytes FROM published"
                           " ORDER BY kind, slot",
                           NULL, NULL, published_row, &w);
}
