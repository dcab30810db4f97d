/* Direct hints (docs/MAIL.md, "Hints"; docs/PROTOCOL.md, "Hint"): beside
 * each DHT put of a new notification, the sender's node hands the same
 * bytes to the recipient's advertised fetch endpoints, so an online
 * recipient hears of the message without waiting for OpenDHT's listen.
 * Best effort: the DHT notification stays the durable path.
 *
 * Private to mail/: hint_client.c (the sender's side, owned by the
 * outbox), fetch_hint.c (the recipient's side, on the fetch server's
 * connections), and the inbox's entry point (inbox.c). Everything runs on
 * the loop. */
#ifndef PST_HINT_INT_H
#define PST_HINT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_core.h"
#include "pst_hint.h"

/* ---- sender (hint_client.c) --------------------------------------------- */

#define PST_HINT_PEERS_MAX 16u     /* endpoints with a connection or a queue */
#define PST_HINT_QUEUE_MAX 512u    /* hints waiting in all; the oldest is dropped */
#define PST_HINT_BATCH_MAX 32u     /* frames in one write */
#define PST_HINT_CONNECT_MS 1000u  /* connect (and resolve) within this */
#define PST_HINT_WRITE_MS 1000u    /* a write must complete within this */
#define PST_HINT_AGE_MAX_MS 2000u  /* older hints are dropped: the DHT has them */
#define PST_HINT_IDLE_MS 10000u    /* an idle connection is closed */
#define PST_HINT_BACKOFF_MS 5000u  /* after a failure, no new try to that endpoint */
#define PST_HINT_REFUSED_MS 60000u /* after a signed refusal (hints off, not here) */

struct pst_hint_client;

/* Starts the client (no socket yet) into *out; PST_E_NOMEM. */
int pst_hint_client_start(pst_node *n, struct pst_hint_client **out);
/* Drops every queued hint and closes every connection; the client frees
 * itself once its handles closed (each holds a node handle reference). */
void pst_hint_client_stop(struct pst_hint_client *hc);
/* Hands the notification bytes (1..PST_NOTIFY_MAX, copied) for identity
 * rcpt to every endpoint of rcpt's cached key record. Never fails: a
 * hint that cannot go is counted (hint.out.*) and left to the DHT. No-op
 * with hints off, for our own identity or hc NULL. Returns whether it was
 * queued for at least one endpoint; when a queued hint is given up later
 * (connect, write, timeout, refusal, too old) the client calls
 * pst_outbox_hints_failed. */
bool pst_hint_send(struct pst_hint_client *hc, const uint8_t rcpt[PST_SIGN_PK_BYTES],
                   const uint8_t *notification, size_t len);

/* ---- recipient (fetch_hint.c, inbox.c) ------------------------------------ */

/* Hints are taken from one address at hint_rate a second, with a burst of
 * as many (pst_hint_rate_take). */
#define PST_HINT_RATE_PEERS 64u /* addresses tracked; the longest quiet gives way */

typedef struct {
    char ip[64];
    uint64_t last_ms;
    uint64_t tokens_milli; /* thousandths of a hint */
} pst_hint_bucket;

typedef struct {
    pst_hint_bucket b[PST_HINT_RATE_PEERS];
} pst_hint_rate;

/* Takes one hint from address ip at now_ms, refilled at rate a second up
 * to a burst of rate: false when it is over (the caller counts
 * rejected.hint.rate and drops the hint). rate >= 1. */
bool pst_hint_rate_take(pst_hint_rate *r, const char *ip, uint64_t now_ms, uint32_t rate);

typedef enum {
    PST_HINT_TAKEN,   /* a new notification: admitted (or parked for vouches) */
    PST_HINT_SEEN,    /* these bytes were looked at before (DHT or an earlier hint) */
    PST_HINT_REFUSED, /* the pipeline refused it (counted rejected.inbox.REASON) */
    PST_HINT_LATER,   /* no inbox (stopping) or a local failure: nothing remembered */
} pst_hint_outcome;

/* inbox.c: a hinted notification, judged exactly like a value of our
 * inbox slot (seen set, stamp, seal, signature, recipient, trust gate),
 * so a message hinted and read from the DHT is taken once. */
pst_hint_outcome pst_inbox_hint(pst_node *n, const uint8_t *val, size_t len);

#endif
