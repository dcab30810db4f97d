/* libFuzzer target: MessageTrailer decoder and verify; then the same bytes
 * as a whole message ciphertext for the streaming decryptor under the fixed
 * key of msgcrypt_message_v1 (split at the chunk prefixes like a receiver).
 * Whatever decodes must re-encode to exactly the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canonical_harness.h"
#include "pst_msgcrypt.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_msg_trailer, PST_MSG_TRAILER_MAX)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t out[PST_MSG_CHUNK];
    pst_msg_trailer r;
    size_t len;
    if (decode_canonical(data, size, &r))
        (void)!pst_msg_trailer_verify(&r, FUZZ_NOW);
    if (size >= PST_MSG_HEADER_BYTES) {
        uint8_t key[PST_MSGKEY_BYTES];
        pst_msg_decryptor dec;
        memset(key, 0x06, sizeof key);
        if (pst_msg_decryptor_init(&dec, key, data) != PST_OK)
            abort();
        size_t off = PST_MSG_HEADER_BYTES;
        while (size - off >= PST_MSG_CHUNK_PREFIX) {
            uint32_t box;
            bool fin;
            size_t want = size - off;
            if (pst_msg_chunk_header_parse(data + off, &box) == PST_OK &&
                want > PST_MSG_CHUNK_PREFIX + (size_t)box)
                want = PST_MSG_CHUNK_PREFIX + box;
            if (pst_msg_decrypt_chunk(&dec, data + off, want, out, sizeof out, &len, &fin) !=
                PST_OK)
                break;
            off += want;
        }
        (void)!pst_msg_decrypt_finish(&dec, NULL, &r);
    }
    return 0;
}
