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
    char big[2000];
    int n = snprintf(big, sizeof big, "Subject: ");
    for (int i = 0; i < 400; i++)
        n += snprintf(big + n, sizeof big - (size_t)n, "\xc3\xa9");
    n += snprintf(big + n, sizeof big - (size_t)n, "\n\n");
    pst_maildir_parse_headers(big, (size_t)n, &h);
    cr_assert_leq(strlen(h.subject), PST_MAILDIR_HEADER_VALUE_MAX);
    cr_assert_gt(strlen(h.subject), 200);
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
