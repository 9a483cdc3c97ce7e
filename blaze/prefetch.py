"""MRD's prefetch: when memory frees, bring back the spilled partitions needed soonest.

Why (Perez et al., ICPP 2018): MRD evicts the block whose next reference is the most stages
away, and when memory becomes free it reads back from disk the spilled blocks with the
*smallest* reference distance, so the stage that needs them finds them in memory and the
disk read overlaps earlier work instead of stalling the task. Memory frees when a stage
completes (what it stored for itself is dropped by the next evictions first, and its
readers move on), and when datasets are unpersisted: enforcement and persistence call
:meth:`Prefetcher.run` at those two moments (the manager makes a prefetcher only for a policy
that prefetches).

A prefetch is a real disk read, made before the reference: Spark's block manager reads the
block and caches its bytes in memory (local mode; a cluster has no remote command for it),
and the master is told, so the listener sees the block in memory again. Spills are orders the
executor half of the JVM plugin carries out (:mod:`blaze.orders`): the queued ones are
settled before a read back. Only what fits in
the free budget is read back; nothing is evicted for a prefetch. Each one is recorded in the
decision log (``prefetch``, with its distance and bytes) and counted as disk bytes read.

Blaze brings spilled partitions back the lazy way (``reads_now=False``): a partition the engine
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

__all__ = ["Prefetcher"]


class Prefetcher:
    """Brings back spilled managed partitions, nearest next reference first, while they fit:
    read now (MRD) or allowed back for their next read (Blaze)."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        engine: Engine,
        bridge: JvmBridge,
        registry: Registry,
        budget: Callable[[], int],
        explain: DecisionLog,
        settle: Callable[[], bool],
        reads_now: bool = True,
        orders: ExecutorOrders | None = None,
    ) -> None:
        self._ledger, self._engine, self._bridge = ledger, engine, bridge
        self._registry = registry
        self._budget = budget  # per executor, now (the put room moves it)
        self._explain = explain
        self._settle = settle
        self._reads_now = reads_now
        self._orders = orders
        self._allowed: dict[tuple, int] = {}  # (rdd, split, executor) -> bytes it will take

    def candidates(self, executor: str, managed: set[int]) -> list[tuple[int, tuple, int]]:
        """``(distance, key, disk bytes)`` of the executor's spilled managed partitions that
        something will read again, nearest first."""
        model = self._engine.model
        found = []
        for record in self._ledger.on_disk_only(executor):
            if record.rdd_id not in managed:
                continue
            distance = model.next_reference(record.key)
            if distance is not None:
                found.append((distance, record.key, record.disk_size))
        found.sort()
        return found

    def run(self, why: str) -> int:
        """Prefetch into the free budget of every executor; returns the bytes read back (or,
        allowing, the bytes allowed back)."""
        if not self._reads_now:
            return self._allow(why)
        if not self._bridge.is_local:
            return 0
        managed = self._registry.managed_ids()
        total, settled = 0, False
        for executor in sorted(self._ledger.executors()):
            free = self._budget() - self._ledger.memory_used(executor)
            candidates = self.candidates(executor, managed)
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
                self._explain.record(
                    "prefetch",
                    rdd=key[0],
                    split=key[1],
                    executor=executor,
                    rule=f"nearest spilled partition ({why})",
                    next_reference=distance,
                    disk_bytes_read=read,
                )
        return total

    def _allow(self, why: str) -> int:
        """Blaze's lazy read back: ``allow`` orders for the spilled partitions read again
        soonest that fit in the free budget, less what earlier allowances still hold."""
        managed = self._registry.managed_ids()
        self._forget_settled_allowances()
        total = 0
        for executor in sorted(self._ledger.executors()):
            held = sum(size for slot, size in self._allowed.items() if slot[2] == executor)
            free = self._budget() - self._ledger.memory_used(executor) - held
            for distance, key, size in self.candidates(executor, managed):
                slot = (key[0], key[1], executor)
                if slot in self._allowed or size > free:
                    continue
                if not self._orders.allow(key[0], key[1], executor):
                    return total  # no plugin half: Spark's own caching applies there
                self._allowed[slot] = size
                free -= size
                total += size
                self._ledger.counters.decisions["allow_back"] += 1
                self._explain.record(
                    "allow",
                    rdd=key[0],
                    split=key[1],
                    executor=executor,
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
            record = self._ledger.blocks.get(slot)
            if (
                record is None
                or record.memory_size
                or model.next_reference((slot[0], slot[1])) is None
            ):
                del self._allowed[slot]
