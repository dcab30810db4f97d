/* Hashcash version 1 stamps (SHA-1 partial preimages), interoperable with the
 * classic `hashcash` tool and the X-Hashcash mail header:
 *
 *   1:bits:date:resource:ext:rand:counter
 *
 * A stamp is worth `bits` when the SHA-1 of the whole stamp string starts
 * with at least `bits` zero bits. Postern puts the recipient in `resource` and
 * a digest of the sealed notification in `ext` (see pst_notify.h), so a stamp
 * pays for exactly one notification to exactly one recipient.
 *
 * Pure: the current time and the random bytes are parameters, and there are
 * no threads here: proto/ lays a stamp out and searches one range of
 * counters; the driver that runs ranges on every core and reports progress
 * is pst_hashcash_mint (node/core/pst_mint.h). docs/PROTOCOL.md (section
 * "Hashcash stamps") is the authority on the format. */
#ifndef PST_HASHCASH_H
#define PST_HASHCASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"

/* ---- limits ----------------------------------------------------------------
 * The classic tool writes 16 rand characters and pads its counter to at
 * most ~60; Postern's resource is 64 characters and its ext 36. */
#define PST_HASHCASH_STAMP_MAX 256u    /* whole stamp, without a NUL */
#define PST_HASHCASH_RESOURCE_MAX 128u /* 1..128 characters */
#define PST_HASHCASH_EXT_MAX 128u      /* 0..128 characters */
#define PST_HASHCASH_RAND_MAX 64u      /* 1..64 characters */
#define PST_HASHCASH_COUNTER_MAX 64u   /* 1..64 characters */
#define PST_HASHCASH_DATE_MAX 12u      /* YYMMDD, YYMMDDhhmm or YYMMDDhhmmss */
#define PST_HASHCASH_BITS_MAX 160u     /* the most a SHA-1 can have */
#define PST_HASHCASH_MINT_BITS_MAX 40u /* ~1.1e12 hashes: hours on a desktop */
#define PST_HASHCASH_RAND_BYTES 16u    /* random bytes the minter supplies */
#define PST_HASHCASH_SPENT_KEY_BYTES 32u

/* Defaults of the date window (seconds). */
#define PST_HASHCASH_MAX_AGE_DEFAULT (2u * 86400u)
#define PST_HASHCASH_MAX_FUTURE_DEFAULT 3600u

/* Dates are written in UTC with a two-digit year meaning 20YY, so only
 * 2000-01-01 .. 2099-12-31 can be represented. */
#define PST_HASHCASH_EPOCH_MIN 946684800ull  /* 2000-01-01T00:00:00Z */
#define PST_HASHCASH_EPOCH_END 4102444800ull /* 2100-01-01T00:00:00Z */

/* ---- parsing ------------------------------------------------------------- */

/* A parsed stamp: NUL-terminated copies of the fields (no pointers into the
 * input, so it outlives it). */
typedef struct {
    unsigned bits; /* claimed bits, 0..PST_HASHCASH_BITS_MAX */
    uint64_t date; /* unix seconds (UTC), from date_str */
    char date_str[PST_HASHCASH_DATE_MAX + 1];
    char resource[PST_HASHCASH_RESOURCE_MAX + 1];
    char ext[PST_HASHCASH_EXT_MAX + 1];
    char rand[PST_HASHCASH_RAND_MAX + 1];
    char counter[PST_HASHCASH_COUNTER_MAX + 1];
} pst_hashcash_fields;

/* Strict parse of stamp[0..len) (no NUL needed; an embedded NUL is an
 * error). Accepts exactly 7 ':'-separated fields:
 *   version  "1"
 *   bits     decimal, no leading zero (except "0"), at most 160
 *   date     YYMMDD, YYMMDDhhmm or YYMMDDhhmmss, a real UTC calendar time
 *   resource 1..PST_HASHCASH_RESOURCE_MAX of '!'..'~' except ':'
 *   ext      0..PST_HASHCASH_EXT_MAX of the same characters
 *   rand     1..PST_HASHCASH_RAND_MAX of [A-Za-z0-9+/=]
 *   counter  1..PST_HASHCASH_COUNTER_MAX of [A-Za-z0-9+/=]
 * and len <= PST_HASHCASH_STAMP_MAX. No hashing. The character sets are the
 * classic tool's (it rejects others in rand and counter). PST_E_STAMP_FORMAT
 * on any violation, PST_E_INVAL if stamp or out is NULL; *out is zeroed on
 * failure. */
int pst_hashcash_parse(const char *stamp, size_t len, pst_hashcash_fields *out);

/* Leading zero bits of SHA-1(stamp[0..len)), 0..160. One SHA-1; no parsing,
 * so it also works on garbage. */
unsigned pst_hashcash_count_bits(const char *stamp, size_t len);

/* ---- verification -------------------------------------------------------- */

typedef struct {
    unsigned min_bits;    /* claimed bits must be >= this (0..160) */
    const char *resource; /* required; compared exactly (case-sensitive) */
    const char *ext;      /* NULL: any ext; else compared exactly ("" = empty) */
    uint64_t max_age;     /* reject when now > date + max_age */
    uint64_t max_future;  /* reject when date > now + max_future */
} pst_hashcash_policy;

/* Fills *p with min_bits, resource (borrowed, not copied), ext NULL and the
 * default window (PST_HASHCASH_MAX_AGE_DEFAULT, ..._MAX_FUTURE_DEFAULT). */
void pst_hashcash_policy_init(pst_hashcash_policy *p, unsigned min_bits, const char *resource);

typedef struct {
    /* BLAKE2b-256 (crypto_generichash) of the exact stamp bytes: the key of
     * the spent-stamp table. */
    uint8_t spent_key[PST_HASHCASH_SPENT_KEY_BYTES];
    /* Keep the spent key until then (date + max_age): afterwards the date
     * window alone rejects the stamp. */
    uint64_t remember_until;
    uint64_t date; /* stamp date, unix seconds */
    unsigned bits; /* claimed bits (<= the actual leading zero bits) */
} pst_hashcash_result;

/* Verifies stamp[0..len) against policy at time now (unix seconds). Order:
 * parse (PST_E_STAMP_FORMAT), claimed bits >= min_bits (PST_E_STAMP_BITS),
 * resource (PST_E_STAMP_RESOURCE), ext (PST_E_STAMP_EXT), date window
 * (PST_E_STAMP_DATE), then one SHA-1: fewer leading zero bits than claimed
 * is PST_E_STAMP_BITS. PST_E_INVAL for a NULL stamp/policy/resource or
 * min_bits > 160. Does NOT look up the spent-stamp table: the caller checks
 * out->spent_key there. out may be NULL; it is zeroed on failure. */
__attribute__((warn_unused_result)) int pst_hashcash_verify(const char *stamp, size_t len,
                                                            const pst_hashcash_policy *policy,
                                                            uint64_t now, pst_hashcash_result *out);

/* ---- formatting helpers -------------------------------------------------- */

/* Writes t as YYMMDDhhmmss (UTC) plus a NUL. PST_E_RANGE unless
 * PST_HASHCASH_EPOCH_MIN <= t < PST_HASHCASH_EPOCH_END (out is then ""). */
int pst_hashcash_format_date(uint64_t t, char out[PST_HASHCASH_DATE_MAX + 1]);

/* True when s is a valid resource (ext_field false) or ext (ext_field true)
 * for a stamp: see pst_hashcash_parse for the rules. NULL is invalid. */
bool pst_hashcash_field_valid(const char *s, bool ext_field);

/* ---- minting: the search ------------------------------------------------
 * The counter of a minted stamp has a fixed length (at most 42 characters of
 * [A-Za-z0-9+/]) chosen so that the SHA-1 of the constant prefix is computed
 * once and each attempt costs one SHA-1 compression. The counters form
 * PST_HASHCASH_SEARCH_IDS disjoint spaces (one per thread of a driver), each
 * of PST_HASHCASH_SEARCH_SWEEPS sweeps of PST_HASHCASH_SWEEP attempts. */
#define PST_HASHCASH_SWEEP 4096u
#define PST_HASHCASH_SEARCH_IDS 4096u
#define PST_HASHCASH_SEARCH_SWEEPS (UINT64_C(1) << 42)

/* A laid-out stamp: a plain value, no resources. */
typedef struct {
    char stamp[PST_HASHCASH_STAMP_MAX + 1]; /* counter characters all 'A' */
    size_t len;                             /* strlen(stamp); 0 = not initialised */
    unsigned bits;
    uint32_t midstate[5]; /* SHA-1 state after every block before the last */
    uint8_t block[64];    /* the last block, SHA-1 padding included */
    unsigned vary_off;    /* where the counter's varying characters start in block */
    uint32_t mask0, mask1;
} pst_hashcash_search;

/* Lays out 1:bits:YYMMDDhhmmss:resource:ext:rand:counter, rand being the
 * unpadded standard base64 of rand (fresh random bytes from the caller),
 * ext NULL meaning "". Errors: PST_E_INVAL (bits outside
 * 1..PST_HASHCASH_MINT_BITS_MAX, bad resource or ext, NULL), PST_E_RANGE
 * (now outside 2000..2099), PST_E_TOOBIG (stamp would exceed
 * PST_HASHCASH_STAMP_MAX). *s zeroed on failure. s->len + 1 is the buffer a
 * stamp needs, known before any work. */
int pst_hashcash_search_init(pst_hashcash_search *s, unsigned bits, const char *resource,
                             const char *ext, uint64_t now,
                             const uint8_t rand[PST_HASHCASH_RAND_BYTES]);

/* Tries sweeps [first, first + count) of counter space id, in order, and
 * stops at the first stamp worth s->bits: PST_OK and the NUL-terminated
 * stamp in out (checked once more with a plain SHA-1, else PST_E_CRYPTO).
 * PST_E_NOTFOUND when the range holds none; PST_E_INVAL for an id, range or
 * s out of bounds. *attempts is the number of hashes tried in this call
 * (0 on PST_E_INVAL). Deterministic: the same s, id and range give the same
 * stamp. */
int pst_hashcash_search_run(const pst_hashcash_search *s, unsigned id, uint64_t first,
                            uint64_t count, char out[PST_HASHCASH_STAMP_MAX + 1],
                            uint64_t *attempts);

#endif
