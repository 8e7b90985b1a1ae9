"""Module forwarding, the caller's side (docs/contexts.md, "Module forwarding"; docs/protocol.md
section 8): a far side's module-get is answered with the module's source and the sources of
the modules it imports that the far side was not sent yet, so that a package arrives in one
or two round trips. Modules are found here without being imported (run): the import system's
finders are asked directly, a package's submodules in the package's own directories.
Pure-Python modules only; the standard library is never sent (the far side has its own).
"""
import ast
import os
import sys
import sysconfig

from . import wire

MODULES_MAX = 200        # modules in one answer
BYTES_MAX = 8 << 20      # source bytes in one answer (the frame limit is 16 MiB)
HEADER_BUDGET = 48 << 10  # bytes of names and paths in one answer (the header limit: 64 KiB)
NAMES_MAX = 10000        # names a context is told the caller lacks, remembered
NAME_MAX = 256           # bytes of a dotted name asked for
THIRD_PARTY = ("site-packages", "dist-packages")

_STDLIB_NAMES = frozenset(getattr(sys, "stdlib_module_names", ())) | frozenset(
    sys.builtin_module_names)
_STDLIB_DIRS = tuple({os.path.join(os.path.realpath(sysconfig.get_path(k)), "")
                      for k in ("stdlib", "platstdlib")})
_IMPORTS = {}  # (name, path) -> ((mtime_ns, size), ((name, certain), ...)): what it imports


class State:
    """What one context asked for and was given: kept by its Context, read by tests."""

    def __init__(self):
        self.gets = 0          # module-get requests answered
        self.sent = {}         # names of the modules sent, in order (a dict as an ordered set)
        self.missing = set()   # names the far side was told the caller lacks

    def __repr__(self):
        return "<modules gets=%d sent=%d missing=%d>" % (self.gets, len(self.sent),
                                                         len(self.missing))


def serve(state, h):
    """serve(state, h) -> (header, payload): the answer to the module-get request h, or None
    when h has no usable id (there is no one to answer). Never raises; finds modules without
    running them, so any thread may call it."""
    rid = h.get("id")
    if type(rid) is not int:
        return None
    state.gets += 1
    name, payload = h.get("name"), b""
    try:
        if not _valid(name):
            fields = {"op": "error", "code": "bad-field", "field": "name",
                      "message": "limpet: module-get needs a dotted module name"}
        else:
            fields, payload = answer(state, name)
    except Exception as e:  # noqa: BLE001 - a bug here costs the far side an import, not the link
        fields = {"op": "error", "code": "internal", "message": "limpet: %s: %s" % (
            type(e).__name__, e)}
    fields["re"] = rid
    return fields, payload


def _valid(name):
    return (isinstance(name, str) and 0 < len(name) <= NAME_MAX
            and all(part.isidentifier() for part in name.split(".")))


def answer(state, name):
    """answer(state, name) -> (header fields, payload): the done or error for name, with the
    modules name imports that state was not sent yet (breadth first, within MODULES_MAX,
    BYTES_MAX and HEADER_BUDGET), the names it imports that the caller lacks, and the
    compiled modules of its package it may import, refused; state records what it says."""
    found = None if name in state.missing else _find(name)
    if isinstance(found, str):
        return {"op": "error", "code": "not-supported", "message": found}, b""
    if not found:
        _lack(state, name)
        return {"op": "done", "status": "ok", "modules": [], "missing": [name],
                "refused": {}}, b""
    top = name.partition(".")[0]
    modules, sources, missing, refused = [], [], [], {}
    queue, seen, size, budget = [(name, found)], {name}, 0, HEADER_BUDGET
    while queue and len(modules) < MODULES_MAX:
        mod, (source, package, path) = queue.pop(0)
        entry = {"name": mod, "package": package, "path": path, "len": len(source)}
        cost = len(wire.encode(entry)) + 2
        if modules and (size + len(source) > BYTES_MAX or cost > budget):
            continue  # the far side asks for it when it needs it
        modules.append(entry)
        sources.append(source)
        state.sent[mod] = None
        size, budget = size + len(source), budget - cost
        for dep, certain in _imports(mod, package, path, source):
            if len(modules) + len(queue) >= MODULES_MAX:
                break                 # no reading of files that cannot go in this answer
            if dep in seen or dep in state.sent or dep in state.missing:
                continue
            seen.add(dep)
            got = _find(dep)
            if got is None and certain and len(dep) + 4 < budget:
                missing.append(dep)
                budget -= len(dep) + 4
                _lack(state, dep)
            elif isinstance(got, str) and dep.partition(".")[0] == top and len(
                    got) + len(dep) + 8 < budget:   # its C speed-ups: no asking for them
                refused[dep] = got
                budget -= len(got) + len(dep) + 8
                _lack(state, dep)
            elif isinstance(got, tuple) and (dep.partition(".")[0] == top
                                             or not _third_party(got[2])):
                queue.append((dep, got))
    return ({"op": "done", "status": "ok", "modules": modules, "missing": missing,
             "refused": refused}, b"".join(sources))


def _lack(state, name):
    if len(state.missing) < NAMES_MAX:
        state.missing.add(name)


def _find(name):
    """_find(name) -> (source bytes, is a package, path) for a pure-Python module the caller
    can give; None when it has no such module; False when it is the standard library's or
    __main__ (the far side has its own); a message (str) when it is compiled or otherwise
    not sendable."""
    if name.partition(".")[0] == "__main__":
        return False
    spec = _spec(name)
    if spec is None:
        return None
    if _stdlib(name, spec):
        return False
    origin, loader = spec.origin, spec.loader
    if loader is None or origin in (None, "namespace"):     # a namespace package: empty
        locations = list(spec.submodule_search_locations or ())
        return b"", True, locations[0] if locations else ""
    if not origin.endswith(".py") or not hasattr(loader, "get_data"):
        return ("limpet: %r is a compiled module (%s): only pure-Python modules are sent to "
                "a context; install it there" % (name, origin))
    try:
        source = loader.get_data(origin)
    except OSError:
        return None
    if len(source) > BYTES_MAX:
        return "limpet: %r is too large to send (%d bytes)" % (name, len(source))
    return source, spec.submodule_search_locations is not None, origin


def _spec(name):
    """The caller's spec for name without importing it: from sys.modules, or from the
    meta path finders (a submodule: searched in its package's directories, the package's
    spec found the same way, so no package's code runs here)."""
    mod = sys.modules.get(name)
    if mod is not None:
        return getattr(mod, "__spec__", None)
    parent, _, _ = name.rpartition(".")
    path = None
    if parent:
        pmod = sys.modules.get(parent)
        if pmod is not None:
            path = getattr(pmod, "__path__", None)  # a package may have changed it
        else:
            pspec = _spec(parent)
            path = pspec and pspec.submodule_search_locations
        if not path:
            return None
        path = list(path)
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is not None:
            try:
                spec = find(name, path)
            except Exception:  # noqa: BLE001 - a finder's failure: as if it had nothing
                spec = None
            if spec is not None:
                return spec
    return None


def _stdlib(name, spec):
    if name.partition(".")[0] in _STDLIB_NAMES or spec.origin in ("built-in", "frozen"):
        return True
    path = spec.origin and os.path.realpath(spec.origin)
    return bool(path) and path.startswith(_STDLIB_DIRS) and not _third_party(path)


def _third_party(path):
    parts = path.split(os.sep)
    return any(p in parts for p in THIRD_PARTY)


def _imports(name, package, path, source):
    """The absolute names module name imports, each with whether it must be a module
    (import a.b) or may be an attribute (from a import b): cached per file and mtime."""
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    cached = _IMPORTS.get((name, path))   # the name: relative imports resolve against it
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()                     # the far side will raise it when it runs the module
    base = name if package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, True) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = _absolute(base, node.module, node.level)
            if mod:
                found.append((mod, True))
                found += [(mod + "." + a.name, False) for a in node.names if a.name != "*"]
    names = []
    for dotted, certain in found:   # import a.b.c imports a and a.b too
        parts = dotted.split(".")
        names += [(".".join(parts[:i]), certain) for i in range(1, len(parts))]
        names.append((dotted, certain))
    result = tuple(dict.fromkeys(names))
    if stamp is not None and path:
        _IMPORTS[name, path] = (stamp, result)
    return result


def _absolute(base, module, level):
    if not level:
        return module
    parts = base.split(".") if base else []
    if level - 1 > len(parts) or (level - 1 == len(parts) and not module):
        return None                   # beyond the top-level package: fails there too
    parts = parts[:len(parts) - (level - 1)]
    return ".".join(parts + ([module] if module else []))
