"""The one table of cache policy names and what each name means to every part of the project.

A name is read in three places: ``spark.blaze.policy`` (validated by ``blaze.config`` and run
by the manager), ``blaze bench`` (the runner in ``jobs``), and the cost model's placement rules
(:func:`costmodel.policies.get_policy`). They disagree on purpose — ``mem_only`` is an LRU rule
inside the manager but plain Spark ``MEMORY_ONLY`` in a benchmark run, ``unlimited`` exists
only in benchmarks, ``lru`` only in the cost model — so each row says what the name is to each
reader, and every reader derives its list of names from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from blaze_errors import ConfigError

__all__ = [
    "BENCH_POLICIES",
    "MANAGER_POLICIES",
    "POLICY_TABLE",
    "RULE_NAMES",
    "PolicyInfo",
    "policy_info",
]


@dataclass(frozen=True)
class PolicyInfo:
    """One policy name and its meaning to the manager, the benchmark runner and the cost model."""

    name: str
    description: str
    # the cost-model placement rule (a get_policy name); None: the name makes no placements
    rule: str | None = None
    # a spark.blaze.policy value: the manager runs it
    manager: bool = True
    # how blaze bench runs it: "plain" (Spark alone, persisting at plain_level) or "manager"
    # (the manager attached under this name); None: not a benchmark policy
    bench: Literal["plain", "manager"] | None = None
    # the Spark storage level of a plain benchmark run; None: nothing is persisted
    plain_level: str | None = None
    # the program's persist/unpersist calls are ignored; autoCache/autoUnpersist decide
    ignores_cache_calls: bool = False

    @property
    def runner_only(self) -> bool:
        """Only ``blaze bench`` knows the name (it is not a ``spark.blaze.policy`` value)."""
        return self.bench is not None and not self.manager


POLICY_TABLE: tuple[PolicyInfo, ...] = (
    PolicyInfo("spark", "Spark caches as the program says; the manager only observes"),
    PolicyInfo("none", "nothing is cached: every reuse recomputes", bench="plain"),
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
    ),
    PolicyInfo("lrc", "least reference count evicted first, spilled", rule="lrc", bench="manager"),
    PolicyInfo(
        "mrd", "farthest next reference evicted first, spilled", rule="mrd", bench="manager"
    ),
    PolicyInfo(
        "blaze",
        "cost-based: memory, disk or recompute per partition",
        rule="blaze",
        bench="manager",
    ),
    PolicyInfo(
        "blaze_auto",
        "Blaze ignoring the program's cache calls: autoCache/autoUnpersist decide everything",
        rule="blaze",
        bench="manager",
        ignores_cache_calls=True,
    ),
    PolicyInfo(
        "unlimited",
        "MEMORY_ONLY with storage memory to spare (the ideal)",
        manager=False,
        bench="plain",
        plain_level="MEMORY_ONLY",
    ),
    PolicyInfo("lru", "least recently used evicted first, dropped", rule="lru", manager=False),
)

_BY_NAME = {info.name: info for info in POLICY_TABLE}

MANAGER_POLICIES: tuple[str, ...] = tuple(p.name for p in POLICY_TABLE if p.manager)
"""The values of ``spark.blaze.policy``."""

BENCH_POLICIES: tuple[str, ...] = tuple(p.name for p in POLICY_TABLE if p.bench)
"""The policies ``blaze bench`` runs (``--policies all``)."""

RULE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(p.rule for p in POLICY_TABLE if p.rule))
"""The cost model's placement rules, the names :func:`costmodel.policies.get_policy` knows."""


def policy_info(name: str, known: tuple[str, ...] = MANAGER_POLICIES) -> PolicyInfo:
    """The row of ``name`` (case-insensitive) if it is one of ``known``, else a ConfigError."""
    normal = str(name).strip().lower()
    if normal not in known:
        raise ConfigError(f"unknown cache policy {name!r} (known: {', '.join(known)})")
    return _BY_NAME[normal]
