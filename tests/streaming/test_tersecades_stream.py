"""A streaming query over encoded data gives the same windowed results as over raw data.

Finite stream: Parquet files of telemetry read with ``maxFilesPerTrigger=1`` and
``trigger(availableNow=True)``, so several micro-batches run and the query stops by itself.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streaming.common.telemetry import TELEMETRY_SCHEMA, TelemetryConfig, generate_range
from streaming.tersecades import Predicate, TerseSpec, TimestampWindow
from streaming.tersecades.spark import (
    decode_stream,
    encode_stream,
    spark_schema,
    windowed_filter_aggregate_stream,
)

pytestmark = pytest.mark.spark

FILES, ROWS_PER_FILE = 2, 20_000
WINDOW_US = 50_000  # 0.05 s of event time = 5,000 records: windows straddle files
CONFIG = TelemetryConfig(seed=21)
WHERE = (Predicate("error_code", "==", 0), Predicate("rtt_us", "<", 2_000))
SPEC = TerseSpec(TELEMETRY_SCHEMA, {"ts": TimestampWindow(WINDOW_US)}, block_size=1_024)


@pytest.fixture(scope="module")
def telemetry_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tersecades_telemetry")
    for i in range(FILES):
        batch = generate_range(CONFIG, i * ROWS_PER_FILE, ROWS_PER_FILE)
        pq.write_table(pa.Table.from_batches([batch]), directory / f"part-{i:03d}.parquet")
    return directory


def _run_to_end(df, name: str, mode: str, checkpoint) -> None:
    # one state-store partition: the stateful query runs ~3x faster on 2 shared cores; the
    # setting is fixed into the checkpoint at start, so the shared session is restored at once
    session = df.sparkSession
    before = session.conf.get("spark.sql.shuffle.partitions")
    session.conf.set("spark.sql.shuffle.partitions", "1")
    try:
        query = (
            df.writeStream.format("memory")
            .queryName(name)
            .outputMode(mode)
            .option("checkpointLocation", str(checkpoint))
            .trigger(availableNow=True)
            .start()
        )
    finally:
        session.conf.set("spark.sql.shuffle.partitions", before)
    query.awaitTermination(timeout=180)
    assert query.exception() is None
    assert not query.isActive


def test_windowed_query_on_encoded_stream_equals_raw(spark, telemetry_dir, tmp_path, stop_streams):
    raw_stream = (
        spark.readStream.schema(spark_schema(TELEMETRY_SCHEMA))
        .option("maxFilesPerTrigger", 1)
        .parquet(str(telemetry_dir))
    )
    encoded = encode_stream(raw_stream, SPEC)
    result = windowed_filter_aggregate_stream(encoded, SPEC, "rtt_us", "ts", WHERE)
    _run_to_end(result, "tersecades_windows", "complete", tmp_path / "agg")
    got = sorted(
        (r.window_start, r["count"], r["sum"], r["min"], r["max"], r["avg"])
        for r in spark.table("tersecades_windows").collect()
    )

    # the same query over the raw data, in Spark and in DuckDB
    from pyspark.sql import functions as F

    raw = spark.read.parquet(str(telemetry_dir)).where("error_code = 0 AND rtt_us < 2000")
    spark_raw = sorted(
        tuple(r)
        for r in raw.groupBy(F.window("ts", f"{WINDOW_US // 1000} milliseconds").start.alias("w"))
        .agg(F.count("rtt_us"), F.sum("rtt_us"), F.min("rtt_us"), F.max("rtt_us"), F.avg("rtt_us"))
        .collect()
    )
    assert len(got) == FILES * ROWS_PER_FILE // 5_000
    assert [g[:5] for g in got] == [s[:5] for s in spark_raw]
    assert [g[5] for g in got] == pytest.approx([s[5] for s in spark_raw], rel=1e-12)

    duck = duckdb.sql(
        f"SELECT (epoch_us(ts) // {WINDOW_US}) * {WINDOW_US}, count(rtt_us), sum(rtt_us), "
        f"min(rtt_us), max(rtt_us) FROM read_parquet('{telemetry_dir}/*.parquet') "
        "WHERE error_code = 0 AND rtt_us < 2000 GROUP BY 1 ORDER BY 1"
    ).fetchall()
    epoch = [int(g[0].timestamp() * 1_000_000) for g in got]
    assert [(e, *g[1:5]) for e, g in zip(epoch, got)] == [tuple(d) for d in duck]


def test_decoding_at_the_sink_restores_the_stream(spark, telemetry_dir, tmp_path, stop_streams):
    lossless = TerseSpec(TELEMETRY_SCHEMA, block_size=1_024)
    raw_stream = (
        spark.readStream.schema(spark_schema(TELEMETRY_SCHEMA))
        .option("maxFilesPerTrigger", 1)
        .parquet(str(telemetry_dir))
    )
    decoded = decode_stream(encode_stream(raw_stream, lossless), lossless)
    _run_to_end(decoded, "tersecades_decoded", "append", tmp_path / "dec")
    got = spark.table("tersecades_decoded").toArrow().sort_by([("ts", "ascending")])
    expected = pq.read_table(telemetry_dir).sort_by([("ts", "ascending")])
    for name in TELEMETRY_SCHEMA.names:
        left = got.column(name).combine_chunks()
        right = expected.column(name).combine_chunks()
        if pa.types.is_timestamp(right.type):
            left, right = left.view(pa.int64()), right.cast(pa.int64())
        assert left.equals(right), name


def test_every_codec_travels_through_spark_unchanged(spark):
    """Dictionary lists, bounded floats, window keys and bit lanes survive Spark's row format."""
    from streaming.tersecades import BaseDelta, BoundedFloat, Dictionary

    rows = 5_000
    batch = generate_range(CONFIG, 0, rows)
    rtt = batch.column("rtt_us").to_numpy()
    raw = pa.table(
        {
            "ts": batch.column("ts"),
            "src": batch.column("src"),
            "path": pa.array(["same_rack", "same_pod", "cross_pod", None][i % 4] for i in rtt),
            "load": pa.array(rtt / 7.0),
        }
    )
    spec = TerseSpec(
        raw.schema,
        {
            "ts": TimestampWindow(WINDOW_US),
            "src": BaseDelta(bits=True),
            "path": Dictionary(),
            "load": BoundedFloat(0.05),
        },
        block_size=512,
    )
    df = spark.createDataFrame(raw.to_pandas(), schema=spark_schema(raw.schema))
    decoded = decode_stream(encode_stream(df, spec), spec).toArrow()
    expected = spec.decode(spec.encode(raw)).to_pydict()  # the codecs' own round trip
    got = decoded.sort_by([("src", "ascending"), ("load", "ascending")]).to_pydict()
    order = sorted(range(rows), key=lambda i: (expected["src"][i], expected["load"][i]))
    for name in ("src", "path", "load"):
        assert got[name] == [expected[name][i] for i in order], name
    assert sorted(t.timestamp() for t in got["ts"]) == sorted(t.timestamp() for t in expected["ts"])
