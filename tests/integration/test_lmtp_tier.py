#!/usr/bin/env python3
"""LMTP contact tiers (docs/LMTP.md, "Contacts"): Internet mail whose From:
is an address a contact carries lands by the contact's tier, but only when
the mail server's Authentication-Results (RFC 8601) of the configured
lmtp_authserv_id vouches for it. One node (--lmtp-authserv-id mx.it.example)
and three contacts with addresses (`trust set --email`):

- trusted + dmarc=pass of mx.it.example -> INBOX; known + aligned dkim=pass
  (header.d a parent of the From domain) -> .Known; blocked -> 550 5.7.1.
- the trusted contact's From with an Authentication-Results of another
  authserv-id (a forged one), or of a look-alike id -> .Legacy; only the
  topmost of ours is read: a failing one on top of a passing one ->
  .Legacy; dkim=pass for an unaligned domain, dmarc=fail, none at all, an
  unreadable one, a From with two addresses -> .Legacy (the stamp rules).
- `trust list --json` shows the addresses; one address for one contact
  only (a second contact is refused, 64); --drop-email takes it away (then
  mail from it is a stranger's); `trust rm` removes the addresses too.
- restarted without --lmtp-authserv-id: the same passing message -> .Legacy;
  with lmtp_authserv_id in postern.conf (in upper case: ids compare without
  regard to case): INBOX again.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402
from test_lmtp import folder_of, lmtp_refused, lmtp_send, wait_folder  # noqa: E402

MX = "mx.it.example"
RCPT = "a@it.example"


def message(subject, frm, authres=()):
    head = [f"Authentication-Results: {ar}" for ar in authres]
    head += [f"From: {frm}", f"To: {RCPT}", f"Subject: {subject}",
             f"Message-ID: <{subject}@x.example>"]
    return ("\r\n".join(head) + "\r\n\r\nbody of " + subject + "\r\n").encode()


def test(c):
    home = c.new_home("a", RCPT)
    extra = ["--lmtp-authserv-id", MX]
    a = c.start(home, [], extra)
    check(a.status().get("lmtp", {}).get("authserv_id") == MX, f"status: {a.status().get('lmtp')}")
    path = home.file("lmtp.sock")
    fp_t, fp_k, fp_b = (harness.random_fingerprint() for _ in range(3))

    note("trust set --email; one address for one contact; trust list shows them")
    rc, out, err = c.cli(["trust", "set", fp_t, "trusted", "--name", "tina", "--email",
                          "Tina@Trusted.example", "--email", "t2@trusted.example",
                          "--home", home.path])
    check(rc == 0, f"trust set --email: {rc} {out} {err}")
    for fp, tier, addr in ((fp_k, "known", "kim@mail.known.example"),
                           (fp_b, "blocked", "bob@blocked.example")):
        rc, out, err = c.cli(["trust", "set", fp, tier, "--email", addr, "--home", home.path])
        check(rc == 0, f"trust set {tier}: {rc} {err}")
    rc, out, err = c.cli(["trust", "set", fp_k, "known", "--email", "tina@trusted.example",
                          "--home", home.path])
    check(rc == 64 and "another contact" in err, f"a second owner: {rc} {err}")
    rc, out, err = c.cli(["trust", "set", fp_k, "known", "--email", "not an address",
                          "--home", home.path])
    check(rc == 64, f"a bad address: {rc} {err}")
    rc, doc, err = c.cli_json(["trust", "list", "--home", home.path])
    check(rc == 0, f"trust list: {rc} {err}")
    emails = {e["fingerprint"]: e.get("emails") for e in doc["contacts"]}
    check(emails == {fp_t: ["t2@trusted.example", "tina@trusted.example"],
                     fp_k: ["kim@mail.known.example"], fp_b: ["bob@blocked.example"]},
          f"trust list emails: {emails}")

    note("vouched for by our mail server: trusted -> INBOX, known -> .Known, blocked -> 550")
    ok_t = f"{MX}; spf=pass smtp.mailfrom=trusted.example; dmarc=pass (p=none) header.from=trusted.example"
    check(lmtp_send(path, [RCPT], message("t-pass", "Tina <tina@trusted.example>", [ok_t])) == {},
          "t-pass refused")
    wait_folder(home, "t-pass", "INBOX")
    ok_k = (f"{MX} 1; dkim=pass (2048-bit key) header.d=known.example header.i=@known.example "
            "header.s=sel header.b=AbC+/12; dmarc=none header.from=mail.known.example")
    check(lmtp_send(path, [RCPT], message("k-pass", "kim@mail.known.example", [ok_k])) == {},
          "k-pass refused")
    wait_folder(home, "k-pass", ".Known")
    ok_b = f"{MX}; dmarc=pass header.from=blocked.example"
    code, text = lmtp_refused(path, RCPT, message("b-pass", "bob@blocked.example", [ok_b]))
    check(code == 550 and b"5.7.1" in text, f"blocked: {code} {text!r}")
    check(folder_of(home, "b-pass") == [], "a blocked contact's mail was stored")

    note("not vouched for: another authserv-id, unaligned dkim, dmarc=fail, none -> .Legacy")
    forged = "evil.example; dmarc=pass header.from=trusted.example"
    cases = [
        ("other-id", [forged]),
        ("our-fail-on-top", [f"{MX}; dmarc=fail header.from=trusted.example", ok_t]),
        ("unaligned", [f"{MX}; dkim=pass header.d=attacker.example; dmarc=fail"]),
        ("dmarc-fail", [f"{MX}; dmarc=fail (p=reject) header.from=trusted.example"]),
        ("no-authres", []),
        ("malformed", [f"{MX}; dmarc=pass (unterminated"]),
        ("lookalike-id", [f"{MX}.evil.example; dmarc=pass header.from=trusted.example"]),
    ]
    for subject, ars in cases:
        check(lmtp_send(path, [RCPT], message(subject, "tina@trusted.example", ars)) == {},
              f"{subject} refused")
        wait_folder(home, subject, ".Legacy")
    check(lmtp_send(path, [RCPT], message(
        "two-from", "tina@trusted.example, x@trusted.example", [ok_t])) == {}, "two-from")
    wait_folder(home, "two-from", ".Legacy")
    check(lmtp_send(path, [RCPT], message(
        "blocked-forged", "bob@blocked.example", [forged.replace("trusted", "blocked")])) == {},
        "a forged blocked From was refused: it must be judged as a stranger's")
    wait_folder(home, "blocked-forged", ".Legacy")

    note("--drop-email: the address is a stranger's again; trust rm drops the addresses")
    rc, _, err = c.cli(["trust", "set", fp_t, "trusted", "--drop-email", "tina@trusted.example",
                        "--home", home.path])
    check(rc == 0, f"--drop-email: {rc} {err}")
    check(lmtp_send(path, [RCPT], message("dropped", "tina@trusted.example", [ok_t])) == {},
          "dropped refused")
    wait_folder(home, "dropped", ".Legacy")
    rc, _, err = c.cli(["trust", "rm", fp_k, "--home", home.path])
    check(rc == 0, f"trust rm: {rc} {err}")
    rc, _, err = c.cli(["trust", "set", fp_t, "trusted", "--email", "kim@mail.known.example",
                        "--home", home.path])
    check(rc == 0, f"an address freed by trust rm: {rc} {err}")

    note("restart without lmtp_authserv_id: nothing earns a tier; addresses are durable")
    a.stop()
    c.restart(a, extra=[])
    check(a.status().get("lmtp", {}).get("authserv_id") == "", "status authserv_id")
    check(lmtp_send(path, [RCPT], message("no-id", "t2@trusted.example", [ok_t])) == {}, "no-id")
    wait_folder(home, "no-id", ".Legacy")
    rc, doc, err = c.cli_json(["trust", "list", "--home", home.path])
    emails = {e["fingerprint"]: e.get("emails") for e in doc["contacts"]}
    check(emails.get(fp_t) == ["kim@mail.known.example", "t2@trusted.example"],
          f"after restart: {emails}")

    note("lmtp_authserv_id in postern.conf works as the flag does")
    a.stop()
    with open(home.file("postern.conf"), "w") as f:
        f.write(f"[node]\nlmtp_authserv_id = {MX.upper()}\n")
    c.restart(a, extra=[])
    check(lmtp_send(path, [RCPT], message("conf", "t2@trusted.example", [ok_t])) == {}, "conf")
    wait_folder(home, "conf", "INBOX")
    k = a.counters()
    for name in ("lmtp.delivered_inbox", "lmtp.delivered_known", "rejected.lmtp.blocked",
                 "lmtp.contact_unverified"):
        check(k.get(name, 0) > 0, f"counter {name} missing: {k}")
    a.stop()


if __name__ == "__main__":
    harness.main(test, "lmtp_tier")
