#!/usr/bin/env python3
"""A real Postfix in front of Postern (docs/LMTP.md): Debian's Postfix, with
a throwaway config directory and queue under the test's temp folder, takes
mail over SMTP on a free loopback port and delivers it over LMTP into the
node, configured with dist/postfix/main.cf as shipped (its @WORDS@ filled
in) and the minimal dist/postfix/master.cf.

- unstamped mail lands in .Legacy, mail with an X-Hashcash stamp minted by
  the `hashcash` tool for the recipient lands in .Unknown;
- an address the node does not own is refused by Postfix itself at RCPT
  (local_recipient_maps), so Postfix never bounces what Postern refuses;
- a contact's address (`trust set --email`) with the Authentication-Results
  field Postfix itself adds (header_checks PREPEND, standing in for a
  DKIM/DMARC milter, under myhostname = the node's --lmtp-authserv-id):
  INBOX; the same From: with only the sender's own field of another
  authserv-id: .Legacy;
- with --lmtp-unknown reject, unstamped mail is bounced by Postfix with
  Postern's 550 text (how to mint a stamp), in Postfix's mail log.

Postfix's master runs only as root (it drops to the user postfix for the
delivery agents): as another user the test exits 77 with that reason.
"""

import grp
import pwd
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402
from test_imap_dovecot import free_port  # noqa: E402
from test_lmtp import BITS, folder_of, message, mint  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(SRC, "dist", "postfix")


def skip(why):
    print(f"SKIP lmtp_postfix: {why}")
    sys.exit(77)


class Postfix:
    """One throwaway Postfix instance (config, queue, data, log in dir)."""

    def __init__(self, cluster, socket_path):
        self.dir = os.path.join(cluster.tmp, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        os.makedirs(self.etc, mode=0o755)
        self.log_path = os.path.join(self.dir, "maillog")
        self.socket_path = socket_path
        self.proc = None
        self.port = None

    def write_config(self, port):
        words = {"@DOMAIN@": "it.example", "@RECIPIENT@": "a@it.example",
                 "@SOCKET@": self.socket_path, "@LISTEN@": f"127.0.0.1:{port}"}
        with open(os.path.join(SHIPPED, "main.cf")) as f:
            shipped = f.read()
        with open(os.path.join(SHIPPED, "master.cf")) as f:
            master = f.read()
        for k, v in words.items():
            shipped = shipped.replace(k, v)
            master = master.replace(k, v)
        for text in (shipped, master):
            body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
            check("@" not in body.replace("a@it.example", ""), f"a @WORD@ is left:\n{text}")
        base = f"""# the throwaway instance's own places (a real host keeps Debian's)
compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.it.example
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {self.log_path}
maillog_file_prefixes = {self.dir}
biff = no
smtputf8_enable = no
# stands in for a DKIM/DMARC milter: Postfix adds our Authentication-Results
header_checks = regexp:{self.dir}/header_checks
"""
        with open(os.path.join(self.dir, "header_checks"), "w") as f:
            f.write("/^Subject: pf-vouched/ PREPEND Authentication-Results: mx.it.example; "
                    "dkim=pass header.d=trusted.example; dmarc=pass header.from=trusted.example\n")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(base + shipped)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(master)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self):
        for sub in ("queue", "data"):
            os.makedirs(os.path.join(self.dir, sub), mode=0o755, exist_ok=True)
        pw = pwd.getpwnam("postfix")
        os.chown(os.path.join(self.dir, "data"), pw.pw_uid, pw.pw_gid)
        for _ in range(3):
            self.port = free_port()
            self.write_config(self.port)
            # creates the queue's subdirectories with their owners and modes
            chk = subprocess.run(["postfix", "-c", self.etc, "check"], capture_output=True,
                                 text=True, timeout=60)
            check(chk.returncode == 0, f"postfix check: {chk.returncode} {chk.stderr}"
                  f"\n{self.log()}")
            err = open(os.path.join(self.dir, "stderr"), "w")
            self.proc = subprocess.Popen(["postfix", "-c", self.etc, "start-fg"],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True)
            err.close()

            def up():
                if self.proc.poll() is not None:
                    return "exited"
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                        return "up" if s.recv(64).startswith(b"220") else None
                except OSError:
                    return None

            state = harness.poll(up, 30, f"Postfix on 127.0.0.1:{self.port}", self.stderr)
            if state == "up":
                note(f"Postfix up on 127.0.0.1:{self.port}")
                return
            check("in use" in self.stderr() + self.log(),
                  f"Postfix exited ({self.proc.returncode}):\n{self.stderr()}\n{self.log()}")
        raise harness.TestFailure("no free port for Postfix in 3 tries")

    def stderr(self):
        try:
            with open(os.path.join(self.dir, "stderr"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def master_pid(self):
        try:
            with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        """`postfix stop` (the master ends its children; it runs in its own
        session, so a signal to the process started here would miss it),
        then SIGKILL to the master's group if it is still there."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        pid = self.master_pid()
        subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True, timeout=60)

        def gone():
            try:
                os.killpg(pid, 0)
                return False
            except ProcessLookupError:
                return True
        if pid is not None:
            try:
                harness.poll(gone, 15, "Postfix's processes to exit")
            except harness.TestFailure:
                os.killpg(pid, signal.SIGKILL)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def send(port, rcpts, data, sender="someone@internet.example"):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        return s.sendmail(sender, rcpts, data)


def test(c):
    for tool in ("postfix", "hashcash"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            skip(f"{tool} is not installed (scripts/install-deps)")
    if os.geteuid() != 0:
        skip("Postfix's master runs only as root (it drops to the user postfix itself)")
    try:
        postfix_gid = grp.getgrnam("postfix").gr_gid
    except KeyError:
        skip("no group postfix (Debian's postfix package makes it)")
    # Postfix's lmtp client runs as the user postfix: the socket is in a
    # directory of group postfix (setgid, so the socket gets that group too)
    # and the test's temp folder lets others pass through, not list
    os.chmod(c.tmp, 0o711)
    sockdir = os.path.join(c.tmp, "lmtp")
    os.mkdir(sockdir)
    os.chown(sockdir, -1, postfix_gid)
    os.chmod(sockdir, 0o2750)
    sock = os.path.join(sockdir, "lmtp.sock")
    home = c.new_home("a", "a@it.example")
    extra = ["--pow-bits", str(BITS), "--lmtp", sock, "--lmtp-authserv-id", "mx.it.example"]
    a = c.start(home, [], extra)
    st = os.stat(sock)
    check(st.st_gid == postfix_gid and st.st_mode & 0o777 == 0o660,
          f"socket group {st.st_gid} mode {oct(st.st_mode)}")
    pf = Postfix(c, sock)
    try:
        pf.start()
        note("unstamped -> .Legacy, stamped -> .Unknown, through Postfix")
        check(send(pf.port, ["a@it.example"], message("pf-plain")) == {}, "Postfix refused")
        harness.poll(lambda: folder_of(home, "pf-plain") == [".Legacy"], 30,
                     "pf-plain in .Legacy", pf.log)
        stamp = mint("a@it.example")
        send(pf.port, ["a@it.example"], message("pf-stamped", [stamp]))
        harness.poll(lambda: folder_of(home, "pf-stamped") == [".Unknown"], 30,
                     "pf-stamped in .Unknown", pf.log)
        data = harness.read_bytes(harness.maildir_all(home)[0])
        check(b"Return-Path: <someone@internet.example>" in data, "Return-Path")

        note("a contact's From vouched for by Postfix's own field -> INBOX; forged -> .Legacy")
        rc, _, err = c.cli(["trust", "set", harness.random_fingerprint(), "trusted", "--email",
                            "tina@trusted.example", "--home", home.path])
        check(rc == 0, f"trust set --email: {rc} {err}")

        def from_tina(subject, authres=()):
            head = [f"Authentication-Results: {ar}" for ar in authres]
            head += ["From: Tina <tina@trusted.example>", "To: a@it.example",
                     f"Subject: {subject}", f"Message-ID: <{subject}@trusted.example>"]
            return ("\r\n".join(head) + "\r\n\r\nhello\r\n").encode()
        send(pf.port, ["a@it.example"], from_tina("pf-vouched"), sender="tina@trusted.example")
        harness.poll(lambda: folder_of(home, "pf-vouched") == ["INBOX"], 30,
                     "pf-vouched in INBOX", pf.log)
        path = [p for p in harness.maildir_all(home) if "pf-vouched" in
                harness.read_bytes(p).decode(errors="replace")][0]
        check(b"Authentication-Results: mx.it.example;" in harness.read_bytes(path),
              "Postfix's field is in the stored message")
        send(pf.port, ["a@it.example"], from_tina(
            "pf-forged", ["evil.example; dmarc=pass header.from=trusted.example"]),
            sender="tina@trusted.example")
        harness.poll(lambda: folder_of(home, "pf-forged") == [".Legacy"], 30,
                     "pf-forged in .Legacy", pf.log)

        note("an address the node does not own: refused by Postfix at RCPT")
        try:
            send(pf.port, ["nobody@it.example"], message("pf-nobody"))
            check(False, "Postfix accepted nobody@it.example")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients["nobody@it.example"]
            check(code == 550, f"RCPT nobody: {code} {text!r}")

        note("--lmtp-unknown reject: Postfix bounces with Postern's text")
        a.stop()
        c.restart(a, extra=extra + ["--lmtp-unknown", "reject"])
        send(pf.port, ["a@it.example"], message("pf-rejected"), sender="")
        want = f"hashcash -m -b {BITS} a@it.example"
        harness.poll(lambda: "status=bounced" in pf.log() and want in pf.log(), 30,
                     "the bounce in Postfix's log", pf.log)
        check(folder_of(home, "pf-rejected") == [], "rejected mail was stored")
        send(pf.port, ["a@it.example"], message("pf-stamped-2", [mint("a@it.example")]))
        harness.poll(lambda: folder_of(home, "pf-stamped-2") == [".Unknown"], 30,
                     "pf-stamped-2 in .Unknown", pf.log)
        k = a.counters()
        check(k.get("lmtp.sessions", 0) > 0, f"counters {k}")
    finally:
        pf.stop()


if __name__ == "__main__":
    harness.main(test, "lmtp_postfix")
