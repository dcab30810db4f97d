/* The trust commands: `postern trust` (set, rm, list: contacts and their
 * tiers in the store) and `postern vouch` / `unvouch` (our endorsement of a
 * key, made and published by keys/trust.c). Parses the arguments, calls the
 * keys room and the store, and builds the replies (schemas in docs/CLI.md).
 * A contact may carry email addresses (trust set --email / --drop-email):
 * LMTP gives Internet mail from them the contact's tier (docs/LMTP.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pst_addrlist.h"
#include "pst_control.h"

static int parse_tier(const char *s, pst_store_tier *out) {
    if (strcmp(s, "trusted") == 0)
        *out = PST_STORE_TIER_TRUSTED;
    else if (strcmp(s, "known") == 0)
        *out = PST_STORE_TIER_KNOWN;
    else if (strcmp(s, "blocked") == 0)
        *out = PST_STORE_TIER_BLOCKED;
    else
        return PST_E_INVAL;
    return PST_OK;
}

static bool parse_fp(const pst_ctrl_request *req, uint8_t pk[32], pst_node_reply_cb reply,
                     void *user) {
    const char *fp = pst_req_arg(req, "fingerprint");
    if (fp == NULL || pst_fingerprint_parse(fp, pk) != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "a fingerprint is 52 characters of z-base-32 (see postern key get)");
        return false;
    }
    return true;
}

/* ---- trust set / rm / list --------------------------------------------------- */

static int one_addr(void *user, const char *addr, size_t len) {
    char *out = user;
    if (out[0] != '\0')
        return PST_E_MALFORMED; /* a second address */
    memcpy(out, addr, len + 1);
    return 0;
}

/* An --email argument: exactly one address, local@domain (no domain
 * literal), into out. */
static bool email_parse(const char *v, char out[PST_ADDRLIST_ADDR_MAX + 1]) {
    out[0] = '\0';
    if (pst_addrlist_parse((const uint8_t *)v, strlen(v), one_addr, out, NULL) != PST_OK ||
        out[0] == '\0')
        return false;
    const char *at = strrchr(out, '@');
    return at != NULL && at[1] != '\0' && at[1] != '[';
}

/* Adds the email= and removes the drop_email= arguments of req for pk,
 * inside the caller's batch. PST_OK, or an error with why filled. */
static int apply_emails(pst_node *n, const pst_ctrl_request *req, const uint8_t pk[32], char *why,
                        size_t cap) {
    for (uint32_t i = 0; i < req->n_args; i++) {
        const char *v;
        bool add = pst_req_arg_is(req->args[i], "email", &v);
        if (!add && !pst_req_arg_is(req->args[i], "drop_email", &v))
            continue;
        char addr[PST_ADDRLIST_ADDR_MAX + 1];
        if (!email_parse(v, addr)) {
            snprintf(why, cap, "'%s' is not one email address (local@domain)", v);
            return PST_E_INVAL;
        }
        int rc = add ? pst_store_contact_email_add(n->store, pk, addr)
                     : pst_store_contact_email_rm(n->store, pk, addr);
        if (rc == PST_E_EXISTS)
            snprintf(why, cap, "%s belongs to another contact already (postern trust list)", addr);
        else if (rc == PST_E_TOOBIG)
            snprintf(why, cap, "a contact carries at most %u email addresses",
                     PST_STORE_CONTACT_EMAILS_MAX);
        else if (rc == PST_E_NOTFOUND && !add)
            snprintf(why, cap, "this contact does not carry %s", addr);
        else if (rc != PST_OK)
            snprintf(why, cap, "cannot save %s: %s", addr, pst_strerror(rc));
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

static int add_email(const char *email, void *user) {
    pst_value_add_str(user, NULL, email);
    return 0;
}

void pst_node_cmd_trust_set(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                            void *user) {
    uint8_t pk[32];
    pst_store_tier tier;
    if (!parse_fp(req, pk, reply, user))
        return;
    const char *t = pst_req_arg(req, "tier");
    if (t == NULL || parse_tier(t, &tier) != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "the tier is trusted, known or blocked");
        return;
    }
    if (n->id != NULL && memcmp(pk, n->id->sign_pk, 32) == 0) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "that is your own key");
        return;
    }
    const char *name = pst_req_arg(req, "name");
    /* the tier and the addresses together, or nothing */
    int rc = pst_store_begin(n->store);
    if (rc == PST_OK &&
        (rc = pst_store_contact_set(n->store, pk, tier, name ? name : "", pst_now())) != PST_OK) {
        (void)pst_store_rollback(n->store);
        pst_reply_error(reply, user, 0,
                        rc == PST_E_INVAL || rc == PST_E_TOOBIG ? PST_CTRL_STATUS_USAGE
                                                                : PST_CTRL_STATUS_FAIL,
                        "cannot save the contact: %s (a name is at most %u bytes of text)",
                        pst_strerror(rc), PST_STORE_PETNAME_MAX);
        return;
    }
    char why[PST_ADDRLIST_ADDR_MAX + 128] = "";
    if (rc == PST_OK && (rc = apply_emails(n, req, pk, why, sizeof why)) != PST_OK)
        (void)pst_store_rollback(n->store);
    else if (rc == PST_OK && (rc = pst_store_commit(n->store)) != PST_OK)
        snprintf(why, sizeof why, "cannot save the contact: %s", pst_strerror(rc));
    if (rc != PST_OK) {
        if (why[0] == '\0')
            snprintf(why, sizeof why, "cannot save the contact: %s", pst_strerror(rc));
        pst_reply_error(reply, user, 0,
                        rc == PST_E_INVAL || rc == PST_E_EXISTS || rc == PST_E_TOOBIG ||
                                rc == PST_E_NOTFOUND
                            ? PST_CTRL_STATUS_USAGE
                            : PST_CTRL_STATUS_FAIL,
                        "%s", why);
        return;
    }
    /* counts for the next notification, and for the ones refused lately */
    pst_inbox_trust_changed(n);
    pst_sync_trust_changed(n, pk); /* and on our other devices */
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "fingerprint", pst_req_arg(req, "fingerprint"));
    pst_value_add_str(b, "tier", pst_trust_tier_name(tier));
    pst_value_add_str(b, "name", name ? name : "");
    (void)pst_store_contact_emails(n->store, pk, add_email, pst_value_add_array(b, "emails"));
    if (pst_store_is_revoked(n->store, pk) == 1)
        pst_value_add_str(b, "warning",
                          "this key is revoked: its mail is dropped whatever its "
                          "tier");
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

void pst_node_cmd_trust_rm(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                           void *user) {
    uint8_t pk[32];
    if (!parse_fp(req, pk, reply, user))
        return;
    int rc = pst_store_contact_rm(n->store, pk);
    if (rc == PST_E_NOTFOUND) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "that key is not in your contacts (postern trust list)");
        return;
    }
    if (rc != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot remove the contact: %s",
                        pst_strerror(rc));
        return;
    }
    pst_inbox_trust_changed(n);
    pst_sync_trust_changed(n, pk);
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "fingerprint", pst_req_arg(req, "fingerprint"));
    pst_value_add_str(b, "tier", "unknown");
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

static int on_contact(const pst_store_contact_row *row, void *user) {
    void **ctx = user;
    pst_node *n = ctx[0];
    pst_value *arr = ctx[1];
    pst_value *e = pst_value_add_map(arr, NULL);
    char fp[PST_FINGERPRINT_STRLEN + 1];
    pst_fingerprint_format(row->pk, fp);
    pst_value_add_str(e, "fingerprint", fp);
    pst_value_add_str(e, "tier", pst_trust_tier_name(row->tier));
    pst_value_add_str(e, "name", row->petname);
    pst_value_add_uint(e, "since", row->created);
    pst_value_add_uint(e, "updated", row->updated);
    pst_value_add_bool(e, "revoked", pst_store_is_revoked(n->store, row->pk) == 1);
    (void)pst_store_contact_emails(n->store, row->pk, add_email, pst_value_add_array(e, "emails"));
    return 0;
}

void pst_node_cmd_trust_list(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                             void *user) {
    (void)req;
    pst_value *b = pst_value_new_map();
    pst_value *arr = pst_value_add_array(b, "contacts");
    void *ctx[2] = {n, arr};
    int rc = pst_store_contact_list(n->store, on_contact, ctx);
    if (rc != PST_OK) {
        pst_value_free(b);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot list contacts: %s",
                        pst_strerror(rc));
        return;
    }
    pst_value_add_uint(b, "vouch_depth", n->cfg.vouch_depth);
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

/* ---- vouch / unvouch -------------------------------------------------------- */

typedef struct {
    pst_node_reply_cb reply;
    void *user;
    pst_value *body;
} vouch_put;

static void on_vouch_put(void *user, int status) {
    vouch_put *v = user;
    pst_reply_published(v->reply, v->user, v->body, status);
    free(v);
}

static void vouch_common(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                         void *user, bool withdraw) {
    uint8_t pk[32];
    if (n->id == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "%s", pst_strerror(PST_E_NOKEY));
        return;
    }
    if (!parse_fp(req, pk, reply, user))
        return;
    if (memcmp(pk, n->id->sign_pk, 32) == 0) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "you cannot vouch for yourself");
        return;
    }
    pst_endorsement e;
    memset(&e, 0, sizeof e);
    e.created = pst_now();
    memcpy(e.subject, pk, 32);
    if (withdraw) {
        e.tier = PST_TIER_WITHDRAWN;
        /* outlive any vouch we may have made: nobody can replay an old one */
        e.expires = e.created + PST_ENDORSEMENT_LIFETIME_MAX;
    } else {
        const char *t = pst_req_arg(req, "tier");
        e.tier = t == NULL || strcmp(t, "known") == 0 ? PST_TIER_KNOWN
                 : strcmp(t, "trusted") == 0          ? PST_TIER_TRUSTED
                                                      : 99;
        if (e.tier == 99) {
            pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "--tier is known or trusted");
            return;
        }
        uint64_t days = 365;
        const char *d = pst_req_arg(req, "expires_days");
        if (d != NULL) {
            if (!pst_req_count(d, PST_ENDORSEMENT_LIFETIME_MAX / 86400u, &days)) {
                pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "--expires is 1 to %u days",
                                PST_ENDORSEMENT_LIFETIME_MAX / 86400u);
                return;
            }
        }
        e.expires = e.created + days * 86400u;
    }
    vouch_put *v = calloc(1, sizeof *v);
    if (v == NULL) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "out of memory");
        return;
    }
    v->reply = reply;
    v->user = user;
    v->body = pst_value_new_map();
    pst_value_add_str(v->body, "fingerprint", pst_req_arg(req, "fingerprint"));
    pst_value_add_str(v->body, "tier", pst_vouch_tier_name((unsigned)e.tier));
    pst_value_add_uint(v->body, "created", e.created);
    pst_value_add_uint(v->body, "expires", e.expires);
    int rc = pst_trust_vouch_publish(n, &e, on_vouch_put, v);
    if (rc != PST_OK) {
        pst_value_free(v->body);
        free(v);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot make the endorsement: %s",
                        rc == PST_E_NOKEY ? "this device does not hold the identity key; vouch "
                                            "on the device that does"
                                          : pst_strerror(rc));
    }
}

void pst_node_cmd_vouch(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                        void *user) {
    vouch_common(n, req, reply, user, false);
}

void pst_node_cmd_unvouch(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                          void *user) {
    vouch_common(n, req, reply, user, true);
}
