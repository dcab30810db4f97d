#!/usr/bin/env python3
"""Devices benchmark (issue 13): one identity on several devices and a
correspondent x, real posternd processes on loopback.

Measures, in one run:
  - the time from `postern init --join` (the CLI starting on the new
    machine) to the first message from x being in the new device's Maildir,
    x sending one every 2 s: the join itself, the daemon's start and DHT
    join, x's next look at the identity's device list (x mailed the
    identity just before, when it had no list: it looks again at most a
    minute later) and the delivery;
  - per message to the identity, the DHT puts and gets of x and of each
    device (status.dht counters), with 1 device (no device list: today's
    single seal) and then with 2, 4 (and --max 8) devices. Each figure is
    the count over M messages (each one delivered everywhere before the
    next) minus the same node's count over an idle period of the same
    length, divided by M: the background (republish, inbox polls) is taken
    out.

Notification sizes and open costs are `build/tools/bench/bench notify`.
Loopback only, private random network id, every wait bounded. Run by hand:

  python3 tools/bench/bench_devices.py [--build build] [--messages 10] [--max 4]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def dht_ops(node):
    d = node.status()["dht"]
    return (d["puts_ok"] + d["puts_failed"], d["gets_ok"] + d["gets_failed"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--max", type=int, default=4, choices=(2, 4, 8))
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    os.environ.setdefault("PST_POSTERND", os.path.join(args.build, "node", "posternd"))
    os.environ.setdefault("PST_POSTERN", os.path.join(args.build, "tools", "postern", "postern"))
    import harness
    c = harness.Cluster("bench-devices")
    quiet = ["--republish", "300"]
    rows, join_s = [], None
    try:
        seed = c.start(c.new_home("seed"), [])
        d1 = c.start(c.new_home("d1", "me@it.example"), [seed], extra=quiet)
        x = c.start(c.new_home("x", "x@it.example"), [seed], extra=quiet)
        for n in (seed, d1, x):
            n.wait_joined()
        harness.wait_mail_ready(c, [x], [d1])
        harness.trust(c, x, d1)
        fp = d1.home.fingerprint
        devs = [d1]

        def send_all(tag, m):
            t0 = time.monotonic()
            for i in range(m):
                _, doc, _ = harness.mail_send(c, x.home, to=[fp], subject=f"{tag} {i}",
                                              body=f"message {i}\n")
                for n in devs:
                    harness.wait_delivered(c, n, doc["message_id"], timeout=90)
            return time.monotonic() - t0

        def measure(label):
            m = args.messages
            nodes = [x] + devs
            b0 = {n.name: dht_ops(n) for n in nodes}
            dt = send_all(label, m)
            b1 = {n.name: dht_ops(n) for n in nodes}
            t0 = time.monotonic()  # the same length idle: the background rate
            harness.poll(lambda: time.monotonic() - t0 >= dt, dt + 10, "idle period",
                         interval=0.2)
            b2 = {n.name: dht_ops(n) for n in nodes}
            per = {}
            for n in nodes:
                k = n.name
                busy = [b1[k][i] - b0[k][i] for i in (0, 1)]
                idle = [b2[k][i] - b1[k][i] for i in (0, 1)]
                per[k] = [max(busy[i] - idle[i], 0) / m for i in (0, 1)]
            dev_puts = sum(per[n.name][0] for n in devs) / len(devs)
            dev_gets = sum(per[n.name][1] for n in devs) / len(devs)
            rows.append((label, len(devs), per["x"][0], per["x"][1], dev_puts, dev_gets, dt / m))

        harness.trust(c, d1, x)
        measure("1 device (no list)")
        want = 2
        while len(devs) < args.max:
            rc, doc, err = c.cli_json(["device", "add", "--home", d1.home.path])
            harness.check(rc == 0 and doc, f"device add: {rc} {err}")
            name = f"d{len(devs) + 1}"
            path = os.path.join(c.tmp, name)
            t0 = time.monotonic()
            rc, out, err = c.cli(["init", "--join", doc["code"], "--home", path])
            harness.check(rc == 0, f"init --join: {rc} {err}")
            h = harness.Home(c, name, path, None)
            h.fingerprint = fp
            node = c.start(h, [seed], extra=quiet)
            node.wait_joined()
            devs.append(node)
            harness.poll(lambda: len([d for d in node_devices(c, d1) if not d["revoked"]]) ==
                         len(devs), 30, "d1 to list the new device")
            if join_s is None:
                # x mailed the identity just before: it sends one message
                # every 2 s until one reaches the new device (its next look
                # at the device list, at most PST_OUTBOX_DEVCHECK_S later)
                join_s = first_delivery(c, harness, x, fp, node, t0)
            harness.poll(lambda: all(tier_ok(c, n, x) for n in devs), 60,
                         "every device to trust x (synced)")
            if len(devs) == want:
                # x's cached list is refreshed at most once a minute: wait
                # for its look before measuring, so every device is sealed to
                time.sleep(61)
                measure(f"{len(devs)} devices")
                want *= 2
        for n in [x] + devs[::-1] + [seed]:
            n.stop()
    finally:
        c.close()
    print("### Devices (issue 13): DHT operations per message to the identity\n")
    print("| recipient | x puts | x gets | puts per device | gets per device | s per message |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, _, xp, xg, dp, dg, s in rows:
        print(f"| {label} | {xp:.2f} | {xg:.2f} | {dp:.2f} | {dg:.2f} | {s:.2f} |")
    if join_s is not None:
        print(f"\ninit --join to the first delivered message on the new device: {join_s:.2f} s")


def first_delivery(c, harness, x, fp, node, t0):
    sent = []

    def once():
        if any(harness.maildir_copies(node.home, m) for m in sent):
            return time.monotonic() - t0
        _, doc, _ = harness.mail_send(c, x.home, to=[fp], subject=f"first {len(sent)}",
                                      body="first after the join\n")
        sent.append(doc["message_id"])
        return None

    return harness.poll(once, 150, "a message on the new device", interval=2)


def node_devices(c, node):
    rc, doc, err = c.cli_json(["device", "list", "--home", node.home.path])
    return doc["devices"] if rc == 0 and doc else []


def tier_ok(c, node, other):
    rc, doc, err = c.cli_json(["trust", "list", "--home", node.home.path])
    return rc == 0 and any(e["fingerprint"] == other.home.fingerprint for e in doc.get("contacts", []))


if __name__ == "__main__":
    main()
