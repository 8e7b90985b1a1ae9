"""The oracle: CPython's own code.InteractiveConsole, fed the corpus line by
line in a fresh /usr/bin/python3 (pytest's warning capture would hide the
warnings a REPL prints). Reads {name: [line, ...]} as JSON on stdin, writes
{name: [observation, ...]} as JSON on stdout; an observation is what one
line made the console print and whether it then asked for more.

Run by test_repl_conformance.py; `python3 oracle.py < cases.json` by hand."""
import builtins
import code
import io
import json
import sys

import host


class Console(code.InteractiveConsole):
    """The standard console; it only notes that it showed an error."""

    def showsyntaxerror(self, filename=None):
        self.event = "exception"
        super().showsyntaxerror(filename)

    def showtraceback(self):
        self.event = "exception"
        super().showtraceback()


def run(lines):
    """Feeds lines to a fresh console in a fresh namespace."""
    sys.stderr = io.StringIO()   # what the last transcript's `_` says as it goes
    try:
        host.reset()
        if hasattr(builtins, "_"):
            del builtins._
    finally:
        sys.stderr = sys.__stderr__
    console = Console(locals=host.ns, filename=host.FILENAME)
    got = []
    for line in lines:
        out, err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = out, err
        console.event = "ok"
        try:
            more = console.push(line)
        except SystemExit as e:
            console.event, more = "exit", False
            got.append(observation(out, err, more, console.event, host.exit_message(e.code)))
            break
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        got.append(observation(out, err, more, console.event))
    return got


def observation(out, err, more, event, exit_message=None):
    o = {"out": out.getvalue(), "err": err.getvalue(), "more": bool(more), "event": event}
    if exit_message is not None:
        o["exit_message"] = exit_message
    return o


def main():
    cases = json.loads(sys.stdin.read())   # all of it first: exit() closes sys.stdin
    json.dump({name: run(lines) for name, lines in cases.items()}, sys.__stdout__)


if __name__ == "__main__":
    main()
