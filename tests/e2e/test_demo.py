"""python3 -m limpet, the README's main command, as a user runs it."""
import os
import sys
import time

import pexpect

from conftest import unsanitized


def test_demo_runs_a_session_in_a_live_host(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run))
    child = pexpect.spawn(sys.executable, ["-m", "limpet"], encoding="utf-8", timeout=20, env=env)
    child.expect(r"a demo host \(pid (\d+)\) with the server embedded at (\S+)\r\n")
    pid = child.match.group(1)
    child.expect(r">>> data\r\n\{'n': \d+\}")
    child.expect(r">>> x \* 2\r\n84\r\n")
    child.expect(r">>> def step\(\):\r\n\.\.\.     data\['n'\] \+= 100")
    child.expect(r">>> data\r\n\{'n': (\d+)\}")
    assert int(child.match.group(1)) >= 200   # the patched step() ran in the host's loop
    child.expect(f"hello from pid {pid}")
    child.expect("ZeroDivisionError: division by zero")
    child.expect_exact("./scripts/demo goes on with `limpet connect`")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert os.listdir(run / "limpet") == []   # the server cleaned up after itself


def test_serve_runs_the_demo_host_until_ctrl_c(tmp_path):
    from limpet.client import Client

    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run))
    child = pexpect.spawn(sys.executable, ["-m", "limpet", "--serve"], encoding="utf-8",
                          timeout=20, env=env)
    child.expect(r"limpet demo host \(pid \d+\) at (\S+); Ctrl\+C stops it")
    with Client(child.match.group(1)) as c:
        assert int(c.eval(c.clone(), "data['n']", interactive=True).value) >= 1
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert os.listdir(run / "limpet") == []


def test_readme_main_command_opens_limpet_connect_in_the_demo_host(tmp_path):
    """./scripts/demo in a terminal: the tour, then a prompt in the host;
    Ctrl+C interrupts the session's code and leaves the host running;
    Ctrl+D leaves, and the host stops with it."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    # the demo builds and runs build/, a release build: not under the suite's ASan runtime
    env = dict(unsanitized(os.environ), XDG_RUNTIME_DIR=str(run), XDG_STATE_HOME=str(tmp_path),
               NO_COLOR="1", TERM="xterm")
    root = os.environ["LIMPET_SOURCE_ROOT"]
    child = pexpect.spawn(os.path.join(root, "scripts", "demo"), encoding="utf-8", timeout=120,
                          env=env, cwd=root)
    child.expect(r"a demo host \(pid (\d+)\)")
    pid = int(child.match.group(1))
    child.expect_exact("ZeroDivisionError: division by zero")
    child.expect_exact("Your turn")
    child.expect_exact(f"limpet: connected to limpet-demo (pid {pid})")
    child.expect_exact(">>> ", timeout=10)
    child.sendline("while True: pass")
    child.expect_exact("... ", timeout=10)
    # Ctrl+C only once the loop runs: typed while the blank line is still
    # unread, the terminal's INTR flushes that line (as it would under
    # python3), and the Ctrl+C lands at the "... " prompt instead
    child.sendline("")
    time.sleep(0.3)
    child.sendcontrol("c")
    child.expect_exact("KeyboardInterrupt", timeout=10)
    child.sendline("data['n'] > 0")
    child.expect_exact("True", timeout=10)
    child.expect_exact(">>> ", timeout=10)
    child.sendcontrol("d")
    child.expect(pexpect.EOF, timeout=10)
    child.close()
    assert child.exitstatus == 0
    for _ in range(50):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}"), "the demo host outlived the demo"
