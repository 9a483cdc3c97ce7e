"""``blaze bench``: run the iterative jobs under each cache policy and compare them.

Examples::

    blaze bench --quick               # lr.common under spark, mem_disk, blaze_auto
    blaze bench --jobs pagerank,kmeans.common --policies spark,blaze --scale 0.5 --memory 30%
    blaze bench --disk cloud          # each application on a 200 MB/s disk, 64 MiB page cache
    blaze bench --generator 2         # every job on the second data shapes
    blaze bench --profile-sample 0.25 # manager policies start from a profile of a sample
    blaze bench                       # the full suite: 12 jobs x 9 policies, about 3.4 hours

A job is a program in one variant (``lr.common``, ``lr.expert``); a bare program name means
both variants.

Exits 1 when any run failed or any result disagreed with DuckDB or with the ``none`` run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs import GENERATORS, PROGRAMS
from jobs.caching import POLICIES
from jobs.nodedisk import CGROUP_ROOT, DEFAULT_PAGE_CACHE_MIB, DISK_MODES, POINTS

__all__ = ["register"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``blaze bench`` (also used by ``benchmarks/bench_jobs.py``)."""
    parser.add_argument(
        "--jobs",
        help=f"comma-separated programs ({', '.join(PROGRAMS)}) or program.common / "
        "program.expert, or all",
    )
    parser.add_argument("--policies", help=f"comma-separated, or all ({', '.join(POLICIES)})")
    parser.add_argument(
        "--scale", type=float, help="data scale factor (default 1.0: runs of about a minute)"
    )
    parser.add_argument(
        "--memory",
        default="0.3",
        help="storage memory as a fraction of each job's cached footprint, in (0, 1] "
        "(e.g. 0.3 or 30%%; default 0.3)",
    )
    parser.add_argument("--repeats", type=int, help="runs per (job, policy); median reported")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="lr.common under spark, mem_disk and blaze_auto (3 timed Spark applications)",
    )
    parser.add_argument("--seed", type=int, default=42, help="data generator seed")
    parser.add_argument(
        "--generator",
        type=int,
        choices=tuple(GENERATORS),
        default=1,
        help="data shapes: 1 (the suite's first) or 2 (the second, jobs/datagen_second.py)",
    )
    points = ", ".join(f"{name} {mbps} MB/s" for name, mbps in POINTS.items())
    parser.add_argument(
        "--disk",
        choices=DISK_MODES,
        default="local",
        help="local: this machine's disk and page cache as they are; node: each application "
        "in cgroups with a memory limit that counts the page cache and a throttled disk "
        f"(--disk-mbps), or a named node disk ({points}); needs root and cgroup v1",
    )
    parser.add_argument(
        "--disk-mbps", type=float, help="node mode: the disk's read and write MB/s (10^6 B/s)"
    )
    parser.add_argument(
        "--page-cache",
        type=float,
        metavar="MIB",
        help="node mode: page cache an application may hold above its own memory "
        f"(default {DEFAULT_PAGE_CACHE_MIB} MiB)",
    )
    parser.add_argument(
        "--app-memory",
        type=float,
        metavar="MIB",
        help="node mode: each application's own memory, stated instead of measured by the "
        "program's sizing run (memory limit = this + --page-cache)",
    )
    parser.add_argument(
        "--cgroup-root",
        default=str(CGROUP_ROOT),
        help=f"node mode: where the cgroup v1 hierarchies are mounted (default {CGROUP_ROOT})",
    )
    parser.add_argument(
        "--param",
        action="append",
        metavar="NAME=NUMBER",
        help="override a job parameter, e.g. --param iterations=5 (repeatable)",
    )
    parser.add_argument(
        "--profile-sample",
        type=float,
        metavar="FRACTION",
        help="the Blaze authors' setting: before the timed runs, each manager policy records "
        "its profile of each job on this fraction of the data (e.g. 0.25), and its timed runs "
        "start from it (default: no profile; the manager learns online)",
    )
    parser.add_argument("--data-dir", default="data/bench", help="generated data (reused)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse every run an earlier bench into the same --out finished with the very "
        "same command (job, policy, scale, seed, generator, storage, node disk); run the rest "
        "(a full suite longer than one sitting, in parts)",
    )
    parser.add_argument("--out", default="out/bench", help="results JSON, plots, run logs")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run the iterative jobs under each cache policy (verified against DuckDB)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run_bench)


def run_bench(
    args: argparse.Namespace, results_dir: Path | None = None, stem: str = "bench"
) -> int:
    """Run the plan ``args`` describe; results JSON and plots go to ``results_dir`` (default:
    ``--out``) as ``{stem}_*``, plus ``{stem}.md`` when a ``results_dir`` is given."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from jobs.nodedisk import node_json, probe_host
    from jobs.plan import make_plan
    from jobs.report import (
        build_results,
        markdown_results,
        plot_results,
        print_results,
        setup_lines,
        write_results,
    )
    from jobs.runner import local_dir, run_plan

    plan = make_plan(
        jobs=args.jobs,
        policies=args.policies,
        scale=args.scale,
        memory=args.memory,
        repeats=args.repeats,
        data_dir=Path(args.data_dir),
        out_dir=Path(args.out),
        quick=args.quick,
        seed=args.seed,
        params=args.param,
        generator=args.generator,
        disk=args.disk,
        disk_mbps=args.disk_mbps,
        page_cache_mib=args.page_cache,
        app_memory_mib=args.app_memory,
        resume=args.resume,
        profile_sample=args.profile_sample,
    )
    # node mode: can this machine do it? one line and exit 2 if not, before any output or Spark
    host = probe_host(local_dir(plan), Path(args.cgroup_root)) if plan.node else None
    # a log file or pipe gets a wide table instead of rich's 80-column fallback
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(
        f"[bold]blaze bench[/]: jobs {', '.join(plan.jobs)}; policies "
        f"{', '.join(plan.policies)}; scale {plan.scale:g}; storage {plan.memory_fraction:.0%}"
        f" of footprint; {plan.repeats} repeat(s); {plan.runs} Spark applications"
    )
    node = node_json(plan.node, host) if plan.node else None
    shown = {
        "generator": plan.generator,
        "scale": plan.scale,
        "profile_sample": plan.profile_sample,
    }
    for line in setup_lines(shown, node):
        console.print(f"  {line}")
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("starting", total=plan.runs)

        def on_progress(message: str, record: dict | None) -> None:
            if record is None:
                progress.update(task, description=message)
                return
            progress.advance(task)
            status = record.get("status")
            if status == "ok":
                progress.console.print(
                    f"  {message}: {record['seconds']:.1f} s"
                    + ("" if record.get("verified", True) else " [red]unverified[/]")
                )
            else:
                progress.console.print(f"  {message}: [bold red]{status}[/] {record.get('error')}")

        outcome = run_plan(plan, on_progress, node_host=host)
    results = build_results(outcome)
    print_results(results, console)
    json_path = write_results(results, results_dir or plan.out_dir, stem)
    plots = plot_results(results, results_dir or plan.out_dir, stem)
    if results_dir is not None:
        (results_dir / f"{stem}.md").write_text(markdown_results(results))
    console.print(f"results: {json_path}; plots: {', '.join(str(p) for p in plots)}")
    if outcome.problems:
        console.print(f"[bold red]{len(outcome.problems)} problem(s): the run FAILED[/]")
        return 1
    return 0
