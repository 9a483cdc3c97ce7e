"""AOMG as a Spark operator: windowed quantiles per key, streaming or batch.

``window_quantiles(df, ...)`` takes a DataFrame of (event time, key, value) rows and returns
one row per (key, window)::

    key, window_start, window_end, count, skipped, quantiles (array<double>, in request order)

``method="native"`` (the default) computes AOMG's two levels with Spark's own aggregation
over SQL expressions — no Python touches a record (:mod:`streaming.aomg.native`). This module
keeps the checks shared by both methods and ``method="python"``, the numpy path described
below; both return the same rows.

The Python path shares the two levels of AOMG's hierarchical windowing:

1. *Partial summaries, vectorised* — ``mapInArrow`` hands each task's rows to numpy in large
   Arrow batches; rows are grouped by (key, sub-window) and each group becomes one
   :class:`~streaming.aomg.summary.QuantileSummary` (a few KiB however many rows). This is
   where the records are touched, once, without a per-row Python step.
2. *Windows from sub-windows* — partial summaries of the same (key, sub-window) merge exactly
   and a window is the merge of its sub-windows.

Streaming (``df.isStreaming``): level 2 runs in ``transformWithStateInPandas`` (event-time
mode, RocksDB state). State per key is a map ``sub-window start -> summary bytes``; an
event-time timer at each window's end fires once the watermark passes it: the window's
sub-windows are merged, its row emitted (append mode, exactly once), and sub-windows no
later window needs are removed — so old state is dropped by the watermark. The watermark is
set on each partial summary's newest event time, so a record is never merged into a window
that was already emitted. Batch: the JVM first counts rows per (key, sub-window, value) —
recurring values collapse, so level 1 gets (value, count) pairs — and level 2 is a
``groupBy(key, window).applyInPandas``.
Merging is exact (a summary is a function of the multiset of its values), so for a finite
stream the streaming output equals the batch output row for row.

Bad input: null, NaN, infinite and negative values are left out and counted in ``skipped``
of every window they fall in. Rows with a null event time belong to no window; they are
counted in the observed metric ``aomg_input`` (``rows``, ``null_time``) that Spark reports in
``StreamingQueryProgress.observedMetrics``. Partial summaries older than the watermark are
dropped by Spark and reported in its ``numRowsDroppedByWatermark`` state-operator metric.
Wrong column names or types, quantiles outside [0, 1] and sub-windows that do not divide the
window fail before anything runs, with one line naming the problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_type
from pyspark.sql.streaming.stateful_processor import (
    ExpiredTimerInfo,
    StatefulProcessor,
    StatefulProcessorHandle,
    TimerValues,
)

from streaming.aomg import native
from streaming.aomg.summary import QuantileSummary, SummaryConfig, validate_quantiles
from streaming.aomg.windows import WindowSpec, parse_duration_us

__all__ = [
    "OBSERVED_METRICS",
    "output_schema",
    "partial_summaries",
    "window_quantiles",
    "window_quantiles_batch",
]

OBSERVED_METRICS = "aomg_input"
METHODS = ("native", "python")
FLUSH_ROWS = 1 << 20  # rows buffered per task before summarising (bounds worker memory)


def output_schema(key_type: T.DataType) -> T.StructType:
    """Schema of the operator's result for a key column of ``key_type``."""
    return T.StructType(
        [
            T.StructField("key", key_type),
            T.StructField("window_start", T.TimestampType()),
            T.StructField("window_end", T.TimestampType()),
            T.StructField("count", T.LongType()),
            T.StructField("skipped", T.LongType()),
            T.StructField("quantiles", T.ArrayType(T.DoubleType())),
        ]
    )


def _partial_schema(key_type: T.DataType) -> T.StructType:
    # plain identifiers: transformWithStateInPandas rebuilds frames from namedtuples
    return T.StructType(
        [
            T.StructField("key", key_type),
            T.StructField("newest", T.TimestampType()),
            T.StructField("sub", T.LongType()),
            T.StructField("summary", T.BinaryType()),
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


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method={method!r} must be one of {', '.join(METHODS)}")


def _prepare(
    df: DataFrame, time_col: str, key_col: str, value_col: str, *, keep_time: bool = False
) -> DataFrame:
    """(key, t micros | ts timestamp, v double); null times counted by the observed metric,
    then dropped."""
    observed = df.observe(
        OBSERVED_METRICS,
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.col(time_col).isNull().cast("long")).alias("null_time"),
    )
    time = (
        F.col(time_col).cast("timestamp").alias("ts")
        if keep_time
        else F.unix_micros(F.col(time_col).cast("timestamp")).alias("t")
    )
    return observed.where(F.col(time_col).isNotNull()).select(
        F.col(key_col).alias("key"), time, F.col(value_col).cast("double").alias("v")
    )


def partial_summaries(
    batches: Iterator[pa.RecordBatch],
    spec: WindowSpec,
    config: SummaryConfig,
    key_type: pa.DataType,
    flush_rows: int = FLUSH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Level 1: rows (key, t, v) -> one summary per (key, sub-window) per ~``flush_rows`` rows.

    An optional column ``n`` gives each row's multiplicity (rows pre-counted by value).
    Output columns: key, newest (latest event time in the group: the watermark's input),
    sub (sub-window start, µs), summary (bytes).
    """
    buffered: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if batch.num_rows:
            buffered.append(batch)
            rows += batch.num_rows
        if rows >= flush_rows:
            yield _summarise(pa.Table.from_batches(buffered), spec, config, key_type)
            buffered, rows = [], 0
    if rows:
        yield _summarise(pa.Table.from_batches(buffered), spec, config, key_type)


def _summarise(
    table: pa.Table, spec: WindowSpec, config: SummaryConfig, key_type: pa.DataType
) -> pa.RecordBatch:
    t = table.column("t").to_numpy()
    v = table.column("v").to_numpy(zero_copy_only=False)  # nulls become NaN: counted, skipped
    n = table.column("n").to_numpy() if "n" in table.column_names else None
    codes, uniques = pd.factorize(table.column("key").to_pandas(), use_na_sentinel=False)
    subs = spec.sub_window_start(t)
    # one small-int group id per (key, sub-window): a stable radix argsort beats lexsort
    span = (subs - subs.min()) // spec.sub_window_us
    group = codes.astype(np.int64) * (int(span.max()) + 1) + span
    order = np.argsort(group, kind="stable")
    group, codes, subs, t, v = group[order], codes[order], subs[order], t[order], v[order]
    if n is not None:
        n = n[order]
    change = np.flatnonzero(np.diff(group)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [codes.size]])
    summaries = [
        (
            QuantileSummary.from_values(v[a:b], config, on_invalid="skip")
            if n is None
            else QuantileSummary.from_counts(v[a:b], n[a:b], config)
        ).to_bytes()
        for a, b in zip(starts.tolist(), ends.tolist())
    ]
    keys = pd.Series(uniques).take(codes[starts])
    return pa.RecordBatch.from_arrays(
        [
            pa.array(keys, type=key_type, from_pandas=True),
            pa.array(np.maximum.reduceat(t, starts), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array(subs[starts], pa.int64()),
            pa.array(summaries, pa.binary()),
        ],
        names=["key", "newest", "sub", "summary"],
    )


def _partials(df: DataFrame, spec: WindowSpec, config: SummaryConfig, key_type: T.DataType):
    arrow_key = to_arrow_type(key_type)

    def level_one(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return partial_summaries(batches, spec, config, arrow_key)

    return df.mapInArrow(level_one, _partial_schema(key_type))


def _result_frame(
    key: object, window_end: int, merged: QuantileSummary, spec: WindowSpec, quantiles: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "key": [key],
            "window_start": pd.to_datetime([window_end - spec.window_us], unit="us", utc=True),
            "window_end": pd.to_datetime([window_end], unit="us", utc=True),
            "count": [merged.count],
            "skipped": [merged.skipped],
            "quantiles": [merged.quantiles(quantiles).tolist()],
        }
    )


class _AomgProcessor(StatefulProcessor):
    """Level 2, per key: map state ``sub-window start -> summary bytes``; a timer per window."""

    def __init__(self, spec: WindowSpec, config: SummaryConfig, quantiles: np.ndarray) -> None:
        self.spec = spec
        self.config = config
        self.quantiles = quantiles

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        self.subs = handle.getMapState("sub_windows", "start long", "summary binary")

    def handleInputRows(
        self, key: tuple, rows: Iterator[pd.DataFrame], timerValues: TimerValues
    ) -> Iterator[pd.DataFrame]:
        frame = pd.concat(list(rows), ignore_index=True)
        # one state round trip each for the stored sub-windows and timers (a handful per key)
        stored = {sub: blob for (sub,), (blob,) in self.subs.iterator()}
        timers = set(self.handle.listTimers())
        for sub, group in frame.groupby("sub", sort=True):
            sub = int(sub)
            parts = [QuantileSummary.from_bytes(b) for b in group["summary"]]
            if sub in stored:
                parts.append(QuantileSummary.from_bytes(stored[sub]))
            self.subs.updateValue((sub,), (QuantileSummary.merge_all(parts).to_bytes(),))
            for end_ms in (end_us // 1_000 for end_us in self.spec.window_ends(sub)):
                if end_ms not in timers:
                    self.handle.registerTimer(end_ms)
                    timers.add(end_ms)
        return iter([])

    def handleExpiredTimer(
        self, key: tuple, timerValues: TimerValues, expiredTimerInfo: ExpiredTimerInfo
    ) -> Iterator[pd.DataFrame]:
        end_us = expiredTimerInfo.getExpiryTimeInMs() * 1_000
        members: list[QuantileSummary] = []
        finished: list[int] = []
        for (sub,), (blob,) in self.subs.iterator():
            if self.spec.contains(end_us, sub):
                members.append(QuantileSummary.from_bytes(blob))
            if not self.spec.still_needed(end_us, sub):
                finished.append(sub)
        for sub in finished:
            self.subs.removeKey((sub,))
        if not members:
            return iter([])
        merged = QuantileSummary.merge_all(members)
        return iter([_result_frame(key[0], end_us, merged, self.spec, self.quantiles)])

    def close(self) -> None:
        pass


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
    method: str = "native",
) -> DataFrame:
    """Quantiles of ``value_col`` per ``key_col`` over event-time windows (streaming or batch).

    ``window``, ``sub_window``, ``slide`` (default: tumbling) and ``watermark_delay``
    (default: one sub-window; streaming only) are ``timedelta``, seconds or strings like
    ``"10 seconds"``. A window's row appears once the watermark passes its end.
    ``method="native"`` builds the summaries with Spark's own aggregation
    (:mod:`streaming.aomg.native`); ``"python"`` with numpy in Python workers. Both return
    the same rows.
    """
    if not df.isStreaming:
        return window_quantiles_batch(
            df,
            window=window,
            sub_window=sub_window,
            quantiles=quantiles,
            slide=slide,
            time_col=time_col,
            key_col=key_col,
            value_col=value_col,
            config=config,
            method=method,
        )
    spec = WindowSpec.of(window, sub_window, slide)
    qs = validate_quantiles(quantiles)
    config = config or SummaryConfig()
    _check_method(method)
    key_type = _check_input(df, time_col, key_col, value_col)
    delay_us = (
        spec.sub_window_us
        if watermark_delay is None
        else parse_duration_us(watermark_delay, "watermark_delay")
    )
    if method == "native":
        prepared = _prepare(df, time_col, key_col, value_col, keep_time=True)
        watermarked = prepared.withWatermark("ts", f"{delay_us} microseconds")
        return native.windows_answered(
            native.level_one(watermarked, spec, config), spec, config, qs
        )
    partials = _partials(_prepare(df, time_col, key_col, value_col), spec, config, key_type)
    return (
        partials.withWatermark("newest", f"{delay_us} microseconds")
        .groupBy("key")
        .transformWithStateInPandas(
            statefulProcessor=_AomgProcessor(spec, config, qs),
            outputStructType=output_schema(key_type),
            outputMode="Append",
            timeMode="EventTime",
        )
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
    method: str = "native",
) -> DataFrame:
    """The batch form: the rows the streaming form emits once every window has closed."""
    if df.isStreaming:
        raise ValueError("window_quantiles_batch needs a static DataFrame; use window_quantiles")
    spec = WindowSpec.of(window, sub_window, slide)
    qs = validate_quantiles(quantiles)
    config = config or SummaryConfig()
    _check_method(method)
    key_type = _check_input(df, time_col, key_col, value_col)
    if method == "native":
        prepared = _prepare(df, time_col, key_col, value_col, keep_time=True)
        return native.batch_window_quantiles(prepared, spec, config, qs)
    prepared = _prepare(df, time_col, key_col, value_col)
    # recurring values are counted by the JVM first (a codegen hash aggregate), so Python
    # receives (key, sub-window, value, count) rows — an order of magnitude fewer on telemetry
    counted = (
        prepared.withColumn("s", F.col("t") - F.pmod(F.col("t"), F.lit(spec.sub_window_us)))
        .groupBy("key", "s", "v")
        .agg(F.max("t").alias("t"), F.count(F.lit(1)).alias("n"))
        .select("key", "t", "v", "n")
    )
    partials = _partials(counted, spec, config, key_type)
    # each sub-window's partials go to every window that contains it
    ends = F.sequence(
        F.col("sub") - F.pmod(F.col("sub"), F.lit(spec.slide_us)) + F.lit(spec.slide_us),
        F.col("sub") + F.lit(spec.window_us),
        F.lit(spec.slide_us),
    )
    exploded = partials.select("key", F.explode(ends).alias("window_end_us"), "summary")

    def merge_window(frame: pd.DataFrame) -> pd.DataFrame:
        merged = QuantileSummary.merge_all(QuantileSummary.from_bytes(b) for b in frame["summary"])
        end_us = int(frame["window_end_us"].iloc[0])
        return _result_frame(frame["key"].iloc[0], end_us, merged, spec, qs)

    return exploded.groupBy("key", "window_end_us").applyInPandas(
        merge_window, output_schema(key_type)
    )
