/* What the peers' signed times say about this node's clock.
 *
 * Every record carries its signer's `created`; the exchanges a node makes
 * anyway hand it signed times of other nodes' clocks. Each such time is a
 * sample of (peer's clock - ours), in seconds:
 *   - EXACT: signed within the exchange we are in, and not replayable into
 *     it: a FetchRequest we serve whose nonce is new (only within the fetch
 *     window), a FetchResponse that answers our request (pst_clock_classify).
 *   - AT_LEAST: signed some time before we saw it (a key record or a
 *     notification out of the DHT, a Receipt, which never expires): the
 *     peer's clock is at least there now.
 * Per peer the samples of the last PST_CLOCK_SAMPLE_TTL_S narrow an interval
 * [lo, hi]. The verdict about our own clock comes from a majority: with n
 * peers (n >= PST_CLOCK_PEERS_MIN) it takes the bound that more than half of
 * them pass, so one lying peer (or n/2 - 1 of them) cannot move it beyond
 * what honest peers say. Only "chosen" peers vote (pst_clock_classify):
 * trusted or known contacts, recipients of our own mail, keys the user
 * looked up by fingerprint (`key get`, `send`); never a blocked contact,
 * and never a time refused as too old, which a replay can forge. Other
 * samples are kept for the per-peer report and the log only, and never
 * evict a chosen peer.
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

/* Where a verified signed time came from. */
typedef enum {
    PST_CLOCK_FROM_KEYREC = 0,   /* a key record out of the DHT */
    PST_CLOCK_FROM_NOTIFY = 1,   /* a notification in our inbox slot */
    PST_CLOCK_FROM_RESPONSE = 2, /* a FetchResponse (header or acknowledgement) */
    PST_CLOCK_FROM_REQUEST = 3,  /* a FetchRequest we serve */
    PST_CLOCK_FROM_RECEIPT = 4,  /* a Receipt */
} pst_clock_source;

/* What the node knows of the signer and the value. */
typedef struct {
    bool contact;   /* trusted or known in the trust list */
    bool blocked;   /* blocked in the trust list: never votes */
    bool asked;     /* looked up by fingerprint because the user asked */
    bool recipient; /* a recipient of our own mail */
    bool refused;   /* refused for its time */
    bool fresh;     /* a FetchResponse that answers our request (msg_id and
                       offset), a FetchRequest in time whose nonce is new */
} pst_clock_origin;

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

/* Whether a verified time from src becomes a sample, and then its *kind
 * and whether it votes (*chosen). Votes: a contact, a recipient of our mail
 * or a key the user asked for, never a blocked one. Not a sample: a
 * FetchRequest or FetchResponse that is not fresh (a replay could carry
 * any old time as EXACT). A request refused for its time is kept for the
 * per-peer report, but does not vote: outside the window its nonce is not
 * remembered, so a replay looks the same. A Receipt never expires, so
 * it is only a lower bound. Outputs are zeroed when false is returned. */
bool pst_clock_classify(pst_clock_source src, const pst_clock_origin *o, pst_clock_kind *kind,
                        bool *chosen);

/* The verdict at now (expired samples do not count). mono as for
 * pst_clock_sample: once this machine's clock was set since the samples
 * were taken, they count no more (the verdict is unknown until new ones). */
void pst_clock_report_get(const pst_clock *c, uint64_t now, uint64_t mono, pst_clock_report *out);

/* The i-th remembered peer with a current sample, or NULL past the end (or
 * when this machine's clock was set since, as for pst_clock_report_get). */
const pst_clock_peer *pst_clock_peer_at(const pst_clock *c, unsigned i, uint64_t now,
                                        uint64_t mono);

/* Whether p's interval lies beyond the tolerance: > 0 its clock is ahead of
 * ours by at least *by, < 0 behind by at least *by, 0 it agrees or is unknown. */
int pst_clock_peer_disagrees(const pst_clock_peer *p, uint64_t *by);

/* "3d 0h", "2h 5m", "4m 10s", "12s" into buf, rounded to the last unit. */
void pst_clock_span(uint64_t s, char buf[PST_CLOCK_SPAN_BUFSIZE]);

/* "ok", "ahead", "behind", "unknown". */
const char *pst_clock_state_name(pst_clock_state s);

#endif
