/* DeviceCert (type 13) and DeviceList (type 14): see pst_device.h. */
#include "pst_device.h"

#include <sodium.h>
#include <string.h>

#include "pst_base32.h"
#include "pst_identity.h"
#include "pst_records.h"
#include "sigrec.h"

/* Neither record expires: the identity key may be kept offline. */
static const pst_sigrec_window device_window = {.skew = PST_CLOCK_SKEW_MAX};

bool pst_device_name_ok(const char *name, size_t n) {
    if (name == NULL || n < 1 || n > PST_DEVICE_NAME_MAX)
        return false;
    /* a name is shown in listings and JSON: no control characters */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return pst_r_text_ok(name, n, PST_DEVICE_NAME_MAX);
}

static bool device_ok(const pst_device *d) {
    return pst_device_name_ok(d->name, strnlen(d->name, PST_DEVICE_NAME_MAX + 1));
}

static void device_write(pst_writer *w, const pst_device *d) {
    pst_w_array(w, 4);
    pst_w_bin(w, d->sign_pk, PST_SIGN_PK_BYTES);
    pst_w_bin(w, d->box_pk, PST_BOX_PK_BYTES);
    pst_w_cstr(w, d->name);
    pst_w_uint(w, d->created);
}

static int device_read(const msgpack_object *o, pst_device *d) {
    const msgpack_object *f;
    uint32_t n;
    int rc;
    if ((rc = pst_r_array(o, 4, 4, &f, &n)) != PST_OK ||
        (rc = pst_r_bin_fixed(&f[0], PST_SIGN_PK_BYTES, d->sign_pk)) != PST_OK ||
        (rc = pst_r_bin_fixed(&f[1], PST_BOX_PK_BYTES, d->box_pk)) != PST_OK ||
        (rc = pst_r_str_copy(&f[2], d->name, sizeof d->name)) != PST_OK ||
        (rc = pst_r_uint(&f[3], UINT64_MAX, &d->created)) != PST_OK)
        return rc;
    return device_ok(d) ? PST_OK : PST_E_RANGE;
}

/* ---- DeviceCert ----------------------------------------------------------- */

static int devcert_validate(const void *p) {
    const pst_devcert *r = p;
    return r->expires == 0 && device_ok(&r->dev) ? PST_OK : PST_E_RANGE;
}

static void devcert_write(pst_writer *w, const void *p) {
    const pst_devcert *r = p;
    pst_w_bin(w, r->dev.sign_pk, PST_SIGN_PK_BYTES);
    pst_w_bin(w, r->dev.box_pk, PST_BOX_PK_BYTES);
    pst_w_cstr(w, r->dev.name);
    pst_w_uint(w, r->dev.created);
}

static int devcert_read(const msgpack_object *f, void *p) {
    pst_devcert *out = p;
    int rc;
    if ((rc = pst_r_bin_fixed(&f[0], PST_SIGN_PK_BYTES, out->dev.sign_pk)) != PST_OK ||
        (rc = pst_r_bin_fixed(&f[1], PST_BOX_PK_BYTES, out->dev.box_pk)) != PST_OK ||
        (rc = pst_r_str_copy(&f[2], out->dev.name, sizeof out->dev.name)) != PST_OK)
        return rc;
    return pst_r_uint(&f[3], UINT64_MAX, &out->dev.created);
}

static const pst_sigrec_kind devcert_kind = {PST_SIGREC_KIND(
    pst_devcert, devcert, PST_REC_DEVICE_CERT, PST_DEVCERT_FIELDS, PST_SIGREC_DHT_LIMITS, 0)};

PST_SIGREC_DEFINE(pst_devcert, devcert_kind)
PST_SIGREC_DEFINE_VERIFY(pst_devcert, devcert_kind, device_window)
PST_SIGREC_DEFINE_ID(pst_devcert, devcert_kind)

/* ---- DeviceList ----------------------------------------------------------- */

static bool listed_before(const pst_devlist *r, uint32_t i, const uint8_t pk[PST_SIGN_PK_BYTES]) {
    for (uint32_t j = 0; j < i; j++) {
        if (memcmp(r->devices[j].sign_pk, pk, PST_SIGN_PK_BYTES) == 0)
            return true;
    }
    return false;
}

static bool tombstoned_before(const pst_devlist *r, uint32_t i,
                              const uint8_t pk[PST_SIGN_PK_BYTES]) {
    for (uint32_t j = 0; j < i; j++) {
        if (memcmp(r->tombstones[j].sign_pk, pk, PST_SIGN_PK_BYTES) == 0)
            return true;
    }
    return false;
}

static int devlist_validate(const void *p) {
    const pst_devlist *r = p;
    if (r->n_devices > PST_DEVICES_MAX || r->n_tombstones > PST_DEVICE_TOMBSTONES_MAX)
        return PST_E_TOOBIG;
    if (r->expires != 0)
        return PST_E_RANGE;
    for (uint32_t i = 0; i < r->n_devices; i++) {
        if (!device_ok(&r->devices[i]) || listed_before(r, i, r->devices[i].sign_pk))
            return PST_E_RANGE;
    }
    for (uint32_t i = 0; i < r->n_tombstones; i++) {
        const uint8_t *pk = r->tombstones[i].sign_pk;
        /* the identity key cannot revoke itself here: that is a Revocation */
        if (memcmp(pk, r->signer, PST_SIGN_PK_BYTES) == 0 || listed_before(r, r->n_devices, pk) ||
            tombstoned_before(r, i, pk))
            return PST_E_RANGE;
    }
    return PST_OK;
}

static void devlist_write(pst_writer *w, const void *p) {
    const pst_devlist *r = p;
    pst_w_uint(w, r->seq);
    pst_w_array(w, r->n_devices);
    for (uint32_t i = 0; i < r->n_devices; i++)
        device_write(w, &r->devices[i]);
    pst_w_array(w, r->n_tombstones);
    for (uint32_t i = 0; i < r->n_tombstones; i++) {
        pst_w_array(w, 2);
        pst_w_bin(w, r->tombstones[i].sign_pk, PST_SIGN_PK_BYTES);
        pst_w_uint(w, r->tombstones[i].revoked_at);
    }
}

static int devlist_read(const msgpack_object *f, void *p) {
    pst_devlist *out = p;
    const msgpack_object *a, *t;
    uint32_t n, m;
    int rc;
    if ((rc = pst_r_uint(&f[0], UINT64_MAX, &out->seq)) != PST_OK ||
        (rc = pst_r_array(&f[1], 0, PST_DEVICES_MAX, &a, &n)) != PST_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = device_read(&a[i], &out->devices[i])) != PST_OK)
            return rc;
    }
    out->n_devices = n;
    if ((rc = pst_r_array(&f[2], 0, PST_DEVICE_TOMBSTONES_MAX, &a, &n)) != PST_OK)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        pst_device_tombstone *ts = &out->tombstones[i];
        if ((rc = pst_r_array(&a[i], 2, 2, &t, &m)) != PST_OK ||
            (rc = pst_r_bin_fixed(&t[0], PST_SIGN_PK_BYTES, ts->sign_pk)) != PST_OK ||
            (rc = pst_r_uint(&t[1], UINT64_MAX, &ts->revoked_at)) != PST_OK)
            return rc;
    }
    out->n_tombstones = n;
    return PST_OK;
}

static const pst_sigrec_kind devlist_kind = {PST_SIGREC_KIND(
    pst_devlist, devlist, PST_REC_DEVICE_LIST, PST_DEVLIST_FIELDS, PST_SIGREC_DHT_LIMITS, 0)};

PST_SIGREC_DEFINE(pst_devlist, devlist_kind)
PST_SIGREC_DEFINE_VERIFY(pst_devlist, devlist_kind, device_window)
PST_SIGREC_DEFINE_ID(pst_devlist, devlist_kind)

int pst_devlist_find(const pst_devlist *l, const uint8_t sign_pk[PST_SIGN_PK_BYTES]) {
    for (uint32_t i = 0; i < l->n_devices && i < PST_DEVICES_MAX; i++) {
        if (sodium_memcmp(l->devices[i].sign_pk, sign_pk, PST_SIGN_PK_BYTES) == 0)
            return (int)i;
    }
    return -1;
}

bool pst_devlist_revoked(const pst_devlist *l, const uint8_t sign_pk[PST_SIGN_PK_BYTES]) {
    for (uint32_t i = 0; i < l->n_tombstones && i < PST_DEVICE_TOMBSTONES_MAX; i++) {
        if (sodium_memcmp(l->tombstones[i].sign_pk, sign_pk, PST_SIGN_PK_BYTES) == 0)
            return true;
    }
    return false;
}

void pst_device_id(const uint8_t sign_pk[PST_SIGN_PK_BYTES], char out[PST_DEVICE_ID_BUFSIZE]) {
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(sign_pk, fp);
    memcpy(out, fp, PST_DEVICE_ID_BUFSIZE - 1);
    out[PST_DEVICE_ID_BUFSIZE - 1] = '\0';
}

int pst_devcert_build(pst_devcert *out, const pst_device *dev, uint64_t created,
                      const uint8_t sk[PST_SIGN_SK_BYTES]) {
    memset(out, 0, sizeof *out);
    out->created = created;
    out->dev = *dev;
    int rc = pst_devcert_sign(out, sk);
    if (rc != PST_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int pst_devcert_in_list(const pst_devcert *cert, const pst_devlist *l) {
    if (memcmp(cert->signer, l->signer, PST_SIGN_PK_BYTES) != 0)
        return PST_E_SIGNER;
    if (pst_devlist_revoked(l, cert->dev.sign_pk))
        return PST_E_REVOKED;
    int i = pst_devlist_find(l, cert->dev.sign_pk);
    if (i < 0)
        return PST_E_NOTFOUND;
    return memcmp(l->devices[i].box_pk, cert->dev.box_pk, PST_BOX_PK_BYTES) == 0 ? PST_OK
                                                                                 : PST_E_MISMATCH;
}

size_t pst_devlist_encoded_size(const pst_devlist *l) {
    uint8_t buf[4 * PST_DHT_VALUE_MAX];
    size_t len = 0;
    if (pst_devlist_encode(l, buf, sizeof buf, &len) != PST_OK)
        return 0;
    return len;
}

unsigned pst_devlist_trim(pst_devlist *l) {
    unsigned dropped = 0;
    uint8_t buf[4 * PST_DHT_VALUE_MAX];
    size_t len = 0;
    /* a list that does not encode for another reason is left as it is */
    while (l->n_tombstones > 0 && pst_devlist_encode(l, buf, sizeof buf, &len) == PST_OK &&
           len > PST_DHT_VALUE_MAX) {
        uint32_t oldest = 0;
        for (uint32_t i = 1; i < l->n_tombstones; i++) {
            if (l->tombstones[i].revoked_at < l->tombstones[oldest].revoked_at)
                oldest = i;
        }
        memmove(&l->tombstones[oldest], &l->tombstones[oldest + 1],
                (l->n_tombstones - oldest - 1) * sizeof l->tombstones[0]);
        l->n_tombstones--;
        memset(&l->tombstones[l->n_tombstones], 0, sizeof l->tombstones[0]);
        dropped++;
    }
    return dropped;
}
