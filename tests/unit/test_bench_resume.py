"""``blaze bench --resume``: which earlier runs a bench reuses, and which it runs again.

The cells are driven through the runner's own ``_run_cell`` with the application replaced
by a stand-in that writes what ``jobs.run_one`` writes (no Spark: what is tested is which
cells launch, and that a stale record is never read as a new run's).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs import runner
from jobs.plan import make_plan
from jobs.result import JobResult


def _plan(tmp_path: Path, *, scale: float = 0.5, resume: bool = True, profile_sample=None):
    return make_plan(
        profile_sample=profile_sample,
        jobs="lr.common",
        policies="mem_disk,blaze",
        scale=scale,
        memory="0.3",
        repeats=1,
        data_dir=tmp_path / "data",
        out_dir=tmp_path / "out",
        resume=resume,
    )


@pytest.fixture
def launches(monkeypatch):
    """Each launch is recorded; it finishes (writes run.json and result.npz) unless the test
    says it fails before writing anything."""
    calls: list[tuple[str, str, int | None]] = []
    fail = {"now": False}

    def fake_launch(plan, cell, group=None):
        calls.append((cell.job, cell.policy, cell.storage))
        out = cell.out
        out.mkdir(parents=True, exist_ok=True)
        if cell.record_profile and not fail["now"]:  # what the manager writes at the end
            runner.profile_path(plan, cell.job, cell.policy).write_text("{}")
        if fail["now"]:
            if not (out / "run.json").is_file():
                return cell.failed("no run.json")
            return json.loads((out / "run.json").read_text())  # what _launch would read
        record = {
            "job": cell.job,
            "policy": cell.policy,
            "status": "ok",
            "seconds": 1.0 + len(calls),
        }
        (out / "run.json").write_text(json.dumps(record))
        JobResult(cell.job, 1).save(out / "result.npz")
        return record

    monkeypatch.setattr(runner, "_launch", fake_launch)
    return calls, fail


def _cell(plan, policy: str, storage: int | None = 1000):
    outcome = runner.BenchOutcome(plan)
    out = plan.out_dir / "runs" / f"lr.common-{policy}-r0"
    return runner._run_cell(outcome, runner.Cell("lr.common", policy, storage, out), sizing=False)


def test_a_finished_cell_is_reused_and_an_unfinished_one_runs(tmp_path, launches):
    calls, _ = launches
    plan = _plan(tmp_path)
    first = _cell(plan, "mem_disk")
    assert len(calls) == 1 and first["status"] == "ok"
    again = _cell(plan, "mem_disk")
    assert len(calls) == 1, "a finished cell was run again"
    assert again["resumed"] and again["seconds"] == first["seconds"]
    _cell(plan, "blaze")  # never run before
    assert [policy for _, policy, _ in calls] == ["mem_disk", "blaze"]


def test_a_cell_with_another_command_runs_again(tmp_path, launches):
    calls, _ = launches
    _cell(_plan(tmp_path, scale=0.5), "mem_disk")
    _cell(_plan(tmp_path, scale=0.25), "mem_disk")  # same directory, other data
    _cell(_plan(tmp_path, scale=0.25), "mem_disk", storage=2000)  # other storage memory
    assert len(calls) == 3
    _cell(_plan(tmp_path, scale=0.25, resume=False), "mem_disk", storage=2000)
    assert len(calls) == 4, "without --resume every cell runs"


def test_a_run_that_fails_never_reads_an_earlier_runs_record(tmp_path, launches):
    calls, fail = launches
    _cell(_plan(tmp_path, scale=0.5), "mem_disk")
    fail["now"] = True
    record = _cell(_plan(tmp_path, scale=0.25), "mem_disk")  # writes nothing
    assert len(calls) == 2
    assert record["status"] == "failed", "the stale run.json of the earlier bench was read"


def test_a_profile_cell_is_finished_only_with_its_profile(tmp_path, launches):
    """A profile run's product is the profile: a record without it is run again, and a
    recording that fails leaves no earlier profile for the timed runs to read."""
    calls, fail = launches
    plan = _plan(tmp_path, profile_sample=0.25)
    profile = runner.profile_path(plan, "lr.common", "blaze")

    def record_cell(plan):
        outcome = runner.BenchOutcome(plan)
        cell = runner.Cell("lr.common", "blaze", None, profile.parent, record_profile=True)
        return runner._run_cell(outcome, cell, sizing=False)

    assert record_cell(plan)["status"] == "ok" and profile.is_file()
    assert record_cell(plan)["resumed"] and len(calls) == 1
    profile.unlink()
    record_cell(plan)
    assert len(calls) == 2 and profile.is_file(), "a finished run without its profile was reused"
    timed = plan.out_dir / "runs" / "lr.common-blaze-r0"
    outcome = runner.BenchOutcome(plan)
    timed_cell = runner.Cell("lr.common", "blaze", 1000, timed)
    runner._run_cell(outcome, timed_cell, sizing=False)
    assert runner._run_cell(outcome, timed_cell, sizing=False)["resumed"]
    profile.write_text('{"recorded": "again"}')
    runner._run_cell(outcome, timed_cell, sizing=False)
    assert len(calls) == 4, "a timed run that read another profile was reused"
    fail["now"] = True
    again = record_cell(_plan(tmp_path, profile_sample=0.25, resume=False))
    assert again["status"] == "failed" and not profile.exists()


def test_a_cell_run_by_other_code_runs_again(tmp_path, launches, monkeypatch):
    calls, _ = launches
    plan = _plan(tmp_path)
    _cell(plan, "mem_disk")
    _cell(plan, "mem_disk")
    assert len(calls) == 1
    monkeypatch.setattr(runner, "code_fingerprint", lambda: "changed-manager")
    _cell(plan, "mem_disk")
    assert len(calls) == 2, "a record made by other code was reused"


def test_the_code_fingerprint_follows_the_sources_and_nothing_else(tmp_path):
    (tmp_path / "blaze").mkdir()
    (tmp_path / "blaze" / "engine.py").write_text("F = 1\n")
    first = runner.sources_fingerprint(tmp_path)
    (tmp_path / "blaze" / "notes.md").write_text("results of a run\n")
    (tmp_path / "README.md").write_text("figures\n")
    assert runner.sources_fingerprint(tmp_path) == first  # a results-only commit
    (tmp_path / "blaze" / "engine.py").write_text("F = 2\n")
    assert runner.sources_fingerprint(tmp_path) != first
