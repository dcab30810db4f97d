/* Length-prefixed frame reassembly (see pst_framer.h). */
#include "pst_framer.h"

#include <stdlib.h>
#include <string.h>

void pst_framer_init(pst_framer *f, uint32_t max, uint8_t *storage) {
    memset(f, 0, sizeof *f);
    f->max = max;
    f->fixed = storage;
}

static void drop_body(pst_framer *f) {
    if (f->body != NULL && f->body != f->fixed)
        free(f->body);
    f->body = NULL;
    f->ready = false;
}

void pst_framer_release(pst_framer *f) {
    if (f != NULL && f->ready) {
        drop_body(f);
        f->len = f->have = 0;
    }
}

void pst_framer_reset(pst_framer *f) {
    if (f == NULL)
        return;
    drop_body(f);
    f->hdr_have = f->len = f->have = 0;
    f->err = PST_OK;
}

void pst_framer_close(pst_framer *f) {
    if (f == NULL)
        return;
    drop_body(f);
    memset(f, 0, sizeof *f);
}

size_t pst_framer_want(const pst_framer *f) {
    if (f == NULL || f->err != PST_OK)
        return 0;
    if (f->ready) /* the next feed starts a new header */
        return PST_FRAME_HEADER_BYTES;
    if (f->hdr_have < PST_FRAME_HEADER_BYTES)
        return PST_FRAME_HEADER_BYTES - f->hdr_have;
    return f->len - f->have;
}

int pst_framer_feed(pst_framer *f, const uint8_t *in, size_t n, size_t *consumed,
                    const uint8_t **frame, uint32_t *frame_len) {
    if (consumed != NULL)
        *consumed = 0;
    if (frame != NULL)
        *frame = NULL;
    if (frame_len != NULL)
        *frame_len = 0;
    if (f == NULL || consumed == NULL || frame == NULL || frame_len == NULL ||
        (in == NULL && n > 0))
        return PST_E_INVAL;
    if (f->err != PST_OK)
        return f->err;
    pst_framer_release(f); /* the previous frame's validity ends here */
    size_t used = 0;
    if (f->hdr_have < PST_FRAME_HEADER_BYTES) {
        size_t k = PST_FRAME_HEADER_BYTES - f->hdr_have;
        k = k < n ? k : n;
        if (k > 0) /* in may be NULL when n == 0 */
            memcpy(f->hdr + f->hdr_have, in, k);
        f->hdr_have += (uint32_t)k;
        used = k;
        *consumed = used;
        if (f->hdr_have < PST_FRAME_HEADER_BYTES)
            return PST_OK;
        /* checked before anything is allocated: a peer announcing 4 GiB
         * costs us four bytes */
        if (pst_frame_header_parse(f->hdr, f->max, &f->len) != PST_OK)
            return f->err = PST_E_TOOBIG;
        f->have = 0;
        f->body = f->fixed != NULL ? f->fixed : malloc(f->len);
        if (f->body == NULL)
            return f->err = PST_E_NOMEM;
    }
    size_t k = f->len - f->have;
    k = k < n - used ? k : n - used;
    if (k > 0)
        memcpy(f->body + f->have, in + used, k);
    f->have += (uint32_t)k;
    *consumed = used + k;
    if (f->have < f->len)
        return PST_OK;
    f->ready = true;
    f->hdr_have = 0; /* the next feed starts the next header */
    *frame = f->body;
    *frame_len = f->len;
    return PST_OK;
}
