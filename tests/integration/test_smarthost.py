#!/usr/bin/env python3
"""Internet mail out through a smarthost (docs/SMARTHOST.md).

A tiny SMTP sink written here (stdlib sockets and a thread) listens on a free
loopback port and plays the smarthost of node a (--smarthost 127.0.0.1:P,
no TLS, no AUTH, a 1 s first retry); b is a Postern node, a contact of a.

- No smarthost (node b): `postern send` to an Internet address fails with a
  message naming the smarthost; SMTP RCPT to it is 550 5.7.1.
- smtplib submits to a message To: b's Postern address and an Internet
  address: the sink gets exactly one copy, for the Internet address only,
  with an X-Hashcash stamp that `hashcash -c -r ADDR -b BITS` accepts; b gets
  its copy through Postern (its Maildir); `postern send` to an Internet
  address reaches the sink too, and so does `postern sendmail -t` (its Bcc
  Postern recipient neither named in the copy nor sent to the smarthost);
  `status --json` shows the smarthost.
- Sink down: the recipient is "retrying" with the reason in `postern
  outbox`; a restart of a keeps it; the sink back -> "sent", delivered once.
- Sink down with --smarthost-giveup 3: "bounced", and a's INBOX holds a
  notice with the original attached as message/rfc822.
- A 5xx for a recipient bounces it at once. AUTH PLAIN with the user and
  password of a 0600 file: refused (535) -> retrying; accepted -> sent.
- A smarthost AUTH file group or others can read stops posternd (exit 1)
  with the chmod that fixes it.
"""

import base64
import email
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

BITS = 16


class Sink:
    """A minimal SMTP server: every message it takes goes into self.got as
    (mail_from, [rcpts], data bytes, dot-unstuffed, CRLF line ends).
    With tls (an ssl.SSLContext) it offers STARTTLS, or with implicit=True
    speaks TLS from the first byte (test_smarthost_tls.py); self.commands
    logs every command as (over_tls, line)."""

    def __init__(self, port=0, auth=None, tls=None, implicit=False):
        self.auth = auth  # "user:password" to require AUTH PLAIN, else None
        self.tls, self.implicit = tls, implicit
        self.logins = []
        self.got = []
        self.commands = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.t = threading.Thread(target=self.accept, daemon=True)
        self.t.start()

    def accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        conn.settimeout(30)
        try:
            if self.implicit:
                conn = self.tls.wrap_socket(conn, server_side=True)
        except (OSError, ValueError):  # a client that refused our certificate
            conn.close()
            return
        f = conn.makefile("rb")
        out = conn.makefile("wb")

        def say(line):
            out.write(line.encode() + b"\r\n")
            out.flush()
        try:
            say("220 sink.example ESMTP")
            mail_from, rcpts, authed = None, [], False
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.strip().decode(errors="replace")
                up = cmd.upper()
                over_tls = hasattr(conn, "version")
                with self.lock:
                    self.commands.append((over_tls, cmd))
                if up.startswith("EHLO") or up.startswith("HELO"):
                    say("250-sink.example")
                    if self.auth:
                        say("250-AUTH PLAIN")
                    if self.tls is not None and not over_tls:
                        say("250-STARTTLS")
                    say("250 8BITMIME")
                elif up == "STARTTLS" and self.tls is not None and not over_tls:
                    say("220 2.0.0 go ahead")
                    conn = self.tls.wrap_socket(conn, server_side=True)
                    f, out = conn.makefile("rb"), conn.makefile("wb")
                    mail_from, rcpts, authed = None, [], False
                elif up.startswith("AUTH PLAIN"):
                    tok = cmd[10:].strip()
                    if not tok:
                        say("334 ")
                        tok = f.readline().strip().decode()
                    user, pw = base64.b64decode(tok).split(b"\0")[1:3]
                    with self.lock:
                        self.logins.append(user.decode())
                    ok = self.auth == f"{user.decode()}:{pw.decode()}"
                    authed = ok
                    say("235 2.7.0 ok" if ok else "535 5.7.8 bad credentials")
                elif up.startswith("MAIL FROM:"):
                    if self.auth and not authed:
                        say("530 5.7.0 authentication required")
                        continue
                    mail_from, rcpts = cmd[10:].strip(), []
                    say("250 ok")
                elif up.startswith("RCPT TO:"):
                    addr = cmd[8:].strip().strip("<>").split(">")[0]
                    if addr.startswith("refused"):
                        say("550 5.1.1 no such user here")
                        continue
                    rcpts.append(addr)
                    say("250 ok")
                elif up == "DATA":
                    say("354 go")
                    data = b""
                    while True:
                        ln = f.readline()
                        if not ln or ln == b".\r\n":
                            break
                        data += ln[1:] if ln.startswith(b".") else ln
                    with self.lock:
                        self.got.append((mail_from, list(rcpts), data))
                    say("250 queued")
                elif up == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("250 ok")
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def for_rcpt(self, addr):
        with self.lock:
            return [g for g in self.got if addr in g[1]]

    def close(self):
        """Stops listening now: shutdown wakes the blocked accept (a close
        alone leaves the socket listening on Linux until accept returns)."""
        self.running = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.t.join(5)


def hashcash_ok(c, stamp, addr):
    """The hashcash tool's own check: resource, bits, date window, and (with
    a spent-stamp database of the test's own) not seen before."""
    db = os.path.join(c.tmp, "hashcash.sdb")
    r = subprocess.run(["hashcash", "-c", "-d", "-f", db, "-r", addr, "-b", str(BITS), stamp],
                       capture_output=True, text=True, timeout=30)
    return r.returncode == 0, r.stdout + r.stderr


def stamp_of(data):
    msg = email.message_from_bytes(data)
    return msg.get_all("X-Hashcash") or []


def relay_rows(c, home):
    return harness.mail_outbox(c, home).get("internet", [])


def row_for(c, home, addr):
    rows = [r for r in relay_rows(c, home) if r["recipient"] == addr]
    return rows[0] if rows else None


def wait_state(c, home, addr, state, timeout=30):
    return harness.poll(lambda: (lambda r: r if r and r["state"] == state else None)(
        row_for(c, home, addr)), timeout, f"{addr} {state} in {home.name}'s outbox",
        c.all_log_tails)


def submit(port, user, pw, sender, rcpts, subject, extra_to=""):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.example")
    s.login(user, pw)
    body = (f"From: <{sender}>\r\nTo: {', '.join('<%s>' % r for r in rcpts)}\r\n"
            f"Subject: {subject}\r\n\r\nHello from {subject}.\r\n.a line with a dot\r\n")
    s.sendmail(sender, rcpts, body.encode())
    s.quit()


def test(c):
    if shutil.which("hashcash") is None:
        print("hashcash is not installed (Debian package hashcash): "
              "the stamps cannot be checked")
        sys.exit(77)
    sink = Sink()
    sport = sink.port
    extra_a = ["--smtp-port", "any", "--smarthost", f"127.0.0.1:{sport}",
               "--smarthost-retry", "1", "--smarthost-stamp-bits", str(BITS)]
    seed, a, b = harness.mail_pair(c, extra_a=extra_a, extra_b=["--smtp-port", "any"])
    harness.trust(c, a, b)

    # ---- no smarthost: a clear refusal -------------------------------------
    rc, doc, err = harness.mail_send(c, b.home, to=["nobody@internet.example"], subject="x",
                                     body="x", expect_rc=None)
    check(rc == 1 and "smarthost" in err, f"send without smarthost: {rc} {doc} {err}")
    bst = b.status()
    check(bst["smarthost"]["enabled"] is False, f"b's status: {bst['smarthost']}")
    rc, bpw, err = c.cli_json(["smtp", "password", "--home", b.home.path])
    s = smtplib.SMTP("127.0.0.1", bst["ports"]["smtp"], timeout=20)
    s.ehlo("client.example")
    s.login(b.home.fingerprint, bpw["password"])
    s.mail(f"<{b.home.address}>")
    code, text = s.rcpt("<nobody@internet.example>")
    check(code == 550 and b"smarthost" in text, f"RCPT without smarthost: {code} {text!r}")
    s.quit()

    # ---- smtplib: Postern and Internet recipients in one message -----------
    st = a.status()
    check(st["smarthost"]["enabled"] and st["smarthost"]["host"] == f"127.0.0.1:{sport}" and
          st["smarthost"]["queue"] == 0, f"a's status: {st['smarthost']}")
    rc, pw, err = c.cli_json(["smtp", "password", "--home", a.home.path])
    check(rc == 0, f"smtp password: {err}")
    ext1 = "one@internet.example"
    submit(st["ports"]["smtp"], a.home.fingerprint, pw["password"], a.home.address,
           [b.home.address, ext1], "mixed")
    got = harness.poll(lambda: sink.for_rcpt(ext1), 60, "the sink's copy for ext1",
                       c.all_log_tails)
    check(len(got) == 1, f"{len(got)} copies for {ext1}")
    mail_from, rcpts, data = got[0]
    check(rcpts == [ext1], f"the Internet copy went to {rcpts}")
    check(mail_from == f"<{a.home.address}>", f"MAIL FROM {mail_from}")
    check(b"Subject: mixed" in data and b"\r\n.a line with a dot\r\n" in data,
          f"the sink's copy: {data[:400]!r}")
    stamps = stamp_of(data)
    check(len(stamps) == 1, f"X-Hashcash fields: {stamps}")
    ok, out = hashcash_ok(c, stamps[0].strip(), ext1)
    check(ok, f"hashcash -c refuses {stamps[0]}: {out}")
    check(stamps[0].startswith(f"1:{BITS}:"), f"stamp {stamps[0]}")
    bad, _ = hashcash_ok(c, stamps[0].strip(), "other@internet.example")
    check(not bad, "hashcash -c accepts the stamp for another address: the check is void")
    # b (a Postern address) got it through Postern, never through the sink
    harness.poll(lambda: [p for p in harness.maildir_all(b.home)
                          if b"Subject: mixed" in harness.read_bytes(p)], 60,
                 "b's Postern copy", c.all_log_tails)
    check(not sink.for_rcpt(b.home.address), "a Postern address went to the smarthost")
    wait_state(c, a.home, ext1, "sent")

    # ---- postern send to an Internet address -------------------------------
    ext2 = "two@internet.example"
    rc, doc, err = harness.mail_send(c, a.home, to=[ext2], subject="by send", body="hi")
    check(any(r.get("internet") for r in doc["recipients"]), f"send's answer: {doc}")
    got = harness.poll(lambda: sink.for_rcpt(ext2), 60, "the sink's copy for ext2",
                       c.all_log_tails)
    ok, out = hashcash_ok(c, stamp_of(got[0][2])[0].strip(), ext2)
    check(ok, f"hashcash -c (send): {out}")

    # ---- postern sendmail -t: the same route --------------------------------
    ext5 = "five@internet.example"
    msg = (f"From: <{a.home.address}>\nTo: <{ext5}>\nBcc: <{b.home.address}>\n"
           "Subject: by sendmail\n\nhi\n").encode()
    rc, out, err = c.run([c.postern, "sendmail", "--home", a.home.path, "-t", "-oi"],
                         input_bytes=msg)
    check(rc == 0, f"sendmail -t: {rc} {out} {err}")
    got = harness.poll(lambda: sink.for_rcpt(ext5), 60, "the sink's copy for ext5",
                       c.all_log_tails)
    # the address as a whole word: a Message-ID's random hex may end in "b"
    # right before "@it.example" (1 run in 16 read "...5d5b@it.example")
    bcc_word = re.compile(rb"(?<![\w.+-])" + re.escape(b.home.address.encode()))
    check(b"Bcc:" not in got[0][2] and not bcc_word.search(got[0][2]),
          f"the Bcc recipient shows in the Internet copy: {got[0][2][:300]!r}")
    check(not sink.for_rcpt(b.home.address), "the Bcc Postern address went to the smarthost")

    # ---- sink down: retrying, a restart, back: delivered once --------------
    sink.close()
    ext3 = "three@internet.example"
    harness.mail_send(c, a.home, to=[ext3], subject="while down", body="later")
    row = wait_state(c, a.home, ext3, "retrying")
    check(row["error"] != "" and row["attempts"] >= 1, f"retrying row: {row}")
    text = c.cli(["outbox", "--home", a.home.path])
    check(ext3 in text[1] and "retrying" in text[1], f"outbox text: {text}")
    check(a.status()["smarthost"]["queue"] == 1, "queue length while down")
    a.stop()
    c.restart(a)
    row = row_for(c, a.home, ext3)
    check(row is not None and row["state"] in ("queued", "retrying"),
          f"after the restart: {row}")
    sink = Sink(sport)
    wait_state(c, a.home, ext3, "sent", timeout=90)
    check(len(sink.for_rcpt(ext3)) == 1, f"{len(sink.for_rcpt(ext3))} copies of ext3")

    # ---- give-up: a bounce into the sender's INBOX -------------------------
    sink.close()
    a.stop()
    c.restart(a, extra=extra_a + ["--smarthost-giveup", "3"])
    ext4 = "four@internet.example"
    harness.mail_send(c, a.home, to=[ext4], subject="never arrives", body="gone")
    row = wait_state(c, a.home, ext4, "bounced", timeout=60)
    check("give-up" in row["error"], f"bounced row: {row}")

    def bounce():
        for p in harness.maildir_all(a.home):
            d = harness.read_bytes(p)
            if b"Undelivered mail returned to sender: " + ext4.encode() in d:
                return d
        return None
    d = harness.poll(bounce, 30, "the bounce in a's INBOX", c.all_log_tails)
    msg = email.message_from_bytes(d)
    parts = [p for p in msg.walk() if p.get_content_type() == "message/rfc822"]
    check(len(parts) == 1, f"bounce parts: {[p.get_content_type() for p in msg.walk()]}")
    inner = parts[0].get_payload()[0]
    check(inner["Subject"] == "never arrives", f"attached original: {inner['Subject']}")
    check(a.status()["smarthost"]["queue"] == 0, "queue not empty at the end")

    # ---- an AUTH file others can read stops the start, with the fix -------
    d = c.new_home("d", "d@it.example")
    auth = os.path.join(c.tmp, "smarthost.auth")
    with open(auth, "w") as f:
        f.write("user:secret\n")
    os.chmod(auth, 0o644)
    r = subprocess.run([c.posternd, "--home", d.path, "--network", str(c.network), "--port", "0",
                        "--fetch-port", "0", "--smtp-port", "0", "--smarthost",
                        f"127.0.0.1:{sport}", "--smarthost-auth-file", auth],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and f"chmod 600 {auth}" in r.stderr,
          f"a 0644 auth file: rc {r.returncode}: {r.stderr[-400:]}")
    # ---- a 5xx for a recipient: bounced at once, not retried ---------------
    a.stop()
    relay_dir = os.path.join(a.home.path, "relay")
    check(os.listdir(relay_dir) == [], f"copies kept after sent/bounced: {os.listdir(relay_dir)}")
    with open(os.path.join(relay_dir, "tmp-0123456789abcdef"), "w") as f:
        f.write("a send cut short by a crash")
    c.restart(a, extra=extra_a)
    check(os.listdir(relay_dir) == [], f"a leftover tmp file survived: {os.listdir(relay_dir)}")
    sink = Sink(sport)
    ext6 = "refused@internet.example"
    harness.mail_send(c, a.home, to=[ext6], subject="refused", body="no")
    row = wait_state(c, a.home, ext6, "bounced", timeout=30)
    check("550" in row["error"] and row["attempts"] <= 1, f"a 5xx: {row}")
    sink.close()

    # ---- AUTH from a 0600 file; a refused login is retried, not bounced ----
    auth = os.path.join(c.tmp, "open.auth")
    with open(auth, "w") as f:
        f.write("me:right\n")
    os.chmod(auth, 0o600)
    sink = Sink(sport, auth="me:wrong")
    a.stop()
    c.restart(a, extra=extra_a + ["--smarthost-auth-file", auth])
    check(a.status()["smarthost"]["auth"] is True, "status: auth")
    ext7 = "seven@internet.example"
    harness.mail_send(c, a.home, to=[ext7], subject="with auth", body="hi")
    row = wait_state(c, a.home, ext7, "retrying", timeout=30)
    check(sink.logins and sink.logins[0] == "me", f"logins {sink.logins}")
    sink.close()
    sink = Sink(sport, auth="me:right")
    wait_state(c, a.home, ext7, "sent", timeout=60)
    check(len(sink.for_rcpt(ext7)) == 1, "the AUTH copy")
    sink.close()

    harness.check_all_logs(c)  # the logs of a's earlier starts too
    note("smarthost: sent with valid stamps, retried across a restart, bounced")
    sink.close()


if __name__ == "__main__":
    harness.main(test, "smarthost")
