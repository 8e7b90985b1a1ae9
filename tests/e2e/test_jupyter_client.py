"""jupyter_client (Debian's 7.4) drives `limpet kernel` attached to a live
host: execute and its messages in order, execution_count, interrupt,
input and getpass, exit(), shutdown and restart with the host alive, the
host dying mid-cell, forged and replayed messages, code-point cursors."""
import os
import signal
import subprocess
import time

import pytest
import zmq
from jupyter_client.manager import start_new_kernel
from jupyter_client.session import Session

from jupyter_env import jupyter_environ, write_spec

TIMEOUT = 15


@pytest.fixture
def jenv(tmp_path, runtime_dir, monkeypatch):
    env = jupyter_environ(tmp_path / "jupyter", runtime_dir)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def start_kernel(jenv, limpet_bin):
    started = []

    def start(target, name="limpet-test", env=None, extra=()):
        write_spec(jenv["JUPYTER_PATH"], limpet_bin, target, name, env=env, extra=extra)
        km, kc = start_new_kernel(kernel_name=name, startup_timeout=TIMEOUT)
        started.append((km, kc))
        return km, kc
    yield start
    for km, kc in started:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)


def run(kc, code, timeout=TIMEOUT, **kw):
    """Executes code; the reply and the iopub messages under it up to idle
    (busy and execute_input left out), in order."""
    msg_id = kc.execute(code, **kw)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    return reply, iopub_until_idle(kc, msg_id)


def iopub_until_idle(kc, msg_id, timeout=TIMEOUT):
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        t = msg["msg_type"]
        if t == "status" and msg["content"]["execution_state"] == "idle":
            return out
        if t not in ("status", "execute_input"):
            out.append(msg)


def test_execute_streams_value_and_traceback_in_order(host, start_kernel):
    km, kc = start_kernel(host.address)
    reply, out = run(kc, "import sys\nprint('one')\nprint('two', file=sys.stderr)\n"
                         "print('three')\n6 * 7")
    assert reply["content"]["status"] == "ok"
    kinds = [(m["msg_type"], m["content"].get("name")) for m in out]
    assert kinds == [("stream", "stdout"), ("stream", "stderr"), ("stream", "stdout"),
                     ("execute_result", None)]
    assert out[0]["content"]["text"] == "one\n" and out[2]["content"]["text"] == "three\n"
    assert out[3]["content"]["data"] == {"text/plain": "42"}
    assert out[3]["content"]["execution_count"] == reply["content"]["execution_count"]

    reply, out = run(kc, "x = 1\n\ndef f():\n    return 1 / 0\nf()")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ZeroDivisionError"
    assert reply["content"]["evalue"] == "division by zero"
    assert [m["msg_type"] for m in out] == ["error"]
    tb = "\n".join(out[0]["content"]["traceback"])
    assert "line 4, in f" in tb and "ZeroDivisionError: division by zero" in tb
    # the cell's globals are the host's: a later cell and the host see x
    assert run(kc, "x + data['n'] > 1")[1][0]["content"]["data"]["text/plain"] == "True"


def test_execution_count_store_history_and_silent(host, start_kernel):
    km, kc = start_kernel(host.address)
    r1, _ = run(kc, "1")
    r2, out = run(kc, "2", store_history=False)
    r3, silent_out = run(kc, "print('hidden'); 3", silent=True)
    r4, _ = run(kc, "4")
    c1 = r1["content"]["execution_count"]
    assert r2["content"]["execution_count"] == c1      # not counted
    assert r3["content"]["execution_count"] == c1      # silent: not counted
    assert r4["content"]["execution_count"] == c1 + 1
    assert out[0]["content"]["data"]["text/plain"] == "2"
    # silent: output still streams, but no execute_result
    assert [m["msg_type"] for m in silent_out] == ["stream"]


def interrupt_after(km, kc, code, wait=0.5):
    msg_id = kc.execute(code)
    time.sleep(wait)
    t0 = time.monotonic()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply["content"], time.monotonic() - t0


def test_interrupt_a_busy_loop(host, start_kernel):
    km, kc = start_kernel(host.address)
    reply, took = interrupt_after(km, kc, "n = 0\nwhile True: n += 1")
    assert took < 1.0
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert run(kc, "n > 0")[1][0]["content"]["data"]["text/plain"] == "True"
    assert host.alive()


def test_interrupt_a_sleep_in_an_embedded_host_detaches_it(host, start_kernel):
    """A session of the embedded server runs on a thread that no interrupt
    can wake from time.sleep (DESIGN.md): after the grace period the cell
    ends, saying the call goes on in the host as a job, and the kernel is free."""
    km, kc = start_kernel(host.address)
    reply, took = interrupt_after(km, kc, "import time; time.sleep(30)")
    assert took < 2.0
    assert reply["status"] == "error" and reply["ename"] == "limpet.Detached"
    assert "job" in reply["evalue"]
    assert run(kc, "'free'")[1][0]["content"]["data"]["text/plain"] == "'free'"


def shell_replies(kc, n):
    """The next n shell replies' contents, by their request's msg_id."""
    replies = {}
    while len(replies) < n:
        m = kc.get_shell_msg(timeout=TIMEOUT)
        replies[m["parent_header"]["msg_id"]] = m["content"]
    return replies


def test_stop_on_error_aborts_what_was_queued(host, start_kernel):
    km, kc = start_kernel(host.address)
    failing = kc.execute("import time; time.sleep(0.5); 1 / 0")
    queued = kc.execute("ran_after_error = True")
    replies = shell_replies(kc, 2)
    assert replies[failing]["status"] == "error"
    assert replies[queued]["status"] == "aborted"
    reply, out = run(kc, "'ran_after_error' in globals()")
    assert out[0]["content"]["data"]["text/plain"] == "False"
    # without stop_on_error the next cell runs
    failing = kc.execute("import time; time.sleep(0.5); 1 / 0", stop_on_error=False)
    queued = kc.execute("ran_after_error = True")
    replies = shell_replies(kc, 2)
    assert replies[queued]["status"] == "ok"


def test_input_and_getpass(host, start_kernel):
    km, kc = start_kernel(host.address)
    msg_id = kc.execute("name = input('who? ')\nprint('hi', name)", allow_stdin=True)
    req = kc.get_stdin_msg(timeout=TIMEOUT)
    assert req["msg_type"] == "input_request"
    assert req["parent_header"]["msg_id"] == msg_id
    assert req["content"]["password"] is False
    kc.input("ada")
    out = iopub_until_idle(kc, msg_id)
    assert "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream") \
        .endswith("hi ada\n")

    msg_id = kc.execute("import getpass\nsecret = getpass.getpass('pw: ')\nlen(secret)",
                        allow_stdin=True)
    req = kc.get_stdin_msg(timeout=TIMEOUT)
    assert req["content"]["password"] is True
    kc.input("hunter22")
    out = iopub_until_idle(kc, msg_id)
    assert [m["content"]["data"]["text/plain"] for m in out
            if m["msg_type"] == "execute_result"] == ["8"]


def test_no_stdin_gives_eoferror(host, start_kernel):
    km, kc = start_kernel(host.address)
    reply, out = run(kc, "input('x? ')", allow_stdin=False)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "EOFError"


def test_exit_ends_the_session_not_the_host(host, start_kernel):
    km, kc = start_kernel(host.address)
    run(kc, "kept = 'from before'")
    reply, _ = run(kc, "exit()")
    assert reply["content"]["status"] == "ok"
    assert {"source": "ask_exit", "keepkernel": False} in reply["content"]["payload"]
    assert host.alive()
    # the next cell runs in a new session, in the same host globals
    assert run(kc, "kept")[1][0]["content"]["data"]["text/plain"] == "'from before'"


def test_shutdown_and_restart_leave_the_host_and_its_globals(host, start_kernel):
    km, kc = start_kernel(host.address)
    run(kc, "survivor = 41 + 1")
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=TIMEOUT)
    assert host.alive()
    assert run(kc, "survivor")[1][0]["content"]["data"]["text/plain"] == "42"
    pid = km.provisioner.process.pid
    km.shutdown_kernel(now=False)
    assert not km.is_alive()
    assert host.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_host_dies_mid_cell(host, start_kernel):
    km, kc = start_kernel(host.address)
    msg_id = kc.execute("import time; time.sleep(30)")
    time.sleep(0.3)
    host.proc.kill()
    host.proc.wait()
    t0 = time.monotonic()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "limpet.HostGone"
    proc = km.provisioner.process
    assert proc.wait(timeout=5) == 1
    assert time.monotonic() - t0 < 1.5


def test_forged_and_replayed_messages_are_dropped(host, start_kernel):
    km, kc = start_kernel(host.address)
    info = km.get_connection_info()
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.connect(f"{info['transport']}://{info['ip']}:{info['shell_port']}")
    try:
        good = Session(key=info["key"], signature_scheme=info["signature_scheme"])
        bad = Session(key=b"not the key", signature_scheme="hmac-sha256")
        bad.send(s, "kernel_info_request", {})
        assert s.poll(500) == 0                        # no answer to a forged message
        msg = good.msg("kernel_info_request", {})
        parts = good.serialize(msg)
        s.send_multipart(parts)
        assert s.poll(TIMEOUT * 1000)
        _, reply = good.feed_identities(s.recv_multipart())
        assert good.deserialize(reply)["msg_type"] == "kernel_info_reply"
        s.send_multipart(parts)                        # the same bytes again: a replay
        assert s.poll(500) == 0
        s.send_multipart(parts[:3])                    # too few parts
        s.send_multipart([b"garbage"])                 # no delimiter
        good.send(s, "kernel_info_request", {})        # and the kernel still serves
        assert s.poll(TIMEOUT * 1000)
    finally:
        s.close(0)
    assert km.is_alive()


def test_completion_cursor_counts_code_points(host, start_kernel):
    km, kc = start_kernel(host.address)
    run(kc, "écran_long = 1\n𝔡ata_x = 2")
    for code in ["é = 'x'; écran_l", "日本 = 0; écran_l", "😀 = 0 if False else 0; écran_l"]:
        msg_id = kc.complete(code, len(code))
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        assert reply["parent_header"]["msg_id"] == msg_id
        c = reply["content"]
        assert c["matches"] == ["écran_long"], (code, c)
        assert c["cursor_end"] == len(code)
        assert c["cursor_start"] == len(code) - len("écran_l")


def test_kernel_in_a_serve_environment(make_serve, start_kernel):
    srv = make_serve()
    out = srv.limpet("exec", "serve", "--env", "main", "-c", "from_exec = 21")
    assert out.returncode == 0, out.stderr
    km, kc = start_kernel(srv.address, env="main")
    reply, out = run(kc, "import os\n(from_exec * 2, os.getpid() != %d)" % srv.proc.pid)
    # the environment's namespace, in an agent process, not the server's
    assert out[0]["content"]["data"]["text/plain"] == "(42, True)"
    msg_id = kc.execute("import time; time.sleep(30)")
    time.sleep(0.5)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    msg_id = kc.execute("import getpass; len(getpass.getpass('pw: '))", allow_stdin=True)
    req = kc.get_stdin_msg(timeout=TIMEOUT)
    assert req["content"]["password"] is True
    kc.input("abc")
    out = iopub_until_idle(kc, msg_id)
    assert out[-1]["content"]["data"]["text/plain"] == "3"


def test_iopub_welcome_greets_each_subscriber(host, start_kernel):
    km, kc = start_kernel(host.address, extra=["--iopub-welcome"])
    info = km.get_connection_info()
    session = Session(key=info["key"], signature_scheme=info["signature_scheme"])
    s = zmq.Context.instance().socket(zmq.SUB)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    s.connect(f"{info['transport']}://{info['ip']}:{info['iopub_port']}")
    try:
        deadline = time.monotonic() + TIMEOUT
        welcome = None
        while welcome is None and time.monotonic() < deadline:
            if s.poll(500):
                _, parts = session.feed_identities(s.recv_multipart())
                msg = session.deserialize(parts)
                if msg["msg_type"] == "iopub_welcome":
                    welcome = msg
        assert welcome is not None and welcome["content"] == {"subscription": ""}
    finally:
        s.close(0)
    # jupyter_client's own client took its welcome too, and goes on
    assert run(kc, "6 * 7")[1][0]["content"]["data"]["text/plain"] == "42"
