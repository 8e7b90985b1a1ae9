"""Server lifecycle (issue 4, item 1) and who may connect (item 3): a real
host process, real sockets."""
import json
import os
import shutil
import socket
import stat
import tempfile
import textwrap
import time

import pytest

from limpet.client import Client

from conftest import run_python


def test_private_socket_and_discovery_record(host, runtime_dir):
    d = runtime_dir / "limpet"
    assert host.address == str(d / f"{host.proc.pid}.sock")
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    st = os.stat(host.address)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    record = json.loads((d / f"{host.proc.pid}.json").read_text())
    assert record["pid"] == host.proc.pid
    assert record["name"] == "testapp"
    assert record["address"] == host.address
    assert record["argv"][0].endswith("app.py")
    assert record["python"].startswith("3.")
    assert abs(record["started"] / 1000 - time.time()) < 60
    assert stat.S_IMODE(os.stat(d / f"{host.proc.pid}.json").st_mode) == 0o600


def test_hello_reports_identity(host):
    with Client(host.address) as c:
        server = c.welcome["server"]
        assert server["pid"] == host.proc.pid and server["name"] == "testapp"
        assert c.welcome["protocol"] == 1


def test_start_returns_at_once_and_stop_cleans_up(runtime_dir):
    code = textwrap.dedent("""
        import os, limpet
        from limpet.client import Client, ProtocolError
        tasks = lambda: len(os.listdir("/proc/self/task"))
        before = tasks()
        srv = limpet.start({})
        c = Client(srv.address)
        s = c.clone()
        assert c.eval(s, "print('in')").out == b"in\\n"
        srv.stop()
        # the client got a bye, then end of stream
        h, _ = c.read_frame()
        assert h == {"op": "bye", "code": "shutdown", "message": "the server is stopping"}, h
        try:
            c.read_frame()
            raise SystemExit("connection still open")
        except ConnectionError:
            pass
        assert not os.path.exists(srv.address)
        assert not os.path.exists(os.path.join(os.path.dirname(srv.address), f"{os.getpid()}.json"))
        assert tasks() == before, (tasks(), before)
        assert not srv.running
        print("ok", repr(srv))
    """)
    p = run_python(code, runtime_dir)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ok <limpet.Server")


def test_second_start_is_a_clear_error(runtime_dir):
    code = textwrap.dedent("""
        import limpet
        a = limpet.start({})
        try:
            limpet.start({})
        except RuntimeError as e:
            print(e)
        a.stop()
        b = limpet.start({})   # after a stop, a new one may start
        b.stop()
    """)
    p = run_python(code, runtime_dir)
    assert p.returncode == 0, p.stderr
    assert "a server is already running in this process" in p.stdout


def test_restarts_leak_nothing(runtime_dir):
    """start/stop/start: each install of the routers over sys.stdout, sys.stderr
    and sys.stdin replaces the last one's; nothing of it is kept, and the
    host's own streams are back in place after every stop."""
    code = textwrap.dedent("""
        import gc, sys, limpet
        from limpet.client import Client
        streams = (sys.stdout, sys.stderr, sys.stdin, sys.displayhook)
        def routers():
            gc.collect()
            return sum(type(o).__name__ == "Router" for o in gc.get_objects())
        def refs():
            return [sys.getrefcount(o) for o in streams]
        limpet.start({}).stop()   # the first start imports what it needs
        before, before_refs = routers(), refs()
        for i in range(20):
            srv = limpet.start({"i": i})
            assert type(sys.stdout).__name__ == "Router"
            with Client(srv.address) as c:   # each new install routes a session's output
                assert c.eval(c.clone(), "print(i)").out == b"%d\\n" % i
            srv.stop()
            assert (sys.stdout, sys.stderr, sys.stdin, sys.displayhook) == streams
        print(routers() - before, [a - b for a, b in zip(refs(), before_refs)])
    """)
    p = run_python(code, runtime_dir)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "0 [0, 0, 0, 0]", p.stdout


def test_failed_start_replaces_nothing(runtime_dir):
    """A start() that cannot replace everything puts back what it replaced:
    here threading._start_new_thread is missing, then cannot be set (the
    last thing replaced)."""
    code = textwrap.dedent("""
        import sys, types, threading, _thread, limpet
        before = (sys.stdout, sys.stderr, sys.stdin, sys.displayhook, _thread.start_new_thread)
        def now():
            return (sys.stdout, sys.stderr, sys.stdin, sys.displayhook, _thread.start_new_thread)
        real = sys.modules["threading"]
        class Stubborn(types.ModuleType):
            def __setattr__(self, name, value):
                raise PermissionError(f"cannot set {name}")
        missing, stubborn = types.ModuleType("threading"), Stubborn("threading")
        types.ModuleType.__setattr__(stubborn, "_start_new_thread", threading._start_new_thread)
        for fake in (missing, stubborn):
            sys.modules["threading"] = fake
            try:
                limpet.start({})
            except Exception as e:
                print(type(e).__name__, e)
            sys.modules["threading"] = real
            print(now() == before, limpet._running)
        limpet.start({}).stop()   # and then it starts
        print(now() == before)
    """)
    p = run_python(code, runtime_dir)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "AttributeError module 'threading' has no attribute '_start_new_thread'", "True None",
        "PermissionError cannot set _start_new_thread", "True None",
        "True"], p.stdout + p.stderr


def test_context_manager(runtime_dir):
    p = run_python("import limpet, os\nwith limpet.start({}) as s:\n    a = s.address\n"
                   "print(os.path.exists(a), s.running)", runtime_dir)
    assert p.stdout.strip() == "False False", p.stderr


def test_stops_itself_at_exit(runtime_dir):
    p = run_python("import limpet\ns = limpet.start({})\nprint(s.address)", runtime_dir)
    assert p.returncode == 0, p.stderr
    assert not os.path.exists(p.stdout.strip())
    assert os.listdir(runtime_dir / "limpet") == []


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="gcc 12's ASan runtime has no fork handlers for its allocator: a "
                           "child forked from a threaded process can deadlock in malloc "
                           "(fixed in LLVM by llvm/llvm-project#75290); passes 60/60 unsanitized")
def test_fork_child_has_no_server(runtime_dir):
    code = textwrap.dedent("""
        import os, limpet
        from limpet.client import Client
        srv = limpet.start({"where": "parent"})
        pid = os.fork()
        if pid == 0:
            ok = limpet._running is None
            own = limpet.start({"where": "child"}, address=srv.address + ".child")
            with Client(own.address) as c:
                ok = ok and c.eval(c.clone(), "where", interactive=True).value == "'child'"
            own.stop()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        with Client(srv.address) as c:   # the parent's server still serves
            print(os.waitstatus_to_exitcode(status), c.eval(c.clone(), "where", interactive=True).value)
        srv.stop()
    """)
    p = run_python(code, runtime_dir)
    assert p.stdout.split() == ["0", "'parent'"], p.stderr


def test_live_socket_is_not_stolen(host, runtime_dir):
    code = f"import limpet\ntry:\n    limpet.start({{}}, address={host.address!r})\nexcept OSError as e:\n    print(e)"
    p = run_python(code, runtime_dir)
    assert "cannot listen on" in p.stdout and "Address already in use" in p.stdout


def test_stale_socket_is_replaced(runtime_dir):
    path = str(runtime_dir / "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()   # the file stays, nobody listens
    p = run_python(f"import limpet\ns = limpet.start({{}}, address={path!r})\nprint(s.address)",
                   runtime_dir)
    assert p.stdout.strip() == path, p.stderr


def test_runtime_dir_must_be_private(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (run / "limpet").mkdir(mode=0o755)   # someone made it readable by all
    p = run_python("import limpet\ntry:\n    limpet.start({})\nexcept OSError as e:\n    print(e)",
                   run)
    assert "Operation not permitted" in p.stdout, p.stdout + p.stderr


def connect_as_nobody(path):
    """What a peer running as uid 65534 reads after connecting to path."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setgid(65534)
        os.setuid(65534)
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.settimeout(5)
            os.write(w, s.recv(4096))
        except OSError as e:
            os.write(w, f"connect failed: {e}".encode())
        os._exit(0)
    os.close(w)
    got = os.read(r, 4096)
    os.waitpid(pid, 0)
    return got


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another uid")
def test_other_users_are_refused_by_the_filesystem(host):
    # the socket is 0600 in a 0700 directory: the kernel refuses first
    assert b"Permission denied" in connect_as_nobody(host.address)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another uid")
def test_other_users_are_refused_by_peer_credentials(make_host):
    """Even when the socket file is opened to all, SO_PEERCRED refuses: one
    clear line for the peer, and a line in the host's log."""
    d = tempfile.mkdtemp(prefix="limpet-test-")
    try:
        os.chmod(d, 0o755)
        path = os.path.join(d, "s.sock")
        h = make_host(LIMPET_TEST_ADDRESS=path)
        os.chmod(path, 0o666)
        got = connect_as_nobody(path)
        assert got.startswith(b"limpet: forbidden: uid 65534 may not use this server\n")
        # then the same refusal for a protocol client: preamble and error frame
        assert b"\0limpet\n" in got and b'"code":"forbidden"' in got
        with Client(path) as c:   # and the owner is still served
            assert c.request("ping", b"x").frames[-1][1] == b"x"
        h.stop()
        assert b"limpet: refused a connection from uid 65534" in h.proc.stderr.read()
    finally:
        shutil.rmtree(d)


def test_servers_lists_live_ones_and_drops_stale_records(host, runtime_dir):
    d = runtime_dir / "limpet"
    # a server that died without cleaning up: its pid is gone
    (d / "999999.json").write_text(json.dumps({"pid": 999999, "name": "dead", "started": 0}))
    (d / "999999.sock").write_text("")
    # a record whose pid now belongs to a process that started after it
    (d / "1.json").write_text(json.dumps({"pid": 1, "name": "reused", "started": 1000}))
    code = "import limpet, json\nprint(json.dumps(limpet.servers()))"
    p = run_python(code, runtime_dir)
    found = json.loads(p.stdout)
    assert [(s["pid"], s["name"]) for s in found] == [(host.proc.pid, "testapp")], p.stderr
    assert found[0]["address"] == host.address
    assert not (d / "999999.json").exists() and not (d / "999999.sock").exists()
    assert not (d / "1.json").exists()
    assert (d / f"{host.proc.pid}.json").exists()


# A host whose only session's code is stuck in a blocking call and became a job.
STUCK_JOB = textwrap.dedent("""
        import time, limpet
        from limpet.client import Client
        srv = limpet.start({}, grace=0.2)
        c = Client(srv.address)
        s = c.clone()
        c.send({"op": "eval", "id": 1, "session": s}, b"import time; time.sleep(30)")
        time.sleep(0.2)
        c.send({"op": "interrupt", "id": 2, "session": s})
        while c.read_frame()[0].get("re") != 2:
            pass
""")


def test_stop_leaves_stuck_jobs_behind_with_a_clear_error(runtime_dir):
    code = STUCK_JOB + textwrap.dedent("""
        t = time.monotonic()
        try:
            srv.stop(timeout=0.5)
        except TimeoutError as e:
            print(e, round(time.monotonic() - t, 1))
    """)
    p = run_python(code, runtime_dir)
    assert p.stdout.strip() == ("limpet: evaluations still running after 500 ms were left "
                                "behind 0.5"), p.stderr


def test_exit_with_a_stuck_job_is_quick(runtime_dir):
    t = time.monotonic()
    p = run_python(STUCK_JOB, runtime_dir)
    assert time.monotonic() - t < 5
    assert p.returncode == 0
    assert "evaluations still running after 1000 ms were left behind" in p.stderr


@pytest.mark.parametrize("bad", ["-1", "4000"])
def test_grace_out_of_range(runtime_dir, bad):
    p = run_python(f"import limpet\ntry:\n    limpet.start({{}}, grace={bad})\n"
                   "except ValueError as e:\n    print(e)", runtime_dir)
    assert p.stdout.strip() == "grace must be between 0 and 3600 seconds", p.stderr
