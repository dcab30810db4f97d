#!/usr/bin/env python3
"""SMTP submission and LMTP benchmark, Postern next to Postfix, one run.

Postern: two real posternd processes on loopback; a takes submissions on a
free port (--smtp-port any); a and b trust each other, so no stamp is
minted. Postfix: a throwaway instance
(config, queue, data and Maildir under the run's temp folder, smtpd on a
free loopback port) that delivers to a Maildir with its virtual(8) agent,
which fsyncs each file before the queue manager counts it delivered.

For each of the two, N messages of 4 KiB with smtplib (Python's client):
  - over sessions of 100 messages (Postern's per-session cap, docs/SMTP.md;
    Postfix gets the same sessions), and
  - with a connection (EHLO, AUTH for Postern, MAIL, RCPT, DATA, QUIT) per
    message;
measured: the accept rate (the 250 after DATA; Postern sends it once the
message is durable in its outbox, Postfix once it is in its queue file) and
the latency from the start of a message's submission to the file in the
recipient's Maildir (its ctime: the rename into new/), p50 and p99.
Then N messages over LMTP sessions of 100 into Postern's node (the rate of
final 250s; each comes after the Maildir commit), without a stamp (.Legacy).

Run by hand (a benchmark, not a test). Postfix's master runs only as root;
as another user the Postfix columns are left out.

  python3 tools/bench/bench_smtp.py [--build build] [--messages 1000]
"""
import argparse
import os
import pwd
import smtplib
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))] if s else float("nan")


def message(sender, rcpt, token):
    line = (f"{token} " + "lorem ipsum dolor sit amet " * 3)[:75] + "\r\n"
    body = (line * (4096 // len(line) + 1))[:4096]
    return (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {token}\r\n"
            f"Message-ID: <{token}@bench.example>\r\n\r\n{body}").encode()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class MaildirWatch:
    """Files that appeared in the new/ and cur/ folders of a Maildir (all
    its folders), by the token in their Subject, with their ctime."""

    def __init__(self, root):
        self.root = root
        self.seen = {}

    def scan(self):
        for dirpath, dirs, files in os.walk(self.root):
            if os.path.basename(dirpath) not in ("new", "cur"):
                continue
            for f in files:
                p = os.path.join(dirpath, f)
                if p in self.seen:
                    continue
                try:
                    st = os.stat(p)
                    with open(p, "rb") as fh:
                        head = fh.read(4096)
                except OSError:
                    continue
                i = head.find(b"Subject: ")
                if i >= 0:
                    self.seen[p] = (head[i + 9:head.find(b"\n", i)].strip().decode(), st.st_ctime)

    def times(self):
        return {tok: t for tok, t in self.seen.values()}


SESSION_MAX = 100  # Postern's submission takes 100 messages per session (docs/SMTP.md)


def submit(port, login, sender, rcpt, n, prefix, per_connection):
    """Submits n messages, SESSION_MAX per session (or one per connection);
    returns ({token: start time}, seconds)."""
    starts = {}
    t0 = time.time()
    s = None
    for i in range(n):
        tok = f"{prefix}{i:05d}"
        if s is None:
            s = smtplib.SMTP("127.0.0.1", port, timeout=60)
            s.ehlo("bench.example")
            if login:
                s.login(*login)
        starts[tok] = time.time()
        s.sendmail(sender, [rcpt], message(sender, rcpt, tok))
        if per_connection or (i + 1) % SESSION_MAX == 0:
            s.quit()
            s = None
    if s is not None:
        s.quit()
    return starts, time.time() - t0


def wait_files(watch, starts, deadline):
    while True:
        watch.scan()
        got = watch.times()
        if all(t in got for t in starts) or time.time() > deadline:
            return {t: got[t] - starts[t] for t in starts if t in got}
        time.sleep(0.02)


class Postfix:
    """A throwaway Postfix delivering x@pf.bench to DIR/Maildir/."""

    def __init__(self, tmp, port=0):
        os.chmod(tmp, 0o711)  # Postfix's daemons (user postfix) walk into it
        self.dir = os.path.join(tmp, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.maildir = os.path.join(self.dir, "mail", "Maildir")
        os.makedirs(self.etc)
        self.port = port or free_port()
        # virtual(8) delivers as an unprivileged user (never root)
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
        os.makedirs(os.path.join(self.dir, "mail"))
        os.chown(os.path.join(self.dir, "mail"), uid, gid)
        os.makedirs(os.path.join(self.dir, "data"))
        os.makedirs(os.path.join(self.dir, "queue"))
        pw = pwd.getpwnam("postfix")
        os.chown(os.path.join(self.dir, "data"), pw.pw_uid, pw.pw_gid)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.pf.bench
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = {self.dir}/maillog
maillog_file_prefixes = {self.dir}
biff = no
smtputf8_enable = no
message_size_limit = 0
virtual_mailbox_limit = 0
alias_maps =
virtual_mailbox_domains = pf.bench
virtual_mailbox_base = {self.dir}/mail
virtual_mailbox_maps = inline:{{ {{x@pf.bench = Maildir/}} }}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
""")
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(f"""127.0.0.1:{self.port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""")
        chk = subprocess.run(["postfix", "-c", self.etc, "check"], capture_output=True, text=True,
                             timeout=60)
        if chk.returncode != 0:
            raise SystemExit(f"bench: postfix check: {chk.stderr}")
        self.err = os.path.join(self.dir, "stderr")
        with open(self.err, "w") as err:
            self.proc = subprocess.Popen(["postfix", "-c", self.etc, "start-fg"],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.1)
        with open(self.err) as f:
            why = f.read()[-2000:]
        with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
            why += f.read()[-2000:]
        raise SystemExit(f"bench: Postfix did not come up:\n{why}")

    def stop(self):
        subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True, timeout=60)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--messages", type=int, default=1000)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ["PST_POSTERND"] = os.path.join(build, "node/posternd")
    os.environ["PST_POSTERN"] = os.path.join(build, "tools/postern/postern")
    import harness

    n = args.messages
    c = harness.Cluster("bench-smtp")
    pf = None
    rows = []
    try:
        quiet = ["--republish", "300"]
        seed, a, b = harness.mail_pair(c, extra_a=quiet + ["--smtp-port", "any"],
                                       extra_b=quiet)
        # both ways, as bench_mail.py: with b not in a's contacts, `pow auto`
        # would mint a stamp for every message and the bench would measure
        # hashcash (docs/MAIL.md, "Where the time goes")
        harness.trust(c, a, b)
        port = a.status()["ports"]["smtp"]
        rc, doc, err = c.cli_json(["smtp", "password", "--home", a.home.path])
        login = (a.home.address, doc["password"])
        watch_b = MaildirWatch(b.home.file("Maildir"))
        results = {}
        for mode, per_conn in (("sessions of 100", False), ("a connection per message", True)):
            starts, secs = submit(port, login, a.home.address, b.home.address, n,
                                  f"pst{int(per_conn)}-", per_conn)
            lat = wait_files(watch_b, starts, time.time() + 300)
            results[("Postern", mode)] = (n / secs, lat, len(lat))
        if os.getuid() == 0:
            pf = Postfix(c.tmp)
            watch_pf = MaildirWatch(pf.maildir)
            for mode, per_conn in (("sessions of 100", False), ("a connection per message", True)):
                starts, secs = submit(pf.port, None, "bench@pf.bench", "x@pf.bench", n,
                                      f"pf{int(per_conn)}-", per_conn)
                lat = wait_files(watch_pf, starts, time.time() + 300)
                results[("Postfix", mode)] = (n / secs, lat, len(lat))
        # LMTP into a's node, unstamped: .Legacy
        lmtp_path = a.status()["lmtp"]["path"]
        t0 = time.time()
        s = None
        for i in range(n):
            if s is None:
                s = smtplib.LMTP(lmtp_path, timeout=60)
                s.ehlo("mx.bench.example")
            tok = f"lmtp-{i:05d}"
            s.sendmail("someone@internet.example", [a.home.address],
                       message("someone@internet.example", a.home.address, tok))
            if (i + 1) % SESSION_MAX == 0:
                s.quit()
                s = None
        if s is not None:
            s.quit()
        lmtp_rate = n / (time.time() - t0)
        for mode in ("sessions of 100", "a connection per message"):
            for who in ("Postern", "Postfix"):
                if (who, mode) not in results:
                    continue
                rate, lat, got = results[(who, mode)]
                v = list(lat.values())
                rows.append((f"{who}, {mode}", f"{rate:.0f}", f"{pct(v, 50) * 1000:.1f}",
                             f"{pct(v, 99) * 1000:.1f}", f"{got}/{n}"))
            if ("Postfix", mode) in results:
                rp, lp, _ = results[("Postern", mode)]
                rf, lf, _ = results[("Postfix", mode)]
                rows.append((f"ratio Postern/Postfix, {mode}", f"{rp / rf:.2f}x",
                             f"{statistics.median(lp.values()) / statistics.median(lf.values()):.1f}x",
                             "", ""))
        print(f"{n} x 4 KiB over SMTP (smtplib), loopback, one run")
        print("| sender | accepted msg/s | submit -> Maildir p50 ms | p99 ms | delivered |")
        print("| --- | --- | --- | --- | --- |")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        print(f"\nLMTP into Postern, sessions of {SESSION_MAX}, {n} x 4 KiB: {lmtp_rate:.0f} msg/s "
              "(each 250 after the Maildir commit)")
    finally:
        if pf:
            pf.stop()
        c.close()


if __name__ == "__main__":
    main()
