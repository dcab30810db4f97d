#!/usr/bin/env python3
"""The author cannot forge the recipient node's trace fields (issue 17).

a sends b messages whose header hides extra X-Postern-Sender and
X-Postern-Message-Id fields behind bare CRs, mixed line endings, odd case,
a space before the colon, a folded field, NUL bytes, and a header section
that never ends (bigger than one 64 KiB chunk of the fetch). Each stored
copy in b's Maildir has LF line endings only, no NUL, the NULs counted in
X-Postern-Nul-Replaced, and Python's email package (policy.default) finds
exactly one X-Postern-Sender, a's real fingerprint, and one
X-Postern-Message-Id, the real id; the author's fields are there renamed
X-Original-X-Postern-*."""

import email
import email.policy
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402


def stored(c, b, mid):
    copies = harness.wait_delivered(c, b, mid)
    check(len(copies) == 1 and copies[0].startswith(b.home.file("Maildir/new/")),
          f"copies {copies}")
    return harness.read_bytes(copies[0])


def clean(data):
    check(b"\r" not in data, f"a CR in the stored copy: {data[:300]!r}")
    check(b"\x00" not in data, f"a NUL in the stored copy: {data[:300]!r}")


def trace_fields(data, fa, mid):
    msg = email.message_from_bytes(data, policy=email.policy.default)
    senders = msg.get_all("X-Postern-Sender")
    ids = msg.get_all("X-Postern-Message-Id")
    check(senders == [fa], f"X-Postern-Sender fields {senders}, want only [{fa}]")
    check(ids == [mid], f"X-Postern-Message-Id fields {ids}, want only [{mid}]")
    return msg


def test(c):
    a, b = c.network_of(2, names=["a", "b"])
    harness.wait_mail_ready(c, [a], [b])
    harness.trust(c, b, a)
    fa, fb = a.home.fingerprint, b.home.fingerprint
    forged = harness.random_fingerprint()

    # 1. bare CR, mixed endings, case, a folded field, a space before the
    # colon (a's node writes it "Name:", docs/MAIL.md), a NUL in the body (a's
    # own node refuses one in the header: the unit tests cover that)
    msg = (b"From: a@it.example\r\n"
           b"To: b@it.example\n"
           b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
           b"Message-ID: <trace-1@it.example>\r\n"
           b"Subject: bare cr\rX-Postern-Sender: " + forged.encode() + b"\r\n"
           b"MIME-Version: 1.0\rx-postern-message-id: " + b"0" * 64 + b"\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"X-Postern-Folded: first\r\n\tX-Postern-Sender: folded " + forged.encode() + b"\r\n"
           b"X-POSTERN-SENDER : " + forged.encode() + b"\r\n"
           b"\r\n"
           b"line one\rline two\nline three\r\n"
           b"nul\x00here\r\n"
           b"X-Postern-Sender: in the body, harmless\r\n")
    rc, doc, err = harness.mail_send(c, a.home, to=[fb], path=harness.mail_write(c, msg))
    mid = doc["message_id"]
    data = stored(c, b, mid)
    m = trace_fields(data, fa, mid)
    clean(data)
    head = (b"X-Postern-Sender: " + fa.encode() + b"\n"
            b"X-Postern-Message-Id: " + mid.encode() + b"\n"
            b"X-Postern-Nul-Replaced: 1\n")
    want = head + (b"From: a@it.example\n"
                   b"To: b@it.example\n"
                   b"Date: Sat, 28 Nov 2026 10:00:00 +0000\n"
                   b"Message-ID: <trace-1@it.example>\n"
                   b"Subject: bare cr\nX-Original-X-Postern-Sender: " + forged.encode() + b"\n"
                   b"MIME-Version: 1.0\nX-Original-x-postern-message-id: " + b"0" * 64 + b"\n"
                   b"Content-Type: text/plain; charset=utf-8\n"
                   b"X-Original-X-Postern-Folded: first\n\tX-Postern-Sender: folded " +
                   forged.encode() + b"\n"
                   b"X-Original-X-POSTERN-SENDER: " + forged.encode() + b"\n"
                   b"\n"
                   b"line one\nline two\nline three\n"
                   b"nul\xef\xbf\xbdhere\n"
                   b"X-Postern-Sender: in the body, harmless\n")
    check(data == want, f"stored copy differs:\n got  {data!r}\n want {want!r}")
    check(m.get_all("X-Postern-Nul-Replaced") == ["1"], "the NUL marker")
    check(m["Subject"] == "bare cr", f"subject {m['Subject']!r}")
    check(m.get_all("X-Original-X-Postern-Sender") == [forged, forged], "renamed forgeries")
    note(f"bare-CR/mixed message {mid[:8]}: one X-Postern-Sender, {len(data)} bytes, LF only")

    # 2. a header section that never ends, in bare CRs and LFs alternately,
    # larger than a 64 KiB fetch chunk (the filter sees its chunk seams)
    lines = [b"From: a@it.example\n", b"Date: Sat, 28 Nov 2026 10:00:00 +0000\n",
             b"Message-ID: <trace-2@it.example>\n", b"Subject: endless\r"]
    for i in range(3000):
        lines.append(b"X-Postern-Sender: " + forged.encode() + (b"\r" if i % 2 else b"\n"))
        lines.append(b"x-Postern-Message-ID: %d\r\n" % i)
    endless = b"".join(lines)
    check(len(endless) > 3 * 65536 // 2, f"endless header only {len(endless)} bytes")
    rc, doc, err = harness.mail_send(c, a.home, to=[fb], path=harness.mail_write(c, endless))
    mid2 = doc["message_id"]
    data = stored(c, b, mid2)
    trace_fields(data, fa, mid2)
    clean(data)
    names = [ln.split(b":", 1)[0].strip().lower() for ln in data.split(b"\n")[2:] if ln]
    check(not any(re.match(rb"x-postern-", nm) for nm in names),
          "an author's X-Postern-* field kept its name")
    check(data.count(b"\nX-Original-X-Postern-Sender: ") == 3000 and
          data.count(b"\nX-Original-x-Postern-Message-ID: ") == 3000,
          "not every field renamed")
    note(f"endless header {mid2[:8]}: {len(endless)} bytes in, 6,000 fields renamed")

    for mid_ in (mid, mid2):
        harness.wait_receipt(c, a, mid_, b)
    k = b.counters()
    check(not any(n.startswith("rejected.") for n in k), f"b rejected something: {k}")
    check(harness.maildir_tmp(b.home) == [], "files left in tmp/")
    for n in (b, a):
        n.stop()
    harness.check_all_logs(c)


if __name__ == "__main__":
    harness.main(test, "mail_trace")
