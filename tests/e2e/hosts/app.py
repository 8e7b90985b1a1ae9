"""A long-running program with the server embedded, as a user writes one.

Started by tests/e2e/conftest.py; prints the server's address, then runs
a loop the tests hot-patch. LIMPET_TEST_* variables set start() options."""
import os
import sys
import threading
import time

import limpet

data = {"n": 0}


def step():
    data["n"] += 1


def host_chatter():
    """A host thread that keeps printing to the host's own stdout."""
    while True:
        print("host tick", flush=True)
        time.sleep(0.2)


def twice_transform(source, filename, mode):
    """A tiny macro: twice!(expr) becomes (expr) * 2."""
    import re
    return re.sub(r"twice!\((.*?)\)", r"((\1) * 2)", source)


options = {}
if os.environ.get("LIMPET_TEST_MAX_CONNECTIONS"):
    options["max_connections"] = int(os.environ["LIMPET_TEST_MAX_CONNECTIONS"])
if os.environ.get("LIMPET_TEST_MAX_SESSIONS"):
    options["max_sessions"] = int(os.environ["LIMPET_TEST_MAX_SESSIONS"])
if os.environ.get("LIMPET_TEST_ADDRESS"):
    options["address"] = os.environ["LIMPET_TEST_ADDRESS"]
if os.environ.get("LIMPET_TEST_GRACE"):
    options["grace"] = float(os.environ["LIMPET_TEST_GRACE"])
if os.environ.get("LIMPET_TEST_TRANSFORM"):
    options["transform"] = twice_transform
if os.environ.get("LIMPET_TEST_ALLOW_REMOTE"):
    options["allow_remote"] = True
step()   # the loop below has run once before anyone can look: data['n'] > 0 is no race
server = limpet.start(globals(), name="testapp", **options)
print("ADDRESS", server.address, flush=True)
if server.token:
    print("TOKEN", server.token, flush=True)
threading.Thread(target=host_chatter, daemon=True).start()
while True:
    step()
    time.sleep(0.05)
