"""blaze-spark's JVM plugin in the shared local session (both halves live in the driver JVM)."""

from __future__ import annotations

import pytest

from blaze_jvm import PLUGIN_CLASS

pytestmark = pytest.mark.spark


def test_the_local_executor_registered_with_the_driver_half(spark):
    from blaze.plugin import registered_executors

    conf = spark.sparkContext.getConf()
    assert PLUGIN_CLASS in conf.get("spark.plugins").split(",")
    assert any(j.endswith("blaze-spark-jvm.jar") for j in conf.get("spark.jars").split(","))
    assert registered_executors(spark) == ["driver"]


def test_the_plugins_lineage_walk_equals_the_python_walk(sc, bridge):
    """Before every job the manager reads the job's lineage in one call to the plugin's
    ``Lineage.walk``; a session without the plugin walks from Python. Both must give the
    same graph, and both must stop at a fully cached RDD (the job reads its cache, not its
    ancestors) but not at a partly cached one."""
    import copy

    left = sc.parallelize(range(100), 4).map(lambda x: (x % 7, x))
    right = sc.parallelize(range(50), 2).map(lambda x: (x % 5, x))
    cached = left.union(right).reduceByKey(lambda a, b: a + b).cache()
    cached.count()
    job = cached.mapValues(lambda v: v + 1).union(left)
    cached_id = cached._jrdd.rdd().id()
    python_walk = copy.copy(bridge)
    python_walk._lineage_walk = None
    assert bridge._lineage_walk is not None  # the shared session has the plugin's jar

    try:
        for counts in ({}, {cached_id: 2}, {cached_id: cached.getNumPartitions()}):
            by_plugin = bridge.lineage(job, counts)
            assert by_plugin == python_walk.lineage(job, counts)
            fully = counts.get(cached_id, 0) >= cached.getNumPartitions()
            assert (by_plugin[cached_id] == ()) == fully
            # 12 RDDs: both sources and maps, the inner union, the shuffle's 4, the cached
            # one, mapValues, the outer union; a fully cached one hides its 7 ancestors but
            # the left source and map are still read through the outer union
            assert len(by_plugin) == (5 if fully else 12), by_plugin
        assert len(bridge.lineage(job, {}, limit=3)) == 3
    finally:
        cached.unpersist()
