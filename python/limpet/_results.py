"""What a far side sends back, made safe to take in (docs/contexts.md, "Values, references
and pickles"): a restricted unpickler, and the exceptions and markers a context hands to
its caller. A far side is never trusted with the caller's process: a pickle that would import
or call anything but plain data and the classes the caller allowed is refused whole."""
import collections
import datetime
import decimal
import fractions
import io
import pickle
import uuid


class ProtocolError(Exception):
    """The far side broke the protocol (a refused pickle, garbage, a lie about lengths); the
    context is disconnected."""


class RemoteError(Exception):
    """An exception raised on the far side whose class could not come back as itself.
    .remote_type, .remote_message, .remote_traceback say what, and where."""

    def __init__(self, remote_type, remote_message, remote_traceback=""):
        super().__init__("%s: %s" % (remote_type, remote_message))
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback


class Secret:
    """A password or token, which never shows: not in a repr, a str, a log or an exception.
    .reveal() gives the value to the one place that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value

    def reveal(self):
        return self._value

    def __repr__(self):
        return "Secret(***)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a limpet.Secret is not pickled")


_EXCEPTIONS = (
    "BaseException", "Exception", "ArithmeticError", "AssertionError", "AttributeError",
    "BufferError", "EOFError", "FileExistsError", "FileNotFoundError", "FloatingPointError",
    "ImportError", "IndexError", "InterruptedError", "IsADirectoryError", "KeyError",
    "KeyboardInterrupt", "LookupError", "MemoryError", "ModuleNotFoundError",
    "NotADirectoryError", "NotImplementedError", "OSError", "OverflowError", "PermissionError",
    "ProcessLookupError", "RecursionError", "ReferenceError", "RuntimeError", "StopIteration",
    "SyntaxError", "SystemError", "TimeoutError", "TypeError", "UnboundLocalError",
    "UnicodeDecodeError", "UnicodeEncodeError", "UnicodeError", "ValueError",
    "ZeroDivisionError", "ConnectionError", "BrokenPipeError", "ConnectionAbortedError",
    "ConnectionRefusedError", "ConnectionResetError", "ChildProcessError", "BlockingIOError",
    "GeneratorExit", "SystemExit", "Warning", "UserWarning", "DeprecationWarning",
    "RuntimeWarning",
)
_BYTES_MAX = 16 << 20  # no more than a frame could have carried


def _sized(kind):
    """kind (bytes or bytearray) that refuses to be made from a size: bytearray(10**12)
    would fill the caller's memory from a few bytes of pickle."""
    def make(*args):
        if args and isinstance(args[0], int) and args[0] > _BYTES_MAX:
            raise ProtocolError("the far side asked for a %s of %d bytes" % (kind.__name__,
                                                                             args[0]))
        return kind(*args)
    return make


# What a pickle may name: plain data types and values (never range, whose lazy length would
# let list() or tuple() fill memory), the built-in exceptions, and a few standard types.
_OBJECTS = {("builtins", n): getattr(__import__("builtins"), n) for n in _EXCEPTIONS + (
    "int", "float", "complex", "str", "tuple", "list", "dict", "set", "frozenset", "bool",
    "slice", "Ellipsis", "NotImplemented")}
_OBJECTS.update({
    ("builtins", "bytes"): _sized(bytes), ("builtins", "bytearray"): _sized(bytearray),
    ("datetime", "date"): datetime.date, ("datetime", "time"): datetime.time,
    ("datetime", "datetime"): datetime.datetime, ("datetime", "timedelta"): datetime.timedelta,
    ("datetime", "timezone"): datetime.timezone, ("decimal", "Decimal"): decimal.Decimal,
    ("fractions", "Fraction"): fractions.Fraction, ("uuid", "UUID"): uuid.UUID,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("collections", "deque"): collections.deque,
})


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, allow, persistent):
        super().__init__(io.BytesIO(data))
        self._allow = allow
        self._persistent = persistent

    def find_class(self, module, name):
        found = self._allow.get((module, name)) or _OBJECTS.get((module, name))
        if found is not None:
            return found
        raise ProtocolError("the far side sent a pickle of %s.%s, which is not allowed "
                            "(plain data only, plus allow=[...])" % (module, name))

    def persistent_load(self, pid):
        if self._persistent is None:
            raise ProtocolError("the far side sent a reference where none may be")
        return self._persistent(pid)


def loads(data, allow=(), persistent=None):
    """loads(data, allow=(), persistent=None) -> object

    Unpickles what a far side sent: plain data types, the built-in exceptions, and the
    classes in allow; anything else raises ProtocolError, as does any malformed pickle.
    persistent(pid) resolves the far side's references (limpet.Ref).
    """
    table = {(c.__module__, c.__qualname__): c for c in allow}
    try:
        return _Unpickler(data, table, persistent).load()
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("the far side sent a pickle nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - any malformed pickle is the far side's fault
        raise ProtocolError("the far side sent a malformed pickle: %s" % e) from None


for _cls in (ProtocolError, RemoteError, Secret):
    _cls.__module__ = "limpet"  # how users name them: limpet.RemoteError
