#!/usr/bin/env python3
"""Network benchmark: a loopback network of real posternd processes.

Measures, in one run:
  - key lookup by fingerprint: p50/p99 latency (as the node measured it,
    and wall time of the `postern key get` command) and success rate, over
    every ordered pair of nodes;
  - publish-to-visible-everywhere: a new node starts; time until every other
    node's lookup finds its key;
  - revocation-to-seen-everywhere: that node revokes its key; time until every
    other node reports it revoked;
  - idle RSS of one posternd next to OpenDHT's own dhtnode started the same
    way (same private network, same seed).

Loopback only, private random network id, peer discovery off, every wait
bounded. Run by hand (it is a benchmark, not a test):

  python3 tools/bench/bench_network.py [--nodes 32] [--build build]
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Net:
    def __init__(self, build, network):
        self.postern = os.path.join(build, "tools/postern/postern")
        self.posternd = os.path.join(build, "node/posternd")
        self.network = network
        self.root = tempfile.mkdtemp(prefix="pst-bench-")
        self.procs = []
        self.homes = []
        self.fps = []

    def run(self, *args, timeout=30):
        return subprocess.run([self.postern, *args], capture_output=True, text=True,
                              timeout=timeout)

    def add_node(self, seeds):
        i = len(self.homes)
        home = os.path.join(self.root, f"n{i}")
        r = self.run("init", "--home", home, "--address", f"user{i}@bench.example", "--fast-kdf")
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        args = [self.posternd, "--home", home, "--network", str(self.network), "--port", "0",
                "--fetch-port", "0", "--smtp-port", "0", "--advertise", "127.0.0.1", "--log-level", "warn"]
        for s in seeds:
            args += ["--seed", s]
        log = open(os.path.join(self.root, f"n{i}.log"), "w")
        p = subprocess.Popen(args, stdout=log, stderr=log)
        self.procs.append(p)
        self.homes.append(home)
        st = self.wait_status(i)
        self.fps.append(st["fingerprint"])
        return i, st

    def status(self, i):
        r = self.run("status", "--home", self.homes[i], "--json", timeout=10)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def wait_status(self, i, deadline_s=20):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.procs[i].poll() is not None:
                raise RuntimeError(f"node {i} exited")
            st = self.status(i)
            if st is not None:
                return st
            time.sleep(0.05)
        raise RuntimeError(f"node {i} did not answer within {deadline_s}s")

    def key_get(self, i, fp):
        t0 = time.monotonic()
        r = self.run("key", "get", "--home", self.homes[i], fp, "--json", timeout=30)
        wall = (time.monotonic() - t0) * 1000.0
        try:
            body = json.loads(r.stdout)
        except ValueError:
            body = {}
        return r.returncode, body, wall

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def wait_everywhere(net, fp, want_status, others, deadline_s):
    """Seconds until every node in others reports want_status for fp."""
    t0 = time.monotonic()
    pending = set(others)
    seen = {}
    while pending and time.monotonic() - t0 < deadline_s:
        for i in sorted(pending):
            _, body, _ = net.key_get(i, fp)
            if body.get("status") == want_status:
                seen[i] = time.monotonic() - t0
                pending.discard(i)
    return seen, pending


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--build", default="build")
    ap.add_argument("--deadline", type=float, default=120.0)
    args = ap.parse_args()
    network = random.randint(0x10000, 0x7fffffff)
    net = Net(args.build, network)
    try:
        t0 = time.monotonic()
        _, st0 = net.add_node([])
        seed0 = f"127.0.0.1:{st0['dht']['port4']}"
        seeds = [seed0]
        for i in range(1, args.nodes):
            _, st = net.add_node([random.choice(seeds), seed0] if i > 1 else [seed0])
            seeds.append(f"127.0.0.1:{st['dht']['port4']}")
        print(f"{args.nodes} nodes up in {time.monotonic() - t0:.1f}s (network {network})",
              file=sys.stderr)

        # lookups over every ordered pair
        node_ms, wall_ms, ok, total = [], [], 0, 0
        failures = {}
        for i in range(args.nodes):
            for j in range(args.nodes):
                if i == j:
                    continue
                rc, body, wall = net.key_get(i, net.fps[j])
                total += 1
                if rc == 0 and body.get("status") == "valid":
                    ok += 1
                    node_ms.append(body.get("lookup_ms", 0))
                    wall_ms.append(wall)
                else:
                    key = (body.get("status", f"exit {rc}"), j)
                    failures[key] = failures.get(key, 0) + 1

        # publish-to-visible-everywhere
        others = list(range(args.nodes))
        t_pub = time.monotonic()
        k, _ = net.add_node([seed0, random.choice(seeds)])
        start_to_up = time.monotonic() - t_pub
        seen_pub, missing_pub = wait_everywhere(net, net.fps[k], "valid", others, args.deadline)
        # revocation-to-seen-everywhere
        r = net.run("key", "revoke", "--home", net.homes[k], "--reason", "benchmark")
        t_rev = time.monotonic()
        seen_rev, missing_rev = wait_everywhere(net, net.fps[k], "revoked", others,
                                                args.deadline)
        rev_cmd_ok = r.returncode == 0

        # idle RSS: posternd vs dhtnode started the same way
        rss_nodes = [rss_kib(p.pid) for p in net.procs[:args.nodes]]
        dht = None
        rss_dhtnode = 0
        if shutil.which("dhtnode"):
            dht = subprocess.Popen(["dhtnode", "-s", "-n", str(network), "-p", "0", "-b",
                                    seed0], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            # let both reach a steady state; bounded
            time.sleep(5)
            rss_dhtnode = rss_kib(dht.pid)
            dht.terminate()
            try:
                dht.wait(timeout=10)
            except subprocess.TimeoutExpired:
                dht.kill()

        print()
        print(f"Postern network benchmark: {args.nodes} posternd on loopback, one run")
        print()
        print("| measure | value |")
        print("| --- | --- |")
        print(f"| lookups by fingerprint | {total} ({args.nodes}x{args.nodes - 1} pairs) |")
        print(f"| success rate | {100.0 * ok / max(total, 1):.1f}% ({ok}/{total}) |")
        if failures:
            summary = ", ".join(f"{n}x {st} for node {j}" for (st, j), n in sorted(failures.items()))
            print(f"| failed lookups | {summary} |")
        print(f"| lookup p50 / p99 (node) | {pct(node_ms, 50):.1f} ms / {pct(node_ms, 99):.1f} ms |")
        print(f"| lookup p50 / p99 (CLI wall) | {pct(wall_ms, 50):.1f} ms / {pct(wall_ms, 99):.1f} ms |")
        if seen_pub:
            print(f"| publish-to-visible-everywhere | {max(seen_pub.values()):.2f} s after the node "
                  f"answered ({start_to_up:.2f} s to start); p50 {statistics.median(seen_pub.values()):.2f} s; "
                  f"{len(seen_pub)}/{len(others)} nodes |")
        if missing_pub:
            print(f"| not visible after {args.deadline:.0f}s | {len(missing_pub)} nodes |")
        if seen_rev:
            print(f"| revocation-to-seen-everywhere | {max(seen_rev.values()):.2f} s; p50 "
                  f"{statistics.median(seen_rev.values()):.2f} s; {len(seen_rev)}/{len(others)} "
                  f"nodes (revoke command ok: {rev_cmd_ok}) |")
        if missing_rev:
            print(f"| revocation not seen after {args.deadline:.0f}s | {len(missing_rev)} nodes |")
        med = statistics.median(rss_nodes) if rss_nodes else 0
        print(f"| idle RSS posternd (median of {len(rss_nodes)}) | {med / 1024:.1f} MiB |")
        if rss_dhtnode:
            print(f"| idle RSS dhtnode, same network | {rss_dhtnode / 1024:.1f} MiB |")
            print(f"| ratio posternd / dhtnode | {med / rss_dhtnode:.2f}x (goal <= 2x) |")
        else:
            print("| idle RSS dhtnode | n/a (install the Debian package dhtnode) |")
    finally:
        net.stop()


if __name__ == "__main__":
    main()
