/* A small Maildir++ writer for delivered mail (DIR/Maildir).
 *
 * Layout: ROOT/{tmp,new,cur} is the INBOX; a Maildir++ folder ".Name" is
 * ROOT/.Name/{tmp,new,cur} plus an empty ROOT/.Name/maildirfolder. Every
 * directory is created 0700 and every file 0600.
 *
 * A message is written to tmp/, fsync'd, then renamed into new/ and the new/
 * directory fsync'd: a reader sees either nothing or the whole file, and a
 * file in new/ survives a power cut. File names are deterministic: the base
 * name is the message id in lowercase hex plus ".postern", so a delivery
 * repeated after a crash finds the earlier copy instead of making a second
 * one. Mail clients move files from new/ to cur/ and append ":2,FLAGS";
 * the lookups here match the base name in both places, in every folder.
 *
 * Plain blocking file I/O; no libuv. Paths longer than PST_PATH_MAX are
 * PST_E_NOSPACE (checked before any file is touched); PST_E_DISKFULL means
 * the disk is full (ENOSPC, EDQUOT), a temporary failure; PST_E_TOOBIG a
 * file over the file-size limit (EFBIG); other errno-level failures are
 * PST_E_IO. */
#ifndef PST_MAILDIR_H
#define PST_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_hdrfilter.h"
#include "pst_home.h"
#include "pst_types.h"

#define PST_MAILDIR_DIR "Maildir"     /* inside the node's home */
#define PST_MAILDIR_FOLDER_MAX 64u    /* folder name bytes, as PST_STORE_FOLDER_MAX */
#define PST_MAILDIR_NAME_MAX 255u     /* file name bytes */
#define PST_MAILDIR_SUFFIX ".postern" /* after the message id in base names */
/* 64 hex digits + ".postern" + NUL */
#define PST_MAILDIR_BASE_BUFSIZE (2u * PST_HASH_BYTES + sizeof PST_MAILDIR_SUFFIX)
/* Foreign files in tmp/ older than this are removed (the Maildir rule). */
#define PST_MAILDIR_TMP_MAX_AGE_S (36u * 3600u)
#define PST_MAILDIR_HEADER_READ_MAX 65536u /* bytes read to find the header */
#define PST_MAILDIR_HEADER_VALUE_MAX 255u  /* bytes kept of one header value */
#define PST_MAILDIR_SUBJECT_RAW_MAX 2047u  /* bytes kept of the encoded subject */
#define PST_MAILDIR_FILTER_BUF 32768u      /* filtered bytes per write(2) */
/* The field added above the author's header when NUL bytes were replaced. */
#define PST_MAILDIR_NUL_FIELD "X-Postern-Nul-Replaced"

/* "" (INBOX) or a Maildir++ folder: '.' then 1..63 bytes of dot-separated
 * non-empty labels of [A-Za-z0-9_-] (".Known", ".Lists.postern"). Anything
 * else, e.g. "..", ".a/b", "Known", ".a..b", is refused. NULL is invalid. */
bool pst_maildir_folder_valid(const char *folder);

/* What people call a folder: "INBOX" for "", else the name without its
 * leading dot ("Known"). */
const char *pst_maildir_folder_display(const char *folder);

/* The inverse, lenient on input: "INBOX" (any case) or "" -> "", "Known" or
 * ".Known" -> ".Known". PST_E_INVAL unless the result is a valid folder. */
int pst_maildir_folder_parse(const char *name, char out[PST_MAILDIR_FOLDER_MAX + 1]);

/* ROOT (folder "") or ROOT/FOLDER into out. PST_E_INVAL for a bad folder. */
int pst_maildir_folder_path(const char *root, const char *folder, char *out, size_t cap);

/* Creates ROOT (and missing parents) and the folder's tmp/, new/ and cur/,
 * mode 0700; a Maildir++ folder also gets its maildirfolder file. Existing
 * directories are kept as they are. PST_E_INVAL (bad folder), PST_E_IO with
 * the path and errno text in err. */
int pst_maildir_create(const char *root, const char *folder, char *err, size_t errcap);

/* The deterministic base name of a message: lowercase hex of msg_id +
 * PST_MAILDIR_SUFFIX. */
void pst_maildir_base_name(const uint8_t msg_id[PST_HASH_BYTES],
                           char out[PST_MAILDIR_BASE_BUFSIZE]);

/* Where a delivered message is now. */
typedef struct {
    char folder[PST_MAILDIR_FOLDER_MAX + 1]; /* "" = INBOX */
    char sub[4];                             /* "new" or "cur" */
    char name[PST_MAILDIR_NAME_MAX + 1];     /* the file name in sub/ */
} pst_maildir_loc;

/* Looks for base in FOLDER/new and FOLDER/cur: a file named exactly base,
 * or base followed by ':' (flags added by a mail client). 0 with *loc
 * filled, PST_E_NOTFOUND, PST_E_INVAL (bad folder or base), PST_E_IO. A
 * folder that does not exist is PST_E_NOTFOUND. */
int pst_maildir_find(const char *root, const char *folder, const char *base, pst_maildir_loc *loc);

/* pst_maildir_find in the INBOX, then in every folder pst_maildir_each_folder
 * visits. */
int pst_maildir_find_any(const char *root, const char *base, pst_maildir_loc *loc);

/* A folder name this node reads (and finds moved messages in), wider than
 * pst_maildir_folder_valid, which says where it writes: "" or '.' then up
 * to PST_MAILDIR_FOLDER_MAX - 1 bytes without '/' or control characters, so
 * a client's ".Sent Items" or ".&AOQ-" counts; "." and ".." do not. */
bool pst_maildir_folder_readable(const char *folder);

/* Called with "" (the INBOX) and with each folder of root; non-zero stops. */
typedef int (*pst_maildir_folder_cb)(const char *folder, void *user);
/* Calls cb for the INBOX, then for every entry of root whose name is a
 * readable folder name and which is a directory. A mail client's own files
 * there (mailutils' .mu-prop, mbsync's .mbsyncstate and .uidvalidity) are
 * skipped, never an error. Returns cb's first non-zero result, else 0 (a
 * missing root too), or PST_E_IO when root cannot be read. */
int pst_maildir_each_folder(const char *root, pst_maildir_folder_cb cb, void *user);

/* Full path of loc into out. */
int pst_maildir_loc_path(const char *root, const pst_maildir_loc *loc, char *out, size_t cap);

/* fsyncs the directory holding the message at loc. A copy found in the
 * Maildir (after a crash, or after a commit whose directory fsync failed)
 * may not be durable yet: call this before recording or acknowledging it.
 * PST_OK, PST_E_NOSPACE (path too long), PST_E_IO or PST_E_DISKFULL. */
int pst_maildir_sync_loc(const char *root, const pst_maildir_loc *loc);

/* Removes leftovers from tmp/ of the INBOX and of every Maildir++ folder:
 * each file whose name ends in PST_MAILDIR_SUFFIX (ours: the node holds the
 * home's lock, so no other writer of ours runs) and foreign files older than
 * PST_MAILDIR_TMP_MAX_AGE_S at now. *removed (may be NULL) counts them.
 * A missing root is 0. */
int pst_maildir_clean_tmp(const char *root, uint64_t now, unsigned *removed);

/* One message being written. Caller-owned; fd is -1 when closed. */
typedef struct {
    int fd;
    int err; /* first write error, sticky: commit then refuses */
    uint64_t bytes;
    /* pst_maildir_write_message: the author's bytes go through the filter */
    pst_hdrfilter filter;
    bool msg_started;
    uint64_t msg_start; /* file offset of the author's first byte */
    uint8_t fbuf[PST_MAILDIR_FILTER_BUF];
    char root[PST_PATH_MAX];
    char folder[PST_MAILDIR_FOLDER_MAX + 1];
    char base[PST_MAILDIR_BASE_BUFSIZE];
    char tmp_path[PST_PATH_MAX];
    /* set after open by a caller whose own records prove that no copy of
     * base can be in the Maildir (the inbox: the store never recorded an
     * attempt to deliver it): commit then skips the search of every folder,
     * the cost of which grows with the mailbox (docs/MAIL.md, "Exactly
     * once") */
    bool no_copy;
    uint64_t wb_done; /* bytes handed to pst_maildir_writeback so far */
} pst_maildir_writer;

/* Opens FOLDER/tmp/BASE for writing (truncating a leftover of a crash).
 * The folder must exist (pst_maildir_create). base is 1..PST_MAILDIR_NAME_MAX
 * bytes without '/' or ':' and not "." or "..". On failure w->fd is -1 and
 * nothing needs closing. */
int pst_maildir_open(pst_maildir_writer *w, const char *root, const char *folder, const char *base);

/* Appends n bytes (all of them, retrying short writes). On failure the
 * error is remembered and returned by every later write and by commit. */
int pst_maildir_write(pst_maildir_writer *w, const void *p, size_t n);

/* Asks the kernel to start writing what was appended since the last call
 * to the disk, without waiting (sync_file_range): a large file's commit
 * then fsyncs what little is left instead of all of it at once. Best
 * effort, no error: the commit's fsync still decides. */
void pst_maildir_writeback(pst_maildir_writer *w);

/* Appends message bytes (the author's message, as it streams in) through
 * the recipient's filter (proto/pst_hdrfilter.h): line endings become LF,
 * NUL bytes U+FFFD, and in the header section (up to the first empty line)
 * a field whose name starts with "X-Postern-" (any case) is renamed
 * "X-Original-X-Postern-...": only the fields the node itself wrote with
 * pst_maildir_write (before the message) carry those names, so a mail
 * filter on X-Postern-Sender cannot be fooled by the author. The result is
 * the same whatever the chunking. Errors as pst_maildir_write. */
int pst_maildir_write_message(pst_maildir_writer *w, const void *p, size_t n);

/* Makes the message durable and visible: writes what
 * pst_maildir_write_message still holds back; when it replaced NUL bytes,
 * inserts the line "X-Postern-Nul-Replaced: N" right before the message's
 * first byte (after the node's own fields; the file is rewritten in place,
 * 64 KiB at a time); fsyncs and closes the tmp
 * file, then, unless a message with the same base name already exists in
 * any folder (not looked for when w->no_copy is set; PST_E_EXISTS, the tmp
 * file is removed, *loc names the existing copy and its directory has been
 * fsynced: a failure of that fsync is returned instead), renames it into
 * FOLDER/new, fsyncs new/ and fills *loc. On any failure (including a
 * remembered write error) the tmp file is removed and nothing appears in
 * new/, except when only the fsync of new/ fails: then the file is in new/,
 * *loc names it and the error is returned (a retry finds the file, fsyncs
 * its directory and only then acknowledges it). The writer is closed
 * afterwards, whatever the result. w->folder may be set to another
 * existing folder of the same root before the commit: the file is renamed
 * from where it was opened into that folder's new/ (one file system; LMTP
 * picks the folder only at the end). */
int pst_maildir_commit(pst_maildir_writer *w, pst_maildir_loc *loc);

/* pst_maildir_commit without its last step: on PST_OK the file is durable
 * and renamed into new/, *loc names it, but the rename itself is not yet:
 * the caller fsyncs new/ (pst_maildir_sync_loc, once for several files
 * renamed into the same directory: a group commit) before it tells anyone
 * the message is stored. Every other result and the cleanup are as for
 * pst_maildir_commit (PST_E_EXISTS: the copy's directory was fsynced). */
int pst_maildir_place(pst_maildir_writer *w, pst_maildir_loc *loc);

/* fsyncs the directory at path, so that a rename into it survives a crash
 * (also used by the outbox). PST_E_IO, or PST_E_DISKFULL when the disk is
 * full. */
int pst_fsync_dir(const char *path);

/* Closes and removes the tmp file. Safe on a closed writer. */
void pst_maildir_abort(pst_maildir_writer *w);

/* A few header fields of a stored message, for listings. Values are
 * unfolded, truncated to PST_MAILDIR_HEADER_VALUE_MAX bytes (the subject to
 * PST_MAILDIR_SUBJECT_RAW_MAX: it is still RFC 2047-encoded, and cutting an
 * encoded word in half would garble it: decode it, then shorten it), with
 * control characters and invalid UTF-8 replaced, so they are printable as
 * they are. "" when absent. The first occurrence of a field wins. */
typedef struct {
    char from[PST_MAILDIR_HEADER_VALUE_MAX + 1];
    char subject[PST_MAILDIR_SUBJECT_RAW_MAX + 1];
    char date[PST_MAILDIR_HEADER_VALUE_MAX + 1];
    char address[PST_MAILDIR_HEADER_VALUE_MAX + 1]; /* addr-spec from From: */
    /* the node's own X-Postern-Message-Id, when it is 64 hex digits */
    bool has_msg_id;
    uint8_t msg_id[PST_HASH_BYTES];
} pst_maildir_headers;

/* Reads the header section (at most PST_MAILDIR_HEADER_READ_MAX bytes) of
 * the file at path. *size (may be NULL) gets the file size. PST_E_NOTFOUND,
 * PST_E_IO; *out zeroed on failure. */
int pst_maildir_read_headers(const char *path, pst_maildir_headers *out, uint64_t *size);

/* Parses a header section held in memory (same rules). Stops at the first
 * empty line or at the end of buf. */
void pst_maildir_parse_headers(const char *buf, size_t len, pst_maildir_headers *out);

/* Called for each message file found by pst_maildir_scan: its message id
 * (from its X-Postern-Message-Id field) and where it is; non-zero stops. */
typedef int (*pst_maildir_scan_cb)(const uint8_t msg_id[PST_HASH_BYTES], const pst_maildir_loc *loc,
                                   void *user);
/* Reads the header of every file in new/ and cur/ of every folder
 * (pst_maildir_each_folder) and calls cb for each that carries the node's
 * X-Postern-Message-Id, whatever a mail client renamed it to (Dovecot's
 * "1733.M1P2.host,S=123,W=130:2,S", mutt's, mailutils' ",u=4:2,", mbsync's
 * ",U=N") or whichever folder it moved it to. One read of up to
 * PST_MAILDIR_HEADER_READ_MAX bytes per file: the caller remembers what it
 * found (the store's inbox rows) so that this runs only when a remembered
 * place is stale. Returns cb's first non-zero result, else 0, or PST_E_IO
 * when root cannot be read; unreadable single files are skipped. */
int pst_maildir_scan(const char *root, pst_maildir_scan_cb cb, void *user);

#endif
