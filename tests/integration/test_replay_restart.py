#!/usr/bin/env python3
"""Old records replayed after restarts: no downgrade, revocation honoured.

a's current KeyRecord/AddressClaim carry seq `cur` (>= 2). With a stopped and
the observer b restarted (so b knows a only from its store and the DHT),
postern-hostile replays a's authentic older records (lower seq, still inside
their window) and authentic but expired ones (tempting high seqs). b, a
one-shot with an empty home, and a itself after its restart all keep `cur`.
Then a revokes its key; b is stopped, the replays and validly signed
higher-seq records of the revoked key are put while b is down, and b,
restarted, a one-shot and a restarted a all still report the key revoked."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_OK, EX_REVOKED, check, note  # noqa: E402

COUNT = 12


def replay(c, seed, a, classes, tag):
    rc, summary, err = c.hostile_run(seed, a.home, [
        "--identity", a.home.file("identity.key"), "--address", a.home.address,
        "--classes", classes, "--count", str(COUNT), "--seed-random", tag])
    check(rc == 0, f"postern-hostile failed ({rc}): {err}")
    for name, cl in summary["classes"].items():
        check(cl["put_ok"] >= COUNT, f"replayed {name} values were not stored: {cl}")
    return summary


def grew(node, before, names):
    k = node.counters()
    return {n: k.get(n, 0) - before.get(n, 0) for n in names}


def test(c):
    seed, a, b = c.network_of(3, names=["seed", "a", "b"])
    # a restart with other pow bits publishes seq 2: seq 1 becomes a genuine
    # old record, authentic and still inside its validity window
    ident = harness.republish(c, a, ["--pow-bits", "21"])
    check(ident["seq"] >= 2, f"a's seq after a restart: {ident}")
    cur = ident["seq"]
    c.wait_key(b, a.home, pred=lambda d: d.get("status") == "valid" and d["seq"] == cur)

    # 1. a down, b restarted: b knows a from its store and the DHT only
    a.stop()
    b.stop()
    c.restart(b)
    b.wait_joined()
    before = b.counters()
    summary = replay(c, seed, a, "stale,expired", "replay-restart")
    check(summary["current_seq"] == cur,
          f"hostile found seq {summary['current_seq']} in the DHT, a has {cur}")
    names = ["rejected.key.stale_seq", "rejected.key.expired"]
    # b learns of the replays through its own get (a key get) or a listen
    doc, _ = c.wait_key(b, a.home, pred=lambda d: d.get("status") == "valid")
    check(doc["seq"] == cur, f"restarted b answers seq {doc['seq']} after the replay, not {cur}")
    counted = harness.poll(lambda: (lambda g: all(v > 0 for v in g.values()) and g)(
        grew(b, before, names)), 15, "b to count the replayed records", b.log_tail)
    note(f"restarted b refused the replays: {counted}")
    # and now that b has provably seen them, it still answers cur
    rc, doc, err = c.key_get(b.home, a.home.fingerprint)
    check(rc == EX_OK and doc["seq"] == cur, f"b after counting the replays: {rc} {doc} {err}")
    rc, doc, err = c.key_get_oneshot(a.home.fingerprint, seed)
    check(rc == EX_OK and doc["seq"] == cur, f"one-shot answers {rc} {doc} {err}")

    # 2. a restarted after the replays keeps (and publishes) its own seq
    c.restart(a)
    a.wait_joined()
    rc, ident, _ = c.cli_json(["id", "--home", a.home.path])
    check(rc == EX_OK and ident["seq"] == cur, f"a's seq after the replays: {ident}")
    doc, _ = c.wait_key(b, a.home, pred=lambda d: d.get("status") == "valid")
    check(doc["seq"] == cur, f"b answers {doc['seq']} once a is back")

    # 3. a revokes; with b down, old, expired and newer-seq records are put
    rc, doc, err = c.cli_json(["key", "revoke", "--home", a.home.path, "--code",
                               "retired"])
    check(rc == EX_OK, f"revoke failed ({rc}): {doc} {err}")
    c.wait_key(b, a.home, want_rc=EX_REVOKED)
    b.stop()
    summary = replay(c, seed, a, "stale,expired,revoked", "replay-revoked")
    forged_min = summary["current_seq"] + 1000
    c.restart(b)
    b.wait_joined()
    for who, home in (("b", b.home), ("a", a.home)):
        rc, doc, err = c.key_get(home, a.home.fingerprint)
        check(rc == EX_REVOKED and doc["status"] == "revoked",
              f"{who} answers {rc} {doc} for the revoked a after the replays")
        check(doc.get("seq", 0) < forged_min,
              f"{who} took a record of the revoked key with seq {doc.get('seq')}")
    rc, doc, err = c.key_get_oneshot(a.home.fingerprint, seed)
    check(rc == EX_REVOKED and doc["status"] == "revoked", f"one-shot: {rc} {doc} {err}")
    a.stop()
    c.restart(a)
    harness.poll(lambda: a.status()["revoked"], 10, "a to stay revoked after a restart",
                 a.log_tail)
    note(f"revoked a stays revoked for b, a one-shot and a itself (forged seqs >= {forged_min})")

    for n in (a, b, seed):
        n.stop()


if __name__ == "__main__":
    harness.main(test, "replay_restart")
