"""jupyter console in a pseudo-terminal on a live host, through
`jupyter console --kernel` with an installed spec and through `limpet
jupyter`: a prompt, a value, Ctrl+C breaking a sleep, Ctrl+D leaving
the host running."""
import os
import sys
import time

import pexpect
import pytest

from jupyter_env import jupyter_environ, write_spec


@pytest.fixture
def console_env(tmp_path, runtime_dir):
    return dict(os.environ, TERM="xterm", **jupyter_environ(tmp_path / "jupyter", runtime_dir))


def spawn(argv, env):
    child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=30,
                          dimensions=(40, 120))
    child.logfile_read = sys.stdout if os.environ.get("LIMPET_TEST_VERBOSE") else None
    return child


@pytest.mark.parametrize("how", ["jupyter-console", "limpet-jupyter"])
def test_console_prompt_value_interrupt_and_exit(how, host, console_env, limpet_bin):
    if how == "jupyter-console":
        name = write_spec(console_env["JUPYTER_PATH"], limpet_bin, host.address, "limpet-con")
        argv = ["jupyter", "console", "--kernel", name, "--simple-prompt"]
    else:
        argv = [limpet_bin, "jupyter", host.address, "--", "--simple-prompt"]
    child = spawn(argv, console_env)
    child.expect(r"In \[1\]: ")
    child.sendline("6 * 7")
    child.expect(r"Out\[1\]: 42")
    child.expect(r"In \[2\]: ")
    child.sendline("data['n'] > 0")
    child.expect(r"Out\[2\]: True")
    child.expect(r"In \[3\]: ")
    child.sendline("while True: pass")
    child.expect_exact("while True: pass")
    time.sleep(1)
    child.sendintr()
    child.expect("KeyboardInterrupt", timeout=10)
    child.expect(r"In \[\d\]: ")
    # a sleep in an embedded host cannot be woken: the cell ends, the call goes on as a job
    child.sendline("import time; time.sleep(30)")
    child.expect_exact("time.sleep(30)")
    time.sleep(1)
    child.sendintr()
    child.expect("still running in the host as job", timeout=10)
    child.expect(r"In \[\d\]: ")
    child.sendline("'still served'")
    child.expect("Out\\[\\d\\]: 'still served'")
    child.expect(r"In \[\d\]: ")
    child.sendeof()
    i = child.expect([r"exit.*\?", pexpect.EOF], timeout=10)
    if i == 0:
        child.sendline("y")
        child.expect(pexpect.EOF, timeout=15)
    child.close()
    assert host.alive()
    if how == "limpet-jupyter":   # its temporary kernelspec is gone
        kernels = os.path.join(console_env["XDG_RUNTIME_DIR"], "limpet", "jupyter", "kernels")
        assert not os.path.exists(kernels) or os.listdir(kernels) == []
