/* Control envelope and the generic value tree (see pst_envelope.h). */
#include "pst_envelope.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define REQUEST_FIELDS 5u
#define RESPONSE_FIELDS 6u

_Static_assert(PST_VALUE_BYTES_MAX <= PST_CTRL_FRAME_MAX, "a body fits in a frame");

/* ---- tree internals ------------------------------------------------------ */

typedef struct value_tree {
    pst_value *root;
    pst_value *all; /* every node, newest first, for freeing */
    uint32_t nodes;
    size_t bytes; /* exact canonical encoding size of the whole tree */
    int err;      /* sticky builder error */
} value_tree;

struct pst_value {
    pst_value_kind kind;
    int depth; /* containers above this value: the root is 0 */
    value_tree *tree;
    pst_value *next; /* next sibling in the parent */
    pst_value *all;
    const char *key; /* map members only, NUL-terminated, inline */
    size_t key_len;
    union {
        uint64_t u;
        bool b;
        struct {
            const uint8_t *p; /* inline; str data is NUL-terminated */
            size_t n;
        } bytes;
        struct {
            pst_value *first, *last;
            uint32_t n;
        } list;
    } as;
    unsigned char data[]; /* key then payload */
};

static size_t str_hdr(size_t n) { return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5; }
static size_t bin_hdr(size_t n) { return n < 256 ? 2 : n < 65536 ? 3 : 5; }
static size_t list_hdr(size_t n) { return n < 16 ? 1 : n < 65536 ? 3 : 5; }
static size_t uint_size(uint64_t v) {
    return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= UINT32_MAX ? 5 : 9;
}

/* Valid UTF-8 without NUL, with the codec's own rules, so that whatever the
 * builder accepts the decoder accepts too. */
static bool utf8_ok(const char *p, size_t n) {
    msgpack_object o;
    memset(&o, 0, sizeof o);
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = p;
    o.via.str.size = (uint32_t)n;
    const char *q;
    size_t m;
    return n <= UINT32_MAX && pst_r_str(&o, n, &q, &m) == PST_OK;
}

static bool is_container(const pst_value *v) {
    return v->kind == PST_VALUE_ARRAY || v->kind == PST_VALUE_MAP;
}

static pst_value *new_root(pst_value_kind kind) {
    value_tree *t = calloc(1, sizeof *t);
    pst_value *v = calloc(1, sizeof *v);
    if (t == NULL || v == NULL) {
        free(t);
        free(v);
        return NULL;
    }
    v->kind = kind;
    v->tree = t;
    t->root = v;
    t->all = v;
    t->nodes = 1;
    t->bytes = list_hdr(0);
    return v;
}

pst_value *pst_value_new_map(void) { return new_root(PST_VALUE_MAP); }
pst_value *pst_value_new_array(void) { return new_root(PST_VALUE_ARRAY); }

void pst_value_free(pst_value *root) {
    if (root == NULL || root->tree->root != root)
        return;
    value_tree *t = root->tree;
    pst_value *v = t->all;
    while (v != NULL) {
        pst_value *next = v->all;
        free(v);
        v = next;
    }
    free(t);
}

static int tree_fail(value_tree *t, int err) {
    if (t->err == 0)
        t->err = err;
    return t->err;
}

/* Appends a new child of kind to parent, with room for n payload bytes,
 * after checking every cap. The caller fills the payload. */
static int add_child(pst_value *parent, const char *key, pst_value_kind kind, size_t n,
                     size_t enc_size, pst_value **out) {
    *out = NULL;
    if (parent == NULL)
        return PST_E_INVAL;
    value_tree *t = parent->tree;
    if (t->err != 0)
        return t->err;
    if (!is_container(parent) || (parent->kind == PST_VALUE_MAP) != (key != NULL))
        return tree_fail(t, PST_E_INVAL);
    size_t key_len = 0;
    if (key != NULL) {
        key_len = strnlen(key, PST_VALUE_KEY_MAX + 1);
        if (key_len == 0 || key_len > PST_VALUE_KEY_MAX || !utf8_ok(key, key_len))
            return tree_fail(t, PST_E_INVAL);
        for (const pst_value *c = parent->as.list.first; c != NULL; c = c->next)
            if (c->key_len == key_len && memcmp(c->key, key, key_len) == 0)
                return tree_fail(t, PST_E_EXISTS);
        enc_size += str_hdr(key_len) + key_len;
    }
    /* a container child sits at nesting level parent->depth + 2 */
    if ((kind == PST_VALUE_ARRAY || kind == PST_VALUE_MAP) &&
        parent->depth + 2 > (int)PST_VALUE_DEPTH_MAX)
        return tree_fail(t, PST_E_NESTING);
    uint32_t cnt = parent->as.list.n;
    enc_size += list_hdr((size_t)cnt + 1) - list_hdr(cnt);
    if (t->nodes >= PST_VALUE_NODES_MAX || cnt >= PST_VALUE_NODES_MAX ||
        enc_size > PST_VALUE_BYTES_MAX - t->bytes)
        return tree_fail(t, PST_E_TOOBIG);

    pst_value *v = calloc(1, sizeof *v + key_len + 1 + n + 1);
    if (v == NULL)
        return tree_fail(t, PST_E_NOMEM);
    v->kind = kind;
    v->depth = parent->depth + 1;
    v->tree = t;
    if (key != NULL) {
        memcpy(v->data, key, key_len);
        v->key = (const char *)v->data;
        v->key_len = key_len;
    }
    v->as.bytes.p = v->data + key_len + 1; /* overwritten for non-byte kinds */
    v->all = t->all;
    t->all = v;
    t->nodes++;
    t->bytes += enc_size;
    if (parent->as.list.last != NULL)
        parent->as.list.last->next = v;
    else
        parent->as.list.first = v;
    parent->as.list.last = v;
    parent->as.list.n++;
    *out = v;
    return PST_OK;
}

int pst_value_add_uint(pst_value *parent, const char *key, uint64_t u) {
    pst_value *v;
    int rc = add_child(parent, key, PST_VALUE_UINT, 0, uint_size(u), &v);
    if (rc == PST_OK)
        v->as.u = u;
    return rc;
}

int pst_value_add_bool(pst_value *parent, const char *key, bool b) {
    pst_value *v;
    int rc = add_child(parent, key, PST_VALUE_BOOL, 0, 1, &v);
    if (rc == PST_OK)
        v->as.b = b;
    return rc;
}

static int add_bytes(pst_value *parent, const char *key, pst_value_kind kind, const void *p,
                     size_t n) {
    if (parent == NULL)
        return PST_E_INVAL;
    if (parent->tree->err != 0)
        return parent->tree->err;
    if ((p == NULL && n > 0) || n > PST_VALUE_BYTES_MAX ||
        (kind == PST_VALUE_STR && !utf8_ok(p, n)))
        return tree_fail(parent->tree, n > PST_VALUE_BYTES_MAX ? PST_E_TOOBIG : PST_E_INVAL);
    size_t hdr = kind == PST_VALUE_STR ? str_hdr(n) : bin_hdr(n);
    pst_value *v;
    int rc = add_child(parent, key, kind, n, hdr + n, &v);
    if (rc == PST_OK) {
        if (n > 0)
            memcpy((uint8_t *)v->as.bytes.p, p, n);
        v->as.bytes.n = n;
    }
    return rc;
}

int pst_value_add_str(pst_value *parent, const char *key, const char *s) {
    if (s == NULL)
        return parent == NULL ? PST_E_INVAL : tree_fail(parent->tree, PST_E_INVAL);
    return add_bytes(parent, key, PST_VALUE_STR, s, strlen(s));
}

int pst_value_add_bin(pst_value *parent, const char *key, const void *p, size_t n) {
    return add_bytes(parent, key, PST_VALUE_BIN, p, n);
}

static pst_value *add_list(pst_value *parent, const char *key, pst_value_kind kind) {
    pst_value *v;
    if (add_child(parent, key, kind, 0, list_hdr(0), &v) != PST_OK)
        return NULL;
    memset(&v->as, 0, sizeof v->as);
    return v;
}

pst_value *pst_value_add_map(pst_value *parent, const char *key) {
    return add_list(parent, key, PST_VALUE_MAP);
}
pst_value *pst_value_add_array(pst_value *parent, const char *key) {
    return add_list(parent, key, PST_VALUE_ARRAY);
}

int pst_value_error(const pst_value *v) { return v == NULL ? PST_E_INVAL : v->tree->err; }

/* ---- accessors ----------------------------------------------------------- */

pst_value_kind pst_value_type(const pst_value *v) { return v == NULL ? PST_VALUE_NONE : v->kind; }

int pst_value_as_uint(const pst_value *v, uint64_t *out) {
    *out = 0;
    if (v == NULL || v->kind != PST_VALUE_UINT)
        return PST_E_TYPE;
    *out = v->as.u;
    return PST_OK;
}

int pst_value_as_bool(const pst_value *v, bool *out) {
    *out = false;
    if (v == NULL || v->kind != PST_VALUE_BOOL)
        return PST_E_TYPE;
    *out = v->as.b;
    return PST_OK;
}

static const uint8_t *as_bytes(const pst_value *v, pst_value_kind kind, size_t *len) {
    if (len)
        *len = 0;
    if (v == NULL || v->kind != kind)
        return NULL;
    if (len)
        *len = v->as.bytes.n;
    return v->as.bytes.p;
}

const char *pst_value_as_str(const pst_value *v, size_t *len) {
    return (const char *)as_bytes(v, PST_VALUE_STR, len);
}
const uint8_t *pst_value_as_bin(const pst_value *v, size_t *len) {
    return as_bytes(v, PST_VALUE_BIN, len);
}

uint32_t pst_value_count(const pst_value *v) {
    return v != NULL && is_container(v) ? v->as.list.n : 0;
}

const pst_value *pst_value_first(const pst_value *v) {
    return v != NULL && is_container(v) ? v->as.list.first : NULL;
}

const pst_value *pst_value_next(const pst_value *child) {
    return child == NULL ? NULL : child->next;
}

const pst_value *pst_value_at(const pst_value *v, uint32_t i) {
    const pst_value *c = pst_value_first(v);
    while (c != NULL && i-- > 0)
        c = c->next;
    return c;
}

const char *pst_value_key(const pst_value *member) { return member == NULL ? NULL : member->key; }

const pst_value *pst_value_get(const pst_value *map, const char *key) {
    if (map == NULL || key == NULL || map->kind != PST_VALUE_MAP)
        return NULL;
    size_t n = strlen(key);
    for (const pst_value *c = map->as.list.first; c != NULL; c = c->next)
        if (c->key_len == n && memcmp(c->key, key, n) == 0)
            return c;
    return NULL;
}

/* ---- encode / decode ----------------------------------------------------- */

static void value_write(pst_writer *w, const pst_value *v) {
    switch (v->kind) {
    case PST_VALUE_UINT:
        pst_w_uint(w, v->as.u);
        break;
    case PST_VALUE_BOOL:
        pst_w_bool(w, v->as.b);
        break;
    case PST_VALUE_STR:
        pst_w_str(w, (const char *)v->as.bytes.p, v->as.bytes.n);
        break;
    case PST_VALUE_BIN:
        pst_w_bin(w, v->as.bytes.p, v->as.bytes.n);
        break;
    case PST_VALUE_ARRAY:
    case PST_VALUE_MAP:
        if (v->kind == PST_VALUE_ARRAY)
            pst_w_array(w, v->as.list.n);
        else
            pst_w_map(w, v->as.list.n);
        for (const pst_value *c = v->as.list.first; c != NULL; c = c->next) {
            if (v->kind == PST_VALUE_MAP)
                pst_w_str(w, c->key, c->key_len);
            value_write(w, c); /* depth <= PST_VALUE_DEPTH_MAX */
        }
        break;
    default:
        w->err = w->err ? w->err : PST_E_INVAL;
        break;
    }
}

int pst_value_encode(const pst_value *v, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (v == NULL || out == NULL || len == NULL)
        return PST_E_INVAL;
    if (v->tree->err != 0)
        return v->tree->err;
    pst_writer w;
    pst_w_init(&w, out, cap);
    value_write(&w, v);
    return pst_w_finish(&w, len);
}

/* Copies a parsed msgpack object into parent (key for map members) through
 * the builders, so decoded trees obey exactly the builders' caps. */
static int from_object(pst_value *parent, const char *key, const msgpack_object *o);

static int from_children(pst_value *v, const msgpack_object *o) {
    int rc = PST_OK;
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; rc == PST_OK && i < o->via.array.size; i++)
            rc = from_object(v, NULL, &o->via.array.ptr[i]);
        return rc;
    }
    char key[PST_VALUE_KEY_MAX + 1];
    for (uint32_t i = 0; rc == PST_OK && i < o->via.map.size; i++) {
        rc = pst_r_str_copy(&o->via.map.ptr[i].key, key, sizeof key);
        if (rc == PST_OK && key[0] == '\0')
            rc = PST_E_RANGE;
        if (rc == PST_OK)
            rc = from_object(v, key, &o->via.map.ptr[i].val);
    }
    return rc;
}

static int from_object(pst_value *parent, const char *key, const msgpack_object *o) {
    const char *s;
    const uint8_t *b;
    size_t n;
    int rc;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return pst_value_add_uint(parent, key, o->via.u64);
    case MSGPACK_OBJECT_BOOLEAN:
        return pst_value_add_bool(parent, key, o->via.boolean);
    case MSGPACK_OBJECT_STR:
        rc = pst_r_str(o, PST_VALUE_BYTES_MAX, &s, &n);
        return rc != PST_OK ? rc : add_bytes(parent, key, PST_VALUE_STR, s, n);
    case MSGPACK_OBJECT_BIN:
        rc = pst_r_bin(o, PST_VALUE_BYTES_MAX, &b, &n);
        return rc != PST_OK ? rc : add_bytes(parent, key, PST_VALUE_BIN, b, n);
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP: {
        pst_value *v = o->type == MSGPACK_OBJECT_ARRAY ? pst_value_add_array(parent, key)
                                                       : pst_value_add_map(parent, key);
        return v == NULL ? pst_value_error(parent) : from_children(v, o);
    }
    default:
        return PST_E_TYPE;
    }
}

/* A decoded body becomes a new root; scalar roots are built inside a
 * scratch array and then promoted, so they share the one code path. */
static int tree_from_object(const msgpack_object *o, pst_value **out) {
    *out = NULL;
    pst_value *holder = pst_value_new_array();
    if (holder == NULL)
        return PST_E_NOMEM;
    /* the holder must not count against any cap: it is not part of the tree */
    holder->depth = -1;
    holder->tree->nodes = 0;
    holder->tree->bytes = 0;
    int rc = from_object(holder, NULL, o);
    if (rc == PST_OK)
        rc = pst_value_error(holder);
    if (rc != PST_OK) {
        pst_value_free(holder);
        return rc;
    }
    value_tree *t = holder->tree;
    pst_value *root = holder->as.list.first;
    /* unlink the holder from the free list (it is the oldest node) */
    pst_value **pp = &t->all;
    while (*pp != holder)
        pp = &(*pp)->all;
    *pp = holder->all;
    free(holder);
    t->root = root;
    *out = root;
    return PST_OK;
}

static pst_limits value_limits(uint32_t depth) {
    pst_limits lim = pst_limits_record;
    lim.max_bytes = PST_CTRL_FRAME_MAX;
    lim.max_depth = depth;
    lim.max_elems = PST_VALUE_NODES_MAX;
    lim.max_str = PST_VALUE_BYTES_MAX;
    lim.max_bin = PST_VALUE_BYTES_MAX;
    lim.allow_maps = true;
    return lim;
}

/* Re-encodes with fn and compares, in a heap buffer (frames reach 1 MiB). */
static int canonical_heap(int (*fn)(const void *, uint8_t *, size_t, size_t *), const void *r,
                          const uint8_t *in, size_t len) {
    uint8_t *re = malloc(len);
    if (re == NULL)
        return PST_E_NOMEM;
    size_t n;
    int rc = fn(r, re, len, &n);
    if (rc == PST_E_NOSPACE)
        rc = PST_E_NONCANONICAL; /* the canonical form is longer than the input */
    if (rc == PST_OK)
        rc = pst_canonical_check(in, len, re, n);
    free(re);
    return rc;
}

static int value_encode_cb(const void *v, uint8_t *out, size_t cap, size_t *len) {
    return pst_value_encode(v, out, cap, len);
}

int pst_value_decode(const uint8_t *in, size_t len, pst_value **out) {
    if (out == NULL)
        return PST_E_INVAL;
    *out = NULL;
    if (in == NULL)
        return PST_E_INVAL;
    pst_limits lim = value_limits(PST_VALUE_DEPTH_MAX);
    pst_reader rd;
    pst_value *v = NULL;
    int rc = pst_r_parse(&rd, in, len, &lim);
    if (rc == PST_OK)
        rc = tree_from_object(&rd.root, &v);
    pst_r_free(&rd);
    if (rc == PST_OK)
        rc = canonical_heap(value_encode_cb, v, in, len);
    if (rc != PST_OK) {
        pst_value_free(v);
        return rc;
    }
    *out = v;
    return PST_OK;
}

/* ---- Request ------------------------------------------------------------- */

static bool command_ok(const char *c) {
    size_t n = strnlen(c, PST_CTRL_COMMAND_MAX + 1);
    if (n == 0 || n > PST_CTRL_COMMAND_MAX || c[0] < 'a' || c[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((c[i] < 'a' || c[i] > 'z') && c[i] != '-')
            return false;
    return true;
}

static int request_validate(const pst_ctrl_request *r) {
    if (!command_ok(r->command) || r->n_args > PST_CTRL_ARGS_MAX)
        return PST_E_RANGE;
    for (uint32_t i = 0; i < r->n_args; i++) {
        size_t n = strnlen(r->args[i], PST_CTRL_ARG_MAX + 1);
        if (n > PST_CTRL_ARG_MAX || !utf8_ok(r->args[i], n))
            return PST_E_RANGE;
    }
    return PST_OK;
}

int pst_ctrl_request_init(pst_ctrl_request *r, uint64_t id, const char *command) {
    if (r == NULL)
        return PST_E_INVAL;
    memset(r, 0, sizeof *r);
    if (command == NULL || !command_ok(command))
        return PST_E_INVAL;
    r->id = id;
    memcpy(r->command, command, strlen(command) + 1);
    return PST_OK;
}

int pst_ctrl_request_add_arg(pst_ctrl_request *r, const char *key, const char *value) {
    if (r == NULL || value == NULL || (key != NULL && (key[0] == '\0' || strchr(key, '=') != NULL)))
        return PST_E_INVAL;
    size_t kl = key != NULL ? strlen(key) : 0, vl = strlen(value);
    if ((key != NULL && !utf8_ok(key, kl)) || !utf8_ok(value, vl))
        return PST_E_INVAL;
    size_t total = key != NULL ? kl + 1 + vl : vl;
    if (kl > PST_CTRL_ARG_MAX || vl > PST_CTRL_ARG_MAX || total > PST_CTRL_ARG_MAX)
        return PST_E_TOOBIG;
    if (r->n_args >= PST_CTRL_ARGS_MAX)
        return PST_E_NOSPACE;
    char *a = r->args[r->n_args++];
    if (key != NULL) {
        memcpy(a, key, kl);
        a[kl] = '=';
        a += kl + 1;
    }
    memcpy(a, value, vl + 1);
    return PST_OK;
}

int pst_ctrl_request_encode(const pst_ctrl_request *r, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (r == NULL || out == NULL || len == NULL || request_validate(r) != PST_OK)
        return PST_E_INVAL;
    pst_writer w;
    pst_w_record(&w, out, cap, PST_REC_CTRL_REQUEST, REQUEST_FIELDS);
    pst_w_uint(&w, r->id);
    pst_w_cstr(&w, r->command);
    pst_w_array(&w, r->n_args);
    for (uint32_t i = 0; i < r->n_args; i++)
        pst_w_cstr(&w, r->args[i]);
    return pst_w_finish(&w, len);
}

static int request_encode_cb(const void *r, uint8_t *out, size_t cap, size_t *len) {
    return pst_ctrl_request_encode(r, out, cap, len);
}

int pst_ctrl_request_decode(const uint8_t *in, size_t len, pst_ctrl_request *out) {
    if (pst_r_start(in, out, sizeof *out) != PST_OK)
        return PST_E_INVAL;
    pst_limits lim = pst_limits_record;
    lim.max_bytes = PST_CTRL_FRAME_MAX;
    lim.max_depth = 2;
    lim.max_str = PST_CTRL_ARG_MAX;
    lim.max_bin = 0;
    pst_reader rd;
    const msgpack_object *it = NULL, *args = NULL;
    uint32_t n = 0;
    int rc = pst_r_open(&rd, in, len, &lim, PST_REC_CTRL_REQUEST, REQUEST_FIELDS, &it);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[2], UINT64_MAX, &out->id);
    if (rc == PST_OK)
        rc = pst_r_str_copy(&it[3], out->command, sizeof out->command);
    if (rc == PST_OK && !command_ok(out->command))
        rc = PST_E_RANGE;
    if (rc == PST_OK)
        rc = pst_r_array(&it[4], 0, PST_CTRL_ARGS_MAX, &args, &n);
    for (uint32_t i = 0; rc == PST_OK && i < n; i++)
        rc = pst_r_str_copy(&args[i], out->args[i], sizeof out->args[i]);
    out->n_args = n;
    pst_r_free(&rd);
    if (rc == PST_OK)
        rc = canonical_heap(request_encode_cb, out, in, len);
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- Response ------------------------------------------------------------ */

static int response_validate(const pst_ctrl_response *r) {
    size_t n = strnlen(r->error, PST_CTRL_ERROR_MAX + 1);
    if (r->status > PST_CTRL_STATUS_MAX || n > PST_CTRL_ERROR_MAX || !utf8_ok(r->error, n) ||
        (r->status == 0 && n != 0))
        return PST_E_RANGE;
    return PST_OK;
}

int pst_ctrl_response_encode(const pst_ctrl_response *r, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (r == NULL || out == NULL || len == NULL || response_validate(r) != PST_OK)
        return PST_E_INVAL;
    if (r->body != NULL && r->body->tree->err != 0)
        return r->body->tree->err;
    pst_writer w;
    pst_w_record(&w, out, cap, PST_REC_CTRL_RESPONSE, RESPONSE_FIELDS);
    pst_w_uint(&w, r->id);
    pst_w_uint(&w, r->status);
    pst_w_cstr(&w, r->error);
    if (r->body != NULL)
        value_write(&w, r->body);
    else
        pst_w_map(&w, 0);
    return pst_w_finish(&w, len);
}

static int response_encode_cb(const void *r, uint8_t *out, size_t cap, size_t *len) {
    return pst_ctrl_response_encode(r, out, cap, len);
}

int pst_ctrl_response_decode(const uint8_t *in, size_t len, pst_ctrl_response *out) {
    if (pst_r_start(in, out, sizeof *out) != PST_OK)
        return PST_E_INVAL;
    pst_limits lim = value_limits(PST_VALUE_DEPTH_MAX + 1);
    pst_reader rd;
    const msgpack_object *it = NULL;
    int rc = pst_r_open(&rd, in, len, &lim, PST_REC_CTRL_RESPONSE, RESPONSE_FIELDS, &it);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[2], UINT64_MAX, &out->id);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[3], PST_CTRL_STATUS_MAX, &out->status);
    if (rc == PST_OK)
        rc = pst_r_str_copy(&it[4], out->error, sizeof out->error);
    if (rc == PST_OK)
        rc = response_validate(out);
    if (rc == PST_OK)
        rc = tree_from_object(&it[5], &out->body);
    pst_r_free(&rd);
    if (rc == PST_OK)
        rc = canonical_heap(response_encode_cb, out, in, len);
    if (rc != PST_OK)
        pst_ctrl_response_free(out);
    return rc;
}

void pst_ctrl_response_free(pst_ctrl_response *r) {
    if (r == NULL)
        return;
    pst_value_free(r->body);
    memset(r, 0, sizeof *r);
}
