#!/usr/bin/env python3
"""A 20 MiB message is delivered byte-identical, and neither node holds it
in memory: VmRSS of a and b, sampled every 50 ms from just before the send
until the receipt is in, stays within 8 MiB of each node's idle RSS measured
just before the send (VmHWM, reset through /proc/PID/clear_refs where the
kernel allows it, is reported too). Under ASan the RSS bound is skipped
(shadow memory and quarantine), the delivery is still checked."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

SIZE = 20 << 20
RSS_GROWTH_MAX_KIB = 8 * 1024


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def idle_rss(node):
    vals = []
    for _ in range(5):
        vals.append(node.rss_kib())
        time.sleep(0.05)
    return sorted(vals)[2]


def test(c):
    a, b = c.network_of(2, names=["a", "b"])
    harness.wait_mail_ready(c, [a], [b])
    harness.trust(c, b, a)
    # a small message first, so both nodes have run every code path once
    # (thread pool, SQLite pages, Maildir folders) before the idle RSS
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject="warm-up",
                                     body="x" * 100000)
    harness.wait_delivered(c, b, doc["message_id"])
    harness.wait_receipt(c, a, doc["message_id"], b)

    body = os.urandom(SIZE // 2).hex().encode()  # 20 MiB of text, lines of 76
    body = b"\n".join(body[i:i + 76] for i in range(0, len(body), 76))[:SIZE - 200]
    data = (b"From: a@it.example\nTo: b@it.example\nSubject: twenty mebibytes\n"
            b"Date: Sat, 28 Nov 2026 10:00:00 +0000\nMessage-ID: <big@it.example>\n\n" + body)
    path = harness.mail_write(c, data, "big.eml")
    idle = {n.name: idle_rss(n) for n in (a, b)}
    hwm_ok = {n.name: reset_hwm(n.pid) for n in (a, b)}
    t0 = time.monotonic()
    with harness.RssSampler([a, b], interval=0.05) as rs:
        rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], path=path)
        t_sent = time.monotonic()
        mid = doc["message_id"]
        copies = harness.wait_delivered(c, b, mid, timeout=60)
        t_deliv = time.monotonic()
        harness.wait_receipt(c, a, mid, b)
        t_rcpt = time.monotonic()
        rs.wait_next_sample()  # one more sample after the receipt
    got = harness.read_bytes(copies[0])
    want = (b"X-Postern-Sender: " + a.home.fingerprint.encode() +
            b"\nX-Postern-Message-Id: " + mid.encode() + b"\n" + data)
    check(got == want, f"the 20 MiB copy differs ({len(got)} bytes, want {len(want)})")
    check(doc["size"] > len(data), f"ciphertext size {doc['size']}")
    note(f"20 MiB ({len(data)} bytes, ciphertext {doc['size']}): send {t_sent - t0:.2f} s, "
         f"delivered {t_deliv - t_sent:.2f} s later, receipt {t_rcpt - t_sent:.2f} s after send")
    sanitized = harness.is_sanitized(c.posternd)
    for n, role in ((a, "sender"), (b, "recipient")):
        peak = rs.peak(n)
        hwm = status_kib(n.pid, "VmHWM") if hwm_ok[n.name] else None
        grow = peak - idle[n.name]
        note(f"{n.name} ({role}): idle RSS {idle[n.name]} KiB, sampled peak {peak} KiB "
             f"(+{grow} KiB, {len(rs.samples[n.name])} samples)"
             + (f", VmHWM since the send {hwm} KiB (+{hwm - idle[n.name]} KiB)" if hwm else ""))
        if sanitized:
            continue
        check(grow <= RSS_GROWTH_MAX_KIB,
              f"{n.name}'s RSS grew by {grow} KiB during the transfer (limit "
              f"{RSS_GROWTH_MAX_KIB} KiB)")
        # the high-water mark sees a peak between two samples
        check(hwm is None or hwm - idle[n.name] <= RSS_GROWTH_MAX_KIB,
              f"{n.name}'s VmHWM rose by {hwm - idle[n.name] if hwm else 0} KiB during the "
              f"transfer (limit {RSS_GROWTH_MAX_KIB} KiB)")
    if sanitized:
        note("posternd is built with ASan: RSS bound not checked")
    for n in (b, a):
        n.stop()
    harness.check_all_logs(c)


if __name__ == "__main__":
    harness.main(test, "mail_large")
