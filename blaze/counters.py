"""The counters of the manager's report: hits, misses, bytes moved, decisions, resyncs.

Kept by the :class:`blaze.ledger.Ledger` (every count is of something the book saw happen)
and incremented by the parts that decide; read only through :meth:`Counters.report`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Counters"]


@dataclass
class Counters:
    hits: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    recomputed_partitions: int = 0
    disk_bytes_written: int = 0
    disk_bytes_read: int = 0
    evictions_by_reason: Counter = field(default_factory=Counter)
    decisions: Counter = field(default_factory=Counter)
    events: Counter = field(default_factory=Counter)
    max_over_budget_bytes: int = 0
    resyncs: int = 0
    resync_corrections: int = 0
    spark_evictions: int = 0  # managed blocks Spark moved out of memory, not the manager
    unmatched_events: int = 0  # a removal of a block the book never had (a lost event)

    def report(self) -> dict:
        return {
            "hits": self.hits,
            "memory_hits": self.memory_hits,
            "disk_hits": self.disk_hits,
            "misses": self.misses,
            "recomputed_partitions": self.recomputed_partitions,
            "disk_bytes_written": self.disk_bytes_written,
            "disk_bytes_read": self.disk_bytes_read,
            "evictions_by_reason": dict(sorted(self.evictions_by_reason.items())),
            "decisions": dict(sorted(self.decisions.items())),
            "max_over_budget_bytes": self.max_over_budget_bytes,
            "events": dict(sorted(self.events.items())),
            "resyncs": self.resyncs,
            "resync_corrections": self.resync_corrections,
            "spark_evictions": self.spark_evictions,
            "unmatched_events": self.unmatched_events,
        }
