#!/usr/bin/env python3
"""Trust benchmark: what a stamp costs the sender and what refusing costs the
recipient. Prints markdown tables (docs/TRUST.md quotes them).

1. Minting at the default bits (PST_DEFAULT_POW_BITS in node/core/pst_config.h,
   20 as with classic hashcash): wall time of `postern pow mint --bits 20 R`
   (every core) over --mints runs, median and p95, next to the classic
   `hashcash -m -b 20 R` (one core) over as many runs. Each run is a whole
   process; the time of a 1-bit mint (process start, no real work) is shown
   so it can be subtracted by eye.
2. Refusing, in process (tools/bench/bench_gate.c): notifications per second
   per core through the calls node/mail/inbox.c makes, for a bad stamp (one SHA-1
   after the outer decode and a BLAKE2b of the sealed bytes) and for a
   stampless notification (one X25519 open + one Ed25519 verify).
3. Refusing, end to end (skip with --no-e2e): a loopback node r (private
   network, one seed) gets --e2e-count notifications of each kind put into
   its inbox slot by stampcraft at 250 puts/s (OpenDHT drops requests over
   ~1,024/s per source address); r's CPU time (utime+stime, minus its idle
   rate) per refused notification, which includes OpenDHT receiving and
   storing the value, and the listen hand-off.

Bounded: every process has a timeout, the nodes stop at the end. Run by hand:

  python3 tools/bench/bench_trust.py [--build build-trust] [--mints 20]
"""
import argparse
import json
import math
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_bits():
    with open(os.path.join(ROOT, "node", "pst_config.h")) as f:
        m = re.search(r"#define PST_DEFAULT_POW_BITS (\d+)u", f.read())
    return int(m.group(1))


def zero_bits(stamp):
    import hashlib
    d = int.from_bytes(hashlib.sha1(stamp.encode()).digest(), "big")
    return 160 - d.bit_length()


def p95(xs):
    s = sorted(xs)
    return s[max(0, math.ceil(0.95 * len(s)) - 1)]


def timed(argv, timeout=600):
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.decode()}")
    return dt, p.stdout.decode().strip().splitlines()[-1]


def mint_series(argv_of, n, bits):
    times = []
    for _ in range(n):
        resource = secrets.token_hex(16)
        dt, stamp = timed(argv_of(bits, resource))
        if zero_bits(stamp) < bits or f":{resource}:" not in stamp:
            raise SystemExit(f"not a {bits}-bit stamp for {resource}: {stamp}")
        times.append(dt * 1000)
    return times


def bench_mint(postern, n, bits):
    ours = lambda b, r: [postern, "pow", "mint", "--bits", str(b), r]  # noqa: E731
    classic = lambda b, r: ["hashcash", "-mq", "-b", str(b), r]  # noqa: E731
    rows = [("`postern pow mint` (all cores)", ours)]
    if shutil.which("hashcash"):
        rows.append(("classic `hashcash -m` (one core)", classic))
    print(f"### Minting a {bits}-bit stamp ({n} mints each, {os.cpu_count()} cores)\n")
    print("| minter | median ms | p95 ms | mean ms | 1-bit mint (process start) ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    out = {}
    for name, argv_of in rows:
        t = mint_series(argv_of, n, bits)
        base = statistics.median(mint_series(argv_of, 5, 1))
        out[name] = t
        print(f"| {name} | {statistics.median(t):.0f} | {p95(t):.0f} | "
              f"{statistics.mean(t):.0f} | {base:.0f} |")
    print()
    return out


def bench_gate(gate):
    p = subprocess.run([gate, "--json"], capture_output=True, timeout=120)
    if p.returncode != 0:
        raise SystemExit(f"bench_gate failed: {p.stderr.decode()}")
    d = json.loads(p.stdout)
    print(f"### Refusing at the gate, in process ({d['values']} distinct notifications, "
          f"{d['seconds']} s per figure)\n")
    print(f"| path | µs per notification | per second, 1 core | per second, {d['cores']} cores |")
    print("| --- | ---: | ---: | ---: |")
    for name, r in d["paths"].items():
        print(f"| {name} | {r['us']:.2f} | {r['per_core']:.0f} | {r['all_cores']:.0f} |")
    print()
    return d


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_e2e(build, gate, count):
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    os.environ.setdefault("PST_POSTERND", os.path.join(build, "node", "posternd"))
    os.environ.setdefault("PST_POSTERN", os.path.join(build, "tools", "postern", "postern"))
    import harness
    stampcraft = os.path.join(build, "tools", "bench", "stampcraft")
    c = harness.Cluster("bench-trust")
    rows = []
    try:
        seed = c.start(c.new_home("seed"), [])
        r = c.start(c.new_home("r"), [seed], extra=["--inbox-poll", "60"])
        r.wait_joined()
        rc, ident, err = c.cli_json(["id", "--home", r.home.path])
        fp, box = ident["fingerprint"], ident["encryption_key"]
        # r's idle CPU rate, to subtract
        c0, t0 = cpu_s(r.pid), time.monotonic()
        harness.poll(lambda: time.monotonic() - t0 >= 3, 10, "idle period", interval=0.2)
        idle = (cpu_s(r.pid) - c0) / (time.monotonic() - t0)
        for kind, reason in (("bad-stamp", "stamp_bits"), ("no-stamp", "no_stamp")):
            p = subprocess.run([gate, "--emit", kind, str(count), fp, box], capture_output=True,
                               timeout=120, check=True)
            k0 = r.counters()
            c0, t0 = cpu_s(r.pid), time.monotonic()
            put = subprocess.run([stampcraft, "put", "--network", str(c.network), "--seed",
                                  seed.seed_addr(), "--target", fp, "--slot", "inbox",
                                  "--rate", "250", "--max-seconds", "120"],
                                 input=p.stdout, capture_output=True, timeout=140)
            doc = json.loads(put.stdout)
            name = f"rejected.inbox.{reason}"
            want = k0.get(name, 0) + count
            harness.poll(lambda: r.counters().get(name, 0) >= want, 30,
                         f"r to refuse {count} notifications ({kind})", r.log_tail, interval=0.2)
            dt = time.monotonic() - t0
            used = cpu_s(r.pid) - c0 - idle * dt
            k1 = r.counters()
            seen = k1.get("inbox.values_seen", 0) - k0.get("inbox.values_seen", 0)
            refused = k1.get(name, 0) - k0.get(name, 0)
            rows.append((kind, doc["put_ok"], seen, refused, used, dt))
        for nd in (r, seed):
            nd.stop()
    finally:
        c.close()
    print(f"### Refusing at the gate, end to end (one node, {count} notifications of each kind "
          "put at 250/s)\n")
    print("| notifications | put ok | seen by r | refused | r's CPU ms | CPU µs per refusal |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind, ok, seen, refused, used, dt in rows:
        print(f"| {kind} | {ok} | {seen} | {refused} | {used * 1000:.0f} | "
              f"{used * 1e6 / max(refused, 1):.0f} |")
    print(f"\n(r's idle CPU: {idle * 1000:.1f} ms/s, subtracted.)\n")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-trust"))
    ap.add_argument("--mints", type=int, default=20)
    ap.add_argument("--e2e-count", type=int, default=1000)
    ap.add_argument("--no-e2e", action="store_true")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    postern = os.path.join(build, "tools", "postern", "postern")
    gate = os.path.join(build, "tools", "bench", "bench_gate")
    for p in (postern, gate):
        if not os.access(p, os.X_OK):
            raise SystemExit(f"{p} is missing: ninja -C {build}")
    bits = default_bits()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"Trust benchmark: {os.cpu_count()} cores, load average {load} at the start, "
          f"default bits {bits}.\n")
    bench_mint(postern, a.mints, bits)
    bench_gate(gate)
    if not a.no_e2e:
        bench_e2e(build, gate, a.e2e_count)


if __name__ == "__main__":
    main()
