#!/usr/bin/env python3
"""The mail path under attack. postern-hostile
  1. floods b's inbox slot with bad notifications of every inbox class
     (random, oversize, forged, sealed to another key, signed for another
     recipient, another sender's claim of a delivered message id, expired or
     not yet valid, stamps bound to another recipient or notification);
  2. attacks b's fetch port as a client from 127.0.0.2 (a request for c's
     message, bad requests, garbage frames, oversized length prefixes,
     forged receipts, slowloris, a flood of connections);
  3. acts as a sender that serves wrong bodies (hash mismatch, wrong size,
     wrong author, truncated, a 2 MiB body whose last data chunk does not
     decrypt, 2 MiB with bytes after it), a header signed by another key (nothing pins
     it on the sender: retried, never a strike, never stored) and one good
     message whose notification it then replays.
Then b restarts and sees its slot again (replays of delivered ones; not
every value: see step 4). Nothing is accepted or stored wrongly, every refusal is counted by
reason in `postern status` (rejected.inbox.*, rejected.fetch.*), real mail
from a (during and after) and to c (after) is delivered once, b never
crashes and its RSS stays bounded."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

PER_CLASS = 40
RATE = 250
IDLE_S = 2  # b's fetch_idle_timeout: slowloris is dropped after this
POW_BITS = 10  # b's stamp price for strangers (the fake sender pays it)
SOURCE = "127.0.0.2"  # the attacker's address: b's per-address caps hit it alone
RSS_GROWTH_MAX_KIB = 24 * 1024
RSS_GROWTH_MAX_ASAN_KIB = 1024 * 1024
INBOX_REASONS = ("signature", "crypto", "wrong_recipient", "expired", "notyet",
                 "msgid_conflict", "stamp_resource", "stamp_ext", "stamp_date", "stamp_bits",
                 "stamp_format", "toobig", "truncated", "trailing")
FETCH_SERVER_REASONS = ("not_recipient", "signature", "expired", "notyet", "range", "frame_size",
                        "receipt_sender", "conn_limit", "idle_timeout")
FETCH_CLIENT_REASONS = ("hash_mismatch", "size_mismatch", "author",
                        "bad_body")  # strikes: given up after 3


def delta(after, before, prefix):
    return {k[len(prefix):]: v - before.get(k, 0) for k, v in after.items()
            if k.startswith(prefix) and v > before.get(k, 0)}


def send_real(c, a, b, tag):
    rc, doc, err = harness.mail_send(c, a.home, to=[b.home.fingerprint], subject=f"real {tag}",
                                     body=f"a real message ({tag})\n")
    return doc["message_id"]


def hostile(c, args, timeout=90):
    rc, out, err = c.run([c.hostile, "--json"] + args, timeout=timeout)
    try:
        import json
        return rc, json.loads(out), err
    except ValueError:
        raise harness.TestFailure(f"postern-hostile printed no JSON (exit {rc}): {out!r} {err!r}")


def test(c):
    seed = c.start(c.new_home("seed"), [])
    hb = c.new_home("b", "b@it.example")
    with open(hb.file("postern.conf"), "a") as f:
        f.write(f"fetch_idle_timeout = {IDLE_S}\n")
    ha = c.new_home("a", "a@it.example")
    with open(ha.file("postern.conf"), "a") as f:
        f.write("hint_put_delay = 0\n")  # 4. replays a's notifications from b's slot
    a = c.start(ha, [seed])
    # --inbox-poll 5: a listen can miss values (docs/MAIL.md); the periodic
    # get is the node's backstop, and 60 s (the default) is too long to wait
    b = c.start(hb, [seed], extra=["--pow-bits", str(POW_BITS), "--inbox-poll", "5"])
    cn = c.start(c.new_home("c", "c@it.example"), [seed])
    for n in (seed, a, b, cn):
        n.wait_joined()
    harness.wait_mail_ready(c, [a], [b])
    harness.wait_mail_ready(c, [b], [cn])
    c.wait_key(seed, b.home, pred=lambda d: d.get("pow_bits") == POW_BITS)
    harness.trust(c, b, a)  # a's mail: INBOX
    harness.trust(c, a, b)  # and no stamp (a replay of it reaches the duplicate check)
    cn.stop()
    rc, doc, err = harness.mail_send(c, b.home, to=[cn.home.fingerprint], subject="for c",
                                     body="c is away\n")
    m_bc = doc["message_id"]  # pending at b: someone else's message for the attacker
    real = [send_real(c, a, b, "before")]
    harness.wait_delivered(c, b, real[0])
    harness.wait_receipt(c, a, real[0], b)
    base = b.counters()
    base_a = a.counters()
    rss0 = b.rss_kib()
    t_all = time.monotonic()

    with harness.RssSampler([b], interval=0.1) as rs:
        # ---- 1. bad notifications ----
        t0 = time.monotonic()
        rc, summ, err = c.hostile_run(seed, b.home, [
            "--classes", "inbox", "--count", str(PER_CLASS), "--rate", str(RATE),
            "--msg-id", real[0], "--seed-random", "mail", "--max-seconds", "40"], timeout=60)
        check(rc == 0, f"hostile inbox flood failed ({rc}): {err} {summ}")
        for name, k in summ["classes"].items():
            check(k["put"] == PER_CLASS and k["put_ok"] >= 0.9 * PER_CLASS and not k["skipped"],
                  f"class {name}: {k}")
        real.append(send_real(c, a, b, "during the flood"))
        put_ok = summ["total"]["put_ok"]
        harness.poll(lambda: b.counters().get("inbox.values_seen", 0) -
                     base.get("inbox.values_seen", 0) >= 0.9 * put_ok, 20,
                     "b to see the bad notifications", b.log_tail, interval=0.2)
        harness.wait_delivered(c, b, real[-1])
        k1 = b.counters()
        inbox = delta(k1, base, "rejected.inbox.")
        note(f"1. inbox flood: {put_ok} values in {time.monotonic() - t0:.1f} s; b saw "
             f"{k1.get('inbox.values_seen', 0) - base.get('inbox.values_seen', 0)}, rejected "
             + ", ".join(f"{r}={n}" for r, n in sorted(inbox.items())))
        for r in INBOX_REASONS:
            check(r in inbox, f"no notification was rejected for {r}: {inbox}")
        for r, want in (("signature", PER_CLASS), ("crypto", PER_CLASS),
                        ("wrong_recipient", PER_CLASS), ("msgid_conflict", PER_CLASS // 2)):
            check(inbox[r] >= 0.75 * want, f"only {inbox[r]} rejected for {r} (want ~{want})")
        check(k1.get("inbox.accepted", 0) - base.get("inbox.accepted", 0) == 1,
              f"b accepted {k1.get('inbox.accepted', 0) - base.get('inbox.accepted', 0)} "
              "notifications (only the real one is valid)")

        # ---- 2. the fetch port ----
        t0 = time.monotonic()
        target = f"127.0.0.1:{b.fetch_port}"
        rc, fx, err = hostile(c, [
            "--fetch", target, "--source", SOURCE, "--target", b.home.fingerprint,
            "--msg-id", m_bc, "--attacks", "not-recipient,bad-request,garbage,oversized,receipt,"
            "slowloris", "--count", "12", "--conns", "12", "--seed-random", "fetch",
            "--max-seconds", "30"])
        check(rc == 0, f"hostile fetch attacks failed ({rc}): {err} {fx}")
        at = fx["attacks"]
        real.append(send_real(c, a, b, "during the fetch attacks"))
        check(at["not-recipient"]["status"] == {"not_found": 12},
              f"requests for c's message: {at['not-recipient']}")
        check(at["oversized"]["status"] == {"too_large": 12}, f"oversized: {at['oversized']}")
        for name in ("bad-request", "garbage", "receipt"):
            st = at[name]["status"]
            check(at[name]["answered"] == 12 and "ok" not in st, f"{name}: {at[name]}")
        sl = at["slowloris"]
        check(sl["dropped"] + sl["busy"] == 12 and sl["held"] == 0 and sl["dropped"] >= 1 and
              sl["max_drop_ms"] <= (IDLE_S + 3) * 1000, f"slowloris: {sl}")
        rc, fl, err = hostile(c, ["--fetch", target, "--source", SOURCE, "--attacks", "flood",
                                  "--conns", "150", "--max-seconds", "20"])
        check(rc == 0, f"hostile flood failed ({rc}): {err} {fl}")
        fl = fl["attacks"]["flood"]
        # 8 per address are let in (they wait for a frame), the others get
        # `busy`, or nothing beyond 128 connections in all
        check(fl["conns"] == 150 and fl["held"] <= 8 and fl["busy"] >= 50 and
              fl["held"] + fl["busy"] + fl["silent_close"] == 150, f"flood of 150 connections: {fl}")
        harness.wait_delivered(c, b, real[-1])
        k2 = b.counters()
        fserv = delta(k2, k1, "rejected.fetch.")
        note(f"2. fetch port: {time.monotonic() - t0:.1f} s, slowloris dropped after "
             f"{sl['min_drop_ms']}..{sl['max_drop_ms']} ms ({sl['busy']} refused busy), flood "
             f"{fl}; b counted " + ", ".join(f"{r}={n}" for r, n in sorted(fserv.items())))
        for r in FETCH_SERVER_REASONS:
            check(r in fserv, f"b's fetch server counted nothing for {r}: {fserv}")
        check(fserv["not_recipient"] >= 12, f"not_recipient {fserv['not_recipient']}")
        check(k2.get("fetch.requests", 0) == k1.get("fetch.requests", 0),
              "b served a request to the attacker")

        # ---- 3. a sender that serves wrong bodies ----
        t0 = time.monotonic()
        rc, fs, err = hostile(c, ["--fake-sender", "all", "--network", str(c.network),
                                  "--seed", seed.seed_addr(), "--target", b.home.fingerprint,
                                  "--seed-random", "sender", "--max-seconds", "60"], timeout=80)
        check(rc == 0 and not fs["timed_out"], f"fake sender failed ({rc}): {err} {fs}")
        msgs = fs["messages"]
        for mode in ("wrong-body", "wrong-size", "bad-author", "bad-tail"):
            check(msgs[mode]["requests"] == 3 and msgs[mode]["receipts"] == 0,
                  f"{mode}: {msgs[mode]} (b gives up after 3 protocol failures)")
        # another key's answer is no strike: b keeps asking (the tool stops
        # counting at 3 requests, where a strike would have ended it)
        check(msgs["bad-signer"]["requests"] >= 3 and msgs["bad-signer"]["receipts"] == 0,
              f"bad-signer: {msgs['bad-signer']} (b retries a response it cannot pin on a)")
        check(msgs["good"]["receipts"] >= 2 and msgs["good"]["requests"] == 1,
              f"good: {msgs['good']} (one fetch, the receipt again after the replay)")
        real.append(send_real(c, a, b, "after the fake sender"))
        harness.wait_delivered(c, b, real[-1])
        k3 = b.counters()
        fcli = delta(k3, k2, "rejected.fetch.")
        note(f"3. fake sender: {time.monotonic() - t0:.1f} s; b counted "
             + ", ".join(f"{r}={n}" for r, n in sorted(fcli.items()))
             + f", fetch.retry.closed +{k3.get('fetch.retry.closed', 0) - k2.get('fetch.retry.closed', 0)}"
             + f", duplicate +{k3.get('rejected.inbox.duplicate', 0) - k2.get('rejected.inbox.duplicate', 0)}")
        for r in FETCH_CLIENT_REASONS:
            check(fcli.get(r) == 3, f"b counted {fcli.get(r)} {r} (want 3): {fcli}")
        check("response_signer" not in fcli, f"another key's answer counted as a strike: {fcli}")
        signer_retries = delta(k3, k2, "fetch.retry.").get("response_signer", 0)
        check(signer_retries >= 3, f"another key's answers not counted as retries: "
              f"fetch.retry.response_signer +{signer_retries}")
        check(k3.get("fetch.retry.closed", 0) > k2.get("fetch.retry.closed", 0),
              "the truncated body was not counted fetch.retry.closed")
        for mode, m in msgs.items():
            copies = harness.maildir_copies(b.home, m["msg_id"])
            check(len(copies) == (1 if mode == "good" else 0), f"{mode}: copies {copies}")
        doc = harness.mail_inbox(c, b.home)
        # given up: the four kinds of strikes; pending: truncated, extra-tail and bad-signer
        check(doc["failed"] == 4 and doc["pending"] == 3, f"b's inbox totals {doc}")

    # ---- 4. b restarts and sees the values of its slot again ----
    b.stop()
    c.restart(b)
    t0 = time.monotonic()
    # counters are kept across restarts, and b may have read its slot after
    # k3 was taken: count b's reads from here
    reads0 = b.counters().get("dht.own_slot_reads.inbox", 0)
    # Not every value b saw is still there: a value stored only on b (and on
    # its putter, a hostile tool that has exited) is gone with b's restart.
    # In a debug run 6 of 341 values did not come back (flood values of six
    # classes, and one of the fake sender's 17 notifications); a put that
    # reached only b is likely on loopback, where every node and tool shares
    # one IP address for OpenDHT's per-address limits. The old count (every
    # notification of a held message, at least one per fake-sender message)
    # failed whenever such a loss hit the fake sender's values. So: wait until b has read its slot again (the count of values
    # it decided on holds still over two inbox polls), then check what b did with
    # what it saw: nothing accepted, notifications of held messages counted
    # as duplicates (stamped ones too), never as spent stamps.
    harness.wait_counter(b, "rejected.inbox.duplicate", k3.get("rejected.inbox.duplicate", 0) + 1,
                         timeout=30)
    # two whole reads of the inbox slot since the restart: the first may run
    # before b knows more peers than the seed, and the polls take turns with
    # b's own slots (more of them since devices), so a quiet spell alone is
    # not a read (under ASan b once settled before reading its slot at all)
    harness.wait_counter(b, "dht.own_slot_reads.inbox", reads0 + 2, timeout=60)
    last = [None, time.monotonic()]

    def looked_at(k):  # values b decided on (a value seen again is skipped, uncounted)
        return sum(v for n, v in k.items() if n.startswith("rejected.inbox.")) + \
            k.get("inbox.accepted", 0)

    def settled():
        v = looked_at(b.counters())
        if v != last[0]:
            last[0], last[1] = v, time.monotonic()
        return v if time.monotonic() - last[1] >= 2 * 5 + 1 else None
    harness.poll(settled, 60, "b to read its slot again", b.log_tail, interval=0.5)
    t_dup = time.monotonic() - t0
    harness.wait_counter(a, "fetch.receipts_repeated",
                         base_a.get("fetch.receipts_repeated", 0) + 1, timeout=20)
    k4 = b.counters()
    seen_again = looked_at(k4) - looked_at(k3)
    seen_before = looked_at(k3) - looked_at(base)
    note(f"4. after b's restart ({t_dup:.1f} s to settle): {seen_again} values seen again "
         f"(of {seen_before} since the flood began), duplicate "
         f"+{k4['rejected.inbox.duplicate'] - k3.get('rejected.inbox.duplicate', 0)}, "
         f"stamp_spent +{k4.get('rejected.inbox.stamp_spent', 0) - k3.get('rejected.inbox.stamp_spent', 0)}, "
         f"a got {a.counters().get('fetch.receipts_repeated', 0) - base_a.get('fetch.receipts_repeated', 0)} "
         "receipts again")
    check(k4.get("rejected.inbox.stamp_spent", 0) == k3.get("rejected.inbox.stamp_spent", 0),
          "a re-notification of a message b holds was refused as stamp_spent")
    check(k4.get("inbox.accepted", 0) == k3.get("inbox.accepted", 0),
          f"b accepted a notification again after its restart: {k4.get('inbox.accepted', 0)} "
          f"vs {k3.get('inbox.accepted', 0)}")
    check(seen_again >= seen_before // 2, f"b saw only {seen_again} of {seen_before} values again")

    # ---- 5. b still works both ways ----
    real.append(send_real(c, a, b, "after everything"))
    harness.wait_delivered(c, b, real[-1])
    for mid in real:
        harness.wait_receipt(c, a, mid, b)
        check(len(harness.maildir_copies(b.home, mid)) == 1, f"copies of {mid[:8]}")
    c.restart(cn)
    harness.wait_delivered(c, cn, m_bc, timeout=30)
    harness.wait_receipt(c, b, m_bc, cn)
    files = harness.maildir_all(b.home)
    check(len(files) == len(real) + 1, f"b's Maildir holds {len(files)} files, expected "
          f"{len(real)} real + 1 good: {files}")
    k5 = b.counters()
    check(k5.get("inbox.accepted", 0) - base.get("inbox.accepted", 0) == len(real) - 1 + 8,
          f"accepted +{k5.get('inbox.accepted', 0) - base.get('inbox.accepted', 0)}")
    note(f"b's rejections in all: " + ", ".join(
        f"{r}={n}" for r, n in sorted(delta(k5, base, "rejected.").items())))

    check(all(n.alive() for n in (seed, a, b, cn)), "a node died")
    peak = max(rs.samples["b"] + [rss0])
    limit = RSS_GROWTH_MAX_ASAN_KIB if harness.is_sanitized(c.posternd) else RSS_GROWTH_MAX_KIB
    note(f"b's RSS: {rss0} KiB before, peak {peak} KiB (+{peak - rss0} KiB, limit {limit}), "
         f"{len(rs.samples['b'])} samples; whole test {time.monotonic() - t_all:.1f} s")
    check(peak - rss0 <= limit, f"b's RSS grew by {peak - rss0} KiB")
    for n in (cn, b, a, seed):
        n.stop()
    harness.check_all_logs(c)


if __name__ == "__main__":
    harness.main(test, "mail_hostile")
