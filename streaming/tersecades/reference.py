"""The same queries on raw (unencoded) Arrow data: the baseline of the benchmark and tests.

Two honest baselines, both vectorised: Arrow compute kernels with ``Table.group_by`` (the
stock way), and numpy (often faster for this shape: a dense window index and ``bincount``-style
reductions). The benchmark compares the encoded operators against the faster of the two.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streaming.tersecades.operators import Predicate

__all__ = ["arrow_windowed_filter_aggregate", "numpy_windowed_filter_aggregate"]

_ARROW_OPS = {
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
    "==": pc.equal,
    "!=": pc.not_equal,
}


def _storage(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return array.cast(pa.int64()) if pa.types.is_timestamp(array.type) else array


def arrow_windowed_filter_aggregate(
    table: pa.Table | pa.RecordBatch,
    value: str,
    window_column: str,
    window: int,
    where: list[Predicate] | tuple[Predicate, ...] = (),
) -> list[tuple]:
    """``(window_start, count, sum, min, max)`` rows, sorted, with Arrow compute kernels."""
    mask = None
    for predicate in where:
        hit = _ARROW_OPS[predicate.op](_storage(table.column(predicate.column)), predicate.value)
        mask = hit if mask is None else pc.and_(mask, hit)
    filtered = table.filter(mask) if mask is not None else table
    ts = _storage(filtered.column(window_column))
    start = pc.multiply(pc.floor(pc.divide(pc.cast(ts, pa.float64()), window)), window)
    grouped = pa.table({"w": pc.cast(start, pa.int64()), "v": filtered.column(value)})
    grouped = grouped.filter(pc.is_valid(grouped.column("v")))
    out = grouped.group_by("w").aggregate(
        [("v", "count"), ("v", "sum"), ("v", "min"), ("v", "max")]
    )
    out = out.sort_by("w")
    return list(
        zip(*(out.column(c).to_pylist() for c in ("w", "v_count", "v_sum", "v_min", "v_max")))
    )


def numpy_windowed_filter_aggregate(
    table: pa.Table | pa.RecordBatch,
    value: str,
    window_column: str,
    window: int,
    where: list[Predicate] | tuple[Predicate, ...] = (),
) -> list[tuple]:
    """Same result with numpy on the raw int64 columns (no nulls: the telemetry shape)."""
    columns = {}

    def col(name: str) -> np.ndarray:
        if name not in columns:
            array = _storage(table.column(name))
            if isinstance(array, pa.ChunkedArray):
                array = array.combine_chunks()
            if array.null_count:
                raise ValueError(
                    f"numpy baseline supports columns without nulls; {name!r} has nulls"
                )
            columns[name] = array.to_numpy()
        return columns[name]

    mask = np.ones(table.num_rows, bool)
    for predicate in where:
        x = col(predicate.column)
        mask &= {
            "<": np.less,
            "<=": np.less_equal,
            ">": np.greater,
            ">=": np.greater_equal,
            "==": np.equal,
            "!=": np.not_equal,
        }[predicate.op](x, predicate.value)
    windows = col(window_column)[mask] // window
    values = col(value)[mask]
    if len(values) == 0:
        return []
    first = windows.min()
    index = windows - first
    size = int(index.max()) + 1
    counts = np.bincount(index, minlength=size)
    sums = np.zeros(size, np.int64)
    np.add.at(sums, index, values)
    mins = np.full(size, np.iinfo(np.int64).max)
    maxs = np.full(size, np.iinfo(np.int64).min)
    np.minimum.at(mins, index, values)
    np.maximum.at(maxs, index, values)
    return [
        (int((first + k) * window), int(counts[k]), int(sums[k]), int(mins[k]), int(maxs[k]))
        for k in np.flatnonzero(counts)
    ]
