#!/usr/bin/env python3
"""Own slots do not rely on listens alone: a listen that silently lapsed
must lose no mail, vouch or claim, so the inbox poll also reads every slot
of our own (inbox, key, vouch, each address), one per poll, the inbox every
other poll (docs/MAIL.md, "Notifications"). With inbox_poll 1 s, each is
read, counted dht.own_slot_reads.KIND, again and again within seconds."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

KINDS = ("inbox", "key", "vouch", "address")
ROUNDS = 2  # each slot read at least this often after the first look
DEADLINE_S = 20  # 2 rounds of 2 + 4 polls of 1 s, with room for a slow machine


def test(c):
    seed = c.start(c.new_home("seed"), [])
    a = c.start(c.new_home("a", "a@it.example"), [seed], extra=["--inbox-poll", "1"])
    for n in (seed, a):
        n.wait_joined()
    k0 = a.counters()
    t0 = time.monotonic()

    def all_read():
        k = a.counters()
        reads = {kind: k.get(f"dht.own_slot_reads.{kind}", 0) -
                 k0.get(f"dht.own_slot_reads.{kind}", 0) for kind in KINDS}
        return reads if min(reads.values()) >= ROUNDS else None
    reads = harness.poll(all_read, DEADLINE_S, "a to read each of its own slots again",
                         lambda: f"{a.counters()}\n{a.log_tail()}", interval=0.2)
    note(f"a read its own slots {reads} in {time.monotonic() - t0:.1f} s")
    check(a.alive(), "a died")
    for n in (a, seed):
        n.stop()
    harness.check_all_logs(c)


if __name__ == "__main__":
    harness.main(test, "own_slot_poll")
