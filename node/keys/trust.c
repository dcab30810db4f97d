/* Trust in the keys room: the names of the tiers, our own vouches (made,
 * stored and published here; `postern vouch` is control/trust_cmd.c), and
 * the notices about contacts whose key was revoked. Reading other keys'
 * vouches is vouch.c; whether a sender is vouched for, vouch_check.c. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "pst_keys.h"
#include "pst_record.h"

const char *pst_trust_tier_name(pst_store_tier t) {
    static const char *const names[] = {
        [PST_STORE_TIER_TRUSTED] = "trusted",
        [PST_STORE_TIER_KNOWN] = "known",
        [PST_STORE_TIER_BLOCKED] = "blocked",
    };
    return PST_NAME_OF(names, t, "unknown");
}

const char *pst_vouch_tier_name(unsigned tier) {
    return tier == PST_TIER_TRUSTED ? "trusted" : tier == PST_TIER_KNOWN ? "known" : "withdrawn";
}

int pst_trust_vouch_publish(pst_node *n, pst_endorsement *e, pst_dht_done_cb done, void *user) {
    uint8_t buf[PST_DHT_VALUE_MAX];
    size_t len;
    /* a joined device (issue 13) has no identity secret key to sign with */
    if (!n->holds_identity)
        return PST_E_NOKEY;
    int rc = pst_endorsement_sign(e, n->id->sign_sk);
    if (rc == PST_OK)
        rc = pst_endorsement_encode(e, buf, sizeof buf, &len);
    uint8_t slot[PST_SLOT_BYTES];
    pst_slot_vouch(e->subject, slot);
    /* one published vouch per subject: it replaces the previous one and is
     * re-put with our other records */
    if (rc == PST_OK)
        rc = pst_store_published_put(n->store, PST_PUB_ENDORSEMENT, slot, buf, len, e->created,
                                     pst_now());
    if (rc != PST_OK)
        return rc;
    rc = pst_publish_put(n, PST_PUB_ENDORSEMENT, slot, buf, len, done, user);
    if (rc != PST_OK)
        done(user, rc);
    return PST_OK;
}

/* ---- notices: a contact's key was revoked ------------------------------------
 * Shown once (by `postern status` or `postern inbox`, whichever comes first),
 * remembered in the store so a restart does not repeat it. */

typedef struct {
    pst_node *node;
    pst_value *arr;
    unsigned added;
} notice_walk;

static int on_notice_contact(const pst_store_contact_row *row, void *user) {
    notice_walk *w = user;
    pst_node *n = w->node;
    if (pst_store_is_revoked(n->store, row->pk) != 1)
        return 0;
    char hex[33], name[48];
    sodium_bin2hex(hex, sizeof hex, row->pk, 16);
    snprintf(name, sizeof name, "notice.revoked.%s", hex);
    uint64_t shown = 0;
    if (pst_store_meta_get_u64(n->store, name, &shown) == PST_OK && shown != 0)
        return 0;
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(row->pk, fp);
    char text[PST_CTRL_ERROR_MAX];
    int off =
        snprintf(text, sizeof text,
                 "your %s contact %s%s%s is revoked: its mail is "
                 "dropped from now on",
                 pst_trust_tier_name(row->tier), fp, row->petname[0] ? " " : "", row->petname);
    uint8_t buf[PST_RECORD_MAX];
    size_t len;
    pst_revocation rev;
    if (off > 0 && (size_t)off < sizeof text &&
        pst_store_revocation_get(n->store, row->pk, buf, sizeof buf, &len) == PST_OK &&
        pst_revocation_decode(buf, len, &rev) == PST_OK && rev.has_replacement) {
        char rfp[PST_FINGERPRINT_STRLEN + 1];
        pst_fingerprint_format(rev.replacement, rfp);
        snprintf(text + off, sizeof text - (size_t)off,
                 "; the revocation names %s as its replacement: that key is NOT trusted "
                 "because of it, check it with its owner before you trust it",
                 rfp);
    }
    pst_value_add_str(w->arr, NULL, text);
    (void)pst_store_meta_set_u64(n->store, name, pst_now());
    w->added++;
    return 0;
}

unsigned pst_trust_notices(pst_node *n, pst_value *arr) {
    notice_walk w = {n, arr, 0};
    (void)pst_store_contact_list(n->store, on_notice_contact, &w);
    return w.added;
}
