/* `send`, its recipients: each is looked up (pst_resolve, a few at a time)
 * and must turn out to be exactly one valid key; else nothing is sent and
 * the reply names every problem once, with the candidates found. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pst_mail.h"

#include "send_int.h"

static void on_resolved(void *user, int err, const pst_resolved_key *keys, unsigned n,
                        const pst_resolve_info *info) {
    send_rcpt *r = user;
    send_op *op = r->op;
    if (err != PST_OK) {
        r->state = RS_ERROR;
    } else {
        r->by_address = info->by_address;
        unsigned valid = 0;
        const pst_resolved_key *pick = NULL;
        for (unsigned i = 0; i < n; i++) {
            if (r->n_cands < PST_RESOLVE_KEYS_MAX) {
                memcpy(r->cands[r->n_cands].pk, keys[i].pk, PST_SIGN_PK_BYTES);
                r->cands[r->n_cands++].status = keys[i].status;
            }
            if (keys[i].status == PST_KEY_VALID && keys[i].have_keyrec) {
                valid++;
                pick = &keys[i];
            }
        }
        if (valid == 1) {
            r->state = RS_OK;
            memcpy(r->pk, pick->pk, PST_SIGN_PK_BYTES);
            memcpy(r->box_pk, pick->keyrec.enc_pk, PST_BOX_PK_BYTES);
            r->bits = (unsigned)pick->keyrec.pow_bits;
            if (!op->replied) {
                pst_send_devices_resolve(r); /* counts r as resolved */
                return;
            }
        } else if (valid > 1) {
            r->state = RS_AMBIGUOUS;
        } else if (!info->by_address && n == 1) {
            r->state = keys[0].status == PST_KEY_REVOKED       ? RS_REVOKED
                       : keys[0].status == PST_KEY_EXPIRED     ? RS_EXPIRED
                       : keys[0].status == PST_KEY_FROM_FUTURE ? RS_FROM_FUTURE
                                                               : RS_NOT_FOUND;
        } else if (n == 0 && info->by_address && pst_relay_takes(op->node, r->query)) {
            r->state = RS_INTERNET; /* no Postern key at all: mail for the Internet */
        } else {
            r->state = n == 0 ? RS_NOT_FOUND : RS_NO_VALID;
        }
    }
    pst_send_rcpt_resolved(r);
}

void pst_send_rcpt_resolved(send_rcpt *r) {
    send_op *op = r->op;
    op->resolving--;
    op->resolved++;
    pst_send_pump(op);
}

/* Starts lookups, SEND_RESOLVE_PARALLEL at a time. Re-entrant: a lookup may
 * answer before pst_resolve returns (e.g. when the DHT refuses the get). */
void pst_send_pump(send_op *op) {
    if (op->pumping)
        return;
    op->pumping = true;
    if (op->replied) { /* cancelled: look nobody else up */
        op->resolved += op->n_rcpts - op->next_rcpt;
        op->next_rcpt = op->n_rcpts;
    }
    while (op->resolving < SEND_RESOLVE_PARALLEL && op->next_rcpt < op->n_rcpts) {
        send_rcpt *r = &op->rcpts[op->next_rcpt++];
        op->resolving++;
        if (pst_resolve(op->node, r->query, true, on_resolved, r) != PST_OK) {
            op->resolving--;
            op->resolved++;
            r->state = RS_ERROR;
        }
    }
    op->pumping = false;
    if (op->resolved == op->n_rcpts && !op->all_resolved) {
        op->all_resolved = true;
        pst_send_resolved_all(op);
    }
}

/* Name and explanation (with the query for %s) of each recipient state. */
static const struct {
    const char *name, *why;
} rcpt_states[] = {
    [RS_WAIT] = {"error", "cannot look %s up"},
    [RS_OK] = {"ok", ""},
    [RS_NOT_FOUND] = {"not_found", "no key %s found in the DHT"},
    [RS_REVOKED] = {"revoked", "the key of %s is revoked: its owner no longer reads mail with it"},
    [RS_EXPIRED] = {"expired",
                    "the key of %s has expired (its owner's node has not republished it)"},
    [RS_AMBIGUOUS] = {"ambiguous", "%s is claimed by several valid keys: check with its owner "
                                   "and send to the fingerprint"},
    [RS_NO_VALID] = {"no_valid_key", "no valid key claims %s (only revoked or expired ones)"},
    [RS_ERROR] = {"error", "cannot look %s up"},
    [RS_FROM_FUTURE] = {"from_future", "the key record of %s was created in the future by this "
                                       "machine's clock: check this machine's clock"},
    [RS_INTERNET] = {"internet", ""},
};

static void explain(const send_rcpt *r, char *out, size_t cap) {
    const char *fmt = r->state == RS_NOT_FOUND && r->by_address
                          ? "no key claims %s (is the address right? has its owner's node "
                            "published it?), and no smarthost is configured for Internet mail "
                            "(docs/SMARTHOST.md)"
                          : rcpt_states[r->state].why;
    snprintf(out, cap, fmt, r->query);
}

/* The same query given earlier in the list (to, cc or bcc): its problem is
 * reported there, once. */
static bool repeated_query(const send_op *op, unsigned i) {
    for (unsigned k = 0; k < i; k++)
        if (strcasecmp(op->rcpts[k].query, op->rcpts[i].query) == 0)
            return true;
    return false;
}

/* Every recipient must be exactly one valid key: else the reply names the
 * problem (or how many there are) and its body lists every recipient once,
 * with its candidates and, for a problem, its explanation: a CLI prints
 * each problem once. */
bool pst_send_check_recipients(send_op *op) {
    const send_rcpt *bad = NULL;
    unsigned nbad = 0;
    for (unsigned i = 0; i < op->n_rcpts; i++)
        if (op->rcpts[i].state != RS_OK && op->rcpts[i].state != RS_INTERNET &&
            !repeated_query(op, i)) {
            nbad++;
            if (bad == NULL)
                bad = &op->rcpts[i];
        }
    if (bad == NULL)
        return true;
    pst_value *b = pst_value_new_map();
    pst_value *arr = pst_value_add_array(b, "recipients");
    for (unsigned i = 0; i < op->n_rcpts; i++) {
        const send_rcpt *r = &op->rcpts[i];
        if (repeated_query(op, i))
            continue;
        pst_value *e = pst_value_add_map(arr, NULL);
        pst_value_add_str(e, "query", r->query);
        pst_value_add_str(e, "status", rcpt_states[r->state].name);
        if (r->state != RS_OK && r->state != RS_INTERNET) {
            char why[400];
            explain(r, why, sizeof why);
            pst_value_add_str(e, "error", why);
        }
        pst_value *c = pst_value_add_array(e, "candidates");
        for (unsigned k = 0; k < r->n_cands; k++) {
            char fp[PST_FINGERPRINT_STRLEN + 1];
            pst_fingerprint_format(r->cands[k].pk, fp);
            pst_value *ce = pst_value_add_map(c, NULL);
            pst_value_add_str(ce, "fingerprint", fp);
            pst_value_add_str(ce, "status", pst_key_status_name(r->cands[k].status));
        }
    }
    char why[400], text[PST_SEND_ERROR_MAX + 1];
    explain(bad, why, sizeof why);
    if (nbad > 1)
        snprintf(text, sizeof text, "not sent: %u recipients have a problem", nbad);
    else
        snprintf(text, sizeof text, "not sent: %s", why);
    op->replied = true;
    op->done(op->user, text, pst_value_error(b) == PST_OK ? b : NULL);
    pst_value_free(b);
    pst_send_finish(op);
    return false;
}
