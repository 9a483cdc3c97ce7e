"""A SparkListener written in Python: live Spark events -> lineage records -> LineageDag.

The one py4j adapter of the lineage package (the only module here that touches pyspark):

- The JVM calls a small Python class implementing
  ``org.apache.spark.scheduler.SparkListenerInterface`` through py4j's callback server,
  started the supported way (``pyspark.java_gateway.ensure_callback_server_started``).
- Each event the lineage needs costs one more py4j call,
  ``JsonProtocol.sparkEventToJsonString(event, options)``: the line Spark's event log holds
  (minus task accumulator lists, which nothing here reads), read
  by the same parser as log files (:mod:`lineage.parse`), so live and offline DAGs agree.
  Events it does not need (task starts, metrics updates, ...) return at once.
- It sits on its own listener-bus queue, ``"blaze"``, so a slow Python callback never
  delays Spark's own listeners (the UI store, the event log).
- py4j makes a new Java proxy each time a Python object crosses, so removing "the same"
  listener would remove nothing: the proxy is materialised once (through a
  ``java.util.ArrayList``) and that one reference is used to add and to remove it. The
  adapter defines ``equals``/``hashCode``/``toString`` because the bus calls them.
- Callbacks run on py4j threads (one per JVM thread): the DAG is thread-safe, and every
  exception inside a callback is caught and counted (``errors``), never thrown into Spark.
- ``detach()`` is idempotent, bounded in time (removal runs in a helper thread joined with a
  timeout), never raises, and runs at interpreter exit (a Python exit with the proxy still
  registered floods the JVM log with connection errors).

``attach(sc, record_to=path)`` also appends every received event's JSON line to ``path`` (a
plain event log that :meth:`LineageDag.from_event_log` reads); ``subscribe`` returns an
unsubscribe function; ``errors``, ``last_error``, ``events_received`` and ``attached`` say
how the listener is doing.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from blaze_errors import InputError
from lineage.dag import LineageDag
from lineage.events import LineageEvent
from lineage.parse import parse_json_line

__all__ = ["QUEUE_NAME", "LineageListener"]

log = logging.getLogger(__name__)

QUEUE_NAME = "blaze"
DETACH_TIMEOUT_S = 10.0

_thread_state = threading.local()  # .in_callback: True while a JVM callback runs here

# Methods of SparkListenerInterface whose events the lineage reads.
_CONVERTED = (
    "onStageSubmitted",
    "onStageCompleted",
    "onJobStart",
    "onJobEnd",
    "onTaskStart",
    "onTaskEnd",
    "onBlockUpdated",
    "onUnpersistRDD",
    "onApplicationEnd",
)
# The other 26, answered without crossing back to the JVM.
_IGNORED = (
    "onTaskGettingResult",
    "onEnvironmentUpdate",
    "onBlockManagerAdded",
    "onBlockManagerRemoved",
    "onApplicationStart",
    "onExecutorMetricsUpdate",
    "onStageExecutorMetrics",
    "onExecutorAdded",
    "onExecutorRemoved",
    "onExecutorBlacklisted",
    "onExecutorExcluded",
    "onExecutorBlacklistedForStage",
    "onExecutorExcludedForStage",
    "onNodeBlacklistedForStage",
    "onNodeExcludedForStage",
    "onExecutorUnblacklisted",
    "onExecutorUnexcluded",
    "onNodeBlacklisted",
    "onNodeExcluded",
    "onNodeUnblacklisted",
    "onNodeUnexcluded",
    "onUnschedulableTaskSetAdded",
    "onUnschedulableTaskSetRemoved",
    "onSpeculativeTaskSubmitted",
    "onOtherEvent",
    "onResourceProfileAdded",
)


class _JavaListener:
    """The py4j side: turns each needed JVM event into its JSON line, hands it on."""

    class Java:
        implements: ClassVar[list[str]] = ["org.apache.spark.scheduler.SparkListenerInterface"]

    def __init__(
        self,
        to_json: Callable[[Any], str],
        deliver: Callable[[str], None],
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self._to_json = to_json
        self._deliver = deliver
        self._on_error = on_error
        self.closed = False

    def _convert(self, event: Any) -> None:
        if self.closed:
            return
        _thread_state.in_callback = True
        try:
            self._deliver(self._to_json(event))
        except Exception as exc:  # never let a Python error reach Spark's bus
            self._on_error("convert", exc)
        finally:
            _thread_state.in_callback = False

    def _ignore(self, event: Any) -> None:
        return None

    def equals(self, other: Any) -> bool:
        return other is self

    def hashCode(self) -> int:
        return id(self) & 0x7FFFFFFF

    def toString(self) -> str:
        return f"blaze-lineage-listener@{id(self):x}"


for _name in _CONVERTED:
    setattr(_JavaListener, _name, _JavaListener._convert)
for _name in _IGNORED:
    setattr(_JavaListener, _name, _JavaListener._ignore)


def _java_context(sc: Any) -> Any:
    """The SparkContext of ``sc`` (a SparkContext or SparkSession), checked to be running."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if isinstance(sc, SparkSession):
        sc = sc.sparkContext
    if not isinstance(sc, SparkContext):
        raise TypeError(
            f"LineageListener.attach needs a SparkContext or SparkSession, got {type(sc).__name__}"
        )
    if sc._jsc is None:
        raise ValueError("LineageListener.attach: the SparkContext is stopped")
    return sc


class LineageListener:
    """A live :class:`LineageDag` of one SparkContext; create it with :meth:`attach`."""

    def __init__(self) -> None:
        raise TypeError("use LineageListener.attach(sc)")

    @classmethod
    def attach(cls, sc: Any, *, record_to: str | Path | None = None) -> LineageListener:
        """Register a listener on ``sc``'s bus (own queue ``"blaze"``) and return it.

        ``record_to``: also append every received event's JSON line to this file.
        """
        sc = _java_context(sc)
        from pyspark.java_gateway import ensure_callback_server_started

        self = object.__new__(cls)
        self.dag = LineageDag()
        self.errors = Counter()
        self.last_error = None
        self.events_received = 0
        self._subscribers: list[Callable[[LineageEvent], None]] = []
        self._lock = threading.Lock()
        self._detached = False
        self._record = None
        if record_to is not None:  # closed by detach()
            self._record = open(record_to, "a", encoding="utf-8")  # noqa: SIM115

        gateway = sc._gateway
        ensure_callback_server_started(gateway)
        jvm = sc._jvm
        json_protocol = jvm.org.apache.spark.util.JsonProtocol  # resolved once
        # task-end JSON without the accumulator list: half the bytes, nothing the parser reads
        options = jvm.org.apache.spark.util.JsonProtocolOptions(
            jvm.org.apache.spark.SparkConf(False).set(
                "spark.eventLog.includeTaskMetricsAccumulators", "false"
            )
        )
        to_json = json_protocol.sparkEventToJsonString
        self._adapter = _JavaListener(
            lambda event: to_json(event, options), self._on_json, self._count_error
        )
        holder = sc._jvm.java.util.ArrayList()
        holder.add(self._adapter)
        self._proxy = holder.get(0)  # the one Java proxy used to add and to remove
        self._bus = sc._jsc.sc().listenerBus()
        self._bus.addToQueue(self._proxy, QUEUE_NAME)
        atexit.register(self.detach)
        return self

    # ------------------------------------------------------------------ events

    def _on_json(self, text: str) -> None:
        with self._lock:
            self.events_received += 1
        try:
            records = parse_json_line(text)
        except InputError as exc:
            self._count_error("parse", exc)
            return
        if self._record is not None:
            with self._lock:
                self._record.write(text if text.endswith("\n") else text + "\n")
        for record in records:
            self.dag.apply(record)
            for fn in tuple(self._subscribers):
                try:
                    fn(record)
                except Exception as exc:
                    self._count_error("subscriber", exc)

    def _count_error(self, kind: str, exc: BaseException) -> None:
        with self._lock:
            self.errors[kind] += 1
            self.last_error = f"{kind}: {type(exc).__name__}: {exc}"
        log.debug("lineage listener %s error", kind, exc_info=exc)

    def subscribe(self, fn: Callable[[LineageEvent], None]) -> Callable[[], None]:
        """Call ``fn(record)`` for every record, after the DAG has applied it.

        ``fn`` runs on py4j callback threads, possibly concurrently; its exceptions are
        caught and counted in ``errors["subscriber"]``. Returns a function that unsubscribes.
        """
        if not callable(fn):
            raise TypeError(f"subscribe needs a callable, got {type(fn).__name__}")
        with self._lock:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return unsubscribe

    # ------------------------------------------------------------------ sync and stop

    @property
    def attached(self) -> bool:
        return not self._detached

    def wait_until_empty(self, timeout_s: float = 30) -> None:
        """Block until every event posted so far has been handled (Spark's waitUntilEmpty).

        Raises TimeoutError after ``timeout_s``; RuntimeError if called from a listener
        callback (the bus would wait for the very callback that is waiting).
        """
        if getattr(_thread_state, "in_callback", False):
            raise RuntimeError("wait_until_empty cannot be called from a listener callback")
        if self._detached:
            return
        from py4j.protocol import Py4JJavaError

        try:
            self._bus.waitUntilEmpty(int(timeout_s * 1000))
        except Py4JJavaError as exc:
            if "TimeoutException" in exc.java_exception.getClass().getName():
                raise TimeoutError(
                    f"Spark's listener bus still had events after {timeout_s} s"
                ) from None
            raise
        if self._record is not None:
            with self._lock:
                self._record.flush()

    def detach(self) -> None:
        """Unregister from the bus. Idempotent, bounded in time, never raises."""
        with self._lock:
            if self._detached:
                return
            self._detached = True
        self._adapter.closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.detach)
        if getattr(_thread_state, "in_callback", False):
            # removing waits for the queue's thread, which is running this callback
            self._start_remover(join=False)
        else:
            self._start_remover(join=True)
        with self._lock:
            if self._record is not None:
                with contextlib.suppress(OSError):
                    self._record.close()
                self._record = None

    def _start_remover(self, *, join: bool) -> None:
        def remove() -> None:
            try:
                self._bus.removeListener(self._proxy)
            except Exception as exc:  # the JVM may be gone already
                log.debug("lineage listener removal failed: %s", exc)

        try:
            thread = threading.Thread(target=remove, name="blaze-lineage-detach", daemon=True)
            thread.start()
        except RuntimeError:  # no new threads at interpreter shutdown
            remove()
            return
        if join:
            thread.join(DETACH_TIMEOUT_S)
            if thread.is_alive():
                log.warning("lineage listener removal still pending after %s s", DETACH_TIMEOUT_S)

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"LineageListener({state}, {self.dag!r}, errors={dict(self.errors)})"
