"""limpet.connect (issue 11, this part): a local child, any command that starts a Python,
and ssh:// against a real sshd on loopback; calls, far exceptions, references, restricted
results, far logs and output, deadlines, a hostile far side, the caller's death."""
import concurrent.futures
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import limpet
from fake_far import fake_far

PYPY = shutil.which("pypy3")


@pytest.fixture
def local():
    with limpet.connect("local") as ctx:
        yield ctx


def test_a_call_runs_in_a_child_with_nothing_installed(local):
    pid = local.call(os.getpid)
    assert pid != os.getpid() and pid == local.agent["pid"]
    assert local.call(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
    name = f"limpet:{pwd.getpwuid(os.getuid()).pw_name}@{os.uname().nodename}:{pid}"
    with open(f"/proc/{pid}/cmdline", "rb") as f:             # ps: limpet:USER@HOST:PID
        assert f.read().split(b"\0")[-2].decode().rstrip() == name
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == name[:15]
    assert local.agent["name"] == name


def test_a_far_exception_comes_back_as_itself_with_where_it_failed(local):
    with pytest.raises(ValueError) as e:
        local.call(int, "x")
    assert e.value.remote_type == "builtins.ValueError"
    assert "invalid literal" in e.value.remote_traceback
    assert any("raised on local" in n for n in getattr(e.value, "__notes__", []))


def test_many_calls_in_flight_on_one_context(local):
    futures = [local.call_async(pow, i, 2) for i in range(50)]
    assert [f.result(timeout=10) for f in futures] == [i * i for i in range(50)]
    assert isinstance(futures[0], concurrent.futures.Future)


def test_a_timeout_is_enforced_on_the_far_side(local):
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        local.call(exec, "while True: pass", timeout=0.3)
    assert time.monotonic() - t < 5
    assert local.call(abs, -3) == 3                       # the context goes on


def test_what_does_not_pickle_comes_back_as_a_ref(local):
    ref = local.call(threading.Lock)
    assert isinstance(ref, limpet.Ref) and "lock" in ref.type
    assert local.refs() == [ref]
    assert "lock" in local.call(repr, ref)                # the far object itself
    ref.release()
    assert local.refs() == []
    with pytest.raises(KeyError):
        local.call(repr, ref)


def test_results_are_plain_data_unless_the_caller_allows_more(tmp_path, monkeypatch):
    (tmp_path / "shapes.py").write_text("class Point:\n    def __init__(self, x):\n"
                                        "        self.x = x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}")
    import shapes
    with limpet.connect("local") as ctx:
        with pytest.raises(limpet.ProtocolError, match="shapes.Point"):
            ctx.call(shapes.Point, 1)
        with pytest.raises(ConnectionError):              # disconnected: no second try
            ctx.call(abs, 1)
    with limpet.connect("local", allow=[shapes.Point]) as ctx:
        assert ctx.call(shapes.Point, 2).x == 2


def test_far_logs_and_output_arrive_in_the_callers_logging(local, caplog):
    caplog.set_level(logging.INFO)
    local.call(logging.getLogger("app").warning, "unpacked")
    local.call(os.system, "echo from-a-child-process")
    local.call(print, "from-print")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(caplog.records) < 3:
        time.sleep(0.02)
    got = {(r.name, r.getMessage()) for r in caplog.records}
    assert ("limpet.ctx.local.app", "unpacked") in got
    assert ("limpet.ctx.local.stdout", "from-a-child-process") in got
    assert ("limpet.ctx.local.stdout", "from-print") in got


OUTPUT_TO_STREAMS = textwrap.dedent('''
    import limpet, os, time
    with limpet.connect("local", output="streams") as ctx:
        ctx.call(os.system, "echo child-out; echo child-err >&2")
        ctx.call(os.write, 2, b"written\\n")
        time.sleep(0.5)                       # output is forwarded beside the answers
''')


def test_far_output_may_go_to_the_callers_own_streams(tmp_path):
    script = tmp_path / "streams.py"
    script.write_text(OUTPUT_TO_STREAMS)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(limpet.__file__)))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "child-out\n"
    assert "child-err\n" in p.stderr and "written\n" in p.stderr
    with pytest.raises(ValueError, match="output"):
        limpet.connect("local", output="files")


@pytest.mark.skipif(PYPY is None, reason="pypy3 is not installed")
def test_the_far_side_may_be_pypy():
    with limpet.connect("local", python=PYPY) as ctx:
        assert ctx.agent["implementation"] == "pypy"
        assert ctx.call(sum, [1, 2, 3]) == 6
        with pytest.raises(ZeroDivisionError):
            ctx.call(divmod, 1, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to be another user")
def test_any_command_that_starts_a_python(tmp_path):
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    with limpet.connect("nobody", command=nobody, python=sys.executable) as ctx:
        assert ctx.call(os.getuid) == 65534
        assert ctx.agent["user"] in ("nobody", "65534")


def test_over_ssh_with_nothing_installed_there(sshd):
    config = sshd.ssh_command.split()[-1]
    with limpet.connect(sshd.url(), ssh_options=["-F", config], python="/usr/bin/python3") as c:
        assert c.call(os.getpid) == c.agent["pid"]
        with pytest.raises(ValueError):
            c.call(int, "x")


def test_an_unreachable_host_says_why(tmp_path):
    with pytest.raises(ConnectionError, match="did not start: ssh ended: .*refused"):
        limpet.connect("ssh://127.0.0.1:1", ssh_options=["-o", "ConnectTimeout=3"])


# a command that asks for a password on stderr, as sudo -S and su do, then runs the rest
ASKS = ["sh", "-c", 'printf "Password: " >&2; read pw; [ "$pw" = hunter2 ] || '
        '{ echo "Sorry." >&2; exit 1; }; exec "$@"', "sh"]


def test_a_first_hop_that_asks_for_a_password(caplog):
    caplog.set_level(logging.DEBUG)
    with limpet.connect("asks", command=ASKS, password=limpet.Secret("hunter2")) as c:
        assert c.call(os.getpid) == c.agent["pid"]
    with pytest.raises(PermissionError, match="'asks': sh asked for a password; give it"):
        limpet.connect("asks", command=ASKS)
    with pytest.raises(PermissionError, match="ended after the password was given: .*Sorry"):
        limpet.connect("asks", command=ASKS, password="wrong")
    assert "hunter2" not in caplog.text and "wrong" not in caplog.text


def test_a_command_that_ends_or_is_not_there_says_why():
    with pytest.raises(ConnectionError, match="'x' did not start: sh ended: oops"):
        limpet.connect("x", command=["sh", "-c", "echo oops >&2; exit 3", "--"])
    with pytest.raises(ConnectionError, match="did not start: limpet-nothing: No such file"):
        limpet.connect("x", command=["limpet-nothing"])
    with pytest.raises(limpet.ProtocolError, match="'x' is not a limpet agent"):
        limpet.connect("x", command=["sh", "-c", "echo limpet-stage1 t; exec cat /dev/zero"])


@pytest.mark.parametrize("address", ["ssh://-oProxyCommand=x", "ssh://a b", "elsewhere"])
def test_bad_addresses_are_refused(address):
    with pytest.raises(ValueError, match="bad address"):
        limpet.connect(address)


FAKE = fake_far('''
    data = b""
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        data += chunk
        if data.count(b'"op":"call"') or data.count(b'"op": "call"'):
            break
    mode = sys.argv[1]
    if mode == "garbage":
        os.write(1, b"\\xff" * 64)
    elif mode == "huge":
        os.write(1, struct.pack(">II", 1 << 30, 1 << 30))
    elif mode == "pickle":
        import pickle
        class E:
            def __reduce__(self):
                return (os.system, ("touch /tmp/limpet-pwned",))
        send({"op": "result", "re": 1}, pickle.dumps(E(), 4))
        send({"op": "done", "re": 1, "status": "ok"})
    elif mode == "many":
        for _ in range(10000):                     # results without end for one call
            send({"op": "result", "re": 1}, b"\\x80\\x04K\\x01.")
    elif mode == "silent":
        pass
    os.read(0, 1 << 20) if mode != "silent" else __import__("time").sleep(60)
''')


@pytest.mark.parametrize("mode", ["garbage", "huge", "pickle", "many"])
def test_a_hostile_far_side_costs_an_exception_never_a_hang(tmp_path, mode):
    fake = tmp_path / "fake.py"
    fake.write_text(FAKE)
    ctx = limpet.connect("fake", command=[sys.executable, str(fake), mode, "--"])
    t = time.monotonic()
    with pytest.raises(limpet.ProtocolError):
        ctx.call(abs, 1)
    assert time.monotonic() - t < 5
    assert not os.path.exists("/tmp/limpet-pwned")
    ctx.shutdown()


def test_a_silent_far_side_costs_a_timeout_when_the_call_has_one(tmp_path, monkeypatch):
    from limpet import _context
    monkeypatch.setattr(_context, "LOCAL_GRACE", 0.5)
    fake = tmp_path / "fake.py"
    fake.write_text(FAKE)
    ctx = limpet.connect("fake", command=[sys.executable, str(fake), "silent", "--"])
    t = time.monotonic()
    with pytest.raises(TimeoutError, match="did not answer"):
        ctx.call(abs, 1, timeout=0.2)
    with pytest.raises(TimeoutError, match="did not end the stream"):
        list(ctx.stream(range, 3, timeout=0.2))
    assert time.monotonic() - t < 3
    t = time.monotonic()
    ctx.shutdown()                                        # never blocked by it
    assert time.monotonic() - t < 4


CALLER = textwrap.dedent('''
    import limpet, os, sys, time
    ctx = limpet.connect("local")
    print(ctx.call(os.getpid), flush=True)
    time.sleep(60)
''')


def test_the_far_side_leaves_when_the_caller_is_killed(tmp_path):
    script = tmp_path / "caller.py"
    script.write_text(CALLER)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(limpet.__file__)))
    caller = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    far_pid = int(caller.stdout.readline())
    os.kill(caller.pid, signal.SIGKILL)
    caller.wait()
    deadline = time.monotonic() + 2
    while os.path.exists(f"/proc/{far_pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    gone = not os.path.exists(f"/proc/{far_pid}")
    if not gone:                                   # a zombie of a dead parent is gone too
        with open(f"/proc/{far_pid}/stat") as f:
            gone = f.read().split()[2] == "Z"
    assert gone, "the agent outlived its caller"


SCRIPT = textwrap.dedent('''
    import limpet, os, logging
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")

    def helper(x):
        return x * 2

    def install_app(n):
        os.system("echo unpacking %d" % n)
        logging.getLogger("app").info("unpacked")
        return helper(n), os.getpid()

    print("never on the far side", flush=True)  # a statement: not sent, not run there
    with limpet.connect("local") as child:      # no __main__ guard, as in the issue
        value, pid = child.call(install_app, 21)
        print("result", value, pid != os.getpid(), flush=True)
''')


def test_a_function_of_the_callers_script_runs_there(tmp_path):
    """The far side has no such __main__: it gets the script's imports, functions and
    classes (never its other statements) and defines the function from them."""
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(limpet.__file__)))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("never on the far side") == 1
    assert "result 42 True" in p.stdout
    assert "limpet.ctx.local.stdout unpacking 21" in p.stderr
    assert "limpet.ctx.local.app unpacked" in p.stderr


def test_a_group_calls_every_context_at_once_and_keeps_their_order():
    ctxs = limpet.connect_many(["local"] * 4 + ["ssh://bad host"])
    assert isinstance(ctxs[-1], ValueError)               # its entry says why
    live = ctxs[:4]
    with limpet.group(live) as g:
        pids = g.call(os.getpid)
        assert pids == [c.agent["pid"] for c in live] and len(set(pids)) == 4
        t = time.monotonic()
        assert g.call(time.sleep, 0.5) == [None] * 4       # at once, not one after another
        assert time.monotonic() - t < 1.5
        live[2].shutdown()
        got = g.call(abs, -1)
        assert got[:2] == [1, 1] and got[3] == 1
        assert isinstance(got[2], ConnectionError)         # a gone context, in its place


def test_a_host_that_embeds_the_server_does_not_load_contexts(tmp_path):
    """Contexts are imported on first use: import limpet and start() stay as light as they
    were (contexts pull in logging, pickle, subprocess, decimal...)."""
    code = ("import sys, limpet\nserver = limpet.start({})\n"
            "print(sorted(m for m in ('limpet._context', 'limpet._results', 'limpet._agent',"
            " 'subprocess', 'decimal', 'concurrent.futures') if m in sys.modules))\n"
            "server.stop()\nprint(limpet.connect.__module__)\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(limpet.__file__)),
               XDG_RUNTIME_DIR=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=30, env=env)
    assert p.stdout.splitlines() == ["[]", "limpet._context"], p.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a mount namespace")
def test_a_far_side_with_a_read_only_filesystem(tmp_path):
    """Nothing is written to the far disk: the agent runs from memory on a Python whose
    whole filesystem is read-only (a private mount namespace, / remounted read-only)."""
    readonly = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                'mount -o remount,bind,ro / && exec "$0" "$@"']
    with limpet.connect("readonly", command=readonly, python=sys.executable) as ctx:
        assert ctx.call(os.getpid) == ctx.agent["pid"]
        with pytest.raises(OSError, match="Read-only"):
            ctx.call(open, str(tmp_path / "x"), "w")       # it really is read-only there
        assert ctx.call(sorted, [2, 1]) == [1, 2]


CTRL_C = textwrap.dedent('''
    import limpet, os, sys, time

    def spin(path):
        try:
            x = 0
            while True:
                x += 1
        finally:
            with open(path, "w") as f:
                f.write("stopped")

    with limpet.connect("local") as ctx:
        print("calling", flush=True)
        try:
            ctx.call(spin, sys.argv[1])
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        deadline = time.monotonic() + 5
        while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
            time.sleep(0.02)
        print("far side", open(sys.argv[1]).read(), ctx.call(abs, -1), flush=True)
''')


def test_ctrl_c_in_a_waiting_call_stops_the_far_call_too(tmp_path):
    script = tmp_path / "ctrlc.py"
    script.write_text(CTRL_C)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(limpet.__file__)))
    p = subprocess.Popen([sys.executable, str(script), str(tmp_path / "flag")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline() == "calling\n"
    time.sleep(0.5)                                       # the call spins on the far side
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert out == "interrupted\nfar side stopped 1\n"


def test_what_a_call_prints_and_logs_is_there_before_it_returns(local, caplog):
    caplog.set_level(logging.INFO)
    for i in range(20):                                   # never a race: each time, in order
        caplog.clear()
        local.call(os.system, f"echo child-{i}; echo -n partial-{i}")
        local.call(print, f"printed-{i}")
        local.call(logging.getLogger("app").warning, f"logged-{i}")
        assert [r.getMessage() for r in caplog.records] == [
            f"child-{i}", f"partial-{i}", f"printed-{i}", f"logged-{i}"]


def test_threading_knows_the_far_main_thread():
    """The agent imports threading in its main thread, so that threading's main thread is
    the process's (on Linux its thread id is the process id), whichever thread runs a call."""
    probe = "(lambda t: (t.main_thread().native_id, t.main_thread().name))(__import__('threading'))"
    with limpet.connect("local") as ctx:
        pid = ctx.agent["pid"]
        assert ctx.call(eval, probe) == (pid, "MainThread")
        futures = [ctx.call_async(eval, probe) for _ in range(5)]    # on other threads too
        assert [f.result(timeout=10) for f in futures] == [(pid, "MainThread")] * 5


@pytest.mark.skipif(os.geteuid() != 0, reason="nsenter and chroot need root")
@pytest.mark.parametrize("how", ["nsenter", "chroot"])
def test_commands_that_enter_namespaces_and_roots(how, tmp_path):
    """command= runs the far Python through whatever starts it: here into the mount namespace
    of a process that has its own (unshare), and into a chroot."""
    if how == "nsenter":
        holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--",
                                   "sh", "-c", f"mount -t tmpfs none {tmp_path} && "
                                   f"touch {tmp_path}/inside && exec sleep 60"])
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:                                    # its own mount namespace, ready
                    if os.readlink(f"/proc/{holder.pid}/ns/mnt") != os.readlink(
                            "/proc/self/ns/mnt") and b"tmpfs" in open(
                            f"/proc/{holder.pid}/mounts", "rb").read():
                        break
                except OSError:
                    pass
                time.sleep(0.02)
            with limpet.connect("ns", command=["nsenter", "-t", str(holder.pid), "-m", "--"],
                                python=sys.executable) as ctx:
                assert ctx.call(os.listdir, str(tmp_path)) == ["inside"]
            assert not os.path.exists(tmp_path / "inside")   # only in that namespace
        finally:
            holder.kill()
            holder.wait()
    else:
        with limpet.connect("root", command=["chroot", "/"], python=sys.executable) as ctx:
            assert ctx.call(os.getcwd) == "/"           # chroot starts it at the new root
            assert ctx.call(os.getpid) == ctx.agent["pid"]


def test_a_hung_call_never_blocks_shutdown():
    ctx = limpet.connect("local")
    child = limpet.connect("local", via=ctx)
    pids = [ctx.agent["pid"], child.agent["pid"]]
    hung = [c.call_async(time.sleep, 60) for c in (ctx, child)]
    time.sleep(0.2)
    t = time.monotonic()
    ctx.shutdown()                                        # the whole chain goes with it
    assert time.monotonic() - t < 3
    for f in hung:
        with pytest.raises(ConnectionError):
            f.result(timeout=5)
    deadline = time.monotonic() + 2
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)
