"""Chains of contexts (via=, ctx.sudo, ctx.su), passwords as limpet.Secret, streams, and the
example of issue 11 run against a real sshd on loopback with real test accounts."""
import glob
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time

import pytest

import limpet
from fake_far import fake_far
from conftest import unsanitized
from sshd import Sshd

DEPLOY, TARGET = "limpet-deploy", "limpet-target"
DEPLOY_PW, TARGET_PW = "deploy-pw-3141", "target-pw-2718"
PYPY = shutil.which("pypy3")
root_only = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("sudo"),
                               reason="needs root (test accounts) and sudo")


def uid(user):
    return pwd.getpwnam(user).pw_uid


@pytest.fixture(autouse=True)
def far_imports_this_module(monkeypatch):
    """Local children import this module's generators by name (they inherit PYTHONPATH)."""
    here = os.path.dirname(os.path.abspath(__file__))
    monkeypatch.setenv("PYTHONPATH", here + os.pathsep + os.environ.get("PYTHONPATH", ""))


def counting(flags):
    """Yields 0, 1, 2... forever; flags (a far-side dict) records how far it got and how
    it ended."""
    i = 0
    try:
        while True:
            flags["made"] = i
            yield i
            i += 1
    finally:
        flags["closed"] = True


FLAGS = {}


def made_so_far():
    return dict(FLAGS)


def count_forever():
    return counting(FLAGS)


def items_then_error(n):
    for i in range(n):
        yield i
    raise KeyError("after %d" % n)


def slow_items():
    for i in range(3):
        yield i, time.monotonic()
        time.sleep(0.3)


def locks(n):
    import threading
    for _ in range(n):
        yield threading.Lock()


def admin(*argv, **kw):
    """An account command, without the sanitizer preload of an ASan run (pkill hangs under
    it), bounded in time."""
    env = unsanitized(os.environ)
    kw.setdefault("stdout", subprocess.DEVNULL)
    kw.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.run(argv, env=env, timeout=30, **kw)


@pytest.fixture(scope="module")
def accounts():
    """Two throwaway accounts: deploy (logs in over ssh with a key, may sudo to root without
    a password and to target with its own), and target (su with its password)."""
    if os.geteuid() != 0 or not shutil.which("sudo"):
        pytest.skip("needs root (test accounts) and sudo")
    for user, pw in ((DEPLOY, DEPLOY_PW), (TARGET, TARGET_PW)):
        admin("userdel", "-r", user)
        admin("useradd", "-m", "-s", "/bin/sh", user, check=True)
        admin("chpasswd", input=f"{user}:{pw}\n".encode(), check=True)
    sudoers = "/etc/sudoers.d/limpet-tests"
    with open(sudoers, "w") as f:
        f.write(f"{DEPLOY} ALL=(root) NOPASSWD: ALL\n{DEPLOY} ALL=({TARGET}) ALL\n")
    os.chmod(sudoers, 0o440)
    yield
    os.unlink(sudoers)
    for user in (DEPLOY, TARGET):
        admin("pkill", "-KILL", "-u", user)
        admin("userdel", "-r", user)


@pytest.fixture(scope="module")
def sshd(accounts):
    d = tempfile.mkdtemp(prefix="limpet-sshd-")       # the deploy account reads its keys
    os.chmod(d, 0o755)
    from pathlib import Path
    s = Sshd(Path(d))
    os.chmod(os.path.join(d, "authorized_keys"), 0o644)
    s.options = ["-F", os.path.join(d, "ssh_config")]
    s.web1 = f"ssh://{DEPLOY}@127.0.0.1:{s.port}"
    yield s
    s.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def local():
    with limpet.connect("local") as ctx:
        yield ctx


# --- the example of the issue ------------------------------------------------------------

EXAMPLE = textwrap.dedent('''
    import limpet, os, logging, sys
    logging.basicConfig(level=logging.INFO)

    def tail(path):
        with open(path) as f:
            yield from f

    def install_app(path):
        os.system("tar zxvf %s" % path)     # its output comes back as log lines
        logging.getLogger("app").info("unpacked")
        return os.listdir(".")

    WEB1, OPTIONS = sys.argv[1], sys.argv[2:]
    with limpet.connect(WEB1, ssh_options=OPTIONS) as web1:
        print(web1.call(install_app, "app.tar.gz"))
        root = web1.sudo("root")                            # a chain: ssh, then sudo
        root.call(os.system, "id -un > /tmp/limpet-example-restarted")
        for line in web1.stream(tail, "app.log", timeout=30):   # a generator, streamed
            print(line, end="")
    with limpet.connect("local") as child:                  # a child interpreter here
        try:
            child.call(int, "x")
        except ValueError as e:                              # the original type
            print(e.remote_traceback)
''')


@root_only
def test_the_example_of_the_issue_runs_against_a_real_sshd(sshd, tmp_path):
    home = pwd.getpwnam(DEPLOY).pw_dir
    src = tmp_path / "app"
    src.mkdir()
    (src / "run.sh").write_text("echo app\n")
    with tarfile.open(os.path.join(home, "app.tar.gz"), "w:gz") as t:
        t.add(src / "run.sh", arcname="app/run.sh")
    with open(os.path.join(home, "app.log"), "w") as f:
        f.write("started\nserving\n")
    if os.path.exists("/tmp/limpet-example-restarted"):
        os.unlink("/tmp/limpet-example-restarted")
    script = tmp_path / "deploy.py"
    script.write_text(EXAMPLE)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(limpet.__file__)))
    p = subprocess.run([sys.executable, str(script), sshd.web1] + sshd.options,
                       capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert "'app'" in out[0] and "'app.tar.gz'" in out[0]         # os.listdir there
    assert out[1:3] == ["started", "serving"]                     # streamed, in order
    assert "invalid literal for int()" in p.stdout                # the far traceback
    assert f"limpet.ctx.{sshd.web1}.stdout:app/run.sh" in p.stderr  # tar's output, as a log
    assert f"limpet.ctx.{sshd.web1}.app:unpacked" in p.stderr     # the far logging
    with open("/tmp/limpet-example-restarted") as f:
        assert f.read() == "root\n"                               # sudo ran it as root
    os.unlink("/tmp/limpet-example-restarted")


# --- chains --------------------------------------------------------------------------------

def test_a_chain_of_children_each_started_by_the_one_before(local):
    child = limpet.connect("local", via=local)
    grandchild = child.sudo("root") if os.geteuid() == 0 and shutil.which("sudo") else \
        limpet.connect("local", via=child)
    assert child.call(os.getppid) == local.call(os.getpid)
    assert grandchild.call(os.getpid) == grandchild.agent["pid"]
    assert grandchild.call(os.getpid) not in (local.agent["pid"], child.agent["pid"])
    assert child.name == "local/local"
    with pytest.raises(ValueError) as e:                  # far exceptions through two hops
        grandchild.call(int, "x")
    assert "invalid literal" in e.value.remote_traceback
    ref = grandchild.call(__import__("threading").Lock)  # references too
    assert "lock" in grandchild.call(repr, ref)
    with pytest.raises(ValueError, match="only good on the context"):
        child.call(repr, ref)
    futures = [grandchild.call_async(pow, i, 2) for i in range(20)]  # many in flight
    assert [f.result(timeout=10) for f in futures] == [i * i for i in range(20)]


def test_ending_a_hop_ends_the_hops_below_it_and_nothing_else(local):
    child = limpet.connect("local", via=local)
    grandchild = limpet.connect("local", via=child)
    pids = [child.agent["pid"], grandchild.agent["pid"]]
    t = time.monotonic()
    child.shutdown()
    assert time.monotonic() - t < 3
    for ctx in (child, grandchild):
        with pytest.raises(ConnectionError, match="has ended"):
            ctx.call(abs, 1)
    deadline = time.monotonic() + 2
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)
    assert local.call(abs, -2) == 2                       # the first hop goes on


def test_a_hop_that_cannot_start_says_why(local):
    with pytest.raises(ConnectionError, match="no-such-python|not found|No such file"):
        limpet.connect("local", via=local, python="/nonexistent/python3")
    assert local.call(abs, -1) == 1


@pytest.mark.skipif(PYPY is None, reason="pypy3 is not installed")
def test_a_hop_may_be_another_interpreter(local):
    pypy = limpet.connect("local", via=local, python=PYPY)
    assert pypy.agent["implementation"] == "pypy"
    assert pypy.call(sorted, [3, 1, 2]) == [1, 2, 3]
    assert list(pypy.stream(range, 5)) == [0, 1, 2, 3, 4]


@pytest.mark.skipif(os.geteuid() != 0, reason="setpriv to another user needs root")
def test_a_hop_through_any_command(local):
    nobody = limpet.connect("nobody", via=local, command=[
        "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"],
        python=sys.executable)
    assert nobody.call(os.getuid) == pwd.getpwnam("nobody").pw_uid
    assert nobody.name == "local/nobody"


CHAIN_CALLER = textwrap.dedent('''
    import itertools, limpet, os, sys, time
    a = limpet.connect("local")
    b = limpet.connect("local", via=a)
    c = b.sudo(sys.argv[1]) if sys.argv[1] != "-" else limpet.connect("local", via=b)
    print(a.agent["pid"], b.agent["pid"], c.agent["pid"], c.call(os.getppid), flush=True)
    if sys.argv[2] == "calling":                # killed while a call runs on every hop
        for ctx in (a, b):
            ctx.call_async(time.sleep, 60)
        c.call(time.sleep, 60)
    elif sys.argv[2] == "streaming":            # killed in the middle of a stream
        for _ in c.stream(itertools.count, window=8):
            time.sleep(0.01)
    time.sleep(60)
''')


@pytest.mark.parametrize("point", ["idle", "calling", "streaming"])
def test_killing_the_caller_leaves_no_hop_behind(tmp_path, point):
    script = tmp_path / "caller.py"
    script.write_text(CHAIN_CALLER)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(limpet.__file__)))
    user = "root" if os.geteuid() == 0 and shutil.which("sudo") else "-"
    caller = subprocess.Popen([sys.executable, str(script), user, point],
                              stdout=subprocess.PIPE, env=env)
    pids = [int(p) for p in caller.stdout.readline().split()]
    assert len(pids) == 4
    time.sleep(0.3)                                       # into the call or the stream
    if user != "-":
        pids.append(pids[3])                              # sudo itself, between b and c
    os.kill(caller.pid, signal.SIGKILL)
    caller.wait()
    deadline = time.monotonic() + 2

    def alive(p):
        try:
            with open(f"/proc/{p}/stat") as f:
                return f.read().split()[2] != "Z"
        except FileNotFoundError:
            return False
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not [p for p in pids if alive(p)], "a hop outlived its caller"


# --- sudo, su and passwords ------------------------------------------------------------------

@root_only
def test_ssh_then_sudo_with_a_password_that_never_shows(sshd, caplog):
    caplog.set_level(logging.DEBUG)
    secret = limpet.Secret(DEPLOY_PW)
    with limpet.connect(sshd.web1, ssh_options=sshd.options) as web1:
        assert web1.call(os.getuid) == uid(DEPLOY)
        target = web1.sudo(TARGET, password=secret)
        assert target.call(os.getuid) == uid(TARGET)
        assert target.name == f"{sshd.web1}/sudo:{TARGET}"
        argvs = []
        for path in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                with open(path, "rb") as f:
                    argvs.append(f.read())
            except OSError:
                pass
        assert not [a for a in argvs if DEPLOY_PW.encode() in a]  # never in ps
        with pytest.raises(PermissionError, match="password") as e:
            web1.sudo(TARGET, password=limpet.Secret("wrong"))
        assert "wrong" not in str(e.value)
        with pytest.raises(ConnectionError, match="a password is required"):
            web1.sudo(TARGET)                             # no password: sudo -n says so
        root = web1.sudo("root")                          # NOPASSWD: none asked
        assert root.call(os.getuid) == 0
        assert web1.call(os.getuid) == uid(DEPLOY)                   # the hop below goes on
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert DEPLOY_PW not in text and "Secret(***)" == repr(secret)


@root_only
def test_su_with_and_without_the_password(accounts, local):
    deploy = local.sudo(DEPLOY)
    assert deploy.call(os.getuid) == uid(DEPLOY)
    target = deploy.su(TARGET, password=limpet.Secret(TARGET_PW))
    assert target.call(os.getuid) == uid(TARGET)
    assert target.call(os.getcwd) is not None
    with pytest.raises(PermissionError, match="asked for a password"):
        deploy.su(TARGET)
    with pytest.raises(PermissionError, match="password was given") as e:
        deploy.su(TARGET, password="not-it")
    assert "not-it" not in str(e.value)
    assert local.su(TARGET).call(os.getuid) == uid(TARGET)           # root needs none


# --- streams -----------------------------------------------------------------------------

def test_a_stream_gives_items_as_they_are_made(local):
    got = []
    for item, made in local.stream(slow_items):
        got.append((item, time.monotonic()))
    assert [i for i, _ in got] == [0, 1, 2]
    assert got[1][1] - got[0][1] > 0.2                    # not all at the end


def test_a_stream_is_bounded_by_its_window_and_stops_early(local):
    stream = local.stream(count_forever, window=4)
    assert [next(stream) for _ in range(10)] == list(range(10))
    time.sleep(0.3)                                       # the producer runs ahead...
    made = local.call(made_so_far)["made"]
    assert made <= 10 + 4                                 # ...never past the window
    stream.close()
    deadline = time.monotonic() + 3
    while not local.call(made_so_far).get("closed") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert local.call(made_so_far).get("closed")          # GeneratorExit there
    assert local.call(abs, -5) == 5


def test_a_stream_ends_with_the_far_exception_or_its_deadline(local):
    got = []
    with pytest.raises(KeyError, match="after 3"):
        for item in local.stream(items_then_error, 3):
            got.append(item)
    assert got == [0, 1, 2]
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        for _ in local.stream(count_forever, timeout=0.3):
            pass
    assert time.monotonic() - t < 5


def test_a_stream_of_what_does_not_pickle_gives_refs(local):
    refs = list(local.stream(locks, 2))
    assert all(isinstance(r, limpet.Ref) for r in refs) and len(local.refs()) == 2


def test_a_stream_through_a_chain(local):
    child = limpet.connect("local", via=local)
    assert list(child.stream(range, 1000, window=16)) == list(range(1000))


FLOODER = fake_far('''
    data = b""
    while b'"stream"' not in data:
        data += os.read(0, 65536)
    frames = b""
    for i in range(50):                     # far past the window it was given, at once
        h = b'{"op":"channel-data","channel":1}'
        frames += struct.pack(">II", len(h), 5) + h + b"\\x80\\x04K\\x01."
    os.write(1, frames)
    __import__("time").sleep(30)
''')


def test_a_far_side_that_ignores_the_window_is_disconnected(tmp_path):
    fake = tmp_path / "flood.py"
    fake.write_text(FLOODER)
    ctx = limpet.connect("flood", command=[sys.executable, str(fake), "--"])
    t = time.monotonic()
    stream = ctx.stream(range, 10, window=4)
    time.sleep(0.5)                          # no ack granted: all 50 arrive without credit
    with pytest.raises(limpet.ProtocolError, match="credit"):
        for _ in stream:
            pass
    assert time.monotonic() - t < 5
    ctx.shutdown()


@root_only
def test_ssh_as_a_later_hop_and_sudo_as_a_first_one(sshd, caplog):
    caplog.set_level(logging.INFO)
    with limpet.connect(f"sudo:{DEPLOY}") as deploy:                 # sudo, from here
        assert deploy.call(os.getuid) == uid(DEPLOY)
        assert deploy.name == f"sudo:{DEPLOY}"
    with limpet.connect("local") as local:
        web1 = limpet.connect(sshd.web1, via=local, ssh_options=sshd.options)
        assert web1.call(os.getuid) == uid(DEPLOY)                   # ssh run by the far side
        root = web1.sudo("root")
        assert root.call(os.getuid) == 0
        assert root.name == f"local/{sshd.web1}/sudo:root"
        assert list(root.stream(range, 3)) == [0, 1, 2]
