"""Per job, the facts a suite run's "why" rests on, read from its committed results JSON.

    python benchmarks/why_evidence.py benchmarks/results/bench_jobs_cloud_results.json

Why: the notes of a suite run print each job's times and the targets; saying *where* a
difference comes from needs the manager's books of the same runs side by side — memory and
disk hits, misses, partitions written to disk and never read (dead writes), the decisions by
rule — and whether a node-mode run had to be run again without its memory limit (such a run's
time is not a squeezed node's). This prints that as one Markdown table per job, for the
policies that write to disk and the two bounds (``unlimited``, ``none``), in the order of
the bench's own policy table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from jobs.caching import POLICIES

# the bench's policies that write to disk, with the ample-memory bound first (the two stock
# memory-only ones add nothing to a "why" about disk)
SHOWN = ("unlimited", *(p for p in POLICIES if p not in {"unlimited", "spark", "mem_only"}))
MIB = 2**20


def _rule_counts(report: dict) -> str:
    reasons = report.get("evictions_by_reason") or {}
    return ", ".join(f"{name} {count}" for name, count in sorted(reasons.items())) or "-"


def _row(run: dict) -> list[str]:
    report = run.get("manager_report") or {}
    node = run.get("node") or {}

    def count(key: str) -> str:
        value = report.get(key)
        return "-" if value is None else str(value)

    return [
        run["policy"],
        f"{run['seconds']:.1f}",
        f"{(run.get('disk_bytes_written') or 0) / MIB:.1f}",
        count("memory_hits"),
        count("disk_hits"),
        count("misses"),
        str(run.get("recomputed_partitions", "-")),
        "-" if run.get("dead_writes") is None else str(run["dead_writes"]),
        _rule_counts(report),
        "yes" if node.get("unlimited_rerun") else "",
    ]


HEADER = [
    "policy",
    "s",
    "disk MiB",
    "mem hits",
    "disk hits",
    "misses",
    "recomputed",
    "dead writes",
    "evictions by reason",
    "rerun unlimited",
]


def evidence(results: dict) -> str:
    """Markdown: one table per job, the policies in ``SHOWN`` order (first repeat)."""
    by_job: dict[str, dict[str, dict]] = defaultdict(dict)
    for run in results["runs"]:
        if run.get("status") == "ok":
            by_job[run["job"]].setdefault(run["policy"], run)
    lines: list[str] = []
    for job in sorted(by_job):
        lines += [f"### {job}", "", "| " + " | ".join(HEADER) + " |"]
        lines.append("|" + "---|" * len(HEADER))
        for policy in SHOWN:
            if policy in by_job[job]:
                lines.append("| " + " | ".join(_row(by_job[job][policy])) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a suite run's *_results.json")
    args = parser.parse_args(argv)
    try:
        results = json.loads(args.results.read_text())
        runs = results["runs"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(
            f"why_evidence: cannot read suite results from {args.results}: {exc}", file=sys.stderr
        )
        return 2
    if not runs:
        print(f"why_evidence: {args.results} holds no runs", file=sys.stderr)
        return 2
    print(evidence(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
