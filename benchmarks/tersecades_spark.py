"""TerseCades in Spark: the windowed filter + aggregate as a Structured Streaming query over
encoded batches (the kernels run inside the Python workers: Arrow batches of encoded blocks
in, partial aggregates out, through ``mapInArrow``), next to Spark's own query over the same
rows stored raw (uncompressed Parquet, plain encoding) and as Parquet + zstd.

Each source is a directory with one file per batch, read with ``maxFilesPerTrigger=1`` and
``trigger(availableNow=True)``; the query writes to a memory sink in complete mode. Variants
run interleaved; the first run of each warms the Python workers (and the kernels' disk cache)
and is not counted. Every variant's answer must equal the others' or the run aborts.
Used by ``tersecades_bench.py --spark``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from streaming.tersecades import TerseSpec, TimestampWindow
from streaming.tersecades.spark import spark_schema, windowed_filter_aggregate_stream

MB = 1e6


def _session():
    import blaze

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = blaze.session(
        {
            "spark.master": "local[1]",  # one core, as the rest of the benchmark
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "1",
            "spark.driver.memory": "3g",
            "spark.sql.session.timeZone": "UTC",
            "spark.python.worker.reuse": "true",
        },
        app_name="tersecades-spark-bench",
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _write_sources(batches, spec: TerseSpec, root: Path) -> dict[str, Path]:
    paths = {name: root / name for name in ("tersecades", "raw", "parquet_zstd")}
    for path in paths.values():
        path.mkdir(parents=True)
    for i, batch in enumerate(batches):
        table = pa.Table.from_batches([batch])
        name = f"part-{i:04d}.parquet"
        pq.write_table(table, paths["raw"] / name, compression="none", use_dictionary=False)
        pq.write_table(table, paths["parquet_zstd"] / name, compression="zstd")
        encoded = pa.Table.from_batches([spec.encode(batch)])
        pq.write_table(encoded, paths["tersecades"] / name, compression="none")
    return paths


def _query(spark, variant: str, path: Path, spec: TerseSpec, where, window_us: int):
    from pyspark.sql import functions as F

    if variant == "tersecades":
        stream = (
            spark.readStream.schema(spark_schema(spec.encoded_schema))
            .option("maxFilesPerTrigger", 1)
            .parquet(str(path))
        )
        result = windowed_filter_aggregate_stream(stream, spec, "rtt_us", "ts", where)
        return result.select("window_start", "count", "sum", "min", "max")
    stream = (
        spark.readStream.schema(spark_schema(spec.raw_schema))
        .option("maxFilesPerTrigger", 1)
        .parquet(str(path))
    )
    condition = " AND ".join(f"{p.column} {'=' if p.op == '==' else p.op} {p.value}" for p in where)
    return (
        stream.where(condition)
        .groupBy(F.window("ts", f"{window_us} microseconds").start.alias("window_start"))
        .agg(
            F.count("rtt_us").alias("count"),
            F.sum("rtt_us").alias("sum"),
            F.min("rtt_us").alias("min"),
            F.max("rtt_us").alias("max"),
        )
    )


def _run(spark, df, name: str, checkpoint: Path) -> tuple[float, list[tuple]]:
    start = time.perf_counter()
    query = (
        df.writeStream.format("memory")
        .queryName(name)
        .outputMode("complete")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    seconds = time.perf_counter() - start
    if query.exception() is not None:
        raise SystemExit(f"benchmark aborted: {name} failed: {query.exception()}")
    rows = sorted(tuple(r) for r in spark.table(name).collect())
    return seconds, rows


def spark_comparison(gens: dict[str, list[pa.RecordBatch]], window_us: int, block_size: int,
                     where, repeats: int) -> dict:  # fmt: skip
    """Per generator: seconds, MB/s of raw data and speed relative to Spark on raw Parquet."""
    spark = _session()
    root = Path(tempfile.mkdtemp(prefix="tersecades-spark-bench-"))
    out: dict = {}
    try:
        for gen, batches in gens.items():
            spec = TerseSpec(
                batches[0].schema, {"ts": TimestampWindow(window_us)}, block_size=block_size
            )
            paths = _write_sources(batches, spec, root / gen)
            raw_mb = sum(b.nbytes for b in batches) / MB
            samples: dict[str, list[float]] = {v: [] for v in paths}
            answers: dict[str, list] = {}
            for round_ in range(repeats + 1):  # round 0 warms up
                order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
                for variant in order:
                    df = _query(spark, variant, paths[variant], spec, where, window_us)
                    name = f"tc_{gen}_{variant}_{round_}"
                    seconds, rows = _run(spark, df, name, root / "checkpoints" / name)
                    spark.catalog.dropTempView(name)
                    answers.setdefault(variant, rows)
                    if round_:
                        samples[variant].append(seconds)
            if len({str(a) for a in answers.values()}) != 1:
                raise SystemExit("benchmark aborted: the Spark variants disagree")
            medians = {v: statistics.median(s) for v, s in samples.items()}
            out[gen] = {
                "files": len(batches),
                "windows": len(answers["raw"]),
                "seconds": medians,
                "mb_s": {v: raw_mb / t for v, t in medians.items()},
                "speedup_vs_spark_raw": {v: medians["raw"] / t for v, t in medians.items()},
                "bytes_on_disk": {
                    v: sum(f.stat().st_size for f in p.iterdir()) for v, p in paths.items()
                },
            }
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    return out
