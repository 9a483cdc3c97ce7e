"""``from_lineage``: a :class:`~costmodel.cost.CostModel` from a lineage DAG (live or replayed).

How lineage facts become cost-model inputs, and why:

- Stages: ``stages_of`` includes stages planned by submitted jobs, so references of the
  running job are known before its stages run. Stages Spark skipped (their shuffle output
  existed) never run: they count as completed, or they would hold references forever.
- Call site: the effective call site with its hop count (``LineageDag.signature``), so the
  PythonRDD, PairwiseRDD and ShuffledRDD that one ``reduceByKey`` line creates stay apart
  while the same step of iteration i and i+1 match.
- Shuffled: Spark names a shuffle output ``ShuffledRDD``/``ShuffledRowRDD``/``CoGroupedRDD``/
  ``SubtractedRDD`` (RDDInfo falls back to the class name).
- Compute time: Spark reports the run time of the task that produced a block, not per RDD.
  When one task stored several partitions (a cached RDD and a cached descendant in the same
  stage), its run time is split evenly between them, so R does not count it twice.
- Size: memory + disk size of the stored block. An evicted block reports size 0, which is
  no measurement: the RDD's mean size (or the predictor) stands in for it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from costmodel.cost import CostModel, Estimator, LaterReads
from costmodel.disk import DiskCost
from costmodel.types import Location, RddSpec

if TYPE_CHECKING:  # lineage is pure Python too, but only its types are needed here
    from lineage.dag import LineageDag, PartitionObservation

__all__ = ["SHUFFLE_RDD_NAMES", "from_lineage", "location_of", "rdd_spec", "rdd_specs"]

SHUFFLE_RDD_NAMES = frozenset({"ShuffledRDD", "ShuffledRowRDD", "CoGroupedRDD", "SubtractedRDD"})


def location_of(observation: PartitionObservation) -> Location:
    level = observation.storage_level
    if not level.is_valid:
        return Location.NONE
    return Location.MEMORY if level.use_memory and observation.memory_size > 0 else Location.DISK


def rdd_spec(dag: LineageDag, rdd_id: int, *, site: str | None = None) -> RddSpec | None:
    """The :class:`RddSpec` of one RDD the DAG knows (None if it does not): the one builder
    of specs, for replayed logs and for the live manager alike.

    ``site`` names the program line of a dataset when the caller knows it (the manager
    stamps every dataset the program creates with its user frames); otherwise the call site
    is the DAG's signature, ``"<effective call site>#<hops>"``, which tells apart the RDDs
    one line creates and matches the same step across iterations.
    """
    node = dag.node(rdd_id)
    if node is None:
        return None
    if site is None:
        effective, hops = dag.signature(rdd_id)
        site = f"{effective}#{hops}" if effective else ""
    return RddSpec(
        rdd_id=rdd_id,
        parents=tuple(p for p in node.parent_ids if p != rdd_id),
        num_partitions=max(node.num_partitions, 0),
        stages=dag.stages_of(rdd_id),
        job_id=dag.first_job_of(rdd_id),
        call_site=site,
        shuffled=node.name in SHUFFLE_RDD_NAMES,
        cached=node.storage_level.is_valid and not dag.is_unpersisted(rdd_id),
        name=node.name,
    )


def rdd_specs(dag: LineageDag) -> list[RddSpec]:
    """One :class:`RddSpec` per RDD the lineage DAG knows, in id order."""
    return [spec for rdd_id in sorted(dag.rdds) if (spec := rdd_spec(dag, rdd_id)) is not None]


def from_lineage(
    dag: LineageDag,
    disk: DiskCost,
    *,
    current_job: int | None = None,
    estimator: Estimator | None = None,
    later_reads: LaterReads | None = None,
) -> CostModel:
    """Build a cost model of everything ``dag`` knows now (a snapshot; feed later events
    to the model with ``observe``/``set_location``/``complete_stage``, or rebuild)."""
    specs = rdd_specs(dag)
    completed = set(dag.completed_stage_ids()) | set(dag.skipped_stage_ids())
    job_ids = dag.job_ids()
    if current_job is None and job_ids:
        current_job = max(job_ids)
    model = CostModel(
        specs,
        disk=disk,
        completed_stages=completed,
        current_job=current_job,
        estimator=estimator,
        later_reads=later_reads,
    )
    observations: list[PartitionObservation] = []
    for spec in specs:
        observations.extend(dag.partitions(spec.rdd_id).values())
    per_task: dict[int, int] = defaultdict(int)
    for obs in observations:
        if obs.task_id is not None:
            per_task[obs.task_id] += 1
    for obs in observations:
        key = (obs.rdd_id, obs.split_index)
        size = obs.size if obs.size > 0 else None
        compute = None
        if obs.compute_time_ms is not None:
            share = per_task[obs.task_id] if obs.task_id is not None else 1
            compute = obs.compute_time_ms / max(share, 1)
        if size is not None or compute is not None:
            model.observe(key, size, compute)
        model.set_location(key, location_of(obs))
    return model
