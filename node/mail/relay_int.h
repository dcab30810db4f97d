/* The smarthost queue, shared by relay.c (the loop side: timer, store,
 * status) and relay_worker.c (the worker thread: stamp, libcurl, bounce).
 * Private to node/mail/. */
#ifndef PST_RELAY_INT_H
#define PST_RELAY_INT_H

#include <stdatomic.h>

#include "pst_mail.h"

#define RELAY_CONNECT_TIMEOUT_S 30L
#define RELAY_TRANSFER_TIMEOUT_S 600L
#define RELAY_RETRY_MAX_S 3600u /* the backoff doubles up to this */
#define RELAY_CRED_MAX 512u     /* the auth file: "user:password" */
#define RELAY_ERR_MAX 300u

typedef enum {
    RELAY_SENT = 1,  /* the smarthost said 250 */
    RELAY_RETRY,     /* a temporary failure: err says why */
    RELAY_BOUNCED,   /* given up (time, or a 5xx): the bounce is in the INBOX */
    RELAY_NO_BOUNCE, /* should bounce but could not write it: retried later */
} relay_result;

struct pst_relay {
    pst_node *node;
    uv_timer_t timer;
    uv_work_t work;
    char dir[PST_PATH_MAX];     /* DIR/relay */
    char maildir[PST_PATH_MAX]; /* DIR/Maildir, for bounces */
    char url[PST_SMARTHOST_STRLEN + 16];
    char *cred; /* sodium_malloc'd "user:password", NULL = no AUTH */
    bool busy, stopping, timer_closed;
    atomic_int cancel;
    /* the job: set on the loop before the work, read by the worker */
    pst_store_relay_row row;
    uint64_t now;
    bool give_up; /* past its give-up time: bounce without trying */
    /* worker outputs */
    relay_result result;
    char err[RELAY_ERR_MAX];
};

/* uv_work_t body: with r->give_up, writes the bounce; else mints the
 * recipient's X-Hashcash stamp and hands the message to the smarthost, and
 * bounces at once on a permanent (5xx) refusal. Sets r->result, r->err. */
void pst_relay__work(uv_work_t *w);

#endif
