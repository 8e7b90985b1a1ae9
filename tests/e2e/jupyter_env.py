"""What the Jupyter tests share: a Jupyter data path of their own with a
kernelspec that attaches `limpet kernel` to a live host, and the
environment jupyter_client reads it from. No stubs: the kernel is the real
binary, the host a real process, the clients Debian's Jupyter libraries."""
import json
import os
import pathlib


def write_spec(root, limpet_bin, target, name="limpet-test", env=None, extra=()):
    """A kernelspec under root/kernels/name, as `limpet kernel install` writes one."""
    d = pathlib.Path(root) / "kernels" / name
    d.mkdir(parents=True, exist_ok=True)
    argv = [limpet_bin, "kernel", "run", target]
    if env:
        argv += ["--env", env]
    argv += list(extra) + ["-f", "{connection_file}"]
    (d / "kernel.json").write_text(json.dumps({
        "argv": argv, "display_name": f"limpet: {target}", "language": "python",
        "interrupt_mode": "message",
        "metadata": {"limpet": {"target": target, "env": env}}}))
    return name


def jupyter_environ(base, runtime_dir):
    """os.environ for jupyter_client and the kernels it starts: a private
    Jupyter path (no user kernels), and the runtime dir the host is in."""
    base = pathlib.Path(base)
    for sub in ("data", "runtime", "config"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    return {
        "JUPYTER_PATH": str(base / "data"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "XDG_RUNTIME_DIR": str(runtime_dir),
    }


class Environ:
    """Sets variables in os.environ for a block (unittest classes have no
    monkeypatch)."""

    def __init__(self, values):
        self.values, self.saved = values, {}

    def __enter__(self):
        for k, v in self.values.items():
            self.saved[k] = os.environ.get(k)
            os.environ[k] = v
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
