"""Compiled encode passes: bit packing of every block and the patched exceptions, written in
one pass per block, and the escape-code lookup of ESC blocks (the numpy references are
``bitpack.pack_blocks`` and ``blocks.pack_exceptions``; the tests compare them byte for byte).

The encoder's decisions (kind and width per block, from samples) stay in numpy in
``adaptive.py``: they touch a few percent of the rows. What touches every row — zeroing the
exception lanes, writing their positions and ``value - anchor`` in the fewest of 1/2/4/8
bytes, packing the lanes — runs here.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from streaming.tersecades.blocks import DELTA, DOD, FOR
from streaming.tersecades.kernels.bits import pack_into, readonly, words_for

__all__ = ["block_min_max", "encode_clean", "escape_codes", "pack_blocks", "pack_column"]

_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


@njit(cache=True)
def _pack_blocks(lanes, width):
    """Pack each row of ``lanes`` (nb, n) at its block's bit ``width``: (offsets, bytes)."""
    nb, n = lanes.shape
    offsets = np.zeros(nb + 1, np.int64)
    for b in range(nb):
        offsets[b + 1] = offsets[b] + ((n * np.int64(width[b]) + 7) >> 3)
    data = np.empty(offsets[nb], np.uint8)
    words = np.empty(words_for(n, 64) + 1, np.uint64)
    for b in range(nb):
        pack_into(lanes[b], 0, n, np.int64(width[b]), words, data, offsets[b])
    return offsets, data


@njit(cache=True)
def _pack_column(lanes, width, exc, exact, anchor):
    """Pack blocks whose rows ``exc`` are exceptions: their lanes become 0, their positions go
    to a uint16 payload and ``exact - anchor`` (mod 2^64) to the narrowest of 1/2/4/8 bytes that
    holds every exception of the block. Returns the offsets and bytes of the lanes, the
    positions and the values (the layout ``blocks.IntBlocks`` reads)."""
    nb, n = lanes.shape
    counts = np.zeros(nb, np.int64)
    items = np.ones(nb, np.int64)
    for b in range(nb):
        widest = np.uint64(0)
        base = np.uint64(anchor[b])
        for i in range(n):
            if exc[b, i]:
                counts[b] += 1
                widest = max(widest, np.uint64(exact[b, i]) - base)
        if widest >= np.uint64(1 << 32):
            items[b] = 8
        elif widest >= np.uint64(1 << 16):
            items[b] = 4
        elif widest >= np.uint64(1 << 8):
            items[b] = 2
    lane_off = np.zeros(nb + 1, np.int64)
    pos_off = np.zeros(nb + 1, np.int64)
    val_off = np.zeros(nb + 1, np.int64)
    for b in range(nb):
        lane_off[b + 1] = lane_off[b] + ((n * np.int64(width[b]) + 7) >> 3)
        pos_off[b + 1] = pos_off[b] + 2 * counts[b]
        val_off[b + 1] = val_off[b] + items[b] * counts[b]
    lane_data = np.empty(lane_off[nb], np.uint8)
    pos_data = np.empty(pos_off[nb], np.uint8)
    val_data = np.empty(val_off[nb], np.uint8)
    words = np.empty(words_for(n, 64) + 1, np.uint64)
    row = np.empty(n, np.uint64)
    for b in range(nb):
        if counts[b] == 0:  # the usual block: its lanes are packed as they are
            pack_into(lanes[b], 0, n, np.int64(width[b]), words, lane_data, lane_off[b])
            continue
        base = np.uint64(anchor[b])
        at_pos, at_val, item = pos_off[b], val_off[b], items[b]
        for i in range(n):
            row[i] = lanes[b, i]
        if counts[b]:
            for i in range(n):
                if exc[b, i]:
                    row[i] = 0
                    pos_data[at_pos] = np.uint8(i & 0xFF)
                    pos_data[at_pos + 1] = np.uint8(i >> 8)
                    at_pos += 2
                    offset = np.uint64(exact[b, i]) - base
                    for byte in range(item):
                        val_data[at_val + byte] = np.uint8((offset >> np.uint64(8 * byte)) & 0xFF)
                    at_val += item
        pack_into(row, 0, n, np.int64(width[b]), words, lane_data, lane_off[b])
    return lane_off, lane_data, pos_off, pos_data, val_off, val_data


@njit(cache=True)
def _escape_codes(x, values, k):
    """Code of every row of ESC blocks ``x`` (nb, n): the slot ``j < k[b]`` of the block's
    dictionary ``values`` holding it (the first, most frequent, on ties), else the escape
    ``k[b]``."""
    nb, n = x.shape
    codes = np.empty((nb, n), np.int64)
    for b in range(nb):
        kb = k[b]
        for i in range(n):
            code = kb
            for j in range(kb):
                if x[b, i] == values[b, j]:
                    code = j
                    break
            codes[b, i] = code
    return codes


def pack_blocks(lanes: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pack each row of ``lanes`` (nb, n) at its block's bit ``width``: (offsets, bytes)."""
    return _pack_blocks(readonly(lanes, np.uint64), readonly(width, np.int64))


def pack_column(lanes, width, exc, exact, anchor) -> tuple[np.ndarray, ...]:
    """See :func:`_pack_column` (inputs handed over read-only: one compiled signature)."""
    return _pack_column(
        readonly(lanes, np.uint64),
        readonly(width, np.int64),
        readonly(exc, np.bool_),
        readonly(exact, np.int64),
        readonly(anchor, np.int64),
    )


def escape_codes(x: np.ndarray, values: np.ndarray, k: np.ndarray) -> np.ndarray:
    """See :func:`_escape_codes`."""
    return _escape_codes(readonly(x, np.int64), readonly(values, np.int64), readonly(k, np.int64))


@njit(cache=True)
def _bit_length(u):
    """Bit length as ``adaptive._bit_length`` computes it (through float64: exact below
    2^53, at most one too high above), so both encoders choose the same widths."""
    if u == 0:
        return 0
    return min(math.frexp(np.float64(u))[1], 64)


@njit(cache=True)
def _frame(x, b, n, choice, est, vmin, row, steps):
    """Lanes of block ``b`` for its chosen kind (0 FOR, 1 FOR+stride, 2 DELTA, 3 DOD) into
    ``row``; delta kinds leave their exact steps in ``steps``. Returns (base, stride, kind)."""
    if choice == 0:
        low = np.uint64(vmin)
        for i in range(n):
            row[i] = np.uint64(x[b, i]) - low
        return vmin, np.int64(0), FOR
    if choice == 1:
        step = np.uint64(est)
        ramp = np.uint64(0)
        least = np.int64(0x7FFF_FFFF_FFFF_FFFF)
        for i in range(n):
            row[i] = np.uint64(x[b, i]) - ramp
            least = min(least, np.int64(row[i]))
            ramp += step
        for i in range(n):
            row[i] -= np.uint64(least)
        return least, est, FOR
    steps[0] = 0
    for i in range(1, n):
        steps[i] = np.int64(np.uint64(x[b, i]) - np.uint64(x[b, i - 1]))
    if choice == 3:
        previous = np.int64(0)
        for i in range(1, n):
            current = steps[i]
            steps[i] = np.int64(np.uint64(current) - np.uint64(previous))
            previous = current
    least = np.int64(0x7FFF_FFFF_FFFF_FFFF) if n > 1 else np.int64(0)
    for i in range(1, n):
        least = min(least, steps[i])
    row[0] = 0
    for i in range(1, n):
        row[i] = np.uint64(steps[i]) - np.uint64(least)
    return x[b, 0], least, DELTA if choice == 2 else DOD


@njit(cache=True)
def _width(row, n, sample, exception_bytes):
    """The lane width of ``adaptive._widths`` for a block with no forced exceptions: the
    sampled bit-length histogram's cheapest width, capped by the widest lane, widened to it
    when the sample missed a crowd of wide values. Returns (width, exceptions at it)."""
    hist = np.zeros(65, np.int64)
    for j in range(len(sample)):
        hist[_bit_length(row[sample[j]])] += 1
    m = len(sample)
    best, best_size, fits = 0, np.inf, 0
    for w in range(65):
        fits += hist[w]
        size = ((n * w + 7) // 8) + exception_bytes * ((m - fits) * (n / m))
        if w == 64:
            size = 8.0 * n
        if size < best_size:
            best, best_size = w, size
    widest_lane = np.uint64(0)
    for i in range(n):
        widest_lane = max(widest_lane, row[i])
    widest = _bit_length(widest_lane)
    width = min(best, widest)
    limit = _ALL >> np.uint64(64 - width) if width else np.uint64(0)
    count = 0
    for i in range(n):
        count += np.int64(row[i] > limit)
    if (n * width + 7) // 8 + exception_bytes * count > (n * widest + 7) // 8:
        return widest, 0
    return width, count


@njit(cache=True)
def _encode_clean(x, patch, choice, est, vmin, sample, exception_bytes):
    """Frame, width, exceptions and packing of blocks without nulls or forced patches, one
    block at a time in scratch rows (no 2-D temporaries). An exception of a frame block stores
    ``patch`` (``x`` itself, or the float codec's exact bits), of a delta block its exact
    step. Returns per-block base, stride, kind, width and the three payloads."""
    nb, n = x.shape
    base = np.empty(nb, np.int64)
    stride = np.empty(nb, np.int64)
    kind = np.empty(nb, np.int8)
    width = np.empty(nb, np.int8)
    lane_off = np.zeros(nb + 1, np.int64)
    pos_off = np.zeros(nb + 1, np.int64)
    val_off = np.zeros(nb + 1, np.int64)
    # sized for the worst case; only the pages written are ever touched
    lane_data = np.empty(nb * n * 8 + 8, np.uint8)
    pos_data = np.empty(nb * n * 2, np.uint8)
    val_data = np.empty(nb * n * 8, np.uint8)
    row = np.empty(n, np.uint64)
    steps = np.empty(n, np.int64)
    where = np.empty(n, np.int64)
    words = np.empty(words_for(n, 64) + 1, np.uint64)
    for b in range(nb):
        base[b], stride[b], kind[b] = _frame(x, b, n, choice[b], est[b], vmin[b], row, steps)
        w, count = _width(row, n, sample, exception_bytes)
        width[b] = w
        limit = _ALL >> np.uint64(64 - w) if w else np.uint64(0)
        delta = kind[b] != FOR
        anchor = np.uint64(stride[b]) if delta else np.uint64(vmin[b])
        at_pos, at_val = pos_off[b], val_off[b]
        if count:
            found = 0  # the exceptions' rows, then their offsets' common byte size
            widest = np.uint64(0)
            for i in range(n):
                if row[i] > limit:
                    where[found] = i
                    found += 1
                    exact = np.uint64(steps[i]) if delta else np.uint64(patch[b, i])
                    widest = max(widest, exact - anchor)
            item = 1
            if widest >= np.uint64(1 << 32):
                item = 8
            elif widest >= np.uint64(1 << 16):
                item = 4
            elif widest >= np.uint64(1 << 8):
                item = 2
            for j in range(found):
                i = where[j]
                row[i] = 0
                pos_data[at_pos] = np.uint8(i & 0xFF)
                pos_data[at_pos + 1] = np.uint8(i >> 8)
                at_pos += 2
                exact = np.uint64(steps[i]) if delta else np.uint64(patch[b, i])
                offset = exact - anchor
                for byte in range(item):
                    val_data[at_val + byte] = np.uint8((offset >> np.uint64(8 * byte)) & 0xFF)
                at_val += item
        pos_off[b + 1], val_off[b + 1] = at_pos, at_val
        lane_off[b + 1] = lane_off[b] + ((n * w + 7) >> 3)
        pack_into(row, 0, n, w, words, lane_data, lane_off[b])
    return (base, stride, kind, width, lane_off, lane_data[: lane_off[nb]], pos_off,
            pos_data[: pos_off[nb]], val_off, val_data[: val_off[nb]])  # fmt: skip


@njit(cache=True)
def _min_max(x):
    nb, n = x.shape
    low = np.empty(nb, np.int64)
    high = np.empty(nb, np.int64)
    for b in range(nb):
        row = x[b]
        lo, hi = row[0], row[0]
        for i in range(n):
            lo = min(lo, row[i])
        for i in range(n):
            hi = max(hi, row[i])
        low[b], high[b] = lo, hi
    return low, high


def block_min_max(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``x`` (nb, n >= 1): (min, max), one pass."""
    return _min_max(readonly(x, np.int64))


def encode_clean(x, patch, choice, est, vmin, sample, exception_bytes) -> tuple[np.ndarray, ...]:
    """See :func:`_encode_clean`; the payloads are copied out of the worst-case buffers."""
    out = _encode_clean(
        readonly(x, np.int64),
        readonly(x if patch is None else patch, np.int64),
        readonly(choice, np.int64),
        readonly(est, np.int64),
        readonly(vmin, np.int64),
        readonly(sample, np.int64),
        float(exception_bytes),
    )
    return (*out[:5], out[5].copy(), out[6], out[7].copy(), out[8], out[9].copy())
