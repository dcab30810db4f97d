#!/usr/bin/env python3
"""The identity never changes by accident (issue 17).

1. One flipped byte in identity.key: posternd refuses to start (exit 78)
   with a message naming the file, before anything is published: a second
   node still sees exactly one key on the user's address. `postern id` and
   `postern key revoke` say the same.
2. identity.key copied from another home: the store was made for another
   identity, posternd refuses (exit 78) and names both fingerprints.
3. A truncated postern.db: the error names the file.
4. A key file in the old format (no integrity check) still starts the node
   under the same fingerprint.
"""

import os
import shutil
import subprocess

from harness import EX_OK, check, main, note, poll

EXIT_IDENTITY = 78
# inside the identity seed, in format 1 and 2 alike:
# [0x99, 2, 1, 0, 0, 0, c4 00, c4 00, c4 len, 0x94, 1, c4 20, seed (32)...]
SEED_BYTE = 20


def flip(path, offset, mask=0x01):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[offset] ^= mask
    with open(path, "wb") as f:
        f.write(bytes(data))
    os.chmod(path, 0o600)


def run_refused(cluster, home, seeds, what):
    """Starts posternd on home and expects it to exit 78 by itself."""
    node = cluster.start(home, seeds, wait=False)
    try:
        node.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"posternd started with {what} and kept running\n" + node.log_tail())
    rc = node.stop(expect_rc=None)
    log = node.log_text()
    check(rc == EXIT_IDENTITY, f"posternd with {what} exited {rc}, want {EXIT_IDENTITY}\n{log}")
    check(" up: " not in log, f"posternd with {what} came up before refusing:\n{log}")
    check(not os.path.exists(home.file("control.sock")),
          f"posternd with {what} left a control socket")
    return log


def address_keys(cluster, observer, address):
    rc, doc, err = cluster.key_get(observer.home, address)
    if rc != EX_OK or not doc:
        return None
    return sorted(k.get("fingerprint") for k in doc.get("keys", []))


def test(cluster):
    seed = cluster.start(cluster.new_home("seed"))
    # a second live node, so lookups need not wait for the stopped alice
    witness = cluster.start(cluster.new_home("witness"), [seed])
    alice_home = cluster.new_home("alice", "alice@it.example")
    alice = cluster.start(alice_home, [seed])
    alice.wait_joined()
    want = [alice_home.fingerprint]
    poll(lambda: address_keys(cluster, witness, "alice@it.example") == want, 30,
         "the witness to see alice's one address claim", cluster.all_log_tails)
    alice.stop()
    keyfile = alice_home.file("identity.key")
    with open(keyfile, "rb") as f:
        good_key = f.read()
    check(good_key[:2] == b"\x99\x02", f"identity.key is not key file format 2: {good_key[:2]!r}")

    note("1. a flipped byte in identity.key")
    flip(keyfile, SEED_BYTE)
    log = run_refused(cluster, alice_home, [seed], "a flipped byte in identity.key")
    check(keyfile in log and "damaged" in log, f"the message does not name the damage:\n{log}")
    check(alice_home.fingerprint in log,
          f"the message does not say which identity is expected:\n{log}")
    rc, out, err = cluster.cli(["id", "--home", alice_home.path])
    check(rc == EXIT_IDENTITY and "damaged" in err and keyfile in err,
          f"postern id with a damaged key: exit {rc}, {err!r}")
    rc, out, err = cluster.cli(["key", "revoke", "--home", alice_home.path])
    check(rc == EXIT_IDENTITY and "damaged" in err and keyfile in err,
          f"postern key revoke with a damaged key: exit {rc}, {err!r}")
    # what needs no identity still works in that home (a one-shot key get)
    rc, doc, err = cluster.cli_json(["key", "get", "--home", alice_home.path, "--network",
                                     str(cluster.network), "--seed", seed.seed_addr(),
                                     alice_home.fingerprint])
    check(rc == EX_OK, f"key get in a home with a damaged key: exit {rc}, {err!r}")
    # every other single-bit change is refused too (format 2: the check)
    for off in (0, 1, 5, 13, 16, 47, 60, 100, len(good_key) - 1):
        with open(keyfile, "wb") as f:
            f.write(good_key)
        flip(keyfile, off, 0x40)
        rc, out, err = cluster.cli(["id", "--home", alice_home.path])
        check(rc == EXIT_IDENTITY, f"byte {off} flipped: postern id exit {rc}, {err!r}")
    with open(keyfile, "wb") as f:
        f.write(good_key)

    note("2. identity.key from another home")
    bob_home = cluster.new_home("bob", "bob@it.example")
    bob_key = bob_home.file("identity.key")
    shutil.copyfile(keyfile, bob_key)
    os.chmod(bob_key, 0o600)
    log = run_refused(cluster, bob_home, [seed], "identity.key of another home")
    check("not the identity" in log and alice_home.fingerprint in log
          and bob_home.fingerprint in log, f"the message does not name both identities:\n{log}")
    rc, out, err = cluster.cli(["id", "--home", bob_home.path])
    check(rc == EXIT_IDENTITY and "not the identity" in err, f"postern id: exit {rc}, {err!r}")
    # a wrong key would have claimed the address as soon as it came up
    keys = address_keys(cluster, witness, "alice@it.example")
    check(keys == want, f"the address now has keys {keys}, want only {want}")

    note("3. a truncated database")
    trunc_home = cluster.empty_home("trunc")
    os.rmdir(trunc_home.path)
    shutil.copytree(alice_home.path, trunc_home.path)
    db = trunc_home.file("postern.db")
    for p in (db + "-wal", db + "-shm", trunc_home.file("control.sock")):
        if os.path.exists(p):
            os.unlink(p)
    size = os.path.getsize(db)
    check(size > 8192, f"postern.db is only {size} bytes")
    os.truncate(db, size // 2)
    node = cluster.start(trunc_home, [seed], wait=False)
    node.proc.wait(timeout=20)
    rc = node.stop(expect_rc=None)
    log = node.log_text()
    check(rc not in (0, None) and db in log and "truncated" in log,
          f"a truncated database: exit {rc}, log:\n{log}")

    note("4. a key file in format 1 (before the check) still works")
    legacy = b"\x98\x01" + good_key[2:-34]
    with open(keyfile, "wb") as f:
        f.write(legacy)
    os.chmod(keyfile, 0o600)
    alice = cluster.restart(alice)
    st = alice.status()
    check(st["fingerprint"] == alice_home.fingerprint,
          f"format 1 key file: fingerprint {st['fingerprint']}, want {alice_home.fingerprint}")
    alice.stop()
    note("identity checks: ok")


if __name__ == "__main__":
    main(test, "identity")
