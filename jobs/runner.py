"""The benchmark runner behind ``blaze bench``: every job under every policy, side by side.

Order of work, and why:

1. datasets are generated (or reused) before any Spark application starts;
2. each job runs once under ``unlimited`` to measure its cached footprint (peak bytes of
   cached blocks in memory); the storage memory of every other run is that footprint times
   ``--memory``. This run also counts as the first ``unlimited`` repeat;
3. repeats go round-robin over jobs and, within a job, over policies in an order rotated
   each repeat, so slow drift of a shared machine hits every policy alike;
4. each run is its own Spark application (``python -m jobs.run_one``): no shared caches;
5. every result is checked against an independent DuckDB computation and against the
   ``none`` policy's result (or, without ``none``, the footprint run's): a policy must never
   change an answer, so a mismatch marks the run ``mismatch`` and makes the command fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from jobs import job_params, load_job
from jobs.datagen import ensure_dataset, spec_for
from jobs.duckref import reference
from jobs.plan import BenchPlan
from jobs.result import JobResult
from jobs.run_one import HEAP_BYTES, RESERVED_BYTES
from jobs.verify import compare

__all__ = ["MIN_STORAGE_BYTES", "BenchOutcome", "run_plan", "storage_for"]

MIN_STORAGE_BYTES = 256 << 10


def storage_for(footprint_bytes: int, fraction: float) -> int:
    """Storage memory of a squeezed run: ``fraction`` of the footprint, within Spark's range."""
    usable = HEAP_BYTES - RESERVED_BYTES
    return int(min(usable, max(MIN_STORAGE_BYTES, footprint_bytes * fraction)))


class BenchOutcome:
    """Everything a bench run produced: the plan, every run record, and the problems."""

    def __init__(self, plan: BenchPlan):
        self.plan = plan
        self.runs: list[dict] = []
        self.footprints: dict[str, int] = {}
        self.problems: list[str] = []
        self.started = time.time()

    def to_json(self) -> dict:
        plan = asdict(self.plan)
        plan["data_dir"], plan["out_dir"] = str(self.plan.data_dir), str(self.plan.out_dir)
        return {
            "plan": plan,
            "footprints_bytes": self.footprints,
            "runs": self.runs,
            "problems": self.problems,
            "wall_seconds": time.time() - self.started,
        }


def _schedule(plan: BenchPlan) -> list[tuple[int, str, str]]:
    """(repeat, job, policy) in run order; the footprint runs are not in it."""
    measured = [p for p in plan.policies if p != "unlimited"]
    order = []
    for repeat in range(plan.repeats):
        for job in plan.jobs:
            policies = list(measured)
            if "unlimited" in plan.policies and repeat > 0:
                policies.append("unlimited")
            shift = repeat % len(policies) if policies else 0
            order.extend((repeat, job, p) for p in policies[shift:] + policies[:shift])
    return order


def _launch(plan: BenchPlan, job: str, policy: str, storage: int | None, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "jobs.run_one",
        "--job",
        job,
        "--policy",
        policy,
        "--scale",
        repr(plan.scale),
        "--seed",
        str(plan.seed),
        "--data-dir",
        str(plan.data_dir),
        "--out",
        str(out),
    ]
    if storage is not None:
        cmd += ["--storage-bytes", str(storage)]
    for key, value in plan.params:
        cmd += ["--param", f"{key}={value}"]
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    with open(out / "log.txt", "w") as log:
        try:
            subprocess.run(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=plan.run_timeout_s,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"job": job, "policy": policy, "status": "failed", "error": "timed out"}
    record_path = out / "run.json"
    if not record_path.is_file():
        return {
            "job": job,
            "policy": policy,
            "status": "failed",
            "error": f"no run.json; see {out / 'log.txt'}",
        }
    return json.loads(record_path.read_text())


class _Checker:
    """DuckDB reference (computed once per job) and the baseline policy's result."""

    def __init__(self, plan: BenchPlan):
        self.plan = plan
        self.references: dict[str, JobResult] = {}
        self.baselines: dict[str, tuple[str, JobResult]] = {}

    def check(self, job: str, policy: str, result: JobResult, baseline_ok: bool) -> list[str]:
        module = load_job(job)
        spec = spec_for(module.DATASET, self.plan.scale, self.plan.seed)
        path = ensure_dataset(self.plan.data_dir, spec)
        params = job_params(job, self.plan.scale, dict(self.plan.params))
        if job in ("als", "mlkmeans"):  # DuckDB re-derives the error of this result
            want = reference(job, path, params, result)
        else:
            if job not in self.references:
                self.references[job] = reference(job, path, params, result)
            want = self.references[job]
        problems = compare(result, want, what="DuckDB")
        if baseline_ok and job not in self.baselines:
            self.baselines[job] = (policy, result)
        elif job in self.baselines:
            base_policy, base = self.baselines[job]
            problems += compare(result, base, what=f"the {base_policy} run")
        return problems


def run_plan(
    plan: BenchPlan,
    on_progress: Callable[[str, dict | None], None] = lambda message, record: None,
) -> BenchOutcome:
    """Run the plan; ``on_progress(description, finished_record_or_None)`` drives the UI."""
    outcome = BenchOutcome(plan)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    for kind in sorted({load_job(j).DATASET for j in plan.jobs}):
        on_progress(f"data {kind} (scale {plan.scale:g})", None)
        ensure_dataset(plan.data_dir, spec_for(kind, plan.scale, plan.seed))
    checker = _Checker(plan)
    baseline = "none" if "none" in plan.policies else "unlimited"
    runs_dir = plan.out_dir / "runs"

    def finish(record: dict, out: Path, repeat: int, *, keep: bool = True) -> None:
        record["repeat"] = repeat
        if record.get("status") == "ok":
            result = JobResult.load(out / "result.npz")
            is_base = record["policy"] == baseline
            problems = checker.check(record["job"], record["policy"], result, is_base)
            record["verified"] = not problems
            if problems:
                record["status"] = "mismatch"
                record["error"] = "; ".join(problems)
                outcome.problems.extend(problems)
        elif record.get("status") == "failed":
            outcome.problems.append(
                f"{record['job']}/{record['policy']} failed: {record.get('error')}"
            )
        if keep:
            outcome.runs.append(record)
        on_progress(f"{record['job']} / {record['policy']}", record)

    def squeezed(job: str) -> int:
        floor = getattr(load_job(job), "MIN_POOL_BYTES", 0)
        return max(floor, storage_for(outcome.footprints.get(job, 0), plan.memory_fraction))

    for job in plan.jobs:
        on_progress(f"{job} / unlimited (footprint)", None)
        foot_out = runs_dir / f"{job}-unlimited-r0"
        footprint_run = _launch(plan, job, "unlimited", None, foot_out)
        footprint_run["footprint_run"] = True
        outcome.footprints[job] = int(footprint_run.get("peak_memory_bytes") or 0)
        if "none" in plan.policies:  # the baseline is checked before anything compares to it
            on_progress(f"{job} / none", None)
            none_out = runs_dir / f"{job}-none-r0"
            finish(_launch(plan, job, "none", squeezed(job), none_out), none_out, 0)
        finish(footprint_run, foot_out, 0, keep="unlimited" in plan.policies)
    for repeat, job, policy in _schedule(plan):
        if policy == "none" and repeat == 0:
            continue  # ran right after the footprint run
        storage = None if policy == "unlimited" else squeezed(job)
        on_progress(f"{job} / {policy} (repeat {repeat + 1})", None)
        out = runs_dir / f"{job}-{policy}-r{repeat}"
        finish(_launch(plan, job, policy, storage, out), out, repeat)
    return outcome
