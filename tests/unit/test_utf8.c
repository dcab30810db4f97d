#include <criterion/criterion.h>
#include <string.h>

#include "pst_utf8.h"

static size_t seq(const char *s, size_t n) { return pst_utf8_seq((const uint8_t *)s, n); }
static bool valid(const char *s, size_t n) { return pst_utf8_valid((const uint8_t *)s, n); }

Test(utf8, sequences_at_every_boundary) {
    cr_assert_eq(seq("a", 1), 1);
    cr_assert_eq(seq("\0", 1), 1);
    cr_assert_eq(seq("\xc2\x80", 2), 2);         /* U+0080, the first of two bytes */
    cr_assert_eq(seq("\xdf\xbf", 2), 2);         /* U+07FF */
    cr_assert_eq(seq("\xe0\xa0\x80", 3), 3);     /* U+0800 */
    cr_assert_eq(seq("\xed\x9f\xbf", 3), 3);     /* U+D7FF, below the surrogates */
    cr_assert_eq(seq("\xee\x80\x80", 3), 3);     /* U+E000, above them */
    cr_assert_eq(seq("\xf0\x90\x80\x80", 4), 4); /* U+10000 */
    cr_assert_eq(seq("\xf4\x8f\xbf\xbf", 4), 4); /* U+10FFFF, the last */
}

Test(utf8, ill_formed_sequences) {
    static const char *const bad[] = {
        "\x80",             /* a continuation byte alone */
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong */
        "\xe0\x9f\xbf",     /* overlong three-byte */
        "\xed\xa0\x80",     /* U+D800, a surrogate */
        "\xed\xbf\xbf",     /* U+DFFF */
        "\xf0\x8f\xbf\xbf", /* overlong four-byte */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80",
        "\xff",
        "\xc2\x41",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i]);
        cr_assert_eq(seq(bad[i], n), 0, "case %zu", i);
        cr_assert(!valid(bad[i], n), "case %zu", i);
    }
    /* a sequence cut by the end of the buffer */
    cr_assert_eq(seq("\xe2\x82\xac", 2), 0);
    cr_assert_eq(seq("\xf0\x9f\x98\x80", 3), 0);
}

Test(utf8, whole_strings) {
    cr_assert(valid("", 0));
    cr_assert(valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    cr_assert(valid("a\0b", 3)); /* NUL is the caller's to refuse */
    cr_assert(!valid("caf\xc3", 4));
}
