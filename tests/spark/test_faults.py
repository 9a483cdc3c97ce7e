"""The fault matrix, local rows: each fault under the cache manager on real Spark.

For each row the job must finish with the answer computed without any fault (an independent
Python computation), the manager must keep working (or detach cleanly), its report must count
what happened, and nothing may hang (every test has a timeout). Faults that need a
SparkContext configured differently from the shared test session (a tiny listener queue,
squeezed storage memory) run in their own process. The executor-kill row needs several
executors: ``tests/e2e/test_plugin_cluster.py``. A block removed behind the manager's back:
``tests/spark/test_manager.py::test_lost_events_and_external_removal_are_resynced``.
"""

from __future__ import annotations

import hashlib
import textwrap
import time
from pathlib import Path

import pytest
from conftest import finish_script, printed_json, start_script
from pyspark import StorageLevel

import blaze

pytestmark = pytest.mark.spark

RECORDS, PARTS = 8_000, 4
EXPECTED = sum(range(RECORDS))


@pytest.fixture
def manager(spark, bridge):
    spark.catalog.clearCache()
    for rdd_id in bridge.persistent_rdd_ids():
        bridge.unpersist_rdd(rdd_id, blocking=True)
    mgr = blaze.attach(spark, policy="blaze", disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
    yield mgr
    mgr.detach()
    for rdd_id in bridge.persistent_rdd_ids():
        bridge.unpersist_rdd(rdd_id, blocking=True)


def _counted(sc, records=RECORDS, parts=PARTS):
    computed = [sc.accumulator(0) for _ in range(parts)]

    def tag(split, rows):
        computed[split].add(1)
        return ((x, x % 7) for x in rows)

    return sc.parallelize(range(records), parts).mapPartitionsWithIndex(tag), computed


@pytest.mark.timeout(240)
def _delete_block_files_then_read(sc, bridge) -> tuple[list, bool]:
    """Cache DISK_ONLY, delete the block files, read until Spark recomputes: (first answer,
    whether the lost block failed an action, final answer), and whether anything computed."""
    from py4j.protocol import Py4JJavaError

    data, computed = _counted(sc)
    data.persist(StorageLevel.DISK_ONLY)
    outcomes: list = [data.map(lambda kv: kv[0]).sum()]
    paths = [Path(bridge.block_file(data.id(), split)) for split in range(PARTS)]
    on_disk = [p for p in paths if p.exists()]
    assert on_disk, "no block file to delete: the fault was not injected"
    for path in on_disk:
        path.unlink()
    # Spark fails the action that meets a vanished block and forgets the block; when it has
    # forgotten it (asynchronously: one action later, or two on a busy driver) the next
    # action recomputes. Outcome: the lost-block failure(s), then the right answer.
    failures = 0
    for _ in range(4):
        try:
            outcomes.append(data.map(lambda kv: kv[0]).sum())
            break
        except Py4JJavaError as exc:
            assert "not found even though it's read-locked" in str(exc.java_exception)
            failures += 1
    data.unpersist(blocking=True)
    return [outcomes[0], failures >= 1, outcomes[-1]], sum(a.value for a in computed) > 0


def test_cached_block_files_deleted_from_the_block_manager_dir(spark, sc, manager, bridge):
    """Plain Spark (local mode, one task attempt) fails the first action that reads a block
    whose file vanished, drops the block, and the next action recomputes it: with the
    manager attached the outcome must be exactly that, and the manager must carry on."""
    manager.detach()
    plain = _delete_block_files_then_read(sc, bridge)
    # the program's own DISK_ONLY cache, kept as asked (policy "spark": the manager observes)
    observer = blaze.attach(spark, policy="spark", disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
    try:
        managed = _delete_block_files_then_read(sc, bridge)
        report = observer.report()
        assert observer.attached
        assert report["errors"] == {}
        assert report["misses"] >= PARTS
        # known gap: the recomputation after the loss is not yet counted as a second miss
    finally:
        observer.detach()
    assert managed == plain == ([EXPECTED, True, EXPECTED], True)


@pytest.mark.timeout(240)
def test_exceptions_inside_listener_callbacks_are_counted_and_survived(sc, manager):
    failures = {"left": 3}
    original = manager.enforcement.on_block

    def failing_on_block(event):
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("injected failure in a block callback")
        return original(event)

    manager.enforcement.on_block = failing_on_block

    def failing_subscriber(record):
        raise ValueError("injected failure in a listener subscriber")

    unsubscribe = manager._listener.subscribe(failing_subscriber)
    try:
        data, _ = _counted(sc)
        data.persist(blaze.BLAZE)
        answers = [data.map(lambda kv: kv[0]).sum() for _ in range(3)]
    finally:
        unsubscribe()
    assert answers == [EXPECTED] * 3
    report = manager.report()
    assert failures["left"] == 0
    assert report["errors"].get("BlockEvent") == 3  # each failed event counted once
    assert report["listener_errors"].get("subscriber", 0) >= 1
    assert manager.attached and report["hits"] >= PARTS  # and it kept managing


@pytest.mark.timeout(240)
def test_slow_callback_server_delays_events_but_nothing_hangs_or_goes_wrong(sc, manager):
    def slow(record):
        time.sleep(0.02)  # every event waits in the py4j callback thread

    unsubscribe = manager._listener.subscribe(slow)
    try:
        data, computed = _counted(sc, parts=8)
        data.persist(blaze.BLAZE)
        started = time.monotonic()
        answers = [data.map(lambda kv: kv[0]).sum() for _ in range(3)]
        report = manager.report()  # waits until every delayed event is handled
        elapsed = time.monotonic() - started
    finally:
        unsubscribe()
    assert answers == [EXPECTED] * 3
    assert elapsed < 120
    assert report["errors"] == {} and report["listener_errors"] == {}
    assert report["hits"] >= 8  # the delayed block events still made the cache count
    assert sum(a.value for a in computed) == 8  # computed once, then read from the cache


# ---- rows that need their own SparkContext ------------------------------------------------
CHILD = textwrap.dedent(
    """
    import hashlib, json, sys
    from operator import add
    from pyspark.sql import SparkSession
    import blaze

    mode = sys.argv[1]
    builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    if mode == "dropped":
        builder = builder.config("spark.scheduler.listenerbus.eventqueue.capacity", "10")
    else:  # squeezed: a few MB of storage memory, so Spark evicts blocks itself
        builder = builder.config("spark.driver.memory", "1g").config(
            "spark.memory.fraction", "0.02"
        )
    spark = builder.getOrCreate()
    sc = spark.sparkContext
    policy = "blaze" if mode == "dropped" else "spark"

    def payload(x, width):  # incompressible text: block compression must not shrink it
        digest = "".join(hashlib.sha256(f"{x}-{j}".encode()).hexdigest() for j in range(16))
        return digest[:width]

    mgr = blaze.attach(spark, policy=policy, disk_write_ms_per_mib=1, disk_read_ms_per_mib=1)
    answers = []
    datasets = []
    if mode == "dropped":  # a slow consumer behind a 10-event queue: Spark must drop events
        import time

        mgr._listener.subscribe(lambda record: time.sleep(0.02))
        for _ in range(2):
            sc.parallelize(range(1000), 100).count()
    parts = 20  # each task's events cross py4j one by one here (no jar): few tasks, fast run
    width = 20 if mode == "dropped" else 400  # squeezed: 3 x 16+ MB against ~14 MB unified
    for i in range(3):
        data = sc.parallelize(range(40000), parts).map(
            lambda x, i=i, w=width: (x % 97, payload(x + i, w))
        )
        data = data.persist(blaze.BLAZE) if policy == "blaze" else data.cache()
        datasets.append(data)
        answers.append(data.count())
        answers.append(sorted(data.mapValues(len).reduceByKey(add).collect())[:3])
    answers.append([d.count() for d in datasets])
    report = mgr.report()
    attached = mgr.attached
    registry = sc._jsc.sc().listenerBus().metrics().metricRegistry()
    dropped = registry.counter("queue.blaze.numDroppedEvents").getCount()
    spark.stop()
    result = {"answers": answers, "report": report, "attached": attached, "dropped": dropped}
    print("FAULT " + json.dumps(result))
    """
)


def _payload(x: int, width: int) -> str:
    return "".join(hashlib.sha256(f"{x}-{j}".encode()).hexdigest() for j in range(16))[:width]


def _expected_answers(width: int) -> list:
    answers = []
    for i in range(3):
        rows = [(x % 97, _payload(x + i, width)) for x in range(40000)]
        sums: dict[int, int] = {}
        for key, value in rows:
            sums[key] = sums.get(key, 0) + len(value)
        answers.append(40000)
        answers.append([list(kv) for kv in sorted(sums.items())[:3]])
    answers.append([40000] * 3)
    return answers


@pytest.fixture(scope="module")
def child_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    started = {
        mode: start_script(folder, f"child_{mode}.py", CHILD, mode)
        for mode in ("dropped", "squeezed")
    }
    return {mode: finish_script(proc, 800) for mode, proc in started.items()}


@pytest.mark.slow
@pytest.mark.timeout(900)  # includes both child runs (about 100 s side by side on 2 idle cores)
def test_listener_events_dropped_by_a_tiny_queue(child_runs):
    run, err = printed_json(child_runs["dropped"], "FAULT "), child_runs["dropped"][2]
    assert run["dropped"] > 0 or "Dropping event from queue blaze" in err  # the fault happened
    assert run["answers"] == _expected_answers(20)
    report = run["report"]
    assert run["attached"] and report["errors"] == {}
    # whatever the manager lost it corrects from Spark's storage status at each job end; since
    # events are buffered on the JVM side, the events Spark drops are not always ones the books
    # need, so a correction is not guaranteed (a fresh-clone CI run here saw 0). The report
    # has no count of the dropped events themselves yet (key to add:
    # "listener_events_dropped", from Spark's own numDroppedEvents counter of the queue)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_storage_squeezed_until_spark_evicts(child_runs):
    run = printed_json(child_runs["squeezed"], "FAULT ")
    assert run["answers"] == _expected_answers(400)
    report = run["report"]
    assert run["attached"] and report["errors"] == {}
    evicted = sum(report["evictions_by_reason"].values())
    assert evicted >= 1, report["evictions_by_reason"]  # Spark's own evictions, counted
