/* `postern id` with no node running: what this home would publish, read
 * from the home itself, as `gpg --list-keys` works without an agent. The
 * key record the node signed last (the store keeps it to re-put it) says
 * everything `id` shows; before the first start, the identity comes from
 * the key file (or the fingerprint the store was made for, when the file is
 * sealed with a passphrase) and the addresses from `postern init`. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pst_control.h"
#include "pst_node.h"
#include "pst_home.h"

typedef struct {
    uint8_t slot[PST_SLOT_BYTES];
    pst_keyrec rec;
    bool found, revoked;
} own_records;

static int on_published(const pst_store_published_row *row, void *user) {
    own_records *o = user;
    if (row->kind == PST_PUB_REVOCATION && memcmp(row->slot, o->slot, PST_SLOT_BYTES) == 0)
        o->revoked = true;
    pst_keyrec rec;
    /* the newest record that decodes: a damaged row never hides a good one */
    if (row->kind == PST_PUB_KEYREC && memcmp(row->slot, o->slot, PST_SLOT_BYTES) == 0 &&
        pst_keyrec_decode(row->bytes, row->len, &rec) == PST_OK &&
        (!o->found || rec.seq > o->rec.seq)) {
        o->rec = rec;
        o->found = true;
    }
    return 0;
}

int pst_node_id_offline(const pst_node_config *cfg, pst_value **out, char *err, size_t errcap) {
    char dbpath[PST_PATH_MAX], fp[PST_FINGERPRINT_STRLEN + 1];
    *out = NULL;
    err[0] = '\0';
    char keypath[PST_PATH_MAX];
    int rc = pst_home_path(cfg->home, PST_FILE_STORE, dbpath, sizeof dbpath);
    if (rc == PST_OK)
        rc = pst_home_path(cfg->home, PST_FILE_IDENTITY, keypath, sizeof keypath);
    char devpath[PST_PATH_MAX];
    bool joined = false; /* a device of an identity kept elsewhere (issue 13) */
    if (rc == PST_OK && access(keypath, F_OK) != 0 &&
        pst_home_path(cfg->home, PST_FILE_DEVICE, devpath, sizeof devpath) == PST_OK &&
        access(devpath, F_OK) == 0)
        joined = true;
    if (rc == PST_OK && !joined && access(keypath, F_OK) != 0) {
        snprintf(err, errcap, "no identity in %s: create one with 'postern init --home %s'",
                 cfg->home, cfg->home);
        return PST_E_NOKEY;
    }
    pst_store *st = NULL;
    if (rc == PST_OK && (rc = pst_store_open_ex(&st, dbpath, err, errcap)) != PST_OK)
        return rc;
    pst_identity *id = NULL;
    if (!joined)
        rc = pst_identity_load(cfg->home, NULL, st, PST_IDLOAD_CHECK_ONLY, &id, err, errcap);
    uint8_t pk[PST_SIGN_PK_BYTES];
    size_t len = 0;
    if (rc == PST_OK && id != NULL)
        memcpy(pk, id->sign_pk, sizeof pk);
    else if (rc == PST_OK &&
             (pst_store_meta_get_blob(st, "identity_pk", pk, sizeof pk, &len) != PST_OK ||
              len != sizeof pk)) {
        snprintf(err, errcap,
                 "%s/%s is sealed with a passphrase and the node never started: start posternd "
                 "once to see the identity without the passphrase",
                 cfg->home, PST_FILE_IDENTITY);
        rc = PST_E_PASSPHRASE;
    }
    if (rc != PST_OK) {
        pst_identity_free(id);
        pst_store_close(st);
        return rc;
    }
    own_records o;
    memset(&o, 0, sizeof o);
    pst_slot_key(pk, o.slot);
    rc = pst_store_published_list(st, on_published, &o);
    pst_value *b = pst_value_new_map();
    pst_fingerprint_format(pk, fp);
    pst_value_add_str(b, "fingerprint", fp);
    if (o.found) {
        pst_value_add_bin(b, "encryption_key", o.rec.enc_pk, sizeof o.rec.enc_pk);
        if (o.rec.has_revocation_pk) {
            pst_fingerprint_format(o.rec.revocation_pk, fp);
            pst_value_add_str(b, "revocation_key", fp);
        }
        pst_value *a = pst_value_add_array(b, "addresses");
        for (uint32_t i = 0; i < o.rec.n_addresses; i++)
            pst_value_add_str(a, NULL, o.rec.addresses[i]);
        pst_value *e = pst_value_add_array(b, "endpoints");
        for (uint32_t i = 0; i < o.rec.n_endpoints; i++)
            pst_value_add_str(e, NULL, o.rec.endpoints[i]);
        pst_value_add_uint(b, "pow_bits", o.rec.pow_bits);
        pst_value_add_uint(b, "seq", o.rec.seq);
    } else {
        if (id != NULL) {
            pst_value_add_bin(b, "encryption_key", id->box_pk, sizeof id->box_pk);
            if (id->has_rev_pk) {
                pst_fingerprint_format(id->rev_pk, fp);
                pst_value_add_str(b, "revocation_key", fp);
            }
        }
        char addrs[PST_KEYREC_ADDRESSES_MAX][PST_ADDRESS_MAX + 1];
        unsigned na = pst_node_init_addresses(st, addrs);
        pst_value *a = pst_value_add_array(b, "addresses");
        for (unsigned i = 0; i < na; i++)
            pst_value_add_str(a, NULL, addrs[i]);
        pst_value_add_array(b, "endpoints");
        pst_value_add_uint(b, "pow_bits", cfg->pow_bits);
        pst_value_add_uint(b, "seq", 0);
    }
    pst_value_add_bool(b, "revoked", o.revoked);
    /* where the answer comes from: a script can tell it from a live node's */
    pst_value_add_bool(b, "node_running", false);
    pst_value_add_bool(b, "published", o.found);
    pst_identity_free(id);
    pst_store_close(st);
    if (rc != PST_OK || pst_value_error(b) != PST_OK) {
        snprintf(err, errcap, "cannot read %s: %s", dbpath, pst_strerror(rc ? rc : PST_E_NOMEM));
        pst_value_free(b);
        return rc ? rc : PST_E_NOMEM;
    }
    *out = b;
    return PST_OK;
}
