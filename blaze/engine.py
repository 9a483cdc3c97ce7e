"""The live application's cost model: the one source of every quantity a policy decides on.

The engine reads the application's lineage from the listener's
:class:`lineage.dag.LineageDag` — the one graph of RDDs, stages and jobs — and keeps the
:class:`costmodel.cost.CostModel` in step with it one record at a time (no rebuild per
event). Every RDD spec comes from :func:`costmodel.adapter.rdd_spec`, the builder replayed
logs use too; the listener has applied a record to the DAG before the engine sees it.

- a job start refreshes the specs of the RDDs its planned stages list (parents, stages,
  shuffle boundary, persisted flag, first job); a stage event refreshes them again only
  when its RDD list is not the one its job's start planned (a retry, or a stage Spark
  described anew) — what changes in between (an unpersist, a registration) refreshes the
  spec where it happens; stage events mark stages submitted or completed, and a job's end
  marks its planned stages that never ran as skipped;
- a task start marks the stage as reading its split now (F stops counting it);
- a block event sets the partition's location and measured size;
- a partition's own compute time comes from :mod:`lineage.timing` (the wall time of the
  dataset's Python pipeline on that partition, minus reading its stored parents), or —
  for a dataset no timer wraps (a DataFrame's cache, a JVM RDD) — from the run time of the
  task that stored it, less its shuffle write, shared between the blocks it stored.

From these the model answers, per partition: F (pending reads of the submitted jobs plus
the reads predicted for later jobs), R (the lineage walk up to stored ancestors or shuffle
files), W, Rd and the hit costs, cost = min(compCost, diskCost), propagation between
parents and children, and the baselines' inputs: LRC's count of references to come and
MRD's distance in stages to the next one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container

from costmodel.adapter import rdd_spec
from costmodel.cost import CostModel, Estimator, LaterGap, LaterReads
from costmodel.disk import DiskCost
from costmodel.types import Location, PartitionCost, PartitionKey
from lineage.dag import LineageDag, Retired
from lineage.events import JobRun, StageRun
from lineage.walk import walk

__all__ = ["Engine"]


class Engine:
    """Keeps a :class:`CostModel` in step with a :class:`LineageDag`; answers the policies.

    ``site_of(rdd_id)`` names the program line of a dataset the manager knows (its call
    site across iterations; other RDDs get the DAG's signature); ``later_reads(rdd_id)``
    predicts the reads of jobs not submitted yet, ``later_gap(rdd_id)`` how many jobs away
    the next one is (MRD's distance); ``memory_only`` holds the RDDs persisted without
    disk. Not thread-safe: the manager calls it under its lock.
    """

    def __init__(
        self,
        dag: LineageDag,
        disk: DiskCost,
        *,
        site_of: Callable[[int], str | None],
        later_reads: LaterReads,
        later_gap: LaterGap | None = None,
        estimator: Estimator | None = None,
        job_reads: Callable[[int, int], None] | None = None,
        memory_only: Container[int] = frozenset(),
    ) -> None:
        self.dag = dag
        self.model = CostModel(
            disk=disk,
            estimator=estimator,
            later_reads=later_reads,
            later_gap=later_gap,
            memory_only=memory_only,
        )
        self._site_of = site_of
        self._job_reads = job_reads
        # what each RDD's spec was last built from: a refresh that finds the same inputs
        # builds nothing (most refreshes, in a program whose stages list long lineages)
        self._spec_inputs: dict[int, tuple] = {}
        # the RDD list each planned stage was learnt with at its job's start
        self._planned: dict[int, tuple] = {}

    # ---- records in ------------------------------------------------------------------------
    def on_job(self, job: JobRun) -> None:
        if job.succeeded is None:  # the start: every planned stage, skipped ones included
            for stage in job.stages:
                self._learn(stage)
                self._planned[stage.stage_id] = stage.rdds
            self.model.set_current_job(job.job_id)
            # Spark numbers jobs and stages from 0 in submission order: how far stage ids
            # advance per job so far (MRD places a later job's read that many stages on)
            self.model.stages_per_job = (self.model.last_stage + 1) / (job.job_id + 1)
            self._count_job_reads(job)
            return
        submitted = self.dag.submitted_stage_ids()
        for stage_id in job.stage_ids:  # planned but never run: their output existed
            if stage_id not in submitted:
                self.model.complete_stage(stage_id)

    def _count_job_reads(self, job: JobRun) -> None:
        """Tell ``job_reads`` how many of the new job's stages read each dataset in its
        plan (its first split's pending reads, nothing started yet): a later job's use of a
        dataset of the same site is predicted to read it as often."""
        if self._job_reads is None:
            return
        for rdd_id in sorted({node.rdd_id for stage in job.stages for node in stage.rdds}):
            if self._site_of(rdd_id) is not None:
                self._job_reads(rdd_id, len(self.model.reference_stages((rdd_id, 0))))

    def on_stage(self, stage: StageRun) -> None:
        if stage.attempt == 0 and self._planned.get(stage.stage_id) == stage.rdds:
            # the RDDs its job's start listed (Spark describes both from the same RDDs): the
            # specs were built then, and what changed since (an unpersist, a registration)
            # refreshed them where it happened
            self.model.last_stage = max(self.model.last_stage, stage.stage_id)
        else:
            self._learn(stage)
        if not stage.completed:
            self.model.current_stage = max(self.model.current_stage, stage.stage_id)
        elif stage.failure_reason is None:
            self.model.complete_stage(stage.stage_id)

    def on_task_start(self, stage_id: int, split: int) -> None:
        """The stage's task for ``split`` runs: it reads that split's stored partitions."""
        self.model.start_task(stage_id, split)

    def on_task_end(self, stage_id: int, split: int) -> None:
        """The stage's task for ``split`` ended: its reads of that split are done."""
        self.model.end_task(stage_id, split)

    def _learn(self, stage: StageRun) -> None:
        self.model.last_stage = max(self.model.last_stage, stage.stage_id)
        for node in stage.rdds:
            self.refresh(node.rdd_id)

    def refresh(self, rdd_id: int) -> None:
        """Re-read one RDD's spec from the DAG (a no-op when nothing changed); also when a
        dataset is registered after Spark described its RDD (its site is known now)."""
        site = self._site_of(rdd_id)
        dag = self.dag
        node = dag.node(rdd_id)
        if node is None:
            return
        inputs = (
            node,
            dag.stages_of(rdd_id),
            dag.first_job_of(rdd_id),
            dag.is_unpersisted(rdd_id),
            site if site is not None else dag.signature(rdd_id),
        )
        if self._spec_inputs.get(rdd_id) == inputs and rdd_id in self.model.rdds:
            return
        spec = rdd_spec(dag, rdd_id, site=site)
        if spec is not None:
            self.model.add_rdd(spec)
            self._spec_inputs[rdd_id] = inputs

    def on_location(self, key: PartitionKey, memory: int, disk: int) -> None:
        """Where the partition is now (summed over executors) and its measured size."""
        if memory > 0:
            location = Location.MEMORY
        elif disk > 0:
            location = Location.DISK
        else:
            location = Location.NONE
        if memory or disk:
            self.model.observe(key, size_bytes=float(memory or disk))
        self.model.set_location(key, location)

    def on_compute_time(self, key: PartitionKey, wall_ms: float) -> float:
        """The partition's pipeline took ``wall_ms`` (reading its parents included); its own
        compute time — what R adds for it — excludes reading the parents that were stored
        then, which R charges as their hit costs. Returns the own time recorded."""
        rdd_id, split = key
        model = self.model
        reading = 0.0
        for parent in model.parents(rdd_id):
            where = model.location((parent, split))
            if where != Location.NONE:
                size = model.size_bytes((parent, split))
                hit = (
                    model.disk.memory_hit_ms if where == Location.MEMORY else model.disk.disk_hit_ms
                )
                reading += hit(size)
        own = max(float(wall_ms) - reading, 0.0)
        model.observe(key, compute_ms=own)
        return own

    def on_task_time(self, keys: list[PartitionKey], task_ms: float) -> float:
        """No timer measured ``keys`` (stored by one task): each gets an even share of the
        task's time less its shuffle write (``task_ms``) — an upper bound, as it includes
        the stage's work downstream of the block. Returns the share."""
        if not keys:
            return 0.0
        share = max(float(task_ms), 0.0) / len(keys)
        for key in keys:
            self.model.observe(key, compute_ms=share)
        return share

    def retire_finished(self, keep: Callable[[int], bool]) -> Retired:
        """At a job's end: the DAG forgets what finished (``keep`` names RDDs the manager
        still holds), and the model follows — so a long program's books stay its live part."""
        retired = self.dag.retire_finished(keep)
        for rdd_id in retired.trimmed:
            if rdd_id in self.model.rdds:
                self.refresh(rdd_id)  # its finished stages left its spec
        for rdd_id in retired.rdds:
            self.model.remove_rdd(rdd_id)
            self._spec_inputs.pop(rdd_id, None)
        for stage_id in retired.stages:
            self._planned.pop(stage_id, None)
        self.model.forget_stages(retired.stages)
        return retired

    def set_disk(self, disk: DiskCost) -> None:
        """The block costs were corrected from the application's own disk traffic."""
        self.model.set_disk(disk)

    def forget(self, rdd_id: int, splits) -> None:
        """The RDD is no longer persisted: its stored partitions are gone, and its spec no
        longer stops R and the reference search there."""
        for split in splits:
            self.model.set_location((rdd_id, split), Location.NONE)
        if rdd_id in self.model.rdds:
            self.refresh(rdd_id)

    # ---- questions out ---------------------------------------------------------------------
    def cost(self, key: PartitionKey, on_disk: bool = False) -> PartitionCost:
        return self.model.cost(key, on_disk=on_disk)

    def inputs(self, key: PartitionKey, on_disk: bool = False) -> dict:
        """F (both parts), R, W, Rd, the hit costs, the costs and the size of a partition,
        as the decision log records them (and MRD's / LRC's inputs). A partition that cannot
        go to disk (persisted in memory only) has W and the disk cost null: no JSON number."""
        cost = self.model.cost(key, on_disk=on_disk)
        return {
            "F": cost.future_refs,
            "F_pending": cost.pending_refs,
            "F_later": cost.later_refs,
            "R": _ms(cost.recompute_ms),
            "W": _ms(cost.write_ms),
            "Rd": _ms(cost.read_ms),
            "hit_memory": _ms(cost.memory_hit_ms),
            "hit_disk": _ms(cost.disk_hit_ms),
            "comp_cost": _ms(cost.comp_cost),
            "disk_cost": _ms(cost.disk_cost),
            "cost": _ms(cost.cost),
            "size": int(cost.size_bytes),
            "refs_to_come": self.model.reference_count(key),
            "next_reference": self.model.next_reference(key),
        }

    def invalidate_references(self) -> None:
        self.model.invalidate_references()

    def descendants_cached(self, rdd_id: int, cached: Callable[[int], bool]) -> list[int]:
        """Cached RDDs below ``rdd_id`` whose R walks through it (stops at cached ones)."""
        found: list[int] = []
        model = self.model

        def through(node: int) -> tuple[int, ...]:
            if node != rdd_id:
                spec = model.rdds.get(node)
                if spec is None or spec.shuffled:
                    return ()
                if cached(node):
                    found.append(node)
                    return ()
            return model.children(node)

        for _ in walk([rdd_id], through):
            pass
        return sorted(found)


def _ms(value: float) -> float | None:
    """A cost in the decision log: milliseconds to the microsecond, None when infinite."""
    return round(value, 3) if math.isfinite(value) else None
