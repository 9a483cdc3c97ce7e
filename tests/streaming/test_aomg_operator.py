"""AOMG on real Spark: streaming equals batch, restarts lose or repeat nothing, bad input.

Streams are finite (the telemetry source's ``total_records``) and run with
``Trigger.AvailableNow``; a window's row exists once the watermark passes its end, so the
streaming output is compared with the batch rows of windows that closed.
"""

from __future__ import annotations

from datetime import UTC

import duckdb
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from streaming.aomg.operator import OBSERVED_METRICS, window_quantiles, window_quantiles_batch
from streaming.aomg.summary import SummaryConfig
from streaming.common.source import read_telemetry, read_telemetry_stream

pytestmark = pytest.mark.spark

QUANTILES = [0.5, 0.9, 0.99, 0.999]
# 50k records per event-time second, 5 pods as keys
SOURCE = {"event_rate": 40_000, "max_records_per_batch": 100_000, "invalid_every": 997}


def _with_pod(df):
    return df.withColumn("pod", (F.col("src") / 200).cast("int"))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col in ("window_start", "window_end"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame.sort_values(["key", "window_end"]).reset_index(drop=True)


def _run(query_df, sink_dir, checkpoint):
    query = (
        query_df.writeStream.format("parquet")
        .option("path", str(sink_dir))
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    assert query.exception() is None
    return query


def _final_watermark(query) -> pd.Timestamp:
    return pd.Timestamp(query.lastProgress["eventTime"]["watermark"])


def _assert_streaming_equals_batch(spark, streamed: pd.DataFrame, batch: pd.DataFrame, watermark):
    closed = batch[batch["window_end"] <= watermark].reset_index(drop=True)
    assert len(closed) >= 10 and len(batch) > len(closed)  # a real test: most windows closed
    pd.testing.assert_frame_equal(streamed, closed, check_dtype=False)


@pytest.mark.slow  # two streaming queries: ~40 s on an idle 2-core machine
def test_restart_from_checkpoint_equals_batch(spark, stop_streams, tmp_path):
    """Sliding windows; the first run stops mid-window; nothing is lost or counted twice."""
    kwargs = {
        "window": "1 second",
        "sub_window": "250 ms",
        "slide": "500 ms",
        "quantiles": QUANTILES,
        "key_col": "pod",
    }
    sink, checkpoint = tmp_path / "out", tmp_path / "checkpoint"
    first = _run(
        window_quantiles(
            _with_pod(read_telemetry_stream(spark, total_records=70_000, **SOURCE)), **kwargs
        ),
        sink,
        checkpoint,
    )
    assert sum(p["numInputRows"] for p in first.recentProgress) == 70_000
    # one stateful operator (no chained aggregation): the open windows' summaries
    assert {len(p["stateOperators"]) for p in first.recentProgress} == {1}
    second = _run(
        window_quantiles(
            _with_pod(read_telemetry_stream(spark, total_records=170_000, **SOURCE)), **kwargs
        ),
        sink,
        checkpoint,
    )
    assert sum(p["numInputRows"] for p in second.recentProgress) == 100_000  # only the new ones
    observed = [
        p["observedMetrics"][OBSERVED_METRICS]
        for p in first.recentProgress + second.recentProgress
        if p["numInputRows"]
    ]
    assert sum(m["rows"] for m in observed) == 170_000
    assert sum(m["null_time"] for m in observed) == 0
    streamed = _sorted(spark.read.parquet(str(sink)).toPandas())
    batch = _sorted(
        window_quantiles_batch(
            _with_pod(read_telemetry(spark, total_records=170_000, **SOURCE)), **kwargs
        ).toPandas()
    )
    _assert_streaming_equals_batch(spark, streamed, batch, _final_watermark(second))
    # sliding (window = 2 slides): every record is in exactly two windows
    assert (batch["count"] + batch["skipped"]).sum() == 2 * 170_000


def test_batch_form_is_within_the_bound_of_duckdb(spark):
    """Tumbling windows: counts, skips and quantiles against DuckDB's exact quantile_disc."""
    config = SummaryConfig(relative_accuracy=0.005)
    kwargs = {
        "window": "1 second",
        "sub_window": "200 ms",
        "quantiles": QUANTILES,
        "key_col": "pod",
        "config": config,
    }
    raw = _with_pod(read_telemetry(spark, total_records=150_000, **SOURCE))
    batch = _sorted(window_quantiles(raw, **kwargs).toPandas())  # static input: batch form
    rows = raw.select("pod", "ts", "rtt_us").toArrow()  # keeps nulls as nulls, not NaN
    con = duckdb.connect()
    con.register("rows", rows)
    picks = ", ".join(
        f"quantile_disc(rtt_us, {q}) FILTER (rtt_us >= 0) AS q{i}" for i, q in enumerate(QUANTILES)
    )
    exact = con.execute(
        f"""SELECT pod AS key, time_bucket(INTERVAL 1 second, ts) AS window_start,
                   count(*) FILTER (rtt_us >= 0) AS count,
                   count(*) FILTER (rtt_us IS NULL OR rtt_us < 0) AS skipped, {picks}
            FROM rows GROUP BY ALL"""
    ).df()
    exact["window_start"] = pd.to_datetime(exact["window_start"], utc=True)
    both = batch.merge(exact, on=["key", "window_start"], suffixes=("", "_exact"), validate="1:1")
    assert len(both) == len(batch) == len(exact)
    assert (both["count"] == both["count_exact"]).all() and (
        both["skipped"] == both["skipped_exact"]
    ).all()
    assert both["skipped"].sum() == 150_000 // SOURCE["invalid_every"]
    estimate = np.vstack(both["quantiles"].to_numpy())
    truth = both[[f"q{i}" for i in range(len(QUANTILES))]].to_numpy(dtype=np.float64)
    assert (np.abs(estimate - truth) / truth).max() <= config.relative_accuracy * (1 + 1e-9)


def test_bad_input_fails_before_running(spark):
    df = _with_pod(read_telemetry_stream(spark, total_records=10))
    good = {"window": "1 s", "sub_window": "250 ms", "quantiles": [0.5], "key_col": "pod"}
    cases = [
        ({"sub_window": "300 ms"}, ValueError, "does not divide the window"),
        ({"quantiles": [0.5, 1.5]}, ValueError, "outside \\[0, 1\\]"),
        ({"key_col": "nope"}, ValueError, "key_col='nope' is not a column"),
        (
            {"value_col": "src", "time_col": "rtt_us"},
            TypeError,
            "time_col='rtt_us' must be a timestamp",
        ),
    ]
    for override, error, message in cases:
        with pytest.raises(error, match=message):
            window_quantiles(df, **{**good, **override})
    text = df.withColumn("rtt_text", F.col("rtt_us").cast("string"))
    with pytest.raises(TypeError, match="value_col='rtt_text' must be numeric"):
        window_quantiles(text, **good, value_col="rtt_text")
    with pytest.raises(ValueError, match="needs a static DataFrame"):
        window_quantiles_batch(df, **good)


def test_bad_values_are_counted_per_window_not_lost(spark):
    from datetime import datetime, timedelta

    base = datetime(2024, 1, 1, tzinfo=UTC)

    def at(ms):
        return base + timedelta(milliseconds=ms)

    rows = [
        ("a", at(100), 10.0),
        ("a", at(200), float("nan")),
        ("a", at(600), -5.0),
        ("a", at(700), None),
        ("a", at(800), 30.0),
        ("a", None, 99.0),  # no event time: belongs to no window
        (None, at(300), 7.0),  # a null key is a key of its own
        ("a", at(1_200), 40.0),
    ]
    df = spark.createDataFrame(rows, "host string, ts timestamp, rtt double")
    out = window_quantiles_batch(
        df,
        window="1 s",
        sub_window="500 ms",
        quantiles=[0.5, 1.0],
        key_col="host",
        value_col="rtt",
    ).toPandas()
    got = {
        (r.key, r.window_start.to_pydatetime().replace(tzinfo=UTC)): (
            r.count,
            r.skipped,
            list(r.quantiles),
        )
        for r in out.itertuples()
    }
    assert got == {
        ("a", base): (2, 3, [10.0, 30.0]),
        (None, base): (1, 0, [7.0, 7.0]),
        ("a", at(1_000)): (1, 0, [40.0, 40.0]),
    }
