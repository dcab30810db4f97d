/* A small table of identity keys and when each was last looked at: the
 * sender side's device-list look-ups per recipient (send_devices.c) and the
 * inbox's per sender (inbox_device.c). Fixed size; a new key takes the slot
 * of the oldest. Private to node/mail/. */
#ifndef PST_RECENT_INT_H
#define PST_RECENT_INT_H

#include <stdint.h>

#include "pst_types.h"

typedef struct {
    uint8_t pk[PST_SIGN_PK_BYTES];
    uint64_t at; /* 0: a free slot */
} pst_recent_key;

/* The time slot of pk among the n entries of t, or NULL. */
uint64_t *pst_recent_find(pst_recent_key *t, unsigned n, const uint8_t pk[PST_SIGN_PK_BYTES]);
/* Sets pk's time to at (at least 1), in its slot or in the oldest one. */
void pst_recent_note(pst_recent_key *t, unsigned n, const uint8_t pk[PST_SIGN_PK_BYTES],
                     uint64_t at);

#endif
