#!/usr/bin/env python3
"""Mail, a Maildir shared with real mail clients (issue 12). Mail clients
keep files of their own in the Maildir root (mailutils' .mu-prop, mbsync's
.mbsyncstate and .uidvalidity, Dovecot's dovecot-uidlist) and rename and
move messages their own way. Neither may stop delivery or lose a message
for `postern inbox` and `postern read`:

1. with client files in the root, mail is still delivered (before the fix
   every commit failed and the notification was retried until it expired);
2. a client deletes the .Known folder: the next message to it recreates it;
3. files renamed to Dovecot's, mailutils', mbsync's and mutt's names and
   moved to other folders (one named as only a client would, ".Sent Items")
   are all found by `inbox` and `read`; the store learns the new places, so
   a second listing scans nothing; a deleted message counts as missing and
   is not looked for again by listings;
4. a long RFC 2047 subject is decoded before it is shortened;
5. a first delivery reads no folder of the Maildir (its cost must not grow
   with the mailbox, issue 14): the store's record of attempts says no copy
   can exist. Seen through a folder that cannot be read (new/ a symlink
   loop): before, every delivery searched all folders, failed on it with an
   I/O error and was retried until the notification expired."""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

CLIENT_FILES = (".mu-prop", ".mbsyncstate", ".uidvalidity", ".mbsyncstate.lock",
                "dovecot-uidlist", "dovecot.index.log", ".customflags")


def send(c, a, b, subject, body="hello"):
    _, doc, _ = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject=subject, body=body)
    return doc["message_id"]


def test(c):
    a, b, k = c.network_of(3, names=["a", "b", "k"])
    harness.wait_mail_ready(c, [a, k], [b])
    harness.trust(c, b, a)  # a's mail goes to b's INBOX
    harness.trust(c, b, k, tier="known")  # k's to .Known
    root = b.home.file("Maildir")

    # 1. a client's files in the root
    for name in CLIENT_FILES:
        with open(os.path.join(root, name), "w") as f:
            f.write("client state\n")
    os.mkdir(os.path.join(root, ".notmuch"))  # a dot-directory that is no folder
    ids = [send(c, a, b, f"msg {i}") for i in range(4)]
    for mid in ids:
        harness.wait_delivered(c, b, mid)
    note("delivered 4 messages with client files in the Maildir root")

    # 2. a client removed the .Known folder
    first_known = send(c, k, b, "to known 1")
    harness.wait_delivered(c, b, first_known)
    shutil.rmtree(os.path.join(root, ".Known"))
    second_known = send(c, k, b, "to known 2")
    copies = harness.wait_delivered(c, b, second_known)
    check("/.Known/new/" in copies[0], f"not recreated in .Known: {copies}")
    note("a deleted .Known folder was recreated for the next message")

    # 3. renames and moves in each client's naming scheme
    def move(mid, folder, sub, name):
        src = harness.maildir_copies(b.home, mid)
        check(len(src) == 1, f"{mid[:8]}: copies {src}")
        d = os.path.join(root, folder, sub) if folder else os.path.join(root, sub)
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, name)
        os.rename(src[0], dst)
        return dst

    os.makedirs(os.path.join(root, ".Sent Items", "new"), exist_ok=True)
    os.makedirs(os.path.join(root, ".Archive", "tmp"), exist_ok=True)
    moved = {
        ids[0]: move(ids[0], "", "cur", "1733.M1P2.host,S=123,W=130:2,S"),  # Dovecot
        ids[1]: move(ids[1], ".Archive", "cur", "1733000000.12345_1.host,u=4:2,"),  # mailutils
        ids[2]: move(ids[2], ".Sent Items", "cur", "1733000001.R9.host,U=7:2,RS"),  # mbsync
        second_known: move(second_known, ".Archive", "new", "1733000002.12_0.host"),  # mutt save
    }
    os.unlink(harness.maildir_copies(b.home, ids[3])[0])  # deleted by a client
    scans0 = b.counters().get("inbox.maildir_scans", 0)
    doc = harness.mail_inbox(c, b.home)
    listed = {m["id"]: m for m in doc["messages"]}
    for mid, path in moved.items():
        check(mid in listed, f"{mid[:8]} (moved to {path}) not listed: {doc}")
    check(doc["missing"] == 2, f"missing {doc['missing']}, want 2 (the deleted one and "
          f"first_known, moved away with its folder): {doc}")
    check(listed[ids[0]]["seen"] is True, f"the Dovecot copy is flagged seen: {listed[ids[0]]}")
    check(listed[ids[2]]["folder"] == "Sent Items", f"folder: {listed[ids[2]]}")
    k1 = b.counters()
    check(k1.get("inbox.maildir_scans", 0) == scans0 + 1, f"one scan, counters {k1}")
    check(k1.get("inbox.relocated", 0) >= 4, f"relocations recorded: {k1}")
    for mid, path in moved.items():
        rc, out, err = c.cli(["read", "--home", b.home.path, mid[:12]])
        check(rc == 0 and f"X-Postern-Message-Id: {mid}" in out, f"read {mid[:8]}: {rc} {err}")
    # the second listing looks in the remembered places: no scan
    doc2 = harness.mail_inbox(c, b.home)
    check(doc2["missing"] == 2 and len(doc2["messages"]) == len(doc["messages"]), f"{doc2}")
    k2 = b.counters()
    check(k2.get("inbox.maildir_scans", 0) == k1.get("inbox.maildir_scans", 0),
          f"a second listing scanned again: {k2}")
    rc, out, err = c.cli(["read", "--home", b.home.path, ids[3][:12]])
    check(rc != 0 and "gone" in err, f"read of a deleted message: {rc} {out} {err}")
    k2 = b.counters()  # an explicit read of a gone message looks once more
    note("renamed and moved messages found by inbox and read; one scan, then none")

    # and a client flags a moved message again: found without a scan
    os.rename(moved[ids[1]], moved[ids[1]].replace(":2,", ":2,FS"))
    doc3 = harness.mail_inbox(c, b.home)
    check(ids[1] in {m["id"] for m in doc3["messages"]}, f"{doc3}")
    check(b.counters().get("inbox.maildir_scans", 0) == k2.get("inbox.maildir_scans", 0),
          "a flag change made the listing scan:\n" + b.log_tail())

    # 4. a long encoded subject: decoded, then shortened on a character
    word = "=?UTF-8?Q?=C3=A9t=C3=A9_?="
    subject = " ".join([word] * 40)  # 1,040 bytes encoded, 160 characters decoded
    path = harness.mail_write(c, f"To: b@it.example\nSubject: {subject}\n\nbody\n".encode())
    _, doc, _ = harness.mail_send(c, a.home, to=[b.home.fingerprint], path=path)
    mid = doc["message_id"]
    harness.wait_delivered(c, b, mid)
    doc = harness.mail_inbox(c, b.home)
    shown = [m for m in doc["messages"] if m["id"] == mid][0]["subject"]
    check("=?" not in shown and shown.startswith("été été"), f"subject shown as {shown!r}")
    check(len(shown.encode()) <= 200, f"subject longer than 200 bytes: {len(shown.encode())}")
    note(f"long encoded subject shown decoded ({len(shown)} characters)")

    # 5. no folder is read for a first delivery
    loop = os.path.join(root, ".Loop")
    for sub in ("tmp", "cur"):
        os.makedirs(os.path.join(loop, sub))
    os.symlink("new", os.path.join(loop, "new"))  # new -> new: ELOOP on any read
    before = b.counters().get("fetch.retry.io", 0)
    mid = send(c, a, b, "with a folder nobody can read")
    copies = harness.wait_delivered(c, b, mid)
    check(len(copies) == 1 and b.counters().get("fetch.retry.io", 0) == before,
          f"a first delivery read the Maildir's folders: {copies}\n" + b.log_tail())
    shutil.rmtree(loop)
    note("a first delivery searched no folder (one with new/ a symlink loop was there)")


if __name__ == "__main__":
    harness.main(test, "mail_clients")
