"""Reading the discovery records that running servers write beside their
sockets: <runtime dir>/<pid>.json. A record whose process is gone (or whose
pid now belongs to a later process) is stale, and is removed with its
socket and token files."""
import json
import os

_STARTED_SLACK_S = 5   # a record's start time and its process's may differ this much


def runtime_dir():
    """The per-user directory servers use (the same rule as the C side)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg) and os.stat(xdg).st_uid == os.geteuid():
        return os.path.join(xdg, "limpet")
    return f"/tmp/limpet-{os.geteuid()}"


def _process_started(pid):
    """When process pid started, in seconds since the epoch, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(l.split()[1]) for l in f if l.startswith("btime"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _is_live(record):
    started = _process_started(record.get("pid"))
    if started is None:
        return False
    # the server started after its process did, never before
    return record.get("started", 0) / 1000 >= started - _STARTED_SLACK_S


def _remove(directory, pid):
    for ext in ("json", "token", "sock"):
        try:
            os.unlink(os.path.join(directory, f"{pid}.{ext}"))
        except OSError:
            pass


def servers(directory=None):
    """servers() -> list of records (dicts: pid, name, argv, address, started, ...)

    The servers this user can reach, oldest first; stale records are removed.
    """
    directory = directory or runtime_dir()
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name)) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue   # being written, or not ours to judge
        if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
            continue
        if _is_live(record):
            found.append(record)
        else:
            _remove(directory, record["pid"])
    return sorted(found, key=lambda r: r.get("started", 0))
