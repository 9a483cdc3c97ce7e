"""The live engine: the cost model fed one lineage record at a time, and the policies on it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blaze.engine import Engine
from blaze.explain import DecisionLog, read_decision_log, write_decision_log
from blaze.ledger import Ledger
from blaze.policies import get_manager_policy
from blaze_errors import InputError
from costmodel.adapter import rdd_spec
from costmodel.disk import DiskCost
from costmodel.policies import PartitionState
from costmodel.types import Location
from lineage.dag import LineageDag
from lineage.events import (
    BlockEvent,
    JobRun,
    RddNode,
    RddUnpersisted,
    StageRun,
    StorageLevelInfo,
    TaskRun,
    TaskStarted,
)

CACHED = StorageLevelInfo(use_disk=True, use_memory=True)
PLAIN = StorageLevelInfo()


def node(rdd_id, parents=(), cached=False, parts=4, name="PythonRDD"):
    return RddNode(rdd_id, name, "app.py:1", tuple(parents), parts, CACHED if cached else PLAIN)


def stage(stage_id, *nodes, tasks=4, completed=False):
    return StageRun(stage_id, 0, f"s{stage_id}", tasks, tuple(nodes), (), completed=completed)


def engine(later=0.0, write=1.0, read=1.0):
    """An engine over its own lineage DAG; ``later`` reads predicted for every RDD."""
    return Engine(
        LineageDag(), DiskCost(write, read), site_of=lambda rdd: None, later_reads=lambda r: later
    )


def on_stage(eng, record):
    """As the listener does: the DAG applies the record, then the engine sees it."""
    eng.dag.apply(record)
    eng.on_stage(record)


def start_job(eng, job_id, *stages, submit=None):
    """A job start with its planned stages; ``submit`` of them (default all) then run."""
    job = JobRun(job_id, tuple(s.stage_id for s in stages), stages=tuple(stages))
    eng.dag.apply(job)
    eng.on_job(job)
    for s in stages[:submit]:
        on_stage(eng, s)


def test_recompute_walks_the_lineage_and_rises_when_a_parent_is_dropped():
    eng = engine()
    # 0 (cached) -> 1 -> 2 (cached): one stage computes both, then a stage reads 2
    start_job(eng, 0, stage(0, node(2, [1], cached=True), node(1, [0]), node(0, cached=True)))
    on_stage(eng, stage(1, node(3, [2]), node(2, [1], cached=True)))
    eng.on_compute_time((0, 0), 300.0)  # the parent's partition took 300 ms
    eng.on_compute_time((2, 0), 20.0)  # the child's, from the cached parent, 20 ms
    eng.on_location((0, 0), 1 << 20, 0)
    eng.on_location((2, 0), 1 << 20, 0)
    assert eng.cost((2, 0)).recompute_ms == pytest.approx(20.0)
    eng.on_location((0, 0), 0, 0)  # the parent is dropped: the child's R now includes it
    assert eng.cost((2, 0)).recompute_ms == pytest.approx(320.0)
    eng.on_location((0, 0), 0, 1 << 20)  # on disk instead: its read replaces its compute
    assert eng.cost((2, 0)).recompute_ms == pytest.approx(21.0)


def test_shuffle_boundary_stops_the_walk_with_the_shuffle_read():
    eng = engine(read=2.0)
    start_job(
        eng,
        0,
        stage(1, node(6, [5], cached=True), node(5, [4], name="ShuffledRDD")),
        stage(0, node(4, [3]), node(3)),
    )
    eng.on_compute_time((6, 1), 10.0)
    eng.on_location((5, 1), 0, 0)
    eng.model.observe((5, 1), size_bytes=float(1 << 20), compute_ms=5.0)
    # 10 (own) + 5 (build the shuffled partition) + 2 ms (re-read 1 MiB of shuffle files)
    assert eng.cost((6, 1)).recompute_ms == pytest.approx(17.0)


def test_f_sums_the_pending_reads_and_the_reads_predicted_for_later_jobs():
    eng = engine(later=3.0)  # the site's usage: three more jobs will read it
    start_job(
        eng,
        0,
        stage(0, node(1, cached=True)),
        stage(1, node(2, [1]), node(1, cached=True)),
        stage(2, node(3, [1]), node(1, cached=True)),
    )
    cost = eng.cost((1, 0))
    assert (cost.pending_refs, cost.later_refs, cost.future_refs) == (2, 3.0, 5.0)
    on_stage(eng, stage(1, node(2, [1]), completed=True))
    assert eng.cost((1, 0)).future_refs == 1 + 3.0
    on_stage(eng, stage(2, node(3, [1]), completed=True))
    assert eng.cost((1, 0)).future_refs == 0 + 3.0  # the DAG shows none: later jobs only


def test_the_stage_reading_a_split_now_is_not_a_future_read_of_it():
    """``links`` read by the running stage and by a later one: while the running stage's
    task for split 0 is under way, split 0 has one future read left, split 1 still two."""
    eng = engine()
    links = node(1, cached=True)
    start_job(
        eng,
        0,
        stage(0, links),
        stage(1, node(2, [1]), links),
        stage(2, node(3, [1]), links),
        submit=2,
    )
    on_stage(eng, stage(0, links, completed=True))
    assert [eng.cost((1, s)).future_refs for s in (0, 1)] == [2, 2]  # stage 1 submitted only
    eng.dag.apply(TaskStarted(1, 0, 7, 0, "driver"))
    eng.on_task_start(1, 0)
    assert [eng.cost((1, s)).future_refs for s in (0, 1)] == [1, 2]
    assert eng.model.reference_stages((1, 0)) == {2}
    assert eng.model.next_reference((1, 0)) == 1  # stage 2, one stage after stage 1


def _three_datasets_read_at_known_distances():
    """Datasets 10, 20, 30 cached in stage 0; read next by stages 1, 3 and 5 respectively."""
    eng = engine(later=0.0)
    stages = [stage(0, node(10, cached=True), node(20, cached=True), node(30, cached=True))]
    readers = {1: 10, 3: 20, 5: 30, 6: 30}
    for stage_id in range(1, 7):
        rdd = readers.get(stage_id)
        nodes = (node(100 + stage_id, [rdd]), node(rdd, cached=True)) if rdd else ()
        stages.append(stage(stage_id, *nodes))
    start_job(eng, 0, *stages, submit=1)
    on_stage(eng, stage(0, completed=True))
    for rdd in (10, 20, 30):
        eng.on_compute_time((rdd, 0), 50.0)
        eng.on_location((rdd, 0), 100, 0)
    return eng


def test_mrd_evicts_the_partition_whose_next_reference_is_farthest():
    eng = _three_datasets_read_at_known_distances()
    assert [eng.model.next_reference((r, 0)) for r in (10, 20, 30)] == [1, 3, 5]
    resident = [PartitionState((r, 0), 100, Location.MEMORY, last_access=r) for r in (10, 20)]
    resident.append(PartitionState((30, 0), 100, Location.MEMORY, last_access=99))
    eng.on_compute_time((40, 0), 50.0)
    incoming = PartitionState((40, 0), 100, Location.MEMORY, last_access=100)
    decision = get_manager_policy("mrd").decide(incoming, resident, 300, eng.model)
    assert decision.admit_to == Location.MEMORY
    assert [key for key, _ in decision.victims] == [(30, 0)]


def test_lrc_evicts_the_smallest_reference_count():
    eng = _three_datasets_read_at_known_distances()
    # 30 is read by two pending stages (5 and 6), 10 and 20 by one each
    assert [eng.model.reference_count((r, 0)) for r in (10, 20, 30)] == [1, 1, 2]
    resident = [
        PartitionState((30, 0), 100, Location.MEMORY, last_access=1),
        PartitionState((20, 0), 100, Location.MEMORY, last_access=2),
        PartitionState((10, 0), 100, Location.MEMORY, last_access=3),
    ]
    incoming = PartitionState((40, 0), 100, Location.MEMORY, last_access=100)
    decision = get_manager_policy("lrc").decide(incoming, resident, 300, eng.model)
    assert [key for key, _ in decision.victims] == [(20, 0)]  # fewest refs, least recent


def test_blaze_keeps_the_costly_partition_and_drops_the_cheap_larger_one():
    eng = engine(later=1.0, write=2000.0, read=2000.0)  # a slow disk
    start_job(eng, 0, stage(0, node(1, cached=True)), stage(1, node(2, cached=True)))
    eng.on_compute_time((1, 0), 400.0)  # costly: 400 ms per partition, small
    eng.on_location((1, 0), 40_000, 0)
    eng.on_compute_time((2, 0), 5.0)  # cheap: 5 ms per partition, larger
    eng.on_location((2, 0), 120_000, 0)
    cheap = eng.cost((2, 0))
    assert cheap.comp_cost < cheap.disk_cost
    resident = [PartitionState((1, 0), 40_000, Location.MEMORY)]
    incoming = PartitionState((2, 0), 120_000, Location.MEMORY)
    decision = get_manager_policy("blaze").decide(incoming, resident, 100_000, eng.model)
    assert decision.victims == ()
    assert decision.admit_to == Location.NONE  # dropped, not spilled


def test_union_stage_tasks_are_not_phantom_misses():
    ledger = Ledger()
    links = node(1, cached=True, parts=2)
    ledger.apply_stage(stage(0, links, tasks=2))
    for split in (0, 1):
        ledger.apply_block(BlockEvent(f"rdd_1_{split}", "driver", CACHED, 100, 0, None, 1, split))
    # a union of the cached RDD (2 partitions) with another (4): 6 tasks, other indexes
    ledger.apply_stage(stage(1, node(9, [1, 8], parts=6), links, node(8), tasks=6))
    for index in range(6):
        ledger.apply_task(TaskRun(1, 0, 100 + index, index, "driver", 0, 1, 5))
    report = ledger.report()
    assert (report["misses"], report["recomputed_partitions"]) == (2, 0)


def test_decision_log_is_bounded_and_round_trips(tmp_path):
    log = DecisionLog(capacity=3)
    for split in range(5):
        log.record("admit", rdd=1, split=split, F=1.0)
    assert len(log) == 3 and log.dropped == 2
    assert [e["split"] for e in log.for_rdd(1)] == [2, 3, 4]
    path = write_decision_log(tmp_path / "d.jsonl", {"app_name": "x"}, log)
    header, entries = read_decision_log(path)
    assert header["app_name"] == "x" and len(entries) == 3
    (tmp_path / "other.txt").write_text('{"Event": "SparkListenerLogStart"}\n')
    with pytest.raises(InputError, match="is not a Blaze decision log"):
        read_decision_log(tmp_path / "other.txt")


def test_blaze_explain_on_a_file_that_is_not_a_decision_log_is_one_line_exit_2(tmp_path, capsys):
    from blaze_cli import main

    event_log = tmp_path / "app-1"
    event_log.write_text('{"Event": "SparkListenerLogStart", "Spark Version": "4.3.0"}\n')
    assert main(["explain", str(event_log)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a Blaze decision log" in err[0]
    # the manager writes its log next to the event log: then the event log is accepted
    write_decision_log(
        tmp_path / ".app-1.blaze-decisions.jsonl",
        {"app_name": "x", "policy": "blaze"},
        [{"seq": 1, "action": "drop", "rdd": 3, "split": 0, "F": 1.0, "rule": "victim"}],
    )
    assert main(["explain", str(event_log)]) == 0
    assert "drop" in capsys.readouterr().out


def test_a_job_start_counts_the_stages_planned_to_read_each_dataset():
    """What ``job_reads`` learns a later job's use is worth: a PageRank iteration reads the
    cached ``ranks`` (rdd 1) in the join's stage and in the update's."""
    counted = []
    eng = Engine(
        LineageDag(),
        DiskCost(1.0, 1.0),
        site_of=lambda rdd: "pagerank.py:66" if rdd == 1 else None,
        later_reads=lambda r: 0.0,
        job_reads=lambda rdd, reads: counted.append((rdd, reads)),
    )
    ranks = node(1, [0], cached=True)
    computes = stage(0, node(5, [1]), ranks, node(0))  # computes it, and counts it
    start_job(eng, 0, computes)
    assert counted == [(1, 1)]  # only datasets with a site are counted
    on_stage(eng, stage(0, node(5, [1]), ranks, node(0), completed=True))
    eng.on_location((1, 0), 1 << 10, 0)
    counted.clear()
    join, update = stage(1, node(2, [1]), ranks), stage(2, node(3, [1]), ranks)
    start_job(eng, 1, join, update, stage(3, node(4)))  # after the shuffle: no read
    assert counted == [(1, 2)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["job", "retry", "unpersist", "persist", "end"]),
            st.lists(st.integers(0, 7), min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_the_engine_keeps_every_spec_as_the_dag_describes_it_now(steps):
    """The engine rebuilds an RDD's spec only when what it is built from changed (a stage
    event repeating its job's plan, most refreshes, builds nothing): whatever the order of
    job starts, retried stages, persists, unpersists and job ends, every spec it holds is
    the one the one builder makes from the DAG at that moment."""
    eng = engine()
    levels = dict.fromkeys(range(8), False)
    open_jobs: list[tuple[int, StageRun]] = []
    next_stage = next_job = 0

    def described(rdd_id):  # RDD i's parent is i - 1: every stage lists a narrow chain
        return node(rdd_id, [rdd_id - 1] if rdd_id else [], cached=levels[rdd_id], parts=2)

    def check():
        for rdd_id, spec in eng.model.rdds.items():
            assert spec == rdd_spec(eng.dag, rdd_id), rdd_id

    for kind, rdds in steps:
        chain = tuple(described(r) for r in range(max(rdds), -1, -1))
        if kind == "job":
            planned = stage(next_stage, *chain, tasks=2)
            start_job(eng, next_job, planned, submit=0)
            on_stage(eng, StageRun(**{**planned.__dict__}))  # submitted: the plan's list
            open_jobs.append((next_job, planned))
            next_stage, next_job = next_stage + 1, next_job + 1
        elif kind == "retry" and open_jobs:  # a new attempt, described afresh
            _, planned = open_jobs[-1]
            on_stage(eng, StageRun(planned.stage_id, 1, "retry", 2, chain, ()))
        elif kind in ("persist", "unpersist"):
            for rdd_id in rdds:
                levels[rdd_id] = kind == "persist"
                if kind == "unpersist":
                    eng.dag.apply(RddUnpersisted(rdd_id))
                    eng.forget(rdd_id, ())  # as the manager's books do on the record
        elif kind == "end" and open_jobs:
            job_id, planned = open_jobs.pop(0)
            on_stage(eng, StageRun(**{**planned.__dict__, "completed": True}))
            eng.dag.apply(JobRun(job_id, (planned.stage_id,), succeeded=True))
            eng.on_job(JobRun(job_id, (planned.stage_id,), succeeded=True))
            eng.retire_finished(lambda rdd_id: levels[rdd_id])
        check()
