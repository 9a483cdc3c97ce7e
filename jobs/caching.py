"""The persist hook every job calls: the benchmark policy picks the storage level.

The jobs are written as a careful PySpark user writes them — ``persist`` on the datasets they
reuse, ``unpersist`` where such a user would — except that each call goes through a
:class:`Cacher`, so one program runs unchanged under every policy of
:data:`costmodel.policy_table.BENCH_POLICIES`. A plain policy persists at its Spark storage level
(``none``: nothing, every reuse recomputes; ``mem_only`` and ``unlimited``: ``MEMORY_ONLY``;
``mem_disk``: ``MEMORY_AND_DISK``); a manager policy persists at ``blaze.BLAZE`` so the attached
cache manager decides, and one that ignores the program's cache calls (``blaze_auto``) persists
nothing and leaves every decision to the manager.

For RDDs the hook also counts, with two accumulators, how often a cached partition was
*computed* and how often it was *read*: misses = computes, hits = reads - computes, and
recomputed partitions = computes - distinct partitions. The counters run in the same Python
pipeline as the user's code, so they measure every policy the same way (the manager's own
report is recorded beside them, not instead of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blaze_errors import InputError
from costmodel.policy_table import BENCH_POLICIES, POLICY_TABLE, policy_info

__all__ = ["MANAGER_POLICIES", "PLAIN_POLICIES", "POLICIES", "CacheStats", "Cacher"]

POLICIES = BENCH_POLICIES
PLAIN_POLICIES = tuple(p.name for p in POLICY_TABLE if p.bench == "plain")
MANAGER_POLICIES = tuple(p.name for p in POLICY_TABLE if p.bench == "manager")


@dataclass
class CacheStats:
    """Totals over every dataset the job persisted through the hook."""

    datasets: int = 0
    partitions: int = 0  # distinct cached RDD partitions (sum over datasets)
    computes: int = 0
    reads: int = 0
    recomputed_partitions: int = 0  # sum over datasets of max(0, computes - partitions)
    per_dataset: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float | None:
        if self.reads <= 0:
            return None
        return max(0, self.reads - self.computes) / self.reads


def _level_for(policy: str):
    """The level the job's persist calls use under ``policy``; None: they persist nothing."""
    info = policy_info(policy, POLICIES)
    if info.bench == "plain":
        from pyspark import StorageLevel

        return None if info.plain_level is None else getattr(StorageLevel, info.plain_level)
    if info.ignores_cache_calls:
        return None
    from blaze.levels import BLAZE

    return BLAZE


def _counting(acc, kind: str):
    """A mapPartitions function adding one to ``acc`` each time a partition is iterated."""

    def count(iterator):
        acc.add(1)
        yield from iterator

    count.__name__ = f"count_{kind}"
    return count


class Cacher:
    """Applies one policy to every persist/unpersist call of a job."""

    def __init__(self, spark, policy: str):
        if policy not in POLICIES:
            raise InputError(f"unknown policy {policy!r} (known: {', '.join(POLICIES)})")
        self.spark = spark
        self.policy = policy
        self.level = _level_for(policy)
        self._rdds: dict[int, tuple[str, Any, Any, Any, int]] = {}
        self._counts: list[tuple[str, Any, Any, int]] = []

    def rdd(self, rdd, name: str):
        """Persist ``rdd`` under the policy; use the returned RDD in place of ``rdd``."""
        sc = rdd.context
        computes, reads = sc.accumulator(0), sc.accumulator(0)
        counted = rdd.mapPartitions(_counting(computes, "compute"), preservesPartitioning=True)
        if self.level is not None:
            counted.persist(self.level)
        handle = counted.mapPartitions(_counting(reads, "read"), preservesPartitioning=True)
        partitions = counted.getNumPartitions()
        self._rdds[id(handle)] = (name, counted, computes, reads, partitions)
        self._counts.append((name, computes, reads, partitions))
        return handle

    def df(self, df, name: str):
        """Persist a DataFrame under the policy (no partition counters: JVM-side data)."""
        if self.level is not None:
            df = df.persist(self.level)
        return df

    def unpersist(self, handle) -> None:
        """Unpersist what :meth:`rdd` or :meth:`df` returned (a no-op under ``none``)."""
        if self.level is None:
            return
        entry = self._rdds.get(id(handle))
        if entry is not None:
            entry[1].unpersist()
        else:
            handle.unpersist()

    def stats(self) -> CacheStats:
        stats = CacheStats()
        for name, computes, reads, partitions in self._counts:
            stats.datasets += 1
            stats.partitions += partitions
            stats.computes += computes.value
            stats.reads += reads.value
            stats.recomputed_partitions += max(0, computes.value - partitions)
            entry = stats.per_dataset.setdefault(name, {"computes": 0, "reads": 0, "partitions": 0})
            entry["computes"] += computes.value
            entry["reads"] += reads.value
            entry["partitions"] += partitions
        return stats
