#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pst_store.h"
#include "storeutil.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------- */

static void write_file(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* Overwrites len bytes of the database file at off (closed database). */
static void patch_file(long off, const void *buf, size_t len) {
    FILE *f = fopen(su_db_path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, off, SEEK_SET), 0);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* ---- open, settings, migrations ------------------------------------------ */

Test(store, open_memory_settings) {
    pst_store *st = su_open_mem();
    pst_store_info info;
    cr_assert_eq(pst_store_info_get(st, &info), PST_OK);
    cr_assert_eq(info.schema_version, PST_STORE_SCHEMA_VERSION);
    cr_assert_str_eq(info.journal_mode, "memory");
    cr_assert_eq(info.synchronous, 2);
    cr_assert_eq(info.foreign_keys, 1);
    cr_assert_str_eq(pst_store_last_error(st), "");
    cr_assert_eq(pst_store_check(st), PST_OK);
    pst_store_close(st);
    pst_store_close(NULL);
}

Test(store, open_bad_args) {
    pst_store *st = (pst_store *)1;
    cr_assert_eq(pst_store_open(&st, NULL), PST_E_INVAL);
    cr_assert_null(st);
    cr_assert_eq(pst_store_open(&st, ""), PST_E_INVAL);
    cr_assert_eq(pst_store_open(NULL, ":memory:"), PST_E_INVAL);
    cr_assert_eq(pst_store_info_get(NULL, NULL), PST_E_INVAL);
    cr_assert_str_eq(pst_store_last_error(NULL), "");
}

Test(store, file_wal_full_and_private, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    pst_store_info info;
    cr_assert_eq(pst_store_info_get(st, &info), PST_OK);
    cr_assert_str_eq(info.journal_mode, "wal");
    cr_assert_eq(info.synchronous, 2, "synchronous=FULL must be in effect");
    cr_assert_eq(info.foreign_keys, 1);
    cr_assert_eq(info.schema_version, PST_STORE_SCHEMA_VERSION);
    cr_assert_gt(info.page_count, 0);
    struct stat sb;
    cr_assert_eq(stat(su_db_path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "database must be owner-only, got %o",
                 (unsigned)(sb.st_mode & 0777));
    cr_assert_eq(pst_store_meta_set_u64(st, "x", 1), PST_OK);
    pst_store_close(st);
    /* WAL is recorded in the header (file format versions 2/2). */
    size_t n = 0;
    uint8_t *hdr = tu_read_file(su_db_path, &n);
    cr_assert_not_null(hdr);
    cr_assert_geq(n, 100);
    cr_assert_eq(memcmp(hdr, "SQLite format 3", 16), 0);
    cr_assert_eq(hdr[18], 2);
    cr_assert_eq(hdr[19], 2);
    free(hdr);
}

Test(store, reopen_keeps_everything, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    uint8_t pk[32], rec[100];
    su_pk_of(pk, 1);
    su_rec_of(rec, sizeof rec, 2);
    pst_store *st = su_open_file();
    cr_assert_eq(pst_store_keyrec_put(st, pk, 5, 10, 0, rec, sizeof rec, 20), PST_OK);
    cr_assert_eq(pst_store_revocation_put(st, pk, rec, 50, 10, 20), PST_OK);
    cr_assert_eq(pst_store_contact_set(st, pk, PST_STORE_TIER_KNOWN, "bob", 20), PST_OK);
    cr_assert_eq(pst_store_counter_add(st, "rej.sig", 3), PST_OK);
    pst_store_close(st);

    st = su_open_file(); /* no migration runs twice */
    uint8_t buf[200];
    size_t len;
    uint64_t seq, exp;
    cr_assert_eq(pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, &seq, &exp), PST_OK);
    cr_assert_eq(len, sizeof rec);
    cr_assert_arr_eq(buf, rec, sizeof rec);
    cr_assert_eq(seq, 5);
    cr_assert_eq(pst_store_is_revoked(st, pk), 1);
    pst_store_tier tier;
    char name[PST_STORE_PETNAME_MAX + 1];
    cr_assert_eq(pst_store_contact_get(st, pk, &tier, name, sizeof name), PST_OK);
    cr_assert_eq(tier, PST_STORE_TIER_KNOWN);
    cr_assert_str_eq(name, "bob");
    int64_t v;
    cr_assert_eq(pst_store_counter_get(st, "rej.sig", &v), PST_OK);
    cr_assert_eq(v, 3);
    pst_store_info info;
    cr_assert_eq(pst_store_info_get(st, &info), PST_OK);
    cr_assert_eq(info.schema_version, PST_STORE_SCHEMA_VERSION);
    pst_store_close(st);
}

Test(store, future_schema_refused, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store_close(su_open_file());
    /* user_version: big-endian u32 at offset 60 of the header. */
    const uint8_t v[4] = {0, 0, 0, PST_STORE_SCHEMA_VERSION + 1};
    patch_file(60, v, 4);
    pst_store *st = (pst_store *)1;
    char err[PST_STORE_ERR_MAX];
    cr_assert_eq(pst_store_open_ex(&st, su_db_path, err, sizeof err), PST_E_VERSION);
    cr_assert_null(st);
    cr_assert_not_null(strstr(err, "newer"), "message: %s", err);
    cr_assert_eq(pst_store_open(&st, su_db_path), PST_E_VERSION);
}

Test(store, foreign_database_refused, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store_close(su_open_file());
    const uint8_t app[4] = {'X', 'Y', 'Z', 'W'}; /* application_id at offset 68 */
    patch_file(68, app, 4);
    pst_store *st = NULL;
    char err[PST_STORE_ERR_MAX];
    cr_assert_eq(pst_store_open_ex(&st, su_db_path, err, sizeof err), PST_E_STORE);
    cr_assert_null(st);
    cr_assert_not_null(strstr(err, "not a Postern database"), "message: %s", err);
}

/* A database cut short (a bad copy or restore) is refused at open, and the
 * message names the file: a home holds several. */
Test(store, truncated_file_named, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    uint8_t rec[300];
    su_rec_of(rec, sizeof rec, 1);
    cr_assert_eq(pst_store_meta_set_blob(st, "filler", rec, sizeof rec), PST_OK);
    pst_store_close(st);
    struct stat sb;
    cr_assert_eq(stat(su_db_path, &sb), 0);
    cr_assert_gt(sb.st_size, 8192);
    const off_t sizes[] = {sb.st_size - 1, sb.st_size / 2, 4096, 99, 50};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        cr_assert_eq(truncate(su_db_path, sizes[i]), 0);
        char err[PST_STORE_ERR_MAX];
        st = (pst_store *)1;
        cr_assert_eq(pst_store_open_ex(&st, su_db_path, err, sizeof err), PST_E_STORE, "size %lld",
                     (long long)sizes[i]);
        cr_assert_null(st);
        cr_assert_not_null(strstr(err, su_db_path), "size %lld: %s", (long long)sizes[i], err);
        cr_assert_not_null(strstr(err, "truncated"), "size %lld: %s", (long long)sizes[i], err);
    }
}

Test(store, garbage_file_is_clear_error, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    uint8_t junk[4096];
    tu_fill(junk, sizeof junk, 99);
    static const size_t sizes[] = {1, 50, 100, 512, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        write_file(su_db_path, junk, sizes[i]);
        pst_store *st = (pst_store *)1;
        char err[PST_STORE_ERR_MAX];
        cr_assert_eq(pst_store_open_ex(&st, su_db_path, err, sizeof err), PST_E_STORE, "size %zu",
                     sizes[i]);
        cr_assert_null(st);
        cr_assert_not_null(strstr(err, "not a database"), "size %zu: %s", sizes[i], err);
    }
    /* A text file that happens to be long. */
    char text[2000];
    memset(text, 'a', sizeof text);
    write_file(su_db_path, text, sizeof text);
    pst_store *st = NULL;
    cr_assert_eq(pst_store_open(&st, su_db_path), PST_E_STORE);
}

Test(store, corrupt_pages_no_crash, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    uint8_t rec[1000];
    for (uint32_t i = 0; i < 40; i++) {
        uint8_t pk[32];
        su_pk_of(pk, i);
        su_rec_of(rec, sizeof rec, i);
        cr_assert_eq(pst_store_keyrec_put(st, pk, 1, 1, 0, rec, sizeof rec, 2), PST_OK);
    }
    pst_store_close(st);
    size_t n = 0;
    uint8_t *file = tu_read_file(su_db_path, &n);
    cr_assert_not_null(file);
    free(file);
    cr_assert_gt(n, 8192);
    /* Smash everything after the first page (schema stays readable). */
    uint8_t junk[4096];
    for (long off = 4096; off + (long)sizeof junk <= (long)n; off += sizeof junk) {
        tu_fill(junk, sizeof junk, (uint32_t)off);
        patch_file(off, junk, sizeof junk);
    }
    int rc = pst_store_open(&st, su_db_path);
    if (rc == PST_OK) {
        cr_assert_eq(pst_store_check(st), PST_E_STORE);
        cr_assert_neq(pst_store_last_error(st)[0], '\0');
        uint8_t pk[32], buf[2000];
        size_t len;
        su_pk_of(pk, 3);
        rc = pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, NULL, NULL);
        cr_assert(rc == PST_E_STORE || rc == PST_E_NOTFOUND || rc == PST_OK);
        pst_store_close(st);
    } else {
        cr_assert_eq(rc, PST_E_STORE);
    }
}

static int any_key(const pst_store_keyrec_row *r, void *u) {
    (void)r;
    ++*(int *)u;
    return 0;
}
static int any_rev(const pst_store_revocation_row *r, void *u) {
    (void)r;
    ++*(int *)u;
    return 0;
}
static int any_contact(const pst_store_contact_row *r, void *u) {
    (void)r;
    ++*(int *)u;
    return 0;
}
static int any_counter(const char *name, int64_t v, void *u) {
    (void)name;
    (void)v;
    ++*(int *)u;
    return 0;
}

/* Damage one region of a populated file per round: every call must return
 * a code (never crash, never read out of bounds: run under ASan). */
Test(store, corrupt_regions_fail_cleanly, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    uint8_t rec[700], pk[32];
    cr_assert_eq(pst_store_begin(st), PST_OK); /* one fsync, not 120 */
    for (uint32_t i = 0; i < 30; i++) {
        su_pk_of(pk, i);
        su_rec_of(rec, sizeof rec, i);
        cr_assert_eq(pst_store_keyrec_put(st, pk, 1, 1, 0, rec, sizeof rec, 2), PST_OK);
        cr_assert_eq(pst_store_revocation_put(st, pk, rec, 100, 1, 2), PST_OK);
        cr_assert_eq(pst_store_contact_set(st, pk, PST_STORE_TIER_KNOWN, "n", 2), PST_OK);
        cr_assert_eq(pst_store_counter_add(st, i % 2 ? "odd" : "even", 1), PST_OK);
    }
    cr_assert_eq(pst_store_commit(st), PST_OK);
    pst_store_close(st);
    size_t n = 0;
    uint8_t *orig = tu_read_file(su_db_path, &n);
    cr_assert_not_null(orig);
    int opened = 0, failed = 0;
    for (uint32_t round = 0; round < 40; round++) {
        char side[160];
        snprintf(side, sizeof side, "%s-wal", su_db_path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", su_db_path);
        unlink(side);
        write_file(su_db_path, orig, n);
        uint8_t junk[97];
        tu_fill(junk, sizeof junk, round);
        long off = 100 + (long)((round * 7919u) % (uint32_t)(n - 100 - sizeof junk));
        patch_file(off, junk, sizeof junk);
        if (pst_store_open(&st, su_db_path) != PST_OK) {
            failed++;
            continue;
        }
        opened++;
        int cnt = 0;
        uint8_t buf[1024];
        size_t len;
        (void)pst_store_check(st);
        (void)pst_store_keyrec_list(st, any_key, &cnt);
        (void)pst_store_revocation_list(st, any_rev, &cnt);
        (void)pst_store_contact_list(st, any_contact, &cnt);
        (void)pst_store_counter_list(st, any_counter, &cnt);
        (void)pst_store_begin(st);
        for (uint32_t i = 0; i < 30; i += 7) {
            su_pk_of(pk, i);
            (void)pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, NULL, NULL);
            (void)pst_store_revocation_get(st, pk, buf, sizeof buf, &len);
            su_rec_of(rec, sizeof rec, i + 100);
            int rc = pst_store_keyrec_put(st, pk, 2, 1, 0, rec, sizeof rec, 3);
            cr_assert_leq(rc, 0);
        }
        (void)pst_store_commit(st);
        pst_store_close(st);
    }
    free(orig);
    cr_assert_eq(opened + failed, 40);
    cr_log_info("corrupt rounds: %d opened, %d refused", opened, failed);
}

Test(store, unopenable_paths, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = (pst_store *)1;
    char err[PST_STORE_ERR_MAX];
    cr_assert_eq(pst_store_open_ex(&st, su_tmp_dir, err, sizeof err), PST_E_IO); /* a directory */
    cr_assert_null(st);
    cr_assert_neq(err[0], '\0');
    char p[200];
    snprintf(p, sizeof p, "%s/missing/store.db", su_tmp_dir);
    cr_assert_eq(pst_store_open_ex(&st, p, err, sizeof err), PST_E_IO);
    cr_assert_not_null(strstr(err, "missing"));
}

/* ---- meta ---------------------------------------------------------------- */

Test(store, meta_u64_and_blob) {
    pst_store *st = su_open_mem();
    uint64_t v = 7;
    cr_assert_eq(pst_store_meta_get_u64(st, "seq", &v), PST_E_NOTFOUND);
    cr_assert_eq(v, 0);
    cr_assert_eq(pst_store_meta_set_u64(st, "seq", UINT64_MAX), PST_OK);
    cr_assert_eq(pst_store_meta_get_u64(st, "seq", &v), PST_OK);
    cr_assert_eq(v, UINT64_MAX);
    cr_assert_eq(pst_store_meta_set_u64(st, "seq", 41), PST_OK);
    cr_assert_eq(pst_store_meta_next_u64(st, "seq", &v), PST_OK);
    cr_assert_eq(v, 42);
    cr_assert_eq(pst_store_meta_next_u64(st, "fresh", &v), PST_OK);
    cr_assert_eq(v, 1);
    cr_assert_eq(pst_store_meta_set_u64(st, "max", UINT64_MAX), PST_OK);
    cr_assert_eq(pst_store_meta_next_u64(st, "max", &v), PST_E_RANGE);
    cr_assert_eq(pst_store_meta_get_u64(st, "max", &v), PST_OK);
    cr_assert_eq(v, UINT64_MAX);

    uint8_t id[16], buf[16];
    size_t len = 99;
    tu_fill(id, sizeof id, 5);
    cr_assert_eq(pst_store_meta_set_blob(st, "netid", id, sizeof id), PST_OK);
    cr_assert_eq(pst_store_meta_get_blob(st, "netid", buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(len, sizeof id);
    cr_assert_arr_eq(buf, id, sizeof id);
    cr_assert_eq(pst_store_meta_get_blob(st, "netid", buf, 4, &len), PST_E_NOSPACE);
    cr_assert_eq(len, sizeof id, "needed length reported");
    cr_assert_eq(pst_store_meta_get_blob(st, "netid", NULL, 0, &len), PST_E_NOSPACE);
    cr_assert_eq(len, sizeof id);
    cr_assert_eq(pst_store_meta_set_blob(st, "empty", NULL, 0), PST_OK);
    cr_assert_eq(pst_store_meta_get_blob(st, "empty", buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(len, 0);

    /* One type per name. */
    cr_assert_eq(pst_store_meta_get_u64(st, "netid", &v), PST_E_TYPE);
    cr_assert_eq(v, 0);
    cr_assert_eq(pst_store_meta_get_blob(st, "seq", buf, sizeof buf, &len), PST_E_TYPE);
    cr_assert_eq(pst_store_meta_next_u64(st, "netid", &v), PST_E_TYPE);

    static uint8_t big[PST_STORE_BLOB_MAX + 1];
    cr_assert_eq(pst_store_meta_set_blob(st, "big", big, sizeof big), PST_E_TOOBIG);
    cr_assert_eq(pst_store_meta_set_blob(st, "big", big, PST_STORE_BLOB_MAX), PST_OK);
    cr_assert_eq(pst_store_meta_set_blob(st, "x", NULL, 3), PST_E_INVAL);

    cr_assert_eq(pst_store_meta_delete(st, "netid"), PST_OK);
    cr_assert_eq(pst_store_meta_delete(st, "netid"), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_meta_get_blob(st, "netid", buf, sizeof buf, &len), PST_E_NOTFOUND);
    pst_store_close(st);
}

Test(store, names_validated) {
    pst_store *st = su_open_mem();
    char longname[PST_STORE_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(pst_store_meta_set_u64(st, longname, 1), PST_E_TOOBIG);
    longname[PST_STORE_NAME_MAX] = '\0';
    cr_assert_eq(pst_store_meta_set_u64(st, longname, 1), PST_OK);
    cr_assert_eq(pst_store_meta_set_u64(st, "", 1), PST_E_INVAL);
    cr_assert_eq(pst_store_meta_set_u64(st, NULL, 1), PST_E_INVAL);
    cr_assert_eq(pst_store_meta_set_u64(st, "a\nb", 1), PST_E_INVAL);
    cr_assert_eq(pst_store_meta_set_u64(st, "a\x1b[31m", 1), PST_E_INVAL);
    cr_assert_eq(pst_store_counter_add(st, "\xff\xfe", 1), PST_E_INVAL);     /* not UTF-8 */
    cr_assert_eq(pst_store_counter_add(st, "\xc0\xaf", 1), PST_E_INVAL);     /* overlong */
    cr_assert_eq(pst_store_counter_add(st, "\xed\xa0\x80", 1), PST_E_INVAL); /* surrogate */
    cr_assert_eq(pst_store_counter_add(st, "\xc2\x9b", 1), PST_E_INVAL);     /* C1 CSI */
    cr_assert_eq(pst_store_counter_add(st, "\xe2\x82", 1), PST_E_INVAL);     /* truncated */
    cr_assert_eq(pst_store_counter_add(st, "caf\xc3\xa9", 1), PST_OK);
    cr_assert_eq(pst_store_counter_add(st, "\xf0\x9f\x93\xab", 1), PST_OK);
    pst_store_close(st);
}

/* ---- key cache and the seq rule ------------------------------------------ */

Test(store, keyrec_seq_rule) {
    pst_store *st = su_open_mem();
    uint8_t pk[32], a[300], b[300], buf[400];
    su_pk_of(pk, 1);
    su_rec_of(a, sizeof a, 10);
    su_rec_of(b, sizeof b, 11);
    size_t len = 1;
    uint64_t seq = 1, exp = 1;
    cr_assert_eq(pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, &seq, &exp), PST_E_NOTFOUND);
    cr_assert_eq(len, 0);
    cr_assert_eq(seq, 0);
    cr_assert_eq(pst_store_seq_high(st, pk, &seq), PST_E_NOTFOUND);

    cr_assert_eq(pst_store_keyrec_put(st, pk, 5, 100, 1000, a, sizeof a, 150), PST_OK);
    cr_assert_eq(pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, &seq, &exp), PST_OK);
    cr_assert_eq(len, sizeof a);
    cr_assert_arr_eq(buf, a, sizeof a);
    cr_assert_eq(seq, 5);
    cr_assert_eq(exp, 1000);

    /* Equal seq: same bytes is a no-op, other bytes are stale. */
    cr_assert_eq(pst_store_keyrec_put(st, pk, 5, 100, 1000, a, sizeof a, 160), PST_OK);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 5, 100, 1000, b, sizeof b, 160), PST_E_STALE);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 5, 100, 1000, a, sizeof a - 1, 160), PST_E_STALE);
    /* Lower seq is stale. */
    cr_assert_eq(pst_store_keyrec_put(st, pk, 4, 100, 1000, b, sizeof b, 160), PST_E_STALE);
    cr_assert_eq(pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, &seq, NULL), PST_OK);
    cr_assert_arr_eq(buf, a, sizeof a);
    cr_assert_eq(seq, 5);
    /* Higher seq replaces. */
    cr_assert_eq(pst_store_keyrec_put(st, pk, 6, 200, 0, b, 200, 210), PST_OK);
    cr_assert_eq(pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, &seq, &exp), PST_OK);
    cr_assert_eq(len, 200);
    cr_assert_arr_eq(buf, b, 200);
    cr_assert_eq(seq, 6);
    cr_assert_eq(exp, 0);
    cr_assert_eq(pst_store_seq_high(st, pk, &seq), PST_OK);
    cr_assert_eq(seq, 6);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 5, 100, 1000, a, sizeof a, 210), PST_E_STALE);

    /* Buffer too small: needed length, zeroed outputs. */
    cr_assert_eq(pst_store_keyrec_get(st, pk, buf, 10, &len, &seq, &exp), PST_E_NOSPACE);
    cr_assert_eq(len, 200);
    cr_assert_eq(seq, 0);
    static const uint8_t zero[10];
    cr_assert_arr_eq(buf, zero, 10);
    pst_store_close(st);
}

Test(store, keyrec_full_u64_seq) {
    pst_store *st = su_open_mem();
    uint8_t pk[32], a[10];
    su_pk_of(pk, 2);
    su_rec_of(a, sizeof a, 3);
    const uint64_t big = (1ull << 63) + 5;
    cr_assert_eq(pst_store_keyrec_put(st, pk, big, 1, 0, a, sizeof a, 1), PST_OK);
    a[0] ^= 1;
    cr_assert_eq(pst_store_keyrec_put(st, pk, 7, 1, 0, a, sizeof a, 1), PST_E_STALE);
    cr_assert_eq(pst_store_keyrec_put(st, pk, big - 1, 1, 0, a, sizeof a, 1), PST_E_STALE);
    cr_assert_eq(pst_store_keyrec_put(st, pk, UINT64_MAX, 1, 0, a, sizeof a, 1), PST_OK);
    uint64_t seq;
    cr_assert_eq(pst_store_seq_high(st, pk, &seq), PST_OK);
    cr_assert_eq(seq, UINT64_MAX);
    pst_store_close(st);
}

Test(store, keyrec_arg_errors) {
    pst_store *st = su_open_mem();
    uint8_t pk[32];
    static uint8_t rec[PST_RECORD_MAX + 1];
    su_pk_of(pk, 4);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 1, 1, 0, rec, PST_RECORD_MAX + 1, 1), PST_E_TOOBIG);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 1, 1, 0, rec, PST_RECORD_MAX, 1), PST_OK);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 2, 1, 0, rec, 0, 1), PST_E_INVAL);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 2, 1, 0, NULL, 5, 1), PST_E_INVAL);
    cr_assert_eq(pst_store_keyrec_put(st, NULL, 2, 1, 0, rec, 5, 1), PST_E_INVAL);
    cr_assert_eq(pst_store_keyrec_put(NULL, pk, 2, 1, 0, rec, 5, 1), PST_E_INVAL);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 2, 10, 5, rec, 5, 1), PST_E_INVAL); /* exp<created */
    cr_assert_eq(pst_store_keyrec_put(st, pk, 2, 1, 50, rec, 5, 50), PST_E_EXPIRED);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 2, 1, 0, rec, 5, UINT64_MAX), PST_E_RANGE);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 2, 1ull << 63, 0, rec, 5, 1), PST_E_RANGE);
    uint64_t seq;
    cr_assert_eq(pst_store_seq_high(st, pk, &seq), PST_OK);
    cr_assert_eq(seq, 1, "failed puts change nothing");
    size_t len;
    cr_assert_eq(pst_store_keyrec_get(st, pk, NULL, 5, &len, NULL, NULL), PST_E_INVAL);
    cr_assert_eq(pst_store_keyrec_get(st, pk, rec, 5, NULL, NULL, NULL), PST_E_INVAL);
    cr_assert_eq(pst_store_keyrec_purge_expired(st, UINT64_MAX), PST_E_RANGE);
    pst_store_close(st);
}

Test(store, keyrec_replay_after_purge) {
    pst_store *st = su_open_mem();
    uint8_t pk[32], old[64], cur[64], buf[64];
    su_pk_of(pk, 5);
    su_rec_of(old, sizeof old, 1);
    su_rec_of(cur, sizeof cur, 2);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 1, 10, 500, old, sizeof old, 20), PST_OK);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 2, 30, 100, cur, sizeof cur, 40), PST_OK);
    cr_assert_eq(pst_store_keyrec_purge_expired(st, 99), PST_OK);
    size_t len;
    cr_assert_eq(pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, NULL, NULL), PST_OK);
    cr_assert_eq(pst_store_keyrec_purge_expired(st, 100), PST_OK);
    cr_assert_eq(pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, NULL, NULL), PST_E_NOTFOUND);
    uint64_t seq;
    cr_assert_eq(pst_store_seq_high(st, pk, &seq), PST_OK, "the mark outlives the record");
    cr_assert_eq(seq, 2);
    /* The older record is still valid (expires 500) but must never win. */
    cr_assert_eq(pst_store_keyrec_put(st, pk, 1, 10, 500, old, sizeof old, 150), PST_E_STALE);
    cr_assert_eq(pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, NULL, NULL), PST_E_NOTFOUND);
    /* The same record as the mark may come back while valid (clock skew). */
    cr_assert_eq(pst_store_keyrec_put(st, pk, 2, 30, 100, cur, sizeof cur, 60), PST_OK);
    cr_assert_eq(pst_store_keyrec_get(st, pk, buf, sizeof buf, &len, &seq, NULL), PST_OK);
    cr_assert_arr_eq(buf, cur, sizeof cur);
    pst_store_close(st);
}

Test(store, keyrec_replay_after_reopen, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    uint8_t pk[32], old[64], cur[64];
    su_pk_of(pk, 6);
    su_rec_of(old, sizeof old, 1);
    su_rec_of(cur, sizeof cur, 2);
    pst_store *st = su_open_file();
    cr_assert_eq(pst_store_keyrec_put(st, pk, 1, 10, 0, old, sizeof old, 20), PST_OK);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 9, 30, 100, cur, sizeof cur, 40), PST_OK);
    cr_assert_eq(pst_store_keyrec_purge_expired(st, 200), PST_OK);
    pst_store_close(st);
    st = su_open_file();
    cr_assert_eq(pst_store_keyrec_put(st, pk, 1, 10, 0, old, sizeof old, 300), PST_E_STALE);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 8, 10, 0, old, sizeof old, 300), PST_E_STALE);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 10, 10, 0, old, sizeof old, 300), PST_OK);
    pst_store_close(st);
}

struct collect {
    int n;
    uint8_t pks[8][32];
    uint64_t seqs[8];
    int stop_at;
};

static int collect_key(const pst_store_keyrec_row *r, void *user) {
    struct collect *c = user;
    memcpy(c->pks[c->n], r->pk, 32);
    c->seqs[c->n] = r->seq;
    c->n++;
    return c->n == c->stop_at ? -12345 : 0;
}

Test(store, keyrec_list) {
    pst_store *st = su_open_mem();
    uint8_t rec[20];
    su_rec_of(rec, sizeof rec, 1);
    struct collect c = {0};
    cr_assert_eq(pst_store_keyrec_list(st, collect_key, &c), PST_OK);
    cr_assert_eq(c.n, 0);
    for (uint8_t i = 3; i > 0; i--) {
        uint8_t pk[32];
        memset(pk, i, 32);
        cr_assert_eq(pst_store_keyrec_put(st, pk, i * 10u, 1, 0, rec, sizeof rec, 1), PST_OK);
    }
    cr_assert_eq(pst_store_keyrec_list(st, collect_key, &c), PST_OK);
    cr_assert_eq(c.n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(c.pks[i][0], i + 1, "ordered by pk");
        cr_assert_eq(c.seqs[i], (uint64_t)(i + 1) * 10);
    }
    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    cr_assert_eq(pst_store_keyrec_list(st, collect_key, &c), -12345, "cb's value comes back");
    cr_assert_eq(c.n, 2);
    cr_assert_eq(pst_store_keyrec_list(st, NULL, &c), PST_E_INVAL);
    pst_store_close(st);
}

/* ---- address claims ------------------------------------------------------ */

static int collect_claim(const pst_store_addrclaim_row *r, void *user) {
    struct collect *c = user;
    memcpy(c->pks[c->n], r->pk, 32);
    c->seqs[c->n] = r->seq;
    c->n++;
    return 0;
}

Test(store, addrclaim_rules) {
    pst_store *st = su_open_mem();
    uint8_t k1[32], k2[32], a[40], b[40];
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    su_rec_of(a, sizeof a, 1);
    su_rec_of(b, sizeof b, 2);
    const char *addr = "alice@example.org";
    cr_assert_eq(pst_store_addrclaim_put(st, addr, k2, 3, 100, a, sizeof a), PST_OK);
    cr_assert_eq(pst_store_addrclaim_put(st, addr, k1, 1, 0, b, sizeof b), PST_OK);
    cr_assert_eq(pst_store_addrclaim_put(st, "bob@example.org", k1, 1, 0, b, sizeof b), PST_OK);
    /* Seq rule per (address, key). */
    cr_assert_eq(pst_store_addrclaim_put(st, addr, k2, 2, 100, b, sizeof b), PST_E_STALE);
    cr_assert_eq(pst_store_addrclaim_put(st, addr, k2, 3, 100, b, sizeof b), PST_E_STALE);
    cr_assert_eq(pst_store_addrclaim_put(st, addr, k2, 3, 100, a, sizeof a), PST_OK);
    cr_assert_eq(pst_store_addrclaim_put(st, addr, k1, 2, 0, a, sizeof a), PST_OK);

    struct collect c = {0};
    cr_assert_eq(pst_store_addrclaim_list(st, addr, collect_claim, &c), PST_OK);
    cr_assert_eq(c.n, 2, "every key that claims the address");
    cr_assert_eq(c.pks[0][0], 1);
    cr_assert_eq(c.seqs[0], 2);
    cr_assert_eq(c.pks[1][0], 2);
    cr_assert_eq(c.seqs[1], 3);
    memset(&c, 0, sizeof c);
    cr_assert_eq(pst_store_addrclaim_list(st, "nobody@example.org", collect_claim, &c), PST_OK);
    cr_assert_eq(c.n, 0);

    /* Purge keeps the mark: the older claim cannot come back. */
    cr_assert_eq(pst_store_addrclaim_purge_expired(st, 100), PST_OK);
    memset(&c, 0, sizeof c);
    cr_assert_eq(pst_store_addrclaim_list(st, addr, collect_claim, &c), PST_OK);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(pst_store_addrclaim_put(st, addr, k2, 2, 0, b, sizeof b), PST_E_STALE);

    cr_assert_eq(pst_store_addrclaim_put(st, "", k1, 1, 0, a, sizeof a), PST_E_INVAL);
    cr_assert_eq(pst_store_addrclaim_put(st, "a\rb@x", k1, 1, 0, a, sizeof a), PST_E_INVAL);
    char longaddr[PST_STORE_ADDRESS_MAX + 2];
    memset(longaddr, 'x', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    cr_assert_eq(pst_store_addrclaim_put(st, longaddr, k1, 1, 0, a, sizeof a), PST_E_TOOBIG);
    cr_assert_eq(pst_store_addrclaim_put(st, addr, k1, 9, 0, a, 0), PST_E_INVAL);
    cr_assert_eq(pst_store_addrclaim_list(st, NULL, collect_claim, &c), PST_E_INVAL);
    pst_store_close(st);
}

/* ---- revocations --------------------------------------------------------- */

static int count_rev(const pst_store_revocation_row *r, void *user) {
    cr_assert_eq(r->len, 30);
    ++*(int *)user;
    return 0;
}

Test(store, revocation_permanent, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    uint8_t pk[32], other[32], r1[30], r2[30], buf[64];
    su_pk_of(pk, 1);
    su_pk_of(other, 2);
    su_rec_of(r1, sizeof r1, 1);
    su_rec_of(r2, sizeof r2, 2);
    cr_assert_eq(pst_store_is_revoked(st, pk), 0);
    size_t len = 5;
    cr_assert_eq(pst_store_revocation_get(st, pk, buf, sizeof buf, &len), PST_E_NOTFOUND);
    cr_assert_eq(len, 0);
    cr_assert_eq(pst_store_revocation_put(st, pk, r1, sizeof r1, 10, 20), PST_OK);
    cr_assert_eq(pst_store_revocation_put(st, pk, r1, sizeof r1, 10, 30), PST_OK, "identical");
    cr_assert_eq(pst_store_revocation_put(st, pk, r2, sizeof r2, 11, 30), PST_E_EXISTS);
    cr_assert_eq(pst_store_is_revoked(st, pk), 1);
    cr_assert_eq(pst_store_is_revoked(st, other), 0);
    cr_assert_eq(pst_store_is_revoked(st, NULL), PST_E_INVAL);
    cr_assert_eq(pst_store_revocation_get(st, pk, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(len, sizeof r1);
    cr_assert_arr_eq(buf, r1, sizeof r1);
    cr_assert_eq(pst_store_revocation_get(st, pk, buf, 3, &len), PST_E_NOSPACE);
    cr_assert_eq(len, sizeof r1);
    cr_assert_eq(pst_store_revocation_put(st, other, r2, sizeof r2, 1, 2), PST_OK);
    static uint8_t big[PST_STORE_BLOB_MAX + 1];
    cr_assert_eq(pst_store_revocation_put(st, other, big, sizeof big, 1, 2), PST_E_TOOBIG);
    pst_store_close(st);

    st = su_open_file();
    cr_assert_eq(pst_store_is_revoked(st, pk), 1, "survives a restart");
    cr_assert_eq(pst_store_revocation_put(st, pk, r2, sizeof r2, 11, 30), PST_E_EXISTS);
    int n = 0;
    cr_assert_eq(pst_store_revocation_list(st, count_rev, &n), PST_OK);
    cr_assert_eq(n, 2);
    pst_store_close(st);
}

/* ---- contacts ------------------------------------------------------------ */

static int collect_contact(const pst_store_contact_row *r, void *user) {
    struct collect *c = user;
    memcpy(c->pks[c->n], r->pk, 32);
    c->seqs[c->n] = (uint64_t)r->tier * 1000 + strlen(r->petname);
    c->n++;
    return 0;
}

Test(store, contacts) {
    pst_store *st = su_open_mem();
    uint8_t a[32], b[32];
    memset(a, 0xa, 32);
    memset(b, 0xb, 32);
    pst_store_tier tier = 9;
    char name[PST_STORE_PETNAME_MAX + 1];
    cr_assert_eq(pst_store_contact_get(st, a, &tier, name, sizeof name), PST_E_NOTFOUND);
    cr_assert_eq(tier, 0);
    cr_assert_eq(pst_store_contact_set(st, a, PST_STORE_TIER_TRUSTED, "alice", 1), PST_OK);
    cr_assert_eq(pst_store_contact_set(st, b, PST_STORE_TIER_BLOCKED, NULL, 1), PST_OK);
    cr_assert_eq(pst_store_contact_get(st, a, &tier, name, sizeof name), PST_OK);
    cr_assert_eq(tier, PST_STORE_TIER_TRUSTED);
    cr_assert_str_eq(name, "alice");
    cr_assert_eq(pst_store_contact_get(st, b, &tier, name, sizeof name), PST_OK);
    cr_assert_eq(tier, PST_STORE_TIER_BLOCKED);
    cr_assert_str_eq(name, "");
    /* NULL keeps the petname, "" removes it. */
    cr_assert_eq(pst_store_contact_set(st, a, PST_STORE_TIER_KNOWN, NULL, 2), PST_OK);
    cr_assert_eq(pst_store_contact_get(st, a, &tier, name, sizeof name), PST_OK);
    cr_assert_eq(tier, PST_STORE_TIER_KNOWN);
    cr_assert_str_eq(name, "alice");
    cr_assert_eq(pst_store_contact_get(st, a, NULL, name, 3), PST_E_NOSPACE);
    cr_assert_str_eq(name, "");
    cr_assert_eq(pst_store_contact_get(st, a, &tier, NULL, 0), PST_OK);
    cr_assert_eq(pst_store_contact_set(st, a, PST_STORE_TIER_KNOWN, "", 3), PST_OK);
    cr_assert_eq(pst_store_contact_get(st, a, &tier, name, sizeof name), PST_OK);
    cr_assert_str_eq(name, "");

    char longname[PST_STORE_PETNAME_MAX + 2];
    memset(longname, 'p', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(pst_store_contact_set(st, a, PST_STORE_TIER_KNOWN, longname, 3), PST_E_TOOBIG);
    longname[PST_STORE_PETNAME_MAX] = '\0';
    cr_assert_eq(pst_store_contact_set(st, a, PST_STORE_TIER_KNOWN, longname, 3), PST_OK);
    cr_assert_eq(pst_store_contact_set(st, a, PST_STORE_TIER_KNOWN, "\x1b]0;x\x07", 3),
                 PST_E_INVAL);
    cr_assert_eq(pst_store_contact_set(st, a, 0, "x", 3), PST_E_INVAL);
    cr_assert_eq(pst_store_contact_set(st, a, 4, "x", 3), PST_E_INVAL);
    cr_assert_eq(pst_store_contact_set(st, a, PST_STORE_TIER_KNOWN, "x", UINT64_MAX), PST_E_RANGE);

    struct collect c = {0};
    cr_assert_eq(pst_store_contact_list(st, collect_contact, &c), PST_OK);
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.pks[0][0], 0xa);
    cr_assert_eq(c.seqs[0], PST_STORE_TIER_KNOWN * 1000 + PST_STORE_PETNAME_MAX);
    cr_assert_eq(c.seqs[1], PST_STORE_TIER_BLOCKED * 1000);

    cr_assert_eq(pst_store_contact_rm(st, a), PST_OK);
    cr_assert_eq(pst_store_contact_rm(st, a), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_contact_get(st, a, &tier, name, sizeof name), PST_E_NOTFOUND);
    pst_store_close(st);
}

/* ---- published ----------------------------------------------------------- */

struct pubs {
    int n;
    int kind[4];
    uint64_t seq[4], published[4];
    size_t len[4];
};

static int collect_pub(const pst_store_published_row *r, void *user) {
    struct pubs *p = user;
    p->kind[p->n] = r->kind;
    p->seq[p->n] = r->seq;
    p->published[p->n] = r->published;
    p->len[p->n] = r->len;
    p->n++;
    return 0;
}

Test(store, published_records) {
    pst_store *st = su_open_mem();
    uint8_t slot[PST_SLOT_BYTES], slot2[PST_SLOT_BYTES], rec[100];
    tu_fill(slot, sizeof slot, 1);
    tu_fill(slot2, sizeof slot2, 2);
    su_rec_of(rec, sizeof rec, 3);
    cr_assert_eq(pst_store_published_put(st, PST_REC_KEY, slot, rec, 80, 3, 100), PST_OK);
    cr_assert_eq(pst_store_published_put(st, PST_REC_ADDRESS_CLAIM, slot2, rec, 50, 1, 100),
                 PST_OK);
    cr_assert_eq(pst_store_published_put(st, PST_REC_KEY, slot, rec, 70, 2, 110), PST_E_STALE);
    cr_assert_eq(pst_store_published_put(st, PST_REC_KEY, slot, rec, 90, 3, 120), PST_OK);
    cr_assert_eq(pst_store_published_put(st, PST_REC_KEY, slot, rec, 100, 4, 130), PST_OK);
    cr_assert_eq(pst_store_published_touch(st, PST_REC_ADDRESS_CLAIM, slot2, 500), PST_OK);
    cr_assert_eq(pst_store_published_touch(st, PST_REC_REVOCATION, slot2, 500), PST_E_NOTFOUND);

    struct pubs p = {0};
    cr_assert_eq(pst_store_published_list(st, collect_pub, &p), PST_OK);
    cr_assert_eq(p.n, 2);
    cr_assert_eq(p.kind[0], PST_REC_KEY);
    cr_assert_eq(p.seq[0], 4);
    cr_assert_eq(p.len[0], 100);
    cr_assert_eq(p.published[0], 130);
    cr_assert_eq(p.kind[1], PST_REC_ADDRESS_CLAIM);
    cr_assert_eq(p.published[1], 500);

    cr_assert_eq(pst_store_published_rm(st, PST_REC_KEY, slot), PST_OK);
    cr_assert_eq(pst_store_published_rm(st, PST_REC_KEY, slot), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_published_put(st, -1, slot, rec, 10, 1, 1), PST_E_INVAL);
    cr_assert_eq(pst_store_published_put(st, 256, slot, rec, 10, 1, 1), PST_E_INVAL);
    cr_assert_eq(pst_store_published_put(st, 1, NULL, rec, 10, 1, 1), PST_E_INVAL);
    cr_assert_eq(pst_store_published_put(st, 1, slot, rec, 0, 1, 1), PST_E_INVAL);
    pst_store_close(st);
}

/* ---- counters ------------------------------------------------------------ */

struct counters {
    int n;
    char names[4][16];
    int64_t values[4];
};

static int collect_counter(const char *name, int64_t value, void *user) {
    struct counters *c = user;
    snprintf(c->names[c->n], sizeof c->names[0], "%s", name);
    c->values[c->n++] = value;
    return 0;
}

Test(store, counters) {
    pst_store *st = su_open_mem();
    int64_t v = 5;
    cr_assert_eq(pst_store_counter_get(st, "rej.stamp", &v), PST_E_NOTFOUND);
    cr_assert_eq(v, 0);
    cr_assert_eq(pst_store_counter_add(st, "rej.stamp", 2), PST_OK);
    cr_assert_eq(pst_store_counter_add(st, "rej.stamp", 40), PST_OK);
    cr_assert_eq(pst_store_counter_add(st, "rej.sig", -3), PST_OK);
    cr_assert_eq(pst_store_counter_get(st, "rej.stamp", &v), PST_OK);
    cr_assert_eq(v, 42);
    cr_assert_eq(pst_store_counter_add(st, "big", INT64_MAX), PST_OK);
    cr_assert_eq(pst_store_counter_add(st, "big", 1), PST_E_RANGE);
    cr_assert_eq(pst_store_counter_get(st, "big", &v), PST_OK);
    cr_assert_eq(v, INT64_MAX, "overflow changes nothing");
    cr_assert_eq(pst_store_counter_add(st, "small", INT64_MIN), PST_OK);
    cr_assert_eq(pst_store_counter_add(st, "small", -1), PST_E_RANGE);
    cr_assert_eq(pst_store_counter_add(st, "small", INT64_MAX), PST_OK);
    cr_assert_eq(pst_store_counter_get(st, "small", &v), PST_OK);
    cr_assert_eq(v, -1);

    struct counters c = {0};
    cr_assert_eq(pst_store_counter_list(st, collect_counter, &c), PST_OK);
    cr_assert_eq(c.n, 4);
    cr_assert_str_eq(c.names[0], "big");
    cr_assert_str_eq(c.names[1], "rej.sig");
    cr_assert_eq(c.values[1], -3);
    cr_assert_str_eq(c.names[2], "rej.stamp");
    cr_assert_eq(pst_store_counter_add(st, "", 1), PST_E_INVAL);
    pst_store_close(st);
}

/* ---- batches and re-entrancy ---------------------------------------------- */

Test(store, batch_commit_rollback, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    int64_t v;
    cr_assert_eq(pst_store_commit(st), PST_E_INVAL);
    cr_assert_eq(pst_store_rollback(st), PST_E_INVAL);
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_begin(st), PST_E_INVAL);
    cr_assert_eq(pst_store_counter_add(st, "a", 1), PST_OK);
    cr_assert_eq(pst_store_counter_add(st, "b", 1), PST_OK);
    cr_assert_eq(pst_store_rollback(st), PST_OK);
    cr_assert_eq(pst_store_counter_get(st, "a", &v), PST_E_NOTFOUND);

    uint8_t pk[32], rec[10];
    su_pk_of(pk, 1);
    su_rec_of(rec, sizeof rec, 1);
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_counter_add(st, "a", 1), PST_OK);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 5, 1, 0, rec, sizeof rec, 1), PST_OK);
    /* A failing unit inside the batch undoes only itself. */
    rec[0] ^= 1;
    cr_assert_eq(pst_store_keyrec_put(st, pk, 5, 1, 0, rec, sizeof rec, 1), PST_E_STALE);
    cr_assert_eq(pst_store_keyrec_put(st, pk, 6, 1, 0, rec, sizeof rec, 1), PST_OK);
    cr_assert_eq(pst_store_counter_add(st, "a", 1), PST_OK);
    cr_assert_eq(pst_store_commit(st), PST_OK);
    cr_assert_eq(pst_store_commit(st), PST_E_INVAL);
    /* A batch left open at close is not committed. */
    cr_assert_eq(pst_store_begin(st), PST_OK);
    cr_assert_eq(pst_store_counter_add(st, "lost", 1), PST_OK);
    pst_store_close(st);

    st = su_open_file();
    cr_assert_eq(pst_store_counter_get(st, "a", &v), PST_OK);
    cr_assert_eq(v, 2);
    cr_assert_eq(pst_store_counter_get(st, "lost", &v), PST_E_NOTFOUND);
    uint64_t seq;
    cr_assert_eq(pst_store_seq_high(st, pk, &seq), PST_OK);
    cr_assert_eq(seq, 6);
    pst_store_close(st);
}

/* Writes from inside a list callback (the node re-puts while listing). */
static int write_back(const pst_store_revocation_row *r, void *user) {
    pst_store *st = user;
    uint8_t pk[32];
    memcpy(pk, r->pk, 32);
    pk[0] ^= 0x80;
    int rc = pst_store_keyrec_put(st, pk, 1, 1, 0, r->bytes, r->len, 1);
    cr_assert_eq(rc, PST_OK, "%s: %s", pst_err_name(rc), pst_store_last_error(st));
    cr_assert_eq(pst_store_revocation_put(st, r->pk, r->bytes, r->len, 1, 1), PST_OK);
    cr_assert_eq(pst_store_is_revoked(st, r->pk), 1);
    return pst_store_counter_add(st, "walked", 1);
}

Test(store, list_callback_may_write, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    uint8_t rec[16];
    su_rec_of(rec, sizeof rec, 7);
    for (uint32_t i = 0; i < 5; i++) {
        uint8_t pk[32];
        su_pk_of(pk, i);
        pk[0] &= 0x7f;
        cr_assert_eq(pst_store_revocation_put(st, pk, rec, sizeof rec, 1, 1), PST_OK);
    }
    cr_assert_eq(pst_store_revocation_list(st, write_back, st), PST_OK);
    int64_t v;
    cr_assert_eq(pst_store_counter_get(st, "walked", &v), PST_OK);
    cr_assert_eq(v, 5);
    struct collect c = {0};
    cr_assert_eq(pst_store_keyrec_list(st, collect_key, &c), PST_OK);
    cr_assert_eq(c.n, 5);
    pst_store_close(st);
}

/* A walk's statement is cached (issue 14: preparing it cost more than a
 * short walk); a row callback that walks the same list again gets a
 * statement of its own, and both walks see every row. */
struct nested {
    pst_store *st;
    const char *addr;
    int outer, inner;
};

static int count_inner(const pst_store_addrclaim_row *r, void *user) {
    (void)r;
    ((struct nested *)user)->inner++;
    return 0;
}

static int walk_again(const pst_store_addrclaim_row *r, void *user) {
    (void)r;
    struct nested *w = user;
    w->outer++;
    cr_assert_eq(pst_store_addrclaim_list(w->st, w->addr, count_inner, w), PST_OK);
    return 0;
}

Test(store, walk_inside_the_same_walk) {
    pst_store *st = su_open_mem();
    uint8_t rec[40];
    su_rec_of(rec, sizeof rec, 1);
    const char *addr = "alice@example.org";
    for (uint8_t i = 1; i <= 3; i++) {
        uint8_t pk[32];
        memset(pk, i, 32);
        cr_assert_eq(pst_store_addrclaim_put(st, addr, pk, 1, 0, rec, sizeof rec), PST_OK);
    }
    for (int round = 0; round < 3; round++) { /* the cached statement again */
        struct nested w = {st, addr, 0, 0};
        cr_assert_eq(pst_store_addrclaim_list(st, addr, walk_again, &w), PST_OK);
        cr_assert_eq(w.outer, 3);
        cr_assert_eq(w.inner, 9);
    }
    struct collect c = {0};
    cr_assert_eq(pst_store_addrclaim_list(st, "bob@example.org", collect_claim, &c), PST_OK);
    cr_assert_eq(c.n, 0, "the cached statement's binding does not stick");
    cr_assert_eq(pst_store_addrclaim_list(st, addr, collect_claim, &c), PST_OK);
    cr_assert_eq(c.n, 3);
    pst_store_close(st);
}

/* Two handles on one file: the batch of one is invisible to the other until
 * commit, and the other's write waits for it (busy timeout), not fails. */
Test(store, two_handles_see_commits, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *a = su_open_file(), *b = su_open_file();
    int64_t v;
    cr_assert_eq(pst_store_begin(a), PST_OK);
    cr_assert_eq(pst_store_counter_add(a, "x", 1), PST_OK);
    cr_assert_eq(pst_store_counter_get(b, "x", &v), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_commit(a), PST_OK);
    cr_assert_eq(pst_store_counter_get(b, "x", &v), PST_OK);
    cr_assert_eq(v, 1);
    cr_assert_eq(pst_store_counter_add(b, "x", 1), PST_OK);
    cr_assert_eq(pst_store_counter_get(a, "x", &v), PST_OK);
    cr_assert_eq(v, 2);
    pst_store_close(b);
    pst_store_close(a);
}

static int collect_emails(const char *email, void *user) {
    char *out = user;
    strcat(out, email);
    strcat(out, ",");
    return 0;
}

/* Contacts' email addresses (migration 6): one contact per address, lower
 * case, a cap per contact, gone with the contact, kept across a reopen. */
Test(store, contact_emails, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    pst_store *st = su_open_file();
    uint8_t a[32], b[32], got[32];
    memset(a, 1, sizeof a);
    memset(b, 2, sizeof b);
    pst_store_tier tier;
    cr_assert_eq(pst_store_contact_email_add(st, a, "x@y.example"), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_contact_set(st, a, PST_STORE_TIER_TRUSTED, NULL, 1000), PST_OK);
    cr_assert_eq(pst_store_contact_set(st, b, PST_STORE_TIER_KNOWN, NULL, 1000), PST_OK);
    cr_assert_eq(pst_store_contact_email_add(st, a, "Alice@Y.example"), PST_OK);
    cr_assert_eq(pst_store_contact_email_add(st, a, "alice@y.EXAMPLE"), PST_OK, "again: ok");
    cr_assert_eq(pst_store_contact_email_add(st, b, "ALICE@y.example"), PST_E_EXISTS);
    cr_assert_eq(pst_store_contact_email_add(st, b, "no at sign"), PST_E_INVAL);
    cr_assert_eq(pst_store_contact_by_email(st, "alice@Y.EXAMPLE", got, &tier), PST_OK);
    cr_assert(memcmp(got, a, 32) == 0 && tier == PST_STORE_TIER_TRUSTED);
    cr_assert_eq(pst_store_contact_by_email(st, "bob@y.example", got, &tier), PST_E_NOTFOUND);
    cr_assert(tier == 0 && got[0] == 0);
    char buf[64];
    for (unsigned i = 0; i < PST_STORE_CONTACT_EMAILS_MAX; i++) {
        snprintf(buf, sizeof buf, "b%u@b.example", i);
        cr_assert_eq(pst_store_contact_email_add(st, b, buf), PST_OK);
    }
    cr_assert_eq(pst_store_contact_email_add(st, b, "one-more@b.example"), PST_E_TOOBIG);
    cr_assert_eq(pst_store_contact_email_rm(st, b, "b0@b.example"), PST_OK);
    cr_assert_eq(pst_store_contact_email_rm(st, b, "b0@b.example"), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_contact_email_rm(st, a, "b1@b.example"), PST_E_NOTFOUND, "not a's");
    pst_store_close(st);
    st = su_open_file();
    char list[2048] = "";
    cr_assert_eq(pst_store_contact_emails(st, a, collect_emails, list), PST_OK);
    cr_assert_str_eq(list, "alice@y.example,");
    cr_assert_eq(pst_store_contact_rm(st, a), PST_OK);
    cr_assert_eq(pst_store_contact_by_email(st, "alice@y.example", got, &tier), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_contact_email_add(st, b, "alice@y.example"), PST_OK,
                 "freed with its contact");
    cr_assert_eq(pst_store_check(st), PST_OK);
    pst_store_close(st);
}

/* Device lists (issue 13): the highest seq wins, across a reopen; an older
 * or forked list is refused; names of devices are remembered. */
Test(store, devlist_seq_rule, .init = su_tmp_setup, .fini = su_tmp_teardown) {
    uint8_t id[32], dev[32], a[64], b[64], c[64], buf[128];
    size_t len;
    uint64_t seq;
    su_pk_of(id, 7);
    su_pk_of(dev, 8);
    su_rec_of(a, sizeof a, 1);
    su_rec_of(b, sizeof b, 2);
    su_rec_of(c, sizeof c, 3);
    pst_store *st = su_open_file();
    cr_assert_eq(pst_store_devlist_get(st, id, buf, sizeof buf, &len, &seq), PST_E_NOTFOUND);
    cr_assert_eq(pst_store_devlist_put(st, id, 2, a, sizeof a, 10), PST_OK);
    cr_assert_eq(pst_store_devlist_put(st, id, 2, a, sizeof a, 11), PST_OK, "same list again");
    cr_assert_eq(pst_store_devlist_put(st, id, 2, b, sizeof b, 11), PST_E_STALE, "fork");
    cr_assert_eq(pst_store_devlist_put(st, id, 1, b, sizeof b, 11), PST_E_STALE, "replay");
    cr_assert_eq(pst_store_devlist_put(st, id, 5, b, sizeof b, 12), PST_OK);
    cr_assert_eq(pst_store_device_seen_put(st, id, dev, "laptop", 99), PST_OK);
    pst_store_close(st);
    st = su_open_file();
    cr_assert_eq(pst_store_devlist_put(st, id, 4, c, sizeof c, 13), PST_E_STALE);
    cr_assert_eq(pst_store_devlist_get(st, id, buf, sizeof buf, &len, &seq), PST_OK);
    cr_assert_eq(seq, 5);
    cr_assert_eq(len, sizeof b);
    cr_assert_arr_eq(buf, b, sizeof b);
    cr_assert_eq(pst_store_devlist_get(st, id, buf, 10, &len, &seq), PST_E_NOSPACE);
    char name[65];
    uint64_t created;
    cr_assert_eq(pst_store_device_seen_get(st, id, dev, name, sizeof name, &created), PST_OK);
    cr_assert_str_eq(name, "laptop");
    cr_assert_eq(created, 99);
    cr_assert_eq(pst_store_device_seen_get(st, dev, id, name, sizeof name, &created),
                 PST_E_NOTFOUND);
    cr_assert_eq(pst_store_device_seen_put(st, id, dev, "bad\nname", 1), PST_E_INVAL);
    pst_store_close(st);
}
