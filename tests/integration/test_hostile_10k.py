#!/usr/bin/env python3
"""The 10,000-value hostile run (issue 6, "Hostile network").

One postern-hostile run puts more than 10,000 bad values into a's key,
address, vouch and inbox slots: every record class (random bytes,
truncated, oversized, bad signatures, slot mismatch, wrong type, lower-seq
replays, expired, future, non-canonical) and every inbox class (random,
oversized, forged, wrong seal, wrong recipient, replayed notifications,
expired, mis-bound stamps, weak stamps, double-spent stamps, stampless
strangers). Before it, b (a stranger to a) mails a with a stamp, so a's
inbox slot holds a real notification to replay, a message id to claim and
a stamp a has spent.

Checked: nothing accepted (a's key record, seq and address unchanged
everywhere, no endorsement, nothing new in a's Maildir, no inbox row), a
alive and answering, RSS bounded, and every value counted by reason: for
each slot the growth of the rejected.SLOT.* counters equals exactly the
number of DISTINCT values stored there (postern-hostile's "distinct"):
  - a node looks at the same bytes once (seen sets: node/core/seen.c): OpenDHT
    hands a value over several times (listen, the periodic get, duplicates)
    and counting each hand-over would make the figure meaningless. Several
    classes produce identical bytes now and then (a truncation to a few
    bytes of the same record head, 1-byte random values, the same fresh
    key's revocation), so "distinct" is below "put_ok";
  - verbatim copies of values already in the slot (inbox-replay) are not
    distinct either: a remembers those bytes from before the run and skips
    them unread (docs/cli/hostile.md).
Nothing else is subtracted: OpenDHT keeps every value put (each has its own
value id; none is over its 64 KiB limit). Under this load OpenDHT's listen
notifications and the DHT layer's queue (PST_DHT_QUEUE_MAX) drop some
values, so a reads its slots again (--inbox-poll 2: the inbox slot and, one
at a time, its key, address and vouch slots), and the hostile peer stays in
the DHT (--linger) until a counted everything, because some values are
stored on the hostile node only.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_OK, check, note  # noqa: E402

PER_SLOT = 252   # values per class and slot: 29 record + 11 inbox class/slot pairs: 10,080
# puts per second. Every loopback node shares one source IP and OpenDHT drops
# requests over 1,024/s per IP: at 300/s a few dozen values per slot never
# reached a (nor any later get), at 200/s none; the test needs them all
RATE = int(os.environ.get("PST_HOSTILE_RATE", "200"))
POW_BITS = 12    # what a asks strangers for: weak stamps mint in microseconds
A_FLAGS = ["--pow-bits", str(POW_BITS), "--inbox-poll", "2"]
SLOTS = ("key", "address", "vouch", "inbox")
# every record class but "revoked", whose values are valid records of a (the
# tool has a's identity key): bad only once a is revoked
RECORD_CLASSES = "random,truncated,oversize,badsig,mismatch,wrongtype,stale,expired,future," \
    "noncanonical"


def rejected_by_slot(counters, slot):
    pre = f"rejected.{slot}."
    return {k[len(pre):]: v for k, v in counters.items() if k.startswith(pre)}


def print_table(summary, base, after):
    """The per-class table for the docs: values put, distinct, and a's counts."""
    note(f"{'class':18s} {'slots':22s} {'put':>6s} {'distinct':>8s} {'accepted':>8s}")
    for name, k in summary["classes"].items():
        slots = "inbox" if name.startswith("inbox") else "key,address" + (
            "" if name == "stale" else ",vouch")
        note(f"{name:18s} {slots:22s} {k['put_ok']:6d} {k['distinct']:8d} {0:8d}")
    for s in SLOTS:
        grew = {r: v - rejected_by_slot(base, s).get(r, 0)
                for r, v in rejected_by_slot(after, s).items()}
        note(f"  rejected.{s}.*: " + ", ".join(f"{r}={v}" for r, v in sorted(grew.items()) if v))


def test(c):
    t0 = time.monotonic()
    seed = c.start(c.new_home("seed", "seed@it.example"))
    a = c.start(c.new_home("a", "a@it.example"), [seed], extra=A_FLAGS)
    hb = c.new_home("b", "b@it.example")
    with open(hb.file("postern.conf"), "a") as f:
        f.write("hint_put_delay = 0\n")  # its notification must be in a's slot, not only hinted
    b = c.start(hb, [seed])
    for nd in (seed, a, b):
        nd.wait_joined()
    harness.wait_mail_ready(c, [b], [a])
    doc0, _ = c.wait_key(b, a.home, pred=lambda d: d.get("status") == "valid")

    # a real stamped notification in a's slot: replayed, its id claimed, its stamp re-spent
    _, sent, _ = harness.mail_send(c, b.home, to=[a.home.fingerprint], subject="real",
                                   body="the one real message", extra=["--pow", "always"])
    mid = sent["message_id"]
    harness.wait_delivered(c, a, mid)
    harness.wait_receipt(c, b, mid, a)
    mail0 = harness.maildir_all(a.home)
    note(f"set up in {time.monotonic() - t0:.1f} s")
    base = a.counters()
    rss0 = a.rss_kib()

    argv = [c.hostile, "--network", str(c.network), "--seed", seed.seed_addr(),
            "--target", a.home.fingerprint, "--json", "--linger",
            "--identity", a.home.file("identity.key"), "--address", a.home.address,
            "--classes", RECORD_CLASSES + ",inbox-all", "--count", str(PER_SLOT), "--rate", str(RATE),
            "--msg-id", mid, "--seed-random", "ten-thousand", "--max-seconds", "150"]
    with harness.RssSampler([a], interval=0.2) as rss, \
            subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) as hp:
        summary = harness.hostile_summary(hp)  # --linger: once every put ended
        check(not summary["timed_out"] and "error" not in summary,
              f"postern-hostile failed: {summary}")
        total = summary["total"]
        note(f"hostile: {total['put']} values put, {total['put_ok']} confirmed, "
             f"{total['refused']} refused locally, in {summary['elapsed_ms'] / 1000:.1f} s")
        check(total["put_ok"] >= 10000, f"only {total['put_ok']} values stored: {total}")
        check(total["refused"] == 0 and total["put_failed"] == 0, f"puts lost: {total}")
        for name, k in summary["classes"].items():
            check(k["put_ok"] >= PER_SLOT and not k["skipped"].get("inbox"),
                  f"class {name}: {k}")

        # what each slot must count: every distinct value stored (docstring)
        expect = {s: summary["slots"][s]["distinct"] for s in SLOTS}
        verbatim = sum(k["verbatim"] for k in summary["classes"].values())
        check(verbatim > 0 and summary["classes"]["inbox-replay"]["put_ok"] > verbatim,
              f"inbox-replay: {summary['classes']['inbox-replay']}")

        def counted():
            k = a.counters()
            counted.last = k
            got = {s: sum(rejected_by_slot(k, s).values()) -
                   sum(rejected_by_slot(base, s).values()) for s in SLOTS}
            counted.got = got
            return k if all(got[s] >= expect[s] for s in SLOTS) else None
        counted.last, counted.got = None, None
        after = harness.poll(counted, 60, "a to count every hostile value",
                             lambda: f"counted {counted.got}, expected {expect}\n"
                             f"a's counters: {counted.last}\nsummary: {summary}\n"
                             + a.log_tail(), interval=0.5)
        rss.wait_next_sample()
        note(f"a counted every value at {time.monotonic() - t0:.1f} s")
        hp.stdin.close()  # the hostile peer leaves the DHT
        check(hp.wait(timeout=30) == 0, f"postern-hostile exited {hp.returncode}: "
              f"{hp.stderr.read()!r}")
    note(f"hostile peer gone at {time.monotonic() - t0:.1f} s")
    # one more read of every slot (inbox and our own key, address and vouch
    # slots, one per poll): nothing counted twice
    own = after.get("dht.own_slot_reads", 0)
    harness.wait_counter(a, "dht.own_slot_reads", own + 3, timeout=60)
    later = harness.wait_counter(a, "inbox.values_seen", after.get("inbox.values_seen", 0) + 1)
    for s in SLOTS:
        check(sum(rejected_by_slot(later, s).values()) == sum(rejected_by_slot(after, s).values()),
              f"slot {s}: counted again after the run: {rejected_by_slot(later, s)}")
    check(a.alive(), "a died under the hostile run\n" + a.log_tail())
    got = counted.got
    note(f"counted by a: {got}; distinct values stored: {expect} (of {total['put_ok']} put; "
         f"{verbatim} verbatim replays skipped unread)")
    print_table(summary, base, after)
    for s in SLOTS:
        check(got[s] == expect[s], f"slot {s}: a counted {got[s]} rejections, "
              f"{expect[s]} values were put")
    for r in ("signature", "slot_mismatch", "wrong_type", "stale_seq", "expired", "notyet",
              "truncated", "noncanonical"):
        check(rejected_by_slot(after, "key").get(r, 0) > rejected_by_slot(base, "key").get(r, 0),
              f"no key-slot value was rejected for {r}")
    for r in ("crypto", "signature", "wrong_recipient", "msgid_conflict", "expired",
              "stamp_resource", "stamp_ext", "stamp_too_weak", "no_stamp"):
        check(rejected_by_slot(after, "inbox").get(r, 0) >
              rejected_by_slot(base, "inbox").get(r, 0), f"no inbox value was rejected for {r}")

    note(f"checks at {time.monotonic() - t0:.1f} s")
    # zero accepted
    for name in ("accepted.endorsement", "inbox.accepted", "inbox.delivered"):
        check(after.get(name, 0) == base.get(name, 0),
              f"{name} went from {base.get(name, 0)} to {after.get(name, 0)}")
    check(harness.maildir_all(a.home) == mail0,
          f"a's Maildir changed: {sorted(set(harness.maildir_all(a.home)) - set(mail0))}")
    rc, inbox, _ = c.cli_json(["inbox", "--home", a.home.path])
    check(rc == EX_OK and [m["id"] for m in inbox["messages"]] == [mid] and
          inbox["pending"] == 0 and inbox["failed"] == 0, f"a's inbox has other rows: {inbox}")
    # (each `key get` of a also reads a's vouch slot: ~10 s with these values)
    for obs in (b, a):
        t1 = time.monotonic()
        rc, doc, err = c.key_get(obs.home, a.home.fingerprint)
        note(f"{obs.name}: key get of a in {time.monotonic() - t1:.1f} s")
        check(rc == EX_OK and doc["status"] == "valid", f"{obs.name}: {rc} {doc} {err}")
        check(doc["seq"] == doc0["seq"] and doc["encryption_key"] == doc0["encryption_key"] and
              doc["endpoints"] == doc0["endpoints"],
              f"{obs.name} now answers a different key record for a: {doc} (was {doc0})")
        check(not any(v.get("counts") for v in doc.get("vouches", [])),
              f"{obs.name} counts a vouch for a: {doc.get('vouches')}")
    # (no `key get` of a's address: ~18 s through a slot of 2,400 values; the
    # counts above show that a rejected every distinct value put there)

    harness.check_rss_growth(c, a, rss, rss0)
    note(f"total {time.monotonic() - t0:.1f} s")
    harness.stop_nodes((b, a, seed))


if __name__ == "__main__":
    harness.main(test, "hostile_10k")
