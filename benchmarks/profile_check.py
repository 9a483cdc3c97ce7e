"""Blaze with a profile of a sampled run (the paper's setting) against Blaze without one and
MEMORY_AND_DISK: time, disk bytes and dead writes per job.

Usage: python benchmarks/profile_check.py --jobs cc.common,pagerank.common [--generator 1]
       [--scale 1.0] [--profile-scale 0.25] [--memory 0.3] [--repeats 2] [--out DIR]

Why: without a profile the manager learns each site's later reads as the program runs, and a
dataset the program caches and reads in one job only (``cc.common``'s parsed edge list) looks,
in that job, like one read by every job: it is written to disk and never read back (a dead
write). The Blaze authors profile the application on a sample of its input first; the
profile (``spark.blaze.profile.mode=record``, then ``use``) tells the manager how many uses
each site's datasets have.

Per job, untimed first: the ``expert`` variant under ``unlimited`` measures the footprint (the
suite's rule: storage = ``--memory`` × footprint), and a ``blaze`` run at ``--profile-scale``
records the profile. Then ``--repeats`` rounds of the timed runs — ``blaze``, ``blaze`` with
the profile, ``mem_disk`` — in an order rotated each round; each run is its own Spark
application (``python -m jobs.run_one``), and every run's answer must agree with the first
run's (``jobs.verify.compare``, as the suite's runner checks its runs against each other). Writes
profile_check_g<generator>.json/.md/.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
STEM = "profile_check"
SIDES = ("blaze", "blaze_profiled", "mem_disk")


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def run_one(args, job: str, policy: str, out: Path, *, scale: float, storage=None, extra=()):
    cmd = [sys.executable, "-m", "jobs.run_one", "--job", job, "--policy", policy]
    cmd += ["--scale", repr(scale), "--seed", "42", "--generator", str(args.generator)]
    cmd += ["--data-dir", str(args.data_dir), "--out", str(out), *extra]
    if storage is not None:
        cmd += ["--storage-bytes", str(storage)]
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    record = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    if proc.returncode != 0 or record.get("status") != "ok":
        tail = "\n".join(proc.stderr.splitlines()[-12:])
        raise SystemExit(f"{job}/{policy} failed (exit {proc.returncode}):\n{tail}")
    return record


def measure(args, job: str) -> dict:
    from jobs import split_job
    from jobs.result import JobResult
    from jobs.runner import squeezed_storage
    from jobs.verify import compare

    base = args.out / job.replace(".", "_")
    program, _ = split_job(job)
    footprint = run_one(
        args, f"{program}.expert", "unlimited", base / "footprint", scale=args.scale
    )
    storage = squeezed_storage(job, int(footprint["peak_memory_bytes"] or 0), args.memory)
    profile = base / "profile.json"
    profile.unlink(missing_ok=True)
    record_flags = ("--profile-mode", "record", "--profile-path", str(profile))
    run_one(args, job, "blaze", base / "record", scale=args.profile_scale, extra=record_flags)
    use_flags = ("--profile-mode", "use", "--profile-path", str(profile))
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    reference = None
    for rnd in range(args.repeats):
        order = SIDES[rnd % len(SIDES) :] + SIDES[: rnd % len(SIDES)]
        for side in order:
            out = base / f"{side}-r{rnd}"
            policy = "mem_disk" if side == "mem_disk" else "blaze"
            extra = use_flags if side == "blaze_profiled" else ()
            rec = run_one(args, job, policy, out, scale=args.scale, storage=storage, extra=extra)
            got = JobResult.load(out / "result.npz")
            if reference is None:
                reference = got
            elif problems := compare(got, reference, what="the first run"):
                raise SystemExit(f"{job}/{side}: " + "; ".join(problems))
            runs[side].append(
                {
                    "seconds": rec["seconds"],
                    "disk_bytes_written": rec["disk_bytes_written"],
                    "dead_writes": rec.get("dead_writes"),
                    "memory_exits": rec["memory_exits"],
                }
            )
    return {"storage_bytes": storage, "runs": runs}


def median(rows: list[dict], key: str):
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.median(values) if values else None


def write(args, started: str, before: str, after: str, results: dict) -> None:
    lines = [
        f"# Blaze with a profile of a sampled run ({STEM})",
        "",
        f"Started {started} UTC; load before {before}, after {after}; generator "
        f"{args.generator}, scale {args.scale}, profile recorded at scale {args.profile_scale}, "
        f"storage {args.memory:g} × footprint, {args.repeats} repeat(s), medians.",
        "",
        "| job | side | s | disk MiB written | dead writes | memory exits | s / mem_disk |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for job, result in results.items():
        runs = result["runs"]
        md_s = median(runs["mem_disk"], "seconds")
        for side in SIDES:
            s = median(runs[side], "seconds")
            disk = median(runs[side], "disk_bytes_written") / 2**20
            dead = median(runs[side], "dead_writes")
            dead_text = "-" if dead is None else f"{dead:g}"
            exits = median(runs[side], "memory_exits")
            lines.append(
                f"| {job} | {side} | {s:.1f} | {disk:.1f} | {dead_text} | {exits:g} "
                f"| {s / md_s:.3f} |"
            )
    lines += ["", "(mem_disk is stock Spark: the manager's dead-write count is not kept there.)"]
    args.out.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": STEM,
        "started_utc": started,
        "load_before": before,
        "load_after": after,
        "generator": args.generator,
        "scale": args.scale,
        "profile_scale": args.profile_scale,
        "memory": args.memory,
        "repeats": args.repeats,
        "jobs": results,
    }
    (args.results / f"{STEM}_g{args.generator}.json").write_text(json.dumps(payload, indent=1))
    (args.results / f"{STEM}_g{args.generator}.md").write_text("\n".join(lines) + "\n")
    _plot(results, args.results / f"{STEM}_g{args.generator}.png")
    print("\n".join(lines))


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jobs = list(results)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    width = 0.8 / len(SIDES)
    for i, side in enumerate(SIDES):
        xs = [j + i * width for j in range(len(jobs))]
        secs = [median(results[job]["runs"][side], "seconds") for job in jobs]
        disk = [median(results[job]["runs"][side], "disk_bytes_written") / 2**20 for job in jobs]
        axes[0].bar(xs, secs, width, label=side)
        axes[1].bar(xs, disk, width, label=side)
    for ax, title in zip(axes, ("time (s)", "disk MiB written"), strict=True):
        ax.set_xticks([j + width for j in range(len(jobs))], jobs, fontsize=8)
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", required=True, help="comma-separated, e.g. cc.common")
    parser.add_argument("--generator", type=int, default=1, choices=(1, 2))
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--profile-scale", type=float, default=0.25)
    parser.add_argument("--memory", type=float, default=0.3, help="storage / footprint")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / STEM)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not 0 < args.profile_scale <= args.scale:
        parser.error(f"--profile-scale must be in (0, --scale], got {args.profile_scale}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    before = load()
    results = {job: measure(args, job) for job in args.jobs.split(",") if job}
    write(args, started, before, load(), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
