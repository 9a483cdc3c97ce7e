"""The structural checks of an encoded column in one compiled pass over its blocks.

``IntBlocks.validate`` runs on every parse (verified or not), so its ~20 numpy expressions
over per-block arrays cost a fixed ~0.1-0.3 ms per column per batch — as much as scanning the
column's rows. Here they are one loop per check, in the same order, returning the index of the
first failed check and its first block; ``blocks.IntBlocks.validate`` words the message.
The payload offsets are checked in Python first (this pass indexes payloads by them).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from streaming.tersecades.blocks import DELTA, DICT, DOD, ESC, FOR, MAX_BLOCK_ROWS
from streaming.tersecades.kernels.bits import read_le, readonly

__all__ = ["CHECKS", "PAYLOADS", "first_violation"]

PAYLOADS = ("deltas", "exc_pos", "exc_val", "null_pos", "aux")
MALFORMED, TRUNCATED = 100, 101  # + 2 * payload index: an offsets problem (block -1)

CHECKS = (
    f"row count outside [0, {MAX_BLOCK_ROWS}]",
    "delta width {width} is not one of {widths}",
    "delta buffer length does not match rows x width (truncated or wrong width)",
    "exception positions and values disagree in length",
    "full 64-bit deltas cannot have exceptions",
    "null positions do not match the null count",
    "null count outside [0, rows]",
    "block kind {kind} is not one of {kinds}",
    "a dictionary payload on a block that is not a dictionary block",
    "dictionary payload is malformed (or empty while rows use it)",
    "delta and escape blocks cannot hold nulls",
    "escape dictionary header is truncated",
    "zone map is inconsistent (min > max, or base != min)",
    "exception position beyond the block",
    "exception positions not ascending",
    "null position beyond the block",
    "null positions not ascending",
)


@njit(cache=True)
def _block_check(c, b, rows, width, bits, kind, nulls, vmin, vmax, base, stride, d_len, e_len,
                 v_len, n_len, a_len):  # fmt: skip
    """True when block ``b`` fails check ``c`` (0-12, the per-block checks of ``CHECKS``)."""
    n, w, k, nl = rows[b], width[b], kind[b], nulls[b]
    if c == 0:
        return n < 0 or n > MAX_BLOCK_ROWS
    if c == 1:
        return (w < 0 or w > 64) if bits else not (w == 0 or w == 1 or w == 2 or w == 4 or w == 8)
    if c == 2:
        return d_len[b] != ((n * w + 7) // 8 if bits else n * w)
    if c == 3:
        count = e_len[b] // 2
        item = v_len[b] // max(count, 1)
        odd_item = not (item == 1 or item == 2 or item == 4 or item == 8)
        return e_len[b] % 2 != 0 or v_len[b] != count * item or (count > 0 and odd_item)
    if c == 4:
        return w == (64 if bits else 8) and e_len[b] > 0
    if c == 5:
        return n_len[b] != nl * 2
    if c == 6:
        return nl < 0 or nl > n
    if c == 7:
        return k < FOR or k > ESC
    if c == 8:
        return k != DICT and k != ESC and a_len[b] != 0
    if c == 9:
        return a_len[b] % 8 != 0 or (k == DICT and a_len[b] // 8 == 0 and e_len[b] // 2 != n - nl)
    if c == 10:
        return (k in (DELTA, DOD, ESC)) and nl > 0
    if c == 11:
        return k == ESC and a_len[b] < 24
    return vmin[b] > vmax[b] or (k == FOR and stride[b] == 0 and base[b] != vmin[b])


@njit(cache=True)
def _positions_check(rows, off, data, beyond):
    """First block with a position beyond its rows (``beyond``) or not ascending, else -1."""
    for b in range(len(rows)):
        previous = -1
        for e in range((off[b + 1] - off[b]) // 2):
            pos = np.int64(read_le(data, off[b] + 2 * e, 2))
            if beyond and pos >= rows[b]:
                return b
            if not beyond and pos <= previous:
                return b
            previous = pos
    return -1


@njit(cache=True)
def _first_violation(rows, width, bits, kind, nulls, vmin, vmax, base, stride, d_off, ep_off,
                     ep_data, ev_off, np_off, np_data, aux_off, data_len):  # fmt: skip
    nb = len(rows)
    for k, off in enumerate((d_off, ep_off, ev_off, np_off, aux_off)):
        for b in range(nb):
            if off[b + 1] < off[b]:
                return MALFORMED + 2 * k, -1
        if off[0] < 0 or off[nb] > data_len[k]:
            return TRUNCATED + 2 * k, -1
    d_len = d_off[1:] - d_off[:-1]
    e_len = ep_off[1:] - ep_off[:-1]
    v_len = ev_off[1:] - ev_off[:-1]
    n_len = np_off[1:] - np_off[:-1]
    a_len = aux_off[1:] - aux_off[:-1]
    for c in range(13):
        for b in range(nb):
            if _block_check(c, b, rows, width, bits, kind, nulls, vmin, vmax, base, stride, d_len, e_len, v_len, n_len, a_len):  # fmt: skip
                return c, b
    for c, off, data, beyond in ((13, ep_off, ep_data, True), (14, ep_off, ep_data, False),
                                 (15, np_off, np_data, True), (16, np_off, np_data, False)):  # fmt: skip
        b = _positions_check(rows, off, data, beyond)
        if b >= 0:
            return c, b
    return -1, -1


def first_violation(blocks, bits: bool) -> tuple[int, int]:
    """(index into ``CHECKS``, block) of the first structural problem, or (-1, -1); payload
    offsets that decrease or point past their bytes come first, as ``MALFORMED`` or
    ``TRUNCATED`` + 2 * the payload's index in ``PAYLOADS`` (every offsets array must already
    have one entry per block plus one)."""

    def i64(a):
        return readonly(a, np.int64)

    def u8(a):
        return readonly(a, np.uint8)

    return _first_violation(
        *(i64(getattr(blocks, n)) for n in ("rows", "width")),
        bits,
        *(i64(getattr(blocks, n)) for n in ("kind", "nulls", "vmin", "vmax", "base", "stride")),
        i64(blocks.deltas.offsets),
        i64(blocks.exc_pos.offsets),
        u8(blocks.exc_pos.data),
        i64(blocks.exc_val.offsets),
        i64(blocks.null_pos.offsets),
        u8(blocks.null_pos.data),
        i64(blocks.aux.offsets),
        i64([len(getattr(blocks, name).data) for name in PAYLOADS]),
    )
