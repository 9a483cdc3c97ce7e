"""``blaze stream aomg``: windowed RTT quantiles of the telemetry stream, on local Spark.

Runs the streaming operator on a finite telemetry stream (``Trigger.AvailableNow``), prints
one row per (key, window) and the stream's counters (records read, values skipped, rows
dropped by the watermark). ``--check`` also runs the batch form on the same records and
says whether every closed window matches it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from blaze_errors import BlazeError
from streaming.aomg.summary import SummaryConfig, validate_quantiles
from streaming.aomg.windows import WindowSpec
from streaming.common.run_control import (
    interruptible,
    non_negative,
    positive,
    scratch_dir,
    wait_for,
)

__all__ = ["register"]

KEYS = {"pod": 200, "rack": 20, "src": 1}  # servers per key (telemetry topology)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("aomg", help="AOMG windowed quantiles of telemetry RTTs")
    parser.add_argument("--records", type=positive(int), default=400_000, help="stream length")
    parser.add_argument(
        "--rate", type=non_negative(float), default=0, help="rows/s of wall clock (0: fast)"
    )
    parser.add_argument(
        "--batch-rows", type=positive(int), default=200_000, help="max rows per micro-batch"
    )
    parser.add_argument(
        "--event-rate", type=positive(int), default=100_000, help="records per event second"
    )
    parser.add_argument("--window", default="1 second")
    parser.add_argument("--sub-window", default="250 ms")
    parser.add_argument("--slide", default=None, help="sliding windows (default: tumbling)")
    parser.add_argument("--quantiles", default="0.5,0.9,0.99,0.999")
    parser.add_argument("--key", choices=sorted(KEYS), default="pod")
    parser.add_argument(
        "--accuracy", type=positive(float), default=0.005, help="relative accuracy α"
    )
    parser.add_argument(
        "--invalid-every", type=non_negative(int), default=0, help="inject bad values (0: off)"
    )
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
    except (TypeError, ValueError) as exc:
        return _fail(str(exc))
    try:
        with interruptible() as stop, scratch_dir("aomg") as scratch:
            return _run(args, quantiles, config, stop, scratch)
    except BlazeError as exc:  # no JDK to build the jar, a jar of another format
        return _fail(str(exc))


def _rows_offered(query) -> int:
    """Records the query has taken from the source so far (its end offset)."""
    progress = query.lastProgress
    if not progress or not progress.get("sources"):
        return 0
    end = progress["sources"][0].get("endOffset")
    end = json.loads(end) if isinstance(end, str) else end
    return int((end or {}).get("index", 0))


def _run(args, quantiles, config, stop, scratch) -> int:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from streaming.aomg.functions import with_aomg_jar
    from streaming.aomg.operator import window_quantiles
    from streaming.common.source import read_telemetry, read_telemetry_stream

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = with_aomg_jar(
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
    ).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    stop.arm()  # after PySpark installed its own SIGINT handler
    stop.on_request(lambda: spark.sparkContext.setLogLevel("OFF"))
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
        stop.check()
        stream = window_quantiles(keyed(read_telemetry_stream(spark, **source)), **options)
        writer = (
            stream.writeStream.format("memory")
            .queryName("aomg_demo")
            .option("checkpointLocation", str(scratch / "checkpoint"))
        )
        if args.rate > 0:
            # Trigger.AvailableNow would take only the records that exist at its start (none,
            # at a wall-clock rate): pace micro-batches and stop once the stream is read
            query = writer.trigger(processingTime="250 milliseconds").start()
            wait_for(query, stop, done=lambda: _rows_offered(query) >= args.records)
            query.processAllAvailable()
            query.stop()
        else:
            query = writer.trigger(availableNow=True).start()
            wait_for(query, stop)
        progress = [p for p in query.recentProgress if p["numInputRows"]]
        stop.check()
        result = spark.sql("SELECT * FROM aomg_demo ORDER BY window_end, key").toPandas()
        _print(result, quantiles.tolist(), f"window {args.window}")
        read = _rows_offered(query)
        dropped = sum(
            o["numRowsDroppedByWatermark"]
            for p in query.recentProgress
            for o in p["stateOperators"]
        )
        print(
            f"records read {read:,} in {len(progress)} micro-batches; values skipped "
            f"(null/NaN/negative) {int(result['skipped'].sum()):,}; records dropped "
            f"by the watermark {dropped}; windows still open at the end are not shown"
        )
        if args.check:
            batch = window_quantiles(keyed(read_telemetry(spark, **source)), **options).toPandas()
            closed = batch[batch["window_end"] <= result["window_end"].max()]
            merged = closed.merge(result, on=["key", "window_end"], suffixes=("_b", "_s"))
            same = len(merged) == len(closed) == len(result) and all(
                list(a) == list(b) for a, b in zip(merged["quantiles_b"], merged["quantiles_s"])
            )
            if read == 0 or len(closed) == 0:  # a check that compared nothing has not passed
                print(
                    f"batch form check: FAILED, nothing to compare ({read} records read, "
                    f"{len(closed)} closed windows)"
                )
                return 1
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
