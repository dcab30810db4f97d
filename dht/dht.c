/* pst_dht: a threaded OpenDHT runner whose results are handed to a libuv
 * loop. See pst_dht.h for the contract and docs/dht.md for the design.
 *
 * Two kinds of threads touch this file:
 * - OpenDHT's thread (and, during dht_runner_delete, the loop thread) runs the
 *   cb_* callbacks below. They only copy bytes and push events onto d->q_*
 *   under d->mu, then uv_async_send. They never call back into OpenDHT
 *   functions that deadlock there (delete, get_bound_port).
 * - The loop thread runs everything else, including every user callback.
 * We never hold d->mu while calling OpenDHT: several of its calls can run our
 * callbacks synchronously, which take d->mu. */
#include <opendht/opendht_c.h>

#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dht_int.h"
#include "dht_types.h"
#include "pst_dht.h"

enum { EV_VALUE = 1, EV_DONE };
/* 0 is a zeroed handle: failed init, or never initialised. */
enum { ST_RUNNING = 1, ST_SHUTTING_DOWN, ST_CLOSING, ST_CLOSED };

struct pst_dht_event {
    struct pst_dht_event *next;
    struct pst_dht_op *op;
    uint8_t kind;
    bool flag;     /* EV_DONE: OpenDHT's ok; EV_VALUE: expired */
    bool embedded; /* the op's own done event: freed with the op */
    size_t len;    /* EV_VALUE: the value bytes follow the struct */
};

/* One get, put, ping or listen. Its address is OpenDHT's user_data, so it
 * lives until OpenDHT's last callback for it has been seen on the loop
 * (EV_DONE; for a listen, the shutdown callback), or until the runner is
 * deleted: a get that timed out for the user can stay here a while. */
struct pst_dht_op {
    struct pst_dht_op *next, *prev;
    pst_dht *d;
    uint8_t kind;
    bool user_done;    /* done callback called, or listen cancelled */
    bool dht_done;     /* OpenDHT's final event was dispatched */
    bool resolving;    /* ping waiting for uv_getaddrinfo: not given to OpenDHT */
    bool done_queued;  /* guarded by d->mu */
    atomic_bool stop;  /* tells OpenDHT's thread to stop copying values */
    uint64_t deadline; /* uv_now() ms; timed ops only */
    dht_infohash slot;
    dht_op_token *token;
    pst_dht_done_cb done;
    pst_dht_value_cb on_value;
    pst_dht_listen_cb on_listen;
    void *user;
    uv_getaddrinfo_t gai;
    struct pst_dht_event done_ev;
    struct pst_dht_reput *reput; /* a put: the remembered value it put, or NULL */
};

/* A value we put, kept to put it again with the same id (below). */
struct pst_dht_reput {
    dht_value *value; /* NULL: a free entry */
    uint8_t slot[PST_SLOT_BYTES];
    size_t len;
    uint64_t used_ms; /* uv_now() of its last put */
    uint8_t *bytes;   /* our copy: the value object is OpenDHT's to read */
    /* a put of it has not ended in OpenDHT: a put of the same value id
     * then would make OpenDHT end the earlier one as failed */
    bool busy;
};

static void on_timer(uv_timer_t *t);
static void logf_(pst_dht *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_(pst_dht *d, int level, const char *fmt, ...) {
    if (!d->log)
        return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    d->log(d->log_user, level, buf);
}

/* ---- OpenDHT side (any thread) ---------------------------------------- */

/* Caller holds d->mu. */
static void q_append(pst_dht *d, struct pst_dht_event *e) {
    e->next = NULL;
    if (d->q_tail)
        d->q_tail->next = e;
    else
        d->q_head = e;
    d->q_tail = e;
}

static void push_value(struct pst_dht_op *op, const dht_value *v, bool expired) {
    pst_dht *d = op->d;
    dht_data_view dv = dht_value_get_data(v);
    struct pst_dht_event *e = NULL;
    if (dv.size <= PST_DHT_VALUE_MAX) {
        e = malloc(sizeof *e + dv.size);
        if (e) {
            *e =
                (struct pst_dht_event){.op = op, .kind = EV_VALUE, .flag = expired, .len = dv.size};
            if (dv.size)
                memcpy(e + 1, dv.data, dv.size);
        }
    }
    uv_mutex_lock(&d->mu);
    if (!d->q_closed) {
        if (dv.size > PST_DHT_VALUE_MAX) {
            d->q_dropped_oversize++;
        } else if (!e || d->q_values >= PST_DHT_QUEUE_MAX) {
            d->q_dropped_backlog++;
        } else {
            q_append(d, e);
            d->q_values++;
            e = NULL;
        }
        /* Also on a drop, so the counters reach the loop and get logged. */
        uv_async_send(&d->async);
    }
    uv_mutex_unlock(&d->mu);
    free(e);
}

static void push_done(struct pst_dht_op *op, bool ok) {
    pst_dht *d = op->d;
    uv_mutex_lock(&d->mu);
    if (!d->q_closed && !op->done_queued) {
        op->done_queued = true;
        op->done_ev =
            (struct pst_dht_event){.op = op, .kind = EV_DONE, .flag = ok, .embedded = true};
        q_append(d, &op->done_ev);
        uv_async_send(&d->async);
    }
    uv_mutex_unlock(&d->mu);
}

static bool cb_get_value(const dht_value *v, void *arg) {
    struct pst_dht_op *op = arg;
    if (atomic_load(&op->stop))
        return false; /* the user already has its answer: end the search */
    push_value(op, v, false);
    return true;
}

static bool cb_listen_value(const dht_value *v, bool expired, void *arg) {
    struct pst_dht_op *op = arg;
    /* Returning false here would make OpenDHT drop the listener on its own
     * while we still hold the token: keep it simple and let cancel do it. */
    if (!atomic_load(&op->stop))
        push_value(op, v, expired);
    return true;
}

static void cb_done(bool ok, void *arg) { push_done(arg, ok); }

/* Runs when OpenDHT destroys the listen callback: after cancel, or inside
 * dht_runner_delete on the deleting thread. */
static void cb_listen_end(void *arg) { push_done(arg, true); }

static void cb_runner_down(void *arg) {
    pst_dht *d = arg;
    uv_mutex_lock(&d->mu);
    if (!d->q_closed) {
        d->q_runner_down = true;
        uv_async_send(&d->async);
    }
    uv_mutex_unlock(&d->mu);
}

/* ---- operation records (loop thread) ---------------------------------- */

static struct pst_dht_op **op_list(pst_dht *d, int kind) {
    return kind == OP_LISTEN ? &d->listens : &d->timed;
}

static int op_new(pst_dht *d, int kind, const uint8_t *slot, struct pst_dht_op **out) {
    *out = NULL;
    if (d->st.ops_live >= PST_DHT_OPS_MAX)
        return PST_E_BUSY;
    struct pst_dht_op *op = calloc(1, sizeof *op);
    if (!op)
        return PST_E_NOMEM;
    op->d = d;
    op->kind = (uint8_t)kind;
    atomic_init(&op->stop, false);
    if (slot)
        memcpy(op->slot.d, slot, PST_SLOT_BYTES);
    struct pst_dht_op **head = op_list(d, kind);
    op->next = *head;
    if (*head)
        (*head)->prev = op;
    *head = op;
    d->st.ops_live++;
    *out = op;
    return PST_OK;
}

static void op_free(pst_dht *d, struct pst_dht_op *op) {
    if (op->prev)
        op->prev->next = op->next;
    else
        *op_list(d, op->kind) = op->next;
    if (op->next)
        op->next->prev = op->prev;
    if (op->token) /* only reached after the runner is gone */
        dht_op_token_delete(op->token);
    if (op->reput && d->reput) /* the array lives until close releases it */
        op->reput->busy = false;
    d->st.ops_live--;
    free(op);
}

/* Frees a timed op and then, if the user has not had its answer yet, gives it
 * status. Freeing first means a callback that closes d or starts new
 * operations never sees this op half-finished. */
static void op_finish(pst_dht *d, struct pst_dht_op *op, int status) {
    bool notify = !op->user_done;
    pst_dht_done_cb cb = op->done;
    void *user = op->user;
    int kind = op->kind;
    op_free(d, op);
    if (notify) {
        pst_dht__count_status(d, kind, status);
        if (cb)
            cb(user, status);
    }
}

/* Arms the single timer for the earliest deadline; a later or equal one is
 * already covered because on_timer rescans every op. */
static void arm_timer(pst_dht *d, uint64_t due) {
    if (d->timer_due != 0 && d->timer_due <= due)
        return;
    uint64_t now = uv_now(d->loop);
    d->timer_due = due;
    uv_timer_start(&d->timer, on_timer, due > now ? due - now : 0, 0);
}

static int start_timed(pst_dht *d, int kind, const uint8_t *slot, uint32_t timeout_ms,
                       pst_dht_done_cb cb, void *user, struct pst_dht_op **out) {
    int rc = op_new(d, kind, slot, out);
    if (rc != PST_OK)
        return rc;
    (*out)->done = cb;
    (*out)->user = user;
    (*out)->deadline = uv_now(d->loop) + timeout_ms;
    arm_timer(d, (*out)->deadline);
    return PST_OK;
}

/* ---- values put again (loop thread) ------------------------------------
 * OpenDHT gives a value without an id a random one at its put, on the value
 * object itself, and a storing node keeps one copy per value id: our records
 * re-put every `republish` seconds as new values piled up in their slots
 * (a slot of one record held a copy per put within 600 s, 9 after a fresh
 * start), so a get's reply outgrew one packet and came as value parts, one
 * packet per copy, all of which must arrive. Keeping the value object of
 * what we put makes the next put of the same bytes at the same slot carry
 * the same id: storing nodes refresh that value, and listeners see nothing
 * new. */

static void reput_free(struct pst_dht_reput *r) {
    if (r->value)
        dht_value_unref(r->value);
    free(r->bytes);
    memset(r, 0, sizeof *r);
}

static void reput_release(pst_dht *d) {
    if (!d->reput)
        return;
    for (unsigned i = 0; i < PST_DHT_REPUT_MAX; i++)
        reput_free(&d->reput[i]);
    free(d->reput);
    d->reput = NULL;
}

/* The value to put: the remembered one for the same slot and bytes, else a
 * new one, remembered in a free entry, one unused for PST_DHT_REPUT_KEEP_MS
 * (its copies have expired everywhere) or the least recently put; never in
 * one whose put is still running. *used: the entry of the value returned,
 * or NULL when it is not remembered. Returns a reference the caller drops,
 * or NULL when out of memory. */
/* A new value handle for val, under Postern's type for it (dht_types.h). */
static dht_value *new_value(pst_dht *d, const uint8_t *val, size_t len) {
    dht_value *v = dht_value_new(val, len);
    if (v && d->typed)
        pst_dht__value_set_type(v, pst_dht__type_of(val, len));
    return v;
}

static dht_value *reput_value(pst_dht *d, const uint8_t *slot, const uint8_t *val, size_t len,
                              struct pst_dht_reput **used) {
    *used = NULL;
    if (d->every_put_new_value)
        return new_value(d, val, len);
    uint64_t now = uv_now(d->loop);
    if (!d->reput)
        d->reput = calloc(PST_DHT_REPUT_MAX, sizeof *d->reput);
    struct pst_dht_reput *spare = NULL;
    bool same_busy = false;
    for (unsigned i = 0; d->reput && i < PST_DHT_REPUT_MAX; i++) {
        struct pst_dht_reput *r = &d->reput[i];
        if (r->value && !r->busy && now - r->used_ms >= PST_DHT_REPUT_KEEP_MS)
            reput_free(r);
        if (r->value && r->len == len && memcmp(r->slot, slot, PST_SLOT_BYTES) == 0 &&
            memcmp(r->bytes, val, len) == 0) {
            if (r->busy) {
                same_busy = true; /* this put: a value of its own, not remembered */
                continue;
            }
            r->used_ms = now;
            d->st.puts_refreshed++;
            *used = r;
            return dht_value_ref(r->value);
        }
        if (!r->busy && (!spare || (spare->value && (!r->value || r->used_ms < spare->used_ms))))
            spare = r;
    }
    dht_value *v = new_value(d, val, len);
    uint8_t *copy = v && spare && !same_busy ? malloc(len) : NULL;
    if (!copy)
        return v; /* not remembered: this put is a value of its own */
    reput_free(spare);
    memcpy(copy, val, len);
    memcpy(spare->slot, slot, PST_SLOT_BYTES);
    spare->len = len;
    spare->bytes = copy;
    spare->used_ms = now;
    spare->value = dht_value_ref(v);
    *used = spare;
    return v;
}

/* ---- closing (loop thread) -------------------------------------------- */

static void maybe_closed(pst_dht *d) {
    if (d->state != ST_CLOSING || d->handles_open > 0 || d->resolving > 0)
        return;
    d->state = ST_CLOSED;
    uv_mutex_destroy(&d->mu);
    if (d->on_closed)
        d->on_closed(d);
}

static void release_events(struct pst_dht_event *e) {
    while (e) {
        struct pst_dht_event *next = e->next;
        if (!e->embedded)
            free(e);
        e = next;
    }
}

static void on_handle_closed(uv_handle_t *h) {
    pst_dht *d = h->data;
    if (--d->handles_open > 0)
        return;
    /* The runner is gone: nothing refers to the ops any more except a ping
     * still in uv_getaddrinfo, which on_resolved finishes. */
    for (;;) {
        struct pst_dht_op *op = d->timed;
        while (op && op->resolving)
            op = op->next;
        if (!op)
            break;
        op_finish(d, op, PST_E_CLOSED);
    }
    while (d->listens)
        op_free(d, d->listens);
    d->st.listens_active = 0;
    maybe_closed(d);
}

/* The verified order: delete the runner (joins OpenDHT's thread; listen
 * shutdown callbacks run here, on this thread), then close the queue under
 * its mutex, then the handles; ops are freed in their close callback. */
static void finish_close(pst_dht *d) {
    d->state = ST_CLOSING;
    dht_runner_delete(d->runner);
    d->runner = NULL;
    reput_release(d); /* the runner held the other references */
    uv_mutex_lock(&d->mu);
    d->q_closed = true;
    struct pst_dht_event *batch = d->q_head;
    d->q_head = d->q_tail = NULL;
    d->q_values = 0;
    uv_mutex_unlock(&d->mu);
    release_events(batch);
    for (struct pst_dht_op *op = d->timed; op; op = op->next)
        if (op->resolving)
            uv_cancel((uv_req_t *)&op->gai);
    logf_(d, PST_DHT_LOG_INFO, "dht: node stopped");
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->async, on_handle_closed);
}

/* ---- loop side --------------------------------------------------------- */

static void dispatch(pst_dht *d, struct pst_dht_event *e) {
    struct pst_dht_op *op = e->op;
    if (e->kind == EV_VALUE) {
        const uint8_t *val = (const uint8_t *)(e + 1);
        /* A late value of a get that already ended, or of a cancelled listen. */
        if (!op->user_done) {
            d->st.values_received++;
            if (op->kind == OP_LISTEN)
                op->on_listen(op->user, val, e->len, e->flag);
            else
                op->on_value(op->user, val, e->len);
        }
        free(e);
        return;
    }
    op->dht_done = true;
    if (op->kind == OP_LISTEN) {
        if (op->user_done)
            op_free(d, op);
        return;
    }
    int status = e->flag ? PST_OK : op->kind == OP_PING ? PST_E_TIMEOUT : PST_E_IO;
    op_finish(d, op, status);
}

static void on_async(uv_async_t *a) {
    pst_dht *d = a->data;
    uv_mutex_lock(&d->mu);
    struct pst_dht_event *batch = d->q_head;
    d->q_head = d->q_tail = NULL;
    d->q_values = 0;
    uint64_t oversize = d->q_dropped_oversize, backlog = d->q_dropped_backlog;
    d->q_dropped_oversize = d->q_dropped_backlog = 0;
    bool runner_down = d->q_runner_down;
    uv_mutex_unlock(&d->mu);

    d->st.values_dropped_oversize += oversize;
    d->st.values_dropped_backlog += backlog;
    if (oversize)
        logf_(d, PST_DHT_LOG_WARN, "dht: dropped %llu values over %u bytes",
              (unsigned long long)oversize, PST_DHT_VALUE_MAX);
    if (backlog)
        logf_(d, PST_DHT_LOG_WARN, "dht: dropped %llu values: loop backlog",
              (unsigned long long)backlog);
    /* Sends coalesce: everything queued so far is handled in this call. A
     * user callback may close d; the rest of the batch is then dropped. */
    while (batch) {
        struct pst_dht_event *e = batch;
        batch = e->next;
        if (d->state == ST_RUNNING)
            dispatch(d, e);
        else if (!e->embedded)
            free(e);
    }
    if (d->state == ST_SHUTTING_DOWN && runner_down)
        finish_close(d);
}

static void on_timer(uv_timer_t *t) {
    pst_dht *d = t->data;
    d->timer_due = 0;
    if (d->state == ST_SHUTTING_DOWN) {
        logf_(d, PST_DHT_LOG_WARN, "dht: state save did not finish in time");
        finish_close(d);
        return;
    }
    if (d->state != ST_RUNNING)
        return;
    uint64_t now = uv_now(d->loop), due = 0;
    /* Timed ops are freed only by on_async and the close path, never from
     * inside a user callback here, so `next` stays valid; new ops are added
     * at the head and are not visited. */
    for (struct pst_dht_op *op = d->timed, *next; op; op = next) {
        next = op->next;
        if (op->user_done)
            continue;
        if (op->deadline > now) {
            if (due == 0 || op->deadline < due)
                due = op->deadline;
            continue;
        }
        op->user_done = true;
        atomic_store(&op->stop, true);
        pst_dht__count_status(d, op->kind, PST_E_TIMEOUT);
        if (op->done)
            op->done(op->user, PST_E_TIMEOUT);
        if (d->state != ST_RUNNING)
            return;
    }
    if (due)
        arm_timer(d, due);
}

/* ---- public API -------------------------------------------------------- */

static void hex20(const uint8_t *in, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < PST_SLOT_BYTES; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * PST_SLOT_BYTES] = '\0';
}

int pst_dht_init(uv_loop_t *loop, pst_dht *d, const pst_dht_config *cfg) {
    if (!d)
        return PST_E_INVAL;
    memset(d, 0, sizeof *d);
    if (!loop || !cfg || (cfg->network_id == 0 && !cfg->public_network))
        return PST_E_INVAL;
    if (uv_mutex_init(&d->mu) != 0)
        return PST_E_NOMEM;
    d->loop = loop;
    d->log = cfg->log;
    d->log_user = cfg->log_user;
    d->every_put_new_value = cfg->every_put_new_value;

    dht_runner *r = dht_runner_new();
    dht_runner_config rc;
    dht_runner_config_default(&rc);
    rc.dht_config.node_config.network = cfg->network_id; /* 0 only by opt-in */
    rc.dht_config.node_config.persist_path = cfg->persist_path;
    rc.threaded = true;
    rc.peer_discovery = cfg->peer_discovery;
    rc.peer_publish = cfg->peer_discovery;
    rc.log = false;
    int err = dht_runner_run_config(r, cfg->port, &rc);
    if (err != 0) {
        logf_(d, PST_DHT_LOG_ERROR, "dht: cannot start on udp port %u (error %d)",
              (unsigned)cfg->port, err);
        dht_runner_delete(r);
        uv_mutex_destroy(&d->mu);
        memset(d, 0, sizeof *d);
        return PST_E_IO;
    }
    /* Before any put of ours; a store request that arrives in between gets
     * OpenDHT's default, as on any node without our types. */
    d->typed = pst_dht__types_register(r, &d->refused_store);
    if (!d->typed)
        logf_(d, PST_DHT_LOG_WARN,
              "dht: Postern value types not registered (OpenDHT's C value "
              "handle is not the expected one): values go out untyped");
    /* No op is registered yet, so nothing can call uv_async_send before the
     * handle exists. */
    if (uv_async_init(loop, &d->async, on_async) != 0) {
        dht_runner_delete(r);
        uv_mutex_destroy(&d->mu);
        memset(d, 0, sizeof *d);
        return PST_E_NOMEM;
    }
    uv_timer_init(loop, &d->timer);
    d->async.data = d;
    d->timer.data = d;
    d->handles_open = 2;
    d->runner = r;
    d->persist = cfg->persist_path != NULL;
    d->state = ST_RUNNING;

    /* Read once, here: dht_runner_get_bound_port deadlocks in a callback. */
    d->st.port4 = dht_runner_get_bound_port(r, AF_INET);
    d->st.port6 = dht_runner_get_bound_port(r, AF_INET6);
    d->st.network_id = cfg->network_id;
    dht_infohash id = dht_runner_get_node_id(r);
    hex20(id.d, d->st.node_id);
    logf_(d, PST_DHT_LOG_INFO, "dht: node %s on udp %u/%u, network %08x", d->st.node_id,
          (unsigned)d->st.port4, (unsigned)d->st.port6, (unsigned)cfg->network_id);
    return PST_OK;
}

void pst_dht_close(pst_dht *d, void (*on_closed)(pst_dht *)) {
    if (!d || d->state != ST_RUNNING)
        return;
    d->on_closed = on_closed;
    if (!d->persist) {
        finish_close(d);
        return;
    }
    /* Only a shutdown writes persist_path. Its callback waits for OpenDHT's
     * ongoing operations, so we give it a deadline and delete anyway. */
    d->state = ST_SHUTTING_DOWN;
    d->timer_due = 0;
    uv_timer_start(&d->timer, on_timer, PST_DHT_SHUTDOWN_MAX_MS, 0);
    dht_runner_shutdown(d->runner, cb_runner_down, d);
}

int pst_dht_bootstrap(pst_dht *d, const char *host, const char *port) {
    if (!d || !host || !port || !pst_dht__valid_host(host) || !pst_dht__valid_port(port))
        return PST_E_INVAL;
    if (d->state != ST_RUNNING)
        return PST_E_CLOSED;
    dht_runner_bootstrap(d->runner, host, port);
    logf_(d, PST_DHT_LOG_DEBUG, "dht: bootstrap %s:%s", host, port);
    return PST_OK;
}

static void ping_addr(pst_dht *d, struct pst_dht_op *op, const struct addrinfo *ai) {
    dht_runner_ping(d->runner, ai->ai_addr, ai->ai_addrlen, cb_done, op);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    struct pst_dht_op *op = req->data;
    pst_dht *d = op->d;
    op->resolving = false;
    d->resolving--;
    if (d->state != ST_RUNNING) {
        uv_freeaddrinfo(res);
        /* While handles are open, on_handle_closed will finish this op. */
        if (d->handles_open == 0) {
            op_finish(d, op, PST_E_CLOSED);
            maybe_closed(d);
        }
        return;
    }
    if (status != 0 || !res) {
        uv_freeaddrinfo(res);
        op_finish(d, op, PST_E_NOTFOUND); /* silent if it already timed out */
        return;
    }
    if (op->user_done) { /* timed out while resolving: OpenDHT never saw it */
        uv_freeaddrinfo(res);
        op_free(d, op);
        return;
    }
    ping_addr(d, op, res);
    uv_freeaddrinfo(res);
}

int pst_dht_ping(pst_dht *d, const char *host, const char *port, pst_dht_done_cb cb, void *user) {
    if (!d || !host || !port || !cb || !pst_dht__valid_host(host) || !pst_dht__valid_port(port))
        return PST_E_INVAL;
    if (d->state != ST_RUNNING)
        return PST_E_CLOSED;
    struct pst_dht_op *op;
    int rc = start_timed(d, OP_PING, NULL, PST_DHT_PING_TIMEOUT_MS, cb, user, &op);
    if (rc != PST_OK)
        return rc;
    /* Numeric addresses need no DNS: resolve them here, without blocking. */
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) == 0 && res) {
        ping_addr(d, op, res);
        freeaddrinfo(res);
        return PST_OK;
    }
    hints.ai_flags = AI_NUMERICSERV;
    op->gai.data = op;
    if (uv_getaddrinfo(d->loop, &op->gai, on_resolved, host, port, &hints) != 0) {
        op_free(d, op);
        return PST_E_NOMEM;
    }
    op->resolving = true;
    d->resolving++;
    return PST_OK;
}

static int check_timeout(uint32_t *timeout_ms) {
    if (*timeout_ms == 0)
        *timeout_ms = PST_DHT_TIMEOUT_DEFAULT_MS;
    return *timeout_ms <= PST_DHT_TIMEOUT_MAX_MS ? PST_OK : PST_E_INVAL;
}

int pst_dht_put(pst_dht *d, const uint8_t slot[PST_SLOT_BYTES], const uint8_t *val, size_t len,
                bool permanent, uint32_t timeout_ms, pst_dht_done_cb cb, void *user) {
    if (!d || !slot || !val || len == 0 || check_timeout(&timeout_ms) != PST_OK)
        return PST_E_INVAL;
    if (d->state != ST_RUNNING)
        return PST_E_CLOSED;
    if (len > PST_DHT_VALUE_MAX)
        return PST_E_TOOBIG;
    struct pst_dht_reput *used;
    dht_value *v = reput_value(d, slot, val, len, &used);
    if (!v)
        return PST_E_NOMEM;
    struct pst_dht_op *op;
    int rc = start_timed(d, OP_PUT, slot, timeout_ms, cb, user, &op);
    if (rc != PST_OK) {
        dht_value_unref(v); /* a remembered value stays remembered, not busy */
        return rc;
    }
    /* until OpenDHT ends this put (its done, or the runner's deletion) */
    op->reput = used;
    if (used != NULL)
        used->busy = true;
    /* OpenDHT keeps its own reference; ours goes at once. */
    dht_runner_put(d->runner, &op->slot, v, cb_done, op, permanent);
    dht_value_unref(v);
    return PST_OK;
}

int pst_dht_get(pst_dht *d, const uint8_t slot[PST_SLOT_BYTES], uint32_t timeout_ms,
                pst_dht_value_cb on_value, pst_dht_done_cb on_done, void *user) {
    if (!d || !slot || !on_value || !on_done || check_timeout(&timeout_ms) != PST_OK)
        return PST_E_INVAL;
    if (d->state != ST_RUNNING)
        return PST_E_CLOSED;
    struct pst_dht_op *op;
    int rc = start_timed(d, OP_GET, slot, timeout_ms, on_done, user, &op);
    if (rc != PST_OK)
        return rc;
    op->on_value = on_value;
    dht_runner_get(d->runner, &op->slot, cb_get_value, cb_done, op);
    return PST_OK;
}

int pst_dht_listen(pst_dht *d, const uint8_t slot[PST_SLOT_BYTES], pst_dht_listen_cb cb, void *user,
                   pst_dht_listen_handle **out) {
    if (out)
        *out = NULL;
    if (!d || !slot || !cb || !out)
        return PST_E_INVAL;
    if (d->state != ST_RUNNING)
        return PST_E_CLOSED;
    struct pst_dht_op *op;
    int rc = op_new(d, OP_LISTEN, slot, &op);
    if (rc != PST_OK)
        return rc;
    op->on_listen = cb;
    op->user = user;
    op->token = dht_runner_listen(d->runner, &op->slot, cb_listen_value, cb_listen_end, op);
    d->st.listens_active++;
    *out = op;
    return PST_OK;
}

void pst_dht_listen_cancel(pst_dht *d, pst_dht_listen_handle *h) {
    if (!d || !h || d->state != ST_RUNNING || h->user_done)
        return;
    h->user_done = true;
    atomic_store(&h->stop, true);
    d->st.listens_active--;
    /* Exactly once per token: a second cancel of the same token aborts. */
    dht_runner_cancel_listen(d->runner, &h->slot, h->token);
    dht_op_token_delete(h->token);
    h->token = NULL;
    if (h->dht_done)
        op_free(d, h);
}

void pst_dht_stats(const pst_dht *d, struct pst_dht_stats *out) {
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!d)
        return;
    *out = d->st;
    out->values_refused_store = __atomic_load_n(&d->refused_store, __ATOMIC_RELAXED);
    out->value_types = d->typed;
}
