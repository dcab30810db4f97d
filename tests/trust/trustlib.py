"""Shared pieces of the trust tests (tests/trust/test_*.py).

Reuses tests/integration/harness.py (imported by path) for nodes, CLI calls
and bounded polling, and adds what the trust tests need on top:

- stampcraft (tools/bench/stampcraft.c): read a DHT slot, put raw values
  into one, sign throw-away endorsements;
- the outer notification (msgpack [1, 5, sealed, stamp]) decoded and
  re-encoded by hand, and hashcash stamps minted in Python with any date,
  resource, ext and bits (a 12-bit stamp is ~4,096 SHA-1s), so every kind
  of stamp abuse can be built around the sealed bytes of a real
  notification;
- a record of every `notices` entry R's node hands out, whichever call
  (status or inbox, the harness's own included) received it.
"""

import base64
import hashlib
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
from harness import check, note  # noqa: E402,F401  (re-exported)

FAST = ["--renotify", "1", "--inbox-poll", "1"]
RCPT_BITS = 12  # what the recipient publishes in these tests: stamps mint in ms


def stampcraft_path():
    return harness.binary("PST_STAMPCRAFT")


# ---- DHT slots through stampcraft -------------------------------------------------

def slot_get(c, seed_node, fingerprint, slot, timeout=30):
    """The distinct values in fingerprint's slot (bytes), as one get finds them."""
    argv = [stampcraft_path(), "get", "--network", str(c.network), "--seed",
            seed_node.seed_addr(), "--target", fingerprint, "--slot", slot,
            "--max-seconds", str(timeout)]
    rc, out, err = c.run(argv, timeout=timeout + 15)
    try:
        doc = json.loads(out)
    except ValueError:
        raise harness.TestFailure(f"stampcraft get printed no JSON (exit {rc}): {out!r} {err!r}")
    seen, vals = set(), []
    for h in doc["values"]:
        if h not in seen:
            seen.add(h)
            vals.append(bytes.fromhex(h))
    return rc, vals


def slot_put(c, seed_node, fingerprint, slot, values, rate=250, timeout=60):
    """Puts every value (bytes) into fingerprint's slot; returns the summary."""
    argv = [stampcraft_path(), "put", "--network", str(c.network), "--seed",
            seed_node.seed_addr(), "--target", fingerprint, "--slot", slot,
            "--rate", str(rate), "--max-seconds", str(timeout)]
    data = "".join(v.hex() + "\n" for v in values).encode()
    rc, out, err = c.run(argv, timeout=timeout + 15, input_bytes=data)
    try:
        doc = json.loads(out)
    except ValueError:
        raise harness.TestFailure(f"stampcraft put printed no JSON (exit {rc}): {out!r} {err!r}")
    check(rc == 0 and doc["put_ok"] == len(values),
          f"stampcraft put of {len(values)} values into {slot}: exit {rc} {doc} {err}")
    return doc


def endorsements(c, subject_fp, count, seed_random, tier="known"):
    """count endorsements of subject_fp, each by a fresh key (bytes)."""
    rc, out, err = c.run([stampcraft_path(), "endorse", "--subject", subject_fp, "--count",
                          str(count), "--tier", tier, "--seed-random", seed_random])
    check(rc == 0, f"stampcraft endorse failed ({rc}): {err}")
    return [bytes.fromhex(line) for line in out.split()]


# ---- keys and records -------------------------------------------------------------

_ZB32 = "ybndrfg8ejkmcpqxot1uwisza345h769"
_STD32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def fp_to_pk(fp):
    """The 32-byte key of a fingerprint (z-base-32, 52 characters)."""
    std = fp.lower().translate(str.maketrans(_ZB32, _STD32))
    return base64.b32decode(std + "====")[:32]


def _mp_uint(b, i):
    t = b[i]
    if t < 0x80:
        return t, i + 1
    n = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[t]
    return int.from_bytes(b[i + 1:i + 1 + n], "big"), i + 1 + n


def _mp_bin(b, i):
    t = b[i]
    n = {0xc4: 1, 0xc5: 2, 0xc6: 4}[t]
    ln = int.from_bytes(b[i + 1:i + 1 + n], "big")
    s = i + 1 + n
    return b[s:s + ln], s + ln


def _mp_str(b, i):
    t = b[i]
    if 0xa0 <= t <= 0xbf:
        ln, s = t & 0x1f, i + 1
    else:
        n = {0xd9: 1, 0xda: 2, 0xdb: 4}[t]
        ln, s = int.from_bytes(b[i + 1:i + 1 + n], "big"), i + 1 + n
    return b[s:s + ln].decode("ascii"), s + ln


def outer_decode(b):
    """(sealed bytes, stamp str) of an outer notification, or None."""
    try:
        if b[:3] != b"\x94\x01\x05":
            return None
        sealed, i = _mp_bin(b, 3)
        stamp, i = _mp_str(b, i)
        return (sealed, stamp) if i == len(b) else None
    except (KeyError, IndexError, UnicodeDecodeError):
        return None


def outer_encode(sealed, stamp):
    """The canonical outer [1, 5, sealed, stamp] (PROTOCOL.md section 4)."""
    out = bytearray(b"\x94\x01\x05")
    out += (bytes([0xc4, len(sealed)]) if len(sealed) < 256
            else b"\xc5" + len(sealed).to_bytes(2, "big"))
    out += sealed
    s = stamp.encode("ascii")
    if len(s) < 32:
        out.append(0xa0 | len(s))
    elif len(s) < 256:
        out += bytes([0xd9, len(s)])
    else:
        out += b"\xda" + len(s).to_bytes(2, "big")
    return bytes(out + s)


def endorsement_decode(b):
    """{created, expires, signer, subject, tier} of an endorsement, or None."""
    try:
        if b[:3] != b"\x98\x01\x04":
            return None
        created, i = _mp_uint(b, 3)
        expires, i = _mp_uint(b, i)
        signer, i = _mp_bin(b, i)
        subject, i = _mp_bin(b, i)
        tier, i = _mp_uint(b, i)
        return {"created": created, "expires": expires, "signer": signer,
                "subject": subject, "tier": tier}
    except (KeyError, IndexError):
        return None


# ---- hashcash -----------------------------------------------------------------------

def stamp_ext(sealed):
    """pst_notify_stamp_ext: pn1= and the first 16 bytes of BLAKE2b-256."""
    return "pn1=" + hashlib.blake2b(sealed, digest_size=32).digest()[:16].hex()


def zero_bits(stamp):
    d = int.from_bytes(hashlib.sha1(stamp.encode()).digest(), "big")
    return 160 - d.bit_length()


def stamp_date(t):
    return time.strftime("%y%m%d%H%M%S", time.gmtime(t))


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _counter(n):
    s = ""
    while True:
        s = _B64[n % 64] + s
        n //= 64
        if n == 0:
            return s


def mint(bits, resource, ext, when=None, claim=None):
    """A version-1 stamp claiming `claim` bits (default bits) whose SHA-1 has
    at least `bits` leading zero bits, dated `when` (default now)."""
    claim = bits if claim is None else claim
    rand = base64.b64encode(os.urandom(12)).decode()
    head = f"1:{claim}:{stamp_date(when or time.time())}:{resource}:{ext}:{rand}:"
    n = 0
    while zero_bits(head + _counter(n)) < bits:
        n += 1
    return head + _counter(n)


def forge(claim, resource, ext, when=None):
    """A well-formed stamp claiming `claim` bits whose SHA-1 has fewer."""
    rand = base64.b64encode(os.urandom(12)).decode()
    head = f"1:{claim}:{stamp_date(when or time.time())}:{resource}:{ext}:{rand}:"
    n = 0
    while zero_bits(head + _counter(n)) >= claim:
        n += 1
    return head + _counter(n)


# ---- the nodes ------------------------------------------------------------------------

def start_all(c, names, seed, extra=None, conf=None):
    """Starts a node per name (seeded with seed) without waiting for each in
    turn, then waits until every one answers and has joined. conf: lines to
    add to a node's postern.conf, by name."""
    extra = extra or {}
    homes = {name: c.new_home(name, f"{name}@trust.example") for name in names}
    for name, lines in (conf or {}).items():
        with open(homes[name].file("postern.conf"), "a") as f:
            f.write(lines)
    nodes = {name: c.start(homes[name], [seed], extra=extra.get(name, FAST), wait=False)
             for name in names}
    for nd in nodes.values():
        nd.wait_ready()
    for nd in nodes.values():
        nd.wait_joined()
    return nodes


def trust_set(c, owner, other, tier):
    rc, out, err = c.cli(["trust", "set", other.home.fingerprint, tier, "--name", other.name,
                          "--home", owner.home.path])
    check(rc == 0, f"trust set {other.name} {tier} on {owner.name} failed ({rc}): {err}")


def send(c, sender, rcpt, pow_mode, subject):
    rc, doc, err = harness.mail_send(c, sender.home, to=[rcpt.home.fingerprint], subject=subject,
                                     body=f"{subject}\n", extra=["--pow", pow_mode])
    return doc


def rejected(node, reason):
    return node.counters().get(f"rejected.inbox.{reason}", 0)


def wait_rejected(node, reason, at_least, timeout=30):
    return harness.wait_counter(node, f"rejected.inbox.{reason}", at_least, timeout)


def folder_of(home, path):
    """'INBOX' or the Maildir++ folder ('.Known', ...) a delivered file is in."""
    rel = os.path.relpath(path, home.file("Maildir")).split(os.sep)
    return "INBOX" if rel[0] in ("new", "cur") else rel[0]


class NoticeLog:
    """Every notice of `home`'s node, from every status and inbox answer."""

    def __init__(self, c, home):
        self.home = home
        self.notices = []
        inner = c.cli_json

        def cli_json(args, timeout=harness.CLI_TIMEOUT_S):
            rc, doc, err = inner(args, timeout)
            if (args and args[0] in ("status", "inbox") and home.path in args
                    and isinstance(doc, dict)):
                self.notices += [(args[0], n) for n in doc.get("notices", [])]
            return rc, doc, err

        c.cli_json = cli_json

    def about(self, fingerprint):
        return [(cmd, n) for cmd, n in self.notices if fingerprint in n]
