/* Spare files in the outbox: a body whose message is finished is emptied
 * and kept under a tmp- name instead of being deleted, and the next send
 * writes its ciphertext into it instead of creating a file.
 *
 * Why: creating a file is the largest single cost of a small send on ext4
 * (the inode allocator; without a journal it also skips every inode freed
 * in the last seconds, reading its inode table block each time, so every
 * delete makes the next creates dearer). A spare reuses the inode: no
 * allocation, no free.
 *
 * Safety: a spare is an empty file named tmp-s<hex> in DIR/outbox; nothing
 * refers to it, so nothing needs it durable. The startup sweep deletes
 * every tmp- file, spares included. A spare is handed to exactly one send
 * on the loop before its worker starts; the worker opens it with O_TRUNC
 * (and creates a file as before when that fails). A send whose ciphertext
 * fits in the store (PST_STORE_BODY_INLINE_MAX) opens no file and gives its
 * spare back untouched, so spares serve the larger messages. Loop thread
 * only. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "outbox_int.h"

static int spare_path(const struct pst_outbox *o, const char *hex, char *out, size_t cap) {
    return snprintf(out, cap, "%s/tmp-s%s", o->dir, hex) < (int)cap ? PST_OK : PST_E_NOSPACE;
}

int pst_outbox_spare_keep(struct pst_outbox *o, const char *path) {
    if (o->n_spares >= PST_OUTBOX_SPARES_MAX || o->stopping)
        return unlink(path) == 0 ? 0 : errno;
    uint8_t rnd[8];
    char *hex = o->spares[o->n_spares], to[PST_PATH_MAX];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof o->spares[0], rnd, sizeof rnd);
    /* emptied first: a finished message's ciphertext stays nowhere */
    int t = truncate(path, 0);
    if (t != 0 && errno == ENOENT)
        return ENOENT; /* no file: its body was in the store (outbox_body.c) */
    if (t != 0 || spare_path(o, hex, to, sizeof to) != PST_OK || rename(path, to) != 0)
        return unlink(path) == 0 ? 0 : errno; /* the body goes all the same */
    o->n_spares++;
    pst_counter_add(o->node, "outbox.spares_kept", 1);
    return 0;
}

bool pst_outbox_spare_take(struct pst_outbox *o, char *out, size_t cap) {
    if (o->n_spares == 0)
        return false;
    o->n_spares--;
    return spare_path(o, o->spares[o->n_spares], out, cap) == PST_OK;
}

void pst_outbox_spare_return(struct pst_outbox *o, const char *path, bool written) {
    static const char prefix[] = "/tmp-s";
    size_t dl = strlen(o->dir), px = sizeof prefix - 1, hl = sizeof o->spares[0] - 1;
    /* lengths first: only a name of exactly DIR/tmp-s<hex> is taken back */
    if (o->n_spares < PST_OUTBOX_SPARES_MAX && !o->stopping && strlen(path) == dl + px + hl &&
        memcmp(path, o->dir, dl) == 0 && memcmp(path + dl, prefix, px) == 0 &&
        (!written || truncate(path, 0) == 0)) {
        char *slot = o->spares[o->n_spares++];
        memcpy(slot, path + dl + px, hl);
        slot[hl] = '\0';
        return;
    }
    (void)unlink(path);
}
