#!/usr/bin/env python3
"""SMTP submission's total session timeout holds while the node works for
the client (docs/SMTP.md, "Limits"). Node a's only seed is stopped, so a
recipient lookup in the DHT runs for the whole lookup timeout (10 s); with
--smtp-total-timeout 3 the session must still end at about 3 s with
421 4.4.2, the lookup abandoned (its late answer is dropped: no reply after
the 421, no sanitizer finding), the slot freed for a new session, and the
counter rejected.smtp.total_timeout counted. Before the fix the session
waited for the lookup (550 after ~10 s) and only then got its 421.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_FAIL, EX_NOTFOUND, check, note  # noqa: E402
from test_smtp_submit import Raw, login_raw  # noqa: E402

TOTAL_S = 3
LOOKUP_S = 10  # PST_LOOKUP_TIMEOUT_MS


def test(c):
    seed = c.start(c.new_home("seed"))
    a = c.start(c.new_home("a", "a@it.example"), [seed],
                extra=["--smtp-port", "any", "--smtp-total-timeout", str(TOTAL_S),
                       "--smtp-idle-timeout", "60", "--smtp-max-sessions", "1"])
    a.wait_joined()
    seed.stop()  # nobody answers a's gets now: a lookup runs its full timeout
    port = a.status()["ports"]["smtp"]
    rc, doc, err = c.cli_json(["smtp", "password", "--home", a.home.path])
    check(rc == 0, f"smtp password: {rc} {err}")
    pw, fp = doc["password"], a.home.fingerprint

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
