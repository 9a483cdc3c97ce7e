"""AOMG as a Spark operator: windowed quantiles per key, streaming or batch, over the SQL
functions of :mod:`streaming.aomg.functions`.

``window_quantiles(df, ...)`` takes a DataFrame of (event time, key, value) rows and returns
one row per (key, window)::

    key, window_start, window_end, count, skipped, quantiles (array<double>, in request order)

It is a thin layer: one ``aomg_summary_agg`` aggregation per (key, window) and the readers
``aomg_summary_count``, ``aomg_summary_skipped`` and ``aomg_quantiles`` on its result.

* *Tumbling windows* (batch and streaming) and *sliding windows in streaming*: one
  aggregation grouped by Spark's ``window()``. A window's summary is built from its records
  directly: merging is exact, so it is the summary of its sub-windows merged (AOMG's two
  levels give the same bytes), without a second aggregation. Streaming uses the event-time
  watermark and append mode: the state is one bounded summary per open (key, window), a
  window's row is emitted once the watermark passes its end, and restarting from the
  checkpoint resumes from the stored summaries.
* *Sliding windows in batch*: AOMG's two levels — panes of ``gcd(window, slide)`` (whole
  sub-windows, each inside every window it touches) are summarised once with
  ``aomg_summary_agg`` and merged into windows with ``aomg_summary_merge``, so a record is
  summarised once however many windows share it.

Bad input: null, NaN, infinite and negative values are left out and counted in ``skipped``
of every window they fall in. Rows with a null event time belong to no window; they are
counted, in streaming, in the observed metric ``aomg_input`` (``rows``, ``null_time``) of
each micro-batch's progress. Rows behind the
watermark are dropped by Spark and reported in its ``numRowsDroppedByWatermark`` metric.
Wrong column names or types, quantiles outside [0, 1], α outside (0, 0.5) and sub-windows that
do not divide the window fail before anything runs, with one line naming the problem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from streaming.aomg import functions as aomg
from streaming.aomg.summary import SummaryConfig, validate_quantiles
from streaming.aomg.windows import WindowSpec, parse_duration_us

__all__ = [
    "OBSERVED_METRICS",
    "output_schema",
    "window_quantiles",
    "window_quantiles_batch",
    "window_summaries",
]

OBSERVED_METRICS = "aomg_input"


def output_schema(key_type: T.DataType) -> T.StructType:
    """Schema of the operator's result for a key column of ``key_type``."""
    return T.StructType(
        [
            T.StructField("key", key_type),
            T.StructField("window_start", T.TimestampType()),
            T.StructField("window_end", T.TimestampType()),
            T.StructField("count", T.LongType()),
            T.StructField("skipped", T.LongType()),
            T.StructField("quantiles", T.ArrayType(T.DoubleType(), containsNull=False)),
        ]
    )


def _check_input(df: DataFrame, time_col: str, key_col: str, value_col: str) -> T.DataType:
    """Column checks before anything runs; returns the key's type."""
    fields = {f.name: f.dataType for f in df.schema.fields}
    for role, name in (("time_col", time_col), ("key_col", key_col), ("value_col", value_col)):
        if name not in fields:
            raise ValueError(
                f"{role}={name!r} is not a column of the input; columns: {sorted(fields)}"
            )
    if not isinstance(fields[time_col], T.TimestampType | T.TimestampNTZType):
        raise TypeError(
            f"time_col={time_col!r} must be a timestamp, not {fields[time_col].simpleString()}"
        )
    if not isinstance(fields[value_col], T.NumericType):
        raise TypeError(
            f"value_col={value_col!r} must be numeric, not {fields[value_col].simpleString()}"
        )
    key_type = fields[key_col]
    if isinstance(key_type, T.ArrayType | T.MapType | T.StructType | T.BinaryType):
        raise TypeError(
            f"key_col={key_col!r} must be an atomic type, not {key_type.simpleString()}"
        )
    return key_type


def _check_config(config: SummaryConfig | None) -> SummaryConfig:
    if config is None:
        return SummaryConfig()
    if not isinstance(config, SummaryConfig):
        raise TypeError(f"config must be a SummaryConfig, not {type(config).__name__}")
    return config


def _prepare(df: DataFrame, time_col: str, key_col: str, value_col: str) -> DataFrame:
    """(key, ts timestamp, v double); rows with a null time dropped (a stream counts them in
    its observed metric first: a per-row step batch queries need not pay, as they can count
    null times themselves)."""
    observed = df
    if df.isStreaming:
        observed = df.observe(
            OBSERVED_METRICS,
            F.count(F.lit(1)).alias("rows"),
            F.sum(F.col(time_col).isNull().cast("long")).alias("null_time"),
        )
    return observed.where(F.col(time_col).isNotNull()).select(
        F.col(key_col).alias("key"),
        F.col(time_col).cast("timestamp").alias("ts"),
        F.col(value_col).cast("double").alias("v"),
    )


def _duration(us: int) -> str:
    return f"{us} microseconds"


def window_summaries(
    df: DataFrame,
    *,
    window: object,
    sub_window: object,
    slide: object | None = None,
    time_col: str = "ts",
    key_col: str = "src",
    value_col: str = "rtt_us",
    watermark_delay: object | None = None,
    config: SummaryConfig | None = None,
) -> DataFrame:
    """One AOMG summary per (key, window): rows ``key, window_start, window_end, summary``.

    ``summary`` is the binary summary (``QuantileSummary.from_bytes`` reads it): what
    :func:`window_quantiles` reads its answers from, and what a caller keeps to merge windows
    further or ask other quantiles later. Arguments as for :func:`window_quantiles`.
    """
    spec = WindowSpec.of(window, sub_window, slide)
    config = _check_config(config)
    _check_input(df, time_col, key_col, value_col)
    delay_us = None
    if df.isStreaming:
        delay_us = (
            spec.sub_window_us
            if watermark_delay is None
            else parse_duration_us(watermark_delay, "watermark_delay")
        )
    aomg.register(df.sparkSession)
    prepared = _prepare(df, time_col, key_col, value_col)
    with aomg.errors():
        if delay_us is not None:
            prepared = prepared.withWatermark("ts", _duration(delay_us))
        if df.isStreaming or spec.slide_us == spec.window_us:
            windows = F.window("ts", _duration(spec.window_us), _duration(spec.slide_us))
            summaries = prepared.groupBy("key", windows.alias("w")).agg(
                aomg.summary_agg("v", config).alias("summary")
            )
        else:
            pane = math.gcd(spec.window_us, spec.slide_us)
            panes = prepared.groupBy("key", F.window("ts", _duration(pane)).alias("p")).agg(
                aomg.summary_agg("v", config).alias("summary")
            )
            # a pane lies inside every window that contains its start
            windows = F.window(
                F.col("p.start"), _duration(spec.window_us), _duration(spec.slide_us)
            )
            summaries = panes.groupBy("key", windows.alias("w")).agg(
                aomg.summary_merge("summary").alias("summary")
            )
        return summaries.select(
            "key",
            F.col("w.start").alias("window_start"),
            F.col("w.end").alias("window_end"),
            "summary",
        )


def window_quantiles(
    df: DataFrame,
    *,
    window: object,
    sub_window: object,
    quantiles: Sequence[float],
    slide: object | None = None,
    time_col: str = "ts",
    key_col: str = "src",
    value_col: str = "rtt_us",
    watermark_delay: object | None = None,
    config: SummaryConfig | None = None,
) -> DataFrame:
    """Quantiles of ``value_col`` per ``key_col`` over event-time windows (streaming or batch).

    ``window``, ``sub_window``, ``slide`` (default: tumbling) and ``watermark_delay``
    (default: one sub-window; streaming only) are ``timedelta``, seconds or strings like
    ``"10 seconds"``. A streaming window's row appears once the watermark passes its end.
    The session needs blaze-spark's jar (:func:`streaming.aomg.with_aomg_jar`).
    """
    qs = validate_quantiles(quantiles)
    summaries = window_summaries(
        df,
        window=window,
        sub_window=sub_window,
        slide=slide,
        time_col=time_col,
        key_col=key_col,
        value_col=value_col,
        watermark_delay=watermark_delay,
        config=config,
    )
    with aomg.errors():
        return summaries.select(
            "key",
            "window_start",
            "window_end",
            aomg.summary_count("summary").alias("count"),
            aomg.summary_skipped("summary").alias("skipped"),
            aomg.quantiles("summary", qs.tolist()).alias("quantiles"),
        )


def window_quantiles_batch(
    df: DataFrame,
    *,
    window: object,
    sub_window: object,
    quantiles: Sequence[float],
    slide: object | None = None,
    time_col: str = "ts",
    key_col: str = "src",
    value_col: str = "rtt_us",
    config: SummaryConfig | None = None,
) -> DataFrame:
    """The batch form: the rows the streaming form emits once every window has closed."""
    if df.isStreaming:
        raise ValueError("window_quantiles_batch needs a static DataFrame; use window_quantiles")
    return window_quantiles(
        df,
        window=window,
        sub_window=sub_window,
        quantiles=quantiles,
        slide=slide,
        time_col=time_col,
        key_col=key_col,
        value_col=value_col,
        config=config,
    )
