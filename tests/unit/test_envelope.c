#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "pst_envelope.h"
#include "recutil.h"
#include "testutil.h"

/* The canonical encoding of v is want[0..n). */
static void assert_encodes_to(const pst_value *v, const void *want, size_t n) {
    uint8_t buf[1024];
    size_t len;
    cr_assert_eq(pst_value_encode(v, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(len, n);
    cr_assert_arr_eq(buf, want, n);
}

/* got and want are the same tree: same canonical encoding. */
static void assert_same_value(const pst_value *got, const pst_value *want) {
    uint8_t buf[1024];
    size_t len;
    cr_assert_eq(pst_value_encode(want, buf, sizeof buf, &len), PST_OK);
    assert_encodes_to(got, buf, len);
}

/* ---- request ------------------------------------------------------------- */

static pst_ctrl_request *new_request(void) {
    pst_ctrl_request *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    r->id = 42;
    strcpy(r->command, "key-get");
    r->n_args = 2;
    strcpy(r->args[0], "alice@example.org");
    strcpy(r->args[1], "--json");
    return r;
}

Test(envelope, request_roundtrip_and_vector) {
    pst_ctrl_request *r = new_request(), *d = calloc(1, sizeof *d);
    uint8_t buf[256];
    size_t len;
    cr_assert_eq(pst_ctrl_request_encode(r, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_OK);
    cr_assert_eq(d->id, 42);
    cr_assert_str_eq(d->command, "key-get");
    cr_assert_eq(d->n_args, 2);
    cr_assert_str_eq(d->args[0], "alice@example.org");
    cr_assert_str_eq(d->args[1], "--json");
    ru_expect_vector("envelope_request_v1.hex", buf, len);
    for (size_t cut = 0; cut < len; cut++)
        cr_assert_neq(pst_ctrl_request_decode(buf, cut, d), PST_OK);
    r->n_args = 0;
    cr_assert_eq(pst_ctrl_request_encode(r, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_OK);
    cr_assert_eq(d->n_args, 0);
    free(r);
    free(d);
}

Test(envelope, request_limits) {
    pst_ctrl_request *r = new_request(), *d = calloc(1, sizeof *d);
    size_t cap = PST_CTRL_FRAME_MAX, len;
    uint8_t *buf = malloc(cap);
    /* everything at its max */
    r->id = UINT64_MAX;
    memset(r->command, 'z', PST_CTRL_COMMAND_MAX);
    r->n_args = PST_CTRL_ARGS_MAX;
    for (uint32_t i = 0; i < PST_CTRL_ARGS_MAX; i++) {
        memset(r->args[i], 'a' + (int)(i % 26), PST_CTRL_ARG_MAX);
        r->args[i][PST_CTRL_ARG_MAX] = 0;
    }
    cr_assert_eq(pst_ctrl_request_encode(r, buf, cap, &len), PST_OK);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_OK);
    cr_assert_eq(memcmp(r, d, sizeof *r), 0);
    cr_assert_eq(pst_ctrl_request_encode(r, buf, 1000, &len), PST_E_NOSPACE);
    cr_assert_eq(len, 0);
    r->n_args = PST_CTRL_ARGS_MAX + 1;
    cr_assert_eq(pst_ctrl_request_encode(r, buf, cap, &len), PST_E_INVAL);
    r->n_args = 1;
    memset(r->args[0], 'a', sizeof r->args[0]); /* unterminated: over the max */
    cr_assert_eq(pst_ctrl_request_encode(r, buf, cap, &len), PST_E_INVAL);
    strcpy(r->args[0], "\xc0\x80"); /* overlong NUL: not UTF-8 */
    cr_assert_eq(pst_ctrl_request_encode(r, buf, cap, &len), PST_E_INVAL);
    strcpy(r->args[0], "caf\xc3\xa9 ok");
    cr_assert_eq(pst_ctrl_request_encode(r, buf, cap, &len), PST_OK);
    const char *bad_cmds[] = {"", "Key-get", "key_get", "-key", "key get", "k3y"};
    for (size_t i = 0; i < sizeof bad_cmds / sizeof bad_cmds[0]; i++) {
        strcpy(r->command, bad_cmds[i]);
        cr_assert_eq(pst_ctrl_request_encode(r, buf, cap, &len), PST_E_INVAL, "%s", bad_cmds[i]);
    }
    memset(r->command, 'a', sizeof r->command); /* 33 letters, unterminated */
    cr_assert_eq(pst_ctrl_request_encode(r, buf, cap, &len), PST_E_INVAL);
    free(buf);
    free(r);
    free(d);
}

/* The one builder of request arguments: what it accepts encodes, decodes and
 * splits back at its first '='; what it refuses leaves the request as it was. */
Test(envelope, request_builder) {
    pst_ctrl_request *r = calloc(1, sizeof *r), *d = calloc(1, sizeof *d);
    size_t cap = PST_CTRL_FRAME_MAX, len;
    uint8_t *buf = malloc(cap);
    cr_assert_eq(pst_ctrl_request_init(r, 9, "Send"), PST_E_INVAL);
    cr_assert_eq(r->command[0], '\0');
    cr_assert_eq(pst_ctrl_request_init(r, 9, NULL), PST_E_INVAL);
    cr_assert_eq(pst_ctrl_request_init(r, 9, "send"), PST_OK);
    cr_assert_eq(pst_ctrl_request_add_arg(r, "to", "alice@example.org"), PST_OK);
    cr_assert_eq(pst_ctrl_request_add_arg(r, "to", "bob@example.org"), PST_OK); /* lists repeat */
    cr_assert_eq(pst_ctrl_request_add_arg(r, "name", "a=b c\xc3\xa9"), PST_OK);
    cr_assert_eq(pst_ctrl_request_add_arg(r, "empty", ""), PST_OK);
    cr_assert_eq(pst_ctrl_request_add_arg(r, NULL, "positional"), PST_OK);
    /* refused, r unchanged: no key, a key with '=' (the split would move),
     * not UTF-8 in key or value, no value */
    const char *bad_keys[] = {"", "a=b", "=", "k\xff", "\xc0\x80"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++)
        cr_assert_eq(pst_ctrl_request_add_arg(r, bad_keys[i], "v"), PST_E_INVAL, "key %zu", i);
    cr_assert_eq(pst_ctrl_request_add_arg(r, "k", "caf\xe9"), PST_E_INVAL);
    cr_assert_eq(pst_ctrl_request_add_arg(r, NULL, "\xed\xa0\x80"), PST_E_INVAL); /* surrogate */
    cr_assert_eq(pst_ctrl_request_add_arg(r, "k", NULL), PST_E_INVAL);
    cr_assert_eq(pst_ctrl_request_add_arg(NULL, "k", "v"), PST_E_INVAL);
    /* too long: the whole "key=value" counts */
    char *big = malloc(PST_CTRL_ARG_MAX + 2);
    memset(big, 'v', PST_CTRL_ARG_MAX + 1);
    big[PST_CTRL_ARG_MAX + 1] = '\0';
    cr_assert_eq(pst_ctrl_request_add_arg(r, NULL, big), PST_E_TOOBIG);
    big[PST_CTRL_ARG_MAX] = '\0';
    cr_assert_eq(pst_ctrl_request_add_arg(r, "k", big), PST_E_TOOBIG);
    cr_assert_eq(pst_ctrl_request_add_arg(r, big, "v"), PST_E_TOOBIG);
    big[PST_CTRL_ARG_MAX - 2] = '\0';
    cr_assert_eq(pst_ctrl_request_add_arg(r, "k", big), PST_OK); /* exactly the max */
    cr_assert_eq(strlen(r->args[5]), PST_CTRL_ARG_MAX);
    cr_assert_eq(r->n_args, 6);
    cr_assert_eq(pst_ctrl_request_encode(r, buf, cap, &len), PST_OK);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_OK);
    cr_assert_eq(memcmp(r, d, sizeof *r), 0);
    cr_assert_str_eq(d->args[0], "to=alice@example.org");
    cr_assert_str_eq(d->args[2], "name=a=b c\xc3\xa9");
    cr_assert_str_eq(d->args[3], "empty=");
    cr_assert_str_eq(d->args[4], "positional");
    /* full */
    while (r->n_args < PST_CTRL_ARGS_MAX)
        cr_assert_eq(pst_ctrl_request_add_arg(r, "k", "v"), PST_OK);
    cr_assert_eq(pst_ctrl_request_add_arg(r, "k", "v"), PST_E_NOSPACE);
    cr_assert_eq(r->n_args, PST_CTRL_ARGS_MAX);
    cr_assert_eq(pst_ctrl_request_encode(r, buf, cap, &len), PST_OK);
    free(big);
    free(buf);
    free(r);
    free(d);
}

/* [1, 10, id, command, args] with raw control over each part. */
static size_t raw_request(uint8_t *buf, size_t cap, uint32_t nfields, uint64_t type,
                          const char *cmd, uint32_t nargs, size_t arg_len) {
    pst_writer w;
    pst_w_init(&w, buf, cap);
    pst_w_array(&w, nfields);
    pst_w_uint(&w, 1);
    pst_w_uint(&w, type);
    pst_w_uint(&w, 7);
    pst_w_cstr(&w, cmd);
    pst_w_array(&w, nargs);
    char *arg = malloc(arg_len + 1);
    memset(arg, 'x', arg_len);
    arg[arg_len] = 0;
    for (uint32_t i = 0; i < nargs; i++)
        pst_w_cstr(&w, arg);
    free(arg);
    return ru_finish_fields(&w, 5, nfields);
}

Test(envelope, request_malformed) {
    size_t cap = 2 * PST_CTRL_FRAME_MAX, len;
    uint8_t *buf = malloc(cap);
    pst_ctrl_request *d = calloc(1, sizeof *d);
    len = raw_request(buf, cap, 5, 10, "status", 1, 3);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_OK);
    len = raw_request(buf, cap, 5, 11, "status", 1, 3);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_E_RECTYPE);
    len = raw_request(buf, cap, 6, 10, "status", 1, 3);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_E_FIELDS);
    len = raw_request(buf, cap, 5, 10, "Status", 1, 3);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_E_RANGE);
    cr_assert_eq(d->command[0], 0, "zeroed on failure");
    len = raw_request(buf, cap, 5, 10, "status", PST_CTRL_ARGS_MAX + 1, 3);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_E_TOOBIG);
    len = raw_request(buf, cap, 5, 10, "status", 1, PST_CTRL_ARG_MAX + 1);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_E_TOOBIG);
    len = raw_request(buf, cap, 5, 10, "status", 1, PST_CTRL_ARG_MAX);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_OK);
    len = raw_request(buf, cap, 5, 10, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 0);
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_E_TOOBIG);
    len = raw_request(buf, cap, 5, 10, "status", 0, 0);
    buf[len] = 0;
    cr_assert_eq(pst_ctrl_request_decode(buf, len + 1, d), PST_E_TRAILING);
    buf[1] = 3;
    cr_assert_eq(pst_ctrl_request_decode(buf, len, d), PST_E_VERSION);
    /* frame over the cap before parsing */
    cr_assert_eq(pst_ctrl_request_decode(buf, PST_CTRL_FRAME_MAX + 1, d), PST_E_TOOBIG);
    /* id 7 as uint16: non-canonical; args holding a map: wrong type */
    const uint8_t nc[] = {0x95, 0x01, 0x0a, 0xcd, 0x00, 0x07, 0xa1, 'a', 0x90};
    cr_assert_eq(pst_ctrl_request_decode(nc, sizeof nc, d), PST_E_NONCANONICAL);
    const uint8_t ok[] = {0x95, 0x01, 0x0a, 0x07, 0xa1, 'a', 0x90};
    cr_assert_eq(pst_ctrl_request_decode(ok, sizeof ok, d), PST_OK);
    const uint8_t map[] = {0x95, 0x01, 0x0a, 0x07, 0xa1, 'a', 0x80};
    cr_assert_eq(pst_ctrl_request_decode(map, sizeof map, d), PST_E_TYPE);
    const uint8_t binarg[] = {0x95, 0x01, 0x0a, 0x07, 0xa1, 'a', 0x91, 0xc4, 0x00};
    cr_assert_eq(pst_ctrl_request_decode(binarg, sizeof binarg, d), PST_E_TYPE);
    free(buf);
    free(d);
}

/* ---- value tree ---------------------------------------------------------- */

Test(envelope, value_tree_accessors) {
    pst_value *b = ru_sample_value();
    cr_assert_eq(pst_value_type(b), PST_VALUE_MAP);
    cr_assert_eq(pst_value_count(b), 9);
    uint64_t u;
    bool flag = true;
    cr_assert_eq(pst_value_as_uint(pst_value_get(b, "seq"), &u), PST_OK);
    cr_assert_eq(u, 3);
    cr_assert_eq(pst_value_as_uint(pst_value_get(b, "fingerprint"), &u), PST_E_TYPE);
    cr_assert_eq(u, 0);
    cr_assert_eq(pst_value_as_bool(pst_value_get(b, "revoked"), &flag), PST_OK);
    cr_assert(!flag);
    size_t n;
    cr_assert_str_eq(pst_value_as_str(pst_value_get(b, "fingerprint"), &n), "ybndrfg8");
    cr_assert_eq(n, 8);
    cr_assert_null(pst_value_as_str(pst_value_get(b, "seq"), &n));
    const uint8_t *k = pst_value_as_bin(pst_value_get(b, "key"), &n);
    cr_assert_eq(n, 4);
    cr_assert_eq(k[1], 0xff);
    cr_assert_null(pst_value_get(b, "missing"));
    cr_assert_null(pst_value_get(pst_value_get(b, "seq"), "x"));
    const pst_value *addrs = pst_value_get(b, "addresses");
    cr_assert_eq(pst_value_count(addrs), 2);
    cr_assert_str_eq(pst_value_as_str(pst_value_at(addrs, 0), NULL), "alice@example.org");
    cr_assert_eq(pst_value_type(pst_value_at(addrs, 1)), PST_VALUE_MAP);
    cr_assert_null(pst_value_at(addrs, 2));
    cr_assert_null(pst_value_key(pst_value_at(addrs, 0)));
    const char *keys[16];
    int i = 0;
    for (const pst_value *c = pst_value_first(b); c && i < 16; c = pst_value_next(c))
        keys[i++] = pst_value_key(c);
    cr_assert_eq(i, 9);
    cr_assert_str_eq(keys[0], "fingerprint");
    cr_assert_str_eq(keys[8], "big");
    cr_assert_eq(pst_value_type(NULL), PST_VALUE_NONE);
    cr_assert_eq(pst_value_count(NULL), 0);
    pst_value_free(b);
    pst_value_free(NULL);
}

Test(envelope, value_encode_decode_roundtrip) {
    pst_value *b = ru_sample_value(), *d;
    uint8_t buf[1024], re[1024];
    size_t len, rlen;
    cr_assert_eq(pst_value_encode(b, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_value_decode(buf, len, &d), PST_OK);
    cr_assert_eq(pst_value_encode(d, re, sizeof re, &rlen), PST_OK);
    cr_assert_eq(rlen, len);
    cr_assert_arr_eq(re, buf, len);
    assert_same_value(d, b);
    for (size_t cut = 0; cut < len; cut++) {
        pst_value *x = (pst_value *)1;
        cr_assert_neq(pst_value_decode(buf, cut, &x), PST_OK);
        cr_assert_null(x);
    }
    cr_assert_eq(pst_value_encode(b, buf, 10, &len), PST_E_NOSPACE);
    pst_value_free(b);
    pst_value_free(d);
    /* freeing a non-root is a no-op; its root frees it */
    cr_assert_eq(pst_value_decode((const uint8_t *)"\x91\x81\xa1k\x05", 5, &d), PST_OK);
    pst_value_free((pst_value *)pst_value_first(d));
    assert_encodes_to(d, "\x91\x81\xa1k\x05", 5);
    pst_value_free(d);
    /* scalar roots decode too */
    const uint8_t scalars[][3] = {{0x05}, {0xc3}, {0xa1, 'x'}, {0xc4, 0x01, 0xee}};
    const size_t slen[] = {1, 1, 2, 3};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pst_value_decode(scalars[i], slen[i], &d), PST_OK);
        assert_encodes_to(d, scalars[i], slen[i]);
        cr_assert_eq(pst_value_add_uint(d, NULL, 1), PST_E_INVAL, "scalars hold nothing");
        pst_value_free(d);
    }
}

Test(envelope, value_decode_rejects) {
    pst_value *d = NULL;
    const struct {
        const char *bytes;
        size_t len;
        int want;
    } cases[] = {
        {"\x82\xa1k\x01\xa1k\x02", 7, PST_E_NONCANONICAL}, /* duplicate key */
        {"\x81\x01\x01", 3, PST_E_TYPE},                   /* uint key */
        {"\x81\xa0\x01", 3, PST_E_RANGE},                  /* empty key */
        {"\x91\xc0", 2, PST_E_TYPE},                       /* nil */
        {"\x91\xcb\0\0\0\0\0\0\0\0", 10, PST_E_TYPE},      /* float */
        {"\xde\x00\x01\xa1k\x01", 6, PST_E_NONCANONICAL},  /* map16 for 1 pair */
        {"\xdc\x00\x00", 3, PST_E_NONCANONICAL},           /* array16 for 0 */
        {"\xd9\x01x", 3, PST_E_NONCANONICAL},              /* str8 for 1 byte */
        {"\xcc\x05", 2, PST_E_NONCANONICAL},               /* uint8 for 5 */
        {"\xa2\xc3\x28", 3, PST_E_RANGE},                  /* invalid UTF-8 */
        {"\x91\x01\x02", 3, PST_E_TRAILING},
        {"\x92\x01", 2, PST_E_TRUNCATED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(pst_value_decode((const uint8_t *)cases[i].bytes, cases[i].len, &d),
                     cases[i].want, "case %zu", i);
        cr_assert_null(d);
    }
    /* depth: 7 nested arrays fine, 8 too deep */
    uint8_t deep[16];
    memset(deep, 0x91, sizeof deep);
    deep[PST_VALUE_DEPTH_MAX] = 0x01;
    cr_assert_eq(pst_value_decode(deep, PST_VALUE_DEPTH_MAX + 1, &d), PST_OK);
    pst_value_free(d);
    memset(deep, 0x91, sizeof deep);
    deep[PST_VALUE_DEPTH_MAX + 1] = 0x01;
    cr_assert_eq(pst_value_decode(deep, PST_VALUE_DEPTH_MAX + 2, &d), PST_E_NESTING);
}

Test(envelope, value_node_cap) {
    /* builder: root + 4095 children is the max */
    pst_value *a = pst_value_new_array();
    for (uint32_t i = 0; i < PST_VALUE_NODES_MAX - 1; i++)
        cr_assert_eq(pst_value_add_uint(a, NULL, i), PST_OK);
    cr_assert_eq(pst_value_add_uint(a, NULL, 1), PST_E_TOOBIG);
    cr_assert_eq(pst_value_error(a), PST_E_TOOBIG);
    cr_assert_null(pst_value_add_map(a, NULL));
    size_t cap = PST_CTRL_FRAME_MAX, len;
    uint8_t *buf = malloc(cap);
    cr_assert_eq(pst_value_encode(a, buf, cap, &len), PST_E_TOOBIG, "sticky");
    pst_value_free(a);

    /* decode: an array of 4095 decodes, 4096 elements (+ root) do not */
    pst_writer w;
    pst_value *d;
    for (uint32_t n = PST_VALUE_NODES_MAX - 1; n <= PST_VALUE_NODES_MAX; n++) {
        pst_w_init(&w, buf, cap);
        pst_w_array(&w, n);
        for (uint32_t i = 0; i < n; i++)
            pst_w_uint(&w, 1);
        cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
        cr_assert_eq(pst_value_decode(buf, len, &d),
                     n < PST_VALUE_NODES_MAX ? PST_OK : PST_E_TOOBIG);
        pst_value_free(d);
    }
    /* nested containers count against the same total */
    pst_w_init(&w, buf, cap);
    pst_w_array(&w, 2);
    for (int k = 0; k < 2; k++) {
        pst_w_array(&w, 2048);
        for (uint32_t i = 0; i < 2048; i++)
            pst_w_uint(&w, 1);
    }
    cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
    cr_assert_eq(pst_value_decode(buf, len, &d), PST_E_TOOBIG);
    free(buf);
}

Test(envelope, value_byte_and_depth_caps) {
    size_t cap = PST_CTRL_FRAME_MAX, len;
    uint8_t *buf = malloc(cap), *blob = calloc(1, PST_VALUE_BYTES_MAX);
    /* a map whose encoding is exactly PST_VALUE_BYTES_MAX bytes:
     * 1 (map hdr) + 2 (key "b") + 5 (bin32 hdr) + n */
    pst_value *m = pst_value_new_map();
    size_t n = PST_VALUE_BYTES_MAX - 8;
    cr_assert_eq(pst_value_add_bin(m, "b", blob, n), PST_OK);
    cr_assert_eq(pst_value_encode(m, buf, cap, &len), PST_OK);
    cr_assert_eq(len, PST_VALUE_BYTES_MAX);
    cr_assert_eq(pst_value_add_bool(m, "x", true), PST_E_TOOBIG);
    pst_value_free(m);
    m = pst_value_new_map();
    cr_assert_eq(pst_value_add_bin(m, "b", blob, n + 1), PST_E_TOOBIG);
    pst_value_free(m);

    /* the largest body still fits a response frame and decodes */
    m = pst_value_new_map();
    cr_assert_eq(pst_value_add_bin(m, "b", blob, n), PST_OK);
    pst_ctrl_response r = {.id = UINT64_MAX, .status = 255, .body = m};
    memset(r.error, 'e', PST_CTRL_ERROR_MAX);
    cr_assert_eq(pst_ctrl_response_encode(&r, buf, cap, &len), PST_OK);
    cr_assert_leq(len, PST_CTRL_FRAME_MAX);
    pst_ctrl_response d;
    cr_assert_eq(pst_ctrl_response_decode(buf, len, &d), PST_OK);
    pst_ctrl_response_free(&d);
    pst_value_free(m);

    /* depth: PST_VALUE_DEPTH_MAX nested containers, not one more */
    pst_value *root = pst_value_new_array(), *c = root;
    for (uint32_t i = 1; i < PST_VALUE_DEPTH_MAX; i++) {
        const char *k = pst_value_type(c) == PST_VALUE_MAP ? "m" : NULL;
        c = i % 2 ? pst_value_add_map(c, k) : pst_value_add_array(c, k);
        cr_assert_not_null(c, "level %u", i + 1);
    }
    cr_assert_eq(pst_value_add_uint(c, pst_value_type(c) == PST_VALUE_MAP ? "k" : NULL, 1), PST_OK);
    cr_assert_null(pst_value_add_array(c, pst_value_type(c) == PST_VALUE_MAP ? "a" : NULL));
    cr_assert_eq(pst_value_error(root), PST_E_NESTING);
    pst_value_free(root);
    root = pst_value_new_array();
    c = root;
    for (uint32_t i = 1; i < PST_VALUE_DEPTH_MAX; i++)
        c = pst_value_add_array(c, NULL);
    cr_assert_eq(pst_value_add_str(c, NULL, "deep"), PST_OK);
    pst_ctrl_response r2 = {.id = 1, .body = root};
    cr_assert_eq(pst_ctrl_response_encode(&r2, buf, cap, &len), PST_OK);
    cr_assert_eq(pst_ctrl_response_decode(buf, len, &d), PST_OK, "deepest body decodes");
    pst_ctrl_response_free(&d);
    pst_value_free(root);
    free(blob);
    free(buf);
}

Test(envelope, value_builder_errors_are_sticky) {
    pst_value *m = pst_value_new_map();
    cr_assert_eq(pst_value_add_uint(m, "a", 1), PST_OK);
    cr_assert_eq(pst_value_add_uint(m, "a", 2), PST_E_EXISTS);
    cr_assert_eq(pst_value_add_uint(m, "b", 2), PST_E_EXISTS, "sticky");
    uint8_t buf[64];
    size_t len;
    cr_assert_eq(pst_value_encode(m, buf, sizeof buf, &len), PST_E_EXISTS);
    pst_ctrl_response r = {.id = 1, .body = m};
    cr_assert_eq(pst_ctrl_response_encode(&r, buf, sizeof buf, &len), PST_E_EXISTS);
    pst_value_free(m);

    const char *long_key = NULL;
    char key[PST_VALUE_KEY_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = 0;
    long_key = key;
    struct {
        int step;
    } steps[] = {{0}, {1}, {2}, {3}, {4}, {5}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        pst_value *v = pst_value_new_map();
        pst_value *a = pst_value_add_array(v, "arr");
        int rc = 0;
        switch (steps[i].step) {
        case 0:
            rc = pst_value_add_uint(v, NULL, 1); /* map needs a key */
            break;
        case 1:
            rc = pst_value_add_uint(a, "k", 1); /* array takes none */
            break;
        case 2:
            rc = pst_value_add_str(v, "s", "\xff"); /* not UTF-8 */
            break;
        case 3:
            rc = pst_value_add_uint(v, long_key, 1);
            break;
        case 4:
            rc = pst_value_add_uint(v, "", 1);
            break;
        case 5:
            rc = pst_value_add_str(v, "s", NULL);
            break;
        }
        cr_assert_eq(rc, PST_E_INVAL, "step %d", steps[i].step);
        cr_assert_eq(pst_value_error(v), PST_E_INVAL);
        pst_value_free(v);
    }
    key[PST_VALUE_KEY_MAX] = 0;
    m = pst_value_new_map();
    cr_assert_eq(pst_value_add_uint(m, key, 1), PST_OK, "key at its max");
    cr_assert_eq(pst_value_add_uint(NULL, "x", 1), PST_E_INVAL);
    cr_assert_null(pst_value_add_map(NULL, "x"));
    cr_assert_eq(pst_value_add_bin(m, "empty", NULL, 0), PST_OK);
    pst_value_free(m);
}

/* ---- response ------------------------------------------------------------ */

Test(envelope, response_roundtrip_and_vector) {
    pst_value *b = ru_sample_value();
    pst_ctrl_response r = {.id = 42, .status = 0, .body = b}, d;
    uint8_t buf[1024];
    size_t len;
    cr_assert_eq(pst_ctrl_response_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_ctrl_response_decode(buf, len, &d), PST_OK);
    cr_assert_eq(d.id, 42);
    cr_assert_eq(d.status, 0);
    cr_assert_str_eq(d.error, "");
    assert_same_value(d.body, b);
    pst_ctrl_response_free(&d);
    cr_assert_null(d.body);
    ru_expect_vector("envelope_response_v1.hex", buf, len);
    for (size_t cut = 0; cut < len; cut++) {
        cr_assert_neq(pst_ctrl_response_decode(buf, cut, &d), PST_OK);
        cr_assert_null(d.body);
    }
    pst_value_free(b);

    /* error response without a body: the body is {} */
    pst_ctrl_response e = {.id = 43, .status = 2};
    strcpy(e.error, "key not found");
    cr_assert_eq(pst_ctrl_response_encode(&e, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_ctrl_response_decode(buf, len, &d), PST_OK);
    cr_assert_eq(d.status, 2);
    cr_assert_str_eq(d.error, "key not found");
    assert_encodes_to(d.body, "\x80", 1);
    pst_ctrl_response_free(&d);
    ru_expect_vector("envelope_response_error_v1.hex", buf, len);
}

Test(envelope, response_limits) {
    pst_ctrl_response r = {.id = 1, .status = 0}, d;
    uint8_t buf[2048];
    size_t len;
    strcpy(r.error, "oops");
    cr_assert_eq(pst_ctrl_response_encode(&r, buf, sizeof buf, &len), PST_E_INVAL, "ok + error");
    r.status = PST_CTRL_STATUS_MAX + 1;
    cr_assert_eq(pst_ctrl_response_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);
    r.status = PST_CTRL_STATUS_MAX;
    memset(r.error, 'e', PST_CTRL_ERROR_MAX);
    cr_assert_eq(pst_ctrl_response_encode(&r, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_ctrl_response_decode(buf, len, &d), PST_OK);
    pst_ctrl_response_free(&d);
    memset(r.error, 'e', sizeof r.error);
    cr_assert_eq(pst_ctrl_response_encode(&r, buf, sizeof buf, &len), PST_E_INVAL);

    const struct {
        const char *bytes;
        size_t len;
        int want;
    } cases[] = {
        {"\x96\x01\x0b\x01\x00\xa0\x80", 7, PST_OK},
        {"\x96\x01\x0b\x01\x00\xa0\xc0", 7, PST_E_TYPE},            /* nil body */
        {"\x96\x01\x0b\x01\x00\xa1x\x80", 8, PST_E_RANGE},          /* ok with error */
        {"\x96\x01\x0b\x01\xcd\x01\x00\xa1x\x80", 10, PST_E_RANGE}, /* status 256 */
        {"\x96\x01\x0a\x01\x00\xa0\x80", 7, PST_E_RECTYPE},
        {"\x95\x01\x0b\x01\x00\xa0", 6, PST_E_FIELDS},
        {"\x96\x01\x0b\x01\x00\xa0\x80\x80", 8, PST_E_TRAILING},
        {"\x96\x01\x0b\x01\x00\xa0\x82\xa1k\x01\xa1k\x01", 13, PST_E_NONCANONICAL},
        {"\x96\x01\x0b\xcc\x01\x00\xa0\x80", 8, PST_E_NONCANONICAL},
        {"\x96\x01\x0b\x01\x00\xa0\xde\x00\x00", 9, PST_E_NONCANONICAL},
        {"\x96\x01\x0b\x01\x00\xa0\x80", 7, PST_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(pst_ctrl_response_decode((const uint8_t *)cases[i].bytes, cases[i].len, &d),
                     cases[i].want, "case %zu", i);
        pst_ctrl_response_free(&d);
    }
    /* a body one level too deep for the frame */
    uint8_t deep[32] = {0x96, 0x01, 0x0b, 0x01, 0x00, 0xa0};
    memset(deep + 6, 0x91, PST_VALUE_DEPTH_MAX + 1);
    deep[6 + PST_VALUE_DEPTH_MAX + 1] = 0x01;
    cr_assert_eq(pst_ctrl_response_decode(deep, 6 + PST_VALUE_DEPTH_MAX + 2, &d), PST_E_NESTING);
    cr_assert_null(d.body);
}
