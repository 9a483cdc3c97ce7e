"""The cache calls of every job, and what each benchmark policy makes of them.

Each job is written twice, as an expert tunes it and as it is commonly written; both make
plain ``cache()`` / ``unpersist()`` calls, except that they go through a :class:`Cacher`, so
one program runs unchanged under every policy of :data:`POLICIES` — the benchmark policies of
:mod:`costmodel.policy_table`, every list here derived from its rows:

* ``none``: every call is a no-op (every reuse recomputes);
* ``spark``: the calls as written on stock Spark — ``RDD.cache()`` is ``MEMORY_ONLY``,
  ``DataFrame.cache()`` Spark's ``MEMORY_AND_DISK`` default; Spark's LRU evicts;
* ``mem_only`` / ``mem_disk`` / ``unlimited``: every cache call at the table's level
  (``unlimited``: ``MEMORY_ONLY`` with storage memory to spare, the lower bound);
* ``mem_disk_au``: every cache call at ``MEMORY_AND_DISK`` with Spark's LRU, plus the
  manager's autoUnpersist alone — what autoUnpersist gives without the cost model;
* ``lrc``, ``mrd``: the calls as written with the manager attached by the session flag
  alone (``spark.blaze.enabled=true``), placing the program's own cached datasets by the
  papers' rules — no autoCache, no autoUnpersist;
* ``blaze``: the calls as written, taken as hints, with autoCache and autoUnpersist;
* ``blaze_auto``: every cache and unpersist call of the program is a no-op, and the manager's
  autoCache/autoUnpersist decide everything.

For RDDs the hook also counts, with two accumulators, how often a cached partition was
*computed* and how often it was *read*: misses = computes, hits = reads - computes, and
recomputed partitions = computes - distinct partitions. The counters run in the same Python
pipeline as the user's code, so they measure every policy the same way. Under ``blaze_auto``
the program caches nothing itself, so there is nothing to count: the RDD is returned as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blaze_errors import InputError
from costmodel.policy_table import BENCH_POLICIES, POLICY_TABLE

__all__ = [
    "AUTO_POLICIES",
    "MANAGER_POLICIES",
    "PLAIN_POLICIES",
    "POLICIES",
    "SPARK_POLICIES",
    "CacheStats",
    "Cacher",
    "forced_level",
    "manager_conf",
]

POLICIES = BENCH_POLICIES
_INFO = {info.name: info for info in POLICY_TABLE if info.bench}
# stock Spark in squeezed memory, no manager (the ``unlimited`` ideal aside)
SPARK_POLICIES = tuple(p for p in POLICIES if _INFO[p].bench == "plain" and _INFO[p].squeezed)
# Spark alone runs these; the manager, attached by conf, runs the rest
PLAIN_POLICIES = tuple(p for p in POLICIES if _INFO[p].bench == "plain")
MANAGER_POLICIES = tuple(p for p in POLICIES if _INFO[p].bench == "manager")
# the program's cache calls are ignored: nothing is persisted, or the manager decides alone
AUTO_POLICIES = tuple(p for p in POLICIES if _INFO[p].ignores_cache_calls or not _INFO[p].caches)


def manager_conf(policy: str) -> dict[str, str]:
    """The ``spark.blaze.*`` confs a run under ``policy`` starts its session with: the flag
    and the policy name (what the policy does — its autoCache, autoUnpersist, the calls it
    takes — comes from its row of the policy table)."""
    if policy not in MANAGER_POLICIES:
        return {}
    return {"spark.blaze.enabled": "true", "spark.blaze.policy": policy}


@dataclass
class CacheStats:
    """Totals over every dataset the job cached through the hook."""

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


def forced_level(policy: str):
    """The storage level every cache call gets, or None when the call stays as written."""
    info = _INFO.get(policy)
    if info is None or info.bench != "plain" or not info.plain_level:
        return None
    from pyspark import StorageLevel

    return getattr(StorageLevel, info.plain_level)


def _counting(acc, kind: str):
    """A mapPartitions function adding one to ``acc`` each time a partition is iterated."""

    def count(iterator):
        acc.add(1)
        yield from iterator

    count.__name__ = f"count_{kind}"
    return count


class Cacher:
    """Applies one policy to every cache/unpersist call of a job."""

    def __init__(self, spark, policy: str):
        if policy not in POLICIES:
            raise InputError(f"unknown policy {policy!r} (known: {', '.join(POLICIES)})")
        self.spark = spark
        self.policy = policy
        self.ignores_calls = policy in AUTO_POLICIES
        self._rdds: dict[int, Any] = {}
        self._counts: list[tuple[str, Any, Any, int]] = []

    def _persist(self, obj) -> None:
        level = forced_level(self.policy)
        if level is None:
            obj.cache()
        else:
            obj.persist(level)

    def rdd(self, rdd, name: str):
        """``rdd.cache()`` as the program writes it; use the returned RDD in place of ``rdd``."""
        if self.policy in MANAGER_POLICIES and self.ignores_calls:  # the manager decides all
            return rdd
        sc = rdd.context
        computes, reads = sc.accumulator(0), sc.accumulator(0)
        counted = rdd.mapPartitions(_counting(computes, "compute"), preservesPartitioning=True)
        if not self.ignores_calls:
            self._persist(counted)
        handle = counted.mapPartitions(_counting(reads, "read"), preservesPartitioning=True)
        self._rdds[id(handle)] = counted
        self._counts.append((name, computes, reads, counted.getNumPartitions()))
        return handle

    def df(self, df, name: str):
        """``df.cache()`` as the program writes it (no partition counters: JVM-side data)."""
        if not self.ignores_calls:
            self._persist(df)
        return df

    def unpersist(self, handle) -> None:
        """Unpersist what :meth:`rdd` or :meth:`df` returned (a no-op where calls are ignored)."""
        if self.ignores_calls:
            return
        counted = self._rdds.get(id(handle))
        (counted if counted is not None else handle).unpersist()

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
