/* Incremental reassembly of length-prefixed frames from a byte stream:
 *
 *   frame = length (u32 big-endian, 1..max) || length bytes
 *
 * the framing of both the control socket (max PST_CTRL_FRAME_MAX) and the
 * fetch exchange (max PST_FRAME_MAX, or less where a side expects one record
 * type). The node feeds whatever a read returned; the framer takes exactly
 * the bytes of the current frame and no more, so a caller whose stream
 * switches to raw bytes after a frame (the fetch body after the response
 * header) gets the rest back untouched. Pure: no I/O, no clock, no globals.
 *
 *   pst_framer f;
 *   pst_framer_init(&f, PST_CTRL_FRAME_MAX, NULL);
 *   while (n > 0) {
 *       size_t used; const uint8_t *frame; uint32_t len;
 *       int rc = pst_framer_feed(&f, p, n, &used, &frame, &len);
 *       p += used; n -= used;
 *       if (rc != PST_OK) { refuse the peer; break; }
 *       if (frame != NULL) decode(frame, len);
 *   }
 *   pst_framer_close(&f);
 */
#ifndef PST_FRAMER_H
#define PST_FRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_fetch.h" /* PST_FRAME_HEADER_BYTES, pst_frame_header_parse */

/* Caller-owned; the fields are private. */
typedef struct {
    uint32_t max;   /* hard cap on one frame's length, fixed at init */
    uint8_t *fixed; /* caller's storage of max bytes, or NULL: ours, per frame */
    uint8_t *body;  /* the current frame's storage (fixed, or malloc'd) */
    uint8_t hdr[PST_FRAME_HEADER_BYTES];
    uint32_t hdr_have;
    uint32_t len;  /* announced length of the current frame */
    uint32_t have; /* body bytes of it taken so far */
    bool ready;    /* body holds a complete frame, handed out by the last feed */
    int err;       /* sticky: PST_OK or the error that stopped the stream */
} pst_framer;

/* Prepares f for a new stream whose frames are 1..max bytes long.
 *
 * storage NULL: each frame's body is malloc'd with exactly the announced
 * length, once the header has been checked against max, and freed when the
 * frame is released; an idle connection holds nothing, which matters where
 * max is large (control frames: 1 MiB, 32 connections).
 * storage non-NULL: it must hold max bytes and outlive f; frames are
 * reassembled in it and nothing is ever allocated (for small caps kept inline
 * in a connection, e.g. the fetch exchange's frames of at most 8 KiB). */
void pst_framer_init(pst_framer *f, uint32_t max, uint8_t *storage);

/* Takes bytes from in[0..n) until the current frame is complete or the
 * input runs out; never reads beyond the end of that frame. *consumed is the
 * number of bytes taken (<= n); the caller passes the rest to the next call
 * (or, after the frame it was waiting for, handles them itself).
 *
 * Returns PST_OK with *frame = NULL, *frame_len = 0 when more bytes are
 * needed (then *consumed == n), or with *frame and *frame_len set to one
 * complete frame's body. That body is owned by f and stays valid until the
 * next feed, pst_framer_release, pst_framer_reset or pst_framer_close.
 *
 * Errors (sticky: every later feed returns the same code and takes nothing,
 * until pst_framer_reset): PST_E_TOOBIG when a header announces 0 bytes or
 * more than max (nothing is allocated for it; *consumed counts the header
 * bytes taken), PST_E_NOMEM when the body cannot be allocated. PST_E_INVAL
 * for NULL arguments (in may be NULL only when n == 0), not sticky. */
int pst_framer_feed(pst_framer *f, const uint8_t *in, size_t n, size_t *consumed,
                    const uint8_t **frame, uint32_t *frame_len);

/* How many bytes complete the current header or body (at least 1), or 0
 * after an error. A caller that must not read past a frame (to leave the
 * rest in the kernel) reads at most this much. */
size_t pst_framer_want(const pst_framer *f);

/* Drops the frame the last feed returned (frees its body in the allocating
 * mode) so a connection does not hold it while the request runs. A partial
 * frame and the error state are kept. Safe to call at any time. */
void pst_framer_release(pst_framer *f);

/* Back to the start of a stream: drops any frame, partial or complete, and
 * clears the error; max and storage stay. */
void pst_framer_reset(pst_framer *f);

/* Frees what f holds. f may then be initialised again; closing twice, or
 * closing a zero-filled pst_framer, is harmless. */
void pst_framer_close(pst_framer *f);

#endif
