#!/usr/bin/python3
"""bench/modules.py [BUILD]: module forwarding as a user meets it. A far python3 started with
-S (no site-packages: it lacks the caller's third-party packages) imports a pure-Python
package through module-get; the same import on a far python3 that has the package installed,
interleaved in one run. Per package: the median time of the first import (a fresh context
each time), module-get round trips, modules and bytes sent, and the caller's time to build
one answer (cold and warm import-scan cache). Medians of 7; a measurement, never a test.
BUILD defaults to build/."""
import importlib
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
sys.path[:0] = [os.path.join(BUILD, "python")]

import limpet  # noqa: E402 - the build's
from limpet import _modules  # noqa: E402

PACKAGES = ["pexpect", "yaml", "jinja2", "pygments.lexers.python"]


def first_import(python, name):
    with limpet.connect("local", python=python) as ctx:
        t = time.perf_counter()
        ctx.call(importlib.import_module, name)
        took = time.perf_counter() - t
        m = ctx._modules
        return took, m.gets, len(m.sent)


def answer_time(name):
    t = time.perf_counter()
    fields, payload = _modules.answer(_modules.State(), name)
    return time.perf_counter() - t, len(payload)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        bare = os.path.join(tmp, "python3-S")
        with open(bare, "w") as f:
            f.write('#!/bin/sh\nexec %s -S "$@"\n' % sys.executable)
        os.chmod(bare, 0o755)
        for name in PACKAGES:
            top = name.partition(".")[0]
            cold, size = answer_time(top)
            warm = statistics.median(answer_time(top)[0] for _ in range(7))
            fwd, local = [], []
            for _ in range(7):            # interleaved: drift hits both rows alike
                fwd.append(first_import(bare, name))
                local.append(first_import(sys.executable, name)[0])
            took = statistics.median(r[0] for r in fwd)
            print(f"  {name:24s} forwarded {took * 1000:7.1f} ms "
                  f"({fwd[0][1]} module-get, {fwd[0][2]} modules)  installed there "
                  f"{statistics.median(local) * 1000:6.1f} ms  | answer for {top!r}: "
                  f"{size / 1024:6.0f} KiB, {cold * 1000:5.1f} ms cold, "
                  f"{warm * 1000:5.1f} ms warm")


if __name__ == "__main__":
    main()
