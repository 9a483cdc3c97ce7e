"""The cost model's inputs on hand-built DAGs (no JVM): F, R, hit costs, the baselines' inputs,
and how the manager measures them (partition timer, task shares, disk rates, dead writes)."""

from __future__ import annotations

import pytest

from blaze.config import KEYWORDS, SETTINGS, BlazeConfig, merge_overrides
from blaze.engine import Engine
from blaze.explain import DecisionLog
from blaze.ledger import UNPERSISTED_REMEMBERED, Ledger
from blaze.measurements import SiteMeasurements
from blaze.prefetch import AllowBack, SpilledPartitions
from costmodel import CostModel, DiskCost, Location, PartitionMetrics, RddSpec
from costmodel.disk import OnlineDiskCost
from costmodel.policies import PartitionState, PolicyContext, get_policy
from costmodel.predict import Predictors
from lineage.dag import LineageDag
from lineage.events import (
    BlockEvent,
    JobRun,
    RddNode,
    StageRun,
    StorageLevelInfo,
    TaskRun,
    TaskStarted,
)
from lineage.parse import parse_event
from lineage.timing import PartitionTime, PartitionTimer, TimesParam, timed
from lineage.walk import ancestors, breadth_first, descendants, is_ancestor, walk

MIB = 1 << 20
CACHED = StorageLevelInfo(use_disk=True, use_memory=True)


def links_model(later: float = 0.0) -> CostModel:
    """``links`` (0) read by stage 1 (running) through child 1 and by stage 2 through child 2;
    ``later`` reads predicted for it in jobs not submitted yet."""
    rdds = [
        RddSpec(0, (), 4, frozenset({0}), cached=True),
        RddSpec(1, (0,), 4, frozenset({1})),
        RddSpec(2, (0,), 4, frozenset({2})),
    ]
    return CostModel(
        rdds,
        disk=DiskCost(1.0, 1.0),
        completed_stages=[0],
        later_reads=lambda rdd: later if rdd == 0 else 0.0,
    )


# ---- F ------------------------------------------------------------------------------------


def test_the_running_stages_read_of_a_split_is_not_a_future_reference():
    model = links_model()
    assert model.future_refs((0, 0)) == 2
    model.start_task(1, 0)  # stage 1's task for split 0 runs: it reads links' split 0 now
    assert model.reference_stages((0, 0)) == {2}
    assert model.future_refs((0, 0)) == 1
    assert model.future_refs((0, 1)) == 2  # split 1's task has not started
    model.complete_stage(1)
    assert model.future_refs((0, 1)) == 1


def test_a_running_task_that_found_the_partition_stored_reads_it_until_it_ends():
    """Stage 1's task for split 0 started while links' split 0 was stored: it reads it some
    time during its run (a narrow join computes one side first), so it counts until it
    ends. A task that started before the partition was stored is the one computing it."""
    model = links_model()
    model.set_location((0, 0), Location.MEMORY)
    model.start_task(1, 0)
    assert model.reference_stages((0, 0)) == {1, 2}
    model.end_task(1, 0)
    assert model.reference_stages((0, 0)) == {2}
    model.start_task(2, 1)  # split 1 not stored yet: stage 2's task computes it
    model.set_location((0, 1), Location.MEMORY)
    assert model.reference_stages((0, 1)) == {1}


def test_pending_and_later_job_reads_are_summed():
    model = links_model(later=3.0)
    cost = model.cost((0, 0))
    assert (cost.pending_refs, cost.later_refs, cost.future_refs) == (2, 3.0, 5.0)
    model.complete_stage(1)
    model.complete_stage(2)
    assert model.future_refs((0, 0)) == 3.0  # the DAG shows none: the later jobs remain


def test_an_rdd_with_several_children_is_not_cached_unless_persisted():
    """``will_cache`` is what persists: a reused RDD nobody persists does not end the walk,
    so its readers' stages are reads of its parent's partitions too."""
    rdds = [
        RddSpec(0, (), 1, frozenset({0}), cached=True),
        RddSpec(1, (0,), 1, frozenset({1})),  # two children, not persisted
        RddSpec(2, (1,), 1, frozenset({2})),
        RddSpec(3, (1,), 1, frozenset({3})),
    ]
    model = CostModel(rdds, disk=DiskCost(1.0, 1.0), completed_stages=[0])
    assert not model.will_cache(1)
    assert model.reference_stages((0, 0)) == {1, 2, 3}
    model.add_rdd(RddSpec(1, (0,), 1, frozenset({1}), cached=True))
    assert model.reference_stages((0, 0)) == {1}  # now stage 1 stores 1; 2 and 3 read it


def test_a_cached_child_whose_task_runs_still_ends_the_walk():
    """The running stage stores the cached child: later stages read the child, not p."""
    rdds = [
        RddSpec(0, (), 1, frozenset({0}), cached=True),
        RddSpec(1, (0,), 1, frozenset({1}), cached=True),
        RddSpec(2, (1,), 1, frozenset({2})),
    ]
    model = CostModel(rdds, disk=DiskCost(1.0, 1.0), completed_stages=[0])
    model.start_task(1, 0)
    assert model.reference_stages((0, 0)) == frozenset()


def test_lrc_counts_references_to_come_and_mrd_measures_their_distance():
    model = links_model(later=1.0)
    model.current_stage, model.last_stage = 1, 2
    assert model.reference_count((0, 0)) == 2 + 1
    assert model.next_reference((0, 0)) == 0  # stage 1, submitted, not started for split 0
    model.start_task(1, 0)
    assert model.next_reference((0, 0)) == 1  # stage 2
    model.complete_stage(2)
    model.start_task(2, 0)
    # only a later job reads it: beyond every planned stage
    assert model.next_reference((0, 0)) == (2 - 1) + 1
    dead = links_model(later=0.0)
    for stage in (1, 2):
        dead.complete_stage(stage)
    assert dead.reference_count((0, 0)) == 0 and dead.next_reference((0, 0)) is None


def test_mrd_places_a_later_jobs_read_by_the_gap_until_it():
    """Two datasets only later jobs read: one read by the current job (next read: the next
    job), one not read for three jobs (next read predicted about three jobs away): MRD's
    distances differ by the stages of the jobs between, so it evicts the second first."""
    rdds = [RddSpec(r, (), 1, frozenset({0}), cached=True) for r in (1, 2)]
    model = CostModel(
        rdds,
        disk=DiskCost(1.0, 1.0),
        completed_stages=[0],
        later_reads=lambda rdd: 1.0,
        later_gap=lambda rdd: {1: 1, 2: 3}[rdd],
    )
    model.current_stage, model.last_stage, model.stages_per_job = 10, 12, 4.0
    assert model.next_reference((1, 0)) == 3  # past stage 12
    assert model.next_reference((2, 0)) == 3 + 8  # and two more jobs of four stages
    resident = [PartitionState((r, 0), 10, Location.MEMORY, last_access=r) for r in (1, 2)]
    decision = get_policy("mrd").admit(
        PartitionState((9, 0), 10), resident, 20, PolicyContext(costs=model)
    )
    assert [key for key, _ in decision.victims] == [(2, 0)]  # LRU would take (1, 0)


# ---- R and the hit costs ------------------------------------------------------------------


def chain(disk: DiskCost) -> CostModel:
    """0 -> 1 -> 2 -> 3 -> 4, one MiB each, own compute 10, 20, 30, 40, 50 ms."""
    rdds = [RddSpec(r, (r - 1,) if r else (), 1, frozenset({0})) for r in range(5)]
    metrics = {(r, 0): PartitionMetrics(MIB, 10.0 * (r + 1)) for r in range(5)}
    return CostModel(rdds, metrics, disk)


def test_r_of_a_narrow_chain_stops_at_a_stored_ancestor_and_pays_its_hit():
    disk = DiskCost(write_ms_per_mib=5.0, read_ms_per_mib=3.0, deserialize_ms_per_mib=2.0)
    model = chain(disk)
    assert model.recompute_ms((4, 0)) == 50 + 40 + 30 + 20 + 10
    model.set_location((2, 0), Location.MEMORY)  # read it: deserialize 1 MiB
    assert model.recompute_ms((4, 0)) == 50 + 40 + 2.0
    model.set_location((2, 0), Location.DISK)  # read it from disk, then deserialize
    assert model.recompute_ms((4, 0)) == 50 + 40 + 3.0 + 2.0
    model.set_location((3, 0), Location.MEMORY)  # the nearest stored ancestor ends the walk
    assert model.recompute_ms((4, 0)) == 50 + 2.0


def test_hit_costs_are_shown_and_common_to_every_way_of_serving_a_read():
    disk = DiskCost(write_ms_per_mib=5.0, read_ms_per_mib=3.0, deserialize_ms_per_mib=2.0)
    model = chain(disk)
    model.set_location((3, 0), Location.MEMORY)
    cost = model.cost((4, 0))
    assert (cost.memory_hit_ms, cost.disk_hit_ms) == (2.0, 5.0)
    # F = 0 here; with one future read: memory 2, disk 5 + 5 (write), recompute 52 + 2
    one = cost.adjusted(extra_refs=1.0)
    assert one.comp_cost == pytest.approx((52.0 + 2.0) - 2.0)
    assert one.disk_cost == pytest.approx((5.0 + 5.0) - 2.0 + 0.0)
    assert one.as_dict()["hit_disk"] == 5.0


def test_an_unmeasured_partition_takes_the_estimate_not_a_never_drop_figure():
    from costmodel.cost import Estimate

    model = CostModel(
        [RddSpec(0, (), 2)],
        disk=DiskCost(1000.0, 1000.0),
        estimator=lambda spec, split: Estimate(MIB, 7.0),
    )
    cost = model.cost((0, 1))
    assert cost.recompute_ms == 7.0  # the site's prediction, whatever the disk costs


# ---- the engine's measurements ------------------------------------------------------------


def engine_with_a_cached_parent() -> Engine:
    dag = LineageDag()
    parent = RddNode(1, "PythonRDD", "a.py:1", (), 2, CACHED)
    child = RddNode(2, "PythonRDD", "a.py:2", (1,), 2, CACHED)
    stage = StageRun(0, 0, "s0", 2, (child, parent), ())
    job = JobRun(0, (0,), stages=(stage,))
    disk = DiskCost(1.0, 4.0, deserialize_ms_per_mib=2.0)
    engine = Engine(dag, disk, site_of=lambda r: None, later_reads=lambda r: 1.0)
    for record in (job, stage):
        dag.apply(record)
    engine.on_job(job)
    engine.on_stage(stage)
    return engine


def test_own_compute_time_excludes_reading_the_stored_parents():
    engine = engine_with_a_cached_parent()
    engine.on_location((1, 0), MIB, 0)  # parent in memory: its read costs 2 ms
    assert engine.on_compute_time((2, 0), 30.0) == pytest.approx(28.0)
    engine.on_location((1, 1), 0, MIB)  # on disk: 4 + 2 ms
    assert engine.on_compute_time((2, 1), 30.0) == pytest.approx(24.0)
    engine.on_location((2, 0), MIB, 0)
    assert engine.cost((2, 0)).recompute_ms == pytest.approx(28.0 + 2.0)


def test_the_engine_reads_the_one_lineage_graph():
    engine = engine_with_a_cached_parent()
    assert engine.model.rdds[2].parents == (1,)
    assert engine.model.rdds[2].call_site == "a.py:2#0"  # the DAG's signature convention
    assert engine.model.rdds[2].stages == engine.dag.stages_of(2)


class _Timer:
    """The timer's driver side without Spark: reports what a worker would have added."""

    def __init__(self) -> None:
        self.reported: dict = {}
        self.split: dict = {}

    def instrument(self, rdd, token, split=True):
        self.split[token] = split
        return True

    def drain(self):
        out, self.reported = self.reported, {}
        return out


def measurements() -> tuple[SiteMeasurements, _Timer]:
    engine = engine_with_a_cached_parent()
    timer = _Timer()
    online = OnlineDiskCost(engine.model.disk, prior_mib=1.0, window_mib=1e9, tolerance=0.0)
    measure = SiteMeasurements(
        Predictors(), engine, online, timer, site_of=lambda rdd: None, on_error=_raise
    )
    return measure, timer


def _raise(where: str, exc: Exception) -> None:
    raise exc


def task(stage, split, run_ms, **kw):
    return TaskRun(stage, 0, 100 + split, split, "driver", 0, 1, run_ms, **kw)


def test_timed_partitions_get_their_own_time_and_untimed_ones_a_task_share():
    measure, timer = measurements()
    measure.instrument(object(), token=7)
    timer.reported = {(7, 0): PartitionTime(12.0, 5.0, 1000, 3.0)}
    own = measure.on_task(task(0, 0, 900), [((2, 0), "miss")], {7: 2}, {2: 7})
    assert own == {(2, 0): 12.0}  # the timer's, not the 900 ms task
    # a dataset no timer wraps (a DataFrame's cache): the task less its shuffle write
    own = measure.on_task(
        task(0, 1, 900, shuffle_write_time_ns=100_000_000), [((1, 1), "miss")], {}, {}
    )
    assert own == {(1, 1): 800.0}
    assert (measure.timed_partitions, measure.task_share_partitions) == (1, 1)


def test_a_sites_case_is_the_mean_of_its_timed_partitions():
    measure, timer = measurements()
    measure._site_of = lambda rdd: "lr.py:74"
    measure.instrument(object(), token=7)
    timer.reported = {
        (7, 0): PartitionTime(300.0, 100.0, 1000, 90.0),
        (7, 1): PartitionTime(500.0, 140.0, 1000, 110.0),
        (7, 2): PartitionTime(700.0, 700.0, 10, None),  # not sampled: left out
    }
    measure.on_task(task(0, 0, 900), [], {7: 2}, {2: 7})
    case = measure.persist_case("lr.py:74", reads=2)
    assert (case.wall_ms, case.own_ms, case.load_ms) == (400.0, 120.0, 100.0)
    assert not case.pays
    # the median: one partition whose load was extrapolated from a stalled sample does not
    # move the case (a mean would put the load at 1,000 ms, and every read above recomputing)
    timer.reported = {(7, 3): PartitionTime(400.0, 120.0, 1000, 2800.0)}
    measure.on_task(task(0, 3, 900), [], {7: 2}, {2: 7})
    assert measure.persist_case("lr.py:74", reads=2).load_ms == 110.0
    timer.reported = {(7, 4): PartitionTime(400.0, 120.0, 1000, 100.0)}
    measure.on_task(task(0, 4, 900), [], {7: 2}, {2: 7})
    # the share of its reads served from disk prices W and Rd of the site's stored size
    measure.on_stored((2, 0), "lr.py:74", 2 * MIB)
    measure.on_stored((2, 1), "lr.py:74", 4 * MIB)
    assert measure.disk_read_share("lr.py:74") == 0.0
    reads = [((2, 0), "disk_hit"), ((2, 1), "memory_hit"), ((2, 0), "miss")]
    measure.on_task(task(1, 0, 900), reads, {}, {})
    measure.on_task(task(1, 1, 900, successful=False), [((2, 1), "disk_hit")], {}, {})
    assert measure.disk_read_share("lr.py:74") == 0.5  # the failed task's read not counted
    on_disk = measure.persist_case("lr.py:74", reads=2)
    disk = measure.engine.model.disk
    assert on_disk.disk_share == 0.5
    assert disk.read_ms(3 * MIB) > 0 and disk.write_ms(3 * MIB) > 0
    assert on_disk.disk_read_ms == pytest.approx(disk.read_ms(3 * MIB))
    assert on_disk.disk_write_ms == pytest.approx(disk.write_ms(3 * MIB))
    assert measure.persist_case("other.py:1", reads=2) is None
    # a site with enough split samples: later datasets are timed by wall alone (cheaper),
    # and a wall-only time never enters the case
    timer.reported = {(8, s): PartitionTime(300.0, 100.0, 1000, 90.0) for s in range(16)}
    measure.on_task(task(0, 1, 900), [], {8: 3}, {3: 8})
    measure.instrument(object(), token=9, site="lr.py:74")
    assert timer.split[7] and not timer.split[9]
    timer.reported = {(9, 0): PartitionTime(5000.0, None, None, None)}
    measure.on_task(task(0, 2, 900), [], {9: 4}, {4: 9})
    assert measure.persist_case("lr.py:74", reads=2).wall_ms < 5000.0


def test_disk_rates_follow_the_applications_own_writes_and_reads():
    measure, _ = measurements()
    measure.on_task(
        task(5, 0, 50, shuffle_write_bytes=8 * MIB, shuffle_write_time_ns=4_000_000), [], {}, {}
    )
    assert measure.engine.model.disk.write_ms_per_mib == pytest.approx((1.0 + 4.0) / 9)
    model = measure.engine.model
    model.observe((1, 0), size_bytes=float(MIB))
    for split in (0, 1, 2):  # memory-hit tasks of stage 6 take 100 ms
        measure.on_task(task(6, split, 100), [((1, 0), "memory_hit")], {}, {})
    measure.on_task(task(6, 3, 140), [((1, 0), "disk_hit")], {}, {})  # 40 ms more from disk
    assert model.disk.read_ms_per_mib == pytest.approx((4.0 + 40.0) / 2)
    assert measure.report()["observed_read_mib"] == 1.0


def test_disk_reads_in_tasks_that_spread_both_ways_average_to_what_the_reads_cost():
    """A join stage's tasks differ by their own work (skewed keys), not only by where their
    cached block came from. Disk-hit tasks ±150 ms around the memory-hit median plus 3 ms of
    reading: the rate settles near 1 ms/MiB. Clipping the faster ones' differences at 0 had
    it near 15 ms/MiB (cc's join stages: Rd up to 60x the probe's)."""
    measure, _ = measurements()
    model = measure.engine.model
    model.observe((1, 0), size_bytes=float(3 * MIB))
    for split in range(5):  # memory-hit tasks of stage 6: median 500 ms
        measure.on_task(task(6, split, 400 + 50 * split), [((1, 0), "memory_hit")], {}, {})
    for split, spread in enumerate([150, -150, 90, -90, 30, -30] * 5):
        measure.on_task(task(6, 10 + split, 503 + spread), [((1, 0), "disk_hit")], {}, {})
    probe_share = 4.0 * 1.0  # the probe's 4 ms/MiB counted as 1 MiB (prior_mib=1.0)
    assert model.disk.read_ms_per_mib == pytest.approx((probe_share + 30 * 3.0) / (1 + 30 * 3))


def test_a_disk_read_waits_for_a_baseline_of_several_memory_hits_in_its_stage():
    measure, _ = measurements()
    model = measure.engine.model
    model.observe((1, 0), size_bytes=float(MIB))
    probe = model.disk.read_ms_per_mib
    measure.on_task(task(6, 0, 100), [((1, 0), "memory_hit")], {}, {})
    measure.on_task(task(6, 1, 400), [((1, 0), "disk_hit")], {}, {})
    measure.on_task(task(6, 2, 100), [((1, 0), "memory_hit")], {}, {})
    # two memory hits are not a baseline: the 300 ms more is held, the probe's rate stands
    assert model.disk.read_ms_per_mib == probe
    assert measure.report()["observed_read_mib"] == 0.0
    measure.on_task(task(6, 3, 130), [((1, 0), "memory_hit")], {}, {})
    # the third prices the held read against the median of the three (100 ms)
    assert model.disk.read_ms_per_mib == pytest.approx((probe + 300.0) / 2)  # a 1 MiB prior
    # a stage that ends before its baseline is complete gives no read at all
    measure.on_task(task(7, 0, 100), [((1, 0), "memory_hit")], {}, {})
    measure.on_task(task(7, 1, 900), [((1, 0), "disk_hit")], {}, {})
    measure.stage_done(7)
    for split in (2, 3, 4):
        measure.on_task(task(7, split, 100), [((1, 0), "memory_hit")], {}, {})
    assert measure.report()["observed_read_mib"] == 1.0


def test_the_worker_side_timer_reports_each_partition_once_it_is_consumed():
    class Accumulator:
        def __init__(self):
            self.value = TimesParam().zero({})

        def add(self, term):
            self.value = TimesParam().addInPlace(self.value, term)

    acc = Accumulator()
    run = timed(lambda split, rows: (r * 2 for r in rows), acc, token=3)
    assert list(run(5, iter(range(4)))) == [0, 2, 4, 6]
    assert set(acc.value) == {(3, 5)} and acc.value[(3, 5)].wall_ms >= 0
    partial = run(6, iter(range(4)))
    next(partial)
    partial.close()  # a consumer that stops early reports nothing
    assert (3, 6) not in acc.value


def test_the_timer_wraps_only_a_python_function_not_yet_built(monkeypatch):
    class Context:
        def accumulator(self, value, param):
            return object()

    timer = PartitionTimer(Context())

    class Pipelined:
        _jrdd_val = None

        def func(self, split, rows):
            return rows

    built = Pipelined()
    built._jrdd_val = "a JVM RDD"
    assert timer.instrument(Pipelined(), 1)
    assert not timer.instrument(built, 1)
    assert not timer.instrument(object(), 1)


# ---- lineage records and walks ------------------------------------------------------------


def test_task_start_is_a_lineage_record():
    event = {
        "Event": "SparkListenerTaskStart",
        "Stage ID": 3,
        "Stage Attempt ID": 0,
        "Task Info": {"Task ID": 9, "Partition ID": 2, "Executor ID": "1", "Launch Time": 5},
    }
    assert parse_event(event) == [TaskStarted(3, 0, 9, 2, "1", 5)]
    dag = LineageDag()
    dag.apply(TaskStarted(3, 0, 9, 2, "1", 5))  # accepted, the graph unchanged
    assert dag.events_applied == 1 and not dag.rdds


def test_one_walk_answers_every_graph_question():
    parents = {1: (0,), 2: (1,), 3: (1, 2), 4: ()}
    children = {0: (1,), 1: (2, 3), 2: (3,)}
    up = lambda n: parents.get(n, ())  # noqa: E731
    down = lambda n: children.get(n, ())  # noqa: E731
    assert ancestors(3, up) == {0, 1, 2}
    assert descendants(1, down) == {2, 3}
    assert is_ancestor(0, 3, up) and not is_ancestor(3, 0, up) and not is_ancestor(3, 3, up)
    assert list(breadth_first([3], up, order=lambda n: -n)) == [(3, 0), (2, 1), (1, 1), (0, 2)]
    stopped = list(walk([0], lambda n: () if n == 1 else down(n)))
    assert stopped == [0, 1]  # the neighbour function ends the walk at a node
    assert len(list(walk([0], down, limit=2))) == 2


# ---- the manager's book: dead writes, prefetch candidates ---------------------------------


def block(rdd, split, mem, disk):
    level = CACHED if mem or disk else StorageLevelInfo()
    return BlockEvent(f"rdd_{rdd}_{split}", "driver", level, mem, disk, None, rdd, split)


def test_a_disk_copy_removed_unread_is_a_dead_write():
    ledger = Ledger()
    ledger.apply_block(block(1, 0, 100, 0))
    ledger.mark_spilled((1, 0, "driver"))  # written to disk
    ledger.apply_block(block(2, 0, 0, 100))  # stored straight to disk
    ledger.apply_stage(StageRun(0, 0, "s", 1, (RddNode(2, "r", "s", (), 1, CACHED),), ()))
    ledger.apply_task(task(0, 0, 5))  # the task that stored it
    ledger.apply_stage(StageRun(1, 0, "s", 1, (RddNode(2, "r", "s", (), 1, CACHED),), ()))
    ledger.apply_task(task(1, 0, 5))  # a later stage reads rdd 2's disk copy
    assert ledger.report()["dead_writes"] == 1  # rdd 1's copy: not read (yet)
    assert ledger.report()["dead_write_blocks"] == ["rdd_1_0@driver"]
    ledger.forget_rdd(1, "user_unpersist")  # gone unread: dead for good
    ledger.forget_rdd(2, "user_unpersist")  # it was read: not dead
    report = ledger.report()
    assert (report["dead_writes"], report["unread_disk_copies"]) == (1, 0)
    assert report["dead_write_blocks"] == ["rdd_1_0@driver"]  # named after it died too


def test_a_read_reported_after_its_rdd_was_unpersisted_is_still_a_hit_not_a_dead_write():
    """The driver unpersists a used-up dataset as soon as the action returns; the listener
    may deliver the job's last task ends after that. Their reads were hits (disk or memory),
    and the disk copy they read was not a dead write — until the job's end settles it."""
    ledger = Ledger()
    ledger.apply_block(block(1, 0, 100, 0))
    ledger.apply_block(block(1, 1, 100, 0))  # in memory
    ledger.mark_spilled((1, 0, "driver"))
    reads = RddNode(1, "r", "s", (), 2, CACHED)
    ledger.apply_stage(StageRun(0, 0, "s", 2, (reads,), ()))  # the stage that stored them
    ledger.apply_task(task(0, 0, 5))
    ledger.apply_task(task(0, 1, 5))
    ledger.apply_stage(StageRun(1, 1, "s", 2, (reads,), ()))  # the stage reading them
    ledger.forget_rdd(1, "auto_unpersist")  # the driver, before that stage's task ends came
    assert ledger.report()["dead_writes"] == 1  # the disk copy looks unread for now
    assert ledger.report()["dead_write_blocks"] == ["rdd_1_0@driver"]
    ledger.apply_task(task(1, 0, 5))
    ledger.apply_task(task(1, 1, 5))
    report = ledger.report()
    assert (report["disk_hits"], report["memory_hits"], report["misses"]) == (1, 1, 2)
    assert (report["dead_writes"], report["dead_write_blocks"]) == (0, [])
    ledger.on_job_end()  # every read of the job is in: a removed copy read later is no hit
    ledger.apply_stage(StageRun(2, 2, "s", 2, (reads,), ()))
    ledger.apply_task(task(2, 0, 5))
    assert (ledger.report()["disk_hits"], ledger.report()["misses"]) == (1, 3)


def _four_spilled() -> tuple[Ledger, Engine]:
    """Spilled partitions of 10 (read by stage 3), 20 (stage 1), 30 (only by a later job)
    and 40 (never again), of 20, 30, 40 and 50 bytes on disk."""
    dag = LineageDag()
    cached = {r: RddNode(r, "PythonRDD", f"a.py:{r}", (), 1, CACHED) for r in (10, 20, 30, 40)}
    readers = {1: 20, 3: 10}
    stages = [StageRun(0, 0, "s0", 1, tuple(cached.values()), ())]
    for stage_id in (1, 2, 3):
        rdd = readers.get(stage_id)
        nodes = () if rdd is None else (RddNode(100 + stage_id, "PythonRDD", "b.py", (rdd,), 1),)
        stages.append(StageRun(stage_id, 0, f"s{stage_id}", 1, nodes, ()))
    job = JobRun(0, (0, 1, 2, 3), stages=tuple(stages))
    dag.apply(job)
    engine = Engine(
        dag,
        DiskCost(1.0, 1.0),
        site_of=lambda r: None,
        later_reads=lambda r: 1.0 if r == 30 else 0.0,
    )
    engine.on_job(job)
    for record in (stages[0], StageRun(0, 0, "s0", 1, (), (), completed=True)):
        dag.apply(record)
        engine.on_stage(record)
    ledger = Ledger()
    for rdd in (10, 20, 30, 40):
        ledger.apply_block(block(rdd, 0, 0, 10 + rdd))  # on disk only
        engine.on_location((rdd, 0), 0, 10 + rdd)
    return ledger, engine


class _Managed:
    """The registry's one answer the prefetcher reads: which datasets the manager manages."""

    def managed_ids(self) -> set[int]:
        return {10, 20, 30, 40}


class _AllowOrders:
    """The orders' one call the lazy read-back makes, recorded (what reaches the JVM is
    tested on real Spark in tests/spark/test_promotions.py)."""

    def __init__(self) -> None:
        self.allowed: list[tuple[int, int, str]] = []

    def allow(self, rdd_id: int, split: int, executor: str) -> bool:
        self.allowed.append((rdd_id, split, executor))
        return True


def test_prefetch_candidates_are_the_spilled_partitions_needed_soonest_first():
    """MRD reads back 20, then 10, then 30, and never 40."""
    ledger, engine = _four_spilled()
    spilled = SpilledPartitions(ledger=ledger, engine=engine, registry=_Managed())
    found = spilled.nearest_first("driver", spilled.managed())
    assert [(key[0], distance) for distance, key, _ in found] == [(20, 1), (10, 3), (30, 4)]
    ledger.note_prefetch((20, 0, "driver"), 30)
    assert ledger.book.blocks[(20, 0, "driver")].memory_size == 30
    assert ledger.report()["disk_bytes_read"] == 30 and ledger.counters.decisions["prefetch"] == 1
    assert ledger.report()["dead_writes"] == 3  # the other three copies are still unread


def test_blaze_allows_back_what_is_read_soonest_that_fits_and_holds_its_room():
    """A 60-byte budget: 20 (30 bytes, read first) and 10 (20 bytes) are allowed back, 30
    (40 bytes) no longer fits, 40 is never read again. The room promised stays promised
    until the partition is in memory again: a second look allows nothing more, and once 20
    is back its memory counts instead of its allowance."""
    ledger, engine = _four_spilled()
    orders = _AllowOrders()
    log = DecisionLog(100)
    readback = AllowBack(
        spilled=SpilledPartitions(ledger=ledger, engine=engine, registry=_Managed()),
        ledger=ledger,
        engine=engine,
        budget=lambda: 60,
        explain=log,
        orders=orders,
    )
    assert readback.run("stage 0 completed") == 50
    assert orders.allowed == [(20, 0, "driver"), (10, 0, "driver")]
    assert [(e["action"], e["rdd"]) for e in log] == [("allow", 20), ("allow", 10)]
    assert readback.run("stage 1 completed") == 0  # 10 bytes free: 30 still does not fit
    ledger.apply_block(block(20, 0, 30, 30))  # Spark's read cached it; the plugin said so
    assert readback.run("stage 2 completed") == 0  # 60 - 30 in memory - 20 promised
    assert orders.allowed == [(20, 0, "driver"), (10, 0, "driver")]
    assert ledger.counters.decisions["allow_back"] == 2


def test_a_resync_keeps_the_memory_copy_of_a_block_spark_shows_on_disk_only():
    """Spark's master records one copy of a block held in memory and on disk (its disk
    copy): the book keeps the memory copy the executor reported. A block the book holds in
    memory only that Spark shows on disk was spilled by Spark: that is corrected."""
    ledger = Ledger()
    ledger.apply_block(block(1, 0, 0, 100))
    ledger.apply_block(block(1, 0, 100, 100))  # promoted by a read, reported by the plugin
    ledger.apply_block(block(2, 0, 80, 0))
    truth = [(1, 0, "driver", 0, 100), (2, 0, "driver", 0, 80)]
    assert ledger.resync(truth) == 1
    assert (
        ledger.book.blocks[(1, 0, "driver")].memory_size,
        ledger.book.memory_used("driver"),
    ) == (100, 100)
    assert ledger.book.blocks[(2, 0, "driver")].disk_size == 80


# ---- settings ----------------------------------------------------------------------------


def test_every_setting_is_an_attach_keyword_from_one_table():
    assert set(KEYWORDS) == {s.field for s in SETTINGS} - {"enabled"}
    assert KEYWORDS["report_path"] == "report.path"
    assert set(BlazeConfig.KEYS) == {s.key for s in SETTINGS}
    merged = merge_overrides({}, None, {"report_path": "/tmp/r.json", "auto_cache": False})
    config = BlazeConfig.from_conf(merged)
    assert config.report_path == "/tmp/r.json" and config.auto_cache is False


def test_blaze_explain_shows_every_input_of_a_decision(tmp_path, capsys, monkeypatch):
    from blaze.explain import write_decision_log
    from blaze_cli import main

    monkeypatch.setenv("COLUMNS", "400")  # a wide terminal: no header is cut
    entry = {
        "seq": 1,
        "action": "drop",
        "rdd": 3,
        "split": 0,
        "F": 2.0,
        "F_pending": 1.0,
        "F_later": 1.0,
        "R": 12.5,
        "W": 40.0,
        "Rd": 30.0,
        "hit_memory": 1.25,
        "hit_disk": 31.25,
        "cost": 25.0,
        "size": 4096,
        "rule": "victims would cost more than it saves",
    }
    path = write_decision_log(tmp_path / "d.jsonl", {"app_name": "x", "policy": "blaze"}, [entry])
    assert main(["explain", str(path)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "F_pending" in line)
    for column in ("F", "F_pending", "F_later", "R", "W", "Rd", "hit_memory", "hit_disk"):
        assert f" {column} " in header, column
    assert "31.25" in out and "1.25" in out


def test_a_timed_partition_whose_report_is_late_gets_the_task_share_until_it_comes():
    measure, timer = measurements()
    measure.instrument(object(), token=7)
    # the task's end is handled before the worker's timer report reached the driver
    own = measure.on_task(task(0, 0, 900), [((2, 0), "miss")], {7: 2}, {2: 7})
    assert own == {(2, 0): 900.0}  # an upper bound, never R = 0 ("costs nothing")
    assert measure.engine.cost((2, 0)).recompute_ms >= 900.0
    timer.reported = {
        (7, 0): PartitionTime(12.0, None, None, None)
    }  # the report arrives with the next task's end
    measure.on_task(task(0, 1, 50), [], {7: 2}, {2: 7})
    assert measure.engine.model.measurements_of((2, 0)).compute_ms == pytest.approx(12.0)


def test_a_spill_reported_after_its_rdd_was_unpersisted_books_no_block_and_no_dead_write():
    """pagerank's last split of a generation: spilled, read back (Spark promotes the copy),
    spilled again, and its dataset unpersisted by the manager while that second spill's
    report was still queued. The report is of a block gone: booked again, it was counted
    as a disk write, and the resync that removed it as a dead one."""
    ledger = Ledger()
    slot = (1, 0, "driver")
    ledger.apply_block(block(1, 0, 100, 0))
    ledger.mark_spilled(slot)
    ledger.apply_block(block(1, 0, 0, 100))  # the spill's report
    ledger.apply_block(block(1, 0, 100, 100))  # a task read it: Spark promoted the copy
    ledger.mark_spilled(slot)  # only the memory copy goes
    ledger.unpersist_applied(1)
    ledger.forget_rdd(1, "auto_unpersist")
    written = ledger.report()["disk_bytes_written"]
    assert ledger.apply_block(block(1, 0, 0, 100)) is None  # the second spill's late report
    ledger.resync([(1, 0, "driver", 0, 100)])  # Spark's status before its unpersist is done
    assert ledger.unpersist_reported(1)  # Spark's own unpersist event
    ledger.forget_rdd(1, "user_unpersist")
    ledger.resync([])
    report = ledger.report()
    assert not ledger.book.locate(1, 0)
    assert (report["dead_writes"], report["unread_disk_copies"]) == (0, 0)
    assert report["disk_bytes_written"] == written == 100


def test_an_rdd_persisted_again_after_its_unpersist_is_booked_again():
    """``rdd.unpersist(); rdd.persist(other_level)``: reports of the RDD's blocks are ignored
    from the unpersist until Spark's event of it (they were sent before the unpersist), and
    booked from the event on (Spark posts the new level's reports after it)."""
    ledger = Ledger()
    ledger.apply_block(block(1, 0, 100, 0))
    ledger.unpersist_applied(1)
    ledger.forget_rdd(1, "user_unpersist")
    ledger.apply_block(block(1, 0, 100, 0))  # a late report: not booked
    assert not ledger.book.locate(1, 0)
    assert ledger.report()["events"]["block_after_unpersist"] == 1
    assert ledger.unpersist_reported(1)  # Spark's event of the unpersist
    ledger.apply_block(block(1, 0, 0, 100))  # the new level's block
    assert [(r.memory_size, r.disk_size) for r in ledger.book.locate(1, 0)] == [(0, 100)]
    assert ledger.report()["recomputed_partitions"] == 1


def test_booking_resumes_only_when_every_unpersist_applied_here_was_reported():
    """Two unpersists applied before Spark delivered the first's event: booking waits for
    both events; an event of an unpersist not applied here (Spark's cleaner) pauses nothing."""
    ledger = Ledger()
    ledger.unpersist_applied(1)
    ledger.unpersist_applied(1)
    assert ledger.unpersist_reported(1)
    assert ledger.apply_block(block(1, 0, 100, 0)) is None  # still before the second's event
    assert ledger.unpersist_reported(1)
    assert not ledger.unpersist_reported(1)  # a third event: not one applied here
    assert ledger.apply_block(block(1, 0, 100, 0)) is not None
    assert not ledger.unpersist_reported(2)
    assert ledger.apply_block(block(2, 0, 100, 0)) is not None


def test_unpersists_awaiting_their_event_are_remembered_up_to_a_bound():
    """Events the listener bus dropped must not keep their RDDs' records for good."""
    ledger = Ledger()
    for rdd_id in range(UNPERSISTED_REMEMBERED + 1):
        ledger.unpersist_applied(rdd_id)
    assert not ledger.unpersist_reported(0)  # the oldest went
    assert ledger.unpersist_reported(UNPERSISTED_REMEMBERED)


def test_a_promotion_reported_after_its_rdd_was_unpersisted_is_a_disk_read_not_a_block():
    """svdpp's state: a spilled block read back by a task (Spark promotes the copy) while the
    manager unpersisted its dataset; the promotion's report and the task's end come after.
    Booked again, the promoted block looked like a memory hit and a new disk copy, and the
    spilled copy — which the task did read — like two dead writes."""
    ledger = Ledger()
    ledger.apply_block(block(1, 0, 100, 0))
    reads = RddNode(1, "r", "s", (), 1, CACHED)
    ledger.apply_stage(StageRun(0, 0, "s", 1, (reads,), ()))
    ledger.apply_task(task(0, 0, 5))  # the task that stored it
    ledger.mark_spilled((1, 0, "driver"))
    ledger.apply_block(block(1, 0, 0, 100))  # the spill's report
    ledger.apply_stage(StageRun(1, 1, "s", 1, (reads,), ()))  # the stage reading it
    ledger.unpersist_applied(1)
    ledger.forget_rdd(1, "auto_unpersist")
    assert ledger.apply_block(block(1, 0, 100, 100)) is None  # the promotion, reported late
    ledger.apply_task(task(1, 0, 5))
    assert ledger.unpersist_reported(1)  # Spark's own unpersist event
    ledger.forget_rdd(1, "user_unpersist")
    ledger.on_job_end()
    report = ledger.report()
    assert (report["disk_hits"], report["memory_hits"]) == (1, 0)
    assert (report["dead_writes"], report["disk_bytes_written"]) == (0, 100)
