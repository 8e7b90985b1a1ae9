"""Plain-text mode (issue 4, item 4): nc or socat on the same socket gets a
REPL, detected from the first bytes, over the same sessions."""
import shutil
import socket
import time

import pexpect
import pytest

from limpet.client import Client


def connect(host):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(host.address)
    return s


def read_until(s, marker):
    data = b""
    while not data.endswith(marker):
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data


def test_banner_and_prompt_for_a_silent_peer(host):
    s = connect(host)   # a person with nc says nothing at first
    data = read_until(s, b">>> ")
    assert data.startswith(b"limpet ")
    assert f"pid {host.proc.pid} (testapp); plain-text mode".encode() in data


@pytest.mark.skipif(shutil.which("nc") is None, reason="needs netcat-openbsd")
def test_a_session_with_nc(host):
    nc = pexpect.spawn("nc", ["-U", host.address], encoding="utf-8", timeout=10)
    nc.expect(r"plain-text mode, exit\(\) or Ctrl\+D to leave\r\n>>> ")
    nc.sendline("x = 41")
    nc.expect(">>> ")
    nc.sendline("x + 1")
    nc.expect(r"42\r\n>>> ")
    nc.sendline("for i in range(2):")
    nc.expect(r"\.\.\. ")
    nc.sendline("    print('line', i)")
    nc.expect(r"\.\.\. ")
    nc.sendline("")
    nc.expect(r"line 0\r\nline 1\r\n>>> ")
    nc.sendline("1/0")
    nc.expect(r"ZeroDivisionError: division by zero\r\n>>> ")
    nc.sendline("print('\\x1b[1mbold\\x1b[0m caf\\u00e9')")
    nc.expect("\x1b\\[1mbold\x1b\\[0m caf\u00e9\r\n>>> ")
    nc.sendline("name = input('who? ')")
    nc.expect("who\\? ")
    nc.sendline("ann")
    nc.expect(">>> ")
    nc.sendline("name")
    nc.expect(r"'ann'\r\n>>> ")
    nc.sendline("exit()")
    nc.expect(pexpect.EOF)
    # the same namespace as every other session
    with Client(host.address) as c:
        assert c.eval(c.clone(), "x", interactive=True).value == "41"


def test_ctrl_c_line_interrupts(host):
    s = connect(host)
    # a compound statement ends with a blank line, as in the REPL
    s.sendall(b"while True: pass\n\n")
    read_until(s, b">>> ... ")   # the banner's prompt, then the block's
    time.sleep(0.3)
    s.sendall(b"\x03\n")
    data = read_until(s, b">>> ")
    assert b"KeyboardInterrupt" in data
    s.sendall(b"6 * 7\n")
    assert read_until(s, b">>> ").startswith(b"42\n")
    s.sendall(b"for i in range(3):\n")
    read_until(s, b"... ")
    s.sendall(b"\x03\n")   # at the prompt: drops the pending block
    read_until(s, b">>> ")
    s.sendall(b"'ok'\n")
    assert read_until(s, b">>> ") == b"'ok'\n>>> "


def test_typed_ahead_lines(host):
    s = connect(host)
    s.sendall(b"a = input()\nhello\nprint(a * 2)\n")
    read_until(s, b"hellohello\n>>> ")


def test_line_too_long(host):
    s = connect(host)
    read_until(s, b">>> ")
    s.sendall(b"x" * 70000 + b"\n")
    data = read_until(s, b">>> ")
    assert b"line too long" in data
    s.sendall(b"2 + 2\n")
    assert read_until(s, b">>> ").endswith(b"4\n>>> ")


def test_end_of_input_closes_the_session(host):
    s = connect(host)
    read_until(s, b">>> ")
    s.shutdown(socket.SHUT_WR)   # Ctrl+D
    assert s.recv(100) == b""
    time.sleep(0.2)
    with Client(host.address) as c:
        assert c.request("describe").final["stats"]["sessions"] == 0
