"""Bad input of every kind (issue 4, items 10 and 11): a clear error or a
clean close of that peer only, and everyone else keeps working."""
import os
import socket
import struct
import time

import pytest

from limpet.wire import WireError

from limpet import wire
from limpet.client import Client, ProtocolError

from conftest import read_all, rss_kb

PRE = wire.PREAMBLE


def raw(host):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(host.address)
    return s


def handshaken(host):
    s = raw(host)
    s.sendall(wire.hello())
    buf = bytearray()
    while (w := wire.read_welcome(buf)) is None:
        buf += s.recv(65536)
    return s, bytearray(buf[w[1]:])


def frames_until_close(s, buf=b""):
    dec = wire.Decoder()
    dec.feed(bytes(buf) + read_all(s))
    out = []
    while (f := dec.next()) is not None:
        out.append(f)
    return out


def assert_still_serving(host):
    with Client(host.address) as c:
        assert c.eval(c.clone(), "1 + 1", interactive=True).value == "2"


def assert_nothing_left(host):
    """Once a client that broke off is noticed, the server holds nothing of
    it: only the checking connection remains."""
    deadline = time.monotonic() + 5
    with Client(host.address) as c:
        while (stats := c.request("describe").final["stats"]) != {"connections": 1,
                                                                   "sessions": 0}:
            assert time.monotonic() < deadline, stats
            time.sleep(0.02)
        assert c.eval(c.clone(), "1 + 1", interactive=True).value == "2"


def error_reply_stays_open(host, header, payload=b""):
    """Sends one bad request on a fresh connection: returns the error header,
    after checking that the same connection still answers a ping."""
    with Client(host.address) as c:
        c.send(header, payload)
        h, _ = c.read_frame()
        assert h["op"] == "error"
        assert c.request("ping", b"still").frames[-1][1] == b"still"
        return h


# --- before the handshake: one answer, then closed ---------------------------

def test_garbage_text_is_just_bad_python(host):
    s = raw(host)
    s.sendall(b"hello there\n\xff\xfe\x00garbage\n")
    s.shutdown(socket.SHUT_WR)
    got = read_all(s)   # text mode: each line is Python, and these are not
    assert got.startswith(b"limpet ") and b"SyntaxError" in got
    assert_still_serving(host)


def test_bad_magic(host):
    s = raw(host)
    s.sendall(b"\0LIMPET\n" + wire.encode({"op": "hello"}))
    got = read_all(s)
    assert got.startswith(PRE)
    (h, _), = frames_until_close_bytes(got[len(PRE):])
    assert h["code"] == "bad-preamble"
    assert_still_serving(host)


def frames_until_close_bytes(data):
    dec = wire.Decoder()
    dec.feed(data)
    out = []
    while (f := dec.next()) is not None:
        out.append(f)
    return out


@pytest.mark.parametrize("name,data,code", [
    ("frame-before-handshake", wire.encode({"op": "ping", "id": 1}), "handshake-required"),
    ("bad-version", wire.encode({"op": "hello", "id": 0, "protocol": [9], "client": "t"}),
     "bad-version"),
    ("header-not-json", struct.pack(">II", 3, 0) + b"{x}", "bad-header"),
    ("header-not-object", struct.pack(">II", 2, 0) + b"[]", "bad-header"),
    ("oversized-hello", struct.pack(">II", 1 << 20, 0), "frame-too-large"),
    ("negative-length", struct.pack(">II", 0xFFFFFFFF, 0), "frame-too-large"),
    ("missing-field", wire.encode({"op": "hello", "id": 0, "protocol": [1]}), "bad-field"),
    ("nul-in-header", struct.pack(">II", 8, 0) + b'{"a":1\x00}', "bad-header"),
])
def test_bad_handshake(host, name, data, code):
    s = raw(host)
    s.sendall(PRE + data)
    got = read_all(s)   # the server closes after answering
    assert got.startswith(PRE), got
    (h, _), = frames_until_close_bytes(got[len(PRE):])
    assert h["op"] == "error" and h["code"] == code and h["message"]
    assert_still_serving(host)


def test_truncated_hello_then_gone(host):
    s = raw(host)
    s.sendall(PRE + wire.encode({"op": "hello", "id": 0, "protocol": [1], "client": "t"})[:10])
    s.close()
    assert_nothing_left(host)


@pytest.mark.slow
def test_silent_peer_times_out(host):
    s = raw(host)
    s.sendall(PRE)   # a protocol peer that never says hello
    t0 = time.monotonic()
    got = read_all(s)
    assert 4 < time.monotonic() - t0 < 9
    (h, _), = frames_until_close_bytes(got[len(PRE):])
    assert h["code"] == "timeout"


# --- after the handshake ---------------------------------------------------

def test_oversized_frame_closes_only_that_peer(host):
    s, buf = handshaken(host)
    s.sendall(struct.pack(">II", 2, (16 << 20) + 1))
    (h, _), = frames_until_close(s, buf)
    assert h["code"] == "frame-too-large"
    assert_still_serving(host)


def test_garbage_header_closes_only_that_peer(host):
    s, buf = handshaken(host)
    s.sendall(struct.pack(">II", 7, 0) + b"garbage")
    (h, _), = frames_until_close(s, buf)
    assert h["code"] == "bad-header"
    assert_still_serving(host)


def test_truncated_frame_then_gone(host):
    s, _ = handshaken(host)
    s.sendall(wire.encode({"op": "eval", "id": 1, "session": "1"}, b"1+1")[:-2])
    s.close()
    assert_nothing_left(host)


def test_unknown_operation(host):
    h = error_reply_stays_open(host, {"op": "frobnicate", "id": 5})
    assert h["code"] == "unknown-op" and h["re"] == 5


def test_reserved_operation(host):
    h = error_reply_stays_open(host, {"op": "env-create", "id": 6, "env": "x"})
    assert h["code"] == "not-supported" and h["re"] == 6


def test_missing_field(host):
    h = error_reply_stays_open(host, {"op": "eval", "id": 7}, b"1")
    assert h["code"] == "bad-field" and h["field"] == "session" and h["re"] == 7


def test_mistyped_field(host):
    h = error_reply_stays_open(host, {"op": "eval", "id": 8, "session": 1}, b"1")
    assert h["code"] == "bad-field" and h["field"] == "session"


def test_missing_id(host):
    h = error_reply_stays_open(host, {"op": "ping"})
    assert h["code"] == "bad-field" and h["field"] == "id" and "re" not in h


@pytest.mark.parametrize("code", [b"print('\xff')", b"1\x00+1"], ids=["not-utf8", "nul"])
def test_code_that_is_not_text(host, code):
    with Client(host.address) as c:
        s = c.clone()
        with pytest.raises(ProtocolError) as e:
            c.eval(s, code)
        assert e.value.code == "bad-text"
        assert c.eval(s, "1", interactive=True).value == "1"   # the session goes on


def test_payload_where_none_belongs(host):
    with Client(host.address) as c:
        with pytest.raises(ProtocolError) as e:
            c.request("close", b"x", session=c.clone())
        assert e.value.code == "bad-field" and e.value.header["field"] == "payload"


def test_closed_session(host):
    with Client(host.address) as c:
        s = c.clone()
        c.request("close", session=s)
        for op, payload in [("eval", b"1"), ("close", b""), ("interrupt", b"")]:
            with pytest.raises(ProtocolError) as e:
                c.request(op, payload, session=s)
            assert e.value.code == "no-session"


def test_another_connections_session(host):
    with Client(host.address) as a, Client(host.address) as b:
        s = a.clone()
        with pytest.raises(ProtocolError) as e:
            b.eval(s, "1")
        assert e.value.code == "no-session"
        assert a.eval(s, "1", interactive=True).value == "1"


def test_second_hello(host):
    with Client(host.address) as c:
        with pytest.raises(ProtocolError) as e:
            c.request("hello", protocol=[1], client="again")
        assert e.value.code == "unknown-op"


def test_flood_of_connections(make_host):
    h = make_host(LIMPET_TEST_MAX_CONNECTIONS=4)
    held = [Client(h.address) for _ in range(4)]
    s = socket.socket(socket.AF_UNIX)
    s.connect(h.address)
    s.settimeout(5)
    got = read_all(s)
    assert got.startswith(b"limpet: too many connections (4)\n")
    with pytest.raises(wire.WireError) as e:   # a protocol client reads the same refusal
        Client(h.address)
    assert e.value.code == "too-many"
    held.pop().close()
    time.sleep(0.2)
    with Client(h.address) as c:   # a freed place is taken again
        assert c.request("ping").status == "ok"
    for c in held:
        c.close()


# --- departures ---------------------------------------------------------------

def sessions_open(host):
    with Client(host.address) as c:
        return c.request("describe").final["stats"]


def test_client_killed_mid_evaluation(host):
    base = sessions_open(host)
    pid = os.fork()
    if pid == 0:
        c = Client(host.address)
        s = c.clone()
        c.send({"op": "eval", "id": 1, "session": s},
               b"import time\nfor i in range(20):\n    print(i)\n    time.sleep(0.05)\n")
        time.sleep(0.2)
        os._exit(0)   # vanish mid-evaluation, socket and all
    os.waitpid(pid, 0)
    time.sleep(1.5)   # the evaluation finishes, its output is dropped
    assert sessions_open(host) == base
    assert host.alive()
    assert_still_serving(host)


def test_client_gone_mid_frame(host):
    base = sessions_open(host)
    for cut in (1, 5, 9, 20):
        s, _ = handshaken(host)
        s.sendall(wire.encode({"op": "clone", "id": 1}) + wire.encode({"op": "ping", "id": 2})[:cut])
        s.close()
    time.sleep(0.3)
    assert sessions_open(host) == base


def test_client_that_never_reads(host):
    """A client that asks for lots of output and reads none blocks only its
    own session, with bounded memory in the host."""
    before = rss_kb(host.proc.pid)
    s, _ = handshaken(host)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(wire.encode({"op": "clone", "id": 1}))
    sid = None
    dec = wire.Decoder()
    while sid is None:
        dec.feed(s.recv(4096))
        while (f := dec.next()) is not None:
            if f[0].get("re") == 1:
                sid = f[0]["session"]
    # 400 MB of output asked for; unbounded buffering would hold most of it
    s.sendall(wire.encode({"op": "eval", "id": 3, "session": sid},
                          b"for i in range(400):\n    print('z' * 1_000_000)\n"))
    time.sleep(2)   # the host writes until the socket is full, then waits
    with Client(host.address) as other:   # everyone else is served meanwhile
        r = other.eval(other.clone(), "data['n']", interactive=True)
        assert int(r.value) > 0
    grown = rss_kb(host.proc.pid) - before
    print(f"host RSS grew by {grown} KB with 400 MB of output unread")
    assert grown < 40_000   # the per-session queue bound (4 MiB) and socket buffers
    s.close()
    time.sleep(0.5)
    assert_still_serving(host)


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan holds freed memory in quarantine (up to 256 MB) by design, "
                           "so RSS tells nothing there")
def test_no_growth_over_many_departures(host):
    """Clients that come, evaluate, and leave in every way, hundreds of times:
    the host's memory stays flat (what each one held is freed)."""
    def churn(n):
        for i in range(n):
            c = Client(host.address)
            s = c.clone()
            c.eval(s, f"print('x' * {i % 7 * 1000})")
            c.clone()
            if i % 3 == 0:   # gone mid-evaluation, sessions still open
                c.send({"op": "eval", "id": 999, "session": s}, b"import time; time.sleep(0.01)")
            elif i % 3 == 1:
                c.request("close", session=s)
            c.close()

    churn(150)   # warm up allocator pools and caches
    time.sleep(0.5)
    before = rss_kb(host.proc.pid)
    churn(450)
    time.sleep(0.5)
    grown = rss_kb(host.proc.pid) - before
    print(f"host RSS {before} KB -> {before + grown} KB over 450 clients")
    assert grown < 3000, f"host RSS grew by {grown} KB over 450 clients"
    with Client(host.address) as c:
        assert c.request("describe").final["stats"] == {"connections": 1, "sessions": 0}


def test_session_limit(make_host):
    h = make_host(LIMPET_TEST_MAX_SESSIONS=3)
    with Client(h.address) as c:
        sessions = [c.clone() for _ in range(3)]
        with pytest.raises(ProtocolError) as e:
            c.clone()
        assert e.value.code == "too-many" and e.value.header["message"] == "too many sessions"
        assert c.request("ping").status == "ok"   # the connection stays
        c.request("close", session=sessions[0])
        assert c.clone()   # a freed place is taken again


def test_session_limit_refuses_a_hello_that_asks_for_a_session(make_host):
    h = make_host(LIMPET_TEST_MAX_SESSIONS=1)
    with Client(h.address, session=True) as first:
        assert first.welcome["session"]
        with pytest.raises(WireError) as e:
            Client(h.address, session=True)
        assert e.value.code == "too-many" and "too many sessions" in str(e.value)
        with Client(h.address) as other:     # a hello without a session still gets in
            assert other.request("ping").status == "ok"
