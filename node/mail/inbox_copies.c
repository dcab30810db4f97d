/* The recipient's exactly-once search, and where it is needed
 * (docs/MAIL.md, "Exactly once, across kill -9").
 *
 * A copy of a message can be in the Maildir without the store recording it
 * only when an attempt renamed it there and then the process died (kill -9,
 * a crash) or the store refused the record (full). So the search of every
 * folder (pst_maildir_find_any) is needed only for:
 * - pending rows an earlier run attempted: every attempt is recorded
 *   (last_attempt, committed with fsync; the attempts of the jobs one pump
 *   starts share one commit) before its fetch starts, so a row with
 *   none was never near a rename; they (and failed ones, which `inbox
 *   retry` may take up) are read once, at the first job of the run;
 * - messages whose fetch in this run reached the rename (pst_maildir_place) and was not
 *   recorded as delivered (res->commit_reached).
 * Every other delivery skips it: a first delivery costs the same with
 * 100,000 files in the Maildir as with none (docs/MAIL.md). */
#include <stdlib.h>
#include <string.h>

#include "inbox_int.h"

static int cmp_id(const void *a, const void *b) { return memcmp(a, b, PST_HASH_BYTES); }

/* bsearch and memmove want a pointer even for none */
static bool suspect_has(const struct pst_inbox *ib, const uint8_t id[PST_HASH_BYTES]) {
    return ib->n_suspects > 0 &&
           bsearch(id, ib->suspects, ib->n_suspects, PST_HASH_BYTES, cmp_id) != NULL;
}

void pst_inbox__suspect_add(struct pst_inbox *ib, const uint8_t id[PST_HASH_BYTES]) {
    if (ib->suspects_all || suspect_has(ib, id))
        return;
    if (ib->n_suspects == ib->cap_suspects) {
        size_t cap = ib->cap_suspects ? 2 * ib->cap_suspects : 64;
        void *p = cap <= PST_INBOX_SUSPECTS_MAX ? realloc(ib->suspects, cap * sizeof *ib->suspects)
                                                : NULL;
        if (p == NULL) { /* search for every message rather than miss one */
            ib->suspects_all = true;
            return;
        }
        ib->suspects = p;
        ib->cap_suspects = cap;
    }
    size_t i = ib->n_suspects;
    while (i > 0 && memcmp(ib->suspects[i - 1], id, PST_HASH_BYTES) > 0)
        i--;
    if (i < ib->n_suspects)
        memmove(ib->suspects[i + 1], ib->suspects[i], (ib->n_suspects - i) * PST_HASH_BYTES);
    memcpy(ib->suspects[i], id, PST_HASH_BYTES);
    ib->n_suspects++;
}

static int on_attempted_row(const pst_store_inbox_row *row, void *user) {
    if (row->last_attempt != 0)
        pst_inbox__suspect_add(user, row->msg_id);
    return 0;
}

bool pst_inbox__may_have_copy(struct pst_inbox *ib, const uint8_t id[PST_HASH_BYTES]) {
    if (!ib->suspects_loaded) {
        ib->suspects_loaded = true;
        /* failed rows too: `inbox retry` takes one up again */
        if (pst_store_inbox_list(ib->node->store, PST_STORE_IN_PENDING, on_attempted_row, ib) !=
                PST_OK ||
            pst_store_inbox_list(ib->node->store, PST_STORE_IN_FAILED, on_attempted_row, ib) !=
                PST_OK)
            ib->suspects_all = true;
    }
    return ib->suspects_all || suspect_has(ib, id);
}
