"""Completion of names and attributes for sessions (the `complete` op), and the `check`
and `inspect` ops (is this input complete; the help text of a name), for the embedded
server and for limpet serve's agent (which has this file appended to it).

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


# --- check and inspect (capabilities check and inspect: docs/protocol.md section 6) ---------

_CHECK_NAME = "<limpet-check>"  # the filename check compiles as: its warnings are silenced
_DOTTED = re.compile(r"(?:[^\W\d]\w*\.)*[^\W\d]\w*$")
_SCALARS = (int, float, complex, str, bytes, bool)  # their repr runs no user code


def _quiet_compile(cc, source, symbol):
    """cc(source) with the compiler's warnings about this text dropped: a check shows
    nothing (the eval that follows warns, once). None for incomplete input."""
    import warnings
    stop = ("ignore", None, Warning, re.compile(re.escape(_CHECK_NAME) + r"\Z"), 0)
    warnings.filters.insert(0, stop)
    try:
        return cc(source, _CHECK_NAME, symbol)
    finally:
        for i, f in enumerate(warnings.filters):
            if f is stop:
                del warnings.filters[i]
                break


def check(source, flags=0):
    """check(source, flags) -> (status, indent): is source, as typed so far, complete?

    "incomplete" (and the indent the next line takes), "invalid" or "complete", by codeop's
    rules with the compiler flags given (a session's __future__ features); runs nothing.
    The whole text is one unit (a cell of several statements is complete), and, as at the
    REPL's prompt, a block whose last line is still indented waits for a blank line (a line
    of only spaces is blank: what a front end's auto-indent leaves)."""
    import codeop
    head, _, tail = source.rpartition("\n")
    if head and tail and not tail.strip():
        source = head + "\n\n"  # Enter on a line holding only its auto-indent ends the block
    cc = codeop.CommandCompiler()
    cc.compiler.flags |= flags
    try:
        code = _quiet_compile(cc, source, "exec")
        if code is not None:
            try:
                code = _quiet_compile(cc, source, "single")
            except (SyntaxError, OverflowError, ValueError):
                pass  # several statements: single mode refuses them, exec took them
    except (SyntaxError, OverflowError, ValueError):
        return "invalid", ""
    if code is not None:
        return "complete", ""
    lines = [line for line in source.split("\n") if line.strip()]
    last = lines[-1] if lines else ""
    indent = last[:len(last) - len(last.lstrip())]
    if last.rstrip().endswith(":"):
        indent += "    "
    return "incomplete", indent


def _name_at(text, cursor):
    """The dotted name at byte offset cursor of text (bytes): the one ending there (the
    rest of an identifier the cursor is inside included), else, inside a call's
    parentheses, the called name (as IPython's token_at_cursor). "" when there is none."""
    before = text[:cursor].decode("utf-8", "replace")
    rest = re.match(r"\w*", text[cursor:].decode("utf-8", "replace")).group(0)
    m = _DOTTED.search(before + rest)
    if m:
        return m.group(0)
    depth = 0
    for i in range(len(before) - 1, -1, -1):
        if before[i] == ")":
            depth += 1
        elif before[i] == "(":
            if depth == 0:
                m = _DOTTED.search(before[:i].rstrip())
                return m.group(0) if m else ""
            depth -= 1
    return ""


def _lookup(namespace, dotted):
    """(owner, obj) for 'a.b.c' as _resolve finds it (no user code runs); a function found
    on an instance's class comes bound to it, as the attribute would. LookupError."""
    owner, obj = None, _resolve(namespace, dotted.split(".")[0])
    for part in dotted.split(".")[1:]:
        owner = obj
        try:
            obj = inspect.getattr_static(owner, part)
        except AttributeError:
            raise LookupError(part) from None
    if owner is not None and not isinstance(owner, type) and inspect.isfunction(obj):
        import types
        obj = types.MethodType(obj, owner)
    return owner, obj


def _type_name(t):
    mod = getattr(t, "__module__", None)
    return t.__qualname__ if mod in (None, "builtins") else "%s.%s" % (mod, t.__qualname__)


def _summary(name, obj):
    """name: type, the signature, and the docstring."""
    parts = ["%s: %s" % (name, _type_name(type(obj)))]
    if isinstance(obj, _SCALARS):
        import reprlib
        parts.append("value: " + reprlib.repr(obj))
    if callable(obj):
        try:
            parts.append(name.split(".")[-1] + str(inspect.signature(obj)))
        except (TypeError, ValueError):  # no signature to be had: builtins of some types
            pass
    try:
        doc = inspect.getdoc(obj)
    except Exception:  # noqa: BLE001 - a strange __doc__: go without
        doc = None
    text = "\n".join(parts)
    return text + "\n\n" + doc if doc else text


def describe(namespace, text, cursor, detail, limit):
    """describe(namespace, text, cursor, detail, limit) -> (found, help text)

    The help text of the dotted name at byte offset cursor of text (UTF-8 bytes), found
    with no property or __getattr__ running: for detail 0 its type, signature and
    docstring, for detail 1 pydoc's text; at most limit bytes of UTF-8."""
    name = _name_at(text, cursor)
    if not name:
        return False, ""
    try:
        _, obj = _lookup(namespace, name)
    except LookupError:
        return False, ""
    if detail:
        import pydoc
        doc = pydoc.render_doc(obj, "%s", renderer=pydoc.plaintext)
    else:
        doc = _summary(name, obj)
    data = doc.encode("utf-8", "backslashreplace")
    if len(data) > limit:
        data = data[:limit]
    return True, data.decode("utf-8", "ignore")
