"""LineageListener on the real shared SparkSession: a PageRank-style program's lineage.

The program runs once per module; Spark's own EventLoggingListener is added to the same
running SparkContext for that run (the shared session has no event log), so the DAG the
listener built live is compared with the DAG rebuilt from the log *Spark* wrote, in Spark 4's
default format (rolling directory, zstd).
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
import threading
import time
from operator import add
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import finish_script, start_script

from lineage.dag import LineageDag
from lineage.events import TaskRun
from lineage.listener import LineageListener

pytestmark = pytest.mark.spark

ITERATIONS = 3
VERTICES = 40
PARTITIONS = 4
THIS_FILE = Path(__file__).name


def _here() -> int:
    """Line number of the caller (to compute expected call sites, not hard-code them)."""
    return sys._getframe(1).f_lineno


def _start_spark_event_log(sc, folder: Path, app_id: str):
    """Spark's own event-log writer, added to the running context (test-only helper)."""
    jvm = sc._jvm
    conf = sc._jsc.sc().conf().clone()
    conf.set("spark.eventLog.logBlockUpdates.enabled", "true")
    none = getattr(jvm.scala, "None$").__getattr__("MODULE$")
    writer = jvm.org.apache.spark.scheduler.EventLoggingListener(
        app_id, none, jvm.java.net.URI(folder.as_uri()), conf
    )
    writer.start()
    sc._jsc.sc().listenerBus().addToQueue(writer, "blazeTestEventLog")
    return writer


def _pagerank(sc):
    edges = sc.parallelize(
        [(v, (v * 7 + 1) % VERTICES) for v in range(VERTICES)]
        + [(v, (v * 3 + 2) % VERTICES) for v in range(VERTICES)],
        PARTITIONS,
    )
    links_line = _here() + 1
    links = edges.groupByKey().mapValues(list).setName("links").cache()
    links.count()
    ranks = links.map(lambda kv: (kv[0], 1.0))
    all_ranks = []
    for i in range(ITERATIONS):
        contribs = links.join(ranks).flatMap(
            lambda kv: [(dst, kv[1][1] / len(kv[1][0])) for dst in kv[1][0]]
        )
        ranks_line = _here() + 1
        ranks = contribs.reduceByKey(add).mapValues(lambda r: 0.15 + 0.85 * r).cache()
        ranks.setName(f"ranks{i}").count()
        all_ranks.append(ranks)
    return edges, links, all_ranks, links_line, ranks_line


@pytest.fixture(scope="module")
def run(sc, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lineage")
    app_id = f"lineage-test-{os.getpid()}"
    bus = sc._jsc.sc().listenerBus()
    writer = _start_spark_event_log(sc, folder, app_id)
    listener = LineageListener.attach(sc, record_to=folder / "recorded.json")
    try:
        edges, links, all_ranks, links_line, ranks_line = _pagerank(sc)
        storage = {
            info.id(): (info.numCachedPartitions(), info.memSize(), info.diskSize())
            for info in sc._jsc.sc().getRDDStorageInfo()
        }
        all_ranks[0].unpersist()
        listener.wait_until_empty()
    finally:
        bus.removeListener(writer)
        writer.stop()
    yield SimpleNamespace(
        sc=sc,
        bus=bus,
        listener=listener,
        dag=listener.dag,
        edges=edges,
        links=links,
        ranks=all_ranks,
        links_line=links_line,
        ranks_line=ranks_line,
        storage=storage,
        spark_log=folder / f"eventlog_v2_{app_id}",
        recorded=folder / "recorded.json",
    )
    listener.detach()
    for rdd in [links, *all_ranks]:
        rdd.unpersist()


def _jvm_parents(rdd) -> tuple[int, ...]:
    deps = rdd._jrdd.rdd().dependencies()
    return tuple(deps.apply(i).rdd().id() for i in range(deps.size()))


def test_nodes_carry_the_python_call_sites(run):
    dag = run.dag
    assert dag.call_site(run.links.id()) == f"groupByKey at {__file__}:{run.links_line}"
    for ranks in run.ranks:
        assert dag.call_site(ranks.id()) == f"reduceByKey at {__file__}:{run.ranks_line}"
    # one signature for the same step of every iteration, another for links
    signatures = {dag.signature(r.id()) for r in run.ranks}
    assert len(signatures) == 1 and dag.signature(run.links.id()) not in signatures
    group = dag.by_call_site()[f"reduceByKey at {__file__}:{run.ranks_line}"]
    assert all(r.id() in group for r in run.ranks) and run.links.id() not in group


def test_parent_edges_match_the_jvm_rdds(run):
    dag = run.dag
    for rdd in [run.links, *run.ranks]:
        assert dag.parents(rdd.id()) == _jvm_parents(rdd)
        for parent in dag.parents(rdd.id()):
            assert rdd.id() in dag.children(parent)
    # following parent edges from ranks_i reaches ranks_{i-1}, links and the input
    for i, ranks in enumerate(run.ranks):
        seen, todo = set(), [ranks.id()]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(dag.parents(current))
        assert {run.links.id(), run.edges.id()} <= seen
        if i:
            assert run.ranks[i - 1].id() in seen


def test_reuse_counts_match_the_program(run):
    dag = run.dag
    # links: computed by links.count(), then read by the join of every iteration
    assert dag.reuse_count(run.links.id()) == ITERATIONS
    # ranks_i: computed by its count(), read by the next iteration's join only
    assert [dag.reuse_count(r.id()) for r in run.ranks] == [1] * (ITERATIONS - 1) + [0]
    assert len(dag.jobs_of(run.links.id())) == ITERATIONS + 1


def test_block_sizes_match_spark_storage_info(run):
    dag = run.dag
    for rdd in [run.links, *run.ranks[1:]]:
        stored = [p for p in dag.partitions(rdd.id()).values() if p.is_stored]
        cached, memory, disk = run.storage[rdd.id()]
        assert (len(stored), sum(p.memory_size for p in stored)) == (cached, memory)
        assert sum(p.disk_size for p in stored) == disk
        assert cached == PARTITIONS


def test_partitions_know_the_task_that_computed_them(run):
    dag = run.dag
    for rdd in [run.links, *run.ranks]:
        for split, obs in dag.partitions(rdd.id()).items():
            assert obs.compute_time_ms is not None and obs.compute_time_ms >= 0
            producers = {
                t.task_id: t
                for s in dag.executed_stages_of(rdd.id())
                for t in dag.tasks(s)
                if t.partition_index == split
            }
            assert producers[obs.task_id].run_time_ms == obs.compute_time_ms


def test_unpersist_is_seen(run):
    first = run.ranks[0].id()
    assert run.dag.is_unpersisted(first)
    assert not any(p.is_stored for p in run.dag.partitions(first).values())


def test_live_dag_equals_the_dag_from_sparks_own_event_log(run):
    from_log = LineageDag.from_event_log(run.spark_log)
    assert from_log.log_stats.skipped == 0
    assert from_log.events_applied > 0
    assert from_log == run.dag
    assert LineageDag.from_event_log(run.recorded) == run.dag
    assert run.listener.errors == {}


def test_stage_events_cross_without_the_rdd_lists_their_job_start_carried(run):
    """The equality above holds though the recorded stage events are slim: each stage's RDDs
    crossed once, with its job's start, and the DAG took them from there."""
    import json

    stage_events = [
        event
        for event in map(json.loads, run.recorded.read_text().splitlines())
        if event["Event"] in ("SparkListenerStageSubmitted", "SparkListenerStageCompleted")
    ]
    assert stage_events and all(e["Stage Info"]["RDD Info"] == [] for e in stage_events)
    for event in stage_events:
        stage = run.dag.stage(event["Stage Info"]["Stage ID"])
        assert stage.rdds and stage.final_rdd_id == stage.rdds[0].rdd_id


def test_py4j_replies_are_sent_without_nagles_wait(run):
    from lineage.py4j_sockets import disable_nagle

    gateway = run.sc._gateway
    field = gateway.jvm.java.lang.Class.forName("py4j.GatewayServer").getDeclaredField(
        "connections"
    )
    field.setAccessible(True)
    connections = field.get(gateway.java_gateway_server)
    sockets = [connections.get(i).getSocket() for i in range(connections.size())]
    assert sockets and all(s.getTcpNoDelay() for s in sockets)  # the drain thread's call
    sockets[0].setTcpNoDelay(False)
    assert disable_nagle(run.sc) == 1 and sockets[0].getTcpNoDelay()
    assert disable_nagle(object()) == 0  # not a py4j gateway: left alone


def test_blaze_lineage_reads_sparks_event_log(run, capsys):
    from blaze_cli import main

    assert main(["lineage", str(run.spark_log), "--top", "100"]) == 0
    out = capsys.readouterr().out
    links_row = next(line for line in out.splitlines() if " links " in line)
    assert f"groupByKey at {THIS_FILE}:{run.links_line}" in links_row
    # ids are right-aligned: "┃ id ┃" or "┃  id ┃" depending on how many RDDs the session made
    headers = [line for line in out.splitlines() if re.search(r"┃\s+id\s+┃", line)]
    assert headers, out
    header = headers[0]
    columns = [c.strip() for c in header.split("┃")[1:-1]]
    cells = dict(zip(columns, (c.strip() for c in links_row.split("│")[1:-1])))
    assert cells["reuse"] == str(ITERATIONS)
    assert cells["cached parts"] == f"{PARTITIONS}/{PARTITIONS}"


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "per_event"])
def test_events_fed_out_of_order_through_the_jvm_never_crash(run, batched):
    """Real JVM event objects, reordered and thinned, sent straight to a second listener
    (the JVM buffer or the py4j callback proxy)."""
    json_protocol = run.sc._jvm.org.apache.spark.util.JsonProtocol
    lines = [line for line in run.recorded.read_text().splitlines() if line]
    kept = [line for i, line in enumerate(reversed(lines)) if i % 4 != 1]
    fed = LineageListener.attach(run.sc, batched=batched)
    assert fed.delivery == ("batched" if batched else "per_event")
    try:
        for line in kept:
            event = json_protocol.sparkEventFromJson(line)
            name = event.getClass().getSimpleName()  # SparkListenerTaskEnd -> onTaskEnd
            getattr(fed._proxy, "on" + name.removeprefix("SparkListener"))(event)
        fed._proxy.onTaskEnd(None)  # a null event: Spark renders it as "null"
        fed._on_json('{"Event": "SparkListenerTaskEnd", "Stage ID": ')  # a cut line
        fed.wait_until_empty()
        assert fed.errors == {"parse": 2}
        expected = LineageDag.from_json_lines(kept)
        assert fed.dag == expected
        assert set(fed.dag.rdds) <= set(run.dag.rdds)
    finally:
        fed.detach()


def test_subscribers_get_records_and_their_errors_are_counted(run):
    listener = LineageListener.attach(run.sc)
    seen = []
    unsubscribe = listener.subscribe(seen.append)
    listener.subscribe(lambda record: 1 / 0)
    try:
        run.sc.parallelize(range(8), 2).count()
        listener.wait_until_empty()
        kinds = {type(r).__name__ for r in seen}
        assert {"JobRun", "StageRun", "TaskRun"} <= kinds
        assert listener.errors["subscriber"] == len(seen)
        unsubscribe()
        count = len(seen)
        run.sc.parallelize(range(8), 2).count()
        listener.wait_until_empty()
        assert len(seen) == count
    finally:
        listener.detach()


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "per_event"])
def test_batch_subscribers_get_every_record_in_order_once_per_batch(run, batched):
    """A batched subscriber sees the same records, in the same order, as a per-record one,
    in either delivery; drained from the JVM buffer, in fewer calls than there are records
    (one per batch)."""
    listener = LineageListener.attach(run.sc, batched=batched)
    one_by_one, batches = [], []
    listener.subscribe(one_by_one.append)
    listener.subscribe(batches.append, batched=True)
    try:
        for _ in range(3):
            run.sc.parallelize(range(40), 4).map(lambda x: x + 1).count()
        listener.wait_until_empty()
        assert all(isinstance(batch, tuple) and batch for batch in batches)
        assert [r for batch in batches for r in batch] == one_by_one
        assert one_by_one and (len(batches) < len(one_by_one) if batched else True)
    finally:
        listener.detach()


def test_events_wait_in_the_jvm_and_cross_in_one_batch(run):
    """While Python is busy, a whole job's events queue in the JVM buffer; they then cross
    in one py4j call, in order, and wait_until_empty covers them."""
    listener = LineageListener.attach(run.sc)
    assert listener.delivery == "batched"
    release, first = threading.Event(), threading.Event()
    tasks = []

    def hold_first(record):
        if not first.is_set():
            first.set()
            release.wait(60)
        if isinstance(record, TaskRun):
            tasks.append(record.partition_index)

    listener.subscribe(hold_first)
    try:
        run.sc.parallelize(range(60), 60).count()
        run.bus.waitUntilEmpty(30_000)  # every event is in the buffer (or held in Python)
        assert first.is_set() and listener.batches == 0
        release.set()
        listener.wait_until_empty()
        assert listener.batches == 2  # the held one, then everything that queued behind it
        assert sorted(tasks) == list(range(60))
        assert listener.errors == {}
    finally:
        release.set()
        listener.detach()


def test_a_cache_managers_listener_gets_the_task_events_of_cached_stages_only(run):
    """``cached_stages_only``: a plain stage's task events are not sent; a stage with a
    persisted RDD sends every one, and a plain stage's task ends that wrote shuffle data
    (the write cost's samples) still come."""
    listener = LineageListener.attach(run.sc, cached_stages_only=True)
    seen: list[TaskRun] = []
    listener.subscribe(lambda record: isinstance(record, TaskRun) and seen.append(record))
    try:
        run.sc.parallelize(range(40), 8).count()  # plain, no shuffle: 16 events skipped
        listener.wait_until_empty()
        assert seen == [] and listener.task_events_skipped() == 16
        cached = run.sc.parallelize(range(40), 6).map(lambda x: x + 1).cache()
        cached.count()
        cached.sum()
        listener.wait_until_empty()
        assert sorted(t.partition_index for t in seen) == sorted(list(range(6)) * 2)
        seen.clear()
        pairs = run.sc.parallelize([(x % 3, x) for x in range(40)], 4)
        pairs.reduceByKey(add, 2).count()  # map tasks write shuffle data; result tasks do not
        listener.wait_until_empty()
        assert len(seen) == 4 and all(t.shuffle_write_bytes > 0 for t in seen)
        assert listener.task_events_skipped() == 16 + 4 + 2 * 2  # their starts, result tasks
        cached.unpersist()
    finally:
        listener.detach()


def test_a_stuck_python_side_never_holds_sparks_bus(run, monkeypatch):
    """A full buffer with nobody draining: after its short wait the JVM side drops and
    counts events instead of holding Spark's bus; once Python drains again, events flow."""
    import lineage.listener as listener_module

    monkeypatch.setattr(listener_module, "BUFFER_CAPACITY", 20)
    listener = LineageListener.attach(run.sc)
    release, tasks = threading.Event(), []

    def stuck_then_count(record):
        release.wait(120)
        if isinstance(record, TaskRun):
            tasks.append(record.stage_id)

    listener.subscribe(stuck_then_count)
    try:
        run.sc.parallelize(range(60), 60).count()
        run.bus.waitUntilEmpty(60_000)  # raises if the buffer held the bus's thread
        release.set()
        listener.wait_until_empty()
        assert listener.errors["buffer_full"] > 0
        tasks.clear()
        run.sc.parallelize(range(30), 30).count()
        listener.wait_until_empty()
        assert len(tasks) == 30
    finally:
        release.set()
        listener.detach()


def test_detach_removes_the_listener_from_the_bus_and_is_idempotent(run):
    before = run.bus.listeners().size()
    listener = LineageListener.attach(run.sc)
    assert run.bus.listeners().size() == before + 1
    started = time.monotonic()
    listener.detach()
    listener.detach()
    assert time.monotonic() - started < 5
    assert run.bus.listeners().size() == before
    applied = listener.dag.events_applied
    run.sc.parallelize(range(4), 2).count()
    listener.wait_until_empty()  # a no-op once detached
    assert listener.dag.events_applied == applied and not listener.attached


STOP_SCRIPT = textwrap.dedent(
    """
    import time, blaze
    from lineage.listener import LineageListener
    spark = blaze.session({"spark.ui.enabled": "false"}, app_name="lineage-stop")
    sc = spark.sparkContext
    kept = LineageListener.attach(sc)
    stopped = LineageListener.attach(sc)
    sc.parallelize(range(10), 2).map(lambda x: x + 1).count()
    kept.wait_until_empty()
    spark.stop()
    started = time.monotonic()
    stopped.detach()                           # after the SparkContext is gone
    print("DETACH_AFTER_STOP_S", round(time.monotonic() - started, 3))
    print("EVENTS", kept.dag.events_applied, stopped.dag.events_applied, dict(kept.errors))
    # a second context in the same JVM, left running with a listener attached: Python exits
    # first, and only the atexit detach keeps the JVM's later events from hitting a dead
    # callback server ("Listener ProxyN threw an exception ... Error while sending a command")
    spark = blaze.session({"spark.ui.enabled": "false"}, app_name="lineage-exit")
    left = LineageListener.attach(spark.sparkContext)
    spark.sparkContext.parallelize(range(10), 2).count()
    left.wait_until_empty()
    print("EXITING", left.dag.events_applied)
    """
)


@pytest.mark.slow
def test_detach_after_spark_stop_and_at_exit_does_not_hang_or_raise(tmp_path):
    code, stdout, stderr = finish_script(start_script(tmp_path, "stop.py", STOP_SCRIPT), 240)
    assert code == 0, stderr[-2000:]
    for problem in ("Traceback", "threw an exception", "Py4JException", "Py4JNetworkError"):
        assert problem not in stderr, stderr[-3000:]
    detach_s = float(stdout.split("DETACH_AFTER_STOP_S")[1].split()[0])
    assert detach_s < 10
    events = stdout.split("EVENTS")[1].split()
    assert int(events[0]) > 0 and events[0] == events[1] and "{}" in stdout
    assert int(stdout.split("EXITING")[1].split()[0]) > 0


FALLBACK_SCRIPT = textwrap.dedent(
    """
    import logging
    from pyspark.sql import SparkSession
    from lineage.events import TaskRun
    from lineage.listener import LineageListener
    logging.basicConfig(level=logging.INFO)
    # plain PySpark, no spark.blaze.* key: blaze-spark's jar is not on the class path
    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    listeners = [LineageListener.attach(spark), LineageListener.attach(spark)]
    tasks = []
    listeners[0].subscribe(lambda r: tasks.append(r) if isinstance(r, TaskRun) else None)
    spark.sparkContext.parallelize(range(6), 3).count()
    listeners[0].wait_until_empty()
    print("RESULT", listeners[0].delivery, LineageListener.fallbacks, len(tasks),
          dict(listeners[0].errors))
    for listener in listeners:
        listener.detach()
    spark.stop()
    """
)


@pytest.mark.slow
def test_without_the_jar_events_cross_one_by_one_counted_and_said_once(tmp_path):
    code, stdout, stderr = finish_script(
        start_script(tmp_path, "fallback.py", FALLBACK_SCRIPT), 240
    )
    assert code == 0, stderr[-2000:]
    assert stdout.split("RESULT")[1].split() == ["per_event", "2", "3", "{}"]
    assert stderr.count("EventBuffer is not loaded") == 1, stderr[-2000:]
