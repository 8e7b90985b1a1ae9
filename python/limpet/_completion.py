"""Completion of names and attributes for sessions (the `complete` op).

Static on purpose: attributes are listed from __dict__s along the MRO and
looked up with inspect.getattr_static, so completing never runs a
property, a __getattr__ or a __dir__ of the user's.
"""
import builtins
import inspect
import keyword
import re

_TOKEN = re.compile(r"((?:[^\W\d]\w*\.)*)([^\W\d]\w*)?$")
_MAX = 1000          # matches returned at most


def _static_names(obj):
    """Attribute names of obj, from its own __dict__ and its type's MRO."""
    names = set()
    try:
        # the instance dict through object's own lookup: C-level, no user code
        own = object.__getattribute__(obj, "__dict__")
        if isinstance(own, dict):
            names.update(own)
    except Exception:   # no __dict__, or a strange one: skip it
        pass
    mro = obj.__mro__ if isinstance(obj, type) else type(obj).__mro__
    for klass in mro:
        names.update(klass.__dict__)
    for name in getattr(type(obj), "__slots__", ()) or ():
        names.add(name)
    return names


def _resolve(namespace, dotted):
    """The object named by 'a.b.c' without running user code, or raise LookupError."""
    parts = dotted.split(".")
    head = parts[0]
    if head in namespace:
        obj = namespace[head]
    elif hasattr(builtins, head):
        obj = getattr(builtins, head)
    else:
        raise LookupError(head)
    for part in parts[1:]:
        try:
            obj = inspect.getattr_static(obj, part)
        except AttributeError:
            raise LookupError(part) from None
    return obj


def complete(namespace, text, cursor):
    """complete(namespace, text, cursor) -> (start, matches)

    text and cursor are UTF-8 bytes and a byte offset; start is the byte
    offset where each match replaces text[start:cursor].
    """
    before = text[:cursor].decode("utf-8", "replace")
    m = _TOKEN.search(before)
    dotted, prefix = (m.group(1), m.group(2) or "") if m else ("", "")
    start = cursor - len(prefix.encode())
    if dotted:
        try:
            names = _static_names(_resolve(namespace, dotted[:-1]))
        except LookupError:
            return start, []
        if not prefix.startswith("_"):
            names = {n for n in names if not n.startswith("_")}
    else:
        names = set(namespace) | set(dir(builtins)) | set(keyword.kwlist)
    matches = sorted(n for n in names if isinstance(n, str) and n.startswith(prefix))
    return start, matches[:_MAX]
