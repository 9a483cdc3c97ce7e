"""The benchmark runner behind ``blaze bench``: every job under every policy, side by side.

Order of work, and why:

1. datasets are generated (or reused) before any Spark application starts;
2. each program runs once in its ``expert`` variant under ``unlimited`` to measure its
   cached footprint (peak bytes of cached blocks in memory): the data the program really
   reuses, without the dead caches of the common variant, which would inflate it. The
   storage memory of every squeezed run of either variant is that footprint times
   ``--memory``. This run is not timed: all footprint runs happen first, so timing them
   would compare ``unlimited`` against runs made under other machine load;
3. timed runs go round-robin over jobs and, within a job, over all chosen policies
   (``none`` and ``unlimited`` included) in an order rotated each repeat, so drift of a
   shared machine hits every policy alike;
4. each run is its own Spark application (``python -m jobs.run_one``): no shared caches;
5. every result is checked against an independent DuckDB computation, and at the end
   against the ``none`` policy's result (or, without ``none``, the footprint run's): a
   policy must never change an answer, so a mismatch marks the run ``mismatch`` and makes
   the command fail;
6. in node mode (:mod:`jobs.nodedisk`) every application runs in its own cgroups: the
   footprint run in measuring groups (its own memory peak sizes the program's memory limit),
   each timed run under the limit and the disk throttle, its input dropped from the page
   cache first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from jobs import dataset_spec, job_params, load_job, split_job
from jobs.datagen import ensure_dataset
from jobs.duckref import RESULT_DEPENDENT, reference
from jobs.nodedisk import (
    CGROUP_ROOT,
    JOIN_FAILED,
    NodeGroup,
    NodeHost,
    drop_from_page_cache,
    node_json,
    probe_host,
    terminate_as_exit,
)
from jobs.plan import BenchPlan
from jobs.result import JobResult
from jobs.run_one import HEAP_BYTES, RESERVED_BYTES
from jobs.verify import compare

__all__ = [
    "MIN_STORAGE_BYTES",
    "BenchOutcome",
    "footprint_jobs",
    "local_dir",
    "run_plan",
    "squeezed_storage",
    "storage_for",
]

MIN_STORAGE_BYTES = 256 << 10


def storage_for(footprint_bytes: int, fraction: float) -> int:
    """Storage memory of a squeezed run: ``fraction`` of the footprint, within Spark's range."""
    usable = HEAP_BYTES - RESERVED_BYTES
    return int(min(usable, max(MIN_STORAGE_BYTES, footprint_bytes * fraction)))


def squeezed_storage(job: str, footprint_bytes: int, fraction: float) -> int:
    """Storage memory of a squeezed run of ``job``: :func:`storage_for` its program's
    footprint, never below the job's own floor (``MIN_POOL_BYTES``, where it declares one)."""
    floor = getattr(load_job(job), "MIN_POOL_BYTES", 0)
    return max(floor, storage_for(footprint_bytes, fraction))


class BenchOutcome:
    """Everything a bench run produced: the plan, every run record, and the problems."""

    def __init__(self, plan: BenchPlan):
        self.plan = plan
        self.runs: list[dict] = []
        self.footprints: dict[str, int] = {}
        self.footprint_runs: list[dict] = []
        self.profile_runs: list[dict] = []  # untimed: each records a policy's profile of a job
        self.problems: list[str] = []
        self.node_host: NodeHost | None = None
        self.app_memory: dict[str, int] = {}  # node mode: program -> largest own peak bytes
        self.started = time.time()

    def note_app_memory(self, program: str, own_peak: int) -> None:
        """A sizing run's own peak: the program's node limit follows its largest."""
        self.app_memory[program] = max(self.app_memory.get(program, 0), own_peak)

    def to_json(self) -> dict:
        plan = asdict(self.plan)
        # results are committed: a directory given as an absolute path keeps only its name
        for key in ("data_dir", "out_dir"):
            path = Path(plan[key])
            plan[key] = path.name if path.is_absolute() else str(path)
        node = None
        if self.plan.node is not None:
            node = node_json(self.plan.node, self.node_host)
            node["app_memory_bytes_by_program"] = self.app_memory
            node["memory_limit_bytes_by_program"] = {
                program: self.plan.node.limit_bytes(app) for program, app in self.app_memory.items()
            }
        return {
            "plan": plan,
            "code": code_fingerprint(),
            "node": node,
            "footprints_bytes": self.footprints,
            "footprint_runs": self.footprint_runs,
            "profile_runs": self.profile_runs,
            "runs": self.runs,
            "problems": self.problems,
            "wall_seconds": time.time() - self.started,
        }


def _schedule(plan: BenchPlan) -> list[tuple[int, str, str]]:
    """(repeat, job, policy) of every timed run, in run order (footprint runs excluded)."""
    order = []
    for repeat in range(plan.repeats):
        for job in plan.jobs:
            policies = list(plan.policies)
            shift = repeat % len(policies)
            order.extend((repeat, job, p) for p in policies[shift:] + policies[:shift])
    return order


def footprint_jobs(plan: BenchPlan) -> dict[str, str]:
    """program -> the job whose ``unlimited`` run measures the program's footprint."""
    return {program: jobs[0] for program, jobs in plan.sizing_jobs.items()}


@dataclass(frozen=True)
class Cell:
    """One Spark application of a plan: ``job`` under ``policy`` with ``storage`` bytes of
    storage memory (None: Spark's own), its record, answer and log under ``out``.
    ``record_profile``: the untimed run on the plan's sample that records the profile the
    policy's timed runs of ``job`` start from."""

    job: str
    policy: str
    storage: int | None
    out: Path
    record_profile: bool = False

    def failed(self, error: str) -> dict:
        """The run record of this cell when it produced none of its own."""
        return {"job": self.job, "policy": self.policy, "status": "failed", "error": error}


def _command(plan: BenchPlan, cell: Cell) -> list:
    """The ``jobs.run_one`` command of one cell."""
    scale = plan.profile_scale if cell.record_profile else plan.scale
    cmd = [sys.executable, "-m", "jobs.run_one", "--job", cell.job, "--policy", cell.policy]
    cmd += ["--scale", repr(scale), "--seed", str(plan.seed)]
    cmd += ["--generator", str(plan.generator), "--data-dir", str(plan.data_dir)]
    cmd += ["--out", str(cell.out)]
    if cell.storage is not None:
        cmd += ["--storage-bytes", str(cell.storage)]
    for key, value in plan.params:
        cmd += ["--param", f"{key}={value}"]
    if plan.node is not None:
        cmd += ["--local-dir", str(local_dir(plan)), "--pin-heap"]
    if cell.policy in plan.profiled_policies:
        cmd += ["--profile-mode", "record" if cell.record_profile else "use"]
        cmd += ["--profile-path", str(profile_path(plan, cell.job, cell.policy))]
    return cmd


def profile_path(plan: BenchPlan, job: str, policy: str) -> Path:
    """Where ``policy``'s profile of ``job`` is recorded (one per policy: a profile belongs
    to the application that wrote it, and each policy's runs are their own application)."""
    return plan.out_dir / "runs" / f"{job}-{policy}-profile" / "profile.json"


def local_dir(plan: BenchPlan) -> Path:
    """``spark.local.dir`` of node-mode runs: on the device the throttle applies to."""
    return (plan.out_dir / "spark-local").resolve()


CELL_FILE = "cell.json"  # the command, node disk and code a finished run.json answers
# what a run executes: a record made by other code is never reused (a results-only commit
# between sessions keeps the fingerprint; any change to these sources does not)
CODE_PACKAGES = ("blaze", "blaze_jvm", "costmodel", "lineage", "jobs", "conf")


@functools.cache
def code_fingerprint() -> str:
    """The fingerprint of this checkout's sources (see :func:`sources_fingerprint`)."""
    return sources_fingerprint(Path(__file__).resolve().parent.parent)


def sources_fingerprint(root: Path) -> str:
    """SHA-256 (first 16 hex digits) of the sources of every package a run executes."""
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for source in sorted((root / package).rglob("*")):
            if source.suffix in (".py", ".java", ".conf", ".json") and source.is_file():
                digest.update(source.relative_to(root).as_posix().encode() + b"\0")
                digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _identity(plan: BenchPlan, cell: Cell) -> dict:
    """What a finished run answers for (kept in its CELL_FILE): command, node disk, code and,
    for a timed run that reads a profile, that profile."""
    node = None if plan.node is None else repr(plan.node)
    command = [str(part) for part in _command(plan, cell)]
    identity = {"command": command, "node": node, "code": code_fingerprint()}
    if cell.policy in plan.profiled_policies and not cell.record_profile:
        # a timed run answers for the profile it read: a profile recorded again is another cell
        profile = profile_path(plan, cell.job, cell.policy)
        read = profile.read_bytes() if profile.is_file() else b""
        identity["profile"] = hashlib.sha256(read).hexdigest()[:16]
    return identity


def _finished(plan: BenchPlan, cell: Cell):
    """The run record of this very cell from an earlier bench into the same ``--out``, when
    ``plan.resume`` and it finished (status ok, answer saved); else None — and any record
    left there is removed, so a run that fails to write its own is never read as a stale
    one's."""
    out = cell.out
    record_path, cell_path = out / "run.json", out / CELL_FILE
    if plan.resume and record_path.is_file() and cell_path.is_file():
        try:
            record = json.loads(record_path.read_text())
            same = json.loads(cell_path.read_text()) == _identity(plan, cell)
        except (OSError, ValueError):
            record, same = {}, False
        # a profile run's product is its profile: without it the cell is not finished
        made = not cell.record_profile or profile_path(plan, cell.job, cell.policy).is_file()
        if same and made and record.get("status") == "ok" and (out / "result.npz").is_file():
            record["resumed"] = True
            return record
    stale = [record_path, cell_path, out / "result.npz"]
    if cell.record_profile:  # a failed recording must not leave an earlier profile to be read
        stale.append(profile_path(plan, cell.job, cell.policy))
    for path in stale:
        path.unlink(missing_ok=True)
    return None


def _run_cell(outcome: BenchOutcome, cell: Cell, *, sizing: bool) -> dict:
    """One application of the plan (in node mode inside its node's groups, except an untimed
    profile recording), or its earlier finished record (``--resume``)."""
    plan = outcome.plan
    record = _finished(plan, cell)
    if record is not None:
        if plan.node is not None and sizing:  # the limit of the program's other runs
            own = plan.node.app_memory_bytes or record.get("node", {}).get("own_peak_bytes")
            if own:
                outcome.note_app_memory(split_job(cell.job)[0], own)
        return record
    if plan.node is not None and not cell.record_profile:
        record = _node_run(outcome, cell, sizing=sizing)
    else:
        record = _launch(plan, cell)
    if record.get("status") == "ok":  # kept whole (node measurements included) for --resume
        (cell.out / "run.json").write_text(json.dumps(record, indent=1))
        (cell.out / CELL_FILE).write_text(json.dumps(_identity(plan, cell)))
    return record


def _launch(plan: BenchPlan, cell: Cell, group: NodeGroup | None = None) -> dict:
    """Run one application (inside ``group`` in node mode) and return its run record."""
    cmd, out = _command(plan, cell), cell.out
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    code = None
    with open(out / "log.txt", "w") as log:
        try:
            code = subprocess.run(
                group.wrap(cmd) if group is not None else cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=plan.run_timeout_s,
                env=env,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            return cell.failed("timed out")
    if group is not None and code == JOIN_FAILED:
        return cell.failed(f"could not join the node's cgroups; see {out / 'log.txt'}")
    record_path = out / "run.json"
    if not record_path.is_file():
        return cell.failed(f"no run.json; see {out / 'log.txt'}")
    return json.loads(record_path.read_text())


def _node_run(outcome: BenchOutcome, cell: Cell, *, sizing: bool) -> dict:
    """One application in node mode: its groups made, its input dropped from the page cache,
    run, measured, and the groups removed (also when the run fails or is interrupted).

    A timed run the memory limit's OOM killer ended runs once more **without the memory
    limit** (the disk throttle kept), and its record says so (``node.unlimited_rerun``): a
    policy may need far more memory of its own than the program's sizing run did —
    pagerank.common under ``none`` recomputes every earlier iteration and measured a 3,662 MiB
    own peak against a 2,427 MiB sizing peak — and a node the program does not fit answers
    nothing about caching. Raising every program's limit to such a peak would hand the other
    policies gigabytes of page cache and undo the node, so the squeeze stays for every run
    that fits and the results name the runs that did not."""
    if sizing:
        return _node_attempt(outcome, cell, app=None)
    app = outcome.app_memory.get(split_job(cell.job)[0])
    if not app:
        return cell.failed("node mode: no memory limit for this program (its sizing run failed)")
    record = _node_attempt(outcome, cell, app=app)
    if record.get("status") != "ok" and record.get("node", {}).get("oom_kills"):
        first = record["error"]
        record = _node_attempt(outcome, cell, app=app, memory_limit=False)
        record["node"]["unlimited_rerun"] = {"first_attempt": first}
    return record


def _node_attempt(outcome: BenchOutcome, cell: Cell, *, app, memory_limit: bool = True) -> dict:
    """One run in its node's groups: ``app`` is the application's own memory (None: the
    sizing run, measured without a limit or throttle); ``memory_limit=False`` keeps the
    throttle and measures memory without limiting it."""
    plan, node, host = outcome.plan, outcome.plan.node, outcome.node_host
    sizing = app is None
    if sizing:
        limit, read_bps, write_bps = None, None, None
    else:
        limit = node.limit_bytes(app) if memory_limit else None
        read_bps, write_bps = node.read_bps, node.write_bps
    spec = dataset_spec(cell.job, plan.scale, plan.seed, plan.generator)
    drop_from_page_cache(ensure_dataset(plan.data_dir, spec))
    name = f"blaze-node-{os.getpid()}-{cell.out.name}"
    with NodeGroup(host, name, memory_limit=limit, read_bps=read_bps, write_bps=write_bps) as group:
        record = _launch(plan, cell, group)
    seen = group.report()
    seen["sizing"] = sizing
    record["node"] = seen
    if seen.get("oom_kills") and limit is not None:
        why = (
            f"killed by the node's memory limit ({seen['oom_kills']} OOM kill(s); limit "
            f"{limit >> 20} MiB = own memory {(limit - node.page_cache_bytes) >> 20} MiB + "
            f"page cache {node.page_cache_bytes >> 20} MiB; this run's own peak "
            f"{seen['own_peak_bytes'] >> 20} MiB)"
        )
        if record.get("status") == "ok":
            record["note"] = why  # a Python worker killed and retried: the run still finished
        else:
            record["status"], record["error"] = "failed", why
    if sizing and (node.app_memory_bytes or record.get("status") == "ok"):
        own = node.app_memory_bytes or seen["own_peak_bytes"]
        outcome.note_app_memory(split_job(cell.job)[0], own)
    return record


class _Checker:
    """DuckDB references (computed once per job) and the cross-policy baseline check."""

    def __init__(self, plan: BenchPlan):
        self.plan = plan
        self.references: dict[str, JobResult] = {}

    def against_duckdb(self, job: str, result: JobResult) -> list[str]:
        spec = dataset_spec(job, self.plan.scale, self.plan.seed, self.plan.generator)
        path = ensure_dataset(self.plan.data_dir, spec)
        params = job_params(job, self.plan.scale, dict(self.plan.params))
        if split_job(job)[0] in RESULT_DEPENDENT:  # DuckDB re-derives this very result's error
            return compare(result, reference(job, path, params, result), what="DuckDB")
        program = split_job(job)[0]  # both variants compute the same answer
        if program not in self.references:
            self.references[program] = reference(job, path, params, result)
        return compare(result, self.references[program], what="DuckDB")


def run_plan(
    plan: BenchPlan,
    on_progress: Callable[[str, dict | None], None] = lambda message, record: None,
    *,
    node_host: NodeHost | None = None,
) -> BenchOutcome:
    """Run the plan; ``on_progress(description, finished_record_or_None)`` drives the UI.

    In node mode the machine is checked first unless the caller did (``node_host``,
    :func:`jobs.nodedisk.probe_host`): where it cannot run, one
    :class:`blaze_errors.MachineError` line, before any data or Spark."""
    outcome = BenchOutcome(plan)
    if plan.node is not None:
        outcome.node_host = node_host or probe_host(local_dir(plan), CGROUP_ROOT)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    with terminate_as_exit():
        _run(outcome, on_progress)
    return outcome


def _run(outcome: BenchOutcome, on_progress: Callable[[str, dict | None], None]) -> None:
    plan = outcome.plan
    for spec in plan.datasets():
        on_progress(f"data {spec.kind} (scale {spec.scale:g})", None)
        ensure_dataset(plan.data_dir, spec)
    checker = _Checker(plan)
    runs_dir = plan.out_dir / "runs"
    answers: dict[int, JobResult] = {}  # index in outcome.runs -> its result

    def check(record: dict, out: Path) -> JobResult | None:
        if record.get("status") == "ok":
            result = JobResult.load(out / "result.npz")
            problems = checker.against_duckdb(record["job"], result)
            record["verified"] = not problems
            if problems:
                record["status"] = "mismatch"
                record["error"] = "; ".join(problems)
                outcome.problems.extend(problems)
            return result
        if record.get("status") == "failed":
            outcome.problems.append(
                f"{record['job']}/{record['policy']} failed: {record.get('error')}"
            )
        return None

    def squeezed(job: str) -> int:
        footprint = outcome.footprints.get(split_job(job)[0], 0)
        return squeezed_storage(job, footprint, plan.memory_fraction)

    footprint_answers: dict[str, JobResult] = {}  # program -> answer
    for program, jobs in plan.sizing_jobs.items():  # size the other runs (storage, node)
        for job in jobs:
            on_progress(f"{job} / unlimited (footprint)", None)
            cell = Cell(job, "unlimited", None, runs_dir / f"{job}-footprint")
            record = _run_cell(outcome, cell, sizing=True)
            record["footprint_run"] = True
            result = check(record, cell.out)  # every answer checked, the sizing runs' too
            if job == jobs[0]:  # the expert variant's peak sizes the storage memory
                outcome.footprints[program] = int(record.get("peak_memory_bytes") or 0)
                if result is not None:
                    footprint_answers[program] = result
            outcome.footprint_runs.append(record)
            on_progress(f"{job} / footprint", record)
    for job in plan.jobs:  # profiles of a sample, recorded before any timed run
        for policy in plan.profiled_policies:
            on_progress(f"{job} / {policy} (profile at scale {plan.profile_scale:g})", None)
            out = runs_dir / f"{job}-{policy}-profile"
            cell = Cell(job, policy, None, out, record_profile=True)
            record = _run_cell(outcome, cell, sizing=False)
            record["profile_run"] = True
            if record.get("status") == "ok" and not profile_path(plan, job, policy).is_file():
                record["status"] = "failed"
                record["error"] = "the run finished but recorded no profile; see its log.txt"
            if record.get("status") != "ok":
                outcome.problems.append(
                    f"{job}/{policy} profile run failed: {record.get('error')} (the policy's "
                    "timed runs of this job cannot start from a profile)"
                )
            outcome.profile_runs.append(record)
            on_progress(f"{job} / {policy} profile", record)
    for repeat, job, policy in _schedule(plan):
        storage = None if policy == "unlimited" else squeezed(job)
        on_progress(f"{job} / {policy} (repeat {repeat + 1})", None)
        cell = Cell(job, policy, storage, runs_dir / f"{job}-{policy}-r{repeat}")
        record = _run_cell(outcome, cell, sizing=False)
        record["repeat"] = repeat
        result = check(record, cell.out)
        if result is not None:
            answers[len(outcome.runs)] = result
        outcome.runs.append(record)
        on_progress(f"{job} / {policy}", record)
    # a policy must not change the answer: compare every run with the baseline policy's
    for job in plan.jobs:
        base_policy = "unlimited (footprint run)"
        base = footprint_answers.get(split_job(job)[0])
        for i, record in enumerate(outcome.runs):
            if record["job"] == job and record["policy"] == "none" and i in answers:
                base_policy, base = "none", answers[i]
                break
        if base is None:
            continue
        for i, record in enumerate(outcome.runs):
            if record["job"] != job or i not in answers:
                continue
            problems = compare(answers[i], base, what=f"the {base_policy} run")
            record["baseline"] = base_policy
            if problems:
                record["status"] = "mismatch"
                record["verified"] = False
                record["error"] = "; ".join(problems)
                outcome.problems.extend(problems)
