#!/usr/bin/env python3
"""One identity on several devices (issue 13): pairing (device add /
init --join), device list, rename, revoke, the cap of 8, refused pairing
codes (used twice, guessed, expired), key get showing the devices, and
recovery from the paper form in a fresh home."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import EX_OK, check, note  # noqa: E402

EX_FAIL = 1


def device_add(c, home, name, ttl=None):
    args = ["device", "add", "--home", home.path, "--name", name]
    if ttl:
        args += ["--ttl", str(ttl)]
    rc, out, err = c.cli(args)
    check(rc == EX_OK, f"device add failed ({rc}): {err}")
    code = out.strip().splitlines()[-1]
    check(len(code) == 32 and code.count("-") == 6, f"last line is not the code: {out!r}")
    return code


def join(c, name, code, dev_name=None, want_rc=EX_OK):
    path = os.path.join(c.tmp, name)
    args = ["init", "--join", code, "--home", path]
    if dev_name:
        args += ["--name", dev_name]
    rc, out, err = c.cli(args)
    check(rc == want_rc, f"init --join into {name}: exit {rc}, want {want_rc}: {out} {err}")
    h = harness.Home(c, name, path, None)
    for line in out.splitlines():
        if line.startswith("fingerprint:"):
            h.fingerprint = line.split(":", 1)[1].strip()
    return h, out, err


def devices(c, home):
    rc, doc, err = c.cli_json(["device", "list", "--home", home.path])
    check(rc == EX_OK and doc is not None, f"device list failed ({rc}): {err}")
    return doc


def by_name(doc, name):
    for d in doc["devices"]:
        if d["name"] == name:
            return d
    return None


def test(c):
    seed, d1 = c.network_of(2, names=["seed", "d1"])
    fp = d1.home.fingerprint
    one = devices(c, d1.home)
    check(len(one["devices"]) == 1 and one["devices"][0]["this_device"], f"one device: {one}")

    # a contact on d1, to be copied to the new devices
    rc, out, err = c.cli(["trust", "set", seed.home.fingerprint, "known", "--name", "Seedy",
                          "--home", d1.home.path])
    check(rc == EX_OK, f"trust set: {rc} {err}")

    # device 2: pair, start, time to a working device
    rc, doc, err = c.cli_json(["device", "add", "--home", d1.home.path, "--name", "laptop"])
    check(rc == EX_OK and len(doc["code"]) == 32, f"device add --json: {rc} {doc} {err}")
    t0 = time.monotonic()
    h2, out, _ = join(c, "d2", doc["code"])
    init_s = time.monotonic() - t0
    check(h2.fingerprint == fp, f"joined another identity: {out}")
    d2 = c.start(h2, [seed])
    d2.wait_joined()
    l2 = harness.poll(lambda: (lambda d: d if len(d["devices"]) == 2 else None)(devices(c, h2)),
                      10, "d2 to list two devices", d2.log_tail)
    join_s = time.monotonic() - t0
    me = [d for d in l2["devices"] if d["this_device"]]
    check(len(me) == 1 and me[0]["name"] == "laptop" and not me[0]["revoked"], f"d2: {l2}")
    st = d2.status()
    check(st["fingerprint"] == fp and st["device"]["revoked"] is False and
          st["device"]["holds_identity_key"] is False, f"d2 status: {st.get('device')}")
    rc, tl, err = c.cli_json(["trust", "list", "--home", h2.path])
    check(rc == EX_OK and "Seedy" in json.dumps(tl) and "known" in json.dumps(tl),
          f"the trust list did not reach d2: {tl} {err}")
    note(f"init --join: {init_s:.3f} s; from its start to a working device (posternd up, "
         f"joined, listing both devices): {join_s:.2f} s")


    # device 3, named by the new machine
    code3 = device_add(c, d1.home, "unused")
    h3, _, _ = join(c, "d3", code3, dev_name="desktop")
    d3 = c.start(h3, [seed])
    d3.wait_joined()
    for h in (d1.home, h2, h3):
        harness.poll(lambda h=h: len(devices(c, h)["devices"]) == 3, 15,
                     f"{h.name} to list three devices", d2.log_tail)
    id3 = by_name(devices(c, d1.home), "desktop")["id"]

    # the same code again, a guessed code and an expired one are refused
    before = d1.counters()
    _, _, err = join(c, "reuse", code3, want_rc=EX_FAIL)
    check("used already" in err, f"reused code: {err}")
    guess = "ybnd" + code3[4:]
    if guess == code3:
        guess = "ybne" + code3[4:]
    _, _, err = join(c, "guess", guess, want_rc=EX_FAIL)
    check("no pending pairing" in err, f"guessed code: {err}")
    rc, doc, err = c.cli_json(["device", "add", "--home", d1.home.path, "--ttl", "1"])
    check(rc == EX_OK, f"device add --ttl 1: {err}")
    harness.poll(lambda: time.time() > doc["expires"] + 0.2, 5, "the code to expire")
    _, _, err = join(c, "late", doc["code"], want_rc=EX_FAIL)
    check("expired" in err, f"expired code: {err}")
    after = d1.counters()
    for reason in ("code_reused", "code_expired", "unknown_code"):
        k = f"rejected.pairing.{reason}"
        check(after.get(k, 0) > before.get(k, 0), f"{k} did not grow: {after}")
    for h in ("reuse", "guess", "late"):
        check(not os.path.exists(os.path.join(c.tmp, h, "device.key")),
              f"a refused join left a device key in {h}")

    # rename device 2 on the device holding the identity key
    id2 = by_name(devices(c, d1.home), "laptop")["id"]
    rc, out, err = c.cli(["device", "rename", id2, "work laptop", "--home", d1.home.path])
    check(rc == EX_OK, f"rename: {rc} {err}")
    harness.poll(lambda: by_name(devices(c, h2), "work laptop") is not None, 15,
                 "d2 to see its new name", d2.log_tail)
    rc, out, err = c.cli(["device", "rename", id2, "x", "--home", h2.path])
    check(rc == EX_FAIL and "identity key" in err, f"rename on a joined device: {rc} {err}")
    rc, out, err = c.cli(["vouch", seed.home.fingerprint, "--home", h2.path])
    check(rc == EX_FAIL and "identity key" in err, f"vouch on a joined device: {rc} {err}")

    # revoke device 3: its status says so, the others list it revoked
    rc, doc, err = c.cli_json(["device", "revoke", id3, "--home", d1.home.path])
    check(rc == EX_OK and doc["revoked"], f"revoke: {rc} {doc} {err}")
    harness.poll(lambda: d3.status()["device"]["revoked"], 15, "d3 to learn it was revoked",
                 d3.log_tail)
    check(any("revoked" in n for n in d3.status()["notices"]), f"d3 notices {d3.status()}")
    harness.poll(lambda: (by_name(devices(c, h2), "desktop") or {}).get("revoked"), 15,
                 "d2 to list d3 as revoked", d2.log_tail)
    rc, out, err = c.cli(["device", "revoke", id3, "--home", d1.home.path])
    check(rc == EX_FAIL and "revoked already" in err, f"second revoke: {rc} {err}")

    # postern-hostile: forged, replayed, cert-instead-of-list, over the cap;
    # then used and guessed pairing codes. Nothing is accepted.
    seq_before = devices(c, d1.home)["seq"]
    before = d1.counters()
    rc, doc, err = c.hostile_run(seed, d1.home, ["--identity", d1.home.file("identity.key"),
                                                 "--classes", "devices", "--count", "4"])
    check(rc == EX_OK, f"hostile devices: {rc} {doc} {err}")
    for cls in ("dev-forged", "dev-replay", "dev-cert", "dev-overcap"):
        check(doc["classes"][cls]["put_ok"] >= 1, f"hostile {cls} stored nothing: {doc}")
    want = ("rejected.devices.signer", "rejected.devices.stale", "rejected.devices.rectype",
            "rejected.devices.toobig")

    def all_counted():
        now = d1.counters()
        return all(now.get(k, 0) > before.get(k, 0) for k in want)
    harness.poll(all_counted, 20, f"d1 to count {want}", d1.log_tail)
    after = devices(c, d1.home)
    check(after["seq"] == seq_before and len(after["devices"]) == 3,
          f"a hostile list was accepted: {after}")
    rc, doc, err = c.run([c.hostile, "--pair", code3, "--count", "3", "--json"])
    check(rc == EX_OK, f"hostile --pair: {rc} {doc} {err}")
    pr = json.loads(doc)["pairing"]
    check(pr["accepted"] == 0 and pr["used"] == 3 and pr["unknown"] == 3,
          f"hostile pairing answers {pr}")
    note(f"hostile: device lists refused, pairing {pr}")

    # key get elsewhere shows the devices
    def key_devices():
        rc, doc, err = c.key_get(seed.home, fp)
        if rc != EX_OK or not doc.get("devices"):
            return None
        return doc["devices"]
    devs = harness.poll(lambda: (lambda d: d if d and len(d) >= 3 else None)(key_devices()), 15,
                        "key get to show the devices", seed.log_tail)
    rc, out, err = c.cli(["key", "get", fp, "--home", seed.home.path])
    check(rc == EX_OK and "devices:" in out and "REVOKED" in out and "work laptop" in out,
          f"key get text shows no devices: {out}")
    names = {d["name"]: d for d in devs}
    check(names["work laptop"]["revoked"] is False and names["desktop"]["revoked"] is True and
          names["desktop"]["created"] > 0, f"key get devices {devs}")

    # the cap: 2 current devices, 6 more joins, then the 9th is refused
    for i in range(6):
        join(c, f"extra{i}", device_add(c, d1.home, f"extra {i}"))
    doc = devices(c, d1.home)
    check(len([d for d in doc["devices"] if not d["revoked"]]) == 8, f"eight devices: {doc}")
    rc, doc, err = c.cli_json(["id", "--home", os.path.join(c.tmp, "extra0")])
    check(rc == EX_OK and doc["fingerprint"] == fp, f"id of a joined home, no node: {rc} {err}")
    rc, out, err = c.cli(["device", "add", "--home", d1.home.path])
    check(rc == EX_FAIL and "cap" in err, f"9th device add: {rc} {out} {err}")

    # recovery from the paper form in a fresh home: every old device revoked
    rc, paper, err = c.cli(["identity", "export-paper", "--home", d1.home.path])
    check(rc == EX_OK and "BEGIN POSTERN IDENTITY RECOVERY FORM" in paper, f"paper: {rc} {err}")
    form = os.path.join(c.tmp, "paper.txt")
    with open(form, "w") as f:
        f.write(paper)
    old_seq = devices(c, d1.home)["seq"]
    rpath = os.path.join(c.tmp, "recovered")
    rc, out, err = c.cli(["identity", "recover", "--home", rpath, "--form", form])
    check(rc == EX_OK and fp in out, f"recover: {rc} {out} {err}")
    rc, out, err = c.cli(["identity", "recover", "--home", rpath, "--form", form])
    check(rc == 73, f"recover into a used home: {rc} {err}")
    rh = harness.Home(c, "recovered", rpath, None)
    rh.fingerprint = fp
    rn = c.start(rh, [seed])
    rn.wait_joined()
    got = harness.poll(lambda: (lambda d: d if d["seq"] > old_seq else None)(devices(c, rh)),
                       20, "the recovered list", rn.log_tail)
    current = [d for d in got["devices"] if not d["revoked"]]
    check(len(current) == 1 and current[0]["this_device"] and got["identity"] == fp,
          f"after recovery: {got}")
    revoked = {d["name"] for d in got["devices"] if d["revoked"]}
    rids = {d["id"] for d in got["devices"] if d["revoked"]}
    # desktop was a tombstone before: the recovered home never saw its name
    check({"work laptop", "extra 0", "extra 5"} <= revoked and {id2, id3} <= rids,
          f"revoked {revoked} {rids}")
    harness.poll(lambda: d2.status()["device"]["revoked"], 20, "d2 to learn of the recovery",
                 d2.log_tail)
    rc, doc, err = c.cli_json(["id", "--home", rpath])
    check(rc == EX_OK and doc["fingerprint"] == fp, f"fingerprint after recovery: {doc}")
    # the recovered home signs a key record above the old one: others take it
    want_ep = f"127.0.0.1:{rn.fetch_port}"

    def recovered_keyrec():
        rc, doc, err = c.key_get(seed.home, fp)
        return rc == EX_OK and want_ep in doc.get("endpoints", [])
    harness.poll(recovered_keyrec, 20, "the recovered key record to be accepted", rn.log_tail)
    note(f"devices: paired 8, revoked via recovery {len(revoked)}")


if __name__ == "__main__":
    harness.main(test, "devices")
