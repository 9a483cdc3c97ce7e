"""``blaze stream aomg``: windowed RTT quantiles of the telemetry stream, on local Spark.

Runs the streaming operator on a finite telemetry stream (``Trigger.AvailableNow``), prints
one row per (key, window) and the stream's counters (records read, values skipped, rows
dropped by the watermark). ``--check`` also runs the batch form on the same records and
says whether every closed window matches it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from streaming.aomg.summary import SummaryConfig, validate_quantiles
from streaming.aomg.windows import WindowSpec

__all__ = ["register"]

KEYS = {"pod": 200, "rack": 20, "src": 1}  # servers per key (telemetry topology)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("aomg", help="AOMG windowed quantiles of telemetry RTTs")
    parser.add_argument("--records", type=int, default=400_000, help="stream length")
    parser.add_argument("--rate", type=float, default=0, help="rows/s of wall clock (0: fast)")
    parser.add_argument("--batch-rows", type=int, default=200_000, help="max rows per micro-batch")
    parser.add_argument("--event-rate", type=int, default=100_000, help="records per event second")
    parser.add_argument("--window", default="1 second")
    parser.add_argument("--sub-window", default="250 ms")
    parser.add_argument("--slide", default=None, help="sliding windows (default: tumbling)")
    parser.add_argument("--quantiles", default="0.5,0.9,0.99,0.999")
    parser.add_argument("--key", choices=sorted(KEYS), default="pod")
    parser.add_argument("--accuracy", type=float, default=0.005, help="relative accuracy α")
    parser.add_argument("--invalid-every", type=int, default=0, help="inject bad values")
    parser.add_argument("--check", action="store_true", help="compare with the batch form")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"blaze stream aomg: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    # every argument is checked before a JVM starts
    try:
        WindowSpec.of(args.window, args.sub_window, args.slide)
        quantiles = validate_quantiles(float(q) for q in args.quantiles.split(","))
        config = SummaryConfig(relative_accuracy=args.accuracy)
        if args.records <= 0 or args.batch_rows <= 0:
            raise ValueError("--records and --batch-rows must be positive")
    except (TypeError, ValueError) as exc:
        return _fail(str(exc))

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from streaming.aomg.operator import OBSERVED_METRICS, window_quantiles
    from streaming.common.source import read_telemetry, read_telemetry_stream

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("blaze-stream-aomg")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config(
            "spark.sql.streaming.stateStore.providerClass",
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        )
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    source = {
        "total_records": args.records,
        "rows_per_second": args.rate,
        "max_records_per_batch": args.batch_rows,
        "event_rate": args.event_rate,
        "invalid_every": args.invalid_every,
        "seed": args.seed,
    }
    options = {
        "window": args.window,
        "sub_window": args.sub_window,
        "slide": args.slide,
        "quantiles": quantiles.tolist(),
        "key_col": "key",
        "config": config,
    }

    def keyed(df):
        return df.withColumn("key", (F.col("src") / KEYS[args.key]).cast("int"))

    try:
        with tempfile.TemporaryDirectory(prefix="blaze-aomg-") as checkpoint:
            stream = window_quantiles(keyed(read_telemetry_stream(spark, **source)), **options)
            query = (
                stream.writeStream.format("memory")
                .queryName("aomg_demo")
                .option("checkpointLocation", checkpoint)
                .trigger(availableNow=True)
                .start()
            )
            query.awaitTermination()
            progress = [p for p in query.recentProgress if p["numInputRows"]]
        result = spark.sql("SELECT * FROM aomg_demo ORDER BY window_end, key").toPandas()
        _print(result, quantiles.tolist(), f"window {args.window}")
        read = sum(p["observedMetrics"][OBSERVED_METRICS]["rows"] for p in progress)
        dropped = sum(
            o["numRowsDroppedByWatermark"]
            for p in query.recentProgress
            for o in p["stateOperators"]
        )
        print(
            f"records read {read:,} in {len(progress)} micro-batches; values skipped "
            f"(null/NaN/negative) {int(result['skipped'].sum()):,}; partial summaries dropped "
            f"by the watermark {dropped}; windows still open at the end are not shown"
        )
        if args.check:
            batch = window_quantiles(keyed(read_telemetry(spark, **source)), **options).toPandas()
            closed = batch[batch["window_end"] <= result["window_end"].max()]
            merged = closed.merge(result, on=["key", "window_end"], suffixes=("_b", "_s"))
            same = len(merged) == len(closed) == len(result) and all(
                list(a) == list(b) for a, b in zip(merged["quantiles_b"], merged["quantiles_s"])
            )
            print(
                f"batch form check: {'identical' if same else 'DIFFERENT'} ({len(closed)} windows)"
            )
            return 0 if same else 1
        return 0
    finally:
        spark.stop()


def _print(result, quantiles: list[float], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"AOMG windowed quantiles of rtt_us ({title})")
    for name in (
        "key",
        "window start (UTC)",
        "count",
        "skipped",
        *(f"p{q * 100:g}" for q in quantiles),
    ):
        table.add_column(name, justify="right")
    for row in result.itertuples(index=False):
        window = f"{row.window_start:%Y-%m-%d %H:%M:%S.%f}"[:-3]
        table.add_row(
            str(row.key),
            window,
            f"{row.count:,}",
            str(row.skipped),
            *(f"{v:,.0f}" for v in row.quantiles),
        )
    Console().print(table)
