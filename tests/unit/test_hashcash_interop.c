/* Interoperability with the classic hashcash tool (Debian package
 * `hashcash`): its stamps verify here, ours verify there. The tool is a hard
 * requirement of the test suite, never a reason to skip. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pst_mint.h"
#include "testutil.h"

#define HASHCASH_BIN "/usr/bin/hashcash"
#define RES64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define EXT_PN "pn1=00112233445566778899aabbccddeeff"

static char db_dir[64];
static char db_path[128];

static void setup(void) {
    if (access(HASHCASH_BIN, X_OK) != 0)
        cr_assert_fail(HASHCASH_BIN " is missing: install the Debian package 'hashcash' "
                                    "(apt-get install hashcash; the project's scripts install it)");
    snprintf(db_dir, sizeof db_dir, "/tmp/pst-hc-XXXXXX");
    cr_assert_not_null(mkdtemp(db_dir));
    snprintf(db_path, sizeof db_path, "%s/spent.sdb", db_dir);
}

static void teardown(void) {
    if (db_path[0] != '\0')
        unlink(db_path);
    if (db_dir[0] != '\0')
        rmdir(db_dir);
}

TestSuite(hashcash_interop, .init = setup, .fini = teardown);

/* Runs cmd (arguments are our own safe strings) and returns its exit
 * status; its first output line goes to line. */
static int run(const char *cmd, char *line, size_t cap) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    line[0] = '\0';
    char buf[512];
    bool first = true;
    while (fgets(buf, sizeof buf, p) != NULL) {
        if (first) {
            snprintf(line, cap, "%s", buf);
            line[strcspn(line, "\r\n")] = '\0';
            first = false;
        }
    }
    int st = pclose(p);
    cr_assert(WIFEXITED(st), "%s did not exit normally", cmd);
    return WEXITSTATUS(st);
}

static void classic_mint(unsigned bits, int width, const char *ext, const char *res, char *out,
                         size_t cap) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, HASHCASH_BIN " -mq -b %u -z %d %s%s%s '%s' 2>/dev/null", bits, width,
             ext ? "-x '" : "", ext ? ext : "", ext ? "'" : "", res);
    cr_assert_eq(run(cmd, out, cap), 0, "classic mint failed: %s", cmd);
}

/* Full check by the classic tool: bits, resource, date (28 days default
 * expiry, 2 days grace) and the double-spend database in our temp dir. */
static int classic_check(unsigned bits, const char *res, const char *stamp) {
    char cmd[768], line[512];
    snprintf(cmd, sizeof cmd, HASHCASH_BIN " -cq -d -f '%s' -b %u -r '%s' '%s' 2>&1", db_path, bits,
             res, stamp);
    return run(cmd, line, sizeof line);
}

Test(hashcash_interop, classic_stamps_verify_here) {
    static const struct {
        unsigned bits;
        int width;
        const char *res, *ext;
    } cases[] = {
        {16, 6, "foo", NULL},
        {18, 10, "foo", NULL},
        {20, 12, "foo", NULL},
        {16, 6, "foo", "a=b;c=d"},
        {16, 12, RES64, EXT_PN},
        {18, 10, RES64, EXT_PN},
        {17, 12, "alice@example.org", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char stamp[512];
        classic_mint(cases[i].bits, cases[i].width, cases[i].ext, cases[i].res, stamp,
                     sizeof stamp);
        uint64_t now = (uint64_t)time(NULL);
        pst_hashcash_fields f;
        cr_assert_eq(pst_hashcash_parse(stamp, strlen(stamp), &f), PST_OK, "%s", stamp);
        cr_assert_eq(strlen(f.date_str), (size_t)cases[i].width);
        cr_assert_str_eq(f.ext, cases[i].ext ? cases[i].ext : "");
        pst_hashcash_policy pol;
        pst_hashcash_policy_init(&pol, cases[i].bits, cases[i].res);
        pol.ext = cases[i].ext ? cases[i].ext : "";
        pst_hashcash_result r;
        cr_assert_eq(pst_hashcash_verify(stamp, strlen(stamp), &pol, now, &r), PST_OK,
                     "classic stamp %s rejected", stamp);
        cr_assert_eq(r.bits, cases[i].bits);
        cr_assert_leq(r.date, now);
        /* and the usual rejections still apply to them */
        pol.min_bits = cases[i].bits + 1;
        cr_assert_eq(pst_hashcash_verify(stamp, strlen(stamp), &pol, now, &r), PST_E_STAMP_BITS);
        pol.min_bits = cases[i].bits;
        pol.resource = "someone-else";
        cr_assert_eq(pst_hashcash_verify(stamp, strlen(stamp), &pol, now, &r),
                     PST_E_STAMP_RESOURCE);
    }
}

static void our_mint(unsigned bits, unsigned threads, const char *res, const char *ext,
                     uint32_t seed, char *out, size_t cap) {
    pst_hashcash_mint_params p;
    memset(&p, 0, sizeof p);
    p.bits = bits;
    p.resource = res;
    p.ext = ext;
    p.now = (uint64_t)time(NULL);
    p.threads = threads;
    tu_fill(p.rand, sizeof p.rand, seed);
    cr_assert_eq(pst_hashcash_mint(&p, out, cap), PST_OK);
}

Test(hashcash_interop, our_stamps_verify_in_classic) {
    static const struct {
        unsigned bits, threads;
        const char *res, *ext;
    } cases[] = {
        {16, 1, "foo", NULL},
        {20, 2, "foo", NULL},
        {16, 2, RES64, EXT_PN},
        {20, 4, RES64, EXT_PN},
        {18, 2, "alice@example.org", "a=b;c=d"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char stamp[PST_HASHCASH_STAMP_MAX + 1];
        our_mint(cases[i].bits, cases[i].threads, cases[i].res, cases[i].ext, (uint32_t)i + 1,
                 stamp, sizeof stamp);
        cr_assert_eq(classic_check(cases[i].bits, cases[i].res, stamp), 0,
                     "classic hashcash rejected our stamp %s", stamp);
        /* The same stamp again is a double spend: proves the check above was
         * a full one, database included. */
        cr_assert_neq(classic_check(cases[i].bits, cases[i].res, stamp), 0,
                      "classic hashcash accepted a double spend of %s", stamp);
    }
}

Test(hashcash_interop, classic_rejects_bad_stamps_of_ours) {
    char stamp[PST_HASHCASH_STAMP_MAX + 1];
    our_mint(16, 2, RES64, EXT_PN, 77, stamp, sizeof stamp);
    cr_assert_neq(classic_check(16,
                                "0000000000000000000000000000000000000000000000000000000000000000",
                                stamp),
                  0);
    pst_hashcash_fields f;
    cr_assert_eq(pst_hashcash_parse(stamp, strlen(stamp), &f), PST_OK);
    if (pst_hashcash_count_bits(stamp, strlen(stamp)) < 24)
        cr_assert_neq(classic_check(24, RES64, stamp), 0);
    /* a changed counter character is a different (unpaid) stamp for both */
    size_t n = strlen(stamp);
    stamp[n - 1] = stamp[n - 1] == 'A' ? 'B' : 'A';
    if (pst_hashcash_count_bits(stamp, n) < 16) {
        cr_assert_neq(classic_check(16, RES64, stamp), 0);
        pst_hashcash_policy pol;
        pst_hashcash_policy_init(&pol, 16, RES64);
        cr_assert_eq(pst_hashcash_verify(stamp, n, &pol, (uint64_t)time(NULL), NULL),
                     PST_E_STAMP_BITS);
    }
}

Test(hashcash_interop, bit_counts_agree) {
    /* `hashcash -w` prints the claimed bits when the SHA-1 has at least that
     * many leading zero bits, else 0: a cross-check of our bit counting on
     * stamps that pass and stamps that fail. */
    unsigned passed = 0, failed = 0;
    for (unsigned i = 0; i < 48; i++) {
        unsigned claim = 1 + i % 6;
        char stamp[128], cmd[256], line[128];
        snprintf(stamp, sizeof stamp, "1:%u:261128213456:foo::c29tZXJhbmQ:%u", claim, i);
        snprintf(cmd, sizeof cmd, HASHCASH_BIN " -wq '%s' 2>/dev/null", stamp);
        run(cmd, line, sizeof line);
        unsigned have = pst_hashcash_count_bits(stamp, strlen(stamp));
        unsigned want = have >= claim ? claim : 0;
        cr_assert_eq((unsigned)strtoul(line, NULL, 10), want, "%s: tool says %s, we count %u",
                     stamp, line, have);
        if (want)
            passed++;
        else
            failed++;
    }
    cr_assert(passed > 0 && failed > 0);
}
