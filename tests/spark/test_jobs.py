"""Every job at tiny scale on the shared local Spark, checked against its DuckDB reference."""

from __future__ import annotations

import pytest

from jobs import JOB_NAMES, dataset_spec, load_job
from jobs.caching import Cacher
from jobs.datagen import ensure_dataset
from jobs.duckref import reference
from jobs.verify import compare

pytestmark = pytest.mark.spark

SCALE = 0.004
# fewer iterations than the benchmark: each iteration is several Spark jobs, and the suite
# shares 2 cores; the DuckDB reference runs the same (overridden) parameters
FEWER = {"iterations": 3, "max_iterations": 4}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("jobs-data")


def _run(spark, data_dir, name, policy):
    job = load_job(name)
    path = ensure_dataset(data_dir, dataset_spec(name, SCALE))
    params = {k: FEWER.get(k, v) for k, v in job.params(SCALE).items()}
    cacher = Cacher(spark, policy)
    result = job.run(spark, path, cacher, params)
    return job, path, params, cacher, result


@pytest.mark.parametrize("name", JOB_NAMES)
def test_job_matches_duckdb(spark, data_dir, name):
    _, path, params, cacher, result = _run(spark, data_dir, name, "mem_only")
    assert result.iterations >= 1
    want = reference(name, path, params, result)
    assert compare(result, want, what="DuckDB") == []
    if name != "mlkmeans":  # DataFrame caches have no partition counters
        stats = cacher.stats()
        assert stats.reads > stats.computes > 0, "the cached data must be reused"
        assert stats.recomputed_partitions == 0, "ample memory: nothing is recomputed"


@pytest.mark.parametrize("name", ["kmeans"])
def test_no_caching_gives_the_same_answer_with_recomputation(spark, data_dir, name):
    *_, cached = _run(spark, data_dir, name, "mem_disk")
    *_, cacher, uncached = _run(spark, data_dir, name, "none")
    assert compare(uncached, cached, what="mem_disk") == []
    stats = cacher.stats()
    assert stats.hit_rate == 0.0 and stats.recomputed_partitions > 0


def test_duckdb_catches_a_wrong_answer(spark, data_dir):
    _, path, params, _, result = _run(spark, data_dir, "pagerank", "mem_only")
    result.arrays["rank"] = result.arrays["rank"].copy()
    result.arrays["rank"][0] *= 1.01
    problems = compare(result, reference("pagerank", path, params, result), what="DuckDB")
    assert problems and "rank differs from DuckDB" in problems[0]
