#include "pst_error.h"

const char *pst_strerror(int err) {
    switch (err) {
    case PST_OK:
        return "success";
#define PST_ERRNO_TEXT(name, value, text)                                                          \
    case PST_E_##name:                                                                             \
        return text;
        PST_ERRNO_MAP(PST_ERRNO_TEXT)
#undef PST_ERRNO_TEXT
    default:
        return "unknown error";
    }
}

const char *pst_err_name(int err) {
    switch (err) {
    case PST_OK:
        return "PST_OK";
#define PST_ERRNO_NAME(name, value, text)                                                          \
    case PST_E_##name:                                                                             \
        return "PST_E_" #name;
        PST_ERRNO_MAP(PST_ERRNO_NAME)
#undef PST_ERRNO_NAME
    default:
        return "PST_E_UNKNOWN";
    }
}
