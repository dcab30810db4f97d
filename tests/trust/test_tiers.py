#!/usr/bin/env python3
"""Trust tiers end to end (DESIGN.md "Trust tiers", docs/cli/trust.md).

R's contacts: t trusted, k known, b blocked, c trusted (c vouches for v),
x known (its key is revoked later, naming y as its replacement). u is a
stranger. R publishes 12 bits. Each sends R a message; expected:

  t, no stamp        -> Maildir INBOX (new/ or cur/)
  k, no stamp        -> .Known
  u, stamp           -> .Unknown
  u, no stamp        -> nowhere (rejected.inbox.no_stamp)
  b, stamp           -> nowhere, and b's node never served a fetch
                        (rejected.inbox.blocked)
  v, no stamp        -> .Known (a trusted contact vouches for v)
  x, no stamp, sent before its revocation, seen after
                     -> nowhere (rejected.inbox.revoked_key); one notice
  y (x's replacement), no stamp
                     -> nowhere: a revocation naming y does not make y
                        trusted (rejected.inbox.no_stamp)
"""

import time

import trustlib as tl
from trustlib import check, harness, note

R_FLAGS = ["--pow-bits", str(tl.RCPT_BITS)] + tl.FAST


def test(c):
    t0 = time.monotonic()
    cv = c.start(c.new_home("c", "c@trust.example"), [], extra=tl.FAST)
    nodes = tl.start_all(c, ["r", "t", "k", "b", "u", "v", "x", "y"], cv, {"r": R_FLAGS})
    cv.wait_joined()
    r, t, k, b, u, v, x, y = (nodes[n] for n in "r t k b u v x y".split())
    notices = tl.NoticeLog(c, r.home)
    for other, tier in ((t, "trusted"), (k, "known"), (b, "blocked"), (cv, "trusted"),
                        (x, "known")):
        tl.trust_set(c, r, other, tier)
    rc, doc, err = c.cli_json(["vouch", v.home.fingerprint, "--home", cv.home.path])
    check(rc == 0 and doc["tier"] == "known", f"c's vouch for v: {rc} {doc} {err}")
    harness.wait_mail_ready(c, [t, k, b, u, v, x, y], [r])
    # the vouch is visible to r (and counts) before v sends
    c.wait_key(r, v.home, pred=lambda d: any(
        e["voucher"] == cv.home.fingerprint and e["counts"] for e in d.get("vouches", [])))
    note(f"9 nodes up, contacts set, keys resolved: {time.monotonic() - t0:.1f} s")

    # ---- a contact's key revoked after it sent: r is down meanwhile -------------
    r.stop()
    mx = tl.send(c, x, r, "never", "from x before its revocation")["message_id"]
    harness.poll(lambda: (harness.outbox_recipient(harness.mail_outbox(c, x.home, mx), mx,
                                                   r.home.fingerprint)[1] or {})
                 .get("notify_count", 0) >= 1, 20, "x's notification put", x.log_tail)
    rc, doc, err = c.cli_json(["key", "revoke", "--code", "superseded", "--reason", "new key",
                               "--replacement", y.home.fingerprint, "--home", x.home.path])
    check(rc == 0 and doc["status"] == "revoked", f"x's revocation: {rc} {doc} {err}")
    # r learns it (a one-shot node on r's home), then starts and sees x's mail
    rc, doc, err = c.key_get(r.home, x.home.fingerprint,
                             ["--network", str(c.network), "--seed", cv.seed_addr()])
    check(rc == harness.EX_REVOKED and doc["revocation"]["replacement"] == y.home.fingerprint,
          f"r's one-shot key get of x: {rc} {doc} {err}")
    c.restart(r)
    tl.wait_rejected(r, "revoked_key", 1)

    # ---- the replacement key named by the revocation is a stranger --------------
    my = tl.send(c, y, r, "never", "from y, x's replacement")["message_id"]
    tl.wait_rejected(r, "no_stamp", 1)

    # ---- every tier --------------------------------------------------------------
    sent = {
        "t": tl.send(c, t, r, "never", "from t, trusted")["message_id"],
        "k": tl.send(c, k, r, "never", "from k, known")["message_id"],
        "u_stamp": tl.send(c, u, r, "always", "from u with a stamp")["message_id"],
        "v": tl.send(c, v, r, "never", "from v, vouched for by c")["message_id"],
    }
    bdoc = tl.send(c, b, r, "always", "from b, blocked")
    mb = bdoc["message_id"]
    check(bdoc["recipients"][0]["stamp_bits"] == tl.RCPT_BITS, f"b's stamp: {bdoc}")
    mu0 = tl.send(c, u, r, "never", "from u without a stamp")["message_id"]
    want = {"t": "INBOX", "k": ".Known", "u_stamp": ".Unknown", "v": ".Known"}
    for who, mid in sent.items():
        paths = harness.wait_delivered(c, r, mid, timeout=40)
        check(len(paths) == 1 and tl.folder_of(r.home, paths[0]) == want[who],
              f"{who}'s message {mid[:8]} is in {paths}, expected {want[who]}")
        who_node = {"t": t, "k": k, "u_stamp": u, "v": v}[who]
        harness.wait_receipt(c, who_node, mid, r)
    tl.wait_rejected(r, "blocked", 1)
    tl.wait_rejected(r, "no_stamp", 2)
    note(f"delivered: {want}; dropped: b, u without stamp, x (revoked), y")

    # b: its notification went out (a confirmed put), and its node never saw r
    # ask for the message
    def b_entry():
        e = harness.outbox_recipient(harness.mail_outbox(c, b.home, mb), mb,
                                     r.home.fingerprint)[1]
        return e if e and e["notify_count"] >= 1 else None
    rb = harness.poll(b_entry, 20, "b's confirmed put", b.log_tail, interval=0.1)
    check(rb["state"] == "notified" and rb["serve_count"] == 0 and rb["served"] == 0,
          f"b's outbox entry for r: {rb}")
    kb = b.counters()
    check(all(kb.get(n, 0) == 0 for n in ("fetch.connections", "fetch.requests",
                                           "fetch.served")),
          f"b's fetch server was contacted: {kb}")

    # nothing of the dropped ones anywhere, and r never accepted them
    for who, mid in (("b", mb), ("u without stamp", mu0), ("x", mx), ("y", my)):
        check(harness.maildir_copies(r.home, mid) == [], f"{who}'s message reached r")
    check(len(harness.maildir_all(r.home)) == 4, f"r's Maildir: {harness.maildir_all(r.home)}")
    doc = harness.mail_inbox(c, r.home)
    check(doc["delivered"] == 4 and doc["pending"] == 0 and doc["failed"] == 0,
          f"r's inbox: {doc}")
    for folder, n in (("INBOX", 1), ("Known", 2), ("Unknown", 1)):
        d = harness.mail_inbox(c, r.home, folder=folder)
        check(d["delivered"] == n, f"r's {folder}: {d}")

    # why each was dropped, exactly once each (re-puts are not looked at again)
    kr = r.counters()
    why = {n: kr.get(f"rejected.inbox.{n}", 0) for n in ("no_stamp", "blocked", "revoked_key")}
    check(why == {"no_stamp": 2, "blocked": 1, "revoked_key": 1}, f"r's counters: {kr}")
    check(kr.get("inbox.accepted", 0) == 4, f"r accepted more than the 4: {kr}")
    check(kr.get("inbox.waiting_for_vouches", 0) >= 1, f"no vouch lookup for v: {kr}")

    # the revocation notice: once, naming y and saying y is not trusted for it
    for _ in range(2):
        harness.mail_inbox(c, r.home)
        r.status()
    seen = notices.about(x.home.fingerprint)
    check(len(seen) == 1, f"notices about x: {seen} (all: {notices.notices})")
    text = seen[0][1]
    check(y.home.fingerprint in text and "NOT trusted" in text, f"notice text: {text}")
    rc, doc, err = c.cli_json(["trust", "list", "--home", r.home.path])
    tiers = {e["fingerprint"]: (e["tier"], e["revoked"]) for e in doc["contacts"]}
    check(tiers.get(x.home.fingerprint) == ("known", True) and y.home.fingerprint not in tiers,
          f"r's contacts after x's revocation: {doc}")
    note(f"notice ({seen[0][0]}): {text}")
    note(f"r's rejection counters: {why}; total {time.monotonic() - t0:.1f} s")
    for nd in (t, k, b, u, v, x, y, r, cv):
        nd.stop()


if __name__ == "__main__":
    harness.main(test, "trust_tiers")
