#!/usr/bin/env python3
"""The mutt recipe of docs/SMTP.md, run as written: mutt in batch mode with
smtp_url (the address as user name, '@' as %40), smtp_pass from `postern
smtp password`, no TLS, submits to a's posternd; the message reaches b's
Maildir with mutt's subject and body. Exits 77 when mutt is not installed
(scripts/install-deps installs it)."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402


def test(c):
    seed, a, b = harness.mail_pair(c, extra_a=["--smtp-port", "any"])
    harness.wait_mail_ready(c, [a], [b], by_address=True)
    harness.trust(c, a, b)
    port = a.status()["ports"]["smtp"]
    rc, out, err = c.cli(["smtp", "password", "--home", a.home.path])
    check(rc == 0, f"smtp password: {rc} {err}")
    password = out.strip()
    home = os.path.join(c.tmp, "mutt-home")
    os.makedirs(home, mode=0o700, exist_ok=True)
    user = a.home.address.replace("@", "%40")
    muttrc = os.path.join(home, "muttrc")
    with open(muttrc, "w") as f:
        f.write(f'set from = "{a.home.address}"\n'
                f'set smtp_url = "smtp://{user}@127.0.0.1:{port}/"\n'
                f'set smtp_pass = "{password}"\n'
                'set smtp_authenticators = "plain:login"\n'
                'set ssl_starttls = no\n'
                'set ssl_force_tls = no\n'
                # batch mode: no copy to a local folder, no questions
                'set record = ""\n'
                'set copy = no\n')
    body = b"sent by mutt over SMTP submission\n"
    env = dict(os.environ, HOME=home, MAIL=os.path.join(home, "mbox"))
    p = subprocess.run(["mutt", "-n", "-F", muttrc, "-s", "mutt recipe", b.home.address],
                       input=body, env=env, capture_output=True, timeout=60)
    check(p.returncode == 0, f"mutt exit {p.returncode}: {p.stdout!r} {p.stderr!r}\n"
          + a.log_tail())
    doc = harness.mail_outbox(c, a.home)
    msgs = [m for m in doc.get("messages", []) if m.get("subject") == "mutt recipe"]
    check(len(msgs) == 1, f"a's outbox: {doc}")
    mid = msgs[0]["message_id"]
    data = harness.read_bytes(harness.wait_delivered(c, b, mid)[0])
    check(b"Subject: mutt recipe" in data and body.strip() in data, f"b's copy: {data!r}")
    note(f"mutt submitted {mid[:8]}; delivered to b")


if __name__ == "__main__":
    if shutil.which("mutt") is None:
        print("SKIP smtp_mutt: mutt is not installed (scripts/install-deps installs it)")
        sys.exit(77)
    harness.main(test, "smtp_mutt")
