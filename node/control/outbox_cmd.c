/* Control commands of the sender side: `outbox` lists messages and says for
 * each recipient why it has not got the message yet, `unsend` withdraws a
 * message nobody fetched, `outbox retry` offers a message again at once
 * (postqueue -i). The outbox itself (notifications kept alive, bodies,
 * garbage) is outbox.c; these only read the store and call into it. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pst_control.h"
#include "pst_log.h"

/* ---- `outbox` and `unsend` ----------------------------------------------- */

/* Message id from full hex or a unique prefix of at least 8 digits. */
typedef struct {
    char prefix[2 * PST_HASH_BYTES + 1];
    size_t len;
    unsigned matches;
    uint8_t id[PST_HASH_BYTES];
    uint8_t last[PST_HASH_BYTES];
    bool have_last;
} id_search;

static int on_id_row(const pst_store_outbox_row *row, void *user) {
    id_search *s = user;
    if (s->have_last && memcmp(s->last, row->msg_id, PST_HASH_BYTES) == 0)
        return 0;
    memcpy(s->last, row->msg_id, PST_HASH_BYTES);
    s->have_last = true;
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, row->msg_id, PST_HASH_BYTES);
    if (strncmp(hex, s->prefix, s->len) == 0) {
        s->matches++;
        memcpy(s->id, row->msg_id, PST_HASH_BYTES);
    }
    return 0;
}

/* 0 and *id set, or replies with the error itself and returns -1. */
static int find_message(pst_node *n, const char *arg, uint8_t id[PST_HASH_BYTES],
                        pst_node_reply_cb reply, void *user) {
    id_search s;
    memset(&s, 0, sizeof s);
    s.len = strlen(arg);
    bool hex = s.len >= 8 && s.len <= 2 * PST_HASH_BYTES;
    for (size_t i = 0; hex && i < s.len; i++)
        hex = (arg[i] >= '0' && arg[i] <= '9') || (arg[i] >= 'a' && arg[i] <= 'f') ||
              (arg[i] >= 'A' && arg[i] <= 'F');
    if (!hex) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "'%s' is not a message id (64 hex digits, or a unique prefix of 8 or more)",
                        arg);
        return -1;
    }
    for (size_t i = 0; i < s.len; i++)
        s.prefix[i] = (char)(arg[i] | 0x20);
    int rc = pst_store_outbox_list(n->store, 0, on_id_row, &s);
    if (rc < 0) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot read the outbox: %s",
                        pst_store_last_error(n->store));
        return -1;
    }
    if (s.matches != 1) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        s.matches == 0 ? "no message %s in the outbox (see 'postern outbox')"
                                       : "message id prefix %s is ambiguous: give more digits",
                        arg);
        return -1;
    }
    memcpy(id, s.id, PST_HASH_BYTES);
    return 0;
}

static const char *state_name(const pst_store_outbox_row *r) {
    switch (r->state) {
    case PST_STORE_OUT_PENDING:
        return r->notify_count > 0 ? "notified" : "pending";
    case PST_STORE_OUT_DELIVERED:
        return "fetched";
    case PST_STORE_OUT_EXPIRED:
        return "expired";
    case PST_STORE_OUT_WITHDRAWN:
        return "withdrawn";
    default:
        return "failed";
    }
}

/* A value tree is capped at PST_VALUE_NODES_MAX values: messages are
 * listed newest first while this budget lasts. */
#define LIST_BUDGET 3600u
#define MSG_NODES 12u
#define RCPT_NODES 18u

typedef struct {
    uint64_t skip;  /* messages to pass over (older ones) */
    uint64_t total; /* messages seen */
    uint8_t last[PST_HASH_BYTES];
    bool have_last;
    pst_value *arr;
    pst_value *cur; /* recipients array of the current message */
    pst_node *node;
    uint64_t damaged; /* of the current message: since when, 0 if intact */
    unsigned nodes;
    bool truncated;
} list_walk;

/* Why a recipient does not have the message (yet), in words: the sender only
 * sees its own side (notification puts, complete fetches, receipts), so a
 * body fetched without a receipt is what a recipient's node that gave up
 * (or refused it) looks like from here. NULL when fetched. */
static const char *rcpt_why(const pst_store_outbox_row *row, bool damaged) {
    switch (row->state) {
    case PST_STORE_OUT_PENDING:
        if (damaged)
            return "waiting: the body on disk is damaged, so fetches are refused";
        if (row->notify_count == 0)
            return "waiting: no notification put confirmed yet";
        return row->serve_count > 0 ? "fetched without a receipt so far: waiting for it"
                                    : "waiting for the recipient's node to fetch it";
    case PST_STORE_OUT_EXPIRED:
        if (damaged)
            return "expired: the body on disk was damaged, fetches were refused";
        return row->serve_count > 0
                   ? "expired: fetched but no receipt came (the recipient's node gave up on it "
                     "or lost it)"
                   : "expired: never fetched before the message expired";
    case PST_STORE_OUT_WITHDRAWN:
        return "withdrawn with 'postern unsend'";
    case PST_STORE_OUT_FAILED:
        return "given up";
    default:
        return NULL;
    }
}

/* Returns the values added for the recipient's devices (issue 13). */
static unsigned add_rcpt(pst_node *n, pst_value *arr, const pst_store_outbox_row *row,
                         bool damaged) {
    pst_value *e = pst_value_add_map(arr, NULL);
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(row->rcpt, fp);
    pst_value_add_str(e, "fingerprint", fp);
    pst_value_add_str(e, "kind", pst_store_rcpt_kind_name(row->kind));
    pst_value_add_str(e, "state", state_name(row));
    pst_value_add_uint(e, "updated", row->updated);
    pst_value_add_uint(e, "notified", row->notified);
    pst_value_add_uint(e, "notify_count", row->notify_count);
    pst_value_add_uint(e, "served", row->served);
    pst_value_add_uint(e, "serve_count", row->serve_count);
    const char *why = rcpt_why(row, damaged);
    if (why != NULL)
        pst_value_add_str(e, "why", why);
    pst_receipt rc;
    if (row->receipt && pst_receipt_decode(row->receipt, row->receipt_len, &rc) == PST_OK) {
        pst_value_add_uint(e, "fetched", row->updated);
        pst_value *r = pst_value_add_map(e, "receipt");
        pst_value_add_uint(r, "created", rc.created);
        pst_value_add_uint(r, "stored_at", rc.stored_at);
        pst_value_add_bool(r, "verified", true);
        pst_value_add_bin(r, "bytes", row->receipt, row->receipt_len);
    }
    /* an identity with several devices: each fetches its own copy */
    unsigned nd = pst_outbox_devices_describe(n, row->msg_id, row->rcpt, e);
    return nd > 0 ? 1u + nd * PST_OUTBOX_DEVICE_NODES : 0u;
}

static void add_message(list_walk *w, const pst_store_outbox_row *row, uint64_t damaged) {
    pst_value *m = pst_value_add_map(w->arr, NULL);
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, row->msg_id, PST_HASH_BYTES);
    pst_value_add_str(m, "message_id", hex);
    pst_value_add_uint(m, "created", row->created);
    pst_value_add_uint(m, "expires", row->expires);
    pst_value_add_uint(m, "size", row->size);
    pst_value_add_str(m, "subject", row->subject);
    pst_value_add_str(m, "state", row->done ? "done" : "live");
    if (row->done)
        pst_value_add_uint(m, "done_at", row->done);
    if (damaged != 0)
        pst_value_add_uint(m, "body_damaged", damaged);
    w->cur = pst_value_add_array(m, "recipients");
}

static int on_list_row(const pst_store_outbox_row *row, void *user) {
    list_walk *w = user;
    bool fresh = !w->have_last || memcmp(w->last, row->msg_id, PST_HASH_BYTES) != 0;
    if (fresh) {
        memcpy(w->last, row->msg_id, PST_HASH_BYTES);
        w->have_last = true;
        w->total++;
    }
    if (w->arr == NULL || w->total <= w->skip || w->truncated)
        return 0;
    if (w->nodes + (fresh ? MSG_NODES : 0) + RCPT_NODES > LIST_BUDGET) {
        w->truncated = true;
        return 0;
    }
    if (fresh) {
        w->damaged = pst_outbox_body_damaged_since(w->node, row->msg_id);
        add_message(w, row, w->damaged);
        w->nodes += MSG_NODES;
    }
    /* devices are counted after the fact: at most 65 more values, within
     * the margin between LIST_BUDGET and PST_VALUE_NODES_MAX */
    w->nodes += RCPT_NODES + add_rcpt(w->node, w->cur, row, w->damaged != 0);
    return 0;
}

void pst_node_cmd_outbox(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user) {
    static const char *const keys[] = {"limit", "message"};
    const char *v;
    uint64_t limit = 20;
    if (!pst_req_args_known(req, keys, 2)) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "outbox takes limit=N and message=ID");
        return;
    }
    if ((v = pst_req_arg(req, "limit")) != NULL && !pst_req_count(v, 1000, &limit)) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "limit must be 1..1000");
        return;
    }
    list_walk w;
    memset(&w, 0, sizeof w);
    w.node = n;
    pst_value *b = pst_value_new_map();
    int rc;
    if ((v = pst_req_arg(req, "message")) != NULL) {
        uint8_t id[PST_HASH_BYTES];
        if (find_message(n, v, id, reply, user) != 0) {
            pst_value_free(b);
            return;
        }
        w.arr = pst_value_add_array(b, "messages");
        rc = pst_store_outbox_list_msg(n->store, id, on_list_row, &w);
    } else {
        rc = pst_store_outbox_list(n->store, 0, on_list_row, &w); /* count */
        w.skip = w.total > limit ? w.total - limit : 0;
        w.total = 0;
        w.have_last = false;
        w.arr = pst_value_add_array(b, "messages");
        if (rc >= 0)
            rc = pst_store_outbox_list(n->store, 0, on_list_row, &w);
    }
    if (rc < 0) {
        pst_value_free(b);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot read the outbox: %s",
                        pst_store_last_error(n->store));
        return;
    }
    pst_value_add_uint(b, "total", w.total);
    pst_value_add_bool(b, "truncated", w.truncated || w.skip > 0);
    pst_relay_list(n, pst_value_add_array(b, "internet"), (unsigned)limit);
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

typedef struct {
    unsigned pending, delivered, other;
    pst_value *withdrawn, *fetched;
} unsend_walk;

static int on_unsend_row(const pst_store_outbox_row *row, void *user) {
    unsend_walk *w = user;
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(row->rcpt, fp);
    if (row->state == PST_STORE_OUT_PENDING) {
        w->pending++;
        if (w->withdrawn)
            pst_value_add_str(w->withdrawn, NULL, fp);
    } else if (row->state == PST_STORE_OUT_DELIVERED) {
        w->delivered++;
        if (w->fetched)
            pst_value_add_str(w->fetched, NULL, fp);
    } else {
        w->other++;
    }
    return 0;
}

void pst_node_cmd_unsend(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user) {
    static const char *const keys[] = {"message"};
    const char *v;
    if (!pst_req_args_known(req, keys, 1) || (v = pst_req_arg(req, "message")) == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "unsend takes message=ID");
        return;
    }
    uint8_t id[PST_HASH_BYTES];
    if (find_message(n, v, id, reply, user) != 0)
        return;
    unsend_walk w;
    memset(&w, 0, sizeof w);
    int rc = pst_store_outbox_list_msg(n->store, id, on_unsend_row, &w);
    if (rc >= 0 && w.pending == 0) {
        if (w.other == 0)
            pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                            "every recipient already fetched this message (their receipts are "
                            "in 'postern outbox'): it cannot be withdrawn");
        else
            pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                            "nothing to withdraw: no recipient is waiting for this message "
                            "(%u fetched, %u expired, failed or withdrawn)",
                            w.delivered, w.other);
        return;
    }
    unsigned withdrawn = 0;
    pst_value *b = pst_value_new_map();
    memset(&w, 0, sizeof w);
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, id, PST_HASH_BYTES);
    pst_value_add_str(b, "message_id", hex);
    w.withdrawn = pst_value_add_array(b, "withdrawn");
    w.fetched = pst_value_add_array(b, "already_fetched");
    if (rc >= 0)
        rc = pst_store_outbox_list_msg(n->store, id, on_unsend_row, &w);
    if (rc >= 0)
        rc = pst_store_outbox_withdraw(n->store, id, pst_now(), &withdrawn);
    if (rc < 0) {
        pst_value_free(b);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot withdraw the message: %s",
                        pst_store_last_error(n->store));
        return;
    }
    pst_outbox_untrack(n, id, NULL);
    pst_outbox_settle(n, id);
    bool gone = pst_outbox_body_gone(n, id);
    pst_counter_add(n, "outbox.withdrawn", withdrawn);
    pst_value_add_bool(b, "body_deleted", gone);
    pst_value_add_str(b, "note",
                      "the recipients' nodes can no longer fetch the message; notifications "
                      "already in the DHT cannot be deleted and expire within 10 minutes");
    pst_log_info("message %.16s... withdrawn from %u recipient%s", hex, withdrawn,
                 withdrawn == 1 ? "" : "s");
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

/* ---- `outbox retry`: flush one message now (postqueue -i) ---------------------
 * Every recipient still waiting gets its notification put again at once, and
 * its back-off starts over (first re-put after renotify_s), as if the message
 * had just been sent (a stamp already minted by --pow auto stays). A recipient whose
 * notification expired cannot be re-offered: its expiry is signed inside the
 * seal and the node does not keep the message key, so the answer says to send
 * the message again. */

typedef struct {
    pst_node *node;
    unsigned offered, expired, other;
    uint64_t now;
    pst_value *offered_to, *not_offered;
} retry_walk;

static int on_retry_row(const pst_store_outbox_row *row, void *user) {
    retry_walk *w = user;
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(row->rcpt, fp);
    if (row->state == PST_STORE_OUT_DELIVERED)
        return 0;
    if (row->state != PST_STORE_OUT_PENDING || row->expires <= w->now) {
        bool expired = row->state == PST_STORE_OUT_EXPIRED || row->expires <= w->now;
        expired ? w->expired++ : w->other++;
        pst_value *e = pst_value_add_map(w->not_offered, NULL);
        pst_value_add_str(e, "fingerprint", fp);
        pst_value_add_str(e, "why",
                          expired ? "its notification expired: send the message again"
                                  : rcpt_why(row, false));
        return 0;
    }
    int rc = pst_outbox_reoffer(w->node, row);
    if (rc != PST_OK) {
        w->other++;
        pst_value *e = pst_value_add_map(w->not_offered, NULL);
        pst_value_add_str(e, "fingerprint", fp);
        pst_value_add_str(
            e, "why", rc == PST_E_BUSY ? "too many notifications kept alive" : pst_strerror(rc));
        return 0;
    }
    w->offered++;
    pst_value_add_str(w->offered_to, NULL, fp);
    return 0;
}

void pst_node_cmd_outbox_retry(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                               void *user) {
    static const char *const keys[] = {"message"};
    const char *v;
    if (!pst_req_args_known(req, keys, 1) || (v = pst_req_arg(req, "message")) == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "outbox-retry takes message=ID");
        return;
    }
    if (!pst_outbox_accepting(n)) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "this node cannot send mail now");
        return;
    }
    uint8_t id[PST_HASH_BYTES];
    if (find_message(n, v, id, reply, user) != 0)
        return;
    retry_walk w;
    memset(&w, 0, sizeof w);
    w.node = n;
    w.now = pst_now();
    pst_value *b = pst_value_new_map();
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, id, PST_HASH_BYTES);
    pst_value_add_str(b, "message_id", hex);
    w.offered_to = pst_value_add_array(b, "offered");
    w.not_offered = pst_value_add_array(b, "not_offered");
    int rc = pst_store_outbox_list_msg(n->store, id, on_retry_row, &w);
    if (rc < 0) {
        pst_value_free(b);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot read the outbox: %s",
                        pst_store_last_error(n->store));
        return;
    }
    uint64_t damaged = pst_outbox_body_damaged_since(n, id);
    if (damaged != 0)
        pst_value_add_uint(b, "body_damaged", damaged);
    pst_counter_add(n, "outbox.retried", w.offered);
    pst_log_info("message %.16s...: offered again to %u recipient%s", hex, w.offered,
                 w.offered == 1 ? "" : "s");
    if (w.offered == 0) {
        pst_value_free(b);
        if (w.expired > 0)
            pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                            "nothing to retry: the message expired for %u recipient%s (the "
                            "notification's expiry is signed: send the message again)",
                            w.expired, w.expired == 1 ? "" : "s");
        else
            pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                            "nothing to retry: no recipient is waiting for this message");
        return;
    }
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}
