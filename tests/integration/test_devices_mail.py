#!/usr/bin/env python3
"""Mail to and from an identity on three devices (issue 13), on real nodes:
three devices of one identity (paired with device add / init --join) and
one correspondent x. Mail to the identity lands in every device's Maildir
exactly once and x's outbox waits for each device; mail sent on device 1
shows in .Sent on device 2; a trust change on device 1 takes effect on
device 3, and so do a contact's email addresses given and dropped there
(and a device paired later starts with them); device 2 stopped for a while gets everything when it is back;
a block made on device 1 makes device 3 drop x's mail; device 3 revoked
gets no new mail and what it signs afterwards is refused by x (counted)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_OK, check, note  # noqa: E402


def pair(c, d1, seed, name):
    rc, doc, err = c.cli_json(["device", "add", "--home", d1.home.path, "--name", name])
    check(rc == EX_OK and doc and doc.get("code"), f"device add: {rc} {doc} {err}")
    path = os.path.join(c.tmp, name)
    t0 = time.monotonic()
    rc, out, err = c.cli(["init", "--join", doc["code"], "--home", path])
    check(rc == EX_OK, f"init --join {name}: {rc} {out} {err}")
    h = harness.Home(c, name, path, None)
    h.fingerprint = d1.home.fingerprint
    node = c.start(h, [seed])
    node.wait_joined()
    return node, t0


def devices(c, node):
    rc, doc, err = c.cli_json(["device", "list", "--home", node.home.path])
    check(rc == EX_OK and doc is not None, f"device list on {node.name}: {rc} {err}")
    return doc["devices"]


def contact(c, node, fp):
    rc, doc, err = c.cli_json(["trust", "list", "--home", node.home.path])
    check(rc == EX_OK and doc is not None, f"trust list on {node.name}: {rc} {err}")
    for e in doc.get("contacts", []):
        if e["fingerprint"] == fp:
            return e
    return {}


def tier_of(c, node, fp):
    return contact(c, node, fp).get("tier")


def emails_of(c, node, fp):
    return sorted(contact(c, node, fp).get("emails", []))


def trust_emails(c, node, fp, *args):
    rc, out, err = c.cli(["trust", "set", fp, "trusted", *args, "--home", node.home.path])
    check(rc == EX_OK, f"trust set {args} on {node.name}: {rc} {err}")


def copies(node, msg_id, folder=None):
    paths = harness.maildir_copies(node.home, msg_id)
    if folder is not None:
        paths = [p for p in paths if os.sep + folder + os.sep in p]
    return paths


def send(c, frm, to_fp, subject):
    _, doc, _ = harness.mail_send(c, frm.home, to=[to_fp], subject=subject,
                                  body=f"body of {subject}\n")
    return doc["message_id"]


def test(c):
    seed = c.start(c.new_home("seed"), [])
    d1 = c.start(c.new_home("d1", "me@it.example"), [seed])
    x = c.start(c.new_home("x", "x@it.example"), [seed])
    for n in (seed, d1, x):
        n.wait_joined()
    fp, fx = d1.home.fingerprint, x.home.fingerprint
    d2, _ = pair(c, d1, seed, "d2")
    d3, t_join3 = pair(c, d1, seed, "d3")
    for n in (d1, d2, d3):
        harness.poll(lambda n=n: len(devices(c, n)) == 3, 20, f"{n.name} to list 3 devices",
                     n.log_tail)
    harness.wait_mail_ready(c, [x], [d1])
    harness.wait_mail_ready(c, [d1, d2, d3], [x])

    # a trust change on device 1 reaches devices 2 and 3
    harness.trust(c, d1, x)
    harness.trust(c, x, d1)
    for n in (d2, d3):
        harness.poll(lambda n=n: tier_of(c, n, fx) == "trusted", 30,
                     f"{n.name} to trust x (synced from d1)", n.log_tail)
    # so do the contact's email addresses (LMTP files Internet mail by
    # them): given on device 1, then one dropped there
    one, two = "x.one@mail.example", "x.two@mail.example"
    trust_emails(c, d1, fx, "--email", two, "--email", one)
    for n in (d2, d3):
        harness.poll(lambda n=n: emails_of(c, n, fx) == [one, two], 30,
                     f"{n.name} to carry x's addresses (synced from d1)", n.log_tail)
    trust_emails(c, d1, fx, "--drop-email", two)
    harness.poll(lambda: emails_of(c, d3, fx) == [one], 30,
                 "the dropped address to leave d3", d3.log_tail)

    # 1. mail to the identity: every device, exactly once
    m1 = send(c, x, fp, "to all devices")
    for n in (d1, d2, d3):
        harness.wait_delivered(c, n, m1)
    join_to_mail = time.monotonic() - t_join3
    _, r = harness.wait_receipt(c, x, m1, d1)
    states = sorted(d["state"] for d in r.get("devices", []))
    check(states == ["delivered"] * 3, f"x's outbox per device: {r.get('devices')}")
    check(all(d["serve_count"] == 1 for d in r["devices"]), f"refetched: {r['devices']}")
    for n in (d1, d2, d3):
        check(len(copies(n, m1)) == 1, f"{n.name} holds {len(copies(n, m1))} copies of m1")
    # three devices fetch at once: they share one body check, none is told busy
    check(x.counters().get("rejected.fetch.busy_checking", 0) == 0,
          f"a device was told busy: {x.counters()}")

    # 2. sent on device 1: in .Sent on device 2 (and 3), not in their INBOX
    m2 = send(c, d1, fx, "sent on device 1")
    harness.wait_delivered(c, x, m2)
    harness.poll(lambda: copies(d2, m2, ".Sent"), 30, "the Sent copy on d2", d2.log_tail)
    harness.poll(lambda: copies(d3, m2, ".Sent"), 30, "the Sent copy on d3", d3.log_tail)
    check(len(copies(d2, m2)) == 1 and not copies(d1, m2), "Sent copies: one per other device")

    # 3. device 2 off for a while: it gets everything when it is back
    d2.stop()
    m3 = send(c, x, fp, "while d2 was off")
    for n in (d1, d3):
        harness.wait_delivered(c, n, m3)
    out = harness.mail_outbox(c, x.home, m3)
    _, r = harness.outbox_recipient(out, m3, fp)
    check(r["state"] != "fetched", f"x finished m3 without d2: {r}")
    check(any(d["state"] == "waiting" for d in r.get("devices", [])), f"d2 not waited for: {r}")
    c.restart(d2)
    d2.wait_joined()
    harness.wait_delivered(c, d2, m3, timeout=60)
    harness.wait_receipt(c, x, m3, d1, timeout=60)

    # 4. a block made on device 1 takes effect on device 3: x's mail is
    # dropped there; then x is trusted again everywhere
    harness.trust(c, d1, x, "blocked")
    harness.poll(lambda: tier_of(c, d3, fx) == "blocked", 30, "the block to reach d3",
                 d3.log_tail)
    before = d3.counters().get("rejected.inbox.blocked", 0)
    m4 = send(c, x, fp, "from a blocked sender")
    harness.wait_counter(d3, "rejected.inbox.blocked", before + 1)
    check(not copies(d3, m4) and not copies(d1, m4), "a blocked sender's mail was delivered")
    harness.trust(c, d1, x)
    for n in (d2, d3):
        harness.poll(lambda n=n: tier_of(c, n, fx) == "trusted", 30, f"{n.name} to trust x again",
                     n.log_tail)
    # the trust changes were applied, not filed as mail: `postern inbox`
    # on a device that received them lists only real messages
    rc, inbox, err = c.cli_json(["inbox", "--home", d3.home.path])
    check(rc == 0 and inbox["messages"] and inbox["missing"] == 0 and
          not [m for m in inbox["messages"] if m.get("folder") in ("Sync", ".Sync")],
          f"d3's inbox lists trust-sync records ({rc}): {inbox} {err}")

    # 5. device 3 revoked: no new mail there, its signature refused by x
    id3 = [d for d in devices(c, d3) if d["this_device"]][0]["id"]
    rc, out, err = c.cli(["device", "revoke", id3, "--home", d1.home.path])
    check(rc == EX_OK, f"device revoke: {rc} {err}")
    harness.poll(lambda: d3.status()["device"]["revoked"], 30, "d3 to learn it was revoked",
                 d3.log_tail)
    # x learns the new list when it next looks the key up (or within a
    # minute of its next message to the identity: PST_OUTBOX_DEVLIST_FRESH_S)
    harness.poll(lambda: (lambda r: r[0] == EX_OK and any(
        d.get("revoked") for d in r[1].get("devices", [])))(c.key_get(x.home, fp)), 30,
        "x to see d3 revoked", x.log_tail)
    m5 = send(c, x, fp, "after the revocation")
    for n in (d1, d2):
        harness.wait_delivered(c, n, m5)
    harness.wait_receipt(c, x, m5, d1)
    check(not copies(d3, m5), "the revoked device got new mail")
    before = x.counters().get("rejected.inbox.device_revoked", 0)
    rc, doc, err = harness.mail_send(c, d3.home, to=[fx], subject="signed after revocation",
                                     body="x must refuse this\n", expect_rc=None)
    if rc == EX_OK:
        harness.wait_counter(x, "rejected.inbox.device_revoked", before + 1)
        check(not copies(x, doc["message_id"]), "x took a revoked device's message")
    else:
        note(f"d3 refused to send after its revocation: {err.strip()}")

    # 6. postern-hostile: notifications signed by devices that fresh
    # identities revoked (their lists put first) or never listed; x accepts
    # none and counts both reasons
    base = x.counters()
    rc, summary, err = c.hostile_run(seed, x.home, [
        "--classes", "inbox-device", "--count", "40", "--rate", "100",
        "--seed-random", "devices-mail", "--max-seconds", "30"], timeout=45)
    check(rc == 0, f"hostile inbox-device failed ({rc}): {err} {summary}")
    harness.wait_counter(x, "rejected.inbox.device_revoked",
                         base.get("rejected.inbox.device_revoked", 0) + 1)
    harness.wait_counter(x, "rejected.inbox.unknown_device",
                         base.get("rejected.inbox.unknown_device", 0) + 1)
    k = x.counters()
    check(k.get("inbox.accepted", 0) == base.get("inbox.accepted", 0),
          f"x accepted a hostile device's notification: {k.get('inbox.accepted')}")
    note(f"hostile inbox-device: device_revoked +"
         f"{k.get('rejected.inbox.device_revoked', 0) - base.get('rejected.inbox.device_revoked', 0)}"
         f", unknown_device +"
         f"{k.get('rejected.inbox.unknown_device', 0) - base.get('rejected.inbox.unknown_device', 0)}"
         f", accepted +0")

    # 7. a device paired right after x mailed the identity gets x's next
    # message: x watches the identity's device-list slot (keycache.c), so it
    # does not wait for its next look at the list (a minute after m6)
    m6 = send(c, x, fp, "just before d4 is paired")
    harness.wait_delivered(c, d1, m6)
    heard = x.counters().get("keycache.devlist_values", 0)
    d4, t_join4 = pair(c, d1, seed, "d4")
    # pairing copied x with its address (no sync record reached d4: it was
    # not a device when they were sent)
    check(tier_of(c, d4, fx) == "trusted" and emails_of(c, d4, fx) == [one],
          f"d4's copy of x: {contact(c, d4, fx)}")
    harness.wait_mail_ready(c, [d4], [x])
    harness.wait_counter(x, "keycache.devlist_values", heard + 1)
    m7 = send(c, x, fp, "right after d4 is paired")
    harness.wait_delivered(c, d4, m7, timeout=30)
    note(f"init --join of d4 to x's next message in its Maildir: "
         f"{time.monotonic() - t_join4:.2f} s")
    check(not copies(d4, m6), "d4 got mail sent before it was paired")

    note(f"init --join of d3 to its first delivered message: {join_to_mail:.2f} s")
    harness.stop_all(c, [x, d4, d3, d2, d1, seed])


if __name__ == "__main__":
    harness.main(test, "devices_mail")
