"""MRD's prefetch: when memory frees, bring back the spilled partitions needed soonest.

Why (Perez et al., ICPP 2018): MRD evicts the block whose next reference is the most stages
away, and when memory becomes free it reads back from disk the spilled blocks with the
*smallest* reference distance, so the stage that needs them finds them in memory and the
disk read overlaps earlier work instead of stalling the task. Memory frees when a stage
completes (what it stored for itself is dropped by the next evictions first, and its
readers move on), and when datasets are unpersisted: enforcement and persistence call
the read-back's ``run`` at those two moments (the manager makes one only for a policy that
prefetches, :class:`Prefetcher`, or that sends partitions to disk for good, :class:`AllowBack`).

A prefetch is a real disk read, made before the reference: Spark's block manager reads the
block and caches its bytes in memory (local mode; a cluster has no remote command for it),
and the master is told, so the listener sees the block in memory again. Spills are orders the
executor half of the JVM plugin carries out (:mod:`blaze.orders`): the queued ones are
settled before a read back. Only what fits in
the free budget is read back; nothing is evicted for a prefetch. Each one is recorded in the
decision log (``prefetch``, with its distance and bytes) and counted as disk bytes read.

Blaze brings spilled partitions back the lazy way (:class:`AllowBack`): a partition the engine
placed on disk is spilled *for good* (Spark's read path does not cache its disk copy again,
which would evict by Spark's own LRU whenever it liked), so when a stage's put room frees,
nothing but the engine can let it back. The same choice — the spilled partitions read again
soonest, while they fit in the free budget — becomes ``allow`` orders: the executor gives each
its memory level back, Spark's next read of it (a disk read it makes anyway) caches it in
memory, the plugin reports that, and the engine admits it as any promotion. No extra disk read
and no order to read, so it works on a cluster as in local mode. The room promised to allowed
partitions not yet read back is held (``_allowed``) until they are, or have no future read.
"""

from __future__ import annotations

from collections.abc import Callable

from blaze._jvm import JvmBridge
from blaze.engine import Engine
from blaze.explain import DecisionLog
from blaze.ledger import Ledger
from blaze.orders import ExecutorOrders
from blaze.registry import Registry
from costmodel.policy_table import PolicyInfo

__all__ = ["AllowBack", "Prefetcher", "ReadBack", "SpilledPartitions", "read_back_for"]


class SpilledPartitions:
    """Which spilled managed partitions something will read again, nearest next reference
    first — the one choice both read-backs make."""

    def __init__(self, *, ledger: Ledger, engine: Engine, registry: Registry) -> None:
        self._ledger, self._engine, self._registry = ledger, engine, registry

    def managed(self) -> set[int]:
        return self._registry.managed_ids()

    def nearest_first(self, executor: str, managed: set[int]) -> list[tuple[int, tuple, int]]:
        """``(distance, key, disk bytes)`` of the executor's spilled partitions of ``managed``
        datasets that something will read again, nearest first."""
        model = self._engine.model
        found = []
        for record in self._ledger.book.on_disk_only(executor):
            if record.rdd_id not in managed:
                continue
            distance = model.next_reference(record.key)
            if distance is not None:
                found.append((distance, record.key, record.disk_size))
        found.sort()
        return found


def _record(explain: DecisionLog, action: str, key: tuple, executor: str, **fields) -> None:
    explain.record(action, rdd=key[0], split=key[1], executor=executor, **fields)


class Prefetcher:
    """MRD: read the spilled partitions needed soonest back now, while they fit."""

    def __init__(
        self,
        *,
        spilled: SpilledPartitions,
        ledger: Ledger,
        bridge: JvmBridge,
        budget: Callable[[], int],
        explain: DecisionLog,
        settle: Callable[[], bool],
    ) -> None:
        self._spilled, self._ledger, self._bridge = spilled, ledger, bridge
        self._budget = budget  # per executor, now (the put room moves it)
        self._explain = explain
        self._settle = settle

    def run(self, why: str) -> int:
        """Prefetch into the free budget of every executor; returns the bytes read back."""
        if not self._bridge.is_local:
            return 0
        managed = self._spilled.managed()
        total, settled = 0, False
        for executor in sorted(self._ledger.book.executors()):
            free = self._budget() - self._ledger.book.memory_used(executor)
            candidates = self._spilled.nearest_first(executor, managed)
            if candidates and not settled:
                # the spills the ledger records are orders the executor carries out a moment
                # later (blaze.orders): a block still in memory cannot be read back yet
                self._settle()
                settled = True
            for distance, key, size in candidates:
                if size > free:
                    continue
                read = self._bridge.prefetch_from_disk(*key)
                if not read:
                    continue
                self._ledger.note_prefetch((key[0], key[1], executor), read)
                free -= read
                total += read
                _record(
                    self._explain,
                    "prefetch",
                    key,
                    executor,
                    rule=f"nearest spilled partition ({why})",
                    next_reference=distance,
                    disk_bytes_read=read,
                )
        return total


class AllowBack:
    """Blaze: ``allow`` orders for the partitions it spilled for good that are read again
    soonest and fit, each read back by Spark's own next read of it."""

    def __init__(
        self,
        *,
        spilled: SpilledPartitions,
        ledger: Ledger,
        engine: Engine,
        budget: Callable[[], int],
        explain: DecisionLog,
        orders: ExecutorOrders,
    ) -> None:
        self._spilled, self._ledger, self._engine = spilled, ledger, engine
        self._budget = budget  # per executor, now (the put room moves it)
        self._explain = explain
        self._orders = orders
        self._allowed: dict[tuple, int] = {}  # (rdd, split, executor) -> bytes it will take

    def run(self, why: str) -> int:
        """Allow back into the free budget of every executor, less what earlier allowances
        still hold; returns the bytes allowed back."""
        managed = self._spilled.managed()
        self._forget_settled_allowances()
        total = 0
        for executor in sorted(self._ledger.book.executors()):
            held = sum(size for slot, size in self._allowed.items() if slot[2] == executor)
            free = self._budget() - self._ledger.book.memory_used(executor) - held
            for distance, key, size in self._spilled.nearest_first(executor, managed):
                slot = (key[0], key[1], executor)
                if slot in self._allowed or size > free:
                    continue
                if not self._orders.allow(key[0], key[1], executor):
                    return total  # no plugin half: Spark's own caching applies there
                self._allowed[slot] = size
                free -= size
                total += size
                self._ledger.counters.decisions["allow_back"] += 1
                _record(
                    self._explain,
                    "allow",
                    key,
                    executor,
                    rule=f"spilled partition read again soonest, room freed ({why})",
                    next_reference=distance,
                    size=size,
                )
        return total

    def _forget_settled_allowances(self) -> None:
        """An allowance holds its room until its partition is in memory again, is gone, or
        has no read to come."""
        model = self._engine.model
        for slot in list(self._allowed):
            record = self._ledger.book.blocks.get(slot)
            if (
                record is None
                or record.memory_size
                or model.next_reference((slot[0], slot[1])) is None
            ):
                del self._allowed[slot]


ReadBack = Prefetcher | AllowBack
"""What a policy that brings spilled partitions back has: ``run(why)`` when memory frees."""


def read_back_for(
    policy: PolicyInfo,
    *,
    registry: Registry,
    ledger: Ledger,
    engine: Engine,
    bridge: JvmBridge,
    budget: Callable[[], int],
    explain: DecisionLog,
    orders: ExecutorOrders,
) -> ReadBack | None:
    """The policy's way back from disk, if it has one (its ``prefetches`` or
    ``disk_for_good`` column)."""
    spilled = SpilledPartitions(ledger=ledger, engine=engine, registry=registry)
    if policy.prefetches:
        return Prefetcher(
            spilled=spilled,
            ledger=ledger,
            bridge=bridge,
            budget=budget,
            explain=explain,
            settle=orders.settle,
        )
    if policy.disk_for_good:
        return AllowBack(
            spilled=spilled,
            ledger=ledger,
            engine=engine,
            budget=budget,
            explain=explain,
            orders=orders,
        )
    return None
