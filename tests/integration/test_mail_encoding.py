#!/usr/bin/env python3
"""What mail clients parse (issue 12), between real nodes, read back with
Python's email package (policy default) from b's Maildir:

1. `send --body` with a 5,000-octet line and a UTF-8 line is sent
   quoted-printable: every line of the stored copy is at most 998 octets
   (at most 76 in the body), and get_content() gives the body back. A body
   with a bare CR keeps it (quoted-printable too); a short UTF-8 body stays
   8bit, a short ASCII one 7bit.
2. A header field with white space before its colon ("X-A : 1", RFC 5322's
   obsolete syntax) does not end the header section for such a reader: the
   stored copy has exactly one From, Date and Message-ID in its headers."""

import email
import email.policy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402


def stored(c, a, b, **kw):
    _, doc, _ = harness.mail_send(c, a.home, to=[b.home.fingerprint], **kw)
    mid = doc["message_id"]
    path = harness.wait_delivered(c, b, mid)[0]
    raw = harness.read_bytes(path)
    return raw, email.message_from_bytes(raw, policy=email.policy.default)


def long_lines(c, a, b):
    long_line = "".join(chr(ord("a") + i % 26) for i in range(4994)) + " = end"
    check(len(long_line.encode()) == 5000, "the long line is not 5,000 octets")
    cases = [
        ("long", f"start\n{long_line}\ncaf\u00e9 \u00fcber \u2603 \U0001f600 =?x?= \n"
                 "From here\n.\nlast", "quoted-printable"),
        ("bare cr", "one\rtwo\r\nthree\n", "quoted-printable"),
        ("utf-8", "caf\u00e9\n", "8bit"),
        ("ascii", "plain text\n", "7bit"),
    ]
    for name, body, cte in cases:
        raw, msg = stored(c, a, b, subject=f"encoding {name}", body=body)
        check(not msg.defects, f"{name}: defects {msg.defects}")
        got_cte = msg.get("Content-Transfer-Encoding", "7bit")
        check(got_cte == cte, f"{name}: Content-Transfer-Encoding {got_cte}, want {cte}")
        head, _, text = raw.partition(b"\n\n")
        for line in raw.split(b"\n"):
            check(len(line) <= 998, f"{name}: a stored line of {len(line)} octets")
        if cte == "quoted-printable":
            check(max(len(ln) for ln in text.split(b"\n")) <= 76,
                  f"{name}: a quoted-printable line over 76 characters")
        want = body if body.endswith("\n") else body + "\n"
        want = want.replace("\r\n", "\n")
        got = msg.get_content()
        check(got == want, f"{name}: get_content() differs:\n{got[:200]!r}\nwant\n"
                           f"{want[:200]!r}")
        check(str(msg["Subject"]) == f"encoding {name}", f"{name}: subject {msg['Subject']}")
    note("a 5,000-octet line and UTF-8: quoted-printable, lines <= 76, content intact; "
         "bare CR kept; short bodies 8bit/7bit")


def space_before_colon(c, a, b):
    text = (b"To: b@it.example\n"
            b"X-A : 1\n"
            b"Subject\t: spaced\n"
            b"X-B: 2\n"
            b"\n"
            b"body\n")
    path = harness.mail_write(c, text, name="spaced.eml")
    raw, msg = stored(c, a, b, path=path)
    for field in ("From", "Date", "Message-ID"):
        n = len(msg.get_all(field) or [])
        check(n == 1, f"{n} {field} fields in the header for Python's email package:\n"
                      f"{raw.decode(errors='replace')}")
    check(msg["X-A"] == "1" and msg["X-B"] == "2" and msg["Subject"] == "spaced",
          f"fields lost: {raw.decode(errors='replace')}")
    check(msg.get_content() == "body\n", f"body {msg.get_content()!r}")
    note("'X-A : 1': one From, Date and Message-ID in the header for Python's email package")


def test(c):
    a, b = c.network_of(2, names=["a", "b"])
    harness.wait_mail_ready(c, [a], [b])
    harness.trust(c, b, a)
    long_lines(c, a, b)
    space_before_colon(c, a, b)
    harness.stop_all(c, (b, a))


if __name__ == "__main__":
    harness.main(test, "mail_encoding")
