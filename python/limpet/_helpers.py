"""What a session needs from the standard library to behave at a prompt:
help() pages to the session, getpass asks the session's client, and doc()
prints an object's documentation. Installed while a server runs; host
threads see the originals."""
import builtins
import importlib.machinery
import sys

from . import _limpet

_saved = {}   # what install() replaced; getpass and _jobs are imported there,
              # at start(), never by `import limpet` (20+ ms of start-up).
              # pydoc (4.6 MB of RSS) is patched when somebody imports it.


def _pager(text, *args):
    """pydoc's pager: the session's client pages the text when it can, else
    it is printed; for the host, the pager pydoc would have chosen (which it
    otherwise caches for everyone)."""
    import pydoc
    if _limpet.in_session():
        if not _limpet.session_page(text):
            pydoc.plainpager(text)
        return None
    return _saved["getpager"]()(text, *args)


def _getpass(prompt="Password: ", stream=None):
    if _limpet.in_session():
        return _limpet.session_input(prompt, False)
    return _saved["getpass"](prompt, stream)


def doc(obj):
    """doc(obj)

    Print obj's signature and documentation (help() without the pager).
    """
    import pydoc
    print(pydoc.render_doc(obj, title="%s", renderer=pydoc.plaintext))


def _patch_pydoc(pydoc):
    if "pager" not in _saved:
        _saved.update(pager=pydoc.pager, getpager=pydoc.getpager)
        pydoc.pager = _pager


class _PatchingLoader:
    """pydoc's own loader, then our pager in it."""

    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        _patch_pydoc(module)


class _PydocFinder:
    """On sys.meta_path while a server runs: finds pydoc as usual, and
    patches its pager when it is first imported (help() imports it)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "pydoc" or "pager" in _saved:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


def install():
    import getpass
    from . import _jobs

    if _saved:
        return
    _saved.update(getpass=getpass.getpass)
    if "pydoc" in sys.modules:
        _patch_pydoc(sys.modules["pydoc"])
    else:
        sys.meta_path.insert(0, _PydocFinder)
    getpass.getpass = _getpass
    added = []
    for name, func in {"doc": doc, "jobs": _jobs.jobs, "bg": _jobs.bg, "fg": _jobs.fg}.items():
        if not hasattr(builtins, name):   # never shadow a builtin someone else put there
            setattr(builtins, name, func)
            added.append(name)
    _saved["builtins"] = added


def uninstall():
    import getpass

    if not _saved:
        return
    if _PydocFinder in sys.meta_path:
        sys.meta_path.remove(_PydocFinder)
    pydoc = sys.modules.get("pydoc")
    if pydoc is not None and getattr(pydoc, "pager", None) is _pager:
        pydoc.pager = _saved["pager"]
    if getpass.getpass is _getpass:
        getpass.getpass = _saved["getpass"]
    for name in _saved["builtins"]:
        if hasattr(builtins, name):
            delattr(builtins, name)
    _saved.clear()
