#!/usr/bin/env python3
"""The systemd units of posternd are valid and match how posternd stops
(issue 12, "Run as a service").

1. `systemd-analyze verify` accepts the system unit and the user unit as
   built (ExecStart pointed at the built posternd, since nothing is
   installed here) and prints nothing: an unknown key or a bad value is
   only a warning for systemd, so any output fails the test.
2. `systemd-analyze security --offline` rates the system unit's exposure at
   most MAX_EXPOSURE (the hardening is in place).
3. A real posternd, sent SIGTERM as systemd does (KillSignal=), exits 0 and
   logs "stopped" well within the unit's TimeoutStopSec.

Without systemd-analyze (no systemd package) it exits 77 with the reason;
systemd need not run as PID 1 for any of this.

    test_units.py BUILD_DIR"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

MAX_EXPOSURE = 2.0
UNITS = {"system": "posternd.service", "user": "posternd-user.service"}
HARDENING = ["NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectSystem=strict",
             "ProtectHome=", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
             "LockPersonality=yes", "MemoryDenyWriteExecute=yes",
             "SystemCallFilter=@system-service", "UMask=0077"]


def unit_value(text, key):
    m = re.search(r"^" + key + r"=(.*)$", text, re.M)
    return m.group(1).strip() if m else None


def seconds(value):
    m = re.fullmatch(r"(\d+)(s|min)?", value)
    check(m is not None, f"TimeoutStopSec={value}: not a plain number of seconds")
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def verify(analyze, build, tmp):
    posternd = os.environ.get("PST_POSTERND") or os.path.join(build, "node", "posternd")
    texts = {}
    for kind, name in UNITS.items():
        text = open(os.path.join(build, "dist", name)).read()
        for want in HARDENING:
            check(want in text, f"{name}: '{want}' is missing")
        exec_start = unit_value(text, "ExecStart")
        check(exec_start and exec_start.split()[0].endswith("/posternd"),
              f"{name}: ExecStart={exec_start} does not run posternd")
        texts[kind] = text
        # same name for both, as installed; each in a folder of its own
        d = os.path.join(tmp, kind)
        os.makedirs(d)
        path = os.path.join(d, "posternd.service")
        with open(path, "w") as f:
            f.write(text.replace(exec_start.split()[0], posternd, 1))
        env = dict(os.environ)
        argv = [analyze, "verify", "--man=no", path]
        if kind == "user":
            runtime = os.path.join(tmp, "runtime")
            os.makedirs(runtime, mode=0o700, exist_ok=True)
            env["XDG_RUNTIME_DIR"] = runtime  # the user manager wants one
            argv.insert(1, "--user")
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        out = (p.stdout + p.stderr).strip()
        check(p.returncode == 0 and not out,
              f"systemd-analyze verify {name} (exit {p.returncode}):\n{out}")
        note(f"1. {name} ({kind}): verify clean")
    sysunit = os.path.join(tmp, "system", "posternd.service")
    p = subprocess.run([analyze, "security", "--offline=true", "--no-pager", sysunit],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout + p.stderr)
    check(m is not None, f"systemd-analyze security gave no rating:\n{p.stdout}{p.stderr}")
    check(float(m.group(1)) <= MAX_EXPOSURE,
          f"exposure {m.group(1)} > {MAX_EXPOSURE}:\n{p.stdout}")
    note(f"2. system unit exposure {m.group(1)} (at most {MAX_EXPOSURE})")
    return texts


def test(c, analyze, build):
    with tempfile.TemporaryDirectory(prefix="pst-units-") as tmp:
        texts = verify(analyze, build, tmp)
    for kind, text in texts.items():
        check(unit_value(text, "KillSignal") == "SIGTERM",
              f"{UNITS[kind]}: KillSignal is not SIGTERM, the signal posternd stops on")
    timeout = min(seconds(unit_value(t, "TimeoutStopSec")) for t in texts.values())
    home = c.new_home("a", "a@it.example")
    node = c.start(home)
    t0 = time.monotonic()
    node.stop(timeout=timeout / 2)  # SIGTERM; checks exit 0
    dt = time.monotonic() - t0
    check("stopped" in node.log_text(), "posternd did not log 'stopped' after SIGTERM")
    note(f"3. SIGTERM: exit 0 in {dt:.2f} s (TimeoutStopSec={timeout}s)")


def main():
    build = os.path.abspath(sys.argv[1])
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("SKIP systemd_units: systemd-analyze is not installed (Debian package systemd)")
        sys.exit(77)
    harness.main(lambda c: test(c, analyze, build), "systemd_units")


if __name__ == "__main__":
    main()
