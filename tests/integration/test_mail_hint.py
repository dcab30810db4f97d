#!/usr/bin/env python3
"""Direct hints (docs/MAIL.md, "Hints"): beside the DHT put of a new
notification the sender's node hands the same bytes to the recipient's
fetch endpoint.
  1. b does not listen on its inbox slot (inbox_listen = no) and reads it
     once an hour: a's message still reaches b's Maildir within seconds,
     through the hint (b's hint.in.accepted), and b looked at no DHT value.
  2. c listens as usual: the hint and the DHT both bring the notification,
     the message is delivered exactly once, the later copy is only "seen".
  3. postern-hostile --fetch hint,hint-flood against b from 127.0.0.2:
     garbage, another identity, an oversize notification, junk, a replay and
     a flood of hints are refused with their counters (rejected.hint.*,
     hint.in.refused/seen, rejected.hint.rate); b keeps delivering a's mail.
  4. b restarted with hints = no refuses a's next hint (rejected.hint.off)
     and a counts it (hint.out.refused).
  6. d, with the default hint_put_delay (a has 0: it puts at once, for 2.),
     mails c: the first DHT put waits for the hint's receipt, which comes
     first, so no put is made at all (outbox.first_puts_spared). With c
     stopped, d's hint fails at once, and so the held put is made at once
     (outbox.first_puts_unheld), not after the delay."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402
from test_mail_hostile import delta as deltas, hostile as hostile_fetch  # noqa: E402
from test_mail_hostile import send_real  # noqa: E402

DEADLINE_S = 10  # the hint's path is milliseconds; the DHT read is an hour away
SOURCE = "127.0.0.2"
COUNT = 20  # hostile hints per kind x 5 kinds; the flood sends COUNT x 100
RATE = 100  # b's hint_rate: hints a second from one address (and the burst)


def delta(after, before, name):
    return after.get(name, 0) - before.get(name, 0)


def hinted_delivery(c, a, b, tag):
    """a -> b, b reading its slot only once an hour: delivered through the
    hint alone. Returns the message id."""
    kb, ka = b.counters(), a.counters()
    t0 = time.monotonic()
    m = send_real(c, a, b, tag)
    harness.wait_delivered(c, b, m, timeout=DEADLINE_S)
    took = time.monotonic() - t0
    k = b.counters()
    check(delta(k, kb, "hint.in.accepted") == 1 and delta(k, kb, "inbox.accepted") == 1,
          f"{tag}: b took the notification {delta(k, kb, 'inbox.accepted')} times, "
          f"{delta(k, kb, 'hint.in.accepted')} by hint: {deltas(k, kb, 'hint.')}")
    check(delta(k, kb, "inbox.values_seen") == 0,
          f"{tag}: b looked at {delta(k, kb, 'inbox.values_seen')} values of its slot")
    check(delta(a.counters(), ka, "hint.out.sent") >= 1, f"{tag}: a counted no hint sent")
    harness.wait_receipt(c, a, m, b)
    check(len(harness.maildir_copies(b.home, m)) == 1, f"{tag}: not one copy in b's Maildir")
    note(f"{tag}: send -> b's Maildir in {took * 1000:.0f} ms (CLI included), by the hint")
    return m


def test(c):
    seed = c.start(c.new_home("seed"), [])
    hb = c.new_home("b", "b@it.example")
    with open(hb.file("postern.conf"), "a") as f:
        f.write("inbox_listen = no\n")
        f.write(f"hint_rate = {RATE}\n")
    ha = c.new_home("a", "a@it.example")
    with open(ha.file("postern.conf"), "a") as f:
        f.write("hint_put_delay = 0\n")  # 2.: the DHT copy comes too
    a = c.start(ha, [seed])
    b = c.start(hb, [seed], extra=["--inbox-poll", "3600"])
    cn = c.start(c.new_home("c", "c@it.example"), [seed], extra=["--inbox-poll", "3600"])
    for n in (seed, a, b, cn):
        n.wait_joined()
    harness.wait_mail_ready(c, [a], [b, cn])
    harness.trust(c, b, a)
    harness.trust(c, cn, a)
    # b's one read of its slot at start (retried every 5 s until a get
    # succeeds); after it, the next is an hour away
    harness.wait_counter(b, "dht.own_slot_reads_ok.inbox", 1)

    # ---- 1. the hint alone ----
    hinted_delivery(c, a, b, "1. listen off")

    # ---- 2. hint and DHT both: exactly once ----
    kc = cn.counters()
    m2 = send_real(c, a, cn, "2. both paths")
    harness.wait_delivered(c, cn, m2)
    harness.poll(lambda: delta(cn.counters(), kc, "inbox.values_seen") >= 1, 30,
                 "c's listen to hand over the DHT copy", cn.log_tail, interval=0.1)
    harness.wait_receipt(c, a, m2, cn)
    k = cn.counters()
    check(len(harness.maildir_copies(cn.home, m2)) == 1, "c holds the message more than once")
    check(delta(k, kc, "inbox.accepted") == 1,
          f"c took the notification {delta(k, kc, 'inbox.accepted')} times")
    check(delta(k, kc, "hint.in.accepted") + delta(k, kc, "hint.in.seen") == 1,
          f"c's hint counters: {deltas(k, kc, 'hint.')}")
    note(f"2. both paths: one copy; hint {deltas(k, kc, 'hint.in.')}, "
         f"DHT values seen {delta(k, kc, 'inbox.values_seen')}")

    # ---- 3. hostile hints ----
    kb = b.counters()
    target = f"127.0.0.1:{b.fetch_port}"
    rc, fx, err = hostile_fetch(c, ["--fetch", target, "--source", SOURCE, "--target",
                                    b.home.fingerprint, "--attacks", "hint,hint-flood", "--count",
                                    str(COUNT), "--seed-random", "hint", "--max-seconds", "40"])
    check(rc == 0, f"postern-hostile --fetch hint failed ({rc}): {err} {fx}")
    at = fx["attacks"]
    h = at["hint"]
    # garbage, another identity, oversize: a signed refusal each; junk and
    # its replay: no answer, the node closes when we do
    check(h["sent"] == COUNT and h["answered"] == 3 * COUNT // 5 and
          h["closed"] == 2 * COUNT // 5 and "ok" not in h["status"], f"hint: {h}")
    check(h["status"].get("not_found") == COUNT // 5, f"hint for another identity: {h}")
    k = b.counters()
    rej = deltas(k, kb, "rejected.hint.")
    want_frames = COUNT + COUNT * 100
    harness.poll(lambda: delta(b.counters(), kb, "hint.in.received") >= want_frames, 30,
                 "b to read every hostile hint", b.log_tail, interval=0.2)
    k = b.counters()
    rej = deltas(k, kb, "rejected.hint.")
    note(f"3. hostile hints: b received {delta(k, kb, 'hint.in.received')}, rejected "
         + ", ".join(f"{r}={n}" for r, n in sorted(rej.items()))
         + f"; refused by the inbox {delta(k, kb, 'hint.in.refused')}, "
         f"seen {delta(k, kb, 'hint.in.seen')}, accepted {delta(k, kb, 'hint.in.accepted')}")
    check(rej.get("wrong_recipient", 0) == COUNT // 5, f"wrong_recipient: {rej}")
    check(rej.get("toobig", 0) >= COUNT // 5, f"oversize: {rej}")
    check(rej.get("rate", 0) >= 1, f"the flood met no rate cap: {rej}")
    check(delta(k, kb, "hint.in.seen") >= COUNT // 5, f"replays: {deltas(k, kb, 'hint.in.')}")
    check(delta(k, kb, "hint.in.refused") >= COUNT // 5,
          f"junk: {deltas(k, kb, 'hint.in.')}")
    check(delta(k, kb, "rejected.inbox.crypto") >= COUNT // 5,
          f"junk went through the inbox's checks: {deltas(k, kb, 'rejected.inbox.')}")
    check(delta(k, kb, "hint.in.accepted") == 0 and delta(k, kb, "inbox.accepted") == 0,
          f"b accepted a hostile hint: {deltas(k, kb, 'hint.in.')}")
    check(b.alive(), "b died under hostile hints")

    # ---- 4. a's mail still comes by hint after the attack ----
    hinted_delivery(c, a, b, "4. after the attack")

    # ---- 5. hints off at the recipient ----
    b.stop()
    with open(hb.file("postern.conf"), "a") as f:
        f.write("hints = no\n")
    c.restart(b)
    b.wait_joined()
    ka = a.counters()
    send_real(c, a, b, "5. hints off")
    harness.wait_counter(a, "hint.out.refused", ka.get("hint.out.refused", 0) + 1, timeout=20)
    harness.wait_counter(b, "rejected.hint.off", 1, timeout=20)

    # ---- 6. the first put waits for the hint's receipt ----
    d = c.start(c.new_home("d", "d@it.example"), [seed])
    d.wait_joined()
    harness.wait_mail_ready(c, [d], [cn])
    harness.trust(c, cn, d)
    m6 = send_real(c, d, cn, "6. held put")
    harness.wait_delivered(c, cn, m6, timeout=DEADLINE_S)
    harness.wait_receipt(c, d, m6, cn)
    harness.wait_counter(d, "outbox.first_puts_spared", 1, timeout=10)
    k = d.counters()
    check(k.get("outbox.first_puts_held", 0) == 1 and k.get("outbox.notify_puts", 0) == 0,
          f"6. d put a notification its hint answered: {deltas(k, {}, 'outbox.')}")
    check(len(harness.maildir_copies(cn.home, m6)) == 1, "6. not one copy in c's Maildir")
    cn.stop()
    send_real(c, d, cn, "6. recipient away")
    harness.wait_counter(d, "outbox.first_puts_unheld", 1, timeout=20)
    harness.wait_counter(d, "outbox.notify_puts", 1, timeout=20)
    k = d.counters()
    note(f"6. held put: d {deltas(k, {}, 'outbox.')}, hints {deltas(k, {}, 'hint.out.')}")
    harness.stop_all(c, [d, b, a, seed])


if __name__ == "__main__":
    harness.main(test, "mail_hint")
