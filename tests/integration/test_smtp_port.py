#!/usr/bin/env python3
"""What a taken submission port does (docs/SMTP.md, "The port").

- The default port (1587) taken by someone else: the node starts anyway,
  without submission, says so in one log line that names the setting, and
  `status` shows the listener off. A second posternd on one machine, or a
  program already on 1587, must not keep a person's node from running.
- A port the user chose (--smtp-port N) taken: posternd refuses to start
  and names the port and the flag, since the user asked for that port.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check  # noqa: E402

DEFAULT_PORT = 1587


class DefaultPortNode(harness.Node):
    """A node started without --smtp-port: the built-in default applies."""

    def argv(self):
        a = super().argv()
        i = a.index("--smtp-port")
        del a[i:i + 2]
        return a


def hold(port):
    """A listening socket on 127.0.0.1:port, or None when someone else
    already holds it (which is as good for this test)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return s
    except OSError:
        s.close()
        return None


def test(c):
    held = hold(DEFAULT_PORT)
    try:
        node = DefaultPortNode(c, c.new_home("d", "d@it.example"), [], [])
        node.spawn()
        c.nodes.append(node)
        st = node.wait_ready()
        check(st["ports"]["smtp"] == 0, f"the listener is on though 1587 is taken: {st['ports']}")
        log = node.log_tail()
        check("SMTP submission is off" in log and "smtp_port" in log,
              f"no log line says submission is off and what to set:\n{log}")
        check(node.counters().get("smtp.default_port_taken", 0) == 1,
              f"counter smtp.default_port_taken: {node.counters()}")
        node.stop()
    finally:
        if held:
            held.close()

    chosen = hold(0)
    port = chosen.getsockname()[1]
    try:
        home = c.new_home("e", "e@it.example")
        n = harness.Node(c, home, [], ["--smtp-port", str(port)])
        n.spawn()
        c.nodes.append(n)
        rc = harness.poll(lambda: n.proc.poll(), 15, "posternd to refuse a taken --smtp-port")
        log = n.log_tail()
        check(rc != 0 and f"port {port}" in log and "--smtp-port" in log,
              f"a taken chosen port: exit {rc}\n{log}")
        n.returncode = rc
    finally:
        chosen.close()


if __name__ == "__main__":
    harness.main(test, "smtp_port")
