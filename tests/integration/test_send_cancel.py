#!/usr/bin/env python3
"""send's long call through the one control client (docs/cli/send.md): while
the node mints a stamp the CLI draws the progress line (POSTERN_PROGRESS=1);
Ctrl-C cancels, the node confirms and nothing is stored (exit 1); a node
that dies mid-send leaves the CLI saying the message may or may not be in
the outbox (exit 1); with no node the CLI says to start one (exit 1)."""

import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_FAIL, check, note  # noqa: E402

# the most Postern mints (PST_HASHCASH_MINT_BITS_MAX): hours of minting, so
# the test always acts long before a stamp (at 32 bits a lucky stamp within
# the first second or two, about 1 in 1000 under ASan, ended the send before
# its progress frames and left the test waiting 60 s for them)
POW_BITS = 40


def start_send(c, a, b, errf):
    env = dict(os.environ, POSTERN_PROGRESS="1")
    with open(errf, "wb") as ef:
        p = subprocess.Popen([c.postern, "send", "--home", a.home.path, "--to",
                              b.home.fingerprint, "--subject", "s", "--body", "x"],
                             stdout=subprocess.PIPE, stderr=ef, stdin=subprocess.DEVNULL, env=env)
    frame = f"\rminting a {POW_BITS}-bit stamp for ".encode()

    def drawn():
        if read(errf).count(frame) >= 2:
            return True
        # a send that ended before its frames fails now, saying how, rather
        # than after the poll's whole deadline with nothing to go on
        if p.poll() is not None:
            check(False, f"send ended before two progress lines: exit {p.returncode}, stdout "
                  f"{p.stdout.read()!r}, stderr {read(errf)[-600:]!r}\n{c.all_log_tails()}")
        return False

    def on_timeout():
        p.kill()
        return f"send's stderr: {read(errf)[-600:]!r}\n{c.all_log_tails()}"

    # two frames drawn: the CLI is in its wait loop with progress arriving
    harness.poll(drawn, 60, "two progress lines of send", on_timeout=on_timeout)
    last = read(errf).split(b"\r")
    note(f"progress: {last[-1][:120]!r}")
    return p


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test(c):
    a = c.start(c.new_home("a", "a@it.example"))
    b = c.start(c.new_home("b", "b@it.example"), seeds=[a], extra=["--pow-bits", str(POW_BITS)])
    for nd in (a, b):
        nd.wait_joined()
    harness.wait_mail_ready(c, [a], [b])
    errf = os.path.join(c.tmp, "send.err")

    # 1. Ctrl-C while minting: the node confirms the cancel, nothing is kept
    p = start_send(c, a, b, errf)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    err = read(errf)
    note(f"cancelled: rc {p.returncode}, stderr ends {err[-120:]!r}")
    check(p.returncode == EX_FAIL, f"send after Ctrl-C exited {p.returncode}, not 1: {err!r}")
    check(err.endswith(b"\rpostern: cancelled: the message was not sent\n"),
          f"no erased progress line and cancel message: {err[-200:]!r}")
    check(out == b"", f"a cancelled send printed a message id: {out!r}")
    rc, listing, e = c.cli(["outbox", "--home", a.home.path])
    check(rc == 0 and "(the outbox is empty)" in listing,
          f"a cancelled send left something in the outbox ({rc}): {listing} {e}")

    # 2. the node dies mid-send: whether it was stored is unknown, and said so
    p = start_send(c, a, b, errf)
    a.proc.kill()
    a.proc.wait()
    out, _ = p.communicate(timeout=30)
    err = read(errf)
    check(p.returncode == EX_FAIL, f"send to a dead node exited {p.returncode}, not 1: {err!r}")
    check(f"postern: the node at {a.home.path} did not answer: the message may or may not be "
          "in the outbox (check 'postern outbox' before sending again)\n".encode() in err,
          f"no 'did not answer' message: {err[-300:]!r}")

    # 3. no node at all
    rc, _, e = c.cli(["send", "--home", a.home.path, "--to", b.home.fingerprint,
                      "--subject", "s"])
    check(rc == EX_FAIL and f"no node is running for {a.home.path}" in e,
          f"send without a node exited {rc}: {e!r}")


harness.main(test, "send_cancel")
