"""A user's install: pip, offline, with Debian's build tools, into a folder;
then the installed command and package work on their own."""
import os
import subprocess
import sys

from conftest import SOURCE_ROOT


def test_pip_install_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONPATH")}
    target = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation",
                        "--no-index", "--target", str(target), SOURCE_ROOT],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    version = subprocess.run([str(target / "bin" / "limpet"), "--version"], env=env,
                             capture_output=True, text=True, check=True).stdout
    assert version.startswith("limpet 0.")
    env["PYTHONPATH"] = str(target)
    code = ("import limpet, limpet.wire as w; "
            "assert limpet.__file__.startswith(%r); "
            "print(limpet.__version__, w.Decoder)" % str(target))
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert version.split()[1] == p.stdout.split()[0]


def test_ci_runs_the_readme_test_command_as_written():
    """CI (.ci/run) must run the README's test command, exactly as its quickstart gives it."""
    root = SOURCE_ROOT
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    block = readme.split("## Quickstart", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    test_line = [line for line in block.splitlines() if line.startswith("./scripts/test")]
    assert len(test_line) == 1
    with open(os.path.join(root, ".ci", "run")) as f:
        commands = [line for line in f.read().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert commands[-1] == test_line[0]                 # the last thing CI does, verbatim
    assert os.access(os.path.join(root, ".ci", "run"), os.X_OK)
