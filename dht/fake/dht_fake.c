/* The fake DHT: pst_dht.h over an in-memory network shared by the pst_dht
 * instances of one process (per network id). For tests only; see
 * pst_dht_fake.h for what it models and docs/dht.md ("The fake DHT").
 *
 * Everything an instance receives becomes an event on its own queue
 * (d->q_head/q_tail) and is dispatched by its uv_async callback, so no
 * callback ever runs inside the call that caused it. One process-wide mutex
 * guards the networks and every queue, so instances on different loops (and
 * threads) may share a network; user callbacks run without it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dht_int.h"
#include "pst_dht.h"
#include "pst_dht_fake.h"

enum { EV_VALUE = 1, EV_DONE };
enum { ST_RUNNING = 1, ST_CLOSING, ST_CLOSED };
enum { HOLD_NONE = 0, HOLD_ALL, HOLD_SLOT };
#define FAKE_PORT_FIRST 20000u

struct pst_dht_event {
    struct pst_dht_event *next;
    struct pst_dht_op *op;
    uint8_t kind;
    bool expired;
    int status; /* EV_DONE */
    size_t len;
    uint8_t bytes[]; /* EV_VALUE */
};

/* Lives while the user may still hear from it (live) or an event names it. */
struct pst_dht_op {
    struct pst_dht_op *next, *prev; /* the instance's operations */
    struct pst_dht_op *lnext;       /* the network's listens */
    pst_dht *d;
    uint8_t kind;
    bool live; /* done not called yet / listen not cancelled */
    bool deaf; /* pst_dht_fake_drop_listens */
    bool slotted;
    unsigned refs; /* events naming it; guarded by g_mu */
    /* its done event, allocated with it so that no done is lost to a failed
     * malloc (NULL once queued; listens have none) */
    struct pst_dht_event *done_ev;
    uint8_t slot[PST_SLOT_BYTES];
    pst_dht_done_cb done;
    pst_dht_value_cb on_value;
    pst_dht_listen_cb on_listen;
    void *user;
};

typedef struct fake_val {
    struct fake_val *next;
    uint8_t slot[PST_SLOT_BYTES];
    uint64_t expires_ms; /* 0: a permanent put whose node still runs */
    pst_dht *permanent_of;
    size_t len;
    uint8_t bytes[];
} fake_val;

typedef struct fake_count {
    struct fake_count *next;
    uint8_t slot[PST_SLOT_BYTES];
    uint64_t puts, gets;
} fake_count;

typedef struct fake_net fake_net;

/* Behind d->runner. */
typedef struct fake_node {
    struct fake_node *next; /* in the network */
    fake_net *net;
    pst_dht *d;
    int hold;
    uint8_t hold_slot[PST_SLOT_BYTES];
    struct pst_dht_event *held_head, *held_tail;
    unsigned n_held;
    struct pst_dht_op *ops; /* loop thread only */
} fake_node;

struct fake_net {
    fake_net *next;
    uint32_t id;
    fake_node *nodes;
    fake_val *vals;
    struct pst_dht_op *listens;
    fake_count *counts;
    uint64_t puts;
    uint32_t lifetime_ms;
    bool twice;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static fake_net *g_nets;
static uint32_t g_next_port; /* ephemeral ports: FAKE_PORT_FIRST + this */
static uint32_t g_instances;

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

static fake_node *node_of(const pst_dht *d) { return d ? (fake_node *)d->runner : NULL; }

static void logf_(pst_dht *d, int level, const char *msg) {
    if (d->log)
        d->log(d->log_user, level, msg);
}

/* ---- networks (g_mu held) ------------------------------------------------ */

static fake_net *net_find(uint32_t id) {
    for (fake_net *n = g_nets; n; n = n->next)
        if (n->id == id)
            return n;
    return NULL;
}

static void net_free(fake_net *net) {
    for (fake_net **pp = &g_nets; *pp; pp = &(*pp)->next)
        if (*pp == net) {
            *pp = net->next;
            break;
        }
    while (net->vals) {
        fake_val *v = net->vals;
        net->vals = v->next;
        free(v);
    }
    while (net->counts) {
        fake_count *c = net->counts;
        net->counts = c->next;
        free(c);
    }
    free(net);
}

static bool hold_matches(const fake_node *fn, const struct pst_dht_op *op) {
    return fn->hold == HOLD_ALL || (fn->hold == HOLD_SLOT && op->slotted &&
                                    memcmp(op->slot, fn->hold_slot, PST_SLOT_BYTES) == 0);
}

/* Queues an event for op's instance (held when its filter says so). */
static void push(struct pst_dht_op *op, uint8_t kind, const uint8_t *val, size_t len, bool expired,
                 int status) {
    struct pst_dht_event *e = kind == EV_DONE ? op->done_ev : calloc(1, sizeof *e + len);
    if (e == NULL)
        return; /* a lost value, as the real queue can lose one */
    if (kind == EV_DONE)
        op->done_ev = NULL;
    e->op = op;
    e->kind = kind;
    e->expired = expired;
    e->status = status;
    e->len = len;
    if (len)
        memcpy(e->bytes, val, len);
    op->refs++;
    fake_node *fn = node_of(op->d);
    if (hold_matches(fn, op)) {
        if (fn->held_tail)
            fn->held_tail->next = e;
        else
            fn->held_head = e;
        fn->held_tail = e;
        fn->n_held++;
        return;
    }
    pst_dht *d = op->d;
    if (d->q_tail)
        d->q_tail->next = e;
    else
        d->q_head = e;
    d->q_tail = e;
    uv_async_send(&d->async);
}

static void push_value(fake_net *net, struct pst_dht_op *op, const fake_val *v, bool expired) {
    for (int i = 0; i < (net->twice ? 2 : 1); i++)
        push(op, EV_VALUE, v->bytes, v->len, expired, 0);
}

static void tell_listeners(fake_net *net, const fake_val *v, bool expired) {
    for (struct pst_dht_op *l = net->listens; l; l = l->lnext)
        if (!l->deaf && memcmp(l->slot, v->slot, PST_SLOT_BYTES) == 0)
            push_value(net, l, v, expired);
}

/* Removes values past their lifetime (slot NULL) or every value at slot. */
static unsigned expire(fake_net *net, const uint8_t *slot) {
    unsigned n = 0;
    uint64_t now = now_ms();
    for (fake_val **pp = &net->vals; *pp;) {
        fake_val *v = *pp;
        bool gone = slot ? memcmp(v->slot, slot, PST_SLOT_BYTES) == 0
                         : v->expires_ms != 0 && v->expires_ms <= now;
        if (!gone) {
            pp = &v->next;
            continue;
        }
        *pp = v->next;
        tell_listeners(net, v, true);
        free(v);
        n++;
    }
    return n;
}

static bool has_peer(const fake_net *net, const pst_dht *d) {
    for (const fake_node *fn = net->nodes; fn; fn = fn->next)
        if (fn->d != d)
            return true;
    return false;
}

/* ---- operations ---------------------------------------------------------- */

static int op_new(pst_dht *d, uint8_t kind, const uint8_t *slot, struct pst_dht_op **out) {
    *out = NULL;
    if (d->st.ops_live >= PST_DHT_OPS_MAX)
        return PST_E_BUSY;
    struct pst_dht_op *op = calloc(1, sizeof *op);
    if (op && kind != OP_LISTEN && (op->done_ev = calloc(1, sizeof *op->done_ev)) == NULL) {
        free(op);
        op = NULL;
    }
    if (op == NULL)
        return PST_E_NOMEM;
    op->d = d;
    op->kind = kind;
    op->live = true;
    if (slot) {
        memcpy(op->slot, slot, PST_SLOT_BYTES);
        op->slotted = true;
    }
    fake_node *fn = node_of(d);
    op->next = fn->ops;
    if (fn->ops)
        fn->ops->prev = op;
    fn->ops = op;
    d->st.ops_live++;
    *out = op;
    return PST_OK;
}

/* Loop thread. Frees op once it is neither live nor named by an event. */
static void op_release(struct pst_dht_op *op) {
    pthread_mutex_lock(&g_mu);
    bool keep = op->live || op->refs > 0;
    pthread_mutex_unlock(&g_mu);
    if (keep)
        return;
    pst_dht *d = op->d;
    fake_node *fn = node_of(d);
    if (op->prev)
        op->prev->next = op->next;
    else
        fn->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    d->st.ops_live--;
    free(op->done_ev);
    free(op);
}

static void dispatch(pst_dht *d, struct pst_dht_event *e) {
    struct pst_dht_op *op = e->op;
    if (e->kind == EV_VALUE && op->live) {
        d->st.values_received++;
        if (op->kind == OP_LISTEN)
            op->on_listen(op->user, e->bytes, e->len, e->expired);
        else
            op->on_value(op->user, e->bytes, e->len);
    } else if (e->kind == EV_DONE && op->live) {
        op->live = false;
        pst_dht__count_status(d, op->kind, e->status);
        if (op->done)
            op->done(op->user, e->status);
    }
}

static void ev_drop(struct pst_dht_event *e) {
    struct pst_dht_op *op = e->op;
    pthread_mutex_lock(&g_mu);
    op->refs--;
    pthread_mutex_unlock(&g_mu);
    free(e);
    op_release(op);
}

static void on_async(uv_async_t *a) {
    pst_dht *d = a->data;
    pthread_mutex_lock(&g_mu);
    struct pst_dht_event *batch = d->q_head;
    d->q_head = d->q_tail = NULL;
    pthread_mutex_unlock(&g_mu);
    while (batch) {
        struct pst_dht_event *e = batch;
        batch = e->next;
        if (d->state == ST_RUNNING)
            dispatch(d, e); /* may close d: the rest is only freed */
        ev_drop(e);
    }
}

/* ---- init and close -------------------------------------------------------- */

int pst_dht_init(uv_loop_t *loop, pst_dht *d, const pst_dht_config *cfg) {
    if (d)
        memset(d, 0, sizeof *d);
    if (!loop || !d || !cfg || (cfg->network_id == PST_DHT_NETWORK_PUBLIC && !cfg->public_network))
        return PST_E_INVAL;
    fake_node *fn = calloc(1, sizeof *fn);
    if (fn == NULL)
        return PST_E_NOMEM;
    pthread_mutex_lock(&g_mu);
    fake_net *net = net_find(cfg->network_id);
    uint16_t port = cfg->port;
    if (port == 0)
        port = (uint16_t)(FAKE_PORT_FIRST + g_next_port++ % 40000u);
    for (fake_net *n = g_nets; n; n = n->next)
        for (fake_node *o = n->nodes; o; o = o->next)
            if (o->d->st.port4 == port) {
                pthread_mutex_unlock(&g_mu);
                free(fn);
                return PST_E_IO; /* the port is taken */
            }
    if (net == NULL) {
        if ((net = calloc(1, sizeof *net)) == NULL) {
            pthread_mutex_unlock(&g_mu);
            free(fn);
            return PST_E_NOMEM;
        }
        net->id = cfg->network_id;
        net->lifetime_ms = PST_DHT_FAKE_LIFETIME_MS;
        net->next = g_nets;
        g_nets = net;
    }
    uint32_t serial = ++g_instances;
    d->loop = loop;
    d->runner = fn;
    d->log = cfg->log;
    d->log_user = cfg->log_user;
    d->st.network_id = cfg->network_id;
    d->st.port4 = d->st.port6 = port;
    /* a node id that is unique in the process; OpenDHT's is random */
    uint8_t id[PST_SLOT_BYTES];
    for (unsigned i = 0; i < PST_SLOT_BYTES; i++)
        id[i] = (uint8_t)((serial * 2654435761u + cfg->network_id * 40503u + port) >> (i % 4 * 8)) ^
                (uint8_t)(i * 29u);
    for (unsigned i = 0; i < PST_SLOT_BYTES; i++)
        snprintf(d->st.node_id + 2 * i, 3, "%02x", id[i]);
    fn->d = d;
    fn->net = net;
    uv_async_init(loop, &d->async, on_async);
    d->async.data = d;
    fn->next = net->nodes;
    net->nodes = fn;
    d->state = ST_RUNNING;
    pthread_mutex_unlock(&g_mu);
    logf_(d, PST_DHT_LOG_INFO, "dht: fake node up (in-process network)");
    return PST_OK;
}

static void on_async_closed(uv_handle_t *h) {
    pst_dht *d = h->data;
    fake_node *fn = node_of(d);
    /* every get, put and ping not answered yet hears PST_E_CLOSED */
    for (struct pst_dht_op *op = fn->ops; op; op = op->next)
        if (op->live && op->kind != OP_LISTEN) {
            op->live = false;
            pst_dht__count_status(d, op->kind, PST_E_CLOSED);
            if (op->done)
                op->done(op->user, PST_E_CLOSED);
        }
    while (fn->ops) {
        struct pst_dht_op *op = fn->ops;
        fn->ops = op->next;
        free(op->done_ev);
        free(op);
    }
    free(fn);
    d->runner = NULL;
    d->st.ops_live = 0;
    d->st.listens_active = 0;
    d->state = ST_CLOSED;
    if (d->on_closed)
        d->on_closed(d);
}

void pst_dht_close(pst_dht *d, void (*on_closed)(pst_dht *)) {
    if (!d || d->state != ST_RUNNING)
        return;
    d->state = ST_CLOSING;
    d->on_closed = on_closed;
    fake_node *fn = node_of(d);
    pthread_mutex_lock(&g_mu);
    fake_net *net = fn->net;
    for (fake_node **pp = &net->nodes; *pp; pp = &(*pp)->next)
        if (*pp == fn) {
            *pp = fn->next;
            break;
        }
    for (struct pst_dht_op **pp = &net->listens; *pp;) {
        if ((*pp)->d == d)
            *pp = (*pp)->lnext;
        else
            pp = &(*pp)->lnext;
    }
    /* its permanent values are no longer re-put: they age from now */
    for (fake_val *v = net->vals; v; v = v->next)
        if (v->permanent_of == d) {
            v->permanent_of = NULL;
            v->expires_ms = now_ms() + net->lifetime_ms;
        }
    if (net->nodes == NULL)
        net_free(net);
    struct pst_dht_event *lists[2] = {d->q_head, fn->held_head};
    d->q_head = d->q_tail = fn->held_head = fn->held_tail = NULL;
    fn->n_held = 0;
    fn->net = NULL;
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < 2; i++)
        while (lists[i]) {
            struct pst_dht_event *e = lists[i];
            lists[i] = e->next;
            e->op->refs--;
            free(e);
        }
    uv_close((uv_handle_t *)&d->async, on_async_closed);
}

/* ---- the API --------------------------------------------------------------- */

/* Registers an operation of d and takes g_mu (values past their lifetime
 * swept): the caller fills op and queues its events, then unlocks. */
static int begin(pst_dht *d, uint8_t kind, const uint8_t *slot, pst_dht_done_cb done, void *user,
                 struct pst_dht_op **op, fake_net **net) {
    if (d->state != ST_RUNNING)
        return PST_E_CLOSED;
    int rc = op_new(d, kind, slot, op);
    if (rc != PST_OK)
        return rc;
    (*op)->done = done;
    (*op)->user = user;
    pthread_mutex_lock(&g_mu);
    *net = node_of(d)->net;
    expire(*net, NULL);
    return PST_OK;
}

/* Queues every value at op's slot for op (g_mu held). */
static void push_slot(fake_net *net, struct pst_dht_op *op) {
    for (fake_val *v = net->vals; v; v = v->next)
        if (memcmp(v->slot, op->slot, PST_SLOT_BYTES) == 0)
            push_value(net, op, v, false);
}

int pst_dht_bootstrap(pst_dht *d, const char *host, const char *port) {
    if (!d || !host || !port || !pst_dht__valid_host(host) || !pst_dht__valid_port(port))
        return PST_E_INVAL;
    return d->state == ST_RUNNING ? PST_OK : PST_E_CLOSED;
}

int pst_dht_ping(pst_dht *d, const char *host, const char *port, pst_dht_done_cb cb, void *user) {
    if (!d || !host || !port || !cb || !pst_dht__valid_host(host) || !pst_dht__valid_port(port))
        return PST_E_INVAL;
    struct pst_dht_op *op;
    fake_net *net;
    int rc = begin(d, OP_PING, NULL, cb, user, &op, &net);
    if (rc != PST_OK)
        return rc;
    /* loopback only: any other name "does not resolve", any other address
     * never answers */
    bool loopback = strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0 ||
                    strcmp(host, "localhost") == 0;
    bool numeric = strspn(host, "0123456789.:abcdefABCDEF") == strlen(host);
    int status = loopback || numeric ? PST_E_TIMEOUT : PST_E_NOTFOUND;
    unsigned long p = strtoul(port, NULL, 10);
    fake_node *self = node_of(d);
    if (loopback)
        for (fake_node *fn = net->nodes; fn; fn = fn->next)
            if (fn != self && fn->d->st.port4 == p)
                status = PST_OK;
    push(op, EV_DONE, NULL, 0, false, status);
    pthread_mutex_unlock(&g_mu);
    return PST_OK;
}

/* The per-slot counts of slot, made on first use (NULL: no memory). Caller
 * holds g_mu. */
static fake_count *count_of(fake_net *net, const uint8_t slot[PST_SLOT_BYTES]) {
    fake_count *c;
    for (c = net->counts; c && memcmp(c->slot, slot, PST_SLOT_BYTES) != 0; c = c->next)
        ;
    if (c == NULL && (c = calloc(1, sizeof *c)) != NULL) {
        memcpy(c->slot, slot, PST_SLOT_BYTES);
        c->next = net->counts;
        net->counts = c;
    }
    return c;
}

int pst_dht_put(pst_dht *d, const uint8_t slot[PST_SLOT_BYTES], const uint8_t *val, size_t len,
                bool permanent, uint32_t timeout_ms, pst_dht_done_cb cb, void *user) {
    if (!d || !slot || !val || len == 0 || timeout_ms > PST_DHT_TIMEOUT_MAX_MS)
        return PST_E_INVAL;
    if (len > PST_DHT_VALUE_MAX)
        return PST_E_TOOBIG;
    struct pst_dht_op *op;
    fake_net *net;
    int rc = begin(d, OP_PUT, slot, cb, user, &op, &net);
    if (rc != PST_OK)
        return rc;
    fake_val *v = NULL;
    for (v = net->vals; v; v = v->next)
        if (v->len == len && memcmp(v->slot, slot, PST_SLOT_BYTES) == 0 &&
            memcmp(v->bytes, val, len) == 0)
            break;
    if (v == NULL && (v = calloc(1, sizeof *v + len)) != NULL) {
        memcpy(v->slot, slot, PST_SLOT_BYTES);
        memcpy(v->bytes, val, len);
        v->len = len;
        v->next = net->vals;
        net->vals = v;
    }
    if (v == NULL) {
        pthread_mutex_unlock(&g_mu);
        op->live = false;
        op_release(op);
        return PST_E_NOMEM;
    }
    if (permanent)
        v->permanent_of = d;
    v->expires_ms = v->permanent_of ? 0 : now_ms() + net->lifetime_ms;
    net->puts++;
    fake_count *c = count_of(net, slot);
    if (c)
        c->puts++;
    tell_listeners(net, v, false);
    push(op, EV_DONE, NULL, 0, false, has_peer(net, d) ? PST_OK : PST_E_IO);
    pthread_mutex_unlock(&g_mu);
    return PST_OK;
}

int pst_dht_get(pst_dht *d, const uint8_t slot[PST_SLOT_BYTES], uint32_t timeout_ms,
                pst_dht_value_cb on_value, pst_dht_done_cb on_done, void *user) {
    if (!d || !slot || !on_value || !on_done || timeout_ms > PST_DHT_TIMEOUT_MAX_MS)
        return PST_E_INVAL;
    struct pst_dht_op *op;
    fake_net *net;
    int rc = begin(d, OP_GET, slot, on_done, user, &op, &net);
    if (rc != PST_OK)
        return rc;
    op->on_value = on_value;
    fake_count *c = count_of(net, slot);
    if (c)
        c->gets++;
    push_slot(net, op);
    push(op, EV_DONE, NULL, 0, false, has_peer(net, d) ? PST_OK : PST_E_IO);
    pthread_mutex_unlock(&g_mu);
    return PST_OK;
}

int pst_dht_listen(pst_dht *d, const uint8_t slot[PST_SLOT_BYTES], pst_dht_listen_cb cb, void *user,
                   pst_dht_listen_handle **out) {
    if (out)
        *out = NULL;
    if (!d || !slot || !cb || !out)
        return PST_E_INVAL;
    struct pst_dht_op *op;
    fake_net *net;
    int rc = begin(d, OP_LISTEN, slot, NULL, user, &op, &net);
    if (rc != PST_OK)
        return rc;
    op->on_listen = cb;
    op->lnext = net->listens;
    net->listens = op;
    push_slot(net, op);
    pthread_mutex_unlock(&g_mu);
    d->st.listens_active++;
    *out = op;
    return PST_OK;
}

void pst_dht_listen_cancel(pst_dht *d, pst_dht_listen_handle *h) {
    if (!d || !h || d->state != ST_RUNNING || h->d != d || !h->live)
        return;
    pthread_mutex_lock(&g_mu);
    fake_net *net = node_of(d)->net;
    for (struct pst_dht_op **pp = &net->listens; *pp; pp = &(*pp)->lnext)
        if (*pp == h) {
            *pp = h->lnext;
            break;
        }
    h->live = false;
    pthread_mutex_unlock(&g_mu);
    d->st.listens_active--;
    op_release(h);
}

void pst_dht_stats(const pst_dht *d, struct pst_dht_stats *out) {
    memset(out, 0, sizeof *out);
    if (d)
        *out = d->st;
}

/* ---- test control ---------------------------------------------------------- */

pst_dht *pst_dht_fake_find(uint32_t network, uint16_t port) {
    pst_dht *found = NULL;
    pthread_mutex_lock(&g_mu);
    fake_net *net = net_find(network);
    for (fake_node *fn = net ? net->nodes : NULL; fn && !found; fn = fn->next)
        if (fn->d->st.port4 == port)
            found = fn->d;
    pthread_mutex_unlock(&g_mu);
    return found;
}

unsigned pst_dht_fake_expire(uint32_t network, const uint8_t slot[PST_SLOT_BYTES]) {
    pthread_mutex_lock(&g_mu);
    fake_net *net = net_find(network);
    unsigned n = net && slot ? expire(net, slot) : 0;
    pthread_mutex_unlock(&g_mu);
    return n;
}

void pst_dht_fake_set_lifetime(uint32_t network, uint32_t ms) {
    pthread_mutex_lock(&g_mu);
    fake_net *net = net_find(network);
    if (net)
        net->lifetime_ms = ms;
    pthread_mutex_unlock(&g_mu);
}

void pst_dht_fake_twice(uint32_t network, bool on) {
    pthread_mutex_lock(&g_mu);
    fake_net *net = net_find(network);
    if (net)
        net->twice = on;
    pthread_mutex_unlock(&g_mu);
}

unsigned pst_dht_fake_redeliver(uint32_t network, const uint8_t slot[PST_SLOT_BYTES]) {
    unsigned n = 0;
    pthread_mutex_lock(&g_mu);
    fake_net *net = net_find(network);
    if (net && slot) {
        expire(net, NULL);
        for (fake_val *v = net->vals; v; v = v->next)
            if (memcmp(v->slot, slot, PST_SLOT_BYTES) == 0) {
                tell_listeners(net, v, false);
                n++;
            }
    }
    pthread_mutex_unlock(&g_mu);
    return n;
}

void pst_dht_fake_hold(pst_dht *d, const uint8_t *slot) {
    fake_node *fn = node_of(d);
    if (fn == NULL || d->state != ST_RUNNING)
        return;
    pthread_mutex_lock(&g_mu);
    fn->hold = slot ? HOLD_SLOT : HOLD_ALL;
    if (slot)
        memcpy(fn->hold_slot, slot, PST_SLOT_BYTES);
    /* what is queued but not dispatched yet is held too */
    struct pst_dht_event *q = d->q_head;
    d->q_head = d->q_tail = NULL;
    while (q) {
        struct pst_dht_event *e = q;
        q = e->next;
        e->next = NULL;
        struct pst_dht_event **head = &d->q_head, **tail = &d->q_tail;
        if (hold_matches(fn, e->op)) {
            head = &fn->held_head;
            tail = &fn->held_tail;
            fn->n_held++;
        }
        if (*tail)
            (*tail)->next = e;
        else
            *head = e;
        *tail = e;
    }
    pthread_mutex_unlock(&g_mu);
}

unsigned pst_dht_fake_held(const pst_dht *d) {
    const fake_node *fn = node_of(d);
    if (fn == NULL)
        return 0;
    pthread_mutex_lock(&g_mu);
    unsigned n = fn->n_held;
    pthread_mutex_unlock(&g_mu);
    return n;
}

/* Ends the hold: the held events go to the loop (values reversed with
 * reverse), or with lose only the done events do and the values are freed. */
static unsigned unhold(pst_dht *d, bool reverse, bool lose) {
    fake_node *fn = node_of(d);
    if (fn == NULL || d->state != ST_RUNNING)
        return 0;
    pthread_mutex_lock(&g_mu);
    fn->hold = HOLD_NONE;
    struct pst_dht_event *list = fn->held_head, *values = NULL, *dones = NULL, **dtail = &dones;
    struct pst_dht_event *lost = NULL;
    unsigned n = fn->n_held, n_lost = 0;
    fn->held_head = fn->held_tail = NULL;
    fn->n_held = 0;
    if (lose) {
        while (list) {
            struct pst_dht_event *e = list;
            list = e->next;
            e->next = NULL;
            if (e->kind == EV_VALUE) {
                e->next = lost;
                lost = e;
                n_lost++;
            } else {
                *dtail = e;
                dtail = &e->next;
            }
        }
        list = dones;
    } else if (reverse) {
        /* values reversed (prepend), done events after them in order */
        while (list) {
            struct pst_dht_event *e = list;
            list = e->next;
            e->next = NULL;
            if (e->kind == EV_VALUE) {
                e->next = values;
                values = e;
            } else {
                *dtail = e;
                dtail = &e->next;
            }
        }
        struct pst_dht_event **t = &values;
        while (*t)
            t = &(*t)->next;
        *t = dones;
        list = values;
    }
    while (list) {
        struct pst_dht_event *e = list;
        list = e->next;
        e->next = NULL;
        if (d->q_tail)
            d->q_tail->next = e;
        else
            d->q_head = e;
        d->q_tail = e;
    }
    if (n)
        uv_async_send(&d->async);
    pthread_mutex_unlock(&g_mu);
    while (lost) {
        struct pst_dht_event *e = lost;
        lost = e->next;
        ev_drop(e);
    }
    return lose ? n_lost : n;
}

unsigned pst_dht_fake_release(pst_dht *d, bool reverse) { return unhold(d, reverse, false); }

unsigned pst_dht_fake_lose(pst_dht *d) { return unhold(d, false, true); }

unsigned pst_dht_fake_drop_listens(pst_dht *d) {
    fake_node *fn = node_of(d);
    unsigned n = 0;
    if (fn == NULL)
        return 0;
    pthread_mutex_lock(&g_mu);
    for (struct pst_dht_op *op = fn->ops; op; op = op->next)
        if (op->kind == OP_LISTEN && op->live && !op->deaf) {
            op->deaf = true;
            n++;
        }
    pthread_mutex_unlock(&g_mu);
    return n;
}

uint64_t pst_dht_fake_puts(uint32_t network, const uint8_t *slot) {
    uint64_t n = 0;
    pthread_mutex_lock(&g_mu);
    fake_net *net = net_find(network);
    if (net && slot == NULL)
        n = net->puts;
    for (fake_count *c = net && slot ? net->counts : NULL; c; c = c->next)
        if (memcmp(c->slot, slot, PST_SLOT_BYTES) == 0)
            n = c->puts;
    pthread_mutex_unlock(&g_mu);
    return n;
}

uint64_t pst_dht_fake_gets(uint32_t network, const uint8_t slot[PST_SLOT_BYTES]) {
    uint64_t n = 0;
    pthread_mutex_lock(&g_mu);
    fake_net *net = net_find(network);
    for (fake_count *c = net && slot ? net->counts : NULL; c; c = c->next)
        if (memcmp(c->slot, slot, PST_SLOT_BYTES) == 0)
            n = c->gets;
    pthread_mutex_unlock(&g_mu);
    return n;
}

unsigned pst_dht_fake_values(uint32_t network, const uint8_t slot[PST_SLOT_BYTES]) {
    unsigned n = 0;
    pthread_mutex_lock(&g_mu);
    fake_net *net = net_find(network);
    if (net && slot) {
        expire(net, NULL);
        for (fake_val *v = net->vals; v; v = v->next)
            n += memcmp(v->slot, slot, PST_SLOT_BYTES) == 0;
    }
    pthread_mutex_unlock(&g_mu);
    return n;
}
