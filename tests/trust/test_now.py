#!/usr/bin/env python3
"""Trust that takes effect at once (docs/TRUST.md, "When trust changes").

b trusts c. a, a stranger to b, mails b without a stamp: refused
(no_stamp), and b's node remembers that "not vouched for" answer. Then c
vouches for a. Expected, well within the old 10-minute cache:

  1. a's SAME notification, still in b's inbox slot, is delivered into
     b's .Known within seconds (b listens to the vouch slot of a stranger it
     refused lately and looks it up again when a trusted contact's vouch
     appears there);
  2. a second stampless mail from a goes to .Known at once;
  3. `trust set a blocked` on b: a's next mail is dropped (blocked);
  4. `trust set a trusted`: a's next mail goes to INBOX (and the one
     refused as blocked, still in the slot, is judged again and delivered
     too: the contact list changed).
"""

import time

import trustlib as tl
from trustlib import check, harness, note

SECONDS = 30  # far below the 600 s the vouch answer used to be cached


def test(c):
    seed = c.start(c.new_home("seed"), [])
    nodes = tl.start_all(c, ["b", "cv", "a"], seed,
                         {"b": ["--pow-bits", str(tl.RCPT_BITS)] + tl.FAST})
    b, cv, a = nodes["b"], nodes["cv"], nodes["a"]
    tl.trust_set(c, b, cv, "trusted")
    harness.wait_mail_ready(c, [a], [b])

    m1 = tl.send(c, a, b, "never", "stampless, before the vouch")["message_id"]
    tl.wait_rejected(b, "no_stamp", 1)
    check(harness.maildir_copies(b.home, m1) == [], "a's stampless mail reached b before the vouch")

    rc, doc, err = c.cli_json(["vouch", a.home.fingerprint, "--home", cv.home.path])
    check(rc == 0 and doc["tier"] == "known", f"c's vouch for a: {rc} {doc} {err}")
    t0 = time.monotonic()
    paths = harness.wait_delivered(c, b, m1, timeout=SECONDS)
    took = time.monotonic() - t0
    check(len(paths) == 1 and tl.folder_of(b.home, paths[0]) == ".Known",
          f"a's first (refused) mail after c's vouch: {paths}, expected .Known")
    note(f"a's refused notification delivered into .Known {took:.1f} s after c's vouch")

    t0 = time.monotonic()
    m2 = tl.send(c, a, b, "never", "stampless, after the vouch")["message_id"]
    paths = harness.wait_delivered(c, b, m2, timeout=15)
    check(tl.folder_of(b.home, paths[0]) == ".Known", f"a's second mail: {paths}")
    note(f"a's second stampless mail in .Known {time.monotonic() - t0:.1f} s after its send")

    blocked0 = tl.rejected(b, "blocked")
    tl.trust_set(c, b, a, "blocked")
    m3 = tl.send(c, a, b, "never", "while blocked")["message_id"]
    tl.wait_rejected(b, "blocked", blocked0 + 1, timeout=15)
    check(harness.maildir_copies(b.home, m3) == [], "a's mail reached b while blocked")

    tl.trust_set(c, b, a, "trusted")
    m4 = tl.send(c, a, b, "never", "trusted now")["message_id"]
    paths = harness.wait_delivered(c, b, m4, timeout=15)
    check(tl.folder_of(b.home, paths[0]) == "INBOX", f"a's mail once trusted: {paths}")
    paths = harness.wait_delivered(c, b, m3, timeout=15)
    check(tl.folder_of(b.home, paths[0]) == "INBOX", f"the mail sent while blocked: {paths}")
    k = b.counters()
    note(f"b's counters: no_stamp {k.get('rejected.inbox.no_stamp')} blocked "
         f"{k.get('rejected.inbox.blocked')} readmitted {k.get('inbox.readmitted')} "
         f"vouch_watches {k.get('trust.vouch_watches')}")
    for nd in (a, cv, b, seed):
        nd.stop()


if __name__ == "__main__":
    harness.main(test, "trust_now")
