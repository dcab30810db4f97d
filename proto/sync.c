/* TrustSync records (see pst_sync.h). */
#include "pst_sync.h"

#include <string.h>

#include "codec.h"
#include "pst_utf8.h"

#define TRUSTSYNC_FIELDS 7u

_Static_assert(PST_TRUSTSYNC_MAX <= PST_RECORD_MAX, "a sync record is a small record");
_Static_assert(TRUSTSYNC_FIELDS <= PST_TRUSTSYNC_EMAILS_MAX, "the element cap holds the record");

/* One address as the store keeps it (lower-cased in ASCII, an '@', no
 * white space or control character), in UTF-8. */
static bool email_ok(const char *e) {
    size_t n = strnlen(e, PST_TRUSTSYNC_EMAIL_MAX + 1);
    if (n < PST_TRUSTSYNC_EMAIL_MIN || n > PST_TRUSTSYNC_EMAIL_MAX || memchr(e, '@', n) == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)e[i];
        if (c <= 0x20 || c == 0x7f || (c >= 'A' && c <= 'Z'))
            return false;
    }
    return pst_utf8_valid((const uint8_t *)e, n);
}

/* The list is a set written one way only: strictly ascending bytes. */
bool pst_contact_emails_ok(const char emails[][PST_TRUSTSYNC_EMAIL_MAX + 1], uint32_t n) {
    if (n > PST_TRUSTSYNC_EMAILS_MAX || (n > 0 && emails == NULL))
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (!email_ok(emails[i]) || (i > 0 && strcmp(emails[i - 1], emails[i]) >= 0))
            return false;
    return true;
}

static bool emails_ok(const pst_trustsync *r) {
    if (r->tier == PST_TRUSTSYNC_TIER_NONE && r->n_emails > 0)
        return false;
    return pst_contact_emails_ok(r->emails, r->n_emails);
}

/* Petname: 0..max bytes of UTF-8 without control characters; "" and no
 * emails when tier is 0. */
static int validate(const pst_trustsync *r) {
    size_t n = strnlen(r->petname, sizeof r->petname);
    if (r->tier > PST_TRUSTSYNC_TIER_MAX || n > PST_TRUSTSYNC_PETNAME_MAX || !emails_ok(r))
        return PST_E_RANGE;
    if (r->tier == PST_TRUSTSYNC_TIER_NONE && n > 0)
        return PST_E_RANGE;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)r->petname[i] < 0x20 || r->petname[i] == 0x7f)
            return PST_E_RANGE;
    if (n > 0 && !pst_utf8_valid((const uint8_t *)r->petname, n))
        return PST_E_RANGE;
    return PST_OK;
}

int pst_trustsync_encode(const pst_trustsync *r, uint8_t *out, size_t cap, size_t *len) {
    if (len)
        *len = 0;
    if (r == NULL || out == NULL || len == NULL || validate(r) != PST_OK)
        return PST_E_INVAL;
    pst_writer w;
    pst_w_record(&w, out, cap, PST_REC_TRUST_SYNC, TRUSTSYNC_FIELDS);
    pst_w_uint(&w, r->created);
    pst_w_bin(&w, r->subject, PST_SIGN_PK_BYTES);
    pst_w_uint(&w, r->tier);
    pst_w_cstr(&w, r->petname);
    pst_w_array(&w, r->n_emails);
    for (uint32_t i = 0; i < r->n_emails; i++)
        pst_w_cstr(&w, r->emails[i]);
    return pst_w_finish(&w, len);
}

int pst_trustsync_decode(const uint8_t *in, size_t len, pst_trustsync *out) {
    if (pst_r_start(in, out, sizeof *out) != PST_OK)
        return PST_E_INVAL;
    pst_limits lim = pst_limits_record;
    lim.max_bytes = PST_TRUSTSYNC_MAX;
    lim.max_depth = 2;
    lim.max_elems = PST_TRUSTSYNC_EMAILS_MAX; /* >= TRUSTSYNC_FIELDS */
    lim.max_str = PST_TRUSTSYNC_EMAIL_MAX;    /* the pet name is held to its own cap below */
    lim.max_bin = PST_SIGN_PK_BYTES;
    pst_reader rd;
    const msgpack_object *it = NULL, *em = NULL;
    uint64_t tier = 0;
    int rc = pst_r_open(&rd, in, len, &lim, PST_REC_TRUST_SYNC, TRUSTSYNC_FIELDS, &it);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[2], UINT64_MAX, &out->created);
    if (rc == PST_OK)
        rc = pst_r_bin_fixed(&it[3], PST_SIGN_PK_BYTES, out->subject);
    if (rc == PST_OK)
        rc = pst_r_uint(&it[4], PST_TRUSTSYNC_TIER_MAX, &tier);
    out->tier = (uint32_t)tier;
    if (rc == PST_OK)
        rc = pst_r_str_copy(&it[5], out->petname, sizeof out->petname);
    if (rc == PST_OK)
        rc = pst_r_array(&it[6], 0, PST_TRUSTSYNC_EMAILS_MAX, &em, &out->n_emails);
    for (uint32_t i = 0; rc == PST_OK && i < out->n_emails; i++)
        rc = pst_r_str_copy(&em[i], out->emails[i], sizeof out->emails[i]);
    pst_r_free(&rd);
    if (rc == PST_OK)
        rc = validate(out);
    if (rc == PST_OK) {
        uint8_t re[PST_TRUSTSYNC_MAX];
        size_t n;
        rc = pst_trustsync_encode(out, re, sizeof re, &n);
        rc = rc == PST_OK ? pst_canonical_check(in, len, re, n) : PST_E_RANGE;
    }
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    return rc;
}
