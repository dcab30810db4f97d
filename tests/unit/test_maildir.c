#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "pst_maildir.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------- */

static char tmp_dir[64];
static char root[128];

static void setup(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/pst_maildir_XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
    snprintf(root, sizeof root, "%s/home/Maildir", tmp_dir);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void) { nftw(tmp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void make_root(void) {
    char err[256] = "";
    cr_assert_eq(pst_maildir_create(root, "", err, sizeof err), PST_OK, "%s", err);
}

static void path_of(char *out, size_t cap, const char *folder, const char *sub, const char *name) {
    snprintf(out, cap, "%s%s%s/%s%s%s", root, folder[0] ? "/" : "", folder, sub, name ? "/" : "",
             name ? name : "");
}

/* Number of entries (without . and ..) in FOLDER/SUB. */
static int count_files(const char *folder, const char *sub) {
    char p[256];
    path_of(p, sizeof p, folder, sub, NULL);
    DIR *d = opendir(p);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void base_of(uint8_t seed, char base[PST_MAILDIR_BASE_BUFSIZE]) {
    uint8_t id[PST_HASH_BYTES];
    memset(id, seed, sizeof id);
    pst_maildir_base_name(id, base);
}

static int deliver(const char *folder, const char *base, const char *text, pst_maildir_loc *loc) {
    pst_maildir_writer w;
    int rc = pst_maildir_open(&w, root, folder, base);
    if (rc != PST_OK)
        return rc;
    rc = pst_maildir_write(&w, text, strlen(text));
    cr_assert_eq(rc, PST_OK);
    return pst_maildir_commit(&w, loc);
}

static mode_t mode_of(const char *path) {
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "%s", path);
    return sb.st_mode & 07777;
}

TestSuite(maildir, .init = setup, .fini = teardown);

/* ---- folders ------------------------------------------------------------- */

Test(maildir, create_makes_private_dirs) {
    make_root();
    const char *subs[] = {"tmp", "new", "cur"};
    for (int i = 0; i < 3; i++) {
        char p[256];
        path_of(p, sizeof p, "", subs[i], NULL);
        cr_assert_eq(mode_of(p), 0700, "%s", p);
    }
    cr_assert_eq(mode_of(root), 0700);
    /* idempotent */
    make_root();
}

Test(maildir, folder_names) {
    const char *good[] = {"", ".Known", ".Unknown", ".a.b", ".a-b_c9", ".Lists.postern-dev"};
    const char *bad[] = {"Known", ".",  "..",      ".a..b", ".a.",  "./x", ".a/b",
                         ".a b",  ".ä", "..Known", "/etc",  ".a:b", ".\n"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert(pst_maildir_folder_valid(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(pst_maildir_folder_valid(bad[i]), "%s", bad[i]);
    cr_assert_not(pst_maildir_folder_valid(NULL));
    char longname[PST_MAILDIR_FOLDER_MAX + 2];
    memset(longname, 'a', sizeof longname);
    longname[0] = '.';
    longname[PST_MAILDIR_FOLDER_MAX] = '\0'; /* 64 bytes: the most */
    cr_assert(pst_maildir_folder_valid(longname));
    longname[PST_MAILDIR_FOLDER_MAX] = 'a';
    longname[PST_MAILDIR_FOLDER_MAX + 1] = '\0';
    cr_assert_not(pst_maildir_folder_valid(longname));
}

Test(maildir, create_folder) {
    make_root();
    char err[256] = "";
    cr_assert_eq(pst_maildir_create(root, ".Known", err, sizeof err), PST_OK, "%s", err);
    char p[256];
    path_of(p, sizeof p, ".Known", "new", NULL);
    cr_assert_eq(mode_of(p), 0700);
    snprintf(p, sizeof p, "%s/.Known/maildirfolder", root);
    cr_assert_eq(mode_of(p), 0600);
    cr_assert_eq(pst_maildir_create(root, "../escape", err, sizeof err), PST_E_INVAL);
    cr_assert_eq(pst_maildir_create(root, "Known", err, sizeof err), PST_E_INVAL);
    char out[64];
    cr_assert_eq(pst_maildir_folder_path(root, ".x/..", out, sizeof out), PST_E_INVAL);
    /* the INBOX has no maildirfolder marker */
    snprintf(p, sizeof p, "%s/maildirfolder", root);
    cr_assert_neq(access(p, F_OK), 0);
}

Test(maildir, create_reports_failure) {
    char err[256] = "";
    char file[128];
    snprintf(file, sizeof file, "%s/plainfile", tmp_dir);
    write_file(file, "x");
    snprintf(root, sizeof root, "%s/plainfile/Maildir", tmp_dir);
    cr_assert_eq(pst_maildir_create(root, "", err, sizeof err), PST_E_IO);
    cr_assert(strstr(err, "cannot create") != NULL, "%s", err);
}

/* ---- names --------------------------------------------------------------- */

Test(maildir, base_names_are_deterministic) {
    char a[PST_MAILDIR_BASE_BUFSIZE], b[PST_MAILDIR_BASE_BUFSIZE], c[PST_MAILDIR_BASE_BUFSIZE];
    base_of(0xab, a);
    base_of(0xab, b);
    base_of(0xac, c);
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c);
    cr_assert_eq(strlen(a), 64 + strlen(PST_MAILDIR_SUFFIX));
    cr_assert_eq(strncmp(a, "abababab", 8), 0);
    cr_assert_str_eq(a + 64, ".postern");
}

Test(maildir, bad_base_names_rejected) {
    make_root();
    pst_maildir_writer w;
    char longname[PST_MAILDIR_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname);
    longname[PST_MAILDIR_NAME_MAX + 1] = '\0';
    const char *bad[] = {"", ".", "..", "a/b", "a:2,S", "../x", longname};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(pst_maildir_open(&w, root, "", bad[i]), PST_E_INVAL, "%s", bad[i]);
        cr_assert_eq(w.fd, -1);
        pst_maildir_abort(&w); /* harmless on a closed writer */
    }
    cr_assert_eq(pst_maildir_open(&w, root, "Known", "x"), PST_E_INVAL);
    pst_maildir_loc loc;
    cr_assert_eq(pst_maildir_find(root, "", "a/b", &loc), PST_E_INVAL);
    cr_assert_eq(count_files("", "tmp"), 0);
}

/* ---- delivery -------------------------------------------------------------- */

Test(maildir, deliver_tmp_to_new) {
    make_root();
    char base[PST_MAILDIR_BASE_BUFSIZE];
    base_of(1, base);
    pst_maildir_writer w;
    cr_assert_eq(pst_maildir_open(&w, root, "", base), PST_OK);
    cr_assert_eq(count_files("", "tmp"), 1); /* written in tmp/ first */
    cr_assert_eq(count_files("", "new"), 0);
    cr_assert_eq(pst_maildir_write(&w, "Subject: hi\n\n", 13), PST_OK);
    cr_assert_eq(pst_maildir_write(&w, "body\n", 5), PST_OK);
    cr_assert_eq(w.bytes, 18);
    pst_maildir_loc loc;
    cr_assert_eq(pst_maildir_commit(&w, &loc), PST_OK);
    cr_assert_eq(w.fd, -1);
    cr_assert_str_eq(loc.folder, "");
    cr_assert_str_eq(loc.sub, "new");
    cr_assert_str_eq(loc.name, base);
    cr_assert_eq(count_files("", "tmp"), 0);
    cr_assert_eq(count_files("", "new"), 1);
    char p[512];
    cr_assert_eq(pst_maildir_loc_path(root, &loc, p, sizeof p), PST_OK);
    cr_assert_eq(mode_of(p), 0600);
    size_t len;
    uint8_t *data = tu_read_file(p, &len);
    cr_assert_not_null(data);
    cr_assert_eq(len, 18);
    cr_assert_eq(memcmp(data, "Subject: hi\n\nbody\n", 18), 0);
    free(data);
    /* find sees it */
    pst_maildir_loc f;
    cr_assert_eq(pst_maildir_find(root, "", base, &f), PST_OK);
    cr_assert_str_eq(f.sub, "new");
    cr_assert_eq(pst_maildir_find_any(root, base, &f), PST_OK);
}

/* A large message: the body's long runs are written unfiltered from the
 * caller's buffer (pst_hdrfilter_clean_run), short CRLF lines through the
 * filter, with writeback started between pieces; the file holds exactly
 * what the filter alone would have made of it. */
Test(maildir, long_runs_and_writeback_keep_the_bytes) {
    make_root();
    char base[PST_MAILDIR_BASE_BUFSIZE];
    base_of(7, base);
    size_t run = 3 * 8192 + 5, total = 0;
    uint8_t *body = malloc(run);
    cr_assert_not_null(body);
    for (size_t i = 0; i < run; i++)
        body[i] = (uint8_t)('a' + i % 26);
    body[run - 1] = '\n';
    pst_maildir_writer w;
    cr_assert_eq(pst_maildir_open(&w, root, "", base), PST_OK);
    cr_assert_eq(pst_maildir_write_message(&w, "Subject: big\r\n\r\n", 16), PST_OK);
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(pst_maildir_write_message(&w, body, run), PST_OK);
        cr_assert_eq(pst_maildir_write_message(&w, "crlf line\r\n", 11), PST_OK);
        pst_maildir_writeback(&w);
        cr_assert_eq(w.wb_done, w.bytes, "writeback covers what was written");
    }
    total = 14 + 3 * (run + 10);
    pst_maildir_loc loc;
    cr_assert_eq(pst_maildir_commit(&w, &loc), PST_OK);
    char p[512];
    cr_assert_eq(pst_maildir_loc_path(root, &loc, p, sizeof p), PST_OK);
    size_t len;
    uint8_t *data = tu_read_file(p, &len);
    cr_assert_not_null(data);
    cr_assert_eq(len, total);
    cr_assert_eq(memcmp(data, "Subject: big\n\n", 14), 0);
    for (int k = 0; k < 3; k++) {
        const uint8_t *at = data + 14 + (size_t)k * (run + 10);
        cr_assert_eq(memcmp(at, body, run), 0, "run %d", k);
        cr_assert_eq(memcmp(at + run, "crlf line\n", 10), 0, "line %d", k);
    }
    free(data);
    free(body);
}

Test(maildir, duplicate_in_new_detected) {
    make_root();
    char base[PST_MAILDIR_BASE_BUFSIZE];
    base_of(2, base);
    pst_maildir_loc loc;
    cr_assert_eq(deliver("", base, "first\n", &loc), PST_OK);
    cr_assert_eq(deliver("", base, "second\n", &loc), PST_E_EXISTS);
    cr_assert_str_eq(loc.sub, "new");
    cr_assert_str_eq(loc.name, base);
    cr_assert_eq(count_files("", "new"), 1);
    cr_assert_eq(count_files("", "tmp"), 0);
    char p[512];
    path_of(p, sizeof p, "", "new", base);
    size_t len;
    uint8_t *data = tu_read_file(p, &len);
    cr_assert_eq(len, 6); /* the first copy stays */
    free(data);
}

Test(maildir, duplicate_in_cur_with_flags_detected) {
    make_root();
    char base[PST_MAILDIR_BASE_BUFSIZE], from[512], to[512], flagged[300];
    base_of(3, base);
    pst_maildir_loc loc;
    cr_assert_eq(deliver("", base, "x\n", &loc), PST_OK);
    /* a mail client read it */
    snprintf(flagged, sizeof flagged, "%s:2,S", base);
    path_of(from, sizeof from, "", "new", base);
    path_of(to, sizeof to, "", "cur", flagged);
    cr_assert_eq(rename(from, to), 0);
    cr_assert_eq(deliver("", base, "x\n", &loc), PST_E_EXISTS);
    cr_assert_str_eq(loc.sub, "cur");
    cr_assert_str_eq(loc.name, flagged);
    cr_assert_eq(count_files("", "new"), 0);
    cr_assert_eq(count_files("", "cur"), 1);
    cr_assert_eq(count_files("", "tmp"), 0);
}

Test(maildir, names_sharing_a_prefix_do_not_match) {
    make_root();
    char base[PST_MAILDIR_BASE_BUFSIZE], p[512], other[300];
    base_of(4, base);
    snprintf(other, sizeof other, "%s.bak", base);
    path_of(p, sizeof p, "", "cur", other);
    write_file(p, "x");
    snprintf(other, sizeof other, "%.20s", base);
    path_of(p, sizeof p, "", "new", other);
    write_file(p, "x");
    pst_maildir_loc loc;
    cr_assert_eq(pst_maildir_find(root, "", base, &loc), PST_E_NOTFOUND);
    cr_assert_eq(pst_maildir_find_any(root, base, &loc), PST_E_NOTFOUND);
    cr_assert_eq(deliver("", base, "x\n", &loc), PST_OK);
}

Test(maildir, duplicate_in_another_folder_detected) {
    make_root();
    char err[256], base[PST_MAILDIR_BASE_BUFSIZE];
    cr_assert_eq(pst_maildir_create(root, ".Known", err, sizeof err), PST_OK);
    base_of(5, base);
    pst_maildir_loc loc;
    cr_assert_eq(deliver(".Known", base, "x\n", &loc), PST_OK);
    cr_assert_str_eq(loc.folder, ".Known");
    cr_assert_eq(count_files(".Known", "new"), 1);
    cr_assert_eq(deliver("", base, "x\n", &loc), PST_E_EXISTS);
    cr_assert_str_eq(loc.folder, ".Known");
    cr_assert_eq(count_files("", "new"), 0);
    cr_assert_eq(pst_maildir_find(root, "", base, &loc), PST_E_NOTFOUND);
    cr_assert_eq(pst_maildir_find(root, ".Missing", base, &loc), PST_E_NOTFOUND);
}

Test(maildir, open_overwrites_a_leftover) {
    make_root();
    char base[PST_MAILDIR_BASE_BUFSIZE], p[512];
    base_of(6, base);
    path_of(p, sizeof p, "", "tmp", base);
    write_file(p, "half a message from before the crash, much longer than the new one");
    pst_maildir_loc loc;
    cr_assert_eq(deliver("", base, "new\n", &loc), PST_OK);
    path_of(p, sizeof p, "", "new", base);
    size_t len;
    uint8_t *data = tu_read_file(p, &len);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(data, "new\n", 4), 0);
    free(data);
}

Test(maildir, abort_removes_the_tmp_file) {
    make_root();
    char base[PST_MAILDIR_BASE_BUFSIZE];
    base_of(7, base);
    pst_maildir_writer w;
    cr_assert_eq(pst_maildir_open(&w, root, "", base), PST_OK);
    cr_assert_eq(pst_maildir_write(&w, "abc", 3), PST_OK);
    pst_maildir_abort(&w);
    pst_maildir_abort(&w);
    cr_assert_eq(count_files("", "tmp"), 0);
    cr_assert_eq(count_files("", "new"), 0);
    pst_maildir_loc loc;
    cr_assert_eq(pst_maildir_commit(&w, &loc), PST_E_CLOSED);
    cr_assert_eq(pst_maildir_write(&w, "x", 1), PST_E_CLOSED);
}

Test(maildir, failed_write_leaves_nothing_in_new) {
    make_root();
    char base[PST_MAILDIR_BASE_BUFSIZE];
    base_of(8, base);
    /* a write the kernel refuses (EFBIG: over the process's file size
     * limit; Criterion runs each test in its own process) */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 4096;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    pst_maildir_writer w;
    cr_assert_eq(pst_maildir_open(&w, root, "", base), PST_OK);
    static char big[16384];
    memset(big, 'x', sizeof big);
    int rc = pst_maildir_write(&w, big, sizeof big);
    cr_assert_eq(rc, PST_E_TOOBIG);
    cr_assert_eq(pst_maildir_write(&w, "y", 1), PST_E_TOOBIG); /* sticky */
    pst_maildir_loc loc;
    cr_assert_eq(pst_maildir_commit(&w, &loc), PST_E_TOOBIG);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    cr_assert_eq(count_files("", "new"), 0);
    cr_assert_eq(count_files("", "tmp"), 0);
    cr_assert_eq(pst_maildir_find_any(root, base, &loc), PST_E_NOTFOUND);
}

Test(maildir, open_into_a_missing_folder_fails) {
    make_root();
    pst_maildir_writer w;
    cr_assert_eq(pst_maildir_open(&w, root, ".Nope", "x.postern"), PST_E_NOTFOUND);
    cr_assert_eq(w.fd, -1);
}

/* ---- tmp cleanup -------------------------------------------------------------- */

Test(maildir, clean_tmp) {
    make_root();
    char err[256], p[512], base[PST_MAILDIR_BASE_BUFSIZE];
    cr_assert_eq(pst_maildir_create(root, ".Known", err, sizeof err), PST_OK);
    base_of(9, base);
    path_of(p, sizeof p, "", "tmp", base);
    write_file(p, "ours, fresh");
    path_of(p, sizeof p, ".Known", "tmp", base);
    write_file(p, "ours, in a folder");
    path_of(p, sizeof p, "", "tmp", "1700000000.M1P2.host");
    write_file(p, "someone else's, being written");
    path_of(p, sizeof p, "", "tmp", "1600000000.M1P2.host");
    write_file(p, "someone else's, abandoned");
    time_t now = time(NULL);
    struct utimbuf old = {.actime = now - 40 * 3600, .modtime = now - 40 * 3600};
    cr_assert_eq(utime(p, &old), 0);
    unsigned removed = 99;
    cr_assert_eq(pst_maildir_clean_tmp(root, (uint64_t)now, &removed), PST_OK);
    cr_assert_eq(removed, 3);
    cr_assert_eq(count_files("", "tmp"), 1);
    cr_assert_eq(count_files(".Known", "tmp"), 0);
    path_of(p, sizeof p, "", "tmp", "1700000000.M1P2.host");
    cr_assert_eq(access(p, F_OK), 0);
    /* a root that does not exist yet is nothing to clean */
    snprintf(root, sizeof root, "%s/none", tmp_dir);
    cr_assert_eq(pst_maildir_clean_tmp(root, (uint64_t)now, &removed), PST_OK);
    cr_assert_eq(removed, 0);
}

/* ---- headers ---------------------------------------------------------------- */

Test(maildir, parse_headers) {
    const char *msg = "X-Postern-Sender: abc\r\n"
                      "From: \"Alice A.\" <alice@example.org>\r\n"
                      "Subject: Hello\r\n"
                      " world\r\n"
                      "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                      "Subject: second subject is ignored\r\n"
                      "\r\n"
                      "From: body is not a header\r\n";
    pst_maildir_headers h;
    pst_maildir_parse_headers(msg, strlen(msg), &h);
    cr_assert_str_eq(h.from, "\"Alice A.\" <alice@example.org>");
    cr_assert_str_eq(h.address, "alice@example.org");
    cr_assert_str_eq(h.subject, "Hello world");
    cr_assert_str_eq(h.date, "Tue, 14 Nov 2023 22:13:20 +0000");

    const char *lf = "subject:\tlower case\nfrom: bob@example.net (Bob)\n\nbody\n";
    pst_maildir_parse_headers(lf, strlen(lf), &h);
    cr_assert_str_eq(h.subject, "lower case");
    cr_assert_str_eq(h.address, "bob@example.net");

    const char *none = "X-Other: 1\n\nSubject: in the body\n";
    pst_maildir_parse_headers(none, strlen(none), &h);
    cr_assert_str_eq(h.subject, "");
    cr_assert_str_eq(h.from, "");
    cr_assert_str_eq(h.address, "");
}

Test(maildir, parse_headers_sanitizes) {
    const char msg[] = "Subject: caf\xc3\xa9 \xff\xfe bad\x01 ctl \xe2\x82\n\n";
    pst_maildir_headers h;
    pst_maildir_parse_headers(msg, sizeof msg - 1, &h);
    cr_assert_str_eq(h.subject, "caf\xc3\xa9 ?? bad  ctl ??");
    /* a very long subject is cut, never mid-character in the result */
    char big[4200];
    int n = snprintf(big, sizeof big, "Subject: ");
    for (int i = 0; i < 2000; i++)
        n += snprintf(big + n, sizeof big - (size_t)n, "\xc3\xa9");
    n += snprintf(big + n, sizeof big - (size_t)n, "\n\n");
    pst_maildir_parse_headers(big, (size_t)n, &h);
    cr_assert_leq(strlen(h.subject), PST_MAILDIR_SUBJECT_RAW_MAX);
    cr_assert_gt(strlen(h.subject), 2000);
    for (size_t i = 0; h.subject[i]; i++)
        cr_assert((unsigned char)h.subject[i] >= 0x20);
}

Test(maildir, read_headers_from_file) {
    make_root();
    char base[PST_MAILDIR_BASE_BUFSIZE], p[512];
    base_of(10, base);
    pst_maildir_loc loc;
    const char *text = "From: carol@example.com\nSubject: file\n\nhi\n";
    cr_assert_eq(deliver("", base, text, &loc), PST_OK);
    cr_assert_eq(pst_maildir_loc_path(root, &loc, p, sizeof p), PST_OK);
    pst_maildir_headers h;
    uint64_t size = 0;
    cr_assert_eq(pst_maildir_read_headers(p, &h, &size), PST_OK);
    cr_assert_str_eq(h.subject, "file");
    cr_assert_str_eq(h.address, "carol@example.com");
    cr_assert_eq(size, strlen(text));
    path_of(p, sizeof p, "", "new", "missing");
    cr_assert_eq(pst_maildir_read_headers(p, &h, &size), PST_E_NOTFOUND);
    cr_assert_eq(size, 0);
}

/* ---- the author's X-Postern-* fields ------------------------------------------ */

/* Writes text through pst_maildir_write_message in pieces of step bytes and
 * returns the file's content (malloc'd). */
static char *through_guard(const char *text, size_t step, uint8_t seed) {
    char base[PST_MAILDIR_BASE_BUFSIZE], p[512];
    base_of(seed, base);
    pst_maildir_writer w;
    cr_assert_eq(pst_maildir_open(&w, root, "", base), PST_OK);
    cr_assert_eq(pst_maildir_write(&w, "X-Postern-Sender: node\n", 23), PST_OK);
    size_t len = strlen(text);
    for (size_t off = 0; off < len; off += step)
        cr_assert_eq(pst_maildir_write_message(&w, text + off, len - off < step ? len - off : step),
                     PST_OK);
    pst_maildir_loc loc;
    cr_assert_eq(pst_maildir_commit(&w, &loc), PST_OK);
    cr_assert_eq(pst_maildir_loc_path(root, &loc, p, sizeof p), PST_OK);
    size_t n;
    char *data = (char *)tu_read_file(p, &n);
    cr_assert_not_null(data);
    char *out = malloc(n + 1);
    memcpy(out, data, n);
    out[n] = '\0';
    free(data);
    unlink(p);
    return out;
}

Test(maildir, author_postern_fields_are_renamed) {
    make_root();
    const char *in = "From: a@example.org\r\n"
                     "x-postern-sender: forged\r\n"
                     "Subject: X-Postern-Sender: not at line start\r\n"
                     " X-Postern-Folded: continuation stays\r\n"
                     "X-Poster: shorter prefix stays\r\n"
                     "X-Postern-Message-Id: forged too\r\n"
                     "\r\n"
                     "X-Postern-Sender: in the body stays\r\n";
    /* line endings normalised to LF (docs/MAIL.md) */
    const char *want = "X-Postern-Sender: node\n"
                       "From: a@example.org\n"
                       "X-Original-x-postern-sender: forged\n"
                       "Subject: X-Postern-Sender: not at line start\n"
                       " X-Postern-Folded: continuation stays\n"
                       "X-Poster: shorter prefix stays\n"
                       "X-Original-X-Postern-Message-Id: forged too\n"
                       "\n"
                       "X-Postern-Sender: in the body stays\n";
    /* the same result whatever the chunking */
    size_t steps[] = {1, 2, 3, 7, 10, 11, 64, 4096};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char *got = through_guard(in, steps[i], (uint8_t)(20 + i));
        cr_assert_str_eq(got, want, "step %zu", steps[i]);
        free(got);
    }
}

Test(maildir, guard_keeps_other_lf_messages_byte_exact) {
    make_root();
    const char *cases[] = {
        "Subject: plain\n\nbody\n",
        "X-Poster", /* ends inside a would-be prefix: flushed at commit */
        "X-Postern-",
        "no header at all, no newline",
        "\n\nX-Postern-Sender: body\n",
        "A: b\r\nX-Postern-Odd: c\rX-Postern-Bare-Cr: d\n\n",
    };
    const char *wants[] = {
        "Subject: plain\n\nbody\n",
        "X-Poster",
        "X-Original-X-Postern-",
        "no header at all, no newline",
        "\n\nX-Postern-Sender: body\n",
        "A: b\nX-Original-X-Postern-Odd: c\nX-Original-X-Postern-Bare-Cr: d\n\n",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t step = 1; step <= 5; step += 4) {
            char *got = through_guard(cases[i], step, (uint8_t)(40 + i));
            cr_assert_str_eq(got + 23, wants[i], "case %zu step %zu", i, step);
            free(got);
        }
}

/* NUL bytes: replaced with U+FFFD, and a field right after the node's own
 * says how many; the rest of the file moves up intact, also when it is
 * larger than the writer's buffer. */
Test(maildir, nul_bytes_replaced_and_marked) {
    make_root();
    size_t body = 3 * PST_MAILDIR_FILTER_BUF + 123;
    char *in = malloc(body + 64);
    cr_assert_not_null(in);
    static const char subj[] = "Subject: n\0l\n\n";
    size_t n = sizeof subj - 1;
    memcpy(in, subj, n);
    for (size_t i = 0; i < body; i++)
        in[n + i] = (char)('a' + i % 26);
    in[n + body / 2] = '\0';
    n += body;
    in[n] = '\0';
    char base[PST_MAILDIR_BASE_BUFSIZE], p[512];
    base_of(60, base);
    pst_maildir_writer w;
    cr_assert_eq(pst_maildir_open(&w, root, "", base), PST_OK);
    cr_assert_eq(pst_maildir_write(&w, "X-Postern-Sender: node\n", 23), PST_OK);
    for (size_t off = 0; off < n; off += 1000)
        cr_assert_eq(pst_maildir_write_message(&w, in + off, n - off < 1000 ? n - off : 1000),
                     PST_OK);
    pst_maildir_loc loc;
    cr_assert_eq(pst_maildir_commit(&w, &loc), PST_OK);
    cr_assert_eq(pst_maildir_loc_path(root, &loc, p, sizeof p), PST_OK);
    size_t got_n;
    uint8_t *got = tu_read_file(p, &got_n);
    cr_assert_not_null(got);
    const char *head = "X-Postern-Sender: node\n" PST_MAILDIR_NUL_FIELD ": 2\n"
                       "Subject: n\xef\xbf\xbdl\n\n";
    cr_assert_eq(got_n, strlen(head) + body + 2, "size %zu", got_n);
    cr_assert_eq(memcmp(got, head, strlen(head)), 0);
    const uint8_t *b = got + strlen(head);
    for (size_t i = 0, j = 0; i < body; i++, j++) {
        if (i == body / 2) {
            cr_assert_eq(memcmp(b + j, "\xef\xbf\xbd", 3), 0);
            j += 2;
            continue;
        }
        cr_assert_eq(b[j], (uint8_t)('a' + i % 26), "byte %zu", i);
    }
    cr_assert_null(memchr(got, 0, got_n));
    free(got);
    free(in);
}

Test(maildir, folder_display_and_parse) {
    cr_assert_str_eq(pst_maildir_folder_display(""), "INBOX");
    cr_assert_str_eq(pst_maildir_folder_display(".Known"), "Known");
    char out[PST_MAILDIR_FOLDER_MAX + 1];
    const char *in[] = {"", "INBOX", "inbox", "Known", ".Known", "Lists.dev"};
    const char *want[] = {"", "", "", ".Known", ".Known", ".Lists.dev"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        cr_assert_eq(pst_maildir_folder_parse(in[i], out), PST_OK, "%s", in[i]);
        cr_assert_str_eq(out, want[i]);
    }
    const char *bad[] = {"..", "a/b", ".", "a b", "../x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(pst_maildir_folder_parse(bad[i], out), PST_E_INVAL, "%s", bad[i]);
        cr_assert_str_eq(out, "");
    }
    char longname[PST_MAILDIR_FOLDER_MAX + 1];
    memset(longname, 'a', PST_MAILDIR_FOLDER_MAX);
    longname[PST_MAILDIR_FOLDER_MAX] = '\0'; /* 64 + the dot: one too many */
    cr_assert_eq(pst_maildir_folder_parse(longname, out), PST_E_INVAL);
}

/* ---- a Maildir shared with mail clients ---------------------------------- */

/* Files mail clients keep in the Maildir root: mailutils, mbsync, Dovecot. */
static void client_droppings(void) {
    static const char *const names[] = {".mu-prop",          ".mbsyncstate",    ".uidvalidity",
                                        ".mbsyncstate.lock", "dovecot-uidlist", ".customflags"};
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        write_file(p, "client state\n");
    }
    /* and a dot-directory that is no Maildir++ folder at all */
    snprintf(p, sizeof p, "%s/.notmuch", root);
    cr_assert_eq(mkdir(p, 0700), 0);
}

Test(maildir, client_files_in_the_root_do_not_stop_delivery) {
    make_root();
    char err[256], base[PST_MAILDIR_BASE_BUFSIZE];
    cr_assert_eq(pst_maildir_create(root, ".Known", err, sizeof err), PST_OK);
    client_droppings();
    pst_maildir_loc loc;
    base_of(1, base);
    cr_assert_eq(deliver("", base, "a\n", &loc), PST_OK);
    base_of(2, base);
    cr_assert_eq(deliver(".Known", base, "b\n", &loc), PST_OK);
    /* the exactly-once check still looks everywhere */
    cr_assert_eq(deliver("", base, "b\n", &loc), PST_E_EXISTS);
    cr_assert_str_eq(loc.folder, ".Known");
    cr_assert_eq(pst_maildir_find_any(root, base, &loc), PST_OK);
    unsigned removed = 99;
    cr_assert_eq(pst_maildir_clean_tmp(root, 0, &removed), PST_OK);
    cr_assert_eq(removed, 0);
    /* a file where a folder's cur/ would be is not a folder either */
    char p[256];
    snprintf(p, sizeof p, "%s/.mu-prop", root);
    cr_assert_eq(pst_maildir_find(root, ".mu-prop", base, &loc), PST_E_NOTFOUND);
}

typedef struct {
    unsigned n;
    uint8_t ids[8][PST_HASH_BYTES];
    pst_maildir_loc locs[8];
} scan_seen;

static int on_scan(const uint8_t id[PST_HASH_BYTES], const pst_maildir_loc *loc, void *user) {
    scan_seen *s = user;
    cr_assert_lt(s->n, 8u);
    memcpy(s->ids[s->n], id, PST_HASH_BYTES);
    s->locs[s->n++] = *loc;
    return 0;
}

static const pst_maildir_loc *scanned(const scan_seen *s, uint8_t seed) {
    uint8_t id[PST_HASH_BYTES];
    memset(id, seed, sizeof id);
    for (unsigned i = 0; i < s->n; i++)
        if (memcmp(s->ids[i], id, sizeof id) == 0)
            return &s->locs[i];
    return NULL;
}

/* A stored message as the node writes it: its two trace fields first. */
static void stored_message(const char *path, uint8_t seed, const char *subject) {
    uint8_t id[PST_HASH_BYTES];
    char hex[2 * PST_HASH_BYTES + 1], text[4096];
    memset(id, seed, sizeof id);
    for (size_t i = 0; i < sizeof id; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(text, sizeof text,
             "X-Postern-Sender: ab\nX-Postern-Message-Id: %s\nSubject: %s\n\nbody\n", hex, subject);
    write_file(path, text);
}

Test(maildir, scan_finds_messages_clients_renamed_and_moved) {
    make_root();
    char err[256], p[512];
    cr_assert_eq(pst_maildir_create(root, ".Archive", err, sizeof err), PST_OK);
    client_droppings();
    /* a folder a client made with a name this node would never write to */
    snprintf(p, sizeof p, "%s/.Sent Items", root);
    cr_assert_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/.Sent Items/cur", root);
    cr_assert_eq(mkdir(p, 0700), 0);
    /* Dovecot MOVE/COPY, mailutils, mbsync, mutt's save */
    path_of(p, sizeof p, "", "cur", "1733.M1P2.host,S=123,W=130:2,S");
    stored_message(p, 1, "dovecot");
    path_of(p, sizeof p, ".Archive", "cur", "1733000000.12345_1.host,u=4:2,");
    stored_message(p, 2, "mailutils");
    snprintf(p, sizeof p, "%s/.Sent Items/cur/1733000001.R123.host,U=7:2,RS", root);
    stored_message(p, 3, "mbsync");
    path_of(p, sizeof p, ".Archive", "new", "1733000002.12_0.host");
    stored_message(p, 4, "mutt");
    /* someone else's mail, and a message whose id field is no id */
    path_of(p, sizeof p, "", "new", "1733000003.M9.host");
    write_file(p, "Subject: not ours\n\nbody\n");
    path_of(p, sizeof p, "", "new", "1733000004.M9.host");
    write_file(p, "X-Postern-Message-Id: 12zz\n\nbody\n");
    scan_seen s = {0};
    cr_assert_eq(pst_maildir_scan(root, on_scan, &s), 0);
    cr_assert_eq(s.n, 4u);
    const pst_maildir_loc *l = scanned(&s, 1);
    cr_assert_not_null(l);
    cr_assert_str_eq(l->folder, "");
    cr_assert_str_eq(l->sub, "cur");
    cr_assert_str_eq(l->name, "1733.M1P2.host,S=123,W=130:2,S");
    cr_assert_not_null(l = scanned(&s, 2));
    cr_assert_str_eq(l->folder, ".Archive");
    cr_assert_not_null(l = scanned(&s, 3));
    cr_assert_str_eq(l->folder, ".Sent Items");
    cr_assert_not_null(l = scanned(&s, 4));
    cr_assert_str_eq(l->sub, "new");
    /* a found place turns into a readable path */
    cr_assert_eq(pst_maildir_loc_path(root, scanned(&s, 3), p, sizeof p), PST_OK);
    pst_maildir_headers h;
    cr_assert_eq(pst_maildir_read_headers(p, &h, NULL), PST_OK);
    cr_assert_str_eq(h.subject, "mbsync");
    /* the node still never writes into a folder it did not make its way */
    pst_maildir_writer w;
    char base[PST_MAILDIR_BASE_BUFSIZE];
    base_of(9, base);
    cr_assert_eq(pst_maildir_open(&w, root, ".Sent Items", base), PST_E_INVAL);
    cr_assert_eq(pst_maildir_create(root, ".Sent Items", err, sizeof err), PST_E_INVAL);
}

Test(maildir, parse_headers_reads_the_node_message_id) {
    pst_maildir_headers h;
    const char *ok = "X-Postern-Sender: ab\n"
                     "X-Postern-Message-Id:  0101010101010101010101010101010101010101010101010101"
                     "010101010101 \nSubject: s\n\n";
    pst_maildir_parse_headers(ok, strlen(ok), &h);
    cr_assert(h.has_msg_id);
    uint8_t id[PST_HASH_BYTES];
    memset(id, 1, sizeof id);
    cr_assert_eq(memcmp(h.msg_id, id, sizeof id), 0);
    /* the first field is the node's; short, long or non-hex values are none */
    static const char *const bad[] = {
        "X-Postern-Message-Id: 0101\n\n",
        "X-Postern-Message-Id: "
        "010101010101010101010101010101010101010101010101010101010101010101\n\n",
        "X-Postern-Message-Id: "
        "0g01010101010101010101010101010101010101010101010101010101010101\n\n",
        "Subject: x\n\nX-Postern-Message-Id: "
        "0101010101010101010101010101010101010101010101010101010101010101\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pst_maildir_parse_headers(bad[i], strlen(bad[i]), &h);
        cr_assert(!h.has_msg_id, "case %zu", i);
    }
}

Test(maildir, long_encoded_subject_kept_whole_for_decoding) {
    /* 40 Q-encoded words of "é" x 4: ~1,300 bytes raw, 320 bytes decoded */
    char raw[2048] = "Subject:";
    for (int i = 0; i < 40; i++)
        strcat(raw, " =?UTF-8?Q?=C3=A9=C3=A9=C3=A9=C3=A9?=");
    strcat(raw, "\n\n");
    pst_maildir_headers h;
    pst_maildir_parse_headers(raw, strlen(raw), &h);
    cr_assert_gt(strlen(h.subject), 1000u);
    cr_assert_eq(h.subject[strlen(h.subject) - 1], '=', "the last encoded word is whole");
}

Test(maildir, scan_skips_a_fifo_without_blocking, .timeout = 10) {
    make_root();
    char p[512];
    path_of(p, sizeof p, "", "cur", "1733.fifo.host:2,S");
    cr_assert_eq(mkfifo(p, 0600), 0);
    path_of(p, sizeof p, "", "new", "1733.M1.host");
    stored_message(p, 7, "after the fifo");
    scan_seen s = {0};
    /* an open(2) without O_NONBLOCK would wait here for a writer forever */
    cr_assert_eq(pst_maildir_scan(root, on_scan, &s), 0);
    cr_assert_eq(s.n, 1u);
    cr_assert_not_null(scanned(&s, 7));
}
