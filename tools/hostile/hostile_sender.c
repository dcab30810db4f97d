/* postern-hostile --fake-sender: a sender that notifies the target properly
 * (a real message, a valid notification sealed to it, signed by a fresh
 * identity) and then misbehaves when the target's node fetches, one way per
 * mode. The node must refuse to store anything that does not verify, count
 * why (rejected.fetch.REASON, fetch.retry.REASON) and give up on a sender
 * that keeps breaking the protocol verifiably (bad-signer does not: another
 * key's answer is retried, never a strike). Mode `good` serves correctly, so the
 * test can see the node deliver a stranger's message once, and then replays
 * its notification (the same bytes, and the same inner record sealed anew):
 * the node must not store it twice, only send its receipt again.
 *
 * Serves on listen_host (loopback) with libuv, on the same loop as the DHT
 * node of hostile.c. Every message is small (a few KiB) but bad-tail's (2
 * MiB, the size a node decrypts on two threads): one write each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "hostile.h"
#include "pst_dht.h"
#include "pst_fetch.h"
#include "pst_mint.h"
#include "pst_notify.h"

#define CONTENT_BYTES 3000u
#define BIG_CONTENT_BYTES (2u << 20)
/* a node gives up after 3 protocol failures; bad-signer: 3 requests show
 * it kept asking where a strike would have ended it */
#define GIVE_UP_REQUESTS 3u
#define RETRY_REQUESTS 2u /* truncated: one retry is enough to see it */
#define PUT_TIMEOUT_MS 10000u
#define LIFETIME_S 3600u

static const char *const mode_names[PST_HM_COUNT] = {
    "wrong-body", "wrong-size", "bad-signer", "bad-author",
    "truncated",  "good",       "bad-tail",   "extra-tail",
};

const char *pst_hostile_sender_mode_name(int m) {
    return m >= 0 && m < PST_HM_COUNT ? mode_names[m] : "unknown";
}

int pst_hostile_sender_mode_by_name(const char *name, size_t len) {
    for (int m = 0; m < PST_HM_COUNT; m++)
        if (strlen(mode_names[m]) == len && memcmp(mode_names[m], name, len) == 0)
            return m;
    return -1;
}

typedef struct {
    int mode;
    bool on;
    uint8_t msg_id[PST_HASH_BYTES];
    uint8_t *ct; /* what the notification describes */
    size_t ct_len;
    pst_notify_inner inner; /* kept to seal it anew */
    uint8_t outer[PST_NOTIFY_MAX];
    size_t outer_len;
    uint32_t puts, puts_ok, requests, receipts, replays;
    uint64_t next_put_ms;
    bool done;
} message;

typedef struct conn conn;

struct pst_hostile_sender {
    uv_loop_t *loop;
    pst_dht *dht;
    pst_hostile_sender_opts o;
    uint8_t sk[PST_SIGN_SK_BYTES], pk[PST_SIGN_PK_BYTES];
    uint8_t other_sk[PST_SIGN_SK_BYTES], other_pk[PST_SIGN_PK_BYTES];
    uint8_t box_pk[PST_BOX_PK_BYTES];
    uint8_t slot[PST_SLOT_BYTES];
    char endpoint[PST_NOTIFY_ENDPOINT_MAX + 1];
    uv_tcp_t server;
    bool server_open, closing;
    conn *conns;
    uint32_t n_conns, bad_frames;
    uint32_t writes; /* not yet taken by the kernel: done waits for them (bad-tail's 2 MiB) */
    message msg[PST_HM_COUNT];
};

struct conn {
    pst_hostile_sender *s;
    conn *next;
    uv_tcp_t tcp;
    uint8_t hdr[PST_FRAME_HEADER_BYTES];
    uint32_t hdr_have, flen, fhave;
    uint8_t frame[PST_FRAME_MAX];
    bool closing;
};

typedef struct {
    uv_write_t req;
    conn *c;
    bool close_after;
    uint8_t data[];
} wreq;

typedef struct {
    pst_hostile_sender *s;
    int mode;
} put_ctx;

static void die(const char *what) {
    fprintf(stderr, "postern-hostile: internal error: %s\n", what);
    exit(1);
}

static uint64_t now_s(void) { return (uint64_t)time(NULL); }

/* ---- messages ----------------------------------------------------------------- */

/* Encrypts content under key, signed by author_sk, into a malloc'd buffer. */
static uint8_t *encrypt(const uint8_t *content, size_t n, const uint8_t key[PST_MSGKEY_BYTES],
                        const uint8_t *author_sk, size_t *len) {
    size_t cap = PST_MSG_HEADER_BYTES + n + (n / PST_MSG_CHUNK + 1) * PST_MSG_CHUNK_OVERHEAD +
                 PST_MSG_FINAL_CHUNK_MAX;
    uint8_t *ct = malloc(cap);
    pst_msg_encryptor enc;
    size_t o = PST_MSG_HEADER_BYTES, w;
    if (ct == NULL || pst_msg_encryptor_init(&enc, key, ct) != PST_OK)
        die("encryptor");
    for (size_t at = 0; at < n; at += PST_MSG_CHUNK) {
        size_t k = n - at < PST_MSG_CHUNK ? n - at : PST_MSG_CHUNK;
        if (pst_msg_encrypt_chunk(&enc, content + at, k, ct + o, cap - o, &w) != PST_OK)
            die("encrypt");
        o += w;
    }
    if (pst_msg_encrypt_final(&enc, author_sk, now_s(), ct + o, cap - o, &w) != PST_OK)
        die("encrypt final");
    *len = o + w;
    return ct;
}

static void seal(pst_hostile_sender *s, message *m) {
    pst_notify outer;
    if (pst_notify_seal(&m->inner, s->box_pk, &outer) != PST_OK)
        die("seal");
    if (s->o.stamp_bits > 0) {
        pst_hashcash_mint_params p;
        char res[PST_NOTIFY_STAMP_RESOURCE_BUFSIZE], ext[PST_NOTIFY_STAMP_EXT_BUFSIZE];
        memset(&p, 0, sizeof p);
        pst_notify_stamp_resource(s->o.target, res);
        pst_notify_stamp_ext(outer.sealed, outer.sealed_len, ext);
        p.bits = s->o.stamp_bits;
        p.resource = res;
        p.ext = ext;
        p.now = now_s();
        randombytes_buf(p.rand, sizeof p.rand);
        if (pst_hashcash_mint(&p, outer.stamp, sizeof outer.stamp) != PST_OK)
            die("mint");
    }
    if (pst_notify_encode(&outer, m->outer, sizeof m->outer, &m->outer_len) != PST_OK)
        die("encode notification");
}

static void build(pst_hostile_sender *s, message *m) {
    uint8_t key[PST_MSGKEY_BYTES];
    size_t n = m->mode == PST_HM_BAD_TAIL || m->mode == PST_HM_EXTRA_TAIL ? BIG_CONTENT_BYTES
                                                                          : CONTENT_BYTES;
    uint8_t *content = malloc(n);
    if (content == NULL)
        die("content");
    int len =
        snprintf((char *)content, n, "From: hostile@hostile.invalid\r\nSubject: hostile %s\r\n\r\n",
                 mode_names[m->mode]);
    for (size_t k = (size_t)len; k < n; k++)
        content[k] = (k % 64 == 63) ? '\n' : (uint8_t)('a' + k % 26);
    randombytes_buf(key, PST_MSGKEY_BYTES);
    m->ct =
        encrypt(content, n, key, m->mode == PST_HM_BAD_AUTHOR ? s->other_sk : s->sk, &m->ct_len);
    free(content);
    if (m->mode == PST_HM_BAD_TAIL) /* inside the last data chunk's box, before the final */
        m->ct[m->ct_len - PST_MSG_FINAL_CHUNK_MAX - 100] ^= 0x01;
    pst_msgid_compute(m->ct, m->ct_len, m->msg_id);
    memset(&m->inner, 0, sizeof m->inner);
    m->inner.created = now_s() - 5;
    m->inner.expires = now_s() + LIFETIME_S;
    memcpy(m->inner.recipient, s->o.target, PST_SIGN_PK_BYTES);
    memcpy(m->inner.msg_id, m->msg_id, PST_HASH_BYTES);
    m->inner.size = m->ct_len;
    m->inner.n_endpoints = 1;
    snprintf(m->inner.endpoints[0], sizeof m->inner.endpoints[0], "%s", s->endpoint);
    memcpy(m->inner.msg_key, key, sizeof key);
    randombytes_buf(m->inner.sender_box_pk, sizeof m->inner.sender_box_pk); /* never used */
    sodium_memzero(key, sizeof key);
    if (pst_notify_inner_sign(&m->inner, s->sk) != PST_OK)
        die("sign notification");
    seal(s, m);
}

/* ---- notifications -------------------------------------------------------------- */

static void on_put(void *user, int status) {
    put_ctx *p = user;
    if (status == PST_OK)
        p->s->msg[p->mode].puts_ok++;
    free(p);
}

static void put(pst_hostile_sender *s, message *m) {
    put_ctx *p = malloc(sizeof *p);
    if (p == NULL)
        return;
    p->s = s;
    p->mode = m->mode;
    if (pst_dht_put(s->dht, s->slot, m->outer, m->outer_len, false, PUT_TIMEOUT_MS, on_put, p) !=
        PST_OK) {
        free(p);
        return;
    }
    m->puts++;
}

static void replay(pst_hostile_sender *s, message *m) {
    put(s, m); /* the same bytes: a node that already looked at them skips them */
    seal(s, m);
    put(s, m); /* the same inner sealed anew: a node sees a duplicate, re-sends its receipt */
    m->replays++;
}

void pst_hostile_sender_tick(pst_hostile_sender *s) {
    uint64_t now = uv_now(s->loop);
    for (int k = 0; k < PST_HM_COUNT; k++) {
        message *m = &s->msg[k];
        if (!m->on || m->done || now < m->next_put_ms)
            continue;
        m->next_put_ms = now + s->o.renotify_ms;
        if (m->puts > 0 && !(m->mode == PST_HM_GOOD && m->receipts > 0))
            seal(s, m); /* still waiting: a fresh seal makes a node look again */
        if (m->mode == PST_HM_GOOD && m->receipts > 0)
            replay(s, m);
        else
            put(s, m);
    }
}

/* ---- serving ------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
    conn *c = h->data;
    pst_hostile_sender *s = c->s;
    for (conn **p = &s->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    s->n_conns--;
    free(c);
}

static void conn_close(conn *c) {
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status) {
    wreq *w = (wreq *)req;
    w->c->s->writes--;
    if ((status < 0 || w->close_after) && !w->c->closing)
        conn_close(w->c);
    free(w);
}

static void send_bytes(conn *c, const uint8_t *p, size_t n, bool close_after) {
    wreq *w = malloc(sizeof *w + n);
    if (w == NULL) {
        conn_close(c);
        return;
    }
    w->c = c;
    w->close_after = close_after;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(w);
        conn_close(c);
        return;
    }
    c->s->writes++;
}

/* The body and 16 bytes more in one write: they reach the node in the same
 * read as the body's last bytes. */
static void send_extra(conn *c, const uint8_t *body, size_t n) {
    uint8_t *all = malloc(n + 16);
    if (all == NULL) {
        conn_close(c);
        return;
    }
    memcpy(all, body, n);
    memset(all + n, 'x', 16);
    send_bytes(c, all, n + 16, false);
    free(all);
}

static void respond(conn *c, const uint8_t *msg_id, uint64_t status, uint64_t total,
                    uint64_t offset, const uint8_t *sk, bool close_after) {
    pst_fetch_response r;
    uint8_t out[PST_FRAME_HEADER_BYTES + PST_FETCH_RESPONSE_MAX];
    size_t len = 0;
    memset(&r, 0, sizeof r);
    r.created = now_s();
    r.expires = r.created + PST_FETCH_SKEW_DEFAULT;
    memcpy(r.msg_id, msg_id, PST_HASH_BYTES);
    r.status = status;
    r.total_size = total;
    r.offset = offset;
    if (status != PST_FETCH_OK)
        snprintf(r.error_text, sizeof r.error_text, "%s", "no such message");
    if (pst_fetch_response_sign(&r, sk) != PST_OK ||
        pst_fetch_response_encode(&r, out + PST_FRAME_HEADER_BYTES, PST_FETCH_RESPONSE_MAX, &len) !=
            PST_OK)
        die("response");
    pst_frame_header_write((uint32_t)len, out);
    send_bytes(c, out, len + PST_FRAME_HEADER_BYTES, close_after);
}

static message *find(pst_hostile_sender *s, const uint8_t *id) {
    for (int k = 0; k < PST_HM_COUNT; k++)
        if (s->msg[k].on && memcmp(s->msg[k].msg_id, id, PST_HASH_BYTES) == 0)
            return &s->msg[k];
    return NULL;
}

static void serve(conn *c, const pst_fetch_request *req) {
    pst_hostile_sender *s = c->s;
    message *m = find(s, req->msg_id);
    if (m == NULL || req->offset > m->ct_len) {
        respond(c, req->msg_id, PST_FETCH_NOT_FOUND, 0, req->offset, s->sk, true);
        return;
    }
    m->requests++;
    uint64_t total = m->ct_len + (m->mode == PST_HM_WRONG_SIZE ? 1 : 0);
    respond(c, m->msg_id, PST_FETCH_OK, total, req->offset,
            m->mode == PST_HM_BAD_SIGNER ? s->other_sk : s->sk, false);
    const uint8_t *body = m->ct + req->offset;
    size_t n = m->ct_len - (size_t)req->offset;
    uint8_t *junk = NULL;
    if (m->mode == PST_HM_WRONG_BODY) {
        if ((junk = malloc(n ? n : 1)) == NULL) {
            conn_close(c);
            return;
        }
        randombytes_buf(junk, n);
        body = junk;
    }
    if (m->mode == PST_HM_TRUNCATED)
        send_bytes(c, body, n / 2, true);
    else if (m->mode == PST_HM_EXTRA_TAIL)
        send_extra(c, body, n);
    else if (n > 0)
        send_bytes(c, body, n, false);
    free(junk);
    if ((m->mode == PST_HM_TRUNCATED || m->mode == PST_HM_EXTRA_TAIL) &&
        m->requests >= RETRY_REQUESTS)
        m->done = true;
    else if (m->mode != PST_HM_GOOD && m->mode != PST_HM_TRUNCATED &&
             m->mode != PST_HM_EXTRA_TAIL && m->requests >= GIVE_UP_REQUESTS)
        m->done = true;
}

static void take_receipt(conn *c, const pst_receipt *rec) {
    pst_hostile_sender *s = c->s;
    message *m = find(s, rec->msg_id);
    if (m == NULL || memcmp(rec->sender, s->pk, PST_SIGN_PK_BYTES) != 0 ||
        memcmp(rec->signer, s->o.target, PST_SIGN_PK_BYTES) != 0 ||
        pst_receipt_verify(rec, now_s()) != PST_OK) {
        respond(c, rec->msg_id, PST_FETCH_BAD_REQUEST, 0, 0, s->sk, true);
        return;
    }
    m->receipts++;
    if (m->mode == PST_HM_GOOD && m->receipts == 1)
        m->next_put_ms = uv_now(s->loop) + 500; /* replay soon */
    if (m->mode == PST_HM_GOOD && m->receipts >= 2)
        m->done = true;
    respond(c, rec->msg_id, PST_FETCH_OK, 0, 0, s->sk, true);
}

static void handle_frame(conn *c) {
    pst_fetch_request req;
    pst_receipt rec;
    if (pst_fetch_request_decode(c->frame, c->flen, &req) == PST_OK)
        serve(c, &req);
    else if (pst_receipt_decode(c->frame, c->flen, &rec) == PST_OK)
        take_receipt(c, &rec);
    else {
        c->s->bad_frames++;
        conn_close(c);
        return;
    }
    c->hdr_have = c->flen = c->fhave = 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    conn *c = h->data;
    if (c->hdr_have < PST_FRAME_HEADER_BYTES)
        *buf = uv_buf_init((char *)c->hdr + c->hdr_have, PST_FRAME_HEADER_BYTES - c->hdr_have);
    else
        *buf = uv_buf_init((char *)c->frame + c->fhave, c->flen - c->fhave);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    conn *c = st->data;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->hdr_have < PST_FRAME_HEADER_BYTES) {
        c->hdr_have += (uint32_t)nread;
        if (c->hdr_have == PST_FRAME_HEADER_BYTES &&
            pst_frame_header_parse(c->hdr, PST_FRAME_MAX, &c->flen) != PST_OK) {
            c->s->bad_frames++;
            conn_close(c);
        }
        return;
    }
    c->fhave += (uint32_t)nread;
    if (c->fhave == c->flen)
        handle_frame(c);
}

static void on_connection(uv_stream_t *server, int status) {
    pst_hostile_sender *s = server->data;
    if (status < 0 || s->closing)
        return;
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->s = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    s->conns = c;
    s->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* ---- life ---------------------------------------------------------------------- */

int pst_hostile_sender_start(uv_loop_t *loop, pst_dht *d, const pst_hostile_sender_opts *o,
                             pst_hostile_sender **out) {
    *out = NULL;
    pst_hostile_sender *s = calloc(1, sizeof *s);
    if (s == NULL)
        return PST_E_NOMEM;
    s->loop = loop;
    s->dht = d;
    s->o = *o;
    memcpy(s->box_pk, o->target_box_pk, sizeof s->box_pk);
    uint8_t seed[32];
    crypto_generichash(seed, sizeof seed, o->seed, 32, (const uint8_t *)"sender", 6);
    crypto_sign_seed_keypair(s->pk, s->sk, seed);
    crypto_generichash(seed, sizeof seed, o->seed, 32, (const uint8_t *)"other", 5);
    crypto_sign_seed_keypair(s->other_pk, s->other_sk, seed);
    sodium_memzero(seed, sizeof seed);
    pst_slot_inbox(o->target, s->slot);

    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_tcp_init(loop, &s->server);
    s->server.data = s;
    s->server_open = true;
    if (uv_ip4_addr(o->listen_host, 0, &sa) != 0 ||
        uv_tcp_bind(&s->server, (const struct sockaddr *)&sa, 0) != 0 ||
        uv_listen((uv_stream_t *)&s->server, 64, on_connection) != 0 ||
        uv_tcp_getsockname(&s->server, (struct sockaddr *)&bound, &blen) != 0) {
        fprintf(stderr, "postern-hostile: cannot listen on %s\n", o->listen_host);
        pst_hostile_sender_close(s);
        *out = s; /* closed: the caller frees it after the loop */
        return PST_E_IO;
    }
    snprintf(s->endpoint, sizeof s->endpoint, "%s:%u", o->listen_host,
             ntohs(((struct sockaddr_in *)&bound)->sin_port));
    for (int k = 0; k < PST_HM_COUNT; k++) {
        message *m = &s->msg[k];
        m->mode = k;
        m->on = o->modes[k];
        if (m->on)
            build(s, m);
    }
    *out = s;
    return PST_OK;
}

bool pst_hostile_sender_done(const pst_hostile_sender *s) {
    if (s->writes > 0)
        return false; /* a body still on its way out */
    for (int k = 0; k < PST_HM_COUNT; k++)
        if (s->msg[k].on && !s->msg[k].done)
            return false;
    return true;
}

void pst_hostile_sender_print(const pst_hostile_sender *s, bool json, bool timed_out,
                              uint64_t elapsed_ms) {
    char fp[PST_FINGERPRINT_STRLEN + 1], target[PST_FINGERPRINT_STRLEN + 1], id[65];
    pst_fingerprint_format(s->pk, fp);
    pst_fingerprint_format(s->o.target, target);
    if (json)
        printf("{\"mode\":\"fake-sender\",\"target\":\"%s\",\"sender\":\"%s\",\"endpoint\":\"%s\","
               "\"timed_out\":%s,\"elapsed_ms\":%llu,\"bad_frames\":%u,\"messages\":{",
               target, fp, s->endpoint, timed_out ? "true" : "false",
               (unsigned long long)elapsed_ms, s->bad_frames);
    bool first = true;
    for (int k = 0; k < PST_HM_COUNT; k++) {
        const message *m = &s->msg[k];
        if (!m->on)
            continue;
        sodium_bin2hex(id, sizeof id, m->msg_id, sizeof m->msg_id);
        if (json)
            printf("%s\"%s\":{\"msg_id\":\"%s\",\"size\":%zu,\"puts\":%u,\"puts_ok\":%u,"
                   "\"requests\":%u,\"receipts\":%u,\"replays\":%u,\"done\":%s}",
                   first ? "" : ",", mode_names[k], id, m->ct_len, m->puts, m->puts_ok, m->requests,
                   m->receipts, m->replays, m->done ? "true" : "false");
        else
            printf("%-11s %.16s... puts %u/%u requests %u receipts %u%s\n", mode_names[k], id,
                   m->puts_ok, m->puts, m->requests, m->receipts, m->done ? "" : " (not done)");
        first = false;
    }
    if (json)
        printf("}}\n");
    fflush(stdout);
}

void pst_hostile_sender_close(pst_hostile_sender *s) {
    if (s == NULL || s->closing)
        return;
    s->closing = true;
    for (conn *c = s->conns; c; c = c->next)
        conn_close(c);
    if (s->server_open)
        uv_close((uv_handle_t *)&s->server, NULL);
}

void pst_hostile_sender_free(pst_hostile_sender *s) {
    if (s == NULL)
        return;
    for (int k = 0; k < PST_HM_COUNT; k++) {
        free(s->msg[k].ct);
        sodium_memzero(&s->msg[k].inner, sizeof s->msg[k].inner);
    }
    sodium_memzero(s->sk, sizeof s->sk);
    sodium_memzero(s->other_sk, sizeof s->other_sk);
    free(s);
}
