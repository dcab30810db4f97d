/* postern-hostile: a hostile DHT peer for integration tests.
 *
 * It joins a private test network through one loopback seed and puts bad
 * values (tools/hostile/hostile_gen.c, hostile_inbox.c) into a target's key,
 * address, vouch and inbox slots, then reports what it put as JSON. The node
 * under test must reject every value, count it, and keep serving. Two more
 * modes: --fetch attacks a node's fetch port as a client (hostile_fetch.c),
 * --fake-sender notifies the target and then serves it bad bodies
 * (hostile_sender.c). Loopback only, bounded in time, deterministic given
 * --seed-random and --now (except the sealing in --fake-sender and the
 * replayed values). docs/cli/hostile.md. */
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "hostile_int.h"
#include "pst_record.h"

#define HOSTILE_INFLIGHT_MAX 256u
#define HOSTILE_TICK_MS 10u
#define HOSTILE_PING_EVERY_MS 200u
#define HOSTILE_JOIN_MS_MAX 20000u
#define HOSTILE_PUT_TIMEOUT_MS 10000u
#define HOSTILE_SEQ_GET_MS 5000u
#define HOSTILE_RENOTIFY_S 5u

/* ---- summary ------------------------------------------------------------------ */

static void print_summary(hostile *h) {
    if (h->summary_printed)
        return;
    h->summary_printed = true;
    uint8_t dg[32];
    char dhex[65];
    crypto_generichash_final(&h->digest, dg, sizeof dg);
    sodium_bin2hex(dhex, sizeof dhex, dg, sizeof dg);
    uint64_t elapsed = h->loop ? uv_now(h->loop) - h->started_ms : 0;
    uint64_t tot[4] = {0}, slot_tot[PST_HS_COUNT][3];
    memset(slot_tot, 0, sizeof slot_tot);
    FILE *o = stdout;
    if (h->json) {
        fprintf(o,
                "{\"target\":\"%s\",\"network\":%" PRIu32 ",\"count\":%" PRIu32 ",\"now\":%" PRIu64
                ",\"current_seq\":%" PRIu64
                ",\"identity\":%s,\"dry_run\":%s,\"timed_out\":%s,\"elapsed_ms\":%" PRIu64
                ",\"classes\":{",
                h->target_fp, h->network, h->count, h->gen.now, h->gen.current_seq,
                h->id ? "true" : "false", h->dry_run ? "true" : "false",
                h->timed_out ? "true" : "false", elapsed);
    } else {
        fprintf(o, "target %s, %" PRIu32 " per class and slot\n%-13s %6s %6s %6s %7s\n",
                h->target_fp, h->count, "class", "put", "ok", "failed", "refused");
    }
    bool first = true;
    for (int c = 0; c < PST_HC_COUNT; c++) {
        if (!h->classes[c])
            continue;
        uint64_t put = 0, ok = 0, failed = 0, refused = 0, verbatim = 0, distinct = 0;
        for (int s = 0; s < PST_HS_COUNT; s++) {
            counts *k = &h->per[c][s];
            verbatim += k->verbatim;
            distinct += k->distinct;
            slot_tot[s][2] += k->distinct;
            put += k->put;
            ok += k->put_ok;
            failed += k->put_failed;
            refused += k->refused;
            slot_tot[s][0] += k->put;
            slot_tot[s][1] += k->put_ok;
        }
        tot[0] += put, tot[1] += ok, tot[2] += failed, tot[3] += refused;
        if (!h->json) {
            fprintf(o, "%-13s %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %7" PRIu64 "\n",
                    pst_hostile_class_name(c), put, ok, failed, refused);
            continue;
        }
        fprintf(o,
                "%s\"%s\":{\"put\":%" PRIu64 ",\"put_ok\":%" PRIu64 ",\"put_failed\":%" PRIu64
                ",\"refused\":%" PRIu64 ",\"verbatim\":%" PRIu64 ",\"distinct\":%" PRIu64
                ",\"skipped\":{",
                first ? "" : ",", pst_hostile_class_name(c), put, ok, failed, refused, verbatim,
                distinct);
        first = false;
        bool sfirst = true;
        for (int s = 0; s < PST_HS_COUNT; s++) {
            const char *why = pst_hostile_skip_reason(&h->gen, c, s);
            if (why == NULL || !pst_hostile_class_fits(c, s))
                continue;
            fprintf(o, "%s\"%s\":\"%s\"", sfirst ? "" : ",", pst_hostile_slot_name(s), why);
            sfirst = false;
        }
        fprintf(o, "}}");
    }
    if (h->json) {
        fprintf(o, "},\"slots\":{");
        for (int s = 0; s < PST_HS_COUNT; s++) {
            if ((s == PST_HS_INBOX && !h->have_inbox_class) ||
                (s == PST_HS_DEVICES && slot_tot[s][0] == 0))
                continue;
            fprintf(
                o, "%s\"%s\":{\"put\":%" PRIu64 ",\"put_ok\":%" PRIu64 ",\"distinct\":%" PRIu64 "}",
                s ? "," : "", pst_hostile_slot_name(s), slot_tot[s][0], slot_tot[s][1],
                slot_tot[s][2]);
        }
        fprintf(o,
                "},\"total\":{\"put\":%" PRIu64 ",\"put_ok\":%" PRIu64 ",\"put_failed\":%" PRIu64
                ",\"refused\":%" PRIu64 "},\"values\":%" PRIu64 ",\"digest\":\"%s\"",
                tot[0], tot[1], tot[2], tot[3], h->values, dhex);
        if (h->fail_reason)
            fprintf(o, ",\"error\":\"%s\"", h->fail_reason);
        fprintf(o, "}\n");
    } else {
        fprintf(o, "%-13s %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %7" PRIu64 "\n", "total", tot[0],
                tot[1], tot[2], tot[3]);
        fprintf(o, "values %" PRIu64 ", digest %s%s%s\n", h->values, dhex,
                h->timed_out ? ", TIMED OUT" : "", h->fail_reason ? ", failed: " : "");
        if (h->fail_reason)
            fprintf(o, "%s\n", h->fail_reason);
    }
    fflush(o);
}

/* ---- value iteration ------------------------------------------------------------ */

/* Steps (i, class, slot) in the put order: every class and slot for value 0,
 * then for value 1, ... so a run cut short still covers every class. Returns
 * false when everything was produced. */
static bool next_value(hostile *h, int *c, int *s, uint32_t *i, uint8_t *val, size_t *len) {
    while (h->next_i < h->count) {
        *c = h->next_c;
        *s = h->next_s;
        *i = h->next_i;
        if (++h->next_s == PST_HS_COUNT) {
            h->next_s = 0;
            if (++h->next_c == PST_HC_COUNT) {
                h->next_c = 0;
                h->next_i++;
            }
        }
        if (!h->classes[*c])
            continue;
        *len = pst_hostile_make(&h->gen, *c, *s, *i, val);
        if (*len == 0)
            continue;
        uint8_t hdr[8];
        for (int b = 0; b < 8; b++)
            hdr[b] = (uint8_t)(*len >> (8 * b));
        crypto_generichash_update(&h->digest, hdr, sizeof hdr);
        crypto_generichash_update(&h->digest, val, *len);
        h->values++;
        return true;
    }
    return false;
}

static void dry_run(hostile *h) {
    int c, s;
    uint32_t i;
    uint8_t val[PST_DHT_VALUE_MAX];
    size_t len;
    while (next_value(h, &c, &s, &i, val, &len))
        h->per[c][s].put++;
}

/* ---- network ------------------------------------------------------------------ */

static void on_closed(pst_dht *d) {
    hostile *h = d->data;
    if (h->sender_mode && h->sender != NULL)
        pst_hostile_sender_print(h->sender, h->json, h->timed_out, uv_now(h->loop) - h->started_ms);
    else if (h->sender_mode)
        printf("%s{\"mode\":\"fake-sender\",\"error\":\"%s\"}\n", "",
               h->fail_reason ? h->fail_reason : "not started");
    else
        print_summary(h);
    uv_close((uv_handle_t *)&h->tick, NULL);
    uv_close((uv_handle_t *)&h->deadline, NULL);
    if (h->stdin_poll_open)
        uv_close((uv_handle_t *)&h->stdin_poll, NULL);
}

static void finish(hostile *h, int exit_code, const char *why) {
    if (h->finishing)
        return;
    h->finishing = true;
    h->exit_code = exit_code;
    if (why)
        h->fail_reason = why;
    uv_timer_stop(&h->tick);
    uv_timer_stop(&h->deadline);
    pst_hostile_sender_close(h->sender);
    pst_dht_close(&h->dht, on_closed);
}

static void on_stdin(uv_poll_t *p, int status, int events) {
    hostile *h = p->data;
    char buf[256];
    (void)events;
    if (status < 0 || read(0, buf, sizeof buf) <= 0) {
        uv_poll_stop(p); /* level-triggered: EOF would fire again and again */
        finish(h, 0, NULL);
    }
}

/* Every put ended: done, or (--linger) print the summary now and stay in
 * the DHT, serving the values this node stores, until stdin closes: a test
 * reads the summary, waits for the target to count every value (some may
 * be stored here only), then closes the pipe. */
static void puts_done(hostile *h) {
    if (!h->linger || h->lingering) {
        if (!h->linger)
            finish(h, 0, NULL);
        return;
    }
    h->lingering = true;
    print_summary(h);
    if (uv_poll_init(h->loop, &h->stdin_poll, 0) != 0) { /* stdin is a file: nothing to wait for */
        finish(h, 0, NULL);
        return;
    }
    h->stdin_poll.data = h;
    h->stdin_poll_open = true;
    if (uv_poll_start(&h->stdin_poll, UV_READABLE, on_stdin) != 0)
        finish(h, 0, NULL);
}

/* Whether (slot, hash) is new; adds it. A full set answers "new". */
static bool distinct_add(hostile *h, int s, const uint8_t hash[16]) {
    if (h->distinct == NULL)
        return true;
    size_t i = ((size_t)hash[0] | (size_t)hash[1] << 8 | (size_t)hash[2] << 16) % h->distinct_cap;
    for (size_t n = 0; n < h->distinct_cap; n++, i = (i + 1) % h->distinct_cap) {
        uint8_t *e = h->distinct[i];
        if (e[16] == 0) {
            memcpy(e, hash, 16);
            e[0] ^= (uint8_t)s; /* slot folded into the key */
            e[16] = 1;
            return true;
        }
        uint8_t want[16];
        memcpy(want, hash, 16);
        want[0] ^= (uint8_t)s;
        if (memcmp(e, want, 16) == 0)
            return false;
    }
    return true;
}

static void on_put(void *user, int status) {
    put_ctx *p = user;
    hostile *h = p->h;
    counts *k = &h->per[p->c][p->s];
    if (status == PST_OK) {
        k->put_ok++;
        k->verbatim += p->verbatim;
        if (!p->verbatim && distinct_add(h, p->s, p->hash))
            k->distinct++;
    } else
        k->put_failed++;
    h->inflight--;
    free(p);
    if (h->all_issued && h->inflight == 0)
        puts_done(h);
}

static void put_some(hostile *h) {
    /* pacing: at most `rate` values per second since the first put, so a
     * loopback node is not pushed into OpenDHT's per-IP rate limit */
    uint64_t allowed = 1 + h->rate * (uv_now(h->loop) - h->put_start_ms) / 1000u;
    uint64_t budget = allowed > h->issued ? allowed - h->issued : 0;
    uint64_t left_ms = h->started_ms + (uint64_t)h->max_seconds * 1000u - uv_now(h->loop);
    uint32_t timeout =
        left_ms < HOSTILE_PUT_TIMEOUT_MS ? (uint32_t)left_ms + 1 : HOSTILE_PUT_TIMEOUT_MS;
    while (budget > 0 && h->inflight < HOSTILE_INFLIGHT_MAX && !h->all_issued) {
        int c, s;
        uint32_t i;
        uint8_t val[PST_DHT_VALUE_MAX];
        size_t len;
        if (!next_value(h, &c, &s, &i, val, &len)) {
            h->all_issued = true;
            break;
        }
        budget--;
        h->issued++;
        put_ctx *p = calloc(1, sizeof *p);
        if (p == NULL) {
            finish(h, 1, "out of memory");
            return;
        }
        p->h = h;
        p->c = c;
        p->s = s;
        p->verbatim = pst_hostile_is_verbatim(&h->gen, c, i);
        crypto_generichash(p->hash, sizeof p->hash, val, len, NULL, 0);
        int rc = pst_dht_put(&h->dht, h->slots[s], val, len, false, timeout, on_put, p);
        if (rc != PST_OK) {
            h->per[c][s].refused++; /* e.g. PST_E_TOOBIG: counted, not an error */
            free(p);
            continue;
        }
        h->per[c][s].put++;
        h->inflight++;
    }
    if (h->all_issued && h->inflight == 0)
        puts_done(h);
}

/* The target's current seq (stale values need it) and its X25519 key
 * (inbox classes and the fake sender seal to it), from its key slot. */
static void on_seq_value(void *user, const uint8_t *val, size_t len) {
    hostile *h = user;
    pst_rec_type type;
    pst_keyrec kr;
    if (pst_record_peek_type(val, len, &type) != PST_OK || type != PST_REC_KEY ||
        pst_keyrec_decode(val, len, &kr) != PST_OK || memcmp(kr.signer, h->gen.target, 32) != 0 ||
        pst_keyrec_verify(&kr, (uint64_t)time(NULL)) != PST_OK)
        return;
    if (h->id != NULL && !h->seq_from_flag && kr.seq > h->gen.current_seq)
        h->gen.current_seq = kr.seq;
    if (!h->gen.have_box_pk || kr.seq > h->box_seq) {
        memcpy(h->gen.target_box_pk, kr.enc_pk, sizeof kr.enc_pk);
        h->target_pow_bits = (unsigned)kr.pow_bits;
        h->gen.target_pow_bits = h->target_pow_bits;
        h->gen.have_box_pk = true;
        h->box_seq = kr.seq;
    }
}

static void on_seq_done(void *user, int status) {
    hostile *h = user;
    (void)status; /* nothing found: stale values use seq 0, inbox classes are skipped */
    h->have_current_seq = true;
    h->lookups--;
}

/* What a replay re-puts: the inbox slot's values, verbatim. */
static void on_inbox_value(void *user, const uint8_t *val, size_t len) {
    hostile *h = user;
    uint32_t n = h->gen.n_replay;
    if (n >= PST_HOSTILE_REPLAY_MAX || n >= h->count || len == 0 ||
        (h->replay[n] = malloc(len)) == NULL)
        return;
    memcpy(h->replay[n], val, len);
    h->gen.replay_val[n] = h->replay[n];
    h->gen.replay_len[n] = len;
    h->gen.n_replay++;
}

static void on_inbox_done(void *user, int status) {
    hostile *h = user;
    (void)status;
    h->lookups--;
}

static void on_ping(void *user, int status) {
    hostile *h = user;
    h->ping_pending = false;
    if (status == PST_OK && !h->joined) {
        h->joined = true;
        bool seq = h->id != NULL && !h->have_current_seq;
        if (seq || h->have_inbox_class || h->sender_mode) {
            h->lookups++;
            if (pst_dht_get(&h->dht, h->slots[PST_HS_KEY], HOSTILE_SEQ_GET_MS, on_seq_value,
                            on_seq_done, h) != PST_OK)
                on_seq_done(h, PST_E_IO);
        }
        if (h->classes[PST_HC_INBOX_REPLAY] || h->classes[PST_HC_INBOX_STAMP_SPENT]) {
            h->lookups++;
            if (pst_dht_get(&h->dht, h->slots[PST_HS_INBOX], HOSTILE_SEQ_GET_MS, on_inbox_value,
                            on_inbox_done, h) != PST_OK)
                on_inbox_done(h, PST_E_IO);
        }
    }
}

static void sender_tick(hostile *h) {
    if (h->sender == NULL) {
        if (!h->gen.have_box_pk) {
            finish(h, 1, "the target's key record was not found in the DHT");
            return;
        }
        memcpy(h->sender_opts.target, h->gen.target, sizeof h->sender_opts.target);
        memcpy(h->sender_opts.target_box_pk, h->gen.target_box_pk, PST_BOX_PK_BYTES);
        memcpy(h->sender_opts.seed, h->gen.seed, sizeof h->sender_opts.seed);
        h->sender_opts.listen_host = h->seed_host; /* loopback, checked */
        if (!h->stamp_bits_flag) /* what `postern send --pow auto` pays a stranger */
            h->sender_opts.stamp_bits = h->target_pow_bits;
        if (h->sender_opts.renotify_ms == 0)
            h->sender_opts.renotify_ms = HOSTILE_RENOTIFY_S * 1000u;
        if (pst_hostile_sender_start(h->loop, &h->dht, &h->sender_opts, &h->sender) != PST_OK) {
            finish(h, 1, "cannot start the fake sender");
            return;
        }
    }
    pst_hostile_sender_tick(h->sender);
    if (pst_hostile_sender_done(h->sender))
        finish(h, 0, NULL);
}

static void on_tick(uv_timer_t *t) {
    hostile *h = t->data;
    if (h->finishing)
        return;
    if (!h->joined) {
        if (uv_now(h->loop) >= h->join_deadline_ms) {
            finish(h, 1, "the seed did not answer a ping");
            return;
        }
        /* one ping at a time, every HOSTILE_PING_EVERY_MS */
        if (!h->ping_pending && uv_now(h->loop) >= h->last_ping_ms + HOSTILE_PING_EVERY_MS) {
            h->ping_pending = true;
            h->last_ping_ms = uv_now(h->loop);
            if (pst_dht_ping(&h->dht, h->seed_host, h->seed_port, on_ping, h) != PST_OK)
                h->ping_pending = false;
        }
        return;
    }
    if (h->lookups > 0)
        return;
    if (h->sender_mode) {
        sender_tick(h);
        return;
    }
    if (h->put_start_ms == 0) {
        h->put_start_ms = uv_now(h->loop);
        pst_hostile_gen_find_stamps(&h->gen);
        /* inbox-device: the senders' device lists go first, so that the
         * target finds the revocations it must honour */
        for (unsigned k = 0; h->classes[PST_HC_INBOX_DEVICE] && k < PST_HOSTILE_FRESH_KEYS; k++) {
            uint8_t slot[PST_SLOT_BYTES], val[PST_DHT_VALUE_MAX];
            size_t len = pst_hostile_device_list(&h->gen, k, slot, val);
            if (len == 0 || pst_dht_put(&h->dht, slot, val, len, false, 0, NULL, NULL) != PST_OK)
                fprintf(stderr, "postern-hostile: cannot put a device list\n");
        }
    }
    put_some(h);
}

static void on_deadline(uv_timer_t *t) {
    hostile *h = t->data;
    if (h->lingering) { /* the puts are done and reported: just leave */
        finish(h, 0, NULL);
        return;
    }
    h->timed_out = true;
    finish(h, 1,
           h->sender_mode ? "--max-seconds reached before the target's node finished every mode"
                          : "--max-seconds reached before every put finished");
}

static void on_dht_log(void *user, int level, const char *msg) {
    (void)user;
    if (level <= PST_DHT_LOG_ERROR)
        fprintf(stderr, "postern-hostile: dht: %s\n", msg);
}

static int run_network(hostile *h) {
    h->loop = uv_default_loop();
    uv_update_time(h->loop);
    h->started_ms = uv_now(h->loop);
    uint64_t join_ms = (uint64_t)h->max_seconds * 1000u / 2;
    h->join_deadline_ms =
        h->started_ms + (join_ms < HOSTILE_JOIN_MS_MAX ? join_ms : HOSTILE_JOIN_MS_MAX);
    pst_dht_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.network_id = h->network;
    cfg.port = h->port;
    cfg.peer_discovery = false;
    cfg.log = on_dht_log;
    /* a replay is a copy of its own, as an attacker's node would put it */
    cfg.every_put_new_value = true;
    int rc = pst_dht_init(h->loop, &h->dht, &cfg);
    if (rc != PST_OK) {
        fprintf(stderr, "postern-hostile: cannot start a DHT node: %s\n", pst_strerror(rc));
        return 1;
    }
    h->dht.data = h;
    (void)pst_dht_bootstrap(&h->dht, h->seed_host, h->seed_port);
    uv_timer_init(h->loop, &h->tick);
    uv_timer_init(h->loop, &h->deadline);
    h->tick.data = h;
    h->deadline.data = h;
    uv_timer_start(&h->tick, on_tick, 0, HOSTILE_TICK_MS);
    uv_timer_start(&h->deadline, on_deadline, (uint64_t)h->max_seconds * 1000u, 0);
    uv_run(h->loop, UV_RUN_DEFAULT);
    uv_loop_close(h->loop);
    return h->exit_code;
}

int main(int argc, char **argv) {
    static hostile h;
    if (sodium_init() < 0) {
        fprintf(stderr, "postern-hostile: libsodium failed to initialise\n");
        return 1;
    }
    h.count = 20;
    h.rate = 400;
    h.max_seconds = 60;
    snprintf(h.seed_random, sizeof h.seed_random, "1");
    for (int c = 0; c < PST_HC_COUNT; c++)
        h.classes[c] = c < PST_HC_REVOKED;
    int rc = pst_hostile_parse_args(&h, argc, argv);
    if (rc != 0) {
        pst_identity_free(h.id);
        return rc;
    }
    for (int c = PST_HC_RECORD_COUNT; c < PST_HC_COUNT; c++)
        h.have_inbox_class |= h.classes[c] && PST_HC_IS_INBOX(c);
    if (h.pair_code != NULL) {
        uint8_t pseed[32];
        crypto_generichash(pseed, sizeof pseed, (const uint8_t *)h.seed_random,
                           strlen(h.seed_random), (const uint8_t *)"postern-hostile", 15);
        rc = pst_hostile_pair_run(h.pair_code, h.count, pseed, h.json);
        pst_identity_free(h.id);
        return rc;
    }
    if (h.fetch_mode) {
        alarm(h.max_seconds + 10);
        crypto_generichash(h.fetch.seed, sizeof h.fetch.seed, (const uint8_t *)h.seed_random,
                           strlen(h.seed_random), (const uint8_t *)"postern-hostile", 15);
        rc = pst_hostile_fetch_run(&h.fetch);
        pst_identity_free(h.id);
        return rc;
    }
    if (h.sender_mode)
        memset(h.classes, 0, sizeof h.classes); /* the fake sender puts only its own */
    /* a hard stop even if the loop hangs somewhere we do not control */
    alarm(h.max_seconds + 10);
    if (h.gen.now == 0)
        h.gen.now = (uint64_t)time(NULL);
    crypto_generichash(h.gen.seed, sizeof h.gen.seed, (const uint8_t *)h.seed_random,
                       strlen(h.seed_random), (const uint8_t *)"postern-hostile", 15);
    pst_hostile_gen_init(&h.gen);
    crypto_generichash_init(&h.digest, NULL, 0, 32);
    /* room for every value at load <= 1/2 (at most ~30 MiB at the caps) */
    size_t classes = 0;
    for (int c = 0; c < PST_HC_COUNT; c++)
        classes += h.classes[c];
    h.distinct_cap = 2 * (size_t)h.count * (classes ? classes : 1) * PST_HS_COUNT + 1;
    h.distinct = calloc(h.distinct_cap, sizeof *h.distinct);
    pst_slot_key(h.gen.target, h.slots[PST_HS_KEY]);
    pst_slot_vouch(h.gen.target, h.slots[PST_HS_VOUCH]);
    pst_slot_inbox(h.gen.target, h.slots[PST_HS_INBOX]);
    pst_slot_devices(h.gen.target, h.slots[PST_HS_DEVICES]);
    if (h.gen.address[0])
        (void)pst_slot_address(h.gen.address, h.slots[PST_HS_ADDRESS]);
    if (h.dry_run) {
        dry_run(&h);
        print_summary(&h);
        rc = 0;
    } else {
        rc = run_network(&h);
    }
    pst_hostile_gen_wipe(&h.gen);
    pst_identity_free(h.id);
    pst_hostile_sender_free(h.sender);
    for (uint32_t k = 0; k < h.gen.n_replay; k++)
        free(h.replay[k]);
    free(h.distinct);
    return rc;
}
