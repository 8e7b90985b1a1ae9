"""bench/run --quick runs to the end and prints its table (issue 6), with the execution
contexts' rows against execnet and mitogen (issue 11, section 7). It checks only that the
harness works: figures are never pass/fail."""
import os
import subprocess

import pytest


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="the peers' interpreters would all run under the ASan preload")
def test_bench_quick_runs_and_prints_every_section():
    root = os.environ["LIMPET_SOURCE_ROOT"]
    env = dict(os.environ)
    if os.environ.get("LIMPET_BIN"):   # the build under test: BUILD/src/cli/limpet
        env["LIMPET_BUILD"] = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(os.environ["LIMPET_BIN"]))))
    p = subprocess.run([os.path.join(root, "bench", "run"), "--quick", "--no-prepare"], cwd=root,
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    for needle in ("1. round trip", "raw C ping-pong, TCP loopback", "rpyc", "execnet", "mitogen",
                   "Jupyter", "Flask", "1b. TCP loopback against the Unix socket",
                   "1+1, plain text, TCP loopback", "two flushes, C client, TCP loopback",
                   "two flushes, Python client, TCP loopback", "terminal:", "2. throughput",
                   "limpet, framed (bench/load, C), k=64", "3. bulk", "5. memory",
                   "6. host impact", "7. execution contexts: cold start",
                   "raw: python3 -S -c pass", "limpet.connect", "execnet.makegateway",
                   "mitogen router.local", "C ping-pong over pipes", "a 10 MB bytes result",
                   "local contexts started", "limpet.connect_many", "bootstrap bytes",
                   "limpet: stage 1 + the agent"):
        assert needle in p.stdout, needle
