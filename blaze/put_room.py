"""Put room: the memory each executor keeps free for the partitions its running tasks store.

Why: Spark's MemoryStore evicts (its own LRU choosing among cached blocks, the manager's
included) whenever a block being stored does not fit — and a PySpark block is unrolled while
its task computes, so the room must exist when the task starts, not when the manager hears of
the block. The manager therefore keeps its blocks below Spark's storage memory by the size of
the partitions the running stages will store, one per task slot, and frees that room itself
(the engine's victims, carried out by the executors) when such a stage is submitted. A fixed
margin (``PUT_ROOM`` of the pool) is the floor, and all the room there is when nothing known
is being stored; a configured ``memoryBudget`` is taken as given.

The room of a stage is what one of its tasks stores: a partition of each managed dataset in
its pipeline (a stage often caches the records and the features parsed from them), each
predicted by the largest partition of the same site (for a site's first generation, the
largest any site stored) until a partition of it is stored, then by the largest of its own
stored — once per task slot its tasks *still to store* can fill. The measurement replaces the
prediction in both directions: a first generation predicted by another site's larger
partitions would otherwise keep its whole stage's budget too small for its own (PageRank's
``links``, 0.85 MB a partition, was refused memory as "larger than the budget" under a room
kept for the 1.7 MB partitions of the edges it was built from).

A partition a task stored has used its share: it is judged against the room its stage's
remaining tasks need, not against its own share too (else the stage's last puts, the ones
the room was kept for, are refused memory by that very room: on the cloud suite's kmeans and
lr every 15.6 MB partition went to disk against a 37.5 MB pool, where Spark's own
MEMORY_AND_DISK keeps the last two in memory).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from blaze.ledger import Ledger
from blaze.registry import Registry
from lineage.events import RddNode, StageRun

__all__ = ["PUT_ROOM", "PutRoom", "task_slots"]

PUT_ROOM = 0.125  # of Spark's storage memory: the floor of the room (default budget)


def task_slots(conf: Mapping[str, str], default_parallelism: int, executors: int) -> int:
    """Tasks one executor runs at once: ``spark.executor.cores`` / ``spark.task.cpus``, the
    cores of ``local[N]`` or ``local-cluster[W,C,M]``, else the parallelism per executor."""
    cpus = max(int(conf.get("spark.task.cpus", "1") or 1), 1)
    master = conf.get("spark.master", "")
    local = re.fullmatch(r"local-cluster\[\s*\d+\s*,\s*(\d+)\s*,.*\]|local\[(\d+)[^]]*\]", master)
    if "spark.executor.cores" in conf:
        cores = int(conf["spark.executor.cores"])
    elif local:
        cores = int(local.group(1) or local.group(2))
    elif master == "local":
        cores = 1
    else:  # local[*] and clusters without spark.executor.cores: the parallelism per executor
        cores = max(default_parallelism // max(executors, 1), 1)
    return max(cores // cpus, 1)


@dataclass
class _StoringStage:
    """A running stage that stores managed partitions: one partition of each of ``sizes``'
    datasets per task (the predicted size, raised by the stored ones)."""

    sizes: dict[int, float]
    tasks: int
    stored: Counter = field(default_factory=Counter)  # rdd -> partitions stored by its tasks

    def measured(self, rdd_id: int, size: int) -> bool:
        """A task stored a partition of ``rdd_id``: the largest stored so far replaces the
        prediction (true when that raised it)."""
        first = not self.stored[rdd_id]
        self.stored[rdd_id] += 1
        before = self.sizes[rdd_id]
        self.sizes[rdd_id] = float(size) if first else max(before, float(size))
        return self.sizes[rdd_id] > before

    def tasks_to_store(self) -> int:
        return max(self.tasks - max(self.stored.values(), default=0), 0)


class PutRoom:
    """Per-executor memory budget for managed blocks: storage memory less the put room.

    A stage stores partitions of a managed dataset not wholly cached yet; its room is the
    largest partition the dataset's site has stored so far (any site's, for a first
    generation; 0 before anything was stored).
    """

    def __init__(
        self,
        *,
        storage_memory: int,
        configured: int | None,
        slots: int,
        registry: Registry,
        ledger: Ledger,
        site_sizes: Mapping[str, Mapping[int, int]],
        on_disk: Set[int],
    ) -> None:
        self._storage_memory = storage_memory
        self._configured = configured
        self.slots = slots
        self._registry = registry
        self._ledger = ledger
        self._site_sizes = site_sizes  # site -> split -> last stored size (measurements)
        self._on_disk = on_disk  # datasets persisted DISK_ONLY (blaze.placement): no memory put
        self._floor = int(storage_memory * PUT_ROOM)
        self._stages: dict[int, _StoringStage] = {}

    def budget(self) -> int:
        """Bytes of managed blocks one executor may hold now."""
        if self._configured is not None:
            return self._configured
        return max(self._storage_memory - self.room(), 0)

    def room(self) -> int:
        """Bytes kept free for puts: what one task of the running storing stages stores (a
        partition of each managed dataset it stores), once per task slot they can fill
        (never below the floor, never above the pool)."""
        storing = [stage for stage in self._stages.values() if stage.tasks_to_store()]
        if not storing:
            return self._floor
        per_task = max(sum(stage.sizes.values()) for stage in storing)
        tasks = sum(stage.tasks_to_store() for stage in storing)
        wanted = per_task * min(self.slots, tasks)
        return int(min(max(wanted, self._floor), self._storage_memory))

    def on_stage_submitted(self, stage: StageRun) -> bool:
        """A stage was submitted; True when it stores managed partitions (room may be due)."""
        stored = {
            node.rdd_id: self._largest_partition(node.rdd_id)
            for node in stage.rdds
            if self._stores(node)
        }
        if not stored:
            return False
        self._stages[stage.stage_id] = _StoringStage(stored, stage.num_tasks)
        return True

    def on_stored(self, rdd_id: int, size: int) -> bool:
        """A task put a partition in memory: its share of the room is used (its stage has one
        task fewer to store for), and the dataset's own largest partition replaces the
        prediction — the room may rise or fall; True when it rose for the puts still to come."""
        raised = False
        for stage in self._stages.values():
            if rdd_id in stage.sizes:
                raised = stage.measured(rdd_id, size) or raised
        return raised

    def on_stage_done(self, stage_id: int) -> None:
        self._stages.pop(stage_id, None)

    def _stores(self, node: RddNode) -> bool:
        dataset = self._registry.datasets.get(node.rdd_id)
        if dataset is None or not dataset.managed or node.rdd_id in self._on_disk:
            return False
        return len(self._ledger.book.cached_partitions(node.rdd_id)) < node.num_partitions

    def _largest_partition(self, rdd_id: int) -> float:
        """The largest partition the dataset's site stored; for a site's first generation,
        the largest any site stored (the program's datasets are of one data: its first
        per-iteration result is put beside the features it is derived from)."""
        site = self._registry.site_of(rdd_id)
        sizes = self._site_sizes.get(site, {}) if site is not None else {}
        if not sizes:
            return float(
                max((max(s.values(), default=0) for s in self._site_sizes.values()), default=0)
            )
        return float(max(sizes.values()))
