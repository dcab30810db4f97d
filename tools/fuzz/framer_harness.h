/* Shared by the frame-reader fuzz targets (fuzz_ctrl_frames,
 * fuzz_fetch_frames): drives proto/pst_framer over one input the way the
 * node's readers do, and aborts on any broken invariant.
 *
 * Input: byte 0 = flags (FH_FIXED: caller's storage instead of per-frame
 * allocation; FH_WANT: never offer more than pst_framer_want, as the fetch
 * server reads; the other bits are the target's), bytes 1..8 = chunk sizes,
 * the rest = the byte stream. The stream is framed three times: by a
 * ten-line reference parser over the whole buffer, by the framer in one
 * feed per call, and by the framer in the chunks the input chose. All three
 * must find the same frames at the same positions, stop at the same place
 * with the same error, and every frame must be the stream's own bytes. */
#ifndef FRAMER_HARNESS_H
#define FRAMER_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pst_framer.h"

#define FH_FIXED 0x01u
#define FH_WANT 0x02u
#define FH_PREFIX 9u /* flags + 8 chunk sizes */

#define FH_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Called on every complete frame, in order (index counts from 0): decodes
 * it as the node would, and returns how many raw bytes follow it before
 * framing resumes (the fetch body after a response header), 0 for none. */
typedef uint64_t (*fh_frame_fn)(const uint8_t *frame, uint32_t len, unsigned index);

typedef struct {
    size_t end;    /* stream position just past the frame */
    uint32_t len;  /* its length */
    uint64_t skip; /* raw bytes the caller took after it */
} fh_event;

typedef struct {
    fh_event *ev;
    size_t n_ev;
    int err;     /* the error that stopped the stream, or PST_OK */
    size_t stop; /* stream position reached */
} fh_trace;

static uint32_t fh_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* 1..64 times 1, 16, 256 or 4096: single bytes up to whole large frames. */
static size_t fh_chunk(const uint8_t sched[8], size_t i) {
    uint8_t b = sched[i % 8];
    return (size_t)(1u + (b & 0x3fu)) << ((b >> 6) * 4u);
}

static void fh_event_add(fh_trace *t, size_t end, uint32_t len) {
    t->ev[t->n_ev].end = end;
    t->ev[t->n_ev].len = len;
    t->ev[t->n_ev].skip = 0;
    t->n_ev++;
}

/* After a frame ending at *pos: the caller's raw bytes, cut at the input. */
static void fh_skip(fh_trace *t, size_t *pos, size_t n, uint64_t skip) {
    if (skip > n - *pos)
        skip = n - *pos;
    t->ev[t->n_ev - 1].skip = skip;
    *pos += (size_t)skip;
}

static void fh_reference(const uint8_t *s, size_t n, uint32_t max, fh_frame_fn on_frame,
                         fh_trace *t) {
    size_t pos = 0;
    t->err = PST_OK;
    while (n - pos >= PST_FRAME_HEADER_BYTES) {
        uint32_t len = fh_be32(s + pos);
        if (len == 0 || len > max) {
            t->err = PST_E_TOOBIG;
            pos += PST_FRAME_HEADER_BYTES;
            break;
        }
        if (n - pos - PST_FRAME_HEADER_BYTES < len) {
            pos = n; /* a partial frame: all of it taken, waiting for more */
            break;
        }
        pos += PST_FRAME_HEADER_BYTES + len;
        fh_event_add(t, pos, len);
        fh_skip(t, &pos, n, on_frame(s + pos - len, len, (unsigned)(t->n_ev - 1)));
    }
    t->stop = t->err == PST_OK ? n : pos;
}

/* sched NULL: each feed is offered everything left. */
static void fh_run(const uint8_t *s, size_t n, uint32_t max, uint8_t *storage, unsigned flags,
                   const uint8_t *sched, fh_frame_fn on_frame, fh_trace *t) {
    pst_framer f;
    pst_framer_init(&f, max, (flags & FH_FIXED) ? storage : NULL);
    size_t pos = 0, calls = 0;
    t->err = PST_OK;
    while (pos < n) {
        size_t piece = sched != NULL ? fh_chunk(sched, calls++) : n - pos;
        if (piece > n - pos)
            piece = n - pos;
        size_t want = pst_framer_want(&f);
        FH_CHECK(want >= 1 && want <= (size_t)max + PST_FRAME_HEADER_BYTES);
        if ((flags & FH_WANT) && piece > want)
            piece = want;
        size_t used = (size_t)-1;
        const uint8_t *frame = (const uint8_t *)"";
        uint32_t len = 1;
        int rc = pst_framer_feed(&f, s + pos, piece, &used, &frame, &len);
        FH_CHECK(used <= piece);
        pos += used;
        if (rc != PST_OK) {
            FH_CHECK(rc == PST_E_TOOBIG || rc == PST_E_NOMEM);
            FH_CHECK(frame == NULL && len == 0);
            FH_CHECK(pst_framer_want(&f) == 0);
            /* sticky: nothing more is taken, the same error comes back */
            size_t again = 1;
            int rc2 = pst_framer_feed(&f, s + pos, n - pos, &again, &frame, &len);
            FH_CHECK(rc2 == rc && again == 0 && frame == NULL && len == 0);
            pst_framer_release(&f);
            FH_CHECK(pst_framer_feed(&f, s + pos, n - pos, &again, &frame, &len) == rc);
            t->err = rc;
            break;
        }
        if (frame == NULL) {
            FH_CHECK(len == 0 && used == piece); /* need more: all of it taken */
            continue;
        }
        /* a frame: exactly the stream's bytes, right behind their header */
        FH_CHECK(len >= 1 && len <= max);
        FH_CHECK(pos >= (size_t)len + PST_FRAME_HEADER_BYTES);
        FH_CHECK(fh_be32(s + pos - len - PST_FRAME_HEADER_BYTES) == len);
        FH_CHECK(memcmp(frame, s + pos - len, len) == 0);
        FH_CHECK(!(flags & FH_FIXED) || frame == storage);
        FH_CHECK(pst_framer_want(&f) == PST_FRAME_HEADER_BYTES);
        if (flags & FH_WANT)
            FH_CHECK(used == piece); /* never read past the frame */
        fh_event_add(t, pos, len);
        uint64_t skip = on_frame(frame, len, (unsigned)(t->n_ev - 1));
        if (skip > 0) { /* the caller reads raw bytes, then frames start over */
            fh_skip(t, &pos, n, skip);
            pst_framer_reset(&f);
        }
    }
    t->stop = pos;
    pst_framer_close(&f);
}

static void fh_same(const fh_trace *a, const fh_trace *b) {
    FH_CHECK(a->n_ev == b->n_ev && a->err == b->err && a->stop == b->stop);
    for (size_t i = 0; i < a->n_ev; i++)
        FH_CHECK(a->ev[i].end == b->ev[i].end && a->ev[i].len == b->ev[i].len &&
                 a->ev[i].skip == b->ev[i].skip);
}

/* The whole check; storage must hold max bytes. */
static void fh_check(const uint8_t *data, size_t size, uint32_t max, uint8_t *storage,
                     fh_frame_fn on_frame) {
    if (size < FH_PREFIX)
        return;
    unsigned flags = data[0];
    const uint8_t *sched = data + 1;
    const uint8_t *s = data + FH_PREFIX;
    size_t n = size - FH_PREFIX;
    size_t cap = n / (PST_FRAME_HEADER_BYTES + 1) + 1; /* frames are >= 5 bytes */
    fh_trace ref = {calloc(cap, sizeof(fh_event)), 0, 0, 0};
    fh_trace whole = {calloc(cap, sizeof(fh_event)), 0, 0, 0};
    fh_trace cut = {calloc(cap, sizeof(fh_event)), 0, 0, 0};
    FH_CHECK(ref.ev != NULL && whole.ev != NULL && cut.ev != NULL);
    fh_reference(s, n, max, on_frame, &ref);
    fh_run(s, n, max, storage, flags & ~FH_WANT, NULL, on_frame, &whole);
    fh_run(s, n, max, storage, flags, sched, on_frame, &cut);
    fh_same(&ref, &whole);
    fh_same(&ref, &cut);
    free(ref.ev);
    free(whole.ev);
    free(cut.ev);
}

#endif
