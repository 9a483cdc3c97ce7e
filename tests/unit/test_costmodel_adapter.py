"""``costmodel.from_lineage`` on a LineageDag fed with hand-written lineage records (no JVM)."""

from __future__ import annotations

import pytest

from costmodel import DiskCost, Location, get_policy
from costmodel.adapter import from_lineage
from costmodel.policies import PartitionState, PolicyContext
from lineage.dag import LineageDag
from lineage.events import BlockEvent, JobRun, RddNode, StageRun, StorageLevelInfo, TaskRun

MEMORY_ONLY = StorageLevelInfo(use_memory=True)
DISK_ONLY = StorageLevelInfo(use_disk=True)
MIB = 1 << 20


def _rdds():
    source = RddNode(0, "ParallelCollectionRDD", "parallelize at app.py:3", (), 2)
    parsed = RddNode(1, "PythonRDD", "map at app.py:4", (0,), 2, MEMORY_ONLY)
    shuffled = RddNode(2, "ShuffledRDD", "reduceByKey at app.py:5", (1,), 2)
    scored = RddNode(3, "PythonRDD", "map at app.py:6", (1,), 2)
    return source, parsed, shuffled, scored


def _block(rdd, split, level, size):
    memory = size if level.use_memory else 0
    return BlockEvent(
        f"rdd_{rdd}_{split}", "driver", level, memory, size - memory, None, rdd, split
    )


def _task(stage, split, task_id, run_ms, blocks=()):
    return TaskRun(stage, 0, task_id, split, "driver", 0, run_ms, run_ms, updated_blocks=blocks)


def build_dag() -> LineageDag:
    """Job 0 parses and caches rdd 1 (stage 0); job 1 plans stage 1 (shuffle over rdd 1,
    already run) and stage 2 (maps rdd 1 again, not yet run)."""
    source, parsed, shuffled, scored = _rdds()
    stage0 = StageRun(0, 0, "count", 2, (source, parsed), ())
    stage1 = StageRun(1, 0, "reduce", 2, (source, parsed, shuffled), ())
    stage2 = StageRun(2, 0, "collect", 2, (source, parsed, scored), ())
    events = [
        JobRun(0, (0,), stages=(stage0,)),
        stage0,
        _task(0, 0, 1, 120, (_block(1, 0, MEMORY_ONLY, 2 * MIB),)),
        _task(0, 1, 2, 80, (_block(1, 1, DISK_ONLY, 3 * MIB),)),
        StageRun(0, 0, "count", 2, (source, parsed), (), 1, 2),  # completed
        JobRun(0, (0,), succeeded=True),
        JobRun(1, (1, 2), stages=(stage1, stage2)),
        stage1,
        StageRun(1, 0, "reduce", 2, (source, parsed, shuffled), (), 3, 4),
    ]
    return LineageDag.from_events(events)


@pytest.fixture
def model():
    return from_lineage(build_dag(), DiskCost(2.0, 1.0))


def test_specs_follow_the_lineage(model):
    assert set(model.rdds) == {0, 1, 2, 3}
    assert model.rdds[2].shuffled and not model.rdds[3].shuffled
    assert model.rdds[1].cached and model.rdds[1].job_id == 0
    assert model.rdds[3].job_id == 1
    assert model.current_job == 1
    assert model.completed_stages == {0, 1}


def test_metrics_and_locations_from_blocks(model):
    assert model.size_bytes((1, 0)) == 2 * MIB
    assert model.compute_ms((1, 0)) == 120
    assert model.location((1, 0)) == Location.MEMORY
    assert model.location((1, 1)) == Location.DISK


def test_cached_partition_is_referenced_by_the_pending_stage(model):
    # stage 1 (the shuffle) is done; stage 2 of the running job still reads rdd 1
    assert model.reference_stages((1, 0)) == {2}
    cost = model.cost((1, 1))
    assert cost.on_disk and cost.comp_cost == pytest.approx(3.0)  # Rd x F = 3 MiB x 1 ms


def test_blaze_keeps_it_and_policies_accept_the_model(model):
    states = [
        PartitionState((1, 0), 2 * MIB, Location.MEMORY),
        PartitionState((1, 1), 3 * MIB, Location.DISK),
    ]
    plan = get_policy("blaze").plan(states, 10 * MIB, PolicyContext(model))
    assert plan.states == {(1, 0): Location.MEMORY, (1, 1): Location.MEMORY}


def test_one_task_storing_two_partitions_splits_its_time():
    source, parsed, _, _ = _rdds()
    child = RddNode(4, "PythonRDD", "map at app.py:9", (1,), 2, MEMORY_ONLY)
    stage = StageRun(0, 0, "count", 2, (source, parsed, child), ())
    blocks = (_block(1, 0, MEMORY_ONLY, MIB), _block(4, 0, MEMORY_ONLY, MIB))
    dag = LineageDag.from_events(
        [JobRun(0, (0,), stages=(stage,)), stage, _task(0, 0, 7, 90, blocks)]
    )
    model = from_lineage(dag, DiskCost(1.0, 1.0))
    assert model.compute_ms((1, 0)) == model.compute_ms((4, 0)) == 45
