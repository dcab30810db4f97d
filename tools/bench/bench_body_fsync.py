#!/usr/bin/env python3
"""What it costs to make one outbox body durable, by size (issue 14, third
round: the threshold for bodies in the store, docs/MAIL.md).

(a) the file way: write a tmp file, fsync it, rename it, fsync the
    directory, then commit a small row (SQLite WAL, synchronous=FULL);
(b) the store way: the body as a blob in that same commit.

The store runs SQLite the same way (WAL, synchronous=FULL, auto-checkpoint
at 1,000 pages), so (b) also pays its share of the checkpoints that copy the
bodies into the database file. Prints the median per message of each, the
best of two alternating rounds. A benchmark, run by hand:

    python3 tools/bench/bench_body_fsync.py [--dir DIR] [--n 60]

DIR must be on the disk the node's home is on (default: a temp folder)."""

import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import time

SIZES = (4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=None)
    ap.add_argument("--n", type=int, default=60, help="messages per size, way and round")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="pst-body-fsync-", dir=args.dir)
    try:
        run(d, args.n)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(d, n):
    db = sqlite3.connect(os.path.join(d, "t.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, meta BLOB)")
    db.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, body BLOB)")
    od = os.path.join(d, "outbox")
    os.mkdir(od)

    def row(body=None):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO m (meta) VALUES (?)", (b"x" * 600,))  # rows + notification
        if body is not None:
            db.execute("INSERT INTO b (body) VALUES (?)", (body,))
        db.execute("COMMIT")

    def file_way(i, data):
        tmp, final = os.path.join(od, f"tmp-{i}"), os.path.join(od, f"{i:064x}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, final)
        fd = os.open(od, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        row()
        return final

    for size in SIZES:
        data = os.urandom(size)
        best = {}
        for way in ("file", "store") * 2:
            ts = []
            for i in range(n):
                t0 = time.perf_counter()
                if way == "file":
                    path = file_way(i, data)
                else:
                    row(data)
                ts.append(time.perf_counter() - t0)
                if way == "file":
                    os.unlink(path)
                else:
                    db.execute("DELETE FROM b")
            med = statistics.median(ts) * 1000
            best[way] = min(best.get(way, med), med)
        print(f"{size >> 10:5d} KiB: file + directory + WAL {best['file']:6.2f} ms, "
              f"in the WAL commit {best['store']:6.2f} ms, ratio {best['store'] / best['file']:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
