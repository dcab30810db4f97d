#include <string.h>

#include "codec.h"
#include "pst_record.h"

int pst_record_peek_type(const uint8_t *in, size_t len, pst_rec_type *type) {
    *type = 0;
    if (in == NULL || len < 3)
        return PST_E_TRUNCATED;
    /* Parse just a fixarray/array16 header + version + type: a prefix of at
     * most 1 + 2 + 9 + 9 bytes. Anything cleverer is the real decoder's job. */
    size_t off;
    if ((in[0] & 0xf0) == 0x90)
        off = 1;
    else if (in[0] == 0xdc && len >= 3)
        off = 3;
    else
        return PST_E_TYPE;
    if (off + 2 > len)
        return PST_E_TRUNCATED;
    /* version and type are small positive fixints in every record we know */
    if (in[off] > 0x7f || in[off + 1] > 0x7f)
        return PST_E_TYPE;
    if (in[off] != PST_PROTO_VERSION)
        return PST_E_VERSION;
    *type = (pst_rec_type)in[off + 1];
    return PST_OK;
}

const char *pst_record_type_name(int type) {
    static const char *const names[] = {
        [PST_REC_KEY] = "key",
        [PST_REC_ADDRESS_CLAIM] = "address_claim",
        [PST_REC_REVOCATION] = "revocation",
        [PST_REC_ENDORSEMENT] = "endorsement",
        [PST_REC_NOTIFICATION] = "notification",
        [PST_REC_NOTIFICATION_INNER] = "notification_inner",
        [PST_REC_FETCH_REQUEST] = "fetch_request",
        [PST_REC_FETCH_RESPONSE] = "fetch_response",
        [PST_REC_RECEIPT] = "receipt",
        [PST_REC_CTRL_REQUEST] = "ctrl_request",
        [PST_REC_CTRL_RESPONSE] = "ctrl_response",
        [PST_REC_MESSAGE_TRAILER] = "message_trailer",
    };
    return PST_NAME_OF(names, type, "unknown");
}
