/* Node lifecycle: start (lock, identity, store, DHT, bootstrap, fetch port,
 * publication, control socket), request dispatch, and the graceful stop. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "node_int.h"
#include "pst_build.h"
#include "pst_log.h"

uint64_t pst_now(void) { return (uint64_t)time(NULL); }

void pst_node_handle_ref(pst_node *n) { n->handles_open++; }

static void finalize(pst_node *n) {
    pst_counters_flush(n);
    pst_store_close(n->store);
    n->store = NULL;
    pst_identity_free(n->id);
    n->id = NULL;
    pst_trust_free(n);
    if (n->lock_fd >= 0)
        close(n->lock_fd); /* releases the flock */
    void (*cb)(void *) = n->on_stopped;
    void *user = n->stopped_user;
    sodium_memzero(n, sizeof *n);
    free(n);
    if (cb)
        cb(user);
}

void pst_node_handle_unref(pst_node *n) {
    if (--n->handles_open == 0 && n->stopping)
        finalize(n);
}

static void on_handle_closed(uv_handle_t *h) { pst_node_handle_unref(h->data); }

static void on_dht_closed(pst_dht *d) { pst_node_handle_unref(d->data); }

static void on_flush(uv_timer_t *t) { pst_counters_flush(t->data); }

/* ---- dispatch ------------------------------------------------------------- */

/* Lives from pst_node_request_ex until the reply: handlers get it as their
 * reply user, so nothing else needs to track requests in flight. */
struct pst_node_req {
    pst_node_reply_cb reply, progress;
    void *user;
    uint64_t id;
    void (*on_cancel)(void *);
    void *cancel_arg;
    bool cancelled;   /* progress goes nowhere; the hook has run */
    bool dispatching; /* inside pst_node_request_ex: it frees */
    bool answered;
};
typedef struct pst_node_req request_ctx;

static void on_request_done(void *user, const pst_ctrl_response *resp) {
    request_ctx *r = user;
    pst_ctrl_response copy = *resp;
    copy.id = r->id;
    r->answered = true;
    r->on_cancel = NULL;
    r->reply(r->user, &copy);
    if (!r->dispatching)
        free(r);
}

void pst_node_progress(void *reply_user, const pst_value *body) {
    request_ctx *r = reply_user;
    if (r->progress == NULL || r->cancelled || r->answered)
        return;
    pst_ctrl_response resp;
    memset(&resp, 0, sizeof resp);
    resp.id = r->id;
    resp.status = PST_CTRL_STATUS_PROGRESS;
    resp.body = (pst_value *)body; /* encoding only reads it */
    r->progress(r->user, &resp);
}

void pst_node_on_cancel(void *reply_user, void (*fn)(void *arg), void *arg) {
    request_ctx *r = reply_user;
    if (r->answered)
        return;
    if (r->cancelled) {
        if (fn)
            fn(arg);
        return;
    }
    r->on_cancel = fn;
    r->cancel_arg = arg;
}

void pst_node_cancel_request(pst_node_req *r) {
    if (r == NULL || r->cancelled || r->answered)
        return;
    r->cancelled = true;
    void (*fn)(void *) = r->on_cancel;
    r->on_cancel = NULL;
    if (fn)
        fn(r->cancel_arg); /* may reply: r is gone then */
}

static void dispatch(pst_node *n, const pst_ctrl_request *req, request_ctx *r);

pst_node_req *pst_node_request_ex(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                                  pst_node_reply_cb progress, void *user) {
    request_ctx *r = calloc(1, sizeof *r);
    if (r == NULL) {
        pst_reply_error(reply, user, req->id, PST_CTRL_STATUS_FAIL, "out of memory");
        return NULL;
    }
    r->reply = reply;
    r->progress = progress;
    r->user = user;
    r->id = req->id;
    r->dispatching = true;
    dispatch(n, req, r);
    r->dispatching = false;
    if (r->answered) {
        free(r);
        return NULL;
    }
    return r;
}

void pst_node_request(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                      void *user) {
    (void)pst_node_request_ex(n, req, reply, NULL, user);
}

static void dispatch(pst_node *n, const pst_ctrl_request *req, request_ctx *r) {
    pst_counter_add(n, "control.requests", 1);
    if (n->stopping) {
        pst_reply_error(on_request_done, r, 0, PST_CTRL_STATUS_FAIL, "the node is shutting down");
    } else if (strcmp(req->command, "ping") == 0) {
        pst_value *b = pst_value_new_map();
        pst_value_add_bool(b, "joined", pst_node_joined(n));
        pst_reply_ok(on_request_done, r, 0, PST_CTRL_STATUS_OK, b);
        pst_value_free(b);
    } else if (strcmp(req->command, "id") == 0) {
        pst_node_cmd_id(n, req, on_request_done, r);
    } else if (strcmp(req->command, "status") == 0) {
        pst_node_cmd_status(n, req, on_request_done, r);
    } else if (strcmp(req->command, "key-get") == 0) {
        if (req->n_args != 1)
            pst_reply_error(on_request_done, r, 0, PST_CTRL_STATUS_USAGE,
                            "key-get takes one fingerprint or address");
        else
            pst_lookup_key(n, req->args[0], on_request_done, r);
    } else if (strcmp(req->command, "key-revoke") == 0) {
        pst_node_cmd_revoke(n, req, on_request_done, r);
    } else if (strcmp(req->command, "trust-set") == 0) {
        pst_node_cmd_trust_set(n, req, on_request_done, r);
    } else if (strcmp(req->command, "trust-rm") == 0) {
        pst_node_cmd_trust_rm(n, req, on_request_done, r);
    } else if (strcmp(req->command, "trust-list") == 0) {
        pst_node_cmd_trust_list(n, req, on_request_done, r);
    } else if (n->mode == PST_NODE_DAEMON && strcmp(req->command, "vouch") == 0) {
        pst_node_cmd_vouch(n, req, on_request_done, r);
    } else if (n->mode == PST_NODE_DAEMON && strcmp(req->command, "unvouch") == 0) {
        pst_node_cmd_unvouch(n, req, on_request_done, r);
    } else if (n->mode == PST_NODE_DAEMON && strcmp(req->command, "send") == 0) {
        pst_node_cmd_send(n, req, on_request_done, r);
    } else if (n->mode == PST_NODE_DAEMON && strcmp(req->command, "outbox") == 0) {
        pst_node_cmd_outbox(n, req, on_request_done, r);
    } else if (n->mode == PST_NODE_DAEMON && strcmp(req->command, "outbox-retry") == 0) {
        pst_node_cmd_outbox_retry(n, req, on_request_done, r);
    } else if (n->mode == PST_NODE_DAEMON && strcmp(req->command, "inbox-retry") == 0) {
        pst_node_cmd_inbox_retry(n, req, on_request_done, r);
    } else if (n->mode == PST_NODE_DAEMON && strcmp(req->command, "unsend") == 0) {
        pst_node_cmd_unsend(n, req, on_request_done, r);
    } else if (n->mode == PST_NODE_DAEMON && strcmp(req->command, "inbox") == 0) {
        pst_node_cmd_inbox(n, req, on_request_done, r);
    } else if (n->mode == PST_NODE_DAEMON && strcmp(req->command, "read") == 0) {
        pst_node_cmd_read(n, req, on_request_done, r);
    } else {
        pst_reply_error(on_request_done, r, 0, PST_CTRL_STATUS_USAGE,
                        "unknown command '%s' (this node runs Postern %s; is the CLI newer?)",
                        req->command, PST_VERSION);
    }
}

bool pst_node_joined(const pst_node *n) {
    struct pst_dht_stats ds;
    pst_dht_stats(&n->dht, &ds);
    return ds.last_answered_op > ds.last_unanswered_op;
}

/* ---- start ------------------------------------------------------------------- */

unsigned pst_node_init_addresses(pst_store *st,
                                 char out[PST_KEYREC_ADDRESSES_MAX][PST_ADDRESS_MAX + 1]) {
    uint8_t list[PST_KEYREC_ADDRESSES_MAX * (PST_ADDRESS_MAX + 1)];
    size_t llen = 0, off = 0;
    unsigned count = 0;
    if (pst_store_meta_get_blob(st, "addresses", list, sizeof list, &llen) != PST_OK)
        return 0;
    while (off < llen && count < PST_KEYREC_ADDRESSES_MAX) {
        size_t l = strnlen((const char *)list + off, llen - off);
        if (l > 0 && l <= PST_ADDRESS_MAX)
            snprintf(out[count++], PST_ADDRESS_MAX + 1, "%.*s", (int)l, (const char *)list + off);
        off += l + 1;
    }
    return count;
}

static int load_identity(pst_node *n, const char *passphrase, char *err, size_t errcap) {
    int rc = pst_identity_load(n->cfg.home, passphrase, n->store, PST_IDLOAD_RECORD, &n->id, err,
                               errcap);
    if (rc != PST_OK)
        return rc;
    pst_fingerprint_format(n->id->sign_pk, n->fingerprint);
    /* the addresses given to `postern init` */
    n->n_addresses = pst_node_init_addresses(n->store, n->addresses);
    return PST_OK;
}

static int take_lock(pst_node *n, char *err, size_t errcap) {
    char path[PST_PATH_MAX];
    if (pst_home_path(n->cfg.home, PST_FILE_PIDLOCK, path, sizeof path) != PST_OK)
        return PST_E_NOSPACE;
    n->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (n->lock_fd < 0) {
        snprintf(err, errcap, "cannot open %s: %s", path, strerror(errno));
        return PST_E_IO;
    }
    if (flock(n->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errcap,
                 "another posternd already runs for %s (stop it, or use another --home)",
                 n->cfg.home);
        close(n->lock_fd);
        n->lock_fd = -1;
        return PST_E_BUSY;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(n->lock_fd, 0) == 0 && write(n->lock_fd, pid, (size_t)len) < 0)
        pst_log_debug("cannot write the pid into the lock file");
    return PST_OK;
}

static void on_dht_log(void *user, int level, const char *msg) {
    (void)user;
    pst_log(level <= PST_DHT_LOG_ERROR  ? PST_LOG_ERROR
            : level <= PST_DHT_LOG_WARN ? PST_LOG_WARN
            : level <= PST_DHT_LOG_INFO ? PST_LOG_INFO
                                        : PST_LOG_DEBUG,
            "%s", msg);
}

static void stop_now(pst_node *n);

int pst_node_start(uv_loop_t *loop, const pst_node_config *cfg, pst_node_mode mode,
                   const char *passphrase, pst_node **out, char *err, size_t errcap) {
    *out = NULL;
    err[0] = '\0';
    pst_node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return PST_E_NOMEM;
    n->loop = loop;
    n->cfg = *cfg;
    n->mode = mode;
    n->lock_fd = -1;
    n->started_at = pst_now();
    int rc;
    bool use_home = mode == PST_NODE_DAEMON;
    if (mode == PST_NODE_ONESHOT) {
        /* a one-shot uses the home's cache when the home exists and no
         * daemon holds it (the CLI only runs one-shots when none answers) */
        char path[PST_PATH_MAX];
        use_home = pst_home_path(cfg->home, PST_FILE_STORE, path, sizeof path) == PST_OK &&
                   access(path, F_OK) == 0;
    }
    if (use_home) {
        if ((rc = pst_home_ensure(cfg->home, err, errcap)) != PST_OK ||
            (rc = take_lock(n, err, errcap)) != PST_OK)
            goto fail_early;
    }
    char dbpath[PST_PATH_MAX];
    if (use_home)
        pst_home_path(cfg->home, PST_FILE_STORE, dbpath, sizeof dbpath);
    else
        snprintf(dbpath, sizeof dbpath, ":memory:");
    rc = pst_store_open_ex(&n->store, dbpath, err, errcap);
    if (rc != PST_OK)
        goto fail_early;
    pst_counters_load(n);
    /* before the DHT node exists: a wrong key must not publish anything */
    if (mode == PST_NODE_DAEMON && (rc = load_identity(n, passphrase, err, errcap)) != PST_OK)
        goto fail_early;

    pst_dht_config dc;
    memset(&dc, 0, sizeof dc);
    dc.network_id = cfg->network;
    dc.public_network = cfg->network == PST_NETWORK_PUBLIC;
    dc.port = cfg->port;
    dc.peer_discovery = cfg->peer_discovery;
    dc.log = on_dht_log;
    rc = pst_dht_init(loop, &n->dht, &dc);
    n->dht.data = n; /* init clears the handle, data included */
    if (rc != PST_OK) {
        snprintf(err, errcap,
                 "cannot start the DHT node on UDP port %u: %s (choose another --port)", cfg->port,
                 pst_strerror(rc));
        goto fail_early;
    }
    n->dht_live = true;
    pst_node_handle_ref(n);

    uv_timer_init(loop, &n->flush_timer);
    n->flush_timer.data = n;
    pst_node_handle_ref(n);
    uv_timer_start(&n->flush_timer, on_flush, PST_COUNTER_FLUSH_MS, PST_COUNTER_FLUSH_MS);

    pst_bootstrap_start(n);
    if (mode == PST_NODE_DAEMON) {
        if ((rc = pst_outbox_start(n, err, errcap)) != PST_OK ||
            (rc = pst_publish_start(n)) != PST_OK || (rc = pst_ingest_listen_own(n)) != PST_OK ||
            (rc = pst_inbox_start(n, err, errcap)) != PST_OK ||
            (rc = pst_ctrl_server_start(n, err, errcap)) != PST_OK) {
            if (err[0] == '\0')
                snprintf(err, errcap, "cannot start: %s", pst_strerror(rc));
            stop_now(n);
            uv_run(loop, UV_RUN_DEFAULT); /* let the handles close */
            return rc;
        }
        struct pst_dht_stats ds;
        pst_dht_stats(&n->dht, &ds);
        pst_log_info("node %s up: dht udp %u, fetch tcp %u, network %u, %u seed%s, control %s/%s",
                     n->fingerprint, ds.port4, n->fetch_port, cfg->network, cfg->nseeds,
                     cfg->nseeds == 1 ? "" : "s", cfg->home, PST_FILE_CONTROL);
    }
    *out = n;
    return PST_OK;

fail_early:
    pst_store_close(n->store);
    pst_identity_free(n->id);
    if (n->lock_fd >= 0)
        close(n->lock_fd);
    free(n);
    return rc;
}

/* ---- stop ------------------------------------------------------------------- */

static void close_handle(pst_node *n, uv_handle_t *h) {
    if (!uv_is_closing(h)) {
        h->data = n;
        uv_close(h, on_handle_closed);
    }
}

static void stop_now(pst_node *n) {
    if (n->stopping)
        return;
    n->stopping = true;
    pst_ctrl_server_stop(n);
    pst_clock_probe_stop(n);
    for (unsigned i = 0; i < n->n_listens; i++) {
        pst_dht_listen_cancel(&n->dht, n->listens[i]);
        free(n->listen_ctx[i]);
    }
    n->n_listens = 0;
    if (n->handles_open == 0) {
        finalize(n);
        return;
    }
    pst_node_handle_ref(n); /* hold until every close below is issued */
    if (n->bootstrap_timer.loop)
        close_handle(n, (uv_handle_t *)&n->bootstrap_timer);
    if (n->republish_timer.loop)
        close_handle(n, (uv_handle_t *)&n->republish_timer);
    if (n->flush_timer.loop)
        close_handle(n, (uv_handle_t *)&n->flush_timer);
    if (n->mode == PST_NODE_DAEMON) {
        pst_inbox_stop(n);
        pst_outbox_stop(n);
    }
    pst_counters_flush(n);
    if (n->dht_live)
        pst_dht_close(&n->dht, on_dht_closed);
    pst_node_handle_unref(n);
}

void pst_node_stop(pst_node *n, void (*on_stopped)(void *user), void *user) {
    n->on_stopped = on_stopped;
    n->stopped_user = user;
    pst_log_info("stopping: closing the control socket, shutting the DHT node down");
    stop_now(n);
}
