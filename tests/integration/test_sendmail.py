#!/usr/bin/env python3
"""postern sendmail (issue 11, part 2): sendmail's interface on the path of
`postern send`. Four nodes a, b, c, d; a sends.

(a) `postern sendmail -t -oi` with To: b, Cc: c (as FP@postern.invalid, with
    a display name) and a folded Bcc: d (with a comment): each gets it in
    its Maildir, no copy has a Bcc field or anything of d, a lone '.' line
    is kept (-oi), and a's outbox has the three kinds to/cc/bcc;
(b) recipients as arguments, through a link named `sendmail` (argv[0]):
    delivered, kinds from the header (to; an argument in no header is bcc),
    and without -i a lone '.' ends the message;
(c) -f with a foreign address: exit 77, nothing sent; -f with a's own
    address and -F: delivered with From: "Name" <a@it.example>;
(d) an unknown recipient (no key claims it) and an address no key can
    claim: exit 67, nothing sent;
(e) a home whose node does not run: exit 69; refused flags: 64; a malformed
    To: under -t, a NUL in the header, a header over 1 MiB: 65."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE, EX_NOPERM = 64, 65, 67, 69, 77


def sendmail(c, home, args, msg, argv0=None, timeout=120):
    """Runs postern sendmail (or argv0, a link to postern) with msg on stdin."""
    argv = ([argv0] if argv0 else [c.postern, "sendmail"]) + ["--home", home.path] + list(args)
    return c.run(argv, timeout=timeout, input_bytes=msg)


def outbox_ids(c, node):
    return [m["message_id"] for m in harness.mail_outbox(c, node.home, limit=1000)["messages"]]


def newest(c, node, before):
    ids = [i for i in outbox_ids(c, node) if i not in before]
    check(len(ids) == 1, f"expected one new message in {node.name}'s outbox, got {ids}")
    return ids[0]


def kinds_of(c, node, mid):
    m = harness.mail_outbox(c, node.home, mid)["messages"][0]
    return {r["fingerprint"]: r["kind"] for r in m["recipients"]}


def header_of(data):
    return data.split(b"\n\n", 1)[0]


def test_t(c, a, b, cc, d):
    secrets = [re.compile(rb"(?<![A-Za-z0-9._%+-])" + re.escape(d.home.address.encode()), re.I),
               re.compile(re.escape(d.home.fingerprint.encode()), re.I)]
    before = outbox_ids(c, a)
    msg = (b"From: A <a@it.example>\r\n"
           b"To: \"B, the first\" <b@it.example>\r\n"
           b"Cc: C (carbon) <" + cc.home.fingerprint.upper().encode() + b"@postern.invalid>\r\n"
           b"Bcc: undisclosed:;,\r\n"
           b"  D (blind) <d@it.example>\r\n"
           b"Subject: sendmail -t\r\n"
           b"\r\n"
           b"first line\r\n"
           b".\r\n"
           b"after the dot\r\n")
    rc, out, err = sendmail(c, a.home, ["-t", "-oi"], msg)
    check(rc == 0, f"sendmail -t -oi exited {rc}: {err}")
    check(out == "", f"sendmail printed on stdout: {out!r}")
    mid = newest(c, a, before)
    for n in (b, cc, d):
        paths = harness.wait_delivered(c, n, mid)
        check(len(paths) == 1, f"{n.name} has {paths}")
        data = harness.read_bytes(paths[0])
        names = [ln.split(b":", 1)[0].lower() for ln in header_of(data).split(b"\n")
                 if ln[:1] not in (b" ", b"\t")]
        check(b"bcc" not in names, f"{n.name}'s copy has a Bcc field: {names}")
        for s in secrets:
            check(s.search(data) is None, f"{n.name}'s copy names the Bcc recipient:\n{data!r}")
        check(b"\n.\nafter the dot\n" in data, f"-oi: the lone dot ended the message:\n{data!r}")
        check(names.count(b"from") == 1, f"From fields: {names}")
    want = {b.home.fingerprint: "to", cc.home.fingerprint: "cc", d.home.fingerprint: "bcc"}
    check(kinds_of(c, a, mid) == want, f"outbox kinds {kinds_of(c, a, mid)}, want {want}")
    note(f"(a) -t -oi: {mid[:8]} to b, cc c, bcc d; no Bcc in any copy")


def test_args(c, a, b, cc, d):
    link = os.path.join(c.tmp, "bin", "sendmail")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(c.postern, link)
    before = outbox_ids(c, a)
    msg = (b"To: b@it.example\n"
           b"Subject: arguments\n"
           b"\n"
           b"kept\n"
           b".\n"
           b"not kept: a lone dot ends the message without -i\n")
    rc, out, err = sendmail(c, a.home, ["-oem", "-odi", "--", "b@it.example",
                                        "Dee <" + d.home.address + ">"], msg, argv0=link)
    check(rc == 0, f"sendmail (as 'sendmail') with arguments exited {rc}: {err}")
    mid = newest(c, a, before)
    for n in (b, d):
        data = harness.read_bytes(harness.wait_delivered(c, n, mid)[0])
        check(data.endswith(b"\nkept\n") and b"not kept" not in data,
              f"{n.name}: the lone dot did not end the message:\n{data!r}")
    check(not harness.maildir_copies(cc.home, mid), "c got a message sent to b and d")
    want = {b.home.fingerprint: "to", d.home.fingerprint: "bcc"}
    check(kinds_of(c, a, mid) == want, f"outbox kinds {kinds_of(c, a, mid)}, want {want}")
    note(f"(b) arguments via argv[0] 'sendmail': {mid[:8]} to b, bcc d; '.' ends it")


def test_from(c, a, b):
    before = outbox_ids(c, a)
    msg = b"To: b@it.example\nSubject: forged\n\nhello\n"
    for foreign in ("b@it.example", "someone@else.example", b.home.fingerprint + "@postern.invalid",
                    a.home.fingerprint, "<>"):
        rc, out, err = sendmail(c, a.home, ["-f", foreign, "b@it.example"], msg)
        check(rc == EX_NOPERM, f"-f {foreign} exited {rc} (want 77): {err}")
        check("not one of your addresses" in err, f"-f {foreign}: {err!r}")
    check(outbox_ids(c, a) == before, "a refused -f still sent something")
    msg = b"To: b@it.example\nSubject: with -f and -F\n\nhello\n"
    rc, out, err = sendmail(c, a.home, ["-i", "-f", "A@IT.example", "-F", 'Ann "A" Example',
                                        "b@it.example"], msg)
    check(rc == 0, f"-f own address exited {rc}: {err}")
    mid = newest(c, a, before)
    data = harness.read_bytes(harness.wait_delivered(c, b, mid)[0])
    check(b'\nFrom: "Ann \\"A\\" Example" <a@it.example>\n' in b"\n" + header_of(data) + b"\n",
          f"From: built from -F and -f:\n{data!r}")
    before.append(mid)
    rc, out, err = sendmail(c, a.home, ["-f", a.home.fingerprint + "@postern.invalid",
                                        "b@it.example"], b"Subject: fp\n\nhi\n")
    check(rc == 0, f"-f FP@postern.invalid exited {rc}: {err}")
    newest(c, a, before)
    note("(c) -f foreign: 77 and nothing sent; -f own/-F: From: built")


def test_refusals(c, a, b, idle):
    before = outbox_ids(c, a)
    msg = b"Subject: nobody\n\nhello\n"
    rc, out, err = sendmail(c, a.home, ["-i", "b@it.example", "nobody@it.example"], msg)
    check(rc == EX_NOUSER, f"unknown recipient exited {rc} (want 67): {err}")
    rc, out, err = sendmail(c, a.home, ["-t"], b"To: o'brien@it.example\n\nhi\n")
    check(rc == EX_NOUSER, f"an address no key can claim exited {rc} (want 67): {err}")
    rc, out, err = sendmail(c, a.home, ["-t"], b"To: \"unterminated <b@it.example>\n\nhi\n")
    check(rc == EX_DATAERR, f"a malformed To: under -t exited {rc} (want 65): {err}")
    rc, out, err = sendmail(c, a.home, ["-i", "b@it.example"], b"To: b@it.example\nX-A: \0\n\nhi\n")
    check(rc == EX_DATAERR, f"a NUL in the header exited {rc} (want 65): {err}")
    rc, out, err = sendmail(c, a.home, ["-t"], b"To: b@it.example,\n " + b"x" * (1 << 20) + b"\n\n")
    check(rc == EX_DATAERR, f"a header over 1 MiB exited {rc} (want 65): {err}")
    rc, out, err = sendmail(c, a.home, ["-t"], b"Subject: no recipients\n\nhi\n")
    check(rc == EX_USAGE, f"-t without recipients exited {rc} (want 64): {err}")
    for bad in (["-bs"], ["-q"], ["-oX"], ["-C", "/etc/mail"], ["--to", "b@it.example"]):
        rc, out, err = sendmail(c, a.home, bad + ["b@it.example"], msg)
        check(rc == EX_USAGE, f"sendmail {bad} exited {rc} (want 64): {err}")
    check(outbox_ids(c, a) == before, "a refused sendmail still sent something")
    rc, out, err = sendmail(c, idle, ["-t", "-oi"], b"To: b@it.example\n\nhi\n")
    check(rc == EX_UNAVAILABLE, f"no node running exited {rc} (want 69): {err}")
    rc, out, err = sendmail(c, idle, ["-f", "x@it.example", "b@it.example"], msg)
    check(rc == EX_UNAVAILABLE, f"no node running, with -f, exited {rc} (want 69): {err}")
    note("(d) unknown recipient 67, nothing sent; (e) no node 69; bad flags 64; bad To: 65")


def test(c):
    a, b, cc, d = c.network_of(4, names=["a", "b", "c", "d"])
    harness.wait_mail_ready(c, [a], [b, cc, d], by_address=True)
    for n in (b, cc, d):
        harness.trust(c, n, a)
    idle = c.new_home("idle", "idle@it.example")  # no node runs for it
    test_refusals(c, a, b, idle)
    test_t(c, a, b, cc, d)
    test_args(c, a, b, cc, d)
    test_from(c, a, b)


if __name__ == "__main__":
    harness.main(test, "sendmail")
