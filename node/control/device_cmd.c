/* The device commands (issue 13): `device add` (a pairing code), `device
 * list`, `device rename ID NAME` and `device revoke ID`. The keys room does
 * the work (keys/pairing.c, keys/devices*.c); this file reads arguments and
 * builds replies (schemas in docs/CLI.md). Changing the list needs the
 * identity key, so add, rename and revoke run on the device that holds it. */
#include <stdio.h>
#include <string.h>

#include "pst_control.h"

static bool need_identity(pst_node *n, pst_node_reply_cb reply, void *user) {
    if (n->holds_identity)
        return true;
    pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                    "this device does not hold the identity key: run this on the device that "
                    "does (the first one, or one recovered from paper)");
    return false;
}

void pst_node_cmd_device_add(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                             void *user) {
    static const char *const keys[] = {"name", "ttl"};
    const char *name = pst_req_arg(req, "name"), *ttl = pst_req_arg(req, "ttl");
    uint64_t ttl_s = PST_PAIR_TTL_DEFAULT_S;
    if (!pst_req_args_known(req, keys, 2) ||
        (ttl != NULL && !pst_req_count(ttl, PST_PAIR_TTL_MAX_S, &ttl_s))) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "device-add takes name=NAME and ttl=SECONDS (1..%u)", PST_PAIR_TTL_MAX_S);
        return;
    }
    pst_devlist l;
    char defname[PST_DEVICE_NAME_MAX + 1];
    if (name == NULL) {
        uint32_t count = pst_keys_devlist_cached(n, n->id->sign_pk, &l) == PST_OK ? l.n_devices : 1;
        snprintf(defname, sizeof defname, "device %u", count + 1);
        name = defname;
    }
    if (!pst_device_name_ok(name, strlen(name))) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "a device name is 1..%u bytes of UTF-8 without control characters",
                        PST_DEVICE_NAME_MAX);
        return;
    }
    if (!need_identity(n, reply, user))
        return;
    char code[PST_PAIR_CODE_STRLEN + 1], err[512] = "";
    uint64_t expires = 0;
    int rc = pst_pairing_add(n, name, (uint32_t)ttl_s, code, &expires, err, sizeof err);
    if (rc != PST_OK) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "%s",
                        err[0] ? err : pst_strerror(rc));
        return;
    }
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "code", code);
    pst_value_add_str(b, "name", name);
    pst_value_add_uint(b, "expires", expires);
    pst_value_add_uint(b, "expires_in_s", ttl_s);
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

void pst_node_cmd_device_list(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                              void *user) {
    if (req->n_args != 0) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "device-list takes no argument");
        return;
    }
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "identity", n->fingerprint);
    pst_devlist l;
    bool have = pst_keys_devlist_cached(n, n->id->sign_pk, &l) == PST_OK;
    pst_value_add_uint(b, "seq", have ? l.seq : 0);
    pst_value *arr = pst_value_add_array(b, "devices");
    if (pst_keys_devices_describe(n, n->id->sign_pk, arr) == 0) {
        /* no list published: one device, whose key is the identity key */
        pst_value *m = pst_value_add_map(arr, NULL);
        char id[PST_DEVICE_ID_BUFSIZE];
        pst_device_id(n->id->sign_pk, id);
        pst_value_add_str(m, "id", id);
        pst_value_add_str(m, "key", n->fingerprint);
        pst_value_add_str(m, "name", PST_DEVICE_FIRST_NAME);
        pst_value_add_uint(m, "created", 0);
        pst_value_add_bool(m, "revoked", false);
        pst_value_add_bool(m, "this_device", true);
    }
    pst_value_add_bool(b, "this_device_revoked", pst_keys_self_revoked(n));
    pst_value_add_uint(b, "max", PST_DEVICES_MAX);
    pst_reply_tree(reply, user, b, PST_CTRL_STATUS_OK);
}

/* The current device of our list whose id (or key) is id; its index. */
static int find_device(pst_node *n, const char *id, pst_devlist *l, pst_node_reply_cb reply,
                       void *user) {
    if (id == NULL || pst_keys_devlist_cached(n, n->id->sign_pk, l) != PST_OK) {
        pst_reply_error(reply, user, 0, id == NULL ? PST_CTRL_STATUS_USAGE : PST_CTRL_STATUS_FAIL,
                        id == NULL ? "give the device's id (postern device list)"
                                   : "this identity has no device list yet (postern device add)");
        return -1;
    }
    size_t len = strlen(id);
    for (uint32_t i = 0; i < l->n_devices; i++) {
        char did[PST_DEVICE_ID_BUFSIZE], fp[PST_FINGERPRINT_STRLEN + 1];
        pst_device_id(l->devices[i].sign_pk, did);
        pst_fingerprint_format(l->devices[i].sign_pk, fp);
        if ((len == PST_DEVICE_ID_BUFSIZE - 1 && strcasecmp(id, did) == 0) ||
            (len == PST_FINGERPRINT_STRLEN && strcasecmp(id, fp) == 0))
            return (int)i;
    }
    for (uint32_t i = 0; i < l->n_tombstones; i++) {
        char did[PST_DEVICE_ID_BUFSIZE];
        pst_device_id(l->tombstones[i].sign_pk, did);
        if (strcasecmp(id, did) == 0) {
            pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "device %s is revoked already",
                            did);
            return -1;
        }
    }
    pst_reply_error(reply, user, 0, PST_CTRL_STATUS_NOT_FOUND,
                    "no current device has id '%s' (postern device list)", id);
    return -1;
}

/* The device a change names (id=), on the device that may sign the list;
 * -1 after replying. */
static int changed_device(pst_node *n, const pst_ctrl_request *req, pst_devlist *l,
                          pst_node_reply_cb reply, void *user) {
    if (!need_identity(n, reply, user))
        return -1;
    return find_device(n, pst_req_arg(req, "id"), l, reply, user);
}

typedef struct {
    pst_node_reply_cb reply;
    void *user;
    pst_value *b;
} put_reply;

static void on_list_put(void *user, int status) {
    put_reply *p = user;
    pst_reply_published(p->reply, p->user, p->b, status);
    free(p);
}

static void publish(pst_node *n, pst_devlist *l, pst_value *b, pst_node_reply_cb reply,
                    void *user) {
    put_reply *p = calloc(1, sizeof *p);
    if (p == NULL) {
        pst_value_free(b);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "out of memory");
        return;
    }
    p->reply = reply;
    p->user = user;
    p->b = b;
    int rc = pst_keys_devlist_publish(n, l, on_list_put, p);
    if (rc != PST_OK) {
        free(p);
        pst_value_free(b);
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL, "cannot publish the device list: %s",
                        pst_strerror(rc));
    }
}

void pst_node_cmd_device_rename(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                                void *user) {
    static const char *const keys[] = {"id", "name"};
    const char *name = pst_req_arg(req, "name");
    if (!pst_req_args_known(req, keys, 2) || name == NULL ||
        !pst_device_name_ok(name, strlen(name))) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE,
                        "device-rename takes id=ID and name=NAME (1..%u bytes, no control "
                        "characters)",
                        PST_DEVICE_NAME_MAX);
        return;
    }
    pst_devlist l;
    int i = changed_device(n, req, &l, reply, user);
    if (i < 0)
        return;
    snprintf(l.devices[i].name, sizeof l.devices[i].name, "%s", name);
    pst_value *b = pst_value_new_map();
    char did[PST_DEVICE_ID_BUFSIZE];
    pst_device_id(l.devices[i].sign_pk, did);
    pst_value_add_str(b, "id", did);
    pst_value_add_str(b, "name", name);
    publish(n, &l, b, reply, user);
}

void pst_node_cmd_device_revoke(pst_node *n, const pst_ctrl_request *req, pst_node_reply_cb reply,
                                void *user) {
    static const char *const keys[] = {"id"};
    if (!pst_req_args_known(req, keys, 1)) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_USAGE, "device-revoke takes id=ID");
        return;
    }
    pst_devlist l;
    int i = changed_device(n, req, &l, reply, user);
    if (i < 0)
        return;
    if (memcmp(l.devices[i].sign_pk, n->id->sign_pk, PST_SIGN_PK_BYTES) == 0) {
        pst_reply_error(reply, user, 0, PST_CTRL_STATUS_FAIL,
                        "this device holds the identity key itself: it cannot be revoked as a "
                        "device (to retire the identity: postern key revoke)");
        return;
    }
    if (l.n_tombstones >= PST_DEVICE_TOMBSTONES_MAX)
        l.n_tombstones = PST_DEVICE_TOMBSTONES_MAX - 1; /* the list trims the oldest anyway */
    pst_device_tombstone *t = &l.tombstones[l.n_tombstones++];
    memcpy(t->sign_pk, l.devices[i].sign_pk, PST_SIGN_PK_BYTES);
    t->revoked_at = pst_now();
    char did[PST_DEVICE_ID_BUFSIZE];
    pst_device_id(l.devices[i].sign_pk, did);
    pst_value *b = pst_value_new_map();
    pst_value_add_str(b, "id", did);
    pst_value_add_str(b, "name", l.devices[i].name);
    pst_value_add_bool(b, "revoked", true);
    memmove(&l.devices[i], &l.devices[i + 1],
            (l.n_devices - (uint32_t)i - 1) * sizeof l.devices[0]);
    l.n_devices--;
    memset(&l.devices[l.n_devices], 0, sizeof l.devices[0]);
    publish(n, &l, b, reply, user);
}
