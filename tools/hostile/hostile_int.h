/* postern-hostile: the state of one run, shared by hostile.c (the DHT
 * loop) and hostile_args.c (the command line). Not a library header. */
#ifndef PST_HOSTILE_INT_H
#define PST_HOSTILE_INT_H

#include <sodium.h>
#include <uv.h>

#include "hostile.h"
#include "pst_dht.h"

typedef struct pst_hostile_run hostile;

typedef struct {
    int c, s;
    uint64_t put, put_ok, put_failed, refused;
    uint64_t verbatim; /* of put_ok: copies of values already in the slot */
    uint64_t distinct; /* of put_ok (not verbatim): bytes not put before in this slot */
} counts;

struct pst_hostile_run {
    /* options */
    uint32_t network;
    char seed_host[PST_DHT_HOST_MAX + 1], seed_port[8];
    uint16_t port;
    uint32_t count, rate, max_seconds;
    bool classes[PST_HC_COUNT];
    bool json, dry_run, allow_remote, have_current_seq;
    bool linger; /* after the puts: print, then stay until stdin closes */
    bool lingering, summary_printed;
    uv_poll_t stdin_poll;
    bool stdin_poll_open; /* initialised: closed with the others */
    char seed_random[128];
    char target_fp[PST_FINGERPRINT_STRLEN + 1];
    bool have_inbox_class;
    /* --fetch and --fake-sender */
    bool fetch_mode, sender_mode;
    const char *pair_code; /* --pair: the pairing client (hostile_devices.c) */
    pst_hostile_fetch_opts fetch;
    pst_hostile_sender_opts sender_opts;
    pst_hostile_sender *sender;
    /* state */
    pst_hostile_gen gen;
    pst_identity *id;
    uint8_t slots[PST_HS_COUNT][PST_SLOT_BYTES];
    uv_loop_t *loop;
    pst_dht dht;
    uv_timer_t tick, deadline;
    uint64_t started_ms, join_deadline_ms, last_ping_ms, put_start_ms;
    uint64_t issued; /* values taken from the generator (put or refused) */
    bool ping_pending, joined, finishing, timed_out, failed, seq_from_flag;
    unsigned lookups; /* gets before the first put: key record, inbox slot */
    unsigned target_pow_bits;
    bool stamp_bits_flag;
    uint64_t box_seq; /* seq of the key record the X25519 key comes from */
    uint8_t *replay[PST_HOSTILE_REPLAY_MAX];
    const char *fail_reason;
    uint32_t next_i;
    int next_c, next_s;
    bool all_issued;
    uint32_t inflight;
    counts per[PST_HC_COUNT][PST_HS_COUNT];
    uint8_t (*distinct)[17]; /* set of (slot, BLAKE2b-128) of values stored; [16] = used */
    size_t distinct_cap;
    crypto_generichash_state digest;
    uint64_t values;
    int exit_code;
};

typedef struct {
    hostile *h;
    int c, s;
    bool verbatim;
    uint8_t hash[16];
} put_ctx;

/* Parses the command line into h (defaults already set). 0, an exit code
 * (64 usage, 1 a bad --identity), or exits 0 after --help. */
int pst_hostile_parse_args(hostile *h, int argc, char **argv);

#endif
