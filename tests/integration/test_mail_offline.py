#!/usr/bin/env python3
"""Offline ends. (1) b is stopped when a sends; a keeps re-putting the
notification; b, started later, finds it and fetches it. (2) a is stopped
after sending and before b looks: b's fetch fails and is retried (counted
fetch.retry.*), the message stays pending, and once a is back (same fetch
port) b gets it. Both end with a's verified receipt and one copy."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

FAST = ["--renotify", "1", "--inbox-poll", "1"]


def outbox_entry(c, a, mid, b):
    return harness.outbox_recipient(harness.mail_outbox(c, a.home, mid), mid, b.home.fingerprint)[1]


def test(c):
    seed, a, b = harness.mail_pair(c, FAST, FAST)

    # 1. recipient offline at send time
    b.stop()
    t0 = time.monotonic()
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject="while away",
                                     body="sent while b was down\n")
    mid1 = doc["message_id"]
    # a keeps the notification alive: at least two confirmed puts while b is down
    harness.poll(lambda: (outbox_entry(c, a, mid1, b) or {}).get("notify_count", 0) >= 2, 20,
                 "a to re-put the notification", a.log_tail, interval=0.1)
    r = outbox_entry(c, a, mid1, b)
    check(r["state"] == "notified" and r["notified"] > 0 and "receipt" not in r,
          f"a's outbox while b is down: {r}")
    check(harness.maildir_copies(b.home, mid1) == [], "b has the message while stopped")
    down = time.monotonic() - t0
    c.restart(b)
    t1 = time.monotonic()
    harness.wait_delivered(c, b, mid1, timeout=30)
    harness.wait_receipt(c, a, mid1, b)
    note(f"1. b down {down:.1f} s ({r['notify_count']} puts); delivered "
         f"{time.monotonic() - t1:.2f} s after b's restart")

    # 2. sender offline when the recipient tries
    b.stop()
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject="sender away",
                                     body="b tries while a is down\n")
    mid2 = doc["message_id"]
    harness.poll(lambda: (outbox_entry(c, a, mid2, b) or {}).get("notify_count", 0) >= 1, 20,
                 "a's notification to be confirmed", a.log_tail, interval=0.1)
    port_a = a.fetch_port
    a.stop()
    retries0 = sum(v for k, v in b.counters().items() if k.startswith("fetch.retry.")) \
        if b.alive() else 0
    c.restart(b)
    k = harness.wait_counter(b, "fetch.retry.", retries0 + 2, timeout=30, prefix=True)
    retry = {n: v for n, v in k.items() if n.startswith("fetch.retry.")}
    check(k.get("inbox.accepted", 0) >= 2, f"b did not accept the notification: {k}")
    doc = harness.mail_inbox(c, b.home)
    check(doc["pending"] == 1 and doc["failed"] == 0 and mid2 not in
          [m["id"] for m in doc["messages"]], f"b's inbox while a is down: {doc}")
    check(harness.maildir_copies(b.home, mid2) == [], "b has the message with a down")
    t2 = time.monotonic()
    c.restart(a)
    check(a.fetch_port == port_a, f"a's fetch port changed across the restart: {port_a} -> "
          f"{a.fetch_port} (its notifications name the old one)")
    harness.wait_delivered(c, b, mid2, timeout=40)
    harness.wait_receipt(c, a, mid2, b)
    note(f"2. b retried {retry} while a was down; delivered {time.monotonic() - t2:.2f} s "
         f"after a's restart")

    harness.check_delivered_once(c, b, [mid1, mid2])
    harness.stop_all(c, (b, a, seed))


if __name__ == "__main__":
    harness.main(test, "mail_offline")
