#!/usr/bin/env python3
"""The watched key cache (issue 14, docs/MAIL.md): after a person looked a
key or an address up (`send`, `key get`), a's node listens on its slot and
answers the next lookups from its store, kept current by the listen: no DHT
get on the send path for a known recipient (`listened` in `key get`,
`lookup.from_watched_cache` counted). The DHT stays the check: a
revocation put in the watched slot reaches the store through the listen,
and from then on `key get` says revoked and `send` refuses the key."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_OK, EX_REVOKED, check, note  # noqa: E402


def test(c):
    seed, a, b = harness.mail_pair(c)
    harness.trust(c, a, b)
    # the first send looks b up in the DHT; b's key slot is watched from then on
    _, doc, _ = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject="one", body="x")
    harness.wait_receipt(c, a, doc["message_id"], b)
    check(a.status()["dht"]["keys_watched"] >= 1, f"nothing watched: {a.status()['dht']}")
    hits0 = a.counters().get("lookup.from_watched_cache", 0)
    rc, k, err = c.key_get(a.home, b.home.fingerprint)
    check(rc == EX_OK and k["status"] == "valid" and k.get("listened") is True and
          k["dht_answered"] is True and "warning" not in k,
          f"key get of a watched key: exit {rc} {k} {err}")
    _, doc, _ = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject="two", body="x")
    harness.wait_receipt(c, a, doc["message_id"], b)
    hits = a.counters().get("lookup.from_watched_cache", 0)
    check(hits >= hits0 + 2, f"send and key get still asked the DHT: {hits0} -> {hits}")
    note(f"key get and send of a watched key answered from the store ({hits} hits)")

    # by address: the first get watches the address slot, the second uses it
    rc, k, err = c.key_get(a.home, b.home.address)
    check(rc == EX_OK and "address_listened" not in k, f"first by address: {rc} {k} {err}")
    rc, k, err = c.key_get(a.home, b.home.address)
    check(rc == EX_OK and k.get("address_listened") is True and
          any(e["fingerprint"] == b.home.fingerprint and e["status"] == "valid"
              for e in k["keys"]), f"second by address: {rc} {k} {err}")

    # b revokes its key: the listen brings the revocation into a's store
    watched0 = a.status()["dht"]["keys_watched"]
    rc, doc, err = c.cli_json(["key", "revoke", "--home", b.home.path, "--reason", "test",
                               "--code", "retired"])
    check(rc == EX_OK and doc["published"] is True, f"b's revoke: {rc} {doc} {err}")

    def revoked_through_listen():
        rc, k, _ = c.key_get(a.home, b.home.fingerprint)
        return k if rc == EX_REVOKED and k.get("listened") is True else None
    k = harness.poll(revoked_through_listen, 30, "a to see b's revocation through its listen",
                     c.all_log_tails, interval=0.2)
    check(k["status"] == "revoked", f"{k}")
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject="three",
                                     body="x", expect_rc=None)
    check(rc != EX_OK and "revoked" in (err + str(doc)),
          f"send to a revoked key: exit {rc} {doc} {err}")
    note(f"b's revocation reached a through the listen; send refused (exit {rc})")

    # issue 16: a revoked key is watched no more (every node that saw the
    # revocation re-puts it, and a watch would receive each re-put); the
    # store keeps answering "revoked" without a DHT get
    def unwatched():
        w = a.status()["dht"]["keys_watched"]
        return w if w < watched0 else None
    w = harness.poll(unwatched, 15, "a to stop watching b's revoked key", c.all_log_tails,
                     interval=0.2)
    rc, k, err = c.key_get(a.home, b.home.fingerprint)
    check(rc == EX_REVOKED and k["status"] == "revoked", f"key get after unwatch: {rc} {k} {err}")
    w2 = a.status()["dht"]["keys_watched"]
    check(w2 == w, f"key get watched the revoked key again: {w} -> {w2}")
    note(f"b's revoked key unwatched ({watched0} -> {w} slots); key get still says revoked")


if __name__ == "__main__":
    harness.main(test, "keycache")
