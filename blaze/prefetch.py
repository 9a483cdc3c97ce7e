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
"""

from __future__ import annotations

from collections.abc import Callable

from blaze._jvm import JvmBridge
from blaze.engine import Engine
from blaze.explain import DecisionLog
from blaze.ledger import Ledger
from blaze.registry import Registry

__all__ = ["Prefetcher"]


class Prefetcher:
    """Reads back spilled managed partitions, nearest next reference first, while they fit."""

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
    ) -> None:
        self._ledger, self._engine, self._bridge = ledger, engine, bridge
        self._registry = registry
        self._budget = budget  # per executor, now (the put room moves it)
        self._explain = explain
        self._settle = settle

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
        """Prefetch into the free budget of every executor; returns the bytes read back."""
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
