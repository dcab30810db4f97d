#!/usr/bin/env python3
"""kill -9 at random points of many send/receive cycles loses nothing and
duplicates nothing (issue 6, "Faults").

Two nodes, a (sender) and b (recipient, trusts a), plus a seed that is never
killed. Every cycle sends one message from a to b with `postern send`, then
kills one side with SIGKILL: a in even cycles, b in odd ones, at a point the
seeded RNG picks:

  send   after a random delay while `postern send` is still running (the
         node may die before or after it made the message durable);
  fetch  while b fetches: for a message of a few MiB when b's tmp/ file has
         reached a random fraction of it, for a small one after a random
         delay (before, during or just after the fetch);
  after  right after `send` returned.

The victim is restarted at once; the cycle ends when the message is in b's
Maildir and a's outbox shows b's verified receipt (polled with a deadline).
A send whose CLI did not exit 0 is not acknowledged and not waited for; if
the node had stored it anyway it must still arrive at most once.

At the end: every acknowledged message is in b's Maildir exactly once with
the bytes that were sent, every message a's outbox holds shows b's receipt,
b's Maildir holds nothing else (one file per message, found by its tag),
tmp/ is empty and b's inbox has nothing pending or failed.

PST_CRASH_CYCLES sets the number of cycles (default 10, under a minute; the
issue's figure is PST_CRASH_CYCLES=200, see docs/MAIL.md), PST_CRASH_SEED
the RNG seed (fixed by default; printed at the start; "random" for a new
one)."""

import hashlib
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

FAST = ["--renotify", "1", "--inbox-poll", "1"]
CYCLES = int(os.environ.get("PST_CRASH_CYCLES", "10"))
# a fixed seed by default, so a failure in CI replays with the same choices
# (timing still varies); PST_CRASH_SEED=random picks a new one
_seed = os.environ.get("PST_CRASH_SEED", "20261129")
SEED = random.SystemRandom().randrange(1 << 32) if _seed == "random" else int(_seed)
POINTS = ("send", "fetch", "after")
BIG_SHARE = 0.3                      # share of messages of 1-4 MiB
BIG_MIN, BIG_MAX = 1 << 20, 4 << 20
SMALL_MIN, SMALL_MAX = 200, 64 << 10
SEND_KILL_SPAN = 1.5                 # kill within 1.5 x the median time of a send
FETCH_KILL_MAX_S = 0.05              # a small message arrives within ms of `send`
WATCH_S = 20
TIGHT_S = 0.001                      # a 4 MiB fetch takes ~20 ms: poll tightly
CYCLE_DEADLINE_S = 120               # b's retry backoff is 5 s, doubling
TAG_HEADER = b"X-Crash-Tag: "


def make_message(rng, tag, big):
    size = rng.randrange(BIG_MIN, BIG_MAX) if big else rng.randrange(SMALL_MIN, SMALL_MAX)
    head = (f"Subject: crashloop {tag}\n").encode() + TAG_HEADER + tag.encode() + b"\n\n"
    return head + harness.mail_body_bytes(rng.randbytes(size))


def tag_of(path):
    """The X-Crash-Tag of a delivered file (the node puts two lines above)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    at = head.find(b"\n" + TAG_HEADER)
    check(at >= 0, f"{path} has no {TAG_HEADER!r} header: {head[:300]!r}")
    start = at + 1 + len(TAG_HEADER)
    return head[start:head.index(b"\n", start)].decode()


def maildir_state(home, mid):
    """What b's Maildir shows of mid now: 'new' (delivered), 'tmp N' (a partial
    file of N bytes) or 'none'."""
    if mid and harness.maildir_copies(home, mid):
        return "new"
    tmp = harness.maildir_tmp(home)
    if tmp:
        return f"tmp {max(s for _, s in tmp)}"
    return "none"


def kill_during_fetch(c, victim, b, mid, size, rng, big):
    """Kills victim while b fetches mid; returns what b's Maildir showed."""
    if not big:
        time.sleep(rng.uniform(0, FETCH_KILL_MAX_S))  # the random kill point itself
        seen = maildir_state(b.home, mid)
        harness.kill9(victim)
        return seen
    frac = rng.uniform(0.0, 0.95)
    deadline = time.monotonic() + WATCH_S
    while time.monotonic() < deadline:
        tmp = harness.maildir_tmp(b.home)
        have = max((s for _, s in tmp), default=-1)
        if have >= 0 and have >= frac * size:
            harness.kill9(victim)
            return f"tmp {have}"
        if harness.maildir_copies(b.home, mid):
            harness.kill9(victim)
            return "new"
        time.sleep(TIGHT_S)
    raise harness.TestFailure(f"{mid[:8]} never reached b's Maildir\n" + c.all_log_tails())


def log_count(c, name, text):
    """Lines holding text in every log of node name (all its starts)."""
    import glob
    count = 0
    for path in glob.glob(os.path.join(c.tmp, f"{name}.*.log")):
        with open(path, "rb") as f:
            count += sum(1 for line in f if text.encode() in line)
    return count


def test(c):
    t_start = time.monotonic()
    rng = random.Random(SEED)
    note(f"crashloop: {CYCLES} cycles, PST_CRASH_SEED={SEED}")
    seed, a, b = harness.mail_pair(c, FAST, FAST)
    port_a = a.fetch_port

    acked = {}       # message id -> (tag, digest of the body, body length, message length)
    unacked = []     # tags of sends that did not exit 0
    tags = set()     # every message tried
    hits = {}        # "victim point: what b's Maildir showed" -> count
    send_s = []      # durations of sends nobody killed
    for i in range(CYCLES):
        victim = a if i % 2 == 0 else b
        point = rng.choice(POINTS)
        big = rng.random() < BIG_SHARE
        tag = f"{SEED}-{i}"
        data = make_message(rng, tag, big)
        tags.add(tag)
        body = data[data.index(b"\n\n"):]
        path = harness.mail_write(c, data)
        argv = [c.postern, "send", "--home", a.home.path, "--to", b.home.fingerprint, path,
                "--json"]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        seen = None
        t_send = time.monotonic()
        if point == "send":
            span = SEND_KILL_SPAN * sorted(send_s)[len(send_s) // 2] if send_s else 0.1
            try:
                p.wait(timeout=rng.uniform(0, span))  # the random kill point itself
            except subprocess.TimeoutExpired:
                pass
            seen = "cli running" if p.poll() is None else "cli done"
            harness.kill9(victim)
        try:
            out, err = p.communicate(timeout=harness.CLI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise harness.TestFailure(f"cycle {i}: postern send did not finish\n"
                                      + c.all_log_tails())
        os.unlink(path)
        err = err.decode(errors="replace")
        report = harness.sanitizer_report(err)
        check(report is None, f"sanitizer finding in postern send:\n{report}")
        mid = None
        if point != "send":
            send_s.append(time.monotonic() - t_send)
        if p.returncode == 0:
            mid = json.loads(out)["message_id"]
            acked[mid] = (tag, hashlib.sha256(body).digest(), len(body), len(data))
        else:
            check(p.returncode == 1 and err.strip(), f"cycle {i}: postern send exited "
                  f"{p.returncode} with {err!r} (expected 1 and a message)")
            unacked.append(tag)
        if point == "after":
            seen = maildir_state(b.home, mid)
            harness.kill9(victim)
        elif point == "fetch":
            if mid is None:
                harness.kill9(victim)
                seen = "send failed"
            else:
                seen = kill_during_fetch(c, victim, b, mid, len(data), rng, big)
        key = f"{victim.name} {point}: {seen.split()[0] if seen else '?'}"
        hits[key] = hits.get(key, 0) + 1
        c.restart(victim)
        victim.wait_joined()
        if victim is a:
            check(a.fetch_port == port_a, f"a's fetch port {port_a} -> {a.fetch_port}")
        if mid is not None:
            harness.wait_delivered(c, b, mid, timeout=CYCLE_DEADLINE_S)
            harness.wait_receipt(c, a, mid, b, timeout=CYCLE_DEADLINE_S)
            copies = harness.maildir_copies(b.home, mid)
            check(len(copies) == 1, f"cycle {i}: {mid[:8]} has {len(copies)} copies: {copies}")
        note(f"cycle {i + 1}/{CYCLES}: kill {victim.name} at {point} "
             f"({'big' if big else 'small'} {len(data)} B, saw {seen}), send "
             f"{'acked ' + mid[:8] if mid else 'exit 1: ' + err.strip().splitlines()[-1]}")

    # ---- the end: every message a stored has b's receipt, once ----
    # (the outbox listing has a size cap: count with `total`, look each up)
    def settled():
        total = harness.mail_outbox(c, a.home, limit=1)["total"]
        inbox = harness.mail_inbox(c, b.home, limit=1)
        files = harness.maildir_all(b.home)
        if inbox["pending"] == 0 and len(files) >= total:
            return total, files, inbox
        return None

    stored, files, inbox = harness.poll(settled, CYCLE_DEADLINE_S,
                                        "b to hold every message of a's outbox",
                                        c.all_log_tails, interval=0.2)
    check(len(files) == stored, f"b's Maildir holds {len(files)} files, a's outbox {stored} "
          "messages")
    check(inbox["failed"] == 0, f"b's inbox totals {inbox}")
    by_tag, mids = {}, set()
    for f in files:
        by_tag.setdefault(tag_of(f), []).append(f)
        mids.add(os.path.basename(f).split(".")[0])
    dups = {t: fs for t, fs in by_tag.items() if len(fs) > 1}
    check(not dups, f"tags delivered more than once: {dups}")
    check(set(by_tag) <= tags, f"unknown tags in b's Maildir: {set(by_tag) - tags}")
    check(len(mids) == len(files), f"one message id in two folders: {files}")
    lost = [mid for mid in acked if len(harness.maildir_copies(b.home, mid)) != 1]
    check(not lost, f"acknowledged messages not delivered exactly once: {lost}")
    receipts = 0
    for mid in sorted(mids):
        harness.wait_receipt(c, a, mid, b, timeout=CYCLE_DEADLINE_S)  # also the unacknowledged
        receipts += mid in acked
        if mid in acked:
            tag, digest, body_len, size = acked[mid]
            got = harness.read_bytes(harness.maildir_copies(b.home, mid)[0])
            check(hashlib.sha256(got[-body_len:]).digest() == digest and len(got) - size < 400,
                  f"{mid[:8]} ({tag}): the copy differs")
    check(receipts == len(acked), f"{receipts} receipts shown for {len(acked)} acknowledged")
    late = [t for t in unacked if t in by_tag]
    check(harness.maildir_tmp(b.home) == [], f"b's tmp/: {harness.maildir_tmp(b.home)}")
    check(len(acked) >= CYCLES // 2, f"only {len(acked)} of {CYCLES} sends were acknowledged")
    for n in (b, a, seed):
        n.stop()
    harness.check_all_logs(c)
    logs = {w: log_count(c, "b", w) for w in ("stored before a restart", "unfinished file")}
    wall = time.monotonic() - t_start
    note("kill points (victim point: b's Maildir at the kill): "
         + ", ".join(f"{k2} {v}" for k2, v in sorted(hits.items())))
    note(f"b's logs over {b.starts} starts: found already in the Maildir after a restart "
         f"{logs['stored before a restart']}, partial files removed from tmp/ at start "
         f"{logs['unfinished file']} times; a started {a.starts} times")
    note(f"RESULT crashloop seed {SEED}: cycles {CYCLES}, sends acknowledged {len(acked)}, "
         f"delivered exactly once {len(acked) - len(lost)}, duplicates {len(dups)}, lost "
         f"{len(lost)}, receipts shown {receipts}; not acknowledged {len(unacked)} (of which "
         f"delivered once anyway {len(late)}); wall {wall:.0f} s")


if __name__ == "__main__":
    harness.main(test, "mail_crashloop")
