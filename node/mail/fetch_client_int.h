/* Private to the fetch client's files (fetch_client.c: endpoints, the
 * connection, frames, the sender's answers, the receipt; fetch_deliver.c:
 * the body, decrypted into the Maildir and delivered). One struct
 * pst_fetch_conn per exchange; everything runs on the loop. */
#ifndef PST_FETCH_CLIENT_INT_H
#define PST_FETCH_CLIENT_INT_H

#include "pst_mail.h"
#include "pst_fetch.h"
#include "pst_framer.h"
#include "pst_msgcrypt.h"

#define READ_BUF 65536u

enum { PH_START, PH_CONNECT, PH_HEADER, PH_BODY, PH_ACK, PH_DONE };

struct pst_fetch_conn {
    pst_node *node;
    pst_fetch_done_cb cb;
    void *user;
    pst_fetch_job job;
    char root[PST_PATH_MAX];
    char base[PST_MAILDIR_BASE_BUFSIZE];
    int phase;
    unsigned ep;             /* endpoint being tried */
    const char *last_reason; /* why the previous endpoint failed */
    int refs;                /* open handles + resolver in flight (each a node ref) */
    bool finished, resolving, tcp_open, timer_open, next_after_close;
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t req_write, rcpt_write;
    uv_timer_t timer;
    uint64_t started_ms, active_ms;
    pst_fetch_request req;
    pst_fetch_result res;
    uint8_t req_out[PST_FRAME_HEADER_BYTES + PST_FETCH_REQUEST_MAX];
    uint8_t rcpt_out[PST_FRAME_HEADER_BYTES + PST_RECEIPT_MAX];
    /* incoming frame: reassembled into frame, which is all a response needs */
    pst_framer in;
    uint32_t frame_len;
    uint8_t frame[PST_FETCH_RESPONSE_MAX];
    /* body */
    uint64_t body_left;
    pst_msgid_hasher hasher;
    pst_msg_decryptor dec;
    bool dec_open, headers_written;
    const char *body_err; /* first decryption failure: keep hashing, report at the end */
    uint8_t ss_header[PST_MSG_HEADER_BYTES];
    size_t ss_have, chunk_have, chunk_need;
    uint8_t chunk[PST_MSG_WIRE_CHUNK_MAX];
    uint8_t plain[PST_MSG_CHUNK];
    pst_maildir_writer w;
    uint8_t rbuf[READ_BUF];
    /* a large body (fetch_deliver.c): the loop hashes the ciphertext and
     * gathers whole wire chunks into batch[fill]; a pool thread decrypts
     * and writes the other batch. While work_busy, dec, w and plain are the
     * pool thread's alone. */
    uint8_t *batch[2]; /* PST_FETCH_BATCH_CAP bytes each; NULL for a small body */
    size_t batch_len[2];
    int fill;
    uv_work_t work;
    bool work_busy, read_paused, deliver_waiting, release_after_work;
    int work_rc;  /* a local write failure of the pool thread */
    int place_rc; /* pst_maildir_place's, run by a pool thread (fetch_deliver.c) */
    /* placed in new/, waiting in job.group for its directory fsync and
     * store commit (fetch_group.c); reading is paused meanwhile */
    bool grouped;
    uint64_t placed_at; /* the delivery time the receipt will state */
};

/* The loop hands a batch to the pool thread once it holds this many bytes
 * of whole wire chunks; a batch also takes what is left of one read and
 * one chunk in progress after that (it never grows: the cap is hard). */
#define PST_FETCH_BATCH_SOFT (4u * PST_MSG_WIRE_CHUNK_MAX)
#define PST_FETCH_BATCH_CAP (PST_FETCH_BATCH_SOFT + PST_MSG_WIRE_CHUNK_MAX + READ_BUF)
/* Bodies larger than this take the pipelined path; smaller ones are
 * decrypted on the loop as they arrive (no pool thread to wait for). */
#define PST_FETCH_PIPELINE_MIN (2u * PST_FETCH_BATCH_SOFT)

/* fetch_client.c */
/* Ends the exchange: releases the file and the secrets, closes every handle
 * and reports (the callback runs now; c is freed once the handles closed).
 * Once only. */
void pst_fetch_client_finish(pst_fetch_conn *c, pst_fetch_outcome outcome, const char *reason);
/* Signs and sends our Receipt for the job's message (stored_at: when it
 * became durable), then waits for the acknowledgement. */
void pst_fetch_client_receipt(pst_fetch_conn *c);

/* Takes and drops a reference on c (a pool-thread job holds one). */
void pst_fetch_client_hold(pst_fetch_conn *c);
void pst_fetch_client_release(pst_fetch_conn *c);
/* Stops or resumes reading from the sender (the pipelined body pauses while
 * both batches are full). */
void pst_fetch_client_reading(pst_fetch_conn *c, bool on);

/* fetch_deliver.c */
/* From finish: closes the file (removing it) and wipes the decryptor, the
 * plaintext and the batches; while a batch is with the pool thread, once it
 * is back. */
void pst_fetch_body_release(pst_fetch_conn *c);
/* After a good header: opens the Maildir tmp/ file and expects total bytes
 * of body (a local failure finishes c as a retry). */
void pst_fetch_body_begin(pst_fetch_conn *c, uint64_t total);
/* n more bytes of the body (the caller never passes more than is left). */
void pst_fetch_body_bytes(pst_fetch_conn *c, const uint8_t *p, size_t n);
/* The whole body came: checks hash, decryption and author, delivers, marks
 * the row DELIVERED and sends the receipt; else finishes c with the reason. */
void pst_fetch_body_deliver(pst_fetch_conn *c);
/* The file is placed (renamed into new/, or found there): records the row
 * DELIVERED. PST_OK (also when it was recorded already), else the store's
 * error; inside a store batch the caller's commit decides. */
int pst_fetch_body_record(pst_fetch_conn *c);
/* Ends a placed delivery: dir_rc is the fsync of its directory, store_rc
 * its record (and the commit holding it). Both PST_OK: the row is
 * DELIVERED and the receipt goes out; else the attempt ends as a retry
 * ("deliver", "disk_full" or "store") and no receipt is sent. */
void pst_fetch_body_settle(pst_fetch_conn *c, int dir_rc, int store_rc);

/* fetch_group.c */
/* Queues a placed delivery for the next flush of c->job.group. */
void pst_fetch_group_add(pst_fetch_conn *c);
/* Takes c out of its group (it finished while waiting: no receipt). */
void pst_fetch_group_drop(pst_fetch_conn *c);

#endif
