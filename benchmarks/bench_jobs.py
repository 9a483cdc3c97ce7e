"""The suite benchmark: every job under every policy, results committed under results/.

    python benchmarks/bench_jobs.py                      # full: scale 1.0, ~3.4 hours on 2 cores
    python benchmarks/bench_jobs.py --scale 0.02 --jobs lr.common --policies spark,unlimited
    python benchmarks/bench_jobs.py --disk cloud --stem bench_jobs_cloud   # node mode, 200 MB/s
    python benchmarks/bench_jobs.py --generator 2 --stem bench_jobs_g2     # the second shapes
    python benchmarks/bench_jobs.py --profile-sample 0.25   # manager policies start from a
                                                            # profile of a quarter of the data
    # a run longer than a session, a few programs at a time, then combined (same code, plan):
    python benchmarks/bench_jobs.py --disk cloud --jobs pagerank,cc --stem cloud_part1 \
        --results benchmarks/results/parts
    python benchmarks/bench_jobs.py --stem bench_jobs_cloud \
        --combine benchmarks/results/parts/cloud_part*_results.json

``blaze bench`` with the same options (run logs under ``--out``, default
``out/bench-suite``), writing ``results/bench_jobs_results.json``, ``results/bench_jobs.md``,
``results/bench_jobs_{time,disk}.png`` and ``results/bench_jobs_notes.md``: the facts of the
run (command, commit, date, machine load before and after, wall time), each job's spread and
where its time went, and the targets met or missed — the analysis of *why* is added by
whoever reads them. Speed figures are ratios measured side by side in one run (policies
interleaved), never absolute targets. No machine paths are written.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from blaze_errors import BlazeError, InputError
from jobs.cli import add_arguments, run_bench
from jobs.report import applications, write_results

RESULTS = Path(__file__).resolve().parent / "results"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _variant_text(job: str) -> str:
    """The program docstring's bullet for the job's variant: what it caches and leaves."""
    from jobs import load_job

    program, _, variant = job.partition(".")
    lines = (load_job(program).__doc__ or "").splitlines()
    marker = f"* ``{variant}``:"
    for i, line in enumerate(lines):
        if line.startswith(marker):
            text = [line[len(marker) :].strip()]
            for more in lines[i + 1 :]:
                if not more.startswith("  ") or not more.strip():
                    break
                text.append(more.strip())
            return " ".join(text)
    return ""


def run_facts(
    argv: list[str], started: str, load_before: str, wall: float, applications: int
) -> dict:
    """How a run was made, as its notes and a combined run's notes state it."""
    shown = " ".join(Path(a).name if os.path.isabs(a) else a for a in argv)  # no machine paths
    return {
        "command": f"python benchmarks/bench_jobs.py {shown}".rstrip(),
        "commit": _commit(),
        "started_utc": started,
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": _load(),
        "wall_seconds": wall,
        "applications": applications,
    }


def _facts_line(facts: dict) -> str:
    return (
        f"Command: `{facts['command']}`  \n"
        f"Commit {facts['commit']}, started {facts['started_utc']} UTC, {facts['cores']} cores,"
        f" load average (1/5/15 min) {facts['load_before']} before and {facts['load_after']} "
        f"after; wall {facts['wall_seconds'] / 60:.1f} min for {facts['applications']} Spark "
        "applications."
    )


def notes(results: dict, facts: dict, stem: str = "bench_jobs") -> str:
    """The run's facts as Markdown: how it was made (each part's, for a combined run), each
    job's spread, the targets."""
    from jobs.report import headline_lines, repeats_text, setup_lines

    plan = results["plan"]
    made = [_facts_line(facts)]
    if results.get("parts"):
        made.append(f"Combined from {len(results['parts'])} parts, each run alone:")
        made += [
            f"- {', '.join(part['jobs'])}"
            + (
                f" (repeats of part {', '.join(map(str, part['repeat_of']))}: "
                f"{', '.join(part['policies'])}, {part['repeats']} repeats)"
                if "repeat_of" in part
                else ""
            )
            + ": "
            + (_facts_line(part["facts"]) if "facts" in part else "(no facts recorded)")
            for part in results["parts"]
        ]
    lines = [
        "# The suite benchmark: facts of the committed run",
        "",
        *made,
        f"Scale {plan['scale']:g}, storage {plan['memory_fraction']:.0%} of each program's "
        f"footprint, {repeats_text(results)}. Table: `{stem}.md`; every run's record: "
        f"`{stem}_results.json`.",
        "",
        *(f"- {line}" for line in setup_lines(plan, results.get("node"))),
        "",
        "## Spread per job (slowest stock-Spark policy / unlimited)",
        "",
        "| job | spread | slowest | label | unlimited s | start-up share |",
        "|---|---:|---|---|---:|---:|",
    ]
    for job, spread in results["spreads"].items():
        unlimited = [
            r
            for r in results["runs"]
            if r["job"] == job and r["policy"] == "unlimited" and r.get("status") == "ok"
        ]
        seconds = startup = None
        if unlimited:
            seconds = sorted(r["seconds"] for r in unlimited)[len(unlimited) // 2]
            startup = unlimited[0].get("startup_seconds")
        share = f"{startup / (startup + seconds):.0%}" if seconds and startup else "-"
        value = "-" if spread["spread"] is None else f"{spread['spread']:.2f}×"
        shown = "-" if seconds is None else f"{seconds:.1f}"
        lines.append(
            f"| {job} | {value} | {spread['slowest'] or '-'} | {spread['label']} | {shown} "
            f"| {share} |"
        )
    lines += ["", "## What each job caches (from the programs)", ""]
    lines += [f"- `{job}`: {_variant_text(job)}" for job in results["spreads"]]
    if results.get("node"):
        lines += _node_table(results)
    if heads := headline_lines(results):
        lines += ["", "## Blaze against the program as written and against mem_disk", ""]
        lines += [f"- {line}" for line in heads]
    lines += ["", "## Targets", "", "| target | wanted | measured | met | over |"]
    lines.append("|---|---|---:|---|---|")
    for item in results["targets"].values():
        value = "-" if item["value"] is None else f"{item['value']:.3f}"
        met = {True: "met", False: "**missed**", None: "not measured"}[item["met"]]
        over = ", ".join(item["jobs"]) or "no job"
        lines.append(f"| {item['description']} | {item['target']} | {value} | {met} | {over} |")
    if results["problems"]:
        lines += ["", "## Problems", "", *(f"- {p}" for p in results["problems"])]
    lines += ["", "## Why (to be written by whoever reads this run)", ""]
    return "\n".join(lines) + "\n"


def _node_table(results: dict) -> list[str]:
    """Node mode: what each application's groups saw (the page cache it really had, the bytes
    the device served) — where a node-mode difference between policies comes from."""
    mib = 2**20
    lines = [
        "",
        "## Node groups per run (own memory, page cache, device I/O)",
        "",
        "| job | policy | limit MiB | own peak MiB | page cache peak MiB | limit hits "
        "| device read MiB | device write MiB | OOM kills |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in results["footprint_runs"] + results["runs"]:
        seen = run.get("node") or {}
        if not seen:
            continue
        limit = seen.get("memory_limit_bytes")
        policy = run["policy"] + (" (sizing)" if seen.get("sizing") else "")
        if seen.get("unlimited_rerun"):  # the first attempt's OOM kill is in the record
            policy += " (OOM-killed at the limit; run again without a memory limit)"
        cells = [
            "-" if limit is None else f"{limit / mib:.0f}",
            f"{seen.get('own_peak_bytes', 0) / mib:.0f}",
            f"{seen.get('page_cache_peak_bytes', 0) / mib:.0f}",
            str(seen.get("limit_hits", "-")),
            f"{seen.get('device_read_bytes', 0) / mib:.1f}",
            f"{seen.get('device_write_bytes', 0) / mib:.1f}",
            str(seen.get("oom_kills", "-")),
        ]
        lines.append(f"| {run['job']} | {policy} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--stem", default="bench_jobs", help="results file name prefix")
    parser.add_argument("--results", default=str(RESULTS), help="where the results go")
    parser.add_argument(
        "--combine",
        nargs="+",
        metavar="PART_RESULTS_JSON",
        help="run nothing: combine the results of parts (disjoint programs, same code and "
        "plan) into one suite result under --stem",
    )
    parser.set_defaults(out="out/bench-suite")
    args = parser.parse_args(argv)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    load_before, clock = _load(), time.perf_counter()
    results_dir = Path(args.results)
    try:
        if args.combine:
            return _combine(args.combine, results_dir, args.stem, argv, started, load_before)
        code = run_bench(args, results_dir=results_dir, stem=args.stem)
    except BlazeError as exc:  # bad input, or a machine that cannot run node mode: one line
        print(f"bench_jobs: error: {exc}", file=sys.stderr)
        return 2
    results_path = results_dir / f"{args.stem}_results.json"
    if results_path.is_file():
        results = json.loads(results_path.read_text())
        facts = run_facts(
            argv, started, load_before, time.perf_counter() - clock, applications(results)
        )
        results["facts"] = facts  # a later combined run states how each part was made
        write_results(results, results_dir, args.stem)
        (results_dir / f"{args.stem}_notes.md").write_text(notes(results, facts, args.stem))
    return code


def _combine(
    paths: list[str], results_dir: Path, stem: str, argv: list[str], started: str, load: str
) -> int:
    from jobs.report import combine_parts, markdown_results, plot_results

    parts = []
    for path in paths:
        try:
            parts.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read part {Path(path).name}: {exc}") from None
    # in the order they were made (each part's facts say when it started): a repeat part,
    # made with --resume into an earlier part's --out, then follows the part it repeats
    # however the paths are given (a shell glob sorts ``P_repeats`` before ``P_results``)
    parts.sort(key=lambda part: part.get("facts", {}).get("started_utc", ""))
    results = combine_parts(parts)
    write_results(results, results_dir, stem)
    plot_results(results, results_dir, stem)
    (results_dir / f"{stem}.md").write_text(markdown_results(results))
    facts = run_facts(argv, started, load, results["wall_seconds"], applications(results))
    (results_dir / f"{stem}_notes.md").write_text(notes(results, facts, stem))
    print(f"combined {len(parts)} parts ({len(results['runs'])} timed runs) into {stem}")
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
