/* postern-hostile: the value generator shared by the tool's files.
 *
 * Every value is a deterministic function of (master seed, class, slot,
 * index, now, target, identity): running the tool twice with the same
 * --seed-random and --now yields the same bytes, so a failing test can be
 * replayed exactly. */
#ifndef PST_HOSTILE_H
#define PST_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_identity.h"
#include "pst_records.h"
#include "pst_types.h"

/* Classes of bad values. Order is the JSON order. */
typedef enum {
    PST_HC_RANDOM,       /* random bytes, some with a plausible record header */
    PST_HC_TRUNCATED,    /* a valid record cut short */
    PST_HC_OVERSIZE,     /* at (or just under) the value cap, declaring more */
    PST_HC_BADSIG,       /* a record whose signature does not verify */
    PST_HC_MISMATCH,     /* a valid record that belongs to another slot */
    PST_HC_WRONGTYPE,    /* a valid record of a type the slot does not hold */
    PST_HC_STALE,        /* the target's own record with a lower seq */
    PST_HC_EXPIRED,      /* authentic but out of its time window */
    PST_HC_FUTURE,       /* created beyond the allowed clock skew */
    PST_HC_NONCANONICAL, /* a wider-than-minimal encoding, re-signed */
    PST_HC_REVOKED,      /* valid new records of the target: bad only once revoked */
    /* notifications for the target's inbox slot (hostile_inbox.c) */
    PST_HC_INBOX_RANDOM,      /* random bytes, some with a notification header */
    PST_HC_INBOX_OVERSIZE,    /* fields declaring more than the caps allow */
    PST_HC_INBOX_FORGED,      /* the sender's signature inside the seal does not verify */
    PST_HC_INBOX_WRONGSEAL,   /* sealed to another X25519 key */
    PST_HC_INBOX_WRONGRCPT,   /* sealed to the target, signed for another recipient */
    PST_HC_INBOX_REPLAY,      /* the slot's own values again; another sender's claim of an id */
    PST_HC_INBOX_EXPIRED,     /* authentic, outside its time window */
    PST_HC_INBOX_STAMP,       /* a stamp bound to another recipient or notification */
    PST_HC_INBOX_STAMP_WEAK,  /* a real stamp, bound right, of fewer bits than the target asks */
    PST_HC_INBOX_STAMP_SPENT, /* a stamp the target already took, on another notification */
    PST_HC_INBOX_NOSTAMP,     /* valid, no stamp, each from its own fresh stranger (--flood) */
    /* signed by a device of a fresh identity whose list (put first) tombstones
     * it, or by a device no list names (issue 13) */
    PST_HC_INBOX_DEVICE,
    /* device lists for the target's devices slot (hostile_devices.c, issue 13) */
    PST_HC_DEV_FORGED,  /* a valid list for the target, signed by another key */
    PST_HC_DEV_REPLAY,  /* the target's own list with seq 0, below the one it publishes */
    PST_HC_DEV_CERT,    /* a DeviceCert not signed by the target, in its devices slot */
    PST_HC_DEV_OVERCAP, /* a list naming 9 devices, one over the cap */
    PST_HC_COUNT
} pst_hostile_class;

/* Record classes (key, address and vouch slots) come first; the default
 * selection is every record class but PST_HC_REVOKED. */
#define PST_HC_RECORD_COUNT PST_HC_INBOX_RANDOM
#define PST_HC_IS_INBOX(c) ((c) >= PST_HC_INBOX_RANDOM && (c) < PST_HC_DEV_FORGED)
#define PST_HC_IS_DEVICE(c) ((c) >= PST_HC_DEV_FORGED && (c) < PST_HC_COUNT)

typedef enum {
    PST_HS_KEY,
    PST_HS_ADDRESS,
    PST_HS_VOUCH,
    PST_HS_INBOX,
    PST_HS_DEVICES,
    PST_HS_COUNT
} pst_hostile_slot;

#define PST_HOSTILE_REPLAY_MAX 256u /* values taken from the inbox slot */

#define PST_HOSTILE_FRESH_KEYS 8u
#define PST_HOSTILE_SPENT_MAX 16u      /* spent stamps kept for inbox-stamp-spent */
#define PST_HOSTILE_STAMP_BUFSIZE 512u /* >= PST_NOTIFY_STAMP_MAX + 1 */

typedef struct {
    uint8_t seed[32];                  /* master seed of every random choice */
    uint64_t now;                      /* unix seconds used for created/expires */
    uint8_t target[PST_SIGN_PK_BYTES]; /* the identity under attack */
    char address[PST_ADDRESS_MAX + 1]; /* normalized, "" = none */
    const pst_identity *id;            /* the target's secrets, or NULL */
    uint64_t current_seq;              /* highest seq of the target seen, 0 = unknown */
    uint8_t fresh_sk[PST_HOSTILE_FRESH_KEYS][PST_SIGN_SK_BYTES];
    uint8_t fresh_pk[PST_HOSTILE_FRESH_KEYS][PST_SIGN_PK_BYTES];
    /* inbox classes: the target's X25519 key from its KeyRecord */
    bool have_box_pk;
    uint8_t target_box_pk[PST_BOX_PK_BYTES];
    /* inbox-replay: values found in the target's inbox slot (borrowed), and
     * optionally a message id the target already holds (--msg-id) */
    uint32_t n_replay;
    const uint8_t *replay_val[PST_HOSTILE_REPLAY_MAX];
    size_t replay_len[PST_HOSTILE_REPLAY_MAX];
    bool have_msg_id;
    uint8_t msg_id[PST_HASH_BYTES];
    /* inbox-stamp-weak: the bits the target's key record asks for */
    unsigned target_pow_bits;
    /* inbox-stamp-spent: stamps of the replay values (pst_hostile_gen_find_stamps) */
    uint32_t n_spent;
    char spent[PST_HOSTILE_SPENT_MAX][PST_HOSTILE_STAMP_BUFSIZE];
} pst_hostile_gen;

/* Collects the stamps of the notifications in replay_val[] into spent[]
 * (the target took them when it accepted those notifications). */
void pst_hostile_gen_find_stamps(pst_hostile_gen *g);

/* Whether value i of class c is a verbatim copy of a value already in the
 * slot (inbox-replay): a node that remembers the bytes skips it unread. */
bool pst_hostile_is_verbatim(const pst_hostile_gen *g, int c, uint32_t i);

/* Derives the fresh keys from g->seed; call after filling seed. */
void pst_hostile_gen_init(pst_hostile_gen *g);
/* Wipes the fresh secret keys. */
void pst_hostile_gen_wipe(pst_hostile_gen *g);

/* "random", "truncated", ... and back. Name lookup returns -1 if unknown. */
const char *pst_hostile_class_name(int c);
int pst_hostile_class_by_name(const char *name, size_t len);
const char *pst_hostile_slot_name(int s);

/* Why class c cannot go to slot s with this generator (NULL when it can):
 * e.g. "needs --identity". */
const char *pst_hostile_skip_reason(const pst_hostile_gen *g, int c, int s);

/* Whether class c aims at slot s at all (record classes at the key,
 * address and vouch slots, inbox classes at the inbox slot). */
bool pst_hostile_class_fits(int c, int s);

/* Writes value number i of class c for slot s into out (PST_DHT_VALUE_MAX
 * bytes). Returns its length (>= 1), or 0 when the class does not apply to
 * the slot (see pst_hostile_skip_reason). */
size_t pst_hostile_make(const pst_hostile_gen *g, int c, int s, uint32_t i,
                        uint8_t out[PST_DHT_VALUE_MAX]);

/* inbox-device: the device list of fresh identity k (its own key as its one
 * device, a device it revoked as a tombstone) and that list's slot; the
 * tool puts the eight lists before the notifications. 0 on failure. */
size_t pst_hostile_device_list(const pst_hostile_gen *g, unsigned k, uint8_t slot[PST_SLOT_BYTES],
                               uint8_t out[PST_DHT_VALUE_MAX]);

/* Value i of inbox class c (hostile_inbox.c); 0 when it cannot be made
 * (see pst_hostile_skip_reason). */
size_t pst_hostile_make_inbox(const pst_hostile_gen *g, int c, uint32_t i,
                              uint8_t out[PST_DHT_VALUE_MAX]);

/* Value i of device class c (hostile_devices.c); 0 when it cannot be made. */
size_t pst_hostile_make_device(const pst_hostile_gen *g, int c, uint32_t i,
                               uint8_t out[PST_DHT_VALUE_MAX]);

/* ---- --pair CODE: a hostile pairing client (hostile_devices.c) ------------ */
/* Sends count requests with code (a used or expired one) and count with
 * guessed codes for the same address, and prints what the node answered.
 * 0 when no request was accepted, 1 when one was (or the node was not
 * reachable). */
int pst_hostile_pair_run(const char *code, uint32_t count, const uint8_t seed[32], bool json);

/* crypto_box_seal with the ephemeral key pair derived from eseed, so a
 * value is a function of the generator's seed (libsodium's sealed box:
 * epk || crypto_box_easy(m, BLAKE2b-192(epk || pk), pk, esk)). out must hold
 * len + PST_SEAL_BYTES. */
void pst_hostile_seal(const uint8_t *m, size_t len, const uint8_t pk[PST_BOX_PK_BYTES],
                      const uint8_t eseed[32], uint8_t *out);

/* ---- --fetch: a hostile fetch client (hostile_fetch.c) -------------------- */

typedef enum {
    PST_HF_NOT_RECIPIENT, /* someone else's message (or none), from a key that is no recipient */
    PST_HF_BAD_REQUEST,   /* requests that fail verification */
    PST_HF_GARBAGE,       /* frames of random bytes */
    PST_HF_OVERSIZED,     /* a length prefix over PST_FRAME_MAX, or 0 */
    PST_HF_RECEIPT,       /* receipts from non-recipients, for other senders, mis-signed */
    PST_HF_SLOWLORIS,     /* connections that drip a frame one byte at a time */
    PST_HF_FLOOD,         /* many connections at once from one address */
    PST_HF_HINT,          /* Hint frames: garbage, another identity, oversize, junk, a replay */
    PST_HF_HINT_FLOOD,    /* many Hint frames on one connection (the rate per address) */
    PST_HF_COUNT
} pst_hostile_attack;

typedef struct {
    char host[64]; /* IPv4 loopback address of the node's fetch port */
    uint16_t port;
    char source[64]; /* local address to connect from, "" = the kernel's choice */
    bool attacks[PST_HF_COUNT];
    uint32_t count; /* exchanges per attack (not slowloris and flood) */
    uint32_t conns; /* connections for slowloris and flood */
    uint32_t max_seconds;
    bool have_msg_id; /* a message the node holds for someone else */
    uint8_t msg_id[PST_HASH_BYTES];
    bool have_server; /* the node's identity (--target), named in forged receipts */
    uint8_t server_pk[PST_SIGN_PK_BYTES];
    uint8_t seed[32];
    bool json;
} pst_hostile_fetch_opts;

const char *pst_hostile_attack_name(int a);
int pst_hostile_attack_by_name(const char *name, size_t len);
/* Runs the selected attacks in order and prints the summary. Returns 0, or
 * 1 when the node could not be reached or --max-seconds ran out. */
int pst_hostile_fetch_run(const pst_hostile_fetch_opts *o);

/* ---- --fake-sender: a sender that serves wrong bodies (hostile_sender.c) -- */

typedef enum {
    PST_HM_WRONG_BODY, /* random bytes of the right size: hash mismatch */
    PST_HM_WRONG_SIZE, /* a header whose total_size is not the notification's */
    PST_HM_BAD_SIGNER, /* a header signed by another key */
    PST_HM_BAD_AUTHOR, /* the right id, but the trailer is signed by another key */
    PST_HM_TRUNCATED,  /* half the body, then the connection closes */
    PST_HM_GOOD,       /* served right; then its notification is replayed */
    /* 2 MiB (a node's pipelined path), the id over the bytes served, one
     * byte of the last data chunk changed: the hash holds, decryption fails
     * at the end */
    PST_HM_BAD_TAIL,
    /* 2 MiB served right, then 16 bytes more at once, before any receipt:
     * the node must neither hang nor store it (it retries) */
    PST_HM_EXTRA_TAIL,
    PST_HM_COUNT
} pst_hostile_sender_mode;

typedef struct pst_hostile_sender pst_hostile_sender;

typedef struct {
    uint8_t target[PST_SIGN_PK_BYTES];
    uint8_t target_box_pk[PST_BOX_PK_BYTES];
    bool modes[PST_HM_COUNT];
    unsigned stamp_bits; /* 0: no stamp */
    const char *listen_host;
    uint32_t renotify_ms; /* re-seal and re-put unfinished notifications this often */
    uint8_t seed[32];
} pst_hostile_sender_opts;

const char *pst_hostile_sender_mode_name(int m);
int pst_hostile_sender_mode_by_name(const char *name, size_t len);
/* Builds one message per mode, listens on listen_host:0 and puts the
 * notifications. d must outlive the sender. PST_E_* on failure (nothing to
 * close then). */
struct pst_dht;
struct uv_loop_s;
int pst_hostile_sender_start(struct uv_loop_s *loop, struct pst_dht *d,
                             const pst_hostile_sender_opts *o, pst_hostile_sender **out);
/* Re-puts what is due; call often (every tick). */
void pst_hostile_sender_tick(pst_hostile_sender *s);
/* Every mode reached its end (the node gave up, retried, or re-sent its
 * receipt after the replay). */
bool pst_hostile_sender_done(const pst_hostile_sender *s);
void pst_hostile_sender_print(const pst_hostile_sender *s, bool json, bool timed_out,
                              uint64_t elapsed_ms);
/* Closes the listener and the connections (the loop must run on); the
 * struct stays readable until pst_hostile_sender_free after the loop ends. */
void pst_hostile_sender_close(pst_hostile_sender *s);
void pst_hostile_sender_free(pst_hostile_sender *s);

#endif
