#!/usr/bin/env python3
"""A full disk is a temporary failure: nothing torn, nothing corrupt, nothing
acknowledged that is not durable (issue 6, "Faults").

The homes of a (sender) and b (recipient, trusts a) are small tmpfs mounts;
b's Maildir is a third one, so that the Maildir and the store can be filled
one at a time. A filler file takes the free space.

1. b's Maildir full: a 2 MiB message hits ENOSPC in Maildir/tmp while it
   streams. b stays up, logs it, counts `fetch.retry.disk_full`; nothing in
   new/ or cur/, tmp/ empty, the store passes `PRAGMA integrity_check`, no
   receipt reached a.
2. b's store full (its WAL checkpointed to zero bytes, then the home filled)
   and the Maildir freed: the retry cannot record its fetch attempt, on
   which the exactly-once search after a crash relies, so the fetch is
   called off: `fetch.retry.store`, logged, nothing in new/, no receipt,
   the store still sound. (A store that fills up after the rename, which
   leaves a copy the store does not record: tests/unit/test_node_fake.c,
   group_commit_failure.)
   A notification that arrives meanwhile cannot be recorded (logged).
3. The home freed: the next try fetches and delivers the message and
   sends the receipt; exactly one copy, a's outbox shows the receipt. The
   second message's notification is read again and that message delivered
   once too.
4. a's disk full (its spool/ and outbox/ are tmpfs mounts of their own):
   `postern send` exits 1 with a clear message when the CLI cannot write
   its spool copy (spool/ full), when the node cannot write the ciphertext
   (outbox/ full) and when the store cannot commit the message (home full,
   WAL truncated first); nothing acknowledged, no spool, outbox/tmp-* or
   body file left, the outbox listing unchanged, a's store sound. Freed:
   the same send is acknowledged and delivered once.

The script always runs itself again inside a mount namespace of its own
(`unshare -m` as root, as in CI; `unshare -rm`, a user+mount namespace,
otherwise), where every node and CLI of the test runs: the tmpfs mounts die
with it even if the test is killed before its clean-up. Where no mount
namespace with a tmpfs can be made (a container or chroot that refuses
unshare or mount, no `unshare` tool), the test cannot run at all: it exits
77 (meson's SKIP) with one line that gives the reason."""

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_FAIL, check, note  # noqa: E402

FAST = ["--renotify", "1", "--inbox-poll", "1"]
HOME_BYTES = 16 << 20
MAILDIR_BYTES = 8 << 20
SUB_BYTES = 4 << 20    # a's spool/ and outbox/
BIG = 2 << 20          # does not fit in what is left of b's Maildir
MAILDIR_LEAVE = 256 << 10
SEND_BYTES = 1 << 20
RETRY_S = 150          # b retries after 5, 10, 20, 40, 80 s: room for two extra failures
NS_ENV = "PST_DISKFULL_IN_NAMESPACE"


def skip(reason):
    """Exit 77 (SKIP) with one line: scripts/count-tests.py shows it."""
    print(f"SKIP mail_diskfull: {reason}")
    sys.exit(77)


def reexec_in_namespace():
    """Runs this script again in a mount namespace of its own (as root of a
    new user namespace too when not root), so no mount outlives the test.
    Probes first, in a throw-away namespace, that a tmpfs can be mounted
    there: a container or chroot may refuse either step."""
    if os.environ.get(NS_ENV):
        if os.geteuid() != 0:
            print(f"FAIL mail_diskfull: not root even inside 'unshare -rm' "
                  f"(euid {os.geteuid()})", file=sys.stderr)
            sys.exit(1)
        return
    flag = "-m" if os.geteuid() == 0 else "-rm"
    env = dict(os.environ, **{NS_ENV: "1"})
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        skip("needs a mount namespace for its tmpfs mounts, and 'unshare' or 'mount' "
             "is not installed (util-linux, mount)")
    with tempfile.TemporaryDirectory(prefix="pst-diskfull-probe-") as point:
        probe = subprocess.run(["unshare", flag, "mount", "-t", "tmpfs", "-o", "size=64k",
                                "tmpfs", point], capture_output=True, text=True)
    if probe.returncode != 0:
        why = " ".join(probe.stderr.split()) or f"exit {probe.returncode}"
        skip(f"needs a mount namespace with a tmpfs, which this machine refuses "
             f"(a container or chroot?): 'unshare {flag} mount -t tmpfs': {why}")
    try:
        os.execvpe("unshare", ["unshare", flag, sys.executable, os.path.abspath(__file__)], env)
    except OSError as e:
        print(f"FAIL mail_diskfull: cannot run 'unshare {flag}': {e}", file=sys.stderr)
        sys.exit(1)


def home_on_tmpfs(c, mounts, name, size, address):
    path = os.path.join(c.tmp, name)
    harness.mount_tmpfs(path, size)
    mounts.append(path)
    return c.new_home(name, address)  # postern init into the empty mount point


def message(tag, size):
    return f"Subject: disk full {tag}\n\n".encode() + harness.mail_body_bytes(os.urandom(size))


def store_of(home):
    return home.file("postern.db")


def check_store(home, when):
    result = harness.sqlite_integrity(store_of(home))
    check(result == "ok", f"{home.name}'s store {when}: integrity_check says {result}")


def truncate_wal(home):
    """Checkpoints the store's WAL into the database and truncates it to
    zero bytes, so that the node's next commit must grow the WAL file."""
    def once():
        con = sqlite3.connect(store_of(home), timeout=5)
        try:
            busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            con.close()
        wal = store_of(home) + "-wal"
        return busy == 0 and (not os.path.exists(wal) or os.path.getsize(wal) == 0)
    harness.poll(once, 20, f"a TRUNCATE checkpoint of {home.name}'s WAL", interval=0.1)


def log_has(node, text):
    return text in node.log_text()


def no_receipt(c, a, b, mid):
    m, r = harness.outbox_recipient(harness.mail_outbox(c, a.home, mid), mid,
                                    b.home.fingerprint)
    check(m is not None and r is not None, f"{mid[:8]} is not in a's outbox")
    check(r["state"] in ("pending", "notified") and "receipt" not in r,
          f"a shows a receipt although b could not store {mid[:8]}: {r}")


def outbox_files(home):
    d = home.file("outbox")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def send_fails(c, a, to, path, what, says):
    """postern send that must fail: exit 1, a clear message, nothing kept."""
    before = harness.mail_outbox(c, a.home)["total"]
    files = outbox_files(a.home)
    rc, doc, err = harness.mail_send(c, a.home, to=[to], path=path, expect_rc=None)
    check(rc == EX_FAIL and doc is None,
          f"send with {what} exited {rc} (expected {EX_FAIL}): {doc} {err}")
    check(says in err, f"send with {what}: unclear message {err!r}")
    check(a.alive(), f"a died when {what}\n" + a.log_tail())
    check(harness.mail_outbox(c, a.home)["total"] == before, f"a's outbox changed ({what})")
    check(outbox_files(a.home) == files,
          f"a's outbox dir changed ({what}): {files} -> {outbox_files(a.home)}")
    spool = a.home.file("spool")
    left = [f for f in os.listdir(spool) if f != "filler"] if os.path.isdir(spool) else []
    check(left == [], f"spool files left ({what}): {left}")
    return err.strip().splitlines()[-1]


def test(c):
    mounts = []
    try:
        run(c, mounts)
    finally:
        c.close(keep_logs=True)  # every node stops before its home goes
        for m in reversed(mounts):
            if not harness.umount(m):
                print(f"mail_diskfull: cannot unmount {m}", file=sys.stderr)


def run(c, mounts):
    seed = c.start(c.new_home("seed"), [])
    ha = home_on_tmpfs(c, mounts, "a", HOME_BYTES, "a@it.example")
    for sub in ("spool", "outbox"):
        harness.mount_tmpfs(ha.file(sub), SUB_BYTES)
        mounts.append(ha.file(sub))
    hb = home_on_tmpfs(c, mounts, "b", HOME_BYTES, "b@it.example")
    maildir = hb.file("Maildir")
    harness.mount_tmpfs(maildir, MAILDIR_BYTES)
    mounts.append(maildir)
    a = c.start(ha, [seed], extra=FAST)
    b = c.start(hb, [seed], extra=FAST)
    for n in (seed, a, b):
        n.wait_joined()
    harness.wait_mail_ready(c, [a], [b])
    harness.trust(c, b, a)
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject="before",
                                     body="the disks still have room")
    harness.wait_receipt(c, a, doc["message_id"], b)
    note("a -> b works with both homes on tmpfs")

    # ---- 1. b's Maildir is full: ENOSPC while streaming into tmp/ ----
    filler_md = harness.fill_fs(maildir, leave=MAILDIR_LEAVE)
    data = message("big", BIG)
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint],
                                     path=harness.mail_write(c, data))
    mid = doc["message_id"]
    harness.wait_counter(b, "fetch.retry.disk_full", 1)
    check(b.alive(), "b died on a full Maildir\n" + b.log_tail())
    check(log_has(b, "the disk is full (will retry)"), "b did not log the full disk\n"
          + b.log_tail())
    check(harness.maildir_copies(b.home, mid) == [], "a copy in new/ or cur/ although the "
          f"disk was full: {harness.maildir_copies(b.home, mid)}")
    check(harness.maildir_tmp(b.home) == [], f"tmp/ after ENOSPC: {harness.maildir_tmp(b.home)}")
    check_store(b.home, "after ENOSPC in the Maildir")
    no_receipt(c, a, b, mid)
    check(harness.mail_inbox(c, b.home)["pending"] == 1, "b's row is not pending")
    note(f"1. Maildir full ({harness.fs_free(maildir) >> 10} KiB free): retry counted as "
         "disk_full, nothing in new/ or tmp/, store ok, no receipt")

    # ---- 2. b's store is full when the message is in new/ ----
    truncate_wal(b.home)
    filler_home = harness.fill_fs(b.home.path)
    os.unlink(filler_md)
    harness.wait_counter(b, "fetch.retry.store", 1, timeout=RETRY_S)
    check(b.alive(), "b died on a full store\n" + b.log_tail())
    check(log_has(b, "cannot record fetch attempts: database or disk is full (will retry)"),
          "b did not log the failed commit\n" + b.log_tail())
    copies = harness.maildir_copies(b.home, mid)
    check(copies == [], f"fetched although the attempt was not recorded: {copies}")
    check(harness.maildir_tmp(b.home) == [], f"tmp/: {harness.maildir_tmp(b.home)}")
    check_store(b.home, "with the disk full")
    no_receipt(c, a, b, mid)
    # a new notification cannot be recorded now: it must be read again later
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject="while full",
                                     body="the notification of this one arrives on a full disk")
    mid2 = doc["message_id"]
    harness.poll(lambda: log_has(b, "cannot record a notification: database or disk is full"),
                 RETRY_S, "b to fail recording a notification", b.log_tail, interval=0.1)
    check(harness.maildir_copies(b.home, mid2) == [], "the second message arrived anyway")
    note("2. store full: the attempt not recorded, so not fetched, no receipt, store ok; "
         "a new notification not recorded")

    # ---- 3. room again: fetched, recorded, receipt ----
    os.unlink(filler_home)
    harness.wait_receipt(c, a, mid, b, timeout=RETRY_S)
    copies = harness.maildir_copies(b.home, mid)
    check(len(copies) == 1, f"copies after the disk was freed: {copies}")
    harness.wait_receipt(c, a, mid2, b, timeout=RETRY_S)
    check(len(harness.maildir_copies(b.home, mid2)) == 1, "the second message is not there once")
    got = harness.read_bytes(copies[0])
    check(got.endswith(data[data.index(b"\n\n"):]), "the delivered copy differs")
    k = b.counters()
    inbox = harness.mail_inbox(c, b.home)
    check(inbox["pending"] == 0 and inbox["failed"] == 0, f"b's inbox totals {inbox}")
    check(len(harness.maildir_all(b.home)) == 3, f"b's Maildir: {harness.maildir_all(b.home)}")
    check(harness.maildir_tmp(b.home) == [], f"tmp/: {harness.maildir_tmp(b.home)}")
    check_store(b.home, "after the disk was freed")
    note(f"3. freed: delivered once, receipt at a; b counted fetch.retry.disk_full "
         f"{k.get('fetch.retry.disk_full')}, fetch.retry.store {k.get('fetch.retry.store')}, "
         f"inbox.recovered {k.get('inbox.recovered', 0)}")

    # ---- 4. a's disk is full: send fails cleanly ----
    path = harness.mail_write(c, message("send", SEND_BYTES))
    nospace = "No space left on device"
    filler = harness.fill_fs(a.home.file("spool"))
    why = send_fails(c, a, b.home.fingerprint, path, "spool/ full", nospace)
    note(f"4a. spool/ full: exit 1, '{why}'")
    os.unlink(filler)
    filler = harness.fill_fs(a.home.file("outbox"))
    why = send_fails(c, a, b.home.fingerprint, path, "outbox/ full", nospace)
    check("/outbox/tmp-" in why, f"expected the node's outbox write to fail: {why}")
    check(log_has(a, nospace), "a did not log it\n" + a.log_tail())
    note(f"4b. outbox/ full: exit 1, '{why}'")
    os.unlink(filler)
    truncate_wal(a.home)
    filler = harness.fill_fs(a.home.path)
    why = send_fails(c, a, b.home.fingerprint, path, "the store full", "database or disk is full")
    check_store(a.home, "after the failed sends")
    note(f"4c. store full: exit 1, '{why}'")
    os.unlink(filler)
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], path=path)
    harness.wait_receipt(c, a, doc["message_id"], b)
    check(len(harness.maildir_copies(b.home, doc["message_id"])) == 1, "not delivered once")
    note("4d. freed: the same send is acknowledged and delivered once")
    for n in (b, a, seed):
        n.stop()
    check_store(a.home, "at the end")
    check_store(b.home, "at the end")
    harness.check_all_logs(c)


if __name__ == "__main__":
    reexec_in_namespace()
    harness.main(test, "mail_diskfull")
