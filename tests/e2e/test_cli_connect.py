"""limpet connect (issue 5): the real binary in a pseudo-terminal against a
real host process, driven the way a person types."""
import os
import re
import signal
import subprocess
import sys
import time

import pexpect
import pytest

PROMPT = ">>> "


def spawn(limpet_bin, runtime_dir, state, *args, env=None):
    e = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir), XDG_STATE_HOME=str(state),
             TERM="xterm", NO_COLOR="1", HOME=str(state))
    e.pop("PAGER", None)
    e.update(env or {})
    return pexpect.spawn(limpet_bin, ["connect", *args], env=e, timeout=10, encoding="utf-8",
                         dimensions=(24, 100))


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    return d


@pytest.fixture
def connect(limpet_bin, runtime_dir, state):
    children = []

    def start(*args, env=None):
        child = spawn(limpet_bin, runtime_dir, state, *args, env=env)
        children.append(child)
        return child
    yield start
    for child in children:
        child.close(force=True)


def run(child, line, expect):
    """Types line and Enter; waits for expect, then the next prompt. The
    terminal echoes line: expect must be something only the answer has."""
    child.sendline(line)
    child.expect_exact(expect)
    child.expect_exact(PROMPT)


def leave(child):
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


@pytest.mark.parametrize("how", ["name", "pid", "path"])
def test_connect_by_name_pid_and_path(connect, host, how):
    target = {"name": "testapp", "pid": str(host.proc.pid), "path": host.address}[how]
    child = connect(target)
    child.expect(r"limpet: connected to testapp \(pid (\d+)\): .*app\.py")
    assert child.match.group(1) == str(host.proc.pid)
    child.expect_exact("Python 3.")
    child.expect_exact("Ctrl+D or exit() leaves")
    child.expect_exact(PROMPT)
    run(child, "1 + 1", "2\r\n")
    run(child, "data['n'] > 0", "True\r\n")
    assert leave(child) == 0


def test_connect_over_tcp_with_the_token(connect, make_host):
    h = make_host(LIMPET_TEST_ADDRESS="127.0.0.1:0")
    child = connect(h.address)
    child.expect_exact(PROMPT)
    run(child, "print('over', 'tcp')", "over tcp\r\n")
    assert leave(child) == 0


def test_no_target_connects_to_the_only_server(connect, host):
    child = connect()
    child.expect_exact("connected to testapp")
    child.expect_exact(PROMPT)
    assert leave(child) == 0


def test_no_target_with_several_servers_lists_them(connect, make_host):
    a, b = make_host(), make_host()
    child = connect()
    child.expect_exact("limpet: 2 servers are running; choose one by pid or name:")
    child.expect(r"PID\s+NAME\s+ADDRESS")
    child.expect_exact(str(a.proc.pid))
    child.expect_exact(str(b.proc.pid))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


def test_no_server_at_all(connect):
    child = connect()
    child.expect_exact("limpet: no server is running for this user")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


@pytest.mark.parametrize("args,message,status", [
    (["nosuch"], "limpet: no server named 'nosuch' (see 'limpet list')", 1),
    (["/nonexistent/x.sock"], "limpet: cannot connect to '/nonexistent/x.sock': No such file", 1),
    (["127.0.0.1:1"], "limpet: cannot connect to '127.0.0.1:1': Connection refused", 1),
    (["--bogus"], "limpet: unknown option '--bogus'", 2),
    (["a", "b"], "limpet: too many arguments: 'b'", 2),
])
def test_errors_say_what_was_wrong(connect, args, message, status):
    child = connect(*args)
    child.expect_exact(message)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == status


def test_help(limpet_bin):
    p = subprocess.run([limpet_bin, "connect", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("usage: limpet connect [--env NAME] [TARGET]")
    p = subprocess.run([limpet_bin, "--help"], capture_output=True, text=True)
    assert "connect" in p.stdout


def test_completion_of_a_name_and_of_an_attribute(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.send("host_chat\t")
    time.sleep(0.2)
    child.send("\r")   # what Tab completed is what runs
    child.expect_exact("<function host_chatter at 0x")
    child.expect_exact(PROMPT)
    child.send("import sys; sys.getrecursionl\t")
    time.sleep(0.2)
    child.send("()\r")
    child.expect(r"\r\n(\d+)\r\n")
    assert int(child.match.group(1)) > 0
    child.expect_exact(PROMPT)
    child.send("sys.ver\t")   # what the matches share first
    child.expect_exact("sion")
    child.send("\t")           # then, ambiguous: a list, like readline, and the line again
    child.expect(r"version\s+version_info")
    child.expect_exact(">>> sys.version")
    child.sendcontrol("u")
    run(child, "'do' + 'ne'", "'done'\r\n")


def test_pasted_def_hot_patches_the_function_the_host_calls(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.send("def step():\r    data['hot'] = data.get('hot', 0) + 1\r\r")   # one paste
    child.expect_exact(PROMPT)
    run(child, "import time; time.sleep(0.5); data['hot'] > 0", "True\r\n")


def seconds_to_prompt_after_ctrl_c(child, lines, says):
    """Types lines, lets them run, presses Ctrl+C once: the seconds until
    says and the next prompt have come."""
    child.expect_exact(PROMPT)
    for line in lines:
        child.sendline(line)
    time.sleep(0.3)
    t0 = time.monotonic()
    child.sendcontrol("c")
    child.expect_exact(says)
    child.expect_exact(PROMPT)
    return time.monotonic() - t0


def test_ctrl_c_of_a_busy_loop(connect, host):
    child = connect("testapp")
    assert seconds_to_prompt_after_ctrl_c(child, ["while True: pass", ""],
                                          "KeyboardInterrupt") < 2
    run(child, "'ali' + 've'", "'alive'\r\n")


def test_ctrl_c_of_a_blocking_call_comes_back_as_a_job(connect, host):
    child = connect("testapp")
    assert seconds_to_prompt_after_ctrl_c(
        child, ["import time; time.sleep(100)"],
        "limpet: it did not stop; it goes on as job 1 (see jobs())") < 2
    run(child, "jobs()", "sleep")


def test_ctrl_c_five_times_never_kills_the_client(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.sendline("import time; time.sleep(100)")
    time.sleep(0.3)
    for _ in range(5):
        child.sendcontrol("c")
        time.sleep(0.05)
    child.expect_exact(PROMPT, timeout=5)
    for _ in range(5):   # at the prompt too
        child.sendcontrol("c")
    run(child, "6 * 7", "42\r\n")
    assert child.isalive()


def test_output_after_an_interrupt_comes_before_the_next_prompt(connect, host):
    child = connect("testapp")
    seconds_to_prompt_after_ctrl_c(child, ["for _ in range(int(1e9)): pass", ""],
                                   "KeyboardInterrupt")
    child.sendline("print('next')")
    child.expect_exact("next\r\n>>> ")


def test_ctrl_c_at_the_prompt_clears_the_line_and_pending_block(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.sendline("if True:")
    child.expect_exact("... ")
    child.sendcontrol("c")
    child.expect_exact("KeyboardInterrupt")
    child.expect_exact(PROMPT)
    run(child, "'fr' + 'esh'", "'fresh'\r\n")   # the open block was dropped


def test_ctrl_d_and_exit_close_the_session_politely(connect, host):
    from limpet.client import Client
    child = connect("testapp")
    child.expect_exact(PROMPT)
    assert leave(child) == 0
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.sendline("exit()")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    with Client(host.address) as c:
        assert c.request("describe").final["stats"]["sessions"] == 0
    assert host.alive()


def test_input_and_getpass_ask_here(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.sendline("name = input('who? ')")
    child.expect_exact("who? ")
    child.sendline("ada")
    child.expect_exact(PROMPT)
    run(child, "name", "'ada'\r\n")
    child.sendline("import getpass; pw = getpass.getpass('pw: ')")
    child.expect_exact("pw: ")
    child.sendline("s3cret")
    child.expect_exact(PROMPT)
    assert "s3cret" not in child.before   # not echoed
    run(child, "len(pw)", "6\r\n")


def test_ctrl_d_answers_input_with_eof_and_the_session_goes_on(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.sendline("input('more? ')")
    child.expect_exact("more? ")
    child.sendcontrol("d")
    child.expect_exact("EOFError")
    child.expect_exact(PROMPT)
    run(child, "'after' + ' eof'", "'after eof'\r\n")   # one Ctrl+D is not the end of the terminal


def test_help_prints_short_text_and_pages_long_text(connect, host, tmp_path):
    paged = tmp_path / "paged.txt"
    child = connect("testapp", env={"PAGER": f"cat > {paged}"})
    child.expect_exact(PROMPT)
    run(child, "help(len)", "Return the number of items in a container.")
    child.sendline("help(str)")
    child.expect_exact(PROMPT)
    assert "class str(object)" not in child.before
    assert "class str(object)" in re.sub(".\b", "", paged.read_text())   # bold for less


def test_history_is_kept_across_runs_and_searched(connect, host, state):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    for line in ("marker_one = 11", "marker_two = 22"):
        child.sendline(line)
        child.expect_exact(PROMPT)
    assert leave(child) == 0
    hist = state / "limpet" / "history" / "testapp"
    assert oct(hist.stat().st_mode & 0o777) == "0o600"
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.send("\x1b[A")                 # Up: the last line of the last run
    child.expect_exact("marker_two = 22")
    child.sendcontrol("u")
    child.sendcontrol("r")               # Ctrl+R search
    child.send("one")
    child.expect_exact("marker_one = 11")
    child.send("\r")
    child.expect_exact(PROMPT)
    run(child, "marker_one", "11\r\n")


def test_output_streams_as_it_is_produced(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.sendline("import time")
    child.expect_exact(PROMPT)
    child.sendline("for i in range(3): print('line', i, flush=True); time.sleep(0.4)")
    child.sendline("")
    seen = []
    for i in range(3):
        child.expect_exact(f"line {i}\r\n")
        seen.append(time.monotonic())
    child.expect_exact(PROMPT)
    assert seen[1] - seen[0] > 0.25 and seen[2] - seen[1] > 0.25, seen


def test_thread_output_at_the_prompt_shows_above_it(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.sendline("import threading; threading.Timer(0.3, print, ('from a thread',)).start()")
    child.expect_exact(PROMPT)
    child.send("partial")
    child.expect_exact("from a thread")
    child.expect_exact(">>> partial")   # the prompt and the line drawn again
    child.sendcontrol("u")
    run(child, "'o' + 'k'", "'ok'\r\n")


def test_tracebacks_are_coloured_unless_no_color(connect, host):
    child = connect("testapp", env={"NO_COLOR": ""})
    child.expect_exact(PROMPT)
    run(child, "1/0", "\x1b[31mTraceback (most recent call last):")
    child = connect("testapp")           # NO_COLOR=1
    child.expect_exact(PROMPT)
    child.sendline("1/0")
    child.expect_exact("ZeroDivisionError: division by zero")
    assert "\x1b[31m" not in child.before


def test_server_killed_during_an_evaluation(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.sendline("import time; time.sleep(30)")
    time.sleep(0.3)
    t0 = time.monotonic()
    host.proc.kill()
    child.expect_exact(f"limpet: testapp (pid {host.proc.pid}) closed the connection")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and time.monotonic() - t0 < 2


def test_server_killed_while_at_the_prompt(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    host.proc.kill()
    child.expect_exact("closed the connection")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


def test_server_stopping_says_why(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    host.proc.send_signal(signal.SIGINT)   # the host exits; its server says bye
    child.expect(r"limpet: testapp: .*(stop|shut)")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


FAKE_SERVER = r"""
import os, socket, sys
sys.path.insert(0, sys.argv[2])
from limpet import wire
path, answer = sys.argv[1], sys.argv[3] == "answer"
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen()
print("ready", flush=True)
conn, _ = s.accept()
buf = bytearray()
while wire.read_hello(buf) is None:
    buf += conn.recv(4096)
conn.sendall(wire.PREAMBLE + wire.encode({"op": "done", "re": 0, "status": "ok", "protocol": 1,
    "server": {"name": "fake", "pid": os.getpid(), "python": "3", "limpet": "0", "argv": [],
               "started": 0}, "caps": ["repl"], "max_payload": 1 << 20, "session": "1"}))
dec = wire.Decoder()
while chunk := conn.recv(4096):
    dec.feed(chunk)
    while (f := dec.next()) is not None:
        h, _ = f
        print(h["op"], h.get("session"), flush=True)   # what the client sent
        if answer and h["op"] == "close":
            conn.sendall(wire.encode({"op": "done", "re": h["id"], "status": "ok"}))
"""


def ctrl_d_against_a_fake_server(connect, tmp_path, answer):
    """Ctrl+D at the prompt of a server that records what it gets and
    answers close or not: (what it got, seconds to the client's exit, the
    client's output after the prompt)."""
    path = str(tmp_path / "fake.sock")
    pypath = os.path.dirname(os.path.dirname(__import__("limpet").__file__))
    srv = subprocess.Popen([sys.executable, "-c", FAKE_SERVER, path, pypath,
                            "answer" if answer else "silent"], stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline() == "ready\n"
        child = connect(path)
        child.expect_exact(PROMPT)
        t0 = time.monotonic()
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
        took = time.monotonic() - t0
        child.close()
        assert child.exitstatus == 0
    finally:
        srv.kill()
        got = srv.communicate()[0]
    return got.splitlines(), took, child.before


def test_ctrl_d_sends_close_and_leaves_when_it_is_answered(connect, tmp_path):
    got, took, out = ctrl_d_against_a_fake_server(connect, tmp_path, answer=True)
    assert got == ["close 1"] and took < 1.0 and "did not answer" not in out


def test_ctrl_d_leaves_when_the_server_does_not_answer(connect, tmp_path):
    got, took, out = ctrl_d_against_a_fake_server(connect, tmp_path, answer=False)
    assert got == ["close 1"] and took < 3
    assert "limpet: the server did not answer within 1000 ms; leaving anyway" in out


def test_a_resize_with_stdin_not_a_terminal_is_not_a_lost_server(limpet_bin, runtime_dir, host):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir), HOME=str(runtime_dir))
    p = subprocess.Popen([limpet_bin, "connect", "testapp"], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdin.write("import time; time.sleep(0.6)\n")
    p.stdin.flush()
    for _ in range(5):
        time.sleep(0.1)
        p.send_signal(signal.SIGWINCH)
    out, err = p.communicate("6 * 7\n", timeout=20)
    assert (p.returncode, out.strip(), err) == (0, "42", "")


def in_shell(command, runtime_dir, state):
    """command run by /bin/sh in a pseudo-terminal (to see the terminal after it)."""
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir), XDG_STATE_HOME=str(state),
               HOME=str(state), TERM="xterm", NO_COLOR="1")
    return pexpect.spawn("/bin/sh", ["-c", command], env=env, timeout=10, encoding="utf-8")


def test_stdout_not_a_terminal_leaves_the_terminal_as_it_was(limpet_bin, runtime_dir, state, host):
    child = in_shell(f"{limpet_bin} connect testapp | cat; stty -a", runtime_dir, state)
    child.sendline("6 * 7")
    child.expect_exact("42")
    child.sendcontrol("d")
    child.expect(r"[^-]echo ")              # stty: echo still on, not -echo
    child.expect(pexpect.EOF)


def test_ctrl_c_in_the_pager_is_the_pagers(connect, host, tmp_path):
    paged = tmp_path / "paged.txt"
    child = connect("testapp", env={"PAGER": f"cat > {paged}; kill -INT 0"})
    child.expect_exact(PROMPT)
    child.sendline("help(str)")
    child.expect_exact(PROMPT)
    child.sendline("'after the' + ' pager'")
    child.expect_exact("'after the pager'\r\n>>> ")
    assert "KeyboardInterrupt" not in child.before
    assert "class str" in re.sub(".\b", "", paged.read_text())


def test_enter_as_return_or_linefeed(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    child.send("6 * 7\r")
    child.expect_exact("42\r\n>>> ")
    child.send("7 * 8\n")
    child.expect_exact("56\r\n>>> ")


def test_tab_never_cuts_a_character_in_half(connect, host):
    child = connect("testapp")
    child.expect_exact(PROMPT)
    run(child, "café1 = 1; cafè2 = 2", "")   # both start "caf" and the same first byte
    child.send("caf\t")
    time.sleep(0.3)
    child.send("\t")                          # the list; the line stays "caf"
    child.expect(r"caf[éè]\d\s+caf[éè]\d")
    child.send("é1\r")
    child.expect_exact("\r\n1\r\n>>> ")


def test_sigterm_at_the_prompt_gives_the_terminal_back(limpet_bin, runtime_dir, state, host):
    child = in_shell(f"{limpet_bin} connect testapp; stty -a", runtime_dir, state)
    child.expect_exact(PROMPT)
    kids = open(f"/proc/{child.pid}/task/{child.pid}/children").read().split()
    os.kill(int(kids[0]), signal.SIGTERM)
    child.expect(r"[^-]echo ")
    child.expect(pexpect.EOF)
