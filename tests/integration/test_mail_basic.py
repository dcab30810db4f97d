#!/usr/bin/env python3
"""Mail, the basic path: a sends to b by fingerprint and by address. b's
Maildir holds copies byte-identical to what a sent, plus only what
docs/MAIL.md says the nodes add or change (From/Date/Message-ID by the
sender when missing, X-Postern-Sender and X-Postern-Message-Id prepended by
the recipient, an author's own X-Postern-* renamed, every line ending LF);
CRLF and LF inputs. a's
outbox shows every receipt verified; b's `inbox --json` lists each message
and `read` prints it exactly."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_USAGE, check, note  # noqa: E402

DATE_RE = rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [ 0-9]?\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}"
MSGID_RE = rb"<[0-9a-f]{32}@it\.example>"

# CRLF, every header present, a folded field, a body that a careless
# transport would change (dot line, "From " line, trailing blanks, 8-bit,
# bare CR, no final line break)
CRLF_MSG = (b"From: Alice <a@it.example>\r\n"
            b"To: Bob <b@it.example>\r\n"
            b"Subject: crlf =?UTF-8?B?w7xiZXI=?=\r\n"
            b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
            b"Message-ID: <crlf-1@it.example>\r\n"
            b"X-Folded: first\r\n\tsecond line of the field\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"\r\n"
            b"line one\r\n"
            b".\r\n"
            b"From the start of a line\r\n"
            b"trailing blanks   \t\r\n"
            b"\xc3\xbc\xc3\xa9 8-bit\r\n"
            b"bare\rcr\r\n"
            b"\r\n\r\n"
            b"no final line break")
# LF, no From/Date/Message-ID: the sender's node adds them at the end of the
# header, in LF
LF_MSG = (b"To: b@it.example\n"
          b"Subject: lf test\n"
          b"X-Postern-Sender: forged-by-the-author\n"
          b"x-postern-message-id: also-forged\n"
          b"\n"
          b"body\n"
          b"> quoted\n")
# no header at all: the added fields and an empty line go before it
BARE_MSG = b"just a line of text, no header\n\nand a second paragraph\n"


def prefix(sender_fp, msg_id, eol):
    return (b"X-Postern-Sender: " + sender_fp.encode() + eol +
            b"X-Postern-Message-Id: " + msg_id.encode() + eol)


def added_fields(copy, at, eol):
    """Checks From/Date/Message-ID as the sender's node adds them at offset
    at of copy; returns (bytes of the three lines)."""
    m = re.compile(b"From: a@it\\.example" + re.escape(eol) + b"Date: " + DATE_RE +
                   re.escape(eol) + b"Message-ID: " + MSGID_RE + re.escape(eol)).match(copy, at)
    check(m is not None, f"no From/Date/Message-ID added at offset {at}: {copy[at:at + 200]!r}")
    return m.group(0)


def test(c):
    a, b = c.network_of(2, names=["a", "b"])
    harness.wait_mail_ready(c, [a], [b], by_address=True)
    harness.trust(c, b, a)  # a's mail goes to b's INBOX whatever b's trust gate does
    fa, fb = a.home.fingerprint, b.home.fingerprint
    sent = []  # (msg_id, expected copy, subject)

    # 1. CRLF, by fingerprint: the copy is the input with two lines on top,
    # its CRLFs and its bare CR turned into LF
    t0 = time.monotonic()
    path = harness.mail_write(c, CRLF_MSG, "crlf.eml")
    rc, doc, err = harness.mail_send(c, a.home, to=[fb], path=path)
    mid = doc["message_id"]
    check(re.fullmatch("[0-9a-f]{64}", mid), f"message id {mid!r}")
    check([(r["fingerprint"], r["kind"]) for r in doc["recipients"]] == [(fb, "to")],
          f"send --json recipients {doc['recipients']}")
    check(doc["subject"] == "crlf über", f"subject as displayed: {doc['subject']!r}")
    copies = harness.wait_delivered(c, b, mid)
    dt = time.monotonic() - t0
    check(len(copies) == 1, f"copies {copies}")
    got = harness.read_bytes(copies[0])
    want = prefix(fa, mid, b"\n") + re.sub(rb"\r\n?", b"\n", CRLF_MSG)
    check(got == want, f"CRLF copy differs:\n got  {got!r}\n want {want!r}")
    check(copies[0].startswith(b.home.file("Maildir/new/")) or
          copies[0].startswith(b.home.file("Maildir/cur/")), f"copy outside the INBOX {copies}")
    check(harness.mode_of(copies[0]) == 0o600, f"mode {oct(harness.mode_of(copies[0]))}")
    sent.append((mid, want, "crlf über"))
    note(f"CRLF message {mid[:8]} ({len(CRLF_MSG)} bytes) delivered in LF in {dt:.2f} s")

    # 2. LF, by address, header fields added by the sender's node; the
    # author's own X-Postern-* fields renamed by the recipient's
    path = harness.mail_write(c, LF_MSG, "lf.eml")
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.address], path=path)
    mid = doc["message_id"]
    check(doc["recipients"][0]["fingerprint"] == fb and
          doc["recipients"][0]["query"] == b.home.address, f"by address: {doc['recipients']}")
    got = harness.read_bytes(harness.wait_delivered(c, b, mid)[0])
    head = prefix(fa, mid, b"\n")
    hdr_in = (b"To: b@it.example\nSubject: lf test\n"
              b"X-Original-X-Postern-Sender: forged-by-the-author\n"
              b"X-Original-x-postern-message-id: also-forged\n")
    check(got.startswith(head + hdr_in), f"LF copy head differs:\n got  {got[:400]!r}\n"
          f" want {(head + hdr_in)!r}")
    added = added_fields(got, len(head + hdr_in), b"\n")
    want = head + hdr_in + added + b"\nbody\n> quoted\n"
    check(got == want, f"LF copy differs:\n got  {got!r}\n want {want!r}")
    check(b"\r" not in got, "a CR in the LF copy")
    sent.append((mid, want, "lf test"))
    note(f"LF message {mid[:8]} by address: added {added!r}")

    # 3. no header section at all
    path = harness.mail_write(c, BARE_MSG, "bare.eml")
    rc, doc, err = harness.mail_send(c, a.home, to=[fb], path=path)
    mid = doc["message_id"]
    got = harness.read_bytes(harness.wait_delivered(c, b, mid)[0])
    head = prefix(fa, mid, b"\n")
    added = added_fields(got, len(head), b"\n")
    want = head + added + b"\n" + BARE_MSG
    check(got == want, f"headerless copy differs:\n got  {got!r}\n want {want!r}")
    sent.append((mid, want, ""))

    # 4. a's outbox: every recipient fetched, receipt verified, body gone
    for mid, _, subject in sent:
        m, r = harness.wait_receipt(c, a, mid, b)
        check(r["kind"] == "to" and r["fetched"] > 0 and r["serve_count"] >= 1 and
              r["receipt"]["stored_at"] <= r["receipt"]["created"] and
              len(r["receipt"]["bytes"]) > 300, f"outbox recipient {r}")
        check(m["subject"] == subject, f"outbox subject {m['subject']!r} != {subject!r}")
        harness.poll(lambda: harness.mail_outbox(c, a.home, mid)["messages"][0]["state"] == "done",
                     10, f"{mid[:8]} to be done in a's outbox", a.log_tail)
    check(not os.path.exists(a.home.file(f"outbox/{sent[0][0]}")),
          "a kept the body after the only receipt")

    # 5. b's inbox lists them; read prints each exactly
    doc = harness.mail_inbox(c, b.home)
    listed = {m["id"]: m for m in doc["messages"]}
    check(doc["delivered"] == len(sent) and doc["pending"] == 0 and doc["failed"] == 0,
          f"inbox totals {doc}")
    check(list(listed) == [s[0] for s in sent], f"inbox order/ids {list(listed)}")
    for mid, want, subject in sent:
        m = listed[mid]
        check(m["from"] == fa and m["folder"] == "INBOX" and m["size"] == len(want) and
              m["subject"] == subject and m["received"] > 0 and m["seen"] is False,
              f"inbox entry {m} (want size {len(want)}, subject {subject!r})")
        check(m["address"] == "a@it.example" and m["address_listed"] is True,
              f"inbox sender address {m}")
        for q in (mid, mid[:8], mid[:12].upper()):
            rc, out, err = harness.cli_raw(c, ["read", "--home", b.home.path, q])
            check(rc == 0 and out == want, f"read {q}: exit {rc}, {len(out)} bytes {err}")
        rc, jd, err = c.cli_json(["read", "--home", b.home.path, mid[:8]])
        check(rc == 0 and jd["id"] == mid and jd["folder"] == "INBOX" and jd["from"] == fa and
              jd["path"] == harness.maildir_copies(b.home, mid)[0], f"read --json {jd} {err}")
    rc, doc, err = c.cli_json(["inbox", "--home", b.home.path, "--folder", "INBOX"])
    check(rc == 0 and doc["folder"] == "INBOX" and len(doc["messages"]) == len(sent),
          f"inbox --folder INBOX: {rc} {doc}")
    rc, out, err = c.cli(["read", "--home", b.home.path, "0" * 64])
    check(rc == 1 and err, f"read of an unknown id: exit {rc} {err!r}")
    rc, out, err = c.cli(["read", "--home", b.home.path, "abc"])
    check(rc == EX_USAGE, f"read of a 3-digit prefix: exit {rc} {err!r}")
    k = b.counters()
    check(k.get("inbox.delivered") == len(sent) and k.get("inbox.accepted") == len(sent) and
          k.get("inbox.receipts_acked") == len(sent), f"b's counters {k}")
    check(not any(n.startswith("rejected.") for n in k), f"b rejected something: {k}")
    check(harness.maildir_tmp(b.home) == [], f"files left in tmp/: {harness.maildir_tmp(b.home)}")
    # a sent nothing to itself; b sent nothing
    check(harness.mail_inbox(c, a.home)["delivered"] == 0, "a's inbox is not empty")
    for n in (b, a):
        n.stop()
    harness.check_all_logs(c)


if __name__ == "__main__":
    harness.main(test, "mail_basic")
