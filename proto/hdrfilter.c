/* The Maildir header filter: see pst_hdrfilter.h. */
#include "pst_hdrfilter.h"

#include <string.h>

#define PREFIX_LEN (sizeof PST_HDRFILTER_PREFIX - 1)
#define RENAMED_LEN (sizeof PST_HDRFILTER_RENAMED - 1)
/* what one input byte may produce, at most: see PST_HDRFILTER_OUT_MIN */
#define STEP_MAX (RENAMED_LEN + PREFIX_LEN)

_Static_assert(PREFIX_LEN <= sizeof((pst_hdrfilter *)0)->held, "held too small");
_Static_assert(STEP_MAX <= PST_HDRFILTER_OUT_MIN, "PST_HDRFILTER_OUT_MIN too small");

static const uint8_t REPLACEMENT[3] = {0xEF, 0xBF, 0xBD}; /* U+FFFD in UTF-8 */

void pst_eol_init(pst_eol *e) { memset(e, 0, sizeof *e); }

int pst_eol_byte(pst_eol *e, uint8_t b) {
    if (e->after_cr) {
        e->after_cr = false;
        if (b == '\n')
            return -1;
    }
    if (b == '\r') {
        e->after_cr = true;
        e->cr_converted++;
        return '\n';
    }
    return b;
}

size_t pst_eol_normalise(pst_eol *e, const uint8_t *in, size_t n, uint8_t *out) {
    size_t i = 0, w = 0;
    while (i < n) {
        if (!e->after_cr) { /* the common case: a run without CR at once */
            const uint8_t *cr = memchr(in + i, '\r', n - i);
            size_t run = cr ? (size_t)(cr - (in + i)) : n - i;
            if (run > 0) {
                memmove(out + w, in + i, run);
                w += run;
                i += run;
                continue;
            }
        }
        int c = pst_eol_byte(e, in[i++]);
        if (c >= 0)
            out[w++] = (uint8_t)c;
    }
    return w;
}

void pst_hdrfilter_init(pst_hdrfilter *f) {
    memset(f, 0, sizeof *f);
    pst_eol_init(&f->eol);
    f->first_line = true;
}

static int lower(uint8_t b) { return b >= 'A' && b <= 'Z' ? b + 32 : b; }

/* One byte of the normalised stream (no CR, no NUL) through the header
 * logic; returns the bytes written at o. */
static size_t header_byte(pst_hdrfilter *f, uint8_t b, uint8_t *o) {
    size_t k = 0;
    if (f->in_body) {
        o[k++] = b;
        return k;
    }
    if (!f->mid_line) {
        if (f->first_line && f->n_held == 0 && (b == ' ' || b == '\t'))
            return 0; /* would continue the node's own field above */
        if (f->n_held < PREFIX_LEN && lower(b) == (uint8_t)lower(PST_HDRFILTER_PREFIX[f->n_held])) {
            f->held[f->n_held++] = b;
            if (f->n_held == PREFIX_LEN) {
                memcpy(o, PST_HDRFILTER_RENAMED, RENAMED_LEN);
                memcpy(o + RENAMED_LEN, f->held, PREFIX_LEN);
                k = RENAMED_LEN + PREFIX_LEN;
                f->n_held = 0;
                f->mid_line = true;
                f->first_line = false;
                f->renamed++;
            }
            return k;
        }
        if (f->n_held > 0) { /* not our prefix after all: the line goes on */
            memcpy(o, f->held, f->n_held);
            k = f->n_held;
            f->n_held = 0;
        } else if (b == '\n') { /* the empty line: the body follows */
            f->in_body = true;
            o[k++] = b;
            return k;
        }
        f->mid_line = true;
        f->first_line = false;
    }
    o[k++] = b;
    if (b == '\n')
        f->mid_line = false;
    return k;
}

size_t pst_hdrfilter_clean_run(const pst_hdrfilter *f, const uint8_t *in, size_t n) {
    if (!f || !in || !f->in_body || f->eol.after_cr)
        return 0;
    /* memchr is vectorised; a byte loop testing two values per byte cost
     * 12% of a 20 MiB fetch (docs/MAIL.md, "Issue 14, third round") */
    const uint8_t *cr = memchr(in, '\r', n);
    size_t run = cr ? (size_t)(cr - in) : n;
    const uint8_t *nul = memchr(in, 0, run);
    return nul ? (size_t)(nul - in) : run;
}

int pst_hdrfilter_feed(pst_hdrfilter *f, const uint8_t *in, size_t n, size_t *consumed,
                       uint8_t *out, size_t cap, size_t *written) {
    if (consumed)
        *consumed = 0;
    if (written)
        *written = 0;
    if (!f || !consumed || !written || !out || (!in && n > 0))
        return PST_E_INVAL;
    if (cap < PST_HDRFILTER_OUT_MIN)
        return PST_E_NOSPACE;
    size_t i = 0, w = 0;
    while (i < n && cap - w >= STEP_MAX) {
        uint8_t b = in[i];
        if (f->in_body && !f->eol.after_cr && b != '\r' && b != 0) {
            /* the common case: a run of plain body bytes at once */
            size_t room = cap - w, run = pst_hdrfilter_clean_run(f, in + i, n - i);
            run = run < room ? run : room;
            memcpy(out + w, in + i, run);
            w += run;
            i += run;
            continue;
        }
        i++;
        int c = pst_eol_byte(&f->eol, b);
        if (c < 0) /* the LF of a CRLF: already written as one LF */
            continue;
        b = (uint8_t)c;
        if (b == 0) {
            f->nul_replaced++;
            for (size_t r = 0; r < sizeof REPLACEMENT; r++)
                w += header_byte(f, REPLACEMENT[r], out + w);
            continue;
        }
        w += header_byte(f, b, out + w);
    }
    *consumed = i;
    *written = w;
    return PST_OK;
}

size_t pst_hdrfilter_finish(pst_hdrfilter *f, uint8_t *out, size_t cap) {
    size_t k = 0;
    if (f && out && cap >= PST_HDRFILTER_OUT_MIN && f->n_held > 0) {
        memcpy(out, f->held, f->n_held);
        k = f->n_held;
    }
    if (f) {
        f->n_held = 0;
        f->mid_line = true;
    }
    return k;
}

size_t pst_hdr_field_name_len(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n && p[i] >= 33 && p[i] <= 126 && p[i] != ':')
        i++;
    size_t name = i;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return name > 0 && i < n && p[i] == ':' ? name : 0;
}
