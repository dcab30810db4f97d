#!/usr/bin/env python3
"""`postern key get` with no node running for its home: a short-lived node
bootstrapped from --seed answers, then exits. Valid key: 0; unknown
fingerprint: 2 (not_found); malformed query: 64; no seed reachable: an
answer from nothing, said so, and no hang."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_NOTFOUND, EX_OK, EX_USAGE, check, note  # noqa: E402


def test(c):
    seed, a = c.network_of(2, names=["seed", "a"])
    c.wait_key(seed, a.home, pred=lambda d: d.get("status") == "valid")

    t0 = time.monotonic()
    rc, doc, err = c.key_get_oneshot(a.home.fingerprint, seed, "empty1")
    dt = time.monotonic() - t0
    check(rc == EX_OK, f"one-shot by fingerprint: exit {rc} {doc} {err}")
    check(doc["status"] == "valid" and doc["fingerprint"] == a.home.fingerprint and
          doc["source"] == "dht" and a.home.address in doc["addresses"], f"answer {doc}")
    note(f"one-shot lookup took {dt * 1000:.0f} ms")
    # the one-shot left nothing behind in the empty home
    left = os.listdir(os.path.join(c.tmp, "empty1"))
    check(not any(f in left for f in ("control.sock", "posternd.lock")),
          f"one-shot left files in an empty home: {left}")

    rc, doc, err = c.key_get_oneshot(a.home.address, seed)
    check(rc == EX_OK and any(k["fingerprint"] == a.home.fingerprint for k in doc["keys"]),
          f"one-shot by address: exit {rc} {doc} {err}")

    unknown = harness.random_fingerprint()
    rc, doc, err = c.key_get_oneshot(unknown, seed)
    check(rc == EX_NOTFOUND and doc["status"] == "not_found" and doc["fingerprint"] == unknown,
          f"unknown fingerprint: exit {rc} {doc} {err}")
    rc, doc, err = c.key_get_oneshot("nobody@nowhere.example", seed)
    check(rc == EX_NOTFOUND and doc["keys"] == [], f"unknown address: exit {rc} {doc} {err}")

    for bad in ("not-a-key", "x" * 52, "@", "a@", harness.random_fingerprint()[:-1]):
        rc, doc, err = c.key_get_oneshot(bad, seed)
        check(rc == EX_USAGE, f"malformed query {bad!r}: exit {rc} {doc} {err}")
    empty = c.empty_home("usage")
    for args in ([], ["a", "b"], ["--bogus", a.home.fingerprint]):
        rc, out, err = c.cli(["key", "get", "--home", empty.path] + args)
        check(rc == EX_USAGE, f"key get {args}: exit {rc} {err}")

    # a home that is a running node's: answered by the node, not a one-shot
    rc, doc, err = c.key_get(seed.home, a.home.fingerprint)
    check(rc == EX_OK and "starting a short-lived" not in err, f"via node: {rc} {err}")

    # with the network gone the one-shot gives up within its bounded wait
    seed_addr = seed.seed_addr()
    a.stop()
    seed.stop()
    home = c.empty_home("alone")
    t0 = time.monotonic()
    rc, doc, err = c.cli_json(["key", "get", "--home", home.path, "--network", str(c.network),
                               "--seed", seed_addr, a.home.fingerprint], timeout=40)
    dt = time.monotonic() - t0
    check(rc in (EX_NOTFOUND, 1), f"no network: exit {rc} {doc} {err}")
    check(dt < 30, f"the one-shot took {dt:.1f} s with no seed")
    note(f"no seed reachable: exit {rc} after {dt:.1f} s ({err.strip()[:120]})")


if __name__ == "__main__":
    harness.main(test, "oneshot")
