/* Devices of one identity (issue 13): DeviceCert (type 13) and DeviceList
 * (type 14). docs/PROTOCOL.md, "Devices", has the field tables and sizes.
 *
 * The identity key certifies device keys. Each device has its own Ed25519
 * signing key and X25519 box key; the identity's device list is one signed
 * record at its own DHT slot (pst_slot_devices): the current devices and the
 * tombstones of removed ones. A higher seq replaces a lower one, as with key
 * records. An identity without a device list is one device whose device key
 * is the identity key; a list may name the identity key itself as a device
 * (the first device, which keeps the identity key).
 *
 * Both records use the one signed-record envelope (sigrec.h) and never
 * expire (expires is always 0): the identity key may live offline (paper)
 * and could not re-sign them. Replays of older lists are refused by seq.
 *
 * Functions per record X in {devcert, devlist} are those of pst_records.h:
 * pst_X_encode (PST_E_INVAL if the struct breaks a rule, PST_E_NOSPACE),
 * pst_X_sign, pst_X_decode (strict, out zeroed on error), pst_X_verify
 * (time window and signature), pst_X_id. Plain value types. */
#ifndef PST_DEVICE_H
#define PST_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Current devices per identity. Each device encodes to at most 108 bytes, so
 * a full list still fits one DHT value (PST_DHT_VALUE_MAX). */
#define PST_DEVICES_MAX 8u
/* Device name: 1..32 bytes of UTF-8 without control characters. */
#define PST_DEVICE_NAME_MAX 32u
/* Tombstones a list may carry. The list as a whole must also encode in
 * PST_DHT_VALUE_MAX bytes, which with 8 devices leaves room for about 4:
 * the signer drops the oldest ones first (a device that is not listed is
 * never valid anyway; a tombstone makes "revoked" visible and final). */
#define PST_DEVICE_TOMBSTONES_MAX 64u
/* pst_device_id: 16 characters plus the NUL. */
#define PST_DEVICE_ID_BUFSIZE 17u
#define PST_DEVCERT_FIELDS 10u
#define PST_DEVLIST_FIELDS 9u

typedef struct {
    uint8_t sign_pk[PST_SIGN_PK_BYTES];
    uint8_t box_pk[PST_BOX_PK_BYTES];
    char name[PST_DEVICE_NAME_MAX + 1];
    uint64_t created;
} pst_device;

/* One device certified by the identity key (signer). */
typedef struct {
    uint64_t created;
    uint64_t expires; /* always 0 */
    uint8_t signer[PST_SIGN_PK_BYTES];
    pst_device dev;
    uint8_t sig[PST_SIG_BYTES];
} pst_devcert;

typedef struct {
    uint8_t sign_pk[PST_SIGN_PK_BYTES];
    uint64_t revoked_at;
} pst_device_tombstone;

/* The identity's current devices. Rules (decode and encode): device and
 * tombstone keys are all distinct (a key is never both listed and
 * tombstoned), the identity key is never tombstoned, names are valid. */
typedef struct {
    uint64_t created;
    uint64_t expires; /* always 0 */
    uint8_t signer[PST_SIGN_PK_BYTES];
    uint64_t seq; /* higher replaces lower */
    uint32_t n_devices;
    pst_device devices[PST_DEVICES_MAX];
    uint32_t n_tombstones;
    pst_device_tombstone tombstones[PST_DEVICE_TOMBSTONES_MAX];
    uint8_t sig[PST_SIG_BYTES];
} pst_devlist;

int pst_devcert_encode(const pst_devcert *r, uint8_t *out, size_t cap, size_t *len);
int pst_devcert_sign(pst_devcert *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
/* Errors: those of pst_keyrec_decode(); PST_E_RANGE for expires != 0 or a
 * bad name. */
int pst_devcert_decode(const uint8_t *in, size_t len, pst_devcert *out);
/* PST_E_NOTYET (created > now + PST_CLOCK_SKEW_MAX), PST_E_SIGNATURE,
 * PST_E_INVAL. Says nothing about who signed: compare signer with the
 * identity you expect (PST_E_SIGNER is the caller's to return). */
__attribute__((warn_unused_result)) int pst_devcert_verify(const pst_devcert *r, uint64_t now);
int pst_devcert_id(const pst_devcert *r, uint8_t id[PST_HASH_BYTES]);

int pst_devlist_encode(const pst_devlist *r, uint8_t *out, size_t cap, size_t *len);
int pst_devlist_sign(pst_devlist *r, const uint8_t sk[PST_SIGN_SK_BYTES]);
/* Errors: those of pst_keyrec_decode(); PST_E_TOOBIG for more than
 * PST_DEVICES_MAX devices or PST_DEVICE_TOMBSTONES_MAX tombstones (or over
 * PST_DHT_VALUE_MAX bytes); PST_E_RANGE for expires != 0, a bad name, a key
 * listed twice or both listed and tombstoned, or the signer tombstoned. */
int pst_devlist_decode(const uint8_t *in, size_t len, pst_devlist *out);
/* Same rules and errors as pst_devcert_verify(). */
__attribute__((warn_unused_result)) int pst_devlist_verify(const pst_devlist *r, uint64_t now);
int pst_devlist_id(const pst_devlist *r, uint8_t id[PST_HASH_BYTES]);

/* Index of sign_pk among l's current devices, or -1. */
int pst_devlist_find(const pst_devlist *l, const uint8_t sign_pk[PST_SIGN_PK_BYTES]);
/* True if sign_pk is tombstoned in l. */
bool pst_devlist_revoked(const pst_devlist *l, const uint8_t sign_pk[PST_SIGN_PK_BYTES]);
/* True if name (n bytes) is a valid device name (1..PST_DEVICE_NAME_MAX
 * bytes of UTF-8, no control characters). */
bool pst_device_name_ok(const char *name, size_t n);

/* The short id users type: the first 16 characters of the z-base-32
 * fingerprint of the device's signing key, plus a NUL. */
void pst_device_id(const uint8_t sign_pk[PST_SIGN_PK_BYTES], char out[PST_DEVICE_ID_BUFSIZE]);

/* The DeviceCert of dev signed by the identity key sk at time created.
 * PST_E_INVAL (bad name), PST_E_CRYPTO; out zeroed on error. */
int pst_devcert_build(pst_devcert *out, const pst_device *dev, uint64_t created,
                      const uint8_t sk[PST_SIGN_SK_BYTES]);
/* 0 if cert is signed by identity_pk and certifies a current device of l
 * with the same keys. PST_E_SIGNER (another signer), PST_E_REVOKED
 * (tombstoned), PST_E_NOTFOUND (not listed), PST_E_MISMATCH (listed with
 * another box key). Checks no signature: verify both first. */
__attribute__((warn_unused_result)) int pst_devcert_in_list(const pst_devcert *cert,
                                                            const pst_devlist *l);

/* Encoded size of l (0 if it does not encode). Lets a signer drop the
 * oldest tombstones until the list fits PST_DHT_VALUE_MAX. */
size_t pst_devlist_encoded_size(const pst_devlist *l);
/* Drops the oldest tombstones (smallest revoked_at) until l encodes within
 * PST_DHT_VALUE_MAX bytes. Returns how many were dropped. */
unsigned pst_devlist_trim(pst_devlist *l);

#ifdef __cplusplus
}
#endif
#endif
