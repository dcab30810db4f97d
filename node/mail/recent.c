/* The table of recently looked-at keys (recent_int.h). */
#include <string.h>

#include "recent_int.h"

uint64_t *pst_recent_find(pst_recent_key *t, unsigned n, const uint8_t pk[PST_SIGN_PK_BYTES]) {
    for (unsigned i = 0; i < n; i++)
        if (t[i].at != 0 && memcmp(t[i].pk, pk, PST_SIGN_PK_BYTES) == 0)
            return &t[i].at;
    return NULL;
}

void pst_recent_note(pst_recent_key *t, unsigned n, const uint8_t pk[PST_SIGN_PK_BYTES],
                     uint64_t at) {
    uint64_t *slot = pst_recent_find(t, n, pk);
    if (slot == NULL) {
        unsigned oldest = 0;
        for (unsigned i = 1; i < n; i++)
            if (t[i].at < t[oldest].at)
                oldest = i;
        memcpy(t[oldest].pk, pk, PST_SIGN_PK_BYTES);
        slot = &t[oldest].at;
    }
    *slot = at > 0 ? at : 1;
}
