/* Devices of one identity (issue 13): this home's device key, the cache of
 * verified device lists, and the one check every device-slot value passes.
 * The DHT side (fetch, listen, publish) is devices_dht.c.
 *
 * A home made by `postern init` holds the identity key and no device.key:
 * the identity key is its device key. A home made by `postern init --join`
 * holds device.key and no identity.key: n->id then carries the identity's
 * public key (the store's identity_pk) with this device's box keys, so the
 * code that derives our slots from n->id->sign_pk keeps working, and
 * n->holds_identity says that nothing may be signed with n->id->sign_sk. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pst_home.h"
#include "pst_keys.h"
#include "pst_log.h"
#include "pst_record.h"

static int load_device_file(const char *home, pst_identity **out, char *err, size_t errcap) {
    uint8_t *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = pst_keyfile_read(home, PST_FILE_DEVICE, &buf, &len, err, errcap);
    if (rc == PST_OK && (rc = pst_identity_import(buf, len, NULL, 0, out)) != PST_OK)
        snprintf(err, errcap,
                 "%s/%s is damaged or not a Postern device key (%s): pair this machine again "
                 "('postern device add' on a device that holds the identity key)",
                 home, PST_FILE_DEVICE, pst_strerror(rc));
    sodium_free(buf);
    return rc;
}

int pst_keys_devices_load(pst_node *n, bool have_identity_file, char *err, size_t errcap) {
    char path[PST_PATH_MAX];
    n->holds_identity = have_identity_file;
    if (pst_home_path(n->cfg.home, PST_FILE_DEVICE, path, sizeof path) != PST_OK)
        return PST_E_NOSPACE;
    if (access(path, F_OK) != 0)
        return have_identity_file ? PST_OK : PST_E_NOKEY;
    int rc = load_device_file(n->cfg.home, &n->device, err, errcap);
    if (rc != PST_OK)
        return rc;
    if (!have_identity_file) {
        uint8_t pk[PST_SIGN_PK_BYTES];
        if (pst_identity_stored(n->store, pk) != PST_OK) {
            snprintf(err, errcap,
                     "%s has a device key but its store names no identity: pair it again "
                     "with 'postern init --join CODE' in a new --home",
                     n->cfg.home);
            return PST_E_NOKEY;
        }
        /* the identity as seen from this device: its public key, our box
         * keys (notifications are sealed to them), no identity secret */
        n->id = sodium_malloc(sizeof *n->id);
        if (n->id == NULL)
            return PST_E_NOMEM;
        memset(n->id, 0, sizeof *n->id);
        memcpy(n->id->sign_pk, pk, sizeof pk);
        memcpy(n->id->box_pk, n->device->box_pk, PST_BOX_PK_BYTES);
        memcpy(n->id->box_sk, n->device->box_sk, PST_BOX_SK_BYTES);
        pst_fingerprint_format(pk, n->fingerprint);
    }
    pst_devlist own;
    if (pst_keys_devlist_cached(n, n->id->sign_pk, &own) == PST_OK) {
        n->self_revoked = pst_devlist_find(&own, n->device->sign_pk) < 0;
        if (n->self_revoked)
            pst_log_error("this device was revoked from identity %s: it no longer receives "
                          "new mail for it",
                          n->fingerprint);
    }
    char id[PST_DEVICE_ID_BUFSIZE];
    pst_device_id(n->device->sign_pk, id);
    pst_log_info("device %s of identity %s%s", id, n->fingerprint,
                 n->holds_identity ? " (holds the identity key)" : "");
    return PST_OK;
}

const pst_identity *pst_node_device_keys(pst_node *n) {
    return n->device != NULL ? n->device : n->id;
}

bool pst_keys_self_revoked(pst_node *n) { return n->self_revoked; }

int pst_keys_devlist_cached(pst_node *n, const uint8_t identity_pk[32], pst_devlist *out) {
    uint8_t buf[PST_DHT_VALUE_MAX];
    size_t len = 0;
    memset(out, 0, sizeof *out);
    int rc = pst_store_devlist_get(n->store, identity_pk, buf, sizeof buf, &len, NULL);
    if (rc != PST_OK)
        return rc;
    /* only verified lists are stored; a damaged row is refused, not trusted */
    rc = pst_devlist_decode(buf, len, out);
    if (rc == PST_OK && memcmp(out->signer, identity_pk, PST_SIGN_PK_BYTES) != 0)
        rc = PST_E_SIGNER;
    if (rc != PST_OK) {
        memset(out, 0, sizeof *out);
        pst_counter_rejected(n, "devices", "damaged_cache");
    }
    return rc;
}

int pst_keys_device_valid(pst_node *n, const uint8_t identity_pk[32], const uint8_t device_pk[32]) {
    if (sodium_memcmp(identity_pk, device_pk, PST_SIGN_PK_BYTES) == 0)
        return PST_OK;
    pst_devlist l;
    int rc = pst_keys_devlist_cached(n, identity_pk, &l);
    if (rc != PST_OK)
        return rc == PST_E_NOTFOUND ? PST_E_NOTFOUND : rc;
    if (pst_devlist_find(&l, device_pk) >= 0)
        return PST_OK;
    if (pst_devlist_revoked(&l, device_pk))
        return PST_E_REVOKED;
    /* named by an older list once, dropped since: revoked as well */
    char name[PST_DEVICE_NAME_MAX + 1];
    if (pst_store_device_seen_get(n->store, identity_pk, device_pk, name, sizeof name, NULL) ==
        PST_OK)
        return PST_E_REVOKED;
    return PST_E_NOTFOUND;
}

static int reject(pst_node *n, int err) {
    char buf[40];
    pst_counter_rejected(n, "devices", pst_err_reason(err, buf, sizeof buf));
    return err;
}

static void own_list_changed(pst_node *n, const pst_devlist *l, const uint8_t *val, size_t len) {
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_devices(n->id->sign_pk, slot);
    /* every device keeps the newest list alive with its own records */
    (void)pst_store_published_put(n->store, PST_PUB_DEVLIST, slot, val, len, l->seq, pst_now());
    if (n->device == NULL)
        return;
    bool gone = pst_devlist_find(l, n->device->sign_pk) < 0;
    if (gone && !n->self_revoked)
        pst_log_error("this device was revoked from identity %s (device list seq %llu): it no "
                      "longer receives new mail for it",
                      n->fingerprint, (unsigned long long)l->seq);
    n->self_revoked = gone;
}

int pst_keys_devlist_ingest(pst_node *n, const uint8_t identity_pk[32], const uint8_t *val,
                            size_t len, pst_devlist *out) {
    pst_devlist l;
    pst_rec_type type;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (len > PST_DHT_VALUE_MAX) {
        pst_counter_rejected(n, "devices", "oversize");
        return PST_E_TOOBIG;
    }
    int rc = pst_record_peek_type(val, len, &type);
    if (rc != PST_OK)
        return reject(n, rc);
    if (type != PST_REC_DEVICE_LIST)
        return reject(n, PST_E_RECTYPE);
    if ((rc = pst_devlist_decode(val, len, &l)) != PST_OK)
        return reject(n, rc);
    /* a list signed by anyone but the identity is a forgery, however valid */
    if (memcmp(l.signer, identity_pk, PST_SIGN_PK_BYTES) != 0)
        return reject(n, PST_E_SIGNER);
    if ((rc = pst_devlist_verify(&l, pst_now())) != PST_OK)
        return reject(n, rc);
    if (pst_store_is_revoked(n->store, identity_pk) == 1)
        return reject(n, PST_E_REVOKED);
    uint8_t have[PST_DHT_VALUE_MAX];
    size_t have_len = 0;
    uint64_t have_seq = 0;
    bool had = pst_store_devlist_get(n->store, identity_pk, have, sizeof have, &have_len,
                                     &have_seq) == PST_OK;
    bool same = had && have_len == len && memcmp(have, val, len) == 0;
    rc = pst_store_devlist_put(n->store, identity_pk, l.seq, val, len, pst_now());
    if (rc == PST_E_STALE)
        return reject(n, rc); /* a replayed older list, or a fork of the current seq */
    if (rc != PST_OK) {
        pst_log_error("cannot cache a device list: %s", pst_store_last_error(n->store));
        return rc;
    }
    if (!same) {
        for (uint32_t i = 0; i < l.n_devices; i++)
            (void)pst_store_device_seen_put(n->store, identity_pk, l.devices[i].sign_pk,
                                            l.devices[i].name, l.devices[i].created);
        pst_counter_add(n, "devices.lists_accepted", 1);
        if (n->id != NULL && memcmp(identity_pk, n->id->sign_pk, PST_SIGN_PK_BYTES) == 0)
            own_list_changed(n, &l, val, len);
    }
    if (out != NULL)
        *out = l;
    return PST_OK;
}

static void describe_one(pst_value *m, const uint8_t pk[32], const char *name, uint64_t created,
                         bool revoked, uint64_t revoked_at, bool self) {
    char id[PST_DEVICE_ID_BUFSIZE], fp[PST_FINGERPRINT_STRLEN + 1];
    pst_device_id(pk, id);
    pst_fingerprint_format(pk, fp);
    pst_value_add_str(m, "id", id);
    pst_value_add_str(m, "key", fp);
    pst_value_add_str(m, "name", name);
    pst_value_add_uint(m, "created", created);
    pst_value_add_bool(m, "revoked", revoked);
    if (revoked)
        pst_value_add_uint(m, "revoked_at", revoked_at);
    pst_value_add_bool(m, "this_device", self);
}

unsigned pst_keys_devices_describe(pst_node *n, const uint8_t identity_pk[32], pst_value *arr) {
    pst_devlist l;
    if (pst_keys_devlist_cached(n, identity_pk, &l) != PST_OK)
        return 0;
    const pst_identity *me = n->id != NULL ? pst_node_device_keys(n) : NULL;
    unsigned count = 0;
    for (uint32_t i = 0; i < l.n_devices; i++) {
        const pst_device *d = &l.devices[i];
        bool self = me != NULL && memcmp(me->sign_pk, d->sign_pk, 32) == 0;
        describe_one(pst_value_add_map(arr, NULL), d->sign_pk, d->name, d->created, false, 0, self);
        count++;
    }
    for (uint32_t i = 0; i < l.n_tombstones; i++) {
        const pst_device_tombstone *t = &l.tombstones[i];
        char name[PST_DEVICE_NAME_MAX + 1] = "";
        uint64_t created = 0;
        (void)pst_store_device_seen_get(n->store, identity_pk, t->sign_pk, name, sizeof name,
                                        &created);
        bool self = me != NULL && memcmp(me->sign_pk, t->sign_pk, 32) == 0;
        describe_one(pst_value_add_map(arr, NULL), t->sign_pk, name, created, true, t->revoked_at,
                     self);
        count++;
    }
    return count;
}
