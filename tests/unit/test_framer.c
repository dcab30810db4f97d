/* The incremental frame reassembler (proto/pst_framer.h), in both storage
 * modes: allocated per frame (control socket) and caller's buffer (fetch). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "pst_envelope.h"
#include "pst_framer.h"
#include "testutil.h"

#define MAX 64u

static uint8_t storage[MAX];

/* Appends frame(len bytes of pattern seed) to out at *pos. */
static void put_frame(uint8_t *out, size_t *pos, uint32_t len, uint32_t seed) {
    pst_frame_header_write(len, out + *pos);
    tu_fill(out + *pos + PST_FRAME_HEADER_BYTES, len, seed);
    *pos += PST_FRAME_HEADER_BYTES + len;
}

static void init(pst_framer *f, bool fixed) { pst_framer_init(f, MAX, fixed ? storage : NULL); }

/* Feeds in[0..n) in pieces of step bytes; checks each frame against the
 * bytes just before the position where it completed. Returns the number of
 * frames and sets *err to the first error (PST_OK if none). */
static unsigned feed_all(pst_framer *f, const uint8_t *in, size_t n, size_t step, int *err) {
    unsigned frames = 0;
    size_t pos = 0;
    *err = PST_OK;
    while (pos < n) {
        size_t piece = n - pos < step ? n - pos : step;
        size_t used = 0;
        const uint8_t *frame = NULL;
        uint32_t len = 0;
        int rc = pst_framer_feed(f, in + pos, piece, &used, &frame, &len);
        cr_assert_leq(used, piece);
        pos += used;
        if (rc != PST_OK) {
            *err = rc;
            return frames;
        }
        if (frame == NULL) {
            cr_assert_eq(used, piece, "need-more must take the whole piece");
            continue;
        }
        cr_assert_geq(pos, len + PST_FRAME_HEADER_BYTES);
        cr_assert_eq(memcmp(frame, in + pos - len, len), 0);
        frames++;
    }
    return frames;
}

/* Runs a ParameterizedTest(bool *fixed, framer, name) once per storage
 * mode: the framer's own allocation (false), the caller's storage (true). */
#define BOTH_MODES(name)                                                                           \
    ParameterizedTestParameters(framer, name) {                                                    \
        static bool modes[] = {false, true};                                                       \
        return cr_make_param_array(bool, modes, 2);                                                \
    }

BOTH_MODES(byte_at_a_time)

ParameterizedTest(bool *fixed, framer, byte_at_a_time) {
    uint8_t in[256];
    size_t n = 0;
    put_frame(in, &n, 1, 1);
    put_frame(in, &n, 10, 2);
    put_frame(in, &n, MAX, 3);
    pst_framer f;
    init(&f, *fixed);
    int err;
    cr_assert_eq(feed_all(&f, in, n, 1, &err), 3);
    cr_assert_eq(err, PST_OK);
    pst_framer_close(&f);
}

BOTH_MODES(many_frames_in_one_feed)

ParameterizedTest(bool *fixed, framer, many_frames_in_one_feed) {
    uint8_t in[20 * (PST_FRAME_HEADER_BYTES + MAX)];
    size_t n = 0;
    for (uint32_t i = 0; i < 20; i++)
        put_frame(in, &n, 1 + (i * 7) % MAX, i);
    pst_framer f;
    init(&f, *fixed);
    /* one feed hands out one frame and takes exactly its bytes */
    size_t used = 0;
    const uint8_t *frame = NULL;
    uint32_t len = 0;
    cr_assert_eq(pst_framer_feed(&f, in, n, &used, &frame, &len), PST_OK);
    cr_assert_eq(len, 1);
    cr_assert_eq(used, PST_FRAME_HEADER_BYTES + 1);
    cr_assert_eq(memcmp(frame, in + PST_FRAME_HEADER_BYTES, 1), 0);
    cr_assert_eq(pst_framer_want(&f), PST_FRAME_HEADER_BYTES);
    pst_framer_reset(&f);
    int err;
    cr_assert_eq(feed_all(&f, in, n, n, &err), 20);
    cr_assert_eq(err, PST_OK);
    /* the same with the input cut at every odd size */
    for (size_t step = 2; step < 80; step += 3) {
        pst_framer_reset(&f);
        cr_assert_eq(feed_all(&f, in, n, step, &err), 20, "step %zu", step);
    }
    pst_framer_close(&f);
}

BOTH_MODES(cap)

ParameterizedTest(bool *fixed, framer, cap) {
    uint8_t in[2 * (PST_FRAME_HEADER_BYTES + MAX + 1)];
    size_t n = 0;
    put_frame(in, &n, MAX, 9);
    size_t first = n;
    put_frame(in, &n, MAX + 1, 10);
    pst_framer f;
    init(&f, *fixed);
    int err;
    cr_assert_eq(feed_all(&f, in, n, 5, &err), 1, "exactly max is a frame");
    cr_assert_eq(err, PST_E_TOOBIG, "max + 1 is refused");
    /* refused on its header alone: nothing of the body was taken */
    size_t used = 99;
    const uint8_t *frame = NULL;
    uint32_t len = 0;
    pst_framer_reset(&f);
    cr_assert_eq(pst_framer_feed(&f, in, first, &used, &frame, &len), PST_OK);
    cr_assert_eq(pst_framer_feed(&f, in + first, n - first, &used, &frame, &len), PST_E_TOOBIG);
    cr_assert_eq(used, PST_FRAME_HEADER_BYTES);
    cr_assert_null(frame);
    cr_assert_eq(len, 0);
    cr_assert_eq(pst_framer_want(&f), 0);
    pst_framer_close(&f);
}

Test(framer, huge_header_allocates_nothing) {
    uint8_t hdr[PST_FRAME_HEADER_BYTES];
    pst_frame_header_write(0xffffffffu, hdr);
    pst_framer f;
    pst_framer_init(&f, PST_CTRL_FRAME_MAX, NULL);
    size_t used;
    const uint8_t *frame;
    uint32_t len;
    cr_assert_eq(pst_framer_feed(&f, hdr, sizeof hdr, &used, &frame, &len), PST_E_TOOBIG);
    cr_assert_null(f.body);
    pst_framer_close(&f);
}

BOTH_MODES(zero_length)

ParameterizedTest(bool *fixed, framer, zero_length) {
    uint8_t in[16] = {0, 0, 0, 0, 0, 0, 0, 1, 'x'};
    pst_framer f;
    init(&f, *fixed);
    size_t used;
    const uint8_t *frame;
    uint32_t len;
    /* two bytes of it are not yet an error */
    cr_assert_eq(pst_framer_feed(&f, in, 2, &used, &frame, &len), PST_OK);
    cr_assert_eq(used, 2);
    cr_assert_eq(pst_framer_want(&f), 2);
    cr_assert_eq(pst_framer_feed(&f, in + 2, 7, &used, &frame, &len), PST_E_TOOBIG);
    cr_assert_eq(used, 2);
    pst_framer_close(&f);
}

BOTH_MODES(error_is_sticky)

ParameterizedTest(bool *fixed, framer, error_is_sticky) {
    uint8_t bad[PST_FRAME_HEADER_BYTES], good[16];
    size_t n = 0;
    pst_frame_header_write(MAX + 1, bad);
    put_frame(good, &n, 3, 4);
    pst_framer f;
    init(&f, *fixed);
    size_t used = 0;
    const uint8_t *frame = NULL;
    uint32_t len = 0;
    cr_assert_eq(pst_framer_feed(&f, bad, sizeof bad, &used, &frame, &len), PST_E_TOOBIG);
    for (int i = 0; i < 3; i++) {
        used = 99;
        cr_assert_eq(pst_framer_feed(&f, good, n, &used, &frame, &len), PST_E_TOOBIG);
        cr_assert_eq(used, 0, "nothing is taken after an error");
        cr_assert_null(frame);
    }
    pst_framer_release(&f); /* keeps the error */
    cr_assert_eq(pst_framer_feed(&f, good, n, &used, &frame, &len), PST_E_TOOBIG);
    /* only reset clears it */
    pst_framer_reset(&f);
    cr_assert_eq(pst_framer_feed(&f, good, n, &used, &frame, &len), PST_OK);
    cr_assert_eq(used, n);
    cr_assert_eq(len, 3);
    cr_assert_not_null(frame);
    pst_framer_close(&f);
}

BOTH_MODES(reset_drops_partial_frame)

ParameterizedTest(bool *fixed, framer, reset_drops_partial_frame) {
    uint8_t a[32], b[32];
    size_t na = 0, nb = 0;
    put_frame(a, &na, 20, 5);
    put_frame(b, &nb, 6, 6);
    pst_framer f;
    init(&f, *fixed);
    size_t used;
    const uint8_t *frame;
    uint32_t len;
    /* half a frame, then the stream starts over (the fetch server between
     * request and receipt): the old bytes must not leak into the new frame */
    cr_assert_eq(pst_framer_feed(&f, a, 10, &used, &frame, &len), PST_OK);
    cr_assert_null(frame);
    cr_assert_eq(pst_framer_want(&f), 20 - 6);
    pst_framer_reset(&f);
    cr_assert_eq(pst_framer_want(&f), PST_FRAME_HEADER_BYTES);
    cr_assert_eq(pst_framer_feed(&f, b, nb, &used, &frame, &len), PST_OK);
    cr_assert_eq(len, 6);
    cr_assert_eq(memcmp(frame, b + PST_FRAME_HEADER_BYTES, 6), 0);
    /* a half header too */
    cr_assert_eq(pst_framer_feed(&f, a, 3, &used, &frame, &len), PST_OK);
    pst_framer_reset(&f);
    cr_assert_eq(pst_framer_feed(&f, b, nb, &used, &frame, &len), PST_OK);
    cr_assert_eq(len, 6);
    pst_framer_close(&f);
}

Test(framer, raw_bytes_after_a_frame_are_left) {
    /* the fetch client: a response frame, then the raw body */
    uint8_t in[64];
    size_t n = 0;
    put_frame(in, &n, 8, 7);
    size_t frame_end = n;
    memcpy(in + n, "RAWBODY", 7);
    n += 7;
    pst_framer f;
    init(&f, true);
    size_t used;
    const uint8_t *frame;
    uint32_t len;
    cr_assert_eq(pst_framer_feed(&f, in, n, &used, &frame, &len), PST_OK);
    cr_assert_eq(used, frame_end);
    cr_assert_eq(len, 8);
    cr_assert_eq(frame, storage, "the caller's storage is used");
    pst_framer_close(&f);
}

Test(framer, release_and_close) {
    uint8_t in[16];
    size_t n = 0;
    put_frame(in, &n, 5, 8);
    pst_framer f;
    init(&f, false);
    size_t used;
    const uint8_t *frame;
    uint32_t len;
    cr_assert_eq(pst_framer_feed(&f, in, n, &used, &frame, &len), PST_OK);
    cr_assert_not_null(f.body);
    pst_framer_release(&f);
    cr_assert_null(f.body, "a released frame is freed at once");
    /* a partial frame survives release */
    cr_assert_eq(pst_framer_feed(&f, in, 6, &used, &frame, &len), PST_OK);
    pst_framer_release(&f);
    cr_assert_eq(pst_framer_feed(&f, in + 6, n - 6, &used, &frame, &len), PST_OK);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(frame, in + PST_FRAME_HEADER_BYTES, 5), 0);
    pst_framer_close(&f);
    pst_framer_close(&f); /* twice is harmless */
    pst_framer zero;
    memset(&zero, 0, sizeof zero);
    pst_framer_close(&zero);
}

Test(framer, empty_feed_and_bad_arguments) {
    pst_framer f;
    init(&f, false);
    size_t used = 7;
    const uint8_t *frame = (const uint8_t *)"x";
    uint32_t len = 7;
    cr_assert_eq(pst_framer_feed(&f, NULL, 0, &used, &frame, &len), PST_OK);
    cr_assert_eq(used, 0);
    cr_assert_null(frame);
    cr_assert_eq(len, 0);
    cr_assert_eq(pst_framer_feed(&f, NULL, 1, &used, &frame, &len), PST_E_INVAL);
    cr_assert_eq(pst_framer_feed(&f, (const uint8_t *)"a", 1, NULL, &frame, &len), PST_E_INVAL);
    /* not sticky: a caller's mistake is not the peer's */
    uint8_t in[8];
    size_t n = 0;
    put_frame(in, &n, 2, 1);
    cr_assert_eq(pst_framer_feed(&f, in, n, &used, &frame, &len), PST_OK);
    cr_assert_eq(len, 2);
    pst_framer_close(&f);
}

Test(framer, ctrl_cap) {
    /* the control socket's real cap, fed as reads of 64 KiB */
    size_t n = 0, cap = 2 * (PST_FRAME_HEADER_BYTES + PST_CTRL_FRAME_MAX) + 16;
    uint8_t *in = malloc(cap);
    cr_assert_not_null(in);
    put_frame(in, &n, PST_CTRL_FRAME_MAX, 11);
    put_frame(in, &n, PST_CTRL_FRAME_MAX + 1, 12);
    pst_framer f;
    pst_framer_init(&f, PST_CTRL_FRAME_MAX, NULL);
    int err;
    cr_assert_eq(feed_all(&f, in, n, 65536, &err), 1);
    cr_assert_eq(err, PST_E_TOOBIG);
    pst_framer_close(&f);
    free(in);
}
