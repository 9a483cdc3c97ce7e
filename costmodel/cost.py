"""The Blaze cost function over a lineage DAG (after the authors' ``RDDJobDag`` and
``BlazeMemoryDiskCostAnalyzer``), evaluated per partition ``(rdd_id, split)``.

- F(p), future references: distinct not-yet-completed stages that will read p, found by
  walking child RDDs; a child whose partition is stored, or a shuffled child, ends the walk
  (stages past it read the child or the shuffle files, not p); a child that will be cached
  (persisted, or reused: out-degree > 1) counts its stages but ends the walk too. Stages of
  a child RDD are all stages that list it (a non-cached child recomputed in two stages reads
  p twice). When the DAG shows no future stage (an online DAG does not know the next job
  yet) two cross-job rules of the authors extend F:
  *repeated node* — an RDD of the current job whose call site already appeared in an
  earlier job's ancestor RDD inherits that ancestor's cross-job reference count (iteration
  i+1's ``ranks`` is read as often by later jobs as iteration i's was); *consecutive jobs* —
  otherwise, an RDD read by children in both the current and the previous job is assumed to
  stay in the loop: F += 2.
- R(p), recomputation time: p's own compute time plus, for each parent partition (same
  split index, as Spark's narrow dependencies): nothing if it is in memory, its disk read if
  it is on disk, its shuffle fetch (compute time + one disk read of its size) if it is a
  shuffle output, else its own R recursively. Each RDD counts once per walk (a diamond's
  shared ancestor is computed once when it is persisted, which is when it matters). The
  authors charge the shuffle read by the *child's* size; this uses the shuffled partition's
  own size, which is what is actually re-read.
- W(p) = S x write ms/MiB, Rd(p) = S x read ms/MiB from the calibrated :class:`DiskCost`.

The model is mutable (the manager feeds it block events) and memoises per-partition terms;
a change to partition ``(r, s)`` invalidates only split ``s`` of ``r``'s ancestors and
descendants, so one admission decision over thousands of cached partitions reuses almost
every cost. Not thread-safe: the caller serialises updates (the manager holds one lock).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from costmodel.disk import DiskCost
from costmodel.types import Location, PartitionCost, PartitionKey, PartitionMetrics, RddSpec

__all__ = ["CostModel", "Estimate"]


@dataclass(frozen=True)
class Estimate:
    """A predicted size and compute time for a partition nobody has measured yet."""

    size_bytes: float
    compute_ms: float


Estimator = Callable[[RddSpec, int], Estimate | None]


class CostModel:
    """F, R, W, Rd and cost for every partition of a DAG, given measurements and state.

    ``estimator(rdd, split)`` supplies predictions (see :mod:`costmodel.predict`) when a
    partition and its RDD have no measurement. ``auto_cache`` applies the authors' rule that
    an RDD with out-degree > 1 will be cached (it ends reference walks).
    """

    def __init__(
        self,
        rdds: Iterable[RddSpec] = (),
        metrics: Mapping[PartitionKey, PartitionMetrics] | None = None,
        disk: DiskCost | None = None,
        *,
        completed_stages: Iterable[int] = (),
        locations: Mapping[PartitionKey, Location] | None = None,
        current_job: int | None = None,
        auto_cache: bool = True,
        estimator: Estimator | None = None,
    ) -> None:
        if disk is None:
            raise ValueError(
                "CostModel needs a DiskCost: calibrate it with costmodel.disk.calibrate_disk "
                "or give spark.blaze.disk.writeMsPerMiB/readMsPerMiB"
            )
        self.disk = disk
        self.auto_cache = auto_cache
        self.estimator = estimator
        self.current_job = current_job
        self._rdds: dict[int, RddSpec] = {}
        self._children: dict[int, list[int]] = {}
        self._metrics: dict[PartitionKey, PartitionMetrics] = {}
        self._by_rdd: dict[int, dict[int, PartitionMetrics]] = {}
        self._rdd_means: dict[int, tuple[float | None, float | None]] = {}
        self._locations: dict[PartitionKey, Location] = {}
        self._completed: set[int] = set(completed_stages)
        self._f_cache: dict[PartitionKey, frozenset[int]] = {}
        self._f_by_stage: dict[int, set[PartitionKey]] = {}  # stage -> keys whose F counts it
        self._r_cache: dict[PartitionKey, float] = {}
        # one memo per on_disk flag, keyed by the partition key itself (no tuple per lookup)
        self._cost_cache: dict[bool, dict[PartitionKey, PartitionCost]] = {False: {}, True: {}}
        self._fallback_used: dict[int, set[int]] = {}  # rdd -> splits computed from its mean
        self._related: dict[int, frozenset[int]] = {}  # rdd -> ancestors | descendants | self
        self._ancestors: dict[int, frozenset[int]] = {}
        self._repeated: dict[int, int | None] = {}
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
            for key in [k for k in self._r_cache if k[0] == spec.rdd_id]:
                del self._r_cache[key]  # computed while the RDD was unknown
        else:
            self._invalidate_all()

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
        if location == Location.NONE:
            self._locations.pop(key, None)
        else:
            self._locations[key] = location
        self._invalidate(*key)

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
        """A stage finished: only partitions whose references counted it change F.

        (A walk that stopped at a cached child with pending stages continues past it once
        they complete; such a partition counted the stage too, so it is in the index.)
        """
        if stage_id in self._completed:
            return
        self._completed.add(stage_id)
        keys = self._f_by_stage.pop(stage_id, ())
        memo_in, memo_on = self._cost_cache[False], self._cost_cache[True]
        for key in keys:
            self._f_cache.pop(key, None)
            memo_in.pop(key, None)
            memo_on.pop(key, None)

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
        """Persisted by the program, or reused (out-degree > 1) under autoCache."""
        spec = self._rdds.get(rdd_id)
        if spec is None:
            return False
        return spec.cached or (self.auto_cache and len(self._children.get(rdd_id, ())) > 1)

    def ancestors(self, rdd_id: int) -> frozenset[int]:
        cached = self._ancestors.get(rdd_id)
        if cached is not None:
            return cached
        seen: set[int] = set()
        stack = list(self.parents(rdd_id))
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(self.parents(node))
        result = frozenset(seen)
        self._ancestors[rdd_id] = result
        return result

    def is_ancestor(self, ancestor: int, descendant: int) -> bool:
        return ancestor in self.ancestors(descendant)

    def _related_rdds(self, rdd_id: int) -> frozenset[int]:
        cached = self._related.get(rdd_id)
        if cached is not None:
            return cached
        seen: set[int] = {rdd_id}
        for walk in (self.parents, self.children):
            stack = list(walk(rdd_id))
            while stack:
                node = stack.pop()
                if node not in seen:
                    seen.add(node)
                    stack.extend(walk(node))
        result = frozenset(seen)
        self._related[rdd_id] = result
        return result

    def _invalidate(self, rdd_id: int, split: int) -> None:
        memo_in, memo_on = self._cost_cache[False], self._cost_cache[True]
        if not self._f_cache and not self._r_cache and not memo_in and not memo_on:
            return
        for node in self._related_rdds(rdd_id):
            key = (node, split)
            self._f_cache.pop(key, None)
            self._r_cache.pop(key, None)
            memo_in.pop(key, None)
            memo_on.pop(key, None)

    def _invalidate_references(self) -> None:
        """Stages completed or the job changed: F changes everywhere, R nowhere (R depends
        only on the DAG, measurements and where partitions are stored)."""
        self._f_cache.clear()
        self._f_by_stage.clear()
        self._cost_cache[False].clear()
        self._cost_cache[True].clear()

    def _invalidate_all(self) -> None:
        self._f_cache.clear()
        self._f_by_stage.clear()
        self._r_cache.clear()
        self._cost_cache[False].clear()
        self._cost_cache[True].clear()
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
        """W(p) = S(p) x write cost."""
        return self.disk.write_ms(self.size_bytes(key))

    def read_ms(self, key: PartitionKey) -> float:
        """Rd(p) = S(p) x read cost."""
        return self.disk.read_ms(self.size_bytes(key))

    # ------------------------------------------------------------------ F
    def reference_stages(self, key: PartitionKey) -> frozenset[int]:
        """Not-yet-completed stages the DAG shows will read partition ``key``."""
        cached = self._f_cache.get(key)
        if cached is not None:
            return cached
        rdd_id, split = key
        stages: set[int] = set()
        visited = {rdd_id}
        stack = [rdd_id]
        while stack:
            node = stack.pop()
            for child in self._children.get(node, ()):
                if child in visited:
                    continue
                visited.add(child)
                spec = self._rdds.get(child)
                if spec is None or spec.shuffled or (child, split) in self._locations:
                    continue
                pending = spec.stages - self._completed
                stages |= pending
                if pending and self.will_cache(child):
                    continue  # later stages read the cached child, not this partition
                stack.append(child)
        result = frozenset(stages)
        self._f_cache[key] = result
        for stage_id in result:
            self._f_by_stage.setdefault(stage_id, set()).add(key)
        return result

    def future_refs(self, key: PartitionKey) -> int:
        """F(p): DAG references, extended by the cross-job rules when the DAG shows none."""
        count = len(self.reference_stages(key))
        if count > 0 or self.current_job is None:
            return count
        rdd_id = key[0]
        spec = self._rdds.get(rdd_id)
        if spec is None:
            return 0
        repeated = self.repeated_node(rdd_id)
        if repeated is not None:
            cross = self.cross_job_references(repeated)
            return cross if spec.job_id == self.current_job and cross > 0 else 0
        jobs = self.referencing_jobs(rdd_id)
        if self.current_job in jobs and self.current_job - 1 in jobs:
            return 2
        return 0

    def referencing_jobs(self, rdd_id: int) -> frozenset[int]:
        """Jobs of the RDD's direct children (the authors' ``getReferencedJobs``)."""
        return frozenset(
            self._rdds[c].job_id
            for c in self._children.get(rdd_id, ())
            if c in self._rdds and self._rdds[c].job_id is not None
        )

    def repeated_node(self, rdd_id: int) -> int | None:
        """Nearest ancestor with the same call site created in another job, if any."""
        if rdd_id in self._repeated:
            return self._repeated[rdd_id]
        found = self._find_repeated(rdd_id)
        self._repeated[rdd_id] = found
        return found

    def _find_repeated(self, rdd_id: int) -> int | None:
        spec = self._rdds.get(rdd_id)
        if spec is None or not spec.call_site:
            return None
        seen = {rdd_id}
        frontier = list(spec.parents)
        while frontier:  # breadth first: the previous iteration before older ones
            nxt: list[int] = []
            for node in sorted(frontier, reverse=True):
                if node in seen:
                    continue
                seen.add(node)
                other = self._rdds.get(node)
                if other is None:
                    continue
                if other.call_site == spec.call_site and other.job_id != spec.job_id:
                    return node
                nxt.extend(other.parents)
            frontier = nxt
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
        """LRC's count: direct children with a stage not yet completed."""
        return sum(
            1
            for c in self._children.get(key[0], ())
            if c in self._rdds and self._rdds[c].stages - self._completed
        )

    def next_reference(self, key: PartitionKey) -> int | None:
        """MRD's next reference: the earliest pending stage that reads the partition."""
        stages = self.reference_stages(key)
        return min(stages) if stages else None

    # ------------------------------------------------------------------ R
    def recompute_ms(self, key: PartitionKey) -> float:
        """R(p): the work to rebuild p from stored ancestors or shuffle files."""
        cached = self._r_cache.get(key)
        if cached is not None:
            return cached
        rdd_id, split = key
        total = 0.0
        visited: set[int] = set()
        stack = [rdd_id]
        while stack:
            node = stack.pop()
            if node in visited:
                continue
            visited.add(node)
            total += self.compute_ms((node, split))
            spec = self._rdds.get(node)
            if spec is None:
                continue
            if spec.shuffled:
                total += self.read_ms((node, split))  # re-fetch the shuffle files
                continue
            for parent in spec.parents:
                if parent in visited:
                    continue
                location = self._locations.get((parent, split), Location.NONE)
                if location == Location.MEMORY:
                    visited.add(parent)
                elif location == Location.DISK:
                    visited.add(parent)
                    total += self.read_ms((parent, split))
                else:
                    stack.append(parent)
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
        result = PartitionCost(
            future_refs=float(self.future_refs(key)),
            recompute_ms=self.recompute_ms(key),
            write_ms=self.disk.write_ms(size),
            read_ms=self.disk.read_ms(size),
            on_disk=bool(on_disk),
            size_bytes=size,
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
