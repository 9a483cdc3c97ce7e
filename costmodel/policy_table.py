"""The one table of cache policy names and what each name means to every part of the project.

A name is read in three places: ``spark.blaze.policy`` (validated by ``blaze.config`` and run
by the manager), ``blaze bench`` (the runner in ``jobs``), and the cost model's placement rules
(:func:`costmodel.policies.get_policy`). They disagree on purpose — ``mem_only`` is an LRU rule
inside the manager but plain Spark ``MEMORY_ONLY`` in a benchmark run, ``unlimited`` exists
only in benchmarks, ``lru`` only in the cost model — so each row says what the name is to each
reader, and every reader derives its lists (and the manager its behaviour: what it places,
owns, spills, autoCaches and autoUnpersists) from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from blaze_errors import ConfigError

__all__ = [
    "BENCH_POLICIES",
    "MANAGER_POLICIES",
    "POLICY_TABLE",
    "RIVAL_POLICIES",
    "RULE_NAMES",
    "STOCK_POLICIES",
    "PolicyInfo",
    "policy_info",
]


@dataclass(frozen=True)
class PolicyInfo:
    """One policy name and its meaning to the manager, the benchmark runner and the cost model."""

    name: str
    description: str
    # the cost-model placement rule (a get_policy name); None: the name makes no placements
    # (Spark's own LRU places the blocks, or nothing is cached)
    rule: str | None = None
    # a spark.blaze.policy value: the manager runs it
    manager: bool = True
    # how blaze bench runs it: "plain" (Spark alone, persisting at plain_level, or as the
    # program says when plain_level is None) or "manager" (the manager attached under this
    # name); None: not a benchmark policy
    bench: Literal["plain", "manager"] | None = None
    # the Spark storage level of a plain benchmark run; None: the program's own calls
    plain_level: str | None = None
    # the program's cache calls persist something at all (False: every call is a no-op)
    caches: bool = True
    # the program's persist/unpersist calls are ignored; autoCache/autoUnpersist decide
    ignores_cache_calls: bool = False
    # the manager owns what is persisted (it may re-level and unpersist it); False: it
    # only observes the program's levels
    owns_datasets: bool = True
    # victims and refused partitions may go to disk (datasets persisted with a disk level)
    spills: bool = False
    # the manager's autoCache / autoUnpersist may act under this name (and the matching
    # spark.blaze.* flag is on): the published baselines act on the program's calls only
    auto_cache: bool = False
    auto_unpersist: bool = False
    # storage memory is squeezed for the run (False: the ideal, with memory to spare)
    squeezed: bool = True
    # a published dependency-aware baseline Blaze is compared with
    rival: bool = False
    # when memory frees, spilled partitions come back, nearest next reference first (MRD)
    prefetches: bool = False
    # the cost model sends partitions to disk for good (Spark's read path does not cache them
    # back by its own LRU): a site whose last generation all went to disk is persisted straight
    # on disk, and spilled partitions are allowed back into memory for their next read
    disk_for_good: bool = False
    # a dataset is not persisted at all when its site's earlier generations show that
    # persisting costs more than it saves (PySpark then fuses it into its readers' pipelines:
    # costmodel.persisting)
    declines_unpaid: bool = False

    @property
    def runner_only(self) -> bool:
        """Only ``blaze bench`` knows the name (it is not a ``spark.blaze.policy`` value)."""
        return self.bench is not None and not self.manager

    @property
    def places(self) -> bool:
        """The manager decides, block by block, memory, disk or nothing."""
        return self.manager and self.rule is not None


POLICY_TABLE: tuple[PolicyInfo, ...] = (
    PolicyInfo(
        "none",
        "nothing is cached: every reuse recomputes",
        bench="plain",
        caches=False,
        owns_datasets=False,
    ),
    PolicyInfo(
        "spark",
        "Spark caches as the program says; the manager only observes",
        bench="plain",
        owns_datasets=False,
    ),
    PolicyInfo(
        "mem_only",
        "LRU in memory, victims dropped (Spark's MEMORY_ONLY)",
        rule="mem_only",
        bench="plain",
        plain_level="MEMORY_ONLY",
    ),
    PolicyInfo(
        "mem_disk",
        "LRU in memory, victims spilled to disk (Spark's MEMORY_AND_DISK)",
        rule="mem_disk",
        bench="plain",
        plain_level="MEMORY_AND_DISK",
        spills=True,
    ),
    PolicyInfo(
        "mem_disk_au",
        "Spark's MEMORY_AND_DISK and LRU, plus the manager's autoUnpersist alone",
        bench="manager",
        spills=True,
        auto_unpersist=True,
    ),
    PolicyInfo(
        "lrc",
        "least reference count evicted first, spilled (program's cache calls only)",
        rule="lrc",
        bench="manager",
        spills=True,
        rival=True,
    ),
    PolicyInfo(
        "mrd",
        "farthest next reference evicted first, spilled, nearest prefetched (program's calls)",
        rule="mrd",
        bench="manager",
        spills=True,
        rival=True,
        prefetches=True,
    ),
    PolicyInfo(
        "blaze",
        "cost-based: memory, disk or recompute per partition",
        rule="blaze",
        bench="manager",
        spills=True,
        auto_cache=True,
        auto_unpersist=True,
        disk_for_good=True,
        declines_unpaid=True,
    ),
    PolicyInfo(
        "blaze_auto",
        "Blaze ignoring the program's cache calls: autoCache/autoUnpersist decide everything",
        rule="blaze",
        bench="manager",
        ignores_cache_calls=True,
        spills=True,
        auto_cache=True,
        auto_unpersist=True,
        disk_for_good=True,
        declines_unpaid=True,
    ),
    PolicyInfo(
        "unlimited",
        "MEMORY_ONLY with storage memory to spare (the ideal)",
        manager=False,
        bench="plain",
        plain_level="MEMORY_ONLY",
        squeezed=False,
    ),
    PolicyInfo("lru", "least recently used evicted first, dropped", rule="lru", manager=False),
)

_BY_NAME = {info.name: info for info in POLICY_TABLE}

MANAGER_POLICIES: tuple[str, ...] = tuple(p.name for p in POLICY_TABLE if p.manager)
"""The values of ``spark.blaze.policy``."""

BENCH_POLICIES: tuple[str, ...] = tuple(p.name for p in POLICY_TABLE if p.bench)
"""The policies ``blaze bench`` runs (``--policies all``)."""

STOCK_POLICIES: tuple[str, ...] = tuple(
    p.name for p in POLICY_TABLE if p.bench == "plain" and p.squeezed
)
"""Stock Spark in squeezed memory, no manager: a job's spread is measured over these."""

RIVAL_POLICIES: tuple[str, ...] = tuple(p.name for p in POLICY_TABLE if p.rival)
"""The published dependency-aware baselines (LRC, MRD)."""

RULE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(p.rule for p in POLICY_TABLE if p.rule))
"""The cost model's placement rules, the names :func:`costmodel.policies.get_policy` knows."""


def policy_info(name: str, known: tuple[str, ...] = MANAGER_POLICIES) -> PolicyInfo:
    """The row of ``name`` (case-insensitive) if it is one of ``known``, else a ConfigError."""
    normal = str(name).strip().lower()
    if normal not in known:
        raise ConfigError(f"unknown cache policy {name!r} (known: {', '.join(known)})")
    return _BY_NAME[normal]
