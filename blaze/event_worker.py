"""The manager's one event thread: every listener record handled in order, one at a time.

Spark's listener hands records over on its own thread; deciding there would hold up Spark's
bus, and deciding on several threads would let two events about one block race. So each
record is queued and this worker hands it to the manager's parts under the manager's lock. A
sync point is a marker in the same queue: when the worker reaches it, every record queued
before it has been handled. When the queue runs empty the orders decided for the burst of
records just handled go to the executors together (one JVM call; :mod:`blaze.orders`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

_STOP = None


class EventWorker:
    """Queue of listener records and the thread that handles them (see the module doc)."""

    def __init__(
        self,
        handle: Callable[[object], None],
        *,
        lock: threading.RLock,
        flush_orders: Callable[[], None],
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self._handle = handle
        self._lock = lock
        self._flush_orders = flush_orders
        self._on_error = on_error
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="blaze-manager", daemon=True)
        self._thread.start()

    def put_all(self, records: tuple) -> None:
        """Queue a batch of listener records, handled in order (the listener's batched
        subscription calls this: one wake-up of this thread per batch, not per record)."""
        self._queue.put(list(records))

    def is_current(self) -> bool:
        """Whether the caller runs on this worker (a decision made while handling a record)."""
        return threading.current_thread() is self._thread

    def wait_until_handled(self, timeout_s: float) -> None:
        """Return once every record queued before this call has been handled."""
        reached = threading.Event()
        self._queue.put(reached)
        if not reached.wait(timeout_s):
            raise TimeoutError(f"the Blaze manager was still busy after {timeout_s} s")

    def stop(self, join_s: float = 5.0) -> None:
        """Handle what is queued, then end the thread (waiting at most ``join_s``)."""
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(join_s)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()  # a sync point: the waiter goes on while the orders travel
            else:
                for record in item:
                    try:
                        with self._lock:
                            self._handle(record)
                    except Exception as exc:  # never let one record stop the manager
                        self._on_error(type(record).__name__, exc)
            if self._queue.empty():  # the decisions of a burst of records travel together
                try:
                    self._flush_orders()
                except Exception as exc:  # the JVM went away: the resync will tell
                    self._on_error("orders", exc)
