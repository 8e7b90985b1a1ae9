"""Sessions in a live host (issue 4, items 5, 6 and 9): the namespace is the
host's, values and tracebacks look like the standard REPL's, exit ends the
session and never the host. A real host process, real sockets."""
import threading
import time

import pytest

from limpet.client import Client, ProtocolError


def lines(c, s, *src):
    """Types src line by line, as the REPL would receive it; the last Result."""
    for line in src:
        r = c.eval(s, line, interactive=True)
    return r


def test_assignment_sets_the_host_global(host):
    with Client(host.address) as a, Client(host.address) as b:
        sa, sb = a.clone(), b.clone()
        assert a.eval(sa, "x = 42", interactive=True).status == "ok"
        # another client, another session, same namespace: the host's module
        assert b.eval(sb, "x", interactive=True).value == "42"
        assert b.eval(sb, "import __main__; __main__.x", interactive=True).value == "42"


def test_live_state_and_hot_patch(host):
    with Client(host.address) as c:
        s = c.clone()
        n1 = int(c.eval(s, "data['n']", interactive=True).value)
        time.sleep(0.3)
        n2 = int(c.eval(s, "data['n']", interactive=True).value)
        assert n2 > n1   # the host's loop runs while we look
        r = lines(c, s, "def step():", "    data['n'] += 100", "")
        assert r.status == "ok"
        time.sleep(0.3)
        n3 = int(c.eval(s, "data['n']", interactive=True).value)
        assert n3 - n2 >= 300   # the running loop now calls the new step()


def test_other_modules_through_sys_modules(host):
    with Client(host.address) as c:
        s = c.clone()
        c.eval(s, "import sys, json; sys.modules['json'].limpet_mark = 7")
        assert c.eval(s, "import json; json.limpet_mark", interactive=True).value == "7"


def test_repl_rules_for_blocks(host):
    with Client(host.address) as c:
        s = c.clone()
        assert c.eval(s, "for i in range(3):", interactive=True).status == "more"
        assert c.eval(s, "    print(i)", interactive=True).status == "more"
        assert c.eval(s, "", interactive=True).out == b"0\n1\n2\n"
        r = lines(c, s, "@staticmethod", "def f(): return 5", "")
        assert r.status == "ok"
        r = lines(c, s, "class K:", "    a = 1", "", "K.a")
        assert r.value == "1"
        assert c.eval(s, "x = (1,", interactive=True).status == "more"
        assert c.eval(s, " 2)", interactive=True).status == "ok"
        assert c.eval(s, "x", interactive=True).value == "(1, 2)"
        assert c.eval(s, "y = 1 + \\", interactive=True).status == "more"


def test_values_like_the_repl(host):
    with Client(host.address) as c:
        s = c.clone()
        r = c.eval(s, "'caf\u00e9'", interactive=True)
        assert r.value == "'caf\u00e9'"
        assert [h.get("type") for h, _ in r.frames if h["op"] == "value"] == ["str"]
        assert c.eval(s, "None", interactive=True).frames[0][0]["op"] == "done"
        assert c.eval(s, "6 * 7", interactive=True).value == "42"
        assert c.eval(s, "_ + 1", interactive=True).value == "43"
        # a non-interactive unit shows no values
        assert c.eval(s, "6 * 7").value is None
        # a `_` of the user's own is not overwritten
        c.eval(s, "_ = 'mine'")
        c.eval(s, "1", interactive=True)
        assert c.eval(s, "_", interactive=True).value == "'mine'"
        c.eval(s, "del _")


def test_tracebacks_like_the_repl(host):
    with Client(host.address) as c:
        s = c.clone()
        r = lines(c, s, "def f():", "    return 1 / 0", "")
        r = c.eval(s, "f()", interactive=True)
        assert r.status == "exception"
        assert r.exception == ('Traceback (most recent call last):\n'
                               '  File "<limpet>", line 1, in <module>\n'
                               '  File "<limpet>", line 2, in f\n'
                               'ZeroDivisionError: division by zero\n')
        assert [h["type"] for h, _ in r.frames if h["op"] == "exception"] == ["ZeroDivisionError"]
        r = c.eval(s, "1 +", interactive=True)
        assert r.status == "exception" and "SyntaxError" in r.exception
        assert "limpet" not in r.exception.replace('"<limpet>"', "")
        r = c.eval(s, "import json; json.loads('{')")
        assert "json.decoder.JSONDecodeError" in r.exception
        assert [h["type"] for h, _ in r.frames if h["op"] == "exception"] == [
            "json.decoder.JSONDecodeError"]


@pytest.mark.parametrize("code", ["exit()", "quit()", "import sys; sys.exit(3)", "raise SystemExit"])
def test_exit_ends_the_session_not_the_host(host, code):
    with Client(host.address) as c:
        s = c.clone()
        assert c.eval(s, code, interactive=True).status == "closed"
        with pytest.raises(ProtocolError) as e:
            c.eval(s, "1")
        assert e.value.code == "no-session"
        s2 = c.clone()
        # the host lives on, and exit() did not close the host's stdin
        assert c.eval(s2, "import sys; sys.stdin.closed", interactive=True).value == "False"
    assert host.alive()


def test_sessions_are_separate_but_share_the_namespace(host):
    with Client(host.address) as c:
        s1, s2 = c.clone(), c.clone()
        assert s1 != s2
        assert c.eval(s1, "for i in range(2):", interactive=True).status == "more"
        # s2 has no pending input of its own
        assert c.eval(s2, "shared = 5", interactive=True).status == "ok"
        assert c.eval(s1, "    pass", interactive=True).status == "more"
        assert c.eval(s1, "", interactive=True).status == "ok"
        assert c.eval(s1, "shared", interactive=True).value == "5"


def test_many_clients_at_once(host):
    errors = []

    def client(k):
        try:
            with Client(host.address) as c:
                s = c.clone()
                for i in range(50):
                    r = c.eval(s, f"print({k} * 1000 + {i})")
                    if r.out != f"{k * 1000 + i}\n".encode():
                        errors.append((k, i, r.frames))
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_source_transform(make_host):
    h = make_host(LIMPET_TEST_TRANSFORM=1)
    with Client(h.address) as c:
        s = c.clone()
        assert c.eval(s, "twice!(21)", interactive=True).value == "42"
        assert c.eval(s, "print(twice!(2 + 3))").out == b"10\n"
        assert lines(c, s, "def g(v):", "    return twice!(v)", "", "g(4)").value == "8"


def test_describe_and_ping(host):
    with Client(host.address) as c:
        d = c.request("describe").final
        assert {"eval", "clone", "close", "interrupt", "ping"} <= {o["op"] for o in d["ops"]}
        assert d["server"]["name"] == "testapp"
        assert d["stats"] == {"connections": 1, "sessions": 0}   # only this one, no session
        r = c.request("ping", b"\x00\xffecho")
        assert r.frames[-1][1] == b"\x00\xffecho"


def test_hello_opens_the_first_session(host):
    with Client(host.address, session=True) as c:
        s = c.welcome["session"]
        assert set(c.welcome["caps"]) >= {"repl", "input", "complete", "interrupt", "jobs", "page"}
        # one list of capabilities: describe gives the handshake's
        assert c.request("describe").final["caps"] == c.welcome["caps"]
        assert c.eval(s, "6 * 7", interactive=True).value == "42"
        assert c.request("describe").final["stats"]["sessions"] >= 1


def test_interactive_lines_may_end_with_their_newline(host):
    with Client(host.address) as c:
        s = c.clone()
        assert c.eval(s, "def h(x):\n", interactive=True).status == "more"
        assert c.eval(s, "    return x + 1\n", interactive=True).status == "more"
        assert c.eval(s, "\n", interactive=True).status == "ok"
        assert c.eval(s, "h(1)\n", interactive=True).value == "2"
        # a pasted block in one payload, ended by its blank line
        assert c.eval(s, "def k():\n    return 5\n\n", interactive=True).status == "ok"
        assert c.eval(s, "k()", interactive=True).value == "5"


def test_value_replies_with_odd_type_names(host):
    """The value header is formatted by hand for plain type names; a name
    that needs JSON escaping takes the encoder, and both decode alike."""
    with Client(host.address, session=True) as c:
        s = c.welcome["session"]
        r = c.eval(s, "int('7')", interactive=True)
        assert (r.value, r.frames[0][0]["type"], r.frames[-1][0]["status"]) == ("7", "int", "ok")
        r = c.eval(s, "type('q\"b\\\\\\\\s\\\\n', (), {'__repr__': lambda self: 'R'})()",
                   interactive=True)
        assert r.value == "R" and r.frames[0][0]["type"].endswith('q"b\\\\s\\n'), r.frames[0][0]
        r = c.eval(s, "type('é' * 10, (), {'__repr__': lambda self: 'U'})()", interactive=True)
        assert r.value == "U" and r.frames[0][0]["type"].endswith("é" * 10)


def test_environments_are_a_table_with_main_first(host):
    """The namespace given to start() is environment "main"; clone may name
    it, and a name that is not there is refused, field by field."""
    with Client(host.address) as c:
        envs = c.request("describe").final["envs"]
        assert [e["env"] for e in envs] == ["main"]
        s = c.request("clone", env="main").final["session"]
        assert c.eval(s, "data['n'] > 0", interactive=True).value == "True"
        assert c.request("describe").final["envs"] == [{"env": "main", "sessions": 1}]
        with pytest.raises(ProtocolError) as e:
            c.request("clone", env="nope")
        assert e.value.code == "bad-field" and e.value.header["field"] == "env"
        with pytest.raises(ProtocolError) as e:
            c.request("clone", env="no/slash")
        assert e.value.code == "bad-field"
        c.request("close", session=s)
        assert c.request("describe").final["envs"] == [{"env": "main", "sessions": 0}]
