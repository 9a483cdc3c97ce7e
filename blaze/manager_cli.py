"""``blaze explain FILE``: the cache manager's decisions of a finished run, as a table.

FILE is a decision log (written at detach to ``spark.blaze.explain.path``) or the event log
next to which the manager wrote one. Anything else is one error line (exit 2).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

__all__ = ["register"]

# F = F_pending (stages of submitted jobs) + F_later (reads predicted for later jobs);
# hit = what one read of the stored block costs from memory / from disk
COLUMNS = (
    "seq",
    "action",
    "rdd",
    "split",
    "F",
    "F_pending",
    "F_later",
    "R",
    "W",
    "Rd",
    "hit_memory",
    "hit_disk",
    "cost",
    "size",
    "rule",
)


def _explain(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from blaze.explain import read_decision_log

    header, entries = read_decision_log(args.path)
    if args.rdd is not None:
        entries = [e for e in entries if e.get("rdd") == args.rdd]
    if args.action:
        entries = [e for e in entries if e.get("action") == args.action]
    if args.json:
        print(json.dumps({"header": header, "decisions": entries}, indent=1, sort_keys=True))
        return 0
    console = Console()
    counts = Counter(e.get("action") for e in entries)
    console.print(
        f"[bold]{header.get('app_name')}[/bold] ({header.get('app_id')}), policy "
        f"{header.get('policy')}: {len(entries)} decisions shown"
        + (f", {header.get('fell_off')} older ones fell off" if header.get("fell_off") else "")
    )
    console.print("  ".join(f"{action} {n}" for action, n in sorted(counts.items())))
    table = Table(show_lines=False)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("action", "rule") else "right")
    table.add_column("victims")
    shown = entries[-args.limit :] if args.limit else entries
    for entry in shown:
        cells = ["" if entry.get(c) is None else str(entry.get(c)) for c in COLUMNS]
        victims = entry.get("victims") or []
        cells.append(", ".join(f"{r}/{s}->{w}" for r, s, w in victims))
        table.add_row(*cells)
    console.print(table)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain", help="show the cache manager's decisions of a finished run"
    )
    parser.add_argument("path", help="a decision log, or the event log it was written next to")
    parser.add_argument("--rdd", type=int, help="only decisions about this RDD id")
    parser.add_argument("--action", help="only this action (admit, spill, drop, ...)")
    parser.add_argument("--limit", type=int, default=200, help="the last N decisions (0: all)")
    parser.add_argument("--json", action="store_true", help="print the decisions as JSON")
    parser.set_defaults(func=_explain)
