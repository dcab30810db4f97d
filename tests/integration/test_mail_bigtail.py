#!/usr/bin/env python3
"""A large body whose end does not decrypt (issue 14, third round). A node
decrypts and writes a large body on a pool thread while its loop reads and
hashes the next batch, so most of the plaintext is in Maildir/tmp/ before
the last chunk is even read. postern-hostile --fake-sender bad-tail serves
2 MiB whose message id is the hash of exactly the bytes served (the id check
holds) with one byte changed in the last data chunk: b must refuse it as
bad_body (a strike: given up after 3), leave nothing in tmp/ or anywhere in
the Maildir, and still deliver a's real mail afterwards. --fake-sender
extra-tail serves 2 MiB right and 16 bytes more in the same write, before
any receipt: b must not hang on them (it waits for its last batch while
they sit in its read) and retries (bad_frame), storing nothing."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

POW_BITS = 10  # b's stamp price for strangers (the fake sender pays it)


def test(c):
    seed = c.start(c.new_home("seed"), [])
    # --inbox-poll 5: a listen can miss values; the periodic get is the backstop
    b = c.start(c.new_home("b", "b@it.example"), [seed],
                extra=["--pow-bits", str(POW_BITS), "--inbox-poll", "5"])
    a = c.start(c.new_home("a", "a@it.example"), [seed])
    for n in (seed, a, b):
        n.wait_joined()
    harness.wait_mail_ready(c, [a], [b])
    harness.trust(c, b, a)
    c.wait_key(seed, b.home, pred=lambda d: d.get("pow_bits") == POW_BITS)
    k0 = b.counters()

    rc, fs, err = c.hostile_run(seed, b.home, ["--fake-sender", "bad-tail,extra-tail",
                                               "--seed-random",
                                               "bigtail", "--max-seconds", "60"], timeout=80)
    check(rc == 0 and not fs["timed_out"], f"fake sender failed ({rc}): {err} {fs}")
    m = fs["messages"]["bad-tail"]
    check(m["size"] > 2 << 20, f"the body is not large: {m}")
    check(m["requests"] == 3 and m["receipts"] == 0,
          f"bad-tail: {m} (b gives up after 3 protocol failures)")
    # the tool counts a request when it serves it; b judges the body after
    k1 = harness.wait_counter(b, "rejected.fetch.bad_body",
                              k0.get("rejected.fetch.bad_body", 0) + 3, timeout=30)
    bad = k1.get("rejected.fetch.bad_body", 0) - k0.get("rejected.fetch.bad_body", 0)
    check(bad == 3, f"b counted {bad} bad_body (want 3)")
    hm = k1.get("rejected.fetch.hash_mismatch", 0) - k0.get("rejected.fetch.hash_mismatch", 0)
    check(hm == 0, f"the id held, yet b counted {hm} hash_mismatch")
    check(harness.maildir_copies(b.home, m["msg_id"]) == [], "the broken body was delivered")
    check(harness.maildir_tmp(b.home) == [], f"left in tmp/: {harness.maildir_tmp(b.home)}")
    x = fs["messages"]["extra-tail"]
    check(x["requests"] == 2 and x["receipts"] == 0, f"extra-tail: {x}")
    k2 = harness.wait_counter(b, "fetch.retry.bad_frame",
                              k0.get("fetch.retry.bad_frame", 0) + 2, timeout=30)
    check(harness.maildir_copies(b.home, x["msg_id"]) == [], "the body with bytes after it was "
          "delivered")
    check(harness.maildir_tmp(b.home) == [], f"left in tmp/: {harness.maildir_tmp(b.home)}")
    check(k2.get("rejected.fetch.trailing", 0) == k0.get("rejected.fetch.trailing", 0),
          "bytes nothing signed were counted as a strike")
    doc = harness.mail_inbox(c, b.home)
    check(doc["failed"] == 1 and doc["pending"] == 1, f"b's inbox totals {doc}")

    # b still fetches: a large real message, the same pipelined path
    body = "".join(f"line {i:07d} of a real message after the broken one\n"
                   for i in range(60000)).encode()
    path = harness.mail_write(c, b"Subject: after\n\n" + body, "after.eml")
    _, sent, _ = harness.mail_send(c, a.home, to=[b.home.fingerprint], path=path)
    copies = harness.wait_delivered(c, b, sent["message_id"])
    check(harness.read_bytes(copies[0]).endswith(body), "the real message differs")
    check(harness.maildir_tmp(b.home) == [], f"left in tmp/: {harness.maildir_tmp(b.home)}")
    note(f"bad-tail ({m['size']} bytes) refused {bad} times; a's {sent['size']} bytes delivered")


if __name__ == "__main__":
    harness.main(test, "mail_bigtail")
