"""A SparkListener written in Python: live Spark events -> lineage records -> LineageDag.

The one py4j adapter of the lineage package (the only module here that touches pyspark).

How events cross (batched, when blaze-spark's jar is on the driver's class path — the
startup hook and ``blaze.session`` put it there):

- :java:`org.blazespark.EventBuffer`, a JVM ``SparkListener`` on its own bus queue
  (``"blaze"``), turns each event the lineage needs into its event-log JSON line with
  ``JsonProtocol.sparkEventToJsonString`` (minus task accumulator lists, which nothing here
  reads) and holds the lines. One Python thread drains them: one py4j call returns every
  line buffered so far (it waits for a first line, then lets the batch grow up to 10 ms), so a
  2,000-task job costs tens of py4j calls instead of a callback plus a call per event. Lines
  are parsed by the same parser as log files (:mod:`lineage.parse`), so live and offline
  DAGs agree. The buffer is bounded: when Python falls behind, the bus thread waits, so
  Spark's own queue fills and Spark counts what it drops, as for any slow listener; when
  Python takes nothing for 2 s (stuck, or gone), the buffer drops and counts events
  (``errors["buffer_full"]``) rather than hold Spark's bus, whose stop waits for it.
- Without the jar (a JVM started by hand without ``spark.jars``), the listener falls back to
  the per-event path — a Python class implementing
  ``org.apache.spark.scheduler.SparkListenerInterface`` through py4j's callback server — says
  so in one log line (the process's first fallback; later ones log at debug) and counts it (``LineageListener.fallbacks``; ``delivery`` says which
  path a listener uses). py4j makes a new Java proxy each time a Python object crosses, so
  that proxy is materialised once (through a ``java.util.ArrayList``) and that one reference
  is used to add and to remove it; the adapter defines ``equals``/``hashCode``/``toString``
  because the bus calls them.

Either way events are handled in the order the bus posted them, on one thread at a time
(the drain thread, or the callback threads of the one queue); every exception is caught and
counted (``errors``), never thrown into Spark. :meth:`LineageListener.wait_until_empty` means
"every event posted so far has been handled": it waits for Spark's bus, then for the drain
thread to have handled every line the buffer ever took. ``detach()`` is idempotent, bounded in
time (removal runs in a helper thread joined with a timeout), never raises, and runs at
interpreter exit (a Python exit with a listener still registered floods the JVM log with
connection errors).

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
from lineage.events import LineageEvent, StageRun
from lineage.parse import parse_json_line
from lineage.py4j_sockets import disable_nagle

__all__ = ["QUEUE_NAME", "LineageListener"]

log = logging.getLogger(__name__)

QUEUE_NAME = "blaze"
DETACH_TIMEOUT_S = 10.0
EVENT_BUFFER_CLASS = "org.blazespark.EventBuffer"
BUFFER_CAPACITY = 10_000  # lines held in the JVM at most (Spark's own queue default size)
BATCH_LINES = 2_000  # lines per py4j call at most
LINGER_MS = 10  # how long a batch may grow after its first line (a sync cuts it short)
DRAIN_WAIT_MS = 500  # one drain call's wait for a first line (bounds detach's join)

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


def _event_buffer_class(sc: Any) -> Any:
    """The JVM's EventBuffer class, or None when blaze-spark's jar is not loaded."""
    from py4j.java_gateway import JavaClass

    found = sc._jvm
    for part in EVENT_BUFFER_CLASS.split("."):
        found = getattr(found, part)
    # py4j resolves an unknown class as a package
    return found if isinstance(found, JavaClass) else None


class LineageListener:
    """A live :class:`LineageDag` of one SparkContext; create it with :meth:`attach`."""

    fallbacks: ClassVar[int] = 0  # attaches that found no EventBuffer and went per event
    _fallbacks_lock = threading.Lock()

    def __init__(self) -> None:
        raise TypeError("use LineageListener.attach(sc)")

    @classmethod
    def attach(
        cls,
        sc: Any,
        *,
        record_to: str | Path | None = None,
        batched: bool = True,
        dag: LineageDag | None = None,
        cached_stages_only: bool = False,
    ) -> LineageListener:
        """Register a listener on ``sc``'s bus (own queue ``"blaze"``) and return it.

        ``record_to``: also append every received event's JSON line to this file.
        ``batched=False``: take the per-event path even when the jar is loaded (to compare).
        ``dag``: the graph to keep up to date (the manager's engine reads the same one);
        default a new one.
        ``cached_stages_only``: (batched delivery) task events come only from stages with a
        persisted RDD, plus task ends that wrote shuffle data or failed — what a cache
        manager reads; a plain job's thousands of task events are not converted nor sent.
        """
        sc = _java_context(sc)
        self = object.__new__(cls)
        self._sc = sc
        self.dag = LineageDag() if dag is None else dag
        self.errors = Counter()
        self.last_error = None
        self.events_received = 0
        self._subscribers: list[Callable[[LineageEvent], None]] = []
        # called once per drained batch with its records in order: one hand-over (and one
        # wake-up of the subscriber's thread) per batch instead of one per record
        self._batch_subscribers: list[Callable[[tuple[LineageEvent, ...]], None]] = []
        self._lock = threading.Lock()
        self._detached = False
        self._record = None
        # batched delivery: lines handled so far, and whether the drain thread has ended
        self._progress = threading.Condition()
        self._handled = 0
        self.batches = 0  # py4j calls that brought events (batched delivery)
        self._drain_ended = False
        self._buffer = None
        self._skipped = 0  # task events the JVM buffer did not send (cached_stages_only)
        self._drainer = None
        self._adapter = None
        if record_to is not None:  # closed by detach()
            self._record = open(record_to, "a", encoding="utf-8")  # noqa: SIM115

        buffer_class = _event_buffer_class(sc) if batched else None
        if buffer_class is not None:
            self.delivery = "batched"
            self._buffer = buffer_class(BUFFER_CAPACITY, BATCH_LINES, LINGER_MS, cached_stages_only)
            self._proxy = self._buffer
            self._drainer = threading.Thread(
                target=self._drain, name="blaze-lineage-drain", daemon=True
            )
            self._drainer.start()
        else:
            if batched:
                with cls._fallbacks_lock:
                    cls.fallbacks += 1
                    first = cls.fallbacks == 1
                (log.warning if first else log.debug)(
                    "blaze lineage listener: %s is not loaded (blaze-spark's jar is not on the "
                    "driver's class path); Spark events cross py4j one by one",
                    EVENT_BUFFER_CLASS,
                )
            self.delivery = "per_event"
            self._proxy = self._per_event_proxy(sc)
        self._bus = sc._jsc.sc().listenerBus()
        self._bus.addToQueue(self._proxy, QUEUE_NAME)
        atexit.register(self.detach)
        return self

    def _per_event_proxy(self, sc: Any) -> Any:
        """A py4j callback proxy of :class:`_JavaListener`, materialised once."""
        from pyspark.java_gateway import ensure_callback_server_started

        ensure_callback_server_started(sc._gateway)
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
        holder = jvm.java.util.ArrayList()
        holder.add(self._adapter)
        return holder.get(0)  # the one Java proxy used to add and to remove

    # ------------------------------------------------------------------ events

    def _drain(self) -> None:
        """The drain thread: take the buffer's lines in batches and handle them in order."""
        _thread_state.in_callback = True  # waiting for the bus here would wait for itself
        try:
            with contextlib.suppress(Exception):  # the JVM gone already: the loop ends below
                self._buffer.buffered()  # this thread's py4j connection opens here, so
                disable_nagle(self._sc)  # its batches (and every open one's replies) skip 40 ms
            while True:
                try:
                    text = self._buffer.drain(DRAIN_WAIT_MS)
                except Exception as exc:  # the JVM or its connection went away
                    if not self._detached:
                        self._count_error("drain", exc)
                    return
                if text is None:  # closed
                    return
                if not text:
                    continue
                lines = text.split("\n")
                batch: list[LineageEvent] = []
                for line in lines:
                    try:
                        batch.extend(self._apply_line(line))
                    except Exception as exc:
                        self._count_error("convert", exc)
                self._hand_over(tuple(batch))
                with self._progress:
                    self._handled += len(lines)
                    self.batches += 1
                    self._progress.notify_all()
        finally:
            with self._progress:
                self._drain_ended = True
                self._progress.notify_all()

    def _on_json(self, text: str) -> None:
        """One event's line (per-event delivery: each is its own batch)."""
        self._hand_over(tuple(self._apply_line(text)))

    def _apply_line(self, text: str) -> list[LineageEvent]:
        """Apply one line's records to the DAG and hand each to the per-record subscribers;
        returns them (for the batch subscribers)."""
        with self._lock:
            self.events_received += 1
        try:
            records = parse_json_line(text)
        except InputError as exc:
            self._count_error("parse", exc)
            return []
        if self._record is not None:
            with self._lock:
                self._record.write(text if text.endswith("\n") else text + "\n")
        applied = []
        for record in records:
            if isinstance(record, StageRun):
                record = self.dag.described(record)  # its RDDs came with its job's start
            self.dag.apply(record)
            applied.append(record)
            for fn in tuple(self._subscribers):
                try:
                    fn(record)
                except Exception as exc:
                    self._count_error("subscriber", exc)
        return applied

    def _hand_over(self, batch: tuple[LineageEvent, ...]) -> None:
        if not batch:
            return
        for fn in tuple(self._batch_subscribers):
            try:
                fn(batch)
            except Exception as exc:
                self._count_error("subscriber", exc)

    def _count_error(self, kind: str, exc: BaseException) -> None:
        with self._lock:
            self.errors[kind] += 1
            self.last_error = f"{kind}: {type(exc).__name__}: {exc}"
        log.debug("lineage listener %s error", kind, exc_info=exc)

    def subscribe(
        self, fn: Callable[[LineageEvent], None], *, batched: bool = False
    ) -> Callable[[], None]:
        """Call ``fn(record)`` for every record, after the DAG has applied it — or, with
        ``batched``, ``fn(records)`` once per batch the drain takes from the JVM, after the
        DAG has applied all of them (a subscriber that queues records for its own thread
        wakes that thread once per batch, not once per record).

        ``fn`` runs on the thread that delivers the events (the drain thread; py4j's callback
        threads, possibly concurrently, in per-event delivery); its exceptions are caught and
        counted in ``errors["subscriber"]``. Returns a function that unsubscribes.
        """
        if not callable(fn):
            raise TypeError(f"subscribe needs a callable, got {type(fn).__name__}")
        subscribers = self._batch_subscribers if batched else self._subscribers
        with self._lock:
            subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in subscribers:
                    subscribers.remove(fn)

        return unsubscribe

    # ------------------------------------------------------------------ sync and stop

    @property
    def attached(self) -> bool:
        return not self._detached

    def task_events_skipped(self) -> int:
        """Task events the JVM did not send (``cached_stages_only``; as of the detach once
        detached)."""
        if self._buffer is not None and not self._detached:
            try:
                self._skipped = int(self._buffer.skipped())
            except Exception as exc:  # the JVM went away
                self._count_error("skipped", exc)
        return self._skipped

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
        if self._buffer is not None:
            self._wait_for_drain(timeout_s)
        if self._record is not None:
            with self._lock:
                self._record.flush()

    def _wait_for_drain(self, timeout_s: float) -> None:
        """Wait until the drain thread has handled every line the buffer ever took."""
        import time

        try:
            target, dropped = (int(n) for n in str(self._buffer.flushCounts()).split())
        except Exception as exc:  # the JVM went away: nothing more will come
            self._count_error("drain", exc)
            return
        with self._lock:
            if dropped > self.errors["buffer_full"]:
                self.errors["buffer_full"] = dropped
                self.last_error = f"buffer_full: {dropped} events dropped in the JVM"
        deadline = time.monotonic() + timeout_s
        with self._progress:
            while self._handled < target and not self._drain_ended and not self._detached:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"the lineage listener had {target - self._handled} events of "
                        f"Spark's still to handle after {timeout_s} s"
                    )
                self._progress.wait(left)

    def detach(self) -> None:
        """Unregister from the bus. Idempotent, bounded in time, never raises."""
        with self._lock:
            if self._detached:
                return
            self._detached = True
        if self._adapter is not None:
            self._adapter.closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.detach)
        if self._buffer is not None:
            self._close_buffer()
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

    def _close_buffer(self) -> None:
        """Stop the JVM buffer (it wakes the drain thread) and let the drain thread end."""
        try:
            self._skipped = int(self._buffer.skipped())
            failed = str(self._buffer.conversionErrors())
            if failed:
                self._count_error("convert", RuntimeError(f"in the JVM: {failed}"))
            self._buffer.close()
        except Exception as exc:  # the JVM may be gone already
            log.debug("lineage event buffer close failed: %s", exc)
        with self._progress:
            self._progress.notify_all()  # a waiter in wait_until_empty returns
        if self._drainer is not None and self._drainer is not threading.current_thread():
            self._drainer.join(DETACH_TIMEOUT_S)

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
        return (
            f"LineageListener({state}, {self.delivery}, {self.dag!r}, errors={dict(self.errors)})"
        )
