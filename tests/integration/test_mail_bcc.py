#!/usr/bin/env python3
"""Bcc. a sends one message to b (To), c (Cc) and d (Bcc), once from a file
that carries Bcc:/Resent-Bcc: fields of its own and once built from
--subject/--body. All three receive it; no copy has a Bcc field or d's
address or fingerprint anywhere; the three copies are the same bytes; a's
outbox lists all three recipients with their kind.

Then a file whose lines end in bare CRs (and one CRLF), with a folded
`bcc:`, a `BCC :` as the last field and a `From:` after a bare CR: a's node
must split lines where the recipient's node and mail clients do, so every
copy parses (Python's email package, policy default) with no Bcc field,
nothing of d in its bytes, and exactly one From, the author's."""

import email
import email.policy
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402


def header_names(copy):
    end = copy.find(b"\r\n\r\n")
    end = copy.find(b"\n\n") if end < 0 else end
    head = copy[:end if end >= 0 else len(copy)]
    return [ln.split(b":", 1)[0].strip().lower() for ln in re.split(rb"\r?\n", head)
            if ln and ln[:1] not in (b" ", b"\t")]


def bare_cr(c, a, b, cc, d, secrets):
    """A bare CR ends a line for the recipient's node (which stores LF) and
    for every mail client: a's node must remove and notice the same fields."""
    da, dfp = d.home.address.encode(), d.home.fingerprint.encode()
    msg = (b"To: b@it.example\r"
           b"Cc: c@it.example\r"
           b"bcc: " + da + b",\r " + dfp + b"@postern.invalid\r"
           b"Subject: bare cr bcc\r"
           b"From: a@it.example\r"
           b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
           b"Message-ID: <bcc-cr-1@it.example>\r"
           b"BCC : " + da + b"\r"
           b"\r"
           b"to b and c, in bare CRs\r")
    path = harness.mail_write(c, msg, "bcc-cr.eml")
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], cc=[cc.home.address],
                                     bcc=[d.home.fingerprint], path=path)
    check(doc["bcc_removed"] == 2, f"bcc_removed {doc['bcc_removed']} (a folded bcc and a BCC)")
    mid = doc["message_id"]
    copies = {}
    for n in (b, cc, d):
        paths = harness.wait_delivered(c, n, mid)
        check(len(paths) == 1, f"{n.name} has {paths}")
        copies[n.name] = data = harness.read_bytes(paths[0])
        for s in secrets:
            check(s.search(data) is None, f"{n.name}'s copy names the Bcc recipient "
                  f"({s.pattern!r}):\n{data!r}")
        msg = email.message_from_bytes(data, policy=email.policy.default)
        keys = [k.lower() for k in msg.keys()]
        check("bcc" not in keys and "resent-bcc" not in keys,
              f"{n.name}'s copy has a Bcc field: {keys}")
        froms = msg.get_all("From") or []
        check(len(froms) == 1 and froms[0].addresses[0].addr_spec == "a@it.example",
              f"{n.name}'s copy has From fields {froms}:\n{data!r}")
        for k in ("to", "cc", "subject", "date", "message-id"):
            check(keys.count(k) == 1, f"{n.name}'s copy: {k} {keys.count(k)} times: {keys}")
        check(str(msg["Subject"]) == "bare cr bcc" and msg["Message-ID"] == "<bcc-cr-1@it.example>",
              f"{n.name}'s copy: fields {dict(msg.items())}")
        check(msg.get_content() == "to b and c, in bare CRs\n" and not msg.defects,
              f"{n.name}'s copy: body {msg.get_content()!r}, defects {msg.defects}")
    check(copies["b"] == copies["c"] == copies["d"], "the three copies differ")
    for n in (b, cc, d):
        harness.wait_receipt(c, a, mid, n)
    note(f"{mid[:8]}: bare-CR Bcc removed, one From; {len(copies['b'])} bytes")


def test(c):
    a, b, cc, d = c.network_of(4, names=["a", "b", "c", "d"])
    harness.wait_mail_ready(c, [a], [b, cc, d], by_address=True)
    for n in (b, cc, d):
        harness.trust(c, n, a)
    # d's address as a whole word (a Message-ID such as <...bad@it.example>
    # contains the bytes "d@it.example"), and d's fingerprint anywhere
    secrets = [re.compile(rb"(?<![A-Za-z0-9._%+-])" + re.escape(d.home.address.encode()), re.I),
               re.compile(re.escape(d.home.fingerprint.encode()), re.I)]
    msg = (b"From: a@it.example\r\n"
           b"To: b@it.example\r\n"
           b"Cc: c@it.example\r\n"
           b"Bcc: d@it.example,\r\n " + d.home.fingerprint.encode() + b"@postern.invalid\r\n"
           b"Subject: bcc test\r\n"
           b"Resent-Bcc: d@it.example\r\n"
           b"Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
           b"Message-ID: <bcc-1@it.example>\r\n"
           b"\r\n"
           b"to b, cc c, and someone else\r\n")
    path = harness.mail_write(c, msg, "bcc.eml")
    sends = []
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], cc=[cc.home.address],
                                     bcc=[d.home.fingerprint], path=path)
    check(doc["bcc_removed"] == 2, f"bcc_removed {doc['bcc_removed']} (a Bcc and a Resent-Bcc)")
    sends.append(doc)
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.address], cc=[cc.home.fingerprint],
                                     bcc=[d.home.address], subject="built bcc test",
                                     body="hello b and c\n")
    sends.append(doc)
    want_kinds = {b.home.fingerprint: "to", cc.home.fingerprint: "cc", d.home.fingerprint: "bcc"}
    for doc in sends:
        mid = doc["message_id"]
        got = {r["fingerprint"]: r["kind"] for r in doc["recipients"]}
        check(got == want_kinds, f"send --json recipients {doc['recipients']}")
        copies = {}
        for n in (b, cc, d):
            paths = harness.wait_delivered(c, n, mid)
            check(len(paths) == 1, f"{n.name} has {paths}")
            copies[n.name] = harness.read_bytes(paths[0])
        for name, data in copies.items():
            names = header_names(data)
            check(b"bcc" not in names and b"resent-bcc" not in names,
                  f"{name}'s copy has a Bcc field: {names}")
            for s in secrets:
                check(s.search(data) is None, f"{name}'s copy names the Bcc recipient "
                      f"({s.pattern!r}):\n{data!r}")
        check(copies["b"] == copies["c"] == copies["d"], "the three copies differ")
        # the To/Cc lines are those of the input (file) or built from --to/--cc
        names = header_names(copies["b"])
        check(names.count(b"to") == 1 and names.count(b"cc") == 1, f"header fields {names}")
        for n in (b, cc, d):
            harness.wait_receipt(c, a, mid, n)
        m = harness.mail_outbox(c, a.home, mid)["messages"][0]
        kinds = {r["fingerprint"]: r["kind"] for r in m["recipients"]}
        check(kinds == want_kinds, f"outbox kinds {kinds}")
        check(all(r["state"] == "fetched" and r["receipt"]["verified"] for r in m["recipients"]),
              f"outbox states {m['recipients']}")
        check(len(m["recipients"]) == 3, f"outbox recipients {m['recipients']}")
        note(f"{mid[:8]}: to/cc/bcc delivered; {len(copies['b'])} bytes, no trace of d")
    bare_cr(c, a, b, cc, d, secrets)
    # b's view: only three messages, from a, and nothing about d in the listing
    for n in (b, cc, d):
        doc = harness.mail_inbox(c, n.home)
        check(doc["delivered"] == 3 and all(m["from"] == a.home.fingerprint
                                            for m in doc["messages"]), f"{n.name}'s inbox {doc}")
    for n in (d, cc, b, a):
        n.stop()
    harness.check_all_logs(c)


if __name__ == "__main__":
    harness.main(test, "mail_bcc")
