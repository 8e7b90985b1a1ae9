"""The REPL says what python3 says (issue 10, item 6; for `limpet serve`, issue 12).

Every transcript of tests/e2e/repl_corpus/cases_*.py is fed line by line to
CPython's own code.InteractiveConsole (repl_corpus/oracle.py, in a fresh
python3), to a session of a real limpet server (interactive evals, one line
each, as `limpet connect` sends them), and to a session of an environment of a
real `limpet serve` (the far agent's python/limpet/_session.py, the same way).
For every line, each must print the same stdout and the same stderr
(tracebacks, warnings) as the oracle, ask for more input at the same lines, and
fail at the same lines. Where limpet differs on purpose, DELIBERATE (the
embedded server) and DELIBERATE_SERVE below say what it shows instead, and why;
docs/repl.md has the long form. A deliberate difference that is no longer one
fails too.

One host (one server), one connection, a fresh session per transcript; the
namespace is reset between transcripts on every side (repl_corpus/host.py: in
the environment, its source is loaded once as a module)."""
import ast
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import Host, Serve
from limpet._bootstrap import session_source
from limpet.client import Client

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "repl_corpus")
# both processes hash str the same way: sets of strings show in one order
ENV = {"PYTHONHASHSEED": "0"}


def load_corpus():
    """{name: [line, ...]} from every cases_*.py, in file order."""
    cases = {}
    for path in sorted(glob.glob(os.path.join(CORPUS, "cases_*.py"))):
        spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name, lines in mod.CASES:
            assert name not in cases, f"two transcripts named {name!r}"
            cases[name] = lines
    return cases


CASES = load_corpus()


def _closed(message):
    """The oracle raised SystemExit at its last line: limpet instead ends the
    session there (never the host), after saying what python3 says when
    SystemExit ends it (the message, if it is not a number)."""
    def expect(oracle):
        *before, last = oracle
        assert last["event"] == "exit" and last["exit_message"] == message
        last = {k: v for k, v in last.items() if k != "exit_message"}
        return before + [dict(last, err=last["err"] + message, event="closed")]
    return expect


def _at(**lines):
    """limpet shows something else at some lines (keyed "l<index>")."""
    def expect(oracle):
        got = [dict(o) for o in oracle]
        for key, change in lines.items():
            got[int(key[1:])].update(change)
        return got
    return expect


# A fresh python3's, as the hosts have: not this process's, which another test's
# import of jedi (through IPython, from the Jupyter tests) raises to 3000.
FRESH_RECURSION_LIMIT = int(subprocess.run(
    [sys.executable, "-c", "import sys; print(sys.getrecursionlimit())"],
    capture_output=True, text=True, check=True).stdout)


def _recursion(below=0):
    """The console's frames use up some of the recursion limit, so it repeats
    the recursing line fewer times than limpet (and python3) do: there, the
    limit is <module>, three frames shown, and the rest repeated, less the
    calls below the user's code, if any (`below`)."""
    def expect(oracle):
        got = [dict(o) for o in oracle]
        m = re.search(r"\[Previous line repeated (\d+) more times\]", got[2]["err"])
        assert m, got[2]["err"]
        got[2]["err"] = got[2]["err"].replace(m.group(0), "[Previous line repeated %d more times]"
                                              % (FRESH_RECURSION_LIMIT - 4 - below))
        return got
    return expect


SESSION_ENDS = ("SystemExit ends the session, never the host: a REPL inside a live program "
                "must not be able to stop it by accident")
UNDERSCORE = ("`_` is bound in the environment, not in builtins: builtins are the whole "
              "host's, shared with its own code and every other session")
NO_LAST = ("sys.last_* is not set: sys is the host's, shared by every session, and a "
           "traceback kept there would keep the failing frames alive after the session ends")
# differences that come from the console, not from python3's REPL
NO_EXCEPTHOOK = ("sys.excepthook is the host's (a crash reporter, a logger), not the "
                 "session's: a session's errors always go to the session")
CONSOLE_FRAMES = ("the console runs code from Python frames of its own (code.py); python3's "
                  "REPL and limpet run it from C, with no frame below the user's")
CONSOLE_REGISTRY = ("the console compiles every line through codeop, whose catch_warnings "
                    "resets the warnings registry, so it repeats a warning that python3 "
                    "(and limpet, for one-line input) shows once")
CONSOLE_STDERR = ("the console writes to a StringIO, which keeps lone surrogates; python3's "
                  "sys.stderr escapes them (backslashreplace), and so does limpet")


def _tb(*lines):
    return "".join(["Traceback (most recent call last):\n",
                    '  File "<limpet>", line 1, in <module>\n', *lines])


# Where limpet differs from code.InteractiveConsole on purpose: transcript
# name -> (why, what limpet shows given what the console showed). The
# expectation is exact: a difference that goes away, or changes, fails.
DELIBERATE = {
    "exit_call": (SESSION_ENDS, _closed("")),
    "exit_quit": (SESSION_ENDS, _closed("")),
    "exit_sys_exit_code": (SESSION_ENDS, _closed("")),
    "exit_sys_exit_message": (SESSION_ENDS, _closed("goodbye\n")),
    "exit_raise_systemexit": (SESSION_ENDS, _closed("")),
    "exit_raise_systemexit_message": (SESSION_ENDS, _closed("bye now\n")),
    "exit_in_function": (SESSION_ENDS, _closed("")),
    "exit_after_output": (SESSION_ENDS, _closed("")),
    "exit_unicode_message": (SESSION_ENDS, _closed("adi\u00f3s \u2603\n")),
    "exit_lines_after_ignored": (SESSION_ENDS, _closed("")),
    "exit_in_finally_order": (SESSION_ENDS, _closed("fin\n")),
    "display_underscore_in_globals": (UNDERSCORE, _at(l1={"out": "True\n"})),
    "display_del_underscore": (UNDERSCORE, _at(l1={"err": "", "event": "ok"})),
    "exc_last_value": (NO_LAST, _at(l2={
        "out": "", "event": "exception",
        "err": _tb("AttributeError: module 'sys' has no attribute 'last_value'\n")})),
    "exc_user_excepthook": (NO_EXCEPTHOOK, _at(
        l2={"out": "", "err": _tb("ZeroDivisionError: division by zero\n")},
        l3={"out": "", "err": '  File "<limpet>", line 1\n    x = = 1\n        ^\n'
                              "SyntaxError: invalid syntax\n"})),
    "exc_frame_depth": (CONSOLE_FRAMES, _at(l1={
        "out": "", "event": "exception",
        "err": _tb("ValueError: call stack is not deep enough\n")})),
    "exc_warning_stacklevel": (CONSOLE_FRAMES, _at(l1={"err": "sys:1: UserWarning: up\n"})),
    "exc_recursion": (CONSOLE_FRAMES, _recursion()),
    "warn_user_warning_once_per_line": (CONSOLE_REGISTRY, _at(l2={"err": ""})),
    "unicode_surrogate_in_traceback": (CONSOLE_STDERR, _at(l0={
        "err": _tb("ValueError: \\ud800\n")})),
}



def _agent_exec_line():
    """The line of the environment's agent, as sent (`<limpet-agent>`), whose exec() runs an
    interactive line (Session.execute)."""
    tree = ast.parse(session_source())
    session = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Session")
    execute = next(n for n in session.body if getattr(n, "name", None) == "execute")
    return [n.lineno for n in ast.walk(execute) if isinstance(n, ast.Call)
            and getattr(n.func, "id", None) == "exec"][-1]


AGENT_FRAMES = ("an environment's agent is Python with nothing installed, so the user's code "
                "runs from Python frames of the agent's own (<limpet-agent>: its <module>s, "
                "main, run, evaluate, user, execute, and exec() itself), as the console's does; "
                "python3's REPL and the embedded server run it from C")
# Where an environment of `limpet serve` differs from the console on purpose: as DELIBERATE.
# What the embedded server does, the environment does too (its sessions share one namespace,
# builtins, sys and warnings with each other and with the agent, as the host's do), but for
# the frames below the user's code.
DELIBERATE_SERVE = dict(DELIBERATE, **{
    "exc_frame_depth": (AGENT_FRAMES, _at(l1={
        "out": "<frame at 0x?, file '<limpet-agent>', line %d, code execute>\n"
               % _agent_exec_line()})),
    "exc_warning_stacklevel": (AGENT_FRAMES, _at(l1={
        "err": "<limpet-agent>:%d: UserWarning: up\n" % _agent_exec_line()})),
    "exc_recursion": (AGENT_FRAMES, _recursion(below=8)),
})

_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def normal(observations):
    """Object addresses differ between two processes; nothing else may."""
    return [{k: _ADDRESS.sub(" at 0x?", v) if isinstance(v, str) else v for k, v in o.items()}
            for o in observations]


def observe(result):
    """One line's observation from limpet's frames, as `limpet connect` shows
    them: out frames to their stream, a value's repr and a newline to stdout,
    a traceback to stderr."""
    out, err = [], []
    for h, p in result.frames:
        if h["op"] == "out":
            (err if h.get("stream") == "stderr" else out).append(p.decode())
        elif h["op"] == "value":
            out.append(p.decode() + "\n")
        elif h["op"] == "exception":
            err.append(p.decode())
    status = result.status
    event = {"ok": "ok", "more": "ok", "exception": "exception", "closed": "closed"}.get(status,
                                                                                      status)
    return {"out": "".join(out), "err": "".join(err), "more": status == "more", "event": event}


# the namespace the environment's sessions share is the one an eval runs in
SERVE_RESET = "import _repl_corpus_host as h; h.reset(globals())"
# the far side has no host module to import: host.py's source is made one, once
SERVE_SETUP = ("import sys, types\nm = types.ModuleType('_repl_corpus_host')\n"
               "exec(compile(%r, 'host.py', 'exec'), m.__dict__)\nsys.modules[m.__name__] = m\n")


def run_limpet(address, reset="import _repl_corpus_host as h; h.reset()", setup=None, **clone):
    """Every transcript in a new session (clone's fields: env=... for serve), after reset in
    a control session; setup runs there first."""
    got = {}
    with Client(address) as c:
        control = c.request("clone", **clone).final["session"]
        for code in ([setup] if setup else []):
            assert c.eval(control, code).status == "ok"
        for name, lines in CASES.items():
            assert c.eval(control, reset).status == "ok", f"the reset before {name} failed"
            s = c.request("clone", **clone).final["session"]
            got[name] = obs = []
            for line in lines:
                obs.append(observe(c.eval(s, line, interactive=True)))
                if obs[-1]["event"] == "closed":
                    break
            else:
                c.request("close", session=s)
    return got


@pytest.fixture(scope="module")
def oracle():
    proc = subprocess.run([sys.executable, os.path.join(CORPUS, "oracle.py")],
                          input=json.dumps(CASES).encode(), capture_output=True,
                          env=dict(os.environ, **ENV), timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def _runtime_dir(tmp_path_factory):
    runtime_dir = tmp_path_factory.mktemp("repl") / "run"
    runtime_dir.mkdir(mode=0o700)
    return runtime_dir


@pytest.fixture(scope="module")
def observed(tmp_path_factory, oracle):
    host = Host(_runtime_dir(tmp_path_factory), script=os.path.join(CORPUS, "host.py"), env=ENV)
    try:
        got = run_limpet(host.address)
        assert host.alive(), "a transcript ended the host"
    finally:
        host.stop()
    return oracle, got


@pytest.fixture(scope="module")
def served(tmp_path_factory, oracle, limpet_bin):
    """The corpus in the main environment of a `limpet serve` on the oracle's python3."""
    serve = Serve(limpet_bin, _runtime_dir(tmp_path_factory), "--python", sys.executable,
                  env=ENV)
    try:
        with open(os.path.join(CORPUS, "host.py")) as f:
            got = run_limpet(serve.address, SERVE_RESET, SERVE_SETUP % f.read(), env="main")
        assert serve.alive(), "a transcript ended the server"
    finally:
        serve.stop()
    return oracle, got


def test_corpus_is_large_and_covers_the_rules():
    assert len(CASES) >= 150
    assert sum(len(lines) > 1 for lines in CASES.values()) >= 100
    stale = (set(DELIBERATE) | set(DELIBERATE_SERVE)) - set(CASES)
    assert not stale, f"deliberate differences for transcripts that do not exist: {stale}"


def check(observed, name, deliberate):
    oracle, limpet = (normal(o[name]) for o in observed)
    if name not in deliberate:
        assert limpet == oracle
        return
    why, expect = deliberate[name]
    want = normal(expect(oracle))
    assert want != oracle, f"{name} no longer differs from the console: drop it from the list"
    assert limpet == want, why


@pytest.mark.parametrize("name", list(CASES))
def test_transcript(observed, name):
    check(observed, name, DELIBERATE)


@pytest.mark.parametrize("name", list(CASES))
def test_transcript_in_a_serve_environment(served, name):
    check(served, name, DELIBERATE_SERVE)


@pytest.mark.parametrize("side", ["observed", "served"])
def test_the_issue_examples_word_for_word(request, side):
    """The three syntax errors the issue names, as python3's REPL prints them
    (with <limpet> for <stdin>), pinned apart from the oracle: the harness
    compares what it should, and codeop's frames never come back."""
    oracle, limpet = request.getfixturevalue(side)
    want = {
        "syntax_double_equals": [
            '  File "<limpet>", line 1\n    x = = 1\n        ^\nSyntaxError: invalid syntax\n'],
        "syntax_unexpected_indent": [
            '  File "<limpet>", line 1\n    x = 1\nIndentationError: unexpected indent\n'],
        "syntax_dedent_without_blank": [
            "", "", '  File "<limpet>", line 3\n    y = 2\n    ^\nSyntaxError: invalid syntax\n'],
    }
    for name, errs in want.items():
        assert [o["err"] for o in limpet[name]] == errs
        assert [o["err"] for o in oracle[name]] == errs
        assert [o["more"] for o in limpet[name]] == [True] * (len(errs) - 1) + [False]
    assert not [name for name, obs in limpet.items() for o in obs if "codeop.py" in o["err"]]
