"""limpet.start()'s limits (issue 10, item 8): max_connections and
max_sessions, what they let in, and the arguments they refuse; stop()'s
timeout. Each test runs a fresh host process."""
import textwrap

import pytest

from conftest import run_python


def test_max_connections_refuses_the_one_too_many(runtime_dir):
    code = textwrap.dedent("""
        import socket, limpet
        from limpet import wire
        from limpet.client import Client
        srv = limpet.start({"x": 41}, max_connections=2)
        a, b = Client(srv.address), Client(srv.address)
        # a third, while both are held: refused, on its own socket...
        s = socket.socket(socket.AF_UNIX)
        s.connect(srv.address)
        s.settimeout(5)
        got = b""
        while chunk := s.recv(4096):
            got += chunk
        print(got.split(b"\\n")[0].decode())   # the plain-text line (a frame follows)
        # ...and to a protocol client, with the protocol's code
        try:
            Client(srv.address)
        except wire.WireError as e:
            print(e.code, e)
        # the first two work all along
        for c in (a, b):
            print(c.eval(c.clone(), "x + 1", interactive=True).value)
        print(a.request("describe").final["limits"]["max_connections"])
        b.close()
        import time; time.sleep(0.2)
        with Client(srv.address) as c:   # a freed place is taken again
            print(c.request("ping").final["op"])
        a.close()
        srv.stop()
    """)
    p = run_python(code, runtime_dir)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "limpet: too many connections (2)",
        "too-many too-many: too many connections (2)",
        "42", "42",
        "2",
        "done",
    ], p.stdout + p.stderr


def test_limits_default_when_not_given(runtime_dir):
    code = textwrap.dedent("""
        import limpet
        from limpet.client import Client
        with limpet.start({}, max_connections=None) as srv, Client(srv.address) as c:
            limits = c.request("describe").final["limits"]
            print(limits["max_connections"], limits["max_sessions"])
    """)
    p = run_python(code, runtime_dir)
    assert p.stdout.split() == ["256", "4096"], p.stderr


@pytest.mark.parametrize("param", ["max_connections", "max_sessions"])
@pytest.mark.parametrize("bad, error, message", [
    ("0", "ValueError", "must be between 1 and 4294967295, not 0"),
    ("-1", "ValueError", "must be between 1 and 4294967295, not -1"),
    ("2**32", "ValueError", "must be between 1 and 4294967295, not 4294967296"),
    ("10**30", "ValueError", "must be between 1 and 4294967295, not 1000000000000000000000000000000"),
    ("2.0", "TypeError", "must be an int or None, not float"),
    ("'2'", "TypeError", "must be an int or None, not str"),
    ("True", "TypeError", "must be an int or None, not bool"),
])
def test_bad_limits_are_clear_errors(runtime_dir, param, bad, error, message):
    code = textwrap.dedent(f"""
        import sys, limpet
        try:
            limpet.start({{}}, {param}={bad})
        except Exception as e:
            print(type(e).__name__, e)
        print(type(sys.stdout).__name__, limpet._running)   # nothing left behind
        limpet.start({{}}, {param}=3).stop()              # and a good one still starts
    """)
    p = run_python(code, runtime_dir)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [f"{error} limpet: {param} {message}",
                                     "TextIOWrapper None"], p.stderr


@pytest.mark.parametrize("bad", ["-1", "float('nan')", "float('inf')", "10**6"])
def test_bad_stop_timeout_leaves_the_server_running(runtime_dir, bad):
    code = textwrap.dedent(f"""
        import limpet
        from limpet.client import Client
        srv = limpet.start({{}})
        try:
            srv.stop(timeout={bad})
        except ValueError as e:
            print(e)
        with Client(srv.address) as c:
            print(srv.running, limpet._running is srv, c.request("ping").final["op"])
        srv.stop()
        print(srv.running, limpet._running)
    """)
    p = run_python(code, runtime_dir)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["limpet: timeout must be between 0 and 86400 seconds",
                                     "True True done", "False None"], p.stderr


@pytest.mark.parametrize("bad", ["float('nan')", "float('inf')"])
def test_grace_not_a_number(runtime_dir, bad):
    p = run_python(f"import limpet\ntry:\n    limpet.start({{}}, grace={bad})\n"
                   "except ValueError as e:\n    print(e)", runtime_dir)
    assert p.stdout.strip() == "grace must be between 0 and 3600 seconds", p.stderr
