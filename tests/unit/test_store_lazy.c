/* The store's lazy bookkeeping commits (store_int.h, pst_store__run_lazy;
 * docs/MAIL.md "Where durability is batched"): the sender's served and
 * notified times and the recipient's receipt-sent mark are written without
 * a sync of their own, every other write still syncs before it returns,
 * and synchronous is FULL again afterwards. Counted with a VFS that wraps
 * the default one and counts xSync calls. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <string.h>

#include "pst_store.h"
#include "storeutil.h"
#include "testutil.h"

static sqlite3_vfs *real_vfs;
static sqlite3_vfs count_vfs;
static int syncs;

typedef struct {
    sqlite3_file base;
    sqlite3_file *real;
} cfile;

#define REAL(f) (((cfile *)(f))->real)
static int c_close(sqlite3_file *f) {
    int rc = REAL(f)->pMethods->xClose(REAL(f));
    sqlite3_free(REAL(f));
    return rc;
}
static int c_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) {
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int c_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) {
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 s) {
    return REAL(f)->pMethods->xTruncate(REAL(f), s);
}
static int c_sync(sqlite3_file *f, int flags) {
    syncs++;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int c_size(sqlite3_file *f, sqlite3_int64 *s) {
    return REAL(f)->pMethods->xFileSize(REAL(f), s);
}
static int c_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int c_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int c_check(sqlite3_file *f, int *o) {
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), o);
}
static int c_fctl(sqlite3_file *f, int op, void *a) {
    return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int c_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int c_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int c_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp) {
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int c_shmlock(sqlite3_file *f, int off, int n, int fl) {
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, fl);
}
static void c_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int c_shmunmap(sqlite3_file *f, int del) {
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods c_methods = {
    2,         c_close,      c_read,     c_write, c_truncate, c_sync, c_size,
    c_lock,    c_unlock,     c_check,    c_fctl,  c_sector,   c_dev,  c_shmmap,
    c_shmlock, c_shmbarrier, c_shmunmap, NULL,    NULL,
};

static int c_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out) {
    (void)v;
    cfile *c = (cfile *)f;
    c->real = sqlite3_malloc(real_vfs->szOsFile);
    if (c->real == NULL)
        return SQLITE_NOMEM;
    memset(c->real, 0, (size_t)real_vfs->szOsFile);
    int rc = real_vfs->xOpen(real_vfs, name, c->real, flags, out);
    if (rc != SQLITE_OK || c->real->pMethods == NULL) {
        sqlite3_free(c->real);
        c->base.pMethods = NULL;
        return rc;
    }
    c->base.pMethods = &c_methods;
    return rc;
}

static void setup(void) {
    su_tmp_setup();
    sqlite3_initialize();
    real_vfs = sqlite3_vfs_find(NULL);
    cr_assert_not_null(real_vfs);
    count_vfs = *real_vfs;
    count_vfs.zName = "pst-count-syncs";
    count_vfs.szOsFile = (int)sizeof(cfile);
    count_vfs.xOpen = c_open;
    count_vfs.pNext = NULL;
    cr_assert_eq(sqlite3_vfs_register(&count_vfs, 1), SQLITE_OK);
}

static void teardown(void) {
    sqlite3_vfs_unregister(&count_vfs);
    su_tmp_teardown();
}

static int get_receipt_sent(const pst_store_inbox_row *row, void *user) {
    *(uint64_t *)user = row->receipt_sent;
    return 0;
}

static void synchronous_is_full(pst_store *st) {
    pst_store_info info;
    cr_assert_eq(pst_store_info_get(st, &info), PST_OK);
    cr_assert_str_eq(info.journal_mode, "wal");
    cr_assert_eq(info.synchronous, 2, "synchronous left at %d after a lazy write",
                 info.synchronous);
}

Test(store_lazy, bookkeeping_rides_on_the_next_commit, .init = setup, .fini = teardown) {
    pst_store *st = su_open_file();
    uint8_t id[32], r1[32], notif[100], sender[32];
    tu_fill(id, 32, 1);
    memset(r1, 1, 32);
    memset(sender, 7, 32);
    su_rec_of(notif, sizeof notif, 3);
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_outbox_add(st, id, 100, 10, 1000, "s"), PST_OK);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r1, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
                 PST_OK);
    syncs = 0;
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_gt(syncs, 0, "a send's rows were committed without a sync");

    syncs = 0;
    cr_assert_eq(pst_store_outbox_notified(st, id, r1, 15), PST_OK);
    cr_assert_eq(pst_store_outbox_served(st, id, r1, 16), PST_OK);
    cr_assert_eq(syncs, 0, "bookkeeping writes synced %d times", syncs);
    synchronous_is_full(st);
    cr_assert_eq(pst_store_outbox_notified(st, id, r1, 15), PST_OK);

    /* the receipt is acknowledged to the recipient: a sync before it returns */
    uint8_t receipt[90];
    su_rec_of(receipt, sizeof receipt, 4);
    syncs = 0;
    cr_assert_eq(pst_store_outbox_receipt(st, id, r1, receipt, sizeof receipt, 20), PST_OK);
    cr_assert_gt(syncs, 0, "a receipt was stored without a sync");

    /* the recipient: the attempt and the delivery sync, the receipt mark not */
    cr_assert_eq(pst_store_inbox_add(st, id, sender, notif, sizeof notif, 500, 10), PST_OK);
    syncs = 0;
    cr_assert_eq(pst_store_inbox_attempt(st, id, 12), PST_OK);
    cr_assert_gt(syncs, 0, "a fetch attempt was recorded without a sync");
    syncs = 0;
    cr_assert_eq(pst_store_inbox_delivered(st, id, "", "1700.abc.host", 100, 14), PST_OK);
    cr_assert_gt(syncs, 0, "a delivery was recorded without a sync");
    syncs = 0;
    cr_assert_eq(pst_store_inbox_receipt_sent(st, id, 15), PST_OK);
    cr_assert_eq(syncs, 0, "the receipt mark synced %d times", syncs);
    synchronous_is_full(st);

    /* inside a batch a lazy write is the batch's, synced with it */
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_outbox_served(st, id, r1, 30), PST_OK);
    syncs = 0;
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_gt(syncs, 0, "a batch with a lazy write was committed without a sync");
    synchronous_is_full(st);
    pst_store_close(st);

    /* everything is there after a reopen (a crash of the process loses nothing) */
    st = su_open_file();
    uint64_t receipt_sent = 0;
    cr_assert_eq(pst_store_inbox_get(st, id, get_receipt_sent, &receipt_sent), PST_OK);
    cr_assert_eq(receipt_sent, 15);
    pst_store_close(st);
}

/* Issue 14, third round: a small body in the store is durable with its rows
 * in one sync of the WAL, the send's only one (a body file cost a sync of
 * the file and one of its directory before this one). */
Test(store_lazy, small_body_commits_with_its_rows_in_one_sync, .init = setup, .fini = teardown) {
    pst_store *st = su_open_file();
    uint8_t id[32], r1[32], notif[100], body[4200], got[PST_STORE_BODY_INLINE_MAX];
    size_t len = 0;
    tu_fill(id, 32, 5);
    memset(r1, 1, 32);
    su_rec_of(notif, sizeof notif, 3);
    tu_fill(body, sizeof body, 6);
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_outbox_add(st, id, sizeof body, 10, 1000, "s"), PST_OK);
    cr_assert_eq(pst_store_outbox_body_add(st, id, body, sizeof body), PST_OK);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r1, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
                 PST_OK);
    syncs = 0;
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_eq(syncs, 1, "a send with its body synced %d times", syncs);
    synchronous_is_full(st);
    pst_store_close(st);

    st = su_open_file();
    cr_assert_eq(pst_store_outbox_body_get(st, id, got, sizeof got, &len), PST_OK);
    cr_assert_eq(len, sizeof body);
    cr_assert_eq(memcmp(got, body, len), 0);
    pst_store_close(st);
}

/* The recipient's record of a notification and its spent stamp (a lazy
 * batch: the sender puts the notification again until the receipt) is
 * written without a sync; the fetch attempt that follows syncs it with its
 * own, and the batch leaves synchronous at FULL, also when rolled back. */
Test(store_lazy, accepted_notification_rides_on_the_attempt, .init = setup, .fini = teardown) {
    pst_store *st = su_open_file();
    uint8_t id[32], sender[32], notif[300], stamp[20];
    tu_fill(id, 32, 7);
    memset(sender, 7, 32);
    su_rec_of(notif, sizeof notif, 3);
    tu_fill(stamp, sizeof stamp, 8);
    syncs = 0;
    cr_assert_eq(pst_store_begin_lazy(st), PST_OK);
    cr_assert_eq(pst_store_begin_lazy(st), PST_E_INVAL, "a batch inside a batch");
    cr_assert_eq(pst_store_inbox_add(st, id, sender, notif, sizeof notif, 500, 10), PST_OK);
    cr_assert_eq(pst_store_stamp_spend(st, stamp, sizeof stamp, 900), PST_OK);
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_eq(syncs, 0, "an accepted notification synced %d times", syncs);
    synchronous_is_full(st);
    cr_assert_eq(pst_store_inbox_attempt(st, id, 12), PST_OK);
    cr_assert_gt(syncs, 0, "the attempt was recorded without a sync");

    tu_fill(id, 32, 8);
    cr_assert_eq(pst_store_begin_lazy(st), PST_OK);
    cr_assert_eq(pst_store_inbox_add(st, id, sender, notif, sizeof notif, 500, 10), PST_OK);
    cr_assert_eq(pst_store_rollback(st), PST_OK);
    synchronous_is_full(st);
    pst_store_close(st);

    st = su_open_file();
    tu_fill(id, 32, 7);
    cr_assert_eq(pst_store_inbox_get(st, id, get_receipt_sent, &(uint64_t){0}), PST_OK);
    tu_fill(id, 32, 8);
    cr_assert_eq(pst_store_inbox_get(st, id, get_receipt_sent, &(uint64_t){0}), PST_E_NOTFOUND);
    pst_store_close(st);
}

/* Issue 14, fifth round: the sender's receipt is written without a sync
 * (pst_store_outbox_receipt_lazy) and answered once pst_store_synced() has
 * grown past its value after the write: the next commit that syncs (a
 * send's), or pst_store_sync. Commits that sync nothing (lazy ones, ones
 * that wrote nothing) do not count. */
Test(store_lazy, lazy_receipt_is_durable_after_the_next_synced_commit, .init = setup,
     .fini = teardown) {
    pst_store *st = su_open_file();
    uint8_t id[32], id2[32], r1[32], notif[100], receipt[90];
    tu_fill(id, 32, 1);
    tu_fill(id2, 32, 2);
    memset(r1, 1, 32);
    su_rec_of(notif, sizeof notif, 3);
    su_rec_of(receipt, sizeof receipt, 4);
    uint64_t g0 = pst_store_synced(st);
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_outbox_add(st, id, 100, 10, 1000, "s"), PST_OK);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id, r1, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
                 PST_OK);
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_gt(pst_store_synced(st), g0, "a synced commit was not counted");

    uint64_t g1 = pst_store_synced(st);
    syncs = 0;
    cr_assert_eq(pst_store_outbox_receipt_lazy(st, id, r1, receipt, sizeof receipt, 20), PST_OK);
    cr_assert_eq(syncs, 0, "the lazy receipt synced %d times", syncs);
    synchronous_is_full(st);
    uint64_t ticket = pst_store_synced(st);
    cr_assert_eq(ticket, g1, "a lazy commit was counted as synced");
    /* the same receipt again: 0, still lazy */
    cr_assert_eq(pst_store_outbox_receipt_lazy(st, id, r1, receipt, sizeof receipt, 21), PST_OK);
    cr_assert_eq(syncs, 0);

    /* a batch that writes nothing syncs nothing: not counted */
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_eq(pst_store_synced(st), ticket);
    /* nor a lazy batch */
    cr_assert_eq(pst_store_begin_lazy(st), PST_OK);
    cr_assert_eq(pst_store_outbox_served(st, id, r1, 22), PST_OK);
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_eq(pst_store_synced(st), ticket);

    /* the next send's commit syncs the WAL, and with it the receipt */
    syncs = 0;
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_outbox_add(st, id2, 100, 10, 1000, "s"), PST_OK);
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_gt(syncs, 0);
    cr_assert_gt(pst_store_synced(st), ticket);

    /* with nothing else to commit: pst_store_sync, one sync */
    uint8_t r2[32];
    memset(r2, 2, 32);
    cr_assert_eq(pst_store_outbox_rcpt_add(st, id2, r2, PST_STORE_RCPT_TO, notif, sizeof notif, 10),
                 PST_OK);
    cr_assert_eq(pst_store_outbox_receipt_lazy(st, id2, r2, receipt, sizeof receipt, 23), PST_OK);
    ticket = pst_store_synced(st);
    syncs = 0;
    cr_assert_eq(pst_store_sync(st), PST_OK);
    cr_assert_eq(syncs, 1, "pst_store_sync synced %d times", syncs);
    cr_assert_gt(pst_store_synced(st), ticket);
    synchronous_is_full(st);

    /* not inside a batch */
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_sync(st), PST_E_INVAL);
    cr_assert_eq(pst_store_rollback(st), PST_OK);
    cr_assert_eq(pst_store_sync(NULL), PST_E_INVAL);
    pst_store_close(st);

    /* both receipts are there after a reopen */
    st = su_open_file();
    pst_store_out_state state = 0;
    cr_assert_eq(pst_store_outbox_rcpt_state(st, id, r1, &state), PST_OK);
    cr_assert_eq(state, PST_STORE_OUT_DELIVERED);
    cr_assert_eq(pst_store_outbox_rcpt_state(st, id2, r2, &state), PST_OK);
    cr_assert_eq(state, PST_STORE_OUT_DELIVERED);
    pst_store_close(st);
}
