#!/usr/bin/env python3
"""Replays of old records. postern-hostile, holding a's identity key, puts
correctly signed KeyRecords and AddressClaims of a with a seq below the
current one into a's slots. Every node still answers a's current seq, and
the nodes that saw the old values count them as rejected.*.stale_seq. A key
whose only records have expired is reported expired (exit 4)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_EXPIRED, EX_OK, check, note  # noqa: E402

COUNT = 20


def test(c):
    seed, a, b = c.network_of(3, names=["seed", "a", "b"])
    # restart a with another pow_bits: a new record (seq 2) makes seq 1 a
    # genuine old record, still valid and still in the DHT
    ident = harness.republish(c, a, ["--pow-bits", "21"])
    cur = ident["seq"]
    check(cur >= 2, f"a's seq after a restart with new pow bits is {cur}, expected >= 2")
    doc, _ = c.wait_key(b, a.home, pred=lambda d: d.get("status") == "valid" and d["seq"] == cur)
    before_a = a.counters()
    before_b = b.counters()

    rc, summary, err = c.hostile_run(seed, a.home, [
        "--identity", a.home.file("identity.key"), "--address", a.home.address,
        "--classes", "stale", "--count", str(COUNT), "--seed-random", "stale"])
    check(rc == 0, f"postern-hostile failed ({rc}): {err}")
    st = summary["classes"]["stale"]
    check(summary["current_seq"] == cur,
          f"hostile saw current seq {summary['current_seq']}, a has {cur}")
    check(st["put"] == 2 * COUNT and st["put_ok"] >= COUNT,
          f"stale values put: {st}")
    note(f"hostile put {st['put']} stale values ({st['put_ok']} confirmed)")

    def a_counted():
        k = a.counters()
        return k.get("rejected.key.stale_seq", 0) - before_a.get("rejected.key.stale_seq", 0) \
            >= COUNT // 2 and k
    k = harness.poll(a_counted, 15, "a to count the stale key records", a.log_tail)
    note(f"a: rejected.key.stale_seq={k.get('rejected.key.stale_seq')} "
         f"rejected.address.stale_seq={k.get('rejected.address.stale_seq', 0)}")
    check(k.get("rejected.address.stale_seq", 0) > before_a.get("rejected.address.stale_seq", 0),
          "a did not count stale address claims")

    # b (which knew seq `cur`) still answers cur, and counts what it refused
    doc, _ = c.wait_key(b, a.home, pred=lambda d: d.get("status") == "valid")
    check(doc["seq"] == cur, f"b answers seq {doc['seq']} after the replay, expected {cur}")
    kb = b.counters()
    check(kb.get("rejected.key.stale_seq", 0) > before_b.get("rejected.key.stale_seq", 0),
          f"b saw the stale values in its get but did not count them: {kb}")

    # a node and a one-shot that never saw a: the highest valid seq wins
    fresh = c.start(c.new_home("fresh", "fresh@it.example"), [seed])
    fresh.wait_joined()
    doc, _ = c.wait_key(fresh, a.home, pred=lambda d: d.get("status") == "valid")
    check(doc["seq"] == cur, f"fresh node answers seq {doc['seq']}, expected {cur}")
    rc, doc, err = c.key_get_oneshot(a.home.fingerprint, seed)
    check(rc == EX_OK and doc["seq"] == cur, f"one-shot answers {rc} {doc}")
    # a itself still publishes cur
    rc, ident, _ = c.cli_json(["id", "--home", a.home.path])
    check(ident["seq"] == cur, f"a's own seq moved to {ident['seq']}")

    # a key whose only records are authentic but expired: exit 4, "expired"
    x = c.new_home("x", "x@it.example")  # never runs a node
    rc, summary, err = c.hostile_run(seed, x, [
        "--identity", x.file("identity.key"), "--address", x.address,
        "--classes", "expired", "--count", "3", "--seed-random", "expired"])
    check(rc == 0 and summary["classes"]["expired"]["put_ok"] >= 3,
          f"postern-hostile failed ({rc}): {err} {summary}")
    doc, _ = c.wait_key(b, x, want_rc=EX_EXPIRED)
    check(doc["status"] == "expired" and doc["expires"] < doc["created"] + 30 * 86400,
          f"expired answer {doc}")
    rc, doc, err = c.key_get_oneshot(x.fingerprint, seed)
    check(rc == EX_EXPIRED and doc["status"] == "expired", f"one-shot: {rc} {doc} {err}")
    check(b.counters().get("rejected.key.expired", 0) >= 1, "b did not count expired records")

    for n in (fresh, b, a, seed):
        n.stop()


if __name__ == "__main__":
    harness.main(test, "stale")
