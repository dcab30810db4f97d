/* libFuzzer target: the frame reassembly the fetch exchange's readers use
 * (pst_framer), with each side's cap and decoders.
 * Flag bit 0x04 of the first byte picks the side:
 *   server (node/mail/fetch_server.c): frames up to PST_FRAME_MAX, each decoded
 *     as a FetchRequest, else as a Receipt, as handle_frame does;
 *   client (node/mail/fetch_client.c): frames up to PST_FETCH_RESPONSE_MAX, each
 *     decoded as a FetchResponse; after a first response with status ok the
 *     framer hands back the rest and total_size raw body bytes are skipped
 *     before framing starts over (the ack), as the client reads.
 * The other bits pick chunking and storage mode (framer_harness.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framer_harness.h"
#include "pst_fetch.h"

#define SIDE_CLIENT 0x04u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t on_server_frame(const uint8_t *frame, uint32_t len, unsigned index) {
    pst_fetch_request req;
    pst_receipt rec;
    (void)index;
    if (pst_fetch_request_decode(frame, len, &req) != PST_OK)
        (void)pst_receipt_decode(frame, len, &rec);
    return 0; /* the server reads frames only */
}

static uint64_t on_client_frame(const uint8_t *frame, uint32_t len, unsigned index) {
    pst_fetch_response r;
    if (pst_fetch_response_decode(frame, len, &r) != PST_OK)
        return 0;
    FH_CHECK(r.total_size <= PST_MESSAGE_SIZE_MAX); /* the decoder's bound */
    /* only the first frame is a header followed by the body */
    return index == 0 && r.status == PST_FETCH_OK ? r.total_size : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t storage[PST_FRAME_MAX];
    if (size > 0 && (data[0] & SIDE_CLIENT))
        fh_check(data, size, PST_FETCH_RESPONSE_MAX, storage, on_client_frame);
    else
        fh_check(data, size, PST_FRAME_MAX, storage, on_server_frame);
    return 0;
}
