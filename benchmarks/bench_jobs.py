"""The suite benchmark: every job under every policy, results committed under results/.

    python benchmarks/bench_jobs.py                      # full: scale 1.0, 3 repeats
    python benchmarks/bench_jobs.py --scale 0.5 --repeats 1 --memory 0.3

``blaze bench`` with the same options (run logs under ``--out``, default
``out/bench-suite``), writing ``results/bench_jobs_results.json``, ``results/bench_jobs.md``
and ``results/bench_jobs_{time,disk}.png``. Speed figures are ratios measured side by side in
one run (policies interleaved), never absolute targets.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs.cli import add_arguments, run_bench

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--stem", default="bench_jobs", help="results file name prefix")
    parser.set_defaults(out="out/bench-suite")
    args = parser.parse_args(argv)
    return run_bench(args, results_dir=RESULTS, stem=args.stem)


if __name__ == "__main__":
    sys.exit(main())
