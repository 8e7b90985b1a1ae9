"""Shared fixtures: the build tree's limpet binary and the wire vectors."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading

import pytest

SOURCE_ROOT = os.environ.get(
    "LIMPET_SOURCE_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
VECTOR_DIR = os.path.join(SOURCE_ROOT, "tests", "vectors")


def load_vectors():
    with open(os.path.join(VECTOR_DIR, "vectors.json")) as f:
        vectors = json.load(f)["vectors"]
    for v in vectors:
        with open(os.path.join(VECTOR_DIR, v["file"]), "rb") as f:
            v["data"] = f.read()
    return vectors


def decode_py(data, before_handshake=False):
    """Decodes with the Python peer: (frames, end) like _limpet.decode_frames."""
    from limpet import wire
    if before_handshake:
        dec = wire.Decoder(wire.HELLO_HEADER_MAX, 0)
    else:
        dec = wire.Decoder()
    dec.feed(data)
    frames = []
    try:
        while (f := dec.next()) is not None:
            frames.append(f)
    except wire.WireError as e:
        return frames, e.code
    return frames, "need-more" if dec.pending else "clean"


def decode_c(data, before_handshake=False):
    """Decodes with the C codec; headers parsed back into dicts."""
    from limpet import _limpet
    frames, end = _limpet.decode_frames(data, before_handshake=before_handshake)
    return [(json.loads(h), p) for h, p in frames], end


SANITIZER_VARS = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")


def unsanitized(env):
    """env without the ASan runtime the sanitizer suite preloads into every process: for
    programs that are not ours under test (a browser, a release build the demo makes)."""
    return {k: v for k, v in env.items() if k not in SANITIZER_VARS}


@pytest.fixture(scope="session")
def limpet_bin():
    """Path of the limpet binary under test (LIMPET_BIN, set by meson test)."""
    path = os.environ.get("LIMPET_BIN") or shutil.which("limpet")
    if not path:
        pytest.fail("LIMPET_BIN is not set and no limpet is on PATH: run through 'meson test'")
    return os.path.abspath(path)


HOSTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hosts")


class Host:
    """A host process with the server embedded; its stdout is collected."""

    def __init__(self, runtime_dir, script="app.py", env=None):
        e = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir), PYTHONUNBUFFERED="1")
        e.update(env or {})
        self.proc = subprocess.Popen([sys.executable, os.path.join(HOSTS, script)], env=e,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ADDRESS "):
            self.proc.kill()
            raise RuntimeError(f"host did not start: {line!r} {self.proc.stderr.read()!r}")
        self.address = line.split(None, 1)[1].strip()
        self.token = None
        if ":" in self.address and not self.address.startswith("/"):
            self.token = self.proc.stdout.readline().decode().split()[1]
        self.runtime_dir = runtime_dir
        self.output = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def runtime_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def host(runtime_dir):
    h = Host(runtime_dir)
    yield h
    h.stop()


@pytest.fixture
def make_host(runtime_dir):
    hosts = []

    def make(**env):
        h = Host(runtime_dir, env={k: str(v) for k, v in env.items()})
        hosts.append(h)
        return h
    yield make
    for h in hosts:
        h.stop()


def until(c, rid):
    """Every frame a Client reads, in order, up to and including the final
    reply (done or error) to request rid."""
    got = []
    while True:
        h, p = c.read_frame()
        got.append((h, p))
        if h.get("re") == rid and h["op"] in ("done", "error"):
            return got


def rss_kb(pid):
    """Resident memory of process pid, in KB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def read_all(s):
    """Everything a socket receives until the other side closes."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def run_limpet(limpet_bin, runtime_dir, *args, stdin=None, timeout=30):
    """Runs the limpet command with no terminal; its CompletedProcess (text)."""
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir))
    return subprocess.run([limpet_bin, *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=timeout)


def run_python(code, runtime_dir, timeout=30):
    """Runs code in a fresh /usr/bin/python3 with the build's limpet."""
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=timeout)


class Serve:
    """A `limpet serve` process (the real binary) in runtime_dir; its stderr (the log) is
    collected in self.log. http: "off", or an address ("127.0.0.1:0" picks a free port)."""

    def __init__(self, limpet_bin, runtime_dir, *args, http="off", name="serve",
                 env=None):
        if http.endswith(":0"):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                http = "%s:%d" % (http[:-2], s.getsockname()[1])
        self.http, self.name, self.bin = http, name, limpet_bin
        self.env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir), **(env or {}))
        self.proc = subprocess.Popen([limpet_bin, "serve", "--name", name, "--http", http,
                                      *args], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.log = []
        line = self.proc.stderr.readline().decode()
        self.log.append(line)
        if "socket " not in line:
            self.proc.kill()
            raise RuntimeError("limpet serve did not start: %r %r"
                               % (line, self.proc.stderr.read()))
        self.address = line.split("socket ", 1)[1].split(",", 1)[0]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.log.append(line.decode(errors="replace"))

    def token(self):
        out = subprocess.run([self.bin, "serve", "--name", self.name, "--print-token"],
                             env=self.env, capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def limpet(self, *args, stdin=None, timeout=30):
        return subprocess.run([self.bin, *args], env=self.env, capture_output=True, text=True,
                              input=stdin, timeout=timeout)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.alive():
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture
def make_serve(limpet_bin, runtime_dir):
    started = []

    def make(*args, **kw):
        s = Serve(limpet_bin, runtime_dir, *args, **kw)
        started.append(s)
        return s
    yield make
    for s in started:
        if s.alive():
            s.stop()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on loopback (tests/e2e/sshd.py), one per test module; root only."""
    from sshd import SSHD, Sshd
    if os.geteuid() != 0 or not os.path.exists(SSHD):
        pytest.skip("needs root and openssh-server (scripts/install-deps)")
    s = Sshd(tmp_path_factory.mktemp("sshd"))
    yield s
    s.stop()
