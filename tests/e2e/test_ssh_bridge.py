"""limpet bridge and ssh:// targets (issue 5), against a real sshd on
loopback that the test starts with keys it makes."""
import getpass
import os
import shutil
import socket
import subprocess
import time

import pexpect
import pytest

from limpet import wire

SSHD = "/usr/sbin/sshd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    def __init__(self, d):
        for name in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                           check=True)
        shutil.copy(d / "user_key.pub", d / "authorized_keys")
        os.chmod(d / "authorized_keys", 0o600)
        self.port = free_port()
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n"
            f"AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nAcceptEnv XDG_RUNTIME_DIR\n"
            f"PidFile {d}/sshd.pid\n")
        host_pub = (d / "host_key.pub").read_text().split()
        (d / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        (d / "ssh_config").write_text(
            f"Host *\n  IdentityFile {d}/user_key\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n  SendEnv XDG_RUNTIME_DIR\n  LogLevel ERROR\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)   # privilege separation
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                                     stderr=subprocess.PIPE)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.proc.kill()
            raise RuntimeError(f"sshd did not start: {self.proc.stderr.read()!r}")
        self.ssh_command = f"ssh -F {d}/ssh_config"

    def url(self, target=""):
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}" + (f"/{target}" if target else "")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if os.geteuid() != 0 or not os.path.exists(SSHD):
        pytest.skip("needs root and openssh-server (scripts/install-deps)")
    s = Sshd(tmp_path_factory.mktemp("sshd"))
    yield s
    s.stop()


@pytest.fixture
def ssh_env(sshd, limpet_bin, runtime_dir, tmp_path):
    return dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir), XDG_STATE_HOME=str(tmp_path),
                LIMPET_SSH_COMMAND=sshd.ssh_command, LIMPET_REMOTE_LIMPET=limpet_bin,
                NO_COLOR="1", TERM="xterm")


@pytest.mark.parametrize("by", ["name", "path"])
def test_connect_over_ssh(sshd, ssh_env, limpet_bin, host, by):
    target = "testapp" if by == "name" else host.address
    child = pexpect.spawn(limpet_bin, ["connect", sshd.url(target)], env=ssh_env, timeout=20,
                          encoding="utf-8")
    child.expect_exact(f"limpet: connected to testapp (pid {host.proc.pid})")
    child.expect_exact(">>> ")
    child.sendline("data['n'] > 0")
    child.expect_exact("True\r\n>>> ")
    child.sendline("while True: pass")
    child.sendline("")
    time.sleep(0.3)
    child.sendcontrol("c")               # the session's, not ssh's: the link stays
    child.expect_exact("KeyboardInterrupt")
    child.expect_exact(">>> ")
    child.sendline("'still' + ' here'")
    child.expect_exact("'still here'\r\n>>> ")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_exec_over_ssh(sshd, ssh_env, limpet_bin, host):
    p = subprocess.run([limpet_bin, "exec", sshd.url("testapp"), "-c", "print(6 * 7)"],
                       env=ssh_env, capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout) == (0, "42\n"), p.stderr


def test_no_such_server_on_the_far_side(sshd, ssh_env, limpet_bin, host):
    p = subprocess.run([limpet_bin, "exec", sshd.url("nosuch"), "-c", "1"], env=ssh_env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "limpet: no server named 'nosuch'" in p.stderr   # said by the remote bridge
    assert f"limpet: ssh for '{sshd.url('nosuch')}' ended (exit status 1)" in p.stderr


def test_unreachable_host(sshd, ssh_env, limpet_bin):
    url = f"ssh://127.0.0.1:{free_port()}/app"
    p = subprocess.run([limpet_bin, "exec", url, "-c", "1"], env=ssh_env, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1
    assert f"limpet: ssh for '{url}' ended (exit status 255)" in p.stderr


@pytest.mark.parametrize("url,why", [
    ("ssh://", "no host"),
    ("ssh://user@/x", "no host"),
    ("ssh://@host/x", "no host"),
    ("ssh://host:99999/x", "the port is not a number from 1 to 65535"),
    ("ssh://host:22x/x", "the port is not a number from 1 to 65535"),
    ("ssh://[::1/x", "no ']' after an IPv6 address"),
    ("ssh://-oProxyCommand=x/y", "no host"),
])
def test_bad_ssh_addresses(limpet_bin, url, why):
    p = subprocess.run([limpet_bin, "exec", url, "-c", "1"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1
    assert p.stderr == f"limpet: bad address '{url}': {why} (ssh://[USER@]HOST[:PORT][/TARGET])\n"


def test_bridge_relays_bytes_to_a_local_server(limpet_bin, runtime_dir, host):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir))
    p = subprocess.Popen([limpet_bin, "bridge", "testapp"], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    p.stdin.write(wire.hello(session=True))
    p.stdin.write(wire.encode({"op": "ping", "id": 1}, b"through the bridge"))
    p.stdin.close()                      # a half-close: the answers still come
    out = p.stdout.read()
    assert p.wait(timeout=10) == 0
    buf = bytearray(out)
    welcome, used = wire.read_welcome(buf)
    assert welcome["server"]["name"] == "testapp" and welcome["session"]
    dec = wire.Decoder()
    dec.feed(bytes(buf[used:]))
    h, payload = dec.next()
    assert (h["op"], h["re"], payload) == ("done", 1, b"through the bridge")


def test_bridge_usage_errors(limpet_bin, runtime_dir):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir))
    p = subprocess.run([limpet_bin, "bridge", "ssh://elsewhere/x"], env=env, capture_output=True,
                       text=True)
    assert p.returncode == 2
    assert p.stderr.startswith("limpet: a bridge relays to a server on this host, "
                               "not to 'ssh://elsewhere/x'\n")
    p = subprocess.run([limpet_bin, "bridge", "nosuch"], env=env, capture_output=True, text=True)
    assert (p.returncode, p.stderr) == (1, "limpet: no server named 'nosuch' (see 'limpet list')\n")


def test_a_target_cannot_inject_a_remote_command(sshd, ssh_env, limpet_bin, tmp_path):
    """The target travels to the far side's shell single-quoted: quotes,
    semicolons and $(...) in it stay text."""
    marker = tmp_path / "injected"
    target = f"x'; touch {marker}; echo '$(touch {marker})"
    p = subprocess.run([limpet_bin, "exec", sshd.url(target), "-c", "1"], env=ssh_env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    # the far side took it whole, as a socket path (it has a '/')
    assert f"limpet: cannot connect to '{target}'" in p.stderr
    assert not marker.exists()
