"""limpet serve's environments hosted elsewhere (issue 12, item 2): over a real sshd on
loopback and through sudo, with nothing installed there; and the server seen from another
user's account, which must get nothing."""
import http.client
import json
import os
import pwd
import shutil
import subprocess

import pytest


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sshd, sudo -u nobody)")


def post(serve, path, body):
    host, port = serve.http.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    c.request("POST", path, json.dumps(body), {"Authorization": "Bearer " + serve.token()})
    r = c.getresponse()
    data = json.loads(r.read())
    c.close()
    return r.status, data


@ROOT_ONLY
def test_an_environment_over_ssh_runs_there(make_serve, sshd):
    s = make_serve(http="127.0.0.1:0", env={"LIMPET_SSH_COMMAND": sshd.ssh_command})
    status, env = post(s, "/api/envs", {"name": "gpu", "target": sshd.url(),
                                        "python": "/usr/bin/python3"})
    assert status == 201, env
    assert env["target"] == sshd.url() and env["state"] == "ready"
    status, run = post(s, "/api/envs/gpu/exec",
                       {"code": "import os\nprint(os.environ.get('SSH_CONNECTION', '')[:9])\n"
                                "x = 21\nx * 2"})
    assert status == 200, run
    assert run["stdout"] == "127.0.0.1\n" and run["value"] == "42"
    # the terminal client reaches it too, through the server
    out = s.limpet("exec", "--env", "gpu", "serve", "-c", "print(x)")
    assert out.stdout == "21\n", out.stderr


@ROOT_ONLY
def test_an_environment_through_sudo_runs_as_that_user(make_serve):
    if shutil.which("sudo") is None:
        pytest.skip("no sudo (scripts/install-deps)")
    s = make_serve(http="127.0.0.1:0")
    status, env = post(s, "/api/envs", {"name": "nob", "target": "sudo:nobody",
                                        "python": "/usr/bin/python3"})
    assert status == 201, env
    status, run = post(s, "/api/envs/nob/exec", {"code": "import os\nos.getuid()"})
    assert status == 200 and run["value"] == str(pwd.getpwnam("nobody").pw_uid), run


@pytest.mark.parametrize("target", ["ssh://-oProxyCommand=x", "sudo:-u", "sudo:a b",
                                    "ssh://host/path", "docker:x"])
def test_a_bad_target_is_a_clear_400(make_serve, target):
    s = make_serve(http="127.0.0.1:0")
    status, ans = post(s, "/api/envs", {"name": "bad", "target": target})
    assert status == 400 and "bad target" in ans["error"]["message"], ans
    assert s.alive()


@ROOT_ONLY
def test_another_user_gets_nothing(make_serve):
    s = make_serve(http="127.0.0.1:0")
    nobody = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
    env = dict(s.env)
    # neither the token (the runtime directory is 0700) ...
    out = subprocess.run(nobody + [s.bin, "serve", "--print-token"], env=env,
                         capture_output=True, text=True, timeout=10)
    assert out.returncode != 0 and s.token() not in out.stdout
    # ... nor the socket ...
    out = subprocess.run(nobody + [s.bin, "exec", s.address, "-c", "print(1)"], env=env,
                         capture_output=True, text=True, timeout=10)
    assert out.returncode != 0 and out.stdout == ""
    # ... nor HTTP without the token
    code = ("import http.client; c = http.client.HTTPConnection('%s', %s); "
            "c.request('POST', '/api/envs/main/exec', '{\"code\": \"1\"}'); "
            "print(c.getresponse().status)" % tuple(s.http.rsplit(":", 1)))
    out = subprocess.run(nobody + ["/usr/bin/python3", "-c", code], capture_output=True,
                         text=True, timeout=10)
    assert out.stdout.strip() == "401"
    assert s.alive()
