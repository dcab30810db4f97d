#!/usr/bin/env python3
"""Flood benchmark (issue 6): 5,000 stampless notifications from unknown
senders plus 1 from a trusted contact at the same time.

Each repetition starts a fresh loopback network (private network id): a
seed, r (the recipient, reading its inbox slot every 5 s) and t, r's trusted
contact. `postern-hostile --flood N` puts N valid stampless notifications
into r's inbox slot, each from its own fresh stranger, at --rate puts/s;
once r has seen the first 50, t sends r one real message (`postern send`),
and the time from the send to the file in r's Maildir INBOX is measured.
The repetition ends when r counted every distinct flood value as
rejected.inbox.no_stamp (each after a vouch lookup for its sender).

Prints markdown tables (docs/TRUST.md quotes them): the trusted delivery
p50/p95/p99/max over the repetitions; notifications handled per second
(r's no_stamp count over the time from r's first flood value to its last
count), r's CPU time per notification; r's RSS before, at its peak and
after. Bounded: every process has a timeout and each network stops at the
end of its repetition. Run by hand:

  python3 tools/bench/bench_flood.py [--build build] [--reps 20] [--flood 5000]
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pct(xs, p):
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_rep(harness, rep, flood, rate):
    c = harness.Cluster(f"bench-flood-{rep}")
    try:
        seed = c.start(c.new_home("seed", "seed@flood.example"))
        r = c.start(c.new_home("r", "r@flood.example"), [seed], extra=["--inbox-poll", "5"])
        t = c.start(c.new_home("t", "t@flood.example"), [seed])
        for nd in (seed, r, t):
            nd.wait_joined()
        harness.wait_mail_ready(c, [t], [r])
        harness.trust(c, r, t, "trusted")
        k0 = r.counters()
        rss0 = r.rss_kib()
        argv = [c.hostile, "--network", str(c.network), "--seed", seed.seed_addr(),
                "--target", r.home.fingerprint, "--json", "--linger", "--flood", str(flood),
                "--rate", str(rate), "--seed-random", f"bench-{rep}", "--max-seconds", "300"]
        with harness.RssSampler([r], interval=0.1) as rss, \
                subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL) as hp:
            seen0 = k0.get("inbox.values_seen", 0)
            harness.poll(lambda: r.counters().get("inbox.values_seen", 0) > seen0, 60,
                         "the flood to reach r", interval=0.01)
            t_first, cpu0 = time.monotonic(), cpu_s(r.pid)
            harness.poll(lambda: r.counters().get("inbox.values_seen", 0) >= seen0 + 50, 60,
                         "50 flood values at r", interval=0.01)
            ts = time.monotonic()
            _, doc, _ = harness.mail_send(c, t.home, to=[r.home.fingerprint], subject="trusted",
                                          body="during the flood\n")
            harness.poll(lambda: harness.maildir_copies(r.home, doc["message_id"]), 120,
                         "the trusted message in r's INBOX", interval=0.01)
            delivery = time.monotonic() - ts
            summary = json.loads(hp.stdout.readline())
            distinct = summary["classes"]["inbox-nostamp"]["distinct"]
            want = k0.get("rejected.inbox.no_stamp", 0) + distinct
            last = [None]

            def counted():
                k = r.counters()
                last[0] = k
                return k if k.get("rejected.inbox.no_stamp", 0) >= want else None
            # values OpenDHT lost are never counted: give up after 120 s
            try:
                harness.poll(counted, 120, "r to count the flood", interval=0.05)
            except harness.TestFailure:
                pass
            t_end, cpu1 = time.monotonic(), cpu_s(r.pid)
            rss.wait_next_sample()
            hp.stdin.close()
            hp.wait(timeout=30)
        k1 = last[0]
        handled = k1.get("rejected.inbox.no_stamp", 0) - k0.get("rejected.inbox.no_stamp", 0)
        row = {"delivery_s": delivery, "distinct": distinct, "handled": handled,
               "handled_per_s": handled / max(t_end - t_first, 1e-9),
               "cpu_us": (cpu1 - cpu0) * 1e6 / max(handled, 1),
               "flood_s": summary["elapsed_ms"] / 1000,
               "rss0": rss0, "peak": max(rss.samples["r"] + [rss0]), "rss1": r.rss_kib(),
               "accepted": k1.get("inbox.accepted", 0) - k0.get("inbox.accepted", 0)}
        for nd in (t, r, seed):
            nd.stop()
        return row
    finally:
        c.close()
        c.remove_tmp()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--flood", type=int, default=5000)
    ap.add_argument("--rate", type=int, default=200,
                    help="flood puts per second (OpenDHT drops over 1,024/s per source IP)")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ["PST_POSTERND"] = os.path.join(build, "node", "posternd")
    os.environ["PST_POSTERN"] = os.path.join(build, "tools", "postern", "postern")
    os.environ["PST_HOSTILE"] = os.path.join(build, "tools", "hostile", "postern-hostile")
    for v in ("PST_POSTERND", "PST_POSTERN", "PST_HOSTILE"):
        if not os.access(os.environ[v], os.X_OK):
            raise SystemExit(f"{os.environ[v]} is missing: ninja -C {build}")
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"Flood benchmark: {a.reps} repetitions of {a.flood} stampless strangers at "
          f"{a.rate} puts/s + 1 trusted message; {os.cpu_count()} cores, load average "
          f"{load} at the start.\n")
    rows = []
    for rep in range(a.reps):
        row = one_rep(harness, rep, a.flood, a.rate)
        rows.append(row)
        print(f"rep {rep + 1:2d}: trusted delivered in {row['delivery_s'] * 1000:7.1f} ms; "
              f"{row['handled']}/{row['distinct']} counted, {row['handled_per_s']:.0f}/s, "
              f"{row['cpu_us']:.0f} µs CPU each; RSS {row['rss0']} -> {row['peak']} -> "
              f"{row['rss1']} KiB; accepted {row['accepted']}", flush=True)
    d = [r["delivery_s"] * 1000 for r in rows]
    print(f"\n### Trusted delivery during the flood ({len(rows)} runs)\n")
    print("| p50 ms | p95 ms | p99 ms | max ms |")
    print("| ---: | ---: | ---: | ---: |")
    print(f"| {pct(d, 50):.0f} | {pct(d, 95):.0f} | {pct(d, 99):.0f} | {max(d):.0f} |")
    hs = [r["handled_per_s"] for r in rows]
    cpu = [r["cpu_us"] for r in rows]
    print("\n### Notifications handled\n")
    print("| counted / distinct put | handled per s (median, min-max) | r's CPU µs per "
          "notification (median) | flood put time s (median) |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| {sum(r['handled'] for r in rows)} / {sum(r['distinct'] for r in rows)} | "
          f"{statistics.median(hs):.0f} ({min(hs):.0f}-{max(hs):.0f}) | "
          f"{statistics.median(cpu):.0f} | {statistics.median(r['flood_s'] for r in rows):.1f} |")
    print("\n### r's RSS (KiB)\n")
    print("| | before | peak | after |")
    print("| --- | ---: | ---: | ---: |")
    for name, f in (("median", statistics.median), ("max", max)):
        print(f"| {name} | {f(r['rss0'] for r in rows):.0f} | {f(r['peak'] for r in rows):.0f} | "
              f"{f(r['rss1'] for r in rows):.0f} |")
    print(f"\nNotifications accepted besides the trusted one: "
          f"{sum(r['accepted'] - 1 for r in rows)}.")


if __name__ == "__main__":
    main()
