/* store/ internal: the handle and helpers shared by the store_*.c files.
 * Nothing outside store/ includes this (it pulls in sqlite3.h). */
#ifndef PST_STORE_INT_H
#define PST_STORE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pst_store.h"

/* Every distinct SQL text the store prepares; more is a bug caught by tests. */
#define PST_STORE_STMTS_MAX 128u

struct pst_store {
    sqlite3 *db;
    bool batch;      /* inside pst_store_begin() */
    bool batch_lazy; /* ... pst_store_begin_lazy(): synchronous=NORMAL until its end */
    unsigned savepoints;
    bool sync_normal;           /* synchronous=NORMAL now (a lazy write) */
    sqlite3_int64 changes_open; /* sqlite3_total_changes64 when the transaction began */
    uint64_t synced_gen;        /* commits that wrote with synchronous=FULL (pst_store_synced) */
    size_t nstmts;
    struct {
        const char *sql; /* identity of the statement: a static string */
        sqlite3_stmt *stmt;
    } stmts[PST_STORE_STMTS_MAX];
    char err[PST_STORE_ERR_MAX];
};

/* The cached statement for sql (keyed by the address of the static string),
 * reset with bindings cleared. */
int pst_store__stmt(pst_store *st, const char *sql, sqlite3_stmt **out);
/* pst_store__stmt with key (len bytes: a public key, a message id) bound to
 * ?1, the way most lookups begin. 0 or an error (*out unusable then). */
int pst_store__stmt_key(pst_store *st, const char *sql, const uint8_t *key, size_t len,
                        sqlite3_stmt **out);

/* Records SQLite's message for rc and maps rc to a PST_E_* code. */
int pst_store__sqlerr(pst_store *st, int rc);
/* Records a store-level message and returns err. */
int pst_store__fail(pst_store *st, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Steps a write statement to completion and resets it. */
int pst_store__run(pst_store *st, sqlite3_stmt *s);
/* pst_store__run for a bookkeeping write (a time or a counter that nobody
 * was promised, whose loss costs at most a repeat: the sender's fetch
 * served and notification put, the recipient's receipt sent; not the
 * recipient's fetch attempted, which the exactly-once search relies on
 * after a crash): outside a
 * batch it commits without an fsync of its own (synchronous=NORMAL for that
 * one transaction). It survives a crash of the process (its bytes are in the
 * WAL file), and the next ordinary commit's fsync of the WAL makes it
 * durable with its own; only a power loss before that may take it back.
 * Inside a batch it is the batch's. */
int pst_store__run_lazy(pst_store *st, sqlite3_stmt *s);
/* The same for a whole unit: on says whether lazy_on switched (outside a
 * batch); lazy_off switches back and returns rc (or the switch's failure). */
bool pst_store__lazy_on(pst_store *st);
int pst_store__lazy_off(pst_store *st, bool on, int rc);
/* Steps once: 1 when a row is ready, 0 when done (statement reset), <0. */
int pst_store__row(pst_store *st, sqlite3_stmt *s);

/* A read-modify-write unit: its own IMMEDIATE transaction, or a savepoint
 * inside a batch. end commits when rc == 0, else rolls back, and returns rc
 * (or the commit failure). */
int pst_store__tx_begin(pst_store *st);
int pst_store__tx_end(pst_store *st, int rc);

/* Walks a one-shot (uncached, so callbacks may re-enter the store)
 * statement. bind fills parameters; row is called per row and may stop the
 * walk by returning nonzero. */
typedef int (*pst_store__bind_fn)(sqlite3_stmt *s, const void *arg);
typedef int (*pst_store__row_fn)(sqlite3_stmt *s, void *ctx);
int pst_store__walk(pst_store *st, const char *sql, pst_store__bind_fn bind, const void *arg,
                    pst_store__row_fn row, void *ctx);

/* Copies blob column col into buf (see the NOSPACE rule in pst_store.h). */
int pst_store__copy_blob(sqlite3_stmt *s, int col, uint8_t *buf, size_t cap, size_t *len);

/* Argument checks shared by the modules. */
int pst_store__check_blob(const uint8_t *bytes, size_t len, size_t min);
int pst_store__check_name(const char *name, size_t max); /* 1..max, no controls */
/* A stored record and its time: check_blob(bytes, len, 1)'s errors, then
 * PST_E_RANGE when now does not fit SQLite's int64. */
int pst_store__check_put(const uint8_t *bytes, size_t len, uint64_t now);
/* Blob column col when it holds exactly n bytes, else NULL (a damaged row). */
const void *pst_store__col_fixed(sqlite3_stmt *s, int col, size_t n);
/* Schema of migration 2 (store_mail.c). */
extern const char pst_store__mail_schema[];
extern const char pst_store__inbox_v4[];
extern const char pst_store__relay_v5[]; /* store_relay.c */
/* Migration 6: contacts' email addresses (store_trust.c). */
extern const char pst_store__contact_email_v6[];
/* Migration 7: device lists (store_devices.c). */
extern const char pst_store__devices_v7[];
/* Migration 8: the outbox per device (store_outdev.c). */
extern const char pst_store__outbox_device_v8[];
/* Migration 9: small outbox bodies (store_outbody.c). */
extern const char pst_store__outbox_body_v9[];

#define PST_STORE__TIME_OK(t) ((t) <= (uint64_t)INT64_MAX)

/* uint64 <-> SQLite's int64 by bit pattern (seq numbers use all 64 bits). */
static inline sqlite3_int64 pst_store__i64(uint64_t v) {
    sqlite3_int64 r;
    memcpy(&r, &v, sizeof r);
    return r;
}
static inline uint64_t pst_store__u64(sqlite3_int64 v) {
    uint64_t r;
    memcpy(&r, &v, sizeof r);
    return r;
}
static inline uint64_t pst_store__col_u64(sqlite3_stmt *s, int col) {
    return pst_store__u64(sqlite3_column_int64(s, col));
}

/* Binding a static pointer is safe: every statement is stepped and reset
 * before the call that bound it returns. */
#define PST_STORE__BLOB(s, i, p, n) sqlite3_bind_blob((s), (i), (p), (int)(n), SQLITE_STATIC)
#define PST_STORE__TEXT(s, i, p) sqlite3_bind_text((s), (i), (p), -1, SQLITE_STATIC)
#define PST_STORE__U64(s, i, v) sqlite3_bind_int64((s), (i), pst_store__i64(v))

#endif
