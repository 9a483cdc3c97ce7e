"""The suite benchmark: every job under every policy, results committed under results/.

    python benchmarks/bench_jobs.py                      # full: scale 1.0, 3 repeats
    python benchmarks/bench_jobs.py --scale 0.5 --repeats 1 --memory 0.3

Runs the same runner as ``blaze bench`` and writes ``results/bench_jobs_results.json``,
``results/bench_jobs.md`` and ``results/bench_jobs_{time,disk}.png``. Speed figures are
ratios measured side by side in one run (policies interleaved), never absolute targets.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from jobs.plan import make_plan
from jobs.report import (
    build_results,
    markdown_results,
    plot_results,
    print_results,
    write_results,
)
from jobs.runner import run_plan

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs")
    parser.add_argument("--policies")
    parser.add_argument("--scale", type=float)
    parser.add_argument("--memory", default="0.3")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--param", action="append")
    parser.add_argument("--data-dir", default="data/bench")
    parser.add_argument("--work-dir", default="out/bench-suite")
    parser.add_argument("--stem", default="bench_jobs", help="results file name prefix")
    args = parser.parse_args(argv)
    plan = make_plan(
        jobs=args.jobs,
        policies=args.policies,
        scale=args.scale,
        memory=args.memory,
        repeats=args.repeats,
        data_dir=Path(args.data_dir),
        out_dir=Path(args.work_dir),
        params=args.param,
    )
    console = Console(width=150)

    def progress(message: str, record: dict | None) -> None:
        if record is not None:
            extra = f"{record.get('seconds', 0):.1f} s" if record.get("status") == "ok" else ""
            console.print(f"{message}: {record.get('status')} {extra} {record.get('error', '')}")

    outcome = run_plan(plan, progress)
    results = build_results(outcome)
    print_results(results, console)
    write_results(results, RESULTS, stem=args.stem)
    plot_results(results, RESULTS, stem=args.stem)
    (RESULTS / f"{args.stem}.md").write_text(markdown_results(results))
    return 1 if outcome.problems else 0


if __name__ == "__main__":
    sys.exit(main())
