#!/usr/bin/env python3
"""SMTP submission's total session timeout holds while the node works for
the client (docs/SMTP.md, "Limits"); a's --smtp-total-timeout is 3 s.

- The send after DATA: b asks for 40-bit stamps (hours of minting), so at
  the total timeout the send has not committed: it is cancelled, the client
  told 421 4.4.2 "not sent", and a's outbox stays empty.
- A recipient lookup: with a's peers stopped a DHT lookup runs its whole
  timeout (10 s), yet the session ends at about 3 s with 421 4.4.2, the
  lookup abandoned (its late answer dropped: no reply after the 421, no
  sanitizer finding) and the slot freed for a new session.
Before the fix both sessions outlived the total: the first until the stamp
(hours), the second got its 550 after ~10 s and only then the 421.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_FAIL, EX_NOTFOUND, check, note  # noqa: E402
from test_smtp_submit import login_raw, outbox_ids  # noqa: E402

TOTAL_S = 3
LOOKUP_S = 10  # PST_LOOKUP_TIMEOUT_MS


def test(c):
    seed, a, b = harness.mail_pair(
        c, extra_a=["--smtp-port", "any", "--smtp-total-timeout", str(TOTAL_S),
                    "--smtp-idle-timeout", "60", "--smtp-max-sessions", "1"],
        extra_b=["--pow-bits", "40"], trusted=False)
    port = a.status()["ports"]["smtp"]
    rc, doc, err = c.cli_json(["smtp", "password", "--home", a.home.path])
    check(rc == 0, f"smtp password: {rc} {err}")
    pw, fp = doc["password"], a.home.fingerprint

    # ---- the send after DATA, not committed at the total timeout ----------------
    t0 = time.monotonic()
    r = login_raw(port, fp, pw)
    check(r.cmd(f"MAIL FROM:<{a.home.address}>\r\n".encode())[0] == 250, "MAIL")
    code, text = r.cmd(f"RCPT TO:<{b.home.fingerprint}@postern.invalid>\r\n".encode())
    check(code == 250, f"RCPT b: {code} {text!r}")
    check(r.cmd(b"DATA\r\n")[0] == 354, "DATA")
    r.send(f"From: {a.home.address}\r\nTo: b@it.example\r\nSubject: slow\r\n\r\n"
           "minted for hours\r\n.\r\n".encode())
    code, text = r.reply(timeout=TOTAL_S + 20)
    dt = time.monotonic() - t0
    check(code == 421 and b"4.4.2" in text and b"not sent" in text,
          f"a send still minting at the total timeout: {code} {text!r} after {dt:.1f} s")
    check(r.closed(), "the session stays open after its 421")
    r.close()
    check(outbox_ids(c, a) == [], f"a cancelled send is in the outbox: {outbox_ids(c, a)}")
    check(a.counters().get("outbox.sends_cancelled", 0) >= 1, "outbox.sends_cancelled")
    note(f"a send still minting was cancelled with 421 after {dt:.1f} s")

    # ---- a recipient lookup nobody answers ---------------------------------------
    seed.stop()  # nobody answers a's gets now: a lookup runs its full timeout
    b.stop()
    t0 = time.monotonic()
    r = login_raw(port, fp, pw)
    code, text = r.cmd(f"MAIL FROM:<{a.home.address}>\r\n".encode())
    check(code == 250, f"MAIL: {code} {text!r}")
    nobody = harness.random_fingerprint() + "@postern.invalid"
    r.send(f"RCPT TO:<{nobody}>\r\n".encode())
    code, text = r.reply(timeout=TOTAL_S + LOOKUP_S + 10)
    dt = time.monotonic() - t0
    check(code == 421 and b"4.4.2" in text,
          f"a session waiting on a lookup past the total timeout: {code} {text!r} after {dt:.1f} s")
    check(dt < LOOKUP_S - 2,
          f"the 421 came after {dt:.1f} s: the session waited for the lookup ({LOOKUP_S} s)")
    check(r.closed(), "the session stays open after its 421")
    check(b"\r\n" not in r.buf, f"a reply after the 421: {r.buf!r}")
    r.close()
    note(f"a session held by a recipient lookup ended with 421 after {dt:.1f} s")

    # the slot is free again (at most 1 session) and the node still answers
    r = login_raw(port, fp, pw)
    check(r.cmd(b"NOOP\r\n")[0] == 250, "NOOP in the next session")
    r.cmd(b"QUIT\r\n")
    r.close()
    k = a.counters()
    check(k.get("rejected.smtp.total_timeout", 0) >= 1, f"counter total_timeout missing: {k}")
    # the abandoned lookup ends (its answer dropped) while the node runs on:
    # a lookup started after it, with the same timeout, has ended by then
    rc, _, err = c.key_get(a.home, harness.random_fingerprint())
    check(rc in (EX_NOTFOUND, EX_FAIL), f"a later lookup: exit {rc} {err}")
    check(a.status()["ports"]["smtp"] == port, "a stopped answering after the lookup ended")
    a.stop()


if __name__ == "__main__":
    harness.main(test, "smtp_total_timeout")
