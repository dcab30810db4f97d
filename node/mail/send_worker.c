/* `send`, the worker thread's half: read the message from the CLI's spool
 * file, filter its headers (pst_mailmsg), encrypt it once with a fresh message
 * key while hashing its message id, then seal a notification per recipient
 * and mint the stamps they need (all cores). A ciphertext of at most
 * PST_STORE_BODY_INLINE_MAX bytes stays in memory and the loop commits it
 * into the store with the rows (one fsync in all); a larger one goes to
 * DIR/outbox/tmp-* as soon as it passes that size, is fsynced and renamed
 * into place. The loop side (send.c) commits and acknowledges. Nothing here
 * touches the loop, the store or the DHT. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outbox_int.h"
#include "pst_fetch.h"
#include "pst_mint.h"
#include "pst_log.h"
#include "pst_mailmsg.h"
#include "pst_msgcrypt.h"

#include "send_int.h"

/* ---- the worker: filter, encrypt, seal, mint ----------------------------- */

typedef struct {
    send_op *op;
    pst_msg_encryptor enc;
    pst_msgid_hasher hasher;
    int fd, write_errno; /* write_errno: why the ciphertext could not be written */
    /* the ciphertext while it fits in the store (PST_STORE_BODY_INLINE_MAX);
     * NULL once it went to the file fd */
    uint8_t *mem;
    size_t mem_len;
    uint8_t *plain; /* PST_MSG_CHUNK */
    size_t plain_len;
    uint8_t *wire; /* PST_MSG_WIRE_CHUNK_MAX */
    uint64_t total;
    uint64_t max;
    bool over_size; /* the ciphertext passed max */
    const atomic_int *cancel;
    int relay_fd; /* the plaintext copy for the smarthost, -1 = none */
} enc_state;

static int write_all(enc_state *s, int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->write_errno = w < 0 ? errno : ENOSPC;
            return s->write_errno == ENOSPC || s->write_errno == EDQUOT ? PST_E_DISKFULL : PST_E_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return PST_OK;
}

/* The tmp file for the ciphertext: the spare the loop handed over (its
 * inode reused, outbox_spare.c), else a new file at op->tmp_path. */
static int open_tmp(send_op *op) {
    if (op->spare[0] != '\0') {
        int fd = open(op->spare, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            op->used_spare = true;
            snprintf(op->tmp_path, sizeof op->tmp_path, "%s", op->spare);
            return fd;
        }
        (void)unlink(op->spare);
    }
    return open(op->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

static int emit_wire(enc_state *s, const uint8_t *p, size_t n) {
    if (atomic_load(s->cancel))
        return PST_E_CANCELLED;
    if (n > s->max - s->total) {
        s->over_size = true;
        return PST_E_TOOBIG;
    }
    pst_msgid_update(&s->hasher, p, n);
    s->total += n;
    if (s->mem != NULL && n <= PST_STORE_BODY_INLINE_MAX - s->mem_len) {
        memcpy(s->mem + s->mem_len, p, n);
        s->mem_len += n;
        return PST_OK;
    }
    if (s->mem != NULL) { /* too large for the store: a file from here on */
        s->fd = open_tmp(s->op);
        if (s->fd < 0) {
            s->write_errno = errno;
            return errno == ENOSPC || errno == EDQUOT ? PST_E_DISKFULL : PST_E_IO;
        }
        int rc = write_all(s, s->fd, s->mem, s->mem_len);
        free(s->mem);
        s->mem = NULL;
        if (rc != PST_OK)
            return rc;
    }
    return write_all(s, s->fd, p, n);
}

static int flush_plain(enc_state *s) {
    if (s->plain_len == 0)
        return PST_OK;
    size_t wl = 0;
    int rc = pst_msg_encrypt_chunk(&s->enc, s->plain, s->plain_len, s->wire, PST_MSG_WIRE_CHUNK_MAX,
                                   &wl);
    s->plain_len = 0;
    return rc != PST_OK ? rc : emit_wire(s, s->wire, wl);
}

static int on_plain(void *user, const uint8_t *p, size_t n) {
    enc_state *s = user;
    if (s->relay_fd >= 0) {
        int rc = write_all(s, s->relay_fd, p, n);
        if (rc != PST_OK)
            return rc;
    }
    while (n > 0) {
        size_t take = PST_MSG_CHUNK - s->plain_len < n ? PST_MSG_CHUNK - s->plain_len : n;
        memcpy(s->plain + s->plain_len, p, take);
        s->plain_len += take;
        p += take;
        n -= take;
        if (s->plain_len == PST_MSG_CHUNK) {
            int rc = flush_plain(s);
            if (rc != PST_OK)
                return rc;
        }
    }
    return PST_OK;
}

void pst_send_set_err(send_op *op, int err, const char *fmt, ...) {
    op->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->errmsg, sizeof op->errmsg, fmt, ap);
    va_end(ap);
}

static void encrypt_stream(send_op *op, int in, enc_state *s, uint8_t *rbuf,
                           pst_mailmsg_filter *f) {
    uint8_t hdr[PST_MSG_HEADER_BYTES];
    int rc = pst_msg_encryptor_init(&s->enc, op->sec->msg_key, hdr);
    if (rc == PST_OK)
        rc = emit_wire(s, hdr, sizeof hdr);
    if (rc == PST_OK)
        rc = pst_mailmsg_filter_init(f, op->from, op->date, op->message_id);
    for (;;) {
        if (rc != PST_OK)
            break;
        ssize_t r = read(in, rbuf, SEND_IO_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            pst_send_set_err(op, PST_E_IO, "cannot read %s: %s", op->path, strerror(errno));
            return;
        }
        if (r == 0) {
            rc = pst_mailmsg_filter_finish(f, on_plain, s);
            break;
        }
        rc = pst_mailmsg_filter_feed(f, rbuf, (size_t)r, on_plain, s);
    }
    if (rc == PST_OK)
        rc = flush_plain(s);
    if (rc == PST_OK) {
        size_t wl = 0;
        rc = pst_msg_encrypt_final(&s->enc, op->sec->sign_sk, op->created, s->wire,
                                   PST_MSG_WIRE_CHUNK_MAX, &wl);
        if (rc == PST_OK)
            rc = emit_wire(s, s->wire, wl);
    }
    if (rc == PST_E_TOOBIG && s->over_size)
        pst_send_set_err(
            op, rc,
            "the message is too large: more than %llu bytes once encrypted (the limit is "
            "max_message_size in postern.conf)",
            (unsigned long long)s->max);
    else if (rc == PST_E_TOOBIG)
        pst_send_set_err(
            op, rc, "the message header is too large (a field over %u bytes or a header over %u)",
            PST_MAILMSG_FIELD_MAX, PST_MAILMSG_HEADER_MAX);
    else if (rc == PST_E_MALFORMED)
        pst_send_set_err(op, rc, "the message header contains a NUL byte");
    else if (rc == PST_E_IO || rc == PST_E_DISKFULL)
        pst_send_set_err(op, rc, "cannot write %s: %s", op->tmp_path, strerror(s->write_errno));
    else if (rc != PST_OK)
        pst_send_set_err(op, rc, "cannot encrypt the message: %s", pst_strerror(rc));
    snprintf(op->subject, sizeof op->subject, "%s", f->subject);
    op->bcc_removed = f->bcc_removed;
}

/* Reads, filters and encrypts into a tmp file in the outbox. */
static void prepare(send_op *op) {
    /* an open file of the caller's (SMTP's memory spool): a dup of our own,
     * from its start */
    int in = op->in_fd >= 0 ? fcntl(op->in_fd, F_DUPFD_CLOEXEC, 0)
                            : open(op->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (in >= 0 && op->in_fd >= 0 && lseek(in, 0, SEEK_SET) != 0) {
        close(in);
        in = -1;
    }
    struct stat sb;
    if (in < 0 || fstat(in, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        pst_send_set_err(op, PST_E_IO, "cannot read %s: %s", op->path,
                         in < 0 ? strerror(errno) : "not a regular file");
        if (in >= 0)
            close(in);
        return;
    }
    uint8_t rnd[8];
    char hex[2 * sizeof rnd + 1];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    if (snprintf(op->tmp_path, sizeof op->tmp_path, "%s/tmp-%s", op->o->dir, hex) >=
        (int)sizeof op->tmp_path) {
        pst_send_set_err(op, PST_E_NOSPACE, "home directory path too long");
        op->tmp_path[0] = '\0';
        close(in);
        return;
    }
    enc_state s;
    memset(&s, 0, sizeof s);
    s.op = op;
    s.max = op->max_bytes;
    s.cancel = &op->cancel;
    s.fd = -1; /* opened when the ciphertext outgrows s.mem */
    s.mem = malloc(PST_STORE_BODY_INLINE_MAX);
    s.relay_fd = -1;
    if (op->n_internet > 0) {
        if (snprintf(op->relay_tmp, sizeof op->relay_tmp, "%s/tmp-%s", pst_relay_dir(op->node),
                     hex) >= (int)sizeof op->relay_tmp ||
            (s.relay_fd = open(op->relay_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
            pst_send_set_err(op, PST_E_IO, "cannot create %s: %s", op->relay_tmp, strerror(errno));
            op->relay_tmp[0] = '\0';
        }
    }
    uint8_t *rbuf = malloc(SEND_IO_CHUNK);
    s.plain = malloc(PST_MSG_CHUNK);
    s.wire = malloc(PST_MSG_WIRE_CHUNK_MAX);
    pst_mailmsg_filter *f = malloc(sizeof *f);
    if (op->err != PST_OK) {
        /* the relay copy could not be made */
    } else if (!s.mem || !rbuf || !s.plain || !s.wire || !f) {
        pst_send_set_err(op, PST_E_NOMEM, "out of memory");
    } else {
        pst_msgid_init(&s.hasher);
        encrypt_stream(op, in, &s, rbuf, f);
        pst_msg_encryptor_close(&s.enc);
        pst_msgid_final(&s.hasher, op->msg_id);
        op->size = s.total;
        if (op->err == PST_OK && s.fd < 0) { /* no file: the loop commits it with the rows */
            op->tmp_path[0] = '\0';
            op->inline_body = s.mem;
            s.mem = NULL;
        } else if (op->err == PST_OK && fsync(s.fd) != 0)
            pst_send_set_err(op, PST_E_IO, "cannot write %s: %s", op->tmp_path, strerror(errno));
        if (op->err == PST_OK && s.relay_fd >= 0 && fsync(s.relay_fd) != 0)
            pst_send_set_err(op, PST_E_IO, "cannot write %s: %s", op->relay_tmp, strerror(errno));
    }
    if (s.relay_fd >= 0 && close(s.relay_fd) != 0 && op->err == PST_OK)
        pst_send_set_err(op, PST_E_IO, "cannot write %s: %s", op->relay_tmp, strerror(errno));
    if (s.fd >= 0 && close(s.fd) != 0 && op->err == PST_OK)
        pst_send_set_err(op, PST_E_IO, "cannot write %s: %s", op->tmp_path, strerror(errno));
    close(in);
    free(s.mem);
    if (s.plain)
        sodium_memzero(s.plain, PST_MSG_CHUNK);
    if (f)
        sodium_memzero(f, sizeof *f);
    free(rbuf);
    free(s.plain);
    free(s.wire);
    free(f);
}

/* Worker thread: the ticker reads these on the loop. */
static void on_mint_progress(uint64_t hashes_done, double expected, void *user) {
    (void)expected;
    send_op *op = user;
    atomic_store(&op->hashes, hashes_done);
    atomic_store(&op->hashes_ns, uv_hrtime());
}

static void mint_begins(send_op *op, unsigned rcpt, unsigned stamp_no) {
    uint64_t t = uv_hrtime();
    atomic_store(&op->hashes, 0);
    atomic_store(&op->hashes_ns, t);
    atomic_store(&op->stamp_ns, t);
    if (atomic_load(&op->mint_ns) == 0)
        atomic_store(&op->mint_ns, t);
    atomic_store(&op->stamp_no, stamp_no);
    atomic_store(&op->minting, rcpt + 1);
}

/* One sealed notification per recipient, with its stamp when it needs one. */
static void seal_and_mint(send_op *op) {
    unsigned stamp_no = 0;
    for (unsigned i = 0; i < op->n_rcpts && op->err == PST_OK; i++) {
        send_rcpt *r = &op->rcpts[i];
        if (!send_rcpt_postern(r))
            continue;
        pst_notify_inner in;
        memset(&in, 0, sizeof in);
        in.created = op->created;
        in.expires = op->expires;
        memcpy(in.recipient, r->pk, PST_SIGN_PK_BYTES);
        memcpy(in.msg_id, op->msg_id, PST_HASH_BYTES);
        in.size = op->size;
        in.n_endpoints = 1;
        memcpy(in.endpoints[0], op->endpoint, sizeof op->endpoint);
        memcpy(in.msg_key, op->sec->msg_key, PST_MSGKEY_BYTES);
        memcpy(in.sender_box_pk, op->box_pk, PST_BOX_PK_BYTES);
        memcpy(in.sender, op->identity_pk, PST_SIGN_PK_BYTES); /* type 16 if a device signs */
        in.flags = r->flags;                                   /* a sync copy: type 16 */
        pst_notify outer;
        int rc = pst_notify_inner_sign(&in, op->sec->sign_sk);
        if (rc == PST_OK && r->n_devs > 0) {
            /* one box for every device of the recipient, its key sealed to each */
            uint8_t ckey[PST_NOTIFY_CONTENT_KEY_BYTES];
            randombytes_buf(ckey, sizeof ckey);
            rc = pst_notify_seal_devices(&in, (const uint8_t(*)[PST_BOX_PK_BYTES])r->dev_box,
                                         r->n_devs, ckey, &outer);
            sodium_memzero(ckey, sizeof ckey);
        } else if (rc == PST_OK) {
            rc = pst_notify_seal(&in, r->box_pk, &outer);
        }
        sodium_memzero(&in, sizeof in);
        if (rc == PST_OK && r->bits > 0) {
            mint_begins(op, i, ++stamp_no);
            rc = pst_outbox_mint_stamp(&outer, r->pk, r->bits, op->created, &op->cancel,
                                       on_mint_progress, op);
        }
        if (rc == PST_OK)
            rc = pst_notify_encode(&outer, r->notif, sizeof r->notif, &r->notif_len);
        if (rc != PST_OK)
            pst_send_set_err(op, rc, "cannot build the notification for %s: %s", r->query,
                             pst_strerror(rc));
    }
}

/* The body under its message id, the rename durable (the directory
 * fsynced), here rather than on the loop, which then only commits the rows.
 * From here on op->tmp_path names the placed body, so a cancel or a failed
 * commit removes it. The outbox's sweep leaves bodies alone while a send
 * is in flight (outbox.c), so this one is not taken for garbage before its
 * rows commit; a crash before them leaves it to the next sweep. */
static void place_body(send_op *op) {
    char final[PST_PATH_MAX];
    int e = 0;
    if (pst_outbox_body_path(op->o, op->msg_id, final, sizeof final) != PST_OK)
        e = ENAMETOOLONG;
    else if (rename(op->tmp_path, final) != 0)
        e = errno;
    if (e != 0) {
        pst_send_set_err(op, PST_E_IO, "cannot store the message in %s: %s", op->o->dir,
                         strerror(e));
        return;
    }
    snprintf(op->tmp_path, sizeof op->tmp_path, "%s", final);
    op->placed = true;
    if (pst_fsync_dir(op->o->dir) != PST_OK)
        pst_send_set_err(op, PST_E_IO, "cannot store the message in %s: %s", op->o->dir,
                         strerror(errno));
}

void pst_send_work_run(uv_work_t *w) {
    send_op *op = w->data;
    prepare(op);
    if (op->err == PST_OK)
        seal_and_mint(op);
    if (op->err == PST_OK && op->reserved > 0 && op->inline_body == NULL &&
        atomic_load(&op->cancel) == 0)
        place_body(op);
}
