"""A real sshd on loopback with keys it makes, for the ssh tests and bench/contexts.py: root
only (sshd's privilege separation), stopped by stop()."""
import getpass
import os
import pathlib
import shutil
import socket
import subprocess
import time

SSHD = "/usr/sbin/sshd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """sshd on 127.0.0.1:port; ssh_command (ssh -F CONFIG) reaches it as the current user."""

    def __init__(self, d):
        d = pathlib.Path(d)
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
        self.config = f"{d}/ssh_config"
        self.ssh_command = f"ssh -F {self.config}"

    def url(self, target=""):
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}" + (f"/{target}" if target else "")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
