"""A run's watchdog: cleans up after the run's owner process if it dies without doing so.

Run as ``python -m streaming.jarvis.watchdog --owner PID:START --workdir DIR`` (started by
:class:`streaming.jarvis.lifecycle.RunGuard`, in its own session). It polls the owner; while
the owner lives it remembers the owner's descendants (after the owner dies they are
reparented and can no longer be found from it). When the owner is gone it

1. SIGKILLs every process whose command line names the work directory (the agents; they
   also die by their parent-death signal, this covers one started a moment before);
2. waits up to ``--grace`` seconds for the remembered descendants to exit by themselves
   (Spark's JVM stops when its Python driver's pipe closes and may still be writing its
   checkpoint), then SIGKILLs those left, each checked by start time so a reused pid is safe;
3. removes the work directory and exits.

If the work directory disappears while the owner lives, the run ended normally: it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from streaming.jarvis.lifecycle import descendants, process_alive, process_start_time, remove_tree

__all__ = ["main"]


def _naming(workdir: str) -> dict[int, int]:
    """Processes (other than this one) whose command line mentions ``workdir``."""
    found = {}
    needle = workdir.encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        start = process_start_time(int(entry.name))
        if needle in cmdline and start is not None:
            found[int(entry.name)] = start
    return found


def _kill(processes: dict[int, int]) -> None:
    for pid, start in processes.items():
        if process_alive(pid, start):
            with contextlib.suppress(ProcessLookupError):  # exited since the check
                os.kill(pid, signal.SIGKILL)


def clean_up(workdir: str, remembered: dict[int, int], grace_s: float) -> None:
    _kill(_naming(workdir))
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not any(process_alive(pid, start) for pid, start in remembered.items()):
            break
        time.sleep(0.2)
    _kill(remembered)
    _kill(_naming(workdir))  # anything started in between
    remove_tree(Path(workdir))


def watch(owner: int, owner_start: int, workdir: str, poll_s: float, grace_s: float) -> int:
    remembered: dict[int, int] = {}
    while process_alive(owner, owner_start):
        if not Path(workdir).exists():
            return 0
        remembered.update(descendants(owner))
        remembered.pop(os.getpid(), None)
        time.sleep(poll_s)
    clean_up(workdir, remembered, grace_s)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streaming.jarvis.watchdog")
    parser.add_argument("--owner", required=True, help="PID:START of the run's owner process")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between checks")
    parser.add_argument("--grace", type=float, default=20.0, help="seconds for children to exit")
    args = parser.parse_args(argv)
    pid, _, start = args.owner.partition(":")
    return watch(int(pid), int(start), args.workdir, args.poll, args.grace)


if __name__ == "__main__":
    sys.exit(main())
