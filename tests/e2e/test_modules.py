"""Module forwarding (issue 11): a far side imports the caller's modules it lacks through
module-get. Real contexts (python3 and pypy3 children); the packages live in a directory on
the caller's sys.path only, never on the far side's."""
import importlib
import os
import shutil
import sys
import textwrap
import threading
import time

import pytest

import limpet
from limpet import _modules

PYPY = shutil.which("pypy3")
TREE = {
    "fwdpkg/__init__.py": "from . import core\nfrom .sub import leaf\n",
    "fwdpkg/core.py": textwrap.dedent("""\
        from .util import helper
        import fwdpkg.sub.deep

        def later():
            from . import lazy    # inside a function: still known to be imported
            return lazy.V
        """),
    "fwdpkg/util.py": "import json\n\ndef helper(x):\n    return json.loads(json.dumps(x)) * 2\n",
    "fwdpkg/lazy.py": "V = 'lazy'\n",
    "fwdpkg/sub/__init__.py": "from .. import util\n",
    "fwdpkg/sub/deep.py": "from .. import util as z\nK = 100\n",
    "fwdpkg/sub/leaf.py": textwrap.dedent("""\
        from ..util import helper
        from . import deep

        def fn(x):
            return helper(x) + deep.K, __name__, __file__, __package__

        def fail():
            raise ValueError("leaf failed")
        """),
    "fwd_broken.py": "X = 1\nimport fwd_nothere\n",
    "fwd_unrun/__init__.py": "from . import inner\nraise SystemExit('the caller ran me')\n",
    "fwd_unrun/inner.py": "from . import leaf\n",
    "fwd_unrun/leaf.py": "V = 7\n",
    "fwd_broken2.py": "import fwd_nothere\n",
    "fwd_std.py": "import json, os.path, collections, email.mime.text, xml.dom.minidom\n"
                  "from concurrent import futures\nimport fwdpkg.lazy\nN = 3\n",
    "fwd_native/__init__.py": "try:\n    from . import _limpet\nexcept ImportError as e:\n"
                              "    WHY = str(e)\n",   # a C speed-up and its fallback
}
CHAIN = 12   # modules in a chain that import each other


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The packages, importable here only; the far side's PYTHONPATH does not name them."""
    root = tmp_path_factory.mktemp("callers-modules")
    files = dict(TREE)
    for i in range(CHAIN):
        files["fwdchain/m%d.py" % i] = ("from . import m%d\n" % (i + 1) if i + 1 < CHAIN
                                        else "") + "I = %d\n" % i
    files["fwdchain/__init__.py"] = "from . import m0\n"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    so = [f for f in os.listdir(os.path.dirname(limpet.__file__)) if f.startswith("_limpet.")
          and f.endswith(".so")][0]   # a compiled module outside the standard library
    shutil.copy(os.path.join(os.path.dirname(limpet.__file__), so), root / "fwd_native" / so)
    shutil.copy(os.path.join(os.path.dirname(limpet.__file__), so), root / so)  # _limpet
    assert str(root) not in os.environ.get("PYTHONPATH", "")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    yield root
    sys.path.remove(str(root))
    for name in list(sys.modules):
        if name.startswith("fwd"):
            del sys.modules[name]


@pytest.fixture
def local(tree):
    with limpet.connect("local") as ctx:
        yield ctx


def test_a_package_the_far_side_lacks_arrives_in_one_round_trip(local, tree):
    import fwdpkg.sub.leaf
    value, name, path, package = local.call(fwdpkg.sub.leaf.fn, 4)
    assert (value, name, package) == (108, "fwdpkg.sub.leaf", "fwdpkg.sub")
    assert path == "<limpet:caller>" + str(tree / "fwdpkg/sub/leaf.py")
    # seven modules with relative imports of every kind (., .sub, ..), one module-get
    assert local._modules.gets == 1
    assert sorted(local._modules.sent) == ["fwdpkg", "fwdpkg.core", "fwdpkg.lazy",
                                           "fwdpkg.sub", "fwdpkg.sub.deep",
                                           "fwdpkg.sub.leaf", "fwdpkg.util"]
    assert local.call(fwdpkg.core.later) == "lazy"             # sent before it was needed
    assert local._modules.gets == 1


def test_a_chain_of_modules_takes_one_round_trip_not_one_each(local):
    import fwdchain
    assert local.call(importlib.import_module, "fwdchain.m%d" % (CHAIN - 1)) is not None
    assert local._modules.gets == 1 and len(local._modules.sent) == CHAIN + 1


def test_an_answer_is_bounded_and_the_far_side_asks_for_the_rest(local, monkeypatch):
    monkeypatch.setattr(_modules, "MODULES_MAX", 5)
    assert local.call(importlib.import_module, "fwdchain.m%d" % (CHAIN - 1)) is not None
    assert local._modules.gets == 3 and len(local._modules.sent) == CHAIN + 1   # 5, 5, 3


def test_a_far_traceback_shows_the_forwarded_source(local, tree):
    import fwdpkg.sub.leaf
    with pytest.raises(ValueError, match="leaf failed") as e:
        local.call(fwdpkg.sub.leaf.fail)
    tb = e.value.remote_traceback
    assert 'File "<limpet:caller>%s", line 8, in fail' % (tree / "fwdpkg/sub/leaf.py") in tb
    assert 'raise ValueError("leaf failed")' in tb                  # the line itself


def test_a_module_that_imports_a_missing_module(local, tree, monkeypatch):
    answers = []
    serve = _modules.serve

    def spy(state, h):
        reply = serve(state, h)
        answers.append((h["name"], reply[0]))
        return reply

    monkeypatch.setattr(_modules, "serve", spy)
    with pytest.raises(ModuleNotFoundError) as e:
        local.call(importlib.import_module, "fwd_broken")
    assert e.value.name == "fwd_nothere"
    tb = e.value.remote_traceback
    assert '<limpet:caller>%s", line 2, in <module>' % (tree / "fwd_broken.py") in tb
    assert "import fwd_nothere" in tb
    # the answer said fwd_nothere is missing: the far side did not ask for it
    assert [(n, a["missing"]) for n, a in answers] == [("fwd_broken", ["fwd_nothere"])]
    for _ in range(2):                   # negative caches on both sides: no more asking
        with pytest.raises(ModuleNotFoundError):
            local.call(importlib.import_module, "fwd_broken")
        with pytest.raises(ModuleNotFoundError):
            local.call(importlib.import_module, "fwd_nothere")
    assert local._modules.gets == 1
    with pytest.raises(ModuleNotFoundError):
        local.call(importlib.import_module, "fwd_broken2")
    assert answers[-1][1]["missing"] == []          # the caller does not say it again
    assert local._modules.gets == 2 and local._modules.missing == {"fwd_nothere"}


def test_the_caller_finds_what_it_sends_without_running_it(local):
    with pytest.raises(SystemExit, match="the caller ran me"):      # it runs there only
        local.call(importlib.import_module, "fwd_unrun.inner")
    assert not [m for m in sys.modules if m.startswith("fwd_unrun")]
    assert list(local._modules.sent) == ["fwd_unrun", "fwd_unrun.inner", "fwd_unrun.leaf"]
    assert local._modules.gets == 1


def test_a_compiled_module_is_refused_naming_it(local):
    with pytest.raises(ImportError, match=r"'_limpet' is a compiled module \(.*\.so\)"):
        local.call(importlib.import_module, "_limpet")
    with pytest.raises(ImportError, match="compiled"):          # refused once, remembered
        local.call(importlib.import_module, "_limpet")
    assert local._modules.gets == 1 and "_limpet" not in local._modules.sent


def test_a_packages_compiled_part_is_refused_with_the_package(local):
    """As yaml and markupsafe do, fwd_native tries its C part and falls back: the answer
    that brings the package says the C part is refused, so the far side does not ask."""
    why = local.call(eval, "__import__('fwd_native').WHY")
    assert "'fwd_native._limpet' is a compiled module" in why
    with pytest.raises(ImportError, match="'fwd_native._limpet' is a compiled module"):
        local.call(importlib.import_module, "fwd_native._limpet")
    assert local._modules.gets == 1 and list(local._modules.sent) == ["fwd_native"]


def test_the_standard_library_is_never_sent(local):
    assert local.call(importlib.import_module, "fwd_std") is not None
    sent = list(local._modules.sent)
    assert sent[0] == "fwd_std" and "fwdpkg.lazy" in sent      # and the package it is in
    assert all(n.startswith("fwd") for n in sent), sent           # json, os.path, email...
    # beyond fwd_std, only what the far stdlib itself probes for (copy.py: Jython's org)
    assert local._modules.missing <= {"org"}
    assert local._modules.gets == 1 + len(local._modules.missing)


def test_many_imports_at_once(local):
    names = ["fwd_std", "fwdchain", "fwdpkg", "fwd_native"]
    futures = [local.call_async(importlib.import_module, n) for n in names]
    for f in futures:
        assert isinstance(f.result(timeout=30), limpet.Ref)   # modules do not pickle
    assert local._modules.gets <= len(names) + 1


def test_a_caller_that_does_not_answer_costs_an_import_error_in_bounded_time(local,
                                                                            monkeypatch):
    local.call(exec, "import __main__ as agent\n"         # the far side waits 0.5 s, not 30
                     "agent.Agent.request.__defaults__ = (b'', 0.5)")
    monkeypatch.setattr(_modules, "serve", lambda state, h: b"")
    t = time.monotonic()
    with pytest.raises(ImportError, match="no answer to module-get within 0.5 s"):
        local.call(importlib.import_module, "fwdpkg")
    assert time.monotonic() - t < 5
    monkeypatch.undo()                                     # not remembered as missing
    assert isinstance(local.call(importlib.import_module, "fwdpkg"), limpet.Ref)


@pytest.mark.skipif(PYPY is None, reason="pypy3 is not installed")
def test_a_forwarded_function_runs_on_pypy(tree):
    import fwdpkg.sub.leaf
    with limpet.connect("local", python=PYPY) as ctx:
        assert ctx.agent["implementation"] == "pypy"
        assert ctx.call(fwdpkg.sub.leaf.fn, 1)[0] == 102
        assert ctx._modules.gets == 1
        if tuple(map(int, ctx.agent["python"].split(".")[:2])) < (3, 11):
            # pypy3 lacks tomllib, the caller has it: the standard library is never sent
            with pytest.raises(ModuleNotFoundError):
                ctx.call(importlib.import_module, "tomllib")
            assert "tomllib" in ctx._modules.missing and "tomllib" not in ctx._modules.sent


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a mount namespace")
def test_imports_work_on_a_read_only_far_side(tree):
    import fwdpkg.sub.leaf
    readonly = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                'mount -o remount,bind,ro / && exec "$0" "$@"']
    with limpet.connect("readonly", command=readonly, python=sys.executable) as ctx:
        with pytest.raises(OSError, match="Read-only"):
            ctx.call(open, str(tree / "x"), "w")
        assert ctx.call(fwdpkg.sub.leaf.fn, 0)[0] == 100
        assert ctx._modules.gets == 1


FAKE = textwrap.dedent('''
    import json, os, pickle, re, struct, sys
    def read(n):
        b = b""
        while len(b) < n:
            c = os.read(0, n - len(b))
            if not c:
                sys.exit(0)
            b += c
        return b
    def recv():
        hl, pl = struct.unpack(">II", read(8))
        return json.loads(read(hl)), read(pl)
    def send(h, p=b""):
        b = json.dumps(h).encode()
        os.write(1, struct.pack(">II", len(b), len(p)) + b + p)
    os.write(1, b"limpet-stage1 fake -\\n")                          # stage 1's line
    read(int(read(9)[1:]))                                             # the agent: unused
    os.write(1, b"\\0limpet\\n")
    send({"op": "hello", "id": 0, "protocol": [1], "client": "fake", "caps": ["call"]})
    read(8)
    recv()                                                             # the welcome
    asks = [{"name": 5}, {"name": "../../etc/passwd"}, {"name": "a" * 60000}, {},
            {"name": "os"}, {"name": "__main__"}, {"name": "fwdpkg.sub.leaf"},
            {"name": "fwd_native._limpet"}, {"name": "fwd_nothere"}, {"name": "a..b"}]
    for i, h in enumerate(asks):
        send(dict(h, op="module-get", id=i + 1))
    send({"op": "module-get", "id": "x", "name": "fwdpkg"})           # no usable id
    send({"op": "module-get", "name": "fwdpkg"})
    send({"op": "module-get", "id": [1], "name": "fwdpkg"})
    got, call = {}, None
    while call is None or len(got) < len(asks):
        h, p = recv()
        if h.get("op") == "call":
            call = h["id"]
        else:
            got[h["re"]] = (h["op"], h.get("code"), len(h.get("modules", ())), h.get("missing"), len(p))
    send({"op": "result", "re": call}, pickle.dumps(sorted(got.items()), 4))
    send({"op": "done", "re": call, "status": "ok"})
    read(1 << 30)
''')


def test_garbage_module_gets_cost_the_far_side_an_error_never_the_caller(tree, tmp_path):
    import fwdpkg.sub.leaf
    fake = tmp_path / "fake.py"
    fake.write_text(FAKE)
    ctx = limpet.connect("fake", command=[sys.executable, str(fake), "--"])
    t = time.monotonic()
    got = dict(ctx.call(abs, 1))
    assert time.monotonic() - t < 10
    assert got[1][:2] == got[2][:2] == got[3][:2] == got[4][:2] == got[10][:2] == (
        "error", "bad-field")
    assert got[5] == ("done", None, 0, ["os"], 0)                  # never the stdlib
    assert got[6] == ("done", None, 0, ["__main__"], 0)
    assert got[7][:2] == ("done", None) and got[7][2] == 7 and got[7][4] > 0
    assert got[8][:2] == ("error", "not-supported")
    assert got[9] == ("done", None, 0, ["fwd_nothere"], 0)
    assert ctx._modules.gets == len(got) and threading.active_count() < 50
    ctx.shutdown()
