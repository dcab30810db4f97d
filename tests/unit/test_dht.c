/* pst_dht on loopback: several nodes in one process, one loop, a random
 * private network id per test, peer discovery off. No fixed sleeps: the loop
 * runs until a condition holds or a deadline passes. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* The hostile_peer and value type tests use OpenDHT directly: they play
 * peers that put values our own API refuses to send, or that know nothing of
 * Postern's value types (as Jami's nodes). */
#include <opendht/opendht_c.h>

#include "dht_types.h"
#include "pst_dht.h"
#include "testutil.h"

/* Under ASan a leak is printed when the test's process exits, but Criterion
 * has already counted the test as passed by then: check for leaks while the
 * test can still fail. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
static void check_leaks(void) {
    if (__lsan_do_recoverable_leak_check() != 0)
        abort(); /* a failed assertion in .fini would not fail the test */
}
#else
static void check_leaks(void) {}
#endif
TestSuite(dht, .fini = check_leaks);

#define NODES_MAX 4
#define DEADLINE_MS 8000u

typedef struct {
    uv_loop_t loop;
    pst_dht n[NODES_MAX];
    int started, closed;
    uint32_t net;
} cluster;

typedef struct {
    int values, done_calls, late_values;
    int status;
    uint8_t last[PST_DHT_VALUE_MAX];
    size_t last_len;
} getres;

typedef struct {
    int calls;
    int status;
} doneres;

typedef struct {
    int values, expired;
    uint8_t last[PST_DHT_VALUE_MAX];
    size_t last_len;
} listenres;

static uint32_t random_net(void) {
    uint32_t n = 0;
    cr_assert_eq(getrandom(&n, sizeof n, 0), (ssize_t)sizeof n);
    n |= 1u; /* never 0, the public OpenDHT network */
    if (n == PST_DHT_NETWORK_PUBLIC)
        n ^= 2u;
    return n;
}

static void random_slot(uint8_t slot[PST_SLOT_BYTES]) {
    cr_assert_eq(getrandom(slot, PST_SLOT_BYTES, 0), (ssize_t)PST_SLOT_BYTES);
}

/* ---- loop driving ------------------------------------------------------ */

typedef bool (*cond_fn)(void *ctx);

static void on_deadline(uv_timer_t *t) { *(bool *)t->data = true; }

/* Runs the loop until cond(ctx) holds or ms pass; returns cond(ctx). */
static bool run_until(uv_loop_t *loop, cond_fn cond, void *ctx, uint64_t ms) {
    bool expired = false;
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, ms, 0);
    while (!cond(ctx) && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* runs t's close before it leaves scope */
    return cond(ctx);
}

static bool get_done(void *p) { return ((getres *)p)->done_calls > 0; }
static bool done_done(void *p) { return ((doneres *)p)->calls > 0; }
static bool all_closed(void *p) {
    cluster *c = p;
    return c->closed == c->started;
}

/* ---- callbacks ---------------------------------------------------------- */

static void get_value_cb(void *user, const uint8_t *val, size_t len) {
    getres *r = user;
    if (r->done_calls)
        r->late_values++;
    cr_assert_leq(len, PST_DHT_VALUE_MAX);
    memcpy(r->last, val, len);
    r->last_len = len;
    r->values++;
}

static void get_done_cb(void *user, int status) {
    getres *r = user;
    r->done_calls++;
    r->status = status;
}

static void done_cb(void *user, int status) {
    doneres *r = user;
    r->calls++;
    r->status = status;
}

static void listen_cb(void *user, const uint8_t *val, size_t len, bool expired) {
    listenres *r = user;
    cr_assert_leq(len, PST_DHT_VALUE_MAX);
    memcpy(r->last, val, len);
    r->last_len = len;
    r->values++;
    r->expired += expired;
}

static void never_cb(void *user, int status) {
    (void)user;
    cr_assert_fail("callback called although the call failed (status %d)", status);
}

static void on_node_closed(pst_dht *d) { ((cluster *)d->data)->closed++; }

/* ---- cluster helpers ------------------------------------------------------ */

static void cluster_init(cluster *c) {
    memset(c, 0, sizeof *c);
    cr_assert_eq(uv_loop_init(&c->loop), 0);
    c->net = random_net();
}

static pst_dht *node_start(cluster *c, uint32_t net) {
    cr_assert_lt(c->started, NODES_MAX);
    pst_dht *d = &c->n[c->started];
    pst_dht_config cfg = {.network_id = net};
    cr_assert_eq(pst_dht_init(&c->loop, d, &cfg), PST_OK);
    d->data = c;
    c->started++;
    struct pst_dht_stats st;
    pst_dht_stats(d, &st);
    cr_assert_neq(st.port4, 0);
    cr_assert_eq(strlen(st.node_id), 40);
    cr_assert_eq(st.network_id, net);
    return d;
}

static void port_of(pst_dht *d, char out[8]) {
    struct pst_dht_stats st;
    pst_dht_stats(d, &st);
    snprintf(out, 8, "%u", (unsigned)st.port4);
}

/* Bootstraps `from` to `to` and waits for a ping answer, so both routing
 * tables hold the other node before the test goes on. */
static void link_nodes(cluster *c, pst_dht *from, pst_dht *to) {
    char port[8];
    port_of(to, port);
    cr_assert_eq(pst_dht_bootstrap(from, "127.0.0.1", port), PST_OK);
    doneres r = {0};
    cr_assert_eq(pst_dht_ping(from, "127.0.0.1", port, done_cb, &r), PST_OK);
    cr_assert(run_until(&c->loop, done_done, &r, DEADLINE_MS));
    cr_assert_eq(r.status, PST_OK);
}

static cluster *trio(void) {
    cluster *c = malloc(sizeof *c);
    cluster_init(c);
    pst_dht *a = node_start(c, c->net), *b = node_start(c, c->net), *cc = node_start(c, c->net);
    link_nodes(c, b, a);
    link_nodes(c, cc, a);
    link_nodes(c, cc, b);
    /* Both ways: a node that knows a peer only from its requests holds its
     * first put for about a second until that peer answers it. */
    link_nodes(c, a, b);
    link_nodes(c, a, cc);
    link_nodes(c, b, cc);
    return c;
}

static void cluster_close(cluster *c) {
    for (int i = 0; i < c->started; i++)
        pst_dht_close(&c->n[i], on_node_closed);
    cr_assert(run_until(&c->loop, all_closed, c, DEADLINE_MS));
    cr_assert_eq(uv_loop_close(&c->loop), 0, "a handle was left open");
    free(c);
}

static void put_and_wait(cluster *c, pst_dht *d, const uint8_t *slot, const uint8_t *val,
                         size_t len) {
    doneres r = {0};
    cr_assert_eq(pst_dht_put(d, slot, val, len, false, 5000, done_cb, &r), PST_OK);
    cr_assert(run_until(&c->loop, done_done, &r, DEADLINE_MS));
    cr_assert_eq(r.status, PST_OK, "put: %s", pst_err_name(r.status));
}

static void get_and_wait(cluster *c, pst_dht *d, const uint8_t *slot, uint32_t timeout, getres *r) {
    memset(r, 0, sizeof *r);
    cr_assert_eq(pst_dht_get(d, slot, timeout, get_value_cb, get_done_cb, r), PST_OK);
    cr_assert(run_until(&c->loop, get_done, r, timeout + 2000u));
    cr_assert_eq(r->done_calls, 1);
}

/* ---- tests ---------------------------------------------------------------- */

Test(dht, init_rejects_bad_config) {
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    pst_dht d;
    pst_dht_config cfg = {0}; /* network_id 0: OpenDHT's public network */
    cr_assert_eq(pst_dht_init(&loop, &d, &cfg), PST_E_INVAL);
    cr_assert_eq(pst_dht_init(NULL, &d, &cfg), PST_E_INVAL);
    cr_assert_eq(pst_dht_init(&loop, &d, NULL), PST_E_INVAL);
    cr_assert_eq(pst_dht_init(&loop, NULL, &cfg), PST_E_INVAL);
    /* A failed init leaves a zeroed handle that refuses everything. */
    uint8_t slot[PST_SLOT_BYTES] = {1};
    cr_assert_eq(pst_dht_put(&d, slot, slot, 1, false, 0, never_cb, NULL), PST_E_CLOSED);
    pst_dht_close(&d, NULL);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(dht, init_fails_on_taken_port) {
    cluster *c = malloc(sizeof *c);
    cluster_init(c);
    pst_dht *a = node_start(c, c->net);
    struct pst_dht_stats st;
    pst_dht_stats(a, &st);
    pst_dht b;
    pst_dht_config cfg = {.network_id = c->net, .port = st.port4};
    cr_assert_eq(pst_dht_init(&c->loop, &b, &cfg), PST_E_IO);
    cluster_close(c);
}

Test(dht, arguments_are_checked) {
    cluster *c = malloc(sizeof *c);
    cluster_init(c);
    pst_dht *a = node_start(c, c->net);
    uint8_t slot[PST_SLOT_BYTES], val[PST_DHT_VALUE_MAX + 1];
    random_slot(slot);
    memset(val, 7, sizeof val);
    cr_assert_eq(pst_dht_put(a, slot, val, 0, false, 0, never_cb, NULL), PST_E_INVAL);
    cr_assert_eq(pst_dht_put(a, NULL, val, 1, false, 0, never_cb, NULL), PST_E_INVAL);
    cr_assert_eq(pst_dht_put(a, slot, val, 1, false, PST_DHT_TIMEOUT_MAX_MS + 1, never_cb, NULL),
                 PST_E_INVAL);
    cr_assert_eq(pst_dht_put(a, slot, val, PST_DHT_VALUE_MAX + 1, false, 0, never_cb, NULL),
                 PST_E_TOOBIG);
    cr_assert_eq(pst_dht_get(a, slot, 0, get_value_cb, NULL, NULL), PST_E_INVAL);
    cr_assert_eq(pst_dht_get(a, slot, 0, NULL, never_cb, NULL), PST_E_INVAL);
    pst_dht_listen_handle *h = (pst_dht_listen_handle *)1;
    cr_assert_eq(pst_dht_listen(a, slot, NULL, NULL, &h), PST_E_INVAL);
    cr_assert_null(h);
    const char *bad_ports[] = {"", "0", "65536", "08", "abc", "1 ", "123456"};
    for (size_t i = 0; i < sizeof bad_ports / sizeof *bad_ports; i++) {
        cr_assert_eq(pst_dht_bootstrap(a, "127.0.0.1", bad_ports[i]), PST_E_INVAL);
        cr_assert_eq(pst_dht_ping(a, "127.0.0.1", bad_ports[i], never_cb, NULL), PST_E_INVAL);
    }
    char long_host[PST_DHT_HOST_MAX + 2];
    memset(long_host, 'a', sizeof long_host - 1);
    long_host[sizeof long_host - 1] = '\0';
    cr_assert_eq(pst_dht_bootstrap(a, long_host, "4222"), PST_E_INVAL);
    cr_assert_eq(pst_dht_bootstrap(a, "", "4222"), PST_E_INVAL);
    cr_assert_eq(pst_dht_ping(a, "127.0.0.1", "4222", NULL, NULL), PST_E_INVAL);
    struct pst_dht_stats st;
    pst_dht_stats(a, &st);
    cr_assert_eq(st.ops_live, 0);
    cluster_close(c);
}

Test(dht, put_on_a_get_on_b) {
    cluster *c = trio();
    uint8_t slot[PST_SLOT_BYTES], val[300], big[PST_DHT_VALUE_MAX];
    random_slot(slot);
    tu_fill(val, sizeof val, 1);
    put_and_wait(c, &c->n[0], slot, val, sizeof val);
    getres r;
    get_and_wait(c, &c->n[1], slot, 5000, &r);
    cr_assert_eq(r.status, PST_OK, "get: %s", pst_err_name(r.status));
    cr_assert_eq(r.values, 1);
    cr_assert_eq(r.late_values, 0);
    cr_assert_eq(r.last_len, sizeof val);
    cr_assert_arr_eq(r.last, val, sizeof val);

    /* Exactly PST_DHT_VALUE_MAX bytes still travels. */
    random_slot(slot);
    tu_fill(big, sizeof big, 2);
    put_and_wait(c, &c->n[2], slot, big, sizeof big);
    get_and_wait(c, &c->n[0], slot, 5000, &r);
    cr_assert_eq(r.status, PST_OK);
    cr_assert_eq(r.values, 1);
    cr_assert_eq(r.last_len, sizeof big);
    cr_assert_arr_eq(r.last, big, sizeof big);

    struct pst_dht_stats st;
    pst_dht_stats(&c->n[1], &st);
    cr_assert_eq(st.gets_ok, 1);
    cr_assert_eq(st.values_received, 1);
    cr_assert_eq(st.ops_live, 0);
    pst_dht_stats(&c->n[0], &st);
    cr_assert_eq(st.puts_ok, 1);
    cluster_close(c);
}

/* A node alone has nobody to answer its get (PST_E_IO): the stats say the
 * last get went unanswered; once a peer answers a ping, the last answered
 * op is the newer one (pst_node_joined() rests on this order). */
Test(dht, stats_tell_alone_from_answered) {
    cluster *c = malloc(sizeof *c);
    cluster_init(c);
    pst_dht *a = node_start(c, c->net);
    uint8_t slot[PST_SLOT_BYTES];
    random_slot(slot);
    getres r;
    get_and_wait(c, a, slot, 5000, &r);
    cr_assert_eq(r.status, PST_E_IO, "get alone: %s", pst_err_name(r.status));
    struct pst_dht_stats st;
    pst_dht_stats(a, &st);
    cr_assert_eq(st.ops_ended, 1);
    cr_assert_eq(st.last_unanswered_op, 1);
    cr_assert_eq(st.last_answered_op, 0);
    pst_dht *b = node_start(c, c->net);
    link_nodes(c, a, b);
    link_nodes(c, b, a);
    pst_dht_stats(a, &st);
    cr_assert_eq(st.last_answered_op, st.ops_ended);
    cr_assert_gt(st.last_answered_op, st.last_unanswered_op);
    cr_assert_gt(st.last_answered_ms, 0);
    get_and_wait(c, a, slot, 5000, &r);
    cr_assert_eq(r.status, PST_OK, "get with a peer: %s", pst_err_name(r.status));
    pst_dht_stats(a, &st);
    cr_assert_eq(st.last_answered_op, st.ops_ended);
    cr_assert_eq(st.last_unanswered_op, 1);
    cluster_close(c);
}

static bool listen_got_two(void *p) { return ((listenres *)p)->values >= 2; }
static bool listen_got_one(void *p) { return ((listenres *)p)->values >= 1; }
static bool listen_got_50(void *p) { return ((listenres *)p)->last_len == 50; }

Test(dht, listen_on_c_sees_put_on_a) {
    cluster *c = trio();
    uint8_t slot[PST_SLOT_BYTES], v1[40], v2[50];
    random_slot(slot);
    tu_fill(v1, sizeof v1, 3);
    tu_fill(v2, sizeof v2, 4);
    listenres lr = {0};
    pst_dht_listen_handle *h = NULL;
    cr_assert_eq(pst_dht_listen(&c->n[2], slot, listen_cb, &lr, &h), PST_OK);
    cr_assert_not_null(h);
    struct pst_dht_stats st;
    pst_dht_stats(&c->n[2], &st);
    cr_assert_eq(st.listens_active, 1);

    /* The same bytes twice from one node are one DHT value, refreshed
     * (same_bytes_put_again_are_one_value); OpenDHT may still repeat it:
     * nothing must break. */
    put_and_wait(c, &c->n[0], slot, v1, sizeof v1);
    put_and_wait(c, &c->n[0], slot, v1, sizeof v1);
    cr_assert(run_until(&c->loop, listen_got_one, &lr, DEADLINE_MS));
    cr_assert_arr_eq(lr.last, v1, sizeof v1);
    cr_assert_eq(lr.expired, 0);

    put_and_wait(c, &c->n[1], slot, v2, sizeof v2);
    cr_assert(run_until(&c->loop, listen_got_50, &lr, DEADLINE_MS));
    cr_assert_arr_eq(lr.last, v2, sizeof v2);

    pst_dht_listen_cancel(&c->n[2], h);
    pst_dht_stats(&c->n[2], &st);
    cr_assert_eq(st.listens_active, 0);
    int before = lr.values;
    put_and_wait(c, &c->n[0], slot, v2, sizeof v2);
    getres r; /* a get through C drains C's queue after the put */
    get_and_wait(c, &c->n[2], slot, 5000, &r);
    cr_assert_eq(lr.values, before, "listen callback after cancel");
    cluster_close(c);
}

Test(dht, get_on_empty_slot_ends_without_values) {
    cluster *c = trio();
    uint8_t slot[PST_SLOT_BYTES];
    random_slot(slot);
    getres r;
    get_and_wait(c, &c->n[1], slot, 3000, &r);
    cr_assert(r.status == PST_OK || r.status == PST_E_TIMEOUT, "%s", pst_err_name(r.status));
    cr_assert_eq(r.values, 0);
    cluster_close(c);
}

Test(dht, oversize_put_is_refused) {
    cluster *c = trio();
    uint8_t slot[PST_SLOT_BYTES], val[PST_DHT_VALUE_MAX + 1];
    random_slot(slot);
    memset(val, 0x5a, sizeof val);
    cr_assert_eq(pst_dht_put(&c->n[0], slot, val, sizeof val, false, 0, never_cb, NULL),
                 PST_E_TOOBIG);
    /* Nothing was stored: a later put and get at that slot see one value. */
    put_and_wait(c, &c->n[0], slot, val, 10);
    getres r;
    get_and_wait(c, &c->n[1], slot, 5000, &r);
    cr_assert_eq(r.values, 1);
    cr_assert_eq(r.last_len, 10);
    cluster_close(c);
}

/* A bare OpenDHT runner on the cluster's network, bootstrapped to seed: a
 * peer that is not Postern. */
static dht_runner *raw_new(cluster *c, pst_dht *seed) {
    dht_runner *r = dht_runner_new();
    dht_runner_config rc;
    dht_runner_config_default(&rc);
    rc.dht_config.node_config.network = c->net;
    cr_assert_eq(dht_runner_run_config(r, 0, &rc), 0);
    char port[8];
    port_of(seed, port);
    dht_runner_bootstrap(r, "127.0.0.1", port);
    return r;
}

static void raw_done(bool ok, void *arg) {
    (void)ok;
    (void)arg;
}

static bool dropped_seen(void *p) {
    struct pst_dht_stats st;
    pst_dht_stats(p, &st);
    return st.values_dropped_oversize > 0;
}

Test(dht, hostile_peer_oversize_values_are_dropped) {
    cluster *c = trio();
    uint8_t slot[PST_SLOT_BYTES];
    random_slot(slot);
    listenres lr = {0};
    pst_dht_listen_handle *h;
    cr_assert_eq(pst_dht_listen(&c->n[1], slot, listen_cb, &lr, &h), PST_OK);

    dht_runner *raw = raw_new(c, &c->n[0]);
    static uint8_t huge[PST_DHT_VALUE_MAX + 1];
    memset(huge, 0xee, sizeof huge);
    dht_value *v = dht_value_new(huge, sizeof huge);
    dht_infohash ih;
    memcpy(ih.d, slot, sizeof ih.d);
    dht_runner_put(raw, &ih, v, raw_done, NULL, false);
    dht_value_unref(v);

    cr_assert(run_until(&c->loop, dropped_seen, &c->n[1], DEADLINE_MS));
    getres r;
    get_and_wait(c, &c->n[2], slot, 5000, &r);
    cr_assert_eq(r.values, 0);
    cr_assert_eq(lr.values, 0);
    dht_runner_delete(raw);
    cluster_close(c);
}

/* ---- Postern's value types (dht_types.h) ---------------------------------- */

typedef struct {
    atomic_int values;
    uint16_t type[4];
    size_t len[4];
} rawget;

static bool raw_get_value(const dht_value *v, void *arg) {
    rawget *g = arg;
    int i = atomic_load(&g->values);
    if (i < 4) {
        g->type[i] = pst_dht__value_type(v);
        g->len[i] = dht_value_get_data(v).size;
    }
    atomic_fetch_add(&g->values, 1);
    return true;
}
static bool raw_get_one(void *p) { return atomic_load(&((rawget *)p)->values) >= 1; }
static void raw_count_done(bool ok, void *arg) {
    (void)ok;
    atomic_fetch_add((atomic_int *)arg, 1);
}
typedef struct {
    pst_dht *s;
    dht_runner *j;
    uint64_t s0, j0, s1, j1, refused;
} stores;

static bool stores_settled(void *p) {
    stores *w = p;
    uint64_t bytes;
    struct pst_dht_stats st;
    pst_dht_stats(w->s, &st);
    w->refused = st.values_refused_store;
    pst_dht__store_size(w->s->runner, &w->s1, &bytes);
    pst_dht__store_size(w->j, &w->j1, &bytes);
    return w->refused >= 2 && w->s1 - w->s0 >= 1 && w->j1 - w->j0 >= 3;
}

static dht_runner *raw_start(cluster *c, pst_dht *seed) {
    dht_runner *r = raw_new(c, seed);
    char port[8];
    /* the seed pings back, so both routing tables hold the other */
    snprintf(port, sizeof port, "%u", (unsigned)dht_runner_get_bound_port(r, AF_INET));
    doneres pr = {0};
    cr_assert_eq(pst_dht_ping(seed, "127.0.0.1", port, done_cb, &pr), PST_OK);
    cr_assert(run_until(&c->loop, done_done, &pr, DEADLINE_MS));
    cr_assert_eq(pr.status, PST_OK);
    return r;
}

static void raw_put_typed(dht_runner *r, const uint8_t *slot, const uint8_t *val, size_t len,
                          uint16_t type, atomic_int *done) {
    dht_value *v = dht_value_new(val, len);
    pst_dht__value_set_type(v, type);
    dht_infohash ih;
    memcpy(ih.d, slot, sizeof ih.d);
    dht_runner_put(r, &ih, v, raw_count_done, done, false);
    dht_value_unref(v);
}

/* S runs Postern; J is a plain OpenDHT node (Jami's, a dhtnode); P a foreign
 * putter. S tags what it puts with Postern's type ids, which travel with the
 * value; S refuses values under our ids that Postern would never put, J
 * stores them (it applies USER_DATA to ids it does not know). */
Test(dht, storing_node_applies_postern_value_types) {
    cluster *c = malloc(sizeof *c);
    cluster_init(c);
    pst_dht *s = node_start(c, c->net);
    dht_runner *j = raw_start(c, s);
    struct pst_dht_stats st;
    pst_dht_stats(s, &st);
    cr_assert(st.value_types, "the value handle check failed: types not registered");
    dht_runner *p = raw_start(c, s);
    char jport[8];
    snprintf(jport, sizeof jport, "%u", (unsigned)dht_runner_get_bound_port(j, AF_INET));
    dht_runner_bootstrap(p, "127.0.0.1", jport);

    /* (1) Our put carries our id to a node without our types, and reads back. */
    const uint8_t note[] = {0x93, PST_PROTO_VERSION, PST_REC_NOTIFICATION, 0x01, 0x02};
    cr_assert_eq(pst_dht__type_of(note, sizeof note), PST_DHT_TYPE_NOTIFICATION);
    uint8_t slot1[PST_SLOT_BYTES];
    random_slot(slot1);
    put_and_wait(c, s, slot1, note, sizeof note);
    rawget g1 = {0};
    dht_infohash ih;
    memcpy(ih.d, slot1, sizeof ih.d);
    dht_runner_get(j, &ih, raw_get_value, raw_done, &g1);
    cr_assert(run_until(&c->loop, raw_get_one, &g1, DEADLINE_MS));
    cr_assert_eq(g1.type[0], PST_DHT_TYPE_NOTIFICATION);
    cr_assert_eq(g1.len[0], sizeof note);
    getres r;
    uint64_t bytes;
    get_and_wait(c, s, slot1, 5000, &r);
    cr_assert_eq(r.values, 1);
    cr_assert_eq(r.last_len, sizeof note);
    cr_assert_eq(memcmp(r.last, note, sizeof note), 0);

    /* (2) Under the record type: a key record, junk, a notification. */
    const uint8_t key[] = {0x93, PST_PROTO_VERSION, PST_REC_KEY, 0xc0};
    const uint8_t junk[] = {0xde, 0xad, 0xbe, 0xef, 0x00};
    uint8_t slot2[PST_SLOT_BYTES];
    random_slot(slot2);
    stores w = {.s = s, .j = j};
    pst_dht__store_size(s->runner, &w.s0, &bytes);
    pst_dht__store_size(j, &w.j0, &bytes);
    atomic_int puts = 0;
    raw_put_typed(p, slot2, key, sizeof key, PST_DHT_TYPE_RECORD, &puts);
    raw_put_typed(p, slot2, junk, sizeof junk, PST_DHT_TYPE_RECORD, &puts);
    raw_put_typed(p, slot2, note, sizeof note, PST_DHT_TYPE_RECORD, &puts);
    /* S refused two and stored one, J stored all three: read in their own
     * stores, so what P holds itself does not count. */
    cr_assert(run_until(&c->loop, stores_settled, &w, DEADLINE_MS),
              "S: %" PRIu64 " stored, %" PRIu64 " refused; J: %" PRIu64 " stored", w.s1 - w.s0,
              w.refused, w.j1 - w.j0);
    cr_assert_eq(w.s1 - w.s0, 1);
    cr_assert_eq(w.refused, 2);
    cr_assert_eq(w.j1 - w.j0, 3);
    /* What S holds at the slot is the key record. */
    dht_runner_delete(p);
    dht_runner_delete(j);
    get_and_wait(c, s, slot2, 1500, &r);
    cr_assert_eq(r.values, 1);
    cr_assert_eq(r.last_len, sizeof key);
    cr_assert_eq(memcmp(r.last, key, sizeof key), 0);
    cluster_close(c);
}

Test(dht, ping_live_dead_and_unknown) {
    cluster *c = malloc(sizeof *c);
    cluster_init(c);
    pst_dht *a = node_start(c, c->net), *b = node_start(c, c->net);
    char port[8];
    port_of(a, port);
    /* Only numeric loopback: a minimal root or a container may have no
     * /etc/hosts, so even "localhost" need not resolve there. */
    doneres live = {0}, dead = {0}, unknown = {0};
    cr_assert_eq(pst_dht_ping(b, "127.0.0.1", port, done_cb, &live), PST_OK);
    /* Port 9 (discard) on loopback: nothing answers. */
    cr_assert_eq(pst_dht_ping(b, "127.0.0.1", "9", done_cb, &dead), PST_OK);
    cr_assert_eq(pst_dht_ping(b, "nonexistent.invalid", "9", done_cb, &unknown), PST_OK);
    cr_assert(run_until(&c->loop, done_done, &live, DEADLINE_MS));
    cr_assert_eq(live.status, PST_OK);
    cr_assert(run_until(&c->loop, done_done, &dead, PST_DHT_PING_TIMEOUT_MS + 2000u));
    cr_assert_eq(dead.status, PST_E_TIMEOUT);
    cr_assert(run_until(&c->loop, done_done, &unknown, PST_DHT_PING_TIMEOUT_MS + 2000u));
    cr_assert(unknown.status == PST_E_NOTFOUND || unknown.status == PST_E_TIMEOUT);
    cr_assert_eq(live.calls + dead.calls + unknown.calls, 3);
    struct pst_dht_stats st;
    pst_dht_stats(b, &st);
    cr_assert_eq(st.pings_ok, 1);
    cr_assert_eq(st.pings_failed, 2);
    cluster_close(c);
}

Test(dht, standalone_get_ends_by_itself_or_by_timeout) {
    cluster *c = malloc(sizeof *c);
    cluster_init(c);
    pst_dht *alone = node_start(c, c->net);
    pst_dht *lost = node_start(c, c->net);
    /* A seed that never answers keeps OpenDHT "connecting": its get hangs
     * for seconds and only our timer ends it. */
    cr_assert_eq(pst_dht_bootstrap(lost, "127.0.0.1", "9"), PST_OK);
    uint8_t slot[PST_SLOT_BYTES];
    random_slot(slot);
    getres r1, r2;
    get_and_wait(c, alone, slot, 500, &r1);
    cr_assert(r1.status == PST_E_IO || r1.status == PST_E_TIMEOUT, "%s", pst_err_name(r1.status));
    uint64_t t0 = uv_now(&c->loop);
    get_and_wait(c, lost, slot, 300, &r2);
    cr_assert_eq(r2.status, PST_E_TIMEOUT, "%s", pst_err_name(r2.status));
    cr_assert_geq(uv_now(&c->loop) - t0, 290);
    cr_assert_eq(r2.values + r1.values, 0);
    struct pst_dht_stats st;
    pst_dht_stats(lost, &st);
    cr_assert_eq(st.gets_timed_out, 1);
    /* OpenDHT still holds the get: close frees it without a second call. */
    cluster_close(c);
    cr_assert_eq(r2.done_calls, 1);
}

static int closed_order, closed_seen_at;
static void count_closed_cb(void *user, int status) {
    doneres *r = user;
    cr_assert_eq(closed_seen_at, 0, "done callback after on_closed");
    r->calls++;
    r->status = status;
    closed_order++;
}
static void on_closed_last(pst_dht *d) {
    closed_seen_at = closed_order;
    on_node_closed(d);
}

Test(dht, close_with_pending_ops_reports_closed) {
    cluster *c = malloc(sizeof *c);
    cluster_init(c);
    pst_dht *a = node_start(c, c->net);
    pst_dht *other = node_start(c, c->net ^ 0x100u);
    char port[8];
    port_of(other, port);
    /* Its only seed is on another network: nothing ever completes. */
    cr_assert_eq(pst_dht_bootstrap(a, "127.0.0.1", port), PST_OK);
    uint8_t slot[PST_SLOT_BYTES], val[64];
    random_slot(slot);
    tu_fill(val, sizeof val, 9);
    doneres g = {0}, p = {0}, pp = {0}, pr = {0}, pn = {0};
    cr_assert_eq(pst_dht_get(a, slot, 60000, get_value_cb, count_closed_cb, &g), PST_OK);
    cr_assert_eq(pst_dht_put(a, slot, val, sizeof val, true, 60000, count_closed_cb, &p), PST_OK);
    cr_assert_eq(pst_dht_ping(a, "127.0.0.1", port, count_closed_cb, &pp), PST_OK);
    cr_assert_eq(pst_dht_ping(a, "127.0.0.1", "9", count_closed_cb, &pr), PST_OK);
    /* A name goes to the resolver thread; close comes before its answer,
     * whatever it is (no /etc/hosts needed). */
    cr_assert_eq(pst_dht_ping(a, "nonexistent.invalid", "9", count_closed_cb, &pn), PST_OK);
    listenres lr = {0};
    pst_dht_listen_handle *h1, *h2;
    cr_assert_eq(pst_dht_listen(a, slot, listen_cb, &lr, &h1), PST_OK);
    cr_assert_eq(pst_dht_listen(a, slot, listen_cb, &lr, &h2), PST_OK);
    pst_dht_listen_cancel(a, h2);
    uv_run(&c->loop, UV_RUN_NOWAIT);

    pst_dht_close(a, on_closed_last);
    /* Everything is refused once close was called. */
    cr_assert_eq(pst_dht_get(a, slot, 0, get_value_cb, never_cb, NULL), PST_E_CLOSED);
    cr_assert_eq(pst_dht_bootstrap(a, "127.0.0.1", port), PST_E_CLOSED);
    pst_dht_listen_cancel(a, h1); /* ignored: close owns the handle */
    pst_dht_close(other, on_node_closed);
    cr_assert(run_until(&c->loop, all_closed, c, DEADLINE_MS));
    cr_assert_eq(g.calls, 1);
    cr_assert_eq(g.status, PST_E_CLOSED);
    cr_assert_eq(p.calls, 1);
    cr_assert_eq(p.status, PST_E_CLOSED);
    cr_assert_eq(pp.calls + pr.calls + pn.calls, 3);
    cr_assert_eq(pp.status, PST_E_CLOSED);
    cr_assert_eq(pr.status, PST_E_CLOSED);
    cr_assert_eq(pn.status, PST_E_CLOSED);
    cr_assert_eq(closed_seen_at, 5);
    cr_assert_eq(uv_loop_close(&c->loop), 0);
    free(c);
}

static pst_dht *close_me;
static void close_in_done(void *user, int status) {
    done_cb(user, status);
    pst_dht_close(close_me, on_node_closed);
}
static void close_in_listen(void *user, const uint8_t *val, size_t len, bool expired) {
    listen_cb(user, val, len, expired);
    pst_dht_close(close_me, on_node_closed);
}

Test(dht, close_from_inside_callbacks) {
    cluster *c = trio();
    uint8_t slot[PST_SLOT_BYTES], val[16];
    random_slot(slot);
    tu_fill(val, sizeof val, 5);
    /* C closes itself from a listen callback, B from a put callback, while
     * more events may be queued behind. */
    listenres lr = {0};
    pst_dht_listen_handle *h;
    close_me = &c->n[2];
    cr_assert_eq(pst_dht_listen(&c->n[2], slot, close_in_listen, &lr, &h), PST_OK);
    /* A's put may now wait seconds for C's answer: do not wait for it. */
    doneres pa = {0};
    cr_assert_eq(pst_dht_put(&c->n[0], slot, val, sizeof val, false, 30000, done_cb, &pa), PST_OK);
    cr_assert(run_until(&c->loop, listen_got_one, &lr, DEADLINE_MS));
    cr_assert_eq(lr.values, 1, "listen callback after close");
    close_me = &c->n[1];
    doneres d = {0};
    cr_assert_eq(pst_dht_put(&c->n[1], slot, val, sizeof val, false, 5000, close_in_done, &d),
                 PST_OK);
    cr_assert(run_until(&c->loop, done_done, &d, DEADLINE_MS));
    pst_dht_close(&c->n[0], on_node_closed);
    cr_assert(run_until(&c->loop, all_closed, c, DEADLINE_MS));
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(pa.calls, 1);
    cr_assert_eq(lr.values, 1, "listen callback after close");
    cr_assert_eq(uv_loop_close(&c->loop), 0);
    free(c);
}

Test(dht, other_network_never_sees_values) {
    cluster *c = malloc(sizeof *c);
    cluster_init(c);
    pst_dht *a = node_start(c, c->net), *b = node_start(c, c->net);
    pst_dht *x = node_start(c, c->net ^ 0x8000u);
    link_nodes(c, b, a);
    char port[8];
    port_of(a, port);
    cr_assert_eq(pst_dht_bootstrap(x, "127.0.0.1", port), PST_OK);
    uint8_t slot[PST_SLOT_BYTES], val[32];
    random_slot(slot);
    tu_fill(val, sizeof val, 6);
    listenres lr = {0};
    pst_dht_listen_handle *h;
    cr_assert_eq(pst_dht_listen(x, slot, listen_cb, &lr, &h), PST_OK);
    doneres ping = {0};
    cr_assert_eq(pst_dht_ping(x, "127.0.0.1", port, done_cb, &ping), PST_OK);
    put_and_wait(c, a, slot, val, sizeof val);
    getres r;
    get_and_wait(c, x, slot, 1500, &r);
    cr_assert_eq(r.values, 0);
    cr_assert_neq(r.status, PST_OK);
    cr_assert(run_until(&c->loop, done_done, &ping, PST_DHT_PING_TIMEOUT_MS + 2000u));
    cr_assert_eq(ping.status, PST_E_TIMEOUT, "a node of another network answered");
    cr_assert_eq(lr.values, 0);
    /* and the value is there for its own network */
    get_and_wait(c, b, slot, 5000, &r);
    cr_assert_eq(r.values, 1);
    cluster_close(c);
}

Test(dht, persist_path_keeps_node_id) {
    char dir[] = "/tmp/pst-dht-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/state", dir);
    char id[2][41];
    for (int round = 0; round < 2; round++) {
        cluster *c = malloc(sizeof *c);
        cluster_init(c);
        pst_dht_config cfg = {.network_id = c->net, .persist_path = path};
        cr_assert_eq(pst_dht_init(&c->loop, &c->n[0], &cfg), PST_OK);
        c->n[0].data = c;
        c->started = 1;
        struct pst_dht_stats st;
        pst_dht_stats(&c->n[0], &st);
        memcpy(id[round], st.node_id, sizeof id[round]);
        cluster_close(c);
    }
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "no state file written on close");
    cr_assert_str_eq(id[0], id[1]);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* The same bytes put again at a slot are one value (issue 16): a storing
 * node refreshes it instead of keeping one copy per put. Before, every put
 * was a new OpenDHT value id, so a record re-put every 300 s (9 times in
 * the first 320 s) filled its slot with copies, each get reply carried them
 * all as value parts, and every listener got each re-put again. */
Test(dht, same_bytes_put_again_are_one_value) {
    cluster *c = trio();
    pst_dht *a = &c->n[0], *b = &c->n[1], *cc = &c->n[2];
    uint8_t slot[PST_SLOT_BYTES], val[40], other[40];
    random_slot(slot);
    tu_fill(val, sizeof val, 21);
    tu_fill(other, sizeof other, 22);
    listenres lr = {0};
    pst_dht_listen_handle *h;
    cr_assert_eq(pst_dht_listen(cc, slot, listen_cb, &lr, &h), PST_OK);
    for (int i = 0; i < 3; i++)
        put_and_wait(c, a, slot, val, sizeof val);
    getres r;
    get_and_wait(c, b, slot, 5000, &r);
    cr_assert_eq(r.status, PST_OK);
    cr_assert_eq(r.values, 1, "%d copies of one value in the slot", r.values);
    struct pst_dht_stats st;
    pst_dht_stats(a, &st);
    cr_assert_eq(st.puts_refreshed, 2);
    /* other bytes are another value; the same bytes at another slot too */
    put_and_wait(c, a, slot, other, sizeof other);
    get_and_wait(c, b, slot, 5000, &r);
    cr_assert_eq(r.values, 2);
    uint8_t slot2[PST_SLOT_BYTES];
    random_slot(slot2);
    put_and_wait(c, a, slot2, val, sizeof val);
    get_and_wait(c, b, slot2, 5000, &r);
    cr_assert_eq(r.values, 1);
    pst_dht_stats(a, &st);
    cr_assert_eq(st.puts_refreshed, 2);
    /* the listener saw each distinct value once, not each put */
    cr_assert(run_until(&c->loop, listen_got_two, &lr, DEADLINE_MS));
    getres settle;
    get_and_wait(c, cc, slot, 5000, &settle);
    cr_assert_eq(lr.values, 2, "listener got %d values for 4 puts of 2 values", lr.values);
    pst_dht_listen_cancel(cc, h);
    cluster_close(c);
}

static bool both_done(void *p) {
    return ((doneres *)p)[0].calls > 0 && ((doneres *)p)[1].calls > 0;
}

/* Two puts of the same bytes at once: OpenDHT ends the earlier put of a
 * value id as failed when the same id is put again before it ended, so the
 * second is a value of its own and both succeed. */
Test(dht, same_bytes_put_twice_at_once_both_succeed) {
    cluster *c = trio();
    pst_dht *a = &c->n[0], *b = &c->n[1];
    uint8_t slot[PST_SLOT_BYTES], val[40];
    random_slot(slot);
    tu_fill(val, sizeof val, 23);
    doneres r[2] = {{0}};
    cr_assert_eq(pst_dht_put(a, slot, val, sizeof val, false, 5000, done_cb, &r[0]), PST_OK);
    cr_assert_eq(pst_dht_put(a, slot, val, sizeof val, false, 5000, done_cb, &r[1]), PST_OK);
    cr_assert(run_until(&c->loop, both_done, r, DEADLINE_MS));
    cr_assert_eq(r[0].status, PST_OK, "first put: %s", pst_err_name(r[0].status));
    cr_assert_eq(r[1].status, PST_OK, "second put: %s", pst_err_name(r[1].status));
    /* once both ended, the remembered one is put again: a refresh */
    put_and_wait(c, a, slot, val, sizeof val);
    struct pst_dht_stats st;
    pst_dht_stats(a, &st);
    cr_assert_eq(st.puts_refreshed, 1);
    getres g;
    get_and_wait(c, b, slot, 5000, &g);
    cr_assert_eq(g.values, 2, "%d values", g.values);
    cluster_close(c);
}

/* A tool that replays bytes asks for a new value per put. */
Test(dht, every_put_new_value_keeps_copies) {
    cluster *c = malloc(sizeof *c);
    cluster_init(c);
    pst_dht *a = &c->n[0];
    pst_dht_config cfg = {.network_id = c->net, .every_put_new_value = true};
    cr_assert_eq(pst_dht_init(&c->loop, a, &cfg), PST_OK);
    a->data = c;
    c->started = 1;
    pst_dht *b = node_start(c, c->net);
    link_nodes(c, b, a);
    link_nodes(c, a, b);
    uint8_t slot[PST_SLOT_BYTES], val[40];
    random_slot(slot);
    tu_fill(val, sizeof val, 24);
    put_and_wait(c, a, slot, val, sizeof val);
    put_and_wait(c, a, slot, val, sizeof val);
    getres g;
    get_and_wait(c, b, slot, 5000, &g);
    cr_assert_eq(g.values, 2, "%d values", g.values);
    struct pst_dht_stats st;
    pst_dht_stats(a, &st);
    cr_assert_eq(st.puts_refreshed, 0);
    cluster_close(c);
}
