"""benchmarks/why_evidence.py: the per-job facts behind a suite run's "why"."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "why_evidence.py"


def _module():
    spec = importlib.util.spec_from_file_location("why_evidence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(job, policy, seconds, *, report=None, dead=None, rerun=False, status="ok", written=0):
    return {
        "job": job,
        "policy": policy,
        "seconds": seconds,
        "status": status,
        "disk_bytes_written": written,
        "recomputed_partitions": 0,
        "dead_writes": dead,
        "manager_report": report,
        "node": {"unlimited_rerun": {"first_attempt": "killed"}} if rerun else {},
    }


def test_each_job_gets_its_table_in_policy_order_with_the_books_and_the_reruns(capsys, tmp_path):
    blaze_report = {
        "memory_hits": 12,
        "disk_hits": 30,
        "misses": 9,
        "evictions_by_reason": {"auto_unpersist": 4, "admitted_to_disk": 7},
    }
    runs = [
        _run("b.job", "blaze", 50.0, report=blaze_report, dead=3, written=3 << 20),
        _run("a.job", "mem_disk", 70.25, written=96 << 20),
        _run("a.job", "unlimited", 40.0),
        _run("a.job", "blaze", 45.0, report=blaze_report, dead=0, rerun=True),
        _run("a.job", "spark", 99.0),  # not a disk-writing policy nor a bound: not shown
        _run("a.job", "lrc", 1.0, status="failed"),  # a failed run says nothing
    ]
    path = tmp_path / "suite_results.json"
    path.write_text(json.dumps({"runs": runs}))
    assert _module().main([str(path)]) == 0
    text = capsys.readouterr().out
    a_table = text.split("### a.job")[1].split("### b.job")[0]
    rows = [line for line in a_table.splitlines() if line.startswith("| ") and "policy" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| unlimited", "| mem_disk", "| blaze"]
    assert rows[1].startswith("| mem_disk | 70.2 | 96.0 | - | - | - |")
    blaze_row = rows[2]
    assert "| 45.0 | 0.0 | 12 | 30 | 9 | 0 | 0 |" in blaze_row
    assert "admitted_to_disk 7, auto_unpersist 4" in blaze_row
    assert blaze_row.endswith("| yes |")
    assert "| blaze | 50.0 | 3.0 | 12 | 30 | 9 | 0 | 3 |" in text.split("### b.job")[1]


def test_an_unreadable_or_empty_results_file_is_one_line_and_exit_2(capsys, tmp_path):
    module = _module()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert module.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("why_evidence: cannot read suite results from") and err.count("\n") == 1
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"runs": []}))
    assert module.main([str(empty)]) == 2
    assert "holds no runs" in capsys.readouterr().err
