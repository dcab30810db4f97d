/* postern-hostile against devices (issue 13): bad device lists for the
 * target's devices slot, and a pairing client that tries used, expired and
 * guessed codes. Each value aims at one check of keys/devices.c (signer,
 * seq rule, record type, the cap of 8), each request at one of
 * keys/pairing.c (unknown, used, expired code). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostile.h"
#include "pst_device.h"
#include "pst_pairing.h"
#include "pst_peerargs.h"

/* A plausible device: keys from (seed, i, k), a short name. */
static void device_of(const pst_hostile_gen *g, uint32_t i, unsigned k, pst_device *d) {
    uint8_t in[40];
    memset(d, 0, sizeof *d);
    memcpy(in, g->seed, 32);
    memcpy(in + 32, &i, 4);
    memcpy(in + 36, &k, 4);
    crypto_generichash(d->sign_pk, 32, in, sizeof in, (const uint8_t *)"dev-sign", 8);
    crypto_generichash(d->box_pk, 32, in, sizeof in, (const uint8_t *)"dev-box", 7);
    snprintf(d->name, sizeof d->name, "d%u", k);
    d->created = g->now - 60;
}

static size_t list_bytes(const pst_hostile_gen *g, uint32_t i, unsigned n, uint64_t seq,
                         const uint8_t *sk, uint8_t *out) {
    pst_devlist l;
    size_t len = 0;
    memset(&l, 0, sizeof l);
    l.created = g->now - 60;
    l.seq = seq;
    for (unsigned k = 0; k < n; k++)
        device_of(g, i, k, &l.devices[k]);
    l.n_devices = n;
    if (pst_devlist_sign(&l, sk) != PST_OK ||
        pst_devlist_encode(&l, out, PST_DHT_VALUE_MAX, &len) != PST_OK)
        return 0;
    return len;
}

/* Nine devices: the encoding of eight with a ninth spliced into the
 * array; refused by the decoder before any signature is looked at. */
static size_t overcap(const pst_hostile_gen *g, uint32_t i, uint8_t *out) {
    uint8_t seven[PST_DHT_VALUE_MAX], eight[PST_DHT_VALUE_MAX];
    const uint8_t *sk = g->fresh_sk[i % PST_HOSTILE_FRESH_KEYS];
    size_t n7 = list_bytes(g, i, 7, 1, sk, seven), n8 = list_bytes(g, i, 8, 1, sk, eight);
    /* [fixarray 9, 1, 14, created (uint32), 0, signer (bin 32), seq 1, devices] */
    const size_t at = 1 + 1 + 1 + 5 + 1 + 34 + 1;
    size_t one = n8 - n7;
    if (n7 == 0 || n8 == 0 || eight[at] != 0x98 || n8 + one > PST_DHT_VALUE_MAX)
        return 0;
    memcpy(out, eight, at);
    out[at] = 0x99;
    memcpy(out + at + 1, eight + at + 1, one);
    out[at + 1 + 5] ^= 0x5a; /* another signing key */
    memcpy(out + at + 1 + one, eight + at + 1, n8 - at - 1);
    return n8 + one;
}

size_t pst_hostile_make_device(const pst_hostile_gen *g, int c, uint32_t i,
                               uint8_t out[PST_DHT_VALUE_MAX]) {
    const uint8_t *fresh = g->fresh_sk[i % PST_HOSTILE_FRESH_KEYS];
    switch (c) {
    case PST_HC_DEV_FORGED: { /* tempting: a high seq, but the wrong signer */
        pst_devlist l;
        size_t len = list_bytes(g, i, 2, 1000000u + i, fresh, out);
        /* the signer field says "the target": the signature then fails,
         * or (i odd) it stays the forger's key: a valid list of another */
        if (len != 0 && i % 2 == 0 && pst_devlist_decode(out, len, &l) == PST_OK) {
            memcpy(l.signer, g->target, PST_SIGN_PK_BYTES);
            if (pst_devlist_encode(&l, out, PST_DHT_VALUE_MAX, &len) != PST_OK)
                return 0;
        }
        return len;
    }
    case PST_HC_DEV_REPLAY:
        return g->id ? list_bytes(g, i, 1 + i % 3, 0, g->id->sign_sk, out) : 0;
    case PST_HC_DEV_CERT: {
        pst_devcert cert;
        pst_device d;
        size_t len = 0;
        device_of(g, i, 0, &d);
        if (pst_devcert_build(&cert, &d, g->now - 60, fresh) != PST_OK ||
            pst_devcert_encode(&cert, out, PST_DHT_VALUE_MAX, &len) != PST_OK)
            return 0;
        return len;
    }
    case PST_HC_DEV_OVERCAP:
        return overcap(g, i, out);
    default:
        return 0;
    }
}

/* ---- --pair ---------------------------------------------------------------- */

/* One request; the status the node answered, or -1 when it did not. */
static int pair_once(const pst_pair_code *code, const uint8_t seed[32], uint32_t n) {
    pst_pair_keys k;
    pst_pair_request req;
    uint8_t frame[4 + PST_PAIR_REQUEST_MAX], nonce[PST_PAIR_NONCE_BYTES], rep[256];
    size_t len = 0;
    if (pst_pair_derive(code, &k) != PST_OK)
        return -1;
    memset(&req, 0, sizeof req);
    crypto_generichash(req.sign_pk, 32, (const uint8_t *)&n, sizeof n, seed, 32);
    memcpy(req.box_pk, req.sign_pk, 32);
    memcpy(nonce, req.sign_pk, sizeof nonce);
    if (pst_pair_request_seal(&k, &req, nonce, frame + 4, sizeof frame - 4, &len) != PST_OK)
        return -1;
    pst_pair_frame_header(len, frame);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    memcpy(&sa.sin_addr.s_addr, code->ipv4, 4);
    sa.sin_port = htons(code->port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {5, 0};
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int status = -1;
    size_t got = 0, want = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        send(fd, frame, 4 + len, MSG_NOSIGNAL) == (ssize_t)(4 + len)) {
        ssize_t r;
        while (got < sizeof rep && (r = recv(fd, rep + got, sizeof rep - got, 0)) > 0)
            got += (size_t)r;
        static pst_pair_reply out; /* large; a refusal fills nothing in */
        pst_pair_status st;
        if (got >= 4 && pst_pair_frame_len(rep, sizeof rep - 4, &want) == PST_OK &&
            got == 4 + want && pst_pair_reply_open(&k, rep + 4, want, &st, &out) == PST_OK)
            status = (int)st;
    }
    close(fd);
    return status;
}

int pst_hostile_pair_run(const char *code_text, uint32_t count, const uint8_t seed[32], bool json) {
    pst_pair_code code;
    char host[INET_ADDRSTRLEN];
    if (pst_pair_code_parse(code_text, &code) != PST_OK) {
        fprintf(stderr, "postern-hostile: --pair: not a pairing code\n");
        return 64;
    }
    inet_ntop(AF_INET, code.ipv4, host, sizeof host);
    if (!pst_peer_host_is_loopback(host)) {
        fprintf(stderr, "postern-hostile: --pair: %s is not a loopback address\n", host);
        return 64;
    }
    uint64_t by[PST_PAIR_STATUS_MAX + 2] = {0}; /* [status], [last]: no answer */
    for (uint32_t n = 0; n < 2 * count; n++) {
        pst_pair_code c = code;
        if (n % 2 == 1) { /* a guess: another secret for the same address */
            crypto_generichash(c.secret, sizeof c.secret, (const uint8_t *)&n, sizeof n, seed, 32);
        }
        int st = pair_once(&c, seed, n);
        by[st < 0 ? PST_PAIR_STATUS_MAX + 1 : (unsigned)st]++;
    }
    uint64_t accepted = by[PST_PAIR_OK];
    if (json)
        printf("{\"pairing\":{\"sent\":%llu,\"accepted\":%llu,\"unknown\":%llu,\"used\":%llu,"
               "\"expired\":%llu,\"full\":%llu,\"failed\":%llu,\"no_answer\":%llu}}\n",
               (unsigned long long)(2 * count), (unsigned long long)accepted,
               (unsigned long long)by[PST_PAIR_UNKNOWN], (unsigned long long)by[PST_PAIR_USED],
               (unsigned long long)by[PST_PAIR_EXPIRED], (unsigned long long)by[PST_PAIR_FULL],
               (unsigned long long)by[PST_PAIR_FAILED],
               (unsigned long long)by[PST_PAIR_STATUS_MAX + 1]);
    else
        printf("pairing: %u sent, %llu accepted, %llu unknown, %llu used, %llu expired, %llu "
               "no answer\n",
               2 * count, (unsigned long long)accepted, (unsigned long long)by[PST_PAIR_UNKNOWN],
               (unsigned long long)by[PST_PAIR_USED], (unsigned long long)by[PST_PAIR_EXPIRED],
               (unsigned long long)by[PST_PAIR_STATUS_MAX + 1]);
    return accepted == 0 && by[PST_PAIR_STATUS_MAX + 1] == 0 ? 0 : 1;
}
