/* Hashcash v1 stamps: strict parsing, verification and the small formatting
 * helpers minting shares (see pst_hashcash.h). */
#include "pst_hashcash.h"

#include <nettle/sha1.h>
#include <sodium.h>
#include <string.h>

#define FIELD_COUNT 7u

/* The classic tool's alphabet for rand and counter (VALID_STR_CHARS in its
 * libhashcash): base64 plus '='. Anything else makes it reject the stamp. */
static bool b64_char(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
}

/* Resource and ext: visible ASCII except the field separator. Spaces would
 * break the X-Hashcash header, control bytes would break logs. */
static bool text_char(unsigned char c) { return c >= 0x21 && c <= 0x7e && c != ':'; }

static bool all_of(const char *s, size_t n, bool (*ok)(unsigned char)) {
    for (size_t i = 0; i < n; i++) {
        if (!ok((unsigned char)s[i]))
            return false;
    }
    return true;
}

static bool all_digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

static unsigned two_digits(const char *s) {
    return (unsigned)(s[0] - '0') * 10u + (unsigned)(s[1] - '0');
}

/* ---- civil dates (proleptic Gregorian, UTC) --------------------------------
 * Howard Hinnant's days_from_civil / civil_from_days, restricted to years
 * 2000..2099 so that everything stays unsigned and small; gmtime/timegm
 * would drag in the process time zone and time_t's width. */

static uint64_t days_from_civil(unsigned y, unsigned m, unsigned d) {
    y -= m <= 2;
    unsigned era = y / 400u;
    unsigned yoe = y - era * 400u;
    unsigned doy = (153u * (m > 2 ? m - 3u : m + 9u) + 2u) / 5u + d - 1u;
    unsigned doe = yoe * 365u + yoe / 4u - yoe / 100u + doy;
    return (uint64_t)era * 146097u + doe - 719468u;
}

static void civil_from_days(uint64_t z, unsigned *y, unsigned *m, unsigned *d) {
    z += 719468u;
    uint64_t era = z / 146097u;
    unsigned doe = (unsigned)(z - era * 146097u);
    unsigned yoe = (doe - doe / 1460u + doe / 36524u - doe / 146096u) / 365u;
    unsigned doy = doe - (365u * yoe + yoe / 4u - yoe / 100u);
    unsigned mp = (5u * doy + 2u) / 153u;
    *d = doy - (153u * mp + 2u) / 5u + 1u;
    *m = mp < 10u ? mp + 3u : mp - 9u;
    *y = (unsigned)(era * 400u) + yoe + (*m <= 2u);
}

static unsigned days_in_month(unsigned y, unsigned m) {
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4u == 0 && y % 100u != 0) || y % 400u == 0;
    return m == 2 && leap ? 29u : dim[m - 1];
}

/* YYMMDD[hhmm[ss]] -> unix seconds; false for any other width or an
 * impossible calendar time (no leap seconds, no 24:00). */
static bool parse_date(const char *s, size_t n, uint64_t *out) {
    if ((n != 6 && n != 10 && n != 12) || !all_digits(s, n))
        return false;
    unsigned y = 2000u + two_digits(s), mo = two_digits(s + 2), d = two_digits(s + 4);
    unsigned h = 0, mi = 0, sec = 0;
    if (n >= 10) {
        h = two_digits(s + 6);
        mi = two_digits(s + 8);
    }
    if (n == 12)
        sec = two_digits(s + 10);
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return false;
    *out = days_from_civil(y, mo, d) * 86400u + h * 3600u + mi * 60u + sec;
    return true;
}

int pst_hashcash_format_date(uint64_t t, char out[PST_HASHCASH_DATE_MAX + 1]) {
    if (t < PST_HASHCASH_EPOCH_MIN || t >= PST_HASHCASH_EPOCH_END) {
        out[0] = '\0';
        return PST_E_RANGE;
    }
    unsigned y, m, d;
    civil_from_days(t / 86400u, &y, &m, &d);
    unsigned sod = (unsigned)(t % 86400u);
    unsigned v[6] = {y - 2000u, m, d, sod / 3600u, sod / 60u % 60u, sod % 60u};
    for (unsigned i = 0; i < 6; i++) {
        out[2 * i] = (char)('0' + v[i] / 10u);
        out[2 * i + 1] = (char)('0' + v[i] % 10u);
    }
    out[PST_HASHCASH_DATE_MAX] = '\0';
    return PST_OK;
}

bool pst_hashcash_field_valid(const char *s, bool ext_field) {
    if (s == NULL)
        return false;
    size_t max = ext_field ? PST_HASHCASH_EXT_MAX : PST_HASHCASH_RESOURCE_MAX;
    size_t n = strnlen(s, max + 1);
    if (n > max || (!ext_field && n == 0))
        return false;
    return all_of(s, n, text_char);
}

/* ---- parsing --------------------------------------------------------------- */

static int parse_fail(pst_hashcash_fields *out) {
    memset(out, 0, sizeof *out);
    return PST_E_STAMP_FORMAT;
}

static void copy_field(char *dst, const char *src, size_t n) {
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int pst_hashcash_parse(const char *stamp, size_t len, pst_hashcash_fields *out) {
    if (out == NULL)
        return PST_E_INVAL;
    memset(out, 0, sizeof *out);
    if (stamp == NULL)
        return PST_E_INVAL;
    if (len == 0 || len > PST_HASHCASH_STAMP_MAX)
        return parse_fail(out);

    const char *f[FIELD_COUNT];
    size_t n[FIELD_COUNT];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && stamp[i] != ':')
            continue;
        if (nf == FIELD_COUNT)
            return parse_fail(out); /* an 8th field */
        f[nf] = stamp + start;
        n[nf] = i - start;
        nf++;
        start = i + 1;
    }
    if (nf != FIELD_COUNT)
        return parse_fail(out);

    /* version: exactly "1" (version 0 has another layout and no bits) */
    if (n[0] != 1 || f[0][0] != '1')
        return parse_fail(out);
    /* bits: canonical decimal, so one stamp has one spelling of its value */
    if (n[1] < 1 || n[1] > 3 || !all_digits(f[1], n[1]) || (n[1] > 1 && f[1][0] == '0'))
        return parse_fail(out);
    unsigned bits = 0;
    for (size_t i = 0; i < n[1]; i++)
        bits = bits * 10u + (unsigned)(f[1][i] - '0');
    if (bits > PST_HASHCASH_BITS_MAX)
        return parse_fail(out);
    if (!parse_date(f[2], n[2], &out->date))
        return parse_fail(out);
    if (n[3] < 1 || n[3] > PST_HASHCASH_RESOURCE_MAX || !all_of(f[3], n[3], text_char))
        return parse_fail(out);
    if (n[4] > PST_HASHCASH_EXT_MAX || !all_of(f[4], n[4], text_char))
        return parse_fail(out);
    if (n[5] < 1 || n[5] > PST_HASHCASH_RAND_MAX || !all_of(f[5], n[5], b64_char))
        return parse_fail(out);
    if (n[6] < 1 || n[6] > PST_HASHCASH_COUNTER_MAX || !all_of(f[6], n[6], b64_char))
        return parse_fail(out);

    out->bits = bits;
    copy_field(out->date_str, f[2], n[2]);
    copy_field(out->resource, f[3], n[3]);
    copy_field(out->ext, f[4], n[4]);
    copy_field(out->rand, f[5], n[5]);
    copy_field(out->counter, f[6], n[6]);
    return PST_OK;
}

/* ---- verification ---------------------------------------------------------- */

unsigned pst_hashcash_count_bits(const char *stamp, size_t len) {
    struct sha1_ctx ctx;
    uint8_t h[SHA1_DIGEST_SIZE];
    sha1_init(&ctx);
    sha1_update(&ctx, len, (const uint8_t *)stamp);
    sha1_digest(&ctx, sizeof h, h);
    unsigned bits = 0;
    for (size_t i = 0; i < sizeof h; i++) {
        if (h[i] == 0) {
            bits += 8;
            continue;
        }
        for (unsigned mask = 0x80; (h[i] & mask) == 0; mask >>= 1)
            bits++;
        break;
    }
    return bits;
}

void pst_hashcash_policy_init(pst_hashcash_policy *p, unsigned min_bits, const char *resource) {
    memset(p, 0, sizeof *p);
    p->min_bits = min_bits;
    p->resource = resource;
    p->ext = NULL;
    p->max_age = PST_HASHCASH_MAX_AGE_DEFAULT;
    p->max_future = PST_HASHCASH_MAX_FUTURE_DEFAULT;
}

static bool field_eq(const char *parsed, const char *want) {
    size_t n = strlen(parsed);
    return strnlen(want, n + 1) == n && memcmp(parsed, want, n) == 0;
}

static int verify_fail(pst_hashcash_result *out, int err) {
    if (out != NULL)
        memset(out, 0, sizeof *out);
    return err;
}

int pst_hashcash_verify(const char *stamp, size_t len, const pst_hashcash_policy *policy,
                        uint64_t now, pst_hashcash_result *out) {
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (stamp == NULL || policy == NULL || policy->resource == NULL ||
        policy->min_bits > PST_HASHCASH_BITS_MAX)
        return PST_E_INVAL;

    pst_hashcash_fields f;
    int rc = pst_hashcash_parse(stamp, len, &f);
    if (rc != PST_OK)
        return verify_fail(out, rc);
    if (f.bits < policy->min_bits)
        return verify_fail(out, PST_E_STAMP_BITS);
    if (!field_eq(f.resource, policy->resource))
        return verify_fail(out, PST_E_STAMP_RESOURCE);
    if (policy->ext != NULL && !field_eq(f.ext, policy->ext))
        return verify_fail(out, PST_E_STAMP_EXT);
    if (f.date > now && f.date - now > policy->max_future)
        return verify_fail(out, PST_E_STAMP_DATE);
    if (now > f.date && now - f.date > policy->max_age)
        return verify_fail(out, PST_E_STAMP_DATE);
    /* The only expensive step, last: one SHA-1 of at most 256 bytes. */
    if (pst_hashcash_count_bits(stamp, len) < f.bits)
        return verify_fail(out, PST_E_STAMP_BITS);

    if (out != NULL) {
        crypto_generichash(out->spent_key, sizeof out->spent_key, (const unsigned char *)stamp, len,
                           NULL, 0);
        out->remember_until =
            policy->max_age > UINT64_MAX - f.date ? UINT64_MAX : f.date + policy->max_age;
        out->date = f.date;
        out->bits = f.bits;
    }
    return PST_OK;
}
