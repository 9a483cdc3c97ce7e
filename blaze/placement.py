"""Where a new generation of a dataset is put: what Blaze decided for its site's last one.

Why: Spark puts a partition in memory before any decision of the driver's engine can reach the
executor. When partitions are a large share of the storage pool, each put of a per-iteration
dataset that the engine then sends to disk has already made Spark's LRU evict a partition the
engine keeps in memory (a reused, costly one), and each later read of a disk copy is cached in
memory again by Spark itself, evicting once more: the spill orders find their blocks gone and
the books disagree with Spark. Measured on the suite's kmeans.common at scale 0.5 (storage
18 MiB, partitions 7.5 MiB): 145 puts refused, 157 Spark evictions, 115 of 134 spill orders
late.

A loop makes the same dataset at the same site every iteration, so the engine's verdict on the
last generation is the prediction for the next: when the partitions of the site's latest
generation that the engine placed went to disk (most of them: one partition that fitted
between spills does not flip the site), the next generation is persisted
``DISK_ONLY`` — its partitions go straight to disk at put time, on the executor that computes
them, and Spark neither evicts for them nor caches their disk reads in memory. Each such
partition is still checked when it lands: one that would fit in the memory budget counts as a
memory verdict, so the generation after it goes back to memory and disk when room returns
for most of them.

A persisted dataset that no later job is predicted to read (the profile's or its site's read
count says only the job about to make it does) is given the level MEMORY_ONLY as that job
starts, before it has a block: when Spark's LRU evicts one of its partitions to make room for
a put — often the next put of the very task that stored it, before any order of the engine
can arrive — it is dropped, not written to disk for reads that will not come (a dead write).
The engine knows it cannot spill them (W is infinite for these RDDs).

Only Blaze's own rule uses this (the baselines keep their papers' put-then-evict behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass

from costmodel.types import Location

__all__ = ["SitePlacement"]


@dataclass
class _Generation:
    """The verdicts on one generation (RDD) of a site."""

    rdd_id: int
    memory: int = 0
    disk: int = 0


class SitePlacement:
    """Per site, the engine's verdicts on its latest generation; which RDDs went to disk whole."""

    def __init__(self) -> None:
        self._latest: dict[str, _Generation] = {}
        self.on_disk: set[int] = set()  # rdd ids persisted DISK_ONLY by this rule
        self.memory_only: set[int] = set()  # and those persisted MEMORY_ONLY

    def record(self, site: str, rdd_id: int, where: Location) -> None:
        """One placement verdict (memory, disk or none) on a partition of ``rdd_id``."""
        latest = self._latest.get(site)
        if latest is None or rdd_id > latest.rdd_id:
            latest = self._latest[site] = _Generation(rdd_id)
        elif rdd_id < latest.rdd_id:
            return  # an older generation's late verdict says nothing about the next one
        if where == Location.MEMORY:
            latest.memory += 1
        elif where == Location.DISK:
            latest.disk += 1

    def straight_to_disk(self, site: str) -> bool:
        """Whether the next generation of ``site`` goes to disk at put time: most of the
        last one's partitions did (one that fitted between two spills does not flip it)."""
        latest = self._latest.get(site)
        return latest is not None and latest.disk > latest.memory

    def placed(self, rdd_id: int, *, on_disk: bool) -> None:
        (self.on_disk if on_disk else self.memory_only).add(rdd_id)

    def forget(self, rdd_id: int) -> None:
        self.on_disk.discard(rdd_id)
        self.memory_only.discard(rdd_id)
