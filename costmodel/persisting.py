"""Whether persisting a PySpark dataset pays at all, before any partition of it is placed.

Why: in PySpark, persisting a dataset is not free even when every block stays in memory.
PySpark fuses a chain of Python transformations into one function run by the reader's worker;
a persisted dataset breaks the chain: its worker pickles every record and hands the bytes to
the JVM's block store, and every reader unpickles them again. Not persisting it, each reader
computes it afresh inside its own fused pipeline. Blaze's per-partition choice of memory, disk
or recompute comes too late for this: by the time a block is put, the records were pickled and
the readers' pipelines were cut. So a dataset is worth persisting only when what its later
reads save is more than what persisting costs:

    (F - 1) * (own - load - d * Rd)  >  (wall - own) + d * W

per partition, with F the reads of one generation of the dataset (the jobs that read the
site's finished generations), ``own`` its computation inside a fused pipeline (reading its
parent included), ``wall - own`` the pickling and storing of its output, and ``load`` the
unpickling each later read of a stored copy costs — all measured on the site's earlier
generations (:mod:`lineage.timing`). The first read computes it in either case.
``d`` is the share of the site's latest reads of stored copies that came from disk: a copy on
disk costs its write W once and its read Rd at every later read, on top of the pickling and
unpickling a copy in memory costs. Without it, a dataset whose copies all go to disk was
judged as if they stayed in memory (on the suite's kmeans.common, second data shape: a loss
of 9 ms of 245 ms per partition in memory, where W and Rd of its 13 MiB copies added 16-42 ms
in four runs).

The typical loser is a cheap map over a cached input that repeats the input in its output
(``scored = points.map(lambda p: (p.y, p.x, p.x @ w))`` read by two actions): each read of the
stored copy costs as much unpickling as recomputing it from the input, and the copy had to be
pickled and stored first. On the suite's lr.common (default mode, one run each, sources
0468b10a): with the features cached and ``scored`` not (what ``blaze_auto`` chose) the job took
47.7 s; with every dataset the program caches held in memory (``unlimited``), 69.9 s.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PersistCase"]


@dataclass(frozen=True)
class PersistCase:
    """A site's measured costs per partition (ms) and the reads of one of its generations."""

    reads: float  # F: reads of one generation
    own_ms: float  # computing the partition in a fused pipeline (its parent's read included)
    wall_ms: float  # the same, its output pickled and stored as well (the first read's cost)
    load_ms: float  # each later read of a stored copy: unpickling it
    disk_share: float = 0.0  # d: the share of its copies' reads that come from disk
    disk_write_ms: float = 0.0  # W of one partition's copy
    disk_read_ms: float = 0.0  # Rd of one partition's copy

    def __post_init__(self) -> None:
        if not 0.0 <= self.disk_share <= 1.0:
            raise ValueError(f"disk_share must be in [0, 1], got {self.disk_share!r}")

    @property
    def store_ms(self) -> float:
        """Pickling and storing the partition (and writing the share of it that goes to
        disk): what persisting adds to its first read."""
        return max(self.wall_ms - self.own_ms, 0.0) + self.disk_share * self.disk_write_ms

    @property
    def saved_ms(self) -> float:
        """What the later reads save by reading a stored copy (from disk for its disk
        share) instead of recomputing it."""
        read_ms = self.load_ms + self.disk_share * self.disk_read_ms
        return max(self.reads - 1.0, 0.0) * (self.own_ms - read_ms)

    @property
    def gain_ms(self) -> float:
        """Persisting's net saving per partition (negative: it costs more than it saves)."""
        return self.saved_ms - self.store_ms

    @property
    def pays(self) -> bool:
        return self.gain_ms > 0.0
