/* A fixed-memory set of "values already looked at", for slots anyone can
 * write to: the inbox slot (node/mail/inbox.c) and our own key, address and vouch
 * slots (node/keys/ingest.c). OpenDHT hands the same value over again (a listen
 * and a periodic get of the same slot, duplicates), and a value looked at
 * once needs no second look: skipping it costs one keyed BLAKE2b, and every
 * value is counted once.
 *
 * Two generations of an open-addressing table in caller-owned memory: when
 * the current one holds `max` keys (half its slots) or is older than
 * rotate_s, the older one is emptied and becomes current, so memory is fixed
 * and a value is looked at again after at most two rotations. Keys are
 * keyed by a random per-process key, so nobody can aim collisions at it. */
#ifndef PST_SEEN_H
#define PST_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PST_SEEN_KEY 16u

typedef struct {
    uint8_t (*gen[2])[PST_SEEN_KEY]; /* caller's memory: 2 x nslots keys */
    unsigned nslots, count[2], cur;
    uint64_t since;
    uint32_t rotate_s;
    uint8_t hash_key[32];
} pst_seen;

/* Bytes of memory pst_seen_init needs for nslots slots per generation. */
#define PST_SEEN_MEM_BYTES(nslots) (2u * (size_t)(nslots)*PST_SEEN_KEY)

/* mem: PST_SEEN_MEM_BYTES(nslots) zeroed bytes, owned by the caller and
 * kept as long as s; nslots >= 2. A generation holds nslots / 2 keys. */
void pst_seen_init(pst_seen *s, void *mem, unsigned nslots, uint32_t rotate_s, uint64_t now);

/* The key of val in context ctx (e.g. the slot it came from; may be NULL). */
void pst_seen_key(const pst_seen *s, const void *ctx, size_t ctx_len, const uint8_t *val,
                  size_t len, uint8_t key[PST_SEEN_KEY]);

/* Whether key is in either generation (does not add it, never rotates). */
bool pst_seen_has(const pst_seen *s, const uint8_t key[PST_SEEN_KEY]);
/* Adds key (rotating first when the current generation is full or old). */
void pst_seen_add(pst_seen *s, const uint8_t key[PST_SEEN_KEY], uint64_t now);
/* Forgets key, so the value is looked at again when it comes back. */
void pst_seen_forget(pst_seen *s, const uint8_t key[PST_SEEN_KEY]);

#endif
