/* proto/ internal: canonical msgpack writer and strict, bounded reader.
 * Only the .c files of proto/ include this file (and through it msgpack.h): nothing above
 * proto/ sees msgpack. Records are msgpack arrays with a fixed field order;
 * a decoder re-encodes what it read and rejects the input unless the bytes are
 * identical, which makes every accepted encoding the canonical one (minimal
 * integers and length headers, no floats, no duplicate map keys). */
#ifndef PST_CODEC_H
#define PST_CODEC_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_types.h"

/* ---- writer -------------------------------------------------------------- */

/* Writes msgpack into a caller-owned buffer of fixed capacity. Errors are
 * sticky: after the first overflow every call is a no-op and pst_w_finish()
 * returns PST_E_NOSPACE, so encoders can write all fields and check once. */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;
    msgpack_packer pk;
} pst_writer;

void pst_w_init(pst_writer *w, uint8_t *buf, size_t cap);
void pst_w_array(pst_writer *w, uint32_t n);
void pst_w_map(pst_writer *w, uint32_t n);
void pst_w_uint(pst_writer *w, uint64_t v);
void pst_w_bool(pst_writer *w, bool v);
void pst_w_bin(pst_writer *w, const void *p, size_t n);
void pst_w_str(pst_writer *w, const char *p, size_t n);
void pst_w_cstr(pst_writer *w, const char *s);
/* Appends n raw bytes (already valid msgpack, e.g. a nested record). */
void pst_w_raw(pst_writer *w, const void *p, size_t n);
/* Returns 0 and the encoded length, or the sticky error (len set to 0). */
int pst_w_finish(pst_writer *w, size_t *len);
/* pst_w_init, then the common record header: an array of nfields (version
 * and type included), the version and type. The body's fields follow. */
void pst_w_record(pst_writer *w, uint8_t *buf, size_t cap, pst_rec_type type, uint32_t nfields);

/* ---- reader -------------------------------------------------------------- */

typedef struct {
    size_t max_bytes;   /* input larger than this: PST_E_TOOBIG */
    uint32_t max_depth; /* nesting of arrays/maps; root array = depth 1 */
    uint32_t max_elems; /* elements in one array or map */
    uint32_t max_str;   /* bytes in one str */
    uint32_t max_bin;   /* bytes in one bin */
    bool allow_maps;    /* maps allowed (keys must be unique str) */
} pst_limits;

/* Limits used for every record unless a decoder narrows them. */
extern const pst_limits pst_limits_record;

/* A parsed msgpack tree. str/bin objects point INTO the input buffer, which
 * must outlive the reader. Floats, ext, nil and negative integers are
 * rejected at parse time (no record uses them). */
typedef struct {
    msgpack_zone zone;
    msgpack_object root;
    bool zone_live;
} pst_reader;

/* Parses exactly one msgpack object that spans the whole input. Errors:
 * PST_E_TOOBIG (over a limit), PST_E_TRUNCATED, PST_E_TRAILING,
 * PST_E_MALFORMED, PST_E_TYPE (float/ext/nil/negative), PST_E_NESTING,
 * PST_E_NONCANONICAL (duplicate map key), PST_E_NOMEM. The total number of
 * container elements is bounded by the input length, so a 5-byte "array of
 * 4 billion" header can never make us allocate. Always call pst_r_free(),
 * also after an error. */
int pst_r_parse(pst_reader *r, const uint8_t *in, size_t len, const pst_limits *lim);
void pst_r_free(pst_reader *r);

/* Typed field accessors. Each checks the msgpack type and the bound and
 * returns PST_E_TYPE / PST_E_TOOBIG / PST_E_RANGE on mismatch; outputs are
 * left zeroed on failure. */
int pst_r_array(const msgpack_object *o, uint32_t min, uint32_t max, const msgpack_object **items,
                uint32_t *n);
int pst_r_uint(const msgpack_object *o, uint64_t max, uint64_t *out);
int pst_r_bool(const msgpack_object *o, bool *out);
int pst_r_bin_fixed(const msgpack_object *o, size_t n, uint8_t *out);
int pst_r_bin(const msgpack_object *o, size_t max, const uint8_t **p, size_t *n);
/* str with max bytes; rejects embedded NUL and invalid UTF-8. Copies into
 * out (cap bytes incl. the terminating NUL) when out != NULL. */
int pst_r_str(const msgpack_object *o, size_t max, const char **p, size_t *n);
int pst_r_str_copy(const msgpack_object *o, char *out, size_t cap);
/* True if s (n bytes) passes pst_r_str's rule (UTF-8, no NUL, at most max
 * bytes): lets an encoder refuse what the decoder would. */
bool pst_r_text_ok(const char *s, size_t n, size_t max);

/* Common record header: [version, type, ...]. Checks version == 1 and
 * type == want and the field count; returns items. */
int pst_r_record(const msgpack_object *root, pst_rec_type want, uint32_t nfields,
                 const msgpack_object **items);
/* A decoder's first step: zeroes out[size] when out is not NULL, so a
 * failed decode leaves no partial record; PST_E_INVAL when in or out is NULL. */
int pst_r_start(const uint8_t *in, void *out, size_t size);
/* pst_r_parse, then pst_r_record on the root: the errors of both. Always
 * call pst_r_free(r), also after an error. */
int pst_r_open(pst_reader *r, const uint8_t *in, size_t len, const pst_limits *lim,
               pst_rec_type want, uint32_t nfields, const msgpack_object **items);

/* A bin of exactly 0 or n bytes (an optional key or signature): copies it to
 * out[n] and sets *present when it has n bytes. PST_E_RANGE for another
 * length, else pst_r_bin's errors; out untouched and *present false then. */
int pst_r_bin_opt(const msgpack_object *o, size_t n, uint8_t *out, bool *present);

/* 0 if a and b are the same bytes, else PST_E_NONCANONICAL. */
int pst_canonical_check(const uint8_t *in, size_t in_len, const uint8_t *re, size_t re_len);

#endif
