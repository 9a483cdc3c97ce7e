"""Bit packing of unsigned lanes at any width 0-64, vectorised numpy (no per-value loop): the
reference the compiled kernels (``kernels/bits.py``, ``kernels/encode.py``) are tested
against byte for byte, and the unpacker of the numpy reference decoder and operators.

64 values of ``w`` bits fill exactly ``w`` 64-bit words, so packing runs one column operation
per value slot of such a period over every period of every block at once: the numpy form of
SIMD bit packing. The layout is plain little-endian bit order, so a width of 8/16/32/64 bits
is byte-identical to an array of that unsigned type.
"""

from __future__ import annotations

from functools import cache

import numpy as np

__all__ = ["pack_blocks", "pack_group", "period_plan", "unpack_group"]

_LANE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def pack_blocks(delta: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pack each block's lanes into ``width`` bits apiece (little-endian bit order):
    (byte offsets per block, bytes)."""
    nb, n = delta.shape
    lengths = (n * width.astype(np.int64) + 7) // 8
    offsets = np.zeros(nb + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    for w in np.unique(width[width > 0]).tolist():
        group = np.flatnonzero(width == w)
        span = (n * w + 7) // 8
        packed = pack_group(delta[group], w)[:, :span]
        if len(group) == nb:
            data[:] = packed.reshape(-1)
        else:  # one slice per block (memcpy), never an index per byte
            for row, start in enumerate(offsets[group].tolist()):
                data[start : start + span] = packed[row]
    return offsets, data


@cache
def period_plan(w: int) -> tuple[tuple[int, int, int, bool], ...]:
    """64 values of ``w`` bits fill exactly ``w`` 64-bit words: for value j of such a period,
    (j, word, shift, spills into the next word). One column operation per j, vectorised over
    every period of every block — the numpy form of SIMD bit packing."""
    plan = []
    for j in range(64):
        offset = j * w
        plan.append((j, offset >> 6, offset & 63, (offset & 63) + w > 64))
    return tuple(plan)


def pack_group(values: np.ndarray, w: int) -> np.ndarray:
    """Pack (k, n) lanes of at most ``w`` bits into (k, w words per 64 values) little-endian
    bytes, the last period zero-padded."""
    k, n = values.shape
    m = -(-n // 64) * 64
    if w in (8, 16, 32, 64):  # byte-aligned widths are plain little-endian lanes: one cast
        lanes = np.zeros((k, m), dtype=f"<u{w // 8}")
        lanes[:, :n] = values
        return lanes.view(np.uint8)
    padded = np.zeros((k, m), dtype=np.uint64)
    padded[:, :n] = values
    # value j of every period as one contiguous row: each step below is a streaming pass
    columns = np.ascontiguousarray(padded.reshape(-1, 64).T)
    words = np.zeros((w, len(columns[0])), dtype=np.uint64)
    for j, word, shift, spill in period_plan(w):
        words[word] |= columns[j] << np.uint64(shift)
        if spill:
            words[word + 1] |= columns[j] >> np.uint64(64 - shift)
    little = np.ascontiguousarray(words.T).astype("<u8", copy=False)
    return little.reshape(k, (m // 64) * w).view(np.uint8)


def unpack_group(raw: np.ndarray, n: int, w: int) -> np.ndarray:
    """Inverse of :func:`pack_blocks` for blocks of equal shape: (k, bytes) -> (k, n) lanes."""
    k, span = raw.shape
    if w in (8, 16, 32, 64):  # byte-aligned widths are plain little-endian lanes: a view
        return np.ascontiguousarray(raw[:, : n * w // 8]).view(f"<u{w // 8}").reshape(k, n)
    m = -(-n // 64) * 64
    buffer = np.zeros((k, m * w // 8), dtype=np.uint8)
    buffer[:, :span] = raw
    words = np.ascontiguousarray(buffer.view("<u8").reshape(-1, w).T)  # (w, periods)
    lane = _LANE[next(b for b in (1, 2, 4, 8) if 8 * b >= w)]
    columns = np.empty((64, words.shape[1]), dtype=lane)
    mask = np.uint64((1 << w) - 1)
    for j, word, shift, spill in period_plan(w):
        value = words[word] >> np.uint64(shift)
        if spill:
            value |= words[word + 1] << np.uint64(64 - shift)
        value &= mask
        columns[j] = value
    return np.ascontiguousarray(columns.T).reshape(k, m)[:, :n]
