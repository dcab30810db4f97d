#!/usr/bin/env python3
"""Turns a meson testlog.json into one PASS/FAIL line per test case.

Criterion executables run many test cases; their "Synthesis" line gives the
counts. Any other test (shell, integration) counts as one case. A test whose
process failed without a synthesis line counts as one failure. A test that
exits 77 (meson's SKIP: a check that truly cannot run on this machine, such
as one that needs a mount namespace inside a container) is counted apart as
SKIP, with the last line it printed as the reason."""
import json
import re
import sys

# A leak report is printed after Criterion has counted the test as passed and
# does not change its exit code, so sanitizer reports are read from the log.
SANITIZER = re.compile(r"ERROR: (LeakSanitizer|AddressSanitizer)|runtime error: ")
SYN = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")


def main() -> int:
    path, tag = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            name = t.get("name", "?")
            out = (t.get("stdout") or "") + (t.get("stderr") or "")
            ok = t.get("result") in ("OK", "EXPECTEDFAIL")
            if t.get("result") == "SKIP":
                lines = [l for l in out.splitlines() if l.strip()]
                reason = lines[-1].strip() if lines else "no reason given"
                print(f"SKIP {tag}:{name}: {reason}")
                continue
            if SANITIZER.search(out):
                print(f"FAIL {tag}:{name}:sanitizer-report")
            m = SYN.findall(out)
            if m:
                tested, passing, failing, crashing = map(int, m[-1])
                for i in range(passing):
                    print(f"PASS {tag}:{name}#{i}")
                for i in range(failing + crashing):
                    print(f"FAIL {tag}:{name}#f{i}")
                if not ok and failing + crashing == 0:
                    print(f"FAIL {tag}:{name}")
            else:
                print(("PASS" if ok else "FAIL") + f" {tag}:{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
