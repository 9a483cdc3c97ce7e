"""The live application's cost model: the one source of every quantity a policy decides on.

The manager keeps the running application in :class:`costmodel.cost.CostModel` terms and
feeds it the listener's records one at a time (no rebuild per event):

- a job start or stage event adds or extends RDD specs (parents, stages, shuffle boundary,
  persisted flag, the job that first computed it) and marks stages completed or skipped;
- a block event sets the partition's location and measured size;
- a task that computed cached partitions gives their compute time (its run time, split
  evenly between the partitions it stored, so R never counts one task twice).

From these the model answers, per partition: F (pending stages that read it, walking child
RDDs; across jobs the model's same-callSite and consecutive-job rules, and when the DAG shows
nothing the usage tracker's per-site expectation — profiled or learnt online), R (the lineage
walk summing measured compute times up to a stored ancestor plus its disk read, or a shuffle
boundary plus its re-read), W and Rd (the calibrated disk), cost = min(compCost, diskCost),
propagation between parents and children, and the baselines' inputs: LRC's reference count
(pending child stages that read the block) and MRD's distance in stages to the next reference.

Per-event work stays flat as partitions grow: the model memoises per-partition terms and a
change invalidates only the same split of related RDDs; the RDD specs are replaced only when a
stage adds something new.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from costmodel.adapter import SHUFFLE_RDD_NAMES
from costmodel.cost import CostModel, Estimator
from costmodel.disk import DiskCost
from costmodel.types import Location, PartitionCost, PartitionKey, RddSpec
from lineage.dag import is_python_call_site
from lineage.events import JobRun, RddNode, StageRun

__all__ = ["Engine", "LiveCostModel"]

FutureFallback = Callable[[int], float]


class LiveCostModel(CostModel):
    """A :class:`CostModel` whose F falls back on the job-level usage prediction.

    The online DAG only knows the stages of jobs already submitted; when it shows no future
    reference for a partition, the number of later jobs expected to read the dataset (from a
    profile, or learnt from earlier generations of the same site) stands in for F.
    """

    def __init__(self, disk: DiskCost, fallback: FutureFallback, **options) -> None:
        super().__init__(disk=disk, **options)
        self._future_fallback = fallback
        self.current_stage = 0  # the newest stage submitted
        self.last_stage = 0  # the newest stage any job planned

    def future_refs(self, key: PartitionKey) -> float:  # type: ignore[override]
        count = super().future_refs(key)
        if count > 0:
            return float(count)
        return float(self._future_fallback(key[0]))

    def reference_count(self, key: PartitionKey) -> int:
        """LRC's count: not-yet-computed stages that read the block (else the expectation)."""
        stages = len(self.reference_stages(key))
        return stages if stages else math.ceil(self._future_fallback(key[0]))

    def next_reference(self, key: PartitionKey) -> int | None:
        """MRD's distance in stages to the next reference; None when nothing will read it.

        A reference the DAG shows is ``stage - current stage`` away; one predicted only for a
        later job lies beyond every stage known now.
        """
        stages = self.reference_stages(key)
        if stages:
            return max(min(stages) - self.current_stage, 0)
        if self.future_refs(key) > 0:
            return max(self.last_stage - self.current_stage, 0) + 1
        return None


class Engine:
    """Feeds a :class:`LiveCostModel` from lineage records; answers the policies' questions.

    ``site_of(rdd_id)`` names the program line of a dataset the manager knows (its call
    site across iterations); ``fallback(rdd_id)`` is the job-level F used when the DAG shows
    no reference. Not thread-safe: the manager calls it under its lock.
    """

    def __init__(
        self,
        disk: DiskCost,
        *,
        site_of: Callable[[int], str | None],
        fallback: FutureFallback,
        auto_cache: bool = True,
        estimator: Estimator | None = None,
    ) -> None:
        self.model = LiveCostModel(disk, fallback, auto_cache=auto_cache, estimator=estimator)
        self._site_of = site_of
        self._nodes: dict[int, RddNode] = {}
        self._stages: dict[int, set[int]] = {}
        self._first_job: dict[int, int] = {}
        self._stage_job: dict[int, int] = {}
        self._submitted: set[int] = set()

    # ---- records in ------------------------------------------------------------------------
    def on_job(self, job: JobRun) -> None:
        if job.succeeded is None:  # the start: every planned stage, skipped ones included
            for stage_id in job.stage_ids:
                self._stage_job[stage_id] = job.job_id
            for stage in job.stages:
                self._learn(stage, job.job_id)
            self.model.set_current_job(job.job_id)
            return
        for stage_id in job.stage_ids:  # planned but never run: their output existed
            if stage_id not in self._submitted:
                self.model.complete_stage(stage_id)

    def on_stage(self, stage: StageRun) -> None:
        self._submitted.add(stage.stage_id)
        self._learn(stage, self._stage_job.get(stage.stage_id))
        if not stage.completed:
            if stage.stage_id > self.model.current_stage:
                self.model.current_stage = stage.stage_id
        elif stage.failure_reason is None:
            self.model.complete_stage(stage.stage_id)

    def _learn(self, stage: StageRun, job_id: int | None) -> None:
        if stage.stage_id > self.model.last_stage:
            self.model.last_stage = stage.stage_id
        for node in stage.rdds:
            stages = self._stages.setdefault(node.rdd_id, set())
            known = self._nodes.get(node.rdd_id)
            if (
                known is not None
                and stage.stage_id in stages
                and known.parent_ids == node.parent_ids
                and known.storage_level == node.storage_level
            ):
                continue
            stages.add(stage.stage_id)
            self._nodes[node.rdd_id] = node
            if job_id is not None:
                self._first_job.setdefault(node.rdd_id, job_id)
            self.model.add_rdd(self._spec(node))

    def _spec(self, node: RddNode) -> RddSpec:
        site = self._site_of(node.rdd_id)
        if site is None:
            site = node.call_site if is_python_call_site(node.call_site) else ""
        return RddSpec(
            rdd_id=node.rdd_id,
            parents=tuple(p for p in node.parent_ids if p != node.rdd_id),
            num_partitions=max(node.num_partitions, 0),
            stages=frozenset(self._stages.get(node.rdd_id, ())),
            job_id=self._first_job.get(node.rdd_id),
            call_site=site,
            shuffled=node.name in SHUFFLE_RDD_NAMES,
            cached=node.storage_level.is_valid,
            name=node.name,
        )

    def refresh_site(self, rdd_id: int) -> None:
        """A dataset was registered after Spark described its RDD: rename its call site."""
        node = self._nodes.get(rdd_id)
        if node is not None:
            self.model.add_rdd(self._spec(node))

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

    def on_computed(self, keys: list[PartitionKey], run_time_ms: float) -> None:
        """One task computed (and stored) ``keys``: each gets an even share of its run time."""
        if not keys:
            return
        share = max(float(run_time_ms), 0.0) / len(keys)
        for key in keys:
            self.model.observe(key, compute_ms=share)

    def forget(self, rdd_id: int, splits) -> None:
        for split in splits:
            self.model.set_location((rdd_id, split), Location.NONE)

    # ---- questions out ---------------------------------------------------------------------
    def cost(self, key: PartitionKey, on_disk: bool = False) -> PartitionCost:
        return self.model.cost(key, on_disk=on_disk)

    def inputs(self, key: PartitionKey, on_disk: bool = False) -> dict:
        """F, R, W, Rd, cost and size of a partition, as the decision log records them."""
        cost = self.model.cost(key, on_disk=on_disk)
        return {
            "F": cost.future_refs,
            "R": round(cost.recompute_ms, 3),
            "W": round(cost.write_ms, 3),
            "Rd": round(cost.read_ms, 3),
            "comp_cost": round(cost.comp_cost, 3),
            "disk_cost": round(cost.disk_cost, 3),
            "cost": round(cost.cost, 3),
            "size": int(cost.size_bytes),
        }

    def invalidate_references(self) -> None:
        self.model.invalidate_references()

    def descendants_cached(self, rdd_id: int, cached: Callable[[int], bool]) -> list[int]:
        """Cached RDDs below ``rdd_id`` whose R walks through it (stops at cached ones)."""
        found: list[int] = []
        seen = {rdd_id}
        stack = list(self.model.children(rdd_id))
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            spec = self.model.rdds.get(node)
            if spec is None or spec.shuffled:
                continue
            if cached(node):
                found.append(node)
                continue
            stack.extend(self.model.children(node))
        return sorted(found)
