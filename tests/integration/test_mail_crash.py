#!/usr/bin/env python3
"""kill -9 anywhere loses nothing and duplicates nothing.

Recipient: b is killed while it fetches a 12 MiB message, at several points
found by polling b's Maildir (a partial file in tmp/ just started, half
written, nearly complete; the file just renamed into new/, which a mail
client then moves to cur/ with a flag before b is back). After a restart b
holds exactly one copy (new/ + cur/), tmp/ is clean, a holds b's receipt.
Then b is killed in the middle of a burst of small messages (its
deliveries committed in groups): each is there once after the restart.

Sender: a is killed right after `send` returned, with b running or stopped,
right after its SMTP 250 for a small message (b stopped: the body is only in
a's store, issue 14's third round, no file in a's outbox/), and while it
serves the message to b. After a restart (same fetch port) the message is
still in a's outbox, notified again and delivered once."""

import os
import smtplib
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

FAST = ["--renotify", "1", "--inbox-poll", "1"]
BIG = 12 << 20
# kill points in b: fraction of the plaintext in tmp/ (None: the file in new/)
B_POINTS = [("tmp-start", 0.0), ("tmp-half", 0.5), ("tmp-95%", 0.95), ("in-new", None)]
WATCH_S = 15
BURST = 30  # small messages of the recipient's burst
TIGHT_S = 0.001  # the fetch of 12 MiB takes ~60 ms on loopback: poll tightly


def big_message(tag):
    return (f"Subject: crash test {tag}\nX-Tag: {tag}\n\n").encode() + harness.mail_body_bytes(os.urandom(BIG))


def watch_and_kill(c, victim, watched, mid, frac, size):
    """Polls watched's Maildir until the kill point, then kill -9 victim.
    Returns what was seen at the kill: ('tmp', bytes) or ('new', 0), or
    ('late', 0) when the message was delivered before the point came."""
    deadline = time.monotonic() + WATCH_S
    while time.monotonic() < deadline:
        if frac is not None:
            tmp = harness.maildir_tmp(watched.home)
            big = max((s for _, s in tmp), default=-1)
            if big >= 0 and big >= frac * size:
                harness.kill9(victim)
                return "tmp", big
        if harness.maildir_copies(watched.home, mid):
            harness.kill9(victim)
            return ("new" if frac is None else "late"), 0
        time.sleep(TIGHT_S)
    raise harness.TestFailure(f"{mid[:8]} never showed in {watched.name}'s Maildir\n"
                              + c.all_log_tails())


def exactly_once(c, b, mids):
    for mid in mids:
        copies = harness.maildir_copies(b.home, mid)
        check(len(copies) == 1, f"{mid[:8]}: {len(copies)} copies in b's Maildir: {copies}")
    doc = harness.mail_inbox(c, b.home, limit=300)
    ids = [m["id"] for m in doc["messages"]]
    check(sorted(ids) == sorted(mids) and len(set(ids)) == len(ids),
          f"b's inbox lists {ids}, expected {mids}")
    check(doc["pending"] == 0 and doc["failed"] == 0, f"b's inbox totals {doc}")
    check(len(harness.maildir_all(b.home)) == len(mids),
          f"b's Maildir holds {harness.maildir_all(b.home)}")


def window_made_certain(c, b, mids):
    """The kill between the rename and the store's record, made certain: b
    stopped, its row of the last message set back to pending (as that kill
    leaves it; its attempt stays on record), the copy moved to cur/ with a
    flag by a mail client. b searches only where a copy may be (docs/MAIL.md,
    "Exactly once"): it must find this one, record it and send the receipt
    again, never fetch and write a second copy."""
    import sqlite3
    mid = mids[-1]
    b.stop()
    for p in harness.maildir_copies(b.home, mid):
        if "/new/" in p:
            os.rename(p, p.replace("/new/", "/cur/") + ":2,S")
    con = sqlite3.connect(b.home.file("postern.db"), timeout=10)
    with con:
        n = con.execute("UPDATE inbox SET state = 1, folder = NULL, filename = NULL,"
                        " delivered = 0, receipt_sent = 0 WHERE msg_id = ? AND last_attempt != 0",
                        (bytes.fromhex(mid),)).rowcount
    con.close()
    check(n == 1, f"{mid[:8]}: no delivered row with an attempt on record to set back")
    c.restart(b)
    harness.poll(lambda: "was already in" in b.log_text(), 30,
                 f"b to find {mid[:8]} in cur/ after the restart", c.all_log_tails)
    harness.poll(lambda: harness.mail_inbox(c, b.home, limit=300)["pending"] == 0, 30,
                 "b's row recorded again", c.all_log_tails)
    exactly_once(c, b, mids)
    note("pending row, copy moved to cur/: found and recorded, no second copy")


def burst_killed(c, a, b, mids):
    """b is away while a stores BURST small messages; b comes back, fetches
    them four at a time (their deliveries sharing fsyncs of new/ and store
    commits: docs/MAIL.md, "Where durability is batched") and is killed once
    a third of them are in its Maildir, while the others are in flight.
    After a restart every one is there exactly once, with a's receipt."""
    b.stop()
    burst = []
    for i in range(BURST):
        path = harness.mail_write(c, f"Subject: burst {i}\n\nburst message {i}\n".encode())
        rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], path=path)
        burst.append(doc["message_id"])
    mids.extend(burst)
    before = len(harness.maildir_all(b.home))
    c.restart(b)
    deadline = time.monotonic() + WATCH_S
    while (got := len(harness.maildir_all(b.home)) - before) < BURST // 3:
        check(time.monotonic() < deadline, f"b delivered {got} of the burst\n" + c.all_log_tails())
        time.sleep(TIGHT_S)
    harness.kill9(b)
    got = len(harness.maildir_all(b.home)) - before
    check(got < BURST, f"b delivered the whole burst ({got}) before the kill")
    c.restart(b)
    for mid in burst:
        harness.wait_delivered(c, b, mid)
        harness.wait_receipt(c, a, mid, b)
    exactly_once(c, b, mids)
    k = b.counters()
    note(f"b killed with {got} of a burst of {BURST} in its Maildir: each once after the "
         f"restart (recovered {k.get('inbox.recovered', 0)}, group commits "
         f"{k.get('fetch.group_commits', 0)} for {k.get('fetch.group_members', 0)} deliveries)")


def test(c):
    seed, a, b = harness.mail_pair(c, FAST + ["--smtp-port", "any"], FAST)
    port_a = a.fetch_port
    mids, hits = [], []

    # ---- the recipient dies mid-fetch ----
    for name, frac in B_POINTS:
        data = big_message(name)
        path = harness.mail_write(c, data)
        rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], path=path)
        mid = doc["message_id"]
        mids.append(mid)
        where, at = watch_and_kill(c, b, b, mid, frac, len(data))
        left_tmp = harness.maildir_tmp(b.home)
        copies = harness.maildir_copies(b.home, mid)
        hits.append(f"{name}: {where} {at / len(data):.0%}" if where == "tmp" else
                    f"{name}: {where}")
        if where == "new":
            # a mail client reads it before b is back: moved to cur/ with a
            # flag, so a second delivery (the kill may have come before the
            # store recorded the first) would not just replace it in new/
            for p in copies:
                os.rename(p, p.replace("/new/", "/cur/") + ":2,S")
            copies = harness.maildir_copies(b.home, mid)
        c.restart(b)
        harness.wait_delivered(c, b, mid)
        harness.wait_receipt(c, a, mid, b)
        check(harness.maildir_tmp(b.home) == [], f"tmp/ after the restart: "
              f"{harness.maildir_tmp(b.home)}")
        exactly_once(c, b, mids)
        got = harness.read_bytes(harness.maildir_copies(b.home, mid)[0])
        body = data[data.index(b"\n\n"):]
        check(got.endswith(body) and len(got) - len(data) < 400, f"{mid[:8]}: the copy differs")
        note(f"b killed at {hits[-1]} (tmp/ then: {[s for _, s in left_tmp]}, "
             f"copies then: {len(copies)}): one copy after the restart")
    partial = [h for h in hits if ": tmp" in h]
    check(len(partial) >= 2, f"b was killed with a partial file only at {partial}")
    k = b.counters()
    note(f"b: inbox.delivered {k.get('inbox.delivered')}, recovered "
         f"{k.get('inbox.recovered', 0)}, receipts_acked {k.get('inbox.receipts_acked')}")
    window_made_certain(c, b, mids)
    burst_killed(c, a, b, mids)

    # ---- the sender dies right after send returned ----
    for variant in ("b-running", "b-stopped"):
        if variant == "b-stopped":
            b.stop()
        path = harness.mail_write(c, f"Subject: {variant}\n\nkill the sender\n".encode())
        rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], path=path)
        harness.kill9(a)
        mid = doc["message_id"]
        mids.append(mid)
        c.restart(a)
        check(a.fetch_port == port_a, f"a's fetch port {port_a} -> {a.fetch_port}")
        m, r = harness.outbox_recipient(harness.mail_outbox(c, a.home, mid), mid,
                                        b.home.fingerprint)
        check(m is not None, f"{mid[:8]} is not in a's outbox after kill -9")
        if variant == "b-stopped":
            check(r["state"] in ("pending", "notified"), f"a's outbox after the restart: {r}")
            harness.poll(lambda: harness.outbox_recipient(
                harness.mail_outbox(c, a.home, mid), mid, b.home.fingerprint)[1]["notified"] > 0,
                20, "a to notify again after the restart", a.log_tail, interval=0.1)
            c.restart(b)
        harness.wait_delivered(c, b, mid)
        harness.wait_receipt(c, a, mid, b)
        exactly_once(c, b, mids)
        note(f"a killed right after send ({variant}): delivered once after a's restart")

    # ---- the sender dies right after the 250 of a small SMTP submission ----
    b.stop()
    rc, doc, err = c.cli_json(["smtp", "password", "--home", a.home.path])
    check(rc == 0, f"smtp password: {rc} {err}")
    text = "a small body that only a's store holds\r\n" * 40
    s = smtplib.SMTP("127.0.0.1", a.status()["ports"]["smtp"], timeout=20)
    s.login(a.home.fingerprint, doc["password"])
    s.mail(a.home.address)
    s.rcpt(b.home.address)
    code, reply = s.data((f"From: <{a.home.address}>\r\nTo: <{b.home.address}>\r\n"
                          f"Subject: smtp-250\r\n\r\n{text}").encode())
    harness.kill9(a)  # at once: the 250 is all a said
    s.close()
    check(code == 250, f"DATA: {code} {reply!r}")
    mid = reply.decode().rsplit(" ", 1)[-1]
    mids.append(mid)
    check(not os.path.exists(a.home.file(f"outbox/{mid}")),
          f"the small message {mid[:8]} has a body file in a's outbox/")
    con = sqlite3.connect(f"file:{a.home.file('postern.db')}?mode=ro", uri=True, timeout=10)
    row = con.execute("SELECT length(b.body), m.size FROM outbox_body b JOIN outbox_msg m"
                      " ON m.id = b.msg WHERE m.msg_id = ?", (bytes.fromhex(mid),)).fetchone()
    con.close()
    check(row is not None and row[0] == row[1], f"{mid[:8]}'s body is not in a's store: {row}")
    c.restart(a)
    check(a.fetch_port == port_a, f"a's fetch port {port_a} -> {a.fetch_port}")
    c.restart(b)
    copies = harness.wait_delivered(c, b, mid)
    harness.wait_receipt(c, a, mid, b)
    exactly_once(c, b, mids)
    check(harness.read_bytes(copies[0]).endswith(text.replace("\r\n", "\n").encode()),
          "b's copy differs")
    note(f"a killed right after its SMTP 250 (b stopped): the {row[0]}-byte body came from "
         "a's store, delivered once after the restarts")

    # ---- the sender dies while it serves ----
    for frac in (0.1, 0.6):
        data = big_message(f"serve-{frac}")
        path = harness.mail_write(c, data)
        rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], path=path)
        mid = doc["message_id"]
        mids.append(mid)
        retry0 = sum(v for n, v in b.counters().items() if n.startswith("fetch.retry."))
        where, at = watch_and_kill(c, a, b, mid, frac, len(data))
        c.restart(a)
        check(a.fetch_port == port_a, f"a's fetch port {port_a} -> {a.fetch_port}")
        t0 = time.monotonic()
        harness.wait_delivered(c, b, mid, timeout=40)
        harness.wait_receipt(c, a, mid, b)
        exactly_once(c, b, mids)
        retry = sum(v for n, v in b.counters().items() if n.startswith("fetch.retry."))
        if where == "tmp":
            check(retry > retry0, "b did not count the broken fetch as a retry")
        note(f"a killed while serving ({where} {at / len(data):.0%}): b retried "
             f"(+{retry - retry0}), delivered once {time.monotonic() - t0:.1f} s after a's "
             f"restart")
    for n in (b, a, seed):
        n.stop()
    harness.check_all_logs(c)


if __name__ == "__main__":
    harness.main(test, "mail_crash")
