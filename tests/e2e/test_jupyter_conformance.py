"""Debian's jupyter_kernel_test (0.4.5) against `limpet kernel` attached to
a live host (tests/e2e/hosts/app.py): every test it has that applies.

Not applicable, left empty so the suite skips them: code_display_data and
code_clear_output (no rich display in version 1, docs/jupyter.md section 12)."""
import os
import shutil
import sys
import tempfile

import jupyter_kernel_test as jkt

from conftest import Host
from jupyter_env import Environ, jupyter_environ, write_spec


class LimpetKernelTests(jkt.KernelTests):
    kernel_name = "limpet-test"
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    # 'data' is the host's own global: the live namespace, not a fresh one
    completion_samples = [{"text": "zi", "matches": {"zip"}},
                          {"text": "dat", "matches": {"data"}}]
    # jupyter console sends a block with the auto-indent of the line Enter was pressed on
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n",
                             "for i in range(2):\n    print(i)\n    "]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*2", "for i in range(3):",
                               "for i in range(3):\n    ", "for i in range(3):\n    x = i"]
    invalid_code_samples = ["import = 7q", "1)"]
    code_page_something = "help(len)"
    code_generate_error = "raise ValueError('boom')"
    code_execute_result = [{"code": "1+2+3", "result": "6"},
                           {"code": "[n for n in range(1, 4)]", "result": "[1, 2, 3]"},
                           {"code": "data['n'] > 0", "result": "True"}]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "zip"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="limpet-jkt-")
        runtime = os.path.join(cls.tmp, "run")
        os.mkdir(runtime, 0o700)
        cls.host = Host(runtime)
        env = jupyter_environ(os.path.join(cls.tmp, "jupyter"), runtime)
        limpet = os.path.abspath(os.environ["LIMPET_BIN"])
        write_spec(env["JUPYTER_PATH"], limpet, cls.host.address, cls.kernel_name)
        cls.environ = Environ(env).__enter__()
        try:
            super().setUpClass()
        except BaseException:
            cls.environ.__exit__(*sys.exc_info())
            cls.host.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
            # a shut down kernel leaves the host running
            assert cls.host.alive(), "the host died with the kernel"
        finally:
            cls.environ.__exit__(None, None, None)
            cls.host.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)
