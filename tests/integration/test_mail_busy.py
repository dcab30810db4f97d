#!/usr/bin/env python3
"""Mail, a busy sender is not a broken one (issue 17). A slow-connection
flood holds the sender's fetch port: ~500 TCP connections from 100 loopback
addresses (127.0.0.2..101, five each, under fetch_conns_per_ip) plus eight
from 127.0.0.1, the recipient's own address, so that the recipient meets
both limits (the server's 64 served connections and the per-address one)
and, beyond 128, the close without a word. The flood's connections send
nothing or trickle a frame header one byte at a time, and come back a moment
after the server drops them (a's idle timeout is raised so that the
served ones stay for the whole flood). A message is sent meanwhile: the recipient's
fetches meet "busy" (a signed answer that names no message) and closed
connections, and must count them as retries, never as protocol strikes;
nothing is given up, `postern inbox` shows why the message waits, and once
the flood stops the message is delivered by the node's own back-off."""

import os
import random
import selectors
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

FLOOD_ADDRS = [f"127.0.0.{i}" for i in range(2, 102)]
PER_ADDR = 5           # under the default fetch_conns_per_ip (8)
SAME_ADDR = 8          # from the recipient's address: fills its per-address quota
ATTEMPTS = 3           # main's code gives the message up after 3 "bad responses"
FLOOD_MAX_S = 60


class Flood:
    """Holds up to len(slots) connections open on port, reopening each one a
    moment after the server closed it; half send nothing, half trickle the
    first bytes of a frame header."""

    def __init__(self, port):
        self.port = port
        # the recipient's address first: those take served slots and keep them
        self.slots = ["127.0.0.1"] * SAME_ADDR + [a for a in FLOOD_ADDRS for _ in range(PER_ADDR)]
        self.stop_flag = threading.Event()
        self.opened = 0
        self.closed_by_server = 0
        self.open_now = 0
        self.peak = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=10)
        check(not self.thread.is_alive(), "the flood thread did not stop")

    def _open(self, sel, i, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((self.slots[i], 0))
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            return None
        self.opened += 1
        st = {"i": i, "sock": s, "trickle": i % 2 == 0, "sent": 0, "next": now + 1.0}
        sel.register(s, selectors.EVENT_READ, st)
        return st

    def run(self):
        sel = selectors.DefaultSelector()
        conns = {}
        reopen = {i: 0.0 for i in range(len(self.slots))}  # slot -> when
        # a frame header announcing 1,000 bytes, sent one byte at a time
        header = (1000).to_bytes(4, "big")
        while not self.stop_flag.is_set():
            now = time.monotonic()
            for i, when in list(reopen.items()):
                if when <= now:
                    st = self._open(sel, i, now)
                    del reopen[i]
                    if st is None:
                        reopen[i] = now + 0.5
                    else:
                        conns[i] = st
            self.open_now = len(conns)
            self.peak = max(self.peak, self.open_now)
            for key, _ in sel.select(timeout=0.1):
                st = key.data
                try:
                    data = st["sock"].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    continue  # the server's "busy": read and ignored, like a slow peer
                sel.unregister(st["sock"])
                st["sock"].close()
                del conns[st["i"]]
                self.closed_by_server += 1
                reopen[st["i"]] = time.monotonic() + random.uniform(0.5, 1.0)
            now = time.monotonic()
            for st in conns.values():
                if st["trickle"] and st["sent"] < 3 and st["next"] <= now:
                    try:
                        st["sock"].send(header[st["sent"]:st["sent"] + 1])
                        st["sent"] += 1
                    except OSError:
                        pass
                    st["next"] = now + 2.0
        for st in conns.values():
            sel.unregister(st["sock"])
            st["sock"].close()
        sel.close()


def fetch_tries(k):
    """Finished fetch attempts, retries and strikes alike."""
    return sum(v for n, v in k.items()
               if n.startswith("fetch.retry.") or n.startswith("rejected.fetch.") or
               n.startswith("fetch.refused."))


def test(c):
    # a's served flood connections must stay for the whole test (a slow CI
    # run included): a longer idle timeout than the default 30 s
    ha = c.new_home("a", "a@it.example")
    with open(ha.file("postern.conf"), "a") as f:
        f.write("fetch_idle_timeout = 180\n")
    a = c.start(ha)
    b = c.start(c.new_home("b", "b@it.example"), [a])
    for n in (a, b):
        n.wait_joined()
    harness.wait_mail_ready(c, [a], [b])
    harness.trust(c, b, a)
    fb = b.home.fingerprint

    flood = Flood(a.fetch_port)
    flood.start()
    t_flood = time.monotonic()
    try:
        harness.poll(lambda: flood.peak >= 400, 20, "the flood to hold 400 connections",
                     lambda: f"open {flood.open_now}, opened {flood.opened}")
        note(f"flood: {flood.open_now} connections open on a's fetch port {a.fetch_port}")
        _, doc, _ = harness.mail_send(c, a.home, to=[fb], subject="busy",
                                      body="sent while the sender's fetch port is flooded\n")
        mid = doc["message_id"]
        # main's code gave the message up for good after its third attempt
        harness.poll(lambda: fetch_tries(b.counters()) >= ATTEMPTS, 45,
                     f"{ATTEMPTS} fetch attempts by b during the flood",
                     lambda: f"b's counters: {b.counters()}\n" + c.all_log_tails())
        check(not harness.maildir_copies(b.home, mid),
              "b fetched the message through the flood: the flood did not hold the port")
        k = b.counters()
        note(f"b during the flood: { {n: v for n, v in k.items() if 'fetch' in n} }")
        # the recipient says why the message waits
        inbox = harness.mail_inbox(c, b.home)
        und = [m for m in inbox.get("undelivered", []) if m["id"] == mid]
        check(len(und) == 1 and und[0]["state"] == "pending" and
              und[0]["why"].startswith("retrying: "),
              f"b's inbox does not show the waiting message with its reason: {inbox}")
        note(f"b's inbox: {und[0]['attempts']} attempts, {und[0]['why']!r}")
        # the sender can flush it (postqueue -i): the notification goes again
        rc, out, err = c.cli(["outbox", "retry", mid[:12], "--home", a.home.path])
        check(rc == 0 and "offered" in out and fb in out,
              f"postern outbox retry failed ({rc}): {out} {err}")
        check(flood.closed_by_server > 0, "the server never closed a flood connection")
    finally:
        flood.stop()
    note(f"flood stopped after {time.monotonic() - t_flood:.1f} s: {flood.opened} "
         f"connections opened, {flood.closed_by_server} closed by the server")

    # delivered by the node's own back-off, without any command on b
    t0 = time.monotonic()
    harness.wait_delivered(c, b, mid, timeout=90)
    harness.wait_receipt(c, a, mid, b, timeout=30)
    note(f"delivered {time.monotonic() - t0:.1f} s after the flood stopped")

    kb, ka = b.counters(), a.counters()
    strikes = {n: v for n, v in kb.items() if n.startswith("rejected.fetch.")}
    check(not strikes, f"b counted protocol strikes against a busy sender: {strikes}")
    check(kb.get("inbox.failed", 0) == 0, f"b gave a message up: {kb}")
    retries = {n: v for n, v in kb.items() if n.startswith("fetch.retry.")}
    check(sum(retries.values()) >= ATTEMPTS, f"b's retries are not counted: {kb}")
    check(retries.get("fetch.retry.status_busy", 0) >= 1,
          f"b never recognised the sender's busy answer: {retries}")
    check(ka.get("rejected.fetch.conn_limit", 0) >= 1,
          f"a's counters show no connection limit reached: {ka}")
    inbox = harness.mail_inbox(c, b.home)
    check(inbox["failed"] == 0 and not [m for m in inbox.get("undelivered", []) if m["id"] == mid],
          f"b's inbox still lists the message as not delivered: {inbox}")
    note(f"b's retries: {retries}; a refused {ka.get('rejected.fetch.conn_limit')} "
         f"connections over its limits")

    # `postern inbox retry` on a delivered message says so
    rc, out, err = c.cli(["inbox", "retry", mid[:12], "--home", b.home.path])
    check(rc == 1 and "already delivered" in err, f"inbox retry of a delivered message: {rc} {err}")


if __name__ == "__main__":
    harness.main(test, "mail_busy")
