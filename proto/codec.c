/* Canonical msgpack writer and strict bounded reader (see codec.h).
 *
 * The reader drives msgpack-c's own parser state machine
 * (msgpack/unpack_template.h) with our callbacks, so that limits are enforced
 * before anything is allocated: msgpack-c's stock msgpack_unpack() would
 * allocate 4 billion object slots for a 5-byte array header. */
#include "codec.h"
#include "pst_utf8.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

/* ---- writer -------------------------------------------------------------- */

static int writer_append(void *data, const char *p, size_t n) {
    pst_writer *w = data;
    if (w->err != 0)
        return -1;
    if (n > w->cap - w->len) {
        w->err = PST_E_NOSPACE;
        return -1;
    }
    if (n > 0)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

void pst_w_init(pst_writer *w, uint8_t *buf, size_t cap) {
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
    w->err = 0;
    msgpack_packer_init(&w->pk, w, writer_append);
}

void pst_w_record(pst_writer *w, uint8_t *buf, size_t cap, pst_rec_type type, uint32_t nfields) {
    pst_w_init(w, buf, cap);
    (void)msgpack_pack_array(&w->pk, nfields);
    (void)msgpack_pack_uint64(&w->pk, PST_PROTO_VERSION);
    (void)msgpack_pack_uint64(&w->pk, (uint64_t)type);
}

void pst_w_array(pst_writer *w, uint32_t n) { (void)msgpack_pack_array(&w->pk, n); }
void pst_w_map(pst_writer *w, uint32_t n) { (void)msgpack_pack_map(&w->pk, n); }
void pst_w_uint(pst_writer *w, uint64_t v) { (void)msgpack_pack_uint64(&w->pk, v); }
void pst_w_bool(pst_writer *w, bool v) {
    (void)(v ? msgpack_pack_true(&w->pk) : msgpack_pack_false(&w->pk));
}

void pst_w_bin(pst_writer *w, const void *p, size_t n) {
    if (n > UINT32_MAX) {
        w->err = w->err ? w->err : PST_E_TOOBIG;
        return;
    }
    (void)msgpack_pack_bin(&w->pk, n);
    (void)msgpack_pack_bin_body(&w->pk, p, n);
}

void pst_w_str(pst_writer *w, const char *p, size_t n) {
    if (n > UINT32_MAX) {
        w->err = w->err ? w->err : PST_E_TOOBIG;
        return;
    }
    (void)msgpack_pack_str(&w->pk, n);
    (void)msgpack_pack_str_body(&w->pk, p, n);
}

void pst_w_cstr(pst_writer *w, const char *s) { pst_w_str(w, s, strlen(s)); }

void pst_w_raw(pst_writer *w, const void *p, size_t n) { (void)writer_append(w, p, n); }

int pst_w_finish(pst_writer *w, size_t *len) {
    if (w->err != 0) {
        if (len)
            *len = 0;
        return w->err;
    }
    if (len)
        *len = w->len;
    return PST_OK;
}

/* ---- reader: msgpack-c template with bounded callbacks --------------------- */

const pst_limits pst_limits_record = {
    .max_bytes = PST_RECORD_MAX,
    .max_depth = PST_MSGPACK_DEPTH_MAX,
    .max_elems = PST_ELEMENTS_MAX,
    .max_str = PST_RECORD_MAX,
    .max_bin = PST_RECORD_MAX,
    .allow_maps = false,
};

typedef struct {
    msgpack_zone *zone;
    const pst_limits *lim;
    size_t input_len;
    uint64_t elems_total; /* sum of all container counts seen so far */
    int err;              /* our reason for failing, when a callback fails */
} pst_unpack_user;

static int cb_fail(pst_unpack_user *u, int err) {
    if (u->err == 0)
        u->err = err;
    return -1;
}

static msgpack_object cb_root(pst_unpack_user *u) {
    (void)u;
    msgpack_object o;
    memset(&o, 0, sizeof o);
    o.type = MSGPACK_OBJECT_NIL;
    return o;
}

static int cb_uint(pst_unpack_user *u, uint64_t v, msgpack_object *o) {
    (void)u;
    o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o->via.u64 = v;
    return 0;
}
static int cb_uint8(pst_unpack_user *u, uint8_t v, msgpack_object *o) { return cb_uint(u, v, o); }
static int cb_uint16(pst_unpack_user *u, uint16_t v, msgpack_object *o) { return cb_uint(u, v, o); }
static int cb_uint32(pst_unpack_user *u, uint32_t v, msgpack_object *o) { return cb_uint(u, v, o); }
static int cb_uint64(pst_unpack_user *u, uint64_t v, msgpack_object *o) { return cb_uint(u, v, o); }

/* Signed ints: non-negative ones encoded as int* are non-canonical, negative
 * ones are never used by any record. Both are rejected. */
static int cb_int(pst_unpack_user *u, int64_t v, msgpack_object *o) {
    (void)v;
    (void)o;
    return cb_fail(u, PST_E_TYPE);
}
static int cb_int8(pst_unpack_user *u, int8_t v, msgpack_object *o) { return cb_int(u, v, o); }
static int cb_int16(pst_unpack_user *u, int16_t v, msgpack_object *o) { return cb_int(u, v, o); }
static int cb_int32(pst_unpack_user *u, int32_t v, msgpack_object *o) { return cb_int(u, v, o); }
static int cb_int64(pst_unpack_user *u, int64_t v, msgpack_object *o) { return cb_int(u, v, o); }

static int cb_float(pst_unpack_user *u, float v, msgpack_object *o) {
    (void)v;
    (void)o;
    return cb_fail(u, PST_E_TYPE);
}
static int cb_double(pst_unpack_user *u, double v, msgpack_object *o) {
    (void)v;
    (void)o;
    return cb_fail(u, PST_E_TYPE);
}
static int cb_nil(pst_unpack_user *u, msgpack_object *o) {
    (void)o;
    return cb_fail(u, PST_E_TYPE);
}
static int cb_true(pst_unpack_user *u, msgpack_object *o) {
    (void)u;
    o->type = MSGPACK_OBJECT_BOOLEAN;
    o->via.boolean = true;
    return 0;
}
static int cb_false(pst_unpack_user *u, msgpack_object *o) {
    (void)u;
    o->type = MSGPACK_OBJECT_BOOLEAN;
    o->via.boolean = false;
    return 0;
}

static int cb_container_count(pst_unpack_user *u, unsigned int n) {
    if (n > u->lim->max_elems)
        return cb_fail(u, PST_E_TOOBIG);
    /* Every element needs at least one input byte: a header that promises
     * more elements than bytes remain is a lie, reject before allocating. */
    u->elems_total += n;
    if (u->elems_total > u->input_len)
        return cb_fail(u, PST_E_TRUNCATED);
    return 0;
}

static int cb_array(pst_unpack_user *u, unsigned int n, msgpack_object *o) {
    if (cb_container_count(u, n) != 0)
        return -1;
    o->type = MSGPACK_OBJECT_ARRAY;
    o->via.array.size = 0;
    o->via.array.ptr = NULL;
    if (n == 0)
        return 0;
    o->via.array.ptr = msgpack_zone_malloc(u->zone, (size_t)n * sizeof(msgpack_object));
    if (o->via.array.ptr == NULL)
        return cb_fail(u, PST_E_NOMEM);
    return 0;
}

static int cb_array_item(pst_unpack_user *u, msgpack_object *c, msgpack_object o) {
    (void)u;
    c->via.array.ptr[c->via.array.size++] = o;
    return 0;
}

static int cb_map(pst_unpack_user *u, unsigned int n, msgpack_object *o) {
    if (!u->lim->allow_maps)
        return cb_fail(u, PST_E_TYPE);
    /* a pair is two elements, each at least one byte */
    if (cb_container_count(u, n) != 0 || cb_container_count(u, 0) != 0)
        return -1;
    u->elems_total += n;
    if (u->elems_total > u->input_len)
        return cb_fail(u, PST_E_TRUNCATED);
    o->type = MSGPACK_OBJECT_MAP;
    o->via.map.size = 0;
    o->via.map.ptr = NULL;
    if (n == 0)
        return 0;
    o->via.map.ptr = msgpack_zone_malloc(u->zone, (size_t)n * sizeof(msgpack_object_kv));
    if (o->via.map.ptr == NULL)
        return cb_fail(u, PST_E_NOMEM);
    return 0;
}

static int cb_map_item(pst_unpack_user *u, msgpack_object *c, msgpack_object k, msgpack_object v) {
    if (k.type != MSGPACK_OBJECT_STR)
        return cb_fail(u, PST_E_TYPE);
    for (uint32_t i = 0; i < c->via.map.size; i++) {
        const msgpack_object *pk = &c->via.map.ptr[i].key;
        /* msgpack-c gives an empty str a NULL pointer: never memcmp it */
        if (pk->via.str.size == k.via.str.size &&
            (k.via.str.size == 0 || memcmp(pk->via.str.ptr, k.via.str.ptr, k.via.str.size) == 0))
            return cb_fail(u, PST_E_NONCANONICAL);
    }
    c->via.map.ptr[c->via.map.size].key = k;
    c->via.map.ptr[c->via.map.size].val = v;
    c->via.map.size++;
    return 0;
}

static int cb_str(pst_unpack_user *u, const char *b, const char *p, unsigned int l,
                  msgpack_object *o) {
    (void)b;
    if (l > u->lim->max_str)
        return cb_fail(u, PST_E_TOOBIG);
    o->type = MSGPACK_OBJECT_STR;
    o->via.str.ptr = p;
    o->via.str.size = l;
    return 0;
}

static int cb_bin(pst_unpack_user *u, const char *b, const char *p, unsigned int l,
                  msgpack_object *o) {
    (void)b;
    if (l > u->lim->max_bin)
        return cb_fail(u, PST_E_TOOBIG);
    o->type = MSGPACK_OBJECT_BIN;
    o->via.bin.ptr = p;
    o->via.bin.size = l;
    return 0;
}

static int cb_ext(pst_unpack_user *u, const char *b, const char *p, unsigned int l,
                  msgpack_object *o) {
    (void)b;
    (void)p;
    (void)l;
    (void)o;
    return cb_fail(u, PST_E_TYPE);
}

#define msgpack_unpack_func(ret, name) static ret pst_template##name
#define msgpack_unpack_callback(name) cb##name
#define msgpack_unpack_object msgpack_object
#define msgpack_unpack_user pst_unpack_user
#define msgpack_unpack_struct(name) struct pst_template##name

/* The template uses GNU case ranges; it is msgpack-c's code, not ours. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <msgpack/unpack_define.h>
#include <msgpack/unpack_template.h>
#pragma GCC diagnostic pop

static int depth_of(const msgpack_object *o, uint32_t depth, uint32_t max) {
    if (o->type != MSGPACK_OBJECT_ARRAY && o->type != MSGPACK_OBJECT_MAP)
        return PST_OK;
    if (depth + 1 > max)
        return PST_E_NESTING;
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            int rc = depth_of(&o->via.array.ptr[i], depth + 1, max);
            if (rc != PST_OK)
                return rc;
        }
    } else {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            int rc = depth_of(&o->via.map.ptr[i].val, depth + 1, max);
            if (rc != PST_OK)
                return rc;
        }
    }
    return PST_OK;
}

int pst_r_parse(pst_reader *r, const uint8_t *in, size_t len, const pst_limits *lim) {
    memset(r, 0, sizeof *r);
    r->root.type = MSGPACK_OBJECT_NIL;
    if (in == NULL || lim == NULL)
        return PST_E_INVAL;
    if (len == 0)
        return PST_E_TRUNCATED;
    if (len > lim->max_bytes)
        return PST_E_TOOBIG;
    if (!msgpack_zone_init(&r->zone, 1024))
        return PST_E_NOMEM;
    r->zone_live = true;

    struct pst_template_context ctx;
    pst_template_init(&ctx);
    ctx.user.zone = &r->zone;
    ctx.user.lim = lim;
    ctx.user.input_len = len;
    ctx.user.elems_total = 0;
    ctx.user.err = 0;

    size_t off = 0;
    int ret = pst_template_execute(&ctx, (const char *)in, len, &off);
    if (ret < 0) {
        if (ctx.user.err != 0)
            return ctx.user.err;
        /* msgpack-c reports its fixed 32-level stack overflow as NOMEM */
        return ret == MSGPACK_UNPACK_NOMEM_ERROR ? PST_E_NESTING : PST_E_MALFORMED;
    }
    if (ret == 0)
        return PST_E_TRUNCATED;
    if (off != len)
        return PST_E_TRAILING;
    r->root = pst_template_data(&ctx);
    int rc = depth_of(&r->root, 0, lim->max_depth);
    if (rc != PST_OK) {
        r->root.type = MSGPACK_OBJECT_NIL;
        return rc;
    }
    return PST_OK;
}

void pst_r_free(pst_reader *r) {
    if (r->zone_live)
        msgpack_zone_destroy(&r->zone);
    r->zone_live = false;
    r->root.type = MSGPACK_OBJECT_NIL;
}

int pst_r_array(const msgpack_object *o, uint32_t min, uint32_t max, const msgpack_object **items,
                uint32_t *n) {
    *items = NULL;
    *n = 0;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return PST_E_TYPE;
    if (o->via.array.size < min || o->via.array.size > max)
        return o->via.array.size > max ? PST_E_TOOBIG : PST_E_FIELDS;
    *items = o->via.array.ptr;
    *n = o->via.array.size;
    return PST_OK;
}

int pst_r_uint(const msgpack_object *o, uint64_t max, uint64_t *out) {
    *out = 0;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return PST_E_TYPE;
    if (o->via.u64 > max)
        return PST_E_RANGE;
    *out = o->via.u64;
    return PST_OK;
}

int pst_r_bool(const msgpack_object *o, bool *out) {
    *out = false;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return PST_E_TYPE;
    *out = o->via.boolean;
    return PST_OK;
}

int pst_r_bin_fixed(const msgpack_object *o, size_t n, uint8_t *out) {
    memset(out, 0, n);
    if (o->type != MSGPACK_OBJECT_BIN)
        return PST_E_TYPE;
    if (o->via.bin.size != n)
        return o->via.bin.size > n ? PST_E_TOOBIG : PST_E_RANGE;
    if (n > 0)
        memcpy(out, o->via.bin.ptr, n);
    return PST_OK;
}

int pst_r_bin(const msgpack_object *o, size_t max, const uint8_t **p, size_t *n) {
    *p = NULL;
    *n = 0;
    if (o->type != MSGPACK_OBJECT_BIN)
        return PST_E_TYPE;
    if (o->via.bin.size > max)
        return PST_E_TOOBIG;
    *p = (const uint8_t *)o->via.bin.ptr;
    *n = o->via.bin.size;
    return PST_OK;
}

/* Strings on the wire: well-formed UTF-8 without NUL. */
static bool utf8_valid(const unsigned char *s, size_t n) {
    /* an empty string may come with a NULL pointer: memchr must not see it */
    return n == 0 || (memchr(s, 0, n) == NULL && pst_utf8_valid(s, n));
}

int pst_r_str(const msgpack_object *o, size_t max, const char **p, size_t *n) {
    *p = NULL;
    *n = 0;
    if (o->type != MSGPACK_OBJECT_STR)
        return PST_E_TYPE;
    if (o->via.str.size > max)
        return PST_E_TOOBIG;
    if (!utf8_valid((const unsigned char *)o->via.str.ptr, o->via.str.size))
        return PST_E_RANGE;
    *p = o->via.str.ptr;
    *n = o->via.str.size;
    return PST_OK;
}

int pst_r_str_copy(const msgpack_object *o, char *out, size_t cap) {
    const char *p;
    size_t n;
    if (cap == 0)
        return PST_E_NOSPACE;
    out[0] = '\0';
    int rc = pst_r_str(o, cap - 1, &p, &n);
    if (rc != PST_OK)
        return rc;
    if (n > 0) /* p is NULL for an empty str */
        memcpy(out, p, n);
    out[n] = '\0';
    return PST_OK;
}

int pst_r_record(const msgpack_object *root, pst_rec_type want, uint32_t nfields,
                 const msgpack_object **items) {
    uint32_t n;
    uint64_t v;
    *items = NULL;
    if (root->type != MSGPACK_OBJECT_ARRAY)
        return PST_E_TYPE;
    const msgpack_object *it = root->via.array.ptr;
    n = root->via.array.size;
    if (n < 2)
        return PST_E_FIELDS;
    if (pst_r_uint(&it[0], UINT64_MAX, &v) != PST_OK)
        return PST_E_TYPE;
    if (v != PST_PROTO_VERSION)
        return PST_E_VERSION;
    if (pst_r_uint(&it[1], UINT64_MAX, &v) != PST_OK)
        return PST_E_TYPE;
    if (v != (uint64_t)want)
        return PST_E_RECTYPE;
    if (n != nfields)
        return PST_E_FIELDS;
    *items = it;
    return PST_OK;
}

int pst_r_start(const uint8_t *in, void *out, size_t size) {
    if (out != NULL)
        memset(out, 0, size);
    return in != NULL && out != NULL ? PST_OK : PST_E_INVAL;
}

int pst_r_open(pst_reader *r, const uint8_t *in, size_t len, const pst_limits *lim,
               pst_rec_type want, uint32_t nfields, const msgpack_object **items) {
    int rc = pst_r_parse(r, in, len, lim);
    if (rc == PST_OK)
        rc = pst_r_record(&r->root, want, nfields, items);
    return rc;
}

int pst_r_bin_opt(const msgpack_object *o, size_t n, uint8_t *out, bool *present) {
    const uint8_t *p;
    size_t len;
    *present = false;
    int rc = pst_r_bin(o, n, &p, &len);
    if (rc != PST_OK)
        return rc;
    if (len != 0 && len != n)
        return PST_E_RANGE;
    *present = len != 0;
    if (len != 0)
        memcpy(out, p, n);
    return PST_OK;
}

int pst_canonical_check(const uint8_t *in, size_t in_len, const uint8_t *re, size_t re_len) {
    if (in_len != re_len || memcmp(in, re, in_len) != 0)
        return PST_E_NONCANONICAL;
    return PST_OK;
}

bool pst_r_text_ok(const char *s, size_t n, size_t max) {
    msgpack_object o;
    const char *p;
    size_t m;
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t)n;
    return n <= UINT32_MAX && pst_r_str(&o, max, &p, &m) == PST_OK;
}
