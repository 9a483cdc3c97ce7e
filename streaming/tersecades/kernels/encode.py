"""Compiled encode passes: bit packing of every block and the patched exceptions, written in
one pass per block, and the escape-code lookup of ESC blocks (the numpy references are
``bitpack.pack_blocks`` and ``blocks.pack_exceptions``; the tests compare them byte for byte).

The encoder's decisions (kind and width per block, from samples) stay in numpy in
``adaptive.py``: they touch a few percent of the rows. What touches every row — zeroing the
exception lanes, writing their positions and ``value - anchor`` in the fewest of 1/2/4/8
bytes, packing the lanes — runs here.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from streaming.tersecades.kernels.bits import pack_into, readonly, words_for

__all__ = ["escape_codes", "pack_blocks", "pack_column"]


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
