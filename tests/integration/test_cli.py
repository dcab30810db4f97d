#!/usr/bin/env python3
"""The command line and the node's local surface: --help everywhere, usage
errors (64), commands that need a node say so, init never overwrites an
identity, unsafe key permissions stop posternd, the control socket and the
home are private, and garbage on the control socket does not hurt the node."""

import hashlib
import os
import socket
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_FAIL, EX_OK, EX_USAGE, check, mode_of, note  # noqa: E402

HELP = [
    ["--help"], ["init", "--help"], ["id", "--help"], ["status", "--help"], ["key", "--help"],
    ["key", "get", "--help"], ["key", "revoke", "--help"], ["pow", "--help"],
]
BAD = [
    ["--bogus"], ["frobnicate"], ["init", "--bogus"], ["init", "--home"], ["id", "--bogus"],
    ["status", "--bogus"], ["status", "extra-arg"], ["key"], ["key", "frob"],
    ["key", "get", "--bogus", "x"], ["key", "get"], ["key", "revoke", "--bogus"],
    ["key", "revoke", "--code", "nonsense"], ["pow", "--bogus"],
]
POSTERND_BAD = [["--bogus"], ["--port", "99999"], ["--network", "x"], ["--log-level", "loud"],
                ["--republish", "-1"], ["extra-arg"]]


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def ctrl_exchange(path, payload, timeout=5.0):
    """Sends payload on the control socket; returns what the node sends back
    before closing (or before timeout)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    got = b""
    try:
        s.sendall(payload)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break  # closed by the node
            got += chunk
            if len(got) >= 4 and len(got) >= 4 + struct.unpack(">I", got[:4])[0]:
                break  # one whole frame
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    return got


def test(c):
    # --help: exit 0, usage on stdout
    for args in HELP:
        rc, out, err = c.cli(args)
        check(rc == EX_OK and "usage" in out.lower(), f"postern {' '.join(args)}: {rc} {out!r}")
    for prog in (c.posternd, c.hostile):
        if prog:
            rc, out, err = c.run([prog, "--help"])
            check(rc == EX_OK and "usage" in out.lower(), f"{prog} --help: {rc}")
    # bad flags and arguments: 64
    empty = c.empty_home("nothing")
    for args in BAD:
        rc, out, err = c.cli(args + (["--home", empty.path] if args[0] in ("id", "status") else []))
        check(rc == EX_USAGE, f"postern {' '.join(args)}: exit {rc}, expected 64 ({err!r})")
    for args in POSTERND_BAD:
        rc, out, err = c.run([c.posternd, "--home", empty.path] + args)
        check(rc == EX_USAGE, f"posternd {' '.join(args)}: exit {rc}, expected 64 ({err!r})")
    if c.hostile:
        for args in (["--bogus"], ["--network", "7", "--seed", "192.0.2.1:4222",
                                   "--target", harness.random_fingerprint()]):
            rc, out, err = c.run([c.hostile] + args)
            check(rc == EX_USAGE, f"postern-hostile {args}: exit {rc}")

    # status with no node: exit 1 and say to start posternd; id in a home
    # without identity: exit 1 and say to run init
    rc, out, err = c.cli(["status", "--home", empty.path])
    check(rc == EX_FAIL and "posternd" in err, f"status with no node: {rc} {err!r}")
    rc, out, err = c.cli(["id", "--home", empty.path])
    check(rc == EX_FAIL and "postern init" in err, f"id without identity: {rc} {err!r}")
    # posternd without an identity: exit 1, says to run init
    rc, out, err = c.run([c.posternd, "--home", empty.path, "--network", str(c.network)],
                         timeout=15)
    check(rc == EX_FAIL and "postern init" in err, f"posternd without identity: {rc} {err!r}")

    # init twice: the second fails and leaves the first identity alone
    h = c.new_home("a", "a@it.example")
    # id right after init, no node running: read from the home itself
    rc, doc, err = c.cli_json(["id", "--home", h.path])
    check(rc == EX_OK and doc and doc["fingerprint"] == h.fingerprint and
          doc["addresses"] == ["a@it.example"] and doc["node_running"] is False and
          doc["published"] is False, f"id with no node after init: {rc} {doc} {err!r}")
    check(mode_of(h.path) == 0o700, f"home mode {oct(mode_of(h.path))}")
    for f in ("identity.key", "revocation.key", "revocation.cert"):
        check(mode_of(h.file(f)) == 0o600, f"{f} mode {oct(mode_of(h.file(f)))}")
    before = {f: sha(h.file(f)) for f in ("identity.key", "revocation.key", "revocation.cert")}
    rc, out, err = c.cli(["init", "--home", h.path, "--fast-kdf", "--address", "other@x.example"])
    check(rc == 73 and "nothing was changed" in err, f"second init: exit {rc} {err!r}")
    after = {f: sha(h.file(f)) for f in before}
    check(before == after, "the second init changed the identity files")

    # a secret key readable by others: posternd refuses, names the fix
    os.chmod(h.file("identity.key"), 0o644)
    rc, out, err = c.run([c.posternd, "--home", h.path, "--network", str(c.network),
                          "--port", "0", "--fetch-port", "0"], timeout=15)
    check(rc == EX_FAIL and "chmod 600" in err, f"posternd with a 0644 key: {rc} {err!r}")
    check(not os.path.exists(h.file("control.sock")), "a refused node left a control socket")
    os.chmod(h.file("identity.key"), 0o600)

    # now it starts; its socket is 0600 in a 0700 home
    a = c.start(h)
    sock = h.file("control.sock")
    check(stat.S_ISSOCK(os.stat(sock).st_mode), "control.sock is not a socket")
    check(mode_of(sock) == 0o600, f"control.sock mode {oct(mode_of(sock))}")
    check(mode_of(h.path) == 0o700, f"home mode {oct(mode_of(h.path))} while running")
    # a DHT port that is taken: exit 1, says what to do
    other = c.new_home("b")
    rc, out, err = c.run([c.posternd, "--home", other.path, "--network", str(c.network),
                          "--port", str(a.dht_port), "--fetch-port", "0"], timeout=15)
    check(rc == EX_FAIL and "--port" in err, f"posternd on a taken port: {rc} {err!r}")
    # unknown settings in postern.conf: usage error naming the file and line
    # (an unknown section with no setting in it is not noticed: inih calls
    # back per setting only; reported to the lead)
    for conf, where in (("[node]\nport = 0\nbogus = 1\n", "postern.conf:3"),
                        ("[weird]\nport = 0\n", "[weird]")):
        with open(other.file("postern.conf"), "w") as f:
            f.write(conf)
        rc, out, err = c.run([c.posternd, "--home", other.path, "--network", str(c.network)],
                             timeout=15)
        check(rc == EX_USAGE and where in err, f"bad postern.conf: {rc} {err!r}")
    os.unlink(other.file("postern.conf"))
    # a second node on the same home is refused
    rc, out, err = c.run([c.posternd, "--home", h.path, "--network", str(c.network),
                          "--port", "0", "--fetch-port", "0"], timeout=15)
    check(rc == EX_FAIL and "another posternd" in err, f"second posternd: {rc} {err!r}")
    check(a.alive(), "the first node died when a second one was started")

    # garbage on the control socket: an error reply or a close, never a crash
    cases = {
        "text": b"hello, node\n",
        "zero length": b"\x00\x00\x00\x00",
        "huge length": b"\xff\xff\xff\xff" + b"x" * 64,
        "bad msgpack": struct.pack(">I", 5) + b"\xc1\xc1\xc1\xc1\xc1",
        "random frame": struct.pack(">I", 300) + os.urandom(300),
        "half frame": struct.pack(">I", 100) + b"\x93",
        "random bytes": os.urandom(70000),
    }
    for name, payload in cases.items():
        got = ctrl_exchange(sock, payload, timeout=3.0 if name == "half frame" else 5.0)
        if len(got) >= 4:
            n = struct.unpack(">I", got[:4])[0]
            check(n == len(got) - 4 and n < 4096, f"{name}: odd reply of {len(got)} bytes")
        rc, st = c.status(h)
        check(rc == EX_OK and a.alive(), f"the node stopped answering after {name}\n"
              + a.log_tail())
        note(f"control garbage '{name}': {'error reply' if got else 'closed'}")
    bad = a.counters().get("rejected.control.bad_frame", 0)
    check(bad >= 4, f"rejected.control.bad_frame = {bad}")
    # many idle connections at once, then released: the node still answers
    conns = []
    for _ in range(40):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        conns.append(s)
    for s in conns:
        s.close()
    harness.poll(lambda: c.status(h)[0] == EX_OK, 10, "status after 40 connections",
                 a.log_tail)
    a.stop()
    check(not os.path.exists(sock), "control.sock left behind after a clean stop")

    # slow requests: a node whose only seed is dead waits for every lookup
    dead = f"127.0.0.1:{a.dht_port}"  # a's port, now closed
    lone = c.start(c.new_home("lone", "lone@it.example"), [dead])

    def requests():
        return lone.counters().get("control.requests", 0)

    def lookup_arrived(base):
        # every status poll counts itself in control.requests: discount them
        polls = [0]

        def arrived():
            polls[0] += 1
            return requests() - base - polls[0] >= 1
        harness.poll(arrived, 10, "lone to receive the lookup", lone.log_tail)
    # a client that goes away in the middle of a lookup
    base = requests()
    p = subprocess.Popen([c.postern, "key", "get", "--home", lone.home.path,
                          harness.random_fingerprint()],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lookup_arrived(base)
    check(p.poll() is None, "the lookup ended before the client could go away")
    p.kill()
    p.wait()
    rc, st = c.status(lone.home)
    check(rc == EX_OK, "lone stopped answering after a client left mid-lookup")
    # SIGTERM while a lookup is in flight: the client is told, the node exits 0
    base = requests()
    p = subprocess.Popen([c.postern, "key", "get", "--home", lone.home.path,
                          harness.random_fingerprint()],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lookup_arrived(base)
    t0 = time.monotonic()
    lone.stop(timeout=10)
    err = p.communicate(timeout=10)[1].decode(errors="replace")
    check(p.returncode == 69 and "closed the control connection" in err,
          f"client of a stopped node: {p.returncode} {err!r}")
    note(f"stopped with a lookup in flight in {time.monotonic() - t0:.2f} s; client: "
         f"{err.strip()[:80]}")


if __name__ == "__main__":
    harness.main(test, "cli")
