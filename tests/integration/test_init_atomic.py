#!/usr/bin/env python3
"""`postern init` is atomic (issue 17).

1. Two `postern init` started at once on the same home, 20 times: exactly one
   succeeds; the other exits 73 and leaves nothing of its own: no temporary
   files, and the home's identity (key file, store, revocation certificate)
   is the winner's, which posternd then starts with.
2. A refused init on an existing home changes no file (bytes, mtime), also
   when the revocation files were moved offline as init advises, and creates
   none.
3. An init interrupted before its commit leaves only temporary files, which
   a rerun removes; one interrupted after it is refused with the renames to
   do (docs/cli/init.md).
"""

import hashlib
import os
import subprocess

from harness import check, main, note

EXIT_REFUSED = 73
ROUNDS = 20


def snapshot(path):
    """name -> (sha256, mtime_ns, size, mode) of every file in path."""
    out = {}
    for name in sorted(os.listdir(path)):
        p = os.path.join(path, name)
        st = os.lstat(p)
        with open(p, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        out[name] = (digest, st.st_mtime_ns, st.st_size, st.st_mode)
    return out


def init_refused(cluster, home, want, what, extra=()):
    """`postern init` on home (plus extra arguments) must exit EXIT_REFUSED
    with each of want in its stderr, and change no file of home."""
    before = snapshot(home.path)
    rc, out, err = cluster.cli(["init", "--home", home.path] + list(extra))
    check(rc == EXIT_REFUSED and all(w in err for w in want), f"{what}: exit {rc}, {err!r}")
    after = snapshot(home.path)
    check(after == before, f"a refused init changed the home: {sorted(before)} -> {sorted(after)}")


def fingerprint_of(out):
    for line in out.splitlines():
        if line.startswith("fingerprint:"):
            return line.split(":", 1)[1].strip()
    return None


def race(cluster, path):
    argv = [cluster.postern, "init", "--home", path, "--address", "race@it.example"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL) for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        results.append((p.returncode, out.decode(errors="replace"), err.decode(errors="replace")))
    return results


def test(cluster):
    note(f"1. two concurrent inits, {ROUNDS} rounds")
    last = None
    for i in range(ROUNDS):
        path = os.path.join(cluster.tmp, f"race{i}")
        results = race(cluster, path)
        codes = sorted(r[0] for r in results)
        check(codes == [0, EXIT_REFUSED],
              f"round {i}: exit codes {codes}, want one 0 and one {EXIT_REFUSED}: {results}")
        win = next(r for r in results if r[0] == 0)
        lose = next(r for r in results if r[0] != 0)
        fp = fingerprint_of(win[1])
        check(fp and len(fp) == 52, f"round {i}: no fingerprint from the winner: {win}")
        check(fingerprint_of(lose[1]) is None, f"round {i}: the loser printed a fingerprint")
        check("nothing was changed" in lose[2], f"round {i}: loser's message: {lose[2]!r}")
        names = sorted(os.listdir(path))
        check(names == ["identity.key", "postern.db", "revocation.cert", "revocation.key",
                         "smtp.password"],
              f"round {i}: files {names}")
        with open(os.path.join(path, "revocation.cert"), encoding="ascii") as f:
            check(f"revokes {fp}" in f.read(), f"round {i}: revocation.cert is not the winner's")
        last = (path, fp)

    # posternd checks identity.key against the fingerprint in the store: it
    # starts only if both are the winner's
    path, fp = last
    home = cluster.empty_home("race-node")
    os.rmdir(home.path)
    os.rename(path, home.path)
    node = cluster.start(home)
    st = node.status()
    check(st["fingerprint"] == fp, f"node runs as {st['fingerprint']}, the winner was {fp}")
    node.stop()

    note("2. a refused init changes nothing")
    home = cluster.new_home("existing", "exist@it.example")
    init_refused(cluster, home, ["already has an identity"], "init on an existing home",
                 ["--address", "other@it.example"])
    # the revocation files moved offline, as init tells the user to do
    for name in ("revocation.key", "revocation.cert"):
        os.unlink(home.file(name))
    init_refused(cluster, home, [], "init on a home without revocation files")
    # the identity key lost, its store still there: init must not give the
    # store (and its outbox) a new identity
    os.unlink(home.file("identity.key"))
    init_refused(cluster, home, [home.fingerprint, "nothing was changed"],
                 "init over another identity's store")
    # a home whose identity key is gone but whose revocation files remain
    home2 = cluster.new_home("orphan")
    os.unlink(home2.file("identity.key"))
    init_refused(cluster, home2, ["nothing was changed"], "init next to leftover revocation files")

    note("3. what an interrupted init leaves, and a rerun")
    # before the commit: only temporary files; a rerun removes them and works
    crashed = cluster.empty_home("crashed-early")
    for name in ("identity.key", "revocation.key", "revocation.cert"):
        with open(crashed.file(f"{name}.tmp.99999"), "wb") as f:
            f.write(b"secret of an identity that never existed")
    rc, out, err = cluster.cli(["init", "--home", crashed.path])
    check(rc == 0, f"init after an early crash: exit {rc}, {err!r}")
    names = sorted(os.listdir(crashed.path))
    check(names == ["identity.key", "postern.db", "revocation.cert", "revocation.key",
                         "smtp.password"],
          f"after a rerun: {names}")
    # after the commit: the identity exists, a revocation file kept its
    # temporary name; a rerun refuses, changes nothing and says what to rename
    late = cluster.new_home("crashed-late")
    os.rename(late.file("revocation.key"), late.file("revocation.key.tmp.99999"))
    init_refused(cluster, late, ["revocation.key.tmp.99999 -> revocation.key"],
                 "init after a late crash")
    note("init atomicity: ok")


if __name__ == "__main__":
    main(test, "init_atomic")
