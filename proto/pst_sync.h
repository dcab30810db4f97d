/* Sync between the devices of one identity (issue 13): a trust-list change
 * made on one device, carried to the others as the body of a message the
 * identity sends itself (notification flag PST_NOTIFY_FLAG_SYNC_TRUST). The
 * message is encrypted to the own devices only and signed by the device
 * that made the change (the message trailer); this record itself is not
 * signed.
 *
 * TrustSync (type 17):
 *   [1, 17, created (uint, when the change was made), subject (bin 32, the
 *    contact's identity key), tier (uint: 0 = no longer a contact, 1
 *    trusted, 2 known, 3 blocked), petname (str, 0..64 bytes of UTF-8
 *    without control characters; "" with tier 0), emails (array of 0..16
 *    str: the contact's whole list of email addresses, each 3..254 bytes as
 *    the store keeps them: UTF-8 with an '@', no ASCII upper case, white
 *    space or control character; in strictly ascending byte order; empty
 *    with tier 0)]
 * emails is the full current list, not a change: the receiving device
 * replaces the contact's list with it, so an empty array means the
 * contact carries no address (any it had there are removed).
 * In the message it is an armor block ("-----BEGIN POSTERN TRUST SYNC-----"). */
#ifndef PST_SYNC_H
#define PST_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_types.h"

#define PST_TRUSTSYNC_PETNAME_MAX 64u /* = PST_STORE_PETNAME_MAX */
#define PST_TRUSTSYNC_EMAILS_MAX 16u  /* = PST_STORE_CONTACT_EMAILS_MAX */
#define PST_TRUSTSYNC_EMAIL_MIN 3u
#define PST_TRUSTSYNC_EMAIL_MAX 254u     /* = PST_ADDRESS_MAX */
#define PST_TRUSTSYNC_MAX 4224u          /* largest encoding (4212 bytes) */
#define PST_TRUSTSYNC_LABEL "TRUST SYNC" /* armored as "POSTERN TRUST SYNC" */
#define PST_TRUSTSYNC_TIER_NONE 0u
#define PST_TRUSTSYNC_TIER_MAX 3u

typedef struct {
    uint64_t created;
    uint8_t subject[PST_SIGN_PK_BYTES];
    uint32_t tier;                               /* 0..PST_TRUSTSYNC_TIER_MAX */
    char petname[PST_TRUSTSYNC_PETNAME_MAX + 1]; /* "" for none */
    uint32_t n_emails;                           /* 0..PST_TRUSTSYNC_EMAILS_MAX */
    char emails[PST_TRUSTSYNC_EMAILS_MAX][PST_TRUSTSYNC_EMAIL_MAX + 1];
} pst_trustsync;

/* The rule for one contact's email list, here and in the pairing reply:
 * 0..PST_TRUSTSYNC_EMAILS_MAX addresses as described above, in strictly
 * ascending byte order. */
bool pst_contact_emails_ok(const char emails[][PST_TRUSTSYNC_EMAIL_MAX + 1], uint32_t n);

/* Canonical encoding into out[cap] (PST_TRUSTSYNC_MAX always fits).
 * PST_E_INVAL if r breaks a rule, PST_E_NOSPACE; *len = 0 on failure. */
int pst_trustsync_encode(const pst_trustsync *r, uint8_t *out, size_t cap, size_t *len);
/* Strict decode of exactly one record: PST_E_RECTYPE, PST_E_FIELDS,
 * PST_E_RANGE (tier, petname, email rules), PST_E_TOOBIG, PST_E_NONCANONICAL, ...
 * *out zeroed on failure. */
int pst_trustsync_decode(const uint8_t *in, size_t len, pst_trustsync *out);

#endif
