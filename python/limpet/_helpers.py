"""What a session needs from the standard library to behave at a prompt:
help() pages to the session, getpass asks the session's client, and doc()
prints an object's documentation. Installed while a server runs; host
threads see the originals."""
import builtins

from . import _limpet

_saved = {}   # what install() replaced; pydoc, getpass and _jobs are imported
              # there, at start(), never by `import limpet` (20+ ms of start-up)


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


def install():
    import getpass
    import pydoc
    from . import _jobs

    if _saved:
        return
    _saved.update(pager=pydoc.pager, getpager=pydoc.getpager, getpass=getpass.getpass)
    pydoc.pager = _pager
    getpass.getpass = _getpass
    added = []
    for name, func in {"doc": doc, "jobs": _jobs.jobs, "bg": _jobs.bg, "fg": _jobs.fg}.items():
        if not hasattr(builtins, name):   # never shadow a builtin someone else put there
            setattr(builtins, name, func)
            added.append(name)
    _saved["builtins"] = added


def uninstall():
    import getpass
    import pydoc

    if not _saved:
        return
    if pydoc.pager is _pager:
        pydoc.pager = _saved["pager"]
    if getpass.getpass is _getpass:
        getpass.getpass = _saved["getpass"]
    for name in _saved["builtins"]:
        if hasattr(builtins, name):
            delattr(builtins, name)
    _saved.clear()
