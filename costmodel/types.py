"""Plain inputs and outputs of the cost model: no Spark, no lineage types, only values.

Tests build DAGs by hand from these records; :func:`costmodel.from_lineage` builds the same
records from a live or replayed :class:`lineage.dag.LineageDag`. Times are milliseconds,
sizes bytes. A partition is named by its key ``(rdd_id, split_index)`` everywhere.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

__all__ = [
    "MIB",
    "Location",
    "PartitionCost",
    "PartitionKey",
    "PartitionMetrics",
    "RddSpec",
]

MIB = float(1 << 20)

PartitionKey = tuple[int, int]
"""``(rdd_id, split_index)`` — the same numbers as Spark's block id ``rdd_<id>_<split>``."""


class Location(str, enum.Enum):  # noqa: UP042 -- str() and f-strings keep "Location.X"
    """Where a cached partition lives (or should live): the cost model's three states."""

    MEMORY = "MEMORY"
    DISK = "DISK"
    NONE = "NONE"

    def __str__(self) -> str:  # "MEMORY", not "Location.MEMORY", in reports and JSON
        return self.value


@dataclass(frozen=True)
class RddSpec:
    """One RDD of the (profiled or live) lineage DAG.

    ``stages`` are the stages whose tasks compute or read this RDD (Spark lists an RDD in
    every stage whose pipeline passes through it). ``job_id`` is the job that first computed
    it; the cross-job reuse rules compare it with the current job. ``shuffled`` marks the
    output of a shuffle (``ShuffledRDD`` & co.): recomputation stops there because the
    shuffle files are still on disk, and reference search does not cross it. ``cached`` marks
    an RDD the program or autoCache persists (its partitions are stored once computed, so
    reference search stops at it too).
    """

    rdd_id: int
    parents: tuple[int, ...] = ()
    num_partitions: int = 1
    stages: frozenset[int] = frozenset()
    job_id: int | None = None
    call_site: str = ""
    shuffled: bool = False
    cached: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        if self.rdd_id < 0:
            raise ValueError(f"rdd_id must be >= 0, got {self.rdd_id}")
        if self.num_partitions < 0:
            raise ValueError(f"rdd {self.rdd_id}: num_partitions must be >= 0")
        if self.rdd_id in self.parents:
            raise ValueError(f"rdd {self.rdd_id} lists itself as a parent")
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        object.__setattr__(self, "stages", frozenset(int(s) for s in self.stages))


@dataclass(frozen=True)
class PartitionMetrics:
    """What was measured (or predicted) for one partition.

    ``compute_ms`` is the time to produce this partition from its parents' partitions (the
    authors' "parent -> child elapsed time"); for a shuffled RDD it is the time to fetch and
    build it from shuffle files. ``None`` means unknown: the model falls back to the RDD's
    mean over known partitions, then to the predictor, then to 0.
    """

    size_bytes: float | None = None
    compute_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("size_bytes", "compute_ms"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class PartitionCost:
    """The Blaze cost terms of one partition, all in milliseconds.

    ``future_refs`` F (of which ``later_refs`` are reads predicted for jobs not submitted
    yet; the rest are pending stages of submitted jobs), ``recompute_ms`` R, ``write_ms`` W,
    ``read_ms`` Rd, ``memory_hit_ms`` what one read of the stored block costs from memory
    (its deserialization; ``disk_hit_ms`` adds Rd).

    Every way of serving the F future reads pays the hit once per read — a recomputed
    PySpark partition reaches its consumer pickled, as a stored one does — so the penalties
    of not keeping the partition in memory are ``comp_cost = (on_disk ? Rd : R) x F`` and
    ``disk_cost = (on_disk ? 0 : W) + Rd x F``, and ``cost = min(comp_cost, disk_cost)``.
    """

    future_refs: float
    recompute_ms: float
    write_ms: float
    read_ms: float
    on_disk: bool = False
    size_bytes: float = 0.0
    later_refs: float = 0.0
    memory_hit_ms: float = 0.0
    # derived once at construction: policies read them thousands of times per decision
    comp_cost: float = field(init=False, repr=False, compare=False)
    disk_cost: float = field(init=False, repr=False, compare=False)
    cost: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        comp = (self.read_ms if self.on_disk else self.recompute_ms) * self.future_refs
        disk = (0.0 if self.on_disk else self.write_ms) + self.read_ms * self.future_refs
        object.__setattr__(self, "comp_cost", comp)
        object.__setattr__(self, "disk_cost", disk)
        object.__setattr__(self, "cost", min(comp, disk))

    @property
    def has_future(self) -> bool:
        return self.future_refs > 0

    @property
    def pending_refs(self) -> float:
        """The part of F the submitted jobs' DAG shows."""
        return self.future_refs - self.later_refs

    @property
    def disk_hit_ms(self) -> float:
        return self.read_ms + self.memory_hit_ms

    def fallback(self) -> Location:
        """Where the partition goes when it is not (or no longer) in memory.

        Nowhere if nothing will read it again; otherwise to disk unless recomputing is
        strictly cheaper than writing and reading it back (``comp_cost < disk_cost``).
        """
        if not self.future_refs > 0 or self.comp_cost < self.disk_cost:
            return Location.NONE
        return Location.DISK

    def adjusted(self, extra_refs: float = 0.0, extra_recompute_ms: float = 0.0) -> PartitionCost:
        """Cost propagation: a dropped child adds references, a dropped parent adds work."""
        return PartitionCost(
            self.future_refs + extra_refs,
            self.recompute_ms + extra_recompute_ms,
            self.write_ms,
            self.read_ms,
            self.on_disk,
            self.size_bytes,
            self.later_refs,
            self.memory_hit_ms,
        )

    def as_dict(self) -> dict[str, float | bool]:
        return {
            "F": self.future_refs,
            "F_pending": self.pending_refs,
            "F_later": self.later_refs,
            "R": self.recompute_ms,
            "W": self.write_ms,
            "Rd": self.read_ms,
            "hit_memory": self.memory_hit_ms,
            "hit_disk": self.disk_hit_ms,
            "on_disk": self.on_disk,
            "comp_cost": self.comp_cost,
            "disk_cost": self.disk_cost,
            "cost": self.cost,
        }
