"""TCP listeners (issue 4, item 3): opt-in, loopback by default, v4 and v6;
peers the kernel shows as us get in, others need the token."""
import json
import os
import socket
import stat

import pytest

from limpet import wire
from limpet.client import Client

from conftest import read_all, run_python


def as_nobody(fn):
    """Runs fn() in a child with uid 65534; returns the bytes it returned."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgid(65534)
            os.setuid(65534)
            os.write(w, fn())
        except Exception as e:   # noqa: BLE001 - reported to the parent
            os.write(w, f"child failed: {e!r}".encode())
        os._exit(0)
    os.close(w)
    got = b""
    while chunk := os.read(r, 65536):
        got += chunk
    os.waitpid(pid, 0)
    return got


def tcp_connect(address):
    host, port = (address[1:].rsplit("]:", 1) if address.startswith("[")
                  else address.rsplit(":", 1))
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


@pytest.mark.parametrize("address", ["127.0.0.1:0", "[::1]:0"])
def test_loopback_tcp_same_user(make_host, address, runtime_dir):
    h = make_host(LIMPET_TEST_ADDRESS=address)
    assert h.address.startswith("127.0.0.1:" if address[0] != "[" else "[::1]:")
    with Client(h.address) as c:   # the kernel vouches for us: no token needed
        assert c.eval(c.clone(), "data['n'] > 0", interactive=True).value == "True"
    token_file = runtime_dir / "limpet" / f"{h.proc.pid}.token"
    assert token_file.read_text().strip() == h.token
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    record = json.loads((runtime_dir / "limpet" / f"{h.proc.pid}.json").read_text())
    assert record["address"] == h.address and "token" not in record


def test_v4_client_of_a_dual_stack_listener(make_host):
    h = make_host(LIMPET_TEST_ADDRESS="[::]:0", LIMPET_TEST_ALLOW_REMOTE=1)
    port = h.address.rsplit(":", 1)[1]
    with Client(f"127.0.0.1:{port}") as c:   # found under its unmapped v4 address
        assert c.request("ping", b"v4").frames[-1][1] == b"v4"


def test_non_loopback_needs_allow_remote(runtime_dir):
    p = run_python("import limpet\ntry:\n    limpet.start({}, '0.0.0.0:0')\n"
                   "except ValueError as e:\n    print(e)", runtime_dir)
    assert "needs allow_remote=True" in p.stdout, p.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to be another uid")
def test_other_user_needs_the_token(make_host):
    h = make_host(LIMPET_TEST_ADDRESS="127.0.0.1:0")
    no_token, bad_token, good = (wire.hello(), wire.hello(token="x" * 64),
                                 wire.hello(token=h.token))

    def attempt(hello):
        def fn():
            s = tcp_connect(h.address)
            s.sendall(hello)
            return read_all(s) if hello is not good else s.recv(65536)
        return as_nobody(fn)

    for hello, message in [(no_token, b"this peer must send the server's token"),
                           (bad_token, b"forbidden: wrong token")]:
        got = attempt(hello)
        with pytest.raises(wire.WireError) as e:
            wire.read_welcome(bytearray(got))
        assert e.value.code == "forbidden" and message.decode() in str(e.value)
    header, _ = wire.read_welcome(bytearray(attempt(good)))
    assert header["status"] == "ok"
    h.stop()
    log = h.proc.stderr.read()
    assert b"no token" in log and b"wrong token" in log


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to be another uid")
def test_other_user_in_text_mode_types_the_token(make_host):
    h = make_host(LIMPET_TEST_ADDRESS="127.0.0.1:0")

    def fn(token):
        def run():
            s = tcp_connect(h.address)
            data = b""
            while not data.endswith(b"token: "):
                data += s.recv(100)
            s.sendall(token + b"\n1 + 1\n")
            s.shutdown(socket.SHUT_WR)
            return read_all(s)
        return run

    assert b"forbidden: wrong token" in as_nobody(fn(b"nope"))
    got = as_nobody(fn(h.token.encode()))
    assert b"plain-text mode" in got and b">>> 2\n>>> " in got
