"""Fault matrix, streaming row for TerseCades: the encoded-stream query stopped after its first
file and restarted from its checkpoint gives the answer of one uninterrupted run over all files
(the AOMG row: ``test_aomg_operator.py::test_restart_from_checkpoint_equals_batch``; Jarvis:
``test_jarvis_spark.py``)."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from streaming.common.telemetry import TELEMETRY_SCHEMA, TelemetryConfig, generate_range
from streaming.tersecades import Predicate, TerseSpec, TimestampWindow
from streaming.tersecades.spark import (
    encode_stream,
    spark_schema,
    windowed_filter_aggregate_stream,
)

pytestmark = pytest.mark.spark

ROWS_PER_FILE = 10_000
WINDOW_US = 50_000
WHERE = (Predicate("error_code", "==", 0), Predicate("rtt_us", "<", 2_000))
SPEC = TerseSpec(TELEMETRY_SCHEMA, {"ts": TimestampWindow(WINDOW_US)}, block_size=1_024)


def _run(spark, source, checkpoint) -> list[tuple]:
    stream = (
        spark.readStream.schema(spark_schema(TELEMETRY_SCHEMA))
        .option("maxFilesPerTrigger", 1)
        .parquet(str(source))
    )
    result = windowed_filter_aggregate_stream(
        encode_stream(stream, SPEC), SPEC, "rtt_us", "ts", WHERE
    )
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "1")
    try:
        query = (
            result.writeStream.format("memory")
            .queryName("tersecades_restart")
            .outputMode("complete")
            .option("checkpointLocation", str(checkpoint))
            .trigger(availableNow=True)
            .start()
        )
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)
    assert query.awaitTermination(timeout=240)
    assert query.exception() is None
    return sorted(
        (r.window_start, r["count"], r["sum"], r["min"], r["max"])
        for r in spark.table("tersecades_restart").collect()
    )


@pytest.mark.timeout(400)
def test_restart_from_checkpoint_equals_one_run(spark, stop_streams, tmp_path):
    files = tmp_path / "all"
    files.mkdir()
    config = TelemetryConfig(seed=5)
    for i in range(3):
        batch = generate_range(config, i * ROWS_PER_FILE, ROWS_PER_FILE)
        pq.write_table(pa.Table.from_batches([batch]), files / f"part-{i:03d}.parquet")
    growing = tmp_path / "growing"
    growing.mkdir()
    shutil.copy(files / "part-000.parquet", growing)
    first = _run(spark, growing, tmp_path / "checkpoint")  # then the query is gone
    for name in ("part-001.parquet", "part-002.parquet"):
        shutil.copy(files / name, growing)
    restarted = _run(spark, growing, tmp_path / "checkpoint")
    raw = spark.read.parquet(str(files)).where("error_code = 0 AND rtt_us < 2000")
    expected = sorted(
        tuple(r)
        for r in raw.groupBy(F.window("ts", f"{WINDOW_US // 1000} milliseconds").start.alias("w"))
        .agg(F.count("rtt_us"), F.sum("rtt_us"), F.min("rtt_us"), F.max("rtt_us"))
        .collect()
    )
    assert 0 < len(first) < len(restarted)
    assert restarted == expected  # nothing lost, nothing counted twice across the restart
