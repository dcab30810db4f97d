/* Loading this home's identity key and checking it against the identity the
 * store was made for. One flipped byte in a key file without a check (format
 * 1), or a key file copied from another home, would otherwise start the node
 * under another fingerprint: it would claim the user's addresses a second
 * time (making them unmailable) and orphan the outbox. Everything here runs
 * before the DHT node, the fetch port or the control socket exists. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "pst_core.h"
#include "pst_home.h"
#include "pst_log.h"

#define META_IDENTITY "identity_pk"

typedef struct {
    uint8_t want_slot[PST_SLOT_BYTES];
    bool other, ours;
    uint8_t other_slot[PST_SLOT_BYTES];
} keyrec_scan;

static int on_published(const pst_store_published_row *row, void *user) {
    keyrec_scan *s = user;
    if (row->kind != PST_PUB_KEYREC)
        return 0;
    if (memcmp(row->slot, s->want_slot, PST_SLOT_BYTES) == 0) {
        s->ours = true;
    } else if (!s->other) {
        s->other = true;
        memcpy(s->other_slot, row->slot, PST_SLOT_BYTES);
    }
    return 0;
}

static void mismatch_msg(const char *home, const char *have, const char *want, char *err,
                         size_t errcap) {
    snprintf(err, errcap,
             "%s/%s (fingerprint %s) is not the identity this home's store %s/%s was made for "
             "(%s). Refusing to start, so that nothing is published under the wrong key. If "
             "identity.key was damaged or replaced, put the right one back from your backup; "
             "to start a new identity, run 'postern init' in a new --home",
             home, PST_FILE_IDENTITY, have, home, PST_FILE_STORE, want);
}

int pst_identity_bind_store(const char *home, pst_store *st, const uint8_t pk[PST_SIGN_PK_BYTES],
                            bool record, char *err, size_t errcap) {
    uint8_t stored[PST_STORE_BLOB_MAX];
    size_t len = 0;
    char have[PST_FINGERPRINT_STRLEN + 1], want[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(pk, have);
    int rc = pst_store_meta_get_blob(st, META_IDENTITY, stored, sizeof stored, &len);
    if (rc == PST_OK) {
        if (len != PST_SIGN_PK_BYTES) {
            snprintf(err, errcap,
                     "%s/%s records an identity of %zu bytes, not %u: the database is damaged",
                     home, PST_FILE_STORE, len, PST_SIGN_PK_BYTES);
            return PST_E_STORE;
        }
        if (memcmp(stored, pk, PST_SIGN_PK_BYTES) == 0)
            return PST_OK;
        pst_fingerprint_format(stored, want);
        mismatch_msg(home, have, want, err, errcap);
        return PST_E_MISMATCH;
    }
    if (rc != PST_E_NOTFOUND) {
        snprintf(err, errcap, "cannot read %s/%s: %s (%s)", home, PST_FILE_STORE,
                 pst_store_last_error(st), pst_strerror(rc));
        return rc;
    }
    /* A store made before the identity was recorded in it: the key records
     * it published still name the identity (by slot). */
    keyrec_scan scan;
    memset(&scan, 0, sizeof scan);
    pst_slot_key(pk, scan.want_slot);
    rc = pst_store_published_list(st, on_published, &scan);
    if (rc != PST_OK) {
        snprintf(err, errcap, "cannot read %s/%s: %s (%s)", home, PST_FILE_STORE,
                 pst_store_last_error(st), pst_strerror(rc));
        return rc;
    }
    if (scan.other && !scan.ours) {
        char hex[PST_SLOT_HEX_STRLEN + 1];
        pst_slot_hex(scan.other_slot, hex);
        char what[96];
        snprintf(what, sizeof what, "the key published in slot %s", hex);
        mismatch_msg(home, have, what, err, errcap);
        return PST_E_MISMATCH;
    }
    if (!record)
        return PST_OK;
    rc = pst_store_meta_set_blob(st, META_IDENTITY, pk, PST_SIGN_PK_BYTES);
    if (rc != PST_OK) {
        snprintf(err, errcap, "cannot write %s/%s: %s (%s)", home, PST_FILE_STORE,
                 pst_store_last_error(st), pst_strerror(rc));
        return rc;
    }
    return PST_OK;
}

int pst_identity_stored(pst_store *st, uint8_t pk[PST_SIGN_PK_BYTES]) {
    uint8_t stored[PST_STORE_BLOB_MAX];
    size_t len = 0;
    memset(pk, 0, PST_SIGN_PK_BYTES);
    int rc = pst_store_meta_get_blob(st, META_IDENTITY, stored, sizeof stored, &len);
    if (rc == PST_OK && len != PST_SIGN_PK_BYTES)
        rc = PST_E_STORE;
    if (rc == PST_OK)
        memcpy(pk, stored, PST_SIGN_PK_BYTES);
    return rc;
}

/* What the store expects, for messages about a damaged key file. */
static void expected_note(pst_store *st, char *out, size_t cap) {
    uint8_t pk[PST_SIGN_PK_BYTES];
    char fp[PST_FINGERPRINT_STRLEN + 1];
    out[0] = '\0';
    if (st != NULL && pst_identity_stored(st, pk) == PST_OK) {
        pst_fingerprint_format(pk, fp);
        snprintf(out, cap, " (this home's identity is %s)", fp);
    }
}

int pst_keyfile_read(const char *home, const char *name, uint8_t **buf, size_t *len, char *err,
                     size_t errcap) {
    char path[PST_PATH_MAX];
    *len = 0;
    if ((*buf = sodium_malloc(PST_KEYFILE_MAX)) == NULL)
        return PST_E_NOMEM;
    if (pst_home_path(home, name, path, sizeof path) != PST_OK)
        return PST_E_NOSPACE;
    return pst_secret_file_read(path, *buf, PST_KEYFILE_MAX, len, err, errcap);
}

int pst_identity_load(const char *home, const char *passphrase, pst_store *st, unsigned flags,
                      pst_identity **out, char *err, size_t errcap) {
    char path[PST_PATH_MAX], note[128];
    *out = NULL;
    if (pst_home_path(home, PST_FILE_IDENTITY, path, sizeof path) != PST_OK)
        return PST_E_NOSPACE;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = pst_keyfile_read(home, PST_FILE_IDENTITY, &buf, &len, err, errcap);
    if (rc == PST_E_NOMEM)
        return rc;
    if (rc == PST_E_NOTFOUND) {
        snprintf(err, errcap, "no identity in %s: run 'postern init' first", home);
        rc = PST_E_NOKEY;
    }
    if (rc != PST_OK)
        goto out;
    int enc = pst_keyfile_is_encrypted(buf, len);
    if (enc < 0) {
        /* damaged or not a key file at all: either way not this identity */
        expected_note(st, note, sizeof note);
        snprintf(err, errcap,
                 "%s is damaged or not a Postern identity key (%s)%s. Refusing to use it: a "
                 "changed key would be another identity. Restore identity.key from your "
                 "backup; if it is lost for good, revoke it with your revocation certificate "
                 "('postern key revoke --cert FILE') and run 'postern init' in a new --home",
                 path, pst_strerror(enc), note);
        rc = PST_E_CHECKSUM;
        goto out;
    }
    if (enc == 1 && passphrase == NULL) {
        if (flags & PST_IDLOAD_CHECK_ONLY)
            goto out; /* sound as far as can be seen without the passphrase */
        snprintf(err, errcap, "%s is protected by a passphrase: pass --passphrase-file FILE", path);
        rc = PST_E_PASSPHRASE;
        goto out;
    }
    pst_identity *id = NULL;
    rc = pst_identity_import(buf, len, passphrase, passphrase ? strlen(passphrase) : 0, &id);
    if (rc == PST_E_PASSPHRASE) {
        snprintf(err, errcap, "cannot open %s: wrong passphrase (or the file was tampered with)",
                 path);
        goto out;
    }
    if (rc != PST_OK) {
        expected_note(st, note, sizeof note);
        snprintf(err, errcap,
                 "%s is damaged or not a Postern identity key (%s)%s. Restore identity.key "
                 "from your backup",
                 path, pst_strerror(rc), note);
        rc = rc == PST_E_NOMEM ? rc : PST_E_CHECKSUM;
        goto out;
    }
    if (pst_keyfile_version(buf, len) < PST_KEYFILE_VERSION)
        pst_log_info("%s is in key file format 1 (no integrity check); the fingerprint recorded "
                     "in the store still guards it",
                     path);
    uint8_t had[PST_SIGN_PK_BYTES];
    bool recorded = st != NULL && pst_identity_stored(st, had) == PST_OK;
    if (st != NULL &&
        (rc = pst_identity_bind_store(home, st, id->sign_pk, (flags & PST_IDLOAD_RECORD) != 0, err,
                                      errcap)) != PST_OK) {
        pst_identity_free(id);
        goto out;
    }
    if (st != NULL && !recorded && (flags & PST_IDLOAD_RECORD)) {
        char fp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(id->sign_pk, fp);
        pst_log_info("recorded identity %s in %s/%s: this home will refuse any other key", fp, home,
                     PST_FILE_STORE);
    }
    *out = id;
out:
    sodium_free(buf);
    return rc;
}

unsigned pst_node_init_addresses(pst_store *st,
                                 char out[PST_KEYREC_ADDRESSES_MAX][PST_ADDRESS_MAX + 1]) {
    uint8_t list[PST_KEYREC_ADDRESSES_MAX * (PST_ADDRESS_MAX + 1)];
    size_t llen = 0, off = 0;
    unsigned count = 0;
    if (pst_store_meta_get_blob(st, "addresses", list, sizeof list, &llen) != PST_OK)
        return 0;
    while (off < llen && count < PST_KEYREC_ADDRESSES_MAX) {
        size_t l = strnlen((const char *)list + off, llen - off);
        if (l > 0 && l <= PST_ADDRESS_MAX)
            snprintf(out[count++], PST_ADDRESS_MAX + 1, "%.*s", (int)l, (const char *)list + off);
        off += l + 1;
    }
    return count;
}
