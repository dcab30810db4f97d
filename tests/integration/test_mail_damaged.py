#!/usr/bin/env python3
"""Mail, what the sender keeps it checks (issue 17). b is down when a sends;
one byte of the queued body in a's DIR/outbox/<id> is flipped; b comes back
and fetches. a must hash the body before it sends a header and refuse it
(retryable "internal"), so b receives no byte of garbage and stores nothing:
a's counters show no completed stream, b's no hash mismatch (a protocol
strike), only retries. a says so: a log line, outbox.body_damaged, and
`postern outbox` marks the message. Once the byte is restored, `postern
outbox retry` and `postern inbox retry` get it delivered and the mark goes."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

FAST = ["--renotify", "1", "--inbox-poll", "1"]


def flip(path, at):
    with open(path, "r+b") as f:
        f.seek(at)
        old = f.read(1)
        f.seek(at)
        f.write(bytes([old[0] ^ 0x20]))
    return old


def test(c):
    seed, a, b = harness.mail_pair(c, FAST, FAST)
    fb = b.home.fingerprint

    b.stop()
    body = "a body that must arrive intact or not at all\n" * 2000
    _, doc, _ = harness.mail_send(c, a.home, to=[fb], subject="damaged", body=body)
    mid = doc["message_id"]
    path = a.home.file(f"outbox/{mid}")
    size = os.path.getsize(path)
    old = flip(path, size // 2)
    note(f"flipped byte {size // 2} of {size} in a's outbox body {mid[:8]}")

    c.restart(b)
    ka = harness.wait_counter(a, "outbox.body_damaged", 1, timeout=30)
    kb = harness.wait_counter(b, "fetch.retry.status_internal", 1, timeout=30)
    check(ka.get("fetch.served", 0) == 0, f"a streamed a damaged body: {ka}")
    check(ka.get("rejected.fetch.body_damaged", 0) >= 1, f"a's refusal is not counted: {ka}")
    strikes = {n: v for n, v in kb.items() if n.startswith("rejected.fetch.")}
    check(not strikes, f"b received bytes it had to refuse (garbage reached it): {strikes}")
    check(not harness.maildir_copies(b.home, mid) and not harness.maildir_tmp(b.home),
          f"b stored something: {harness.maildir_all(b.home)}")
    check("is damaged" in a.log_text() and mid[:16] in a.log_text(),
          "a's log does not say the body is damaged:\n" + a.log_tail())
    m, r = harness.outbox_recipient(harness.mail_outbox(c, a.home, mid), mid, fb)
    check(m.get("body_damaged", 0) > 0, f"a's outbox does not mark the body damaged: {m}")
    check("damaged" in r.get("why", ""), f"a's outbox does not say why b waits: {r}")
    rc, out, err = c.cli(["outbox", mid, "--home", a.home.path])
    check(rc == 0 and "BODY DAMAGED" in out, f"postern outbox (text) on a: {rc} {out} {err}")
    rc, out, err = c.cli(["inbox", "--home", b.home.path])
    check(rc == 0 and "not delivered" in out and mid[:8] in out and "status_internal" in out,
          f"postern inbox (text) on b does not say why the message waits: {rc} {out} {err}")
    note("b's inbox: " + [ln for ln in out.splitlines() if ln.startswith(mid[:8])][0])
    note(f"a refused {ka.get('rejected.fetch.body_damaged')} fetch(es) of the damaged body; "
         f"b retried: {kb.get('fetch.retry.status_internal')}")

    # the user restores the file (from a backup): served again, mark cleared
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(old)
    rc, out, err = c.cli(["outbox", "retry", mid, "--home", a.home.path])
    check(rc == 0 and fb in out, f"postern outbox retry: {rc} {out} {err}")
    t0 = time.monotonic()
    rc, out, err = c.cli(["inbox", "retry", mid[:10], "--home", b.home.path])
    check(rc == 0, f"postern inbox retry: {rc} {out} {err}")
    copies = harness.wait_delivered(c, b, mid, timeout=30)
    harness.wait_receipt(c, a, mid, b)
    got = harness.read_bytes(copies[0])
    check(got.endswith(body.encode()), "the delivered copy does not end with the body sent")
    m, _ = harness.outbox_recipient(harness.mail_outbox(c, a.home, mid), mid, fb)
    check("body_damaged" not in m, f"the damage mark stayed after the repair: {m}")
    kb = b.counters()
    check(kb.get("inbox.failed", 0) == 0 and
          not [n for n in kb if n.startswith("rejected.fetch.")], f"b's counters: {kb}")
    note(f"restored: delivered {time.monotonic() - t0:.2f} s after 'inbox retry'")


if __name__ == "__main__":
    harness.main(test, "mail_damaged")
