/* Sizes, versions and record type numbers shared by every proto/ module.
 * Pure constants: no I/O and no state. docs/PROTOCOL.md is the authority. */
#ifndef PST_TYPES_H
#define PST_TYPES_H

#include <stddef.h>
#include <stdint.h>

#define PST_PROTO_VERSION 1u

/* The name of value i in a table of names indexed by an enum (designated
 * initializers; gaps are NULL), or fallback when i is out of the table or
 * in a gap. The one way the project turns its enums into words. */
#define PST_NAME_OF(table, i, fallback)                                                            \
    ((size_t)(i) < sizeof(table) / sizeof((table)[0]) && (table)[(size_t)(i)] != NULL              \
         ? (table)[(size_t)(i)]                                                                    \
         : (fallback))

/* Key sizes (libsodium's Ed25519 / X25519). */
#define PST_SIGN_PK_BYTES 32u /* crypto_sign_PUBLICKEYBYTES */
#define PST_SIGN_SK_BYTES 64u /* crypto_sign_SECRETKEYBYTES */
#define PST_SIG_BYTES 64u     /* crypto_sign_BYTES */
#define PST_BOX_PK_BYTES 32u  /* crypto_box_PUBLICKEYBYTES */
#define PST_BOX_SK_BYTES 32u  /* crypto_box_SECRETKEYBYTES */
#define PST_SEAL_BYTES 48u    /* crypto_box_SEALBYTES */
#define PST_HASH_BYTES 32u    /* BLAKE2b-256: message ids, content hashes */
#define PST_MSGKEY_BYTES 32u  /* crypto_secretstream_xchacha20poly1305_KEYBYTES */
#define PST_NONCE_BYTES 16u   /* anti-replay nonces in fetch requests */
#define PST_SLOT_BYTES 20u    /* an OpenDHT InfoHash */

/* Record types (field 2 of every record). Numbers are wire values: never
 * reuse or renumber one. */
typedef enum {
    PST_REC_KEY = 1,
    PST_REC_ADDRESS_CLAIM = 2,
    PST_REC_REVOCATION = 3,
    PST_REC_ENDORSEMENT = 4,
    PST_REC_NOTIFICATION = 5,       /* outer: stamp + sealed box */
    PST_REC_NOTIFICATION_INNER = 6, /* inside the seal, signed by the sender */
    PST_REC_FETCH_REQUEST = 7,
    PST_REC_FETCH_RESPONSE = 8,
    PST_REC_RECEIPT = 9,
    PST_REC_CTRL_REQUEST = 10,
    PST_REC_CTRL_RESPONSE = 11,
    PST_REC_MESSAGE_TRAILER = 12,        /* author signature at the end of a message */
    PST_REC_DEVICE_CERT = 13,            /* a device key certified by the identity key */
    PST_REC_DEVICE_LIST = 14,            /* the identity's current devices */
    PST_REC_NOTIFICATION_DEV = 15,       /* outer: one content box, a key seal per device */
    PST_REC_NOTIFICATION_INNER_DEV = 16, /* inner signed by a device key for its identity */
    PST_REC_TRUST_SYNC = 17,             /* a trust change, between one identity's devices */
    PST_REC_HINT = 18,                   /* a notification handed to the recipient's endpoint */
} pst_rec_type;

/* Hard caps. Every record put in the DHT stays well under one UDP packet. */
#define PST_DHT_VALUE_MAX 1200u  /* any record that travels in the DHT */
#define PST_RECORD_MAX 8192u     /* any record at all (fetch/control frames) */
#define PST_MSGPACK_DEPTH_MAX 4u /* nesting of arrays/maps in any record */
#define PST_ELEMENTS_MAX 64u     /* elements in any one array/map */

/* Domain-separation prefix of every signature: sig = Ed25519(sk, PST_SIG_CONTEXT
 * || canonical encoding of the record without its signature field). */
#define PST_SIG_CONTEXT "postern/v1/sig\0"
#define PST_SIG_CONTEXT_LEN 15u

#endif
