#!/usr/bin/env python3
"""A wrong clock is reported, not silently fatal (docs/MAIL.md, "Clocks").

Three nodes with the right time (b1, b2, b3), one three days ahead (ahead)
and one three days behind (behind), each under libfaketime with the
monotonic clock left alone (libuv's timers and OpenDHT's scheduling run on
it).

(a) ahead sends to b1, which trusts it: b1 refuses every notification as
    created in the future, counts each (rejected.inbox.notyet), logs
    one line per sender per interval naming ahead, and its `status` names
    ahead as a peer whose clock is days ahead. The values count as
    rejected.inbox.notyet (created too far in the future) as before. b1
    asks ahead's fetch server for the message once (ahead is its contact),
    so ahead's status and log name b1 as a peer whose clock is days behind.
(b) behind looks up b1..b3: each `key get` exits 5 (from_future) and says to
    check this machine's clock (and so does `send` to one of them), and
    `status` (JSON and text) and the log say
    this node's clock is behind, by the majority of the three peers.
(c) slow (50 minutes behind) sends to b2: the notification passes, each
    fetch is refused for its time and retried (never a protocol strike:
    three of those would give the message up), and both nodes name the
    other's clock. After three such retries the message is still pending,
    nothing failed, and `postern inbox --json` shows why it waits.
(d) Strangers do not vote: b3 looks up b1 (one voter), then slow and slow2
    (both 50 minutes behind, not b3's contacts) each send b3 stamped mail.
    b3 fetches from them and names both clocks per peer, but they are two
    of three peers it has heard from: they must not make b3 say its own
    clock is ahead."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

DAY = 86400
EX_FROM_FUTURE = 5


def start_skewed(c, home, offset, seeds):
    """posternd on home with its wall clock moved by offset ("+3d")."""
    node = harness.Node(c, home, seeds, [])
    harness.with_faketime(node, offset)
    node.spawn()
    c.nodes.append(node)
    node.wait_ready()
    return node


def clock_of(node):
    st = node.status()
    check("clock" in st, f"{node.name}'s status has no clock section: {sorted(st)}")
    return st["clock"]


def peer_entry(clock, fingerprint):
    for p in clock.get("peers_disagreeing", []):
        if p["fingerprint"] == fingerprint:
            return p
    return None


def sender_ahead(c, ahead, b1):
    fa = ahead.home.fingerprint
    harness.trust(c, b1, ahead)
    c.wait_key(ahead, b1.home, pred=lambda d: d.get("status") == "valid")
    sent = []
    for i in range(2):
        rc, doc, err = harness.mail_send(c, ahead.home, to=[b1.home.fingerprint],
                                         subject=f"clock {i}", body="from three days ahead\n",
                                         extra=["--pow", "never"])
        sent.append(doc["message_id"])
    note(f"ahead sent {len(sent)} messages; b1 must refuse them for their time")
    harness.wait_counter(b1, "rejected.inbox.notyet", 2, timeout=60)

    def logged():
        text = b1.log_text()
        lines = [ln for ln in text.splitlines()
                 if f"notification from {fa} refused: created 3d" in ln]
        return lines or None
    lines = harness.poll(logged, 30, "b1's log line about ahead's clock", b1.log_tail)
    check(len(lines) == 1, f"one line per sender per interval, not per value: {lines}")
    check("in the future by this node's clock" in lines[0], lines[0])

    def named():
        p = peer_entry(clock_of(b1), fa)
        return p if p and p["refused"] >= 2 else None
    p = harness.poll(named, 30, "b1's status to name ahead", b1.log_tail)
    check(p["its_clock"] == "ahead" and p["by_at_least_s"] >= 3 * DAY - 600,
          f"b1's view of ahead's clock: {p}")
    check("ahead" in p["summary"] and fa in p["summary"], p["summary"])
    rc, out, err = c.cli(["status", "--home", b1.home.path])
    check(rc == 0 and f"{fa}'s clock is at least 3d 0h ahead of this node's" in out,
          f"b1's status text does not name ahead's clock:\n{out}")
    # nothing reached b1's Maildir
    for mid in sent:
        check(not harness.maildir_copies(b1.home, mid), f"{mid[:8]} was delivered")

    # the sender hears of it: b1 asked its fetch server once (a contact's
    # node is told), and that signed request is three days old by its clock
    fb = b1.home.fingerprint

    def told():
        p = peer_entry(clock_of(ahead), fb)
        return p if p and p["refused"] >= 1 else None
    p = harness.poll(told, 30, "ahead's status to name b1's clock",
                     lambda: f"{clock_of(ahead)}\n{ahead.log_tail()}")
    check(p["its_clock"] == "behind" and p["by_at_least_s"] >= 3 * DAY - 600,
          f"ahead's view of b1's clock: {p}")
    check(f"fetch request from {fb} refused: it expired 3d 0h ago" in ahead.log_text(),
          "ahead's log does not name b1's clock\n" + ahead.log_tail())
    rc, out, err = c.cli(["status", "--home", ahead.home.path])
    check(rc == 0 and f"{fb}'s clock is at least 3d 0h behind this node's" in out,
          f"ahead's status:\n{out}")
    # b1 read ahead's signed refusal: an exact sample, still only one log line
    k = harness.wait_counter(b1, "clock.probes_answered", 1)
    check(k.get("clock.probes", 0) == 1 and k.get("fetch.clock_skew", 0) >= 1,
          f"one probe per sender per interval: {k}")
    check(k.get("clock.probes_answered") == 1 and not k.get("clock.probes_bad_answer"),
          f"the probe's authentic answer is counted as one: {k}")


def node_behind(c, behind, peers):
    for p in peers:
        doc, _ = c.wait_key(behind, p.home, want_rc=EX_FROM_FUTURE, timeout=30,
                            pred=lambda d: d.get("status") == "from_future")
        note_text = doc.get("clock_note", "")
        check(p.home.fingerprint in note_text and "in the future by this node's clock" in note_text
              and "check this machine's clock" in note_text, f"clock_note: {doc}")
        check(doc.get("ahead_of_this_clock_s", 0) >= 3 * DAY - 600, f"by how much: {doc}")
    rc, out, err = c.cli(["key", "get", "--home", behind.home.path, peers[0].home.fingerprint])
    check(rc == EX_FROM_FUTURE and "check this machine's clock" in out,
          f"key get text (exit {rc}):\n{out}\n{err}")

    rc, doc, err = harness.mail_send(c, behind.home, to=[peers[0].home.fingerprint],
                                     subject="from the past", body="x\n", expect_rc=1)
    check("check this machine's clock" in err, f"send to a key too new for this clock: {err}")

    def verdict():
        k = clock_of(behind)
        return k if k["state"] == "behind" else None
    k = harness.poll(verdict, 30, "behind's status to say its clock is behind",
                     lambda: f"{clock_of(behind)}\n{behind.log_tail()}")
    check(k["peers"] >= 3 and 3 * DAY - 600 <= k["off_by_s"] <= 3 * DAY + 600, f"clock: {k}")
    check("behind" in k["summary"] and "check this machine's clock" in k["summary"], k["summary"])
    rc, out, err = c.cli(["status", "--home", behind.home.path])
    check(rc == 0 and "this node's clock looks 3d 0h behind 3 peers" in out,
          f"status text:\n{out}")
    check("this node's clock looks 3d 0h behind 3 peers" in behind.log_text(),
          "behind's log does not say its clock is behind\n" + behind.log_tail())
    for p in peers:
        check(clock_of(p)["state"] in ("unknown", "ok"), f"{p.name} thinks its clock is off")


def sender_slightly_behind(c, slow, b2):
    """50 minutes off: keys and notifications pass (3600 s allowed), the
    fetch does not (300 s). Each fetch is refused for its time, which is not
    a protocol violation: retried, never given up as a strike, and both
    nodes name each other's clock."""
    fs, fb = slow.home.fingerprint, b2.home.fingerprint
    harness.trust(c, b2, slow)
    c.wait_key(slow, b2.home, pred=lambda d: d.get("status") == "valid")
    rc, doc, err = harness.mail_send(c, slow.home, to=[fb], subject="late",
                                     body="fifty minutes behind\n", extra=["--pow", "never"])
    # three: as many as protocol strikes that would give the message up
    # (back-off 5 + 10 + 20 s)
    k = harness.wait_counter(b2, "fetch.retry.clock_skew", 3, timeout=90)
    strikes = {n: v for n, v in k.items() if n.startswith("rejected.fetch.")}
    check(not strikes and k.get("inbox.failed", 0) == 0,
          f"a clock refusal counted as a protocol violation: {strikes} {k}")
    rc, inbox, err = c.cli_json(["inbox", "--home", b2.home.path])
    check(rc == 0 and inbox.get("failed") == 0, f"b2's inbox after clock refusals: {inbox} {err}")
    waiting = [u for u in inbox.get("undelivered", []) if u.get("from") == fs]
    check(len(waiting) == 1 and waiting[0]["state"] == "pending" and
          waiting[0]["why"] == "retrying: clock_skew" and waiting[0]["attempts"] >= 3,
          f"b2's inbox does not say why slow's message waits: {inbox}")

    def named():
        p = peer_entry(clock_of(b2), fs)
        q = peer_entry(clock_of(slow), fb)
        return (p, q) if p and q else None
    p, q = harness.poll(named, 30, "b2 and slow to name each other's clock",
                        lambda: f"{clock_of(b2)}\n{clock_of(slow)}")
    check(p["its_clock"] == "behind" and 2900 <= p["by_at_least_s"] <= 3100, f"b2 sees {p}")
    check(q["its_clock"] == "ahead" and 2900 <= q["by_at_least_s"] <= 3100, f"slow sees {q}")
    check(f"fetch request from {fb} refused: created 50m" in slow.log_text(),
          "slow's log does not name b2's clock\n" + slow.log_tail())
    check(f"fetch response from {fs} refused: it expired" in b2.log_text(),
          "b2's log does not name slow's clock\n" + b2.log_tail())


def strangers_do_not_vote(c, target, honest, strangers):
    c.wait_key(target, honest.home, pred=lambda d: d.get("status") == "valid")
    for s in strangers:
        c.wait_key(s, target.home, pred=lambda d: d.get("status") == "valid")
        harness.mail_send(c, s.home, to=[target.home.fingerprint], subject="stamped",
                          body="from a stranger fifty minutes behind\n")

    def seen():
        k = clock_of(target)
        ps = [peer_entry(k, s.home.fingerprint) for s in strangers]
        return k if all(p and p["its_clock"] == "behind" for p in ps) else None
    k = harness.poll(seen, 60, f"{target.name} to name both strangers' clocks",
                     lambda: f"{clock_of(target)}\n{target.log_tail()}")
    check(k["state"] != "ahead" and k["peers"] == 1,
          f"stamped strangers voted on {target.name}'s clock: {k}")
    check("check this machine's clock" not in target.log_text(),
          f"{target.name} told its user to fix a right clock\n" + target.log_tail())


def test(c):
    b1, b2, b3 = c.network_of(3)
    ahead = start_skewed(c, c.new_home("ahead", "ahead@it.example"), "+3d", [b1])
    behind = start_skewed(c, c.new_home("behind", "behind@it.example"), "-3d", [b1])
    slow = start_skewed(c, c.new_home("slow", "slow@it.example"), "-50m", [b1])
    slow2 = start_skewed(c, c.new_home("slow2", "slow2@it.example"), "-50m", [b1])
    # OpenDHT runs under libfaketime: they join and publish
    for nd in (ahead, behind, slow, slow2):
        nd.wait_joined()
    sender_ahead(c, ahead, b1)
    node_behind(c, behind, [b1, b2, b3])
    sender_slightly_behind(c, slow, b2)
    strangers_do_not_vote(c, b3, b1, [slow, slow2])


if __name__ == "__main__":
    harness.main(test, "clock_skew")
