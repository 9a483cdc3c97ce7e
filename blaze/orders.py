"""The driver-side half of the JVM plugin: the engine's spill and drop orders, per executor.

Why orders and not py4j commands: Spark has no remote "move this block to disk", and a py4j
command can only reach the driver's own BlockManager. The JVM plugin's executor halves
(``org.blazespark.BlazeExecutorPlugin``) ask the driver half for their orders when a task
starts (on the executor's own thread, so the orders are carried out while the task computes,
before it stores its block; the task pays only the hand-off) and every 50 ms, and carry them
out with Spark's own ``dropFromMemory`` (spill: the memory copy goes, a disk copy is written
or kept) or ``removeBlock`` (drop), or give a block spilled for good its level back (allow).
After tasks end they also tell Spark's master which blocks Spark's read path cached back in
memory, which Spark itself reports to nobody (``org.blazespark.Promotions``). One path in
local mode (both halves in the driver JVM, executor ``"driver"``) and on a cluster. The engine stays the only brain:
this part only queues its choices and reads back what the executors did.

Without the plugin (a session started without ``spark.plugins``), or for an executor whose
half could not register (a jar built for another Spark, a driver it cannot reach), nothing
is ordered: Spark's own caching applies there, each such decision is counted
(``decisions["not_carried_out"]``) and the driver log says why, once.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import Counter

from blaze._plugin_jvm import PluginMailbox

__all__ = ["NO_PLUGIN_HINT", "ExecutorOrders"]

log = logging.getLogger("blaze")

NO_PLUGIN_HINT = (
    "blaze: this Spark session was started without blaze-spark's JVM plugin, so the manager "
    "only observes and Spark's own caching decides: start it with blaze.session(...) or with "
    "any spark.blaze.* conf set (spark-submit --conf spark.blaze.enabled=true)"
)
TIMING_SAMPLES = 10_000
IN_FLIGHT_EXPIRY_S = 30.0  # an order not reported by then went to a stuck executor
SETTLE_POLL_S = 0.005
COLLECT_EVERY_S = 1.0  # how often a job's end reads the orders' outcomes
DROP, SPILL, SPILL_FOR_GOOD, ALLOW = 0, 1, 2, 3  # actions as org.blazespark.Order numbers them
QUIET_OUTCOMES = ("spilled", "dropped", "allowed", "not_held")  # as the book expects


class ExecutorOrders:
    """Queues spill/drop orders for executors and counts what became of them.

    The one record of which orders are still on their way is ``_in_flight`` here: the
    resync keeps those blocks as the book has them, and :meth:`settle` waits for it to
    empty. The JVM half only says which executors are still fetching (a lost one never
    reports). Thread-safe: the worker queues and collects, a user thread may settle.
    """

    def __init__(self, mailbox: PluginMailbox) -> None:
        self._mailbox = mailbox
        self.available = mailbox.active
        self.outcomes: Counter = Counter()  # "spill_spilled", "drop_dropped", "spill_locked"...
        self.late_evictions = 0  # a spill found the block already gone from memory
        self.surprises = 0  # orders that did not leave the block as the book has it
        self._warned: set[str] = set()
        self._registered: set[str] = set()  # executors whose plugin half registered
        self._round_trip_us: list[int] = []
        self._task_start_us: list[int] = []
        # (rdd, split, executor) -> when each order not yet reported done was queued
        self._in_flight: dict[tuple[int, int, str], list[float]] = {}
        self._unsent: list[tuple[str, int, int, int]] = []  # orders for the next flush
        self._last_collect = float("-inf")
        self._lock = threading.Lock()
        if not self.available:
            log.warning(NO_PLUGIN_HINT)

    def spill(self, rdd_id: int, split: int, executor: str, *, for_good: bool = False) -> bool:
        """Order the memory copy to disk; False when nobody there can carry it out.

        ``for_good``: the engine placed the block on disk (not a victim making room), so a
        later read of its disk copy is not cached in memory again by Spark — which would
        evict by Spark's own LRU and ask the engine again at every read."""
        return self._order(rdd_id, split, executor, SPILL_FOR_GOOD if for_good else SPILL)

    def allow(self, rdd_id: int, split: int, executor: str) -> bool:
        """Let a block spilled for good be cached in memory again by its next read (the
        engine found room for it); a block Spark itself spilled needs no leave."""
        return self._order(rdd_id, split, executor, ALLOW)

    def drop(self, rdd_id: int, split: int, executor: str) -> bool:
        """Order the block removed from that executor (memory and disk copies)."""
        return self._order(rdd_id, split, executor, DROP)

    def _order(self, rdd_id: int, split: int, executor: str, action: int) -> bool:
        """Queue the order for the next :meth:`flush` (the caller has marked the book)."""
        if not self.available or not self._has_half(executor):
            return False
        with self._lock:
            self._unsent.append((executor, rdd_id, split, action))
            self._in_flight.setdefault((rdd_id, split, executor), []).append(time.monotonic())
        return True

    def _has_half(self, executor: str) -> bool:
        if executor in self._registered:
            return True
        if executor not in self._warned:
            self._registered = self._mailbox.registered()  # it registered since the last look
            if executor in self._registered:
                return True
            self._warn_no_half(executor)
        return False

    def _warn_no_half(self, executor: str) -> None:
        if executor not in self._warned:
            self._warned.add(executor)
            log.warning(
                "blaze: executor %s has no working blaze-spark plugin half (see its log); "
                "Spark's own caching applies there",
                executor,
            )

    def flush(self) -> None:
        """Hand every queued order to the driver half in one py4j call (the worker flushes
        when it has no event left to handle, so a stage's decisions travel together; an
        executor carries them out at its next task start or 50 ms poll either way)."""
        with self._lock:
            unsent, self._unsent = self._unsent, []
            if not unsent:
                return
            for executor, rdd_id, split, _ in self._mailbox.order_all(unsent):
                # its half went away since it registered: the book is corrected at the resync
                self._registered.discard(executor)
                self._done((rdd_id, split, executor))
                self.surprises += 1
        for executor in {executor for executor, *_ in unsent} - self._registered:
            self._warn_no_half(executor)

    def collect(self, *, fresh: bool = False) -> None:
        """Send what is queued and read what the executors did: at once when ``fresh`` (a
        wait for the orders to be carried out), else at most once a second — a job's end
        reads them for the resync, which a program of many short jobs would otherwise pay
        a py4j call for at every job (an order not yet read done only keeps its block as the
        book has it, which is where the order puts it)."""
        if not self.available:
            return
        self.flush()
        with self._lock:
            now = time.monotonic()
            if fresh or now - self._last_collect >= COLLECT_EVERY_S:
                self._last_collect = now
                self._collect()

    def _collect(self) -> None:
        for line in self._mailbox.outcomes():
            parts = line.split(" ", 4)
            if len(parts) >= 2 and parts[1] == "unavailable":
                self._warned.add(parts[0])
                self._registered.discard(parts[0])
                log.warning("blaze: executor %s: %s", parts[0], line.split(" ", 2)[-1])
                continue
            if len(parts) == 5:
                self._done((int(parts[1]), int(parts[2]), parts[0]))
                action, outcome = parts[3], parts[4]
                self.outcomes[f"{action}_{outcome}"] += 1
                if outcome not in QUIET_OUTCOMES:
                    self.surprises += 1
                if action == "spill" and outcome == "not_in_memory":
                    self.late_evictions += 1

    def _done(self, slot: tuple[int, int, str]) -> None:
        queued = self._in_flight.get(slot)
        if queued:
            queued.pop(0)
            if not queued:
                del self._in_flight[slot]

    def in_flight(self) -> set[tuple[int, int, str]]:
        """Blocks with an order queued or being carried out (as of the last :meth:`collect`):
        Spark's storage status still shows them as they were, the ledger already as they
        will be. Orders for an executor that stopped fetching (lost), or older than
        ``IN_FLIGHT_EXPIRY_S``, no longer count."""
        with self._lock:
            if not self._in_flight:
                return set()
            live = self._mailbox.live_executors()
            horizon = time.monotonic() - IN_FLIGHT_EXPIRY_S
            for slot, queued in list(self._in_flight.items()):
                if slot[2] not in live or queued[-1] < horizon:
                    del self._in_flight[slot]
            return set(self._in_flight)

    def settle(self, timeout_s: float = 2.0) -> bool:
        """Wait until every order in flight was carried out (before comparing with Spark)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.collect(fresh=True)
            if not self.in_flight():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(SETTLE_POLL_S)

    def _collect_timings(self) -> None:
        """The executors' task-start timings (read for the report only: the JVM side keeps
        up to its own cap of samples meanwhile, and a job end saves the round trip)."""
        if not self.available:
            return
        with self._lock:
            for _, ask_us, start_us in self._mailbox.timings():
                if len(self._round_trip_us) < TIMING_SAMPLES:
                    self._round_trip_us.append(ask_us)
                    self._task_start_us.append(start_us)

    def report(self) -> dict:
        """The plugin's part of the manager's report."""
        self._collect_timings()

        def median(values: list[int]) -> float | None:
            return statistics.median(values) / 1000.0 if values else None

        return {
            "plugin": self.available,
            "executors_without_plugin": sorted(self._warned),
            "order_outcomes": dict(sorted(self.outcomes.items())),
            "plugin_ask_ms_median": median(self._round_trip_us),
            "plugin_task_start_ms_median": median(self._task_start_us),
            "plugin_task_samples": len(self._task_start_us),
        }
