"""python3 -m limpet, the README's main command, as a user runs it."""
import os
import sys

import pexpect


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
    child.expect("not there yet")
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
