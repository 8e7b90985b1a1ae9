"""The limpet binary as a user runs it, in a pseudo-terminal."""
import os
import subprocess

import pexpect

from limpet import __version__


def run(limpet_bin, *args):
    child = pexpect.spawn(limpet_bin, list(args), encoding="utf-8", timeout=10)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


def test_version(limpet_bin):
    status, out = run(limpet_bin, "--version")
    assert status == 0
    assert out.strip() == f"limpet {__version__} (protocol 1)"
    assert run(limpet_bin, "-V") == (status, out)


def test_help_goes_to_stdout(limpet_bin):
    p = subprocess.run([limpet_bin, "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    assert p.stdout.startswith("usage: limpet ")
    assert "  list       list the servers this user can reach" in p.stdout
    assert p.stderr == ""


def test_no_arguments_is_a_usage_error(limpet_bin):
    p = subprocess.run([limpet_bin], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.startswith("usage: limpet ")


def test_unknown_command(limpet_bin):
    status, out = run(limpet_bin, "frobnicate")
    assert status == 2
    assert "limpet: unknown command 'frobnicate'" in out


def test_unknown_option(limpet_bin):
    p = subprocess.run([limpet_bin, "--frobnicate"], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.splitlines()[0] == "limpet: unknown option '--frobnicate'"


def test_man_page_covers_every_command_and_renders(limpet_bin):
    import re
    import shutil
    root = os.environ["LIMPET_SOURCE_ROOT"]
    page = open(os.path.join(root, "docs", "limpet.1")).read()
    out = subprocess.run([limpet_bin, "--help"], capture_output=True, text=True).stdout
    commands = re.findall(r"^  (\w+) ", out.split("commands:")[1].split("options:")[0], re.M)
    assert set(commands) == {"connect", "bridge", "exec", "list", "serve", "kernel", "jupyter"}
    for name in commands:
        assert f".SS {name}\n" in page and f".B limpet {name}" in page
    if shutil.which("man"):
        r = subprocess.run(["man", "--warnings", "-l", os.path.join(root, "docs", "limpet.1")],
                           capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "MANPAGER": "cat"})   # no ASan preload
        assert r.returncode == 0 and r.stderr == "", r.stderr
        assert "ssh://[USER@]HOST[:PORT][/TARGET]" in r.stdout
