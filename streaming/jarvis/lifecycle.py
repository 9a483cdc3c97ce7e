"""Nothing a Jarvis run starts outlives it: neither agent processes nor the work directory.

A run is killed the hard way often enough (a benchmark interrupted with SIGKILL, a CI
timeout) that cleanup cannot live in ``finally`` blocks alone. Three mechanisms, each
covering a way the others can fail:

1. **Agents die with their parent.** An agent asks the kernel for SIGKILL when its parent
   dies (:func:`die_with_parent`: ``prctl(PR_SET_PDEATHSIG)`` through ctypes), then checks
   that the parent is still the one it was started by (it may have died before the call).
   The kernel ties the signal to the *thread* that started the process, so agents must be
   started from a thread that lives as long as the run (the harness starts them from its
   own thread).
2. **A watchdog per run** (:class:`RunGuard` starts ``python -m streaming.jarvis.watchdog``
   in its own session, so killing the run's process group spares it): when the run's owner
   process dies it kills the agents still running, waits for the owner's other children
   (Spark's JVM exits when its driver's pipe closes; SIGKILL after a grace period) and
   removes the work directory.
3. **Stale directories are swept.** A run directory's name carries its owner's pid and
   process start time (a reused pid has another start time); every new run removes the
   directories whose owner is gone — what is left when the watchdog was killed too.

Linux only (``/proc`` and ``prctl``), like the rest of the agent machinery.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = [
    "RUN_PREFIX",
    "RunGuard",
    "create_run_dir",
    "default_base",
    "descendants",
    "die_with_parent",
    "process_alive",
    "process_start_time",
    "remove_tree",
    "sweep_stale_runs",
]

RUN_PREFIX = "jarvis-run-"
_RUN_RE = re.compile(rf"^{re.escape(RUN_PREFIX)}(\d+)-(\d+)-")
_PR_SET_PDEATHSIG = 1


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22), or
    None if there is no such process. Together with the pid it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return int(fields[19])


def _state_and_parent(pid: int) -> tuple[str, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def process_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if given, started at ``start_time``."""
    info = _state_and_parent(pid)
    if info is None or info[0] in ("Z", "X"):
        return False
    return start_time is None or process_start_time(pid) == start_time


def descendants(pid: int) -> dict[int, int]:
    """Every live descendant of ``pid`` as ``{pid: start time}`` (one scan of ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            info = _state_and_parent(int(entry.name))
            if info is not None and info[0] not in ("Z", "X"):
                children.setdefault(info[1], []).append(int(entry.name))
    found: dict[int, int] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        start = process_start_time(child)
        if start is not None and child not in found:
            found[child] = start
            todo.extend(children.get(child, []))
    return found


def die_with_parent(parent_pid: int | None, sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies; False if the
    parent is already gone (then the caller should exit) or was never ``parent_pid``."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    return parent_pid is None or os.getppid() == parent_pid


def default_base() -> str | None:
    """Where run directories go: tmpfs when there is one (it stands for the agents' socket
    buffers; a loaded VM's disk file system made a spool entry cost 0.3-3 ms of CPU in
    ``mkdir``/``open`` alone), else the system temporary directory."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def create_run_dir(base: str | Path | None = None, label: str = "") -> Path:
    """A fresh directory named after this process (pid and start time) under ``base``."""
    pid = os.getpid()
    prefix = f"{RUN_PREFIX}{pid}-{process_start_time(pid)}-{label}"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def sweep_stale_runs(base: str | Path | None = None) -> list[Path]:
    """Remove run directories under ``base`` whose owner process is gone; returns them.

    Directories not named by :func:`create_run_dir` are never touched."""
    root = Path(base if base is not None else tempfile.gettempdir())
    removed = []
    for path in root.glob(f"{RUN_PREFIX}*"):
        match = _RUN_RE.match(path.name)
        if match and path.is_dir() and not process_alive(int(match[1]), int(match[2])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class RunGuard:
    """A run's work directory plus the watchdog that cleans up if the run's process dies.

    ``with RunGuard(base) as workdir:`` sweeps stale runs, creates the directory, starts the
    watchdog; leaving the block stops the watchdog and removes the directory.
    """

    def __init__(self, base: str | Path | None = None, label: str = "", poll_s: float = 0.5):
        self.base, self.label, self.poll_s = base, label, poll_s
        self.path: Path | None = None
        self.watchdog: subprocess.Popen | None = None

    def __enter__(self) -> Path:
        sweep_stale_runs(self.base)
        self.path = create_run_dir(self.base, self.label)
        pid = os.getpid()
        self.watchdog = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streaming.jarvis.watchdog",
                "--owner",
                f"{pid}:{process_start_time(pid)}",
                "--workdir",
                str(self.path),
                "--poll",
                str(self.poll_s),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self.path

    def __exit__(self, *exc_info) -> None:
        if self.watchdog is not None:
            self.watchdog.terminate()
            try:
                self.watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.watchdog.kill()
                self.watchdog.wait(timeout=10)
        if self.path is not None:
            remove_tree(self.path)


def remove_tree(path: Path, timeout_s: float = 10.0) -> bool:
    """Remove a directory tree that a dying process may still be writing into; False if it
    is still there after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
