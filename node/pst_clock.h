/* What the peers' signed times say about this node's clock.
 *
 * Every record carries its signer's `created`; the exchanges a node makes
 * anyway hand it signed times of other nodes' clocks. Each such time is a
 * sample of (peer's clock - ours), in seconds:
 *   - EXACT: signed within the exchange we are in (a FetchRequest we serve,
 *     a FetchResponse we read, a Receipt): the peer's clock read that value
 *     a round trip ago at most.
 *   - AT_LEAST: signed some time before we saw it (a key record or a
 *     notification out of the DHT): the peer's clock is at least there now.
 * Per peer the samples of the last PST_CLOCK_SAMPLE_TTL_S narrow an interval
 * [lo, hi]. The verdict about our own clock comes from a majority: with n
 * peers (n >= PST_CLOCK_PEERS_MIN) it takes the bound that more than half of
 * them pass, so one lying peer (or n/2 - 1 of them) cannot move it beyond
 * what honest peers say. Only samples of peers the node chose to talk to
 * count for that verdict ("chosen": keys it looked up by fingerprint or
 * contacts, senders it fetches from, recipients that fetch from it); a
 * notification anyone can put is kept for the per-peer report and its log
 * line only, and never evicts a chosen peer.
 *
 * Pure: no I/O, no clock of its own. `now` is the wall clock (unix seconds)
 * and `mono` a monotonic clock (seconds): when the two drift apart by more
 * than the tolerance, this node's clock was set, and every sample taken
 * against the old setting is forgotten. */
#ifndef PST_CLOCK_H
#define PST_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Beyond this a clock is "off": the fetch exchange refuses requests and
 * responses whose created is further away (PST_FETCH_SKEW_DEFAULT). */
#define PST_CLOCK_TOLERANCE_S 300
#define PST_CLOCK_PEERS_MAX 64u       /* peers remembered; the oldest goes first */
#define PST_CLOCK_PEERS_MIN 3u        /* distinct chosen peers for a verdict */
#define PST_CLOCK_SAMPLE_TTL_S 86400u /* samples older than a day are forgotten */
#define PST_CLOCK_LOG_INTERVAL_S 600u /* one log line per peer per interval */
#define PST_CLOCK_SPAN_BUFSIZE 32u

typedef enum { PST_CLOCK_EXACT = 0, PST_CLOCK_AT_LEAST = 1 } pst_clock_kind;

typedef struct {
    uint8_t peer[32];
    bool used;
    bool chosen;
    int64_t lo, hi;     /* peer - ours, seconds; hi == INT64_MAX: no upper bound */
    uint64_t at;        /* our wall clock at the newest sample */
    uint64_t refused;   /* values of this peer refused for their time */
    uint64_t unlogged;  /* of those, not yet in a log line */
    uint64_t logged_at; /* 0: never */
} pst_clock_peer;

typedef struct {
    pst_clock_peer peers[PST_CLOCK_PEERS_MAX];
    int64_t base; /* wall - mono when the kept samples were taken */
    bool have_base;
    uint64_t resets; /* times this node's clock was seen being set */
} pst_clock;

typedef enum {
    PST_CLOCK_UNKNOWN = 0, /* too few chosen peers, or their bounds are too loose */
    PST_CLOCK_OK = 1,      /* a majority puts us within the tolerance */
    PST_CLOCK_AHEAD = 2,   /* a majority puts us more than the tolerance ahead */
    PST_CLOCK_BEHIND = 3,  /* ... behind */
} pst_clock_state;

typedef struct {
    pst_clock_state state;
    unsigned peers;    /* chosen peers with a current sample */
    unsigned disagree; /* peers (chosen or not) whose interval lies beyond the tolerance */
    int64_t lo, hi;    /* majority bounds of (peers - ours); meaningful when peers >= MIN */
    uint64_t offset_s; /* AHEAD/BEHIND: by at least this much */
} pst_clock_report;

/* Empties c (zeroed memory is an empty estimator too). */
void pst_clock_init(pst_clock *c);

/* Records that peer's clock read peer_time when ours read now. Samples whose
 * time is further from now than a year are ignored (a broken signer, not a
 * clock). Returns true when this peer's interval now lies beyond the
 * tolerance. */
bool pst_clock_sample(pst_clock *c, const uint8_t peer[32], uint64_t peer_time, pst_clock_kind kind,
                      bool chosen, uint64_t now, uint64_t mono);

/* Counts one value of peer refused for its time (after pst_clock_sample).
 * Returns true when a log line is due: the first refusal, then at most one
 * per PST_CLOCK_LOG_INTERVAL_S; *count then holds the refusals that line
 * covers (since the previous line). */
bool pst_clock_refused(pst_clock *c, const uint8_t peer[32], uint64_t now, uint64_t mono,
                       uint64_t *count);

/* The verdict at now (expired samples do not count). */
void pst_clock_report_get(const pst_clock *c, uint64_t now, pst_clock_report *out);

/* The i-th remembered peer with a current sample, or NULL past the end. */
const pst_clock_peer *pst_clock_peer_at(const pst_clock *c, unsigned i, uint64_t now);

/* Whether p's interval lies beyond the tolerance: > 0 its clock is ahead of
 * ours by at least *by, < 0 behind by at least *by, 0 it agrees or is unknown. */
int pst_clock_peer_disagrees(const pst_clock_peer *p, uint64_t *by);

/* "3d 0h", "2h 5m", "4m 10s", "12s" into buf, rounded to the last unit. */
void pst_clock_span(uint64_t s, char buf[PST_CLOCK_SPAN_BUFSIZE]);

/* "ok", "ahead", "behind", "unknown". */
const char *pst_clock_state_name(pst_clock_state s);

#endif
