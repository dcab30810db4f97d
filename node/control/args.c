/* The one reader of a control request's arguments. Every argument is
 * "key=value" (tools/postern builds them with pst_ctrl_request_add_arg);
 * a handler asks for the keys it takes and refuses the rest. */
#include <string.h>

#include "pst_control.h"

bool pst_req_arg_is(const char *arg, const char *key, const char **value) {
    size_t kl = strlen(key);
    if (strncmp(arg, key, kl) != 0 || arg[kl] != '=')
        return false;
    if (value)
        *value = arg + kl + 1;
    return true;
}

const char *pst_req_arg(const pst_ctrl_request *req, const char *key) {
    const char *v;
    for (uint32_t i = 0; i < req->n_args; i++)
        if (pst_req_arg_is(req->args[i], key, &v))
            return v;
    return NULL;
}

bool pst_req_args_known(const pst_ctrl_request *req, const char *const *keys, size_t n) {
    for (uint32_t i = 0; i < req->n_args; i++) {
        bool ok = false;
        for (size_t k = 0; k < n && !ok; k++)
            ok = pst_req_arg_is(req->args[i], keys[k], NULL);
        if (!ok)
            return false;
    }
    return true;
}

bool pst_req_count(const char *v, uint64_t max, uint64_t *out) {
    uint64_t x = 0;
    if (*v == '\0')
        return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*v - '0');
    }
    if (x == 0 || x > max)
        return false;
    *out = x;
    return true;
}
