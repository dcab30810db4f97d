/* libFuzzer target: control Response decoder and the value tree (as a
 * response body and as a bare value), plus the CLI's JSON writer. Whatever
 * decodes must re-encode to exactly the input; nothing may leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canonical_harness.h"
#include "json.h"
#include "pst_envelope.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_ctrl_response, PST_CTRL_FRAME_MAX)

static uint8_t re[PST_CTRL_FRAME_MAX];

static void walk(const pst_value *v) {
    for (const pst_value *c = pst_value_first(v); c != NULL; c = pst_value_next(c)) {
        const char *k = pst_value_key(c);
        if (k != NULL && pst_value_get(v, k) != c)
            abort(); /* keys are unique, lookup finds the member */
        walk(c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *null;
    if (null == NULL && (null = fopen("/dev/null", "w")) == NULL)
        abort();
    size_t len;
    pst_ctrl_response r;
    if (decode_canonical(data, size, &r)) {
        walk(r.body);
        if (pst_value_write_json(r.body, null) != PST_OK)
            abort();
        pst_ctrl_response_free(&r);
    }
    pst_value *v;
    if (pst_value_decode(data, size, &v) == PST_OK) {
        if (pst_value_encode(v, re, sizeof re, &len) != PST_OK || len != size ||
            memcmp(re, data, size) != 0)
            abort();
        walk(v);
        pst_value_free(v);
    }
    return 0;
}
