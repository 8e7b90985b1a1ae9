"""limpet exec (issue 5): one-shot code in a live process, its streams and
exit status, for pipelines and scripts with no terminal."""
import os
import subprocess

import pexpect
import pytest

from conftest import run_limpet


limpet = run_limpet   # (limpet_bin, runtime_dir, *args, stdin=None)


def test_streams_and_success(limpet_bin, runtime_dir, host):
    p = limpet(limpet_bin, runtime_dir, "exec", "testapp", "-c",
               "import sys\nprint('out', data['n'] > 0)\nprint('err', file=sys.stderr)")
    assert (p.returncode, p.stdout, p.stderr) == (0, "out True\n", "err\n")


def test_exception_exits_1_with_the_traceback(limpet_bin, runtime_dir, host):
    p = limpet(limpet_bin, runtime_dir, "exec", "testapp", "-c", "print('before')\n1/0")
    assert p.returncode == 1 and p.stdout == "before\n"
    assert p.stderr.endswith('  File "<string>", line 2, in <module>\n'
                             "ZeroDivisionError: division by zero\n")


@pytest.mark.parametrize("how", ["pid", "path", "name"])
def test_targets(limpet_bin, runtime_dir, host, how):
    target = {"pid": str(host.proc.pid), "path": host.address, "name": "testapp"}[how]
    assert limpet(limpet_bin, runtime_dir, "exec", target, "-c", "print(1)").stdout == "1\n"


def test_tcp_target_reads_the_token_file(limpet_bin, runtime_dir, make_host):
    h = make_host(LIMPET_TEST_ADDRESS="127.0.0.1:0")
    p = limpet(limpet_bin, runtime_dir, "exec", h.address, "-c", "print('over tcp')")
    assert (p.returncode, p.stdout) == (0, "over tcp\n"), p.stderr


def test_file_and_stdin(limpet_bin, runtime_dir, host, tmp_path):
    script = tmp_path / "job.py"
    script.write_text("def f():\n    return 6 * 7\nprint(f())\n")
    assert limpet(limpet_bin, runtime_dir, "exec", "testapp", str(script)).stdout == "42\n"
    p = limpet(limpet_bin, runtime_dir, "exec", "testapp", "-", stdin="print('piped')\n")
    assert p.stdout == "piped\n"


def test_input_reads_our_stdin(limpet_bin, runtime_dir, host):
    p = limpet(limpet_bin, runtime_dir, "exec", "testapp", "-c",
               "a = input()\nb = input()\nprint(a + b)", stdin="x\ny\n")
    assert p.stdout == "xy\n"


def test_timeout_exits_124(limpet_bin, runtime_dir, host):
    p = limpet(limpet_bin, runtime_dir, "exec", "--timeout", "0.5", "testapp", "-c",
               "while True: pass")
    assert p.returncode == 124 and "KeyboardInterrupt" in p.stderr


def test_ctrl_c_exits_130(limpet_bin, runtime_dir, host):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir))
    child = pexpect.spawn(limpet_bin, ["exec", "testapp", "-c",
                                       "print('running', flush=True)\nwhile True: pass"],
                          env=env, encoding="utf-8", timeout=10)
    child.expect("running")
    child.sendintr()
    child.expect("KeyboardInterrupt")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130


@pytest.mark.parametrize("args,message", [
    ([], "no TARGET given"),
    (["testapp"], "give the code with -c CODE, a FILE, or -"),
    (["testapp", "-c", "1", "extra"], "too many arguments: 'extra'"),
    (["--timeout", "soon", "testapp", "-c", "1"], "--timeout needs a number of seconds"),
    (["--bogus"], "unknown option '--bogus'"),
])
def test_usage_errors(limpet_bin, runtime_dir, args, message):
    p = limpet(limpet_bin, runtime_dir, "exec", *args)
    assert p.returncode == 2 and p.stderr.startswith(f"limpet: {message}")


def test_no_such_server(limpet_bin, runtime_dir):
    p = limpet(limpet_bin, runtime_dir, "exec", "ghost", "-c", "1")
    assert p.returncode == 1
    assert p.stderr == "limpet: no server named 'ghost' (see 'limpet list')\n"
    p = limpet(limpet_bin, runtime_dir, "exec", str(runtime_dir / "none.sock"), "-c", "1")
    assert p.returncode == 1 and "cannot connect to" in p.stderr
