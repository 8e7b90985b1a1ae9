"""The caller never at the far side's mercy (issue 11, item 4): results are unpickled by a
restricted unpickler; hostile and broken pickles are a ProtocolError, never code run, never
memory filled. Also the markers a context hands its caller: RemoteError, Secret."""
import collections
import dataclasses
import datetime
import decimal
import fractions
import os
import pickle
import uuid

import pytest

from limpet._results import ProtocolError, RemoteError, Secret, loads


@dataclasses.dataclass
class Record:
    name: str
    n: int


PLAIN = [
    0, -1, 2 ** 200, 1.5, float("inf"), 1 + 2j, "ünï", b"\0bytes", bytearray(b"ba"), None, True,
    (1, (2, 3)), [1, [2]], {"a": {1: 2}}, {1, 2}, frozenset({3}), slice(1, 2), ..., NotImplemented,
    datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc),
    datetime.date(2026, 1, 1), datetime.timedelta(seconds=3), decimal.Decimal("1.10"),
    fractions.Fraction(1, 3), uuid.UUID(int=7), collections.OrderedDict(a=1),
    collections.defaultdict(int, {"x": 1}), collections.deque([1, 2]),
    ValueError("bad", 3), KeyError("k"), OSError(2, "no such file"),
]


@pytest.mark.parametrize("value", PLAIN, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("protocol", [4, 5])  # the agent sends 4 (3.6 reads it)
def test_plain_data_comes_back_equal(value, protocol):
    got = loads(pickle.dumps(value, protocol))
    if isinstance(value, BaseException):
        assert type(got) is type(value) and got.args == value.args
    else:
        assert got == value and type(got) is type(value)


def test_a_class_comes_back_only_when_the_caller_allows_it():
    data = pickle.dumps(Record("a", 1), 4)
    with pytest.raises(ProtocolError, match="Record"):
        loads(data)
    assert loads(data, allow=[Record]) == Record("a", 1)


class Evil:
    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.mark.parametrize("call,args", [
    (os.system, ("touch /tmp/limpet-pwned",)),
    (eval, ("1+1",)),
    (exec, ("import os",)),
    (getattr, (dict, "fromkeys")),
    (__import__, ("os",)),
    (pickle.loads, (b"",)),
    (range, (10 ** 18,)),
])
def test_a_pickle_that_would_import_or_call_is_refused(call, args):
    with pytest.raises(ProtocolError, match="not allowed"):
        loads(pickle.dumps(Evil(call, *args), 4))
    assert not os.path.exists("/tmp/limpet-pwned")


@pytest.mark.parametrize("kind", [bytes, bytearray])
def test_a_size_cannot_fill_the_callers_memory(kind):
    with pytest.raises(ProtocolError, match="asked for"):
        loads(pickle.dumps(Evil(kind, 10 ** 12), 4))     # bytearray(10**12): a few bytes


def test_an_allowed_class_cannot_smuggle_a_disallowed_one():
    data = pickle.dumps([1, Record("x", Evil(os.system, "true"))], 4)
    with pytest.raises(ProtocolError, match="posix.system|os.system"):
        loads(data, allow=[Record])


@pytest.mark.parametrize("data", [
    b"", b"\x80", b"garbage", b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7f",
    pickle.dumps([1, 2], 4)[:-3], b"\x80\x04N" * 3,
])
def test_broken_pickles_are_a_protocol_error(data):
    with pytest.raises(ProtocolError):
        loads(data)


def test_references_only_where_the_caller_resolves_them():
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("ref", 7) if obj == "REF" else None
    import io
    buf = io.BytesIO()
    P(buf, 4).dump(["REF"])
    with pytest.raises(ProtocolError, match="reference"):
        loads(buf.getvalue())
    assert loads(buf.getvalue(), persistent=lambda pid: ("resolved", pid)) == \
        [("resolved", ("ref", 7))]


def test_remote_error_carries_where_it_failed():
    e = RemoteError("app.Oops", "it broke", "Traceback ...\napp.Oops: it broke\n")
    assert (e.remote_type, e.remote_message) == ("app.Oops", "it broke")
    assert "it broke" in str(e) and e.remote_traceback.endswith("it broke\n")


def test_a_secret_never_shows():
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert s.reveal() == "hunter2"
    with pytest.raises(TypeError):
        pickle.dumps(s)
    try:
        raise ValueError(s)
    except ValueError as e:
        assert "hunter2" not in str(e)
