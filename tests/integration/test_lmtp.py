#!/usr/bin/env python3
"""LMTP (docs/LMTP.md): Internet mail handed to posternd over its unix
socket, as Postfix's mailbox_transport = lmtp:unix:... does. One node, its
required stamp bits lowered to 16 so the real `hashcash` tool mints fast.

- `status --json` names the socket (HOME/lmtp.sock, mode 0660).
- smtplib.LMTP over the unix socket: an unstamped message lands in .Legacy;
  one with an X-Hashcash stamp minted by `hashcash -m -b 16 ADDR` in
  .Unknown; the same stamp again is spent: .Legacy; a stamp of too few bits,
  one dated 40 days ago (`hashcash -t -40d`), one for another address: .Legacy.
- A raw client: EHLO is refused (LHLO is LMTP's); RCPT to a foreign address
  is 550 5.1.1; DATA with two recipients (an address and the fingerprint
  address) gets two replies and lands once; every SMTP smuggling sequence
  (<LF>.<LF>, <CR>.<CR>, <CRLF>.<LF>) is message data and the message is
  refused (554, once per recipient) at the real end; a bare LF in a command
  ends the session; a message over the size limit is 552; a session cut in
  the middle of DATA: nothing in new/ and no file left in any tmp/.
- Restarted with --lmtp-unknown reject: unstamped mail is 550 and its text
  says how to mint a stamp with the hashcash tool; a stamp spent before the
  restart is still spent; with two recipients of which one is stamped, the
  replies differ per recipient (250, then 550) and one copy lands in .Unknown.
"""

import os
import shutil
import smtplib
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402
from test_smtp_submit import Raw  # noqa: E402

BITS = 16
MAX_MESSAGE = 65536  # --max-message-size: the limit LHLO's SIZE derives from


class LmtpRaw(Raw):
    """The byte-exact client of test_smtp_submit, over a unix socket."""

    def __init__(self, path):  # pylint: disable=super-init-not-called
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(path)
        self.buf = b""


def mint(addr, bits=BITS, extra=()):
    out = subprocess.run(["hashcash", "-m", "-q", "-b", str(bits), *extra, addr],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    stamp = out.strip().splitlines()[-1].strip()
    check(stamp.startswith("1:"), f"hashcash printed {out!r}")
    return stamp


def message(subject, stamps=(), to="a@it.example"):
    head = [f"From: someone@internet.example", f"To: {to}", f"Subject: {subject}",
            f"Message-ID: <{subject}@internet.example>"]
    head += [f"X-Hashcash: {s}" for s in stamps]
    return ("\r\n".join(head) + "\r\n\r\nbody of " + subject + "\r\n").encode()


def folder_of(home, subject):
    """The folders holding a message with this subject (new/ or cur/)."""
    found = []
    for path in harness.maildir_all(home):
        data = harness.read_bytes(path)
        if f"Subject: {subject}\n".encode() in data:
            rel = os.path.relpath(path, home.file("Maildir"))
            parts = rel.split(os.sep)
            found.append(parts[0] if parts[0].startswith(".") else "INBOX")
    return found


def wait_folder(home, subject, want):
    got = folder_of(home, subject)
    check(got == [want], f"{subject}: want one copy in {want}, found {got}")


def lmtp_send(path, rcpts, data, mail_from="someone@internet.example"):
    """smtplib's LMTP client; returns sendmail's refused-recipients dict."""
    cl = smtplib.LMTP(path)
    try:
        return cl.sendmail(mail_from, rcpts, data)
    finally:
        cl.quit()


def lmtp_refused(path, rcpt, data):
    """(code, text) of the refusal of data for the one recipient rcpt (with
    one recipient, smtplib reports the reply after DATA as a data error)."""
    try:
        lmtp_send(path, [rcpt], data)
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error
    check(False, f"mail to {rcpt} was accepted")
    return None


def greet(path):
    r = LmtpRaw(path)
    code, _ = r.reply()
    check(code == 220, f"greeting {code}")
    code, text = r.cmd(b"LHLO mta.example\r\n")
    check(code == 250 and b"PIPELINING" in text and b"SIZE" in text, f"LHLO {code} {text!r}")
    return r


def no_tmp_files(home, what):
    left = harness.maildir_tmp(home)
    check(left == [], f"{what}: files left in tmp/: {left}")


def test(c):
    if shutil.which("hashcash") is None:
        note("SKIP: the hashcash tool is not installed (Debian package hashcash)")
        sys.exit(77)
    home = c.new_home("a", "a@it.example")
    extra = ["--pow-bits", str(BITS), "--max-message-size", str(MAX_MESSAGE)]
    a = c.start(home, [], extra)
    st = a.status()
    lm = st.get("lmtp", {})
    path = home.file("lmtp.sock")
    check(lm.get("enabled") is True and lm.get("path") == path and lm.get("unknown") == "folder",
          f"status lmtp: {lm}")
    mode = os.stat(path).st_mode
    check(stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660, f"socket mode {oct(mode)}")
    fpaddr = f"{home.fingerprint}@postern.invalid"

    note("unstamped -> .Legacy; stamped -> .Unknown; spent, weak, expired, foreign -> .Legacy")
    check(lmtp_send(path, ["a@it.example"], message("plain")) == {}, "plain refused")
    wait_folder(home, "plain", ".Legacy")
    stamp = mint("a@it.example")
    check(lmtp_send(path, ["a@it.example"], message("stamped", [stamp])) == {}, "stamped refused")
    wait_folder(home, "stamped", ".Unknown")
    data = harness.read_bytes(os.path.join(home.file("Maildir"), ".Unknown", "new",
                                           os.listdir(home.file("Maildir/.Unknown/new"))[0]))
    check(data.startswith(b"Return-Path: <someone@internet.example>\nX-Postern-Via: lmtp\n"),
          f"fields above the message: {data[:120]!r}")
    check(b"\r" not in data, "line ends are stored as LF")
    check(lmtp_send(path, ["a@it.example"], message("again", [stamp])) == {}, "again refused")
    wait_folder(home, "again", ".Legacy")
    weak = mint("a@it.example", bits=8)
    lmtp_send(path, ["a@it.example"], message("weak", [weak]))
    wait_folder(home, "weak", ".Legacy")
    old = mint("a@it.example", extra=["-t", "-40d"])
    lmtp_send(path, ["a@it.example"], message("expired", [old]))
    wait_folder(home, "expired", ".Legacy")
    other = mint("b@it.example")
    lmtp_send(path, ["a@it.example"], message("foreign", [other]))
    wait_folder(home, "foreign", ".Legacy")
    # a stamp within the grace period (29 days old) still counts
    graced = mint("a@it.example", extra=["-t", "-29d"])
    lmtp_send(path, ["a@it.example"], message("graced", [graced]))
    wait_folder(home, "graced", ".Unknown")

    note("raw: LHLO only, foreign recipient, two recipients, one copy")
    r = LmtpRaw(path)
    check(r.reply()[0] == 220, "greeting")
    code, _ = r.cmd(b"EHLO mta.example\r\n")
    check(code == 500, f"EHLO on LMTP: {code}")
    code, _ = r.cmd(b"MAIL FROM:<x@internet.example>\r\n")
    check(code == 503, f"MAIL before LHLO: {code}")
    code, _ = r.cmd(b"LHLO mta.example\r\n")
    check(code == 250, f"LHLO {code}")
    check(r.cmd(b"MAIL FROM:<>\r\n")[0] == 250, "MAIL FROM:<> (a bounce)")
    code, text = r.cmd(b"RCPT TO:<c@elsewhere.example>\r\n")
    check(code == 550 and b"5.1.1" in text, f"foreign RCPT {code} {text!r}")
    check(r.cmd(b"RCPT TO:<a@it.example>\r\n")[0] == 250, "RCPT a")
    check(r.cmd(f"RCPT TO:<{fpaddr}>\r\n".encode())[0] == 250, "RCPT fingerprint address")
    check(r.cmd(b"DATA\r\n")[0] == 354, "DATA")
    r.send(message("two", [mint(fpaddr)]) + b".\r\n")
    replies = [r.reply() for _ in range(2)]
    check([x[0] for x in replies] == [250, 250], f"per-recipient replies {replies}")
    check(b"a@it.example" in replies[0][1] and fpaddr.encode() in replies[1][1],
          f"replies in RCPT order: {replies}")
    wait_folder(home, "two", ".Unknown")

    note("raw: smuggling sequences are data; the message is refused whole")
    before = harness.maildir_all(home)
    for name, seq in (("lf", b"\n.\n"), ("cr", b"\r.\r"), ("crlf-lf", b"\r\n.\n")):
        check(r.cmd(b"MAIL FROM:<x@internet.example>\r\n")[0] == 250, "MAIL")
        check(r.cmd(b"RCPT TO:<a@it.example>\r\n")[0] == 250, "RCPT")
        check(r.cmd(f"RCPT TO:<{fpaddr}>\r\n".encode())[0] == 250, "RCPT")
        check(r.cmd(b"DATA\r\n")[0] == 354, "DATA")
        r.send(b"Subject: smuggle-" + name.encode() + b"\r\n\r\nhi" + seq +
               b"MAIL FROM:<evil@x>\r\nRCPT TO:<a@it.example>\r\nDATA\r\nSubject: hidden\r\n"
               b"\r\n.\r\n")
        got = [r.reply() for _ in range(2)]
        check([x[0] for x in got] == [554, 554], f"smuggling {name}: {got}")
        check(r.cmd(b"NOOP\r\n")[0] == 250, f"after smuggling {name}: the hidden DATA ran")
    check(harness.maildir_all(home) == before, "a smuggled message was stored")
    no_tmp_files(home, "after refused messages")

    note("raw: size cap, bare CR, bare LF")
    check(r.cmd(b"MAIL FROM:<x@internet.example> SIZE=999999\r\n")[0] == 552, "SIZE= over")
    check(r.cmd(b"MAIL FROM:<x@internet.example>\r\n")[0] == 250, "MAIL")
    check(r.cmd(b"RCPT TO:<a@it.example>\r\n")[0] == 250, "RCPT")
    check(r.cmd(b"DATA\r\n")[0] == 354, "DATA")
    r.send(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 70 + b".\r\n")
    code, _ = r.reply()
    check(code == 552, f"a message over the limit: {code}")
    check(harness.maildir_all(home) == before, "an oversized message was stored")
    no_tmp_files(home, "after an oversized message")
    code, _ = r.cmd(b"NOOP\rNOOP\r\n")
    check(code == 500, f"bare CR in a command: {code}")
    code, _ = r.cmd(b"NOOP\n")
    check(code == 500 and r.closed(), f"bare LF in a command: {code}, not closed")
    r.close()

    note("a session cut in the middle of DATA leaves nothing")
    r = greet(path)
    check(r.cmd(b"MAIL FROM:<x@internet.example>\r\n")[0] == 250, "MAIL")
    check(r.cmd(b"RCPT TO:<a@it.example>\r\n")[0] == 250, "RCPT")
    check(r.cmd(b"DATA\r\n")[0] == 354, "DATA")
    r.send(b"Subject: cut\r\n\r\n" + b"y" * 20000)
    harness.poll(lambda: any(sz > 0 for _, sz in harness.maildir_tmp(home)), 10,
                 "the message being written in tmp/")
    r.close()
    harness.poll(lambda: harness.maildir_tmp(home) == [], 10, "tmp/ empty after the cut")
    check(harness.maildir_all(home) == before, "a cut message was stored")

    note("--lmtp-unknown reject")
    a.stop()
    c.restart(a, extra=extra + ["--lmtp-unknown", "reject"])
    check(a.status().get("lmtp", {}).get("unknown") == "reject", "status says reject")
    code, text = lmtp_refused(path, "a@it.example", message("rejected"))
    check(code == 550 and f"hashcash -m -b {BITS} a@it.example".encode() in text,
          f"reject text: {code} {text!r}")
    code, text = lmtp_refused(path, "a@it.example", message("spent-after-restart", [stamp]))
    check(code == 550 and b"used before" in text, f"spent: {code} {text!r}")
    check(folder_of(home, "rejected") == [] and folder_of(home, "spent-after-restart") == [],
          "refused mail was stored")
    r = greet(path)
    check(r.cmd(b"MAIL FROM:<x@internet.example>\r\n")[0] == 250, "MAIL")
    check(r.cmd(b"RCPT TO:<a@it.example>\r\n")[0] == 250, "RCPT a")
    check(r.cmd(f"RCPT TO:<{fpaddr}>\r\n".encode())[0] == 250, "RCPT fp")
    check(r.cmd(b"DATA\r\n")[0] == 354, "DATA")
    r.send(message("mixed", [mint("a@it.example")]) + b".\r\n")
    got = [r.reply() for _ in range(2)]
    check([x[0] for x in got] == [250, 550], f"per-recipient replies with reject: {got}")
    wait_folder(home, "mixed", ".Unknown")
    r.cmd(b"QUIT\r\n")
    r.close()
    no_tmp_files(home, "at the end")

    k = a.counters()
    for name in ("lmtp.sessions", "lmtp.delivered_unknown", "lmtp.delivered_legacy",
                 "rejected.lmtp.bare_newline", "rejected.lmtp.too_big", "rejected.lmtp.unstamped",
                 "rejected.lmtp.rcpt_unknown", "rejected.lmtp.bare_lf"):
        check(k.get(name, 0) > 0, f"counter {name} missing: {k}")
    a.stop()
    check(not os.path.exists(path), "the socket file is removed at stop")


if __name__ == "__main__":
    harness.main(test, "lmtp")
