#!/usr/bin/env python3
"""A notification seen again after delivery is a duplicate, whatever its
stamp. s, a stranger to b, pays b's stamp; b delivers the message. b then
restarts (the stamp is spent), then three days later (libfaketime): the stamp is past its 2-day date
window, the message (7 days) is not, and s's notification is still in b's
slot. b must count it as a duplicate of the message it holds (and owe the
receipt again), never refuse it for its stamp (stamp_date) or count it as a
spent stamp (stamp_spent). (A new notification with an old stamp is still
refused as stamp_date: test_mail_hostile, class inbox-stamp.)"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

POW_BITS = 8
B_FLAGS = ["--pow-bits", str(POW_BITS), "--inbox-poll", "1"]


def start_later(c, node, offset):
    """node again on its home, its wall clock moved by offset."""
    harness.with_faketime(node, offset)
    node.spawn()
    node.wait_ready()
    return node


def test(c):
    seed = c.start(c.new_home("seed"), [])
    hs = c.new_home("s", "s@it.example")
    with open(hs.file("postern.conf"), "a") as f:
        f.write("hint_put_delay = 0\n")  # its notification must stay in b's slot
    s = c.start(hs, [seed])
    b = c.start(c.new_home("b", "b@it.example"), [seed], extra=B_FLAGS)
    for n in (seed, s, b):
        n.wait_joined()
    c.wait_key(seed, b.home, pred=lambda d: d.get("pow_bits") == POW_BITS)
    harness.wait_mail_ready(c, [s], [b])
    rc, doc, err = harness.mail_send(c, s.home, to=[b.home.fingerprint], subject="paid",
                                     body="a stranger's stamped message\n")
    mid = doc["message_id"]
    harness.wait_delivered(c, b, mid)
    harness.wait_receipt(c, s, mid, b)
    k0 = b.counters()
    check(k0.get("inbox.accepted", 0) == 1, f"b's counters: {k0}")
    folders = [os.path.basename(os.path.dirname(os.path.dirname(p)))
               for p in harness.maildir_copies(b.home, mid)]
    check(folders == [".Unknown"], f"the stranger's message is in {folders}")

    def rejected(k):
        return {n: v - k0.get(n, 0) for n, v in k.items()
                if n.startswith("rejected.inbox.") and v > k0.get(n, 0)}

    def looked_again():
        k = b.counters()
        return k if sum(rejected(k).values()) >= 1 else None

    # 1. restarted at once: the stamp is spent, the message held: a duplicate
    b.stop()
    c.restart(b)
    k = harness.poll(looked_again, 20, "b to look at s's notification again", b.log_tail)
    rej = rejected(k)
    note(f"b restarted: {rej}")
    check(rej.get("rejected.inbox.duplicate", 0) >= 1 and
          not any(n.startswith("rejected.inbox.stamp_") for n in rej),
          f"a re-notification of a message b holds (its stamp spent) was not a duplicate: {rej}")
    k0 = k

    # 2. three days later: the stamp is also past its date window
    b.stop()
    start_later(c, b, "+3d")
    k = harness.poll(looked_again, 20, "b to look at s's notification again", b.log_tail)
    rej = rejected(k)
    note(f"b three days later: {rej}")
    check(rej.get("rejected.inbox.duplicate", 0) >= 1,
          f"the notification of a message b holds was not a duplicate: {rej}")
    check("rejected.inbox.stamp_date" not in rej and "rejected.inbox.stamp_spent" not in rej,
          f"a re-notification of a message b holds was refused for its stamp: {rej}")
    check(len(harness.maildir_copies(b.home, mid)) == 1, "copies")
    for n in (b, s, seed):
        n.stop()
    harness.check_all_logs(c)


if __name__ == "__main__":
    harness.main(test, "mail_stale_stamp")
