"""Every job (each program in both variants) at tiny scale on the shared local Spark,
checked against its DuckDB reference, plus what each policy makes of the cache calls."""

from __future__ import annotations

import pytest

from jobs import JOB_NAMES, dataset_spec, load_job, split_job
from jobs.caching import Cacher
from jobs.datagen import ensure_dataset
from jobs.duckref import reference
from jobs.verify import compare

pytestmark = pytest.mark.spark

SCALE = 0.0015
# fewer iterations than the benchmark: each iteration is several Spark jobs, and the suite
# shares 2 cores; the DuckDB reference runs the same (overridden) parameters
FEWER = {"iterations": 3, "max_iterations": 4}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("jobs-data")


def _run(spark, data_dir, name, policy, generator=1):
    job = load_job(name)
    path = ensure_dataset(data_dir, dataset_spec(name, SCALE, generator=generator))
    params = {k: FEWER.get(k, v) for k, v in job.params(SCALE).items()}
    cacher = Cacher(spark, policy)
    try:
        result = job.run(spark, path, cacher, params, split_job(name)[1])
    finally:
        spark.catalog.clearCache()
        for rdd in spark.sparkContext._jsc.getPersistentRDDs().values():
            rdd.unpersist()
    return job, path, params, cacher, result


@pytest.mark.parametrize("name", JOB_NAMES)
def test_job_matches_duckdb(spark, data_dir, name):
    _, path, params, cacher, result = _run(spark, data_dir, name, "spark")
    assert result.iterations >= 1
    want = reference(name, path, params, result)
    assert compare(result, want, what="DuckDB") == []
    if not name.startswith("mlpipeline"):  # DataFrame caches have no partition counters
        stats = cacher.stats()
        assert stats.reads > stats.computes > 0, "the cached data must be reused"
        assert stats.recomputed_partitions == 0, "ample memory: nothing is recomputed"
        if name.endswith(".common"):  # the data used once is cached, and read once
            once = stats.per_dataset.get("records") or stats.per_dataset.get("edges")
            once = once or stats.per_dataset["ratings"]
            assert once["computes"] == once["partitions"]


@pytest.mark.parametrize("name", ["kmeans.expert"])
def test_no_caching_gives_the_same_answer_with_recomputation(spark, data_dir, name):
    *_, cached = _run(spark, data_dir, name, "mem_disk")
    *_, cacher, uncached = _run(spark, data_dir, name, "none")
    assert compare(uncached, cached, what="mem_disk") == []
    stats = cacher.stats()
    assert stats.hit_rate == 0.0 and stats.recomputed_partitions > 0


def test_common_variant_leaves_its_iteration_caches_and_expert_does_not(spark, data_dir):
    """The two ways of writing a program differ exactly in what stays cached."""
    sc = spark.sparkContext
    left = {}
    for name in ("pagerank.common", "pagerank.expert"):
        job = load_job(name)
        path = ensure_dataset(data_dir, dataset_spec(name, SCALE))
        params = {k: FEWER.get(k, v) for k, v in job.params(SCALE).items()}
        job.run(spark, path, Cacher(spark, "spark"), params, split_job(name)[1])
        left[name] = len(sc._jsc.getPersistentRDDs())
        for rdd in sc._jsc.getPersistentRDDs().values():
            rdd.unpersist()
    # expert: links + the last ranks; common: also edges and every iteration's ranks
    assert left["pagerank.expert"] == 2
    assert left["pagerank.common"] == 2 + 1 + FEWER["iterations"]


def test_none_and_blaze_auto_make_the_programs_cache_calls_no_ops(spark, data_dir):
    """Under both, the program persists nothing itself; ``none`` still counts recomputation."""
    sc = spark.sparkContext
    job = load_job("lr.common")
    path = ensure_dataset(data_dir, dataset_spec("lr.common", SCALE))
    params = {k: FEWER.get(k, v) for k, v in job.params(SCALE).items()}
    answers = {}
    for policy in ("none", "blaze_auto"):
        cacher = Cacher(spark, policy)
        answers[policy] = job.run(spark, path, cacher, params, "common")
        assert len(sc._jsc.getPersistentRDDs()) == 0, policy
        stats = cacher.stats()
        if policy == "none":
            assert stats.datasets > 0 and stats.hit_rate == 0.0
        else:
            assert stats.datasets == 0  # nothing of the program's is cached, nothing counted
    assert compare(answers["blaze_auto"], answers["none"], what="none") == []


def test_duckdb_catches_a_wrong_answer(spark, data_dir):
    _, path, params, _, result = _run(spark, data_dir, "pagerank.expert", "mem_only")
    result.arrays["rank"] = result.arrays["rank"].copy()
    result.arrays["rank"][0] *= 1.01
    problems = compare(result, reference("pagerank", path, params, result), what="DuckDB")
    assert problems and "rank differs from DuckDB" in problems[0]


# every program on the second generator's shapes (jobs/datagen_second.py), checked against
# DuckDB like the first: the graph jobs on the Chung-Lu graph, svdpp on the skewed ratings,
# the ML jobs on the skewed clusters and the quadratic labels (the three whose runs take
# longest are marked slow)
@pytest.mark.parametrize(
    "name",
    [
        "pagerank.expert",
        "kmeans.expert",
        "lr.expert",
        pytest.param("cc.expert", marks=pytest.mark.slow),
        pytest.param("svdpp.expert", marks=pytest.mark.slow),
        pytest.param("mlpipeline.expert", marks=pytest.mark.slow),
    ],
)
def test_second_generator_matches_duckdb(spark, data_dir, name):
    _, path, params, cacher, result = _run(spark, data_dir, name, "spark", generator=2)
    assert "-g2-" in path.name
    assert result.iterations >= 1
    assert compare(result, reference(name, path, params, result), what="DuckDB") == []
    if not name.startswith("mlpipeline"):
        assert cacher.stats().reads > cacher.stats().computes > 0
