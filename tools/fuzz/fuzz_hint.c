/* libFuzzer target: Hint decoder (a notification handed to a fetch
 * endpoint), then the notification decoder on what it carries, as the
 * recipient's node runs them. Whatever decodes must re-encode to exactly
 * the input (canonical_harness.h). */
#include <stdint.h>
#include <stdlib.h>

#include "canonical_harness.h"
#include "pst_hint.h"
#include "pst_notify.h"

FZ_DEFINE_CANONICAL(decode_canonical, pst_hint, PST_HINT_MAX)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static pst_hint h;
    if (!decode_canonical(data, size, &h))
        return 0;
    if (h.notification_len == 0 || h.notification_len > PST_NOTIFY_MAX)
        abort(); /* the decoder's own bound */
    pst_notify outer;
    (void)pst_notify_decode(h.notification, h.notification_len, &outer);
    return 0;
}
