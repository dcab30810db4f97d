/* Endorsement / vouch (type 4): see pst_records.h. The voucher (signer)
 * states that subject is known or trusted until expires. */
#include "pst_records.h"

#include <sodium.h>
#include <string.h>

#include "sigrec.h"

static int endorsement_validate(const void *p) {
    const pst_endorsement *r = p;
    return r->tier <= PST_TIER_TRUSTED && r->expires != 0 &&
                   memcmp(r->subject, r->signer, PST_SIGN_PK_BYTES) != 0
               ? PST_OK
               : PST_E_RANGE;
}

static void endorsement_write(pst_writer *w, const void *p) {
    const pst_endorsement *r = p;
    pst_w_bin(w, r->subject, PST_SIGN_PK_BYTES);
    pst_w_uint(w, r->tier);
}

static int endorsement_read(const msgpack_object *f, void *p) {
    pst_endorsement *out = p;
    int rc = pst_r_bin_fixed(&f[0], PST_SIGN_PK_BYTES, out->subject);
    return rc == PST_OK ? pst_r_uint(&f[1], PST_TIER_TRUSTED, &out->tier) : rc;
}

static const pst_sigrec_kind endorsement_kind = {
    PST_SIGREC_KIND(pst_endorsement, endorsement, PST_REC_ENDORSEMENT, PST_ENDORSEMENT_FIELDS,
                    PST_SIGREC_DHT_LIMITS, UINT64_MAX)};

static const pst_sigrec_window endorsement_window = {.skew = PST_CLOCK_SKEW_MAX,
                                                     .lifetime_max = PST_ENDORSEMENT_LIFETIME_MAX,
                                                     .lifetime_first = true};

PST_SIGREC_DEFINE(pst_endorsement, endorsement_kind)
PST_SIGREC_DEFINE_VERIFY(pst_endorsement, endorsement_kind, endorsement_window)
PST_SIGREC_DEFINE_ID(pst_endorsement, endorsement_kind)
