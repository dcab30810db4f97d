/* libFuzzer target: TrustSync decoder (a trust change between the devices
 * of one identity), and the armor around it as it comes in a message body.
 * Whatever decodes must re-encode to exactly the input
 * (canonical_harness.h). */
#include <stdint.h>
#include <string.h>

#include "canonical_harness.h"
#include "pst_armor.h"
#include "pst_sync.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_trustsync, PST_TRUSTSYNC_MAX)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pst_trustsync r;
    (void)decode_canonical(data, size, &r);
    uint8_t raw[PST_TRUSTSYNC_MAX];
    size_t len = 0;
    if (pst_armor_decode(PST_TRUSTSYNC_LABEL, (const char *)data, size, raw, sizeof raw, &len) ==
        PST_OK)
        (void)decode_canonical(raw, len, &r);
    return 0;
}
