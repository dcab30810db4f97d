#!/usr/bin/env python3
"""Network benchmark: N real posternd on loopback, with churn.

One run starts --nodes real posternd processes (one OpenDHT runner each) on a
private random network id, lets --churn percent of them stop and start again
during --duration seconds (about half of them on new DHT and fetch ports),
and meanwhile measures:

  - key lookups by fingerprint and by address (`postern key get`) from a
    random live node for a random key: attempted, ok, p50/p99 (the node's
    own lookup_ms); lookups of keys whose node is down at the time count too
    (a key record lives 600 s in the DHT after its last put);
  - mail between random pairs (`postern send`), a share of it to recipients
    that are down when it is sent: each message id is counted in every
    Maildir at the end (delivered exactly once, duplicates, lost), p50/p99
    from send to the Maildir;
  - revocations (`postern key revoke` on live nodes): time until each node
    reports the key revoked (p50/p99), and whether every node does at the end;
  - per-node RSS (peak) and CPU seconds (user+system, summed over restarts);
  - DHT operations per node (the node's own gets/puts/listens counters,
    `postern status`) over the churn phase, on nodes that stayed up;
  - UDP datagrams on the wire: with --netns (default when `unshare -rn`
    works) the whole run is inside its own network namespace, whose kernel
    counters (/proc/net/snmp, snmp6) then count only this network's packets.

After the churn phase every node is up; the run waits at most --settle
seconds for mail and revocations. Loopback only (127.0.0.1 seeds and
advertise), private network id, peer discovery off, every wait bounded,
and a watchdog ends everything at --deadline seconds; every posternd is
stopped on exit, Ctrl-C and SIGTERM included.

  nice -n 10 python3 tools/bench/bench_network.py --nodes 128 --churn 30 --json

--json prints one object (and the table on stderr). Its keys:
  nodes, procs, churn_pct, network_id, duration_s, settle_s, wall_s, netns,
  warmup_s
  nodes_churned, churn_stops, churn_new_ports, start_s (all nodes up)
  lookups_attempted, lookups_ok (both kinds), lookups_target_down,
  lookups_target_down_ok, lookups_fp_attempted, lookups_fp_ok,
  lookups_fp_p50_ms, lookups_fp_p99_ms, lookups_addr_attempted,
  lookups_addr_ok, lookups_addr_p50_ms, lookups_addr_p99_ms,
  lookup_failures (list of {kind, status, target_down, obs, target, obs_up_s,
  target_up_s: seconds since that node's last start had joined, at_s: since
  the bench started, answer: what the node said (rc, dht_answered,
  lookup_ms, keys), retries: the same lookup on the same node at once and
  5 s later})
  mail_sent, mail_send_failed, mail_send_errors (the first 10),
  mail_to_down, mail_delivered (exactly once), mail_duplicates (extra
  copies), mail_lost, mail_lost_ids ([id prefix, sender, recipient]),
  mail_misdelivered (copies in another node's Maildir), mail_delivery_p50_s,
  mail_delivery_p99_s, mail_to_down_delivery_p50_s
  revocations_published, revocations_failed, revocations_seen_everywhere,
  revocation_seen_p50_s,
  revocation_seen_p99_s (over node x revocation, nodes up at the time),
  revocation_missing (nodes that never reported it), revocation_lookups_not_yet
  (lookups after a revocation that did not report it yet)
  rss_kib_median, rss_kib_max (peak per node), cpu_s_median, cpu_s_max,
  cpu_s_total (per node over the whole run)
  steady_nodes, steady_s, dht_per_node_10min: {gets, puts, values_received,
  listens} (median per node that stayed up, scaled to 10 minutes),
  counters_per_node_10min (every node counter, median, same nodes)
  observers, stored_values_per_node_median, stored_values_per_node_max,
  stored_kib_per_node_median (`ll` of the dhtnode observers at the end of
  the churn phase; null without dhtnode)
  quiet_s, quiet_dht_per_node_10min, quiet_counters_per_node_10min,
  quiet_udp_datagrams_per_node_s, quiet_lo_bytes_per_node_s,
  quiet_stored_values_per_node, quiet_stored_kib_per_node (with --quiet:
  the same measures over the idle window; stored values: every observer)
  udp_datagrams, udp_datagrams_per_s, udp_datagrams_per_node_s (null
  without --netns), lo_bytes (loopback bytes, TCP fetches included),
  udp_rcvbuf_drops (datagrams the kernel dropped because a node's receive
  buffer was full: the only packet loss on loopback)
  errors (what went wrong in the bench itself: a node that did not stop or
  start, an operation that raised; the first 20)
"""
import argparse
import concurrent.futures
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
NETNS_ENV = "PST_BENCH_NETNS"


def pct(values, p):
    s = sorted(values)
    if not s:
        return None
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))]


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def udp_counters():
    """(datagrams in + out over IPv4 and IPv6, loopback bytes rx) of this
    network namespace."""
    total = 0
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    head, vals = rows[0], rows[1]
    d = dict(zip(head[1:], map(int, vals[1:])))
    total += d["InDatagrams"] + d["OutDatagrams"]
    try:
        with open("/proc/net/snmp6") as f:
            for line in f:
                k, v = line.split()
                if k in ("Udp6InDatagrams", "Udp6OutDatagrams"):
                    total += int(v)
    except OSError:
        pass
    lo = 0
    with open("/proc/net/dev") as f:
        for line in f:
            if line.strip().startswith("lo:"):
                lo = int(line.split(":", 1)[1].split()[0])
    return total, lo


def udp_drops():
    """UDP datagrams the kernel of this namespace dropped on receipt (a full
    socket buffer: a node that did not read in time), IPv4 and IPv6. On
    loopback nothing else loses a packet."""
    total = 0
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    total += dict(zip(rows[0][1:], map(int, rows[1][1:])))["RcvbufErrors"]
    try:
        with open("/proc/net/snmp6") as f:
            for line in f:
                k, v = line.split()
                if k == "Udp6RcvbufErrors":
                    total += int(v)
    except OSError:
        pass
    return total


def maybe_enter_netns(args):
    """Re-runs this script inside `unshare -rn` (a user and network
    namespace with only its own loopback) unless already there."""
    if os.environ.get(NETNS_ENV) or args.netns == "no":
        return
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        if args.netns == "yes":
            raise SystemExit(f"unshare -rn failed: {probe.stderr.decode().strip()}")
        print("bench: unshare -rn is not available: UDP datagrams are not counted",
              file=sys.stderr)
        return
    env = dict(os.environ, **{NETNS_ENV: "1"})
    cmd = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
           sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
    p = subprocess.Popen(cmd, env=env)

    def forward(signum, frame):
        p.send_signal(signum)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    sys.exit(p.wait())


class Observer:
    """A `dhtnode` (OpenDHT's own node, the same library and default store
    policy as posternd's runner) in the network, driven on its stdin: its
    `ll` command says how many values it stores. posternd cannot say (the C
    API has no storage statistics), so these stand in for a storing node."""

    def __init__(self, network, seed, logdir, k):
        self.lines = []
        self.cond = threading.Condition()
        self.log = open(os.path.join(logdir, f"dhtnode{k}.log"), "w")
        self.proc = subprocess.Popen(["dhtnode", "-n", str(network), "-p", "0", "-b", seed],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=self.reader, daemon=True).start()

    def reader(self):
        for line in self.proc.stdout:
            if not self.log.closed:  # stop() closes it while dhtnode still prints
                self.log.write(line)
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def storage(self, timeout=10.0):
        """(values, KiB) from `ll`, or None."""
        with self.cond:
            start = len(self.lines)
        try:
            self.proc.stdin.write("ll\n")
            self.proc.stdin.flush()
        except OSError:
            return None
        end = time.monotonic() + timeout
        with self.cond:
            while time.monotonic() < end:
                for line in self.lines[start:]:
                    if line.startswith("Storage has "):
                        w = line.split()
                        return int(w[2]), int(w[5])
                self.cond.wait(0.2)
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Bench:
    def __init__(self, harness, a):
        self.h = harness
        self.a = a
        self.c = harness.Cluster("bench-net")
        if a.network_id:
            self.c.network = a.network_id
        self.nodes = []
        self.locks = []  # held by a CLI call on a node, and by churn to stop it
        self.down = set()
        self.down_lock = threading.Lock()
        self.t0 = time.monotonic()
        self.peak_rss = {}
        self.cpu_done = {}  # CPU seconds of finished runs, by node index
        self.cpu_now = {}
        self.sampling = True
        self.port_next = a.base_port + 2 * a.nodes if a.base_port else 0
        self.lookups = []
        self.mails = []
        self.revocations = []
        self.churn = {"stops": 0, "new_ports": 0}
        self.errors = []
        self.observers = []
        self.storage = []
        self.started = {}  # node index: monotonic time its last start was joined
        self.quiet = None

    # ---- nodes -----------------------------------------------------------------

    def ports_argv(self, i, new):
        if not self.a.base_port:
            return []
        if new:
            dht, fetch = self.port_next, self.port_next + 1
            self.port_next += 2
        else:
            dht, fetch = self.a.base_port + i, self.a.base_port + self.a.nodes + i
        return ["--port", str(dht), "--fetch-port", str(fetch)]

    def extra(self, i, new_ports=False):
        # the defaults a user runs with, not the harness's fast test re-puts
        return ["--republish", str(self.a.republish), "--log-level", "info",
                "--lmtp", "off"] + self.ports_argv(i, new_ports)

    def start_all(self):
        c = self.c
        for i in range(self.a.nodes):
            home = c.new_home(f"n{i:03d}", f"user{i}@bench.example")
            seeds = [n for n in self.nodes[:2]]
            node = c.start(home, seeds, extra=self.extra(i), wait=False)
            self.nodes.append(node)
            self.locks.append(threading.Lock())
            if i < 2 or i % 16 == 15 or i == self.a.nodes - 1:
                for nd in self.nodes:
                    if nd.dht_port is None:
                        nd.wait_ready(60)
        for nd in self.nodes:
            nd.wait_joined(60)
        if self.a.observers and shutil.which("dhtnode"):
            seeds = [nd.seed_addr() for nd in self.nodes[:2]]
            for k in range(self.a.observers):
                self.observers.append(Observer(self.c.network, seeds[k % 2], self.c.tmp, k))

    def sampler(self):
        while self.sampling:
            for i, nd in enumerate(self.nodes):
                pid = nd.pid if nd.alive() else None
                if pid is None:
                    continue
                r = self.h.rss_kib(pid)
                if r:
                    self.peak_rss[i] = max(self.peak_rss.get(i, 0), r)
                cs = cpu_s(pid)
                if cs is not None:
                    self.cpu_now[i] = (pid, cs)
            time.sleep(1.0)

    def cpu_total(self, i):
        return self.cpu_done.get(i, 0.0) + self.cpu_now.get(i, (0, 0.0))[1]

    def is_down(self, i):
        with self.down_lock:
            return i in self.down

    def stop_node(self, i):
        nd = self.nodes[i]
        with self.locks[i]:
            with self.down_lock:
                self.down.add(i)
            pid = nd.pid
            cs = cpu_s(pid)
            nd.stop(timeout=20, expect_rc=None)
            self.cpu_done[i] = self.cpu_done.get(i, 0.0) + (cs or self.cpu_now.get(i, (0, 0))[1])
            self.cpu_now.pop(i, None)

    def restart_node(self, i, new_ports):
        nd = self.nodes[i]
        nd.extra = self.extra(i, new_ports)
        if new_ports and not self.a.base_port:
            nd.extra = nd.extra  # port 0 picks new free ports by itself
        self.c.restart(nd, timeout=60)
        nd.wait_joined(60)
        self.started[i] = time.monotonic()
        with self.down_lock:
            self.down.discard(i)

    # ---- CLI operations ---------------------------------------------------------

    def live_nodes(self, exclude=()):
        with self.down_lock:
            return [i for i in range(len(self.nodes)) if i not in self.down and i not in exclude]

    def key_get(self, obs, query):
        with self.locks[obs]:
            if self.is_down(obs):
                return None
            return self.c.key_get(self.nodes[obs].home, query)

    def one_lookup(self, revoked):
        live = self.live_nodes()
        obs = random.choice(live)
        target = random.choice([i for i in range(len(self.nodes)) if i != obs and i not in revoked])
        by_addr = random.random() < 0.5
        h = self.nodes[target].home
        target_down = self.is_down(target)
        now = time.monotonic()
        obs_age = now - self.started.get(obs, self.t0)
        target_age = now - self.started.get(target, self.t0)
        r = self.key_get(obs, h.address if by_addr else h.fingerprint)
        if r is None:
            return  # the observer went down first: not a lookup
        rc, doc, _ = r
        doc = doc or {}
        if by_addr:
            keys = doc.get("keys", [])
            ok = any(k.get("fingerprint") == h.fingerprint and k.get("status") == "valid"
                     for k in keys)
            status = ",".join(k.get("status", "?") for k in keys) or doc.get("status", f"exit {rc}")
            ms = doc.get("lookup_ms")
        else:
            ok = rc == 0 and doc.get("status") == "valid"
            status = doc.get("status", f"exit {rc}")
            ms = doc.get("lookup_ms")
        if target in revoked:
            return
        rec = {"kind": "addr" if by_addr else "fp", "ok": ok, "ms": ms,
               "status": status, "target_down": target_down,
               "obs": obs, "target": target, "obs_up_s": round(obs_age, 1),
               "target_up_s": round(target_age, 1), "at_s": round(now - self.t0, 1)}
        if not ok:
            # what the node answered, and the same question again at once
            # and 5 s later: a failure that persists is not the network's
            # moment, and the node's own log can be read at that time
            rec["answer"] = self.answer_summary(doc, rc)
            rec["retries"] = []
            for delay in (0.0, 5.0):
                time.sleep(delay)
                r2 = self.key_get(obs, h.address if by_addr else h.fingerprint)
                if r2 is not None:
                    rec["retries"].append(self.answer_summary(r2[1] or {}, r2[0]))
        self.lookups.append(rec)

    @staticmethod
    def answer_summary(doc, rc):
        keys = doc.get("keys")
        return {"rc": rc, "dht_answered": doc.get("dht_answered"),
                "lookup_ms": doc.get("lookup_ms"),
                "address_listened": doc.get("address_listened"),
                "status": doc.get("status"), "source": doc.get("source"),
                "listened": doc.get("listened"),
                "keys": None if keys is None else [(k.get("status"), k.get("source"),
                                                    k.get("seq")) for k in keys],
                "error": doc.get("error")}

    def send_mail(self, sender, rcpt):
        nd = self.nodes[sender]
        with self.locks[sender]:
            if self.is_down(sender):
                return False
            rcpt_down = self.is_down(rcpt)
            t = time.time()
            rc, doc, err = self.h.mail_send(
                self.c, nd.home, to=[self.nodes[rcpt].home.fingerprint],
                subject=f"bench {sender}->{rcpt}", body=f"from {sender} to {rcpt} at {t}\n",
                extra=["--pow", "never"], timeout=60, expect_rc=None)
        self.mails.append({"sender": sender, "rcpt": rcpt, "ok": rc == 0 and bool(doc),
                           "id": (doc or {}).get("message_id"), "t": t, "rcpt_down": rcpt_down,
                           "err": err.strip()[:200] if rc else ""})
        return True

    def revoke(self, i):
        with self.locks[i]:
            if self.is_down(i):
                return False
            rc, out, err = self.c.cli(["key", "revoke", "--home", self.nodes[i].home.path,
                                       "--reason", "benchmark", "--code", "retired"])
            t = time.monotonic()
        self.revocations.append({"node": i, "ok": rc == 0, "t": t, "seen": {}, "not_yet": 0,
                                 "up_at_revoke": set(self.live_nodes(exclude=(i,))),
                                 "err": err.strip()[:200]})
        return rc == 0

    def poll_revocations(self, until):
        """One round over every (revocation, live node) not seen yet, a few
        lookups at a time (--workers)."""
        todo = []
        for rv in self.revocations:
            if not rv["ok"]:
                continue
            for j in range(len(self.nodes)):
                if j != rv["node"] and j not in rv["seen"] and not self.is_down(j):
                    todo.append((rv, j))
        random.shuffle(todo)

        def one(item):
            rv, j = item
            if time.monotonic() > until:
                return
            r = self.key_get(j, self.nodes[rv["node"]].home.fingerprint)
            if r and r[1] and r[1].get("status") == "revoked":
                rv["seen"][j] = time.monotonic() - rv["t"]
            elif r:
                rv["not_yet"] += 1
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.a.workers) as ex:
            list(ex.map(one, todo))

    def revocations_pending(self):
        for rv in self.revocations:
            if rv["ok"] and len(rv["seen"]) < len(self.nodes) - 1:
                return True
        return False

    # ---- the run -----------------------------------------------------------------

    def run(self):
        a = self.a
        t_start = time.monotonic()
        self.start_all()
        start_s = time.monotonic() - t_start
        print(f"{a.nodes} posternd up and joined in {start_s:.0f} s (network {self.c.network})",
              file=sys.stderr, flush=True)
        threading.Thread(target=self.sampler, daemon=True).start()

        rng = random.Random()
        n = a.nodes
        stable = {0, 1}  # the seeds stay up, as a network's bootstrap nodes do
        n_churn = int(round(n * a.churn / 100.0))
        churned = rng.sample([i for i in range(n) if i not in stable], min(n_churn, n - 2))
        pool = [i for i in range(n) if i not in stable and i not in churned]
        revokers = rng.sample(pool, min(a.revocations, len(pool)))
        # mail pairs: senders and recipients never revoke; recipients trust senders
        # and senders trust recipients (no stamp, INBOX)
        mail_nodes = [i for i in range(n) if i not in revokers]
        # the churn schedule: stop at a random time in the first 70% of the
        # phase, down 10-60 s (bounded by the phase), half of them on new ports
        events, windows = [], {}
        for i in churned:
            at = rng.uniform(0.0, 0.7) * a.duration
            down = max(min(rng.uniform(10, 60), a.duration - at - 5), 3)
            events.append((at, "stop", i))
            events.append((at + down, "start", i))
            windows[i] = (at, at + down)
        new_port_set = set(rng.sample(churned, len(churned) // 2))
        # half the messages go to a churned node while it is down, from a node
        # that never stops; the rest between random pairs at random times
        steady_senders = [i for i in mail_nodes if i not in churned]
        pairs = []  # (when, sender, recipient)
        for k in range(a.mail):
            if k % 2 == 0 and churned:
                rcpt = rng.choice(churned)
                lo, hi = windows[rcpt]
                when = rng.uniform(lo + 1.0, max(lo + 1.0, hi - 3.0))
                sender = rng.choice([i for i in steady_senders if i != rcpt])
            else:
                rcpt = rng.choice(mail_nodes)
                when = rng.uniform(0, a.duration * 0.9)
                sender = rng.choice([i for i in mail_nodes if i != rcpt])
            pairs.append((when, sender, rcpt))
        for s, r in set((s, r) for _, s, r in pairs):
            self.h.trust(self.c, self.nodes[r], self.nodes[s])
            self.h.trust(self.c, self.nodes[s], self.nodes[r])

        # past the fast re-puts of a fresh start (2+3+5+...+160 s), so that
        # the counters below show the steady rate
        warm_end = time.monotonic() + min(a.warmup, self.time_left())
        while time.monotonic() < warm_end:
            time.sleep(1.0)
        # counters of steady nodes at the start of the churn phase
        steady = [i for i in range(n) if i not in churned and i not in revokers][:a.steady_sample]
        if a.quiet > 0:
            # an idle network: no lookups, no mail, no churn; what the nodes
            # do by themselves (re-puts, polls, listens, OpenDHT upkeep)
            q0 = {i: self.nodes[i].status() for i in steady}
            u0 = udp_counters() if os.environ.get(NETNS_ENV) else (None, None)
            tq = time.monotonic()
            end = tq + min(a.quiet, self.time_left())
            while time.monotonic() < end:
                time.sleep(1.0)
            q1 = {i: self.nodes[i].status() for i in steady}
            u1 = udp_counters() if os.environ.get(NETNS_ENV) else (None, None)
            self.quiet = (time.monotonic() - tq, q0, q1, u0, u1,
                          [x for x in (o.storage() for o in self.observers) if x])
        before = {i: self.nodes[i].status() for i in steady}
        udp0, lo0 = udp_counters() if os.environ.get(NETNS_ENV) else (None, None)
        self.drops0 = udp_drops() if os.environ.get(NETNS_ENV) else None
        t_churn = time.monotonic()

        def churn_worker():
            for at, what, i in sorted(events):
                while time.monotonic() - t_churn < at:
                    time.sleep(0.1)
                    if self.deadline_hit():
                        return
                try:
                    if what == "stop":
                        self.stop_node(i)
                        self.churn["stops"] += 1
                    else:
                        self.restart_node(i, i in new_port_set)
                        if i in new_port_set:
                            self.churn["new_ports"] += 1
                except Exception as e:  # keep the run going; reported
                    self.errors.append(f"churn {what} n{i}: {e}"[:500])

        churn_th = threading.Thread(target=churn_worker, daemon=True)
        churn_th.start()
        phase_end = t_churn + a.duration

        def revocation_worker():
            while time.monotonic() < phase_end and not self.deadline_hit():
                self.poll_revocations(phase_end)
                time.sleep(0.5)
        rev_th = threading.Thread(target=revocation_worker, daemon=True)
        rev_th.start()

        # lookups, mail and revocations spread over the phase
        plan = [(when, "mail", (snd, rcpt)) for when, snd, rcpt in pairs]
        plan += [(rng.uniform(0.1, 0.4) * a.duration, "revoke", i) for i in revokers]
        plan.sort()
        revoked = set(revokers)
        lookups_per_s = a.lookups / (a.duration * 0.95)
        ex = concurrent.futures.ThreadPoolExecutor(max_workers=a.workers)
        futures = []
        next_lookup = 0.0
        while time.monotonic() - t_churn < a.duration and not self.deadline_hit():
            el = time.monotonic() - t_churn
            while plan and plan[0][0] <= el:
                _, what, arg = plan.pop(0)
                if what == "mail":
                    s, r = arg
                    if self.is_down(s):  # the sender is down: it sends when it is back
                        if el < a.duration * 0.95:
                            plan.append((el + 5.0, what, arg))
                            plan.sort()
                        else:
                            self.mails.append({"sender": s, "rcpt": r, "ok": False, "id": None,
                                               "t": time.time(), "rcpt_down": False,
                                               "err": "sender down until the end"})
                        continue
                    futures.append(ex.submit(self.send_mail, s, r))
                else:
                    futures.append(ex.submit(self.revoke, arg))
            if el >= next_lookup and len(self.lookups) < a.lookups:
                futures.append(ex.submit(self.one_lookup, revoked))
                next_lookup += 1.0 / lookups_per_s
            futures = [f for f in futures if not f.done() or self.collect(f)]
            time.sleep(0.02)
        for f in futures:
            try:
                f.result(timeout=120)
            except Exception as e:
                self.errors.append(f"operation: {e}"[:500])
        churn_th.join(timeout=max(1.0, self.time_left()))
        rev_th.join(timeout=max(1.0, self.time_left()))
        churn_s = time.monotonic() - t_churn
        after = {i: self.nodes[i].status() for i in steady}
        udp1, lo1 = udp_counters() if os.environ.get(NETNS_ENV) else (None, None)
        self.drops1 = udp_drops() if os.environ.get(NETNS_ENV) else None
        self.storage = [x for x in (o.storage() for o in self.observers) if x]
        print(f"churn phase over after {churn_s:.0f} s: {len(self.lookups)} lookups, "
              f"{len(self.mails)} messages, {len(self.revocations)} revocations",
              file=sys.stderr, flush=True)

        # every node is up again: wait for mail and revocations, bounded
        for i in churned:
            if not self.nodes[i].alive():
                try:
                    self.restart_node(i, False)
                except Exception as e:
                    self.errors.append(f"late restart n{i}: {e}"[:500])
        settle_end = time.monotonic() + min(a.settle, self.time_left())
        deliveries = {}
        while time.monotonic() < settle_end:
            self.count_mail(deliveries)
            self.poll_revocations(settle_end)
            if all(len(deliveries.get(m["id"], [])) >= 1 for m in self.mails if m["ok"]) \
                    and not self.revocations_pending():
                break
            time.sleep(1.0)
        self.count_mail(deliveries)
        settle_s = time.monotonic() - t_churn - churn_s
        self.sampling = False
        return self.report(start_s, churn_s, settle_s, before, after, steady, deliveries,
                           (udp0, lo0, udp1, lo1), churned)

    @staticmethod
    def dht_rates(nodes, before, after, seconds):
        """Median per node of the DHT operations and every counter between
        two `status` snapshots, per 10 minutes (listens: held at the end)."""
        scale = 600.0 / max(seconds, 1.0)
        per = {"gets": [], "puts": [], "values_received": [], "listens": []}
        ctr = {}
        for i in nodes:
            b, e = before[i], after[i]
            per["gets"].append((e["dht"]["gets_ok"] + e["dht"]["gets_failed"]) -
                               (b["dht"]["gets_ok"] + b["dht"]["gets_failed"]))
            per["puts"].append((e["dht"]["puts_ok"] + e["dht"]["puts_failed"]) -
                               (b["dht"]["puts_ok"] + b["dht"]["puts_failed"]))
            per["values_received"].append(e["dht"]["values_received"] -
                                          b["dht"]["values_received"])
            per["listens"].append(e["dht"]["listens"])
            for k, v in e.get("counters", {}).items():
                ctr.setdefault(k, []).append(v - b.get("counters", {}).get(k, 0))
        rates = {k: round(statistics.median(v) * (1 if k == "listens" else scale), 1)
                 for k, v in per.items() if v}
        counters = {k: round(statistics.median(v) * scale, 1) for k, v in sorted(ctr.items())}
        return rates, counters

    def collect(self, f):
        try:
            f.result()
        except Exception as e:
            self.errors.append(f"operation: {e}"[:500])
        return False

    def count_mail(self, deliveries):
        """deliveries[id] = [(node, first seen time)] for every Maildir copy."""
        for m in self.mails:
            if not m["ok"]:
                continue
            copies = []
            for j, nd in enumerate(self.nodes):
                for p in self.h.maildir_copies(nd.home, m["id"]):
                    copies.append((j, p))
            old = {p: t for (_, p, t) in deliveries.get(m["id"], [])}
            deliveries[m["id"]] = [(j, p, old.get(p) or self.mtime(p)) for j, p in copies]

    @staticmethod
    def mtime(path):
        # the node writes the copy in tmp/, fsyncs it and renames it into
        # new/: its mtime is the delivery time (same clock as time.time())
        try:
            return os.stat(path).st_mtime
        except OSError:
            return time.time()

    def deadline_hit(self):
        return time.monotonic() - self.t0 > self.a.deadline - 60

    def time_left(self):
        return max(0.0, self.a.deadline - 60 - (time.monotonic() - self.t0))

    # ---- the report -------------------------------------------------------------------

    def report(self, start_s, churn_s, settle_s, before, after, steady, deliveries, net, churned):
        a = self.a
        out = {"nodes": a.nodes, "procs": a.nodes, "churn_pct": a.churn,
               "network_id": self.c.network, "duration_s": round(churn_s, 1),
               "settle_s": round(settle_s, 1), "start_s": round(start_s, 1),
               "wall_s": round(time.monotonic() - self.t0, 1),
               "netns": bool(os.environ.get(NETNS_ENV)), "warmup_s": a.warmup,
               "nodes_churned": len(churned),
               "churn_stops": self.churn["stops"], "churn_new_ports": self.churn["new_ports"]}
        L = self.lookups
        ok = [x for x in L if x["ok"]]
        out["lookups_attempted"] = len(L)
        out["lookups_ok"] = len(ok)
        out["lookups_target_down"] = sum(1 for x in L if x["target_down"])
        out["lookups_target_down_ok"] = sum(1 for x in ok if x["target_down"])
        for kind in ("fp", "addr"):
            k = [x for x in L if x["kind"] == kind]
            kok = [x["ms"] for x in k if x["ok"] and x["ms"] is not None]
            out[f"lookups_{kind}_attempted"] = len(k)
            out[f"lookups_{kind}_ok"] = sum(1 for x in k if x["ok"])
            out[f"lookups_{kind}_p50_ms"] = pct(kok, 50)
            out[f"lookups_{kind}_p99_ms"] = pct(kok, 99)
        out["lookup_failures"] = [{"kind": x["kind"], "status": x["status"],
                                   "target_down": x["target_down"], "obs": x["obs"],
                                   "target": x["target"], "obs_up_s": x["obs_up_s"],
                                   "target_up_s": x["target_up_s"], "at_s": x["at_s"],
                                   "answer": x.get("answer"), "retries": x.get("retries")}
                                  for x in L if not x["ok"]][:50]
        sent = [m for m in self.mails if m["ok"]]
        out["mail_sent"] = len(sent)
        out["mail_send_failed"] = len(self.mails) - len(sent)
        out["mail_send_errors"] = [m["err"] for m in self.mails if not m["ok"]][:10]
        out["mail_to_down"] = sum(1 for m in sent if m["rcpt_down"])
        once, dups, lost, wrong, lat, lat_down = 0, 0, 0, 0, [], []
        for m in sent:
            copies = deliveries.get(m["id"], [])
            at_rcpt = [c for c in copies if c[0] == m["rcpt"]]
            wrong += len(copies) - len(at_rcpt)
            if not at_rcpt:
                lost += 1
                continue
            if len(at_rcpt) == 1:
                once += 1
            dups += len(at_rcpt) - 1
            dt = min(c[2] for c in at_rcpt) - m["t"]
            lat.append(dt)
            if m["rcpt_down"]:
                lat_down.append(dt)
        out["mail_delivered"] = once
        out["mail_duplicates"] = dups
        out["mail_lost"] = lost
        out["mail_misdelivered"] = wrong
        out["mail_delivery_p50_s"] = pct(lat, 50)
        out["mail_delivery_p99_s"] = pct(lat, 99)
        out["mail_to_down_delivery_p50_s"] = pct(lat_down, 50)
        out["mail_lost_ids"] = [(m["id"][:16], m["sender"], m["rcpt"]) for m in sent
                                if not deliveries.get(m["id"])][:20]
        revs = [r for r in self.revocations if r["ok"]]
        out["revocations_published"] = len(revs)
        out["revocations_failed"] = len(self.revocations) - len(revs)
        everywhere = 0
        seen_t, missing = [], {}
        for r in revs:
            others = len(self.nodes) - 1
            if len(r["seen"]) >= others:
                everywhere += 1
            else:
                missing[r["node"]] = sorted(set(range(len(self.nodes))) - set(r["seen"]) -
                                            {r["node"]})
            seen_t += [t for j, t in r["seen"].items() if j in r["up_at_revoke"]]
        out["revocations_seen_everywhere"] = everywhere
        out["revocation_seen_p50_s"] = pct(seen_t, 50)
        out["revocation_seen_p99_s"] = pct(seen_t, 99)
        out["revocation_missing"] = missing
        # lookups after the revocation that did not report it yet: 0 means
        # every node saw it at its first lookup (the times above are then the
        # polling's, not the network's)
        out["revocation_lookups_not_yet"] = sum(r["not_yet"] for r in revs)
        rss = list(self.peak_rss.values())
        cpu = [self.cpu_total(i) for i in range(len(self.nodes))]
        out["rss_kib_median"] = statistics.median(rss) if rss else None
        out["rss_kib_max"] = max(rss) if rss else None
        out["cpu_s_median"] = round(statistics.median(cpu), 2)
        out["cpu_s_max"] = round(max(cpu), 2)
        out["cpu_s_total"] = round(sum(cpu), 1)
        out["dht_per_node_10min"], out["counters_per_node_10min"] = \
            self.dht_rates(steady, before, after, churn_s)
        out["steady_nodes"] = len(steady)
        out["steady_s"] = round(churn_s, 1)
        if self.quiet:
            dq, q0, q1, u0, u1, stq = self.quiet
            qd = self.dht_rates(steady, q0, q1, dq)
            out["quiet_s"] = round(dq, 1)
            out["quiet_dht_per_node_10min"] = qd[0]
            out["quiet_counters_per_node_10min"] = qd[1]
            out["quiet_udp_datagrams_per_node_s"] = (round((u1[0] - u0[0]) / dq / a.nodes, 2)
                                                     if u0[0] is not None else None)
            out["quiet_lo_bytes_per_node_s"] = (round((u1[1] - u0[1]) / dq / a.nodes, 1)
                                                if u0[0] is not None else None)
            out["quiet_stored_values_per_node"] = sorted(v for v, _ in stq)
            out["quiet_stored_kib_per_node"] = sorted(k for _, k in stq)
        udp0, lo0, udp1, lo1 = net
        if udp0 is not None:
            out["udp_datagrams"] = udp1 - udp0
            out["udp_datagrams_per_s"] = round((udp1 - udp0) / churn_s, 1)
            out["udp_datagrams_per_node_s"] = round((udp1 - udp0) / churn_s / a.nodes, 2)
            out["lo_bytes"] = lo1 - lo0
            out["udp_rcvbuf_drops"] = self.drops1 - self.drops0
        else:
            out["udp_rcvbuf_drops"] = None
            out["udp_datagrams"] = out["udp_datagrams_per_s"] = None
            out["udp_datagrams_per_node_s"] = out["lo_bytes"] = None
        st = self.storage
        out["observers"] = len(self.observers)
        out["stored_values_per_node_median"] = statistics.median(v for v, _ in st) if st else None
        out["stored_values_per_node_max"] = max(v for v, _ in st) if st else None
        out["stored_kib_per_node_median"] = statistics.median(k for _, k in st) if st else None
        out["errors"] = self.errors[:20]
        return out


def table(o, argv):
    def f(v, unit="", nd=1):
        return "n/a" if v is None else f"{v:.{nd}f}{unit}"

    lines = [f"Postern network benchmark: {o['nodes']} posternd (one per process) on loopback, "
             f"{o['churn_pct']}% churn ({o['churn_stops']} stops, {o['churn_new_ports']} back on "
             f"new ports) over {o['duration_s']:.0f} s, then {o['settle_s']:.0f} s to settle",
             f"`{' '.join(argv)}`", "",
             "| measure | value |", "| --- | --- |",
             f"| lookups ok (all) | {o['lookups_ok']}/{o['lookups_attempted']} "
             f"(target down at the time: {o['lookups_target_down_ok']}/"
             f"{o['lookups_target_down']}) |",
             f"| by fingerprint: ok, p50 / p99 | {o['lookups_fp_ok']}/{o['lookups_fp_attempted']}, "
             f"{f(o['lookups_fp_p50_ms'], ' ms', 0)} / {f(o['lookups_fp_p99_ms'], ' ms', 0)} |",
             f"| by address: ok, p50 / p99 | {o['lookups_addr_ok']}/"
             f"{o['lookups_addr_attempted']}, {f(o['lookups_addr_p50_ms'], ' ms', 0)} / "
             f"{f(o['lookups_addr_p99_ms'], ' ms', 0)} |",
             f"| mail sent (to a node that was down) | {o['mail_sent']} ({o['mail_to_down']}); "
             f"send failed: {o['mail_send_failed']} |",
             f"| delivered exactly once / duplicates / lost | {o['mail_delivered']} / "
             f"{o['mail_duplicates']} / {o['mail_lost']} |",
             f"| delivery p50 / p99 (recipient down: p50) | {f(o['mail_delivery_p50_s'], ' s', 2)} / "
             f"{f(o['mail_delivery_p99_s'], ' s', 2)} ({f(o['mail_to_down_delivery_p50_s'], ' s', 2)}) |",
             f"| revocations seen by every node | {o['revocations_seen_everywhere']}/"
             f"{o['revocations_published']} |",
             f"| revocation seen p50 / p99 (lookups that did not see it yet) | "
             f"{f(o['revocation_seen_p50_s'], ' s')} / {f(o['revocation_seen_p99_s'], ' s')} "
             f"({o['revocation_lookups_not_yet']}) |",
             f"| RSS per node, median / max (peak) | {f((o['rss_kib_median'] or 0) / 1024, ' MiB')}"
             f" / {f((o['rss_kib_max'] or 0) / 1024, ' MiB')} |",
             f"| CPU per node over the run, median / max | {o['cpu_s_median']} s / "
             f"{o['cpu_s_max']} s (all nodes {o['cpu_s_total']} s in {o['wall_s']:.0f} s) |",
             f"| DHT ops per steady node per 10 min (median of {o['steady_nodes']}) | "
             + ", ".join(f"{k} {v:g}" for k, v in o["dht_per_node_10min"].items()) + " |",
             f"| values stored per storing node (dhtnode observers: {o['observers']}), median / max"
             + (" | n/a |" if o["stored_values_per_node_median"] is None else
                f" | {o['stored_values_per_node_median']} / {o['stored_values_per_node_max']} "
                f"({o['stored_kib_per_node_median']} KiB median) |"),
             f"| UDP datagrams on the wire (namespace counters) | "
             + ("n/a (no --netns)" if o["udp_datagrams"] is None else
                f"{o['udp_datagrams']} = {o['udp_datagrams_per_s']}/s, "
                f"{o['udp_datagrams_per_node_s']}/s per node; dropped by full receive "
                f"buffers: {o['udp_rcvbuf_drops']} |"),
             ]
    if o.get("quiet_s"):
        q = o["quiet_dht_per_node_10min"]
        lines.append(f"| idle network ({o['quiet_s']:.0f} s, nothing asked): DHT ops per node per "
                     f"10 min | " + ", ".join(f"{k} {v:g}" for k, v in q.items()) + " |")
        lines.append(f"| idle: UDP datagrams per node per s, loopback bytes per node per s | "
                     f"{o['quiet_udp_datagrams_per_node_s']}, {o['quiet_lo_bytes_per_node_s']} |")
        lines.append(f"| idle: values stored per dhtnode observer (KiB) | "
                     f"{o['quiet_stored_values_per_node']} ({o['quiet_stored_kib_per_node']}) |")
    if o["errors"]:
        lines.append("")
        lines.append("errors: " + "; ".join(o["errors"]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--procs", type=int, default=None,
                    help="posternd processes; every node is its own posternd (one OpenDHT "
                         "runner per process), so only --procs = --nodes is accepted")
    ap.add_argument("--churn", type=float, default=0.0, metavar="PCT",
                    help="share of nodes stopped and started again during the run")
    ap.add_argument("--duration", type=float, default=300.0,
                    help="seconds of the churn phase (lookups, mail, revocations)")
    ap.add_argument("--settle", type=float, default=300.0,
                    help="at most this long after the churn phase for mail and revocations")
    ap.add_argument("--deadline", type=float, default=1800.0,
                    help="hard bound on the whole run in seconds: a watchdog stops it")
    ap.add_argument("--base-port", type=int, default=0,
                    help="DHT port of node i is BASE+i, fetch port BASE+N+i, new ports after "
                         "2N (0: every port is picked by the system)")
    ap.add_argument("--network-id", type=int, default=0, help="default: random private id")
    ap.add_argument("--workdir", default=None, help="homes and logs go under it (default /tmp)")
    ap.add_argument("--warmup", type=float, default=0.0,
                    help="seconds to wait after the start before the churn phase (330 lets "
                         "the fast re-puts of a fresh start end, for steady-state counters)")
    ap.add_argument("--quiet", type=float, default=0.0,
                    help="seconds of an idle network measured after the warmup, before the "
                         "churn phase (nothing is asked of the nodes)")
    ap.add_argument("--lookups", type=int, default=1000)
    ap.add_argument("--mail", type=int, default=64, help="messages (half to churned nodes)")
    ap.add_argument("--revocations", type=int, default=4)
    ap.add_argument("--republish", type=int, default=300, help="posternd --republish")
    ap.add_argument("--workers", type=int, default=4, help="CLI commands at once")
    ap.add_argument("--steady-sample", type=int, default=1000,
                    help="nodes that stay up whose counters are read (status of each)")
    ap.add_argument("--netns", choices=("auto", "yes", "no"), default="auto",
                    help="run inside unshare -rn to count UDP datagrams")
    ap.add_argument("--observers", type=int, default=4,
                    help="dhtnode processes in the network that report their stored values "
                         "(0: none; needs the dhtnode program)")
    ap.add_argument("--keep", action="store_true", help="keep the homes and logs")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.procs is not None and a.procs != a.nodes:
        ap.error("--procs must equal --nodes: each node is its own posternd")
    if a.network_id == 0x70737431 or (a.network_id and a.network_id < 1):
        ap.error("--network-id must be a private id (not 0, not the public one)")
    if a.nodes < 4:
        ap.error("--nodes must be at least 4")
    maybe_enter_netns(a)

    if a.keep:
        os.environ["PST_IT_KEEP"] = "1"
    build = os.path.abspath(a.build)
    os.environ["PST_POSTERND"] = os.path.join(build, "node", "posternd")
    os.environ["PST_POSTERN"] = os.path.join(build, "tools", "postern", "postern")
    if a.workdir:
        os.makedirs(a.workdir, exist_ok=True)
        import tempfile
        tempfile.tempdir = a.workdir
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness

    bench = Bench(harness, a)

    def watchdog():
        time.sleep(a.deadline)
        print("bench: deadline reached, stopping every node", file=sys.stderr, flush=True)
        for p in [nd.proc for nd in list(bench.c.running)] + [o.proc for o in bench.observers]:
            try:
                p.kill()
            except Exception:
                pass
        os._exit(2)
    threading.Thread(target=watchdog, daemon=True).start()

    def on_term(signum, frame):
        raise SystemExit(f"bench: signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    try:
        out = bench.run()
    finally:
        bench.sampling = False
        for o in bench.observers:
            o.stop()
        # the harness says where it kept the logs on stdout: keep stdout JSON only
        with contextlib.redirect_stdout(sys.stderr):
            bench.c.close()
    argv = ["python3", "tools/bench/bench_network.py"] + sys.argv[1:]
    print(table(out, argv), file=sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
