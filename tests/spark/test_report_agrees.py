"""The manager's report agrees with what Spark did, on the shapes of Spark's own examples.

Ground truth is counted inside the program, never taken from the manager: one accumulator
in the cached RDD's own function (runs once per computation of a partition) and one in a
view read through every use of it (runs once per read, computed or cached). Every read
that was not a computation is a cached-block read Spark made: the report's ``hits``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import attached_managers

pytestmark = pytest.mark.spark

PARTS, KEYS, ITERATIONS = 4, 40, 3


@pytest.fixture
def attach(spark, bridge):
    yield from attached_managers(spark, bridge)


def counted_links(sc, *, co_partitioned: bool):
    """PageRank's ``links`` (key -> neighbours), cached; returns (links read through a
    counting view, computations accumulator, reads accumulator)."""
    computed, reads = sc.accumulator(0), sc.accumulator(0)

    def compute(rows):
        computed.add(1)
        return rows

    def read(rows):
        reads.add(1)
        return rows

    edges = sc.parallelize([(k, (k * 7 + j) % KEYS) for k in range(KEYS) for j in range(3)], PARTS)
    grouped = edges.groupByKey(PARTS) if co_partitioned else edges.groupByKey(PARTS).map(tuple)
    links = grouped.mapValues(list).mapPartitions(compute, preservesPartitioning=co_partitioned)
    links.cache()
    return links.mapPartitions(read, preservesPartitioning=co_partitioned), computed, reads


def pagerank(sc, view, *, co_partitioned: bool):
    if co_partitioned:  # Spark's GraphX shape: ranks keep links' partitioner, the join is narrow
        ranks = view.mapValues(lambda _: 1.0)
    else:  # Spark's examples/pagerank.py: ranks from a shuffle, the join a UnionRDD
        ranks = sc.parallelize([(k, 1.0) for k in range(KEYS)], PARTS)
    for _ in range(ITERATIONS):
        contribs = view.join(ranks).flatMap(
            lambda kv: [(n, kv[1][1] / len(kv[1][0])) for n in kv[1][0]]
        )
        ranks = contribs.reduceByKey(lambda a, b: a + b, PARTS).mapValues(lambda r: 0.15 + 0.85 * r)
        ranks.count()
    return sorted(ranks.collect())


@pytest.mark.parametrize("co_partitioned", [False, True], ids=["union", "partitioner_aware"])
def test_hits_equal_the_cached_reads_spark_made_in_join_stages(spark, attach, co_partitioned):
    sc = spark.sparkContext
    manager = attach(policy="mem_only", memory_budget="1g", auto_cache=False)
    view, computed, reads = counted_links(sc, co_partitioned=co_partitioned)
    pagerank(sc, view, co_partitioned=co_partitioned)
    report = manager.report()
    assert computed.value == PARTS  # ample memory: each partition computed once
    assert reads.value > 2 * PARTS  # the join read the cached partitions again and again
    assert (report["hits"], report["misses"]) == (reads.value - computed.value, computed.value)


def _line_of(marker: str) -> int:
    source = Path(__file__).read_text().splitlines()
    return next(i for i, line in enumerate(source, 1) if line.rstrip().endswith(marker))


def _job_and_stage_names(spark, action: str) -> list[str]:
    """Names Spark gives the jobs and stages of one action (JobStart call sites, StageInfo
    names), as the listener sees them."""
    from lineage.events import JobRun, StageRun
    from lineage.listener import LineageListener

    listener = LineageListener.attach(spark)
    named = []

    def note(record):
        if isinstance(record, JobRun) and record.call_site:
            named.append(record.call_site)
        elif isinstance(record, StageRun) and not record.completed:
            named.append(record.name)

    listener.subscribe(note)
    df = spark.range(0, 1000, 1, 2).selectExpr("id % 7 AS k").groupBy("k").count()
    try:
        if action == "collect":
            df.collect()  # ACTION collect
        elif action == "count":
            df.count()  # ACTION count
        else:
            df.rdd.map(lambda row: row[0]).count()  # ACTION rdd_count
        listener.wait_until_empty()
    finally:
        listener.detach()
    return named


@pytest.mark.parametrize("action", ["collect", "count", "rdd_count"])
def test_jobs_are_named_after_the_users_line_with_the_manager_attached(spark, attach, action):
    """Every job and stage of a DataFrame action is named after the user's line (here the
    helper's action line) in the listener's JobStart and StageInfo, never after a blaze
    wrapper — also those Spark's SQL engine submits from its own threads (plain PySpark names
    those after a JVM frame: ``CompletableFuture.java``)."""
    attach(policy="mem_only", memory_budget="1g")
    names = _job_and_stage_names(spark, action)
    site = f"{Path(__file__)}:{_line_of(f'# ACTION {action}')}"
    function = "count" if action == "rdd_count" else action
    assert names
    assert {name.rsplit(" at ", 1)[1] for name in names} == {site}, names
    assert f"{function} at {site}" in names
