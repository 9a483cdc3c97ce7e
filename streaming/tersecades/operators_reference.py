"""The numpy reference of the operators on encoded batches: the answer the compiled kernels
(``operators.py`` -> ``kernels/scan.py``) are tested against, never the production path.

Same semantics, vectorised with numpy over equal-shape groups of blocks: zone maps first, then
the narrow deltas compared against the constant translated into each block's delta domain;
blocks that are not plain frame-of-reference are decoded with ``blocks.reference_decode_int64``.
"""

from __future__ import annotations

import numpy as np

from streaming.tersecades.blocks import (
    IntBlocks,
    block_rows,
    delta_matrix,
    groups,
    read_rows,
    reference_decode_int64,
    write_rows,
)
from streaming.tersecades.blocks import lane_max as blocks_lane_max
from streaming.tersecades.codecs import Dictionary, EncodedColumn
from streaming.tersecades.operators import (
    _I64_MAX,
    _I64_MIN,
    Aggregate,
    Predicate,
    Selection,
    _int_column,
    _key_column,
    _Parts,
    finish,
)
from streaming.tersecades.spec import EncodedBatch

__all__ = ["reference_aggregate", "reference_select"]

_NONE, _ALL, _SOME = 0, 1, 2


class _Deltas:
    """Delta matrices of one operator call, memoised for bit lanes (unpacking them is the
    only per-row work a filter and an aggregate on the same column would otherwise repeat)."""

    def __init__(self) -> None:
        self._cache: dict = {}

    def get(self, blocks: IntBlocks, group: np.ndarray, n: int, w: int) -> np.ndarray:
        if not blocks.bits:
            return delta_matrix(blocks, group, n, w)  # a view: nothing to save
        key = (id(blocks.deltas.data), n, w, group.tobytes())
        hit = self._cache.get(key)
        if hit is None or hit[0] is not blocks.deltas.data:
            hit = (blocks.deltas.data, delta_matrix(blocks, group, n, w))
            self._cache[key] = hit
        return hit[1]

    def exceptions(self, blocks: IntBlocks) -> tuple[np.ndarray, np.ndarray]:
        """(row, value) of the column's exceptions, read once per operator call (a column that
        is both filtered and aggregated needs them twice)."""
        key = ("exceptions", id(blocks))
        hit = self._cache.get(key)
        if hit is None or hit[0] is not blocks:  # the reference held keeps the id unique
            hit = (blocks, blocks.exception_rows())
            self._cache[key] = hit
        return hit[1]

    def rows_of(self, blocks: IntBlocks, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Decoded values (and validity) of the rows of blocks ``ids``. A column that is mostly
        decoded (delta, dictionary, escape kinds) is decoded once per operator call, whole, and
        shared by its filter and its aggregate."""
        if 2 * len(ids) < blocks.num_blocks:
            return reference_decode_int64(blocks.take(ids))
        index = block_rows(blocks, ids)
        key = ("decoded", id(blocks.deltas.data))
        hit = self._cache.get(key)
        if hit is None or hit[0] is not blocks.deltas.data:
            hit = (blocks.deltas.data, reference_decode_int64(blocks))
            self._cache[key] = hit
        values, valid = hit[1]
        return values[index], None if valid is None else valid[index]


def reference_select(
    batch: EncodedBatch,
    predicates: list[Predicate] | tuple[Predicate, ...],
    deltas: _Deltas | None = None,
) -> Selection:
    """Evaluate ``AND`` of ``predicates`` on the encoded batch."""
    selection = Selection(mask=None)
    deltas = deltas or _Deltas()
    for predicate in predicates:
        column = _int_column(batch, predicate.column)
        mask = _predicate_mask(column.blocks, predicate, selection, deltas)
        selection.mask = mask if selection.mask is None else selection.mask & mask
    return selection


def _predicate_mask(
    blocks: IntBlocks, predicate: Predicate, stats: Selection, deltas: _Deltas
) -> np.ndarray:
    lo, hi, negate = predicate.interval()
    lo, hi = max(lo, _I64_MIN), min(hi, _I64_MAX)
    if lo > hi:  # e.g. x < INT64_MIN: nothing is inside
        inside = np.full(blocks.num_blocks, _NONE)
    else:
        live = blocks.nulls < blocks.rows
        none = ~live | (blocks.vmax < lo) | (blocks.vmin > hi)
        every = live & (blocks.nulls == 0) & (blocks.vmin >= lo) & (blocks.vmax <= hi)
        inside = np.where(none, _NONE, np.where(every, _ALL, _SOME))
    if negate:
        outside_all = (inside == _NONE) & (blocks.nulls == 0) & (blocks.rows > 0)
        state = np.where(outside_all, _ALL, np.where(inside == _ALL, _NONE, _SOME))
        # a block with nulls and nothing inside still needs its null rows cleared
        state = np.where((inside == _NONE) & (blocks.nulls == blocks.rows), _NONE, state)
    else:
        state = inside
    stats.blocks_skipped += int((state == _NONE).sum())
    stats.blocks_accepted += int((state == _ALL).sum())
    partial = np.flatnonzero(state == _SOME)
    stats.blocks_compared += len(partial)

    mask = np.repeat(state == _ALL, blocks.rows)
    if len(partial) == 0:
        return mask
    starts = blocks.starts
    strided = partial[~blocks.plain[partial]]
    plain = partial[blocks.plain[partial]]
    for n, w, group in groups(blocks, plain):
        if n == 0:
            continue
        result = _compare_group(blocks, group, n, w, lo, hi, deltas)
        if negate:
            result = ~result
        write_rows(mask, starts, group, n, result)
    if len(strided):
        values, _ = deltas.rows_of(blocks, strided)
        index = block_rows(blocks, strided)
        result = (values >= lo) & (values <= hi)
        mask[index] = ~result if negate else result
    # exceptions of the compared blocks: full-value comparison
    exc_rows, exc_vals = deltas.exceptions(blocks)
    if len(exc_rows):
        exc_block = np.repeat(np.arange(blocks.num_blocks), blocks.exc_pos.lengths // 2)
        compared = np.zeros(blocks.num_blocks, bool)
        compared[plain] = True
        keep = compared[exc_block]
        result = (exc_vals[keep] >= lo) & (exc_vals[keep] <= hi)
        mask[exc_rows[keep]] = ~result if negate else result
    if int(blocks.nulls[partial].sum()):
        mask[blocks.null_rows()] = False
    return mask


def _compare_group(
    blocks: IntBlocks, group: np.ndarray, n: int, w: int, lo: int, hi: int, cache: _Deltas
) -> np.ndarray:
    """``lo <= value <= hi`` for the non-exception rows of equal-shape plain blocks, computed on
    the narrow deltas: the constants are moved into each block's delta domain and clipped to
    the lane width (non-exception deltas never exceed it)."""
    base = blocks.base[group]
    if w == 0:
        hit = (base >= lo) & (base <= hi)
        return np.broadcast_to(hit[:, None], (len(group), n)).copy()
    lane_max = blocks_lane_max(w, blocks.bits)
    vmax = blocks.vmax[group]
    low = np.maximum(base, lo)  # in [vmin, vmax] for partial blocks
    high = np.minimum(vmax, hi)
    t_lo = (low.view(np.uint64) - base.view(np.uint64)).astype(np.uint64)
    t_hi = (high.view(np.uint64) - base.view(np.uint64)).astype(np.uint64)
    # only exceptions can match (constant beyond the lane), or nothing can (empty interval)
    unreachable = (t_lo > lane_max) | (high < low)
    deltas = cache.get(blocks, group, n, w)
    dtype = deltas.dtype
    t_lo_w = np.minimum(t_lo, lane_max).astype(dtype)[:, None]
    t_hi_w = np.minimum(t_hi, lane_max).astype(dtype)[:, None]
    if not t_lo.any():
        result = deltas <= t_hi_w
    elif (t_hi >= lane_max).all():
        result = deltas >= t_lo_w
    else:
        result = (deltas >= t_lo_w) & (deltas <= t_hi_w)
    if unreachable.any():
        result[unreachable] = False
    return result


# ------------------------------------------------------------------------------- aggregates


def reference_aggregate(
    batch: EncodedBatch,
    value: str,
    *,
    where: list[Predicate] | tuple[Predicate, ...] = (),
    by: str | None = None,
) -> Aggregate:
    """``SELECT by, count(value), sum, min, max FROM batch WHERE ... GROUP BY by`` on the
    encoded batch. Groups with no selected non-null value are omitted (as in SQL)."""
    column = _int_column(batch, value)
    cache = _Deltas()
    selection = reference_select(batch, where, cache)
    key_column = _key_column(batch, by)
    parts = _aggregate_parts(column.blocks, selection.mask, key_column, cache)
    stats = np.array(
        [selection.blocks_skipped, selection.blocks_accepted, selection.blocks_compared]
    )
    return finish(batch, parts, key_column, by, stats)


def _block_keys(key: EncodedColumn | None, num_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block: the key if it is constant over the block's rows, and which blocks qualify."""
    if key is None:
        return np.zeros(num_blocks, np.int64), np.ones(num_blocks, bool)
    kb = key.blocks
    constant = (kb.vmin == kb.vmax) & (kb.nulls == 0) & (kb.rows > 0)
    keys = kb.vmin.copy()
    if isinstance(key.codec, Dictionary):
        codes, _ = Dictionary.global_codes(key)
        offsets = key.dictionary.offsets.to_numpy().astype(np.int64)
        constant &= (keys >= 0) & (keys < np.diff(offsets))
        flat = offsets[:-1] + np.where(constant, keys, 0)
        keys = np.zeros(num_blocks, np.int64)
        keys[constant] = codes[flat[constant]]
    return keys, constant


def _row_keys(key: EncodedColumn | None, blocks_ids: np.ndarray, sub_rows: np.ndarray):
    """Decoded keys (global codes for dictionaries) and validity for the rows of some blocks."""
    if key is None:
        n = int(sub_rows.sum())
        return np.zeros(n, np.int64), np.ones(n, bool)
    sub = key.blocks.take(blocks_ids)
    values, valid = reference_decode_int64(sub)
    valid = np.ones(len(values), bool) if valid is None else valid
    if isinstance(key.codec, Dictionary):
        codes, _ = Dictionary.global_codes(key)
        offsets = key.dictionary.offsets.to_numpy().astype(np.int64)
        first = np.repeat(offsets[:-1][blocks_ids], sub_rows)
        flat = first + np.where(valid, values, 0)
        values = np.zeros(len(values), np.int64)
        values[valid] = codes[flat[valid]]
    return values, valid


def _aggregate_parts(
    blocks: IntBlocks, mask: np.ndarray | None, key: EncodedColumn | None, cache: _Deltas
) -> _Parts:
    parts = _Parts()
    nb = blocks.num_blocks
    block_key, constant = _block_keys(key, nb)
    fast = constant & blocks.plain
    fast_ids = np.flatnonzero(fast)
    starts = blocks.starts

    # rows that count: selected, non-null, non-exception (exceptions are added separately)
    use = np.ones(blocks.num_rows, bool) if mask is None else mask.copy()
    if int(blocks.nulls.sum()):
        use[blocks.null_rows()] = False
    exc_rows, exc_vals = cache.exceptions(blocks)
    exc_selected = use[exc_rows]
    use[exc_rows] = False

    count = np.zeros(nb, np.int64)
    sum_delta = np.zeros(nb, np.uint64)
    sum_delta_hi = np.zeros(nb, np.uint64)  # only for 8-byte lanes
    min_delta = np.zeros(nb, np.uint64)
    max_delta = np.zeros(nb, np.uint64)
    for n, w, group in groups(blocks, fast_ids):
        if n == 0:
            continue
        chosen = read_rows(use, starts, group, n)
        count[group] = chosen.view(np.uint8).sum(axis=1, dtype=np.uint32)
        if w == 0:
            continue
        deltas = cache.get(blocks, group, n, w)
        lane_max = deltas.dtype.type(np.iinfo(deltas.dtype).max)
        # multiply/or by the mask instead of np.where: one cheap pass each, no branches
        picked = deltas * chosen
        lane = deltas.dtype.itemsize
        if lane == 8:
            sum_delta[group] = (picked & np.uint64(0xFFFF_FFFF)).sum(axis=1, dtype=np.uint64)
            sum_delta_hi[group] = (picked >> np.uint64(32)).sum(axis=1, dtype=np.uint64)
        else:  # n <= 65536 rows of <= 2-byte lanes fit uint32; 4-byte lanes need uint64
            sum_delta[group] = picked.sum(axis=1, dtype=np.uint32 if lane <= 2 else np.uint64)
        min_delta[group] = (deltas | (~chosen * lane_max)).min(axis=1)
        max_delta[group] = picked.max(axis=1)

    base = blocks.base
    sums = (
        base.astype(object) * count.astype(object)
        + sum_delta.astype(object)
        + sum_delta_hi.astype(object) * (1 << 32)
    )
    # min/max of the non-exception rows (base + delta, exact modulo 2^64)
    mins = (base.view(np.uint64) + min_delta).view(np.int64)
    maxs = (base.view(np.uint64) + max_delta).view(np.int64)
    # exceptions of fast blocks
    exc_block = np.repeat(np.arange(nb), blocks.exc_pos.lengths // 2)
    pick = exc_selected & fast[exc_block]
    if pick.any():
        e_block, e_val = exc_block[pick], exc_vals[pick]
        had = count > 0
        e_count = np.bincount(e_block, minlength=nb)
        e_min = np.full(nb, _I64_MAX, np.int64)
        e_max = np.full(nb, _I64_MIN, np.int64)
        np.minimum.at(e_min, e_block, e_val)
        np.maximum.at(e_max, e_block, e_val)
        mins = np.where(had, np.minimum(mins, e_min), e_min)
        maxs = np.where(had, np.maximum(maxs, e_max), e_max)
        sums = sums + _exact_group_sums(e_block, e_val, nb)
        count = count + e_count
    parts.add(
        block_key[fast],
        np.zeros(len(fast_ids), bool),
        count[fast],
        sums[fast],
        mins[fast],
        maxs[fast],
    )

    slow_ids = np.flatnonzero(~fast & (blocks.rows > 0))
    if len(slow_ids):
        sub_rows = blocks.rows[slow_ids].astype(np.int64)
        index = block_rows(blocks, slow_ids)
        values, valid = cache.rows_of(blocks, slow_ids)
        keep = np.ones(len(values), bool) if mask is None else mask[index].copy()
        if valid is not None:
            keep &= valid
        if key is None:  # one group: reduce the kept values directly, no keys to sort
            _one_group(parts, values[keep])
            return parts
        keys, key_valid = _row_keys(key, slow_ids, sub_rows)
        _rows_by_key(parts, keys[keep], key_valid[keep], values[keep])
    return parts


def _one_group(parts: _Parts, values: np.ndarray) -> None:
    """count / exact sum / min / max of ``values`` as the single group of an ungrouped query."""
    if len(values) == 0:
        return
    total = int((values >> 32).sum()) * (1 << 32) + int((values & 0xFFFF_FFFF).sum())
    parts.add(
        np.zeros(1, np.int64),
        np.zeros(1, bool),
        np.array([len(values)], np.int64),
        np.array([total], object),
        values.min(keepdims=True),
        values.max(keepdims=True),
    )


def _exact_group_sums(group: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per group exact sums of int64 values, as Python ints (split into 32-bit halves)."""
    hi = np.zeros(size, np.int64)
    lo = np.zeros(size, np.int64)
    np.add.at(hi, group, values >> 32)
    np.add.at(lo, group, values & 0xFFFF_FFFF)
    return hi.astype(object) * (1 << 32) + lo.astype(object)


def _rows_by_key(
    parts: _Parts, keys: np.ndarray, key_valid: np.ndarray, values: np.ndarray
) -> None:
    if len(values) == 0:
        return
    keys = np.where(key_valid, keys, 0)
    # window keys of a time-ordered stream arrive sorted: then no sort is needed
    if not (key_valid.all() and (keys[1:] >= keys[:-1]).all()):
        order = np.lexsort((keys, ~key_valid))
        keys, key_valid, values = keys[order], key_valid[order], values[order]
    new = np.ones(len(keys), bool)
    new[1:] = (keys[1:] != keys[:-1]) | (key_valid[1:] != key_valid[:-1])
    starts = np.flatnonzero(new)
    hi = np.add.reduceat(values >> 32, starts)
    lo = np.add.reduceat(values & 0xFFFF_FFFF, starts)
    sums = hi.astype(object) * (1 << 32) + lo.astype(object)
    parts.add(
        keys[starts],
        ~key_valid[starts],
        np.diff(np.append(starts, len(keys))),
        sums,
        np.minimum.reduceat(values, starts),
        np.maximum.reduceat(values, starts),
    )
