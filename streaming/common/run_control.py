"""How a ``blaze stream`` demo starts, waits and stops: checked numbers, Ctrl-C, scratch dirs.

Why one module: every demo needs the same three manners. Numeric options are checked by
argparse types before a JVM starts (one line, exit 2). Ctrl-C must end the demo with one line
("interrupted", exit 130): a KeyboardInterrupt raised inside a py4j call breaks the gateway
connection mid-command and py4j and Java then print screens of tracebacks, so SIGINT/SIGTERM
only set a flag here, and the demo polls it between short waits, stops its queries cleanly and
raises KeyboardInterrupt itself. Checkpoints and scratch data live in a directory that is
removed when the demo ends however it ends (finally, atexit, SIGTERM); a demo killed with
SIGKILL cannot clean up, so each start removes the scratch dirs of this tool whose owning
process is gone.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "StopFlag",
    "interruptible",
    "non_negative",
    "positive",
    "quiet_py4j",
    "scratch_dir",
    "wait_for",
]


def _number(kind: type, text: str, *, allow_zero: bool) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a{'n' if kind is int else ''} "
            f"{'integer' if kind is int else 'number'}"
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        raise argparse.ArgumentTypeError(f"{text} must be {'>= 0' if allow_zero else 'positive'}")
    return value


def positive(kind: type = int) -> Callable[[str], int | float]:
    """An argparse ``type=`` accepting numbers > 0 (finite for floats)."""
    return lambda text: _number(kind, text, allow_zero=False)


def non_negative(kind: type = int) -> Callable[[str], int | float]:
    """An argparse ``type=`` accepting numbers >= 0 (finite for floats)."""
    return lambda text: _number(kind, text, allow_zero=True)


def quiet_py4j() -> None:
    """py4j logs every broken connection with a traceback; a demo that stops on purpose has
    nothing to learn from them."""
    for name in ("py4j", "py4j.java_gateway", "py4j.clientserver"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _quiet_accumulator_server() -> None:
    """Ctrl-C reaches the JVM too, which may close its connection to the driver's accumulator
    server mid-update; the server (a ``socketserver``) then prints an EOFError traceback. A
    demo that stops on purpose has nothing to learn from it (a CI run saw it once)."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    server = getattr(context, "_accumulatorServer", None)
    if server is not None:
        server.handle_error = lambda _request, _client_address: None


class StopFlag:
    """Set by SIGINT/SIGTERM while :func:`interruptible` is active."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_number: int | None = None
        self._on_request: list[Callable[[], None]] = []

    def on_request(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` as soon as a stop is asked (e.g. silence Spark's log: Ctrl-C also
        reaches the Python workers, whose deaths Spark would report while the query stops)."""
        self._on_request.append(callback)

    def set(self, signum: int, _frame=None) -> None:
        first = not self._event.is_set()
        self.signal_number = signum
        self._event.set()
        if first and self._on_request:
            # on another thread: a py4j call from the handler would re-enter the connection
            # the interrupted main thread is using
            threading.Thread(target=self._run_callbacks, name="stop-request", daemon=True).start()

    def _run_callbacks(self) -> None:
        for callback in self._on_request:
            with contextlib.suppress(Exception):
                callback()

    def arm(self) -> None:
        """(Re)install the handlers: creating a SparkContext installs PySpark's own SIGINT
        handler (cancel every job, raise KeyboardInterrupt wherever the main thread is), so
        a demo calls this again once its session is up."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.set)
        _quiet_accumulator_server()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise KeyboardInterrupt (the CLI prints "interrupted", exit 130) if asked to stop."""
        if self.requested:
            raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible() -> Iterator[StopFlag]:
    """SIGINT and SIGTERM set the returned flag instead of raising inside a py4j call."""
    flag = StopFlag()
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    flag.arm()
    quiet_py4j()
    try:
        yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def wait_for(query, flag: StopFlag, done: Callable[[], bool] | None = None, poll_s=0.25) -> None:
    """Wait until ``query`` ends (or ``done()`` is true); on a stop request stop it cleanly
    and raise KeyboardInterrupt. A query that failed raises its own error."""
    while True:
        if flag.requested:
            with contextlib.suppress(Exception):
                query.stop()
            raise KeyboardInterrupt
        if query.awaitTermination(poll_s):
            return
        if done is not None and done():
            return


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(root: Path, prefix: str) -> list[Path]:
    removed = []
    for path in root.glob(f"{prefix}*"):
        parts = path.name[len(prefix) :].split("-", 1)
        if not path.is_dir() or not parts[0].isdigit():
            continue
        if not _pid_alive(int(parts[0])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def scratch_dir(tool: str, root: str | os.PathLike | None = None) -> Iterator[Path]:
    """A fresh directory ``blaze-<tool>-<pid>-*`` removed when the block ends, at interpreter
    exit and on SIGTERM; scratch dirs of ``tool`` left by dead processes are removed first."""
    base = Path(root or tempfile.gettempdir())
    prefix = f"blaze-{tool}-"
    _clean_stale(base, prefix)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base))

    def remove() -> None:
        shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    try:
        yield path
    finally:
        remove()
        atexit.unregister(remove)
