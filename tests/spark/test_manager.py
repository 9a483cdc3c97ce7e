"""The cache manager on the shared real local SparkSession: enforcement, autoCache, unpersist.

Ground truth for "was this partition computed again?" is an accumulator incremented inside
the user's own map function (it runs only when Spark computes the partition), never the
manager's own counters; block placement is read back from Spark's BlockManagerMaster.
"""

from __future__ import annotations

import json
from operator import add

import pytest
from conftest import attached_managers

import blaze
from blaze.manager import ManagerError
from blaze_errors import ConfigError, InputError

pytestmark = pytest.mark.spark

CHEAP_DISK = {"disk_write_ms_per_mib": 0.5, "disk_read_ms_per_mib": 0.5}
RECORDS, PARTS = 40_000, 8


class _PerPartition:
    """One int accumulator per partition (a module-level AccumulatorParam would not unpickle
    in the Python workers, which cannot import this test module)."""

    def __init__(self, sc, parts: int) -> None:
        self._accumulators = [sc.accumulator(0) for _ in range(parts)]

    def add(self, split: int) -> None:
        self._accumulators[split].add(1)

    @property
    def value(self) -> dict[int, int]:
        return {i: a.value for i, a in enumerate(self._accumulators) if a.value}


@pytest.fixture
def attach(spark, bridge):
    """Attach managers for one test; detach them and unpersist what the test cached."""
    yield from attached_managers(spark, bridge, CHEAP_DISK)


def counted_dataset(sc, records=RECORDS, parts=PARTS):
    """An RDD whose partitions count their own computations in an accumulator."""
    computed = _PerPartition(sc, parts)
    accumulators = computed._accumulators

    def tag(split, rows):
        accumulators[split].add(1)
        return ((x, "v" * 20) for x in rows)

    return sc.parallelize(range(records), parts).mapPartitionsWithIndex(tag), computed


def block_size(bridge, manager, rdd_id):
    manager.sync()
    sizes = [
        max(b.memory_size, b.disk_size)
        for s in bridge.storage_status()
        for b in s.blocks
        if b.rdd_id == rdd_id
    ]
    return max(sizes)


def placement(bridge, rdd_id, parts=PARTS):
    """split -> (memory bytes, disk bytes) summed over executors, from Spark itself."""
    result = {}
    for split in range(parts):
        statuses = bridge.block_status(rdd_id, split)
        result[split] = (
            sum(s.memory_size for s in statuses),
            sum(s.disk_size for s in statuses),
        )
    return result


def rdd_memory_by_executor(bridge):
    return {s.executor_id: sum(b.memory_size for b in s.blocks) for s in bridge.storage_status()}


def expected_sum(records=RECORDS):
    return sum(range(records))


def test_dropped_partition_is_recomputed_correctly_on_next_use(sc, attach, bridge):
    manager = attach(policy="mem_only", memory_budget="1g")
    data, computed = counted_dataset(sc)
    data.persist(blaze.BLAZE)
    data.count()
    size = block_size(bridge, manager, data.id())
    manager.detach()
    data.unpersist(blocking=True)

    manager = attach(policy="mem_only", memory_budget=int(size * 3.5))
    data, computed = counted_dataset(sc)
    data.persist(blaze.BLAZE)
    assert data.map(lambda kv: kv[0]).sum() == expected_sum()
    manager.sync()
    where = placement(bridge, data.id())
    dropped = {split for split, (mem, disk) in where.items() if mem == 0 and disk == 0}
    kept = set(where) - dropped
    assert dropped and kept, where

    assert data.map(lambda kv: kv[0]).sum() == expected_sum()
    manager.sync()
    counts = computed.value
    assert {split: counts[split] for split in dropped} == dict.fromkeys(dropped, 2)
    assert {split: counts[split] for split in kept} == dict.fromkeys(kept, 1)
    report = manager.report()
    assert report["recomputed_partitions"] >= len(dropped)
    assert report["decisions"]["drop"] >= len(dropped)
    # the budget holds in Spark's own accounting, and in the manager's within one block
    assert max(rdd_memory_by_executor(bridge).values()) <= manager.memory_budget
    assert report["max_over_budget_bytes"] <= size * 1.2


@pytest.mark.parametrize("policy", ["mem_disk", "blaze"])
def test_partition_moved_to_disk_is_read_from_disk_not_recomputed(sc, attach, bridge, policy):
    manager = attach(policy=policy, memory_budget="1g")
    probe, _ = counted_dataset(sc)
    probe.persist(blaze.BLAZE).count()
    size = block_size(bridge, manager, probe.id())
    manager.detach()
    probe.unpersist(blocking=True)

    manager = attach(policy=policy, memory_budget=int(size * 3.5))
    data, computed = counted_dataset(sc)
    data.persist(blaze.BLAZE)
    assert data.map(lambda kv: kv[0]).sum() == expected_sum()
    manager.sync()
    on_disk = {s for s, (mem, disk) in placement(bridge, data.id()).items() if disk and not mem}
    assert on_disk, placement(bridge, data.id())

    assert data.map(lambda kv: kv[0]).sum() == expected_sum()
    manager.sync()
    assert computed.value == dict.fromkeys(range(PARTS), 1)  # nothing was recomputed
    report = manager.report()
    assert report["disk_hits"] >= len(on_disk)
    assert report["disk_bytes_read"] > 0
    assert report["disk_bytes_written"] >= len(on_disk) * size * 0.5
    assert report["recomputed_partitions"] == 0
    assert max(rdd_memory_by_executor(bridge).values()) <= manager.memory_budget
    assert report["max_over_budget_bytes"] <= size * 1.2


def test_dataset_with_no_future_use_is_unpersisted(sc, attach, bridge):
    manager = attach(policy="blaze")
    ranks = sc.parallelize(range(400), 4).map(lambda x: (x, 1.0)).persist(blaze.BLAZE)
    generations = [ranks.id()]
    for _ in range(5):
        ranks = ranks.mapValues(lambda v: v * 0.5 + 1.0).persist(blaze.BLAZE)
        ranks.count()
        generations.append(ranks.id())
    manager.sync()
    persisted = bridge.persistent_rdd_ids()
    # the loop's superseded generations go; the first ranks (its own line's only dataset,
    # with no earlier generation to learn a use count from) is kept like any one-off dataset
    assert not persisted & set(generations[1:-2]), (persisted, generations)
    assert generations[-1] in persisted
    report = manager.report()
    assert report["decisions"]["auto_unpersist"] >= 3
    # each generation's partition sizes were predicted from the earlier ones, then observed
    predictions = report["predicted_vs_observed"]
    assert predictions["blocks"] >= 4 * 4
    assert predictions["median_relative_error"] < 0.25
    expected = 1.0
    for _ in range(5):
        expected = expected * 0.5 + 1.0
    assert ranks.values().distinct().collect() == [expected]


def test_the_programs_unpersist_after_auto_unpersist_is_not_done_twice(sc, attach, bridge):
    """The loop a user writes: each generation cached, counted, the previous one unpersisted.
    autoUnpersist lets the previous one go after the job; the program's own unpersist then
    has nothing left to do, and Spark sees one unpersist of it, not two. Persisted again by
    the program, the same RDD is unpersisted again by its next call."""
    from lineage.events import RddUnpersisted

    manager = attach(policy="blaze")
    unpersisted: list[int] = []
    unsubscribe = manager._listener.subscribe(
        lambda record: isinstance(record, RddUnpersisted) and unpersisted.append(record.rdd_id)
    )
    try:
        base = sc.parallelize(range(400), 4)
        previous, released = None, []
        for step in range(6):
            current = base.map(lambda x, s=step: x * s % 7).cache()
            current.count()
            if previous is not None:
                if not previous.is_cached:  # autoUnpersist let it go already
                    released.append(previous)
                previous.unpersist()
            previous = current
        manager.sync()
        assert released, "autoUnpersist released no generation in a cache-count-drop loop"
        for rdd in released:
            assert unpersisted.count(rdd.id()) == 1, (rdd.id(), unpersisted)
            assert rdd.id() not in bridge.persistent_rdd_ids()
        again = released[0]
        again.cache()
        assert again.count() == 400
        assert again.id() in bridge.persistent_rdd_ids()
        again.unpersist()
        manager.sync()
        assert again.id() not in bridge.persistent_rdd_ids()
        assert unpersisted.count(again.id()) == 2, unpersisted
    finally:
        unsubscribe()


def test_final_state_of_a_loop_is_kept_for_the_reads_after_the_loop(sc, attach, bridge):
    """State read by its own job and the next iteration's (never materialised apart, never
    unpersisted by the program): after the loop the program reads the final state twice more.
    Its predecessors are unpersisted as they are superseded, so dropping the final one after
    its learnt two uses would recompute every iteration's step."""
    manager = attach(policy="blaze")
    steps = sc.accumulator(0)

    def step(v):
        steps.add(1)
        return v * 0.5 + 1.0

    ranks = sc.parallelize(range(400), 4).map(lambda x: (x, 1.0)).persist(blaze.BLAZE)
    generations = [ranks.id()]
    for _ in range(5):
        ranks = ranks.mapValues(step).persist(blaze.BLAZE)
        ranks.values().sum()
        generations.append(ranks.id())
    assert steps.value == 5 * 400  # every step computed once
    total = ranks.values().sum()
    final = ranks.collect()
    manager.sync()
    assert steps.value == 5 * 400, "the final state (or its chain) was recomputed"
    persisted = bridge.persistent_rdd_ids()
    assert generations[-1] in persisted
    assert not persisted & set(generations[1:-2]), (persisted, generations)
    expected = 1.0
    for _ in range(5):
        expected = expected * 0.5 + 1.0
    assert total == 400 * expected and {v for _, v in final} == {expected}


def test_a_dataset_made_by_a_chained_statement_is_kept_while_iterations_read_it(sc, attach, bridge):
    """``features = sc.parallelize(..).map(parse).persist()`` makes two datasets on one line;
    the program drops the first at once. Every iteration reads the features through a
    per-iteration cache that is read twice (the LR habit): the features must stay persisted
    and be parsed once, not be taken for a used-up generation of the dropped source."""
    manager = attach(policy="blaze")
    parses = sc.accumulator(0)

    def parse(x):
        parses.add(1)
        return (x % 7, float(x))

    features = sc.parallelize(range(2000), 4).map(parse).persist(blaze.BLAZE)
    totals = []
    for i in range(4):
        scored = features.map(lambda kv, i=i: kv[1] * i).persist(blaze.BLAZE)
        totals.append(scored.sum())
        scored.count()
    manager.sync()
    assert features.id() in bridge.persistent_rdd_ids()
    assert parses.value == 2000, "the features were unpersisted and parsed again"
    assert totals == [sum(range(2000)) * i for i in range(4)]


def test_the_intermediate_rdds_of_one_call_are_not_generations_of_its_result(sc, attach, bridge):
    """``reduceByKey`` makes its map-side combine, its shuffle input and its result at the
    user's one call: the cached result of each iteration must not make the intermediates of
    the next iterations look like a reused site to cache."""
    manager = attach(policy="blaze")
    base = sc.parallelize(range(400), 2)
    previous, answers = None, []
    for i in range(4):
        current = base.map(lambda x, i=i: (x % 5, x * i)).reduceByKey(add, 3).cache()
        answers.append((current.count(), current.values().sum()))
        if previous is not None:
            previous.unpersist()
        previous = current
    manager.sync()
    assert answers == [(5, sum(range(400)) * i) for i in range(4)]
    assert manager.report()["decisions"].get("auto_cache", 0) == 0
    assert bridge.persistent_rdd_ids() <= {current.id()}
    assert set(manager.registry.datasets) <= {current.id()}


def test_auto_cache_persists_a_reused_unannotated_rdd(sc, attach):
    manager = attach(policy="blaze")
    data, computed = counted_dataset(sc, records=4000, parts=4)
    data = data.map(lambda kv: kv[0])  # never cached by the program
    per_iteration, results = [], []
    for i in range(4):
        before = sum(computed.value.values())
        results.append(data.map(lambda x, i=i: x + i).sum())
        per_iteration.append(sum(computed.value.values()) - before)
    manager.sync()
    assert results == [sum(range(4000)) + 4000 * i for i in range(4)]
    assert data.is_cached
    assert per_iteration[0] == 4
    assert per_iteration[-1] == 0  # served from the cache the manager chose
    report = manager.report()
    assert report["decisions"]["auto_cache"] >= 1
    assert report["hits"] >= 4


def test_auto_cache_picks_the_programs_datasets_not_the_steps_a_join_makes(sc, attach, bridge):
    """PageRank written with no cache call, under blaze_auto. ``links`` is pipelined into
    every join (PySpark makes it no JVM RDD of its own) and each ``leftOuterJoin`` makes a
    union of both sides inside and drops it: autoCache must persist ``links`` and the
    generations of ``ranks`` — not the shuffled pairs under ``links`` nor the unions, which
    hold the same data in a larger form — and each generation must go with the job after
    the one that last read it, so only the newest is left."""

    def neighbours(items):  # nested: the workers unpickle it by value
        grouped = {}
        for key, value in items:
            grouped.setdefault(key, []).append(value)
        return iter(grouped.items())

    def contributions(item):
        _, (targets, rank) = item
        return [(dst, rank / len(targets)) for dst in targets]

    manager = attach(policy="blaze_auto")
    edges = [(i % 40, (i * 7 + 3) % 40) for i in range(400)]
    links = sc.parallelize(edges, 4).partitionBy(4).mapPartitions(neighbours, True)
    ranks = links.mapValues(lambda _: 1.0)
    ranks.count()
    generations, cached_by_its_job = [], []
    for _ in range(6):
        sums = links.join(ranks, 4).flatMap(contributions).reduceByKey(add, 4)
        ranks = ranks.leftOuterJoin(sums, 4).mapValues(lambda p: 0.15 + 0.85 * (p[1] or 0.0))
        ranks.count()
        generations.append(ranks)
        cached_by_its_job.append(ranks.is_cached)
    manager.sync()

    out = {}
    for src, dst in edges:
        out.setdefault(src, []).append(dst)
    expected = dict.fromkeys(out, 1.0)
    for _ in range(6):
        sums = dict.fromkeys(expected, 0.0)
        for src, rank in expected.items():
            for dst in out[src]:
                sums[dst] = sums.get(dst, 0.0) + rank / len(out[src])
        expected = {v: 0.15 + 0.85 * sums.get(v, 0.0) for v in expected}
    assert dict(ranks.collect()) == pytest.approx(expected)

    assert links.is_cached
    # learnt when the first generation is read by a second job; from the third generation
    # on each one is persisted before the job that computes it
    assert cached_by_its_job == [False, False, True, True, True, True]
    assert bridge.persistent_rdd_ids() == {links.id(), generations[-1].id()}


@pytest.mark.parametrize(
    "options", [{"policy": "blaze", "user_cache": "ignore"}, {"policy": "blaze_auto"}]
)
def test_user_cache_ignore_leaves_every_choice_to_the_manager(sc, attach, options):
    manager = attach(**options)
    data, computed = counted_dataset(sc, records=4000, parts=4)
    data = data.map(lambda kv: kv[0]).cache()  # the program's own call: ignored
    assert not data.is_cached
    sums, per_job = [], []
    for i in range(4):
        before = sum(computed.value.values())
        sums.append(data.map(lambda x, i=i: x + i).sum())
        per_job.append(sum(computed.value.values()) - before)
    manager.sync()
    assert sums == [sum(range(4000)) + 4000 * i for i in range(4)]
    assert data.is_cached  # autoCache chose it at its second use
    assert per_job[-1] == 0  # served from the cache the manager chose, not the program's
    decisions = manager.report()["decisions"]
    assert decisions["user_cache_ignored"] == 1
    assert decisions["auto_cache"] == 1


def _cached(rdd, f):
    """The program's own helper: every dataset below is created and persisted on this line."""
    return rdd.map(f).persist(blaze.BLAZE)


def test_datasets_cached_through_one_helper_keep_their_own_lives(sc, attach, bridge):
    manager = attach(policy="blaze")
    data, computed = counted_dataset(sc, records=4000, parts=4)
    features = _cached(data, lambda kv: kv[0] * 2)
    scored_ids = []
    for i in range(5):  # per-iteration results, cached by the same helper and never unpersisted
        scored = _cached(features, lambda x, i=i: x + i)
        assert scored.sum() == 2 * sum(range(4000)) + 4000 * i
        assert scored.count() == 4000
        scored_ids.append(scored.id())
    manager.sync()
    # the features are read by every iteration: computed once, never retired as an "older
    # generation" of the scored results; the dead scored generations are unpersisted
    assert computed.value == {split: 1 for split in range(4)}
    persisted = bridge.persistent_rdd_ids()
    assert features.id() in persisted
    assert not persisted & set(scored_ids[:-2]), (persisted, scored_ids)


def _iterative_job(sc):
    """Cached input, per-iteration cached results never unpersisted, one unannotated reuse."""
    points = sc.parallelize(range(3000), 4).map(lambda x: (x % 60, float(x))).persist(blaze.BLAZE)
    scale = sc.parallelize(range(60), 2).map(lambda k: (k, 1.0 + k / 60))  # reused, unannotated
    totals = []
    weights = scale
    for i in range(3):
        joined = points.join(weights).mapValues(lambda pw, i=i: pw[0] * pw[1] + i)
        weights = joined.reduceByKey(lambda a, b: a + b).mapValues(lambda v: v / 1000).cache()
        totals.append(round(weights.values().sum(), 6))
        totals.append(scale.count())
    return totals


def _expected_iterative():
    points = [(x % 60, float(x)) for x in range(3000)]
    weights = {k: 1.0 + k / 60 for k in range(60)}
    totals = []
    for i in range(3):
        acc: dict[int, float] = {}
        for key, value in points:
            acc[key] = acc.get(key, 0.0) + value * weights[key] + i
        weights = {k: v / 1000 for k, v in acc.items()}
        totals.append(round(sum(weights.values()), 6))
        totals.append(60)
    return totals


@pytest.mark.parametrize("policy", ["spark", "none", "mem_only", "mem_disk", "lrc", "mrd", "blaze"])
def test_results_are_identical_under_every_policy(sc, attach, policy):
    manager = attach(policy=policy, memory_budget="24k")
    assert _iterative_job(sc) == pytest.approx(_expected_iterative(), rel=1e-9)
    manager.sync()
    report = manager.report()
    assert report["errors"] == {}
    assert report["policy"] == policy


def test_lost_events_and_external_removal_are_resynced(sc, attach, bridge):
    from lineage.events import BlockEvent, StorageLevelInfo, TaskRun

    manager = attach(policy="blaze")
    data, computed = counted_dataset(sc, records=4000, parts=4)
    data.persist(blaze.BLAZE)
    data.count()
    manager.sync()
    # events that never match Spark's state: a block that does not exist, a task of a stage
    # never seen, a removal arriving for a block never stored
    level = StorageLevelInfo(use_disk=True, use_memory=True)
    manager._worker.put_all(  # as the listener hands them over
        (
            BlockEvent("rdd_99999_0", "driver", level, 10_000, 0, None, 99999, 0),
            TaskRun(424242, 0, 1, 0, "driver", 0, 1, 5),
            BlockEvent(
                f"rdd_{data.id()}_7", "driver", StorageLevelInfo(), 0, 0, None, data.id(), 7
            ),
        )
    )
    bridge.remove_block(data.id(), 2)  # someone else removes a block behind its back
    assert data.count() == 4000  # the job end resyncs from Spark's storage status
    manager.sync()
    report = manager.report()
    assert report["resync_corrections"] >= 1
    assert report["errors"] == {}
    ledger_blocks = {(r.rdd_id, r.split_index) for r in manager.ledger.book.blocks.values()}
    assert (99999, 0) not in ledger_blocks
    assert computed.value[2] == 2  # treated as dropped: recomputed once, correctly
    assert data.map(lambda kv: kv[0]).sum() == sum(range(4000))


def test_an_rdd_persisted_again_at_another_level_is_booked_again(sc, attach):
    """``unpersist()`` then ``persist(another level)`` on the same RDD: Spark's event of the
    unpersist reaches the manager after the program's new persist, and here after the new
    blocks' reports. The ledger ignores the block reports of an RDD it unpersisted until that
    event (late reports of gone blocks), and the event, of an unpersist already applied, does
    not take the new level's blocks out of the book (nothing for a resync to correct).

    The event worker is held back (the manager's lock) until the program has persisted again,
    so the first level's block reports are handled after the new persist: the order in which
    this once failed only when an earlier test had left the worker busy."""
    from pyspark import StorageLevel

    manager = attach(policy="spark")  # the program's own levels, the manager watching
    data = sc.parallelize(range(4000), 4).map(lambda x: (x, x * x))
    with manager._lock:
        data.persist(StorageLevel.MEMORY_ONLY)
        assert data.count() == 4000
        data.unpersist()
        data.persist(StorageLevel.DISK_ONLY)
    assert data.count() == 4000
    manager.sync()
    booked = [r for r in manager.ledger.book.blocks.values() if r.rdd_id == data.id()]
    assert sorted(r.split_index for r in booked) == [0, 1, 2, 3]
    assert all(r.memory_size == 0 and r.disk_size > 0 for r in booked), booked
    assert manager.report()["resync_corrections"] == 0


def test_the_book_is_read_back_from_spark_only_when_something_says_it_is_wrong(
    sc, attach, bridge, monkeypatch
):
    """Reading Spark's storage status costs milliseconds a program of many short jobs would
    pay on every job: the job end reads it only after a sign the book may be wrong (here: a
    block removed behind the manager's back, an eviction it did not order), or once a second
    (set to never here)."""
    import time

    from blaze import enforce

    monkeypatch.setattr(enforce, "RESYNC_INTERVAL_S", float("inf"))  # signs alone decide
    manager = attach(policy="blaze")
    storage, reads = manager._bridge, []
    read_storage = storage.storage_status
    monkeypatch.setattr(storage, "storage_status", lambda: reads.append(1) or read_storage())
    data, computed = counted_dataset(sc, records=4000, parts=4)
    data.persist(blaze.BLAZE)
    data.count()
    manager.sync()
    first = len(reads)
    assert first >= 1  # the first job end corrects the book
    for _ in range(3):
        assert data.count() == 4000
    manager.sync()
    assert len(reads) == first  # nothing said the book was wrong
    bridge.remove_block(data.id(), 1)
    deadline = time.monotonic() + 30
    while bridge.block_status(data.id(), 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    manager.sync()  # the removal's event is in the book: an eviction nobody ordered
    assert data.count() == 4000
    manager.sync()
    assert len(reads) == first + 1
    assert computed.value[1] == 2 and manager.report()["errors"] == {}


def test_a_persisted_dataframe_is_registered_when_its_action_builds_it(spark, attach, bridge):
    """``persist`` does not make Spark build the DataFrame's cached RDD (its first action
    does, and building it at ``persist`` cost a loop of short jobs milliseconds per call):
    the manager registers it at the start of that action's job, before any of its blocks."""
    manager = attach(policy="blaze")
    df = spark.range(6_000, numPartitions=3).selectExpr("id", "id % 7 AS r").cache()
    assert bridge.dataframe_rdd_id(df, build=False) is None  # not built by the hook
    assert manager.report()["decisions"].get("persist_dataframe", 0) == 0
    assert df.count() == 6_000
    manager.sync()
    rdd_id = bridge.dataframe_rdd_id(df, build=False)
    assert rdd_id is not None
    known = manager.explain(df)
    assert known["rdd"] == rdd_id and known["managed"] and known["kind"] == "dataframe"
    assert manager.report()["decisions"]["persist_dataframe"] == 1
    assert len(manager.ledger.book.cached_partitions(rdd_id)) == 3  # its blocks were booked


def test_dataframe_persisted_with_blaze_is_managed(spark, attach, bridge):
    manager = attach(policy="blaze")
    df = spark.range(20_000).selectExpr("id", "id * 2 AS twice").persist(blaze.BLAZE)
    assert df.count() == 20_000
    assert df.agg({"twice": "sum"}).collect()[0][0] == 2 * sum(range(20_000))
    manager.sync()
    report = manager.report()
    assert report["decisions"]["persist_dataframe"] == 1
    assert report["managed_datasets"] >= 1
    assert report["hits"] >= 1


def test_blaze_persist_function_and_detach_restores_pyspark(sc, attach):
    from pyspark.core.rdd import RDD

    original = RDD.persist
    manager = attach(policy="blaze")
    assert RDD.persist is not original
    rdd = blaze.persist(sc.parallelize(range(10), 2))
    assert rdd.count() == 10
    manager.detach()
    assert RDD.persist is original
    assert not manager.attached
    with pytest.raises(TypeError, match="needs a PySpark RDD or DataFrame"):
        blaze.persist([1, 2, 3])


def test_profile_recorded_on_one_run_makes_the_next_cache_at_first_use(
    sc, attach, tmp_path, capsys
):
    from blaze_cli import main as blaze_main

    path = tmp_path / "profile.json"

    def run(records):
        data, computed = counted_dataset(sc, records=records, parts=4)
        data = data.map(lambda kv: kv[0])
        for i in range(3):
            assert data.map(lambda x, i=i: x * i).sum() == i * sum(range(records))
        return sum(computed.value.values()), data

    manager = attach(policy="blaze", profile_mode="record", profile_path=str(path))
    recorded_computes, data = run(2000)  # a small input
    manager.detach()
    data.unpersist()
    assert path.is_file()

    manager = attach(policy="blaze", profile_mode="use", profile_path=str(path))
    used_computes, data = run(8000)  # a larger one
    manager.sync()
    # online, reuse shows at the 2nd job and the cache serves from the 3rd (4 + 4 + 4);
    # with the profile the dataset is persisted before its first job: computed once (4)
    assert recorded_computes == 12
    assert used_computes == 4
    decisions = manager.explain(data)["dataset"]
    assert [e["action"] for e in decisions][:1] == ["auto_cache"]
    assert decisions[0]["uses"] == 0  # decided before the dataset's first job
    # its three profiled uses done, it is unpersisted: no future reference
    assert [e["action"] for e in decisions][1:] in ([], ["auto_unpersist"])

    capsys.readouterr()
    assert blaze_main(["profile", "show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "application  blaze-spark-tests" in shown
    assert "(reused, cached)" in shown
    assert blaze_main(["profile", "show", str(path), "--app", "another-program"]) == 2
    assert "belongs to application 'blaze-spark-tests'" in capsys.readouterr().err


def test_input_read_through_a_parallelized_file_list_is_cached_and_the_list_is_not(
    sc, attach, tmp_path
):
    """The suite's programs read their input as ``sc.parallelize(files).flatMap(read)``. A
    profile said the list's site was reused; autoCache persisted the list, then took every
    step over it for thin and re-read the files each iteration (blaze_auto 1.33x Blaze on
    kmeans.common). The list is never auto-cached now; the lines read through it are."""
    from blaze.registry import parallelized

    path = tmp_path / "profile.json"
    parts, rows = 4, 500

    def run():
        computed = _PerPartition(sc, parts)
        accumulators = computed._accumulators

        def read(split, names):  # one "file" per partition, counted where Spark reads it
            accumulators[split].add(1)
            return ((name, i) for name in names for i in range(rows))

        files = [f"part-{i:05d}" for i in range(parts)]
        names = sc.parallelize(files, parts)
        lines = names.mapPartitionsWithIndex(read).map(lambda kv: kv[1]).map(lambda x: x + 1)
        assert sorted(lines.filter(lambda x: x < 2).collect()) == [1] * parts
        for i in range(4):
            total = i * parts * sum(range(1, rows + 1))
            assert lines.map(lambda x, i=i: (x % 2, x * i)).reduceByKey(add).values().sum() == total
        return sum(computed.value.values()), names, lines

    manager = attach(policy="blaze_auto", profile_mode="record", profile_path=str(path))
    online_reads, names, lines = run()
    assert parallelized(names) and not parallelized(lines)
    assert not parallelized(sc.parallelize(range(8), 2))  # PySpark builds a range in Python
    manager.sync()
    assert "auto_cache" not in [e["action"] for e in manager.explain(names)["dataset"]]
    # online, reuse shows at the 2nd job, whose step was fused already: jobs 1-3 read the
    # files, the 4th the cache
    assert online_reads == 3 * parts
    manager.detach()
    lines.unpersist()
    # what kmeans's profile said of its file list: every site reused and cached
    profile = json.loads(path.read_text())
    for facts in profile["sites"].values():
        facts.update(reused=True, cached=True)
    path.write_text(json.dumps(profile))

    manager = attach(policy="blaze_auto", profile_mode="use", profile_path=str(path))
    profiled_reads, names, lines = run()
    manager.sync()
    assert not names.is_cached
    assert "auto_cache" not in [e["action"] for e in manager.explain(names)["dataset"]]
    assert profiled_reads == parts  # persisted before its first job: each file read once


def test_a_cached_dataset_read_only_to_make_a_cached_one_is_not_read_by_later_jobs(
    sc, attach, tmp_path, capsys
):
    """kmeans.common caches its parsed records and the features made from them, and every
    iteration reads the features' blocks. Each job's lineage holds the records (their uses,
    which keep them alive), but only the first reads them: the profile said eleven more
    reads of records nothing read again, and Blaze wrote them to disk for those reads (dead
    writes). F now counts the reads; a run from the profile sees no later read of them."""
    from blaze_cli import main as blaze_main

    path = tmp_path / "profile.json"
    tagged, computed = counted_dataset(sc, parts=PARTS)

    def records_and_features():  # one site each, in both runs
        records = tagged.map(lambda kv: kv[0]).cache()
        return records, records.map(lambda x: (x % 7, x)).cache()

    manager = attach(policy="blaze", profile_mode="record", profile_path=str(path))
    records, features = records_and_features()
    assert features.count() == RECORDS
    for i in range(4):
        assert features.map(lambda kv, i=i: kv[1] * i).sum() == i * expected_sum()
    assert sum(computed.value.values()) == PARTS  # the features' blocks served every job
    sites = manager.explain(records)["site"], manager.explain(features)["site"]
    manager.detach()
    profiled = json.loads(path.read_text())["sites"]
    assert [profiled[site]["uses"] for site in sites] == [5, 5]
    assert [profiled[site]["reads"] for site in sites] == [1, 5]
    capsys.readouterr()
    assert blaze_main(["profile", "show", str(path)]) == 0
    assert f"{sites[0][:70]}: 5 uses, 1 read it (cached)" in capsys.readouterr().out
    records.unpersist()
    features.unpersist()

    manager = attach(policy="blaze", profile_mode="use", profile_path=str(path))
    records, features = records_and_features()
    assert features.count() == RECORDS
    later = {
        name: [p["inputs"]["F_later"] for p in manager.explain(dataset)["partitions"].values()]
        for name, dataset in (("records", records), ("features", features))
    }
    assert later == {"records": [0.0] * PARTS, "features": [4.0] * PARTS}


def test_a_loop_input_read_longer_than_the_profile_counted_stays_cached_until_the_loop_ends(
    sc, attach, tmp_path
):
    """cc runs until its labels converge: 6 iterations on the profile's sample, 7 on the
    whole input. The adjacency's profiled count ran out one iteration early; Blaze
    unpersisted it, the next iteration recomputed it, and its copies were written to disk
    again (8 dead writes on the suite's cc.common). A profiled loop input read by every job
    now stays cached until a job does not read it."""
    path = tmp_path / "profile.json"
    tagged, computed = counted_dataset(sc, parts=PARTS)

    def loop(iterations):  # one site in both runs
        graph = tagged.map(lambda kv: kv[0]).cache()
        for i in range(iterations):
            assert graph.map(lambda x, i=i: x * i).sum() == i * expected_sum()
        return graph

    manager = attach(policy="blaze", profile_mode="record", profile_path=str(path))
    graph = loop(3)
    site = manager.explain(graph)["site"]
    manager.detach()
    graph.unpersist()
    assert json.loads(path.read_text())["sites"][site]["uses"] == 3

    manager = attach(policy="blaze", profile_mode="use", profile_path=str(path))
    before = sum(computed.value.values())
    graph = loop(5)
    manager.sync()
    assert sum(computed.value.values()) - before == PARTS  # computed once, for 5 iterations
    assert graph.is_cached
    later = {p["inputs"]["F_later"] for p in manager.explain(graph)["partitions"].values()}
    assert later == {5.0}  # past the profile's 3: as many more as the 5 jobs that read it
    assert sc.parallelize(range(4), 2).count() == 4  # a job that does not read it
    manager.sync()
    assert "auto_unpersist" in [e["action"] for e in manager.explain(graph)["dataset"]]
    assert not graph.is_cached


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"policy": "fastest"}, ConfigError, "spark.blaze.policy='fastest' is not one of"),
        ({"memory_budget": "0"}, ConfigError, "must be positive"),
        ({"memory_budget": "-5m"}, ConfigError, "is not a size"),
        ({"memory_budget": "900g"}, ConfigError, "exceeds Spark's storage memory"),
        ({"colour": "red"}, TypeError, "unknown option 'colour'"),
        ({"spark.blaze.nope": "1"}, ConfigError, "unknown setting spark.blaze.nope"),
    ],
)
def test_bad_input_is_one_clear_error_at_attach(spark, options, error, message):
    with pytest.raises(error, match=message):
        blaze.attach(spark, **options)
    assert blaze.manager.active_manager(spark) is None


def test_profile_of_another_application_is_refused_at_attach(spark, tmp_path):
    from costmodel.cost import CostModel
    from costmodel.disk import DiskCost
    from costmodel.profile import record

    model = CostModel(disk=DiskCost(1.0, 1.0))
    path = record(tmp_path / "other.json", model, app_name="some-other-app")
    with pytest.raises(InputError, match="belongs to application 'some-other-app'"):
        blaze.attach(spark, profile_mode="use", profile_path=str(path))
    assert blaze.manager.active_manager(spark) is None


def test_a_long_loop_of_dataframe_generations_keeps_the_managers_books_flat(spark, attach, bridge):
    """The DataFrame loop: each iteration caches the next generation of the state, counts it
    and unpersists the previous one, checkpointing every 10. DataFrame actions alone (no RDD
    job) let go of the dropped generations' records too, and the lineage a checkpoint cut
    leaves the cost model: the books after 40 iterations are those after 20."""
    import gc

    manager = attach(policy="blaze")
    previous, sizes, held = None, {}, {}
    for job in range(1, 41):
        state = previous if previous is not None else spark.range(400, numPartitions=2)
        if job % 10 == 0:
            state = state.localCheckpoint()
        current = state.selectExpr("id", f"(id * {job}) % 97 AS v").cache()
        assert current.count() == 400
        if previous is not None:
            previous.unpersist()
        previous = current
        if job > 10:
            # the books are read at one defined point: the dropped generation released (gc)
            # and its unpersist handled (sync), then let go at the end of an action
            gc.collect()
            manager.sync()
            assert spark.range(1).count() == 1
            held[job] = len(bridge.persistent_rdd_ids())  # before the sync: Spark's cleaner
            manager.sync()  # may unpersist a checkpoint at any time, never persist one
            sizes[job] = manager.book_sizes()
    for book in ("tracker", "rdd_of_token", "datasets"):
        assert sizes[40][book] <= sizes[20][book], (book, sizes)
    assert sizes[40]["tracker"] < 10  # the live generations only

    # what Spark itself still holds (the checkpoints wait for its cleaner, a few RDDs each)
    # stays in the books; the 20 generations between do not (they added ~120 RDDs before),
    # nor a checkpoint Spark's cleaner has unpersisted
    def most(first: int) -> int:  # the lineage between two checkpoints, at its longest
        return max(sizes[job]["cost_model_rdds"] for job in range(first, first + 10))

    assert most(31) - most(11) < 30, sizes
    computed_and_held = [(sizes[job]["computed"], held[job]) for job in (20, 40)]
    assert all(computed <= live for computed, live in computed_and_held), computed_and_held
    previous.unpersist()


def test_second_attach_is_refused_while_one_is_attached(spark, attach):
    attach(policy="blaze")
    with pytest.raises(ManagerError, match="already attached"):
        blaze.attach(spark, policy="lrc")


def test_a_long_loop_of_generations_keeps_the_managers_books_flat(sc, attach):
    """Each job caches a new generation, counts it and unpersists the previous one: the
    records of generations the program dropped go, so the books after 60 jobs are those
    after 20 (the predictors keep a bounded history too)."""
    manager = attach(policy="blaze")
    base = sc.parallelize(range(200), 2)
    previous, sizes = None, {}
    for job in range(1, 61):
        current = base.map(lambda x, j=job: x * j % 97).cache()
        assert current.count() == 200
        if previous is not None:
            previous.unpersist()
        previous = current
        if job in (20, 60):
            manager.sync()
            sizes[job] = manager.book_sizes()
    books = ("tracker", "rdd_of_token", "observed", "datasets", "ledger", "stage_graphs")
    for book in books:
        assert sizes[60][book] <= sizes[20][book], (book, sizes)
    assert sizes[60]["tracker"] < 20  # only the live generations and the base
    previous.unpersist()
