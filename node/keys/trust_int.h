/* Private to the trust files of keys/ (trust.c: contacts' tier names, our
 * own vouches, notices; vouch.c: reading a key's vouch slot and remembering
 * the contacts' vouches found there; vouch_check.c: is a sender vouched for,
 * with its answers cached). One struct pst_trust per node, made on first use
 * and freed by pst_trust_free; everything runs on the loop. */
#ifndef PST_TRUST_INT_H
#define PST_TRUST_INT_H

#include "pst_keys.h"

#define PST_VOUCH_RECALL_SUBJECTS 128u /* keys whose contacts' vouches we remember */
#define PST_VOUCH_RECALL_PER 8u        /* contacts' vouches remembered per key */

/* What the reads of one key's vouch slot found from contacts (vouch.c). */
typedef struct {
    uint8_t subject[32];
    uint64_t at;              /* pst_now() of the last read that ended; 0 = free */
    uint64_t more;            /* values the last complete read did not examine */
    uint64_t values, done_ms; /* values it saw; uv_now() when it ended */
    unsigned n;
    pst_vouch v[PST_VOUCH_RECALL_PER];
} recalled;

#define PST_VOUCH_CACHE 512u
#define PST_VOUCH_CACHE_TTL_S 600u
/* "not vouched for" is kept shorter: a vouch made meanwhile counts within a
 * minute even for a sender whose vouch slot nobody watches (inbox_gate.c
 * watches a few), at the cost of one more DHT get per stranger a minute */
#define PST_VOUCH_CACHE_NEG_TTL_S 60u
#define PST_VOUCH_CHECKS_MAX 4u
#define PST_VOUCH_DEPTH2_MAX 4u

/* One cached answer of vouch_check.c. */
typedef struct {
    uint8_t pk[32];
    uint64_t until; /* 0 = free slot */
    bool known, pending;
} vouch_entry;

typedef struct vouch_get vouch_get; /* one read of a vouch slot (vouch.c) */

struct pst_trust {
    vouch_entry cache[PST_VOUCH_CACHE];
    unsigned checks_running;
    uint64_t generation; /* bumped when the contact list changes */
    recalled recall[PST_VOUCH_RECALL_SUBJECTS];
    vouch_get *reads; /* in flight */
};

/* n's trust state, made on first use; NULL when out of memory. */
struct pst_trust *pst_trust__of(pst_node *n);

#endif
