"""``blaze bench`` end to end: one job, two policies, each run its own Spark application."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.e2e, pytest.mark.slow]


def test_bench_one_job_two_policies(tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "blaze_cli",
        "bench",
        "--jobs",
        "kmeans.common",
        "--policies",
        "spark,blaze",
        "--scale",
        "0.003",
        "--memory",
        "50%",
        "--repeats",
        "1",
        "--param",
        "iterations=2",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "bench_results.json").read_text())
    runs = {r["policy"]: r for r in results["runs"]}
    assert set(runs) == {"spark", "blaze"}  # the unlimited footprint run is not reported
    (footprint_run,) = results["footprint_runs"]
    assert footprint_run["job"] == "kmeans.expert" and footprint_run["status"] == "ok"
    for run in runs.values():
        assert run["status"] == "ok" and run["verified"] is True
        assert run["seconds"] > 0 and run["cache_reads"] > 0
    footprint = results["footprints_bytes"]["kmeans"]
    assert footprint > 0
    assert runs["spark"]["storage_bytes"] == max(256 << 10, int(footprint * 0.5))
    assert runs["spark"]["manager_report"] is None  # stock Spark: no manager
    assert runs["blaze"]["manager_report"]["policy"] == "blaze"  # attached by the flag alone
    assert "kmeans.common" in results["medians"] and "targets" in results
    assert results["plan"]["out_dir"] == "out"  # no machine path in the results
    assert all(r["iterations"] == 2 and r["variant"] == "common" for r in runs.values())
    assert (out / "bench_time.png").stat().st_size > 0
    assert (out / "bench_disk.png").stat().st_size > 0
    assert "×spark" in proc.stdout and "targets (Blaze)" in proc.stdout


def test_bad_input_fails_before_spark(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "blaze_cli", "bench", "--policies", "mem_only,fastest"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "blaze: error: unknown policy 'fastest' (known: none, spark, mem_only, mem_disk, "
        "mem_disk_au, lrc, mrd, blaze, blaze_auto, unlimited, or all)"
    )
    assert not (tmp_path / "data").exists()


def test_empty_job_list_fails_before_spark(tmp_path):
    """``--jobs ''`` once started the whole suite; now it is one line and exit 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "blaze_cli", "bench", "--jobs", ""],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("blaze: error: --jobs '' names no job")
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()
