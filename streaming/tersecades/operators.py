"""Operators that run on encoded batches without decompressing them (TerseCades's execution
on compressed data), through the compiled kernel of ``kernels/scan.py``.

* **filter** — each block's zone map accepts or skips it whole; in the rest the predicate
  constant is translated into the block's code space (``c - base`` for frame-of-reference
  lanes, a code range for sorted dictionaries) and compared with the packed codes as they are
  unpacked, a chunk at a time; only the few exceptions are compared as full values.
* **aggregate** — ``count``, ``sum = base*n + sum(lanes)``, ``min``/``max`` from the lanes,
  in the same pass over the block as the filter; ``avg = sum/count``.
* **group by** a narrow code: a window key (``TimestampWindow``), a dictionary code
  (``Dictionary``) or any integer. A block whose key is constant (the common case for windows)
  contributes one partial aggregate, with no per-row key work at all.

Sums are exact Python integers (no int64 overflow), as in SQL engines that widen ``SUM``.
Blocks that are not plain frame-of-reference or dictionary (stride, delta, delta-of-delta,
escape kinds) are decoded for that block only, inside the kernel. ``operators_reference.py``
is the pure-numpy version of the same operators, kept as what the tests compare against.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from streaming.tersecades.codecs import BaseDelta, Dictionary, EncodedColumn, TimestampWindow
from streaming.tersecades.errors import CorruptEncodingError
from streaming.tersecades.kernels.bits import readonly
from streaming.tersecades.kernels.decode import STATUS, column_arrays
from streaming.tersecades.kernels.scan import SLOTS, scan_blocks
from streaming.tersecades.lightweight import Adaptive
from streaming.tersecades.spec import EncodedBatch

__all__ = [
    "OPS",
    "Aggregate",
    "Predicate",
    "Selection",
    "aggregate",
    "finish",
    "select",
    "windowed_filter_aggregate",
]

OPS = ("<", "<=", ">", ">=", "==", "!=")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Predicate:
    """``column op value`` on an integer-domain column (``value`` in its storage unit, e.g.
    microseconds for timestamps)."""

    column: str
    op: str
    value: int

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"predicate operator {self.op!r} is not one of {OPS}")
        if isinstance(self.value, bool) or not isinstance(self.value, int | np.integer):
            raise TypeError(
                f"predicate value for {self.column!r} must be an int, got {self.value!r}"
            )

    def interval(self) -> tuple[int, int, bool]:
        """``(lo, hi, negate)``: the predicate is ``lo <= x <= hi`` (or its negation)."""
        v = int(self.value)
        lo, hi, negate = {
            "<": (_I64_MIN, v - 1, False),
            "<=": (_I64_MIN, v, False),
            ">": (v + 1, _I64_MAX, False),
            ">=": (v, _I64_MAX, False),
            "==": (v, v, False),
            "!=": (v, v, True),
        }[self.op]
        return lo, hi, negate


@dataclass
class Selection:
    """Rows selected by a conjunction of predicates, and how the blocks were handled."""

    mask: np.ndarray | None  # bool per row; None = every row
    blocks_skipped: int = 0
    blocks_accepted: int = 0
    blocks_compared: int = 0

    def count(self, num_rows: int) -> int:
        return num_rows if self.mask is None else int(self.mask.sum())


def _int_column(batch: EncodedBatch, name: str) -> EncodedColumn:
    if name not in batch.columns:
        raise KeyError(f"no column {name!r} in the encoded batch (have {sorted(batch.columns)})")
    column = batch.columns[name]
    if not isinstance(column.codec, BaseDelta | Adaptive | TimestampWindow):
        raise TypeError(
            f"column {name!r} uses {type(column.codec).__name__}; compressed filters and aggregates need an integer-domain codec (Adaptive, BaseDelta or TimestampWindow)"
        )
    return column


@dataclass(frozen=True)
class Aggregate:
    """count / sum / min / max (and avg) of a column, per group key (sorted; ``None`` = nulls).

    ``sums`` are exact Python ints; ``mins``/``maxs`` are in the column's storage integers.
    """

    keys: list
    counts: np.ndarray
    sums: list[int]
    mins: np.ndarray
    maxs: np.ndarray
    key_name: str = "key"
    stats: dict = field(default_factory=dict)

    @property
    def avgs(self) -> np.ndarray:
        return np.array([s / c for s, c in zip(self.sums, self.counts)], dtype=np.float64)

    def rows(self) -> list[tuple]:
        """``(key, count, sum, min, max)`` tuples, for comparisons with SQL results."""
        return [
            (k, int(c), int(s), int(lo), int(hi))
            for k, c, s, lo, hi in zip(self.keys, self.counts, self.sums, self.mins, self.maxs)
        ]

    def to_table(self) -> pa.Table:
        sums: pa.Array
        if all(_I64_MIN <= s <= _I64_MAX for s in self.sums):
            sums = pa.array(self.sums, pa.int64())
        else:
            sums = pa.array(self.sums, pa.decimal128(38, 0))
        return pa.table(
            {
                self.key_name: self.keys,
                "count": pa.array(self.counts, pa.int64()),
                "sum": sums,
                "min": pa.array(self.mins, pa.int64()),
                "max": pa.array(self.maxs, pa.int64()),
                "avg": pa.array(self.avgs, pa.float64()),
            }
        )


def select(batch: EncodedBatch, predicates: list[Predicate] | tuple[Predicate, ...]) -> Selection:
    """Evaluate ``AND`` of ``predicates`` on the encoded batch (compiled kernel: zone maps,
    then codes compared in code space); the row mask is materialised only here."""
    if not predicates:
        return Selection(mask=None)
    mask, stats = _premask(batch, tuple(predicates), np.empty(0, np.uint8))
    return Selection(mask.view(bool), *(int(s) for s in stats))


def aggregate(
    batch: EncodedBatch,
    value: str,
    *,
    where: list[Predicate] | tuple[Predicate, ...] = (),
    by: str | None = None,
) -> Aggregate:
    """``SELECT by, count(value), sum, min, max FROM batch WHERE ... GROUP BY by`` on the
    encoded batch, fused per block in one compiled pass (``kernels/scan.py``). Groups with no
    selected non-null value are omitted (as in SQL)."""
    key_column = _key_column(batch, by)
    where = tuple(where)
    for name in (value, *(p.column for p in where)):
        _int_column(batch, name)  # one clear error for a missing or non-integer column
    # up to SLOTS columns fused in one pass; predicates on further columns pre-filter rows
    fused = list(dict.fromkeys([value, *([by] if by else []), *(p.column for p in where)]))
    fused = fused[:SLOTS]
    premask, stats = _premask(batch, tuple(p for p in where if p.column not in fused), None)
    slots = {name: i for i, name in enumerate(fused)}
    inner = tuple(p for p in where if p.column in slots)
    result = _run_scan(
        batch, fused, inner, slots[value], slots.get(by, -1), key_column, premask, want_mask=False
    )
    stats = stats + result[2]
    # partials: (key, key is null, count, anchor, offset sum lo/hi, min/max offsets)
    used = result[3]
    keys, key_null, count, anchor = (a[:used] for a in result[4:8])
    lo, hi, low, high = (a[:used] for a in result[8:12])
    sums = anchor.astype(object) * count + hi.astype(object) * (1 << 64) + lo.astype(object)
    parts = _Parts()
    parts.add(
        keys,
        key_null,
        count,
        sums,
        (anchor.view(np.uint64) + low.view(np.uint64)).view(np.int64),
        (anchor.view(np.uint64) + high.view(np.uint64)).view(np.int64),
    )
    return finish(batch, parts, key_column, by, stats)


def _key_column(batch: EncodedBatch, by: str | None) -> EncodedColumn | None:
    if by is None:
        return None
    if by not in batch.columns:
        raise KeyError(f"no column {by!r} in the encoded batch (have {sorted(batch.columns)})")
    key_column = batch.columns[by]
    if not isinstance(key_column.codec, Adaptive | BaseDelta | TimestampWindow | Dictionary):
        raise TypeError(
            f"group-by column {by!r} must use Adaptive, BaseDelta, TimestampWindow or Dictionary"
        )
    return key_column


def _premask(
    batch: EncodedBatch, predicates: tuple[Predicate, ...], premask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Row mask (uint8) of ``AND(predicates)``, evaluated ``SLOTS`` columns per kernel call,
    and the zone-map stats; ``premask`` None and no predicates: no mask at all."""
    stats = np.zeros(3, np.int64)
    mask = np.empty(0, np.uint8) if premask is None else premask
    names = list(dict.fromkeys(_int_column(batch, p.column).name for p in predicates))
    for first in range(0, len(names), SLOTS):
        group = names[first : first + SLOTS]
        inner = tuple(p for p in predicates if p.column in group)
        result = _run_scan(batch, group, inner, 0, -1, None, mask, want_mask=True)
        mask, stats = result[-1], stats + result[2]
    return mask, stats


def _run_scan(batch, names, where, value_slot, key_slot, key_column, premask, *, want_mask):
    """One call of the fused kernel over up to ``SLOTS`` columns (unused slots repeat the
    first column, so every call has one compiled shape)."""
    columns = [column_arrays(batch.columns[n].blocks) for n in names]
    columns += [columns[0]] * (SLOTS - len(columns))
    slots = {name: i for i, name in enumerate(names)}
    bounds = [p.interval() for p in where]
    # a constant beyond int64 (x == 2**63) can make the interval empty only after clipping
    inside = [(max(lo, _I64_MIN), min(hi, _I64_MAX)) for lo, hi, _ in bounds]
    empty = np.array([lo > hi for lo, hi in inside], np.bool_)
    # an empty interval is passed as (max, min), which no value of any block mode lies in: its
    # rows are then compared as matching nothing (negated: every non-null row) — clipped to
    # (min, min) instead, x != -2**63 - 1 dropped the rows holding -2**63
    clip = [(_I64_MAX, _I64_MIN) if lo > hi else (lo, hi) for lo, hi in inside]
    key_map = key_map_off = np.empty(0, np.int64)
    if key_column is not None and isinstance(key_column.codec, Dictionary):
        key_map, _ = Dictionary.global_codes(key_column)
        key_map_off = key_column.dictionary.offsets.to_numpy().astype(np.int64)
    mask_out = np.empty(batch.num_rows if want_mask else 0, np.uint8)
    result = scan_blocks(  # every input read-only: one compiled signature
        tuple(columns),
        value_slot,
        key_slot,
        readonly(key_map, np.int64),
        readonly(key_map_off, np.int64),
        readonly([slots[p.column] for p in where], np.int64),
        readonly([c[0] for c in clip], np.int64),
        readonly([c[1] for c in clip], np.int64),
        readonly(empty, np.bool_),
        readonly([negate for _, _, negate in bounds], np.bool_),
        readonly(premask, np.uint8),
        mask_out,
        want_mask,
    )
    if result[0] != 0:
        raise CorruptEncodingError(f"encoded batch block {result[1]}: {STATUS[result[0]]}")
    return (*result, mask_out)


def finish(
    batch: EncodedBatch,
    parts: _Parts,
    key_column: EncodedColumn | None,
    by: str | None,
    stats: np.ndarray,
) -> Aggregate:
    """Merge the partials of an aggregate exactly and label its groups (shared with the
    numpy reference)."""
    keys, counts, sums, mins, maxs = _combine(parts)
    info = {
        "blocks": batch.num_blocks,
        "skipped": int(stats[0]),
        "accepted": int(stats[1]),
        "compared": int(stats[2]),
    }
    labels = _labels(key_column, keys) if key_column is not None else [None] * len(keys)
    # order by the user-visible key (dictionary codes are not in string order), nulls last;
    # integer and window keys are already in that order
    in_order = key_column is None or not isinstance(key_column.codec, Dictionary)
    order = (
        list(range(len(labels)))
        if in_order
        else sorted(range(len(labels)), key=lambda i: (labels[i] is None, labels[i]))
    )
    if order != list(range(len(labels))):
        labels = [labels[i] for i in order]
        counts, mins, maxs = counts[order], mins[order], maxs[order]
        sums = [sums[i] for i in order]
    return Aggregate(labels, counts, sums, mins, maxs, key_name=by or "key", stats=info)


def windowed_filter_aggregate(
    batch: EncodedBatch,
    value: str,
    window_column: str,
    where: list[Predicate] | tuple[Predicate, ...] = (),
) -> Aggregate:
    """Per tumbling window of ``window_column`` (a ``TimestampWindow`` column): count, sum,
    min, max, avg of ``value`` over the rows that satisfy ``where``."""
    codec = batch.columns[window_column].codec
    if not isinstance(codec, TimestampWindow):
        raise TypeError(
            f"window column {window_column!r} must be encoded with TimestampWindow, not {type(codec).__name__}"
        )
    return aggregate(batch, value, where=where, by=window_column)


@dataclass
class _Parts:
    keys: list[np.ndarray] = field(default_factory=list)
    key_null: list[np.ndarray] = field(default_factory=list)
    counts: list[np.ndarray] = field(default_factory=list)
    sums: list[np.ndarray] = field(default_factory=list)  # object arrays of Python ints
    mins: list[np.ndarray] = field(default_factory=list)
    maxs: list[np.ndarray] = field(default_factory=list)

    def add(self, keys, key_null, counts, sums, mins, maxs) -> None:
        live = counts > 0
        self.keys.append(keys[live])
        self.key_null.append(key_null[live])
        self.counts.append(counts[live])
        self.sums.append(sums[live])
        self.mins.append(mins[live])
        self.maxs.append(maxs[live])


def _combine(parts: _Parts):
    if not parts.keys:
        empty = np.empty(0, np.int64)
        return [], empty, [], empty, empty
    keys = np.concatenate(parts.keys).astype(np.int64)
    null = np.concatenate(parts.key_null)
    counts = np.concatenate(parts.counts).astype(np.int64)
    sums = np.concatenate(parts.sums).astype(object)
    mins = np.concatenate(parts.mins).astype(np.int64)
    maxs = np.concatenate(parts.maxs).astype(np.int64)
    if len(keys) == 0:
        empty = np.empty(0, np.int64)
        return [], empty, [], empty, empty
    keys = np.where(null, 0, keys)
    order = np.lexsort((keys, null))
    keys, null, counts, sums, mins, maxs = (
        a[order] for a in (keys, null, counts, sums, mins, maxs)
    )
    new = np.ones(len(keys), bool)
    new[1:] = (keys[1:] != keys[:-1]) | (null[1:] != null[:-1])
    starts = np.flatnonzero(new)
    out_keys = [None if nl else int(k) for k, nl in zip(keys[starts], null[starts])]
    return (
        out_keys,
        np.add.reduceat(counts, starts),
        [int(s) for s in np.add.reduceat(sums, starts)],
        np.minimum.reduceat(mins, starts),
        np.maximum.reduceat(maxs, starts),
    )


def _labels(key: EncodedColumn, keys: list) -> list:
    """Group keys as user values: window starts, dictionary strings, or the integers."""
    if isinstance(key.codec, Dictionary):
        _, shared = Dictionary.global_codes(key)
        return [None if k is None else shared[k].as_py() for k in keys]
    if isinstance(key.codec, TimestampWindow):
        return [None if k is None else k * key.codec.window + key.codec.origin for k in keys]
    return keys
