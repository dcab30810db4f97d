/* Control-socket envelope between the `postern` CLI and `posternd`, and the
 * generic value tree that carries response bodies.
 *
 * frame    = length (u32 big-endian, 1..PST_CTRL_FRAME_MAX) || msgpack
 * Request  (type 10): [1, 10, id (u64), command (str), args (array of str)]
 * Response (type 11): [1, 11, id (u64), status (u64), error (str), body]
 *
 * These two are not signed and carry no created/expires/signer/sig: they
 * only travel over the node's local unix socket, whose file permissions
 * are the access control, and both ends are the same user. A signature
 * would prove nothing the kernel does not already guarantee. */
#ifndef PST_ENVELOPE_H
#define PST_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_types.h"

#define PST_CTRL_FRAME_MAX (1024u * 1024u) /* one control frame, either way */
#define PST_CTRL_COMMAND_MAX 32u           /* [a-z-], starts with a letter */
#define PST_CTRL_ARGS_MAX 32u
#define PST_CTRL_ARG_MAX 4096u   /* bytes in one argument (UTF-8, no NUL) */
#define PST_CTRL_ERROR_MAX 512u  /* bytes in the response error text */
#define PST_CTRL_STATUS_MAX 255u /* status is the CLI's exit code */
/* Status of a final response; the CLI exits with it (table: docs/CLI.md,
 * "Reply status codes"). The numbers are sysexits' where one fits. */
#define PST_CTRL_STATUS_OK 0u
#define PST_CTRL_STATUS_FAIL 1u        /* failed; error says why and what to do */
#define PST_CTRL_STATUS_NOT_FOUND 2u   /* key get: the DHT answered and has no such key */
#define PST_CTRL_STATUS_REVOKED 3u     /* key get */
#define PST_CTRL_STATUS_EXPIRED 4u     /* key get */
#define PST_CTRL_STATUS_FROM_FUTURE 5u /* key get: created ahead of this clock */
#define PST_CTRL_STATUS_USAGE 64u      /* a bad command or argument (EX_USAGE) */
#define PST_CTRL_STATUS_REFUSED 69u    /* connection refused: other user, limit (EX_UNAVAILABLE) */
/* Status of an interim frame: the request is still running and the body
 * says how far it got (e.g. send while minting: docs/CLI.md). Any number may
 * precede the one final response with the same id; a client that does not
 * draw progress skips them. Exit codes stay below it. */
#define PST_CTRL_STATUS_PROGRESS 100u

/* ---- generic value tree ----------------------------------------------------
 * Kinds: uint, bool, str (UTF-8, no NUL), bin, array, map (str keys, unique,
 * insertion order kept and part of the canonical form). There is no nil:
 * an absent value is an absent map member. A tree is bounded as a whole:
 * at most PST_VALUE_NODES_MAX values, PST_VALUE_DEPTH_MAX nested
 * containers and PST_VALUE_BYTES_MAX bytes of encoding, so any tree the
 * builder accepts fits in a response frame. */
#define PST_VALUE_NODES_MAX 4096u
#define PST_VALUE_DEPTH_MAX 7u /* + the envelope array = 8 levels per frame */
#define PST_VALUE_KEY_MAX 256u /* bytes in one map key (1..) */
#define PST_VALUE_BYTES_MAX (PST_CTRL_FRAME_MAX - 1024u) /* room for the header */

typedef enum {
    PST_VALUE_NONE = 0, /* only returned for a NULL value */
    PST_VALUE_UINT = 1,
    PST_VALUE_BOOL = 2,
    PST_VALUE_STR = 3,
    PST_VALUE_BIN = 4,
    PST_VALUE_ARRAY = 5,
    PST_VALUE_MAP = 6,
} pst_value_kind;

typedef struct pst_value pst_value; /* opaque */

/* Roots. Each root owns its whole tree (malloc'd); free it with
 * pst_value_free. NULL when out of memory. */
pst_value *pst_value_new_map(void);
pst_value *pst_value_new_array(void);
/* Frees the tree of root (a value from pst_value_new_* or a decode; NULL is
 * fine). A non-root value is ignored: it dies with its root. */
void pst_value_free(pst_value *root);

/* Builders: append a value to parent, an array (key must be NULL) or a map
 * (key required, 1..PST_VALUE_KEY_MAX bytes of UTF-8, not already there).
 * Errors: PST_E_INVAL (NULL parent, scalar parent, key/parent mismatch,
 * str/key not UTF-8), PST_E_EXISTS (duplicate key), PST_E_TOOBIG (node or
 * byte cap), PST_E_NESTING (depth cap), PST_E_NOMEM. Errors are sticky
 * for the whole tree: after the first one every builder fails with it and
 * pst_value_encode returns it, so a caller may check once at the end. The
 * container builders return the new child (owned by the tree) or NULL. */
int pst_value_add_uint(pst_value *parent, const char *key, uint64_t v);
int pst_value_add_bool(pst_value *parent, const char *key, bool v);
int pst_value_add_str(pst_value *parent, const char *key, const char *s);
int pst_value_add_bin(pst_value *parent, const char *key, const void *p, size_t n);
pst_value *pst_value_add_map(pst_value *parent, const char *key);
pst_value *pst_value_add_array(pst_value *parent, const char *key);
/* The tree's sticky builder error, 0 if none. */
int pst_value_error(const pst_value *v);

/* Accessors (never fail on NULL). */
pst_value_kind pst_value_type(const pst_value *v);
/* PST_E_TYPE (and *out zeroed) when v is not of that kind. */
int pst_value_as_uint(const pst_value *v, uint64_t *out);
int pst_value_as_bool(const pst_value *v, bool *out);
/* Pointer into the tree (str: NUL-terminated) or NULL for another kind. */
const char *pst_value_as_str(const pst_value *v, size_t *len);
const uint8_t *pst_value_as_bin(const pst_value *v, size_t *len);
/* Children of an array or map: count, i-th (NULL past the end), first and
 * next (NULL at the end). A map member's key is pst_value_key(member). */
uint32_t pst_value_count(const pst_value *v);
const pst_value *pst_value_at(const pst_value *v, uint32_t i);
const pst_value *pst_value_first(const pst_value *v);
const pst_value *pst_value_next(const pst_value *child);
const char *pst_value_key(const pst_value *member);
/* Map lookup: the member named key, NULL if absent or v is not a map. */
const pst_value *pst_value_get(const pst_value *map, const char *key);

/* Canonical msgpack of v (and its subtree). Returns the tree's sticky error
 * if it has one, PST_E_NOSPACE, PST_E_INVAL; *len = 0 on failure. */
int pst_value_encode(const pst_value *v, uint8_t *out, size_t cap, size_t *len);
/* Strict decode of one value (maps allowed, all caps above, duplicate keys
 * PST_E_NONCANONICAL, non-canonical forms PST_E_NONCANONICAL). *out is a
 * new root or NULL on failure. */
int pst_value_decode(const uint8_t *in, size_t len, pst_value **out);

/* ---- Request (type 10) ------------------------------------------------------ */

typedef struct {
    uint64_t id; /* echoed by the response */
    char command[PST_CTRL_COMMAND_MAX + 1];
    uint32_t n_args;
    char args[PST_CTRL_ARGS_MAX][PST_CTRL_ARG_MAX + 1]; /* ~128 KiB: not for small stacks */
} pst_ctrl_request;

/* Zeroes r and names its command (1..PST_CTRL_COMMAND_MAX of [a-z-],
 * starting with a letter). PST_E_INVAL for a bad command (r then has none). */
int pst_ctrl_request_init(pst_ctrl_request *r, uint64_t id, const char *command);
/* Appends the argument "key=value", or value alone when key is NULL (the
 * positional argument of key-get and key-revoke). The one way requests get
 * arguments, so every one is valid for the encoder and splits at its first
 * '=' back into key and value. key: 1.. bytes, no '='; the argument: at
 * most PST_CTRL_ARG_MAX bytes, UTF-8. PST_E_INVAL for a bad key or a value
 * that is not UTF-8, PST_E_TOOBIG when too long, PST_E_NOSPACE when r holds
 * PST_CTRL_ARGS_MAX already; r is unchanged on failure. */
int pst_ctrl_request_add_arg(pst_ctrl_request *r, const char *key, const char *value);

/* PST_E_INVAL if r breaks a limit, PST_E_NOSPACE; *len = 0 on failure. */
int pst_ctrl_request_encode(const pst_ctrl_request *r, uint8_t *out, size_t cap, size_t *len);
/* Strict decode; *out zeroed on failure. */
int pst_ctrl_request_decode(const uint8_t *in, size_t len, pst_ctrl_request *out);

/* ---- Response (type 11) ----------------------------------------------------- */

typedef struct {
    uint64_t id;
    uint64_t status; /* PST_CTRL_STATUS_*: 0 ok, PROGRESS interim, else the CLI exit code */
    char error[PST_CTRL_ERROR_MAX + 1]; /* "" when status is 0 */
    pst_value *body;                    /* encode: borrowed, NULL encodes {}; decode: owned */
} pst_ctrl_response;

/* PST_E_INVAL if r breaks a limit (or the body's sticky error),
 * PST_E_NOSPACE; *len = 0 on failure. */
int pst_ctrl_response_encode(const pst_ctrl_response *r, uint8_t *out, size_t cap, size_t *len);
/* Strict decode; on success out->body is a new root the caller frees with
 * pst_ctrl_response_free. *out zeroed (nothing to free) on failure. */
int pst_ctrl_response_decode(const uint8_t *in, size_t len, pst_ctrl_response *out);
/* Frees the body of a decoded response and zeroes r. */
void pst_ctrl_response_free(pst_ctrl_response *r);

#endif
