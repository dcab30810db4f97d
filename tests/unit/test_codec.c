#include <criterion/criterion.h>
#include <string.h>

#include "codec.h"

static int parse(const uint8_t *in, size_t len) {
    pst_reader r;
    int rc = pst_r_parse(&r, in, len, &pst_limits_record);
    pst_r_free(&r);
    return rc;
}

Test(codec, writer_roundtrip) {
    uint8_t buf[64];
    pst_writer w;
    pst_w_init(&w, buf, sizeof buf);
    pst_w_array(&w, 4);
    pst_w_uint(&w, 1);
    pst_w_uint(&w, 300);
    pst_w_bin(&w, "ab", 2);
    pst_w_cstr(&w, "hi");
    size_t len;
    cr_assert_eq(pst_w_finish(&w, &len), PST_OK);
    const uint8_t want[] = {0x94, 0x01, 0xcd, 0x01, 0x2c, 0xc4, 0x02, 'a', 'b', 0xa2, 'h', 'i'};
    cr_assert_eq(len, sizeof want);
    cr_assert_arr_eq(buf, want, sizeof want);

    pst_reader r;
    cr_assert_eq(pst_r_parse(&r, buf, len, &pst_limits_record), PST_OK);
    const msgpack_object *it;
    uint32_t n;
    cr_assert_eq(pst_r_array(&r.root, 4, 4, &it, &n), PST_OK);
    uint64_t v;
    cr_assert_eq(pst_r_uint(&it[1], 1000, &v), PST_OK);
    cr_assert_eq(v, 300);
    cr_assert_eq(pst_r_uint(&it[1], 299, &v), PST_E_RANGE);
    char s[3];
    cr_assert_eq(pst_r_str_copy(&it[3], s, sizeof s), PST_OK);
    cr_assert_str_eq(s, "hi");
    cr_assert_eq(pst_r_str_copy(&it[3], s, 2), PST_E_TOOBIG);
    pst_r_free(&r);
}

Test(codec, writer_overflow_is_sticky) {
    uint8_t buf[4];
    pst_writer w;
    pst_w_init(&w, buf, sizeof buf);
    pst_w_bin(&w, "0123456789", 10);
    pst_w_uint(&w, 1);
    size_t len = 99;
    cr_assert_eq(pst_w_finish(&w, &len), PST_E_NOSPACE);
    cr_assert_eq(len, 0);
}

Test(codec, array_bomb_rejected_without_allocating) {
    const uint8_t bomb[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    cr_assert_eq(parse(bomb, sizeof bomb), PST_E_TOOBIG);
    pst_limits lim = pst_limits_record;
    lim.max_elems = UINT32_MAX;
    pst_reader r;
    cr_assert_eq(pst_r_parse(&r, bomb, sizeof bomb, &lim), PST_E_TRUNCATED);
    pst_r_free(&r);
}

Test(codec, truncated_trailing_empty) {
    const uint8_t ok[] = {0x92, 0x01, 0x02};
    cr_assert_eq(parse(ok, 3), PST_OK);
    cr_assert_eq(parse(ok, 2), PST_E_TRUNCATED);
    cr_assert_eq(parse(ok, 0), PST_E_TRUNCATED);
    const uint8_t trail[] = {0x92, 0x01, 0x02, 0x00};
    cr_assert_eq(parse(trail, 4), PST_E_TRAILING);
    const uint8_t bin_short[] = {0xc4, 0x10, 0x00};
    cr_assert_eq(parse(bin_short, 3), PST_E_TRUNCATED);
}

Test(codec, forbidden_types) {
    const uint8_t nil[] = {0x91, 0xc0};
    const uint8_t neg[] = {0x91, 0xff};
    const uint8_t flt[] = {0xca, 0, 0, 0, 0};
    const uint8_t ext[] = {0xd4, 0x01, 0x00};
    const uint8_t map[] = {0x81, 0xa1, 'a', 0x01};
    const uint8_t bad[] = {0xc1};
    cr_assert_eq(parse(nil, sizeof nil), PST_E_TYPE);
    cr_assert_eq(parse(neg, sizeof neg), PST_E_TYPE);
    cr_assert_eq(parse(flt, sizeof flt), PST_E_TYPE);
    cr_assert_eq(parse(ext, sizeof ext), PST_E_TYPE);
    cr_assert_eq(parse(map, sizeof map), PST_E_TYPE);
    cr_assert_eq(parse(bad, sizeof bad), PST_E_MALFORMED);
}

Test(codec, maps_when_allowed_reject_duplicate_keys) {
    pst_limits lim = pst_limits_record;
    lim.allow_maps = true;
    const uint8_t ok[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x02};
    const uint8_t dup[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
    const uint8_t intkey[] = {0x81, 0x01, 0x01};
    pst_reader r;
    cr_assert_eq(pst_r_parse(&r, ok, sizeof ok, &lim), PST_OK);
    pst_r_free(&r);
    cr_assert_eq(pst_r_parse(&r, dup, sizeof dup, &lim), PST_E_NONCANONICAL);
    pst_r_free(&r);
    cr_assert_eq(pst_r_parse(&r, intkey, sizeof intkey, &lim), PST_E_TYPE);
    pst_r_free(&r);
}

Test(codec, nesting_limit) {
    uint8_t deep[64];
    for (size_t i = 0; i < sizeof deep - 1; i++)
        deep[i] = 0x91;
    deep[sizeof deep - 1] = 0x01;
    cr_assert_eq(parse(deep, sizeof deep), PST_E_NESTING);
    /* depth exactly at the limit is fine */
    uint8_t at[PST_MSGPACK_DEPTH_MAX + 1];
    memset(at, 0x91, PST_MSGPACK_DEPTH_MAX);
    at[PST_MSGPACK_DEPTH_MAX] = 0x01;
    cr_assert_eq(parse(at, sizeof at), PST_OK);
    uint8_t over[PST_MSGPACK_DEPTH_MAX + 2];
    memset(over, 0x91, PST_MSGPACK_DEPTH_MAX + 1);
    over[PST_MSGPACK_DEPTH_MAX + 1] = 0x01;
    cr_assert_eq(parse(over, sizeof over), PST_E_NESTING);
}

Test(codec, strings_must_be_utf8_without_nul) {
    const uint8_t nul[] = {0xa2, 'a', 0x00};
    const uint8_t overlong[] = {0xa2, 0xc0, 0x80};
    const uint8_t good[] = {0xa3, 0xe2, 0x82, 0xac};
    pst_reader r;
    const char *p;
    size_t n;
    cr_assert_eq(pst_r_parse(&r, nul, sizeof nul, &pst_limits_record), PST_OK);
    cr_assert_eq(pst_r_str(&r.root, 10, &p, &n), PST_E_RANGE);
    pst_r_free(&r);
    cr_assert_eq(pst_r_parse(&r, overlong, sizeof overlong, &pst_limits_record), PST_OK);
    cr_assert_eq(pst_r_str(&r.root, 10, &p, &n), PST_E_RANGE);
    pst_r_free(&r);
    cr_assert_eq(pst_r_parse(&r, good, sizeof good, &pst_limits_record), PST_OK);
    cr_assert_eq(pst_r_str(&r.root, 10, &p, &n), PST_OK);
    cr_assert_eq(n, 3);
    pst_r_free(&r);
}

Test(codec, strerror_covers_every_code) {
    for (int e = 0; e >= PST_E_CHECKSUM; e--) {
        cr_assert_str_neq(pst_strerror(e), "unknown error", "code %d", e);
        cr_assert_str_neq(pst_err_name(e), "PST_E_UNKNOWN", "code %d", e);
    }
    cr_assert_str_eq(pst_strerror(-9999), "unknown error");
}
