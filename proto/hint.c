/* Hint (type 18): see pst_hint.h. */
#include "pst_hint.h"

#include <string.h>

#include "codec.h"

#define HINT_FIELDS 4u

_Static_assert(PST_NOTIFY_MAX >= 256 && PST_NOTIFY_MAX < 65536,
               "PST_HINT_MAX counts a bin 16 header for the notification");

int pst_hint_encode(const pst_hint *h, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (h == NULL || out == NULL || len == NULL || h->notification_len == 0 ||
        h->notification_len > PST_NOTIFY_MAX)
        return PST_E_INVAL;
    pst_writer w;
    pst_w_record(&w, out, cap, PST_REC_HINT, HINT_FIELDS);
    pst_w_bin(&w, h->recipient, PST_SIGN_PK_BYTES);
    pst_w_bin(&w, h->notification, h->notification_len);
    int rc = pst_w_finish(&w, len);
    if (rc != PST_OK)
        memset(out, 0, cap);
    return rc;
}

int pst_hint_decode(const uint8_t *in, size_t len, pst_hint *out) {
    if (pst_r_start(in, out, sizeof *out) != PST_OK)
        return PST_E_INVAL;
    pst_limits lim = pst_limits_record;
    lim.max_bytes = PST_HINT_MAX;
    lim.max_depth = 1;
    lim.max_bin = PST_NOTIFY_MAX;
    pst_reader rd;
    const msgpack_object *it = NULL;
    const uint8_t *p = NULL;
    int rc = pst_r_open(&rd, in, len, &lim, PST_REC_HINT, HINT_FIELDS, &it);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[2], PST_SIGN_PK_BYTES, out->recipient);
    if (rc == PST_OK)
        rc = pst_r_bin(&it[3], PST_NOTIFY_MAX, &p, &out->notification_len);
    if (rc == PST_OK && out->notification_len == 0)
        rc = PST_E_RANGE;
    if (rc == PST_OK)
        memcpy(out->notification, p, out->notification_len);
    pst_r_free(&rd);
    if (rc == PST_OK) {
        uint8_t re[PST_HINT_MAX];
        size_t n;
        rc = pst_hint_encode(out, re, sizeof re, &n);
        if (rc == PST_OK)
            rc = pst_canonical_check(in, len, re, n);
    }
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    return rc;
}
