"""python3 -m limpet, the README's main command, as a user runs it."""
import json
import os
import sys

import pexpect


def test_demo_handshakes_and_says_what_is_missing():
    child = pexpect.spawn(sys.executable, ["-m", "limpet"], encoding="utf-8", timeout=20,
                          env=os.environ)
    child.expect(r"limpet \S+, protocol version 1")
    child.expect(r"server answered: (\{.*\})\r\n")
    welcome = json.loads(child.match.group(1))
    assert welcome["op"] == "done" and welcome["status"] == "ok"
    assert welcome["server"]["name"] == "demo"
    assert welcome["session"] == "1"
    child.expect("not there yet")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
