/* `postern init`: create the identity, the offline revocation key and a
 * ready revocation certificate, as GnuPG does at key creation. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "node_int.h"
#include "pst_armor.h"

int pst_node_init_identity(const pst_node_config *cfg, const char *const *addresses,
                           unsigned n_addresses, const char *passphrase, bool fast_kdf, char *info,
                           size_t infocap, char *err, size_t errcap) {
    char idpath[PST_PATH_MAX], revpath[PST_PATH_MAX], certpath[PST_PATH_MAX], dbpath[PST_PATH_MAX];
    int rc = pst_home_ensure(cfg->home, err, errcap);
    if (rc != PST_OK)
        return rc;
    if (pst_home_path(cfg->home, PST_FILE_IDENTITY, idpath, sizeof idpath) != PST_OK ||
        pst_home_path(cfg->home, PST_FILE_REVKEY, revpath, sizeof revpath) != PST_OK ||
        pst_home_path(cfg->home, PST_FILE_REVCERT, certpath, sizeof certpath) != PST_OK ||
        pst_home_path(cfg->home, PST_FILE_STORE, dbpath, sizeof dbpath) != PST_OK)
        return PST_E_NOSPACE;

    char norm[PST_KEYREC_ADDRESSES_MAX][PST_ADDRESS_MAX + 1];
    if (n_addresses > PST_KEYREC_ADDRESSES_MAX) {
        snprintf(err, errcap, "at most %u addresses", PST_KEYREC_ADDRESSES_MAX);
        return PST_E_INVAL;
    }
    uint8_t list[PST_KEYREC_ADDRESSES_MAX * (PST_ADDRESS_MAX + 1)];
    size_t llen = 0;
    for (unsigned i = 0; i < n_addresses; i++) {
        if (pst_address_normalize(addresses[i], norm[i], sizeof norm[i]) != PST_OK) {
            snprintf(err, errcap,
                     "'%s' is not an address Postern accepts (ASCII local@domain, e.g. "
                     "alice@example.org)",
                     addresses[i]);
            return PST_E_INVAL;
        }
        size_t l = strlen(norm[i]);
        memcpy(list + llen, norm[i], l + 1);
        llen += l + 1;
    }

    pst_store *st = NULL;
    rc = pst_store_open_ex(&st, dbpath, err, errcap);
    if (rc != PST_OK)
        return rc;

    pst_identity *id = NULL;
    uint8_t *buf = sodium_malloc(PST_KEYFILE_MAX);
    char *cert = NULL;
    if (buf == NULL) {
        rc = PST_E_NOMEM;
        goto out;
    }
    rc = pst_identity_new(&id);
    if (rc != PST_OK) {
        snprintf(err, errcap, "cannot create keys: %s", pst_strerror(rc));
        goto out;
    }
    pst_kdf_params kdf = {PST_KDF_OPSLIMIT_DEFAULT, PST_KDF_MEMLIMIT_DEFAULT};
    if (fast_kdf) /* tests only: still Argon2id at libsodium's INTERACTIVE floor */
        kdf = (pst_kdf_params){PST_KDF_OPSLIMIT_MIN, PST_KDF_MEMLIMIT_MIN};
    uint8_t salt[PST_KDF_SALT_BYTES];
    size_t len = 0;
    size_t plen = passphrase ? strlen(passphrase) : 0;

    /* Revocation certificate first: signed by the offline revocation key,
     * authorised by the identity key, valid on its own. */
    pst_revkey rk;
    memset(&rk, 0, sizeof rk);
    memcpy(rk.identity_pk, id->sign_pk, 32);
    memcpy(rk.rev_pk, id->rev_pk, 32);
    memcpy(rk.rev_sk, id->rev_sk, 64);
    pst_revocation rev;
    uint8_t revbytes[PST_RECORD_MAX];
    size_t revlen = 0;
    rc = pst_revocation_auth_make(id->sign_sk, id->rev_pk, rk.auth);
    if (rc == PST_OK)
        rc = pst_revocation_build_by_revkey(&rev, &rk, (uint64_t)time(NULL), PST_REVOKE_UNSPECIFIED,
                                            "revocation certificate made with the key", NULL);
    sodium_memzero(&rk, sizeof rk);
    if (rc == PST_OK)
        rc = pst_revocation_encode(&rev, revbytes, sizeof revbytes, &revlen);
    if (rc != PST_OK) {
        snprintf(err, errcap, "cannot make the revocation certificate: %s", pst_strerror(rc));
        goto out;
    }
    cert = sodium_malloc(PST_ARMOR_TEXT_MAX);
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(id->sign_pk, fp);
    char comment[160];
    snprintf(comment, sizeof comment, "revokes %s; use: postern key revoke --cert FILE", fp);
    if (cert == NULL || pst_armor_encode("REVOCATION CERTIFICATE", comment, revbytes, revlen, cert,
                                         PST_ARMOR_TEXT_MAX) != PST_OK) {
        rc = PST_E_NOMEM;
        goto out;
    }

    randombytes_buf(salt, sizeof salt);
    rc = pst_revkey_export(id, passphrase, plen, salt, &kdf, buf, PST_KEYFILE_MAX, &len);
    if (rc == PST_OK)
        rc = pst_secret_file_write(revpath, buf, len, 0);
    if (rc == PST_E_EXISTS) {
        snprintf(err, errcap, "%s already exists: this home has an identity", revpath);
        goto out;
    }
    if (rc == PST_OK)
        rc = pst_secret_file_write(certpath, (const uint8_t *)cert, strlen(cert), 0);
    randombytes_buf(salt, sizeof salt);
    if (rc == PST_OK) {
        /* the node never holds the offline key: export the identity without it */
        pst_identity_forget_revkey(id);
        rc = pst_identity_export(id, passphrase, plen, salt, &kdf, buf, PST_KEYFILE_MAX, &len);
    }
    if (rc == PST_OK)
        rc = pst_store_meta_set_blob(st, "addresses", list, llen);
    /* the identity file is written last: its presence means "initialised" */
    if (rc == PST_OK)
        rc = pst_secret_file_write(idpath, buf, len, 0);
    if (rc != PST_OK) {
        if (err[0] == '\0' || rc != PST_E_EXISTS)
            snprintf(err, errcap, "cannot write the key files in %s: %s", cfg->home,
                     pst_strerror(rc));
        goto out;
    }
    snprintf(info, infocap,
             "fingerprint: %s\n"
             "identity key: %s\n"
             "offline revocation key: %s\n"
             "revocation certificate: %s\n",
             fp, idpath, revpath, certpath);
out:
    if (rc == PST_E_EXISTS && strstr(err, "already") == NULL)
        snprintf(err, errcap, "%s already has an identity (files exist); use another --home",
                 cfg->home);
    sodium_free(cert);
    sodium_free(buf);
    pst_identity_free(id);
    pst_store_close(st);
    return rc;
}
