#!/usr/bin/env python3
"""vouch_depth 2 (docs/CONFIG.md, docs/TRUST.md).

t is a trusted contact of both r2 (vouch_depth 2) and r1 (the default, 1).
t vouches for v; v vouches for s; z (whom nobody r trusts vouches for)
vouches for w. Each sends without a stamp:

  s -> r2: .Known   (vouched for by v, whom trusted t vouches for)
  s -> r1: nowhere  (depth 1 looks only at vouches by trusted contacts)
  v -> r1: .Known   (depth 1)
  w -> r2: nowhere  (z's vouch leads to nobody r2 trusts)
"""

import trustlib as tl
from trustlib import check, harness, note


def vouch(c, voucher, subject):
    rc, doc, err = c.cli_json(["vouch", subject.home.fingerprint, "--home", voucher.home.path])
    check(rc == 0 and doc["tier"] == "known", f"{voucher.name}'s vouch: {rc} {doc} {err}")


def test(c):
    t = c.start(c.new_home("t", "t@trust.example"), [], extra=tl.FAST)
    # vouch_depth has no flag: it is a postern.conf setting
    h2 = c.new_home("r2", "r2@trust.example")
    with open(h2.file("postern.conf"), "a") as f:
        f.write("vouch_depth = 2\n")
    r2 = c.start(h2, [t], extra=["--pow-bits", str(tl.RCPT_BITS)] + tl.FAST)
    nodes = tl.start_all(c, ["r1", "v", "s", "z", "w"], t,
                         {"r1": ["--pow-bits", str(tl.RCPT_BITS)] + tl.FAST})
    t.wait_joined()
    r1, v, s, z, w = (nodes[n] for n in ("r1", "v", "s", "z", "w"))
    r2.wait_joined()
    rc, doc, err = c.cli_json(["trust", "list", "--home", h2.path])
    check(rc == 0 and doc.get("vouch_depth") == 2, f"r2's vouch_depth: {rc} {doc} {err}")
    for r in (r2, r1):
        tl.trust_set(c, r, t, "trusted")
    # --expires is 1..730 days; a number that would overflow the seconds is
    # refused too, not wrapped into a short vouch
    for days in ("0", "731", "213503982334602", "+5", "18446744073709551616"):
        rc, doc, err = c.cli_json(["vouch", v.home.fingerprint, "--expires", days,
                                   "--home", t.home.path])
        check(rc == 64 and "1 to 730 days" in err, f"vouch --expires {days}: {rc} {doc} {err}")
    vouch(c, t, v)
    vouch(c, v, s)
    vouch(c, z, w)
    harness.wait_mail_ready(c, [v, s, w], [r2, r1])
    # every vouch is in the DHT before anyone sends
    for obs, subj, by in ((r2, s, v), (r2, v, t), (r2, w, z)):
        c.wait_key(obs, subj.home, pred=lambda d, by=by: any(
            e["voucher"] == by.home.fingerprint for e in d.get("vouches", [])))

    ms2 = tl.send(c, s, r2, "never", "from s to r2 (depth 2)")["message_id"]
    ms1 = tl.send(c, s, r1, "never", "from s to r1 (depth 1)")["message_id"]
    mv1 = tl.send(c, v, r1, "never", "from v to r1 (depth 1)")["message_id"]
    mw2 = tl.send(c, w, r2, "never", "from w to r2 (a stranger's vouch)")["message_id"]

    for r, mid, who in ((r2, ms2, "s"), (r1, mv1, "v")):
        paths = harness.wait_delivered(c, r, mid, timeout=40)
        check(len(paths) == 1 and tl.folder_of(r.home, paths[0]) == ".Known",
              f"{who}'s message to {r.name} is in {paths}, expected .Known")
    tl.wait_rejected(r1, "no_stamp", 1)
    tl.wait_rejected(r2, "no_stamp", 1)
    check(harness.maildir_copies(r1.home, ms1) == [], "s reached r1 at depth 1")
    check(harness.maildir_copies(r2.home, mw2) == [], "w reached r2 through a stranger's vouch")
    k2, k1 = r2.counters(), r1.counters()
    check(k2.get("trust.vouched_known", 0) >= 1 and k1.get("trust.vouched_known", 0) >= 1,
          f"vouched_known: r2 {k2.get('trust.vouched_known')} r1 {k1.get('trust.vouched_known')}")
    note(f"r2 (depth 2): s -> .Known, w -> no_stamp; r1 (depth 1): v -> .Known, s -> no_stamp")
    for nd in (w, z, s, v, r1, r2, t):
        nd.stop()


if __name__ == "__main__":
    harness.main(test, "trust_vouch_depth")
