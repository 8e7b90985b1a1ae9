"""bench/run --quick runs to the end and prints its table (issue 6). It
checks only that the harness works: figures are never pass/fail."""
import os
import subprocess

import pytest


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="the peers' interpreters would all run under the ASan preload")
def test_bench_quick_runs_and_prints_every_section():
    root = os.environ["LIMPET_SOURCE_ROOT"]
    p = subprocess.run([os.path.join(root, "bench", "run"), "--quick", "--no-prepare"], cwd=root,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    for needle in ("1. round trip", "raw C ping-pong, TCP loopback", "rpyc", "execnet", "mitogen",
                   "Jupyter", "Flask", "terminal:", "2. throughput", "3. bulk", "5. memory",
                   "6. host impact"):
        assert needle in p.stdout, needle
