/* The CLI's JSON writer (tools/postern/json.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "recutil.h"

/* JSON of v as a malloc'd string. */
static char *json(const pst_value *v) {
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    cr_assert_not_null(f);
    cr_assert_eq(pst_value_write_json(v, f), PST_OK);
    fclose(f);
    return s;
}

static void assert_json(const pst_value *v, const char *want) {
    char *got = json(v);
    cr_assert_str_eq(got, want);
    free(got);
}

static const char *sample_json =
    "{\"fingerprint\":\"ybndrfg8\",\"seq\":3,\"revoked\":false,\"key\":\"00ff10ab\","
    "\"addresses\":[\"alice@example.org\",{\"host\":\"a\\\"b\\\\c\\n\\t\\u0001\",\"port\":7401}],"
    "\"empty\":{},\"none\":[],\"utf\":\"caf\xc3\xa9\",\"big\":18446744073709551615}";

Test(json, every_kind_and_escapes) {
    pst_value *b = ru_sample_value();
    assert_json(b, sample_json);
    /* a subtree can be written on its own */
    const pst_value *addrs = pst_value_get(b, "addresses");
    assert_json(pst_value_at(addrs, 1), "{\"host\":\"a\\\"b\\\\c\\n\\t\\u0001\",\"port\":7401}");
    FILE *ro = fopen("/dev/null", "r");
    cr_assert_eq(pst_value_write_json(b, ro), PST_E_IO);
    fclose(ro);
    cr_assert_eq(pst_value_write_json(NULL, stdout), PST_E_INVAL);
    cr_assert_eq(pst_value_write_json(b, NULL), PST_E_INVAL);
    pst_value_free(b);
}

Test(json, decoded_trees) {
    pst_value *b = ru_sample_value(), *d;
    uint8_t buf[1024];
    size_t len;
    cr_assert_eq(pst_value_encode(b, buf, sizeof buf, &len), PST_OK);
    cr_assert_eq(pst_value_decode(buf, len, &d), PST_OK);
    assert_json(d, sample_json);
    pst_value_free(d);
    pst_value_free(b);
    cr_assert_eq(pst_value_decode((const uint8_t *)"\x91\x81\xa1k\x05", 5, &d), PST_OK);
    assert_json(d, "[{\"k\":5}]");
    pst_value_free(d);
    /* scalar roots, and the control byte 0x7f */
    const uint8_t scalars[][3] = {{0x05}, {0xc3}, {0xa1, 'x'}, {0xc4, 0x01, 0xee}, {0xa1, 0x7f}};
    const size_t slen[] = {1, 1, 2, 3, 2};
    const char *sjson[] = {"5", "true", "\"x\"", "\"ee\"", "\"\\u007f\""};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(pst_value_decode(scalars[i], slen[i], &d), PST_OK);
        assert_json(d, sjson[i]);
        pst_value_free(d);
    }
}
