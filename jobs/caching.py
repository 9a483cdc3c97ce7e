"""The persist hook every job calls: the benchmark policy picks the storage level.

The jobs are written as a careful PySpark user writes them — ``persist`` on the datasets they
reuse, ``unpersist`` where such a user would — except that each call goes through a
:class:`Cacher`, so one program runs unchanged under every policy:

* ``none``: nothing is persisted (every reuse recomputes);
* ``mem_only`` / ``unlimited``: ``MEMORY_ONLY`` (``unlimited`` runs with ample storage memory);
* ``mem_disk``: ``MEMORY_AND_DISK``;
* ``spark``, ``lrc``, ``mrd``, ``blaze``: ``blaze.BLAZE``, i.e. the attached cache manager decides.

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

__all__ = ["MANAGER_POLICIES", "PLAIN_POLICIES", "POLICIES", "CacheStats", "Cacher"]

PLAIN_POLICIES = ("none", "mem_only", "mem_disk", "unlimited")
MANAGER_POLICIES = ("lrc", "mrd", "blaze")
POLICIES = ("none", "mem_only", "mem_disk", "lrc", "mrd", "blaze", "unlimited")


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
    from pyspark import StorageLevel

    if policy == "none":
        return None
    if policy in ("mem_only", "unlimited"):
        return StorageLevel.MEMORY_ONLY
    if policy == "mem_disk":
        return StorageLevel.MEMORY_AND_DISK
    import blaze

    level = getattr(blaze, "BLAZE", None)
    if level is None:
        raise InputError(f"policy {policy!r} needs blaze.BLAZE, which this install lacks")
    return level


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
