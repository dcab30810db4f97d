#!/usr/bin/env python3
"""SMTP submission (docs/SMTP.md). Node a listens for submission on a free
loopback port (--smtp-port any, read back from `status --json`), with short
timeouts, a small size limit and a cap of 3 sessions; b and c are its
contacts.

- Python's smtplib: EHLO offers PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES,
  SIZE (the real limit), AUTH PLAIN LOGIN; MAIL before AUTH is 530; a wrong
  password 535; a foreign MAIL FROM 553; an unknown fingerprint and an
  Internet address (no smarthost) 550 at RCPT; a message To: b with c only
  on the envelope reaches both Maildirs, and neither copy names c (Bcc);
  a's outbox holds it as soon as the 250 came (durable before the reply);
  SIZE= over the limit and a message over it are 552; recipient 31 is 452.
- A raw socket for the byte-exact cases: every SMTP smuggling sequence
  (<LF>.<LF>, <CR>.<CR>, <CRLF>.<LF>, <LF>.<CRLF>) is message data, the
  whole message is refused (554) at the real <CRLF>.<CRLF>, and nothing of
  it (nor the commands hidden in it) is stored; a bare CR in a command is
  500; a bare LF in a command is 500 and the session ends; an idle session
  is told 421 and closed; a 4th concurrent session is told 421.
- AUTH LOGIN; a non-ASCII Subject is 554 5.6.7 without SMTPUTF8, 250 with.
- `postern smtp password --reset`: the old password stops working.
"""

import base64
import os
import re
import smtplib
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

IDLE_S = 3
MAX_SESSIONS = 3
MAX_MESSAGE = 65536  # --max-message-size: the ciphertext cap


class Raw:
    """A byte-exact SMTP client: replies are read whole (multi-line too)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def reply(self, timeout=10):
        """(code, text) of the next reply; (None, b"") at EOF."""
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                left = deadline - time.monotonic()
                check(left > 0, f"no reply within {timeout} s (have {self.buf!r})")
                self.s.settimeout(left)
                chunk = self.s.recv(4096)
                if not chunk:
                    return (None, b"".join(lines))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return (int(line[:3]), b"\n".join(lines))

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, data):
        self.send(data)
        return self.reply()

    def closed(self, timeout=10):
        """True when the server closed the connection within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.s.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self):
        self.s.close()


def login_raw(port, user, password):
    r = Raw(port)
    code, _ = r.reply()
    check(code == 220, f"greeting {code}")
    code, text = r.cmd(b"EHLO raw.example\r\n")
    check(code == 250, f"EHLO {code} {text!r}")
    tok = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
    code, text = r.cmd(b"AUTH PLAIN " + tok + b"\r\n")
    check(code == 235, f"AUTH PLAIN {code} {text!r}")
    return r


def outbox_ids(c, a):
    doc = harness.mail_outbox(c, a.home)
    return [m["message_id"] for m in doc.get("messages", [])]


def test(c):
    extra = ["--smtp-port", "any", "--smtp-idle-timeout", str(IDLE_S),
             "--smtp-max-sessions", str(MAX_SESSIONS), "--max-message-size", str(MAX_MESSAGE)]
    seed, a, b = harness.mail_pair(c, extra_a=extra)
    cc = c.start(c.new_home("c", "c@it.example"), [seed])
    cc.wait_joined()
    harness.wait_mail_ready(c, [a], [b, cc], by_address=True)
    harness.trust(c, cc, a)
    harness.trust(c, a, b)
    harness.trust(c, a, cc)

    st = a.status()
    port = st["ports"]["smtp"]
    check(port > 0 and st["smtp"]["address"] == "127.0.0.1", f"status: {st['ports']} {st['smtp']}")
    check(b.status()["ports"]["smtp"] == 0, "b's listener is on with --smtp-port 0")
    rc, pw_doc, err = c.cli_json(["smtp", "password", "--home", a.home.path])
    check(rc == 0, f"smtp password: {rc} {err}")
    pw = pw_doc["password"]
    check(harness.mode_of(pw_doc["file"]) == 0o600, "smtp.password is not 0600")
    fp, addr = a.home.fingerprint, a.home.address
    note(f"a's submission port {port}")

    # ---- smtplib: the ordinary client ------------------------------------
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    code, _ = s.ehlo("client.example")
    check(code == 250, f"EHLO {code}")
    for ext in ("pipelining", "8bitmime", "enhancedstatuscodes", "size", "auth"):
        check(s.has_extn(ext), f"EHLO does not offer {ext}: {s.esmtp_features}")
    limit = int(s.esmtp_features["size"])
    check(0 < limit < MAX_MESSAGE, f"SIZE {limit}")
    check(set(s.esmtp_features["auth"].upper().split()) >= {"PLAIN", "LOGIN"},
          f"AUTH {s.esmtp_features['auth']}")
    code, text = s.mail(addr)
    check(code == 530 and b"5.7.0" in text, f"MAIL before AUTH: {code} {text!r}")
    try:
        s.login(fp, pw + "x")
        check(False, "a wrong password was accepted")
    except smtplib.SMTPAuthenticationError as e:
        check(e.smtp_code == 535, f"wrong password: {e.smtp_code}")
    s.login(addr, pw)  # the user name may be an address too
    code, text = s.mail("boss@elsewhere.example")
    check(code == 553 and b"5.7.1" in text, f"foreign MAIL FROM: {code} {text!r}")
    code, text = s.mail(f"{fp}@postern.invalid")
    check(code == 250, f"MAIL FROM fingerprint address: {code} {text!r}")
    unknown = harness.random_fingerprint()
    code, text = s.rcpt(f"{unknown}@postern.invalid")
    check(code == 550 and b"5.1.1" in text, f"unknown fingerprint: {code} {text!r}")
    code, text = s.rcpt("someone@internet.example")
    check(code == 550 and b"smarthost" in text and b"5.7.1" in text,
          f"Internet address without smarthost: {code} {text!r}")
    code, text = s.rcpt(b.home.address)
    check(code == 250, f"RCPT b: {code} {text!r}")
    code, text = s.rcpt(cc.home.address)
    check(code == 250, f"RCPT c: {code} {text!r}")
    msg = (f"From: {addr}\r\nTo: {b.home.address}\r\nSubject: smtp submit\r\n"
           f"Message-ID: <smtp-1@it.example>\r\n\r\nhello over SMTP\r\n.leading dot\r\n")
    code, text = s.data(msg.encode())
    check(code == 250, f"DATA: {code} {text!r}")
    m = re.search(rb"stored as ([0-9a-f]{64})", text)
    check(m is not None, f"250 without the message id: {text!r}")
    mid = m.group(1).decode()
    # the 250 came after the commit: the outbox has it now, not later
    check(mid in outbox_ids(c, a), f"{mid[:8]} not in a's outbox right after the 250")
    s.quit()
    secrets = [re.compile(re.escape(cc.home.address.encode()), re.I),
               re.compile(re.escape(cc.home.fingerprint.encode()), re.I)]
    for n in (b, cc):
        paths = harness.wait_delivered(c, n, mid)
        data = harness.read_bytes(paths[0])
        check(b"hello over SMTP" in data and b"\n.leading dot" in data,
              f"{n.name}'s copy: {data!r}")
        for sec in secrets:
            check(sec.search(data) is None, f"{n.name}'s copy names the Bcc recipient: {data!r}")
    doc = harness.mail_outbox(c, a.home, msg_id=mid)
    msgs = [m for m in doc.get("messages", []) if m["message_id"] == mid]
    kinds = sorted(r.get("kind") for r in (msgs[0]["recipients"] if msgs else []))
    check(kinds == ["bcc", "to"], f"outbox recipient kinds {kinds}: {doc}")
    note(f"{mid[:8]} delivered to b (To) and c (Bcc, named in neither copy)")

    # ---- limits ----------------------------------------------------------
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.login(fp, pw)
    code, text = s.mail(addr, ["SIZE=%d" % (limit + 1)])
    check(code == 552 and b"5.3.4" in text, f"SIZE over the limit: {code} {text!r}")
    code, _ = s.mail(addr)
    check(code == 250, "MAIL after the SIZE refusal")
    check(s.rcpt(b.home.address)[0] == 250, "RCPT b")
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (limit // 1000 + 2)
    code, text = s.data(big)
    check(code == 552, f"oversize message: {code} {text!r}")
    code, text = s.mail(addr)
    check(code == 250, f"MAIL after the oversize refusal: {code} {text!r}")
    codes = [s.rcpt(b.home.address)[0] for _ in range(31)]
    check(codes[:30] == [250] * 30 and codes[30] == 452, f"31 recipients: {codes}")
    s.rset()
    s.quit()

    # ---- raw bytes: AUTH LOGIN, non-ASCII headers ------------------------------
    r = Raw(port)
    check(r.reply()[0] == 220, "greeting")
    check(r.cmd(b"EHLO raw.example\r\n")[0] == 250, "EHLO")
    code, text = r.cmd(b"AUTH LOGIN\r\n")
    check(code == 334 and text.endswith(b"VXNlcm5hbWU6"), f"AUTH LOGIN: {code} {text!r}")
    check(r.cmd(base64.b64encode(fp.encode()) + b"\r\n")[0] == 334, "LOGIN user")
    code, text = r.cmd(base64.b64encode(pw.encode()) + b"\r\n")
    check(code == 235, f"LOGIN password: {code} {text!r}")
    utf8_msg = "Subject: caf\u00e9\r\n\r\nbody\r\n.\r\n".encode()
    for opts, want in ((b"", 554), (b" SMTPUTF8", 250)):
        check(r.cmd(b"MAIL FROM:<" + addr.encode() + b">" + opts + b"\r\n")[0] == 250, "MAIL")
        check(r.cmd(b"RCPT TO:<" + b.home.address.encode() + b">\r\n")[0] == 250, "RCPT")
        check(r.cmd(b"DATA\r\n")[0] == 354, "DATA")
        code, text = r.cmd(utf8_msg)
        check(code == want, f"non-ASCII Subject, MAIL{opts.decode()}: {code} {text!r}")
        if want == 554:
            check(b"5.6.7" in text and b"SMTPUTF8" in text, f"non-ASCII refusal: {text!r}")
    r.close()

    # ---- raw bytes: smuggling ------------------------------------------------
    before = set(outbox_ids(c, a))
    r = login_raw(port, fp, pw)
    smuggled = (b"MAIL FROM:<" + addr.encode() + b">\r\nRCPT TO:<" + b.home.address.encode() +
                b">\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n")
    for name, seq in (("LF.LF", b"\n.\n"), ("CR.CR", b"\r.\r"), ("CRLF.LF", b"\r\n.\n"),
                      ("LF.CRLF", b"\n.\r\n")):
        check(r.cmd(b"MAIL FROM:<" + addr.encode() + b">\r\n")[0] == 250, f"{name}: MAIL")
        check(r.cmd(b"RCPT TO:<" + b.home.address.encode() + b">\r\n")[0] == 250,
              f"{name}: RCPT")
        check(r.cmd(b"DATA\r\n")[0] == 354, f"{name}: DATA")
        r.send(b"Subject: first " + name.encode() + b"\r\n\r\nfirst" + seq + smuggled +
               b"\r\n.\r\n")
        code, text = r.reply()
        check(code == 554 and b"bare CR or LF" in text, f"{name}: end of DATA: {code} {text!r}")
        code, text = r.cmd(b"NOOP\r\n")  # exactly one reply came for it all
        check(code == 250, f"{name}: the reply after the refusal is {code} {text!r}")
    code, text = r.cmd(b"NOOP\rRSET\r\n")
    check(code == 500 and b"bare CR" in text, f"bare CR in a command: {code} {text!r}")
    code, text = r.cmd(b"NOOP\n")
    check(code == 500 and b"bare LF" in text, f"bare LF in a command: {code} {text!r}")
    check(r.closed(), "the session stays open after a bare LF in a command")
    r.close()
    after = set(outbox_ids(c, a))
    check(after == before, f"smuggling stored messages: {sorted(after - before)}")

    # a good raw message with dot-stuffing goes through after all that
    r = login_raw(port, fp, pw)
    r.send(b"MAIL FROM:<" + addr.encode() + b">\r\nRCPT TO:<" + b.home.address.encode() +
           b">\r\nDATA\r\n")  # pipelined
    codes = [r.reply()[0] for _ in range(3)]
    check(codes == [250, 250, 354], f"pipelined MAIL/RCPT/DATA: {codes}")
    code, text = r.cmd(b"Subject: raw ok\r\n\r\n..stuffed\r\n.\r\n")
    check(code == 250, f"raw message: {code} {text!r}")
    mid2 = re.search(rb"stored as ([0-9a-f]{64})", text).group(1).decode()
    r.cmd(b"QUIT\r\n")
    r.close()
    data = harness.read_bytes(harness.wait_delivered(c, b, mid2)[0])
    check(b"\n.stuffed\n" in data and b"..stuffed" not in data, f"dot-unstuffing: {data!r}")
    for n in (b,):
        for path in harness.maildir_all(n.home):
            check(b"smuggled" not in harness.read_bytes(path), f"smuggled mail in {path}")

    # ---- sessions: idle timeout and the cap ------------------------------------
    r = Raw(port)
    check(r.reply()[0] == 220, "greeting")
    t0 = time.monotonic()
    code, text = r.reply(timeout=IDLE_S + 10)
    check(code == 421 and b"idle" in text, f"idle session: {code} {text!r}")
    check(r.closed(), "an idle session was not closed")
    note(f"idle session closed after {time.monotonic() - t0:.1f} s")
    r.close()
    held = [Raw(port) for _ in range(MAX_SESSIONS)]
    for h in held:
        check(h.reply()[0] == 220, "greeting of a held session")
    extra_s = Raw(port)
    code, text = extra_s.reply()
    check(code == 421 and b"too many sessions" in text, f"session over the cap: {code} {text!r}")
    check(extra_s.closed(), "the session over the cap stays open")
    for h in held + [extra_s]:
        h.close()

    # ---- password reset -------------------------------------------------------
    rc, doc2, err = c.cli_json(["smtp", "password", "--reset", "--home", a.home.path])
    check(rc == 0 and doc2["password"] != pw, f"reset: {rc} {err}")
    s = harness.poll(lambda: (lambda x: x if x.noop()[0] == 250 else None)(
        smtplib.SMTP("127.0.0.1", port, timeout=20)), 10, "a session after the cap")
    try:
        s.login(fp, pw)
        check(False, "the old password still works after --reset")
    except smtplib.SMTPAuthenticationError as e:
        check(e.smtp_code == 535, f"old password: {e.smtp_code}")
    s.login(fp, doc2["password"])
    s.quit()
    k = a.counters()
    for name in ("rejected.smtp.auth_failed", "rejected.smtp.bare_newline",
                 "rejected.smtp.bare_lf", "rejected.smtp.idle_timeout",
                 "rejected.smtp.session_limit", "rejected.smtp.rcpt_limit",
                 "rejected.smtp.too_big", "rejected.smtp.foreign_sender"):
        check(k.get(name, 0) > 0, f"counter {name} missing: {k}")


if __name__ == "__main__":
    harness.main(test, "smtp_submit")
