"""The Blaze cost function over a lineage DAG (after the authors' ``RDDJobDag`` and
``BlazeMemoryDiskCostAnalyzer``), evaluated per partition ``(rdd_id, split)``.

- F(p), future references = **pending reads** + **later reads**:
  *pending reads* are the distinct stages of the jobs submitted so far that will read p and
  have not started doing so for p's split: found by walking child RDDs; a child whose
  partition is stored, or a shuffled child, ends the walk (stages past it read the child or
  the shuffle files, not p); a child the program persists counts its stages and ends the
  walk too, while it still has stages to run (they store it; later stages read it). A stage
  whose task for p's split has ended has read p; one whose task started before p was stored
  is computing p (the block being stored is its own output, not a read to come): neither
  counts. A task that started while p was stored reads p during its run, not at its start —
  a narrow join's task computes one side before it reads the other — so it counts until it
  ends (on the suite's cc a partition dropped between its reader's start and its read was
  recomputed, for seconds). Stages of a child RDD are all stages that list it (a non-cached
  child recomputed in two stages reads p twice).
  *later reads* are the reads predicted for jobs not submitted yet: given by the caller
  (``later_reads(rdd_id)``: the manager's per-site usage, profiled or learnt), else the
  authors' cross-job rules — *repeated node*: an RDD of the current job whose call site
  already appeared in an earlier job's ancestor inherits that ancestor's cross-job
  reference count; *consecutive jobs*: an RDD read by children in both the current and the
  previous job is assumed to stay in the loop (+2). The two parts are summed: a dataset
  read now by one stage and by every later iteration has both.
- R(p), recomputation time: p's own compute time (from its parents' records, reading them
  excluded) plus, for each parent partition (same split index, as Spark's narrow
  dependencies): its memory-hit cost if it is in memory, its disk-hit cost if it is on
  disk, its shuffle fetch (compute time + one disk read of its size) if it is a shuffle
  output, else its own R recursively. Each RDD counts once per walk (a diamond's shared
  ancestor is computed once when it is persisted, which is when it matters). The authors
  charge the shuffle read by the *child's* size; this uses the shuffled partition's own
  size, which is what is actually re-read.
- W(p) = S x write ms/MiB, Rd(p) = S x read ms/MiB, and the hit costs from :class:`DiskCost`:
  a memory hit deserializes S, a disk hit reads and deserializes it.

The cost of keeping p out of memory compares the three ways its F future reads can be
served: from memory (F x hit), from disk (W + F x (Rd + hit)) or by recomputing
(F x (R + hit): a recomputed PySpark partition is pickled to its consumer as a stored one
is). The hit cost is common to all three, so the penalties are ``comp_cost = F x R`` and
``disk_cost = W + F x Rd`` (see :class:`costmodel.types.PartitionCost`); it still matters in
R, through the stored ancestors a recomputation reads.

The model is mutable (the manager feeds it block events) and memoises per-partition terms;
a change to partition ``(r, s)`` invalidates only split ``s`` of ``r``'s ancestors and
descendants, so one admission decision over thousands of cached partitions reuses almost
every cost. Not thread-safe: the caller serialises updates (the manager holds one lock).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

from costmodel.disk import DiskCost
from costmodel.types import Location, PartitionCost, PartitionKey, PartitionMetrics, RddSpec
from lineage.walk import ancestors, breadth_first, walk

__all__ = ["CostModel", "Estimate", "Estimator", "LaterGap", "LaterReads"]


@dataclass(frozen=True)
class Estimate:
    """A predicted size and compute time for a partition nobody has measured yet."""

    size_bytes: float
    compute_ms: float


Estimator = Callable[[RddSpec, int], Estimate | None]
LaterReads = Callable[[int], float]  # rdd id -> reads predicted for jobs not submitted yet
LaterGap = Callable[[int], int]  # rdd id -> jobs until its next predicted read (1: the next)


class CostModel:
    """F, R, W, Rd and cost for every partition of a DAG, given measurements and state.

    ``estimator(rdd, split)`` supplies predictions (see :mod:`costmodel.predict`) when a
    partition and its RDD have no measurement. ``later_reads(rdd_id)`` predicts the reads
    of jobs not submitted yet (default: the authors' cross-job rules).
    """

    def __init__(
        self,
        rdds: Iterable[RddSpec] = (),
        metrics: Mapping[PartitionKey, PartitionMetrics] | None = None,
        disk: DiskCost | None = None,
        *,
        completed_stages: Iterable[int] = (),
        started_tasks: Iterable[tuple[int, int, Iterable[int]]] = (),
        ended_tasks: Iterable[tuple[int, int]] = (),
        locations: Mapping[PartitionKey, Location] | None = None,
        current_job: int | None = None,
        estimator: Estimator | None = None,
        later_reads: LaterReads | None = None,
        later_gap: LaterGap | None = None,
        memory_only: Container[int] = frozenset(),
    ) -> None:
        if disk is None:
            raise ValueError(
                "CostModel needs a DiskCost: calibrate it with costmodel.disk.calibrate_disk "
                "or give spark.blaze.disk.writeMsPerMiB/readMsPerMiB"
            )
        self.disk = disk
        # RDDs persisted without disk (the caller may keep adding to it): their partitions
        # cannot be written, so W is infinite and every fallback is a recomputation
        self.memory_only = memory_only
        self.estimator = estimator
        self.current_job = current_job
        self._later_reads = later_reads or self._cross_job_reads
        self._later_gap = later_gap or (lambda rdd_id: 1)
        # where stages stand, for MRD's distances: the newest stage submitted, the newest any
        # submitted job planned (a read predicted for a later job lies beyond it), and how
        # many stages a job has had (how far each further job lies)
        self.current_stage = 0
        self.last_stage = 0
        self.stages_per_job = 1.0
        self._rdds: dict[int, RddSpec] = {}
        self._children: dict[int, list[int]] = {}
        self._metrics: dict[PartitionKey, PartitionMetrics] = {}
        self._by_rdd: dict[int, dict[int, PartitionMetrics]] = {}
        self._rdd_means: dict[int, tuple[float | None, float | None]] = {}
        self._locations: dict[PartitionKey, Location] = {}
        self._stored_by_split: dict[int, set[int]] = {}  # split -> RDDs stored (the same facts)
        self._completed: set[int] = set(completed_stages)
        # stage -> split -> the RDDs of that split stored when its task started (it reads
        # those; the others it computes), and stage -> splits whose task ended (dropped when
        # the stage completes)
        self._started: dict[int, dict[int, frozenset[int]]] = {}
        self._ended: dict[int, set[int]] = {}
        for stage_id, split, stored in started_tasks:  # stored: the RDDs it read, not computed
            self._started.setdefault(stage_id, {})[split] = frozenset(stored)
        for stage_id, split in ended_tasks:
            self._ended.setdefault(stage_id, set()).add(split)
        self._f_cache: dict[PartitionKey, frozenset[int]] = {}
        # stage -> split -> keys whose F saw the stage (what a completion or a task start of
        # that split invalidates)
        self._f_by_stage: dict[int, dict[int, set[PartitionKey]]] = {}
        self._later_cache: dict[int, float] = {}
        self._r_cache: dict[PartitionKey, float] = {}
        # one memo per on_disk flag, keyed by the partition key itself (no tuple per lookup)
        self._cost_cache: dict[bool, dict[PartitionKey, PartitionCost]] = {False: {}, True: {}}
        self._fallback_used: dict[int, set[int]] = {}  # rdd -> splits computed from its mean
        self._related: dict[int, frozenset[int]] = {}  # rdd -> ancestors | descendants | self
        self._ancestors: dict[int, frozenset[int]] = {}
        self._repeated: dict[int, int | None] = {}
        # for callers that keep partitions ordered by cost between calls (eviction indexes):
        # ``epoch`` moves when every memoised cost may change, ``changed`` (when a set, not
        # None) collects the keys whose memoised terms were forgotten since it was drained
        self.epoch = 0
        self.changed: set[PartitionKey] | None = None
        for spec in rdds:
            self.add_rdd(spec)
        for key, value in (metrics or {}).items():
            self.observe(key, value.size_bytes, value.compute_ms)
        for key, location in (locations or {}).items():
            self.set_location(key, location)

    # ------------------------------------------------------------------ inputs
    @property
    def rdds(self) -> Mapping[int, RddSpec]:
        return self._rdds

    @property
    def completed_stages(self) -> frozenset[int]:
        return frozenset(self._completed)

    def add_rdd(self, spec: RddSpec) -> None:
        """Add or replace an RDD (a replacement may add stages the DAG learnt later)."""
        old = self._rdds.get(spec.rdd_id)
        if old == spec:
            return
        had_children = bool(self._children.get(spec.rdd_id))
        if old is not None:
            for parent in old.parents:
                siblings = self._children.get(parent, [])
                if spec.rdd_id in siblings:
                    siblings.remove(spec.rdd_id)
        self._rdds[spec.rdd_id] = spec
        self._children.setdefault(spec.rdd_id, [])
        for parent in spec.parents:
            kids = self._children.setdefault(parent, [])
            if spec.rdd_id not in kids:
                kids.append(spec.rdd_id)
                kids.sort()
        unchanged_lineage = (
            old.parents == spec.parents and old.shuffled == spec.shuffled
            if old is not None
            else not had_children  # nothing known walked through it yet
        )
        if unchanged_lineage:
            # R depends only on a partition's ancestors: a new leaf, or new stages of a known
            # RDD, change references only (this runs once per job, not once per block)
            self._invalidate_references()
            self._related.clear()
            self._repeated.clear()
            if old is None:
                for split in range(max(spec.num_partitions, 1)):
                    self._r_cache.pop((spec.rdd_id, split), None)  # computed while unknown
        else:
            self._invalidate_all()

    def remove_rdd(self, rdd_id: int) -> None:
        """Forget an RDD the lineage retired: no child, nothing stored, no stage to come. No
        remaining partition's cost reads it (R walks parents, F reads pending stages), so
        only its own entries go."""
        spec = self._rdds.pop(rdd_id, None)
        if spec is None:
            return
        for parent in spec.parents:
            kids = self._children.get(parent)
            if kids is not None and rdd_id in kids:
                kids.remove(rdd_id)
                if not kids and parent not in self._rdds:
                    del self._children[parent]
        if not self._children.get(rdd_id):
            self._children.pop(rdd_id, None)
        for split in self._by_rdd.pop(rdd_id, {}):
            self._metrics.pop((rdd_id, split), None)
        for split in range(max(spec.num_partitions, 1)):
            key = (rdd_id, split)
            self._stored_by_split.get(split, set()).discard(rdd_id)
            for table in (
                self._locations,
                self._f_cache,
                self._r_cache,
                *self._cost_cache.values(),
            ):
                table.pop(key, None)
        for table in (self._rdd_means, self._fallback_used, self._later_cache, self._repeated):
            table.pop(rdd_id, None)
        self._related.clear()
        self._ancestors.pop(rdd_id, None)

    def forget_stages(self, stage_ids: Iterable[int]) -> None:
        """Forget finished stages no RDD spec lists any more (the lineage retired them)."""
        for stage_id in stage_ids:
            self._completed.discard(stage_id)
            self._started.pop(stage_id, None)
            self._ended.pop(stage_id, None)
            self._f_by_stage.pop(stage_id, None)

    def observe(
        self, key: PartitionKey, size_bytes: float | None = None, compute_ms: float | None = None
    ) -> None:
        """Record a measured size and/or compute time; ``None`` keeps the previous value."""
        rdd_id, split = key
        new = PartitionMetrics(size_bytes, compute_ms)  # validates
        old = self._metrics.get(key, PartitionMetrics())
        merged = PartitionMetrics(
            old.size_bytes if new.size_bytes is None else new.size_bytes,
            old.compute_ms if new.compute_ms is None else new.compute_ms,
        )
        if merged == old and key in self._metrics:
            return
        self._by_rdd.setdefault(rdd_id, {})[split] = merged
        self._rdd_means.pop(rdd_id, None)
        self._metrics[key] = merged
        self._invalidate(rdd_id, split)
        # splits that used this RDD's mean are stale now that the mean moved
        for other in sorted(self._fallback_used.pop(rdd_id, set())):
            self._invalidate(rdd_id, other)

    def set_location(self, key: PartitionKey, location: Location) -> None:
        """Where the partition is stored now (MEMORY, DISK or NONE)."""
        location = Location(location)
        if self._locations.get(key, Location.NONE) == location:
            return
        rdd_id, split = key
        if location == Location.NONE:
            self._locations.pop(key, None)
            self._stored_by_split.get(split, set()).discard(rdd_id)
        else:
            self._locations[key] = location
            self._stored_by_split.setdefault(split, set()).add(rdd_id)
        self._invalidate(*key)

    def set_disk(self, disk: DiskCost) -> None:
        """The block costs were re-estimated (online correction): every cost may move."""
        if disk != self.disk:
            self.disk = disk
            self._invalidate_all()

    def measurements(self) -> dict[PartitionKey, PartitionMetrics]:
        """Every measured partition (a copy, in key order)."""
        return dict(sorted(self._metrics.items()))

    def measurements_of(self, key: PartitionKey) -> PartitionMetrics | None:
        """What was measured for one partition (None if nothing)."""
        return self._metrics.get(key)

    def invalidate_references(self) -> None:
        """Something outside the DAG that F depends on changed: recompute F (not R)."""
        self._invalidate_references()

    def location(self, key: PartitionKey) -> Location:
        return self._locations.get(key, Location.NONE)

    def complete_stage(self, stage_id: int) -> None:
        """A stage finished: only partitions whose reference walk saw it change F.

        (A walk that stopped at a cached child with stages still to run continues past it
        once they complete; that partition saw the stage too, so it is in the index.)
        """
        if stage_id in self._completed:
            return
        self._completed.add(stage_id)
        self._started.pop(stage_id, None)
        self._ended.pop(stage_id, None)
        for keys in self._f_by_stage.pop(stage_id, {}).values():
            self._forget_references(keys)

    def start_task(self, stage_id: int, split: int) -> None:
        """The stage's task for ``split`` started: it computes that split's partitions not
        stored now, and reads the stored ones before it ends."""
        if stage_id in self._completed:
            return
        splits = self._started.setdefault(stage_id, {})
        if split in splits:
            return
        splits[split] = frozenset(self._stored_by_split.get(split, ()))
        self._forget_stage_split(stage_id, split)

    def end_task(self, stage_id: int, split: int) -> None:
        """The stage's task for ``split`` ended: it has read what it reads of that split."""
        if stage_id in self._completed:
            return
        ended = self._ended.setdefault(stage_id, set())
        if split in ended:
            return
        ended.add(split)
        self._forget_stage_split(stage_id, split)

    def _forget_stage_split(self, stage_id: int, split: int) -> None:
        keys = self._f_by_stage.get(stage_id, {}).pop(split, None)
        if keys:
            self._forget_references(keys)

    def _forget_references(self, keys: Iterable[PartitionKey]) -> None:
        memo_in, memo_on = self._cost_cache[False], self._cost_cache[True]
        keys = list(keys)
        for key in keys:
            self._f_cache.pop(key, None)
            memo_in.pop(key, None)
            memo_on.pop(key, None)
        if self.changed is not None:
            self.changed.update(keys)

    def set_current_job(self, job_id: int | None) -> None:
        if job_id != self.current_job:
            self.current_job = job_id
            self._invalidate_references()

    # ------------------------------------------------------------------ graph
    def parents(self, rdd_id: int) -> tuple[int, ...]:
        spec = self._rdds.get(rdd_id)
        return spec.parents if spec else ()

    def children(self, rdd_id: int) -> tuple[int, ...]:
        return tuple(self._children.get(rdd_id, ()))

    def will_cache(self, rdd_id: int) -> bool:
        """Persisted (by the program or by autoCache): its partitions are stored once
        computed. An RDD with several children is not cached unless someone persists it."""
        spec = self._rdds.get(rdd_id)
        return spec is not None and spec.cached

    def ancestors(self, rdd_id: int) -> frozenset[int]:
        cached = self._ancestors.get(rdd_id)
        if cached is None:
            cached = self._ancestors[rdd_id] = ancestors(rdd_id, self.parents)
        return cached

    def is_ancestor(self, ancestor: int, descendant: int) -> bool:
        return ancestor in self.ancestors(descendant)

    def _related_rdds(self, rdd_id: int) -> frozenset[int]:
        cached = self._related.get(rdd_id)
        if cached is None:
            related = set(walk([rdd_id], self.parents)) | set(walk([rdd_id], self.children))
            cached = self._related[rdd_id] = frozenset(related)
        return cached

    def _invalidate(self, rdd_id: int, split: int) -> None:
        memo_in, memo_on = self._cost_cache[False], self._cost_cache[True]
        if not self._f_cache and not self._r_cache and not memo_in and not memo_on:
            return
        changed = self.changed
        for node in self._related_rdds(rdd_id):
            key = (node, split)
            self._f_cache.pop(key, None)
            self._r_cache.pop(key, None)
            memo_in.pop(key, None)
            memo_on.pop(key, None)
            if changed is not None:
                changed.add(key)

    def _invalidate_references(self) -> None:
        """Stages completed or the job changed: F changes everywhere, R nowhere (R depends
        only on the DAG, measurements and where partitions are stored)."""
        self.epoch += 1
        self._f_cache.clear()
        self._f_by_stage.clear()
        self._later_cache.clear()
        self._cost_cache[False].clear()
        self._cost_cache[True].clear()

    def _invalidate_all(self) -> None:
        self._invalidate_references()
        self._r_cache.clear()
        self._fallback_used.clear()
        self._related.clear()
        self._ancestors.clear()
        self._repeated.clear()

    # ------------------------------------------------------------------ metrics
    def size_bytes(self, key: PartitionKey) -> float:
        """S(p): measured size, else the RDD's mean measured size, else predicted, else 0."""
        value = self._metrics.get(key)
        if value is not None and value.size_bytes is not None:
            return value.size_bytes
        return self._fallback(key, size=True)

    def compute_ms(self, key: PartitionKey) -> float:
        """Time to build the partition from its parents' partitions (same fallbacks)."""
        value = self._metrics.get(key)
        if value is not None and value.compute_ms is not None:
            return value.compute_ms
        return self._fallback(key, size=False)

    def _fallback(self, key: PartitionKey, *, size: bool) -> float:
        rdd_id, split = key
        self._fallback_used.setdefault(rdd_id, set()).add(split)
        means = self._rdd_means.get(rdd_id)
        if means is None:
            values = self._by_rdd.get(rdd_id, {}).values()
            sizes = [m.size_bytes for m in values if m.size_bytes is not None]
            times = [m.compute_ms for m in values if m.compute_ms is not None]
            means = (
                math.fsum(sizes) / len(sizes) if sizes else None,
                math.fsum(times) / len(times) if times else None,
            )
            self._rdd_means[rdd_id] = means
        mean = means[0] if size else means[1]
        if mean is not None:
            return mean
        spec = self._rdds.get(rdd_id)
        if self.estimator is not None and spec is not None:
            estimate = self.estimator(spec, split)
            if estimate is not None:
                return estimate.size_bytes if size else estimate.compute_ms
        return 0.0

    def write_ms(self, key: PartitionKey) -> float:
        """W(p) = S(p) x write cost (infinite for an RDD persisted without disk)."""
        return self._write_ms(key[0], self.size_bytes(key))

    def _write_ms(self, rdd_id: int, size: float) -> float:
        return math.inf if rdd_id in self.memory_only else self.disk.write_ms(size)

    def read_ms(self, key: PartitionKey) -> float:
        """Rd(p) = S(p) x read cost."""
        return self.disk.read_ms(self.size_bytes(key))

    # ------------------------------------------------------------------ F
    def reference_stages(self, key: PartitionKey) -> frozenset[int]:
        """Stages of the submitted jobs that will read partition ``key`` and have not
        done so for its split (see the module docstring)."""
        cached = self._f_cache.get(key)
        if cached is not None:
            return cached
        rdd_id, split = key
        counted: set[int] = set()
        seen: set[int] = set()  # every stage the answer depends on (for invalidation)
        completed, started, locations = self._completed, self._started, self._locations
        ended = self._ended
        no_tasks: dict[int, frozenset[int]] = {}
        no_split: frozenset[int] = frozenset()

        def reads_later(stage: int) -> bool:
            stored_at_start = started.get(stage, no_tasks).get(split)
            if stored_at_start is None:
                return True  # its task has not started
            return rdd_id in stored_at_start and split not in ended.get(stage, no_split)

        def readers(node: int) -> list[int]:
            nxt = []
            for child in self._children.get(node, ()):
                spec = self._rdds.get(child)
                if spec is None or spec.shuffled or (child, split) in locations:
                    continue
                remaining = spec.stages - completed
                seen.update(remaining)
                counted.update(s for s in remaining if reads_later(s))
                if remaining and spec.cached:
                    continue  # its stages store it; later stages read the child, not this
                nxt.append(child)
            return nxt

        for _ in walk([rdd_id], readers):
            pass
        result = frozenset(counted)
        self._f_cache[key] = result
        for stage_id in seen:
            self._f_by_stage.setdefault(stage_id, {}).setdefault(split, set()).add(key)
        return result

    def later_reads(self, rdd_id: int) -> float:
        """Reads predicted for jobs not submitted yet (see the module docstring)."""
        cached = self._later_cache.get(rdd_id)
        if cached is None:
            cached = self._later_cache[rdd_id] = max(float(self._later_reads(rdd_id)), 0.0)
        return cached

    def future_refs(self, key: PartitionKey) -> float:
        """F(p): pending reads of the submitted jobs plus reads predicted for later jobs."""
        return len(self.reference_stages(key)) + self.later_reads(key[0])

    def _cross_job_reads(self, rdd_id: int) -> float:
        """The authors' cross-job rules, the default prediction of later reads."""
        spec = self._rdds.get(rdd_id)
        if spec is None or self.current_job is None:
            return 0.0
        repeated = self.repeated_node(rdd_id)
        if repeated is not None:
            cross = self.cross_job_references(repeated)
            return float(cross) if spec.job_id == self.current_job and cross > 0 else 0.0
        jobs = self.referencing_jobs(rdd_id)
        if self.current_job in jobs and self.current_job - 1 in jobs:
            return 2.0
        return 0.0

    def referencing_jobs(self, rdd_id: int) -> frozenset[int]:
        """Jobs of the RDD's direct children (the authors' ``getReferencedJobs``)."""
        return frozenset(
            self._rdds[c].job_id
            for c in self._children.get(rdd_id, ())
            if c in self._rdds and self._rdds[c].job_id is not None
        )

    def repeated_node(self, rdd_id: int) -> int | None:
        """Nearest ancestor with the same call site created in another job, if any."""
        if rdd_id not in self._repeated:
            self._repeated[rdd_id] = self._find_repeated(rdd_id)
        return self._repeated[rdd_id]

    def _find_repeated(self, rdd_id: int) -> int | None:
        spec = self._rdds.get(rdd_id)
        if spec is None or not spec.call_site:
            return None
        # breadth first (the previous iteration before older ones), newer RDDs first
        for node, depth in breadth_first([rdd_id], self.parents, order=lambda r: -r):
            other = self._rdds.get(node)
            if (
                depth
                and other
                and other.call_site == spec.call_site
                and other.job_id != spec.job_id
            ):
                return node
        return None

    def cross_job_references(self, rdd_id: int) -> int:
        """Children of ``rdd_id`` created in a job other than its own."""
        spec = self._rdds.get(rdd_id)
        if spec is None:
            return 0
        return sum(
            1
            for c in self._children.get(rdd_id, ())
            if c in self._rdds and self._rdds[c].job_id != spec.job_id
        )

    def reference_count(self, key: PartitionKey) -> int:
        """LRC's count: the reads still to come — pending stages plus later-job reads."""
        return len(self.reference_stages(key)) + math.ceil(self.later_reads(key[0]))

    def next_reference(self, key: PartitionKey) -> int | None:
        """MRD's distance in stages to the next read; None when nothing will read it.

        A pending stage is ``stage - current stage`` away; a read predicted only for a later
        job lies beyond every stage the submitted jobs planned, by as many jobs' worth of
        stages as the gap until its next read (``later_gap``: a dataset read every job comes
        back next; one read every few jobs, or not for a while, comes back later).
        """
        stages = self.reference_stages(key)
        if stages:
            return max(min(stages) - self.current_stage, 0)
        if self.later_reads(key[0]) > 0:
            beyond = max(self.last_stage - self.current_stage, 0) + 1
            gap = max(int(self._later_gap(key[0])), 1)
            return beyond + round(self.stages_per_job * (gap - 1))
        return None

    # ------------------------------------------------------------------ R
    def recompute_ms(self, key: PartitionKey) -> float:
        """R(p): the work to rebuild p from stored ancestors or shuffle files."""
        cached = self._r_cache.get(key)
        if cached is not None:
            return cached
        rdd_id, split = key
        total = 0.0

        def rebuild(node: int) -> tuple[int, ...]:
            nonlocal total
            if node != rdd_id:
                where = self._locations.get((node, split))
                if where is not None:  # a stored ancestor: read it, do not rebuild it
                    size = self.size_bytes((node, split))
                    if where == Location.MEMORY:
                        total += self.disk.memory_hit_ms(size)
                    else:
                        total += self.disk.disk_hit_ms(size)
                    return ()
            total += self.compute_ms((node, split))
            spec = self._rdds.get(node)
            if spec is None:
                return ()
            if spec.shuffled:
                total += self.read_ms((node, split))  # re-fetch the shuffle files
                return ()
            return spec.parents

        for _ in walk([rdd_id], rebuild):
            pass
        self._r_cache[key] = total
        return total

    # ------------------------------------------------------------------ cost
    def cost(self, key: PartitionKey, on_disk: bool | None = None) -> PartitionCost:
        """The partition's cost terms; ``on_disk`` defaults to its current location."""
        if on_disk is None:
            on_disk = self._locations.get(key) == Location.DISK
        memo = self._cost_cache[bool(on_disk)]
        cached = memo.get(key)
        if cached is not None:
            return cached
        size = self.size_bytes(key)
        later = self.later_reads(key[0])
        result = PartitionCost(
            future_refs=len(self.reference_stages(key)) + later,
            recompute_ms=self.recompute_ms(key),
            write_ms=self._write_ms(key[0], size),
            read_ms=self.disk.read_ms(size),
            on_disk=bool(on_disk),
            size_bytes=size,
            later_refs=later,
            memory_hit_ms=self.disk.memory_hit_ms(size),
        )
        memo[key] = result
        return result

    def costs(self, keys: Sequence[PartitionKey], on_disk: bool = False) -> list[PartitionCost]:
        """``cost`` of many partitions at once (memo hits without a method call each)."""
        flag = bool(on_disk)
        get = self._cost_cache[flag].get
        out = [get(key) for key in keys]
        for index, hit in enumerate(out):
            if hit is None:
                out[index] = self.cost(keys[index], flag)
        return out

    def reused_rdds(self) -> list[int]:
        """RDDs to cache automatically: out-degree in the DAG > 1 (the authors' rule)."""
        return sorted(r for r, kids in self._children.items() if len(kids) > 1 and r in self._rdds)

    def dead_rdds(self) -> list[int]:
        """RDDs whose every partition has F <= 0 and all child stages completed
        (auto-unpersist candidates)."""
        dead = []
        for rdd_id, spec in sorted(self._rdds.items()):
            children = self._children.get(rdd_id, ())
            if any(self._rdds[c].stages - self._completed for c in children if c in self._rdds):
                continue
            splits = range(max(spec.num_partitions, 1))
            if all(self.future_refs((rdd_id, s)) <= 0 for s in splits):
                dead.append(rdd_id)
        return dead
