#!/usr/bin/env python3
"""Eight nodes on loopback: node 1 alone, nodes 2..8 seeded with node 1 (some
also with node 2). Every node finds every other node's key by fingerprint and
by address, verified, with the right endpoint."""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_OK, check, note  # noqa: E402

NODES = 8
WORKERS = 4  # bounded parallelism: the machine has 2 cores


def test(c):
    nodes = c.network_of(NODES, two_seeds=(3, 5, 7))
    for n in nodes[1:]:
        check(n.status()["dht"]["seeds_good"] >= 1, f"{n.name} has no good seed")
    for i in (3, 5, 7):
        check(nodes[i].status()["dht"]["seeds"] == 2, f"{nodes[i].name} should have 2 seeds")

    jobs = []
    for obs in nodes:
        for tgt in nodes:
            if obs is not tgt:
                jobs.append((obs, tgt, "fingerprint"))
                jobs.append((obs, tgt, "address"))

    def lookup(job):
        obs, tgt, kind = job
        h = tgt.home
        if kind == "fingerprint":
            doc, tries = c.wait_key(
                obs, h, pred=lambda d: d.get("status") == "valid" and
                d.get("fingerprint") == h.fingerprint)
            check(doc["kind"] == "fingerprint", f"kind {doc['kind']}")
            check(doc["seq"] >= 1, f"{obs.name} sees seq {doc['seq']} for {tgt.name}")
            check(h.address in doc["addresses"], f"{obs.name}: {tgt.name} lacks its address")
            check(f"127.0.0.1:{tgt.fetch_port}" in doc["endpoints"],
                  f"{obs.name}: {tgt.name} endpoints {doc['endpoints']} lack fetch port "
                  f"{tgt.fetch_port}")
            check(doc["source"] == "dht", f"{obs.name}: source {doc['source']}")
        else:
            def has_key(d):
                return any(k["fingerprint"] == h.fingerprint and k["status"] == "valid"
                           for k in d.get("keys", []))
            doc, tries = c.wait_key(obs, h, query=h.address, pred=has_key)
            entry = [k for k in doc["keys"] if k["fingerprint"] == h.fingerprint][0]
            check(entry["key_record_lists_address"], "the key record should list the address")
            check(doc["address"] == h.address, f"address {doc['address']}")
        return tries

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        tries = list(pool.map(lookup, jobs))
    dt = time.monotonic() - t0
    first = sum(1 for t in tries if t == 1)
    note(f"{len(jobs)} lookups in {dt:.1f} s; {first} answered on the first try, "
         f"max tries {max(tries)}")
    check(len(jobs) == 2 * NODES * (NODES - 1), "job count")

    for n in nodes:
        rc, st = c.status(n.home)
        check(rc == EX_OK, f"{n.name} status failed")
        check(st["counters"].get("rejected.total", 0) == 0,
              f"{n.name} rejected honest values: {st['counters']}")
        # Postern's value types on every real node, and none of our values
        # refused by a storing node's type policy
        check(st["dht"].get("value_types") is True, f"{n.name}: no value types: {st['dht']}")
        check(st["dht"].get("values_refused_store") == 0,
              f"{n.name} refused honest values for storing: {st['dht']}")
    for n in reversed(nodes):
        n.stop()


if __name__ == "__main__":
    harness.main(test, "network")
