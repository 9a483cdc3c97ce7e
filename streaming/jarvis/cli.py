"""``blaze stream jarvis``: a short Jarvis demo — agents, a budget change, Spark finishing.

Starts N agent processes with a constrained CPU budget, halves the budget a third of the way
through and raises it two thirds in, with Spark finishing the query; prints sustained
throughput, bytes to Spark, convergence and latency per strategy. Everything it starts stops
by itself; nothing listens on a network port.
"""

from __future__ import annotations

import argparse

__all__ = ["register"]

_STRATEGIES = ("jarvis", "all_sp", "filter_src", "best_op")


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be positive")
        return value

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("jarvis", help="adaptive near-data processing demo")
    parser.add_argument("--agents", type=_positive(int), default=2, help="data sources (N)")
    parser.add_argument("--duration", type=_positive(float), default=18.0, help="seconds/run")
    parser.add_argument(
        "--strategy",
        choices=(*_STRATEGIES, "all"),
        default="all",
        help="jarvis, a baseline, or all of them side by side",
    )
    parser.add_argument("--cpu", type=_positive(float), default=0.02, help="CPU budget (cores)")
    parser.add_argument(
        "--bandwidth", type=_positive(float), default=3e6, help="uplink per agent (bytes/s)"
    )
    parser.add_argument("--no-spark", action="store_true", help="agents only, no Spark query")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from streaming.jarvis.harness import RunSpec, run_experiment
    from streaming.jarvis.report import summarise

    strategies = _STRATEGIES if args.strategy == "all" else (args.strategy,)
    schedule = [(args.duration / 3, args.cpu / 2), (2 * args.duration / 3, args.cpu * 1.5)]
    spark = None
    if not args.no_spark:
        spark = args.spark_session({"spark.sql.shuffle.partitions": "2"}, app_name="jarvis-demo")
    console = Console()
    table = Table(title=f"Jarvis demo: {args.agents} agents, budget schedule {schedule}")
    for column in ("strategy", "rec/s per phase", "MB/s to Spark", "converge (s)", "latency (s)"):
        table.add_column(column)
    try:
        for strategy in strategies:
            spec = RunSpec(strategy, args.agents, args.duration, args.cpu, args.bandwidth, schedule)
            s = summarise(run_experiment(spec, spark=spark))
            phases = s["phases"]
            table.add_row(
                strategy,
                " / ".join(f"{p['throughput_rps']:,.0f}" for p in phases),
                " / ".join(f"{p['bytes_per_s'] / 1e6:.2f}" for p in phases),
                " / ".join(
                    "–" if p["converge_s"] is None else f"{p['converge_s']:.1f}" for p in phases[1:]
                ),
                "–" if s["latency_mean_s"] is None else f"{s['latency_mean_s']:.2f}",
            )
    finally:
        if spark is not None:
            spark.stop()
    console.print(table)
    return 0
