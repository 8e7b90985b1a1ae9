"""The protocol additions limpet kernel needs (docs/jupyter.md section 5, docs/protocol.md
section 6, "Capabilities cell, check and inspect"): eval's mode, check, inspect and the
exception frame's message, over the real socket, against an embedded host and against a
`limpet serve` environment."""
import threading
import time

import pytest

from limpet.client import Client, ProtocolError

KERNEL_CAPS = ("page", "cell", "check", "inspect")


@pytest.fixture(params=["host", "serve"])
def target(request, make_host, make_serve):
    """(address, kind): an embedded host's socket, or a `limpet serve` whose sessions run in
    its environment "main" (a far Python agent)."""
    if request.param == "host":
        return make_host().address, "host"
    return make_serve().address, "serve"


def connect(target, caps=KERNEL_CAPS):
    c = Client(target[0], caps=caps, session=True, timeout=20)
    return c, c.welcome["session"]


def cell(c, sid, code, mode="cell", **fields):
    return c.request("eval", code.encode(), session=sid, mode=mode, **fields)


def test_caps_listed_only_when_offered(target):
    c, _ = connect(target)
    with c:
        for cap in ("cell", "check", "inspect"):
            assert cap in c.welcome["caps"]
    c, sid = connect(target, caps=("page",))
    with c:
        for cap in ("cell", "check", "inspect"):
            assert cap not in c.welcome["caps"]
        assert "page" in c.welcome["caps"]
        # mode is ignored as before: interactive decides (default false: exec, no value)
        r = c.request("eval", b"1 + 1", session=sid, mode="cell")
        assert r.status == "ok" and r.value is None
        r = c.request("eval", b"2 + 2", session=sid, mode="exec", interactive=True)
        assert r.value == "4"
        # and the new requests are not served to it
        with pytest.raises(ProtocolError) as e:
            c.request("check", b"x = 1", session=sid)
        assert e.value.header["code"] == "not-supported"
        with pytest.raises(ProtocolError) as e:
            c.request("inspect", session=sid, text="len")
        assert e.value.header["code"] == "not-supported"


def test_cell_shows_the_last_expression(target):
    c, sid = connect(target)
    with c:
        r = cell(c, sid, "x = 20\nprint('hi')\nx + 1\n")
        assert r.status == "ok"
        assert r.out == b"hi\n"
        assert r.value == "21"
        assert [h["op"] for h, _ in r.frames][-2:] == ["value", "done"]
        assert cell(c, sid, "_ * 2").value == "42"          # _ was bound to 21
        r = cell(c, sid, "y = x * 3")                       # an assignment last: no value
        assert r.status == "ok" and r.value is None
        assert cell(c, sid, "y").value == "60"
        r = cell(c, sid, "for i in range(3):\n    print(i)\n")
        assert r.out == b"0\n1\n2\n" and r.value is None
        assert cell(c, sid, "None").value is None           # None is never shown
        r = cell(c, sid, "x = 1\nx", mode="exec")            # exec: no value
        assert r.status == "ok" and r.value is None
        assert cell(c, sid, "x + 1", mode="single").value == "2"
        # mode wins over interactive
        assert cell(c, sid, "x + 2", mode="exec", interactive=True).value is None
        with pytest.raises(ProtocolError) as e:
            cell(c, sid, "1", mode="notebook")
        assert e.value.header["code"] == "bad-field" and e.value.header["field"] == "mode"


def test_cell_errors(target):
    c, sid = connect(target)
    with c:
        r = cell(c, sid, "a = 1\nb = 2\nraise ValueError('bad %d' % (a + b))\nc = 3\n",
                 filename="<cell-7>")
        assert r.status == "exception"
        h = [h for h, _ in r.frames if h["op"] == "exception"][0]
        assert h["type"] == "ValueError"
        assert h["message"] == "bad 3"
        assert 'File "<cell-7>", line 3' in r.exception
        assert r.exception.rstrip().endswith("ValueError: bad 3")
        r = cell(c, sid, "x = (1,\nprint(x)")
        assert r.status == "exception" and "SyntaxError" in r.exception
        assert cell(c, sid, "c").status == "exception"      # the cell stopped at line 3
        long = cell(c, sid, "raise KeyError('é' * 5000)")
        m = [h for h, _ in long.frames if h["op"] == "exception"][0]["message"]
        assert 4000 < len(m.encode()) <= 4096 and m.startswith("'éé")


def test_cell_exit_closes_the_session_not_the_host(target):
    c, sid = connect(target)
    with c:
        r = cell(c, sid, "x = 1\nexit()\n")
        assert r.status == "closed"
        sid2 = c.clone()
        assert cell(c, sid2, "x").value == "1"


def test_check(target):
    c, sid = connect(target)
    with c:
        def check(code):
            return c.request("check", code.encode(), session=sid).final

        assert check("x = 1")["complete"] == "complete"
        d = check("for i in x:")
        assert d["complete"] == "incomplete" and d["indent"] == "    "
        d = check("def f():\n    if x:")
        assert d["complete"] == "incomplete" and d["indent"] == "        "
        d = check("x = (1,")
        assert d["complete"] == "incomplete" and d["indent"] == ""
        assert check("x = )")["complete"] == "invalid"
        assert check("")["complete"] == "complete"
        # nothing ran
        assert check("import sys; sys.exit()")["complete"] == "complete"
        assert cell(c, sid, "1 + 1").value == "2"


def test_check_answers_while_the_session_is_busy(target):
    c, sid = connect(target)
    with c:
        rid = c.next_id
        c.next_id += 1
        c.send({"op": "eval", "id": rid, "session": sid, "mode": "cell"},
               b"import time\ntime.sleep(3)\n")
        time.sleep(0.3)
        t0 = time.monotonic()
        d = c.request("check", b"if x:", session=sid).final
        took = time.monotonic() - t0
        assert d["complete"] == "incomplete"
        assert took < 1.0, took
        while True:
            h, _ = c.read_frame()
            if h.get("re") == rid and h["op"] == "done":
                assert h["status"] == "ok"
                break


HOST_OBJECTS = '''
class Thing:
    """A thing of the host."""
    fired = []
    def scale(self, factor, *, twice=False):
        """Scale by factor."""
        return factor
    @property
    def costly(self):
        """A property that must not run."""
        Thing.fired.append(1)
        return 1
thing = Thing()
'''


def test_inspect(target):
    c, sid = connect(target)
    with c:
        def inspect(text, **kw):
            r = c.request("inspect", session=sid, text=text, **kw)
            return r.final["found"], r.frames[-1][1].decode()

        found, text = inspect("len")
        assert found
        assert text.startswith("len: builtin_function_or_method\n")
        assert "len(obj, /)" in text
        assert "Return the number of items" in text
        assert cell(c, sid, HOST_OBJECTS).status == "ok"
        found, text = inspect("y = thing.scale(", cursor=len("y = thing.scale"))
        assert found
        assert "scale(factor, *, twice=False)" in text and "Scale by factor." in text
        found, text = inspect("thing.costly")
        assert found and "property" in text and "A property that must not run." in text
        assert cell(c, sid, "Thing.fired").value == "[]"      # the getter never ran
        found, text = inspect("thing.costly", detail=1)
        assert found and "must not run" in text
        assert cell(c, sid, "Thing.fired").value == "[]"
        found, text = inspect("Thing", detail=1)
        assert found and "class Thing" in text and "scale(self, factor" in text
        assert inspect("no_such_name") == (False, "")
        assert inspect("thing.no_such") == (False, "")
        assert inspect("") == (False, "")
        with pytest.raises(ProtocolError) as e:
            inspect("len", cursor=10)
        assert e.value.header["field"] == "cursor"


def test_inspect_is_bounded(target):
    """The whole help text within the client's max_payload from a host; through limpet
    serve, at most 60000 bytes (the agent's answer is one header, in which non-ASCII text
    takes more room), cut between characters."""
    c, sid = connect(target)
    with c:
        code = "def big():\n    pass\nbig.__doc__ = 'w\u00e9rd ' * 100000"
        assert cell(c, sid, code).status == "ok"
        r = c.request("inspect", session=sid, text="big")
        assert r.final["found"]
        doc = r.frames[-1][1]
        if target[1] == "host":
            assert len(doc) > 600000 and doc.rstrip().endswith("w\u00e9rd".encode())
        else:
            assert 20000 < len(doc) <= 60000  # less than 60000: é is 6 bytes in the header
        doc.decode("utf-8")  # whole characters only


def test_cell_forms(target):
    """One-line expressions (the engine's short cut), blocks without a final newline,
    futures and errors of the expression itself."""
    c, sid = connect(target)
    with c:
        assert cell(c, sid, "for i in range(2):\n    print(i)").out == b"0\n1\n"
        assert cell(c, sid, "x = (1,\n     2)\nx").value == "(1, 2)"
        assert cell(c, sid, "(1 +\n 2)").value == "3"
        assert cell(c, sid, "[1, 2]\n").value == "[1, 2]"
        r = cell(c, sid, "1 / 0")
        assert r.status == "exception" and r.exception.rstrip().endswith(
            "ZeroDivisionError: division by zero")
        r = cell(c, sid, "x = (1,")
        assert r.status == "exception" and "SyntaxError" in r.exception
        r = cell(c, sid, "print('a'); 5")
        assert r.out == b"a\n" and r.value == "5"
        r = cell(c, sid, "6; 7")                                # only the last is shown
        assert r.value == "7"
        r = cell(c, sid, "if True:\n    8")                    # not an expression statement
        assert r.value is None
