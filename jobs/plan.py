"""What a benchmark invocation asks for, validated before any Spark work starts.

Every mistake a user can make on the command line — an unknown job or policy, a memory
fraction outside (0, 1], a scale whose data does not fit on the disk — is caught here and
raised as one :class:`blaze_errors.InputError` line, so nothing waits for a JVM to fail.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from blaze_errors import InputError
from jobs import JOB_NAMES, dataset_spec, load_job, parse_param_overrides
from jobs.caching import POLICIES
from jobs.datagen import dataset_dir, estimated_bytes

__all__ = [
    "DEFAULT_POLICIES",
    "FULL",
    "QUICK",
    "BenchPlan",
    "parse_fraction",
    "parse_names",
    "required_disk_bytes",
]

DEFAULT_POLICIES = POLICIES
# event log + result files of one run (block updates are logged; generous upper bound)
RUN_OVERHEAD_BYTES = 64 << 20


@dataclass(frozen=True)
class BenchPlan:
    jobs: tuple[str, ...]
    policies: tuple[str, ...]
    scale: float
    memory_fraction: float
    repeats: int
    data_dir: Path
    out_dir: Path
    seed: int = 42
    run_timeout_s: float = 1800.0
    params: tuple[tuple[str, float], ...] = field(default=())  # job parameter overrides

    @property
    def runs(self) -> int:
        """Spark applications the plan starts (one footprint run per job included)."""
        return len(self.jobs) * (1 + self.repeats * len(self.policies))


# `blaze bench --quick`: a few minutes on 2 cores; the full default: about an hour.
QUICK = {
    "jobs": ("kmeans", "lr", "mlkmeans"),
    "policies": ("mem_only", "mem_disk", "blaze", "unlimited"),
    "scale": 0.2,
    "repeats": 1,
}
# scale 1.0: footprints of 3.5-270 MiB, runs of 7-25 s each on 2 cores, 132 applications
FULL = {"jobs": JOB_NAMES, "policies": POLICIES, "scale": 1.0, "repeats": 3}


def parse_names(text: str | None, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    """``"a,b"`` or ``"all"`` -> names, each checked against ``known``."""
    if text is None or text.strip().lower() == "all":
        return known
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise InputError(f"no {what} given (known: {', '.join(known)})")
    for name in names:
        if name not in known:
            raise InputError(f"unknown {what} {name!r} (known: {', '.join(known)}, or all)")
    return names


def parse_fraction(text: str | float) -> float:
    """``"30%"``, ``"0.3"`` or ``0.3`` -> 0.3; must lie in (0, 1]."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise InputError(f"--memory {text!r} is not a fraction (examples: 0.3, 30%)") from None
    if not (math.isfinite(value) and 0 < value <= 1):
        raise InputError(f"--memory {text!r} must be a fraction in (0, 1] of the footprint")
    return value


def required_disk_bytes(plan: BenchPlan) -> int:
    """Bytes the plan still has to write: missing datasets plus per-run logs and results."""
    needed = 0
    for spec in {dataset_spec(j, plan.scale, plan.seed) for j in plan.jobs}:
        if not dataset_dir(plan.data_dir, spec).is_dir():
            needed += estimated_bytes(spec.kind, spec.scale)
    return needed + plan.runs * RUN_OVERHEAD_BYTES


def _free_bytes(path: Path) -> int:
    probe = path.resolve()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def make_plan(
    *,
    jobs: str | None,
    policies: str | None,
    scale: float | None,
    memory: str | float,
    repeats: int | None,
    data_dir: str | Path,
    out_dir: str | Path,
    quick: bool = False,
    seed: int = 42,
    params: list[str] | None = None,
) -> BenchPlan:
    """Validate the user's choices (quick or full defaults for anything left out)."""
    defaults = QUICK if quick else FULL
    chosen_jobs = parse_names(jobs, JOB_NAMES, "job") if jobs else defaults["jobs"]
    chosen_policies = (
        parse_names(policies, POLICIES, "policy") if policies else defaults["policies"]
    )
    scale = defaults["scale"] if scale is None else scale
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise InputError(f"--scale {scale!r} must be a positive number")
    repeats = defaults["repeats"] if repeats is None else repeats
    if repeats < 1:
        raise InputError(f"--repeats {repeats} must be at least 1")
    overrides = parse_param_overrides(params)
    known = {key for job in chosen_jobs for key in load_job(job).params(1.0)}
    for key in overrides:
        if key not in known:
            raise InputError(
                f"--param {key!r} is no parameter of {', '.join(chosen_jobs)} "
                f"(known: {', '.join(sorted(known))})"
            )
    plan = BenchPlan(
        jobs=chosen_jobs,
        policies=chosen_policies,
        scale=float(scale),
        memory_fraction=parse_fraction(memory),
        repeats=int(repeats),
        data_dir=Path(data_dir),
        out_dir=Path(out_dir),
        seed=seed,
        params=tuple(sorted(overrides.items())),
    )
    for target in (plan.data_dir, plan.out_dir):
        need, free = required_disk_bytes(plan), _free_bytes(target)
        if need > free:
            raise InputError(
                f"--scale {plan.scale:g} needs about {need / 2**30:.1f} GiB under {target} "
                f"but only {free / 2**30:.1f} GiB is free; lower --scale or pick another dir"
            )
    return plan
