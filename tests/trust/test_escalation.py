#!/usr/bin/env python3
"""`send --pow auto` escalation (docs/CONFIG.md pow_escalate).

s has r as a contact, so `--pow auto` sends without a stamp; but r does not
know s. r ignores the stampless notification (rejected.inbox.no_stamp).
After `--pow-escalate 3` seconds without a receipt, s mints a stamp of the
bits r's key record asks for (the default, 20) over the same sealed bytes
and puts the notification again: r takes it into .Unknown, and s gets its
receipt. A `--pow never` message from s is never escalated.
"""

import time

import trustlib as tl
from trustlib import check, harness, note

ESCALATE_S = 3


def test(c):
    t0 = time.monotonic()
    seed = c.start(c.new_home("seed"), [])
    nodes = tl.start_all(c, ["r", "s"], seed,
                         {"r": tl.FAST, "s": tl.FAST + ["--pow-escalate", str(ESCALATE_S)]})
    r, s = nodes["r"], nodes["s"]
    seed.wait_joined()
    harness.wait_mail_ready(c, [s], [r])
    bits = c.key_get(s.home, r.home.fingerprint)[1]["pow_bits"]
    check(bits == 20, f"r publishes {bits} bits, expected the default 20")
    tl.trust_set(c, s, r, "known")

    ts = time.monotonic()
    doc = tl.send(c, s, r, "auto", "escalated")
    mid = doc["message_id"]
    check(doc["recipients"][0]["stamp_bits"] == 0, f"s stamped a contact: {doc}")
    never = tl.send(c, s, r, "never", "never escalated")["message_id"]
    tl.wait_rejected(r, "no_stamp", 2)
    t_rej = time.monotonic() - ts
    check(harness.maildir_all(r.home) == [], "r took a stampless stranger's mail")

    paths = harness.wait_delivered(c, r, mid, timeout=40)
    t_dlv = time.monotonic() - ts
    check(tl.folder_of(r.home, paths[0]) == ".Unknown", f"escalated message in {paths}")
    harness.wait_receipt(c, s, mid, r)
    ks, kr = s.counters(), r.counters()
    check(ks.get("outbox.escalated", 0) == 1, f"s escalated {ks.get('outbox.escalated')} times")
    check(kr.get("inbox.accepted", 0) == 1 and kr.get("rejected.inbox.no_stamp") == 2,
          f"r's counters: {kr}")
    # the --pow never message got its puts but no stamp
    m, rn = harness.outbox_recipient(harness.mail_outbox(c, s.home, never), never,
                                     r.home.fingerprint)
    check(rn["state"] == "notified" and harness.maildir_copies(r.home, never) == [],
          f"the --pow never message: {rn}")
    note(f"rejected (no stamp) after {t_rej:.2f} s; escalated ({bits} bits) and delivered into "
         f".Unknown {t_dlv:.2f} s after the send (pow_escalate {ESCALATE_S} s); "
         f"total {time.monotonic() - t0:.1f} s")
    for nd in (s, r, seed):
        nd.stop()


if __name__ == "__main__":
    harness.main(test, "trust_escalation")
