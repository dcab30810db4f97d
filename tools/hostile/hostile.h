/* postern-hostile: the value generator shared by the tool's files.
 *
 * Every value is a deterministic function of (master seed, class, slot,
 * index, now, target, identity): running the tool twice with the same
 * --seed-random and --now yields the same bytes, so a failing test can be
 * replayed exactly. */
#ifndef PST_HOSTILE_H
#define PST_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_identity.h"
#include "pst_records.h"
#include "pst_types.h"

/* Classes of bad values. Order is the JSON order. */
typedef enum {
    PST_HC_RANDOM,       /* random bytes, some with a plausible record header */
    PST_HC_TRUNCATED,    /* a valid record cut short */
    PST_HC_OVERSIZE,     /* at (or just under) the value cap, declaring more */
    PST_HC_BADSIG,       /* a record whose signature does not verify */
    PST_HC_MISMATCH,     /* a valid record that belongs to another slot */
    PST_HC_WRONGTYPE,    /* a valid record of a type the slot does not hold */
    PST_HC_STALE,        /* the target's own record with a lower seq */
    PST_HC_EXPIRED,      /* authentic but out of its time window */
    PST_HC_FUTURE,       /* created beyond the allowed clock skew */
    PST_HC_NONCANONICAL, /* a wider-than-minimal encoding, re-signed */
    PST_HC_REVOKED,      /* valid new records of the target: bad only once revoked */
    PST_HC_COUNT
} pst_hostile_class;

typedef enum { PST_HS_KEY, PST_HS_ADDRESS, PST_HS_VOUCH, PST_HS_COUNT } pst_hostile_slot;

#define PST_HOSTILE_FRESH_KEYS 8u

typedef struct {
    uint8_t seed[32];                  /* master seed of every random choice */
    uint64_t now;                      /* unix seconds used for created/expires */
    uint8_t target[PST_SIGN_PK_BYTES]; /* the identity under attack */
    char address[PST_ADDRESS_MAX + 1]; /* normalized, "" = none */
    const pst_identity *id;            /* the target's secrets, or NULL */
    uint64_t current_seq;              /* highest seq of the target seen, 0 = unknown */
    uint8_t fresh_sk[PST_HOSTILE_FRESH_KEYS][PST_SIGN_SK_BYTES];
    uint8_t fresh_pk[PST_HOSTILE_FRESH_KEYS][PST_SIGN_PK_BYTES];
} pst_hostile_gen;

/* Derives the fresh keys from g->seed; call after filling seed. */
void pst_hostile_gen_init(pst_hostile_gen *g);
/* Wipes the fresh secret keys. */
void pst_hostile_gen_wipe(pst_hostile_gen *g);

/* "random", "truncated", ... and back. Name lookup returns -1 if unknown. */
const char *pst_hostile_class_name(int c);
int pst_hostile_class_by_name(const char *name, size_t len);
const char *pst_hostile_slot_name(int s);

/* Why class c cannot go to slot s with this generator (NULL when it can):
 * e.g. "needs --identity". */
const char *pst_hostile_skip_reason(const pst_hostile_gen *g, int c, int s);

/* Writes value number i of class c for slot s into out (PST_DHT_VALUE_MAX
 * bytes). Returns its length (>= 1), or 0 when the class does not apply to
 * the slot (see pst_hostile_skip_reason). */
size_t pst_hostile_make(const pst_hostile_gen *g, int c, int s, uint32_t i,
                        uint8_t out[PST_DHT_VALUE_MAX]);

#endif
