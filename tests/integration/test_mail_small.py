#!/usr/bin/env python3
"""Three small promises of issue 17, each between real nodes:

1. A message to oneself (by fingerprint and by address) lands in the INBOX,
   without a stamp, not in .Unknown.
2. Each problem with a list of recipients is printed once: `postern send`
   to the same unknown key twice and to an unknown address names each one
   once; a single problem is named once too.
3. A receipt sent again for a message already delivered carries the
   original delivery time. b is stopped as if killed between the rename
   into new/ and the store update (its row pending again) and a as if our
   receipt never reached it (its recipient pending again); after both
   restart, b finds the file, sends the receipt, and a's outbox shows
   stored_at = the first delivery, not the restart."""

import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402


def to_self(c, a):
    fa = a.home.fingerprint
    c.wait_key(a, a.home, query=a.home.address,
               pred=lambda d: any(k.get("status") == "valid" for k in d.get("keys", [])))
    for query in (fa, a.home.address):
        rc, doc, err = harness.mail_send(c, a.home, to=[query], subject=f"note to self {query}",
                                         body="remember the milk\n")
        mid = doc["message_id"]
        copies = harness.wait_delivered(c, a, mid)
        check(copies == [a.home.file(f"Maildir/new/{mid}.postern")],
              f"a message to oneself ({query}) went to {copies}, not the INBOX")
        r = doc["recipients"][0]
        check(r["fingerprint"] == fa and not r.get("stamp_bits") and not r.get("bits"),
              f"a stamp was minted for oneself: {r}")
        head = harness.read_bytes(copies[0]).split(b"\n", 1)[0]
        check(head == b"X-Postern-Sender: " + fa.encode(), f"first line {head!r}")
        harness.wait_receipt(c, a, mid, a)
    note("mail to oneself, by fingerprint and by address: INBOX, no stamp")


def problems_once(c, a):
    ghost = harness.random_fingerprint()
    nobody = "nobody@it.example"
    rc, out, err = c.cli(["send", "--home", a.home.path, "--to", ghost, "--cc", ghost,
                          "--to", nobody, "--subject", "x", "--body", "y"], timeout=120)
    check(rc == 1, f"send to unknown recipients: exit {rc}: {err}")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    check(err.count(ghost) == 1 and sum(ghost in ln for ln in lines) == 1,
          f"{ghost} is named {err.count(ghost)} times:\n{err}")
    check(err.count(nobody) == 1, f"{nobody} is named {err.count(nobody)} times:\n{err}")
    check(len(lines) == 3 and "2 recipients" in lines[0], f"stderr:\n{err}")
    note("two problems, one key given twice: " + " | ".join(lines))
    rc, out, err = c.cli(["send", "--home", a.home.path, "--to", ghost, "--bcc", ghost,
                          "--subject", "x", "--body", "y"], timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    check(rc == 1 and len(lines) == 1 and err.count(ghost) == 1,
          f"one problem named {err.count(ghost)} times in {len(lines)} lines:\n{err}")
    rc, doc, err = c.cli_json(["send", "--home", a.home.path, "--to", ghost, "--to", nobody,
                               "--to", ghost, "--subject", "x", "--body", "y"], timeout=120)
    check(rc == 1, f"send --json: exit {rc}")


def receipt_time(c, a, b):
    harness.trust(c, b, a)
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject="first time",
                                     body="when did it arrive?\n")
    mid = doc["message_id"]
    path = harness.wait_delivered(c, b, mid)[0]
    _, r = harness.wait_receipt(c, a, mid, b)
    first = r["receipt"]["stored_at"]
    mtime = int(os.stat(path).st_mtime)
    check(abs(first - mtime) <= 1, f"first receipt stored_at {first}, file written {mtime}")
    # a restart later than the first delivery by clearly more than a second
    harness.poll(lambda: time.time() >= first + 3, 10, "the clock to pass the delivery")
    b.stop()
    a.stop()
    blob = bytes.fromhex(mid)
    with sqlite3.connect(b.home.file("postern.db")) as db:
        n = db.execute("UPDATE inbox SET state = 1, delivered = 0, size = 0, folder = NULL,"
                       " filename = NULL, receipt_sent = 0 WHERE msg_id = ?", (blob,)).rowcount
        check(n == 1, "b's inbox row not found")
    with sqlite3.connect(a.home.file("postern.db")) as db:
        n = db.execute("UPDATE outbox_rcpt SET state = 1, receipt = NULL WHERE msg ="
                       " (SELECT id FROM outbox_msg WHERE msg_id = ?)", (blob,)).rowcount
        db.execute("UPDATE outbox_msg SET done = 0 WHERE msg_id = ?", (blob,))
        check(n == 1, "a's outbox recipient not found")
    c.restart(a)
    c.restart(b)
    harness.wait_counter(b, "inbox.recovered", 1)
    _, r = harness.wait_receipt(c, a, mid, b)
    again = r["receipt"]["stored_at"]
    check(r["receipt"]["created"] >= first + 3, f"not a new receipt: {r['receipt']}")
    check(abs(again - first) <= 1,
          f"the receipt sent again says stored_at {again}, first delivery {first}")
    check(harness.maildir_copies(b.home, mid) == [path], "a second copy")
    note(f"receipt sent again after recovery: stored_at {again} (first {first}, "
         f"created {r['receipt']['created']})")


def test(c):
    a, b = c.network_of(2, names=["a", "b"])
    harness.wait_mail_ready(c, [a], [b])
    to_self(c, a)
    problems_once(c, a)
    receipt_time(c, a, b)
    harness.stop_all(c, (b, a))


if __name__ == "__main__":
    harness.main(test, "mail_small")
