#!/usr/bin/env python3
"""A sender that comes back is fetched from at once. a notifies b and stops;
b's fetches fail and it backs off. (1) a comes back on the same port and
re-puts its notification (the same bytes b has already seen): b must try at
once, not at its next back-off time. (2) a comes back on a NEW fetch port:
its re-puts still name the old one, but a publishes its new key record at
start, and b, whose fetches at the old port fail, looks a's record up again
and fetches from the new port. Both end with a's receipt and one copy."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

SENDER = ["--renotify", "1"]
RECIPIENT = ["--inbox-poll", "1"]
FAILS = 3  # b's back-off after 3 failures: 5, 10, then 20 s to the next try
NEXT_TRY_S = 20  # b's own next try after its third failure


def failures(k):
    return sum(v for n, v in k.items() if n.startswith("fetch.retry."))


def free_port():
    """A free TCP port below the kernel's ephemeral range (32768-60999), which
    every other test takes its ports from (port 0): no parallel test can be
    handed this one between our check and a's bind."""
    import random
    for _ in range(100):
        port = random.randrange(20000, 32000)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise harness.TestFailure("no free port in 20000-32000")


def send_while_away(c, a, b, subject):
    """a sends to stopped b, waits for a confirmed notification, stops;
    then b starts and fails FAILS times. Returns (msg id, a's old port,
    b's counters, when b's last failure was seen)."""
    b.stop()
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject=subject,
                                     body=f"{subject}\n")
    mid = doc["message_id"]

    harness.wait_notified(c, a, mid, b)
    port = a.fetch_port
    a.stop()
    f0 = failures(b.counters()) if b.alive() else 0
    c.restart(b)
    k = harness.wait_counter(b, "fetch.retry.", f0 + FAILS, timeout=40, prefix=True)
    t_fail = time.monotonic()
    check(harness.maildir_copies(b.home, mid) == [], "b has the message while a is down")
    return mid, port, k, t_fail


def test(c):
    seed, a, b = harness.mail_pair(c, SENDER, RECIPIENT)

    # 1. a comes back on its port: its re-put (seen before) wakes b's job
    mid1, port1, k1, t_fail = send_while_away(c, a, b, "back on the same port")
    c.restart(a)
    check(a.fetch_port == port1, f"a's fetch port changed: {port1} -> {a.fetch_port}")
    t_back = time.monotonic()
    harness.wait_delivered(c, b, mid1, timeout=30)
    dt = time.monotonic() - t_back
    k = b.counters()
    note(f"1. b failed {FAILS} times (then 20 s of back-off); delivered {dt:.1f} s after a's "
         f"restart, {time.monotonic() - t_fail:.1f} s after b's last failure; reput_wakes "
         f"{k.get('inbox.reput_wakes', 0)}")
    # what woke b is a's re-put, not b's own back-off (its next try comes
    # NEXT_TRY_S after its last failure): counted, and sooner than that
    check(k.get("inbox.reput_wakes", 0) >= 1, f"no reput wake counted: {k}")
    since_fail = time.monotonic() - t_fail
    check(since_fail < NEXT_TRY_S - 1,
          f"b fetched {since_fail:.1f} s after its last failure: its back-off, not a's re-put")
    harness.wait_receipt(c, a, mid1, b)

    # 2. a comes back on a new port: b looks a's key record up again
    mid2, port2, k2, t_fail = send_while_away(c, a, b, "back on a new port")
    new_port = free_port()
    c.restart(a, extra=SENDER + ["--fetch-port", str(new_port)])
    check(a.fetch_port == new_port and new_port != port2,
          f"a's fetch port: {port2} -> {a.fetch_port} (asked for {new_port})")
    t_back = time.monotonic()
    harness.wait_delivered(c, b, mid2, timeout=30)
    dt = time.monotonic() - t_back
    harness.wait_receipt(c, a, mid2, b)
    k = b.counters()
    note(f"2. a moved {port2} -> {new_port}; delivered {dt:.1f} s after its restart; b's "
         f"sender_lookups {k.get('inbox.sender_lookups', 0)}, sender_moved "
         f"{k.get('inbox.sender_moved', 0)}")
    check(k.get("inbox.sender_lookups", 0) >= 1, f"b never looked a up again: {k}")
    check(k.get("inbox.failed", 0) == 0, f"b gave a message up: {k}")

    harness.check_delivered_once(c, b, [mid1, mid2])
    harness.stop_all(c, (b, a, seed))


if __name__ == "__main__":
    harness.main(test, "mail_sender_back")
