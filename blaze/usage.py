"""What the usage tracker (:mod:`blaze.tracker`) keeps per dataset and per site (pure Python).

A *site* is the user's source line that created a dataset; each dataset made there is a
*generation* of it. Per dataset: how many jobs used it (held it in their lineage) and read it
(not only through a fully cached dataset derived from it). Per site: what its retired
generations had of both, which is what the tracker predicts for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DatasetUse", "RetiredCounts", "SiteStats"]


@dataclass
class DatasetUse:
    """One Python dataset object as the tracker knows it (``token`` = ``id()`` of the object)."""

    token: int
    site: str
    generation: int
    uses: int = 0  # jobs whose lineage held it
    reads: int = 0  # jobs that read it, not only a fully cached dataset derived from it
    last_job: int = -1
    run: int = 0  # consecutive jobs that read it, up to ``last_job``
    persisted: bool = False  # persisted by the program or by autoCache
    managed: bool = False  # the manager may unpersist it
    retired: bool = False
    state: bool = False  # derived from an earlier generation of its own site
    cached_from_first_use: bool = False  # persisted before the first job that read it
    prev: int | None = None  # the dataset a pipelined Python step was derived from


@dataclass
class RetiredCounts:
    """The most of one count (uses, or reads) a retired generation of a site had.

    Generations cached from their first use (*steady*) count alone once there is one: a
    generation computed before its site was known to be reused is read again by every job
    that recomputes its uncached successor (the first ``ranks`` of a loop autoCache is still
    learning is read three times, the later ones twice), and taking that count for the loop's
    would keep every later generation one job past its last read.
    """

    most: int | None = None
    most_steady: int | None = None

    def add(self, count: int, *, steady: bool) -> None:
        self.most = max(self.most or 0, count)
        if steady:
            self.most_steady = max(self.most_steady or 0, count)

    def expected(self) -> int | None:
        """What the next generation is predicted to have (None: none retired yet)."""
        return self.most_steady if self.most_steady is not None else self.most


@dataclass
class SiteStats:
    generations: int = 0
    reused: bool = False
    cached: bool = False  # a dataset of this site was persisted (by the program or autoCache)
    uses: RetiredCounts = field(default_factory=RetiredCounts)
    reads: RetiredCounts = field(default_factory=RetiredCounts)
    newest_used: int = -1  # the newest generation any job has read
    reads_per_use: int = 1  # the most stages one job planned to read a dataset of the site
    state: bool = False  # a generation was iteration state (see DatasetUse.state)

    def retire(self, use: DatasetUse) -> None:
        self.uses.add(use.uses, steady=use.cached_from_first_use)
        self.reads.add(use.reads, steady=use.cached_from_first_use)
