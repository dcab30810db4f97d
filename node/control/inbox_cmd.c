/* Control commands of the recipient side: `inbox` lists delivered messages,
 * `read` says where one is. Message bodies never travel in control frames
 * (1 MiB cap): `read` answers with the file's path and the CLI copies the
 * file itself. The store says which messages were delivered; the Maildir
 * says where they are now (a mail client moves them to cur/, may move them
 * to another folder or delete them) and what their headers say. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pst_control.h"
#include "pst_mailmsg.h"

#define PST_INBOX_LIST_DEFAULT 100u
/* 12 values each, 3,600 in all: with the 20 undelivered (8 values each)
 * and the rest, under PST_VALUE_NODES_MAX */
#define PST_INBOX_LIST_MAX 300u
#define PST_READ_PREFIX_MIN 8u

/* ---- where a delivered message is now -------------------------------------------
 * The store remembers the folder and file name each message was delivered
 * as. A mail client may flag it (same name plus ":2,FLAGS"), move it to
 * another folder, or rename it altogether (Dovecot, mutt, mailutils and
 * mbsync all name files their own way). Looking up is cheapest first: the
 * remembered place, then the remembered name in every folder, and only
 * when both miss, one scan of the whole Maildir for the node's
 * X-Postern-Message-Id field, which finds every message of this command at
 * once. What the scan finds is written back to the store (and what it does
 * not find is remembered as gone), so the next command looks in the right
 * place at once instead of scanning again. */

typedef struct {
    uint8_t id[PST_HASH_BYTES];
    char folder[PST_STORE_FOLDER_MAX + 1];
    char filename[PST_STORE_FILENAME_MAX + 1]; /* "" = gone: deleted by a client */
    bool found, by_scan;
    pst_maildir_loc loc;
} place;

typedef struct {
    place *places;
    size_t n, left;
} scan_ctx;

static int on_scanned(const uint8_t id[PST_HASH_BYTES], const pst_maildir_loc *loc, void *user) {
    scan_ctx *s = user;
    for (size_t i = 0; i < s->n; i++) {
        place *p = &s->places[i];
        if (!p->found && memcmp(p->id, id, PST_HASH_BYTES) == 0) {
            p->found = p->by_scan = true;
            p->loc = *loc;
            s->left--;
        }
    }
    return s->left == 0 ? 1 : 0;
}

/* The file name to remember: without the info part a client changes with
 * every flag (":2,S"), which pst_maildir_find matches anyway. */
static void name_without_info(const char *name, char out[PST_STORE_FILENAME_MAX + 1]) {
    size_t len = strcspn(name, ":");
    if (len > PST_STORE_FILENAME_MAX)
        len = PST_STORE_FILENAME_MAX;
    memcpy(out, name, len);
    out[len] = '\0';
}

/* Finds each of p[0..np). A place remembered as gone is looked for only
 * when look_for_gone (an explicit `read` of it): listings do not scan for
 * it again. */
static void locate_all(pst_node *n, place *p, size_t np, bool look_for_gone) {
    char root[PST_PATH_MAX];
    scan_ctx s = {p, np, 0};
    if (pst_home_path(n->cfg.home, PST_MAILDIR_DIR, root, sizeof root) != PST_OK)
        return;
    for (size_t i = 0; i < np; i++) {
        p[i].found = p[i].by_scan = false;
        if (p[i].filename[0] == '\0') {
            s.left += look_for_gone;
            continue;
        }
        p[i].found = pst_maildir_find(root, p[i].folder, p[i].filename, &p[i].loc) == PST_OK ||
                     pst_maildir_find_any(root, p[i].filename, &p[i].loc) == PST_OK;
        if (p[i].found && strcmp(p[i].loc.folder, p[i].folder) != 0)
            (void)pst_store_inbox_relocate(n->store, p[i].id, p[i].loc.folder, p[i].filename);
        s.left += !p[i].found;
    }
    if (s.left == 0)
        return;
    size_t wanted = s.left;
    int rc = pst_maildir_scan(root, on_scanned, &s);
    pst_counter_add(n, "inbox.maildir_scans", 1);
    for (size_t i = 0; i < np; i++) {
        char name[PST_STORE_FILENAME_MAX + 1];
        if (p[i].by_scan) {
            name_without_info(p[i].loc.name, name);
            if (pst_store_inbox_relocate(n->store, p[i].id, p[i].loc.folder, name) == PST_OK)
                pst_counter_add(n, "inbox.relocated", 1);
        } else if (!p[i].found && p[i].filename[0] != '\0' && rc >= 0) {
            /* the whole Maildir was read and the message is in none of it */
            if (pst_store_inbox_relocate(n->store, p[i].id, p[i].folder, "") == PST_OK)
                pst_counter_add(n, "inbox.gone", 1);
        }
    }
    pst_log_info("looked through the Maildir for %zu message%s a mail client moved, renamed or "
                 "deleted: %zu found",
                 wanted, wanted == 1 ? "" : "s", wanted - s.left);
}

/* One message: the remembered place (folder, filename), else wherever a
 * mail client moved it. */
static int locate(pst_node *n, const char *folder, const char *filename,
                  const uint8_t id[PST_HASH_BYTES], pst_maildir_loc *loc, char *path, size_t cap) {
    place p;
    memset(&p, 0, sizeof p);
    memcpy(p.id, id, sizeof p.id);
    snprintf(p.folder, sizeof p.folder, "%s", folder);
    snprintf(p.filename, sizeof p.filename, "%s", filename);
    locate_all(n, &p, 1, true);
    if (!p.found)
        return PST_E_NOTFOUND;
    char root[PST_PATH_MAX];
    *loc = p.loc;
    int rc = pst_home_path(n->cfg.home, PST_MAILDIR_DIR, root, sizeof root);
    return rc == PST_OK ? pst_maildir_loc_path(root, loc, path, cap) : rc;
}

/* Whether a mail client set flag (a Maildir info letter: 'S' seen, 'F'
 * flagged) on the file named name: "...:2,FS". */
static bool has_flag(const char *name, char flag) {
    const char *info = strstr(name, ":2,");
    return info != NULL && strchr(info + 3, flag) != NULL;
}

/* ---- inbox ---------------------------------------------------------------------- */

typedef struct {
    uint8_t sender[PST_SIGN_PK_BYTES];
    uint64_t delivered;
    place where; /* id, remembered folder and file name; found by locate_all */
} list_entry;

/* A message not delivered (yet) that has something to say: a fetch failed. */
#define PST_INBOX_PROBLEMS_MAX 20u
typedef struct {
    uint8_t id[PST_HASH_BYTES];
    uint8_t sender[PST_SIGN_PK_BYTES];
    pst_store_in_state state;
    uint64_t attempts, last_attempt, expires;
} problem;

typedef struct {
    bool filter;
    char folder[PST_MAILDIR_FOLDER_MAX + 1];
    list_entry *ring; /* the newest cap matching rows */
    unsigned cap;
    uint64_t total, pending, failed;
    problem problems[PST_INBOX_PROBLEMS_MAX]; /* ring: the newest */
    uint64_t n_problems;
} list_ctx;

static int on_list_row(const pst_store_inbox_row *row, void *user) {
    list_ctx *l = user;
    if (row->state == PST_STORE_IN_PENDING)
        l->pending++;
    else if (row->state == PST_STORE_IN_FAILED)
        l->failed++;
    if (row->state == PST_STORE_IN_FAILED ||
        (row->state == PST_STORE_IN_PENDING && row->attempts > 0)) {
        problem *p = &l->problems[l->n_problems++ % PST_INBOX_PROBLEMS_MAX];
        memcpy(p->id, row->msg_id, sizeof p->id);
        memcpy(p->sender, row->sender, sizeof p->sender);
        p->state = row->state;
        p->attempts = row->attempts;
        p->last_attempt = row->last_attempt;
        p->expires = row->expires;
    }
    if (row->state != PST_STORE_IN_DELIVERED || (l->filter && strcmp(row->folder, l->folder) != 0))
        return 0;
    /* a trust change from another own device: applied and removed, not mail */
    if (strcmp(row->folder, PST_SYNC_FOLDER) == 0)
        return 0;
    list_entry *e = &l->ring[l->total++ % l->cap];
    memcpy(e->where.id, row->msg_id, sizeof e->where.id);
    memcpy(e->sender, row->sender, sizeof e->sender);
    e->delivered = row->delivered;
    snprintf(e->where.folder, sizeof e->where.folder, "%s", row->folder);
    snprintf(e->where.filename, sizeof e->where.filename, "%s", row->filename);
    return 0;
}

/* address: the From: header's, else the first one the sender's cached
 * KeyRecord lists; listed: whether that KeyRecord lists it (a From: header
 * is the author's claim, the fingerprint is what was verified). */
static void sender_address(pst_node *n, const uint8_t pk[32], const char *from_addr, pst_value *m) {
    pst_keyrec kr;
    uint8_t buf[PST_RECORD_MAX];
    size_t len;
    bool have = pst_store_keyrec_get(n->store, pk, buf, sizeof buf, &len, NULL, NULL) == PST_OK &&
                pst_keyrec_decode(buf, len, &kr) == PST_OK;
    const char *addr = from_addr[0] ? from_addr : have && kr.n_addresses ? kr.addresses[0] : "";
    bool listed = false;
    for (uint32_t i = 0; have && i < kr.n_addresses; i++)
        listed |= strcasecmp(kr.addresses[i], addr) == 0;
    pst_value_add_str(m, "address", addr);
    pst_value_add_bool(m, "address_listed", listed);
}

static void add_entry(pst_node *n, pst_value *arr, const list_entry *e, uint64_t *missing) {
    const pst_maildir_loc *loc = &e->where.loc;
    char root[PST_PATH_MAX], path[PST_PATH_MAX], hex[2 * PST_HASH_BYTES + 1],
        fp[PST_FINGERPRINT_STRLEN + 1];
    pst_maildir_headers h;
    uint64_t size = 0;
    if (!e->where.found ||
        pst_home_path(n->cfg.home, PST_MAILDIR_DIR, root, sizeof root) != PST_OK ||
        pst_maildir_loc_path(root, loc, path, sizeof path) != PST_OK ||
        pst_maildir_read_headers(path, &h, &size) != PST_OK) {
        (*missing)++; /* deleted by a mail client */
        return;
    }
    pst_value *m = pst_value_add_map(arr, NULL);
    sodium_bin2hex(hex, sizeof hex, e->where.id, sizeof e->where.id);
    pst_fingerprint_format(e->sender, fp);
    pst_value_add_str(m, "id", hex);
    pst_value_add_str(m, "from", fp);
    sender_address(n, e->sender, h.address, m);
    char subject[PST_MAILMSG_SUBJECT_MAX + 1];
    pst_mailmsg_display(h.subject, strlen(h.subject), subject, sizeof subject);
    pst_value_add_str(m, "subject", subject);
    pst_value_add_str(m, "date", h.date);
    pst_value_add_uint(m, "size", size);
    pst_value_add_uint(m, "received", e->delivered);
    pst_value_add_str(m, "folder", pst_maildir_folder_display(loc->folder));
    pst_value_add_bool(m, "seen", has_flag(loc->name, 'S'));
    pst_value_add_bool(m, "flagged", has_flag(loc->name, 'F'));
}

static void add_problem(pst_node *n, pst_value *arr, const problem *p) {
    char hex[2 * PST_HASH_BYTES + 1], fp[PST_FINGERPRINT_STRLEN + 1],
        name[PST_INBOX_WHY_NAME_BUFSIZE];
    uint8_t why[PST_STORE_BLOB_MAX + 1];
    size_t len = 0;
    pst_inbox_why_name(p->id, name);
    if (pst_store_meta_get_blob(n->store, name, why, sizeof why - 1, &len) != PST_OK)
        len = 0;
    why[len] = '\0';
    pst_value *m = pst_value_add_map(arr, NULL);
    sodium_bin2hex(hex, sizeof hex, p->id, sizeof p->id);
    pst_fingerprint_format(p->sender, fp);
    pst_value_add_str(m, "id", hex);
    pst_value_add_str(m, "from", fp);
    pst_value_add_str(m, "state", p->state == PST_STORE_IN_FAILED ? "failed" : "pending");
    pst_value_add_uint(m, "attempts", p->attempts);
    pst_value_add_uint(m, "last_attempt", p->last_attempt);
    pst_value_add_uint(m, "expires", p->expires);
    pst_value_add_str(m, "why",
                      len > 0                           ? (const char *)why
                      : p->state == PST_STORE_IN_FAILED ? "gave up"
                                                        : "retrying");
}

void pst_node_cmd_inbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                        void *user) {
    list_ctx l;
    memset(&l, 0, sizeof l);
    l.cap = PST_INBOX_LIST_DEFAULT;
    for (uint32_t i = 0; i < req->n_args; i++) {
        const char *a = req->args[i], *val;
        uint64_t v = 0;
        if (pst_req_arg_is(a, "folder", &val)) {
            if (pst_maildir_folder_parse(val, l.folder) != PST_OK) {
                pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                                "bad folder '%s': INBOX or a name like Known (letters, digits, "
                                "'_', '-', dots between parts)",
                                val);
                return;
            }
            l.filter = true;
        } else if (pst_req_arg_is(a, "limit", &val) && pst_req_count(val, PST_INBOX_LIST_MAX, &v)) {
            l.cap = (unsigned)v;
        } else {
            pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                            "inbox takes folder=F and limit=1..%u, not '%s'", PST_INBOX_LIST_MAX,
                            a);
            return;
        }
    }
    if ((l.ring = calloc(l.cap, sizeof *l.ring)) == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "out of memory");
        return;
    }
    int rc = pst_store_inbox_list(n->store, 0, on_list_row, &l);
    if (rc != PST_OK) {
        free(l.ring);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot read the inbox: %s",
                        pst_store_last_error(n->store));
        return;
    }
    pst_value *b = pst_value_new_map();
    if (l.filter)
        pst_value_add_str(b, "folder", pst_maildir_folder_display(l.folder));
    pst_value *arr = pst_value_add_array(b, "messages");
    uint64_t missing = 0, first = l.total > l.cap ? l.total - l.cap : 0;
    /* the shown ones, found together: at most one scan for all of them */
    place *where = calloc(l.total - first + 1, sizeof *where);
    if (where != NULL) {
        for (uint64_t i = first; i < l.total; i++)
            where[i - first] = l.ring[i % l.cap].where;
        locate_all(n, where, (size_t)(l.total - first), false);
        for (uint64_t i = first; i < l.total; i++)
            l.ring[i % l.cap].where = where[i - first];
        free(where);
    }
    for (uint64_t i = first; i < l.total; i++)
        add_entry(n, arr, &l.ring[i % l.cap], &missing);
    pst_value_add_uint(b, "delivered", l.total);
    pst_value_add_uint(b, "missing", missing);
    pst_value_add_uint(b, "pending", l.pending);
    pst_value_add_uint(b, "failed", l.failed);
    pst_value *probs = pst_value_add_array(b, "undelivered");
    uint64_t from =
        l.n_problems > PST_INBOX_PROBLEMS_MAX ? l.n_problems - PST_INBOX_PROBLEMS_MAX : 0;
    for (uint64_t i = from; i < l.n_problems; i++)
        add_problem(n, probs, &l.problems[i % PST_INBOX_PROBLEMS_MAX]);
    pst_value *notices = pst_value_add_array(b, "notices");
    (void)pst_trust_notices(n, notices);
    free(l.ring);
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

/* ---- read ------------------------------------------------------------------------- */

typedef struct {
    char prefix[2 * PST_HASH_BYTES + 1];
    size_t plen;
    unsigned matches;
    pst_store_in_state state;
    uint8_t id[PST_HASH_BYTES], sender[PST_SIGN_PK_BYTES];
    uint64_t delivered, expires, attempts;
    char folder[PST_STORE_FOLDER_MAX + 1];
    char filename[PST_STORE_FILENAME_MAX + 1];
} read_ctx;

static int on_read_row(const pst_store_inbox_row *row, void *user) {
    read_ctx *r = user;
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, row->msg_id, PST_HASH_BYTES);
    if (strncmp(hex, r->prefix, r->plen) != 0 || r->matches++ > 0)
        return 0;
    r->state = row->state;
    memcpy(r->id, row->msg_id, sizeof r->id);
    memcpy(r->sender, row->sender, sizeof r->sender);
    r->delivered = row->delivered;
    r->expires = row->expires;
    r->attempts = row->attempts;
    snprintf(r->folder, sizeof r->folder, "%s", row->folder);
    snprintf(r->filename, sizeof r->filename, "%s", row->filename);
    return 0;
}

/* Finds the one row whose id starts with the id=HEX argument; 0, or replies
 * with the error itself and returns -1. */
static int find_row(pst_node *n, const pst_ctrl_request *req, const char *command, read_ctx *r,
                    pst_node_reply_cb reply, void *user) {
    memset(r, 0, sizeof *r);
    const char *hex = "";
    if (req->n_args != 1 || !pst_req_arg_is(req->args[0], "id", &hex))
        hex = "";
    r->plen = strlen(hex);
    if (r->plen < PST_READ_PREFIX_MIN || r->plen > 2 * PST_HASH_BYTES ||
        strspn(hex, "0123456789abcdefABCDEF") != r->plen) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "%s takes id=HEX: a message id or a unique prefix of it (%u to 64 hex "
                        "digits)",
                        command, PST_READ_PREFIX_MIN);
        return -1;
    }
    for (size_t i = 0; i < r->plen; i++)
        r->prefix[i] = (char)(hex[i] >= 'A' && hex[i] <= 'F' ? hex[i] + 32 : hex[i]);
    int rc;
    uint8_t id[PST_HASH_BYTES];
    if (r->plen == 2 * PST_HASH_BYTES &&
        sodium_hex2bin(id, sizeof id, r->prefix, r->plen, NULL, NULL, NULL) == 0)
        rc = pst_store_inbox_get(n->store, id, on_read_row, r);
    else
        rc = pst_store_inbox_list(n->store, 0, on_read_row, r);
    if (rc != PST_OK && rc != PST_E_NOTFOUND) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot read the inbox: %s",
                        pst_store_last_error(n->store));
        return -1;
    }
    if (r->matches == 0) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "no message %s in the inbox (see 'postern inbox')", r->prefix);
        return -1;
    }
    if (r->matches > 1) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "%u messages start with %s: give more digits", r->matches, r->prefix);
        return -1;
    }
    return 0;
}

/* `inbox retry`: a message the node gave up on is taken up again while its
 * notification lasts; one still being retried is tried now. */
void pst_node_cmd_inbox_retry(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                              void *user) {
    read_ctx r;
    if (find_row(n, req, "inbox-retry", &r, reply, user) != 0)
        return;
    char hex[2 * PST_HASH_BYTES + 1], name[PST_INBOX_WHY_NAME_BUFSIZE];
    sodium_bin2hex(hex, sizeof hex, r.id, sizeof r.id);
    uint64_t now = pst_now();
    if (r.state == PST_STORE_IN_DELIVERED) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "message %s is already delivered",
                        hex);
        return;
    }
    if (r.expires <= now) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "message %s cannot be fetched any more: the sender's notification "
                        "expired (ask the sender to send it again)",
                        hex);
        return;
    }
    bool was_failed = r.state == PST_STORE_IN_FAILED;
    int rc = pst_store_inbox_retry(n->store, r.id, now);
    if (rc != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot retry message %s: %s", hex,
                        rc == PST_E_STORE ? pst_store_last_error(n->store) : pst_strerror(rc));
        return;
    }
    pst_inbox_why_name(r.id, name);
    (void)pst_store_meta_delete(n->store, name);
    pst_inbox_wake(n, r.id, r.expires);
    pst_counter_add(n, "inbox.retried", 1);
    pst_log_info("message %.16s...: %s on request", hex,
                 was_failed ? "fetching again after giving up" : "fetching now");
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "id", hex);
    pst_value_add_str(b, "was", was_failed ? "failed" : "pending");
    pst_value_add_uint(b, "expires", r.expires);
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

void pst_node_cmd_read(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                       void *user) {
    read_ctx r;
    if (find_row(n, req, "read", &r, reply, user) != 0)
        return;
    char hex[2 * PST_HASH_BYTES + 1], path[PST_PATH_MAX], fp[PST_FINGERPRINT_STRLEN + 1];
    sodium_bin2hex(hex, sizeof hex, r.id, sizeof r.id);
    if (r.state == PST_STORE_IN_PENDING) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "message %s is not fetched yet (%llu attempt%s so far; the node keeps "
                        "trying while the sender's notification lasts)",
                        hex, (unsigned long long)r.attempts, r.attempts == 1 ? "" : "s");
        return;
    }
    if (r.state != PST_STORE_IN_DELIVERED) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "message %s could not be fetched from its sender: the node gave up "
                        "(see 'postern inbox'; 'postern inbox retry' tries again while the "
                        "notification lasts)",
                        hex);
        return;
    }
    pst_maildir_loc loc;
    if (locate(n, r.folder, r.filename, r.id, &loc, path, sizeof path) != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "message %s was delivered but its file is gone from the Maildir "
                        "(deleted by a mail client?)",
                        hex);
        return;
    }
    pst_fingerprint_format(r.sender, fp);
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "id", hex);
    pst_value_add_str(b, "path", path);
    pst_value_add_str(b, "folder", pst_maildir_folder_display(loc.folder));
    pst_value_add_str(b, "from", fp);
    pst_value_add_uint(b, "received", r.delivered);
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}
