#!/usr/bin/env python3
"""Restarts. A node stopped and started again on the same home is found again
with a seq that never went down. A node that is gone for good is still found
from the DHT, by a node that never saw it and by a one-shot, while its
records have not expired."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_OK, check, note  # noqa: E402


def valid_fp(h):
    return lambda d: d.get("status") == "valid" and d.get("fingerprint") == h.fingerprint


def test(c):
    seed, a, b, gone = c.network_of(4, names=["seed", "a", "b", "gone"])

    # before: b finds a; remember the seq
    doc, _ = c.wait_key(b, a.home, pred=valid_fp(a.home))
    seq0 = doc["seq"]
    rc, id0, _ = c.cli_json(["id", "--home", a.home.path])
    check(rc == EX_OK and id0["seq"] == seq0, f"a's id says seq {id0 and id0['seq']}, b saw {seq0}")
    port0 = a.fetch_port

    # stop and start a on the same home
    a.stop()
    rc, _, err = c.cli(["status", "--home", a.home.path])
    check(rc == 1 and "posternd" in err, f"status of a stopped node: exit {rc} {err!r}")
    c.restart(a)
    a.wait_joined()
    rc, id1, _ = c.cli_json(["id", "--home", a.home.path])
    check(rc == EX_OK, "id after restart")
    check(id1["seq"] >= seq0, f"seq went down across a restart: {seq0} -> {id1['seq']}")
    check(id1["fingerprint"] == a.home.fingerprint, "fingerprint changed across a restart")
    note(f"a: seq {seq0} -> {id1['seq']} (fetch port {port0} -> {a.fetch_port})")

    # a restart that changes nothing re-puts the same record: same seq
    a.stop()
    c.restart(a, extra=["--fetch-port", str(a.fetch_port)])
    rc, id2, _ = c.cli_json(["id", "--home", a.home.path])
    check(rc == EX_OK and id2["seq"] == id1["seq"],
          f"seq churned on a restart that changed nothing: {id1['seq']} -> {id2['seq']}")
    # a record with other content gets a higher seq
    a.stop()
    c.restart(a, extra=["--fetch-port", str(a.fetch_port), "--pow-bits", "22"])
    a.wait_joined()
    rc, id1, _ = c.cli_json(["id", "--home", a.home.path])
    check(rc == EX_OK and id1["seq"] > id2["seq"] and id1["pow_bits"] == 22,
          f"new content, seq {id2['seq']} -> {id1['seq']}, pow bits {id1['pow_bits']}")
    note(f"a: unchanged restart kept seq {id2['seq']}; new pow bits gave seq {id1['seq']}")

    # others see the restarted node's current record, never an older one
    for obs in (seed, b, gone):
        doc, tries = c.wait_key(obs, a.home, pred=lambda d: valid_fp(a.home)(d) and
                                d["seq"] == id1["seq"] and d["pow_bits"] == 22 and
                                f"127.0.0.1:{a.fetch_port}" in d["endpoints"])
        check(doc["seq"] >= seq0, "seq went down")
    # a found the others again from its old store and from the DHT
    for tgt in (seed, b, gone):
        c.wait_key(a, tgt.home, pred=valid_fp(tgt.home))

    # a node gone for good is still found while its records live
    gone_fp = gone.home.fingerprint
    doc, _ = c.wait_key(b, gone.home, pred=valid_fp(gone.home))
    gone_seq = doc["seq"]
    gone.stop()
    fresh = c.start(c.new_home("fresh", "fresh@it.example"), [seed])
    fresh.wait_joined()
    # the fresh node never saw `gone`: its answer comes from the DHT
    doc, tries = c.wait_key(fresh, gone.home, pred=valid_fp(gone.home))
    check(doc["source"] == "dht", f"fresh node answered from {doc['source']}")
    check(doc["seq"] == gone_seq, f"gone's seq {doc['seq']} != {gone_seq}")
    note(f"gone node found by a fresh node after {tries} tries")
    # by address too
    doc, _ = c.wait_key(fresh, gone.home, query=gone.home.address,
                        pred=lambda d: any(k["fingerprint"] == gone_fp and
                                           k["status"] == "valid" for k in d["keys"]))
    # and by a one-shot with an empty home
    rc, doc, err = c.key_get_oneshot(gone_fp, seed)
    check(rc == EX_OK and doc and doc["status"] == "valid" and doc["source"] == "dht",
          f"one-shot lookup of a gone node: exit {rc} {doc} {err}")

    # the restarted node keeps answering and stops cleanly again
    for n in (fresh, b, a, seed):
        n.stop()


if __name__ == "__main__":
    harness.main(test, "restart")
