"""limpet list (issue 5): the servers this user can reach, stale records
skipped and removed, a table for people and --json for scripts."""
import json
import os
import subprocess

import pexpect

from conftest import Host, run_limpet


limpet = run_limpet   # (limpet_bin, runtime_dir, *args, stdin=None)


def test_no_servers(limpet_bin, runtime_dir):
    p = limpet(limpet_bin, runtime_dir, "list")
    assert p.returncode == 0
    assert p.stdout.startswith("no limpet servers running for this user")
    assert json.loads(limpet(limpet_bin, runtime_dir, "list", "--json").stdout) == []


def test_one_server_in_a_terminal(limpet_bin, runtime_dir, host):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir))
    child = pexpect.spawn(limpet_bin, ["list"], env=env, encoding="utf-8", timeout=10)
    child.expect(r"PID\s+NAME\s+ADDRESS\s+UPTIME\s+COMMAND\r\n")
    child.expect(rf"{host.proc.pid}\s+testapp\s+{host.address}\s+\d+s\s+\S*app\.py\r\n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_several_servers_oldest_first_and_json(limpet_bin, runtime_dir):
    hosts = [Host(runtime_dir), Host(runtime_dir)]
    try:
        records = json.loads(limpet(limpet_bin, runtime_dir, "list", "--json").stdout)
        assert [r["pid"] for r in records] == [h.proc.pid for h in hosts]
        assert all(r["name"] == "testapp" and r["address"] for r in records)
    finally:
        for h in hosts:
            h.stop()
    # stopped servers leave nothing behind
    assert limpet(limpet_bin, runtime_dir, "list").stdout.startswith("no limpet servers")


def test_stale_records_are_skipped_and_removed(limpet_bin, runtime_dir, host):
    d = runtime_dir / "limpet"
    (d / "999999.json").write_text(json.dumps({"pid": 999999, "name": "dead", "started": 0}))
    (d / "999999.token").write_text("x\n")
    (d / "1.json").write_text(json.dumps({"pid": 1, "name": "reused", "started": 1000}))
    (d / "2.json").write_text("not json")   # half-written: left alone
    records = json.loads(limpet(limpet_bin, runtime_dir, "list", "--json").stdout)
    assert [r["pid"] for r in records] == [host.proc.pid]
    assert sorted(os.listdir(d)) == sorted(["2.json", f"{host.proc.pid}.json",
                                            f"{host.proc.pid}.sock"])


def test_usage_errors(limpet_bin, runtime_dir):
    p = limpet(limpet_bin, runtime_dir, "list", "--bogus")
    assert p.returncode == 2
    assert p.stderr.startswith("limpet: unknown option '--bogus'\nusage: limpet list")
    p = limpet(limpet_bin, runtime_dir, "list", "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: limpet list [--json]")
