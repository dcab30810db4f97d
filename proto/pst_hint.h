/* Hint (type 18): a notification handed straight to the recipient's fetch
 * endpoint, beside its DHT put (docs/PROTOCOL.md, "Hint").
 *
 *   sender -> recipient : frame(Hint) frame(Hint) ... (no answer)
 *
 *   [1, 18, recipient (bin 32, the identity the notification is for),
 *    notification (bin 1..PST_NOTIFY_MAX: the very bytes put in the
 *    recipient's inbox slot, a type-5 or type-15 outer)]
 *
 * Not signed, like the outer notification it carries: a signature outside
 * the seal would name the sender to anyone on the path. What authenticates
 * a hint is the notification inside (sealed to the recipient, its inner
 * signed by the sender), which the recipient checks exactly as it checks a
 * value of its inbox slot; recipient only lets a node refuse a hint meant
 * for another identity before it spends an X25519 on it. */
#ifndef PST_HINT_H
#define PST_HINT_H

#include <stddef.h>
#include <stdint.h>

#include "pst_error.h"
#include "pst_notify.h"
#include "pst_types.h"

/* Largest encoding: array, version, type, bin 32, bin 16-bit header and
 * PST_NOTIFY_MAX bytes (1,240). */
#define PST_HINT_MAX (1u + 1u + 1u + 2u + PST_SIGN_PK_BYTES + 3u + PST_NOTIFY_MAX)

typedef struct {
    uint8_t recipient[PST_SIGN_PK_BYTES];
    size_t notification_len; /* 1..PST_NOTIFY_MAX */
    uint8_t notification[PST_NOTIFY_MAX];
} pst_hint;

/* Encodes h into out (cap bytes; PST_HINT_MAX always suffices). PST_E_INVAL
 * for a NULL argument or a notification_len outside 1..PST_NOTIFY_MAX,
 * PST_E_NOSPACE when cap is short; *len = 0 and nothing valid in out on
 * error. */
int pst_hint_encode(const pst_hint *h, uint8_t *out, size_t cap, size_t *len);

/* Strict decode of exactly len bytes: PST_E_TOOBIG over PST_HINT_MAX or a
 * notification over PST_NOTIFY_MAX, PST_E_RANGE for an empty one,
 * PST_E_RECTYPE / PST_E_VERSION / PST_E_FIELDS / PST_E_TYPE /
 * PST_E_TRUNCATED / PST_E_TRAILING / PST_E_MALFORMED /
 * PST_E_NONCANONICAL as for every record. The notification bytes are not
 * looked into (the inbox pipeline decodes them). *out zeroed on error. */
int pst_hint_decode(const uint8_t *in, size_t len, pst_hint *out);

#endif
