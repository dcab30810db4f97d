#!/usr/bin/env python3
"""`postern key get` with no node running for its home: a short-lived node
bootstrapped from --seed answers, then exits. Valid key: 0; unknown
fingerprint or address on a live network: 2 (not_found) and nothing on
stderr; malformed query: 64; no seed reachable: exit 1 (the network was not
asked), one line on stderr that says why and what to do, and no hang.

The short-lived node is `posternd --oneshot`: the CLI itself links none of
OpenDHT, GnuTLS, curl, libuv or the C++ runtime (its start is a process
start, not a dynamic loader resolving 46 libraries; docs/MAIL.md).

A node alone (no seeds) says `joined: false` in its status, and its lookups
fail the same way (exit 1, one line); nodes of a live network say joined."""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_FAIL, EX_NOTFOUND, EX_OK, EX_USAGE, check, note  # noqa: E402


def one_line(err, what):
    """stderr holds exactly one line, from postern (never posternd)."""
    lines = err.splitlines()
    check(len(lines) == 1 and lines[0].startswith("postern: ") and "posternd" not in err,
          f"{what}: expected one 'postern:' line on stderr, got {lines}")
    return lines[0]


def test_alone(c):
    """A node started with no seeds, on a network id nobody else uses: it is
    alone, its status says so and its lookups say why they fail."""
    alone = c.start(c.new_home("alone", "alone@it.example"))
    st = alone.status()["dht"]
    check(st["joined"] is False and st["state"] == "alone" and st["alone_reason"] == "no_seed"
          and "alone" in st["summary"], f"a node with no seeds and no peer: {st}")
    rc, out, err = c.cli(["key", "get", "--home", alone.home.path, "nobody@nowhere.example"])
    line = one_line(err, "key get through a lone node")
    check(rc == EX_FAIL and out == "" and "no seed" in line and "local cache" in line,
          f"key get through a lone node: exit {rc} {out!r} {line!r}")
    st = alone.status()["dht"]
    check(st["joined"] is False and st["gets_failed"] >= 1,
          f"status after a failed get must still say alone, with the failed get: {st}")
    # its own key is in its cache: answered from there, with one warning line
    rc, out, err = c.cli(["key", "get", "--home", alone.home.path, alone.home.fingerprint])
    line = one_line(err, "cached key through a lone node")
    check(rc == EX_OK and "warning" in line and "local cache" in line and
          alone.home.fingerprint in out, f"cached answer: exit {rc} {out!r} {line!r}")
    rc, doc, err = c.key_get(alone.home, alone.home.fingerprint)
    check(rc == EX_OK and doc["source"] == "cache" and doc["dht_answered"] is False and
          doc["unanswered_reason"] == "no_seed" and "error" not in doc and "warning" in doc,
          f"cached answer, json: exit {rc} {doc} {err}")
    alone.stop()


def test_links(c):
    """The CLI needs only the control-socket client: no node libraries."""
    if shutil.which("readelf") is None:
        print("readelf (binutils) is not installed", file=sys.stderr)
        sys.exit(77)
    dyn = subprocess.run(["readelf", "-d", c.postern], capture_output=True, text=True,
                         check=True).stdout
    needed = [ln.split("[", 1)[1].split("]", 1)[0] for ln in dyn.splitlines()
              if "(NEEDED)" in ln]
    heavy = [lib for lib in needed
             if any(k in lib for k in ("opendht", "gnutls", "libuv", "curl", "stdc++"))]
    check(needed and not heavy, f"postern links node libraries {heavy} (all: {needed})")
    note(f"postern links {len(needed)} libraries: {' '.join(needed)}")


def test(c):
    test_links(c)
    test_alone(c)
    seed, a = c.network_of(2, names=["seed", "a"])
    for nd in (seed, a):
        st = nd.status()["dht"]
        check(st["joined"] is True and st["state"] == "joined" and "last_answer_s" in st,
              f"{nd.name} in a live 2-node network: {st}")
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
    check(rc == EX_NOTFOUND and doc["keys"] == [] and doc["dht_answered"] is True and
          "warning" not in doc and "error" not in doc and err == "",
          f"unknown address: exit {rc} {doc} {err}")
    # the same in text, through a one-shot and through both nodes: "not
    # found", exit 2, nothing on stderr
    for label, home, extra in (
            ("one-shot", c.empty_home("textq").path,
             ["--network", str(c.network), "--seed", seed.seed_addr()]),
            ("seed", seed.home.path, []), ("a", a.home.path, [])):
        rc, out, err = c.cli(["key", "get", "--home", home, "nobody@nowhere.example"] + extra)
        check(rc == EX_NOTFOUND and err == "" and "0 claims found" in out,
              f"unknown address via {label}: exit {rc} {out!r} {err!r}")

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

    # with the network gone the one-shot gives up within its bounded wait:
    # exit 1 (not asked, not "not found"), one line naming the dead seed
    seed_addr = seed.seed_addr()
    a.stop()
    seed.stop()
    home = c.empty_home("gone")
    t0 = time.monotonic()
    rc, out, err = c.cli(["key", "get", "--home", home.path, "--network", str(c.network),
                          "--seed", seed_addr, "nobody@nowhere.example"], timeout=40)
    dt = time.monotonic() - t0
    line = one_line(err, "dead seed")
    check(rc == EX_FAIL and out == "" and "no seed answered" in line and seed_addr in line and
          "--seed" in line, f"no network: exit {rc} {out!r} {line!r}")
    # the seed's ping times out in 3 s; the user does not also wait for a get
    # that nobody can answer
    check(dt < 8, f"the one-shot took {dt:.1f} s with no seed answering")
    note(f"no seed reachable: exit {rc} after {dt:.1f} s ({line[:160]})")
    rc, doc, err = c.cli_json(["key", "get", "--home", home.path, "--network", str(c.network),
                               "--seed", seed_addr, a.home.fingerprint], timeout=40)
    check(rc == EX_FAIL and doc["dht_answered"] is False and
          doc["unanswered_reason"] == "no_seed_answered" and doc["seeds_tried"] == [seed_addr]
          and "no seed answered" in doc["error"] and "warning" not in doc,
          f"no network, json: exit {rc} {doc} {err}")
    check(err == "", f"--json: the reason is in the JSON, stderr stays empty: {err!r}")
    # no seed at all: the same, one line
    rc, out, err = c.cli(["key", "get", "--home", home.path, "--network", str(c.network),
                          a.home.fingerprint])
    line = one_line(err, "no seed")
    check(rc == EX_FAIL and "no seed given" in line, f"no seed: exit {rc} {out!r} {line!r}")


if __name__ == "__main__":
    harness.main(test, "oneshot")
