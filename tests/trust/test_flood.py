#!/usr/bin/env python3
"""A flood of strangers does not delay a trusted contact (issue 6, "Flood").

postern-hostile --flood puts 5,000 valid stampless notifications into r's
inbox slot, each from its own fresh stranger; while they arrive, t (r's
trusted contact) sends r one real message. Checked:
  - t's message lands in r's Maildir INBOX (a generous deadline, a bound and
    no timing claim: tools/bench/bench_flood.py measures the delay);
  - every one of the 5,000 is counted, by its reason: rejected.inbox.no_stamp
    grows by exactly the distinct notifications stored, each only once the
    node found no vouch for its sender (one DHT lookup per stranger, at most
    4 at once, while the notification waits parked: node/mail/inbox.c); nothing
    else is accepted or delivered;
  - r's RSS stays bounded.
"""

import subprocess
import time

import trustlib as tl
from trustlib import check, harness, note

FLOOD = 5000
RATE = 200  # puts per second: at 250/s OpenDHT (1,024 requests/s per source IP) lost a few
DELIVER_S = 60  # a bound for the trusted message, not a measurement
STALL_S = 60    # counting must move at least once a minute (5,000 lookups, 4 at a time)
COUNT_MAX_S = 400  # and end within this bound (ASan on 2 busy cores is slow)


def flood_argv(c, seed, target, count, rate, seed_random):
    return [c.hostile, "--network", str(c.network), "--seed", seed.seed_addr(),
            "--target", target.home.fingerprint, "--json", "--linger", "--flood", str(count),
            "--rate", str(rate), "--seed-random", seed_random, "--max-seconds", "500"]


def wait_counted(r, name, want):
    """Polls r's counter until it reaches want: fails when it stops moving
    for STALL_S (or after COUNT_MAX_S), not after a fixed time, so a slow
    sanitized build is not mistaken for a lost notification."""
    last = {"v": None, "at": time.monotonic()}
    t_end = time.monotonic() + COUNT_MAX_S

    def once():
        k = r.counters()
        v = k.get(name, 0)
        now = time.monotonic()
        if v != last["v"]:
            last["v"], last["at"] = v, now
        if v >= want:
            return k
        check(now - last["at"] < STALL_S and now < t_end,
              f"{name} stuck at {v} of {want} for {now - last['at']:.0f} s\n" + r.log_tail())
        return None
    return harness.poll(once, COUNT_MAX_S + 5, f"r to count {want} {name}", r.log_tail,
                        interval=0.5)


def test(c):
    t0 = time.monotonic()
    seed = c.start(c.new_home("seed", "seed@trust.example"), [], extra=tl.FAST)
    # r reads its inbox slot every 5 s (a get of 5,000 values is a burst)
    nodes = tl.start_all(c, ["r", "t"], seed, {"r": ["--inbox-poll", "5"]})
    r, t = nodes["r"], nodes["t"]
    seed.wait_joined()
    harness.wait_mail_ready(c, [t], [r])
    tl.trust_set(c, r, t, "trusted")
    base = r.counters()
    mail0 = harness.maildir_all(r.home)
    rss0 = r.rss_kib()

    with harness.RssSampler([r], interval=0.2) as rss, \
            subprocess.Popen(flood_argv(c, seed, r, FLOOD, RATE, "flood"), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) as hp:
        # the flood is arriving: now the trusted message
        harness.wait_counter(r, "inbox.values_seen", base.get("inbox.values_seen", 0) + 50,
                             timeout=60)
        ts = time.monotonic()
        mid = tl.send(c, t, r, "auto", "trusted, during the flood")["message_id"]
        paths = harness.wait_delivered(c, r, mid, timeout=DELIVER_S)
        note(f"t's message delivered {time.monotonic() - ts:.2f} s after the send, "
             f"into {tl.folder_of(r.home, paths[0])}")
        check(tl.folder_of(r.home, paths[0]) == "INBOX", f"t's message went to {paths}")

        summary = harness.hostile_summary(hp)
        k = summary["classes"]["inbox-nostamp"]
        note(f"flood: {k['put_ok']} of {k['put']} stored, {k['distinct']} distinct, in "
             f"{summary['elapsed_ms'] / 1000:.1f} s")
        check(k["put_ok"] == FLOOD and k["distinct"] == FLOOD, f"flood: {summary}")
        want = base.get("rejected.inbox.no_stamp", 0) + k["distinct"]
        after = wait_counted(r, "rejected.inbox.no_stamp", want)
        rss.wait_next_sample()
        hp.stdin.close()
        check(hp.wait(timeout=30) == 0, f"postern-hostile exited {hp.returncode}")
    check(r.alive(), "r died under the flood\n" + r.log_tail())
    note(f"r counted {after['rejected.inbox.no_stamp'] - base.get('rejected.inbox.no_stamp', 0)}"
         f" no_stamp at {time.monotonic() - t0:.1f} s")
    grew = {n: v - base.get(n, 0) for n, v in after.items()
            if n.startswith("rejected.inbox.") and v != base.get(n, 0)}
    check(grew == {"rejected.inbox.no_stamp": FLOOD}, f"r's inbox rejections: {grew}")
    check(after.get("inbox.accepted", 0) == base.get("inbox.accepted", 0) + 1,
          f"r accepted {after.get('inbox.accepted', 0) - base.get('inbox.accepted', 0)} "
          "notifications (want t's only)")
    new = sorted(set(harness.maildir_all(r.home)) - set(mail0))
    check(new == paths, f"r's Maildir got {new}")

    harness.check_rss_growth(c, r, rss, rss0)
    note(f"total {time.monotonic() - t0:.1f} s")
    harness.stop_nodes((t, r, seed))


if __name__ == "__main__":
    harness.main(test, "trust_flood")
