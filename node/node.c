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

#include "pst_control.h"
#include "pst_node.h"
#include "pst_build.h"
#include "pst_log.h"

static void finalize(pst_node *n) {
    pst_counters_flush(n);
    pst_store_close(n->store);
    n->store = NULL;
    pst_identity_free(n->id);
    n->id = NULL;
    pst_identity_free(n->device);
    n->device = NULL;
    pst_pairing_free(n);
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

static void on_handle_closed(uv_handle_t *h) { pst_node_handle_unref(h->data); }

static void on_dht_closed(pst_dht *d) { pst_node_handle_unref(d->data); }

static void on_flush(uv_timer_t *t) { pst_counters_flush(t->data); }

/* ---- start ------------------------------------------------------------------- */

static int load_identity(pst_node *n, const char *passphrase, char *err, size_t errcap) {
    char idpath[PST_PATH_MAX], devpath[PST_PATH_MAX];
    int rc;
    if (pst_home_path(n->cfg.home, PST_FILE_IDENTITY, idpath, sizeof idpath) != PST_OK ||
        pst_home_path(n->cfg.home, PST_FILE_DEVICE, devpath, sizeof devpath) != PST_OK)
        return PST_E_NOSPACE;
    /* a joined device (issue 13): its device key, and the identity's public
     * key from the store */
    if (access(idpath, F_OK) != 0 && access(devpath, F_OK) == 0) {
        if ((rc = pst_keys_devices_load(n, false, err, errcap)) != PST_OK)
            return rc;
        n->n_addresses = pst_node_init_addresses(n->store, n->addresses);
        return PST_OK;
    }
    rc = pst_identity_load(n->cfg.home, passphrase, n->store, PST_IDLOAD_RECORD, &n->id, err,
                           errcap);
    if (rc != PST_OK)
        return rc;
    pst_fingerprint_format(n->id->sign_pk, n->fingerprint);
    if ((rc = pst_keys_devices_load(n, true, err, errcap)) != PST_OK)
        return rc;
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
    n->on_last_handle = finalize;
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
        n->clock_probe = pst_clock_probe; /* core's one upward call, wired here */
        if ((rc = pst_outbox_start(n, err, errcap)) != PST_OK ||
            (rc = pst_fetch_server_start(n, err, errcap)) != PST_OK ||
            (rc = pst_publish_start(n)) != PST_OK || (rc = pst_ingest_listen_own(n)) != PST_OK ||
            (rc = pst_keys_devlist_listen_own(n)) != PST_OK ||
            (rc = pst_inbox_start(n, err, errcap)) != PST_OK ||
            (rc = pst_smtp_server_start(n, err, errcap)) != PST_OK ||
            (rc = pst_lmtp_server_start(n, err, errcap)) != PST_OK ||
            (rc = pst_relay_start(n, err, errcap)) != PST_OK ||
            (rc = pst_ctrl_server_start(n, err, errcap)) != PST_OK) {
            if (err[0] == '\0')
                snprintf(err, errcap, "cannot start: %s", pst_strerror(rc));
            stop_now(n);
            uv_run(loop, UV_RUN_DEFAULT); /* let the handles close */
            return rc;
        }
        struct pst_dht_stats ds;
        pst_dht_stats(&n->dht, &ds);
        pst_log_info("node %s up: dht udp %u, fetch tcp %u, smtp %s:%u, lmtp %s, network %u, "
                     "%u seed%s, control %s/%s",
                     n->fingerprint, ds.port4, n->fetch_port,
                     n->smtp_port ? cfg->smtp_address : "off", n->smtp_port,
                     n->lmtp_path[0] ? n->lmtp_path : "off", cfg->network, cfg->nseeds,
                     cfg->nseeds == 1 ? "" : "s", cfg->home, PST_FILE_CONTROL);
    }
    *out = n;
    return PST_OK;

fail_early:
    pst_store_close(n->store);
    pst_identity_free(n->id);
    pst_identity_free(n->device);
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
    pst_keys_devices_stop(n);
    pst_pairing_stop(n);
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
        pst_smtp_server_stop(n); /* cancels its sends: before pst_send_stop */
        pst_lmtp_server_stop(n);
        pst_relay_stop(n);
        pst_inbox_stop(n);
        /* the sends and the fetch server hold outbox references: they go
         * first, the outbox frees itself at its last reference */
        pst_send_stop(n);
        pst_fetch_server_stop(n);
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
