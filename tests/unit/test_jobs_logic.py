"""Pure-Python parts of jobs/: plan validation, scheduling, summaries, comparison, replay."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blaze_errors import InputError
from jobs.datagen import ensure_dataset, spec_for
from jobs.eventlog import replay_block_updates
from jobs.plan import make_plan, parse_fraction, parse_names
from jobs.result import JobResult
from jobs.run_one import HEAP_BYTES, RESERVED_BYTES, run_conf
from jobs.runner import _schedule, storage_for
from jobs.summary import geomean, median_table, suite_targets
from jobs.verify import compare


def _plan(tmp_path, **kw):
    args = dict(
        jobs="kmeans,lr",
        policies="mem_only,blaze,unlimited",
        scale=0.01,
        memory="30%",
        repeats=3,
        data_dir=tmp_path / "d",
        out_dir=tmp_path / "o",
    )
    args.update(kw)
    return make_plan(**args)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("jobs", "kmeans,nope", "unknown job 'nope'"),
        ("policies", "mem_only,lru", "unknown policy 'lru'"),
        ("memory", "0", "must be a fraction in (0, 1]"),
        ("memory", "101%", "must be a fraction in (0, 1]"),
        ("memory", "half", "is not a fraction"),
        ("scale", -1.0, "must be a positive number"),
        ("scale", 1e9, "GiB is free"),
        ("repeats", 0, "at least 1"),
        ("params", ["iterations"], "must look like name=number"),
        ("params", ["iterations=many"], "is not a number"),
        ("params", ["damping=0.9"], "is no parameter of kmeans, lr"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, field, value, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _plan(tmp_path, **{field: value})


def test_quick_and_full_defaults(tmp_path):
    defaults = dict(jobs=None, policies=None, scale=None, repeats=None)
    quick = _plan(tmp_path, **defaults, quick=True)
    full = _plan(tmp_path, **defaults)
    assert quick.repeats == 1 and quick.runs < full.runs
    assert set(full.policies) == {
        "none",
        "mem_only",
        "mem_disk",
        "lrc",
        "mrd",
        "blaze",
        "blaze_auto",
        "unlimited",
    }
    assert full.repeats == 3 and len(full.jobs) == 6


@given(st.floats(min_value=1e-6, max_value=1.0))
def test_parse_fraction_roundtrip(value):
    assert math.isclose(parse_fraction(str(value)), value)
    assert math.isclose(parse_fraction(f"{value * 100!r}%"), value)


def test_parse_names_dedupes_and_all():
    assert parse_names("b,a,b", ("a", "b"), "x") == ("b", "a")
    assert parse_names("all", ("a", "b"), "x") == ("a", "b")


def test_schedule_rotates_policies_and_counts_runs(tmp_path):
    plan = _plan(tmp_path)
    order = _schedule(plan)
    # every (job, policy) appears once per repeat; unlimited's first repeat is the footprint run
    assert len(order) + len(plan.jobs) == plan.runs
    firsts = [next(p for r, j, p in order if r == rep and j == "kmeans") for rep in range(3)]
    assert len(set(firsts)) > 1, "policy order must rotate across repeats"


@given(st.integers(min_value=0, max_value=10**10), st.floats(min_value=0.01, max_value=1.0))
def test_storage_for_stays_in_sparks_range(footprint, fraction):
    storage = storage_for(footprint, fraction)
    assert 256 << 10 <= storage <= HEAP_BYTES - RESERVED_BYTES
    conf = run_conf(storage, "/tmp/x", "app")
    pool = (HEAP_BYTES - RESERVED_BYTES) * float(conf["spark.memory.fraction"])
    assert abs(pool - storage) < 1024


def test_run_conf_rejects_impossible_storage():
    with pytest.raises(ValueError, match="storage_bytes"):
        run_conf(HEAP_BYTES, "/tmp/x", "app")


def test_datasets_are_deterministic_and_reused(tmp_path):
    import pyarrow.parquet as pq

    spec = spec_for("points", 0.005, seed=3)
    first = ensure_dataset(tmp_path / "a", spec)
    second = ensure_dataset(tmp_path / "b", spec)

    def read(d):
        return [pq.read_table(f).column("line").to_pylist() for f in sorted(d.glob("*.parquet"))]

    assert read(first) == read(second)
    stamp = (first / "part-00000.parquet").stat().st_mtime_ns
    assert ensure_dataset(tmp_path / "a", spec) == first
    assert (first / "part-00000.parquet").stat().st_mtime_ns == stamp
    other = ensure_dataset(tmp_path / "a", spec_for("points", 0.005, seed=4))
    assert read(other) != read(first)


@pytest.mark.parametrize("kind", ["graph", "points", "labeled", "ratings"])
def test_generators_produce_parseable_records(tmp_path, kind):
    import pyarrow.parquet as pq

    spec = spec_for(kind, 0.002)
    path = ensure_dataset(tmp_path, spec)
    lines = [
        line
        for f in sorted(path.glob("*.parquet"))
        for line in pq.read_table(f).column("line").to_pylist()
    ]
    assert len(lines) > 100 and len(list(path.glob("*.parquet"))) == spec.parts
    sep = {"graph": " ", "points": ",", "labeled": ",", "ratings": "::"}[kind]
    widths = {len(line.split(sep)) for line in lines}
    assert len(widths) == 1


def test_compare_flags_any_difference():
    base = JobResult("kmeans", 3, {"centres": np.ones((2, 2))}, {"cost": 10.0})
    same = JobResult("kmeans", 3, {"centres": np.ones((2, 2)) + 1e-12}, {"cost": 10.0 + 1e-9})
    assert compare(same, base) == []
    moved = JobResult("kmeans", 3, {"centres": np.ones((2, 2)) * 1.001}, {"cost": 10.0})
    assert "centres differs" in compare(moved, base)[0]
    labels = JobResult("cc", 1, {"label": np.array([1, 2, 3])}, {})
    assert "1 of 3" in compare(JobResult("cc", 1, {"label": np.array([1, 2, 4])}, {}), labels)[0]


def test_result_roundtrip(tmp_path):
    res = JobResult("lr", 4, {"weights": np.arange(3.0)}, {"loss": 0.5})
    res.save(tmp_path / "r.npz")
    back = JobResult.load(tmp_path / "r.npz")
    assert back.job == "lr" and back.iterations == 4 and compare(back, res) == []


def _block(block, mem, disk, executor="driver"):
    return json.dumps(
        {
            "Event": "SparkListenerBlockUpdated",
            "Block Updated Info": {
                "Block Manager ID": {"Executor ID": executor, "Host": "h", "Port": 1},
                "Block ID": block,
                "Storage Level": {},
                "Memory Size": mem,
                "Disk Size": disk,
            },
        }
    )


def test_replay_block_updates(tmp_path):
    log = tmp_path / "log"
    lines = [
        _block("rdd_1_0", 100, 0),
        _block("rdd_1_1", 50, 0),
        _block("broadcast_0", 999, 0),
        _block("rdd_1_0", 0, 120),  # spilled
        _block("rdd_1_0", 0, 0),  # removed
        _block("rdd_1_0", 0, 120),  # written again
        '{"Event":"SparkListenerJobStart"}',
    ]
    log.write_text("\n".join(lines) + "\n")
    trace = replay_block_updates(log)
    assert trace.peak_memory_bytes == 150
    assert trace.disk_bytes_written == 240
    assert trace.memory_exits == 1
    assert trace.block_updates == 5


def _runs(times):
    return [
        {"job": job, "policy": pol, "status": "ok", "seconds": t, "disk_bytes_written": d}
        for (job, pol), ts in times.items()
        for t, d in ts
    ]


def test_median_table_and_targets():
    runs = _runs(
        {
            ("a", "mem_only"): [(30, 0), (10, 0), (20, 0)],
            ("a", "mem_disk"): [(15, 1000)],
            ("a", "blaze"): [(10, 10)],
            ("a", "lrc"): [(12, 0)],
            ("a", "unlimited"): [(9, 0)],
        }
    )
    runs.append({"job": "a", "policy": "mrd", "status": "failed", "error": "x"})
    table = median_table(runs)
    assert table["a"]["mem_only"]["seconds"] == 20
    assert table["a"]["mrd"]["status"] == "failed"
    assert math.isclose(table["a"]["blaze"]["x_mem_only"], 0.5)
    targets = suite_targets(table)
    assert math.isclose(targets["speedup_vs_mem_only"]["value"], 2.0)
    assert targets["speedup_vs_mem_only"]["met"] is False
    assert math.isclose(targets["speedup_vs_best_lrc_mrd"]["value"], 1.2)
    assert targets["speedup_vs_best_lrc_mrd"]["met"] is True
    assert math.isclose(targets["disk_reduction_vs_mem_disk"]["value"], 0.99)
    assert math.isclose(targets["ratio_to_unlimited"]["value"], 10 / 9)


@settings(max_examples=50)
@given(st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=8))
def test_geomean_between_min_and_max(values):
    g = geomean(values)
    assert min(values) * (1 - 1e-9) <= g <= max(values) * (1 + 1e-9)


def test_param_overrides_reach_the_jobs(tmp_path):
    from jobs import job_params

    plan = _plan(tmp_path, params=["iterations=4", "k=3"])
    assert plan.params == (("iterations", 4), ("k", 3))
    assert job_params("kmeans", 1.0, dict(plan.params))["k"] == 3
    assert job_params("lr", 1.0, dict(plan.params))["iterations"] == 4
    assert "k" not in job_params("lr", 1.0, dict(plan.params))


def test_report_outputs_from_synthetic_runs(tmp_path):
    from rich.console import Console

    from jobs.report import build_results, markdown_results, plot_results, print_results
    from jobs.runner import BenchOutcome

    plan = _plan(tmp_path, policies="mem_only,mem_disk,blaze,unlimited", repeats=1)
    outcome = BenchOutcome(plan)
    outcome.footprints = {"kmeans": 10 << 20, "lr": 5 << 20}
    outcome.runs = _runs(
        {
            ("kmeans", "mem_only"): [(20, 0)],
            ("kmeans", "mem_disk"): [(15, 4 << 20)],
            ("kmeans", "unlimited"): [(10, 0)],
            ("lr", "mem_only"): [(8, 0)],
            ("lr", "unlimited"): [(8, 0)],
        }
    )
    outcome.runs.append(
        {"job": "kmeans", "policy": "blaze", "status": "mismatch", "error": "centres differ"}
    )
    results = build_results(outcome)
    console = Console(record=True, width=200)
    print_results(results, console)
    text = console.export_text()
    assert "mismatch: centres differ" in text and "2.00×" in text and "4.0 MiB" in text
    md = markdown_results(results)
    assert "| kmeans (10.0 MiB) | mem_disk | 15.0 | 0.75× | 1.50× |" in md
    assert "not measured" in md  # no blaze time: the targets say so instead of inventing one
    paths = plot_results(results, tmp_path)
    assert all(p.stat().st_size > 1000 for p in paths)


def test_checker_flags_duckdb_disagreement(tmp_path):
    """No JVM: the DuckDB reference is itself a valid kmeans answer to check against."""
    from jobs.duckref import reference
    from jobs.runner import _Checker

    plan = _plan(tmp_path, jobs="kmeans", policies="none,mem_only", scale=0.003)
    spec = spec_for("points", plan.scale, plan.seed)
    path = ensure_dataset(plan.data_dir, spec)
    from jobs import job_params

    good = reference("kmeans", path, job_params("kmeans", plan.scale), None)
    checker = _Checker(plan)
    assert checker.against_duckdb("kmeans", good) == []
    bad = JobResult("kmeans", good.iterations, {"centres": good.arrays["centres"] + 0.01}, {})
    problems = checker.against_duckdb("kmeans", bad)
    assert problems and "centres differs from DuckDB" in problems[0]
