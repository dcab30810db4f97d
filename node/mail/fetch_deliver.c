/* Fetch client, the body: the ciphertext that follows the sender's signed
 * header goes through the message-id hasher and the decryptor (whole wire
 * chunks) as it arrives, the plaintext into a Maildir tmp/ file behind the
 * node's trace fields (a large body: decrypted and written by a pool
 * thread, one batch behind the loop, below); at its end the hash, the
 * decryption and the author are checked, the file is delivered (fsync,
 * rename) and the inbox row marked DELIVERED, and only then does the
 * receipt go out (fetch_client.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pst_mail.h"
#include "pst_log.h"
#include "pst_msgcrypt.h"

#include "fetch_client_int.h"

/* The node's trace fields, in LF like the whole stored file (the author's
 * bytes are normalised to LF by pst_maildir_write_message). */
static int write_headers(pst_fetch_conn *c) {
    char fp[PST_FINGERPRINT_STRLEN + 1], hex[2 * PST_HASH_BYTES + 1], buf[256];
    pst_fingerprint_format(
        sodium_is_zero(c->job.identity, sizeof c->job.identity) ? c->job.sender : c->job.identity,
        fp);
    sodium_bin2hex(hex, sizeof hex, c->job.msg_id, PST_HASH_BYTES);
    int len =
        snprintf(buf, sizeof buf, "X-Postern-Sender: %s\nX-Postern-Message-Id: %s\n", fp, hex);
    c->headers_written = true;
    return pst_maildir_write(&c->w, buf, (size_t)len);
}

/* A local write failure ends the attempt as temporary (the job retries with
 * backoff; the tmp file is removed by finish): a full disk is "disk_full",
 * anything else "io". Logged here, with what failed. */
static void local_failure(pst_fetch_conn *c, int rc, const char *what) {
    char id[17];
    sodium_bin2hex(id, sizeof id, c->job.msg_id, 8);
    if (rc == PST_E_DISKFULL)
        pst_log_warn("message %s: cannot %s into %s: the disk is full (will retry)", id, what,
                     c->root);
    else
        pst_log_warn("message %s: cannot %s into %s: %s (will retry)", id, what, c->root,
                     pst_strerror(rc));
    pst_fetch_client_finish(c, PST_FETCH_RETRY, rc == PST_E_DISKFULL ? "disk_full" : "io");
}

/* Safe on the pool thread: touches only w and headers_written. */
static int write_plain_rc(pst_fetch_conn *c, const uint8_t *p, size_t n) {
    int rc = PST_OK;
    if (!c->headers_written)
        rc = write_headers(c);
    if (rc == PST_OK)
        rc = pst_maildir_write_message(&c->w, p, n);
    return rc;
}

static void write_plain(pst_fetch_conn *c, const uint8_t *p, size_t n) {
    int rc = write_plain_rc(c, p, n);
    if (rc != PST_OK)
        local_failure(c, rc, "write");
}

void pst_fetch_body_begin(pst_fetch_conn *c, uint64_t total) {
    int rc = pst_maildir_open(&c->w, c->root, c->job.folder, c->base);
    if (rc == PST_OK && total > PST_FETCH_PIPELINE_MIN)
        for (int i = 0; i < 2 && rc == PST_OK; i++)
            if ((c->batch[i] = malloc(PST_FETCH_BATCH_CAP)) == NULL)
                rc = PST_E_NOMEM;
    if (rc != PST_OK) {
        local_failure(c, rc, "open a file");
        return;
    }
    c->w.no_copy = c->job.first_try;
    pst_msgid_init(&c->hasher);
    c->body_left = total;
    c->phase = PH_BODY;
}

static void wipe(pst_fetch_conn *c) {
    pst_maildir_abort(&c->w);
    if (c->dec_open)
        pst_msg_decryptor_close(&c->dec);
    c->dec_open = false;
    sodium_memzero(c->plain, sizeof c->plain);
    for (int i = 0; i < 2; i++) { /* ciphertext only: nothing to wipe */
        free(c->batch[i]);
        c->batch[i] = NULL;
        c->batch_len[i] = 0;
    }
}

void pst_fetch_body_release(pst_fetch_conn *c) {
    if (c->work_busy)
        c->release_after_work = true; /* the pool thread still uses them */
    else
        wipe(c);
}

/* ---- a large body: two threads -------------------------------------------------
 * The loop reads, hashes every ciphertext byte for the message id and
 * gathers whole wire chunks into one batch; a pool thread decrypts the
 * other batch (XChaCha20-Poly1305 and the plaintext's BLAKE2b, in
 * pst_msg_decrypt_chunk), writes it and starts its writeback. The three
 * passes over each byte so run on two cores, each on a batch small enough
 * to stay in cache. Chunks are decrypted in stream order, one batch at a
 * time, so what is verified is exactly what the one-thread path verifies.
 * When both batches are full the loop stops reading (the sender waits in
 * TCP); memory is the two batches, whatever the size. */

static void deliver_checked(pst_fetch_conn *c);
static void place_work(uv_work_t *req);
static void place_done(uv_work_t *req, int status);
static void placed(pst_fetch_conn *c, int rc);

/* Queues c's one pool job (none is busy); c is held until done runs.
 * false when the pool refused it (nothing queued, nothing held). */
static bool pool_start(pst_fetch_conn *c, uv_work_cb work, uv_after_work_cb done) {
    c->work.data = c;
    c->work_busy = true;
    pst_fetch_client_hold(c);
    if (uv_queue_work(c->node->loop, &c->work, work, done) == 0)
        return true;
    c->work_busy = false;
    pst_fetch_client_release(c);
    return false;
}

/* Pool thread: the batch the loop does not fill. */
static void batch_work(uv_work_t *req) {
    pst_fetch_conn *c = req->data;
    const uint8_t *p = c->batch[c->fill ^ 1];
    size_t len = c->batch_len[c->fill ^ 1], off = 0;
    while (off < len && c->work_rc == PST_OK && c->dec_open) {
        uint32_t box = 0;
        (void)pst_msg_chunk_header_parse(p + off, &box); /* checked on the loop */
        size_t k = PST_MSG_CHUNK_PREFIX + box, out = 0;
        bool fin = false;
        if (pst_msg_decrypt_chunk(&c->dec, p + off, k, c->plain, sizeof c->plain, &out, &fin) !=
            PST_OK)
            break; /* sticky in dec: pst_msg_decrypt_finish reports it */
        if (out > 0)
            c->work_rc = write_plain_rc(c, c->plain, out);
        off += k;
    }
    pst_maildir_writeback(&c->w);
}

static void submit(pst_fetch_conn *c);

static void batch_done(uv_work_t *req, int status) {
    pst_fetch_conn *c = req->data;
    (void)status; /* never cancelled */
    c->work_busy = false;
    c->batch_len[c->fill ^ 1] = 0;
    /* our own slow disk is no idleness of the sender's */
    c->active_ms = uv_now(c->node->loop);
    if (c->release_after_work) {
        wipe(c);
    } else if (c->work_rc != PST_OK) {
        local_failure(c, c->work_rc, "write");
    } else if (c->batch_len[c->fill] >= PST_FETCH_BATCH_SOFT ||
               (c->deliver_waiting && c->batch_len[c->fill] > 0)) {
        submit(c);
    } else if (c->deliver_waiting) {
        deliver_checked(c);
    }
    if (!c->finished && c->read_paused && !c->deliver_waiting &&
        c->batch_len[c->fill] < PST_FETCH_BATCH_SOFT) {
        c->read_paused = false;
        pst_fetch_client_reading(c, true);
    }
    pst_fetch_client_release(c);
}

/* Hands batch[fill] to the pool thread (none is busy) and fills the other;
 * a chunk still arriving moves along with the loop. */
static void submit(pst_fetch_conn *c) {
    int f = c->fill;
    c->fill ^= 1;
    if (c->chunk_have > 0)
        memcpy(c->batch[c->fill], c->batch[f] + c->batch_len[f], c->chunk_have);
    if (!pool_start(c, batch_work, batch_done))
        local_failure(c, PST_E_IO, "decrypt");
}

/* A whole wire chunk was gathered at the end of batch[fill]. */
static void batch_chunk(pst_fetch_conn *c) {
    c->batch_len[c->fill] += c->chunk_need;
    if (c->batch_len[c->fill] < PST_FETCH_BATCH_SOFT)
        return;
    if (!c->work_busy) {
        submit(c);
    } else if (!c->read_paused) {
        /* what is left of this read still fits: PST_FETCH_BATCH_CAP */
        c->read_paused = true;
        pst_fetch_client_reading(c, false);
    }
}

void pst_fetch_body_deliver(pst_fetch_conn *c) {
    if (c->deliver_waiting || c->grouped) {
        /* called again: bytes came after the body, in the read that ended
         * it, before our receipt. Nothing signed says the sender wrote
         * them: no strike, a retry (the consumer would otherwise take
         * none of them, again and again) */
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "bad_frame");
        return;
    }
    uint8_t id[PST_HASH_BYTES];
    pst_msgid_final(&c->hasher, id);
    if (sodium_memcmp(id, c->job.msg_id, sizeof id) != 0) {
        pst_fetch_client_finish(c, PST_FETCH_PROTOCOL, "hash_mismatch");
        return;
    }
    if (c->batch[0] != NULL && (c->work_busy || c->batch_len[c->fill] > 0)) {
        /* batch_done goes on. Nothing is read meanwhile: the sender may
         * close once it has sent the body, and that EOF, read before the
         * verdict, would end a whole body as "closed" */
        c->deliver_waiting = true;
        if (!c->read_paused) {
            c->read_paused = true;
            pst_fetch_client_reading(c, false);
        }
        if (!c->work_busy)
            submit(c);
        return;
    }
    deliver_checked(c);
}

/* The hash held and every chunk went through the decryptor. */
static void deliver_checked(pst_fetch_conn *c) {
    c->deliver_waiting = false;
    if (c->body_err != NULL) {
        pst_fetch_client_finish(c, PST_FETCH_PROTOCOL, c->body_err);
        return;
    }
    pst_msg_trailer tr;
    c->dec_open = false; /* finish wipes the decryptor whatever the result */
    int rc = pst_msg_decrypt_finish(&c->dec, c->job.sender, &tr);
    if (rc != PST_OK) {
        pst_fetch_client_finish(c, PST_FETCH_PROTOCOL,
                                rc == PST_E_SIGNER || rc == PST_E_SIGNATURE ? "author"
                                                                            : "bad_body");
        return;
    }
    if (!c->headers_written && (rc = write_headers(c)) != PST_OK) {
        local_failure(c, rc, "write");
        return;
    }
    c->res.commit_reached = true;
    /* the file's fsync and its rename (and, on a later try, the search for
     * an earlier copy) on a pool thread: on the loop they held up every
     * other fetch and the sender's hints for about 0.4 ms a message. Nothing
     * is read meanwhile (bytes the sender sent on end the attempt as
     * bad_frame once reading resumes) */
    if (!c->read_paused) {
        c->read_paused = true;
        pst_fetch_client_reading(c, false);
    }
    if (!pool_start(c, place_work, place_done))
        placed(c, pst_maildir_place(&c->w, &c->res.loc));
}

/* Pool thread: c->w is this thread's alone while work_busy. */
static void place_work(uv_work_t *req) {
    pst_fetch_conn *c = req->data;
    c->place_rc = pst_maildir_place(&c->w, &c->res.loc);
}

static void place_done(uv_work_t *req, int status) {
    pst_fetch_conn *c = req->data;
    (void)status; /* never cancelled */
    c->work_busy = false;
    if (c->release_after_work)
        wipe(c); /* cancelled meanwhile: a copy placed is found by the next try */
    else
        placed(c, c->place_rc);
    pst_fetch_client_release(c);
}

/* After pst_maildir_place returned rc. */
static void placed(pst_fetch_conn *c, int rc) {
    c->res.bytes = c->w.bytes; /* commit may flush a few held bytes */
    uint64_t now = pst_now();
    if (rc == PST_E_EXISTS) {
        c->res.existed = true;
        char path[PST_PATH_MAX];
        struct stat sb;
        if (pst_maildir_loc_path(c->root, &c->res.loc, path, sizeof path) == PST_OK &&
            stat(path, &sb) == 0) {
            c->res.bytes = (uint64_t)sb.st_size;
            /* delivered when that copy was written: the receipt says so */
            if (sb.st_mtime > 0 && (uint64_t)sb.st_mtime < now)
                now = (uint64_t)sb.st_mtime;
        }
    } else if (rc != PST_OK) {
        local_failure(c, rc, "deliver");
        return;
    }
    c->placed_at = now;
    if (c->job.group != NULL) {
        /* its directory fsync and its row wait for the end of this turn of
         * the loop, with the others placed in it; reading stays paused */
        pst_fetch_group_add(c);
        return;
    }
    /* a copy found (existed) had its directory fsynced by the place */
    rc = c->res.existed ? PST_OK : pst_maildir_sync_loc(c->root, &c->res.loc);
    pst_fetch_body_settle(c, rc, rc == PST_OK ? pst_fetch_body_record(c) : PST_OK);
}

int pst_fetch_body_record(pst_fetch_conn *c) {
    int rc = pst_store_inbox_delivered(c->node->store, c->job.msg_id, c->res.loc.folder, c->base,
                                       c->res.bytes, c->placed_at);
    return rc == PST_E_DUPLICATE ? PST_OK : rc;
}

void pst_fetch_body_settle(pst_fetch_conn *c, int dir_rc, int store_rc) {
    if (c->finished)
        return;
    if (dir_rc != PST_OK) {
        /* in new/ but maybe not durable: the next try finds it
         * (commit_reached), fsyncs new/ again, and only then acknowledges */
        local_failure(c, dir_rc, "deliver");
        return;
    }
    if (store_rc != PST_OK) {
        /* the file is durable: the next attempt finds it and only records it */
        char id[17];
        sodium_bin2hex(id, sizeof id, c->job.msg_id, 8);
        pst_log_warn("message %s is in %s but cannot be recorded: %s (will retry)", id, c->root,
                     pst_store_last_error(c->node->store));
        pst_fetch_client_finish(c, PST_FETCH_RETRY, "store");
        return;
    }
    c->res.delivered = true;
    c->job.stored_at = c->placed_at;
    if (c->read_paused) { /* for the acknowledgement */
        c->read_paused = false;
        pst_fetch_client_reading(c, true);
    }
    pst_fetch_client_receipt(c);
}

/* Raw ciphertext: everything goes into the message-id hasher; the decryptor
 * gets whole wire chunks. After a decryption failure the rest is only
 * hashed, so the report can tell a wrong body (hash) from a broken one. */
void pst_fetch_body_bytes(pst_fetch_conn *c, const uint8_t *p, size_t n) {
    pst_msgid_update(&c->hasher, p, n);
    while (n > 0 && !c->finished && c->body_err == NULL) {
        size_t k;
        if (c->ss_have < PST_MSG_HEADER_BYTES) {
            k = PST_MSG_HEADER_BYTES - c->ss_have;
            k = k < n ? k : n;
            memcpy(c->ss_header + c->ss_have, p, k);
            c->ss_have += k;
            if (c->ss_have == PST_MSG_HEADER_BYTES) {
                if (pst_msg_decryptor_init(&c->dec, c->job.msg_key, c->ss_header) != PST_OK)
                    c->body_err = "bad_body";
                c->dec_open = c->body_err == NULL;
            }
        } else if (c->chunk_have < PST_MSG_CHUNK_PREFIX) {
            uint8_t *at =
                c->batch[0] != NULL ? c->batch[c->fill] + c->batch_len[c->fill] : c->chunk;
            k = PST_MSG_CHUNK_PREFIX - c->chunk_have;
            k = k < n ? k : n;
            memcpy(at + c->chunk_have, p, k);
            c->chunk_have += k;
            uint32_t box = 0;
            if (c->chunk_have == PST_MSG_CHUNK_PREFIX) {
                if (pst_msg_chunk_header_parse(at, &box) != PST_OK)
                    c->body_err = "bad_body";
                c->chunk_need = PST_MSG_CHUNK_PREFIX + box;
            }
        } else if (c->batch[0] != NULL) {
            k = c->chunk_need - c->chunk_have;
            k = k < n ? k : n;
            if (c->batch_len[c->fill] + c->chunk_have + k > PST_FETCH_BATCH_CAP) {
                pst_fetch_client_finish(c, PST_FETCH_RETRY, "internal"); /* never: see the cap */
                return;
            }
            memcpy(c->batch[c->fill] + c->batch_len[c->fill] + c->chunk_have, p, k);
            c->chunk_have += k;
            if (c->chunk_have == c->chunk_need) {
                c->chunk_have = 0;
                batch_chunk(c);
                c->chunk_need = 0;
            }
        } else {
            k = c->chunk_need - c->chunk_have;
            k = k < n ? k : n;
            memcpy(c->chunk + c->chunk_have, p, k);
            c->chunk_have += k;
            if (c->chunk_have == c->chunk_need) {
                size_t out = 0;
                bool fin = false;
                if (pst_msg_decrypt_chunk(&c->dec, c->chunk, c->chunk_need, c->plain,
                                          sizeof c->plain, &out, &fin) != PST_OK)
                    c->body_err = "bad_body";
                else if (out > 0)
                    write_plain(c, c->plain, out);
                c->chunk_have = c->chunk_need = 0;
            }
        }
        p += k;
        n -= k;
    }
}
