/* Pairing, old device's side (issue 13): `postern device add` makes a
 * one-time code (pst_pairing.h) and this file waits for the new device on
 * a TCP port of its own, bound to the advertised IPv4 address from the
 * first `device add` until the node stops (so that a used or expired code
 * gets a clear answer, not a refused connection); it answers live codes
 * only. A request whose box opens with a live, unused, unexpired
 * code gets the device into a new device list (seq + 1, signed here with
 * the identity key and published), and the reply carries its DeviceCert,
 * that list, our KeyRecord and the trust list. Everything else is refused
 * with a status the new device prints and a rejected.pairing.* counter; a
 * code is used once, even when the answer then fails. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_keys.h"
#include "pst_log.h"
#include "pst_pairing.h"
#include "pst_sync.h"

#define PAIR_CODES_MAX 8u    /* remembered codes: live, used or expired */
#define PAIR_GUESSES_MAX 20u /* unknown codes before every live one is cancelled */
#define PAIR_CONNS_MAX 4u    /* connections at once */
#define PAIR_CONN_TIMEOUT_MS 10000u
#define PAIR_BACKLOG 8

typedef struct {
    bool live;
    bool used;
    uint64_t expires;
    char name[PST_DEVICE_NAME_MAX + 1];
    pst_pair_keys keys;
} pair_code;

struct pst_pairing {
    pst_node *node;
    uv_tcp_t server;
    bool listening;
    uint16_t port;
    uint8_t ipv4[4];
    unsigned guesses, conns;
    pair_code *codes;             /* PAIR_CODES_MAX, sodium_malloc: they hold keys */
    struct pair_conn *conns_head; /* open connections, closed at stop */
};

typedef struct pair_conn {
    struct pair_conn *next, *prev;
    struct pst_pairing *p;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uint8_t in[4 + PST_PAIR_REQUEST_MAX];
    size_t have;
    uint8_t *out;
    int closing;
} pair_conn;

static void conn_closed(uv_handle_t *h) {
    pair_conn *c = h->data;
    if (--c->closing > 0)
        return;
    pst_node *n = c->p->node;
    c->p->conns--;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->p->conns_head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c->out);
    sodium_memzero(c->in, sizeof c->in);
    free(c);
    pst_node_handle_unref(n);
    pst_node_handle_unref(n);
}

static void conn_close(pair_conn *c) {
    if (c->closing)
        return;
    c->closing = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void on_written(uv_write_t *w, int status) {
    (void)status;
    conn_close(w->data);
}

static void send_frame(pair_conn *c, const uint8_t *msg, size_t len) {
    c->out = malloc(4 + len);
    if (c->out == NULL) {
        conn_close(c);
        return;
    }
    pst_pair_frame_header(len, c->out);
    memcpy(c->out + 4, msg, len);
    uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)(4 + len));
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        conn_close(c);
}

static void refuse(pair_conn *c, const pst_pair_keys *k, pst_pair_status st, const char *reason) {
    pst_node *n = c->p->node;
    pst_pair_keys none;
    uint8_t nonce[PST_PAIR_NONCE_BYTES] = {0}, msg[64];
    size_t len = 0;
    if (reason != NULL)
        pst_counter_rejected(n, "pairing", reason);
    if (k == NULL) {
        memset(&none, 0, sizeof none);
        k = &none;
    }
    if (pst_pair_reply_seal(k, st, NULL, nonce, msg, sizeof msg, &len) != PST_OK) {
        conn_close(c);
        return;
    }
    pst_log_info("pairing refused: %s", pst_pair_status_text(st));
    send_frame(c, msg, len);
}

typedef struct {
    pst_pair_reply *r;
    pst_store *st;
    uint32_t emails_left_out;
} contacts_walk;

/* The store gives a contact's addresses in ascending byte order, as the
 * reply wants them; one the reply's rule or cap refuses is left out (the
 * contact comes without it: `trust set --email` again adds it). */
static int on_contact_email(const char *email, void *user) {
    contacts_walk *cw = user;
    pst_pair_reply *r = cw->r;
    pst_pair_contact *ct = &r->contacts[r->n_contacts];
    uint32_t first = r->n_emails - ct->n_emails;
    if (r->n_emails < PST_PAIR_EMAILS_MAX) {
        snprintf(r->emails[r->n_emails], sizeof r->emails[0], "%s", email);
        if (pst_contact_emails_ok((const char(*)[PST_PAIR_EMAIL_MAX + 1])(r->emails + first),
                                  ct->n_emails + 1)) {
            r->n_emails++;
            ct->n_emails++;
            return 0;
        }
        memset(r->emails[r->n_emails], 0, sizeof r->emails[0]);
    }
    cw->emails_left_out++;
    return 0;
}

static int on_contact(const pst_store_contact_row *row, void *user) {
    contacts_walk *cw = user;
    pst_pair_reply *r = cw->r;
    if (r->n_contacts >= PST_PAIR_CONTACTS_MAX)
        return 1; /* the rest sync later (the cap is documented) */
    pst_pair_contact *ct = &r->contacts[r->n_contacts];
    memcpy(ct->pk, row->pk, PST_SIGN_PK_BYTES);
    ct->tier = (uint8_t)row->tier;
    snprintf(ct->petname, sizeof ct->petname, "%s", row->petname ? row->petname : "");
    (void)pst_store_contact_emails(cw->st, row->pk, on_contact_email, cw);
    r->n_contacts++;
    return 0;
}

static int on_own_keyrec(const pst_store_published_row *row, void *user) {
    pst_pair_reply *r = user;
    if (row->kind == PST_PUB_KEYREC && row->len <= sizeof r->keyrec) {
        memcpy(r->keyrec, row->bytes, row->len);
        r->keyrec_len = row->len;
    }
    return 0;
}

/* The list we had, or the first one: this device (the identity key). */
static void current_list(pst_node *n, pst_devlist *l) {
    if (pst_keys_devlist_cached(n, n->id->sign_pk, l) == PST_OK)
        return;
    memset(l, 0, sizeof *l);
    pst_device *self = &l->devices[0];
    memcpy(self->sign_pk, n->id->sign_pk, PST_SIGN_PK_BYTES);
    memcpy(self->box_pk, n->id->box_pk, PST_BOX_PK_BYTES);
    snprintf(self->name, sizeof self->name, "%s", PST_DEVICE_FIRST_NAME);
    self->created = n->started_at;
    l->n_devices = 1;
}

static void answer(pair_conn *c, pair_code *code, const pst_pair_request *req) {
    pst_node *n = c->p->node;
    pst_devlist l;
    current_list(n, &l);
    if (l.n_devices >= PST_DEVICES_MAX) {
        refuse(c, &code->keys, PST_PAIR_FULL, "full");
        return;
    }
    if (pst_devlist_find(&l, req->sign_pk) >= 0 || pst_devlist_revoked(&l, req->sign_pk)) {
        refuse(c, &code->keys, PST_PAIR_FAILED, "known_device_key");
        return;
    }
    pst_device *d = &l.devices[l.n_devices++];
    memset(d, 0, sizeof *d);
    memcpy(d->sign_pk, req->sign_pk, PST_SIGN_PK_BYTES);
    memcpy(d->box_pk, req->box_pk, PST_BOX_PK_BYTES);
    snprintf(d->name, sizeof d->name, "%s", req->name[0] ? req->name : code->name);
    d->created = pst_now();
    pst_pair_reply *r = calloc(1, sizeof *r);
    uint8_t *msg = malloc(PST_PAIR_REPLY_MAX);
    pst_devcert cert;
    int rc = r != NULL && msg != NULL ? PST_OK : PST_E_NOMEM;
    if (rc == PST_OK)
        rc = pst_keys_devlist_publish(n, &l, NULL, NULL);
    if (rc == PST_OK)
        rc = pst_devcert_build(&cert, d, d->created, n->id->sign_sk);
    if (rc == PST_OK)
        rc = pst_devcert_encode(&cert, r->devcert, sizeof r->devcert, &r->devcert_len);
    if (rc == PST_OK)
        rc = pst_devlist_encode(&l, r->devlist, sizeof r->devlist, &r->devlist_len);
    contacts_walk cw = {r, n->store, 0};
    if (rc == PST_OK) {
        (void)pst_store_published_list(n->store, on_own_keyrec, r);
        rc = pst_store_contact_list(n->store, on_contact, &cw);
        rc = rc > 0 ? PST_OK : rc;
    }
    uint8_t nonce[PST_PAIR_NONCE_BYTES];
    randombytes_buf(nonce, sizeof nonce);
    size_t len = 0;
    if (rc == PST_OK)
        rc = pst_pair_reply_seal(&code->keys, PST_PAIR_OK, r, nonce, msg, PST_PAIR_REPLY_MAX, &len);
    if (rc == PST_OK) {
        char id[PST_DEVICE_ID_BUFSIZE];
        pst_device_id(d->sign_pk, id);
        pst_log_info("paired device %s (\"%s\"): device list seq %llu, %u contacts and %u email "
                     "addresses sent (%u left out)",
                     id, d->name, (unsigned long long)l.seq, r->n_contacts, r->n_emails,
                     cw.emails_left_out);
        pst_counter_add(n, "pairing.paired", 1);
        send_frame(c, msg, len);
    } else {
        pst_log_error("pairing failed: %s", pst_strerror(rc));
        refuse(c, &code->keys, PST_PAIR_FAILED, NULL);
    }
    free(r);
    free(msg);
}

static void cancel_all(struct pst_pairing *p) {
    for (unsigned i = 0; i < PAIR_CODES_MAX; i++)
        if (p->codes[i].live && !p->codes[i].used)
            p->codes[i].used = true;
}

static void handle_request(pair_conn *c, const uint8_t *msg, size_t len) {
    struct pst_pairing *p = c->p;
    uint8_t id[PST_PAIR_ID_BYTES];
    if (pst_pair_request_peek(msg, len, id) != PST_OK) {
        refuse(c, NULL, PST_PAIR_UNKNOWN, "malformed");
        return;
    }
    pair_code *code = NULL;
    for (unsigned i = 0; i < PAIR_CODES_MAX && code == NULL; i++)
        if (p->codes[i].live && sodium_memcmp(p->codes[i].keys.id, id, PST_PAIR_ID_BYTES) == 0)
            code = &p->codes[i];
    if (code == NULL) {
        /* a guess, or a code made on another node: enough of them end
         * every live pairing, so 80 bits are not searched online */
        if (++p->guesses >= PAIR_GUESSES_MAX) {
            cancel_all(p);
            pst_log_warn("pairing: %u unknown codes tried; every pending pairing is cancelled",
                         p->guesses);
        }
        refuse(c, NULL, PST_PAIR_UNKNOWN, "unknown_code");
        return;
    }
    if (code->used) {
        refuse(c, &code->keys, PST_PAIR_USED, "code_reused");
        return;
    }
    if (pst_now() >= code->expires) {
        refuse(c, &code->keys, PST_PAIR_EXPIRED, "code_expired");
        return;
    }
    pst_pair_request req;
    if (pst_pair_request_open(&code->keys, msg, len, &req) != PST_OK) {
        p->guesses++;
        refuse(c, NULL, PST_PAIR_UNKNOWN, "bad_box");
        return;
    }
    code->used = true; /* single use, whatever happens next */
    answer(c, code, &req);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)hint;
    pair_conn *c = h->data;
    buf->base = (char *)c->in + c->have;
    buf->len = sizeof c->in - c->have;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    pair_conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->have += (size_t)nread;
    size_t want;
    if (c->have < 4)
        return;
    if (pst_pair_frame_len(c->in, PST_PAIR_REQUEST_MAX, &want) != PST_OK) {
        pst_counter_rejected(c->p->node, "pairing", "oversize");
        conn_close(c);
        return;
    }
    if (c->have < 4 + want)
        return;
    uv_read_stop(s);
    if (c->have > 4 + want) {
        pst_counter_rejected(c->p->node, "pairing", "trailing");
        conn_close(c);
        return;
    }
    handle_request(c, c->in + 4, want);
}

static void on_timeout(uv_timer_t *t) { conn_close(t->data); }

static void on_connection(uv_stream_t *srv, int status) {
    struct pst_pairing *p = srv->data;
    pst_node *n = p->node;
    if (status != 0)
        return;
    pair_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->p = p;
    uv_tcp_init(n->loop, &c->tcp);
    uv_timer_init(n->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    pst_node_handle_ref(n);
    pst_node_handle_ref(n);
    p->conns++;
    c->next = p->conns_head;
    if (c->next != NULL)
        c->next->prev = c;
    p->conns_head = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0 || p->conns > PAIR_CONNS_MAX || n->stopping) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, PAIR_CONN_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* The host of our advertised endpoint, as 4 bytes. */
static int endpoint_ipv4(pst_node *n, uint8_t ip[4], char *host, size_t cap) {
    const char *colon = strrchr(n->endpoint, ':');
    struct sockaddr_in sa;
    if (colon == NULL || n->endpoint[0] == '[' || (size_t)(colon - n->endpoint) >= cap)
        return PST_E_INVAL;
    memcpy(host, n->endpoint, (size_t)(colon - n->endpoint));
    host[colon - n->endpoint] = '\0';
    if (uv_ip4_addr(host, 0, &sa) != 0)
        return PST_E_INVAL;
    memcpy(ip, &sa.sin_addr.s_addr, 4);
    return PST_OK;
}

static int listen_start(struct pst_pairing *p, char *err, size_t errcap) {
    pst_node *n = p->node;
    char host[64];
    struct sockaddr_in sa;
    if (endpoint_ipv4(n, p->ipv4, host, sizeof host) != PST_OK) {
        snprintf(err, errcap,
                 "pairing needs an IPv4 address to advertise (advertise is '%s'): set advertise "
                 "to this machine's IPv4 address",
                 n->endpoint);
        return PST_E_INVAL;
    }
    uv_ip4_addr(host, 0, &sa);
    uv_tcp_init(n->loop, &p->server);
    p->server.data = p;
    pst_node_handle_ref(n);
    int rc = uv_tcp_bind(&p->server, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&p->server, PAIR_BACKLOG, on_connection);
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (rc == 0)
        rc = uv_tcp_getsockname(&p->server, (struct sockaddr *)&ss, &sl);
    if (rc != 0) {
        snprintf(err, errcap, "cannot listen for pairing on %s: %s", host, uv_strerror(rc));
        uv_close((uv_handle_t *)&p->server, NULL);
        pst_node_handle_unref(n);
        return PST_E_IO;
    }
    p->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    p->listening = true;
    return PST_OK;
}

static void server_closed(uv_handle_t *h) {
    pst_node_handle_unref(((struct pst_pairing *)h->data)->node);
}

int pst_pairing_add(pst_node *n, const char *name, uint32_t ttl_s,
                    char code_out[PST_PAIR_CODE_STRLEN + 1], uint64_t *expires, char *err,
                    size_t errcap) {
    memset(code_out, 0, PST_PAIR_CODE_STRLEN + 1);
    if (n->id == NULL || !n->holds_identity) {
        snprintf(err, errcap,
                 "this device does not hold the identity key: run 'postern device add' on the "
                 "device that does (the first one, or the one recovered from paper)");
        return PST_E_NOKEY;
    }
    pst_devlist l;
    current_list(n, &l);
    if (l.n_devices >= PST_DEVICES_MAX) {
        snprintf(err, errcap,
                 "this identity has %u devices, the cap: revoke one first ('postern device "
                 "revoke ID')",
                 PST_DEVICES_MAX);
        return PST_E_BUSY;
    }
    struct pst_pairing *p = n->pairing;
    if (p == NULL) {
        p = calloc(1, sizeof *p);
        if (p == NULL || (p->codes = sodium_malloc(PAIR_CODES_MAX * sizeof *p->codes)) == NULL) {
            free(p);
            return PST_E_NOMEM;
        }
        memset(p->codes, 0, PAIR_CODES_MAX * sizeof *p->codes);
        p->node = n;
        n->pairing = p;
    }
    int rc;
    if (!p->listening && (rc = listen_start(p, err, errcap)) != PST_OK)
        return rc;
    /* the slot of the oldest code (live ones expire first) */
    unsigned slot = 0;
    for (unsigned i = 1; i < PAIR_CODES_MAX; i++)
        if (!p->codes[i].live ||
            (p->codes[slot].live && p->codes[i].expires < p->codes[slot].expires))
            slot = i;
    pair_code *c = &p->codes[slot];
    pst_pair_code code;
    memset(c, 0, sizeof *c);
    randombytes_buf(code.secret, sizeof code.secret);
    memcpy(code.ipv4, p->ipv4, 4);
    code.port = p->port;
    rc = pst_pair_derive(&code, &c->keys);
    if (rc == PST_OK)
        rc = pst_pair_code_format(&code, code_out);
    sodium_memzero(&code, sizeof code);
    if (rc != PST_OK) {
        memset(c, 0, sizeof *c);
        return rc;
    }
    c->live = true;
    c->expires = pst_now() + ttl_s;
    snprintf(c->name, sizeof c->name, "%s", name);
    p->guesses = 0;
    *expires = c->expires;
    pst_counter_add(n, "pairing.codes", 1);
    pst_log_info("pairing code made for a device named \"%s\", valid %u s", name, ttl_s);
    return PST_OK;
}

void pst_pairing_stop(pst_node *n) {
    struct pst_pairing *p = n->pairing;
    if (p == NULL)
        return;
    for (pair_conn *c = p->conns_head; c != NULL; c = c->next)
        conn_close(c);
    if (!p->listening)
        return;
    p->listening = false;
    uv_close((uv_handle_t *)&p->server, server_closed);
}

void pst_pairing_free(pst_node *n) {
    struct pst_pairing *p = n->pairing;
    if (p == NULL)
        return;
    sodium_free(p->codes);
    free(p);
    n->pairing = NULL;
}
