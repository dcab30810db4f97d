/* The outbox's state, private to the sender side of mail/ (outbox.c,
 * send.c, send_worker.c, fetch_server.c). Everything else goes through
 * pst_mail.h. */
#ifndef PST_OUTBOX_INT_H
#define PST_OUTBOX_INT_H

#include <stdatomic.h>

#include "pst_mail.h"
#include "pst_notify.h"
#include "recent_int.h"

/* Recipients whose device-list look-up time is remembered, and how long a
 * look-up counts as fresh (a newer list is fetched in the background). */
#define PST_OUTBOX_DEVCHECK_MAX 64u
/* An identity found without a device list is looked at again (in the
 * background) this often while we mail it: a device paired since gets our
 * mail from the next message after that look. */
#define PST_OUTBOX_DEVCHECK_S 60u
#define PST_OUTBOX_DEVLIST_FRESH_S 60u /* a cached list: a revocation's longest delay */

struct pst_outbox_entry;
struct pst_fetch_server;
struct pst_hint_client;
struct pst_send_op;
#define PST_OUTBOX_SPARES_MAX 16u

struct pst_outbox {
    pst_node *node;
    unsigned refs;
    bool stopping;
    atomic_int cancel; /* set by stop: encryption and minting give up */
    bool timers_init;
    uv_timer_t renotify_timer, gc_timer;
    struct pst_outbox_entry *entries; /* notifications kept alive */
    unsigned n_entries, cap_entries;
    struct pst_fetch_server *fetch;
    struct pst_hint_client *hints; /* direct hints to recipients (hint_client.c) */
    struct pst_send_op *sends;     /* in flight, to fail them on stop */
    unsigned sends_active;
    unsigned rcpts_reserved; /* notification slots promised to sends in flight */
    /* one send's secrets (send_secrets, sodium_malloc'd), zeroed and kept
     * for the next send: a sodium_malloc is ten system calls (guard pages,
     * mlock), 2.6% of the sender's CPU in a burst of submissions */
    void *sec_spare;
    char dir[PST_PATH_MAX];   /* DIR/outbox */
    char spool[PST_PATH_MAX]; /* DIR/spool */
    /* when each recent recipient's device list was last looked for in the
     * DHT (send_devices.c): a send waits for the first look only */
    pst_recent_key devcheck[PST_OUTBOX_DEVCHECK_MAX];
    /* emptied bodies kept for the next sends (outbox_spare.c): hex names */
    char spares[PST_OUTBOX_SPARES_MAX][17];
    unsigned n_spares;
};

/* The store meta name remembering that msg_id's body was found damaged
 * (outbox_body.c). */
void pst_outbox__damaged_name(const uint8_t msg_id[PST_HASH_BYTES], char name[48]);

/* A hint was given up (hint_client.c): every notification whose first DHT
 * put waits for its hint's receipt (hint_put_delay) is put now. Safe to
 * call at any time on the loop. */
void pst_outbox_hints_failed(pst_node *n);

/* Looks identity pk's device list up again in the background when this
 * node last looked more than max_age seconds ago (send_devices.c): the
 * fetch server sees a device revoked after the send within that time. */
void pst_outbox_devlist_refresh(pst_node *n, const uint8_t pk[PST_SIGN_PK_BYTES], uint64_t max_age);

/* outbox_spare.c, loop thread. Instead of deleting path (a body nobody may
 * fetch any more), empties it and keeps it as a spare while there are
 * fewer than PST_OUTBOX_SPARES_MAX, else deletes it. 0, or the errno of the
 * failed delete (ENOENT: there was no such file). */
int pst_outbox_spare_keep(struct pst_outbox *o, const char *path);
/* Hands the path of a spare (DIR/outbox/tmp-s<hex>, empty, mode 0600) to
 * one send, which owns it from then on; false when there is none. */
bool pst_outbox_spare_take(struct pst_outbox *o, char *out, size_t cap);
/* Gives back a spare that pst_outbox_spare_take handed out to a send that
 * failed or did not need a file (its body was small enough for the store):
 * kept under the same name (emptied again when written is true), or
 * deleted when it cannot be kept. */
void pst_outbox_spare_return(struct pst_outbox *o, const char *path, bool written);

/* outbox_body.c, loop thread. A read-only descriptor of msg_id's body from
 * offset 0: a memfd with the store's copy of a small body, else the file
 * DIR/outbox/<hex>. path gets what to name in a log line (the file, or the
 * store). -1 with errno when there is neither or it cannot be read. */
int pst_outbox_body_open(struct pst_outbox *o, const uint8_t msg_id[PST_HASH_BYTES], char *path,
                         size_t cap);

/* Mints the hashcash stamp of notification outer for recipient rcpt (bits,
 * dated now) into outer->stamp, with every core, on the calling thread (a
 * libuv worker: the send worker and the outbox's escalation). progress and
 * user may be NULL; *cancel stops it. Returns pst_hashcash_mint's result. */
int pst_outbox_mint_stamp(pst_notify *outer, const uint8_t rcpt[32], unsigned bits, uint64_t now,
                          const atomic_int *cancel,
                          void (*progress)(uint64_t done, double expected, void *user), void *user);

#endif
