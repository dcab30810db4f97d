#!/usr/bin/env python3
"""Another node on the sender's old port is no strike against the sender.
a notifies b and stops; x, a node of its own, takes a's fetch port (as a
second node on the same host may with fetch_port 0). b's fetches reach x,
which answers a signed not_found for a message it never had: nothing in it
is signed by a, so b must retry with back-off (fetch.retry.*), never give
the message up on three such answers, and get it once a is back on its
port."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

FAST = ["--renotify", "1", "--inbox-poll", "1"]
ATTEMPTS = 3  # the old strike limit (PST_INBOX_PROTO_FAILS_MAX)


def attempts(k):
    return sum(v for n, v in k.items()
               if n.startswith("fetch.retry.") or n.startswith("rejected.fetch."))


def test(c):
    seed, a, b = harness.mail_pair(c, FAST, FAST)

    b.stop()
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject="port taken",
                                     body="b must not give this up\n")
    mid = doc["message_id"]

    harness.wait_notified(c, a, mid, b)
    port_a = a.fetch_port
    a.stop()
    x = c.start(c.new_home("x", "x@it.example"), [seed], extra=["--fetch-port", str(port_a)])
    check(x.fetch_port == port_a, f"x did not get a's old port {port_a}: {x.fetch_port}")

    c.restart(b)
    t0 = time.monotonic()
    k = harness.poll(lambda: (lambda k: k if attempts(k) >= ATTEMPTS else None)(b.counters()),
                     60, f"b to try x {ATTEMPTS} times", b.log_tail, interval=0.2)
    strikes = {n: v for n, v in k.items() if n.startswith("rejected.fetch.")}
    retries = {n: v for n, v in k.items() if n.startswith("fetch.retry.")}
    check(not strikes, f"b counted x's answers as strikes against a: {strikes}")
    check(retries.get("fetch.retry.response_signer", 0) >= ATTEMPTS,
          f"x's answers not counted as retries: {retries}")
    check(k.get("inbox.failed", 0) == 0, f"b gave the message up: {k}")
    doc = harness.mail_inbox(c, b.home)
    check(doc["pending"] == 1 and doc["failed"] == 0, f"b's inbox while x has the port: {doc}")
    check(harness.maildir_copies(b.home, mid) == [], "b has the message from x")
    note(f"b tried x {attempts(k)} times in {time.monotonic() - t0:.1f} s: {retries}")

    x.stop()
    c.restart(a)
    check(a.fetch_port == port_a, f"a's fetch port changed: {port_a} -> {a.fetch_port}")
    t1 = time.monotonic()
    harness.wait_delivered(c, b, mid, timeout=90)
    harness.wait_receipt(c, a, mid, b)
    note(f"delivered {time.monotonic() - t1:.1f} s after a is back")
    check(len(harness.maildir_copies(b.home, mid)) == 1, "copies")
    doc = harness.mail_inbox(c, b.home)
    check(doc["delivered"] == 1 and doc["failed"] == 0, f"b's inbox: {doc}")
    for n in (b, a, seed):
        n.stop()
    harness.check_all_logs(c)


if __name__ == "__main__":
    harness.main(test, "mail_port_taken")
