"""The environment's agent (python/limpet/_session.py: REPL sessions, capability `session`,
protocol.md section 8), started for real through the C launcher with the second stage 2
(_limpet.ctx_launch(..., session=True)) and driven through the C broker, as limpet serve
does. On Debian's python3 and, when installed, pypy3."""
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import time
import traceback
import zlib

import pytest

from limpet import _agent, _bootstrap, _limpet, wire

PYTHONS = [sys.executable] + ([shutil.which("pypy3")] if shutil.which("pypy3") else [])
TB = "Traceback (most recent call last):\n"


class Env:
    """An environment's far Python: its link in the broker, requests and their frames."""

    def __init__(self, python):
        self.python = python
        self.pid, self.link, err, self.hello = _limpet.ctx_launch(
            _limpet.stage1_argv("test@local", python), None, True, 30.0, 20, session=True)
        if err >= 0:
            os.close(err)
        self.ids = itertools.count(1)

    def send(self, header, payload=b""):
        _limpet.ctx_send(self.link, wire.encode(header, payload))

    def request(self, header, payload=b""):
        """Sends header (with a new id); the id, whose frames come to this thread."""
        rid = header["id"] = next(self.ids)
        _limpet.ctx_expect(self.link, rid)
        self.send(header, payload)
        return rid

    def frames(self, rid, timeout=10.0):
        """rid's frames up to its done or error, each as (header, payload, arrival time)."""
        got, deadline = [], time.monotonic() + timeout
        while True:
            for h, p in _limpet.ctx_wait(self.link, rid, max(0.0, deadline - time.monotonic())):
                got.append((h, p, time.monotonic()))
                if h["op"] in ("done", "error"):
                    _limpet.ctx_forget(self.link, rid)
                    return got

    def eval(self, code, mode="cell", session="s", **fields):
        return self.request(dict(op="eval", session=session, mode=mode, **fields),
                            code.encode())

    def run(self, code, mode="cell", **fields):
        return Result(self.frames(self.eval(code, mode, **fields)))

    def wait_out(self, rid, timeout=10.0):
        """The frames of rid up to its first out (the eval has started running)."""
        got, deadline = [], time.monotonic() + timeout
        while not any(h["op"] == "out" for h, _ in got):
            got += _limpet.ctx_wait(self.link, rid, max(0.0, deadline - time.monotonic()))
        return got

    def interrupt(self, call):
        rid = self.request({"op": "interrupt", "call": call})
        return self.frames(rid)[-1][0]

    def close(self):
        _limpet.ctx_close(self.link)
        _limpet.ctx_reap(self.pid, 2.0)


class Result:
    def __init__(self, frames):
        self.frames = frames
        self.ops = [h["op"] for h, _, _ in frames]
        self.done = frames[-1][0]
        self.status = self.done.get("status")

    def out(self, stream="stdout"):
        return b"".join(p for h, p, _ in self.frames
                        if h["op"] == "out" and h["stream"] == stream)

    def one(self, op):
        (f,) = [(h, p) for h, p, _ in self.frames if h["op"] == op]
        return f


@pytest.fixture(scope="module", params=PYTHONS, ids=lambda p: os.path.basename(p))
def env(request):
    e = Env(request.param)
    yield e
    e.close()


def test_the_environment_agent_offers_session_and_connect_keeps_its_budget(env):
    assert env.hello["pid"] == env.pid
    assert len(_bootstrap.agent_payload()) < 8192   # limpet.connect's agent, unchanged
    proc = subprocess.Popen(_limpet.stage1_argv("test@local", sys.executable),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    def more(data):
        assert select.select([proc.stdout], [], [], 10)[0], "the far Python said nothing"
        return data + os.read(proc.stdout.fileno(), 65536)

    try:                                              # its hello, as the C launcher reads it
        said = b""
        while b"\n" not in said:
            said = more(said)
        proc.stdin.write(_agent.stage2({"source": zlib.compress(_bootstrap.session_source())},
                                       said[len(_agent.STAGE1):].strip().decode()))
        proc.stdin.flush()
        got = said.split(b"\n", 1)[1]
        while len(got) < len(wire.PREAMBLE):
            got = more(got)
        assert got.startswith(wire.PREAMBLE)
        dec = wire.Decoder()
        dec.feed(got[len(wire.PREAMBLE):])
        while (f := dec.next()) is None:
            dec.feed(more(b""))
        assert f[0]["caps"] == ["call", "channel", "module", "log", "route", "session"]
    finally:
        proc.kill()
        proc.wait()


def test_a_cell_prints_then_shows_its_last_expression(env):
    r = env.run("x = 21\nprint(x*2)\nx")
    assert r.ops[-2:] == ["value", "done"] and r.status == "ok"
    assert r.out() == b"42\n"
    assert r.one("value") == ({"op": "value", "re": r.done["re"], "type": "int"}, b"21")
    assert all(op == "out" for op in r.ops[:-2])
    assert env.run("y = 1").ops == ["done"]              # no expression, no value
    assert env.run("None").ops == ["done"]               # None is not shown


def test_output_is_exact_partial_lines_and_stderr_too(env):
    r = env.run("import sys\nsys.stdout.write('ab')\nsys.stdout.write('c')\n"
                "sys.stderr.write('err\\n')\nprint('no newline', end='')\n0")
    assert r.out() == b"abcno newline"
    assert r.out("stderr") == b"err\n"
    assert r.ops.index("value") > max(i for i, op in enumerate(r.ops) if op == "out")


def test_exceptions_show_the_repl_traceback_without_agent_frames(env):
    r = env.run("def f():\n    1/0\nf()")
    h, p = r.one("exception")
    assert r.status == "exception" and h["type"] == "ZeroDivisionError"
    assert h["message"] == "division by zero" and h["pickle"] == 0
    assert p.decode() == TB + '  File "<limpet>", line 3, in <module>\n' \
        '  File "<limpet>", line 2, in f\nZeroDivisionError: division by zero\n'
    r = env.run("class E(Exception): pass\nraise E('boom')")
    h, p = r.one("exception")
    assert h["type"] == "__main__.E" and p.decode().endswith("\nE: boom\n")
    r = env.run("1 +")                                   # compile errors alone, as the REPL
    h, p = r.one("exception")
    assert h["type"] == "SyntaxError" and r.status == "exception"
    assert p.decode().startswith('  File "<limpet>", line 1\n    1 +\n')
    assert p.decode().endswith("SyntaxError: invalid syntax\n") and TB not in p.decode()
    if env.python == sys.executable:    # a file's frames as here: underlined (^^^) in 3.11
        p = env.run("import json\njson.loads('{')").one("exception")[1].decode()
        try:
            json.loads("{")
        except ValueError:
            here = traceback.format_exc()
        assert p[p.index('  File "' + json.__file__):] == here[here.index(json.__file__) - 8:]


def test_single_mode_asks_for_more_then_runs_and_binds_underscore(env):
    assert env.run("if 1:", "single").status == "more"
    assert env.run("  print(5)", "single").status == "more"
    r = env.run("", "single")
    assert r.status == "ok" and r.out() == b"5\n"
    r = env.run("6 * 7", "single")
    assert r.one("value")[1] == b"42"
    assert env.run("_ + 1").one("value")[1] == b"43"     # the last value shown, as _
    assert env.run("if 1:", "single").status == "more"   # forget drops the pending lines
    env.send({"op": "forget", "session": "s"})
    assert env.run("7", "single").one("value")[1] == b"7"
    assert env.run("'again'", "single", session="other").one("value")[1] == b"'again'"
    env.run("_ = 'mine'")                                # the user's own _ is kept
    env.run("8", "single")
    assert env.run("_").one("value")[1] == b"'mine'"
    env.run("del _")


def test_exec_mode_shows_no_value(env):
    r = env.run("1 + 1\nprint('p')", "exec")
    assert r.ops[-1] == "done" and "value" not in r.ops and r.out() == b"p\n"


def test_evals_run_in_arrival_order(env):
    env.run("order = []")
    rids = [env.eval("order.append(%d)" % i) for i in range(50)]
    for rid in rids:
        assert env.frames(rid)[-1][0]["status"] == "ok"
    assert env.run("order == list(range(50))").one("value")[1] == b"True"


def test_interrupt_breaks_sleep_and_a_busy_loop_within_a_second(env):
    for code in ("import time\nprint('go', flush=True)\ntime.sleep(30)",
                 "print('go', flush=True)\nwhile True: pass"):
        rid = env.eval(code)
        env.wait_out(rid)
        t0 = time.monotonic()
        assert env.interrupt(rid)["was"] == "running"
        r = Result(env.frames(rid))
        assert r.status == "interrupted" and time.monotonic() - t0 < 1.0
        h, p = r.one("exception")
        assert h["type"] == "KeyboardInterrupt"
        assert p.decode().startswith(TB + '  File "<limpet>", line ')
        assert p.decode().endswith("\nKeyboardInterrupt\n")
        assert p.decode().count("File ") == 1           # the handler is the agent's
    assert env.run("'alive'").one("value")[1] == b"'alive'"


def test_interrupting_a_queued_eval_drops_it(env):
    running = env.eval("import time\nprint('go', flush=True)\ntime.sleep(30)")
    env.wait_out(running)
    queued = env.eval("ran_queued = True")
    assert env.interrupt(queued)["was"] == "queued"
    assert [f[0] for f in env.frames(queued)] == [
        {"op": "done", "re": queued, "status": "interrupted"}]
    env.interrupt(running)
    assert env.frames(running)[-1][0]["status"] == "interrupted"
    assert env.run("'ran_queued' in dir()").one("value")[1] == b"False"
    assert env.interrupt(12345)["was"] == "idle"          # nothing of that id


def test_an_interrupt_right_after_the_end_is_no_stray_keyboard_interrupt(env):
    seen = set()
    for i in range(50):                                   # the interrupt lands before, in
        rid = env.eval("sum(range(%d))" % (i % 10 * 3000))  # or just after the run
        was = env.interrupt(rid)["was"]
        r = Result(env.frames(rid))
        seen.add((was, r.status))
        assert (was, r.status) in (("queued", "interrupted"), ("running", "interrupted"),
                                   ("running", "ok"), ("idle", "ok"))
        assert ("exception" in r.ops) == (was == "running" and r.status == "interrupted")
        r = env.run("'after'")
        assert r.status == "ok" and r.one("value")[1] == b"'after'", r.frames


def test_input_is_asked_of_the_caller(env):
    rid = env.eval("name = input('name? ')\nname.upper()", input=True)
    (h, p), = _limpet.ctx_wait(env.link, rid, 10)
    assert h == {"op": "input", "re": rid, "prompt": "name? ", "password": False}
    env.send({"op": "stdin", "re": rid}, b"ada")
    r = Result(env.frames(rid))
    assert r.one("value")[1] == b"'ADA'" and r.out() == b""   # the prompt is not output
    rid = env.eval("input()", input=True)
    (h, p), = _limpet.ctx_wait(env.link, rid, 10)
    env.send({"op": "stdin", "re": rid, "eof": True})
    assert Result(env.frames(rid)).one("exception")[0]["type"] == "EOFError"
    r = env.run("input('never asked')")                   # input: false
    assert r.ops == ["exception", "done"] and r.one("exception")[0]["type"] == "EOFError"
    rid = env.eval("import sys\nsys.stdin.readline()", input=True)
    (h, p), = _limpet.ctx_wait(env.link, rid, 10)
    assert h["prompt"] == ""
    env.send({"op": "stdin", "re": rid}, b"line\n")
    assert Result(env.frames(rid)).one("value")[1] == b"'line\\n'"


def test_getpass_asks_with_password_and_an_interrupt_stops_the_wait(env):
    rid = env.eval("import getpass\ngetpass.getpass('pw: ')", input=True)
    (h, p), = _limpet.ctx_wait(env.link, rid, 10)
    assert h == {"op": "input", "re": rid, "prompt": "pw: ", "password": True}
    t0 = time.monotonic()
    env.interrupt(rid)
    r = Result(env.frames(rid))
    assert r.status == "interrupted" and time.monotonic() - t0 < 1.0


def test_help_sends_a_page(env):
    r = env.run("help(len)")
    h, p = r.one("page")
    assert h == {"op": "page", "re": r.done["re"]} and b"len(" in p and b"\x08" not in p


def test_complete_and_names_never_run_the_users_code(env):
    env.run("alpha_value = 1\nruns = []\nclass C:\n    @property\n"
            "    def p(self):\n        runs.append(1)\n        raise RuntimeError('ran')\n"
            "c = C()\nbig = list(range(10000))")
    rid = env.request({"op": "complete", "session": "s", "text": "alp"})
    assert env.frames(rid)[-1][0] == {"op": "done", "re": rid, "status": "ok",
                                      "matches": ["alpha_value"], "start": 0}
    rid = env.request({"op": "complete", "text": "x = c.p", "cursor": 7})
    done = env.frames(rid)[-1][0]
    assert done["matches"] == ["p"] and done["start"] == 6
    rid = env.request({"op": "names"})
    names = {n["name"]: n for n in env.frames(rid)[-1][0]["names"]}
    assert names["alpha_value"] == {"name": "alpha_value", "type": "int", "repr": "1"}
    assert names["c"]["type"] == "__main__.C" and names["c"]["repr"].startswith("<__main__.C")
    assert len(names["big"]["repr"]) <= 200 and "__builtins__" not in names
    assert env.run("runs").one("value")[1] == b"[]"


def test_system_exit_closes_the_session_not_the_environment(env):
    r = env.run("import sys\nsys.exit('bye')")
    assert r.status == "closed" and r.out("stderr") == b"bye\n"
    assert env.run("raise SystemExit(3)").status == "closed"
    assert env.run("'still here'").one("value")[1] == b"'still here'"


def test_a_child_process_output_is_the_evals(env):
    r = env.run("import os\nos.system('echo hi; echo oops >&2')")
    assert r.out() == b"hi\n" and r.out("stderr") == b"oops\n"
    assert r.one("value")[1] == b"0"


def test_output_streams_while_the_eval_runs(env):
    r = env.run("import time\nfor i in range(5):\n    print('.', end='', flush=False)\n"
                "    time.sleep(0.15)")
    outs = [(p, t) for h, p, t in r.frames if h["op"] == "out"]
    assert b"".join(p for p, _ in outs) == b"....."
    assert r.frames[-1][2] - outs[0][1] > 0.45          # the first dot came long before done


def test_bad_evals_are_refused(env):
    rid = env.request({"op": "eval", "session": "s", "mode": "nope"}, b"1")
    assert env.frames(rid)[-1][0]["field"] == "mode"
    rid = env.request({"op": "eval", "session": ""}, b"1")
    assert env.frames(rid)[-1][0]["field"] == "session"
    rid = env.request({"op": "eval", "session": "s"}, b"\xff")
    assert env.frames(rid)[-1][0]["code"] == "bad-text"
    rid = env.request({"op": "complete", "text": "ab", "cursor": 9})
    assert env.frames(rid)[-1][0]["field"] == "cursor"
    assert env.run("'fine'").one("value")[1] == b"'fine'"


def test_a_big_value_is_cut_at_64_kib(env):
    h, p = env.run("'é' * 100000").one("value")
    assert h["type"] == "str" and len(p) <= 65536 and p.endswith(b"...")
    p[:-3].decode("utf-8")                                # never cut inside a character


def test_lone_surrogates_in_headers_are_escaped_and_the_link_lives(env):
    """A header is JSON the far end checks: a lone surrogate there ended the environment.
    Escaped as sys.stderr escapes it (\\ud800) in every header that carries the user's text."""
    r = env.run("raise ValueError('\\ud800')")
    h, p = r.one("exception")
    assert h["message"] == "\\ud800" and p.endswith(b"ValueError: \\ud800\n")
    r = env.run("class E(Exception): pass\nE.__qualname__ = 'E\\udc80'\nraise E()")
    assert r.one("exception")[0]["type"] == "__main__.E\\udc80"
    rid = env.eval("input('\\ud800? ')", input=True)
    (h, p), = _limpet.ctx_wait(env.link, rid, 10)
    assert h["prompt"] == "\\ud800? "
    env.send({"op": "stdin", "re": rid}, b"x")
    assert Result(env.frames(rid)).one("value")[1] == b"'x'"
    env.run("globals()['surr\\udfff'] = '\\udfff'")
    rid = env.request({"op": "complete", "text": "surr"})
    assert env.frames(rid)[-1][0]["matches"] == ["surr\\udfff"]
    rid = env.request({"op": "names"})
    names = {n["name"]: n for n in env.frames(rid)[-1][0]["names"]}
    assert names["surr\\udfff"]["repr"] == "'\\udfff'"
    assert env.run("'alive'").one("value")[1] == b"'alive'"
