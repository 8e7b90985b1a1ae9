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
