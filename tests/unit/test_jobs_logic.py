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
from jobs.runner import _schedule, footprint_jobs, storage_for
from jobs.summary import geomean, median_table, spreads, suite_targets
from jobs.verify import compare


def _plan(tmp_path, **kw):
    args = dict(
        jobs="kmeans.common,lr",
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
        ("jobs", "kmeans.fast", "unknown job 'kmeans.fast'"),
        ("jobs", "", "--jobs '' names no job"),
        ("jobs", " , ", "--jobs ' , ' names no job"),
        ("policies", "mem_only,lru", "unknown policy 'lru'"),
        ("policies", "", "no policy given"),
        ("memory", "0", "must be a fraction in (0, 1]"),
        ("memory", "101%", "must be a fraction in (0, 1]"),
        ("memory", "half", "is not a fraction"),
        ("scale", -1.0, "must be a positive number"),
        ("scale", 1e9, "GiB is free"),
        ("repeats", 0, "at least 1"),
        ("params", ["iterations"], "must look like name=number"),
        ("params", ["iterations=many"], "is not a number"),
        ("params", ["damping=0.9"], "is no parameter of kmeans, lr"),
        ("memory", "-0.3", "must be a fraction in (0, 1]"),
        ("memory", "nan", "must be a fraction in (0, 1]"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, field, value, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _plan(tmp_path, **{field: value})


def test_quick_and_full_defaults(tmp_path):
    defaults = dict(jobs=None, policies=None, scale=None, repeats=None)
    quick = _plan(tmp_path, **defaults, quick=True)
    full = _plan(tmp_path, **defaults)
    assert quick.runs < full.runs
    assert set(full.policies) == {
        "none",
        "spark",
        "mem_only",
        "mem_disk",
        "mem_disk_au",
        "lrc",
        "mrd",
        "blaze",
        "blaze_auto",
        "unlimited",
    }
    assert len(full.jobs) == 12 and {j.split(".")[1] for j in full.jobs} == {"common", "expert"}
    # one footprint run per program, then every job x policy once: ~2 h at a minute a run
    assert full.repeats == 1 and full.runs == 6 + 12 * 10


def test_quick_plan_is_the_one_the_readme_names(tmp_path):
    """``blaze bench --quick``: one costly program as commonly written, three policies."""
    import re
    from pathlib import Path

    quick = _plan(tmp_path, jobs=None, policies=None, scale=None, repeats=None, quick=True)
    assert quick.jobs == ("lr.common",)
    assert quick.policies == ("spark", "blaze", "unlimited")
    assert quick.repeats == 1 and quick.runs == 4  # + the untimed lr.expert footprint run
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    named = re.search(
        r"`blaze bench --quick` runs `([a-z.]+)` under ([a-z_`, ]+?) at scale "
        r"([0-9.]+)",
        readme,
    )
    assert named, "the README's Benchmark section names the --quick plan"
    job, policies, scale = named.groups()
    assert (job,) == quick.jobs and float(scale) == quick.scale
    assert tuple(re.findall(r"`([a-z_]+)`", policies)) == quick.policies


def test_a_bare_program_means_both_variants(tmp_path):
    plan = _plan(tmp_path, jobs="lr,kmeans.expert,lr.common")
    assert plan.jobs == ("lr.common", "lr.expert", "kmeans.expert")
    assert plan.programs == ("lr", "kmeans")


def test_too_little_memory_is_refused_before_spark(tmp_path, monkeypatch):
    import jobs.plan

    monkeypatch.setattr(jobs.plan, "total_memory_bytes", lambda: 1 << 30)
    with pytest.raises(InputError, match=r"1.0 GiB of memory; each benchmark run needs"):
        _plan(tmp_path, jobs=None, policies=None, repeats=None)


def test_a_scale_the_disk_cannot_hold_is_refused(tmp_path, monkeypatch):
    import jobs.plan

    plan = _plan(tmp_path)
    need = jobs.plan.required_disk_bytes(plan)
    monkeypatch.setattr(jobs.plan, "_free_bytes", lambda path: need - 1)
    with pytest.raises(InputError, match=r"--scale 0.01 needs about .* GiB under"):
        _plan(tmp_path)


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
    # every (job, policy) appears once per repeat; plus one footprint run per program
    assert len(order) + len(plan.programs) == plan.runs
    assert footprint_jobs(plan) == {"kmeans": "kmeans.expert", "lr": "lr.expert"}
    firsts = [next(p for r, j, p in order if r == rep and j == "kmeans.common") for rep in range(3)]
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


def _block(block, mem, disk, executor="driver", level=None):
    level = level or {"Use Disk": disk > 0, "Use Memory": mem > 0, "Replication": 1}
    return json.dumps(
        {
            "Event": "SparkListenerBlockUpdated",
            "Block Updated Info": {
                "Block Manager ID": {"Executor ID": executor, "Host": "h", "Port": 1},
                "Block ID": block,
                "Storage Level": level,
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
        # dropped from memory: Spark reports the old size with an invalid (NONE) level
        _block("rdd_1_1", 50, 0, level={"Use Disk": False, "Use Memory": False}),
        '{"Event":"SparkListenerJobStart"}',
    ]
    log.write_text("\n".join(lines) + "\n")
    trace = replay_block_updates(log)
    assert trace.peak_memory_bytes == 150
    assert trace.disk_bytes_written == 240
    assert trace.memory_exits == 2
    assert trace.block_updates == 6


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
            ("a", "spark"): [(24, 0)],
            ("a", "mem_disk"): [(15, 1000)],
            ("a", "blaze"): [(10, 10)],
            ("a", "blaze_auto"): [(10.5, 0)],
            ("a", "lrc"): [(12, 0)],
            ("a", "unlimited"): [(9, 0)],
            # a job where nothing matters: excluded from the targets but for the last one
            ("b", "spark"): [(10, 0)],
            ("b", "mem_disk"): [(10, 5)],
            ("b", "blaze"): [(10.5, 0)],
            ("b", "unlimited"): [(10, 0)],
        }
    )
    runs.append({"job": "a", "policy": "mrd", "status": "failed", "error": "x"})
    table = median_table(runs)
    assert table["a"]["mem_only"]["seconds"] == 20
    assert table["a"]["mrd"]["status"] == "failed"
    assert math.isclose(table["a"]["blaze"]["x_mem_only"], 0.5)
    assert math.isclose(table["a"]["blaze"]["x_spark"], 10 / 24)
    spread = spreads(table)
    assert spread["a"]["slowest"] == "spark" and math.isclose(spread["a"]["spread"], 24 / 9)
    assert spread["a"]["label"] == "deciding" and spread["b"]["label"] == "nothing matters"
    targets = suite_targets(table)
    assert targets["speedup_vs_mem_only"]["jobs"] == ["a"]
    assert math.isclose(targets["speedup_vs_mem_only"]["value"], 2.0)
    assert targets["speedup_vs_mem_only"]["met"] is True
    assert math.isclose(targets["speedup_vs_spark"]["value"], 2.4)
    assert math.isclose(targets["speedup_vs_mem_disk"]["value"], 1.5)
    assert math.isclose(targets["speedup_vs_best_lrc_mrd"]["value"], 1.2)
    assert math.isclose(targets["disk_reduction_vs_mem_disk"]["value"], 0.99)
    assert math.isclose(targets["worst_ratio_to_unlimited"]["value"], 10 / 9)
    assert targets["worst_ratio_to_unlimited"]["met"] is False
    assert math.isclose(targets["auto_vs_blaze"]["value"], 1.05)
    # over ALL jobs: b's 10.5 s vs mem_disk's 10 s is 5 % slower -> missed
    assert math.isclose(targets["worst_vs_mem_disk_all_jobs"]["value"], 1.05)
    assert targets["worst_vs_mem_disk_all_jobs"]["met"] is False
    assert targets["worst_vs_mem_disk_all_jobs"]["jobs"] == ["a", "b"]


def test_no_deciding_job_leaves_the_targets_unmeasured():
    table = median_table(_runs({("b", "spark"): [(10, 0)], ("b", "blaze"): [(9, 0)]}))
    targets = suite_targets(table)
    assert spreads(table)["b"]["label"] == "not measured"
    assert targets["speedup_vs_spark"]["value"] is None
    assert targets["speedup_vs_spark"]["met"] is None


@settings(max_examples=50)
@given(st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=8))
def test_geomean_between_min_and_max(values):
    g = geomean(values)
    assert min(values) * (1 - 1e-9) <= g <= max(values) * (1 + 1e-9)


def test_param_overrides_reach_the_jobs(tmp_path):
    from jobs import job_params

    plan = _plan(tmp_path, params=["iterations=4", "k=3"])
    assert plan.params == (("iterations", 4), ("k", 3))
    assert job_params("kmeans.common", 1.0, dict(plan.params))["k"] == 3
    assert job_params("lr", 1.0, dict(plan.params))["iterations"] == 4
    assert "k" not in job_params("lr", 1.0, dict(plan.params))


def test_report_outputs_from_synthetic_runs(tmp_path):
    from rich.console import Console

    from jobs.report import build_results, markdown_results, plot_results, print_results
    from jobs.runner import BenchOutcome

    plan = _plan(tmp_path, policies="spark,mem_disk,blaze,unlimited", repeats=1)
    outcome = BenchOutcome(plan)
    outcome.footprints = {"kmeans": 10 << 20, "lr": 5 << 20}
    outcome.runs = _runs(
        {
            ("kmeans.common", "spark"): [(20, 0)],
            ("kmeans.common", "mem_disk"): [(15, 4 << 20)],
            ("kmeans.common", "unlimited"): [(10, 0)],
            ("lr.common", "spark"): [(8, 0)],
            ("lr.common", "unlimited"): [(8, 0)],
        }
    )
    outcome.runs.append(
        {"job": "kmeans.common", "policy": "blaze", "status": "mismatch", "error": "centres"}
    )
    results = build_results(outcome)
    console = Console(record=True, width=200)
    print_results(results, console)
    text = console.export_text()
    assert "mismatch: centres" in text and "2.00×" in text and "4.0 MiB" in text
    assert "spread 2.00× (deciding)" in text and "spread 1.00× (nothing matters)" in text
    assert "targets (Blaze), over jobs with spread >= 1.2: kmeans.common" in text
    md = markdown_results(results)
    assert "| kmeans.common (10.0 MiB) | 2.00× (deciding) | mem_disk | 15.0 | 0.75× | 1.50× |" in md
    assert "| lr.common (5.0 MiB) | 1.00× (nothing matters) | spark |" in md
    assert "not measured" in md  # no blaze time: the targets say so instead of inventing one
    paths = plot_results(results, tmp_path)
    assert all(p.stat().st_size > 1000 for p in paths)


def test_checker_flags_duckdb_disagreement(tmp_path):
    """No JVM: the DuckDB reference is itself a valid kmeans answer to check against."""
    from jobs.duckref import reference
    from jobs.runner import _Checker

    plan = _plan(tmp_path, jobs="kmeans.expert", policies="none,mem_only", scale=0.001)
    spec = spec_for("points", plan.scale, plan.seed)
    path = ensure_dataset(plan.data_dir, spec)
    from jobs import job_params

    good = reference("kmeans", path, job_params("kmeans", plan.scale), None)
    checker = _Checker(plan)
    assert checker.against_duckdb("kmeans.expert", good) == []
    bad = JobResult("kmeans", good.iterations, {"centres": good.arrays["centres"] + 0.01}, {})
    problems = checker.against_duckdb("kmeans.expert", bad)
    assert problems and "centres differs from DuckDB" in problems[0]
