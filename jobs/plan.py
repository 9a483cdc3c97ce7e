"""What a benchmark invocation asks for, validated before any Spark work starts.

Every mistake a user can make on the command line — an unknown job or policy, an empty job
list, a memory fraction outside (0, 1], a scale whose data does not fit on the disk, a machine
with too little memory for the runs, node-mode parameters that make no sense — is caught here
and raised as one :class:`blaze_errors.InputError` line, so nothing waits for a JVM to fail.
(Whether this machine can run node mode at all is checked by the runner before any Spark
starts: :func:`jobs.nodedisk.probe_host`.)
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from blaze_errors import InputError
from jobs import (
    GENERATORS,
    JOB_NAMES,
    PROGRAMS,
    dataset_spec,
    load_job,
    parse_param_overrides,
    split_job,
)
from jobs.caching import MANAGER_POLICIES, POLICIES
from jobs.datagen import dataset_dir, estimated_bytes
from jobs.nodedisk import NodeDisk, parse_node
from jobs.run_one import HEAP_BYTES

__all__ = [
    "DEFAULT_POLICIES",
    "FULL",
    "QUICK",
    "BenchPlan",
    "parse_fraction",
    "parse_jobs",
    "parse_names",
    "required_disk_bytes",
]

DEFAULT_POLICIES = POLICIES
# event log + result files of one run (block updates are logged; generous upper bound)
RUN_OVERHEAD_BYTES = 64 << 20
# one run's driver JVM heap, its off-heap share and two Python workers with numpy
REQUIRED_MEMORY_BYTES = HEAP_BYTES + (1 << 30)


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
    generator: int = 1  # data shape (jobs.datagen.GENERATORS)
    node: NodeDisk | None = None  # node mode (jobs.nodedisk); None: this machine's disk as is
    resume: bool = False  # reuse the runs an earlier bench into out_dir finished (same cell)
    # the Blaze authors' setting: each manager policy's timed runs start from a profile its
    # own untimed run recorded on this fraction of the data (None: the manager learns online)
    profile_sample: float | None = None

    @property
    def programs(self) -> tuple[str, ...]:
        """The programs of the plan's jobs, in order (one footprint run each)."""
        return tuple(dict.fromkeys(split_job(j)[0] for j in self.jobs))

    @property
    def sizing_jobs(self) -> dict[str, tuple[str, ...]]:
        """program -> the jobs whose ``unlimited`` runs size it: its expert variant (whose
        peak sizes every run's storage memory) and, in node mode, each other variant the plan
        runs (the node's memory limit is the largest own peak: a program as commonly written
        caches more than the expert one, and a limit sized from the expert variant alone
        OOM-killed most of svdpp.common's and kmeans.common's runs in the cloud suite)."""
        sizing: dict[str, tuple[str, ...]] = {}
        for program in self.programs:
            variants = [f"{program}.expert"]
            if self.node is not None:
                variants += [j for j in self.jobs if split_job(j)[0] == program]
            sizing[program] = tuple(dict.fromkeys(variants))
        return sizing

    @property
    def profiled_policies(self) -> tuple[str, ...]:
        """The policies whose timed runs start from a recorded profile: the manager's, when
        the plan samples a profile (stock Spark has no manager to read one)."""
        if self.profile_sample is None:
            return ()
        return tuple(p for p in self.policies if p in MANAGER_POLICIES)

    @property
    def profile_scale(self) -> float | None:
        """The scale of the runs that record the profiles (None: no profile is recorded)."""
        return None if self.profile_sample is None else self.scale * self.profile_sample

    def datasets(self) -> list:
        """Every dataset the plan reads (the timed scale's and the profile sample's), in a
        fixed order: generated before any Spark application starts."""
        scales = [self.scale] + ([self.profile_scale] if self.profile_scale else [])
        specs = {
            dataset_spec(job, scale, self.seed, self.generator)
            for job in self.jobs
            for scale in scales
        }
        return sorted(specs, key=lambda spec: spec.key())

    @property
    def runs(self) -> int:
        """Spark applications the plan starts (the sizing and profile runs included)."""
        sizing = sum(len(jobs) for jobs in self.sizing_jobs.values())
        profiles = len(self.jobs) * len(self.profiled_policies)
        return sizing + profiles + len(self.jobs) * self.repeats * len(self.policies)


# `blaze bench --quick`: ONE costly program as commonly written (lr.common: parsed records
# cached though read once, per-iteration caches never unpersisted), chosen from the committed
# scale-0.8 run (benchmarks/results/bench_jobs_notes.md): there the program as written on
# stock Spark (`spark`) took 145 s, `mem_disk` 41 s with 683 MiB written, and `blaze_auto`
# (the manager deciding alone, switched on by configuration) 34 s with 43 MiB — both
# headline effects in one job. (`blaze`, which takes the program's calls as hints, wrote
# 653 MiB there.) Scale 0.16 is 0.30 of that run's data after lr's size factor 1.9: from the
# same figures about 2.5 minutes of work and start-up for the 3 timed applications plus the
# untimed footprint run on 2 idle cores.
QUICK = {
    "jobs": ("lr.common",),
    "policies": ("spark", "mem_disk", "blaze_auto"),
    "scale": 0.16,
    "repeats": 1,
}
# the full run: every program in both variants under every policy, once (see README: ~2 h)
FULL = {"jobs": JOB_NAMES, "policies": POLICIES, "scale": 1.0, "repeats": 1}


def parse_jobs(text: str | None) -> tuple[str, ...]:
    """``"lr.common,pagerank"`` -> jobs; a bare program name means both of its variants."""
    if text is None or text.strip().lower() == "all":
        return JOB_NAMES
    names: list[str] = []
    for name in (n.strip() for n in text.split(",")):
        if not name:
            continue
        if name in PROGRAMS:
            names.extend(j for j in JOB_NAMES if j.startswith(name + "."))
        elif name in JOB_NAMES:
            names.append(name)
        else:
            raise InputError(
                f"unknown job {name!r} (known: {', '.join(PROGRAMS)}, each as program or "
                "program.common / program.expert, or all)"
            )
    if not names:
        raise InputError(f"--jobs {text!r} names no job (known: {', '.join(PROGRAMS)}, or all)")
    return tuple(dict.fromkeys(names))


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
    for spec in plan.datasets():
        if not dataset_dir(plan.data_dir, spec).is_dir():
            needed += estimated_bytes(spec.kind, spec.scale, spec.generator)
    return needed + plan.runs * RUN_OVERHEAD_BYTES


def total_memory_bytes() -> int:
    """Physical memory of this machine (what every run's JVM and Python workers share)."""
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


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
    generator: int = 1,
    disk: str = "local",
    disk_mbps: float | None = None,
    page_cache_mib: float | None = None,
    app_memory_mib: float | None = None,
    resume: bool = False,
    profile_sample: float | None = None,
) -> BenchPlan:
    """Validate the user's choices (quick or full defaults for anything left out)."""
    defaults = QUICK if quick else FULL
    chosen_jobs = parse_jobs(jobs) if jobs is not None else defaults["jobs"]
    chosen_policies = (
        parse_names(policies, POLICIES, "policy") if policies is not None else defaults["policies"]
    )
    scale = defaults["scale"] if scale is None else scale
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise InputError(f"--scale {scale!r} must be a positive number")
    repeats = defaults["repeats"] if repeats is None else repeats
    if repeats < 1:
        raise InputError(f"--repeats {repeats} must be at least 1")
    overrides = parse_param_overrides(params)
    known = {key for job in chosen_jobs for key in load_job(job).params(1.0)}
    programs = ", ".join(dict.fromkeys(j.split(".")[0] for j in chosen_jobs))
    for key in overrides:
        if key not in known:
            raise InputError(
                f"--param {key!r} is no parameter of {programs} (known: {', '.join(sorted(known))})"
            )
    if generator not in GENERATORS:
        known = ", ".join(map(str, GENERATORS))
        raise InputError(f"--generator {generator!r} must be one of {known}")
    if profile_sample is not None and not (
        isinstance(profile_sample, (int, float))
        and math.isfinite(profile_sample)
        and 0 < profile_sample < 1
    ):
        raise InputError(
            f"--profile-sample {profile_sample!r} must be a fraction in (0, 1) of --scale: the "
            "profile is recorded on a sample of the data, smaller than the timed runs'"
        )
    machine = total_memory_bytes()
    node = parse_node(
        disk,
        mbps=disk_mbps,
        page_cache_mib=page_cache_mib,
        app_memory_mib=app_memory_mib,
        machine_bytes=machine,
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
        generator=generator,
        node=node,
        resume=resume,
        profile_sample=None if profile_sample is None else float(profile_sample),
    )
    measured = node is not None and node.app_memory_bytes is None
    if measured and node.page_cache_bytes + REQUIRED_MEMORY_BYTES >= machine:
        raise InputError(
            f"--page-cache {node.page_cache_bytes >> 20} MiB plus the about "
            f"{REQUIRED_MEMORY_BYTES / 2**30:.1f} GiB an application needs is above this "
            f"machine's memory ({machine / 2**30:.1f} GiB): the limit would never bind"
        )
    if machine < REQUIRED_MEMORY_BYTES:
        raise InputError(
            f"this machine has {machine / 2**30:.1f} GiB of memory; each benchmark run needs "
            f"about {REQUIRED_MEMORY_BYTES / 2**30:.1f} GiB (a {HEAP_BYTES >> 20} MiB driver "
            "heap plus Python workers)"
        )
    for target in (plan.data_dir, plan.out_dir):
        need, free = required_disk_bytes(plan), _free_bytes(target)
        if need > free:
            raise InputError(
                f"--scale {plan.scale:g} needs about {need / 2**30:.1f} GiB under {target} "
                f"but only {free / 2**30:.1f} GiB is free; lower --scale or pick another dir"
            )
    return plan
