/* postern-hostile --fetch: a hostile fetch client against a node's fetch
 * port (docs/PROTOCOL.md, "Fetch exchange"). Each attack aims at one limit
 * of node/mail/fetch_server.c: who may fetch what, the request's signature and
 * time window, the frame decoder, the frame length cap, the idle timeout
 * (slowloris) and the connection caps. It records what the node answered
 * (the status of each signed refusal, or how the connection ended) and
 * prints one summary. Plain blocking sockets with poll(): everything here is
 * sequential except the connection floods, which poll many sockets at once.
 *
 * Loopback only: the caller (hostile.c) has checked the host. Connections
 * can come from another loopback address (--source 127.0.0.2) so that the
 * node's per-address limits hit the attacker and not the real nodes, which
 * all connect from 127.0.0.1. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hostile.h"
#include "pst_fetch.h"
#include "pst_hint.h"

#define IO_TIMEOUT_MS 5000
#define DRIP_MS 500u
#define FLOOD_SETTLE_MS 1500
#define HINT_FLOOD_PER_COUNT 100u /* hint-flood: frames per --count */

static const char *const attack_names[PST_HF_COUNT] = {
    "not-recipient", "bad-request", "garbage", "oversized",  "receipt",
    "slowloris",     "flood",       "hint",    "hint-flood",
};

const char *pst_hostile_attack_name(int a) {
    return a >= 0 && a < PST_HF_COUNT ? attack_names[a] : "unknown";
}

int pst_hostile_attack_by_name(const char *name, size_t len) {
    for (int a = 0; a < PST_HF_COUNT; a++)
        if (strlen(attack_names[a]) == len && memcmp(attack_names[a], name, len) == 0)
            return a;
    return -1;
}

typedef struct {
    uint32_t sent, answered, closed, failed;
    uint32_t status[PST_FETCH_STATUS_LAST + 2]; /* last: undecodable answer */
    /* slowloris / flood */
    uint32_t conns, dropped, held, busy, silent;
    uint64_t min_drop_ms, max_drop_ms;
} attack_result;

typedef struct {
    const pst_hostile_fetch_opts *o;
    struct sockaddr_in dst, src;
    bool have_src;
    uint8_t seed[32];
    uint8_t sk[PST_SIGN_SK_BYTES], pk[PST_SIGN_PK_BYTES];
    attack_result res[PST_HF_COUNT];
    uint64_t deadline_ms;
} fetch_attacker;

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool out_of_time(const fetch_attacker *fa) { return mono_ms() >= fa->deadline_ms; }

static void derive(const fetch_attacker *fa, int a, uint32_t i, const char *label, uint8_t *out,
                   size_t n) {
    uint8_t in[32 + 1 + 4 + 16], k[randombytes_SEEDBYTES];
    memset(in, 0, sizeof in);
    memcpy(in, fa->seed, 32);
    in[32] = (uint8_t)a;
    memcpy(in + 33, &i, sizeof i);
    snprintf((char *)in + 37, 16, "%s", label);
    crypto_generichash(k, sizeof k, in, sizeof in, (const uint8_t *)"hostile-fetch", 13);
    randombytes_buf_deterministic(out, n, k);
}

/* ---- sockets ------------------------------------------------------------------ */

/* A connected socket (blocking unless nonblock), or -1. */
static int dial(const fetch_attacker *fa, bool nonblock) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    if (fa->have_src && bind(fd, (const struct sockaddr *)&fa->src, sizeof fa->src) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {IO_TIMEOUT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&fa->dst, sizeof fa->dst) != 0 &&
        !(nonblock && errno == EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads exactly n bytes: 1 done, 0 EOF, -1 error or timeout. */
static int recv_all(int fd, uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r == 0)
            return 0;
        if (r < 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

/* Reads the node's answer: one frame with a FetchResponse. Counts it. */
static void read_answer(int fd, attack_result *r) {
    uint8_t hdr[PST_FRAME_HEADER_BYTES], frame[PST_FRAME_MAX];
    uint32_t len;
    int rc = recv_all(fd, hdr, sizeof hdr);
    if (rc == 0) {
        r->closed++;
        return;
    }
    if (rc < 0 || pst_frame_header_parse(hdr, PST_FRAME_MAX, &len) != PST_OK ||
        recv_all(fd, frame, len) != 1) {
        r->failed++;
        return;
    }
    pst_fetch_response resp;
    r->answered++;
    if (pst_fetch_response_decode(frame, len, &resp) != PST_OK)
        r->status[PST_FETCH_STATUS_LAST + 1]++;
    else
        r->status[resp.status <= PST_FETCH_STATUS_LAST ? resp.status : PST_FETCH_STATUS_LAST + 1]++;
}

/* One connection: frame (or raw bytes when raw), then the answer. */
static void exchange(fetch_attacker *fa, attack_result *r, const uint8_t *p, size_t n, bool raw) {
    int fd = dial(fa, false);
    if (fd < 0) {
        r->failed++;
        return;
    }
    uint8_t hdr[PST_FRAME_HEADER_BYTES];
    bool ok = true;
    if (!raw) {
        pst_frame_header_write((uint32_t)n, hdr);
        ok = send_all(fd, hdr, sizeof hdr);
    }
    ok = ok && send_all(fd, p, n);
    r->sent++;
    if (ok)
        read_answer(fd, r);
    else
        r->failed++;
    close(fd);
}

/* ---- attacks ------------------------------------------------------------------ */

static void fresh_key(fetch_attacker *fa, int a, uint32_t i) {
    uint8_t seed[32];
    derive(fa, a, i, "key", seed, sizeof seed);
    crypto_sign_seed_keypair(fa->pk, fa->sk, seed);
    sodium_memzero(seed, sizeof seed);
}

static void send_request(fetch_attacker *fa, attack_result *r, pst_fetch_request *req, bool sign) {
    uint8_t buf[PST_FETCH_REQUEST_MAX];
    size_t len = 0;
    if ((sign && pst_fetch_request_sign(req, fa->sk) != PST_OK) ||
        pst_fetch_request_encode(req, buf, sizeof buf, &len) != PST_OK) {
        r->failed++;
        return;
    }
    exchange(fa, r, buf, len, false);
}

/* Someone else's message (--msg-id) or one that does not exist, asked for by
 * a key that is no recipient of it. */
static void attack_not_recipient(fetch_attacker *fa, int a, uint32_t i) {
    pst_fetch_request req;
    uint8_t id[PST_HASH_BYTES];
    fresh_key(fa, a, i);
    if (fa->o->have_msg_id && i % 4 != 3)
        memcpy(id, fa->o->msg_id, sizeof id);
    else
        derive(fa, a, i, "msgid", id, sizeof id);
    uint8_t nonce[PST_NONCE_BYTES];
    randombytes_buf(nonce, sizeof nonce);
    if (pst_fetch_request_make(&req, id, i % 2 ? 0 : 1000u * i, (uint64_t)time(NULL), nonce,
                               fa->sk) != PST_OK) {
        fa->res[a].failed++;
        return;
    }
    send_request(fa, &fa->res[a], &req, false);
}

/* Requests that fail verification: signature, time window, lifetime. */
static void attack_bad_request(fetch_attacker *fa, int a, uint32_t i) {
    pst_fetch_request req;
    uint8_t id[PST_HASH_BYTES];
    uint64_t now = (uint64_t)time(NULL);
    uint8_t nonce[PST_NONCE_BYTES];
    fresh_key(fa, a, i);
    if (fa->o->have_msg_id)
        memcpy(id, fa->o->msg_id, sizeof id);
    else
        derive(fa, a, i, "msgid", id, sizeof id);
    randombytes_buf(nonce, sizeof nonce);
    if (pst_fetch_request_make(&req, id, 0, now, nonce, fa->sk) != PST_OK) {
        fa->res[a].failed++;
        return;
    }
    bool sign = true;
    switch (i % 4) {
    case 0: /* one bit of the signature */
        req.sig[i % PST_SIG_BYTES] ^= 1;
        sign = false;
        break;
    case 1: /* long expired */
        req.created = now - 3 * PST_FETCH_SKEW_DEFAULT;
        req.expires = req.created + 60;
        break;
    case 2: /* from the future */
        req.created = now + 3 * PST_FETCH_SKEW_DEFAULT;
        req.expires = req.created + 60;
        break;
    default: /* a lifetime over PST_FETCH_LIFETIME_MAX */
        req.expires = req.created + PST_FETCH_LIFETIME_MAX + 100;
        break;
    }
    send_request(fa, &fa->res[a], &req, sign);
}

/* Frames of random bytes; some start like a FetchRequest or a Receipt. */
static void attack_garbage(fetch_attacker *fa, int a, uint32_t i) {
    uint8_t buf[PST_FRAME_MAX], n4[4];
    derive(fa, a, i, "len", n4, sizeof n4);
    size_t len = i % 3 == 0 ? 1u + (size_t)n4[0] % 32u
                            : 1u + ((size_t)n4[0] | (size_t)n4[1] << 8) % PST_FRAME_MAX;
    derive(fa, a, i, "bytes", buf, len);
    if (i % 3 == 1 && len >= 3) {
        buf[0] = 0x99;
        buf[1] = PST_PROTO_VERSION;
        buf[2] = i % 2 ? PST_REC_FETCH_REQUEST : PST_REC_RECEIPT;
    }
    exchange(fa, &fa->res[a], buf, len, false);
}

/* A length prefix beyond PST_FRAME_MAX (or 0), then a few bytes. */
static void attack_oversized(fetch_attacker *fa, int a, uint32_t i) {
    static const uint32_t lens[] = {0u, PST_FRAME_MAX + 1u, 0x7fffffffu, 0xffffffffu, 1u << 20};
    uint8_t raw[PST_FRAME_HEADER_BYTES + 16];
    pst_frame_header_write(lens[i % 5], raw);
    derive(fa, a, i, "tail", raw + PST_FRAME_HEADER_BYTES, 16);
    exchange(fa, &fa->res[a], raw, sizeof raw, true);
}

/* Receipts nobody asked for: from a key that is no recipient, for another
 * sender, or with a broken signature. */
static void attack_receipt(fetch_attacker *fa, int a, uint32_t i) {
    pst_receipt rec;
    uint8_t buf[PST_RECEIPT_MAX];
    size_t len = 0;
    uint64_t now = (uint64_t)time(NULL);
    fresh_key(fa, a, i);
    memset(&rec, 0, sizeof rec);
    rec.created = now;
    rec.stored_at = now - 1;
    if (fa->o->have_msg_id)
        memcpy(rec.msg_id, fa->o->msg_id, sizeof rec.msg_id);
    else
        derive(fa, a, i, "msgid", rec.msg_id, sizeof rec.msg_id);
    if (fa->o->have_server && i % 3 != 1)
        memcpy(rec.sender, fa->o->server_pk, sizeof rec.sender);
    else
        derive(fa, a, i, "sender", rec.sender, sizeof rec.sender);
    if (pst_receipt_sign(&rec, fa->sk) != PST_OK) {
        fa->res[a].failed++;
        return;
    }
    if (i % 3 == 2)
        rec.sig[0] ^= 0x80;
    if (pst_receipt_encode(&rec, buf, sizeof buf, &len) != PST_OK) {
        fa->res[a].failed++;
        return;
    }
    exchange(fa, &fa->res[a], buf, len, false);
}

/* ---- hints -------------------------------------------------------------------- */

/* A Hint frame (length prefix included) for recipient around notification
 * bytes n (0..PST_NOTIFY_MAX + 1: the wrapper is written by hand, so an
 * oversize one can be built). Returns the frame's length. */
static size_t hint_frame(const uint8_t recipient[PST_SIGN_PK_BYTES], const uint8_t *n, size_t len,
                         uint8_t *out) {
    uint8_t *p = out + PST_FRAME_HEADER_BYTES;
    size_t k = 0;
    p[k++] = 0x94;
    p[k++] = PST_PROTO_VERSION;
    p[k++] = PST_REC_HINT;
    p[k++] = 0xc4;
    p[k++] = PST_SIGN_PK_BYTES;
    memcpy(p + k, recipient, PST_SIGN_PK_BYTES);
    k += PST_SIGN_PK_BYTES;
    if (len < 256) { /* the shortest header, as the node's decoder wants it */
        p[k++] = 0xc4;
    } else {
        p[k++] = 0xc5;
        p[k++] = (uint8_t)(len >> 8);
    }
    p[k++] = (uint8_t)len;
    memcpy(p + k, n, len);
    k += len;
    pst_frame_header_write((uint32_t)k, out);
    return k + PST_FRAME_HEADER_BYTES;
}

/* Junk shaped like a type-5 notification (its seal opens for nobody):
 * the node pays what a junk value of its inbox slot costs. */
static size_t junk_notification(fetch_attacker *fa, int a, uint32_t i, uint8_t *out) {
    size_t sealed = 200;
    out[0] = 0x94;
    out[1] = PST_PROTO_VERSION;
    out[2] = PST_REC_NOTIFICATION;
    out[3] = 0xc4;
    out[4] = (uint8_t)sealed;
    derive(fa, a, i, "junk", out + 5, sealed);
    out[5 + sealed] = 0xa0; /* stamp "" */
    return 6 + sealed;
}

/* Sends bytes, then closes our side and waits for the node to close (or
 * answer first: a refusal). */
static void send_and_close(fetch_attacker *fa, attack_result *r, const uint8_t *p, size_t n) {
    int fd = dial(fa, false);
    if (fd < 0) {
        r->failed++;
        return;
    }
    r->sent++;
    if (!send_all(fd, p, n)) {
        r->failed++;
        close(fd);
        return;
    }
    shutdown(fd, SHUT_WR);
    read_answer(fd, r);
    close(fd);
}

/* One Hint per connection, by i % 5: garbage that starts like a Hint
 * (bad_request), another identity (not_found), a notification over
 * PST_NOTIFY_MAX (bad_request), junk for the target (no answer: the inbox
 * refuses it), the same junk again (no answer: seen). */
static void attack_hint(fetch_attacker *fa, int a, uint32_t i) {
    static uint8_t frame[PST_FRAME_HEADER_BYTES + PST_HINT_MAX + 16];
    static uint8_t junk[PST_NOTIFY_MAX + 1];
    static size_t junk_len;
    uint8_t who[PST_SIGN_PK_BYTES];
    if (fa->o->have_server)
        memcpy(who, fa->o->server_pk, sizeof who);
    else
        derive(fa, a, i, "who", who, sizeof who);
    size_t len;
    switch (i % 5) {
    case 0: {
        uint8_t n4[1];
        derive(fa, a, i, "len", n4, 1);
        len = 3u + n4[0] % 64u;
        derive(fa, a, i, "bytes", frame + PST_FRAME_HEADER_BYTES, len);
        frame[PST_FRAME_HEADER_BYTES] = 0x94;
        frame[PST_FRAME_HEADER_BYTES + 1] = PST_PROTO_VERSION;
        frame[PST_FRAME_HEADER_BYTES + 2] = PST_REC_HINT;
        pst_frame_header_write((uint32_t)len, frame);
        len += PST_FRAME_HEADER_BYTES;
        break;
    }
    case 1:
        derive(fa, a, i, "other", who, sizeof who);
        junk_len = junk_notification(fa, a, i, junk);
        len = hint_frame(who, junk, junk_len, frame);
        break;
    case 2:
        derive(fa, a, i, "big", junk, PST_NOTIFY_MAX + 1);
        len = hint_frame(who, junk, PST_NOTIFY_MAX + 1, frame);
        break;
    case 3:
        junk_len = junk_notification(fa, a, i, junk);
        len = hint_frame(who, junk, junk_len, frame);
        break;
    default: /* a replay of case 3 */
        len = hint_frame(who, junk, junk_len, frame);
        break;
    }
    send_and_close(fa, &fa->res[a], frame, len);
}

/* --count x HINT_FLOOD_PER_COUNT Hints of junk for the target, back to
 * back on one connection: past its rate per address the node drops them
 * unread (rejected.hint.rate). */
static void attack_hint_flood(fetch_attacker *fa, int a) {
    attack_result *r = &fa->res[a];
    uint32_t total = fa->o->count * HINT_FLOOD_PER_COUNT;
    size_t per = PST_FRAME_HEADER_BYTES + 64u + 206u;
    uint8_t *buf = malloc((size_t)total * per);
    if (buf == NULL) {
        r->failed++;
        return;
    }
    uint8_t who[PST_SIGN_PK_BYTES], junk[PST_NOTIFY_MAX];
    if (fa->o->have_server)
        memcpy(who, fa->o->server_pk, sizeof who);
    else
        derive(fa, a, 0, "who", who, sizeof who);
    size_t off = 0;
    for (uint32_t i = 0; i < total; i++) {
        size_t jl = junk_notification(fa, a, i, junk);
        off += hint_frame(who, junk, jl, buf + off);
    }
    send_and_close(fa, r, buf, off);
    r->sent = total;
    free(buf);
}

/* Holds conns connections, each announcing a whole frame and then
 * dripping one byte every DRIP_MS; records when the node drops each. */
static void attack_slowloris(fetch_attacker *fa, int a) {
    attack_result *r = &fa->res[a];
    uint32_t n = fa->o->conns;
    struct pollfd *p = calloc(n, sizeof *p);
    uint64_t *opened = calloc(n, sizeof *opened);
    if (p == NULL || opened == NULL) {
        free(p);
        free(opened);
        r->failed++;
        return;
    }
    bool *refused = calloc(n, sizeof *refused);
    if (refused == NULL) {
        free(p);
        free(opened);
        r->failed++;
        return;
    }
    uint8_t hdr[PST_FRAME_HEADER_BYTES];
    pst_frame_header_write(PST_FRAME_MAX, hdr);
    uint32_t open_now = 0;
    for (uint32_t k = 0; k < n; k++) {
        p[k].fd = dial(fa, false);
        p[k].events = POLLIN;
        opened[k] = mono_ms();
        if (p[k].fd < 0 || !send_all(p[k].fd, hdr, sizeof hdr)) {
            r->failed++;
            if (p[k].fd >= 0)
                close(p[k].fd);
            p[k].fd = -1;
            continue;
        }
        r->conns++;
        open_now++;
    }
    uint64_t next_drip = mono_ms() + DRIP_MS;
    while (open_now > 0 && !out_of_time(fa)) {
        int wait = (int)(next_drip > mono_ms() ? next_drip - mono_ms() : 0);
        int rc = poll(p, n, wait);
        uint64_t now = mono_ms();
        for (uint32_t k = 0; rc > 0 && k < n; k++) {
            if (p[k].fd < 0 || p[k].revents == 0)
                continue;
            uint8_t junk[512];
            ssize_t got = recv(p[k].fd, junk, sizeof junk, MSG_DONTWAIT);
            if (got > 0) { /* a refusal frame (busy): the close follows */
                if (!refused[k])
                    r->busy++;
                refused[k] = true;
                continue;
            }
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            close(p[k].fd);
            p[k].fd = -1;
            open_now--;
            if (refused[k])
                continue;
            uint64_t took = now - opened[k];
            r->dropped++;
            if (r->min_drop_ms == 0 || took < r->min_drop_ms)
                r->min_drop_ms = took;
            if (took > r->max_drop_ms)
                r->max_drop_ms = took;
        }
        if (now >= next_drip) {
            for (uint32_t k = 0; k < n; k++) {
                uint8_t b = 'x';
                if (p[k].fd >= 0)
                    (void)send(p[k].fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            next_drip = now + DRIP_MS;
        }
    }
    r->held = open_now;
    for (uint32_t k = 0; k < n; k++)
        if (p[k].fd >= 0)
            close(p[k].fd);
    free(p);
    free(opened);
    free(refused);
}

/* Opens conns connections at once and sends nothing: the node answers
 * `busy` beyond its per-address cap and closes beyond its hard cap. */
static void attack_flood(fetch_attacker *fa, int a) {
    attack_result *r = &fa->res[a];
    uint32_t n = fa->o->conns;
    struct pollfd *p = calloc(n, sizeof *p);
    bool *answered = calloc(n, sizeof *answered);
    if (p == NULL || answered == NULL) {
        free(p);
        free(answered);
        r->failed++;
        return;
    }
    for (uint32_t k = 0; k < n; k++) {
        p[k].fd = dial(fa, true);
        p[k].events = POLLIN;
        if (p[k].fd < 0)
            r->failed++;
        else
            r->conns++;
    }
    uint64_t until = mono_ms() + FLOOD_SETTLE_MS;
    while (mono_ms() < until && !out_of_time(fa)) {
        int rc = poll(p, n, (int)(until - mono_ms()));
        for (uint32_t k = 0; rc > 0 && k < n; k++) {
            if (p[k].fd < 0 || p[k].revents == 0)
                continue;
            uint8_t buf[PST_FRAME_HEADER_BYTES + PST_FETCH_RESPONSE_MAX];
            ssize_t got = recv(p[k].fd, buf, sizeof buf, MSG_DONTWAIT);
            if (got > 0) {
                pst_fetch_response resp;
                uint32_t len;
                if (!answered[k] && got >= (ssize_t)PST_FRAME_HEADER_BYTES &&
                    pst_frame_header_parse(buf, PST_FRAME_MAX, &len) == PST_OK &&
                    (size_t)got >= PST_FRAME_HEADER_BYTES + len &&
                    pst_fetch_response_decode(buf + PST_FRAME_HEADER_BYTES, len, &resp) == PST_OK &&
                    resp.status == PST_FETCH_BUSY)
                    r->busy++;
                answered[k] = true;
                continue;
            }
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            if (!answered[k])
                r->silent++;
            close(p[k].fd);
            p[k].fd = -1;
        }
    }
    for (uint32_t k = 0; k < n; k++)
        if (p[k].fd >= 0) {
            if (!answered[k])
                r->held++;
            close(p[k].fd);
        }
    free(p);
    free(answered);
}

/* ---- run and report ------------------------------------------------------------- */

static void print_json(const fetch_attacker *fa, FILE *o, uint64_t elapsed) {
    const pst_hostile_fetch_opts *op = fa->o;
    fprintf(o,
            "{\"mode\":\"fetch\",\"target\":\"%s:%u\",\"source\":\"%s\",\"count\":%u,"
            "\"conns\":%u,\"elapsed_ms\":%llu,\"timed_out\":%s,\"attacks\":{",
            op->host, op->port, op->source[0] ? op->source : "", op->count, op->conns,
            (unsigned long long)elapsed, out_of_time(fa) ? "true" : "false");
    bool first = true;
    for (int a = 0; a < PST_HF_COUNT; a++) {
        if (!op->attacks[a])
            continue;
        const attack_result *r = &fa->res[a];
        fprintf(o, "%s\"%s\":{", first ? "" : ",", attack_names[a]);
        first = false;
        if (a == PST_HF_SLOWLORIS) {
            fprintf(o,
                    "\"conns\":%u,\"dropped\":%u,\"busy\":%u,\"held\":%u,\"failed\":%u,"
                    "\"min_drop_ms\":%llu,\"max_drop_ms\":%llu}",
                    r->conns, r->dropped, r->busy, r->held, r->failed,
                    (unsigned long long)r->min_drop_ms, (unsigned long long)r->max_drop_ms);
            continue;
        }
        if (a == PST_HF_FLOOD) {
            fprintf(o, "\"conns\":%u,\"busy\":%u,\"silent_close\":%u,\"held\":%u,\"failed\":%u}",
                    r->conns, r->busy, r->silent, r->held, r->failed);
            continue;
        }
        fprintf(o, "\"sent\":%u,\"answered\":%u,\"closed\":%u,\"failed\":%u,\"status\":{", r->sent,
                r->answered, r->closed, r->failed);
        bool sf = true;
        for (unsigned s = 0; s <= PST_FETCH_STATUS_LAST + 1; s++) {
            if (r->status[s] == 0)
                continue;
            fprintf(o, "%s\"%s\":%u", sf ? "" : ",",
                    s <= PST_FETCH_STATUS_LAST ? pst_fetch_status_name(s) : "undecodable",
                    r->status[s]);
            sf = false;
        }
        fprintf(o, "}}");
    }
    fprintf(o, "}}\n");
}

int pst_hostile_fetch_run(const pst_hostile_fetch_opts *o) {
    static fetch_attacker fa;
    memset(&fa, 0, sizeof fa);
    fa.o = o;
    memcpy(fa.seed, o->seed, sizeof fa.seed);
    fa.dst.sin_family = AF_INET;
    fa.dst.sin_port = htons(o->port);
    if (inet_pton(AF_INET, o->host, &fa.dst.sin_addr) != 1) {
        fprintf(stderr, "postern-hostile: --fetch host must be an IPv4 address\n");
        return 1;
    }
    if (o->source[0]) {
        fa.src.sin_family = AF_INET;
        if (inet_pton(AF_INET, o->source, &fa.src.sin_addr) != 1) {
            fprintf(stderr, "postern-hostile: --source must be an IPv4 address\n");
            return 1;
        }
        fa.have_src = true;
    }
    uint64_t start = mono_ms();
    fa.deadline_ms = start + (uint64_t)o->max_seconds * 1000u;
    int probe = dial(&fa, false);
    if (probe < 0) {
        fprintf(stderr, "postern-hostile: cannot connect to %s:%u: %s\n", o->host, o->port,
                strerror(errno));
        return 1;
    }
    close(probe);
    for (int a = 0; a < PST_HF_COUNT && !out_of_time(&fa); a++) {
        if (!o->attacks[a])
            continue;
        if (a == PST_HF_SLOWLORIS) {
            attack_slowloris(&fa, a);
            continue;
        }
        if (a == PST_HF_FLOOD) {
            attack_flood(&fa, a);
            continue;
        }
        if (a == PST_HF_HINT_FLOOD) {
            attack_hint_flood(&fa, a);
            continue;
        }
        for (uint32_t i = 0; i < o->count && !out_of_time(&fa); i++) {
            switch (a) {
            case PST_HF_NOT_RECIPIENT:
                attack_not_recipient(&fa, a, i);
                break;
            case PST_HF_BAD_REQUEST:
                attack_bad_request(&fa, a, i);
                break;
            case PST_HF_GARBAGE:
                attack_garbage(&fa, a, i);
                break;
            case PST_HF_OVERSIZED:
                attack_oversized(&fa, a, i);
                break;
            case PST_HF_HINT:
                attack_hint(&fa, a, i);
                break;
            default:
                attack_receipt(&fa, a, i);
                break;
            }
        }
    }
    bool timed_out = out_of_time(&fa);
    if (o->json) {
        print_json(&fa, stdout, mono_ms() - start);
    } else {
        for (int a = 0; a < PST_HF_COUNT; a++)
            if (o->attacks[a])
                printf("%-14s sent %u answered %u closed %u failed %u\n", attack_names[a],
                       fa.res[a].sent + fa.res[a].conns, fa.res[a].answered + fa.res[a].busy,
                       fa.res[a].closed + fa.res[a].dropped + fa.res[a].silent, fa.res[a].failed);
    }
    fflush(stdout);
    sodium_memzero(fa.sk, sizeof fa.sk);
    return timed_out ? 1 : 0;
}
