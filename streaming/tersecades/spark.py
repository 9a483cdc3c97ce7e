"""TerseCades in Spark: encode a stream, aggregate on the encoded stream, decode at the sink.

All three are ``mapInArrow`` stages, so they work on batch and streaming DataFrames alike:

* :func:`encode_stream` turns each Arrow batch of raw rows into encoded block rows (the
  ``TerseSpec`` format) — what travels through shuffles, state and sinks is the compressed form;
* :func:`windowed_filter_aggregate_stream` runs the filter + per-window partial aggregates on
  the encoded blocks (operators.py: the compiled kernels, run inside Spark's Python workers —
  Arrow batches of encoded blocks in, partial aggregates out; each worker loads the kernels
  from the on-disk cache) and merges the partials with an ordinary Spark ``groupBy`` —
  count/sum/min/max merge exactly, avg is derived at the end;
* :func:`decode_stream` restores raw rows where a sink needs them.

Spark re-batches rows between stages, but a block is one row, so it is never split; every
stage re-verifies the block CRCs it reads (``verify=True``), so a corrupt block fails the query
with a :class:`~streaming.tersecades.errors.CorruptEncodingError` instead of a wrong answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

from streaming.tersecades.errors import TerseError
from streaming.tersecades.operators import Predicate, windowed_filter_aggregate
from streaming.tersecades.spec import TerseSpec

__all__ = [
    "PARTIAL_SCHEMA",
    "decode_stream",
    "encode_stream",
    "spark_schema",
    "windowed_filter_aggregate_stream",
]

PARTIAL_SCHEMA = pa.schema(
    [
        ("window_start_us", pa.int64()),
        ("count", pa.int64()),
        ("sum", pa.int64()),
        ("min", pa.int64()),
        ("max", pa.int64()),
    ]
)


def spark_schema(schema: pa.Schema):
    """The Spark ``StructType`` of an Arrow schema (what ``mapInArrow`` must declare)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def encode_stream(df, spec: TerseSpec):
    """``df`` (raw rows with ``spec.raw_schema``'s columns) → one row per encoded block."""

    def encode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield spec.encode(batch.select(spec.raw_schema.names))

    return df.select(*spec.raw_schema.names).mapInArrow(encode, spark_schema(spec.encoded_schema))


def decode_stream(df, spec: TerseSpec, *, verify: bool = True):
    """Encoded block rows → raw rows (for sinks that need the original records)."""

    def decode(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield spec.decode(batch, verify=verify)

    return df.mapInArrow(decode, spark_schema(spec.raw_schema))


def partial_windowed_aggregates(
    batch: pa.RecordBatch,
    spec: TerseSpec,
    value: str,
    window_column: str,
    where: Sequence[Predicate] = (),
    *,
    verify: bool = True,
) -> pa.RecordBatch:
    """Per-window ``count/sum/min/max`` of one encoded batch (a ``PARTIAL_SCHEMA`` batch)."""
    needed = list(dict.fromkeys([value, window_column, *(p.column for p in where)]))
    parsed = spec.parse(batch, verify=verify, columns=needed)  # read + verify only these
    result = windowed_filter_aggregate(parsed, value, window_column, where)
    if any(not -(2**63) <= s < 2**63 for s in result.sums):
        raise TerseError(
            f"a partial sum of {value!r} exceeds int64; Spark's LongType cannot carry it"
        )
    return pa.RecordBatch.from_arrays(
        [
            pa.array(result.keys, pa.int64()),
            pa.array(result.counts, pa.int64()),
            pa.array(result.sums, pa.int64()),
            pa.array(result.mins, pa.int64()),
            pa.array(result.maxs, pa.int64()),
        ],
        schema=PARTIAL_SCHEMA,
    )


def windowed_filter_aggregate_stream(
    encoded_df,
    spec: TerseSpec,
    value: str,
    window_column: str,
    where: Sequence[Predicate] = (),
    *,
    verify: bool = True,
):
    """Per tumbling window (the ``TimestampWindow`` of ``window_column``): ``window_start``
    (timestamp), ``count``, ``sum``, ``min``, ``max``, ``avg`` of ``value`` over the rows that
    satisfy ``where`` — computed on the encoded blocks, merged by Spark."""
    from pyspark.sql import functions as F

    where = tuple(where)

    def partials(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                out = partial_windowed_aggregates(
                    batch, spec, value, window_column, where, verify=verify
                )
                if out.num_rows:
                    yield out

    merged = (
        encoded_df.mapInArrow(partials, spark_schema(PARTIAL_SCHEMA))
        .groupBy("window_start_us")
        .agg(
            F.sum("count").alias("count"),
            F.sum("sum").alias("sum"),
            F.min("min").alias("min"),
            F.max("max").alias("max"),
        )
    )
    return merged.select(
        F.timestamp_micros("window_start_us").alias("window_start"),
        "count",
        "sum",
        "min",
        "max",
        (F.col("sum") / F.col("count")).alias("avg"),
    )
