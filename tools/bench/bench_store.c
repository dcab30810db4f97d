/* bench_store: what a year of mail leaves in the store, and what the inbox
 * purge takes back. Through the real store API (no SQL of its own): N
 * notifications (450 bytes, the size of a real sealed one with a stamp) are
 * accepted, delivered and acknowledged, spread over a year, 7 days of
 * validity each; then the purge runs as the node runs it (batches of
 * 1,024 rows, cutoff = now - 3,600 s, the notifications' clock tolerance)
 * after the last replay window ended. Then a second year goes through the
 * same store, to show that freed pages are reused rather than the file
 * growing. Prints database and WAL sizes and the time per purge batch. A
 * benchmark run by hand, never a timed test:
 *
 *   build/tools/bench/bench_store [N] [DIR]
 *
 * N defaults to 100,000; DIR (default: a fresh directory under /tmp,
 * removed afterwards) must not hold a database yet. Deliveries are committed
 * 500 messages per transaction (the node commits each message alone; the
 * batching only spares this benchmark 300,000 fsyncs and changes neither
 * the rows nor the page counts). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "pst_store.h"

#define DAY 86400u
#define YEAR (365u * DAY)
#define LIFETIME (7u * DAY) /* PST_DEFAULT_MESSAGE_LIFETIME_S */
#define GRACE 3600u         /* PST_INBOX_PURGE_GRACE_S (= PST_NOTIFY_SKEW_MAX) */
#define BATCH 1024u         /* PST_INBOX_PURGE_BATCH */
#define TX_MESSAGES 500u
#define NOTIF_BYTES 450u
#define SENDERS 200u
#define T0 1767225600u /* 2026-01-01 */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double file_mb(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size / 1048576.0 : 0.0;
}

static char db_path[PATH_MAX], wal_path[PATH_MAX + 8];

/* Prints the sizes, then closes and reopens the store: the close
 * checkpoints the WAL into the file, so "file MB" is what the data takes on
 * disk, "WAL MB" what the WAL had grown to before. */
static int row_sizes(pst_store **st, const char *what, unsigned rows) {
    pst_store_info info;
    if (pst_store_info_get(*st, &info) != PST_OK) {
        fprintf(stderr, "bench_store: %s\n", pst_store_last_error(*st));
        return -1;
    }
    double used = (double)(info.page_count - info.freelist_count) * info.page_size / 1048576.0;
    double wal = file_mb(wal_path);
    pst_store_close(*st);
    *st = NULL;
    double file = file_mb(db_path);
    if (pst_store_open(st, db_path) != PST_OK) {
        fprintf(stderr, "bench_store: cannot reopen %s\n", db_path);
        return -1;
    }
    printf("| %-34s | %7u | %8.1f | %8.1f | %6.1f | %9.0f |\n", what, rows, file, used, wal,
           rows ? used * 1048576.0 / rows : 0.0);
    return 0;
}

static void size_header(void) {
    printf("| %-34s | %7s | %8s | %8s | %6s | %9s |\n", "after", "rows", "file MB", "used MB",
           "WAL MB", "bytes/row");
    printf("|------------------------------------|---------|----------|----------|--------|"
           "-----------|\n");
}

static void purge_header(void) {
    printf("| %-34s | %7s | %7s | %8s | %8s | %8s |\n", "purge", "rows", "batches", "ms/batch",
           "max ms", "total ms");
    printf("|------------------------------------|---------|---------|----------|----------|"
           "----------|\n");
}

static int count_row(const pst_store_inbox_row *row, void *user) {
    (void)row;
    (*(unsigned *)user)++;
    return 0;
}

static unsigned count_rows(pst_store *st) {
    unsigned n = 0;
    (void)pst_store_inbox_list(st, 0, count_row, &n);
    return n;
}

/* N messages received evenly over [start, start + span), each delivered and
 * its receipt acknowledged a few seconds later; one in 100 given up. */
static int mail_over(pst_store *st, unsigned n, uint64_t start, uint64_t span, uint32_t seed) {
    uint8_t id[PST_STORE_MSGID_BYTES], sender[32], notif[NOTIF_BYTES];
    char name[80];
    for (unsigned i = 0; i < n; i++) {
        if (i % TX_MESSAGES == 0 && pst_store_begin(st) != PST_OK)
            return -1;
        uint64_t t = start + (uint64_t)i * span / n;
        randombytes_buf(id, sizeof id);
        memset(sender, 0, sizeof sender);
        uint32_t s = (seed + i * 2654435761u) % SENDERS;
        memcpy(sender, &s, sizeof s);
        randombytes_buf(notif, sizeof notif); /* sealed: incompressible */
        int rc = pst_store_inbox_add(st, id, sender, notif, sizeof notif, t + LIFETIME, t);
        if (rc == PST_OK)
            rc = pst_store_inbox_attempt(st, id, t + 1);
        if (rc == PST_OK && i % 100 == 99) {
            rc = pst_store_inbox_fail(st, id, t + 2);
        } else if (rc == PST_OK) {
            char hex[2 * PST_STORE_MSGID_BYTES + 1];
            sodium_bin2hex(hex, sizeof hex, id, sizeof id);
            snprintf(name, sizeof name, "%s.postern", hex);
            rc = pst_store_inbox_delivered(st, id, i % 5 == 0 ? ".Known" : "", name,
                                           2048 + randombytes_uniform(60000), t + 2);
            if (rc == PST_OK)
                rc = pst_store_inbox_receipt_sent(st, id, t + 3);
        }
        if (rc != PST_OK) {
            fprintf(stderr, "bench_store: message %u: %s (%s)\n", i, pst_strerror(rc),
                    pst_store_last_error(st));
            (void)pst_store_rollback(st);
            return -1;
        }
        if ((i % TX_MESSAGES == TX_MESSAGES - 1 || i == n - 1) && pst_store_commit(st) != PST_OK)
            return -1;
    }
    return 0;
}

/* The node's purge, batch after batch, at `now`. */
static int purge_all(pst_store *st, uint64_t now, const char *label) {
    unsigned batches = 0, total = 0, purged = 0;
    double worst = 0, sum = 0;
    do {
        double t = now_ms();
        int rc = pst_store_inbox_purge(st, now - GRACE, BATCH, NULL, NULL, &purged);
        double ms = now_ms() - t;
        if (rc != PST_OK) {
            fprintf(stderr, "bench_store: purge: %s\n", pst_store_last_error(st));
            return -1;
        }
        if (purged == 0)
            break;
        batches++;
        total += purged;
        sum += ms;
        worst = ms > worst ? ms : worst;
    } while (purged == BATCH);
    printf("| %-34s | %7u | %7u | %8.2f | %8.2f | %8.0f |\n", label, total, batches,
           batches ? sum / batches : 0.0, worst, sum);
    return 0;
}

int main(int argc, char **argv) {
    unsigned n = 100000;
    char dir[PATH_MAX] = "/tmp/postern-bench-store-XXXXXX";
    bool own_dir = true;
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: bench_store [N] [DIR]\n\nN deliveries (default 100000) a year, the\n"
               "inbox purge after the replay window, a second year; prints store sizes\n"
               "and purge times.\n");
        return 0;
    }
    if (argc > 1) {
        char *end;
        unsigned long v = strtoul(argv[1], &end, 10);
        if (*end != '\0' || v == 0 || v > 10000000) {
            fprintf(stderr, "bench_store: N must be 1..10000000\n");
            return 64;
        }
        n = (unsigned)v;
    }
    if (argc > 2) {
        snprintf(dir, sizeof dir, "%s", argv[2]);
        own_dir = false;
    } else if (mkdtemp(dir) == NULL) {
        perror("bench_store: mkdtemp");
        return 1;
    }
    if (sodium_init() < 0)
        return 1;
    snprintf(db_path, sizeof db_path, "%s/bench.db", dir);
    snprintf(wal_path, sizeof wal_path, "%s-wal", db_path);
    pst_store *st = NULL;
    if (pst_store_open(&st, db_path) != PST_OK) {
        fprintf(stderr, "bench_store: cannot open %s\n", db_path);
        return 1;
    }
    int rc = 0;
    printf("inbox store, %u deliveries a year (%u-byte notifications, 1%% given up)\n\n", n,
           NOTIF_BYTES);
    size_header();
    double t = now_ms();
    if (mail_over(st, n, T0, YEAR, 1) != 0)
        rc = 1;
    double ins_ms = now_ms() - t;
    uint64_t end1 = T0 + YEAR + LIFETIME + GRACE + 1; /* every replay window over */
    char purge1[80], purge2[80];
    if (rc == 0) {
        rc = row_sizes(&st, "year 1 delivered", count_rows(st)) != 0;
        printf("\n");
        purge_header();
        snprintf(purge1, sizeof purge1, "year 1, after its last window");
        if (rc == 0)
            rc = purge_all(st, end1, purge1) != 0;
    }
    if (rc == 0) {
        snprintf(purge2, sizeof purge2, "again (nothing left to do)");
        rc = purge_all(st, end1, purge2) != 0;
    }
    if (rc == 0) {
        printf("\n");
        size_header();
        rc = row_sizes(&st, "year 1 purged", count_rows(st)) != 0;
        /* year 2, purged as the node does it: every poll, rows past their
         * window; here once a week of simulated time */
        uint64_t start2 = T0 + YEAR + 2 * LIFETIME;
        unsigned weeks = 52, per = n / weeks, done = 0;
        for (unsigned w = 0; rc == 0 && w < weeks; w++) {
            unsigned k = w == weeks - 1 ? n - done : per;
            rc = mail_over(st, k, start2 + (uint64_t)w * 7 * DAY, 7 * DAY, 7 + w) != 0;
            done += k;
            unsigned purged;
            uint64_t week_end = start2 + (uint64_t)(w + 1) * 7 * DAY;
            while (rc == 0 &&
                   pst_store_inbox_purge(st, week_end - GRACE, BATCH, NULL, NULL, &purged) ==
                       PST_OK &&
                   purged == BATCH)
                ;
        }
        if (rc == 0)
            rc = row_sizes(&st, "year 2 delivered, purged weekly", count_rows(st)) != 0;
        if (rc == 0) {
            printf("\n");
            purge_header();
            rc = purge_all(st, start2 + 2 * YEAR, "year 2, after its last window") != 0;
        }
        if (rc == 0) {
            printf("\n");
            size_header();
        }
        if (rc == 0)
            rc = row_sizes(&st, "year 2 purged", count_rows(st)) != 0;
    }
    if (st == NULL)
        return 1;
    if (rc == 0 && pst_store_check(st) != PST_OK)
        rc = 1;
    printf("\nyear 1 inserted in %.1f s (%u messages per transaction)\n", ins_ms / 1e3,
           TX_MESSAGES);
    pst_store_close(st);
    if (own_dir) {
        char p[PATH_MAX + 16];
        const char *suffix[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s%s", db_path, suffix[i]);
            (void)unlink(p);
        }
        (void)rmdir(dir);
    }
    return rc;
}
