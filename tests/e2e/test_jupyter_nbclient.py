"""nbclient runs a small notebook against `limpet kernel` attached to a live
host; the host's namespace shows the notebook's effects afterwards."""
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import run_limpet
from jupyter_env import jupyter_environ, write_spec


@pytest.fixture
def kernel_name(tmp_path, runtime_dir, monkeypatch, limpet_bin, host):
    env = jupyter_environ(tmp_path / "jupyter", runtime_dir)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return write_spec(env["JUPYTER_PATH"], limpet_bin, host.address, "limpet-nb")


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    return nb


def test_a_notebook_runs_in_the_live_host(kernel_name, host, limpet_bin, runtime_dir):
    nb = notebook("seen = data['n']\nseen > 0",
                  "print('from the notebook')",
                  "notebook_result = [seen, 'written by nbclient']",
                  "import os\nos.getpid()")
    NotebookClient(nb, kernel_name=kernel_name, timeout=30).execute()
    assert nb.cells[0].outputs[0]["data"]["text/plain"] == "True"
    assert nb.cells[1].outputs[0]["text"] == "from the notebook\n"
    assert nb.cells[3].outputs[0]["data"]["text/plain"] == str(host.proc.pid)
    assert [c.execution_count for c in nb.cells] == [1, 2, 3, 4]
    # the host keeps what the notebook left in it
    out = run_limpet(limpet_bin, runtime_dir, "exec", host.address, "-c",
                     "print(notebook_result[1])")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "written by nbclient\n"
    assert host.alive()


def test_a_failing_cell_stops_the_notebook_with_the_hosts_traceback(kernel_name, host):
    nb = notebook("def broken():\n    return {}['missing']", "broken()", "never = 1")
    with pytest.raises(CellExecutionError) as e:
        NotebookClient(nb, kernel_name=kernel_name, timeout=30).execute()
    assert "KeyError" in str(e.value) and "broken" in str(e.value)
    assert nb.cells[2].outputs == [] and nb.cells[2].execution_count is None
    assert host.alive()
