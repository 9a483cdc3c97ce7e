"""``blaze lineage APP_EVENT_LOG``: the lineage DAG of a past run, as tables for a person.

Shows the run's size (jobs, stages run and skipped, tasks, RDDs), the RDDs grouped by call
site, and the RDDs that were reused or cached with their reuse counts and block sizes. A path
that is missing or not an event log is one line on stderr and exit status 2 (``blaze_cli``).
"""

from __future__ import annotations

import argparse
import re

from rich.console import Console
from rich.table import Table

from lineage.dag import LineageDag
from lineage.summary import DagSummary, summarize

__all__ = ["register", "render", "run"]

_PATH_IN_SITE = re.compile(r" at (?:.*/)?([^/]+:\d+)$")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lineage",
        help="print the lineage DAG summary of a Spark event log",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "event_log",
        metavar="APP_EVENT_LOG",
        help="an event log file or a rolling eventlog_v2_* directory (zstd or plain)",
    )
    parser.add_argument(
        "--top", type=_positive_int, default=25, help="RDDs to list in the reuse table (default 25)"
    )
    parser.add_argument("--all", action="store_true", help="list every RDD, not only reused")
    parser.add_argument(
        "--full-paths", action="store_true", help="show call sites with their full file paths"
    )
    parser.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    dag = LineageDag.from_event_log(args.event_log)
    console = Console()
    if not console.is_terminal:  # a file or pipe: never wrap rows (one RDD per line)
        console = Console(width=240)
    elif console.width < 120:
        console = Console(width=120)
    render(summarize(dag), console, top=args.top, show_all=args.all, full_paths=args.full_paths)
    stats = dag.log_stats
    if stats.skipped:
        console.print(
            f"[yellow]warning:[/] {stats.skipped} malformed line(s) skipped; "
            f"first: {stats.first_skip}"
        )
    return 0


def _size(n: int) -> str:
    if n == 0:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _site(call_site: str, full_paths: bool) -> str:
    return call_site if full_paths else _PATH_IN_SITE.sub(r" at \1", call_site)


def render(
    summary: DagSummary,
    console: Console,
    *,
    top: int = 25,
    show_all: bool = False,
    full_paths: bool = False,
) -> None:
    """Print the three parts of the summary to ``console``."""
    console.print(
        f"[bold]{summary.jobs}[/] jobs, [bold]{summary.stages_run}[/] stages run "
        f"({summary.stages_skipped} skipped: shuffle output reused), "
        f"[bold]{summary.tasks}[/] tasks, [bold]{summary.rdds}[/] RDDs"
    )

    sites = Table(title="RDDs by call site", title_justify="left")
    for column, justify in (
        ("call site", "left"),
        ("RDDs", "right"),
        ("RDD ids", "left"),
        ("cached", "right"),
        ("max reuse", "right"),
        ("memory", "right"),
        ("disk", "right"),
    ):
        sites.add_column(column, justify=justify)
    for row in summary.call_sites:
        ids = ", ".join(map(str, row.rdd_ids[:8])) + (" …" if len(row.rdd_ids) > 8 else "")
        sites.add_row(
            _site(row.call_site, full_paths),
            str(len(row.rdd_ids)),
            ids,
            str(row.cached_rdds),
            str(row.max_reuse),
            _size(row.memory_bytes),
            _size(row.disk_bytes),
        )
    console.print(sites)

    rows = [
        r
        for r in summary.rdd_rows
        if show_all or r.reuse_count > 0 or r.storage_level != "NONE" or r.cached_partitions
    ]
    title = "All RDDs" if show_all else "Reused or cached RDDs"
    table = Table(title=f"{title} (most reused first)", title_justify="left")
    for column, justify in (
        ("id", "right"),
        ("name", "left"),
        ("call site", "left"),
        ("parents", "left"),
        ("parts", "right"),
        ("level", "left"),
        ("stages", "right"),
        ("jobs", "right"),
        ("reuse", "right"),
        ("cached parts", "right"),
        ("memory", "right"),
        ("disk", "right"),
        ("compute ms", "right"),
    ):
        table.add_column(column, justify=justify)
    for row in rows[:top]:
        table.add_row(
            str(row.rdd_id),
            row.name,
            _site(row.call_site, full_paths),
            ", ".join(map(str, row.parent_ids)) or "-",
            str(row.num_partitions),
            row.storage_level,
            str(row.stages),
            str(row.jobs),
            str(row.reuse_count),
            f"{row.cached_partitions}/{row.num_partitions}",
            _size(row.memory_bytes),
            _size(row.disk_bytes),
            str(row.compute_ms) if row.compute_ms else "-",
        )
    console.print(table)
    if len(rows) > top:
        console.print(f"({len(rows) - top} more; use --top or --all)")
