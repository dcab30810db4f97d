"""Integration test harness: real posternd nodes on loopback.

Stdlib only. Every node runs on a private random network id with peer
discovery off, takes free ports (port 0), advertises 127.0.0.1 and seeds only
from other test nodes on 127.0.0.1, so no packet leaves the machine (OpenDHT
itself binds every interface: its C API has no loopback-only bind). Waits
are polls with deadlines (never fixed sleeps); a timeout raises with the
tail of the node logs. Every process is stopped in Cluster.close(), which
runs from a finally block, atexit and on SIGTERM. A sanitizer report in a
node log or in a CLI's stderr fails the test.

Binaries come from the environment (set by tests/integration/meson.build):
PST_POSTERND, PST_POSTERN, PST_HOSTILE. PST_IT_KEEP=1 keeps the temp dirs,
PST_IT_DEBUG=1 runs the nodes with --log-level debug.
"""

import atexit
import base64
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback

EX_OK, EX_FAIL, EX_NOTFOUND, EX_REVOKED, EX_EXPIRED, EX_USAGE = 0, 1, 2, 3, 4, 64
PUBLIC_NETWORK = 0x70737431  # PST_DHT_NETWORK_PUBLIC: never used here
POLL_S = 0.05
CLI_TIMEOUT_S = 30
LOG_TAIL_LINES = 25
# what ASan, LSan and UBSan print: a node or CLI run showing one fails the test
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ERROR: UndefinedBehaviorSanitizer")


def sanitizer_report(text):
    """The sanitizer report in text (from its first marker), or None."""
    at = [text.find(m) for m in SANITIZER_MARKERS if m in text]
    if not at:
        return None
    start = text.rfind("\n", 0, min(at)) + 1
    return text[start:start + 6000]


def is_sanitized(path):
    """True if the binary was built with ASan (its RSS includes the shadow
    memory and the allocator quarantine, hundreds of MiB by design)."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def binary(var):
    path = os.environ.get(var)
    if not path or not os.access(path, os.X_OK):
        raise SystemExit(
            f"harness: ${var} is not set to an executable (got {path!r}); "
            "run through 'meson test --suite integration'"
        )
    return path


class TestFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def zbase32(data):
    """z-base-32 of bytes, MSB first, no padding (the fingerprint format)."""
    std = base64.b32encode(data).decode().rstrip("=")
    table = str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "ybndrfg8ejkmcpqxot1uwisza345h769"
    )
    return std.translate(table)


def random_fingerprint():
    # 256 bits in 52 characters: base32 pads the last one with zero bits,
    # which is what a canonical fingerprint needs
    return zbase32(os.urandom(32))


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def poll(fn, timeout, what, on_timeout=None, interval=POLL_S):
    """Calls fn until it returns a truthy value or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            detail = on_timeout() if on_timeout else ""
            raise TestFailure(f"timed out after {timeout:.0f} s waiting for {what}\n{detail}")
        time.sleep(interval)


class Home:
    def __init__(self, cluster, name, path, address):
        self.cluster = cluster
        self.name = name
        self.path = path
        self.address = address
        self.fingerprint = None

    def file(self, name):
        return os.path.join(self.path, name)


class Node:
    """One posternd process on one home."""

    def __init__(self, cluster, home, seeds, extra):
        self.cluster = cluster
        self.home = home
        self.seeds = list(seeds)
        self.extra = list(extra)
        self.proc = None
        self.log_path = None
        self.dht_port = None
        self.fetch_port = None
        self.returncode = None
        self.starts = 0

    @property
    def name(self):
        return self.home.name

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def argv(self):
        c = self.cluster
        args = [
            c.posternd, "--home", self.home.path, "--network", str(c.network),
            "--port", "0", "--fetch-port", "0", "--smtp-port", "0", "--advertise", "127.0.0.1",
            "--republish", "2", "--log-level", "debug" if c.debug else "info",
        ]
        for s in self.seeds:
            args += ["--seed", s.seed_addr() if isinstance(s, Node) else s]
        return args + self.extra

    def seed_addr(self):
        check(self.dht_port, f"{self.name} has no DHT port yet")
        return f"127.0.0.1:{self.dht_port}"

    def spawn(self):
        self.starts += 1
        self.log_path = os.path.join(self.cluster.tmp, f"{self.name}.{self.starts}.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.returncode = None
        self.cluster.running.append(self)

    def wait_ready(self, timeout=15):
        def ready():
            if self.proc.poll() is not None:
                raise TestFailure(
                    f"{self.name} exited with {self.proc.returncode} while starting\n"
                    + self.log_tail()
                )
            rc, st = self.cluster.status(self.home)
            if rc == 0 and st and st.get("ports", {}).get("dht"):
                return st
            return None

        st = poll(ready, timeout, f"{self.name} to answer status", self.log_tail)
        self.dht_port = st["ports"]["dht"]
        self.fetch_port = st["ports"]["fetch"]
        return st

    def wait_joined(self, timeout=15):
        def joined():
            st = self.status()
            d = st["dht"]
            return d["joined"] and (d["seeds"] == 0 or d["seeds_good"] >= 1)

        poll(joined, timeout, f"{self.name} to join through its seeds", self.log_tail)

    def status(self):
        rc, st = self.cluster.status(self.home)
        check(rc == 0 and st is not None, f"status of {self.name} failed (exit {rc})")
        return st

    def counters(self):
        return self.status().get("counters", {})

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self):
        return rss_kib(self.proc.pid)

    def stop(self, timeout=15, expect_rc=0):
        """SIGTERM, wait; SIGKILL on timeout. Checks the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._forget()
                raise TestFailure(
                    f"{self.name} did not stop within {timeout} s of SIGTERM (killed)\n"
                    + self.log_tail()
                )
        rc = self.proc.returncode
        self._forget()
        report = sanitizer_report(self.log_text())
        if report:
            raise TestFailure(f"sanitizer finding in {self.name} (posternd):\n{report}")
        if expect_rc is not None:
            check(rc == expect_rc, f"{self.name} exited with {rc}, expected {expect_rc}\n"
                  + self.log_tail())
        return rc

    def _forget(self):
        self.returncode = self.proc.returncode
        if self in self.cluster.running:
            self.cluster.running.remove(self)

    def log_tail(self, lines=LOG_TAIL_LINES):
        if not self.log_path or not os.path.exists(self.log_path):
            return f"--- {self.name}: no log ---\n"
        with open(self.log_path, "rb") as f:
            data = f.read().decode(errors="replace").splitlines()
        return f"--- {self.name} log ({self.log_path}) ---\n" + "\n".join(data[-lines:]) + "\n"

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class Cluster:
    def __init__(self, name, debug=False):
        self.name = name
        self.debug = debug or bool(os.environ.get("PST_IT_DEBUG"))
        self.posternd = binary("PST_POSTERND")
        self.postern = binary("PST_POSTERN")
        self.hostile = os.environ.get("PST_HOSTILE")
        base = tempfile.gettempdir()
        if len(base) > 40:  # control.sock paths must fit sun_path (108 bytes)
            base = "/tmp"
        self.tmp = tempfile.mkdtemp(prefix=f"pst-it-{name}-", dir=base)
        os.chmod(self.tmp, 0o700)
        net = random.SystemRandom().randrange(1 << 20, 1 << 31) | 1
        self.network = net if net != PUBLIC_NETWORK else net + 2
        self.homes = []
        self.nodes = []
        self.running = []
        self.closed = False
        atexit.register(self.close)

    # ---- homes and nodes -------------------------------------------------------

    def new_home(self, name, address=None, init=True):
        path = os.path.join(self.tmp, name)
        h = Home(self, name, path, address)
        if init:
            args = ["init", "--home", path, "--fast-kdf"]
            if address:
                args += ["--address", address]
            rc, out, err = self.cli(args)
            check(rc == 0, f"postern init for {name} failed ({rc}): {err}")
            for line in out.splitlines():
                if line.startswith("fingerprint:"):
                    h.fingerprint = line.split(":", 1)[1].strip()
            check(h.fingerprint and len(h.fingerprint) == 52,
                  f"no fingerprint in the output of init: {out!r}")
        self.homes.append(h)
        return h

    def empty_home(self, name):
        path = os.path.join(self.tmp, name)
        os.mkdir(path, 0o700)
        return Home(self, name, path, None)

    def start(self, home, seeds=(), extra=(), wait=True):
        node = Node(self, home, seeds, extra)
        node.spawn()
        self.nodes.append(node)
        if wait:
            node.wait_ready()
        return node

    def restart(self, node, timeout=15, extra=None):
        """Starts a stopped node again on the same home with the same seeds
        (and, when given, these extra flags instead of the previous ones)."""
        check(not node.alive(), f"{node.name} is still running")
        if extra is not None:
            node.extra = list(extra)
        node.spawn()
        node.wait_ready(timeout)
        return node

    def network_of(self, n, names=None, addresses=True, two_seeds=()):
        """n nodes: the first standalone, the others seeded with it (those in
        two_seeds also with the second node). Returns the nodes, joined."""
        names = names or [f"n{i + 1}" for i in range(n)]
        nodes = []
        for i, name in enumerate(names):
            home = self.new_home(name, f"{name}@it.example" if addresses else None)
            seeds = [] if i == 0 else [nodes[0]]
            if i in two_seeds and i > 1:
                seeds.append(nodes[1])
            nodes.append(self.start(home, seeds))
        for nd in nodes:
            nd.wait_joined()
        return nodes

    # ---- CLI --------------------------------------------------------------------

    def run(self, argv, timeout=CLI_TIMEOUT_S, input_bytes=None):
        try:
            p = subprocess.run(argv, capture_output=True, timeout=timeout, input=input_bytes,
                               stdin=None if input_bytes is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"{' '.join(argv)} did not finish within {timeout} s\n"
                              + self.all_log_tails())
        err = p.stderr.decode(errors="replace")
        report = sanitizer_report(err)
        if report:
            raise TestFailure(f"sanitizer finding in {' '.join(argv)}:\n{report}")
        return p.returncode, p.stdout.decode(errors="replace"), err

    def cli(self, args, timeout=CLI_TIMEOUT_S):
        return self.run([self.postern] + list(args), timeout)

    def cli_json(self, args, timeout=CLI_TIMEOUT_S):
        rc, out, err = self.cli(list(args) + ["--json"], timeout)
        try:
            doc = json.loads(out) if out.strip() else None
        except ValueError:
            raise TestFailure(f"postern {' '.join(args)} printed invalid JSON: {out!r} {err!r}")
        return rc, doc, err

    def status(self, home):
        rc, doc, err = self.cli_json(["status", "--home", home.path])
        return rc, doc

    def key_get(self, home, query, extra=()):
        """postern key get through home's node (or a one-shot). (rc, json, stderr)"""
        return self.cli_json(["key", "get", "--home", home.path, query] + list(extra))

    def key_get_oneshot(self, query, seed_node, name=None):
        """From a fresh empty home that no node runs for."""
        home = self.empty_home(name or f"oneshot-{random.randrange(1 << 30):x}")
        return self.key_get(home, query, ["--network", str(self.network),
                                          "--seed", seed_node.seed_addr()])

    def hostile_run(self, seed_node, target_home, extra=(), timeout=120):
        check(self.hostile, "PST_HOSTILE is not set")
        argv = [self.hostile, "--network", str(self.network), "--seed", seed_node.seed_addr(),
                "--target", target_home.fingerprint, "--json"] + list(extra)
        rc, out, err = self.run(argv, timeout=timeout)
        try:
            doc = json.loads(out)
        except ValueError:
            raise TestFailure(f"postern-hostile printed no JSON (exit {rc}): {out!r} {err!r}")
        return rc, doc, err

    # ---- waiting ----------------------------------------------------------------

    def all_log_tails(self):
        return "".join(n.log_tail() for n in self.nodes)

    def wait_key(self, observer, home, want_rc=EX_OK, query=None, timeout=20, pred=None):
        """Polls `key get` on observer's home until it exits want_rc (and pred
        holds on the JSON). Returns (json, attempts)."""
        query = query or home.fingerprint
        attempts = [0]
        last = [None]

        def once():
            attempts[0] += 1
            rc, doc, err = self.key_get(observer.home, query)
            last[0] = (rc, doc, err)
            if rc == want_rc and doc is not None and (pred is None or pred(doc)):
                return doc
            return None

        def detail():
            return (f"last answer of {observer.name}: exit {last[0][0]} {last[0][1]} "
                    f"{last[0][2]}\n" + self.all_log_tails())

        doc = poll(once, timeout, f"{observer.name}: key get {query} -> exit {want_rc}", detail)
        return doc, attempts[0]

    # ---- teardown ---------------------------------------------------------------

    def close(self, keep_logs=False):
        if self.closed:
            return
        self.closed = True
        for n in list(self.running):
            try:
                if n.proc.poll() is None:
                    n.proc.send_signal(signal.SIGTERM)
                    try:
                        n.proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        n.proc.kill()
                        n.proc.wait()
            except Exception:
                pass
        self.running.clear()
        if not keep_logs:
            self.remove_tmp()

    def remove_tmp(self):
        if os.environ.get("PST_IT_KEEP"):
            print(f"harness: kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def main(test_fn, name):
    """Runs test_fn(cluster); exit 0 on success, 1 with a message on failure."""

    def on_term(signum, frame):
        raise SystemExit(f"{name}: killed by signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.monotonic()
    cluster = Cluster(name)
    ok = False
    try:
        test_fn(cluster)
        ok = True
    except TestFailure as e:
        print(f"FAIL {name}: {e}", file=sys.stderr)
    except Exception:
        print(f"ERROR {name}:\n{traceback.format_exc()}", file=sys.stderr)
        print(cluster.all_log_tails(), file=sys.stderr)
    finally:
        cluster.close(keep_logs=True)
    for n in cluster.nodes:
        report = sanitizer_report(n.log_text()) if n.log_path else None
        if report:
            ok = False
            print(f"FAIL {name}: sanitizer finding in {n.name} (posternd):\n{report}",
                  file=sys.stderr)
    cluster.remove_tmp()
    dt = time.monotonic() - t0
    print(f"{'PASS' if ok else 'FAIL'} {name} in {dt:.1f} s (network {cluster.network})")
    sys.exit(0 if ok else 1)


def note(msg):
    print(msg, flush=True)


# ---- mail (tests/integration/test_mail_*.py) ------------------------------------
# Additions for the mail tests; nothing above depends on them.

MAILDIR_SUBDIRS = ("new", "cur")


def maildir_folders(home):
    """Every Maildir folder of home: the INBOX root and each Maildir++ .NAME."""
    root = home.file("Maildir")
    out = [root] if os.path.isdir(root) else []
    try:
        for e in sorted(os.listdir(root)):
            p = os.path.join(root, e)
            if e.startswith(".") and os.path.isdir(p):
                out.append(p)
    except OSError:
        pass
    return out


def maildir_copies(home, msg_id):
    """Paths of every delivered copy of msg_id (new/ and cur/ of every folder;
    a mail client may have appended ':2,FLAGS' to the name)."""
    base = f"{msg_id}.postern"
    found = []
    for folder in maildir_folders(home):
        for sub in MAILDIR_SUBDIRS:
            d = os.path.join(folder, sub)
            try:
                names = os.listdir(d)
            except OSError:
                continue
            found += [os.path.join(d, n) for n in names if n == base or n.startswith(base + ":")]
    return sorted(found)


def maildir_all(home):
    """Every file in new/ and cur/ of every folder."""
    found = []
    for folder in maildir_folders(home):
        for sub in MAILDIR_SUBDIRS:
            d = os.path.join(folder, sub)
            try:
                found += [os.path.join(d, n) for n in os.listdir(d)]
            except OSError:
                pass
    return sorted(found)


def maildir_tmp(home):
    """(path, size) of every file in the tmp/ of every folder."""
    out = []
    for folder in maildir_folders(home):
        d = os.path.join(folder, "tmp")
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        out.append((e.path, e.stat().st_size))
                    except OSError:
                        pass
        except OSError:
            pass
    return out


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


# The recipient's node stores every line ending as LF and a NUL as U+FFFD
# (docs/MAIL.md): random bodies that must arrive byte for byte avoid both.
_NO_CR_NUL = bytes.maketrans(b"\r\x00", b"\x0e\x01")


def mail_body_bytes(data):
    """data (random bytes) with CR and NUL replaced by other bytes."""
    return data.translate(_NO_CR_NUL)


def mail_write(cluster, data, name=None):
    """Writes data (bytes) into a file under the cluster's temp dir."""
    d = os.path.join(cluster.tmp, "msgs")
    os.makedirs(d, mode=0o700, exist_ok=True)
    path = os.path.join(d, name or f"m{random.randrange(1 << 40):x}.eml")
    with open(path, "wb") as f:
        f.write(data)
    return path


def mail_send(cluster, home, to=(), cc=(), bcc=(), path=None, subject=None, body=None,
              extra=(), timeout=120, expect_rc=0):
    """postern send --json from home; returns (rc, json, stderr) and checks
    the exit code when expect_rc is not None."""
    args = ["send", "--home", home.path]
    for flag, rs in (("--to", to), ("--cc", cc), ("--bcc", bcc)):
        for r in rs:
            args += [flag, r]
    if subject is not None:
        args += ["--subject", subject]
    if body is not None:
        args += ["--body", body]
    args += list(extra)
    if path is not None:
        args.append(path)
    rc, doc, err = cluster.cli_json(args, timeout=timeout)
    if expect_rc is not None:
        check(rc == expect_rc and (rc != 0 or doc is not None),
              f"postern send from {home.name} exited {rc} (expected {expect_rc}): {doc} {err}")
    return rc, doc, err


def mail_outbox(cluster, home, msg_id=None, limit=None):
    args = ["outbox", "--home", home.path]
    if msg_id:
        args.append(msg_id)
    if limit:
        args += ["--limit", str(limit)]
    rc, doc, err = cluster.cli_json(args)
    check(rc == 0 and doc is not None, f"postern outbox on {home.name} failed ({rc}): {err}")
    return doc


def mail_inbox(cluster, home, folder=None, limit=None):
    args = ["inbox", "--home", home.path]
    if folder:
        args += ["--folder", folder]
    if limit:
        args += ["--limit", str(limit)]
    rc, doc, err = cluster.cli_json(args)
    check(rc == 0 and doc is not None, f"postern inbox on {home.name} failed ({rc}): {err}")
    return doc


def outbox_recipient(doc, msg_id, fingerprint):
    for m in doc.get("messages", []):
        if m["message_id"] == msg_id:
            for r in m["recipients"]:
                if r["fingerprint"] == fingerprint:
                    return m, r
    return None, None


def wait_receipt(cluster, sender, msg_id, recipient, timeout=30):
    """Polls the sender's outbox until recipient's state is 'fetched' with a
    verified receipt; returns (message, recipient entry)."""
    last = [None]

    def once():
        doc = mail_outbox(cluster, sender.home, msg_id)
        m, r = outbox_recipient(doc, msg_id, recipient.home.fingerprint)
        last[0] = r
        if r and r["state"] == "fetched" and r.get("receipt", {}).get("verified") is True:
            return m, r
        return None

    return poll(once, timeout, f"{sender.name}'s receipt from {recipient.name} for {msg_id[:8]}",
                lambda: f"last outbox entry: {last[0]}\n" + cluster.all_log_tails(), interval=0.1)


def wait_delivered(cluster, node, msg_id, timeout=30):
    """Polls node's Maildir until msg_id is there; returns the copies' paths."""
    return poll(lambda: maildir_copies(node.home, msg_id), timeout,
                f"{msg_id[:8]} in {node.name}'s Maildir", cluster.all_log_tails, interval=0.05)


def wait_counter(node, name, at_least, timeout=30, prefix=False):
    """Polls node's counters until name (or, with prefix, the sum of every
    counter starting with name) reaches at_least; returns the counters."""
    last = [None]

    def once():
        k = node.counters()
        last[0] = k
        v = sum(x for n, x in k.items() if n.startswith(name)) if prefix else k.get(name, 0)
        return k if v >= at_least else None
    return poll(once, timeout, f"{node.name}: counter {name} >= {at_least}",
                lambda: f"{node.name}'s counters: {last[0]}\n" + node.log_tail(), interval=0.1)


def kill9(node):
    """SIGKILL, reap, forget. The node may be started again with restart()."""
    if node.proc is not None and node.proc.poll() is None:
        node.proc.kill()
        node.proc.wait()
    node._forget()


class RssSampler:
    """Samples VmRSS of processes (by Node) every interval seconds in a thread;
    peak() and samples per node name. Use as a context manager."""

    def __init__(self, nodes, interval=0.05):
        self.nodes = list(nodes)
        self.interval = interval
        self.samples = {n.name: [] for n in self.nodes}
        self._stop = None
        self._th = None

    def __enter__(self):
        import threading
        self._stop = threading.Event()

        def run():
            while not self._stop.is_set():
                for n in self.nodes:
                    pid = n.pid
                    r = rss_kib(pid) if pid else None
                    if r:
                        self.samples[n.name].append(r)
                self._stop.wait(self.interval)

        self._th = threading.Thread(target=run, daemon=True)
        self._th.start()
        return self

    def wait_next_sample(self, timeout=5.0):
        """Waits (bounded) until every node has one more sample than now."""
        before = {k: len(v) for k, v in self.samples.items()}
        poll(lambda: all(len(self.samples[k]) > n for k, n in before.items()), timeout,
             "one more RSS sample", interval=self.interval / 5)

    def __exit__(self, *exc):
        self._stop.set()
        self._th.join()
        return False

    def peak(self, node):
        s = self.samples[node.name]
        return max(s) if s else None


def cli_raw(cluster, args, timeout=CLI_TIMEOUT_S):
    """postern ARGS with stdout as bytes: (rc, stdout bytes, stderr text)."""
    argv = [cluster.postern] + list(args)
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"{' '.join(argv)} did not finish within {timeout} s")
    err = p.stderr.decode(errors="replace")
    report = sanitizer_report(err)
    if report:
        raise TestFailure(f"sanitizer finding in {' '.join(argv)}:\n{report}")
    return p.returncode, p.stdout, err


def wait_mail_ready(cluster, senders, recipients, by_address=False):
    """Every sender resolves every recipient's key (and address) as valid."""
    for s in senders:
        for r in recipients:
            if s is r:
                continue
            cluster.wait_key(s, r.home, pred=lambda d: d.get("status") == "valid")
            if by_address and r.home.address:
                cluster.wait_key(s, r.home, query=r.home.address,
                                 pred=lambda d: any(k.get("status") == "valid"
                                                    for k in d.get("keys", [])))


def trust(cluster, node, other, tier="trusted"):
    """node's owner puts other's key in its contacts (postern trust set)."""
    rc, out, err = cluster.cli(["trust", "set", other.home.fingerprint, tier, "--home",
                                node.home.path])
    check(rc == 0, f"postern trust set on {node.name} failed ({rc}): {err}")


def mail_pair(cluster, extra_a=(), extra_b=(), trusted=True):
    """A seed and two nodes a (a@it.example) and b (b@it.example) that can
    mail each other: both joined, a resolves b's key, and (trusted) b trusts
    a so a's mail goes to b's INBOX. Returns (seed, a, b)."""
    seed = cluster.start(cluster.new_home("seed"), [])
    a = cluster.start(cluster.new_home("a", "a@it.example"), [seed], extra=list(extra_a))
    b = cluster.start(cluster.new_home("b", "b@it.example"), [seed], extra=list(extra_b))
    for n in (seed, a, b):
        n.wait_joined()
    wait_mail_ready(cluster, [a], [b])
    if trusted:
        trust(cluster, b, a)
    return seed, a, b


def check_all_logs(cluster):
    """Fails on a sanitizer report in any node log of the cluster, earlier
    starts (and nodes killed with SIGKILL) included; main() reads only the
    last log of each node."""
    import glob
    for path in sorted(glob.glob(os.path.join(cluster.tmp, "*.log"))):
        with open(path, "rb") as f:
            report = sanitizer_report(f.read().decode(errors="replace"))
        check(report is None, f"sanitizer finding in {os.path.basename(path)}:\n{report}")


def stop_nodes(nodes):
    """Stops nodes in the order given; each stop checks a clean exit."""
    for n in nodes:
        n.stop()


def stop_all(cluster, nodes):
    """The end of a mail test: stop_nodes, then check_all_logs."""
    stop_nodes(nodes)
    check_all_logs(cluster)


def wait_notified(cluster, sender, msg_id, recipient, timeout=20):
    """Polls until sender's outbox shows its notification of msg_id to
    recipient confirmed (notify_count >= 1)."""
    def notified():
        m = mail_outbox(cluster, sender.home, msg_id)
        r = outbox_recipient(m, msg_id, recipient.home.fingerprint)[1] or {}
        return r.get("notify_count", 0) >= 1
    poll(notified, timeout, f"{sender.name}'s notification to be confirmed", sender.log_tail,
         interval=0.1)


def check_delivered_once(cluster, node, msg_ids):
    """Each of msg_ids is in node's Maildir exactly once and node's inbox
    shows exactly those delivered, none pending or failed."""
    for mid in msg_ids:
        check(len(maildir_copies(node.home, mid)) == 1, f"copies of {mid[:8]}")
    doc = mail_inbox(cluster, node.home)
    check(doc["delivered"] == len(msg_ids) and doc["pending"] == 0 and doc["failed"] == 0,
          f"inbox {doc}")


def republish(cluster, node, extra):
    """Restarts node with extra flags that change its key record (other
    --pow-bits), so that it publishes the next seq; returns `postern id`'s
    document. Its old record stays genuine and inside its validity window."""
    node.stop()
    cluster.restart(node, extra=extra)
    node.wait_joined()
    rc, ident, _ = cluster.cli_json(["id", "--home", node.home.path])
    check(rc == EX_OK, f"{node.name}'s id after a restart: exit {rc}")
    return ident


def hostile_summary(proc):
    """The next line of a running postern-hostile (a subprocess.Popen with
    stdout and stderr piped) as its JSON summary; if it is not one, kills
    the process and fails with the line and its stderr."""
    line = proc.stdout.readline()
    try:
        return json.loads(line)
    except ValueError:
        proc.kill()
        raise TestFailure(f"postern-hostile printed no summary: {line!r} "
                          f"{proc.stderr.read()!r}")


RSS_GROWTH_MAX_KIB = 64 * 1024
RSS_GROWTH_MAX_ASAN_KIB = 1024 * 1024  # ASan's quarantine alone is 256 MiB


def check_rss_growth(cluster, node, sampler, rss0, limit_kib=RSS_GROWTH_MAX_KIB,
                     asan_limit_kib=RSS_GROWTH_MAX_ASAN_KIB):
    """node's peak RSS while sampler ran (or rss0) may exceed rss0 by at most
    limit_kib, or asan_limit_kib under a sanitizer."""
    peak = max(sampler.samples[node.name] + [rss0])
    note(f"{node.name}'s RSS: {rss0} KiB before, peak {peak} KiB, {node.rss_kib()} KiB after")
    limit = asan_limit_kib if is_sanitized(cluster.posternd) else limit_kib
    check(peak - rss0 <= limit,
          f"{node.name}'s RSS grew by {peak - rss0} KiB (limit {limit} KiB)")


FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1",
                 "/usr/local/lib/faketime/libfaketime.so.1")


def faketime_lib():
    for p in FAKETIME_LIBS:
        if os.path.exists(p):
            return p
    raise TestFailure("libfaketime is not installed (Debian package faketime)")


def with_faketime(node, offset):
    """From node's next spawn on, its wall clock is moved by offset ("+3d",
    libfaketime; the monotonic clock is not), through env(1) so that the
    process the harness signals is posternd itself."""
    plain = node.argv
    env = ["env", f"LD_PRELOAD={faketime_lib()}", f"FAKETIME={offset}",
           "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_NO_CACHE=1",
           "ASAN_OPTIONS=" + os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"]
    node.argv = lambda: env + plain()


# ---- faults (tests/integration/test_mail_diskfull.py) ---------------------------
# Additive helpers for disk-full tests; nothing above depends on them.

def mount_tmpfs(path, size_bytes):
    """Mounts a tmpfs of size_bytes at path (created 0700). Needs root, or a
    user+mount namespace (unshare -rm). Raises TestFailure with the reason."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700",
                        "tmpfs", path], capture_output=True, text=True)
    check(p.returncode == 0, f"cannot mount a tmpfs at {path} (exit {p.returncode}): "
          f"{p.stderr.strip()}")


def umount(path):
    """Unmounts path; lazily if it is busy. Returns True when it is gone."""
    if subprocess.run(["umount", path], capture_output=True).returncode == 0:
        return True
    return subprocess.run(["umount", "-l", path], capture_output=True).returncode == 0


def fs_free(path):
    """Bytes free for an unprivileged writer on path's filesystem."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill_fs(path, name="filler", leave=0):
    """Fills path's filesystem with the file path/name until ENOSPC, then
    shrinks it so that about `leave` bytes are free again. Returns the
    filler's path."""
    import errno
    filler = os.path.join(path, name)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for step in (1 << 20, 4096, 1):
            buf = b"\0" * step
            while True:
                try:
                    if os.write(fd, buf) < step:
                        break
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
        if leave:
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
        os.fsync(fd)
    finally:
        os.close(fd)
    return filler


def sqlite_integrity(db_path):
    """PRAGMA integrity_check of an SQLite file, opened read-only (the node
    may keep running): the result rows joined, 'ok' when sound."""
    import sqlite3
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()
    return "; ".join(str(r[0]) for r in rows)
