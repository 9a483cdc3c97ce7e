"""``blaze stream tersecades``: encode telemetry, query it compressed, compare with raw.

Pure Python by default (seconds): generates telemetry, encodes it, prints the compression
ratio of each column and the per-window filter + aggregate computed on the encoded blocks next
to the same query on the raw data (they must agree). ``--spark`` runs the same query as a
finite Structured Streaming query on local Spark (encode → aggregate on encoded → sink) and
checks it against Spark on the raw rows. Nothing listens on a network port; all stops by itself.
"""

from __future__ import annotations

import argparse
import time

__all__ = ["register"]


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive integer")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tersecades", help="compression + execution on compressed telemetry demo"
    )
    parser.add_argument("--records", type=_positive, default=1_000_000, help="telemetry records")
    parser.add_argument("--block-size", type=_positive, default=4_096, help="rows per block")
    parser.add_argument("--window-ms", type=_positive, default=1_000, help="tumbling window")
    parser.add_argument("--max-rtt-us", type=_positive, default=2_000, help="filter rtt_us < X")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spark", action="store_true", help="also run it as a Spark stream")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from streaming.common.telemetry import TELEMETRY_SCHEMA, TelemetryConfig, generate_range
    from streaming.tersecades import Predicate, TerseSpec, TimestampWindow
    from streaming.tersecades.operators import windowed_filter_aggregate
    from streaming.tersecades.reference import numpy_windowed_filter_aggregate

    console = Console()
    window_us = args.window_ms * 1_000
    where = (Predicate("error_code", "==", 0), Predicate("rtt_us", "<", args.max_rtt_us))
    raw = generate_range(TelemetryConfig(seed=args.seed), 0, args.records)
    lossless = TerseSpec(TELEMETRY_SCHEMA, block_size=args.block_size)
    lossy = TerseSpec(
        TELEMETRY_SCHEMA, {"ts": TimestampWindow(window_us)}, block_size=args.block_size
    )

    start = time.perf_counter()
    encoded = lossless.encode_batch(raw)
    encode_s = time.perf_counter() - start
    windowed = lossy.encode_batch(raw)
    ratios = Table(title=f"TerseCades on {args.records:,} telemetry records")
    for column in ("column", "raw MB", "lossless ratio", f"ts={args.window_ms} ms window ratio"):
        ratios.add_column(column, justify="right")
    for name in TELEMETRY_SCHEMA.names:
        size = raw.column(name).nbytes
        ratios.add_row(
            name,
            f"{size / 1e6:.2f}",
            f"{size / encoded.columns[name].encoded_bytes:.2f}x",
            f"{size / windowed.columns[name].encoded_bytes:.2f}x",
        )
    ratios.add_row(
        "all",
        f"{raw.nbytes / 1e6:.2f}",
        f"{raw.nbytes / encoded.encoded_bytes:.2f}x",
        f"{raw.nbytes / windowed.encoded_bytes:.2f}x",
    )
    console.print(ratios)
    console.print(f"encode: {raw.nbytes / 1e6 / encode_s:,.0f} MB/s")

    parsed = lossy.parse(lossy.encode(raw))
    result = windowed_filter_aggregate(parsed, "rtt_us", "ts", where)
    expected = numpy_windowed_filter_aggregate(raw, "rtt_us", "ts", window_us, where)
    encoded_s = _median_seconds(lambda: windowed_filter_aggregate(parsed, "rtt_us", "ts", where))
    raw_s = _median_seconds(
        lambda: numpy_windowed_filter_aggregate(raw, "rtt_us", "ts", window_us, where)
    )
    table = Table(
        title=f"rtt_us per {args.window_ms} ms window, error_code = 0 and rtt_us < {args.max_rtt_us}"
    )
    for column in ("window start (us)", "count", "sum", "min", "max", "avg"):
        table.add_column(column, justify="right")
    for (key, count, total, low, high), avg in zip(result.rows(), result.avgs):
        table.add_row(str(key), f"{count:,}", f"{total:,}", str(low), str(high), f"{avg:.1f}")
    console.print(table)
    agree = result.rows() == expected
    console.print(
        f"on encoded blocks: {encoded_s * 1e3:.1f} ms ({result.stats['skipped']} of "
        f"{result.stats['blocks']} blocks skipped by zone maps); on raw numpy: {raw_s * 1e3:.1f} ms"
        f" (medians of 5); answers {'agree' if agree else 'DISAGREE'}"
    )
    if args.spark:
        agree = _spark_demo(args, lossy, where, console) and agree
    return 0 if agree else 1


def _median_seconds(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2]


def _spark_demo(args, spec, where, console) -> bool:
    import tempfile
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from streaming.common.telemetry import TELEMETRY_SCHEMA, TelemetryConfig, generate_range
    from streaming.tersecades.spark import (
        encode_stream,
        spark_schema,
        windowed_filter_aggregate_stream,
    )

    records = min(args.records, 200_000)
    files = 4
    spark = args.spark_session({"spark.sql.shuffle.partitions": "2"}, app_name="tersecades-demo")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "telemetry"
            source.mkdir()
            per_file = records // files
            for i in range(files):
                batch = generate_range(TelemetryConfig(seed=args.seed), i * per_file, per_file)
                pq.write_table(pa.Table.from_batches([batch]), source / f"part-{i}.parquet")
            stream = (
                spark.readStream.schema(spark_schema(TELEMETRY_SCHEMA))
                .option("maxFilesPerTrigger", 1)
                .parquet(str(source))
            )
            result = windowed_filter_aggregate_stream(
                encode_stream(stream, spec), spec, "rtt_us", "ts", where
            )
            query = (
                result.writeStream.format("memory")
                .queryName("tersecades_demo")
                .outputMode("complete")
                .option("checkpointLocation", str(Path(tmp) / "checkpoint"))
                .trigger(availableNow=True)
                .start()
            )
            query.awaitTermination(timeout=300)
            if query.isActive:
                query.stop()
            got = sorted(tuple(r)[:5] for r in spark.table("tersecades_demo").collect())
            condition = " AND ".join(
                f"{p.column} {'=' if p.op == '==' else p.op} {p.value}" for p in where
            )
            raw = spark.read.parquet(str(source)).where(condition)
            from pyspark.sql import functions as F

            window = F.window("ts", f"{args.window_ms} milliseconds").start
            expected = sorted(
                tuple(r)
                for r in raw.groupBy(window.alias("w"))
                .agg(F.count("rtt_us"), F.sum("rtt_us"), F.min("rtt_us"), F.max("rtt_us"))
                .collect()
            )
    finally:
        spark.stop()
    agree = got == expected
    console.print(
        f"Spark stream over {records:,} records in {files} micro-batches: {len(got)} windows, "
        f"{'equal to' if agree else 'DIFFERENT from'} Spark on the raw rows"
    )
    return agree
