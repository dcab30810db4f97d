#!/usr/bin/env python3
"""Fewer files per message on the sender (issue 14, docs/MAIL.md "Files
per message"), and nothing lost by it.

- SMTP DATA of a small message is held in a memfd, not in a DIR/spool file:
  while a's session is in DATA (bytes sent, no final dot yet), a's process
  has a memfd "postern-smtp" open and DIR/spool holds no smtp-* file.
- Past 1 MiB the message moves to a DIR/spool/smtp-* file; the final dot is
  answered 250 and b's copy has every byte of the 1.5 MiB body.
- Once b's receipt finishes a message, its outbox body is emptied and kept
  as a spare (DIR/outbox/tmp-s*, 0 bytes, 0600).
- A small message (ciphertext up to 64 KiB) makes no file at all: its body
  is in a's store (issue 14, third round); the spare stays as it was.
- The next message over 64 KiB writes its ciphertext into the spare's
  inode (no file created, none deleted).
- `unsend` of a small message deletes its body from the store.
"""

import os
import smtplib
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402
from test_smtp_submit import Raw, login_raw  # noqa: E402


def memfds(pid):
    out = []
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if t.startswith("/memfd:postern-smtp"):
            out.append(t)
    return out


def spool_files(a):
    d = a.home.file("spool")
    return [n for n in os.listdir(d) if n.startswith("smtp-")] if os.path.isdir(d) else []


def spares(a):
    d = a.home.file("outbox")
    return [os.path.join(d, n) for n in os.listdir(d) if n.startswith("tmp-s")]


def store_bodies(a):
    con = sqlite3.connect(f"file:{a.home.file('postern.db')}?mode=ro", uri=True, timeout=10)
    n = con.execute("SELECT count(*) FROM outbox_body").fetchone()[0]
    con.close()
    return n


def outbox_ids(c, a):
    return [m["message_id"] for m in harness.mail_outbox(c, a.home).get("messages", [])]


def test(c):
    seed, a, b = harness.mail_pair(c, extra_a=["--smtp-port", "any"])
    harness.trust(c, a, b)
    port = a.status()["ports"]["smtp"]
    rc, doc, err = c.cli_json(["smtp", "password", "--home", a.home.path])
    check(rc == 0, f"smtp password: {rc} {err}")
    login = (a.home.fingerprint, doc["password"])

    # ---- a small message: in memory while it arrives ------------------------
    r = login_raw(port, *login)
    check(r.cmd(f"MAIL FROM:<{a.home.address}>\r\n".encode())[0] == 250, "MAIL")
    check(r.cmd(f"RCPT TO:<{b.home.address}>\r\n".encode())[0] == 250, "RCPT")
    check(r.cmd(b"DATA\r\n")[0] == 354, "DATA")
    head = (f"From: <{a.home.address}>\r\nTo: <{b.home.address}>\r\n"
            "Subject: big\r\n\r\n").encode()
    r.send(head + b"first line of the body\r\n" * 100)
    harness.poll(lambda: memfds(a.pid), 10, "a memfd holding the message in a's process")
    check(spool_files(a) == [], f"a small message has a spool file: {spool_files(a)}")

    # ---- past 1 MiB: the file in the spool, every byte delivered ------------
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
    body = line * (3 * 512 * 1024 // len(line))  # ~1.5 MiB
    r.send(body)
    harness.poll(lambda: spool_files(a), 20, "the spool file of a message over 1 MiB")
    harness.poll(lambda: not memfds(a.pid), 10, "the memfd closed once the message spilled")
    code, text = r.cmd(b".\r\n")
    check(code == 250, f"end of a 1.5 MiB DATA: {code} {text!r}")
    r.cmd(b"QUIT\r\n")
    r.close()
    big_id = text.decode().rsplit(" ", 1)[-1]
    check(big_id in outbox_ids(c, a), f"{big_id} not in a's outbox after the 250")
    copies = harness.wait_delivered(c, b, big_id, timeout=60)
    got = harness.read_bytes(copies[0])
    want = (b"first line of the body\r\n" * 100 + body).replace(b"\r\n", b"\n")
    check(got.endswith(want), f"b's copy of the big message differs ({len(got)} bytes)")
    harness.poll(lambda: spool_files(a) == [], 10, "a's spool file removed after the commit")

    # ---- the finished body becomes the next send's file ---------------------
    harness.wait_receipt(c, a, big_id, b)
    sp = harness.poll(lambda: spares(a), 20, "a spare file in a's outbox once the body is finished")
    check(len(sp) == 1, f"spares: {sp}")
    st = os.stat(sp[0])
    check(st.st_size == 0, f"a spare holds {st.st_size} bytes of a finished message")
    check(harness.mode_of(sp[0]) == 0o600, "a spare is not 0600")
    check(not os.path.exists(a.home.file(f"outbox/{big_id}")), "the finished body is still there")
    def submit(subject, text):
        s = smtplib.SMTP("127.0.0.1", port, timeout=20)
        s.login(*login)
        s.mail(a.home.address)
        s.rcpt(b.home.address)
        code, reply = s.data(f"From: <{a.home.address}>\r\nTo: <{b.home.address}>\r\n"
                             f"Subject: {subject}\r\n\r\n{text}".encode())
        s.quit()
        check(code == 250, f"{subject}: {code} {reply!r}")
        return reply.decode().rsplit(" ", 1)[-1]

    # ---- a small message: no file, its body in a's store ---------------------
    small_id = submit("small", "hello\r\n")
    check(not os.path.exists(a.home.file(f"outbox/{small_id}")), "a small body has a file")
    check(spares(a) == sp and os.stat(sp[0]).st_size == 0, f"the spare changed: {spares(a)}")
    copies = harness.wait_delivered(c, b, small_id)
    check(harness.read_bytes(copies[0]).endswith(b"hello\n"), "b's copy of the small message")
    harness.wait_receipt(c, a, small_id, b)
    check(store_bodies(a) == 0, "a finished message's body is still in a's store")

    # ---- over 64 KiB: a file, in the spare's inode ---------------------------
    b.stop()  # so that the body is still there to look at
    text = "x" * 70 + "\r\n"
    mid_id = submit("medium", text * 1000)  # ~70 KiB
    new_st = os.stat(a.home.file(f"outbox/{mid_id}"))
    check(new_st.st_ino == st.st_ino, "the next body is a new file, not the spare")
    check(spares(a) == [], f"the spare was not taken: {spares(a)}")
    c.restart(b)
    copies = harness.wait_delivered(c, b, mid_id, timeout=60)
    check(harness.read_bytes(copies[0]).endswith((text * 1000).replace("\r\n", "\n").encode()),
          "b's copy of the medium message")
    # ---- unsend of a small message: its body leaves the store ---------------
    b.stop()
    un_id = submit("unsend", "withdraw me\r\n")
    check(store_bodies(a) == 1, f"a's store holds {store_bodies(a)} bodies, expected 1")
    rc, doc, err = c.cli_json(["unsend", un_id, "--home", a.home.path])
    check(rc == 0 and doc.get("body_deleted") is True, f"unsend: {rc} {doc} {err}")
    check(store_bodies(a) == 0, "the withdrawn message's body is still in a's store")

    k = a.counters()
    check(k.get("outbox.spares_kept", 0) >= 1, f"outbox.spares_kept: {k}")
    note(f"spare inode {st.st_ino} reused for {small_id[:8]}")


if __name__ == "__main__":
    harness.main(test, "mail_fewer_files")
