"""Pure-Python parts of jobs/: plan validation, scheduling, summaries, comparison, replay."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blaze_errors import InputError
from jobs import runner
from jobs.datagen import ensure_dataset, spec_for
from jobs.plan import make_plan, parse_fraction, parse_names
from jobs.report import without_machine_paths
from jobs.result import JobResult
from jobs.run_one import HEAP_BYTES, RESERVED_BYTES, run_conf
from jobs.runner import BenchOutcome, _schedule, footprint_jobs, storage_for
from jobs.summary import geomean, median_table, spreads, suite_targets


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
        ("profile_sample", 0.0, "--profile-sample 0.0 must be a fraction in (0, 1)"),
        ("profile_sample", 1.0, "--profile-sample 1.0 must be a fraction in (0, 1)"),
        ("profile_sample", float("nan"), "--profile-sample nan must be a fraction"),
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
    """``blaze bench --quick``: one costly program as commonly written; the program as written
    (``spark``), MEMORY_AND_DISK and the manager deciding alone — and the README says so."""
    import re
    from pathlib import Path

    quick = _plan(tmp_path, jobs=None, policies=None, scale=None, repeats=None, quick=True)
    assert quick.jobs == ("lr.common",)
    assert quick.policies == ("spark", "mem_disk", "blaze_auto")
    assert quick.repeats == 1 and quick.runs == 4  # + the untimed lr.expert footprint run
    assert quick.generator == 1 and quick.node is None
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
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quick_start, re.S)
    assert [c.strip().endswith("blaze bench --quick") for c in commands] == [True, False]


def test_size_factors_follow_from_the_committed_sizing_run():
    """SIZE_FACTORS = 45 s x 1.1 / each program's shortest scale-1.0 `unlimited` time in the
    committed sizing run, rounded up to 0.05, never below 1 (jobs/__init__.py)."""
    from pathlib import Path

    from jobs import PROGRAMS, SIZE_FACTORS

    sizing = Path(__file__).resolve().parents[2] / "benchmarks/results"
    data = json.loads((sizing / "bench_sizing_scale1_unlimited.json").read_text())
    assert data["plan"]["scale"] == 1.0 and data["plan"]["policies"] == ["unlimited"]
    shortest: dict[str, float] = {}
    for run in data["runs"] + data["footprint_runs"]:
        program = run["job"].split(".")[0]
        shortest[program] = min(shortest.get(program, math.inf), run["seconds"])
    for program in PROGRAMS:
        wanted = max(1.0, math.ceil(45 * 1.1 / shortest[program] / 0.05 - 1e-9) * 0.05)
        assert math.isclose(SIZE_FACTORS[program], wanted), program
        # the measured time, scaled by the factor, reaches the 45 s with the noise margin
        assert shortest[program] * SIZE_FACTORS[program] >= 45 * 1.1 - 1e-9


def test_dataset_sizes_include_the_size_factors():
    from jobs import dataset_spec

    assert dataset_spec("lr.common", 1.0).records == int(450_000 * 1.9)
    assert dataset_spec("kmeans.expert", 1.0).key() == "points-s1.55-seed42"
    assert dataset_spec("mlpipeline.common", 1.0).key() == "points-s4.2-seed42"  # 4 x 1.05
    assert dataset_spec("svdpp", 0.5, generator=2).key() == "ratings-g2-s0.775-seed42"


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


def test_a_profiled_plan_records_each_manager_policys_profile_on_a_sample(tmp_path):
    """With --profile-sample each manager policy's timed runs read the profile its own run on
    the sample recorded (a profile belongs to one application); stock Spark's runs read none."""
    plan = _plan(tmp_path, policies="mem_disk,lrc,blaze,unlimited", profile_sample=0.25)
    assert plan.profiled_policies == ("lrc", "blaze")
    # per job: 2 profile runs; per program: 1 footprint run; 3 repeats of 4 policies
    assert plan.runs == 3 * 2 + 2 + 3 * 3 * 4
    online = _plan(tmp_path, policies="mem_disk,lrc,blaze,unlimited")
    timed_data = set(online.datasets())
    assert timed_data < set(plan.datasets()) and len(plan.datasets()) == 2 * len(timed_data)
    out = tmp_path / "cell"

    def flags(policy: str, **kw) -> tuple[list, str | None, str | None]:
        cmd = runner._command(plan, runner.Cell("lr.common", policy, 1000, out, **kw))
        mode = cmd[cmd.index("--profile-mode") + 1] if "--profile-mode" in cmd else None
        path = cmd[cmd.index("--profile-path") + 1] if "--profile-path" in cmd else None
        return cmd[cmd.index("--scale") + 1], mode, path

    record = flags("blaze", record_profile=True)
    timed = flags("blaze")
    assert record[:2] == ("0.0025", "record") and timed[:2] == ("0.01", "use")
    assert record[2] == timed[2] == str(runner.profile_path(plan, "lr.common", "blaze"))
    assert flags("lrc")[2] != timed[2], "each policy reads its own profile"
    assert flags("mem_disk") == ("0.01", None, None)  # no manager, no profile
    assert online.profiled_policies == () and online.runs == 2 + 3 * 3 * 4
    timed_online = runner.Cell("lr.common", "blaze", 1000, out)
    assert "--profile-mode" not in runner._command(online, timed_online)


def test_node_mode_sizes_a_program_from_every_variant_it_runs(tmp_path):
    """The storage memory follows the expert variant's peak; the node's memory limit follows
    the largest own peak of the variants the plan runs (one sizing run each)."""
    plan = _plan(tmp_path, jobs="kmeans.common,lr.expert", disk="cloud")
    assert plan.sizing_jobs == {
        "kmeans": ("kmeans.expert", "kmeans.common"),
        "lr": ("lr.expert",),
    }
    assert footprint_jobs(plan) == {"kmeans": "kmeans.expert", "lr": "lr.expert"}
    assert plan.runs == 3 + 2 * 3 * 3
    assert _plan(tmp_path, jobs="kmeans.common,lr.expert").sizing_jobs["kmeans"] == (
        "kmeans.expert",
    )
    outcome = BenchOutcome(plan)
    for peak in (2000 << 20, 2300 << 20, 2100 << 20):
        outcome.note_app_memory("kmeans", peak)
    assert outcome.app_memory == {"kmeans": 2300 << 20}


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


@pytest.mark.parametrize("generator", [1, 2])
@pytest.mark.parametrize("kind", ["graph", "points", "labeled", "ratings"])
def test_generators_produce_parseable_records(tmp_path, kind, generator):
    import pyarrow.parquet as pq

    spec = spec_for(kind, 0.002, generator=generator)
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
    if kind in ("points", "labeled"):
        assert widths == {spec.dims + 1}


# sha256 of each first-generator dataset's lines at scale 0.002, seed 42, taken from the code
# before the second generator was added: the first generator must never change
FIRST_GENERATOR_DIGESTS = {
    "graph": "d87fc9f2f587d3c9",
    "points": "7119ad951e658471",
    "labeled": "6a9a8c234f1ab764",
    "ratings": "ef87bb97a53baa07",
}


@pytest.mark.parametrize("kind", sorted(FIRST_GENERATOR_DIGESTS))
def test_the_first_generator_is_unchanged(tmp_path, kind):
    import hashlib

    spec = spec_for(kind, 0.002)
    assert spec.key() == f"{kind}-s0.002-seed42"  # first-generator folders keep their names
    lines = _lines(ensure_dataset(tmp_path, spec))
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    assert digest == FIRST_GENERATOR_DIGESTS[kind]


def _lines(path):
    import pyarrow.parquet as pq

    return [
        line
        for f in sorted(path.glob("*.parquet"))
        for line in pq.read_table(f).column("line").to_pylist()
    ]


def test_the_second_shapes_differ_as_stated(tmp_path):
    """Spot checks of what jobs/datagen_second.py's docstring promises, at a small scale."""
    from collections import Counter

    graph = [
        tuple(map(int, e.split()))
        for e in _lines(ensure_dataset(tmp_path, spec_for("graph", 0.05, generator=2)))
    ]
    out_deg, in_deg = Counter(s for s, _ in graph), Counter(d for _, d in graph)
    vertices = set(out_deg) | set(in_deg)
    assert max(vertices) > 2**32  # ids spread over [0, 2^40)
    assert 8 <= len(graph) / len(vertices) <= 12  # ~10 edges per vertex
    hub_out, hub_in = out_deg.most_common(1)[0][0], in_deg.most_common(1)[0][0]
    assert hub_out != hub_in  # senders and receivers are different vertices
    labeled = _lines(ensure_dataset(tmp_path, spec_for("labeled", 0.05, generator=2)))
    positives = np.mean([line.startswith("1,") for line in labeled])
    assert 0.17 < positives < 0.24
    ratings = [
        r.split("::")
        for r in _lines(ensure_dataset(tmp_path, spec_for("ratings", 0.05, generator=2)))
    ]
    assert {r[2] for r in ratings} <= {"1.0", "2.0", "3.0", "4.0", "5.0"}
    assert len({(r[0], r[1]) for r in ratings}) == len(ratings)  # distinct (user, item)
    first = spec_for("ratings", 0.05)
    assert len(ratings) == int(first.records * 5 / 6)


def test_an_unknown_generator_is_one_line(tmp_path):
    with pytest.raises(InputError, match="--generator 3 must be one of 1, 2"):
        _plan(tmp_path, generator=3)
    with pytest.raises(InputError, match="unknown generator 3"):
        spec_for("graph", 0.1, generator=3)


def _suite_script():
    """``benchmarks/bench_jobs.py`` as a module (a script, not a package module)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_jobs.py"
    spec = importlib.util.spec_from_file_location("bench_jobs", script)
    bench_jobs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_jobs)
    return bench_jobs


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
    table = median_table(
        _runs({("b", "spark"): [(10, 0)], ("b", "blaze"): [(9, 0)], ("b", "unlimited"): [(10, 0)]})
    )
    targets = suite_targets(table)
    assert spreads(table)["b"]["label"] == "nothing matters"
    assert targets["speedup_vs_spark"]["value"] is None
    assert targets["speedup_vs_spark"]["met"] is None


def test_mem_disk_alone_measures_no_spread_and_the_targets_cover_every_job():
    # a node-mode point: mem_disk and the manager policies, no policy that recomputes; a slow
    # disk makes mem_disk 1.3x unlimited on "a" but that says nothing of caching deciding
    table = median_table(
        _runs(
            {
                ("a", "mem_disk"): [(13, 100)],
                ("a", "blaze"): [(10, 10)],
                ("a", "unlimited"): [(10, 0)],
                ("b", "mem_disk"): [(10, 50)],
                ("b", "blaze"): [(11, 50)],
                ("b", "unlimited"): [(10, 0)],
            }
        )
    )
    assert {s["label"] for s in spreads(table).values()} == {"not measured"}
    targets = suite_targets(table)
    assert targets["speedup_vs_mem_disk"]["jobs"] == ["a", "b"]
    assert math.isclose(targets["speedup_vs_mem_disk"]["value"], math.sqrt(1.3 * 10 / 11))
    assert math.isclose(targets["disk_reduction_vs_mem_disk"]["value"], 1 - 60 / 150)
    assert math.isclose(targets["worst_ratio_to_unlimited"]["value"], 1.1)
    # with one recomputing policy on one job the spread is measured, and only it decides
    table["b"]["spark"] = {"seconds": 30.0}
    assert suite_targets(table)["speedup_vs_mem_disk"]["jobs"] == ["b"]


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
    # blaze's only run disagreed: no target has a figure, and one line says so
    assert "targets (Blaze): none measured by this plan" in text
    md = markdown_results(results)
    assert "| kmeans.common (10.0 MiB) | 2.00× (deciding) | mem_disk | 15.0 | 0.75× | 1.50× |" in md
    assert "| lr.common (5.0 MiB) | 1.00× (nothing matters) | spark |" in md
    assert "Targets: none measured by this plan" in md  # no blaze time: said, not invented
    assert "- data: generator 1" in md and "- disk: this machine's local disk" in md
    paths = plot_results(results, tmp_path)
    assert all(p.stat().st_size > 1000 for p in paths)


def test_plot_titles_say_whether_the_policies_started_from_profiles(tmp_path):
    from jobs.report import build_results, plot_setting
    from jobs.runner import BenchOutcome

    def setting(**kw) -> str:
        outcome = BenchOutcome(_plan(tmp_path, policies="spark,blaze", repeats=1, **kw))
        outcome.runs = _runs({("lr.common", "spark"): [(8, 0)], ("lr.common", "blaze"): [(6, 0)]})
        return plot_setting(build_results(outcome))

    assert setting() == "local disk, no profile"
    assert setting(profile_sample=0.25) == "local disk, profiled on 0.25 of the data"


def test_headlines_compare_with_the_program_as_written_and_mem_disk(tmp_path):
    """The quick plan's two effects, and a node-mode run's parameters, in every output."""
    from rich.console import Console

    from jobs.nodedisk import NodeHost
    from jobs.report import build_results, markdown_results, plot_results, print_results
    from jobs.runner import BenchOutcome
    from jobs.summary import headlines

    plan = _plan(
        tmp_path,
        jobs="lr.common",
        policies="spark,mem_disk,blaze_auto",
        repeats=1,
        disk="cloud",
        page_cache_mib=32.0,
    )
    outcome = BenchOutcome(plan)
    outcome.node_host = NodeHost(tmp_path, tmp_path, "254:0", "vda")
    outcome.app_memory = {"lr": 2000 << 20}
    outcome.footprints = {"lr": 5 << 20}
    outcome.runs = _runs(
        {
            ("lr.common", "spark"): [(120, 0)],
            ("lr.common", "mem_disk"): [(40, 400 << 20)],
            ("lr.common", "blaze_auto"): [(30, 20 << 20)],
        }
    )
    results = build_results(outcome)
    (item,) = headlines(results["medians"])
    assert item["policy"] == "blaze_auto"
    assert math.isclose(item["speedup_vs_spark"], 4.0)
    assert math.isclose(item["disk_saved_vs_mem_disk"], 0.95)
    node = results["node"]
    assert node["page_cache_bytes"] == 32 << 20 and node["read_bps"] == 200 * 10**6
    assert node["device"] == "254:0 (vda)"
    assert node["memory_limit_bytes_by_program"] == {"lr": (2000 + 32) << 20}
    assert str(tmp_path) not in json.dumps(results)  # no machine paths
    console = Console(record=True, width=300)
    print_results(results, console)
    text = console.export_text()
    assert "lr.common / blaze_auto: 4.00× the speed of the program as written" in text
    assert "95% fewer disk bytes than mem_disk (20.0 MiB vs 400.0 MiB)" in text
    md = markdown_results(results)
    assert "node mode (cloud): read 200 MB/s, write 200 MB/s on 254:0 (vda)" in md
    assert "page cache 32 MiB" in md and "memory limit per application: lr 2032 MiB" in md
    paths = plot_results(results, tmp_path)  # no unlimited: time relative to spark
    assert all(p.stat().st_size > 1000 for p in paths)
    # the suite script's notes state the node and what each run's groups saw
    bench_jobs = _suite_script()
    results["runs"][0]["node"] = {
        "memory_limit_bytes": 2032 << 20,
        "own_peak_bytes": 2000 << 20,
        "page_cache_peak_bytes": 31 << 20,
        "limit_hits": 7,
        "device_read_bytes": 300 << 20,
        "device_write_bytes": 0,
        "oom_kills": 0,
        "sizing": False,
    }
    facts = bench_jobs.run_facts(["--disk", "cloud"], "now", "0, 0, 0", 60.0, 4)
    text = bench_jobs.notes(results, facts, "cloud")
    assert "Command: `python benchmarks/bench_jobs.py --disk cloud`" in text
    assert "Table: `cloud.md`" in text and "- disk: node mode (cloud): read 200 MB/s" in text
    assert "| lr.common | spark | 2032 | 2000 | 31 | 7 | 300.0 | 0.0 | 0 |" in text


def _part(tmp_path, name, program, times, scale=0.01, footprint=5 << 20, **plan):
    """The results of a run of one program's jobs, as ``bench_jobs.py`` writes them
    (``times`` as :func:`_runs` takes them, or the run records themselves)."""
    from jobs.report import build_results
    from jobs.runner import BenchOutcome

    plan = {"policies": "spark,mem_disk,blaze"} | plan
    outcome = BenchOutcome(_plan(tmp_path / name, jobs=program, scale=scale, **plan))
    outcome.footprints = {program: footprint}
    outcome.runs = _runs(times) if isinstance(times, dict) else times
    return json.loads(json.dumps(build_results(outcome)))


def _repeat_runs(times, resumed=()):
    """Run records of ``{(job, policy): [seconds per repeat]}``; the ``(policy, repeat)``
    cells in ``resumed`` are marked as taken over from an earlier part's ``--out``."""
    return [
        {"job": job, "policy": policy, "status": "ok", "repeat": repeat, "seconds": t}
        | {"disk_bytes_written": 0}
        | ({"resumed": True} if (policy, repeat) in resumed else {})
        for (job, policy), seconds in times.items()
        for repeat, t in enumerate(seconds)
    ]


def test_a_repeat_part_joins_its_new_runs_to_the_cells_it_repeats(tmp_path):
    """Repeats of mem_disk and blaze of a program an earlier part ran, made with --resume into
    its --out (so their first repeat is the earlier part's own run): the medians of those
    cells are over every repeat, the other cells keep theirs, and the title says so. A
    repeat part with another footprint, a new run under a repeat already there, or a part
    mixing repeats and new programs is refused with one line."""
    from jobs.report import combine_parts, markdown_results

    once = {("lr.common", p): [t] for p, t in (("spark", 120), ("mem_disk", 40), ("blaze", 44))}
    first = _part(tmp_path, "a", "lr", _repeat_runs(once), repeats=1)
    again = {("lr.common", "mem_disk"): [40, 41, 39], ("lr.common", "blaze"): [44, 38, 39]}
    resumed = {("mem_disk", 0), ("blaze", 0)}
    repeat = _part(
        tmp_path, "a", "lr", _repeat_runs(again, resumed), policies="mem_disk,blaze", repeats=3
    )
    km = _part(tmp_path, "b", "kmeans", _repeat_runs({("kmeans.common", "spark"): [60]}), repeats=1)
    combined = combine_parts([first, km, repeat])
    rows = combined["medians"]["lr.common"]
    assert (rows["blaze"]["runs"], rows["blaze"]["seconds"]) == (3, 39)
    assert (rows["mem_disk"]["runs"], rows["mem_disk"]["seconds"]) == (3, 40)
    assert (rows["spark"]["runs"], rows["spark"]["seconds"]) == (1, 120)
    assert combined["plan"]["jobs"] == ["lr.common", "lr.expert", "kmeans.common", "kmeans.expert"]
    assert combined["parts"][2]["repeat_of"] == [1] and combined["parts"][2]["repeats"] == 3
    assert "median of 1–3 runs per cell" in markdown_results(combined)

    bigger = _part(tmp_path, "a", "lr", _repeat_runs(again, resumed), footprint=6 << 20, repeats=3)
    with pytest.raises(InputError, match="part 2 repeats lr with another footprint"):
        combine_parts([first, bigger])
    elsewhere = _part(
        tmp_path, "c", "lr", _repeat_runs(again), policies="mem_disk,blaze", repeats=3
    )
    with pytest.raises(InputError, match=r"another run of lr\.common / mem_disk repeat 1"):
        combine_parts([first, elsewhere])
    both = dict(repeat, footprints_bytes={"lr": 5 << 20, "svdpp": 1})
    with pytest.raises(InputError, match="part 2 repeats lr but also runs other programs"):
        combine_parts([first, both])


def test_parts_of_a_suite_run_combine_into_the_run_the_whole_plan_makes(tmp_path):
    """Two parts (one program each) combine into the medians, spreads and targets of one
    outcome holding every run; parts of other code, another plan, or the same program are
    refused with one line."""
    from jobs.report import build_results, combine_parts
    from jobs.runner import BenchOutcome

    lr_times = {
        ("lr.common", "spark"): [(120, 0), (110, 0), (130, 0)],
        ("lr.common", "mem_disk"): [(40, 400 << 20)] * 3,
        ("lr.common", "blaze"): [(30, 20 << 20), (33, 0), (31, 0)],
    }
    km_times = {
        ("kmeans.expert", "spark"): [(60, 0)] * 3,
        ("kmeans.expert", "mem_disk"): [(50, 9 << 20), (52, 0), (49, 0)],
        ("kmeans.expert", "blaze"): [(55, 0)] * 3,
    }
    lr, km = _part(tmp_path, "a", "lr", lr_times), _part(tmp_path, "b", "kmeans", km_times)
    combined = combine_parts([lr, km])

    whole_plan = _plan(tmp_path / "w", jobs="lr,kmeans", policies="spark,mem_disk,blaze")
    whole = BenchOutcome(whole_plan)
    whole.footprints = {"lr": 5 << 20, "kmeans": 5 << 20}
    whole.runs = _runs(lr_times) + _runs(km_times)
    expected = json.loads(json.dumps(build_results(whole)))
    for key in ("medians", "spreads", "targets", "headlines", "autounpersist_share"):
        assert combined[key] == expected[key], key
    assert combined["plan"]["jobs"] == lr["plan"]["jobs"] + km["plan"]["jobs"]
    assert len(combined["runs"]) == 18 and [p["jobs"] for p in combined["parts"]] == [
        lr["plan"]["jobs"],
        km["plan"]["jobs"],
    ]

    other_code = dict(km, code="0000000000000000")
    with pytest.raises(InputError, match="part 2 was run by other code"):
        combine_parts([lr, other_code])
    with pytest.raises(InputError, match=r"part 2 has plan scale = 0\.02, part 1 0\.01"):
        combine_parts([lr, _part(tmp_path, "c", "kmeans", km_times, scale=0.02)])
    with pytest.raises(InputError, match=r"part 2 has another run of lr\.common / spark repeat 1"):
        combine_parts([lr, lr])  # the same program again, not resumed: not a repeat of it


def test_the_suite_script_combines_part_files_and_states_how_each_was_made(tmp_path):
    """``bench_jobs.py --combine`` writes the suite's files from part files; its notes carry
    each part's command and load; an unreadable part is one line (exit 2)."""
    bench_jobs = _suite_script()
    paths = []
    for name, program, job in (("a", "lr", "lr.common"), ("b", "kmeans", "kmeans.common")):
        part = _part(tmp_path, name, program, {(job, "spark"): [(60, 0)] * 3})
        part["facts"] = bench_jobs.run_facts(["--jobs", program], "now", "1.00", 600.0, 4)
        paths.append(tmp_path / f"{name}_results.json")
        paths[-1].write_text(json.dumps(part))
    out = tmp_path / "results"
    args = ["--stem", "suite", "--results", str(out), "--combine", *map(str, paths)]
    assert bench_jobs.main(args) == 0
    combined = json.loads((out / "suite_results.json").read_text())
    assert combined["plan"]["jobs"] == ["lr.common", "lr.expert", "kmeans.common", "kmeans.expert"]
    text = (out / "suite_notes.md").read_text()
    assert "Combined from 2 parts" in text
    assert "Command: `python benchmarks/bench_jobs.py --jobs kmeans`" in text
    assert (out / "suite.md").is_file() and (out / "suite_time.png").stat().st_size > 1000
    missing = ["--results", str(out), "--combine", str(tmp_path / "nope.json")]
    assert bench_jobs.main(missing) == 2


def test_the_suite_script_combines_parts_in_the_order_they_were_made(tmp_path):
    """A shell glob names ``lr_repeats_results.json`` before ``lr_results.json``; the script
    combines the parts in the order they were made (each part's facts say when it started),
    so a repeat part follows the part it repeats however the paths are given."""
    bench_jobs = _suite_script()
    once = {("lr.common", p): [t] for p, t in (("spark", 120), ("mem_disk", 40), ("blaze", 44))}
    base = _part(tmp_path, "a", "lr", _repeat_runs(once), repeats=1)
    again = {("lr.common", "mem_disk"): [40, 41, 39], ("lr.common", "blaze"): [44, 38, 39]}
    resumed = {("mem_disk", 0), ("blaze", 0)}
    runs = _repeat_runs(again, resumed)
    repeat = _part(tmp_path, "a", "lr", runs, policies="mem_disk,blaze", repeats=3)
    for part, name, started in (
        (base, "lr", "2026-12-06 07:10"),
        (repeat, "lr_repeats", "2026-12-06 08:40"),
    ):
        part["facts"] = bench_jobs.run_facts(["--jobs", "lr"], started, "1.00", 600.0, 3)
        (tmp_path / f"{name}_results.json").write_text(json.dumps(part))
    paths = sorted(str(p) for p in tmp_path.glob("*_results.json"))
    assert paths[0].endswith("/lr_repeats_results.json")  # the glob's order
    out = tmp_path / "results"
    assert bench_jobs.main(["--stem", "suite", "--results", str(out), "--combine", *paths]) == 0
    combined = json.loads((out / "suite_results.json").read_text())
    rows = combined["medians"]["lr.common"]
    assert (rows["blaze"]["runs"], rows["blaze"]["seconds"]) == (3, 39)
    assert combined["parts"][1]["repeat_of"] == [1]


def test_checker_flags_duckdb_disagreement(tmp_path):
    """No JVM: the DuckDB reference is itself a valid kmeans answer to check against."""
    from jobs import dataset_spec, job_params
    from jobs.duckref import reference
    from jobs.runner import _Checker

    plan = _plan(tmp_path, jobs="kmeans.expert", policies="none,mem_only", scale=0.001)
    path = ensure_dataset(plan.data_dir, dataset_spec("kmeans.expert", plan.scale, plan.seed))

    good = reference("kmeans", path, job_params("kmeans", plan.scale), None)
    checker = _Checker(plan)
    assert checker.against_duckdb("kmeans.expert", good) == []
    bad = JobResult("kmeans", good.iterations, {"centres": good.arrays["centres"] + 0.01}, {})
    problems = checker.against_duckdb("kmeans.expert", bad)
    assert problems and "centres differs from DuckDB" in problems[0]


def test_cache_counters_come_from_the_manager_when_the_program_cached_nothing():
    from jobs.caching import CacheStats
    from jobs.run_one import _cache_counters

    counted = CacheStats(datasets=1, partitions=4, computes=6, reads=10, recomputed_partitions=2)
    report = {"hits": 30, "misses": 10, "recomputed_partitions": 5}
    assert _cache_counters(counted, report) == {
        "recomputed_partitions": 2,
        "cache_hit_rate": 0.4,
        "cache_counters": "program",
    }
    assert _cache_counters(CacheStats(), report) == {
        "recomputed_partitions": 5,
        "cache_hit_rate": 0.75,
        "cache_counters": "manager",
    }
    assert _cache_counters(CacheStats(), None)["recomputed_partitions"] is None


def test_committed_results_carry_no_machine_path(tmp_path):
    """The manager's report in a run's results holds ``spark.local.dir``, this machine's
    path: a path inside the checkout is written relative to it, one outside by its name."""
    root = tmp_path / "checkout"
    run = {
        "manager_report": {"disk_cost_ms_per_mib": {"local_dir": str(root / "out" / "x")}},
        "spilled_to": [str(tmp_path / "elsewhere" / "spark-local"), "ms/MiB", 3],
    }
    clean = without_machine_paths({"runs": [run]}, root)
    assert clean["runs"][0]["manager_report"]["disk_cost_ms_per_mib"]["local_dir"] == "out/x"
    assert clean["runs"][0]["spilled_to"] == ["spark-local", "ms/MiB", 3]
    assert str(tmp_path) not in json.dumps(clean)
