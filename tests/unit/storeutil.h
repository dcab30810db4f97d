/* Helpers shared by the store's unit tests (test_store.c, test_store_mail.c). */
#ifndef PST_STOREUTIL_H
#define PST_STOREUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "pst_store.h"

/* A fresh directory per test (Criterion .init/.fini); the database file is
 * su_db_path, removed with its -wal/-shm/-journal companions by teardown. */
extern char su_tmp_dir[64];
extern char su_db_path[128];
void su_tmp_setup(void);
void su_tmp_teardown(void);

/* An in-memory store, or one on su_db_path; the test fails if it cannot open. */
pst_store *su_open_mem(void);
pst_store *su_open_file(void);

/* Deterministic fake keys and records: the store treats records as opaque. */
void su_pk_of(uint8_t pk[32], uint32_t seed);
void su_rec_of(uint8_t *buf, size_t len, uint32_t seed);

#endif
