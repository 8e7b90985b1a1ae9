"""limpet serve over its Unix socket: the real binary, its environments' real far Pythons,
driven by the real limpet exec, limpet connect (in a pseudo-terminal) and limpet list."""
import json
import os
import re
import signal
import time

import pexpect
import pytest


@pytest.fixture
def serve(make_serve):
    return make_serve()


def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(p) for p in f.read().split()]


def test_exec_prints_what_the_code_prints_in_the_main_environment(serve):
    out = serve.limpet("exec", "serve", "-c", "x = 21\nprint(x * 2)\nimport os\nprint(os.getpid())")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "42"
    far = int(lines[1])
    assert far != serve.proc.pid and far in children(serve.proc.pid)
    # the environment keeps its namespace between runs and clients
    out = serve.limpet("exec", "serve", "-c", "print(x)")
    assert out.stdout == "21\n"


def test_an_exception_is_a_traceback_on_stderr_and_exit_1(serve):
    out = serve.limpet("exec", "serve", "-c", "def f():\n    1/0\nf()")
    assert out.returncode == 1
    assert out.stderr.startswith("Traceback (most recent call last):\n")
    assert 'File "<string>", line 2, in f' in out.stderr
    assert out.stderr.endswith("ZeroDivisionError: division by zero\n")
    assert "_session" not in out.stderr and "_agent" not in out.stderr


def test_a_timeout_interrupts_a_sleep_in_the_environments_main_thread(serve):
    t0 = time.monotonic()
    out = serve.limpet("exec", "--timeout", "0.5", "serve", "-c", "import time; time.sleep(30)")
    assert out.returncode == 124
    assert time.monotonic() - t0 < 5
    assert "KeyboardInterrupt" in out.stderr
    assert serve.limpet("exec", "serve", "-c", "print('still here')").stdout == "still here\n"


def test_input_is_answered_from_the_clients_stdin(serve):
    out = serve.limpet("exec", "serve", "-c", "print('hi', input('name? '))", stdin="bob\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("hi bob\n")


def test_partial_lines_and_stderr_arrive_exactly(serve):
    out = serve.limpet("exec", "serve", "-c",
                       "import sys, os\nsys.stdout.write('a')\nsys.stdout.flush()\n"
                       "os.system('echo from-a-child')\nsys.stderr.write('e1\\n')\nprint('b')")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "afrom-a-child\nb\n"
    assert out.stderr == "e1\n"


def test_an_unknown_environment_is_a_clear_error(serve):
    out = serve.limpet("exec", "--env", "nope", "serve", "-c", "1")
    assert out.returncode == 1
    assert "no environment 'nope'" in out.stderr


def test_an_environment_that_dies_is_reported_on_its_next_use(serve):
    out = serve.limpet("exec", "serve", "-c", "import os; os._exit(3)")
    assert out.returncode == 1
    assert "died" in out.stderr
    time.sleep(0.3)
    out = serve.limpet("exec", "serve", "-c", "1")
    assert out.returncode == 1
    assert "environment 'main' is dead" in out.stderr
    assert "exited with status 3" in out.stderr
    assert serve.alive()


def test_list_shows_the_server_and_print_token_reads_its_token(serve):
    out = serve.limpet("list", "--json")
    recs = json.loads(out.stdout)
    rec = next(r for r in recs if r["name"] == "serve")
    assert rec["serve"]["http"] == "off"
    token = serve.token()
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    run_dir = os.path.join(serve.env["XDG_RUNTIME_DIR"], "limpet")
    st = os.stat(os.path.join(run_dir, "%d.http-token" % serve.proc.pid))
    assert st.st_mode & 0o777 == 0o600
    serve.stop()
    assert not any(token in line for line in serve.log)
    assert not os.path.exists(os.path.join(run_dir, "%d.http-token" % serve.proc.pid))


def test_print_token_without_a_server_says_so(limpet_bin, runtime_dir):
    from conftest import run_limpet
    out = run_limpet(limpet_bin, runtime_dir, "serve", "--name", "none", "--print-token")
    assert out.returncode == 1
    assert "no 'limpet serve' named 'none'" in out.stderr


def test_a_second_server_of_the_same_name_is_refused(serve, limpet_bin, runtime_dir):
    from conftest import run_limpet
    out = run_limpet(limpet_bin, runtime_dir, "serve", "--http", "off")
    assert out.returncode == 1
    assert "running already" in out.stderr


def test_sigterm_lets_the_run_going_finish_and_stops_every_environment(serve):
    import subprocess
    far = children(serve.proc.pid)
    assert far
    p = subprocess.Popen([serve.bin, "exec", "serve", "-c",
                          "import time; time.sleep(1); print('finished')"],
                         env=serve.env, stdout=subprocess.PIPE, text=True)
    time.sleep(0.4)
    assert serve.stop() == 0
    assert p.communicate(timeout=10)[0] == "finished\n"
    for pid in far:
        assert not os.path.exists("/proc/%d" % pid) or \
            open("/proc/%d/stat" % pid).read().split()[2] == "Z"
    assert any("draining" in line for line in serve.log)


def test_the_journal_has_one_line_per_run(make_serve, tmp_path):
    path = tmp_path / "journal.log"
    s = make_serve("--journal", str(path))
    s.limpet("exec", "serve", "-c", "print(1)")
    s.limpet("exec", "serve", "-c", "1/0")
    s.stop()
    assert path.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["outcome"] for x in lines] == ["ok", "error"]
    assert lines[0]["env"] == "main" and lines[0]["who"] == "uid:%d" % os.getuid()
    assert lines[0]["code_bytes"] == len("print(1)")
    import hashlib
    assert lines[0]["code_sha256"] == hashlib.sha256(b"print(1)").hexdigest()
    assert lines[0]["duration_ms"] >= 0 and lines[0]["run"] >= 1
    # and one log line per request
    evals = [x for x in s.log if x.startswith("unix ")]
    assert re.match(r"unix uid:%d eval env=main run=\d+ ok [\d.]+ms$" % os.getuid(),
                    evals[0].strip()), evals
    assert " error " in evals[1]


def test_connect_is_a_repl_in_the_environment(serve):
    child = pexpect.spawn(serve.bin, ["connect", "serve"], env=serve.env, encoding="utf-8",
                          timeout=10, dimensions=(30, 100))
    try:
        child.expect(">>> ")
        child.sendline("def f(a):")
        child.expect(r"\.\.\. ")
        child.sendline("    return a * 2")
        child.expect(r"\.\.\. ")
        child.sendline("")
        child.expect(">>> ")
        child.sendline("f(21)")
        child.expect("42\r\n>>> ")
        child.sendline("_ + 1")
        child.expect("43\r\n>>> ")
        child.sendline("input('who? ')")
        child.expect("who\\? ")
        child.sendline("me")
        child.expect("'me'\r\n>>> ")
        child.sendline("import time; time.sleep(30)")
        time.sleep(0.5)
        child.sendintr()
        child.expect("KeyboardInterrupt")
        child.expect(">>> ")
        child.send("time.sl\t")
        child.expect("eep")  # the line editor redraws only what the completion added
        child.sendcontrol("u")
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert serve.alive()
    assert serve.limpet("exec", "serve", "-c", "print(f(1))").stdout == "2\n"


def test_list_shows_the_environments_below_the_server(serve):
    import subprocess
    p = subprocess.Popen([serve.bin, "exec", "serve", "-c", "import time; time.sleep(1.5)"],
                         env=serve.env)
    time.sleep(0.5)
    out = serve.limpet("list").stdout
    p.wait(timeout=10)
    assert re.search(r"env main +busy +runs 1, run 1 going", out), out


@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="the ASan runtime the suite preloads into every python3 reserves "
                           "terabytes of address space: RLIMIT_AS kills it at start")
def test_a_memory_limit_is_a_memory_error_and_the_environment_lives(make_serve):
    s = make_serve("--memory-mb", "400")
    out = s.limpet("exec", "serve", "-c", "x = bytearray(1 << 30)")
    assert out.returncode == 1
    assert out.stderr.rstrip().endswith("MemoryError")
    assert s.limpet("exec", "serve", "-c", "print(len(bytearray(1 << 20)))").stdout == "1048576\n"


def test_a_cpu_limit_ends_the_environment_and_says_so(make_serve):
    s = make_serve("--cpu-s", "1")
    out = s.limpet("exec", "serve", "-c", "while True: pass", timeout=20)
    assert out.returncode == 1 and "died" in out.stderr
    time.sleep(0.3)
    out = s.limpet("exec", "serve", "-c", "1")
    assert "CPU time limit ran out" in out.stderr


def test_a_wall_limit_interrupts_a_run(make_serve):
    s = make_serve("--wall-s", "1")
    t0 = time.monotonic()
    out = s.limpet("exec", "serve", "-c", "import time; time.sleep(30)")
    assert out.returncode == 130 and "KeyboardInterrupt" in out.stderr
    assert "passed its time limit" in out.stderr
    assert 0.9 < time.monotonic() - t0 < 5


def test_bad_limits_are_usage_errors(limpet_bin, runtime_dir):
    from conftest import run_limpet
    out = run_limpet(limpet_bin, runtime_dir, "serve", "--http", "off", "--cpu-s", "x")
    assert out.returncode == 2 and "--cpu-s needs a whole number" in out.stderr


def test_the_journal_rotates_past_its_size(make_serve, tmp_path):
    path = tmp_path / "journal.log"
    path.write_text("x" * (1 << 20))  # as if it had grown: the next line rotates it
    s = make_serve("--journal", str(path), "--journal-max-mb", "1")
    assert s.limpet("exec", "serve", "-c", "pass").returncode == 0
    s.stop()
    old = tmp_path / "journal.log.1"
    assert old.read_text() == "x" * (1 << 20)
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["outcome"] == "ok"
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_journal_that_is_a_symlink_is_refused(make_serve, tmp_path, limpet_bin, runtime_dir):
    from conftest import run_limpet
    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / "journal.log").symlink_to(target)
    out = run_limpet(limpet_bin, runtime_dir, "serve", "--http", "off", "--journal",
                     str(tmp_path / "journal.log"))
    assert out.returncode == 1 and "journal" in out.stderr
    assert target.read_text() == ""


def test_environments_over_the_socket_with_the_env_operations(serve):
    """protocol.md section 7: env-create, env-list, env-info, env-delete, and clone into one
    (a server with --http off still has all its environments)."""
    from limpet.client import Client, ProtocolError
    with Client(serve.address) as c:
        hello_caps = c.request("describe").final["caps"]
        assert "env" in hello_caps
        done = c.request("env-create", env="exp1").final
        assert done["env"] == "exp1" and done["info"]["state"] == "ready"
        with pytest.raises(ProtocolError) as e:
            c.request("env-create", env="exp1")
        assert e.value.code == "bad-field" and "exists" in e.value.header["message"]
        with pytest.raises(ProtocolError) as e:
            c.request("env-create", env="bad name")
        assert e.value.code == "bad-field"
        with pytest.raises(ProtocolError) as e:
            c.request("env-create", env="exp2", target="docker:x")
        assert e.value.header["field"] == "target"
        s = c.request("clone", env="exp1").final["session"]
        c.eval(s, "y = 7")
        info = c.request("env-info", env="exp1").final
        assert {"name": "y", "type": "int", "repr": "7"} in info["names"]
        assert [x["env"] for x in c.request("env-list").final["envs"]] == ["main", "exp1"]
        c.request("env-delete", env="exp1")
        with pytest.raises(ProtocolError):
            c.request("env-info", env="exp1")
    out = serve.limpet("exec", "--env", "exp1", "serve", "-c", "1")
    assert out.returncode == 1 and "exp1" in out.stderr


def test_a_run_that_ignores_its_deadline_ends_its_environment(make_serve):
    """The wall limit holds against code that catches KeyboardInterrupt: 5 s after the
    interrupt, the environment is ended (and says why); it can be restarted."""
    s = make_serve("--wall-s", "1")
    far = children(s.proc.pid)
    t0 = time.monotonic()
    out = s.limpet("exec", "serve", "-c", "import time\nwhile True:\n    try:\n"
                   "        time.sleep(10)\n    except KeyboardInterrupt:\n        pass\n")
    took = time.monotonic() - t0
    assert out.returncode == 130 and "passed its time limit" in out.stderr, out
    assert 5.5 < took < 10, took
    out = s.limpet("exec", "serve", "-c", "1")
    assert "did not stop when interrupted" in out.stderr, out.stderr
    time.sleep(0.3)
    assert not any(os.path.exists("/proc/%d" % p) and
                   open("/proc/%d/stat" % p).read().split()[2] != "Z" for p in far)
