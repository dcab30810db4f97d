/* The smarthost queue, loop side. One recipient at a time: the store's
 * earliest pending row (pst_store_relay_next) is tried when it is due, on a
 * worker thread (relay_worker.c); the result goes back into the store
 * (sent, or retrying with the next try doubling from smarthost_retry up to
 * an hour, or bounced) before the next row is looked at. The message file
 * DIR/relay/<msg id> goes once none of its recipients is pending. A row is
 * only marked sent after the smarthost's 250: a crash in between sends it
 * again (at least once, as SMTP itself). */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pst_log.h"

#include "relay_int.h"

#define INVALID_SUFFIX "@postern.invalid"

static void schedule(struct pst_relay *r, uint64_t delay_s);

bool pst_relay_takes(const pst_node *n, const char *addr) {
    size_t l = strlen(addr), sl = strlen(INVALID_SUFFIX);
    return n->relay != NULL && !n->relay->stopping && strchr(addr, '@') != NULL &&
           !(l >= sl && strcasecmp(addr + l - sl, INVALID_SUFFIX) == 0);
}

const char *pst_relay_dir(const pst_node *n) { return n->relay ? n->relay->dir : ""; }

static int body_path(const struct pst_relay *r, const uint8_t id[PST_HASH_BYTES], char *out,
                     size_t cap) {
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, id, PST_HASH_BYTES);
    return snprintf(out, cap, "%s/%s", r->dir, hex) < (int)cap ? PST_OK : PST_E_NOSPACE;
}

int pst_relay_commit_body(pst_node *n, const char *tmp, const uint8_t msg_id[PST_HASH_BYTES],
                          char *final, size_t cap) {
    if (n->relay == NULL || body_path(n->relay, msg_id, final, cap) != PST_OK) {
        if (cap > 0)
            final[0] = '\0';
        errno = ENAMETOOLONG;
        return PST_E_IO;
    }
    if (rename(tmp, final) != 0) {
        final[0] = '\0';
        return PST_E_IO;
    }
    return pst_fsync_dir(n->relay->dir);
}

int pst_relay_queue(pst_node *n, const uint8_t msg_id[PST_HASH_BYTES], const char *rcpt,
                    const char *sender, uint64_t now) {
    return pst_store_relay_add(n->store, msg_id, rcpt, sender, now,
                               now + n->cfg.smarthost_giveup_s);
}

void pst_relay_kick(pst_node *n) {
    if (n->relay != NULL && !n->relay->busy && !n->relay->stopping)
        schedule(n->relay, 0);
}

/* The message file is no longer needed once nobody waits for it. */
static void drop_body_if_done(struct pst_relay *r, const uint8_t id[PST_HASH_BYTES]) {
    uint64_t pending = 0;
    char path[PST_PATH_MAX];
    if (pst_store_relay_msg_pending(r->node->store, id, &pending) == PST_OK && pending == 0 &&
        body_path(r, id, path, sizeof path) == PST_OK && unlink(path) != 0 && errno != ENOENT)
        pst_log_warn("smarthost: cannot remove %s: %s", path, strerror(errno));
}

static void free_relay(struct pst_relay *r) {
    if (r->cred)
        sodium_free(r->cred);
    free(r);
}

static void on_timer_closed(uv_handle_t *h) {
    struct pst_relay *r = h->data;
    pst_node *n = r->node;
    r->timer_closed = true;
    if (!r->busy)
        free_relay(r);
    pst_node_handle_unref(n);
}

static uint64_t backoff(const pst_node *n, unsigned attempts) {
    uint64_t d = n->cfg.smarthost_retry_s;
    for (unsigned i = 1; i < attempts && d < RELAY_RETRY_MAX_S; i++)
        d *= 2;
    return d < RELAY_RETRY_MAX_S ? d : RELAY_RETRY_MAX_S;
}

static void work_done(uv_work_t *w, int status) {
    struct pst_relay *r = w->data;
    pst_node *n = r->node;
    r->busy = false;
    if (r->timer_closed) { /* stopped meanwhile: the row stays as it was */
        free_relay(r);
        pst_node_handle_unref(n);
        return;
    }
    pst_node_handle_unref(n);
    const pst_store_relay_row *row = &r->row;
    uint64_t now = pst_now();
    int rc = PST_OK;
    if (status == UV_ECANCELED || r->stopping) {
        return; /* tried again after the restart */
    } else if (r->result == RELAY_SENT) {
        rc = pst_store_relay_update(n->store, row->id, PST_STORE_RELAY_SENT, row->attempts + 1, 0,
                                    "", now);
        pst_counter_add(n, "smarthost.sent", 1);
        pst_log_info("smarthost: sent to %s", row->rcpt);
    } else if (r->result == RELAY_BOUNCED) {
        rc = pst_store_relay_update(n->store, row->id, PST_STORE_RELAY_BOUNCED, row->attempts, 0,
                                    r->err, now);
        pst_counter_add(n, "smarthost.bounced", 1);
        pst_log_warn("smarthost: gave up on %s (%s); a bounce is in %s's INBOX", row->rcpt, r->err,
                     row->sender);
    } else {
        unsigned attempts = row->attempts + (r->result == RELAY_RETRY);
        uint64_t next = now + backoff(n, attempts);
        if (next > row->giveup && r->result == RELAY_RETRY)
            next = row->giveup > now ? row->giveup : now;
        if (r->result == RELAY_NO_BOUNCE)
            next = now + n->cfg.smarthost_retry_s;
        rc = pst_store_relay_update(n->store, row->id, PST_STORE_RELAY_RETRYING, attempts, next,
                                    r->err, now);
        pst_counter_add(n, "smarthost.retries", 1);
        pst_log_info("smarthost: %s: %s; next try in %llu s", row->rcpt, r->err,
                     (unsigned long long)(next - now));
    }
    if (rc != PST_OK) {
        pst_log_warn("smarthost: cannot record the state of %s: %s", row->rcpt,
                     pst_store_last_error(n->store));
        schedule(r, n->cfg.smarthost_retry_s);
        return;
    }
    drop_body_if_done(r, row->msg_id);
    schedule(r, 0);
}

static void on_timer(uv_timer_t *t) {
    struct pst_relay *r = t->data;
    pst_node *n = r->node;
    if (r->busy || r->stopping)
        return;
    int rc = pst_store_relay_next(n->store, &r->row);
    if (rc == PST_E_NOTFOUND)
        return; /* idle until a commit kicks */
    if (rc != PST_OK) {
        pst_log_warn("smarthost: cannot read the queue: %s", pst_store_last_error(n->store));
        schedule(r, n->cfg.smarthost_retry_s);
        return;
    }
    uint64_t now = pst_now();
    if (r->row.next_try > now) {
        schedule(r, r->row.next_try - now);
        return;
    }
    r->now = now;
    r->give_up = now >= r->row.giveup;
    r->result = RELAY_RETRY;
    r->err[0] = '\0';
    r->work.data = r;
    if (uv_queue_work(n->loop, &r->work, pst_relay__work, work_done) != 0) {
        schedule(r, n->cfg.smarthost_retry_s);
        return;
    }
    r->busy = true;
    pst_node_handle_ref(n);
}

static void schedule(struct pst_relay *r, uint64_t delay_s) {
    if (r->stopping)
        return;
    if (delay_s > 86400)
        delay_s = 86400;
    uv_timer_start(&r->timer, on_timer, delay_s * 1000u, 0);
}

/* At start nothing is in flight: a tmp-* file is a send a crash cut short
 * (never acknowledged), a message file with no pending recipient one whose
 * deletion a crash cut short. Both go. */
static void clean_dir(struct pst_relay *r) {
    DIR *d = opendir(r->dir);
    if (d == NULL)
        return;
    struct dirent *e;
    unsigned removed = 0;
    while ((e = readdir(d)) != NULL) {
        uint8_t id[PST_HASH_BYTES];
        char path[PST_PATH_MAX];
        size_t len = 0;
        bool tmp = strncmp(e->d_name, "tmp-", 4) == 0;
        bool body =
            !tmp && strlen(e->d_name) == 2 * PST_HASH_BYTES &&
            sodium_hex2bin(id, sizeof id, e->d_name, 2 * PST_HASH_BYTES, NULL, &len, NULL) == 0 &&
            len == PST_HASH_BYTES;
        uint64_t pending = 1;
        if (body && pst_store_relay_msg_pending(r->node->store, id, &pending) != PST_OK)
            pending = 1; /* cannot tell: keep it */
        if ((tmp || (body && pending == 0)) &&
            snprintf(path, sizeof path, "%s/%s", r->dir, e->d_name) < (int)sizeof path &&
            unlink(path) == 0)
            removed++;
    }
    closedir(d);
    if (removed > 0)
        pst_log_info("smarthost: removed %u leftover file%s from %s", removed,
                     removed == 1 ? "" : "s", r->dir);
}

static int read_cred(struct pst_relay *r, const char *path, char *err, size_t errcap) {
    char why[512];
    size_t len = 0;
    r->cred = sodium_malloc(RELAY_CRED_MAX + 1);
    if (r->cred == NULL)
        return PST_E_NOMEM;
    int rc = pst_secret_file_read(path, (uint8_t *)r->cred, RELAY_CRED_MAX, &len, why, sizeof why);
    if (rc != PST_OK) {
        snprintf(err, errcap, "smarthost_auth_file: %s", why);
        return rc;
    }
    while (len > 0 && (r->cred[len - 1] == '\n' || r->cred[len - 1] == '\r'))
        len--;
    r->cred[len] = '\0';
    const char *colon = strchr(r->cred, ':');
    if (colon == NULL || colon == r->cred || memchr(r->cred, '\n', len) != NULL) {
        snprintf(err, errcap, "smarthost_auth_file %s: must hold one line user:password", path);
        return PST_E_INVAL;
    }
    return PST_OK;
}

int pst_relay_start(pst_node *n, char *err, size_t errcap) {
    const pst_node_config *cfg = &n->cfg;
    n->relay = NULL;
    if (cfg->smarthost[0] == '\0')
        return PST_OK;
    static bool curl_ready; /* once, on the loop, before any worker uses it */
    if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        snprintf(err, errcap, "cannot initialise libcurl for the smarthost");
        return PST_E_NOMEM;
    }
    curl_ready = true;
    struct pst_relay *r = calloc(1, sizeof *r);
    if (r == NULL)
        return PST_E_NOMEM;
    r->node = n;
    atomic_init(&r->cancel, 0);
    snprintf(r->url, sizeof r->url, "%s://%s",
             cfg->smarthost_tls == PST_SMARTHOST_TLS_TLS ? "smtps" : "smtp", cfg->smarthost);
    int rc = PST_OK;
    if (cfg->smarthost_auth_file[0] != '\0')
        rc = read_cred(r, cfg->smarthost_auth_file, err, errcap);
    /* a CA file that cannot be read is a typo: say so now, not at every try */
    if (rc == PST_OK && cfg->smarthost_ca_file[0] != '\0' &&
        access(cfg->smarthost_ca_file, R_OK) != 0) {
        snprintf(err, errcap, "smarthost_ca_file %s: %s", cfg->smarthost_ca_file, strerror(errno));
        rc = PST_E_IO;
    }
    if (rc == PST_OK &&
        (pst_home_path(cfg->home, "relay", r->dir, sizeof r->dir) != PST_OK ||
         pst_home_path(cfg->home, PST_MAILDIR_DIR, r->maildir, sizeof r->maildir) != PST_OK)) {
        snprintf(err, errcap, "home directory path too long");
        rc = PST_E_NOSPACE;
    }
    if (rc == PST_OK && mkdir(r->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errcap, "cannot create %s: %s", r->dir, strerror(errno));
        rc = PST_E_IO;
    }
    if (rc != PST_OK) {
        free_relay(r);
        return rc;
    }
    clean_dir(r);
    uv_timer_init(n->loop, &r->timer);
    r->timer.data = r;
    pst_node_handle_ref(n);
    n->relay = r;
    pst_log_info("smarthost %s (tls %s%s%s%s): give up after %u s", r->url,
                 cfg->smarthost_tls == PST_SMARTHOST_TLS_NONE       ? "none"
                 : cfg->smarthost_tls == PST_SMARTHOST_TLS_STARTTLS ? "starttls"
                                                                    : "tls",
                 cfg->smarthost_ca_file[0] ? ", CAs from " : "", cfg->smarthost_ca_file,
                 r->cred ? ", AUTH" : "", cfg->smarthost_giveup_s);
    schedule(r, 0); /* resume what the store holds */
    return PST_OK;
}

void pst_relay_stop(pst_node *n) {
    struct pst_relay *r = n->relay;
    if (r == NULL)
        return;
    n->relay = NULL;
    r->stopping = true;
    atomic_store(&r->cancel, 1); /* libcurl's progress callback aborts the transfer */
    if (r->busy)
        (void)uv_cancel((uv_req_t *)&r->work);
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

/* ---- what status and outbox show ----------------------------------------- */

void pst_relay_status(pst_node *n, pst_value *map) {
    pst_value *m = pst_value_add_map(map, "smarthost");
    const pst_node_config *cfg = &n->cfg;
    pst_value_add_bool(m, "enabled", n->relay != NULL);
    pst_value_add_str(m, "host", cfg->smarthost); /* "": none configured */
    pst_value_add_str(m, "tls",
                      cfg->smarthost_tls == PST_SMARTHOST_TLS_NONE       ? "none"
                      : cfg->smarthost_tls == PST_SMARTHOST_TLS_STARTTLS ? "starttls"
                                                                         : "tls");
    pst_value_add_bool(m, "auth", n->relay != NULL && n->relay->cred != NULL);
    pst_value_add_str(m, "ca_file", cfg->smarthost_ca_file); /* "": the system's store */
    pst_value_add_uint(m, "giveup_s", cfg->smarthost_giveup_s);
    pst_value_add_uint(m, "stamp_bits", cfg->smarthost_stamp_bits);
    uint64_t q = 0;
    (void)pst_store_relay_pending(n->store, &q);
    pst_value_add_uint(m, "queue", q);
}

static int list_row(const pst_store_relay_row *row, void *user) {
    pst_value *arr = user;
    char hex[2 * PST_HASH_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, row->msg_id, PST_HASH_BYTES);
    pst_value *e = pst_value_add_map(arr, NULL);
    pst_value_add_str(e, "message_id", hex);
    pst_value_add_str(e, "recipient", row->rcpt);
    pst_value_add_str(e, "sender", row->sender);
    pst_value_add_str(e, "state", pst_store_relay_state_name(row->state));
    pst_value_add_str(e, "error", row->error);
    pst_value_add_uint(e, "attempts", row->attempts);
    pst_value_add_uint(e, "created", row->created);
    pst_value_add_uint(e, "next_try", row->next_try);
    pst_value_add_uint(e, "giveup", row->giveup);
    pst_value_add_uint(e, "updated", row->updated);
    return 0;
}

void pst_relay_list(pst_node *n, pst_value *arr, unsigned limit) {
    (void)pst_store_relay_list(n->store, limit, list_row, arr);
}
