#!/usr/bin/env python3
"""A check that cannot run on this machine says so instead of failing
(issue 12, "A newcomer's first hour"): integration_mail_diskfull needs a
mount namespace with a tmpfs, which a container or a chroot refuses. Run
here with a stand-in `unshare` that fails as it does in a container
("unshare failed: Operation not permitted"), the test must exit 77 (SKIP)
at once, its last line naming the reason, and leave no mount behind."""

import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_S = 30


def main():
    with tempfile.TemporaryDirectory(prefix="pst-env-skip-") as tmp:
        fake = os.path.join(tmp, "unshare")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\n"
                    "exit 1\n")
        os.chmod(fake, 0o755)
        env = dict(os.environ, PATH=tmp + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"))
        env.pop("PST_DISKFULL_IN_NAMESPACE", None)
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, os.path.join(HERE, "test_mail_diskfull.py")],
                           env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        dt = time.monotonic() - t0
    lines = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    last = lines[-1] if lines else ""
    problems = []
    if p.returncode != 77:
        problems.append(f"exit {p.returncode}, want 77 (SKIP)")
    if not last.startswith("SKIP mail_diskfull: ") or "Operation not permitted" not in last:
        problems.append(f"last line {last!r} does not give the reason")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines of output, want one")
    if problems:
        print(f"FAIL env_skip: {'; '.join(problems)}\n--- output:\n{p.stdout}{p.stderr}",
              file=sys.stderr)
        sys.exit(1)
    print(f"PASS env_skip in {dt:.1f} s: {last}")


if __name__ == "__main__":
    main()
