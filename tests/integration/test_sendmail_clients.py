#!/usr/bin/env python3
"""Real programs that hand mail to sendmail, pointed at `postern sendmail`
(issue 11, part 2), following the recipes of docs/SENDMAIL.md:

1. mutt in batch mode (`mutt -n -F muttrc -s SUBJ -- ADDR < body`, with
   `set sendmail="postern sendmail -oem -oi --home A"`: mutt adds `--`
   before the recipients, and -oi only through this setting); b gets the message with mutt's header
   and the body intact (a lone '.' line kept), and a Bcc (`-b`) recipient d
   gets it too without a Bcc field in anyone's copy;
2. git send-email with --sendmail-cmd: a patch made by git format-patch
   reaches b, subject and diff intact.

Exits 77 (skipped) when mutt or git send-email is not installed here:
scripts/install-deps installs both (packages mutt, git-email and
libmailtools-perl)."""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, note  # noqa: E402
from test_sendmail import newest, outbox_ids  # noqa: E402


def have_git_send_email():
    if shutil.which("git") is None:
        return False
    p = subprocess.run(["git", "send-email", "-h"], capture_output=True, text=True)
    # Debian's git-email needs libmailtools-perl (only recommended) to send
    perl = subprocess.run(["perl", "-MMail::Address", "-e", "1"], capture_output=True)
    return "sendmail-cmd" in (p.stdout + p.stderr) and perl.returncode == 0


def run(argv, env, cwd=None, stdin=None):
    p = subprocess.run(argv, capture_output=True, timeout=120, env=env, cwd=cwd, input=stdin)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def clean_env(c, name):
    """An environment of its own: HOME in the test's temp dir, no user
    configuration of mutt or git read."""
    home = os.path.join(c.tmp, f"{name}-home")
    os.makedirs(home, mode=0o700, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "MUTT", "EMAIL"))}
    env.update(HOME=home, GIT_CONFIG_NOSYSTEM="1", LC_ALL="C.UTF-8", TZ="UTC")
    return env, home


def test_mutt(c, a, b, d):
    env, home = clean_env(c, "mutt")
    muttrc = os.path.join(home, "muttrc")
    with open(muttrc, "w") as f:
        f.write(f'set sendmail="{c.postern} sendmail -oem -oi --home {a.home.path}"\n'
                'set from="A <a@it.example>"\n'
                'set use_from=yes\n'
                'set copy=no\n'
                'set record=""\n'
                f'set folder="{home}/Mail"\n'
                f'set spoolfile="{home}/Mail/inbox"\n'
                'set charset="utf-8"\n')
    body = b"hello from mutt\n.\nthe line above is a lone dot\n"
    before = outbox_ids(c, a)
    rc, out, err = run(["mutt", "-n", "-F", muttrc, "-s", "mutt batch", "-b", d.home.address,
                        "--", "b@it.example"], env, cwd=home, stdin=body)
    check(rc == 0, f"mutt exited {rc}: {out} {err}\n" + c.all_log_tails())
    mid = newest(c, a, before)
    copies = {}
    for n in (b, d):
        copies[n.name] = data = harness.read_bytes(harness.wait_delivered(c, n, mid)[0])
        head, _, text = data.partition(b"\n\n")
        names = [ln.split(b":", 1)[0].lower() for ln in head.split(b"\n")
                 if ln[:1] not in (b" ", b"\t")]
        check(b"subject: mutt batch" in head.lower(), f"{n.name}: no subject:\n{data!r}")
        check(b"bcc" not in names, f"{n.name}'s copy has a Bcc field: {names}")
        # d as a whole address: a Message-ID's random part may end in 'd'
        # right before '@it.example'
        check(not re.search(rb"(?<![\w.+-])" + re.escape(d.home.address.encode()), head),
              f"{n.name}'s header names d:\n{data!r}")
        check(text == body, f"{n.name}: body {text!r}")
    check(copies["b"] == copies["d"], "b's and d's copies differ")
    m = harness.mail_outbox(c, a.home, mid)["messages"][0]
    kinds = {r["fingerprint"]: r["kind"] for r in m["recipients"]}
    want = {b.home.fingerprint: "to", d.home.fingerprint: "bcc"}
    check(kinds == want, f"outbox kinds {kinds}, want {want}")
    note(f"mutt -n -s ... -b d -- b: {mid[:8]} delivered to b and (blind) d")


def test_git(c, a, b):
    env, home = clean_env(c, "git")
    repo = os.path.join(home, "repo")
    os.makedirs(repo)
    git = ["git", "-c", "user.name=A", "-c", "user.email=a@it.example"]
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "root"]):
        rc, out, err = run(git + args, env, cwd=repo)
        check(rc == 0, f"git {args} failed: {err}")
    with open(os.path.join(repo, "hello.c"), "w") as f:
        f.write('int main(void) { return 0; }\n.\n')
    for args in (["add", "hello.c"], ["commit", "-q", "-m", "hello: a program that says nothing"],
                 ["format-patch", "-1", "-o", "out"]):
        rc, out, err = run(git + args, env, cwd=repo)
        check(rc == 0, f"git {args} failed: {err}")
    patch = os.path.join(repo, "out", sorted(os.listdir(os.path.join(repo, "out")))[0])
    before = outbox_ids(c, a)
    rc, out, err = run(git + ["send-email", "--confirm=never", "--suppress-cc=all",
                              "--from=A <a@it.example>", "--to=b@it.example",
                              f"--sendmail-cmd={c.postern} sendmail --home {a.home.path}",
                              patch], env, cwd=repo)
    check(rc == 0, f"git send-email exited {rc}: {out} {err}\n" + c.all_log_tails())
    mid = newest(c, a, before)
    data = harness.read_bytes(harness.wait_delivered(c, b, mid)[0])
    check(b"Subject: [PATCH] hello: a program that says nothing" in data,
          f"b's copy: no patch subject:\n{data!r}")
    check(b"+int main(void) { return 0; }\n+.\n" in data, f"b's copy: the diff:\n{data!r}")
    note(f"git send-email --sendmail-cmd: {mid[:8]} (a patch) delivered to b")


def test(c):
    _, a, b = harness.mail_pair(c)
    d = c.start(c.new_home("d", "d@it.example"), [a])
    d.wait_joined()
    harness.wait_mail_ready(c, [a], [b, d], by_address=True)
    harness.trust(c, d, a)
    test_mutt(c, a, b, d)
    test_git(c, a, b)


if __name__ == "__main__":
    missing = [p for p, ok in (("mutt", shutil.which("mutt")),
                               ("git send-email (git-email, libmailtools-perl)",
                                have_git_send_email())) if not ok]
    if missing:
        print(f"SKIP sendmail_clients: {', '.join(missing)} not installed "
              "(scripts/install-deps installs them)")
        sys.exit(77)
    harness.main(test, "sendmail_clients")
