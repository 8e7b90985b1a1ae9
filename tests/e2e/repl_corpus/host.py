"""The namespace both sides of the conformance test run in, and, run as a
script, the host process that embeds the server under test.

Both the oracle and the host start every transcript from the same state: a
namespace like the one python3's REPL runs in (__main__), the warning filters
the process started with, and no `_`."""
import builtins
import sys
import warnings

FILENAME = "<limpet>"     # what limpet's interactive evals are compiled as
ns = {}
_filters = warnings.filters[:]


def reset(into=ns):
    """into (ns, or a `limpet serve` environment's globals()) made a namespace like
    python3's __main__ at its first prompt."""
    into.clear()
    into.update(__name__="__main__", __doc__=None, __package__=None, __spec__=None,
                __annotations__={}, __builtins__=builtins)
    warnings.filters[:] = _filters
    warnings._filters_mutated()
    sys.excepthook = sys.__excepthook__


def exit_message(code):
    """What python3 prints on stderr when SystemExit(code) ends it."""
    if code is None or isinstance(code, int):
        return ""
    return f"{code}\n"


reset()

if __name__ == "__main__":
    import time

    import limpet

    sys.modules["_repl_corpus_host"] = sys.modules["__main__"]   # reached by reset evals
    server = limpet.start(ns, name="replcorpus")
    print("ADDRESS", server.address, flush=True)
    while True:
        time.sleep(1)
