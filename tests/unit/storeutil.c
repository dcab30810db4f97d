#include "storeutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

char su_tmp_dir[64];
char su_db_path[128];

void su_tmp_setup(void) {
    snprintf(su_tmp_dir, sizeof su_tmp_dir, "/tmp/pst_store_XXXXXX");
    cr_assert_not_null(mkdtemp(su_tmp_dir));
    snprintf(su_db_path, sizeof su_db_path, "%s/store.db", su_tmp_dir);
}

void su_tmp_teardown(void) {
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal", ".x"};
    char p[160];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", su_db_path, suffix[i]);
        unlink(p);
    }
    rmdir(su_tmp_dir);
}

pst_store *su_open_mem(void) {
    pst_store *st = NULL;
    cr_assert_eq(pst_store_open(&st, ":memory:"), PST_OK);
    cr_assert_not_null(st);
    return st;
}

pst_store *su_open_file(void) {
    pst_store *st = NULL;
    char err[PST_STORE_ERR_MAX];
    int rc = pst_store_open_ex(&st, su_db_path, err, sizeof err);
    cr_assert_eq(rc, PST_OK, "open: %s (%s)", pst_err_name(rc), err);
    return st;
}

void su_pk_of(uint8_t pk[32], uint32_t seed) { tu_fill(pk, 32, seed); }

void su_rec_of(uint8_t *buf, size_t len, uint32_t seed) { tu_fill(buf, len, seed); }
