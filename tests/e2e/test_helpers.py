"""help(), doc() and getpass in a session (issue 4, item 6)."""
from limpet.client import Client


def converse(c, s, rid, code, answers):
    """Runs code, answering each input request from answers; all frames."""
    c.send({"op": "eval", "id": rid, "session": s}, code.encode())
    frames, k = [], 0
    while True:
        h, p = c.read_frame()
        frames.append((h, p))
        if h["op"] == "input":
            c.send({"op": "stdin", "id": 1000 + k, "session": s}, answers[k].encode())
            k += 1
        if h.get("re") == rid and h["op"] == "done":
            return frames


def test_help_of_an_object_pages_to_the_session(host):
    with Client(host.address) as c:
        s = c.clone()
        r = c.eval(s, "help(len)", interactive=True)
        assert r.status == "ok"
        assert r.out.startswith(b"Help on built-in function len in module builtins:")
        assert b"Return the number of items in a container." in r.out


def test_help_goes_to_the_pager_of_a_client_that_has_one(host):
    with Client(host.address, session=True, caps=["page"]) as c:
        s = c.welcome["session"]
        assert "page" in c.welcome["caps"]
        r = c.eval(s, "print('before'); help(len); print('after')", interactive=True)
        assert r.status == "ok"
        ops = [h["op"] for h, _ in r.frames]
        k = ops.index("page")   # output may come in any number of out frames around it
        assert set(ops[:k]) == {"out"} and set(ops[k + 1:-1]) == {"out"} and ops[-1] == "done", ops
        page = r.frames[k]
        assert page[0]["re"] == r.final["re"] and page[0]["session"] == s
        assert page[1].startswith(b"Help on built-in function len in module builtins:")
        assert b"".join(p for _, p in r.frames[:k]) == b"before\n"
        assert b"".join(p for _, p in r.frames[k + 1:-1]) == b"\nafter\n"  # help() ends a line


def test_help_from_a_thread_at_the_prompt_is_printed_not_paged(host):
    with Client(host.address, session=True, caps=["page"]) as c:
        s = c.welcome["session"]
        c.eval(s, "import threading; threading.Timer(0.2, help, (len,)).start()",
               interactive=True)
        out = b"".join(p for h, p in c.notices)
        assert all(h["op"] == "out" for h, _ in c.notices)
        while b"Return the number of items" not in out:
            h, p = c.read_frame()
            assert h["op"] == "out", h
            out += p


def test_interactive_help(host):
    with Client(host.address) as c:
        s = c.clone()
        frames = converse(c, s, 5, "help()", ["len\n", "quit\n"])
        out = b"".join(p for h, p in frames if h["op"] == "out")
        assert b"help> " in out and b"Return the number of items" in out
        assert frames[-1][0]["status"] == "ok"


def test_doc(host):
    with Client(host.address) as c:
        s = c.clone()
        r = c.eval(s, "doc(len)", interactive=True)
        assert r.out.startswith(b"built-in function len in module builtins\n\nlen(obj, /)")


def test_getpass_asks_without_echo(host):
    with Client(host.address) as c:
        s = c.clone()
        frames = converse(c, s, 7, "import getpass\npw = getpass.getpass('Key: ')\nprint(len(pw))",
                          ["hunter2\n"])
        asks = [h for h, _ in frames if h["op"] == "input"]
        assert asks == [{"op": "input", "re": 7, "session": s, "prompt": "Key: ", "echo": False}]
        assert b"".join(p for h, p in frames if h["op"] == "out") == b"7\n"


def test_pydoc_is_patched_when_imported_not_at_start(runtime_dir):
    """start() leaves pydoc (4.6 MB) unimported; help() in a session still
    pages to the client, the host's own pydoc keeps its pager after stop(),
    and a pydoc imported before start() is patched at once."""
    from conftest import run_python
    p = run_python("""
import sys, limpet
from limpet.client import Client
s = limpet.start({})
assert "pydoc" not in sys.modules
with Client(s.address, session=True, caps=["page"]) as c:
    r = c.eval(c.welcome["session"], "help(len)", interactive=True)
    assert "page" in [h["op"] for h, _ in r.frames], r.frames
import pydoc
assert pydoc.pager.__module__ == "limpet._helpers"
s.stop()
assert pydoc.pager.__module__ == "pydoc" and limpet._helpers._PydocFinder not in sys.meta_path
s = limpet.start({})          # pydoc already there: patched at start
assert pydoc.pager.__module__ == "limpet._helpers"
s.stop()
print("ok")
""", runtime_dir)
    assert p.stdout == "ok\n", p.stderr
