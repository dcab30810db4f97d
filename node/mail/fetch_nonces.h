/* The nonces of the fetch requests the server accepted, each kept until its
 * request expires: a request whose nonce is here is a replay (fetch_serve.c).
 * A hash set keyed with a random SipHash key (an attacker's chosen nonces
 * cannot pile up in one chain), grown by doubling from
 * PST_NONCES_CAP_MIN slots up to PST_NONCES_CAP_MAX; expired entries are
 * dropped when the table is rebuilt. Loop thread only. */
#ifndef PST_FETCH_NONCES_H
#define PST_FETCH_NONCES_H

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>

#include "pst_types.h"

/* Requests live PST_FETCH_SKEW_DEFAULT (300 s): the largest table holds
 * 49,152 live nonces (3/4 of its slots), about 160 fetches a second for
 * 300 s (the old fixed array held 4,096: 13.6 a second, beyond which every
 * request was answered busy). 24 bytes a slot: 1.5 MiB at the largest. */
#define PST_NONCES_CAP_MIN 1024u
#define PST_NONCES_CAP_MAX 65536u

typedef struct {
    uint8_t nonce[PST_NONCE_BYTES];
    uint64_t expires; /* 0: an empty slot */
} pst_nonce_slot;

typedef struct {
    pst_nonce_slot *slots; /* cap slots, or NULL before the first add */
    uint32_t cap;
    uint32_t used; /* slots taken, expired ones included until a rebuild */
    uint8_t key[crypto_shorthash_KEYBYTES];
} pst_nonce_set;

/* An empty set with a fresh random key; allocates nothing. */
void pst_nonce_set_init(pst_nonce_set *s);
/* Frees the table; the set is empty (and usable) again. */
void pst_nonce_set_free(pst_nonce_set *s);
/* Whether nonce was added with an expiry still after now. */
bool pst_nonce_set_has(const pst_nonce_set *s, const uint8_t nonce[PST_NONCE_BYTES], uint64_t now);
/* Adds nonce until expires (> now). false when PST_NONCES_CAP_MAX * 3/4
 * nonces are live (the caller answers busy) or memory ran out; the set is
 * unchanged then. The caller checked pst_nonce_set_has first. */
bool pst_nonce_set_add(pst_nonce_set *s, const uint8_t nonce[PST_NONCE_BYTES], uint64_t expires,
                       uint64_t now);
/* Live nonces (expiry after now): O(cap); the add counts them before a
 * rebuild, tests look at them. */
uint32_t pst_nonce_set_live(const pst_nonce_set *s, uint64_t now);

#endif
