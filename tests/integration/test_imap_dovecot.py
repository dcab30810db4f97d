#!/usr/bin/env python3
"""IMAP for phones and desktop clients (issue 11, part 5): a real Dovecot
(Debian's dovecot-imapd) serves a real node's Maildir, with the config the
repo ships (dist/dovecot/personal.conf, which includes postern.conf; the
test fills in only the @WORDS@: paths, port, user), and Python's imaplib
as the client:

1. b gets a's mail three ways: trusted (INBOX, twice), known (.Known),
   a stamped stranger's (.Unknown); .Legacy and .Sent do not exist yet;
2. Dovecot lists INBOX, Known, Unknown, Legacy and Sent (\\Sent), all
   subscribed, and makes Legacy and Sent as Maildir++ folders when they
   are first opened; each message
   fetched over IMAP is the file the node delivered, byte for byte (CRLF);
3. flags set over IMAP are what `postern inbox --json` reports: \\Seen
   (seen), \\Flagged (flagged), a MOVE from Unknown to Known (folder, and
   `postern read` still finds it), \\Deleted + EXPUNGE (missing, and `read`
   says gone);
4. the node keeps delivering into the Maildir Dovecot serves: a new
   message shows up in the open session.

Dovecot runs as a throwaway instance: its config, sockets, state and log
under the test's temp folder, IMAP on 127.0.0.1 on a free high port, in
the foreground as this user. Dovecot never reads mail as root ("Mail access
not allowed for root"), so when the test runs as root it starts Dovecot in
a user namespace where root's files look like nobody's: unshare
--map-user=nobody (no privileges added, no other ids mapped). Dovecot is
stopped at the end, also on failure: SIGTERM, then SIGKILL to its process
group, and the test checks that none of its processes is left."""

import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SHIPPED = os.path.join(SRC, "dist", "dovecot")
POW_BITS = 8
LOGIN, PASSWORD = "me", "imap-test-password"
FOLDERS = ("INBOX", "Known", "Unknown", "Legacy", "Sent")


def skip(why):
    print(f"SKIP imap_dovecot: {why}")
    sys.exit(77)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    """One throwaway Dovecot serving home's Maildir on 127.0.0.1."""

    def __init__(self, cluster, home):
        self.dir = os.path.join(cluster.tmp, "dovecot")
        os.makedirs(self.dir, mode=0o700)
        # the userdb home: ~/.local/share/postern is the node's home, so
        # postern.conf's mail_location is used as shipped
        self.home = os.path.join(cluster.tmp, "imap-home")
        os.makedirs(os.path.join(self.home, ".local", "share"), mode=0o700)
        os.symlink(home.path, os.path.join(self.home, ".local", "share", "postern"))
        self.prefix = []
        if os.geteuid() == 0:
            user, group = "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
            self.prefix = ["unshare", "--user", f"--map-user={user}", f"--map-group={group}"]
        else:
            user = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
        self.words = {"@DIR@": self.dir, "@HOME@": self.home, "@USER@": user, "@GROUP@": group}
        self.proc = None
        self.port = None

    def write_config(self, port):
        with open(os.path.join(SHIPPED, "personal.conf")) as f:
            text = f.read()
        for k, v in dict(self.words, **{"@PORT@": str(port)}).items():
            text = text.replace(k, v)
        check("@" not in re.sub(r"#.*", "", text), f"a @WORD@ left in personal.conf:\n{text}")
        self.conf = os.path.join(self.dir, "personal.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        shutil.copy(os.path.join(SHIPPED, "postern.conf"), os.path.join(self.dir, "postern.conf"))
        hashed = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", PASSWORD],
                                capture_output=True, text=True, timeout=30)
        check(hashed.returncode == 0 and hashed.stdout.startswith("{SHA512-CRYPT}"),
              f"doveadm pw: {hashed.returncode} {hashed.stdout} {hashed.stderr}")
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write(f"{LOGIN}:{hashed.stdout.strip()}\n")

    def log(self):
        out = []
        for name in ("dovecot.log", "stderr"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append(f"--- dovecot {name}:\n" + f.read()[-4000:])
            except OSError:
                pass
        return "\n".join(out)

    def start(self):
        """Starts Dovecot on a free port; a port taken meanwhile by someone
        else is given up for another one (3 tries)."""
        for attempt in range(3):
            self.port = free_port()
            self.write_config(self.port)
            with open(os.path.join(self.dir, "stderr"), "w") as err:
                self.proc = subprocess.Popen(self.prefix + ["dovecot", "-F", "-c", self.conf],
                                             stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                             start_new_session=True)

            def up():
                if self.proc.poll() is not None:
                    return "exited"
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                        return "up" if s.recv(64).startswith(b"* OK") else None
                except OSError:
                    return None

            state = harness.poll(up, 20, f"Dovecot on 127.0.0.1:{self.port}", self.log)
            if state == "up":
                note(f"Dovecot up on 127.0.0.1:{self.port}"
                     f"{' (user namespace, as nobody)' if self.prefix else ''}")
                return
            check("in use" in self.log(), f"Dovecot exited ({self.proc.returncode}):\n"
                  + self.log())
            self.proc = None
        raise harness.TestFailure("no free port for Dovecot in 3 tries\n" + self.log())

    def stop(self):
        """Stops Dovecot and every process it started: SIGTERM to the
        master, then to its process group (a mail process serving a client
        that is still connected outlives the master, and so do the log and
        stats processes it talks to), SIGKILL after 10 s. Returns what was
        still there after SIGKILL: nothing, or the test fails."""
        if self.proc is None:
            return []
        proc, self.proc = self.proc, None
        pgid = proc.pid

        def signal_group(sig):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass

        def gone():
            try:
                os.killpg(pgid, 0)
                return False
            except ProcessLookupError:
                return True
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            signal_group(signal.SIGKILL)
            proc.wait(10)
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            signal_group(sig)
            try:
                harness.poll(gone, wait, "Dovecot's processes to exit")
                return []
            except harness.TestFailure:
                pass
        ps = subprocess.run(["ps", "-o", "pid,comm", "-g", str(pgid)], capture_output=True,
                            text=True)
        return ps.stdout.splitlines()[1:]


def send(c, a, b, subject):
    _, doc, _ = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject=subject,
                                  body=f"{subject}: the body\nsecond line\n")
    mid = doc["message_id"]
    copies = harness.wait_delivered(c, b, mid)
    check(len(copies) == 1, f"{subject}: copies {copies}")
    return mid, copies[0]


def folder_of(path):
    return os.path.basename(os.path.dirname(os.path.dirname(path)))


def inbox(c, b):
    doc = harness.mail_inbox(c, b.home)
    return doc, {m["id"]: m for m in doc["messages"]}


def ok(resp, what):
    typ, data = resp
    check(typ == "OK", f"IMAP {what}: {typ} {data}")
    return data


def uid_of(m, mid):
    """The UID of the message whose X-Postern-Message-Id is mid in the
    selected mailbox."""
    data = ok(m.uid("SEARCH", None, "HEADER", "X-Postern-Message-Id", mid), f"search {mid[:8]}")
    uids = data[0].split()
    check(len(uids) == 1, f"search for {mid[:8]}: {data}")
    return uids[0].decode()


def preflight():
    """Exits 77 (SKIP) with the reason when Dovecot cannot run here."""
    if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
        skip("dovecot or doveadm is not installed (scripts/install-deps: dovecot-imapd)")
    if os.geteuid() == 0:
        try:
            probe = subprocess.run(["unshare", "--user", "--map-user=nobody", "true"],
                                   capture_output=True, text=True, timeout=30)
            why = " ".join(probe.stderr.split()) or f"exit {probe.returncode}"
        except OSError as e:
            probe, why = None, str(e)
        if probe is None or probe.returncode != 0:
            skip("runs as root, and Dovecot never reads mail as root, but this machine "
                 f"refuses the user namespace it would run in (a container?): {why}")


def check_doc():
    """docs/IMAP.md shows postern.conf as shipped, and its recipe fills in
    every @WORD@ of personal.conf."""
    with open(os.path.join(SRC, "docs", "IMAP.md")) as f:
        doc = f.read()
    with open(os.path.join(SHIPPED, "postern.conf")) as f:
        check("```\n" + f.read() + "```" in doc, "docs/IMAP.md does not show dist/dovecot/"
              "postern.conf as it is")
    with open(os.path.join(SHIPPED, "personal.conf")) as f:
        words = set(re.findall(r"@[A-Z]+@", re.sub(r"#.*", "", f.read())))
    check(words == {"@DIR@", "@HOME@", "@USER@", "@GROUP@", "@PORT@"}, f"words {words}")
    for w in words:
        check(f"s|{w}|" in doc, f"docs/IMAP.md's recipe does not fill in {w}")


def test(c):
    check_doc()
    # 1. three tiers: trusted -> INBOX, known -> .Known, stranger -> .Unknown
    _, a, b = harness.mail_pair(c, extra_b=["--pow-bits", str(POW_BITS)])
    t1, t1_path = send(c, a, b, "trusted one")
    t2, _ = send(c, a, b, "trusted two")
    harness.trust(c, b, a, tier="known")
    k1, k1_path = send(c, a, b, "known")
    rc, _, err = c.cli(["trust", "rm", a.home.fingerprint, "--home", b.home.path])
    check(rc == 0, f"trust rm: {rc} {err}")
    u1, u1_path = send(c, a, b, "stranger")
    check([folder_of(p) for p in (t1_path, k1_path, u1_path)] == ["Maildir", ".Known", ".Unknown"],
          f"delivered to {t1_path}, {k1_path}, {u1_path}")
    delivered = {mid: harness.read_bytes(p) for mid, p in
                 ((t1, t1_path), (k1, k1_path), (u1, u1_path))}
    root = b.home.file("Maildir")
    for f in (".Legacy", ".Sent"):
        check(not os.path.exists(os.path.join(root, f)), f"{f} exists before Dovecot ran")
    doc, listed = inbox(c, b)
    check(all(m["seen"] is False and m["flagged"] is False for m in listed.values())
          and len(listed) == 4, f"before IMAP: {doc}")
    note("delivered: 2 to INBOX, 1 to .Known, 1 stamped to .Unknown")

    dc = Dovecot(c, b.home)
    try:
        dc.start()
        imap_session(c, b, dc, delivered, root, t1, t2, k1, u1)
    except BaseException:
        print(dc.log(), file=sys.stderr)
        left = dc.stop()
        if left:
            print(f"Dovecot's processes left even after SIGKILL: {left}", file=sys.stderr)
        raise
    left = dc.stop()
    check(not left, f"Dovecot's processes left even after SIGKILL: {left}")
    note("Dovecot stopped, none of its processes left")


def imap_session(c, b, dc, delivered, root, t1, t2, k1, u1):
    m = imaplib.IMAP4("127.0.0.1", dc.port, timeout=20)
    try:
        ok(m.login(LOGIN, PASSWORD), "login")
        # 2. the folders, subscribed, and the messages as delivered
        names = {}
        for line in ok(m.list(), "LIST"):
            mm = re.match(rb'\((.*?)\) "(.*?)" (.*)$', line)
            check(mm, f"LIST line {line!r}")
            names[mm.group(3).decode().strip('"')] = mm.group(1).decode()
        check(set(FOLDERS) <= set(names), f"LIST shows {names}")
        check("\\Sent" in names["Sent"], f"Sent is not \\Sent: {names}")
        subscribed = {ln.decode().rsplit(" ", 1)[-1].strip('"') for ln in ok(m.lsub(), "LSUB")}
        check(set(FOLDERS) - {"INBOX"} <= subscribed, f"LSUB shows {subscribed}")
        for f in (".Legacy", ".Sent"):
            # listed at once; made on disk when first opened
            ok(m.select(f[1:]), f"select {f[1:]}")
            d = os.path.join(root, f)
            check(all(os.path.isdir(os.path.join(d, s)) for s in ("cur", "new", "tmp")) and
                  os.path.isfile(os.path.join(d, "maildirfolder")), f"{f} is no Maildir++ folder")
        note(f"LIST: {', '.join(sorted(names))}; Legacy and Sent made and subscribed")

        where = {t1: "INBOX", k1: "Known", u1: "Unknown"}
        for mid, folder in where.items():
            ok(m.select(folder), f"select {folder}")
            uid = uid_of(m, mid)
            data = ok(m.uid("FETCH", uid, "(BODY.PEEK[])"), f"fetch {mid[:8]}")
            got = data[0][1]
            want = delivered[mid].replace(b"\n", b"\r\n")
            check(got == want, f"{folder}: IMAP gives {got[:300]!r}\nthe node wrote "
                  f"{delivered[mid][:300]!r}")
        doc, listed = inbox(c, b)
        check(not any(x["seen"] for x in listed.values()), f"BODY.PEEK set \\Seen: {doc}")
        note("every message fetched over IMAP is the file the node delivered")

        # 3. flags and moves over IMAP, seen by postern inbox and read
        ok(m.select("INBOX"), "select INBOX")
        ok(m.uid("STORE", uid_of(m, t1), "+FLAGS", "(\\Seen)"), "store \\Seen")
        doc, listed = inbox(c, b)
        check(listed[t1]["seen"] is True and listed[t1]["flagged"] is False,
              f"\\Seen not seen by inbox: {listed.get(t1)}")

        ok(m.select("Known"), "select Known")
        ok(m.uid("STORE", uid_of(m, k1), "+FLAGS", "(\\Flagged)"), "store \\Flagged")
        doc, listed = inbox(c, b)
        check(listed[k1]["flagged"] is True and listed[k1]["seen"] is False,
              f"\\Flagged not seen by inbox: {listed.get(k1)}")
        note("\\Seen and \\Flagged set over IMAP: inbox says seen, flagged")

        ok(m.select("Unknown"), "select Unknown")
        ok(m.uid("MOVE", uid_of(m, u1), "Known"), "move to Known")
        doc, listed = inbox(c, b)
        check(listed.get(u1, {}).get("folder") == "Known", f"after MOVE: {listed.get(u1)}")
        rc, out, err = c.cli(["read", "--home", b.home.path, u1[:12]])
        check(rc == 0 and f"X-Postern-Message-Id: {u1}" in out and "stranger: the body" in out,
              f"read after MOVE: {rc} {err}")
        note("moved from Unknown to Known over IMAP: inbox and read follow it")

        ok(m.select("INBOX"), "select INBOX")
        missing0 = doc["missing"]
        ok(m.uid("STORE", uid_of(m, t2), "+FLAGS", "(\\Deleted)"), "store \\Deleted")
        doc, listed = inbox(c, b)
        check(t2 in listed and doc["missing"] == missing0,
              f"\\Deleted alone removed the message: {doc}")
        ok(m.expunge(), "expunge")
        doc, listed = inbox(c, b)
        check(t2 not in listed and doc["missing"] == missing0 + 1, f"after EXPUNGE: {doc}")
        rc, out, err = c.cli(["read", "--home", b.home.path, t2[:12]])
        check(rc != 0 and "gone" in err, f"read of an expunged message: {rc} {out} {err}")
        check(listed[t1]["seen"] is True and listed[k1]["flagged"] is True,
              f"flags lost by the expunge: {doc}")
        note("\\Deleted + EXPUNGE: inbox counts it missing, read says gone")

        # 4. the node keeps delivering into the Maildir Dovecot serves
        a_home = [h for h in c.homes if h.name == "a"][0]
        a = [n for n in c.nodes if n.home is a_home][0]
        u2, _ = send(c, a, b, "stranger again")
        status = ok(m.status("Unknown", "(MESSAGES UNSEEN)"), "status Unknown")
        check(b"MESSAGES 1" in status[0] and b"UNSEEN 1" in status[0],
              f"STATUS Unknown after a new delivery: {status}")
        ok(m.select("Unknown"), "select Unknown")
        uid_of(m, u2)
        note("a message delivered during the session shows up over IMAP")
        m.logout()
    finally:
        if m.state != "LOGOUT":
            m.shutdown()


if __name__ == "__main__":
    preflight()
    harness.main(test, "imap_dovecot")
