/* A new home for a device of an existing identity (issue 13), without a
 * running node: `postern init --join CODE` (pairing with the device that
 * holds the identity key, over TCP to the address in the code) and
 * `postern identity recover` (from the paper form of `postern identity
 * export-paper`). Both write the store first and the key file last, so a
 * home is either whole or has no key and can be made again. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pst_armor.h"
#include "pst_control.h"
#include "pst_home.h"
#include "pst_node.h"
#include "pst_pairing.h"

#define JOIN_CONNECT_MS 10000
#define JOIN_REPLY_MS 30000
#define PAPER_LABEL "IDENTITY RECOVERY FORM"

static uint64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A fresh home: none of the files a home is made of exists yet. */
static int check_fresh(const char *home, char *err, size_t errcap) {
    static const char *const files[] = {PST_FILE_IDENTITY, PST_FILE_DEVICE, PST_FILE_STORE};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[PST_PATH_MAX];
        if (pst_home_path(home, files[i], path, sizeof path) != PST_OK)
            return PST_E_NOSPACE;
        if (access(path, F_OK) == 0) {
            snprintf(err, errcap, "%s exists: join or recover only into a new --home", path);
            return PST_E_EXISTS;
        }
    }
    return PST_OK;
}

static int io_all(int fd, uint8_t *buf, size_t len, bool writing, uint64_t deadline) {
    size_t done = 0;
    while (done < len) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return PST_E_TIMEOUT;
        struct pollfd p = {fd, writing ? POLLOUT : POLLIN, 0};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? PST_E_TIMEOUT : PST_E_IO;
        ssize_t n = writing ? send(fd, buf + done, len - done, MSG_NOSIGNAL)
                            : recv(fd, buf + done, len - done, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return n == 0 ? PST_E_CLOSED : PST_E_IO;
        done += (size_t)n;
    }
    return PST_OK;
}

/* One request, one reply, over TCP to the address in the code. */
static int exchange(const pst_pair_code *code, const uint8_t *req, size_t req_len, uint8_t *rep,
                    size_t *rep_len, char *err, size_t errcap) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    memcpy(&sa.sin_addr.s_addr, code->ipv4, 4);
    sa.sin_port = htons(code->port);
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, code->ipv4, host, sizeof host);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return PST_E_IO;
    int rc = PST_OK;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
        rc = PST_E_IO;
    if (rc == PST_OK) {
        struct pollfd p = {fd, POLLOUT, 0};
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (poll(&p, 1, JOIN_CONNECT_MS) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
            rc = PST_E_IO;
    }
    if (rc != PST_OK) {
        snprintf(err, errcap,
                 "cannot reach the device that made the code at %s:%u: is its posternd running, "
                 "and is the code typed right?",
                 host, code->port);
        close(fd);
        return rc;
    }
    uint64_t deadline = mono_ms() + JOIN_REPLY_MS;
    uint8_t hdr[4];
    pst_pair_frame_header(req_len, hdr);
    size_t len = 0;
    if ((rc = io_all(fd, hdr, 4, true, deadline)) == PST_OK &&
        (rc = io_all(fd, (uint8_t *)req, req_len, true, deadline)) == PST_OK &&
        (rc = io_all(fd, hdr, 4, false, deadline)) == PST_OK &&
        (rc = pst_pair_frame_len(hdr, PST_PAIR_REPLY_MAX, &len)) == PST_OK)
        rc = io_all(fd, rep, len, false, deadline);
    close(fd);
    *rep_len = rc == PST_OK ? len : 0;
    if (rc != PST_OK)
        snprintf(err, errcap, "the pairing with %s:%u failed: %s", host, code->port,
                 pst_strerror(rc));
    return rc;
}

/* The reply must be what we asked for, signed by one identity. */
static int check_reply(const pst_pair_reply *r, const pst_identity *dev, pst_devlist *list,
                       pst_keyrec *kr, bool *have_kr, char *err, size_t errcap) {
    pst_devcert cert;
    uint64_t now = (uint64_t)time(NULL);
    int rc = pst_devlist_decode(r->devlist, r->devlist_len, list);
    if (rc == PST_OK)
        rc = pst_devlist_verify(list, now);
    if (rc == PST_OK && (rc = pst_devcert_decode(r->devcert, r->devcert_len, &cert)) == PST_OK)
        rc = pst_devcert_verify(&cert, now);
    if (rc == PST_OK)
        rc = pst_devcert_in_list(&cert, list);
    if (rc == PST_OK && (memcmp(cert.dev.sign_pk, dev->sign_pk, 32) != 0 ||
                         memcmp(cert.dev.box_pk, dev->box_pk, 32) != 0))
        rc = PST_E_MISMATCH;
    *have_kr = false;
    if (rc == PST_OK && r->keyrec_len > 0 &&
        pst_keyrec_decode(r->keyrec, r->keyrec_len, kr) == PST_OK &&
        memcmp(kr->signer, list->signer, 32) == 0 && pst_keyrec_verify(kr, now) == PST_OK)
        *have_kr = true;
    if (rc != PST_OK)
        snprintf(err, errcap,
                 "the old device's answer does not check out (%s): nothing was written",
                 pst_strerror(rc));
    return rc;
}

/* The store of a new device home: the identity it belongs to, its
 * addresses, the device list, the key record and the trust list. */
static int write_store(const char *home, const uint8_t identity[32], const pst_pair_reply *r,
                       const pst_devlist *l, const pst_keyrec *kr, bool have_kr, char *err,
                       size_t errcap) {
    char dbpath[PST_PATH_MAX];
    pst_store *st = NULL;
    uint64_t now = (uint64_t)time(NULL);
    int rc = pst_home_path(home, PST_FILE_STORE, dbpath, sizeof dbpath);
    if (rc == PST_OK)
        rc = pst_store_open_ex(&st, dbpath, err, errcap);
    if (rc != PST_OK)
        return rc;
    if ((rc = pst_store_begin(st)) == PST_OK &&
        (rc = pst_identity_bind_store(home, st, identity, true, err, errcap)) == PST_OK &&
        (rc = pst_store_devlist_put(st, identity, l->seq, r->devlist, r->devlist_len, now)) ==
            PST_OK &&
        (rc = pst_store_meta_set_blob(st, "device_cert", r->devcert, r->devcert_len)) == PST_OK) {
        for (uint32_t i = 0; i < l->n_devices && rc == PST_OK; i++)
            rc = pst_store_device_seen_put(st, identity, l->devices[i].sign_pk, l->devices[i].name,
                                           l->devices[i].created);
        if (rc == PST_OK && have_kr) {
            uint8_t list[PST_KEYREC_ADDRESSES_MAX * (PST_ADDRESS_MAX + 1)];
            size_t llen = 0;
            for (uint32_t i = 0; i < kr->n_addresses; i++) {
                size_t al = strlen(kr->addresses[i]);
                memcpy(list + llen, kr->addresses[i], al + 1);
                llen += al + 1;
            }
            (void)pst_store_keyrec_put(st, identity, kr->seq, kr->created, kr->expires, r->keyrec,
                                       r->keyrec_len, now);
            rc = pst_store_meta_set_blob(st, "addresses", list, llen);
        }
        uint32_t e = 0; /* the contacts' addresses follow one another in r->emails */
        for (uint32_t i = 0; i < r->n_contacts && rc == PST_OK; i++) {
            rc = pst_store_contact_set(st, r->contacts[i].pk, (pst_store_tier)r->contacts[i].tier,
                                       r->contacts[i].petname, now);
            for (uint32_t k = 0; k < r->contacts[i].n_emails && rc == PST_OK; k++)
                rc = pst_store_contact_email_add(st, r->contacts[i].pk, r->emails[e++]);
        }
    }
    if (rc == PST_OK)
        rc = pst_store_commit(st);
    else
        (void)pst_store_rollback(st);
    if (rc != PST_OK && err[0] == '\0')
        snprintf(err, errcap, "cannot write %s: %s", dbpath, pst_store_last_error(st));
    pst_store_close(st);
    return rc;
}

/* Writes key into HOME/name (0600, never over an existing file). */
static int write_key(const char *home, const char *name, const pst_identity *key, char *err,
                     size_t errcap) {
    char path[PST_PATH_MAX];
    uint8_t *buf = sodium_malloc(PST_KEYFILE_MAX);
    size_t len = 0;
    int rc = buf == NULL ? PST_E_NOMEM : pst_home_path(home, name, path, sizeof path);
    if (rc == PST_OK)
        rc = pst_identity_export(key, NULL, 0, NULL, NULL, NULL, buf, PST_KEYFILE_MAX, &len);
    if (rc == PST_OK)
        rc = pst_secret_file_write(path, buf, len, 0);
    if (rc != PST_OK)
        snprintf(err, errcap, "cannot write %s/%s: %s", home, name, pst_strerror(rc));
    sodium_free(buf);
    return rc;
}

static int new_device_key(pst_identity **out) {
    uint8_t seeds[2][PST_SEED_BYTES];
    randombytes_buf(seeds, sizeof seeds);
    int rc = pst_identity_from_seeds(seeds[0], seeds[1], NULL, out);
    sodium_memzero(seeds, sizeof seeds);
    return rc;
}

int pst_node_join(const pst_node_config *cfg, const char *code_text, const char *name, char *info,
                  size_t infocap, char *err, size_t errcap) {
    pst_pair_code code;
    pst_pair_keys *keys = sodium_malloc(sizeof *keys);
    pst_pair_reply *r = calloc(1, sizeof *r);
    uint8_t *rep = malloc(PST_PAIR_REPLY_MAX);
    pst_identity *dev = NULL;
    err[0] = '\0';
    int rc = keys && r && rep ? PST_OK : PST_E_NOMEM;
    if (rc == PST_OK && (rc = pst_pair_code_parse(code_text, &code)) != PST_OK)
        snprintf(err, errcap,
                 "'%s' is not a pairing code (26 letters and digits of z-base-32, dashes and "
                 "spaces ignored): copy it again from 'postern device add'",
                 code_text);
    if (rc == PST_OK && name != NULL && !pst_device_name_ok(name, strlen(name))) {
        snprintf(err, errcap, "a device name is 1..%u bytes of UTF-8 without control characters",
                 PST_DEVICE_NAME_MAX);
        rc = PST_E_INVAL;
    }
    if (rc == PST_OK && access(cfg->home, F_OK) == 0)
        rc = check_fresh(cfg->home, err, errcap);
    if (rc == PST_OK)
        rc = pst_pair_derive(&code, keys);
    if (rc == PST_OK)
        rc = new_device_key(&dev);
    pst_pair_request req;
    memset(&req, 0, sizeof req);
    uint8_t msg[PST_PAIR_REQUEST_MAX], nonce[PST_PAIR_NONCE_BYTES];
    size_t msg_len = 0, rep_len = 0;
    if (rc == PST_OK) {
        memcpy(req.sign_pk, dev->sign_pk, 32);
        memcpy(req.box_pk, dev->box_pk, 32);
        snprintf(req.name, sizeof req.name, "%s", name ? name : "");
        randombytes_buf(nonce, sizeof nonce);
        rc = pst_pair_request_seal(keys, &req, nonce, msg, sizeof msg, &msg_len);
    }
    if (rc == PST_OK)
        rc = exchange(&code, msg, msg_len, rep, &rep_len, err, errcap);
    pst_pair_status status = PST_PAIR_FAILED;
    if (rc == PST_OK && (rc = pst_pair_reply_open(keys, rep, rep_len, &status, r)) != PST_OK)
        snprintf(err, errcap, "the old device's answer cannot be read (%s)", pst_strerror(rc));
    if (rc == PST_OK && status != PST_PAIR_OK) {
        snprintf(err, errcap, "pairing refused: %s", pst_pair_status_text(status));
        rc = PST_E_PERM;
    }
    pst_devlist l;
    pst_keyrec kr;
    bool have_kr = false;
    if (rc == PST_OK)
        rc = check_reply(r, dev, &l, &kr, &have_kr, err, errcap);
    if (rc == PST_OK)
        rc = pst_home_ensure(cfg->home, err, errcap);
    if (rc == PST_OK)
        rc = write_store(cfg->home, l.signer, r, &l, &kr, have_kr, err, errcap);
    if (rc == PST_OK) /* the commit: a home with device.key is a device */
        rc = write_key(cfg->home, PST_FILE_DEVICE, dev, err, errcap);
    if (rc == PST_OK) {
        char fp[PST_FINGERPRINT_STRLEN + 1], id[PST_DEVICE_ID_BUFSIZE];
        pst_fingerprint_format(l.signer, fp);
        pst_device_id(dev->sign_pk, id);
        int i = pst_devlist_find(&l, dev->sign_pk);
        snprintf(info, infocap,
                 "fingerprint: %s\ndevice: %s (\"%s\"), one of %u\ndevice key: %s/%s\n"
                 "contacts copied: %u (with %u email addresses)\n",
                 fp, id, i >= 0 ? l.devices[i].name : "", l.n_devices, cfg->home, PST_FILE_DEVICE,
                 r->n_contacts, r->n_emails);
    }
    if (rc != PST_OK && err[0] == '\0')
        snprintf(err, errcap, "cannot join: %s", pst_strerror(rc));
    sodium_memzero(&code, sizeof code);
    sodium_free(keys);
    pst_identity_free(dev);
    free(r);
    free(rep);
    return rc;
}

/* ---- paper form ---------------------------------------------------------------- */

int pst_node_paper_export(const pst_node_config *cfg, const char *passphrase, char *out, size_t cap,
                          char *err, size_t errcap) {
    pst_identity *id = NULL;
    int rc = pst_identity_load(cfg->home, passphrase, NULL, 0, &id, err, errcap);
    if (rc != PST_OK)
        return rc;
    uint8_t *buf = sodium_malloc(PST_KEYFILE_MAX);
    size_t len = 0;
    char fp[PST_FINGERPRINT_STRLEN + 1], comment[128];
    pst_fingerprint_format(id->sign_pk, fp);
    snprintf(comment, sizeof comment, "identity %s", fp);
    rc = buf == NULL
             ? PST_E_NOMEM
             : pst_identity_export(id, NULL, 0, NULL, NULL, NULL, buf, PST_KEYFILE_MAX, &len);
    if (rc == PST_OK)
        rc = pst_armor_encode(PAPER_LABEL, comment, buf, len, out, cap);
    if (rc != PST_OK)
        snprintf(err, errcap, "cannot make the recovery form: %s", pst_strerror(rc));
    sodium_free(buf);
    pst_identity_free(id);
    return rc;
}

int pst_node_recover(const pst_node_config *cfg, const char *form, size_t form_len, char *info,
                     size_t infocap, char *err, size_t errcap) {
    uint8_t *buf = sodium_malloc(PST_KEYFILE_MAX);
    size_t len = 0;
    pst_identity *id = NULL, *dev = NULL;
    pst_store *st = NULL;
    err[0] = '\0';
    int rc = buf == NULL ? PST_E_NOMEM : PST_OK;
    /* the printed form has a few lines of instructions above the armor */
    const char *begin = memmem(form, form_len, "-----BEGIN POSTERN", 18);
    if (begin != NULL) {
        form_len -= (size_t)(begin - form);
        form = begin;
    }
    if (rc == PST_OK &&
        (rc = pst_armor_decode(PAPER_LABEL, form, form_len, buf, PST_KEYFILE_MAX, &len)) != PST_OK)
        snprintf(err, errcap,
                 "this is not a Postern recovery form (%s): give the text printed by 'postern "
                 "identity export-paper', from its BEGIN line to its END line",
                 pst_strerror(rc));
    if (rc == PST_OK && (rc = pst_identity_import(buf, len, NULL, 0, &id)) != PST_OK)
        snprintf(err, errcap, "the recovery form is damaged (%s): check what was typed",
                 pst_strerror(rc));
    if (rc == PST_OK && access(cfg->home, F_OK) == 0)
        rc = check_fresh(cfg->home, err, errcap);
    if (rc == PST_OK)
        rc = new_device_key(&dev);
    if (rc == PST_OK)
        rc = pst_home_ensure(cfg->home, err, errcap);
    char dbpath[PST_PATH_MAX];
    if (rc == PST_OK &&
        (rc = pst_home_path(cfg->home, PST_FILE_STORE, dbpath, sizeof dbpath)) == PST_OK)
        rc = pst_store_open_ex(&st, dbpath, err, errcap);
    /* the node finishes the recovery once it reaches the DHT: it reads the
     * current device list and publishes one above it that revokes every
     * device in it (keys/devices_dht.c) */
    if (rc == PST_OK &&
        (rc = pst_identity_bind_store(cfg->home, st, id->sign_pk, true, err, errcap)) == PST_OK)
        rc = pst_store_meta_set_u64(st, PST_META_RECOVER_PENDING, 1);
    pst_store_close(st);
    if (rc == PST_OK)
        rc = write_key(cfg->home, PST_FILE_DEVICE, dev, err, errcap);
    if (rc == PST_OK)
        rc = write_key(cfg->home, PST_FILE_IDENTITY, id, err, errcap);
    if (rc == PST_OK) {
        char fp[PST_FINGERPRINT_STRLEN + 1], did[PST_DEVICE_ID_BUFSIZE];
        pst_fingerprint_format(id->sign_pk, fp);
        pst_device_id(dev->sign_pk, did);
        snprintf(info, infocap,
                 "fingerprint: %s\nnew device: %s\nidentity key: %s/%s\n"
                 "Start posternd: once it reaches the network it publishes a device list that "
                 "revokes every old device.\n",
                 fp, did, cfg->home, PST_FILE_IDENTITY);
    }
    if (rc != PST_OK && err[0] == '\0')
        snprintf(err, errcap, "cannot recover: %s", pst_strerror(rc));
    sodium_free(buf);
    pst_identity_free(id);
    pst_identity_free(dev);
    return rc;
}
