/* `postern init`: create the identity, the offline revocation key and a
 * ready revocation certificate, as GnuPG does at key creation.
 *
 * Atomic: the home directory is locked (flock) for the whole init, every file
 * is first written to a temporary file, and identity.key is created with
 * link(2), which fails if it exists: that link is the one moment the home
 * gets its identity. A refused init (identity exists, another init runs, the
 * store belongs to another identity) returns before writing anything or
 * opening the store.
 *
 * Order after the checks: temporary files (fsynced) -> store: addresses ->
 * link identity.key (the commit) -> store: identity fingerprint -> link
 * revocation.key and revocation.cert -> remove the temporary names. A crash
 * before the commit leaves only NAME.tmp.PID files, which the next init
 * removes (they belong to an identity that never existed). A crash after it
 * leaves a working identity whose revocation files may still be
 * revocation.key.tmp.PID / revocation.cert.tmp.PID: a rerun of init says so
 * and how to rename them; posternd records the fingerprint in the store at
 * its first start if init could not. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "pst_core.h"
#include "pst_armor.h"
#include "pst_home.h"

enum { F_ID, F_REV, F_CERT, F_COUNT };
static const char *const file_names[F_COUNT] = {PST_FILE_IDENTITY, PST_FILE_REVKEY,
                                                PST_FILE_REVCERT};

/* True if name is a temporary file of one of the init files. */
static bool is_init_temp(const char *name, int *which) {
    for (int i = 0; i < F_COUNT; i++) {
        size_t n = strlen(file_names[i]);
        if (strncmp(name, file_names[i], n) == 0 &&
            strncmp(name + n, PST_TEMP_INFIX, strlen(PST_TEMP_INFIX)) == 0) {
            *which = i;
            return true;
        }
    }
    return false;
}

/* Lists (into msg) or removes the temporary files an interrupted init left.
 * Returns how many there were. The caller holds the home lock. */
static int leftover_temps(const char *home, bool remove, char *msg, size_t cap) {
    DIR *d = opendir(home);
    int count = 0;
    size_t off = 0;
    if (msg && cap)
        msg[0] = '\0';
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int which;
        if (!is_init_temp(e->d_name, &which))
            continue;
        count++;
        if (remove) {
            char p[PST_PATH_MAX];
            if (pst_home_path(home, e->d_name, p, sizeof p) == PST_OK)
                unlink(p);
        } else if (msg && off < cap) {
            int n = snprintf(msg + off, cap - off, "%s%s/%s -> %s", count > 1 ? ", " : "", home,
                             e->d_name, file_names[which]);
            off += n > 0 ? (size_t)n : 0;
        }
    }
    closedir(d);
    return count;
}

/* Refuses (with a message) when the home already has, or had, an identity.
 * Only looks: changes nothing. */
static int check_fresh(const char *home, char paths[F_COUNT][PST_PATH_MAX], char *err,
                       size_t errcap) {
    if (access(paths[F_ID], F_OK) == 0) {
        char left[1024];
        if (leftover_temps(home, false, left, sizeof left) > 0)
            snprintf(err, errcap,
                     "%s already has an identity (%s); nothing was changed. An earlier init "
                     "was interrupted after creating it: rename its leftover files (%s)",
                     home, paths[F_ID], left);
        else
            snprintf(err, errcap,
                     "%s already has an identity (%s); nothing was changed. Use another --home "
                     "for a new identity",
                     home, paths[F_ID]);
        return PST_E_EXISTS;
    }
    for (int i = F_REV; i < F_COUNT; i++) {
        if (access(paths[i], F_OK) == 0) {
            snprintf(err, errcap,
                     "%s exists but %s does not: this home had an identity whose key is gone "
                     "(or an old init was interrupted); nothing was changed. Restore "
                     "identity.key from your backup, or, if that identity was never used, "
                     "delete %s and %s and run init again",
                     paths[i], paths[F_ID], paths[F_REV], paths[F_CERT]);
            return PST_E_EXISTS;
        }
    }
    return PST_OK;
}

/* Builds the three files' contents: identity key file (without the offline
 * revocation secret), revocation key file, armored revocation certificate. */
static int make_files(pst_identity *id, const char *passphrase, bool fast_kdf, uint8_t *idbuf,
                      size_t *idlen, uint8_t *revbuf, size_t *revlen, char *cert, char *err,
                      size_t errcap) {
    pst_kdf_params kdf = {PST_KDF_OPSLIMIT_DEFAULT, PST_KDF_MEMLIMIT_DEFAULT};
    if (fast_kdf) /* tests only: still Argon2id at libsodium's INTERACTIVE floor */
        kdf = (pst_kdf_params){PST_KDF_OPSLIMIT_MIN, PST_KDF_MEMLIMIT_MIN};
    uint8_t salt[PST_KDF_SALT_BYTES], nonce[PST_KEYFILE_NONCE_BYTES];
    size_t plen = passphrase ? strlen(passphrase) : 0;

    /* Revocation certificate: signed by the offline revocation key,
     * authorised by the identity key, valid on its own. */
    pst_revkey rk;
    memset(&rk, 0, sizeof rk);
    memcpy(rk.identity_pk, id->sign_pk, 32);
    memcpy(rk.rev_pk, id->rev_pk, 32);
    memcpy(rk.rev_sk, id->rev_sk, 64);
    pst_revocation rev;
    uint8_t revbytes[PST_RECORD_MAX];
    size_t revbytes_len = 0;
    int rc = pst_revocation_auth_make(id->sign_sk, id->rev_pk, rk.auth);
    if (rc == PST_OK)
        rc = pst_revocation_build_by_revkey(&rev, &rk, (uint64_t)time(NULL), PST_REVOKE_UNSPECIFIED,
                                            "revocation certificate made with the key", NULL);
    sodium_memzero(&rk, sizeof rk);
    if (rc == PST_OK)
        rc = pst_revocation_encode(&rev, revbytes, sizeof revbytes, &revbytes_len);
    if (rc != PST_OK) {
        snprintf(err, errcap, "cannot make the revocation certificate: %s", pst_strerror(rc));
        return rc;
    }
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(id->sign_pk, fp);
    char comment[160];
    snprintf(comment, sizeof comment, "revokes %s; use: postern key revoke --cert FILE", fp);
    rc = pst_armor_encode("REVOCATION CERTIFICATE", comment, revbytes, revbytes_len, cert,
                          PST_ARMOR_TEXT_MAX);
    if (rc == PST_OK) {
        randombytes_buf(salt, sizeof salt);
        randombytes_buf(nonce, sizeof nonce);
        rc = pst_revkey_export(id, passphrase, plen, salt, nonce, &kdf, revbuf, PST_KEYFILE_MAX,
                               revlen);
    }
    if (rc == PST_OK) {
        /* the node never holds the offline key: export the identity without it */
        pst_identity_forget_revkey(id);
        randombytes_buf(salt, sizeof salt);
        randombytes_buf(nonce, sizeof nonce);
        rc = pst_identity_export(id, passphrase, plen, salt, nonce, &kdf, idbuf, PST_KEYFILE_MAX,
                                 idlen);
    }
    if (rc != PST_OK)
        snprintf(err, errcap, "cannot write the key files: %s", pst_strerror(rc));
    return rc;
}

int pst_node_init_identity(const pst_node_config *cfg, const char *const *addresses,
                           unsigned n_addresses, const char *passphrase, bool fast_kdf, char *info,
                           size_t infocap, char *err, size_t errcap) {
    char paths[F_COUNT][PST_PATH_MAX], tmps[F_COUNT][PST_PATH_MAX], dbpath[PST_PATH_MAX];
    bool have_tmp[F_COUNT] = {false, false, false};
    err[0] = '\0';

    /* everything that can be refused without touching the disk comes first */
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
    for (int i = 0; i < F_COUNT; i++)
        if (pst_home_path(cfg->home, file_names[i], paths[i], sizeof paths[i]) != PST_OK)
            return PST_E_NOSPACE;
    if (pst_home_path(cfg->home, PST_FILE_STORE, dbpath, sizeof dbpath) != PST_OK)
        return PST_E_NOSPACE;
    /* an existing home: refuse before creating or tightening anything */
    if (access(cfg->home, F_OK) == 0) {
        int rc = check_fresh(cfg->home, paths, err, errcap);
        if (rc != PST_OK)
            return rc;
    }
    int rc = pst_home_ensure(cfg->home, err, errcap);
    if (rc != PST_OK)
        return rc;

    /* One init at a time per home. The lock is on the directory itself, so a
     * refused init creates no lock file either. */
    int lockfd = open(cfg->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lockfd < 0) {
        snprintf(err, errcap, "cannot open %s: %s", cfg->home, strerror(errno));
        return PST_E_IO;
    }
    if (flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
        close(lockfd);
        snprintf(err, errcap,
                 "another 'postern init' is creating an identity in %s right now; nothing was "
                 "changed",
                 cfg->home);
        return PST_E_BUSY;
    }
    /* under the lock, the answer cannot change any more */
    if ((rc = check_fresh(cfg->home, paths, err, errcap)) != PST_OK) {
        close(lockfd);
        return rc;
    }
    /* temporary files of an init that died before its commit: secrets of an
     * identity that never existed */
    (void)leftover_temps(cfg->home, true, NULL, 0);

    pst_store *st = NULL;
    pst_identity *id = NULL;
    uint8_t *idbuf = sodium_malloc(PST_KEYFILE_MAX), *revbuf = sodium_malloc(PST_KEYFILE_MAX);
    char *cert = sodium_malloc(PST_ARMOR_TEXT_MAX);
    size_t idlen = 0, revlen = 0;
    bool claimed = false;
    char fp[PST_FINGERPRINT_STRLEN + 1];
    if (idbuf == NULL || revbuf == NULL || cert == NULL) {
        rc = PST_E_NOMEM;
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    /* proto/ draws no random bytes: fresh seeds make the new keys */
    uint8_t seeds[3][PST_SEED_BYTES];
    randombytes_buf(seeds, sizeof seeds);
    rc = pst_identity_from_seeds(seeds[0], seeds[1], seeds[2], &id);
    sodium_memzero(seeds, sizeof seeds);
    if (rc != PST_OK) {
        snprintf(err, errcap, "cannot create keys: %s", pst_strerror(rc));
        goto out;
    }
    pst_fingerprint_format(id->sign_pk, fp);
    if ((rc = make_files(id, passphrase, fast_kdf, idbuf, &idlen, revbuf, &revlen, cert, err,
                         errcap)) != PST_OK)
        goto out;
    rc = pst_store_open_ex(&st, dbpath, err, errcap);
    if (rc != PST_OK)
        goto out;
    uint8_t other[PST_SIGN_PK_BYTES];
    if (pst_identity_stored(st, other) == PST_OK) {
        char ofp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(other, ofp);
        snprintf(err, errcap,
                 "%s belongs to identity %s, but %s is missing; nothing was changed. Restore "
                 "identity.key from your backup, or move %s away to start a new identity here",
                 dbpath, ofp, paths[F_ID], dbpath);
        rc = PST_E_MISMATCH;
        goto out;
    }
    const uint8_t *data[F_COUNT] = {idbuf, revbuf, (const uint8_t *)cert};
    size_t lens[F_COUNT] = {idlen, revlen, strlen(cert)};
    for (int i = 0; i < F_COUNT; i++) {
        rc = pst_file_write_temp(paths[i], data[i], lens[i], 0600, tmps[i], sizeof tmps[i]);
        if (rc != PST_OK) {
            snprintf(err, errcap, "cannot write %s: %s", tmps[i], pst_strerror(rc));
            goto out;
        }
        have_tmp[i] = true;
    }

    if ((rc = pst_store_meta_set_blob(st, "addresses", list, llen)) != PST_OK) {
        snprintf(err, errcap, "cannot write %s: %s", dbpath, pst_store_last_error(st));
        goto out;
    }

    /* the commit: from here on this home has this identity */
    rc = pst_file_link_new(tmps[F_ID], paths[F_ID]);
    if (rc != PST_OK) {
        snprintf(err, errcap,
                 rc == PST_E_EXISTS ? "%s appeared while init ran; nothing was changed"
                                    : "cannot create %s",
                 paths[F_ID]);
        goto out;
    }
    have_tmp[F_ID] = false;
    claimed = true;
    /* posternd records it at its first start if this fails */
    if (pst_identity_bind_store(cfg->home, st, id->sign_pk, true, err, errcap) != PST_OK)
        err[0] = '\0';
    for (int i = F_REV; i < F_COUNT; i++) {
        rc = pst_file_link_new(tmps[i], paths[i]);
        if (rc != PST_OK) {
            snprintf(err, errcap,
                     "the identity %s was created, but %s could not be renamed to %s (%s): "
                     "rename it by hand",
                     fp, tmps[i], paths[i], pst_strerror(rc));
            have_tmp[i] = false; /* keep it: it is the only copy */
            goto out;
        }
        have_tmp[i] = false;
    }
    snprintf(info, infocap,
             "fingerprint: %s\n"
             "identity key: %s\n"
             "offline revocation key: %s\n"
             "revocation certificate: %s\n",
             fp, paths[F_ID], paths[F_REV], paths[F_CERT]);
    rc = PST_OK;
out:
    for (int i = 0; i < F_COUNT; i++)
        if (have_tmp[i] && !claimed)
            unlink(tmps[i]);
    if (rc != PST_OK && err[0] == '\0')
        snprintf(err, errcap, "cannot create the identity in %s: %s", cfg->home, pst_strerror(rc));
    pst_store_close(st);
    sodium_free(cert);
    sodium_free(revbuf);
    sodium_free(idbuf);
    pst_identity_free(id);
    close(lockfd); /* releases the lock */
    return rc;
}
