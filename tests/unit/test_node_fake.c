/* Real pst_node instances on the fake DHT (dht/fake/): two or three daemons
 * in this process, on one libuv loop, whose pst_dht instances share one
 * in-memory network (a private network id per test). Mail goes over the
 * real loopback fetch; only the DHT is in memory, which lets a test hold,
 * reorder, duplicate, lose or expire what a node hears.
 *
 * How to use the fake in a test:
 * - link node_fake_dep (tests/unit/meson.build): the node library's objects
 *   linked against libpstdhtfake instead of OpenDHT;
 * - start nodes with pst_node_start (tn_start below); the network id in
 *   pst_node_config.network names the in-memory network;
 * - find a node's pst_dht with pst_dht_fake_find(network, port), the port
 *   its `status` reports as ports.dht;
 * - steer it with pst_dht_fake_* (dht/fake/pst_dht_fake.h): hold / release /
 *   lose what a node receives on a slot, expire values now, drop a node's
 *   listens, deliver values twice, count puts;
 * - drive the nodes with control requests only (pst_node_request, as the
 *   CLI sends them) and look at the results through `status`, `inbox`,
 *   `key-get` and the Maildir: node internals are not part of this test.
 * Every wait is a poll of the loop with a deadline (run_until), never a
 * fixed sleep. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "pst_device.h"
#include "pst_dht_fake.h"
#include "pst_home.h"
#include "pst_identity.h"
#include "pst_keys.h"
#include "pst_log.h"
#include "pst_node.h"
#include "pst_records.h"

#define WAIT_MS 8000u /* any single step; the whole binary runs in seconds */
#define NODES_MAX 3

typedef struct {
    char name[8];
    char home[PST_PATH_MAX];
    pst_node_config cfg;
    pst_node *node;
    bool stopped;
    uint8_t pk[PST_SIGN_PK_BYTES];
    char fp[PST_FINGERPRINT_STRLEN + 1];
    uint16_t port;
    pst_dht *dht;
} tnode;

static uv_loop_t g_loop;
static uv_timer_t g_tick;
static uint32_t g_net;
static char g_tmp[64];
static tnode g_nodes[NODES_MAX];
static unsigned g_n;
static uint32_t g_republish_s; /* nonzero: the nodes made from now on re-put this often */

static uint64_t mono_ms(void) { return uv_hrtime() / 1000000u; }

static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop until cond(arg) or ms pass; the tick timer bounds each turn. */
static bool run_until(bool (*cond)(void *), void *arg, uint64_t ms) {
    uint64_t end = mono_ms() + ms;
    while (!cond(arg)) {
        if (mono_ms() >= end)
            return false;
        uv_run(&g_loop, UV_RUN_ONCE);
    }
    return true;
}

static bool never(void *arg) {
    (void)arg;
    return false;
}

/* Lets the loop turn for ms (between two looks at a node's state). */
static void run_for(uint64_t ms) { (void)run_until(never, NULL, ms); }

/* ---- control requests ---------------------------------------------------- */

typedef struct {
    bool done;
    uint64_t status;
    char error[PST_CTRL_ERROR_MAX + 1];
    pst_value *body; /* a copy: the reply's is borrowed */
} reply_t;

static void on_reply(void *user, const pst_ctrl_response *resp) {
    reply_t *r = user;
    r->done = true;
    r->status = resp->status;
    snprintf(r->error, sizeof r->error, "%s", resp->error);
    if (resp->body != NULL) {
        size_t cap = 1u << 20, len = 0;
        uint8_t *buf = malloc(cap);
        if (buf && pst_value_encode(resp->body, buf, cap, &len) == PST_OK)
            (void)pst_value_decode(buf, len, &r->body);
        free(buf);
    }
}

static bool reply_done(void *arg) { return ((reply_t *)arg)->done; }

/* Sends command with the NULL-terminated args (as the CLI does) and waits
 * for the reply. The caller frees r->body. */
static void request(tnode *t, reply_t *r, const char *command, ...) {
    static pst_ctrl_request req;
    memset(&req, 0, sizeof req);
    memset(r, 0, sizeof *r);
    req.id = 7;
    snprintf(req.command, sizeof req.command, "%s", command);
    va_list ap;
    va_start(ap, command);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;)
        snprintf(req.args[req.n_args++], sizeof req.args[0], "%s", a);
    va_end(ap);
    pst_node_request(t->node, &req, on_reply, r);
    cr_assert(run_until(reply_done, r, WAIT_MS), "%s: no reply to %s", t->name, command);
}

static uint64_t get_uint(const pst_value *v, const char *key) {
    uint64_t x = 0;
    (void)pst_value_as_uint(pst_value_get(v, key), &x);
    return x;
}

static uint64_t counter(tnode *t, const char *name) {
    reply_t r;
    request(t, &r, "status", NULL);
    uint64_t v = get_uint(pst_value_get(r.body, "counters"), name);
    pst_value_free(r.body);
    return v;
}

/* Polls fn(t, arg) with a deadline, the loop turning in between. */
static bool poll_node(bool (*fn)(tnode *, const void *), tnode *t, const void *arg, uint64_t ms) {
    uint64_t end = mono_ms() + ms;
    for (;;) {
        if (fn(t, arg))
            return true;
        if (mono_ms() >= end)
            return false;
        run_for(20);
    }
}

static bool counter_reached(tnode *t, const void *arg) {
    const struct {
        const char *name;
        uint64_t want;
    } *c = arg;
    return counter(t, c->name) >= c->want;
}

static bool wait_counter(tnode *t, const char *name, uint64_t want) {
    struct {
        const char *name;
        uint64_t want;
    } c = {name, want};
    return poll_node(counter_reached, t, &c, WAIT_MS);
}

/* ---- nodes ------------------------------------------------------------------ */

static void tn_start(tnode *t) {
    char err[1024] = "";
    int rc = pst_node_start(&g_loop, &t->cfg, PST_NODE_DAEMON, NULL, &t->node, err, sizeof err);
    cr_assert_eq(rc, PST_OK, "%s: start: %s", t->name, err);
    t->stopped = false;
    reply_t r;
    request(t, &r, "status", NULL);
    t->port = (uint16_t)get_uint(pst_value_get(r.body, "ports"), "dht");
    pst_value_free(r.body);
    t->dht = pst_dht_fake_find(g_net, t->port);
    cr_assert_not_null(t->dht, "%s: no fake DHT instance on port %u", t->name, t->port);
}

/* A home made as `postern init` makes one, and a daemon on it. seed: the
 * node to bootstrap from (NULL: none). */
/* The next node slot, named, with the configuration every test node has.
 * seed: the node to bootstrap from (NULL: none). */
static tnode *tn_config(const char *name, tnode *seed) {
    cr_assert(g_n < NODES_MAX);
    tnode *t = &g_nodes[g_n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->home, sizeof t->home, "%s/%s", g_tmp, name);
    pst_config_defaults(&t->cfg);
    memcpy(t->cfg.home, t->home, sizeof t->cfg.home);
    t->cfg.network = g_net;
    t->cfg.port = 0;
    t->cfg.fetch_port = 0;
    t->cfg.smtp_port = 0; /* several nodes in one process: no submission */
    t->cfg.default_seeds = false;
    snprintf(t->cfg.advertise, sizeof t->cfg.advertise, "127.0.0.1");
    t->cfg.inbox_poll_s = 1; /* the periodic get backs the listen up within a second */
    t->cfg.renotify_s = 1;   /* a lost notification is put again after a second */
    /* these tests hold, lose and expire the fake DHT's values to drive the
     * inbox slot's path; a direct hint would deliver around them
     * (hints: integration_mail_hint) */
    t->cfg.hints = false;
    if (g_republish_s != 0)
        t->cfg.republish_s = g_republish_s;
    if (seed) {
        snprintf(t->cfg.seeds[0], sizeof t->cfg.seeds[0], "127.0.0.1:%u", seed->port);
        t->cfg.nseeds = 1;
    }
    return t;
}

/* Makes t's identity (name@fake.example) and starts its daemon. */
static tnode *tn_init_start(tnode *t) {
    const char *name = t->name;
    char addr[64], info[2048], err[1024] = "";
    snprintf(addr, sizeof addr, "%s@fake.example", name);
    const char *addrs[1] = {addr};
    int rc =
        pst_node_init_identity(&t->cfg, addrs, 1, NULL, true, info, sizeof info, err, sizeof err);
    cr_assert_eq(rc, PST_OK, "%s: init: %s", name, err);
    pst_identity *id = NULL;
    rc = pst_identity_load(t->home, NULL, NULL, 0, &id, err, sizeof err);
    cr_assert_eq(rc, PST_OK, "%s: identity: %s", name, err);
    memcpy(t->pk, id->sign_pk, sizeof t->pk);
    pst_identity_free(id);
    pst_fingerprint_format(t->pk, t->fp);
    tn_start(t);
    return t;
}

static tnode *tn_new(const char *name, tnode *seed) { return tn_init_start(tn_config(name, seed)); }

static void on_stopped(void *user) { ((tnode *)user)->stopped = true; }

static bool is_stopped(void *arg) { return ((tnode *)arg)->stopped; }

static void tn_stop(tnode *t) {
    if (t->node == NULL || t->stopped)
        return;
    pst_node_stop(t->node, on_stopped, t);
    cr_assert(run_until(is_stopped, t, WAIT_MS), "%s did not stop", t->name);
    t->node = NULL;
    t->dht = NULL;
}

static bool wait_puts(const uint8_t slot[PST_SLOT_BYTES], uint64_t want);

/* b puts a in its contact list (its mail goes to the INBOX, no stamp). */
static void trust(tnode *b, tnode *a, const char *tier) {
    char fp[80], ti[32];
    snprintf(fp, sizeof fp, "fingerprint=%s", a->fp);
    snprintf(ti, sizeof ti, "tier=%s", tier);
    reply_t r;
    request(b, &r, "trust-set", fp, ti, NULL);
    cr_assert_eq(r.status, 0, "trust-set: %s", r.error);
    pst_value_free(r.body);
}

/* `postern send --pow never`: the message goes to the spool as the CLI
 * writes it; returns the message id (hex) in id. */
static void send_mail(tnode *from, tnode *to, const char *subject, char id[65]) {
    uint8_t kslot[PST_SLOT_BYTES];
    pst_slot_key(to->pk, kslot);
    cr_assert(wait_puts(kslot, 1), "%s never published its key record", to->name);
    char spool[PST_PATH_MAX + 8], path[PST_PATH_MAX + 32];
    snprintf(spool, sizeof spool, "%s/spool", from->home);
    cr_assert(mkdir(spool, 0700) == 0 || errno == EEXIST);
    snprintf(path, sizeof path, "%s/send-XXXXXX", spool);
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    char msg[512];
    int len = snprintf(msg, sizeof msg, "To: %s@fake.example\nSubject: %s\n\nbody of %s\n",
                       to->name, subject, subject);
    cr_assert_eq(write(fd, msg, (size_t)len), len);
    close(fd);
    char a_file[PST_PATH_MAX + 40], a_to[80];
    snprintf(a_file, sizeof a_file, "file=%s", path);
    snprintf(a_to, sizeof a_to, "to=%s", to->fp);
    reply_t r;
    request(from, &r, "send", a_file, a_to, "pow=never", NULL);
    cr_assert_eq(r.status, 0, "send: %s", r.error);
    size_t l = 0;
    const char *mid = pst_value_as_str(pst_value_get(r.body, "message_id"), &l);
    cr_assert(mid != NULL && l == 64);
    memcpy(id, mid, 65);
    pst_value_free(r.body);
}

/* Files in HOME/Maildir/<folder>/new and cur ("" = INBOX) whose text holds
 * needle. */
static unsigned maildir_count(tnode *t, const char *folder, const char *needle) {
    unsigned n = 0;
    const char *sub[2] = {"new", "cur"};
    for (int i = 0; i < 2; i++) {
        char dir[PST_PATH_MAX + 64];
        snprintf(dir, sizeof dir, "%s/Maildir/%s%s%s", t->home, folder, folder[0] ? "/" : "",
                 sub[i]);
        DIR *d = opendir(dir);
        if (d == NULL)
            continue;
        for (struct dirent *de; (de = readdir(d)) != NULL;) {
            if (de->d_name[0] == '.')
                continue;
            char p[PST_PATH_MAX + 400];
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            FILE *f = fopen(p, "r");
            char buf[4096];
            size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f)
                fclose(f);
            buf[got] = '\0';
            n += strstr(buf, needle) != NULL;
        }
        closedir(d);
    }
    return n;
}

typedef struct {
    const char *folder, *needle;
    unsigned want;
} mail_q;

static bool mail_arrived(tnode *t, const void *arg) {
    const mail_q *q = arg;
    return maildir_count(t, q->folder, q->needle) >= q->want;
}

static bool wait_mail(tnode *t, const char *folder, const char *needle) {
    mail_q q = {folder, needle, 1};
    return poll_node(mail_arrived, t, &q, WAIT_MS);
}

static uint64_t held_of(tnode *t) { return pst_dht_fake_held(t->dht); }

static bool held_at_least(tnode *t, const void *arg) {
    return held_of(t) >= *(const unsigned *)arg;
}

static bool puts_at_least(tnode *t, const void *arg) {
    (void)t;
    const struct {
        const uint8_t *slot;
        uint64_t want;
    } *p = arg;
    return pst_dht_fake_puts(g_net, p->slot) >= p->want;
}

static bool wait_puts(const uint8_t slot[PST_SLOT_BYTES], uint64_t want) {
    struct {
        const uint8_t *slot;
        uint64_t want;
    } p = {slot, want};
    return poll_node(puts_at_least, NULL, &p, WAIT_MS);
}

/* t's own revocation in hex, built as `postern key revoke` builds it. */
static void revocation_hex(tnode *t, pst_revoke_reason code, char hex[2 * PST_RECORD_MAX + 1]) {
    pst_identity *id = NULL;
    char err[512];
    cr_assert_eq(pst_identity_load(t->home, NULL, NULL, 0, &id, err, sizeof err), PST_OK, "%s",
                 err);
    pst_revocation rev;
    uint8_t rec[PST_RECORD_MAX];
    size_t len = 0;
    cr_assert_eq(
        pst_revocation_build_self(&rev, id->sign_sk, (uint64_t)time(NULL), code, "test", NULL),
        PST_OK);
    pst_identity_free(id);
    cr_assert_eq(pst_revocation_encode(&rev, rec, sizeof rec, &len), PST_OK);
    sodium_bin2hex(hex, 2 * PST_RECORD_MAX + 1, rec, len);
}

/* voucher vouches for subject (`postern vouch`), and the vouch is in the DHT. */
static void vouch(tnode *voucher, tnode *subject) {
    char fp[80];
    snprintf(fp, sizeof fp, "fingerprint=%s", subject->fp);
    reply_t r;
    request(voucher, &r, "vouch", fp, "tier=known", NULL);
    cr_assert_eq(r.status, 0, "vouch: %s", r.error);
    pst_value_free(r.body);
    uint8_t vslot[PST_SLOT_BYTES];
    pst_slot_vouch(subject->pk, vslot);
    cr_assert(wait_puts(vslot, 1));
}

/* ---- fixture ---------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void) {
    cr_assert(sodium_init() >= 0);
    pst_log_set_level(getenv("PST_TEST_DEBUG") ? PST_LOG_DEBUG : PST_LOG_ERROR);
    /* a private network id, never 0 (the public network) */
    g_net = 0x10000000u | randombytes_uniform(0x0fffffffu);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/pst-fake-XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp));
    cr_assert_eq(uv_loop_init(&g_loop), 0);
    uv_timer_init(&g_loop, &g_tick);
    uv_timer_start(&g_tick, on_tick, 5, 5);
    memset(g_nodes, 0, sizeof g_nodes);
    g_n = 0;
    g_republish_s = 0;
}

static void teardown(void) {
    for (unsigned i = 0; i < g_n; i++)
        tn_stop(&g_nodes[i]);
    uv_close((uv_handle_t *)&g_tick, NULL);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&g_loop), 0, "a handle outlived its node");
    if (!getenv("PST_TEST_KEEP"))
        nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(node_fake, .init = setup, .fini = teardown, .timeout = 30);

/* ---- the tests ---------------------------------------------------------------- */

/* The inbox pipeline end to end: a's notification reaches b by listen, b
 * fetches the message over loopback into its INBOX and a gets the receipt. */
Test(node_fake, inbox_pipeline) {
    tnode *a = tn_new("a", NULL), *b = tn_new("b", a);
    trust(b, a, "trusted");
    char id[65];
    send_mail(a, b, "pipeline", id);
    cr_assert(wait_mail(b, "", "body of pipeline"), "the message never reached b's INBOX");
    cr_assert(wait_counter(b, "inbox.receipts_acked", 1), "a never acknowledged b's receipt");
    cr_expect_eq(counter(b, "inbox.accepted"), 1);
    cr_expect_eq(counter(b, "inbox.delivered"), 1);
    reply_t r;
    request(b, &r, "inbox", NULL);
    cr_expect_eq(get_uint(r.body, "delivered"), 1);
    cr_expect_eq(get_uint(r.body, "pending"), 0);
    pst_value_free(r.body);
}

/* A stranger's stampless notification waits for b's vouch lookup (held in
 * the fake), then a vouch by b's trusted contact c admits it into .Known. */
Test(node_fake, park_for_vouch_admitted) {
    tnode *a = tn_new("a", NULL), *b = tn_new("b", a), *c = tn_new("c", a);
    trust(b, c, "trusted");
    vouch(c, a);
    uint8_t vslot[PST_SLOT_BYTES];
    pst_slot_vouch(a->pk, vslot);
    pst_dht_fake_hold(b->dht, vslot);
    reply_t r;
    char id[65];
    send_mail(a, b, "parked", id);
    unsigned one = 1;
    cr_assert(poll_node(held_at_least, b, &one, WAIT_MS), "b never looked a's vouches up");
    /* parked: no row, nothing fetched while the answer is out */
    request(b, &r, "inbox", NULL);
    cr_expect_eq(get_uint(r.body, "pending") + get_uint(r.body, "delivered"), 0);
    pst_value_free(r.body);
    cr_expect_eq(maildir_count(b, ".Known", "body of parked"), 0);
    cr_assert_gt(pst_dht_fake_release(b->dht, false), 0);
    cr_assert(wait_mail(b, ".Known", "body of parked"), "the vouched stranger's mail never came");
    cr_expect_eq(maildir_count(b, "", "body of parked"), 0, "a vouch is not trust: not INBOX");
    cr_expect_eq(counter(b, "inbox.accepted"), 1);
}

/* The same, without any vouch: the parked notification is refused as
 * no_stamp once the lookup answers, and nothing is fetched. */
Test(node_fake, park_for_vouch_refused) {
    tnode *a = tn_new("a", NULL), *b = tn_new("b", a);
    uint8_t vslot[PST_SLOT_BYTES];
    pst_slot_vouch(a->pk, vslot);
    pst_dht_fake_hold(b->dht, vslot);
    char id[65];
    send_mail(a, b, "refused", id);
    unsigned one = 1;
    cr_assert(poll_node(held_at_least, b, &one, WAIT_MS), "b never looked a's vouches up");
    cr_expect_eq(counter(b, "rejected.inbox.no_stamp"), 0, "refused before the answer");
    pst_dht_fake_release(b->dht, false);
    cr_assert(wait_counter(b, "rejected.inbox.no_stamp", 1), "the parked value was never settled");
    reply_t r;
    request(b, &r, "inbox", NULL);
    cr_expect_eq(get_uint(r.body, "pending") + get_uint(r.body, "delivered"), 0);
    pst_value_free(r.body);
    cr_expect_eq(counter(b, "inbox.accepted"), 0);
    cr_expect_eq(maildir_count(b, ".Unknown", "body of refused") +
                     maildir_count(b, ".Known", "body of refused") +
                     maildir_count(b, "", "body of refused"),
                 0);
}

/* ---- device lists (issue 13): the keys room's API for the mail path ------- */

typedef struct {
    bool done;
    int rc;
    uint64_t seq;
} devlist_wait;

static void on_devlist(pst_node *n, int rc, const pst_devlist *list, void *arg) {
    (void)n;
    devlist_wait *w = arg;
    w->done = true;
    w->rc = rc;
    w->seq = list != NULL ? list->seq : 0;
}

static bool devlist_done(void *arg) { return ((devlist_wait *)arg)->done; }

/* b fetches a's device list; returns its seq (0 when none). */
static uint64_t fetch_list(tnode *b, tnode *a) {
    devlist_wait w = {0};
    cr_assert_eq(pst_keys_devlist_fetch(b->node, a->pk, on_devlist, &w), PST_OK);
    cr_assert(run_until(devlist_done, &w, WAIT_MS), "no answer to the device list fetch");
    return w.rc == PST_OK ? w.seq : 0;
}

typedef struct {
    tnode *of;
    uint64_t seq;
} list_want;

static bool list_at_least(tnode *b, const void *arg) {
    const list_want *w = arg;
    return fetch_list(b, w->of) >= w->seq;
}

static pst_identity *device_keys(uint8_t base) {
    uint8_t s1[32], s2[32];
    pst_identity *id = NULL;
    memset(s1, base, sizeof s1);
    memset(s2, base + 1, sizeof s2);
    cr_assert_eq(pst_identity_from_seeds(s1, s2, NULL, &id), PST_OK);
    return id;
}

Test(node_fake, device_lists) {
    tnode *a = tn_new("a", NULL), *b = tn_new("b", a);
    pst_node *na = a->node, *nb = b->node;
    cr_expect_eq(memcmp(pst_node_device_keys(na)->sign_pk, a->pk, 32), 0,
                 "without device.key the identity key is the device key");
    cr_expect_eq(pst_keys_devlist_cached(nb, a->pk, &(pst_devlist){0}), PST_E_NOTFOUND);
    cr_expect_eq(pst_keys_device_valid(nb, a->pk, a->pk), PST_OK, "the identity key itself");

    /* a publishes [itself, d] (seq 1) */
    pst_identity *d = device_keys(0x51);
    pst_devlist l;
    memset(&l, 0, sizeof l);
    memcpy(l.devices[0].sign_pk, a->pk, 32);
    memcpy(l.devices[0].box_pk, na->id->box_pk, 32);
    snprintf(l.devices[0].name, sizeof l.devices[0].name, "first");
    memcpy(l.devices[1].sign_pk, d->sign_pk, 32);
    memcpy(l.devices[1].box_pk, d->box_pk, 32);
    snprintf(l.devices[1].name, sizeof l.devices[1].name, "laptop");
    l.n_devices = 2;
    cr_assert_eq(pst_keys_devlist_publish(na, &l, NULL, NULL), PST_OK);
    cr_assert_eq(l.seq, 1);
    uint8_t old[PST_DHT_VALUE_MAX];
    size_t old_len;
    cr_assert_eq(pst_devlist_encode(&l, old, sizeof old, &old_len), PST_OK);
    list_want arg1 = {a, 1}, arg2 = {a, 2};
    cr_assert(poll_node(list_at_least, b, &arg1, WAIT_MS), "b never got a's list");
    cr_expect_eq(pst_keys_device_valid(nb, a->pk, d->sign_pk), PST_OK);
    uint8_t stranger[32];
    memset(stranger, 0x42, sizeof stranger);
    cr_expect_eq(pst_keys_device_valid(nb, a->pk, stranger), PST_E_NOTFOUND);

    /* a revokes d (seq 2): b answers REVOKED */
    cr_assert_eq(pst_keys_devlist_cached(na, a->pk, &l), PST_OK);
    memcpy(l.tombstones[0].sign_pk, d->sign_pk, 32);
    l.tombstones[0].revoked_at = pst_now();
    l.n_tombstones = 1;
    l.n_devices = 1;
    cr_assert_eq(pst_keys_devlist_publish(na, &l, NULL, NULL), PST_OK);
    cr_assert(poll_node(list_at_least, b, &arg2, WAIT_MS), "b never got the revocation");
    cr_expect_eq(pst_keys_device_valid(nb, a->pk, d->sign_pk), PST_E_REVOKED);

    /* the old list again is a replay; a list of a signed by b a forgery */
    uint64_t stale = counter(b, "rejected.devices.stale");
    cr_expect_eq(pst_keys_devlist_ingest(nb, a->pk, old, old_len, NULL), PST_E_STALE);
    cr_expect_eq(counter(b, "rejected.devices.stale"), stale + 1);
    pst_devlist f = l;
    f.seq = 99;
    cr_assert_eq(pst_devlist_sign(&f, nb->id->sign_sk), PST_OK);
    uint8_t forged[PST_DHT_VALUE_MAX];
    size_t flen;
    cr_assert_eq(pst_devlist_encode(&f, forged, sizeof forged, &flen), PST_OK);
    cr_expect_eq(pst_keys_devlist_ingest(nb, a->pk, forged, flen, NULL), PST_E_SIGNER);
    cr_expect_eq(pst_keys_device_valid(nb, a->pk, d->sign_pk), PST_E_REVOKED);
    cr_expect_eq(fetch_list(b, a), 2, "nothing moved the list past seq 2");
    pst_identity_free(d);
    tn_stop(b);
    tn_stop(a);
}

/* Nodes a and b (seeded by a), b trusting a; islot is b's inbox slot. */
static bool counter_reached_connect(tnode *t, const void *arg) {
    return counter(t, "fetch.retry.connect") >= *(const uint64_t *)arg;
}

static void trusted_pair(tnode **a, tnode **b, uint8_t islot[PST_SLOT_BYTES]) {
    *a = tn_new("a", NULL);
    *b = tn_new("b", *a);
    trust(*b, *a, "trusted");
    pst_slot_inbox((*b)->pk, islot);
}

/* The notification expires from b's slot while it is parked: the vouch
 * answer finds the slot empty, and a's outbox re-put brings it in. */
Test(node_fake, value_expires_while_parked) {
    tnode *a = tn_new("a", NULL), *b = tn_new("b", a), *c = tn_new("c", a);
    trust(b, c, "trusted");
    vouch(c, a);
    uint8_t vslot[PST_SLOT_BYTES], islot[PST_SLOT_BYTES];
    pst_slot_vouch(a->pk, vslot);
    pst_slot_inbox(b->pk, islot);
    pst_dht_fake_hold(b->dht, vslot);
    char id[65];
    send_mail(a, b, "expiring", id);
    unsigned one = 1;
    cr_assert(poll_node(held_at_least, b, &one, WAIT_MS), "b never looked a's vouches up");
    uint64_t puts_before = pst_dht_fake_puts(g_net, islot);
    cr_assert_gt(pst_dht_fake_expire(g_net, islot), 0, "no notification to expire");
    pst_dht_fake_release(b->dht, false);
    cr_assert(wait_mail(b, ".Known", "body of expiring"), "the expired notification was lost");
    cr_expect_gt(pst_dht_fake_puts(g_net, islot), puts_before, "delivered without a re-put?");
    cr_expect_eq(maildir_count(b, ".Known", "body of expiring"), 1);
    cr_expect_eq(counter(b, "inbox.accepted"), 1);
}

/* b never hears a's first notification (lost on the way and expired): a's
 * outbox puts it again and b fetches it. */
Test(node_fake, outbox_reput_after_loss) {
    tnode *a, *b;
    uint8_t islot[PST_SLOT_BYTES];
    trusted_pair(&a, &b, islot);
    pst_dht_fake_hold(b->dht, islot);
    char id[65];
    send_mail(a, b, "lost", id);
    cr_assert(wait_puts(islot, 1));
    cr_assert_gt(pst_dht_fake_expire(g_net, islot), 0);
    cr_assert_gt(pst_dht_fake_lose(b->dht), 0, "b should have had the value on its way");
    cr_expect_eq(counter(b, "inbox.accepted"), 0);
    cr_assert(wait_mail(b, "", "body of lost"), "no re-put reached b");
    cr_expect_geq(pst_dht_fake_puts(g_net, islot), 2);
    cr_expect_eq(counter(b, "inbox.accepted"), 1);
}

/* The listen and a get hand b the same notification together (and the fake
 * reports every value twice): one row, one delivery. */
Test(node_fake, listen_and_get_same_value) {
    tnode *a, *b;
    uint8_t islot[PST_SLOT_BYTES];
    trusted_pair(&a, &b, islot);
    pst_dht_fake_twice(g_net, true);
    pst_dht_fake_hold(b->dht, islot);
    char id[65];
    send_mail(a, b, "twice", id);
    /* 2 listen values, then a get's 2 values and its done */
    unsigned five = 5;
    cr_assert(poll_node(held_at_least, b, &five, WAIT_MS), "no get of b's inbox slot");
    pst_dht_fake_release(b->dht, true);
    cr_assert(wait_mail(b, "", "body of twice"));
    cr_assert(wait_counter(b, "inbox.receipts_acked", 1));
    cr_expect_eq(maildir_count(b, "", "body of twice"), 1);
    cr_expect_eq(counter(b, "inbox.accepted"), 1);
    cr_expect_eq(counter(b, "inbox.delivered"), 1);
    cr_expect_eq(counter(b, "rejected.inbox.duplicate"), 0, "a copy went past the seen set");
}

static bool inbox_read(void *arg) { return pst_dht_fake_gets(g_net, (const uint8_t *)arg) > 0; }

/* OpenDHT ends a get made before any peer answered "done" with nothing in
 * it: a node's first read of its inbox slot waits for a peer (a restarted
 * node read nothing and then waited two poll intervals), and reads anyway
 * once a poll interval has gone by without one. Here no peer ever answers:
 * the node is alone on the network and its one seed does not exist. */
Test(node_fake, first_inbox_read_waits_for_a_peer) {
    tnode *t = tn_config("lone", NULL);
    snprintf(t->cfg.seeds[0], sizeof t->cfg.seeds[0], "127.0.0.1:1");
    t->cfg.nseeds = 1;
    tn_init_start(t);
    uint8_t islot[PST_SLOT_BYTES];
    pst_slot_inbox(t->pk, islot);
    uint64_t t0 = mono_ms();
    run_for(500); /* inbox_poll_s = 1: the first poll came at once */
    cr_expect_eq(pst_dht_fake_gets(g_net, islot), 0,
                 "the inbox slot was read before any peer answered");
    cr_assert(run_until(inbox_read, islot, 10000), "the node never read its inbox slot");
    cr_expect_geq(mono_ms() - t0, 1000, "read before a poll interval without a peer");
}

/* A sender back after b's fetches failed, whose re-put does not reach b's
 * listen (OpenDHT refreshes a re-put of the same bytes and hands nothing
 * over; here b's listens are deaf): the hint a sends beside each re-put
 * wakes b's job at once instead of at b's next back-off try (20 s after its
 * third failure). */
Test(node_fake, sender_back_wakes_by_hint, .timeout = 60) {
    tnode *a = tn_config("a", NULL);
    tn_init_start(a);
    tnode *b = tn_config("b", a);
    b->cfg.hints = true;
    tn_init_start(b);
    trust(b, a, "trusted");
    uint8_t islot[PST_SLOT_BYTES];
    pst_slot_inbox(b->pk, islot);
    cr_assert_gt(pst_dht_fake_drop_listens(b->dht), 0);
    pst_dht_fake_hold(b->dht, islot);
    char id[65];
    send_mail(a, b, "while a sleeps", id);
    tn_stop(a);
    pst_dht_fake_release(b->dht, false);
    /* 5 s, then 10 s: after the third failure b waits 20 s */
    for (uint64_t want = 1; want <= 3; want++)
        cr_assert(poll_node(counter_reached_connect, b, &want, 20000),
                  "b's fetch %llu did not fail", (unsigned long long)want);
    cr_assert_eq(counter(b, "inbox.reput_wakes"), 0);
    a->cfg.hints = true;
    tn_start(a);
    cr_assert(wait_counter(b, "hint.in.seen", 1), "a did not hint its re-put");
    cr_assert(wait_counter(b, "inbox.reput_wakes", 1), "the hint did not wake b's job");
    cr_assert(wait_mail(b, "", "body of while a sleeps"), "not fetched after the wake");
    cr_expect_eq(counter(b, "fetch.retry.connect"), 3, "fetched at a back-off try, not the wake");
}

/* Key cache: a's `key get` of b is answered valid; b revokes; a sees the
 * revocation, and keeps saying revoked once the DHT forgot b's slot. */
Test(node_fake, key_cache_then_revocation) {
    tnode *a = tn_new("a", NULL), *b = tn_new("b", a);
    uint8_t kslot[PST_SLOT_BYTES];
    pst_slot_key(b->pk, kslot);
    cr_assert(wait_puts(kslot, 1));
    reply_t r;
    request(a, &r, "key-get", b->fp, NULL);
    cr_assert_eq(r.status, 0, "key get: %s", r.error);
    pst_value_free(r.body);
    char hex[2 * PST_RECORD_MAX + 1];
    revocation_hex(b, PST_REVOKE_RETIRED, hex);
    request(b, &r, "key-revoke", hex, NULL);
    cr_assert_eq(r.status, 0, "key-revoke: %s", r.error);
    pst_value_free(r.body);
    request(a, &r, "key-get", b->fp, NULL);
    cr_expect_eq(r.status, 3, "a does not see b's revocation: %llu %s",
                 (unsigned long long)r.status, r.error);
    pst_value_free(r.body);
    cr_assert_gt(pst_dht_fake_expire(g_net, kslot), 0);
    request(a, &r, "key-get", b->fp, NULL);
    cr_expect_eq(r.status, 3, "the revocation was forgotten with the slot: %llu %s",
                 (unsigned long long)r.status, r.error);
    pst_value_free(r.body);
}

static void on_put_ignored(void *user, int status) {
    (void)user;
    (void)status;
}

/* Bounded revocation re-puts (issue 16): a node that saw b's revocation
 * re-puts it while copies in the slot are scarce, skips its round once
 * PST_REVOCATION_COPIES_ENOUGH copies came, and re-puts again once they
 * are gone. */
Test(node_fake, revocation_reput_bounded) {
    g_republish_s = 1;
    /* c never looks b up: it is only a's peer once b is gone */
    tnode *a = tn_new("a", NULL), *b = tn_new("b", a), *c = tn_new("c", a);
    pst_dht_fake_set_lifetime(g_net, 1500); /* copies outlive one 1 s round, not two */
    uint8_t kslot[PST_SLOT_BYTES];
    pst_slot_key(b->pk, kslot);
    cr_assert(wait_puts(kslot, 1));
    char hex[2 * PST_RECORD_MAX + 1];
    revocation_hex(b, PST_REVOKE_RETIRED, hex);
    reply_t r;
    request(b, &r, "key-revoke", hex, NULL);
    cr_assert_eq(r.status, 0, "key-revoke: %s", r.error);
    pst_value_free(r.body);
    request(a, &r, "key-get", b->fp, NULL);
    cr_assert_eq(r.status, 3, "a does not see b's revocation: %s", r.error);
    pst_value_free(r.body);
    tn_stop(b); /* from now on only a keeps the revocation alive (c never saw it) */

    /* scarce: a's own re-puts go on */
    uint64_t p0 = pst_dht_fake_puts(g_net, kslot);
    cr_assert(wait_puts(kslot, p0 + 3), "a does not re-put a scarce revocation");
    cr_assert_eq(counter(a, "publish.revocation_skipped"), 0);

    /* plenty: other nodes' copies fill the slot; a skips its round. OpenDHT
     * keeps each put as its own value, the fake merges equal bytes: the
     * copies are b's revocation signed at other times (as valid, as counted) */
    pst_identity *id = NULL;
    char err[512];
    cr_assert_eq(pst_identity_load(b->home, NULL, NULL, 0, &id, err, sizeof err), PST_OK, "%s",
                 err);
    for (unsigned i = 0; i < 2 * PST_REVOCATION_COPIES_ENOUGH; i++) {
        pst_revocation rv;
        uint8_t rec[PST_RECORD_MAX];
        size_t len = 0;
        cr_assert_eq(pst_revocation_build_self(&rv, id->sign_sk, (uint64_t)time(NULL) - 1 - i,
                                               PST_REVOKE_RETIRED, "test", NULL),
                     PST_OK);
        cr_assert_eq(pst_revocation_encode(&rv, rec, sizeof rec, &len), PST_OK);
        cr_assert_eq(pst_dht_put(c->dht, kslot, rec, len, false, 2000, on_put_ignored, NULL),
                     PST_OK);
    }
    pst_identity_free(id);
    cr_assert(wait_counter(a, "publish.revocation_skipped", 1),
              "a re-put a revocation the slot holds %u copies of (%llu rejected, %llu puts)",
              pst_dht_fake_values(g_net, kslot),
              (unsigned long long)counter(a, "rejected.key.total"),
              (unsigned long long)counter(a, "dht.puts_ok"));

    /* the copies expire: a re-puts again */
    uint64_t p1 = pst_dht_fake_puts(g_net, kslot);
    cr_assert(wait_puts(kslot, p1 + 2), "a did not re-put once the copies were gone");
}

static bool why_failed(tnode *t, const void *arg) {
    (void)arg;
    reply_t r;
    request(t, &r, "inbox", NULL);
    bool failed = get_uint(r.body, "failed") == 1;
    pst_value_free(r.body);
    return failed;
}

static bool attempted(tnode *t, const void *arg) {
    (void)arg;
    reply_t r;
    request(t, &r, "inbox", NULL);
    const pst_value *u = pst_value_at(pst_value_get(r.body, "undelivered"), 0);
    bool tried = u != NULL && get_uint(u, "attempts") >= 1;
    pst_value_free(r.body);
    return tried;
}

/* The revocation of a's key comes while b's fetch of a's message is under
 * way (a's node went away after notifying, so the fetch keeps retrying):
 * c publishes it, b reads it from the DHT, and the next try gives the
 * message up instead of contacting a's node. */
Test(node_fake, revocation_mid_fetch) {
    tnode *a = tn_new("a", NULL), *b = tn_new("b", a), *c = tn_new("c", a);
    trust(b, a, "trusted");
    uint8_t islot[PST_SLOT_BYTES], kslot[PST_SLOT_BYTES];
    pst_slot_inbox(b->pk, islot);
    pst_slot_key(a->pk, kslot);
    pst_dht_fake_hold(b->dht, islot);
    char id[65];
    send_mail(a, b, "revoked", id);
    cr_assert(wait_puts(islot, 1));
    uint64_t key_puts = pst_dht_fake_puts(g_net, kslot);
    /* a signs its revocation, then its node goes away */
    char hex[2 * PST_RECORD_MAX + 1];
    revocation_hex(a, PST_REVOKE_KEY_COMPROMISED, hex);
    tn_stop(a);
    pst_dht_fake_release(b->dht, false);
    cr_assert(poll_node(attempted, b, NULL, WAIT_MS), "b never tried to fetch");
    /* the revocation reaches the DHT while the fetch retries (c publishes
     * it, as `key revoke --cert` on any node does), and b reads it there */
    reply_t r;
    request(c, &r, "key-revoke", hex, NULL);
    cr_assert_eq(r.status, 0, "key-revoke: %s", r.error);
    pst_value_free(r.body);
    cr_assert(wait_puts(kslot, key_puts + 1));
    request(b, &r, "key-get", a->fp, NULL);
    cr_assert_eq(r.status, 3, "b does not see a's revocation: %s", r.error);
    pst_value_free(r.body);
    char a_id[80];
    snprintf(a_id, sizeof a_id, "id=%s", id);
    request(b, &r, "inbox-retry", a_id, NULL);
    cr_assert_eq(r.status, 0, "inbox-retry: %s", r.error);
    pst_value_free(r.body);
    cr_assert(poll_node(why_failed, b, NULL, WAIT_MS), "the revoked sender's message was retried");
    request(b, &r, "inbox", NULL);
    const pst_value *u = pst_value_at(pst_value_get(r.body, "undelivered"), 0);
    size_t wl = 0;
    const char *why = pst_value_as_str(pst_value_get(u, "why"), &wl);
    cr_expect(why != NULL && strstr(why, "revoked") != NULL, "why: %s", why ? why : "(none)");
    pst_value_free(r.body);
    cr_expect_eq(maildir_count(b, "", "body of revoked"), 0);
}

/* ---- the fake itself keeps pst_dht.h's contract ------------------------------ */

typedef struct {
    unsigned values, dones, listened, expired;
    int status;
} probe;

static void pr_value(void *user, const uint8_t *val, size_t len) {
    (void)val;
    (void)len;
    ((probe *)user)->values++;
}

static void pr_done(void *user, int status) {
    probe *p = user;
    p->dones++;
    p->status = status;
}

static void pr_listen(void *user, const uint8_t *val, size_t len, bool expired) {
    (void)val;
    (void)len;
    probe *p = user;
    p->listened++;
    p->expired += expired;
}

static bool pr_ended(void *arg) { return ((probe *)arg)->dones > 0; }

static void on_dht_closed(pst_dht *d) { *(bool *)d->data = true; }

static bool flag_set(void *arg) { return *(bool *)arg; }

Test(node_fake, fake_keeps_the_contract) {
    pst_dht x, y;
    pst_dht_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cr_assert_eq(pst_dht_init(&g_loop, &x, &cfg), PST_E_INVAL, "network 0 without the opt-in");
    cfg.network_id = g_net;
    cr_assert_eq(pst_dht_init(&g_loop, &x, &cfg), PST_OK);
    uint8_t slot[PST_SLOT_BYTES] = {1, 2, 3}, val[3] = {7, 8, 9};

    /* alone: a get answers PST_E_IO, and not from inside the call */
    probe g = {0};
    cr_assert_eq(pst_dht_get(&x, slot, 0, pr_value, pr_done, &g), PST_OK);
    cr_assert_eq(g.dones, 0, "done ran inside the call");
    cr_assert(run_until(pr_ended, &g, WAIT_MS));
    cr_expect_eq(g.status, PST_E_IO);

    cr_assert_eq(pst_dht_init(&g_loop, &y, &cfg), PST_OK);
    struct pst_dht_stats ys;
    pst_dht_stats(&y, &ys);
    char port[8];
    snprintf(port, sizeof port, "%u", ys.port4);
    probe ping = {0}, bad = {0}, name = {0};
    cr_assert_eq(pst_dht_ping(&x, "127.0.0.1", port, pr_done, &ping), PST_OK);
    cr_assert_eq(pst_dht_ping(&x, "127.0.0.1", "1", pr_done, &bad), PST_OK);
    cr_assert_eq(pst_dht_ping(&x, "seed.invalid", port, pr_done, &name), PST_OK);
    cr_assert(run_until(pr_ended, &name, WAIT_MS));
    cr_expect_eq(ping.status, PST_OK);
    cr_expect_eq(bad.status, PST_E_TIMEOUT);
    cr_expect_eq(name.status, PST_E_NOTFOUND);

    /* a put reaches y's listen and get; errors call nothing */
    probe l = {0}, p = {0}, e = {0};
    pst_dht_listen_handle *h = NULL;
    cr_assert_eq(pst_dht_listen(&y, slot, pr_listen, &l, &h), PST_OK);
    cr_assert_eq(pst_dht_put(&x, slot, val, 0, false, 0, pr_done, &e), PST_E_INVAL);
    cr_assert_eq(pst_dht_put(&x, slot, val, PST_DHT_VALUE_MAX + 1, false, 0, pr_done, &e),
                 PST_E_TOOBIG);
    cr_assert_eq(pst_dht_put(&x, slot, val, sizeof val, false, 0, pr_done, &p), PST_OK);
    cr_assert_eq(p.dones + l.listened, 0, "a callback ran inside the call");
    cr_assert(run_until(pr_ended, &p, WAIT_MS));
    cr_expect_eq(p.status, PST_OK);
    run_for(20);
    cr_expect_eq(l.listened, 1);
    cr_expect_eq(e.dones, 0, "a refused call called back");
    cr_expect_eq(pst_dht_fake_puts(g_net, slot), 1);
    probe g2 = {0};
    cr_assert_eq(pst_dht_get(&y, slot, 0, pr_value, pr_done, &g2), PST_OK);
    cr_assert(run_until(pr_ended, &g2, WAIT_MS));
    cr_expect_eq(g2.values, 1);
    cr_expect_eq(g2.status, PST_OK);

    /* a verbatim re-delivery and an expiry reach the listen; a deaf listen
     * and a cancelled one hear nothing more */
    cr_expect_eq(pst_dht_fake_redeliver(g_net, slot), 1);
    run_for(20);
    cr_expect_eq(l.listened, 2);
    cr_expect_eq(pst_dht_fake_expire(g_net, slot), 1);
    run_for(20);
    cr_expect_eq(l.listened, 3);
    cr_expect_eq(l.expired, 1);
    cr_expect_eq(pst_dht_fake_drop_listens(&y), 1);
    probe l2 = {0};
    pst_dht_listen_handle *h2 = NULL;
    cr_assert_eq(pst_dht_listen(&y, slot, pr_listen, &l2, &h2), PST_OK);
    pst_dht_listen_cancel(&y, h2);
    probe p2 = {0};
    cr_assert_eq(pst_dht_put(&x, slot, val, sizeof val, false, 0, pr_done, &p2), PST_OK);
    cr_assert(run_until(pr_ended, &p2, WAIT_MS));
    run_for(20);
    cr_expect_eq(l.listened, 3, "a deaf listen was called");
    cr_expect_eq(l2.listened, 0, "a cancelled listen was called");
    pst_dht_listen_cancel(&y, h);

    /* a held get ends with PST_E_CLOSED on close, once; then every call
     * says PST_E_CLOSED */
    pst_dht_fake_hold(&y, NULL);
    probe g3 = {0};
    cr_assert_eq(pst_dht_get(&y, slot, 0, pr_value, pr_done, &g3), PST_OK);
    run_for(20);
    cr_expect_eq(g3.dones, 0, "a held get ended");
    cr_expect_eq(pst_dht_fake_held(&y), 2);
    bool y_closed = false, x_closed = false;
    y.data = &y_closed;
    x.data = &x_closed;
    pst_dht_close(&y, on_dht_closed);
    cr_expect_eq(pst_dht_get(&y, slot, 0, pr_value, pr_done, &e), PST_E_CLOSED);
    cr_assert(run_until(flag_set, &y_closed, WAIT_MS));
    cr_expect_eq(g3.dones, 1);
    cr_expect_eq(g3.status, PST_E_CLOSED);
    cr_expect_eq(g3.values, 0, "a value of a get that never ended");
    pst_dht_close(&x, on_dht_closed);
    cr_assert(run_until(flag_set, &x_closed, WAIT_MS));
    cr_expect_eq(e.dones, 0);
}

/* ---- several devices of one identity (issue 13) ------------------------------ */

/* A device of identity `of`, as `postern init --join` leaves one: a home
 * with HOME/device.key (fresh keys, *dev gets them) and a store bound to
 * of's identity; no identity.key. */
static tnode *tn_new_device(const char *name, tnode *of, tnode *seed, pst_identity **dev) {
    tnode *t = tn_config(name, seed);
    char err[1024] = "", path[PST_PATH_MAX];
    cr_assert_eq(pst_home_ensure(t->home, err, sizeof err), PST_OK, "%s", err);
    uint8_t s1[PST_SEED_BYTES], s2[PST_SEED_BYTES], buf[PST_KEYFILE_MAX];
    randombytes_buf(s1, sizeof s1);
    randombytes_buf(s2, sizeof s2);
    cr_assert_eq(pst_identity_from_seeds(s1, s2, NULL, dev), PST_OK);
    size_t len = 0;
    cr_assert_eq(pst_identity_export(*dev, NULL, 0, NULL, NULL, NULL, buf, sizeof buf, &len),
                 PST_OK);
    cr_assert_eq(pst_home_path(t->home, PST_FILE_DEVICE, path, sizeof path), PST_OK);
    cr_assert_eq(pst_secret_file_write(path, buf, len, 0), PST_OK);
    pst_store *st = NULL;
    cr_assert_eq(pst_home_path(t->home, PST_FILE_STORE, path, sizeof path), PST_OK);
    cr_assert_eq(pst_store_open(&st, path), PST_OK);
    cr_assert_eq(pst_identity_bind_store(t->home, st, of->pk, true, err, sizeof err), PST_OK, "%s",
                 err);
    pst_store_close(st);
    memcpy(t->pk, of->pk, sizeof t->pk);
    pst_fingerprint_format(t->pk, t->fp);
    tn_start(t);
    return t;
}

/* The identity of `holder` (which holds identity.key) signs a device list
 * naming its own key and `dev`, or, with dev_revoked, tombstoning dev; it
 * goes into the DHT as the devices slot's value. */
static void put_devlist(tnode *holder, const pst_identity *dev, uint64_t seq, bool dev_revoked) {
    pst_identity *id = NULL;
    char err[512];
    cr_assert_eq(pst_identity_load(holder->home, NULL, NULL, 0, &id, err, sizeof err), PST_OK, "%s",
                 err);
    pst_devlist l;
    memset(&l, 0, sizeof l);
    uint64_t now = (uint64_t)time(NULL);
    l.created = now;
    l.seq = seq;
    memcpy(l.devices[0].sign_pk, id->sign_pk, 32);
    memcpy(l.devices[0].box_pk, id->box_pk, 32);
    snprintf(l.devices[0].name, sizeof l.devices[0].name, "laptop");
    l.devices[0].created = now;
    l.n_devices = 1;
    if (dev_revoked) {
        memcpy(l.tombstones[0].sign_pk, dev->sign_pk, 32);
        l.tombstones[0].revoked_at = now;
        l.n_tombstones = 1;
    } else {
        memcpy(l.devices[1].sign_pk, dev->sign_pk, 32);
        memcpy(l.devices[1].box_pk, dev->box_pk, 32);
        snprintf(l.devices[1].name, sizeof l.devices[1].name, "desktop");
        l.devices[1].created = now;
        l.n_devices = 2;
    }
    cr_assert_eq(pst_devlist_sign(&l, id->sign_sk), PST_OK);
    pst_identity_free(id);
    uint8_t val[PST_DHT_VALUE_MAX], slot[PST_SLOT_BYTES];
    size_t len = 0;
    cr_assert_eq(pst_devlist_encode(&l, val, sizeof val, &len), PST_OK);
    pst_slot_devices(holder->pk, slot);
    uint64_t before = pst_dht_fake_puts(g_net, slot);
    cr_assert_eq(pst_dht_put(holder->dht, slot, val, len, true, 5000, NULL, NULL), PST_OK);
    cr_assert(wait_puts(slot, before + 1));
}

/* A correspondent s and an identity on two devices: r1 (holds the
 * identity key) and r2 (joined; its keys in *dev), listed at seq 1. Both
 * devices trust s; s trusts the identity unless s_trusts is false. */
static void devices_pair(tnode **s, tnode **r1, tnode **r2, pst_identity **dev, bool s_trusts) {
    *s = tn_new("s", NULL);
    *r1 = tn_new("r1", *s);
    *r2 = tn_new_device("r2", *r1, *s, dev);
    put_devlist(*r1, *dev, 1, false);
    trust(*r1, *s, "trusted");
    trust(*r2, *s, "trusted");
    if (s_trusts)
        trust(*s, *r1, "trusted");
}

/* Mail to an identity with two devices reaches each device's Maildir exactly
 * once; the sender expects a receipt from each and finishes the message
 * only with both. A message a device signs is accepted by the correspondent
 * through the identity's device list. */
Test(node_fake, devices_each_fetch_their_copy) {
    tnode *s, *r1, *r2;
    pst_identity *dev = NULL;
    devices_pair(&s, &r1, &r2, &dev, true);
    char id[65];
    send_mail(s, r1, "to both devices", id);
    cr_assert(wait_mail(r1, "", "to both devices"), "r1 did not get it");
    cr_assert(wait_mail(r2, "", "to both devices"), "r2 did not get it");
    cr_assert(wait_counter(s, "fetch.device_receipts", 2));
    cr_assert(wait_counter(s, "fetch.receipts", 1), "the message did not finish");
    cr_assert_eq(counter(s, "outbox.devlist_lookups"), 1);
    run_for(1500); /* re-notifications would show here: none after the last receipt */
    cr_assert_eq(maildir_count(r1, "", "to both devices"), 1);
    cr_assert_eq(maildir_count(r2, "", "to both devices"), 1);
    cr_assert_eq(counter(s, "fetch.served"), 2, "each device fetched once");
    /* `postern outbox` shows each device's progress */
    reply_t r;
    request(s, &r, "outbox", NULL);
    const pst_value *rcpt = pst_value_first(
        pst_value_get(pst_value_first(pst_value_get(r.body, "messages")), "recipients"));
    const pst_value *devs = pst_value_get(rcpt, "devices");
    cr_assert_eq(pst_value_count(devs), 2);
    for (const pst_value *d = pst_value_first(devs); d; d = pst_value_next(d)) {
        size_t l = 0;
        cr_assert_str_eq(pst_value_as_str(pst_value_get(d, "state"), &l), "delivered");
        cr_assert_eq(get_uint(d, "serve_count"), 1);
    }
    pst_value_free(r.body);

    /* the device signs a message of its own: s checks it against r1's list */
    char id2[65];
    send_mail(r2, s, "from the desktop", id2);
    cr_assert(wait_mail(s, "", "from the desktop"), "s refused the device's message");
    cr_assert_eq(counter(s, "rejected.inbox.device_revoked"), 0);
    pst_identity_free(dev);
}

/* A device revoked by a newer list gets no new mail, and what it signs
 * afterwards is refused by the correspondent (counted). */
Test(node_fake, revoked_device_is_cut_off) {
    tnode *s, *r1, *r2;
    pst_identity *dev = NULL;
    devices_pair(&s, &r1, &r2, &dev, true);
    char id[65];
    send_mail(s, r1, "before revocation", id);
    cr_assert(wait_mail(r2, "", "before revocation"));
    cr_assert(wait_counter(s, "fetch.receipts", 1));

    put_devlist(r1, dev, 2, true);
    /* s cached the list of seq 1 when it sent; before it takes a device's
     * signature it looks the list up again (at most once a minute), finds
     * seq 2 and refuses */
    send_mail(r2, s, "signed after revocation", id);
    cr_assert(wait_counter(s, "rejected.inbox.device_revoked", 1),
              "s accepted a revoked device's notification");
    run_for(1500);
    cr_assert_eq(maildir_count(s, "", "signed after revocation"), 0);

    /* new mail is sealed to the current devices only: r2 cannot read it,
     * and the message finishes with r1's receipt alone */
    uint64_t receipts = counter(s, "fetch.receipts");
    send_mail(s, r1, "after revocation", id);
    cr_assert(wait_mail(r1, "", "after revocation"));
    cr_assert(wait_counter(s, "fetch.receipts", receipts + 1));
    run_for(1500);
    cr_assert_eq(maildir_count(r2, "", "after revocation"), 0);
    pst_identity_free(dev);
}

/* A device that is off while mail comes gets it when it is back; until
 * then the sender keeps the message (and its notification) for it. */
Test(node_fake, device_offline_catches_up) {
    tnode *s, *r1, *r2;
    pst_identity *dev = NULL;
    devices_pair(&s, &r1, &r2, &dev, false);
    tn_stop(r2);
    char id[65];
    send_mail(s, r1, "while away", id);
    cr_assert(wait_mail(r1, "", "while away"));
    cr_assert(wait_counter(s, "fetch.device_receipts", 1));
    run_for(1500);
    cr_assert_eq(counter(s, "fetch.receipts"), 0, "finished without the desktop");
    /* fetched by the laptop only: still withdrawable, and withdrawn it
     * does not reach the desktop */
    char id2[65], arg[80];
    send_mail(s, r1, "to withdraw", id2);
    cr_assert(wait_mail(r1, "", "to withdraw"));
    snprintf(arg, sizeof arg, "message=%s", id2);
    reply_t r;
    request(s, &r, "unsend", arg, NULL);
    cr_assert_eq(r.status, 0, "unsend after one device fetched: %s", r.error);
    pst_value_free(r.body);
    tn_start(r2);
    cr_assert(wait_mail(r2, "", "while away"), "the desktop did not catch up");
    cr_assert(wait_counter(s, "fetch.receipts", 1));
    cr_assert_eq(maildir_count(r1, "", "while away"), 1);
    run_for(1500);
    cr_assert_eq(maildir_count(r2, "", "to withdraw"), 0, "a withdrawn message was served");
    pst_identity_free(dev);
}

static bool lists_devices(tnode *t, const void *arg) {
    reply_t r;
    request(t, &r, "device-list", NULL);
    size_t n = pst_value_count(pst_value_get(r.body, "devices"));
    pst_value_free(r.body);
    return n >= *(const size_t *)arg;
}

static int tier_of(tnode *t, tnode *of) {
    reply_t r;
    request(t, &r, "trust-list", NULL);
    int tier = 0;
    for (const pst_value *c = pst_value_first(pst_value_get(r.body, "contacts")); c;
         c = pst_value_next(c)) {
        size_t l = 0;
        const char *fp = pst_value_as_str(pst_value_get(c, "fingerprint"), &l);
        const char *ti = pst_value_as_str(pst_value_get(c, "tier"), &l);
        if (fp && ti && strcmp(fp, of->fp) == 0)
            tier = strcmp(ti, "trusted") == 0 ? 1 : strcmp(ti, "known") == 0 ? 2 : 3;
    }
    pst_value_free(r.body);
    return tier;
}

static bool is_blocked(tnode *t, const void *arg) { return tier_of(t, (tnode *)arg) == 3; }

/* Sync between the devices of one identity: what one device sends shows
 * in the other's .Sent (and nowhere else there), and a trust change made on
 * one device takes effect on the other (a blocked sender is dropped). */
Test(node_fake, devices_sync_sent_and_trust) {
    tnode *s = tn_new("s", NULL), *r1 = tn_new("r1", s);
    pst_identity *dev = NULL;
    tnode *r2 = tn_new_device("r2", r1, s, &dev);
    put_devlist(r1, dev, 1, false);
    size_t two = 2;
    cr_assert(poll_node(lists_devices, r1, &two, WAIT_MS), "r1 does not know its devices");
    cr_assert(poll_node(lists_devices, r2, &two, WAIT_MS), "r2 does not know its devices");
    trust(s, r1, "trusted");
    trust(r1, s, "trusted");
    cr_assert(wait_counter(r2, "sync.trust_applied", 1), "r2 did not take r1's trust change");
    cr_assert_eq(tier_of(r2, s), 1);

    char id[65];
    send_mail(r1, s, "sent on the laptop", id);
    cr_assert(wait_mail(s, "", "sent on the laptop"));
    cr_assert(wait_mail(r2, ".Sent", "sent on the laptop"), "no copy in r2's .Sent");
    send_mail(r2, s, "sent on the desktop", id);
    cr_assert(wait_mail(r1, ".Sent", "sent on the desktop"), "no copy in r1's .Sent");
    run_for(1000);
    cr_assert_eq(maildir_count(r2, "", "sent on the laptop"), 0, "a Sent copy in the INBOX");
    cr_assert_eq(maildir_count(r1, ".Sent", "sent on the laptop"), 0, "a copy to itself");
    cr_assert_eq(maildir_count(r2, ".Sent", "sent on the laptop"), 1);

    /* block s on the laptop: the desktop drops s's mail from now on */
    trust(r1, s, "blocked");
    cr_assert(poll_node(is_blocked, r2, s, WAIT_MS), "the block did not reach r2");
    send_mail(s, r1, "from a blocked sender", id);
    cr_assert(wait_counter(r2, "rejected.inbox.blocked", 1), "r2 did not drop it");
    run_for(1000);
    cr_assert_eq(maildir_count(r2, "", "from a blocked sender"), 0);
    cr_assert_eq(maildir_count(r1, "", "from a blocked sender"), 0);
    pst_identity_free(dev);
}

/* ---- the recipient's group commit ----------------------------------------------
 * fsync and fdatasync are wrapped here (the node's code is linked into this
 * program, and SQLite's calls resolve to the program's definitions first):
 * the fsyncs of one directory are counted, and may fail; files under a
 * prefix fsync slowly (a slow disk, on which the deliveries of the other
 * fetches pile up behind one fsync, as they do under load); and the syncs
 * of a store may fail from the first counted directory fsync on. */
static char g_dir[PST_PATH_MAX + 64];  /* canonical path of the watched directory */
static char g_slow[PST_PATH_MAX + 64]; /* files under it fsync slowly */
static char g_db[PST_PATH_MAX + 64];   /* a store's files (prefix) */
static unsigned g_dir_syncs;
static bool g_dir_fail, g_db_arm, g_db_fail;

static int fd_path(int fd, char *out, size_t cap) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(link, out, cap - 1);
    if (k < 0)
        return -1;
    out[k] = '\0';
    return 0;
}

static bool has_prefix(const char *s, const char *p) {
    return p[0] != '\0' && strncmp(s, p, strlen(p)) == 0;
}

/* 0: go on to the real call; else its result (errno set) */
static int sync_hook(int fd) {
    char path[PST_PATH_MAX + 64];
    if (fd_path(fd, path, sizeof path) != 0)
        return 0;
    if (strcmp(path, g_dir) == 0) {
        g_dir_syncs++;
        g_db_fail |= g_db_arm;
        if (g_dir_fail) {
            errno = EIO;
            return -1;
        }
    } else if (has_prefix(path, g_slow)) {
        usleep(30000);
    } else if (g_db_fail && has_prefix(path, g_db)) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* dlsym's object pointer as the function it is (POSIX allows it, ISO C
 * has no cast for it) */
static int (*real_sync(const char *name))(int) {
    void *p = dlsym(RTLD_NEXT, name);
    int (*f)(int) = NULL;
    cr_assert_not_null(p, "no %s", name);
    memcpy(&f, &p, sizeof f);
    return f;
}

int fsync(int fd) {
    static int (*real)(int);
    if (real == NULL)
        real = real_sync("fsync");
    return sync_hook(fd) != 0 ? -1 : real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (real == NULL)
        real = real_sync("fdatasync");
    return sync_hook(fd) != 0 ? -1 : real(fd);
}

static void canon(char *out, size_t cap, const char *home, const char *rel) {
    char p[PST_PATH_MAX + 64], r[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", home, rel);
    cr_assert_not_null(realpath(p, r), "%s", p);
    snprintf(out, cap, "%s", r);
}

/* a sends b n messages that b hears of at once (held in the fake DHT, then
 * released together), so b's n fetches run side by side. */
static void burst(tnode *a, tnode *b, unsigned n, const char *tag) {
    uint8_t islot[PST_SLOT_BYTES];
    pst_slot_inbox(b->pk, islot);
    pst_dht_fake_hold(b->dht, islot);
    for (unsigned i = 0; i < n; i++) {
        char subject[64], id[65];
        snprintf(subject, sizeof subject, "%s %u", tag, i);
        send_mail(a, b, subject, id);
    }
    cr_assert(poll_node(held_at_least, b, &n, WAIT_MS), "b never held the notifications");
    pst_dht_fake_release(b->dht, false);
}

static void group_reset(void) {
    g_dir[0] = g_slow[0] = g_db[0] = '\0';
    g_dir_syncs = 0;
    g_dir_fail = g_db_arm = g_db_fail = false;
}

/* Deliveries that finish close together (their file fsyncs queue them up,
 * as a busy disk does) share one fsync of new/ and one store commit, and
 * every receipt goes out after it: fewer directory fsyncs than messages. */
Test(node_fake, group_commit) {
    group_reset();
    tnode *a = tn_new("a", NULL), *b = tn_new("b", a);
    trust(b, a, "trusted");
    canon(g_dir, sizeof g_dir, b->home, "Maildir/new");
    canon(g_slow, sizeof g_slow, b->home, "Maildir/tmp");
    burst(a, b, 4, "grouped");
    cr_assert(wait_counter(b, "inbox.receipts_acked", 4), "not every receipt was acknowledged");
    cr_expect_eq(maildir_count(b, "", "body of grouped"), 4);
    uint64_t commits = counter(b, "fetch.group_commits");
    cr_expect_eq(counter(b, "fetch.group_members"), 4);
    cr_expect_eq(counter(a, "fetch.receipts"), 4);
    cr_expect_eq(g_dir_syncs, commits, "one fsync of new/ per commit: %u for %llu", g_dir_syncs,
                 (unsigned long long)commits);
    cr_expect(commits >= 1 && commits < 4, "4 deliveries in %llu commits, none shared",
              (unsigned long long)commits);
    group_reset();
}

/* A group whose directory fsync fails, and one whose store commit fails:
 * no receipt for any of their messages, each retried, found in the Maildir
 * and acknowledged then, one copy each. */
Test(node_fake, group_commit_failure, .timeout = 60) {
    group_reset();
    tnode *a = tn_new("a", NULL), *b = tn_new("b", a);
    trust(b, a, "trusted");
    canon(g_dir, sizeof g_dir, b->home, "Maildir/new");
    canon(g_slow, sizeof g_slow, b->home, "Maildir/tmp");
    canon(g_db, sizeof g_db, b->home, "");
    g_dir_fail = true;
    burst(a, b, 3, "dirfail");
    cr_assert(wait_counter(b, "fetch.retry.io", 3), "the failed fsync of new/ was not a retry");
    cr_expect_eq(counter(a, "fetch.receipts"), 0, "a receipt went out before new/ was durable");
    cr_expect_eq(counter(b, "inbox.delivered"), 0);
    g_dir_fail = false;
    cr_assert(wait_counter(b, "inbox.receipts_acked", 3), "not acknowledged after the retry");
    cr_expect_eq(maildir_count(b, "", "body of dirfail"), 3);
    cr_expect_eq(counter(b, "inbox.recovered"), 3);

    g_db_arm = true; /* from the next fsync of new/ on, b's store cannot sync */
    burst(a, b, 3, "storefail");
    cr_assert(wait_counter(b, "fetch.retry.store", 1), "the failed commit was not a retry");
    cr_expect_eq(counter(a, "fetch.receipts"), 3, "a receipt went out before its row was durable");
    g_db_arm = g_db_fail = false;
    cr_assert(wait_counter(b, "inbox.receipts_acked", 6), "not acknowledged after the retry");
    cr_expect_eq(maildir_count(b, "", "body of storefail"), 3);
    cr_expect_eq(counter(a, "fetch.receipts"), 6);
    /* each message whose commit failed was found and recorded by its retry
     * (the first burst's three, and those of this one that were in a
     * failed group: the store could sync again before the last came) */
    uint64_t recovered = counter(b, "inbox.recovered"), failed = counter(b, "fetch.retry.store");
    cr_expect(failed >= 1 && recovered == 3 + failed, "%llu store failures, %llu recovered",
              (unsigned long long)failed, (unsigned long long)recovered);
    group_reset();
}
