#!/usr/bin/env python3
"""The README is a newcomer's map (issue 12): its Layout table names every
top-level folder of the source tree and it links every page of docs/.

    test_readme.py SOURCE_DIR"""

import os
import re
import subprocess
import sys


def main():
    src = os.path.abspath(sys.argv[1])
    readme = open(os.path.join(src, "README.md"), encoding="utf-8").read()
    m = re.search(r"^## Layout\n(.*?)(?=^## )", readme, re.M | re.S)
    if m is None:
        print("FAIL readme: no '## Layout' section", file=sys.stderr)
        sys.exit(1)
    listed = set(re.findall(r"^\| `([^`]+)/` \|", m.group(1), re.M))
    # the folders git tracks (a build directory is not part of the tree)
    try:
        p = subprocess.run(["git", "-C", src, "ls-files"], capture_output=True, text=True)
    except FileNotFoundError:  # no git on this machine (a minimal root)
        p = None
    if p is not None and p.returncode == 0 and p.stdout:
        folders = {f.split("/")[0] for f in p.stdout.splitlines() if "/" in f}
    else:  # not a git checkout (a release tarball): every folder but builds
        folders = {d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))
                   and d != ".git"
                   and not os.path.exists(os.path.join(src, d, "meson-private"))}
    problems = [f"folder {d}/ is not in the Layout table" for d in sorted(folders - listed)]
    problems += [f"the Layout table lists {d}/, which does not exist"
                 for d in sorted(listed - folders)]
    for doc in sorted(os.listdir(os.path.join(src, "docs"))):
        if doc.endswith(".md") and f"(docs/{doc})" not in readme:
            problems.append(f"docs/{doc} is not linked from the README")
    if problems:
        print("FAIL readme: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)
    print(f"PASS readme: {len(folders)} folders in the Layout table, every docs/*.md linked")


if __name__ == "__main__":
    main()
