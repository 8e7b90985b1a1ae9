"""Background jobs of sessions: code that did not stop when interrupted
(stuck in a blocking call no interrupt reaches) goes on as a job, and
bg(func) starts one on purpose. Any session can look at them with jobs()
and collect a result with fg(job)."""
import itertools
import sys
import threading
import traceback

_ids = itertools.count(1)
_lock = threading.Lock()
_all = {}


class Job:
    """A job: .id, .what, .status ('running', 'done', 'failed'), .result,
    .exception; .where() is the stack it is running or blocked in."""

    def __init__(self, what, thread_id=None):
        with _lock:
            self.id = next(_ids)
            _all[self.id] = self
        self.what = what
        self.thread_id = thread_id
        self.result = None
        self.exception = None
        self._done = threading.Event()

    @property
    def status(self):
        if not self._done.is_set():
            return "running"
        return "failed" if self.exception is not None else "done"

    def where(self):
        """The stack of the job's thread, innermost call last ('' once ended)."""
        frame = sys._current_frames().get(self.thread_id)
        return "".join(traceback.format_stack(frame)) if frame is not None else ""

    def _finish(self, result, exception):
        self.result, self.exception = result, exception
        self._done.set()

    def __repr__(self):
        return f"<job {self.id} {self.status}: {self.what}>"


def detached(thread_id, code):
    """Called by the server when an interrupted eval became a job."""
    lines = [l for l in (code or "").splitlines() if l.strip()]
    what = lines[0].strip() + (" ..." if len(lines) > 1 else "") if lines else "(empty)"
    return Job(what, thread_id)


def bg(func, *args, **kwargs):
    """bg(func, *args, **kwargs) -> Job

    Run func(*args, **kwargs) in a background thread; collect it with fg().
    """
    job = Job(f"{getattr(func, '__qualname__', repr(func))}(...)")

    def run():
        job.thread_id = threading.get_ident()
        try:
            result = func(*args, **kwargs)
        except BaseException as e:   # noqa: B036 - the job reports whatever ended it
            job._finish(None, e)
        else:
            job._finish(result, None)

    threading.Thread(target=run, name=f"limpet-job-{job.id}", daemon=True).start()
    return job


def fg(job, timeout=None):
    """fg(job, timeout=None)

    Wait for job (a Job or its id) and return its result, or raise what it
    raised; TimeoutError if it is still running after timeout seconds.
    """
    if not isinstance(job, Job):
        job = _all[job]
    if not job._done.wait(timeout):
        raise TimeoutError(f"job {job.id} is still running")
    with _lock:
        _all.pop(job.id, None)
    if job.exception is not None:
        raise job.exception
    return job.result


def jobs():
    """jobs()

    List the jobs: id, status, what they run, and where the running ones are.
    """
    with _lock:
        current = list(_all.values())
    if not current:
        print("no jobs")
    for job in current:
        print(f"[{job.id}] {job.status:<7} {job.what}")
        if job.status == "running":
            where = job.where().rstrip().splitlines()
            if where:
                print("    at " + "\n    ".join(where[-2:]).strip())
        elif job.exception is not None:
            print(f"    {type(job.exception).__name__}: {job.exception}")
