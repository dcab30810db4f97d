#!/usr/bin/env python3
"""The smarthost over TLS (docs/SMARTHOST.md): a user's real setup, port 587
with STARTTLS or 465 with TLS, with the CA named by --smarthost-ca-file.

A throwaway CA and two server certificates are made here with the openssl
command: one for 127.0.0.1/localhost, one for wrong.example only. The stdlib
SMTP sink of test_smarthost.py plays the smarthost, offering STARTTLS or
speaking TLS from the first byte. Node a is restarted with each setup:

- STARTTLS with the CA given: delivered, every command after EHLO over TLS;
- TLS from the first byte (smtps) with the CA given: delivered;
- STARTTLS without the CA (the system's store does not know ours): not
  delivered, "retrying" with a reason naming the certificate, the sink never
  sees MAIL FROM; restarted with the CA, that same recipient is delivered;
- the CA given but a certificate for another name: retrying, the reason
  names the certificate; nothing sent;
- --smarthost-tls starttls and a sink that does not offer STARTTLS: retrying
  with the reason, nothing sent in clear;
- a CA file that does not exist stops the start, naming it.
"""

import os
import shutil
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402
from test_smarthost import Sink, row_for, wait_state  # noqa: E402


def openssl(c, *args):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60,
                       cwd=c.tmp)
    check(r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr[-400:]}")


def make_pki(c):
    """ca.pem, and good.pem/good.key (127.0.0.1, localhost) and
    wrong.pem/wrong.key (wrong.example), both signed by the CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(c, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=Postern test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, san, serial in (("good", "IP:127.0.0.1,DNS:localhost", "2"),
                              ("wrong", "DNS:wrong.example", "3")):
        ext = os.path.join(c.tmp, name + ".ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n"
                    "basicConstraints=CA:FALSE\n")
        cn = "localhost" if name == "good" else "wrong.example"
        openssl(c, "req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", f"/CN={cn}")
        openssl(c, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", serial, "-days", "2", "-extfile", ext, "-out", name + ".pem")
    ctxs = {}
    for name in ("good", "wrong"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(c.tmp, name + ".pem"), os.path.join(c.tmp, name + ".key"))
        ctxs[name] = ctx
    return os.path.join(c.tmp, "ca.pem"), ctxs


def test(c):
    if shutil.which("openssl") is None:
        print("openssl is not installed (Debian package openssl): no certificates to test with")
        sys.exit(77)
    ca, ctxs = make_pki(c)
    seed = c.start(c.new_home("seed"), [])
    a = c.start(c.new_home("a", "a@it.example"), [seed],
                extra=["--smtp-port", "0", "--smarthost-retry", "1",
                       "--smarthost-stamp-bits", "0"])
    for n in (seed, a):
        n.wait_joined()

    def setup(sink, tls, ca_file=None):
        a.stop()
        extra = ["--smtp-port", "0", "--smarthost", f"127.0.0.1:{sink.port}",
                 "--smarthost-tls", tls, "--smarthost-retry", "1", "--smarthost-stamp-bits", "0"]
        if ca_file:
            extra += ["--smarthost-ca-file", ca_file]
        c.restart(a, extra=extra)
        sm = a.status()["smarthost"]
        check(sm["tls"] == tls and sm["ca_file"] == (ca_file or ""), f"status: {sm}")

    def send(addr, subject):
        harness.mail_send(c, a.home, to=[addr], subject=subject, body="over TLS")

    def mails(sink):
        return [cmd for _, cmd in sink.commands if cmd.upper().startswith("MAIL FROM")]

    # ---- STARTTLS with the CA: delivered, all after STARTTLS over TLS -------
    sink = Sink(tls=ctxs["good"])
    setup(sink, "starttls", ca)
    ext1 = "starttls@internet.example"
    send(ext1, "starttls")
    wait_state(c, a.home, ext1, "sent")
    got = sink.for_rcpt(ext1)
    check(len(got) == 1 and b"Subject: starttls" in got[0][2], f"the sink got {got}")
    cmds = list(sink.commands)
    check(any(cmd.upper() == "STARTTLS" for _, cmd in cmds), f"no STARTTLS: {cmds}")
    clear = [cmd for tls, cmd in cmds if not tls and cmd.split(" ")[0].upper()
             not in ("EHLO", "STARTTLS")]
    check(not clear, f"commands in clear: {clear}")
    sink.close()

    # ---- TLS from the first byte (smtps) with the CA: delivered -----------
    sink = Sink(tls=ctxs["good"], implicit=True)
    setup(sink, "tls", ca)
    ext2 = "smtps@internet.example"
    send(ext2, "implicit tls")
    wait_state(c, a.home, ext2, "sent")
    got = sink.for_rcpt(ext2)
    check(len(got) == 1 and b"Subject: implicit tls" in got[0][2], f"the sink got {got}")
    check(sink.commands and all(tls for tls, _ in sink.commands), f"{sink.commands}")
    sink.close()

    # ---- no CA given: the system's store refuses our CA; retried ----------
    sink = Sink(tls=ctxs["good"])
    setup(sink, "starttls")
    ext3 = "noca@internet.example"
    send(ext3, "no ca")
    row = wait_state(c, a.home, ext3, "retrying")
    check("certificate" in row["error"] and "smarthost_ca_file" in row["error"],
          f"no CA: {row}")
    note(f"reason: {row['error']}")
    text = c.cli(["outbox", "--home", a.home.path])[1]
    check(ext3 in text and "certificate" in text, f"outbox text: {text}")
    check(not mails(sink) and not sink.got, f"sent without a trusted certificate: {sink.commands}")
    # the same sink, the CA given: that recipient is delivered, not bounced
    setup(sink, "starttls", ca)
    wait_state(c, a.home, ext3, "sent")
    check(len(sink.for_rcpt(ext3)) == 1, f"{len(sink.for_rcpt(ext3))} copies of ext3")
    sink.close()

    # ---- the CA given, a certificate for another name: retried ------------
    for implicit, tls in ((False, "starttls"), (True, "tls")):
        sink = Sink(tls=ctxs["wrong"], implicit=implicit)
        setup(sink, tls, ca)
        ext4 = f"wrongname-{tls}@internet.example"
        send(ext4, "wrong name")
        row = wait_state(c, a.home, ext4, "retrying")
        check("certificate" in row["error"] and row["attempts"] >= 1, f"wrong name: {row}")
        note(f"reason: {row['error']}")
        check(not mails(sink) and not sink.got, f"sent to a wrong name: {sink.commands}")
        sink.close()

    # ---- starttls required, not offered: nothing in clear; retried --------
    sink = Sink()
    setup(sink, "starttls", ca)
    ext5 = "clear@internet.example"
    send(ext5, "never in clear")
    row = wait_state(c, a.home, ext5, "retrying")
    check("STARTTLS" in row["error"], f"no STARTTLS offered: {row}")
    note(f"reason: {row['error']}")
    check(not mails(sink) and not sink.got, f"sent in clear: {sink.commands}")
    # a retry later: still nothing in clear, still retrying (not bounced)
    harness.poll(lambda: (row_for(c, a.home, ext5) or {}).get("attempts", 0) >= 2 or None, 30,
                 "a second try", c.all_log_tails)
    check(row_for(c, a.home, ext5)["state"] == "retrying" and not mails(sink),
          f"second try: {row_for(c, a.home, ext5)}")
    sink.close()

    # ---- a CA file that does not exist stops the start --------------------
    a.stop()
    missing = os.path.join(c.tmp, "no-such-ca.pem")
    r = subprocess.run([c.posternd, "--home", a.home.path, "--network", str(c.network),
                        "--port", "0", "--fetch-port", "0", "--smtp-port", "0", "--smarthost",
                        "127.0.0.1:25", "--smarthost-tls", "tls", "--smarthost-ca-file", missing],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and missing in r.stderr and "smarthost_ca_file" in r.stderr,
          f"a missing CA file: rc {r.returncode}: {r.stderr[-400:]}")
    harness.check_all_logs(c)
    note("smarthost over STARTTLS and TLS with a CA file; bad certificates retried")


if __name__ == "__main__":
    harness.main(test, "smarthost_tls")
