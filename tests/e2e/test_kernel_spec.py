"""limpet kernel install|list|remove and limpet jupyter (docs/jupyter.md sections 8, 10):
the real binary writes kernelspecs into a temporary Jupyter data directory, and Debian's
jupyter_client / jupyter_core (in a child /usr/bin/python3 with the same environment) are
the judges of where Jupyter looks and what it reads."""
import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import Host

PY = "/usr/bin/python3"


@pytest.fixture
def jenv(tmp_path, runtime_dir):
    """An environment where Jupyter sees only the temporary directories (and the system
    ones, which hold no limpet kernelspec)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("JUPYTER_PATH", "XDG_DATA_HOME", "PYTHONUSERBASE",
                        "JUPYTER_PREFER_ENV_PATH")}
    env.update(HOME=str(home), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               XDG_RUNTIME_DIR=str(runtime_dir))
    return env


def limpet(limpet_bin, env, *args, timeout=30):
    return subprocess.run([limpet_bin, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def jupyter_py(env, code):
    """Runs code in Debian's python3 with env; its stdout parsed as JSON."""
    p = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def spec_of(env, name):
    return jupyter_py(env, (
        "import json; from jupyter_client.kernelspec import KernelSpecManager as K\n"
        f"s = K().get_kernel_spec({name!r})\n"
        "print(json.dumps(dict(s.to_dict(), resource_dir=s.resource_dir)))"))


def test_install_writes_the_spec_jupyter_client_reads(limpet_bin, jenv):
    p = limpet(limpet_bin, jenv, "kernel", "install", "app")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    d = os.path.join(jenv["JUPYTER_DATA_DIR"], "kernels", "limpet-app")
    assert p.stdout == f"installed kernelspec limpet-app in {d}\n"
    with open(os.path.join(d, "kernel.json")) as f:
        spec = json.load(f)
    exe = spec["argv"][0]
    assert os.path.isabs(exe) and os.access(exe, os.X_OK)
    assert os.path.samefile(exe, limpet_bin)
    assert spec == {"argv": [exe, "kernel", "run", "app", "-f", "{connection_file}"],
                    "display_name": "limpet: app", "language": "python",
                    "interrupt_mode": "message",
                    "metadata": {"limpet": {"target": "app", "env": None}}}
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(d, "kernel.json")).st_mode) == 0o644
    assert os.listdir(d) == ["kernel.json"]   # no temporary file left
    got = spec_of(jenv, "limpet-app")
    assert got["argv"] == spec["argv"] and got["interrupt_mode"] == "message"
    assert got["metadata"] == spec["metadata"] and got["resource_dir"] == d


def test_name_display_env_and_iopub_welcome(limpet_bin, jenv):
    p = limpet(limpet_bin, jenv, "kernel", "install", "--env", "Data Sci",
               "--iopub-welcome", "My App:1")
    assert p.returncode == 0, p.stderr
    spec = spec_of(jenv, "limpet-my-app-1-data-sci")
    assert spec["argv"][1:] == ["kernel", "run", "My App:1", "--env", "Data Sci",
                                "--iopub-welcome", "-f", "{connection_file}"]
    assert spec["display_name"] == "limpet: My App:1/Data Sci"
    assert spec["metadata"]["limpet"] == {"target": "My App:1", "env": "Data Sci"}
    p = limpet(limpet_bin, jenv, "kernel", "install", "--name", "mine.v2_x", "--display-name",
               "Mine", "app")
    assert p.returncode == 0, p.stderr
    assert spec_of(jenv, "mine.v2_x")["display_name"] == "Mine"


@pytest.mark.parametrize("name", ["Upper", "a b", "x/y", ".", "..", "", "é"])
def test_name_must_obey_jupyters_rule(limpet_bin, jenv, name):
    p = limpet(limpet_bin, jenv, "kernel", "install", "--name", name, "app")
    assert p.returncode == 2
    assert "a kernel name has only a-z 0-9 . _ -" in p.stderr
    assert not os.path.exists(jenv["JUPYTER_DATA_DIR"])


def test_text_that_is_not_utf8(limpet_bin, jenv):
    for args, what in [(["--name", "x", b"\xff"], "the target"),
                       (["--env", b"a\xc3", "app"], "the env"),
                       (["--display-name", b"\xed\xa0\x80", "app"], "the display name")]:
        p = subprocess.run([limpet_bin, "kernel", "install", *args], env=jenv,
                           capture_output=True, text=True)
        assert p.returncode == 1
        assert p.stderr == f"limpet: {what} is not UTF-8 text\n"
    assert not os.path.exists(jenv["JUPYTER_DATA_DIR"])


def test_usage_errors(limpet_bin, jenv):
    for args, msg in [(["install"], "TARGET is required"),
                      (["install", "--env"], "--env needs a value"),
                      (["install", "--user", "--prefix", "/x", "a"], "exclude each other"),
                      (["install", "a", "b"], "too many arguments"),
                      (["remove"], "NAME is required"),
                      (["list", "x"], "unknown argument"),
                      ([], "a subcommand is required"),
                      (["bogus"], "unknown kernel subcommand 'bogus'")]:
        p = limpet(limpet_bin, jenv, "kernel", *args)
        assert p.returncode == 2, args
        assert msg in p.stderr and "usage: limpet kernel" in p.stderr, args


def test_help(limpet_bin, jenv):
    p = limpet(limpet_bin, jenv, "kernel", "--help")
    assert p.returncode == 0 and "install" in p.stdout and "remove" in p.stdout
    for sub in ("install", "list", "remove"):
        p = limpet(limpet_bin, jenv, "kernel", sub, "--help")
        assert p.returncode == 0 and p.stdout.startswith(f"usage: limpet kernel {sub}")
    p = limpet(limpet_bin, jenv, "jupyter", "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: limpet jupyter")
    p = limpet(limpet_bin, jenv, "--help")
    assert "  kernel " in p.stdout and "  jupyter " in p.stdout


@pytest.mark.parametrize("where", ["xdg", "home"])
def test_user_dir_is_jupyter_cores(limpet_bin, jenv, tmp_path, where):
    del jenv["JUPYTER_DATA_DIR"]
    if where == "xdg":
        jenv["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    expected = jupyter_py(jenv, "import json, jupyter_core.paths as p; "
                                "print(json.dumps(p.jupyter_data_dir()))")
    assert limpet(limpet_bin, jenv, "kernel", "install", "app").returncode == 0
    assert os.path.isfile(os.path.join(expected, "kernels", "limpet-app", "kernel.json"))
    assert spec_of(jenv, "limpet-app")["metadata"]["limpet"]["target"] == "app"


def test_prefix(limpet_bin, jenv, tmp_path):
    prefix = tmp_path / "venv"
    p = limpet(limpet_bin, jenv, "kernel", "install", "--prefix", str(prefix), "app")
    assert p.returncode == 0, p.stderr
    d = prefix / "share" / "jupyter" / "kernels" / "limpet-app"
    assert (d / "kernel.json").is_file()
    assert not os.path.exists(jenv["JUPYTER_DATA_DIR"])
    # A notebook server run from that prefix sees it through JUPYTER_PATH, as from sys.prefix.
    jenv["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")
    assert spec_of(jenv, "limpet-app")["resource_dir"] == str(d)
    assert limpet(limpet_bin, jenv, "kernel", "remove", "--user", "limpet-app").returncode == 1
    p = limpet(limpet_bin, jenv, "kernel", "remove", "--prefix", str(prefix), "limpet-app")
    assert p.returncode == 0, p.stderr
    assert not d.exists()


def test_pid_target_warns(limpet_bin, jenv):
    p = limpet(limpet_bin, jenv, "kernel", "install", "4242")
    assert p.returncode == 0
    assert "a pid target will not survive the host's restart; use its name" in p.stderr


def list_rows(limpet_bin, env):
    p = limpet(limpet_bin, env, "kernel", "list")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TARGET", "UP", "DIRECTORY"]
    return {r.split()[0]: r.split() for r in lines[1:]}


def test_list_shows_up_and_down(limpet_bin, jenv, runtime_dir):
    p = limpet(limpet_bin, jenv, "kernel", "list")
    assert p.returncode == 0 and p.stdout == "" and "no limpet kernelspec" in p.stderr
    kernels = os.path.join(jenv["JUPYTER_DATA_DIR"], "kernels")
    os.makedirs(os.path.join(kernels, "python3"))
    with open(os.path.join(kernels, "python3", "kernel.json"), "w") as f:
        json.dump({"argv": ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": "Python 3", "language": "python"}, f)
    assert limpet(limpet_bin, jenv, "kernel", "install", "testapp").returncode == 0
    assert limpet(limpet_bin, jenv, "kernel", "install", "--env", "e", "other").returncode == 0
    rows = list_rows(limpet_bin, jenv)
    assert set(rows) == {"limpet-testapp", "limpet-other-e"}   # never python3
    assert rows["limpet-testapp"][1:] == ["testapp", "down",
                                          os.path.join(kernels, "limpet-testapp")]
    assert rows["limpet-other-e"][1:3] == ["other/e", "down"]
    assert limpet(limpet_bin, jenv, "kernel", "install", "--name", "far",
                  "ssh://build7/app").returncode == 0
    host = Host(runtime_dir)
    try:
        assert limpet(limpet_bin, jenv, "kernel", "install", "--name", "bypath",
                      host.address).returncode == 0
        rows = list_rows(limpet_bin, jenv)
        assert rows["limpet-testapp"][2] == "up"
        assert rows["bypath"][1:3] == [host.address, "up"]   # a socket path: dialled
        assert rows["limpet-other-e"][2] == "down"
        assert rows["far"][1:3] == ["ssh://build7/app", "?"]   # not dialled by a listing
        second = Host(runtime_dir)
        try:
            assert list_rows(limpet_bin, jenv)["limpet-testapp"][2] == "many"
        finally:
            second.stop()
    finally:
        host.stop()
    rows = list_rows(limpet_bin, jenv)
    assert rows["limpet-testapp"][2] == "down" and rows["bypath"][2] == "down"


def test_list_follows_jupyters_search_order(limpet_bin, jenv, tmp_path):
    """The same name in JUPYTER_PATH and in the user directory: the one Jupyter picks."""
    first = tmp_path / "first"
    assert limpet(limpet_bin, jenv, "kernel", "install", "--name", "k", "user").returncode == 0
    assert limpet(limpet_bin, jenv, "kernel", "install", "--name", "k", "--prefix",
                  str(first), "early").returncode == 0
    jenv["JUPYTER_PATH"] = str(first / "share" / "jupyter") + "/"
    picked = jupyter_py(jenv, "import json; from jupyter_client.kernelspec import "
                              "find_kernel_specs; print(json.dumps(find_kernel_specs()['k']))")
    rows = list_rows(limpet_bin, jenv)
    assert rows["k"][1] == "early" and rows["k"][3] == picked


def test_remove(limpet_bin, jenv):
    assert limpet(limpet_bin, jenv, "kernel", "install", "app").returncode == 0
    d = os.path.join(jenv["JUPYTER_DATA_DIR"], "kernels", "limpet-app")
    with open(os.path.join(d, "logo-32x32.png"), "wb") as f:   # a spec's other files go too
        f.write(b"\x89PNG")
    p = limpet(limpet_bin, jenv, "kernel", "remove", "limpet-app")
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"removed kernelspec limpet-app from {d}\n"
    assert not os.path.exists(d)
    p = limpet(limpet_bin, jenv, "kernel", "remove", "limpet-app")
    assert p.returncode == 1
    assert p.stderr == "limpet: no kernelspec 'limpet-app' (see 'limpet kernel list')\n"
    p = limpet(limpet_bin, jenv, "kernel", "remove", "../x")
    assert p.returncode == 2 and "'../x' is not a kernel name" in p.stderr


def test_another_kernels_spec_is_never_touched(limpet_bin, jenv):
    d = os.path.join(jenv["JUPYTER_DATA_DIR"], "kernels", "python3")
    os.makedirs(d)
    spec = {"argv": ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python"}
    with open(os.path.join(d, "kernel.json"), "w") as f:
        json.dump(spec, f)
    p = limpet(limpet_bin, jenv, "kernel", "remove", "python3")
    assert p.returncode == 1
    assert p.stderr == f"limpet: {d} is not a limpet kernelspec: not removed\n"
    p = limpet(limpet_bin, jenv, "kernel", "install", "--name", "python3", "app")
    assert p.returncode == 1 and "another kernel's spec: not replaced" in p.stderr
    with open(os.path.join(d, "kernel.json")) as f:
        assert json.load(f) == spec
    with open(os.path.join(d, "kernel.json"), "w") as f:
        f.write("{not json")
    p = limpet(limpet_bin, jenv, "kernel", "remove", "python3")
    assert p.returncode == 1 and "not a kernelspec" in p.stderr
    p = limpet(limpet_bin, jenv, "kernel", "install", "--name", "python3", "app")
    assert p.returncode == 1 and "not replaced" in p.stderr
    with open(os.path.join(d, "kernel.json")) as f:
        assert f.read() == "{not json"


def tmp_specs(runtime_dir):
    d = os.path.join(runtime_dir, "limpet", "jupyter", "kernels")
    return os.listdir(d) if os.path.isdir(d) else []


def test_jupyter_fails_fast_on_a_target_that_is_not_there(limpet_bin, jenv, runtime_dir):
    p = limpet(limpet_bin, jenv, "jupyter", "nope")
    assert p.returncode == 1
    assert p.stderr == "limpet: no server named 'nope' (see 'limpet list')\n"
    assert tmp_specs(runtime_dir) == []
    p = limpet(limpet_bin, jenv, "jupyter")
    assert p.returncode == 2 and "TARGET is required" in p.stderr


def test_jupyter_not_installed(limpet_bin, jenv, tmp_path, host):
    empty = tmp_path / "bin"
    empty.mkdir()
    jenv["PATH"] = str(empty)
    p = limpet(limpet_bin, jenv, "jupyter", "testapp")
    assert p.returncode == 1
    assert p.stderr == ("limpet: jupyter console is not installed "
                        "(Debian: apt-get install jupyter-console)\n")


FRONT_END = """#!%s
# Stands in for jupyter's console front end (the kernel itself lands with issue 13): asks the
# real jupyter_client for the kernel it was told to start, reports, exits 3.
import json, os, sys
from jupyter_client.kernelspec import KernelSpecManager
name = sys.argv[sys.argv.index("--kernel") + 1]
spec = KernelSpecManager().get_kernel_spec(name)
print(json.dumps({"argv": sys.argv[1:], "spec_argv": spec.argv, "dir": spec.resource_dir,
                  "JUPYTER_PATH": os.environ["JUPYTER_PATH"]}))
sys.exit(3)
"""


def test_jupyter_runs_the_console_on_a_temporary_spec(limpet_bin, jenv, tmp_path, runtime_dir,
                                                      host):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for exe, text in [("jupyter", FRONT_END % PY), ("jupyter-console", "#!/bin/sh\nexit 9\n")]:
        (bindir / exe).write_text(text)
        (bindir / exe).chmod(0o755)
    jenv["PATH"] = str(bindir) + ":/usr/bin:/bin"
    jenv["JUPYTER_PATH"] = "/elsewhere"
    # A spec left by a run that was killed (no such pid) goes; a live one's stays.
    stale = os.path.join(runtime_dir, "limpet", "jupyter", "kernels", "limpet-tmp-999999999")
    live = os.path.join(runtime_dir, "limpet", "jupyter", "kernels", "limpet-tmp-1")
    for d in (stale, live):
        os.makedirs(d)
        with open(os.path.join(d, "kernel.json"), "w") as f:
            json.dump({"argv": ["x"], "metadata": {"limpet": {"target": "x"}}}, f)
    p = limpet(limpet_bin, jenv, "jupyter", "--env", "main", "testapp", "--", "--simple-prompt")
    assert p.returncode == 3, p.stderr
    got = json.loads(p.stdout)
    name = got["argv"][2]
    assert got["argv"][:2] == ["console", "--kernel"] and got["argv"][3:] == ["--simple-prompt"]
    assert name.startswith("limpet-tmp-")
    data = os.path.join(runtime_dir, "limpet", "jupyter")
    assert got["JUPYTER_PATH"] == data + ":/elsewhere"
    assert got["dir"] == os.path.join(data, "kernels", name)
    assert got["spec_argv"][1:] == ["kernel", "run", "testapp", "--env", "main", "-f",
                                    "{connection_file}"]
    assert sorted(tmp_specs(runtime_dir)) == ["limpet-tmp-1"]
