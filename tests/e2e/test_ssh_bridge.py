"""limpet bridge and ssh:// targets (issue 5), against a real sshd on
loopback that the test starts with keys it makes."""
import os
import subprocess
import time

import pexpect
import pytest

from limpet import wire
from sshd import free_port


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
