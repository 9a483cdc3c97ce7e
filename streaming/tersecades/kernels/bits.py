"""Bit lanes in compiled code: the packed layout of ``bitpack.py``, one value at a time.

The layout is a plain little-endian bit stream: value ``j`` of a block of width ``w`` bits
starts at bit ``j * w`` of the block's bytes. A block's bytes are first copied into a
zero-padded scratch of 64-bit words (one spare word), so reading a value is two word loads
and two shifts with no branch and no read past the buffer, whatever the width (1-64 bits);
byte-aligned widths read the scratch as a plain uint8/16/32/64 array, which LLVM vectorises.
Byte lanes (``BaseDelta(bits=False)``) are the same stream at 8, 16, 32 or 64 bits.

Every function is ``@njit(cache=True)``: compiled once per machine, then loaded from
``__pycache__``. All arithmetic stays in uint64 (numba would turn mixed int64/uint64 into
float64), so it is exact modulo 2^64 like the numpy reference.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["load_words", "pack_into", "read_le", "readonly", "unpack_into", "words_for"]

_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


def readonly(a: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """A read-only contiguous view of ``a`` (copied only to change dtype or layout).

    numba types read-only arrays apart from writeable ones, and arrays read from Arrow buffers
    are read-only while arrays built in numpy are not: handing every kernel input over
    read-only gives each kernel exactly one compiled signature (one compile, one cache entry)."""
    view = np.ascontiguousarray(a, dtype=dtype).view()
    view.flags.writeable = False
    return view


@njit(cache=True)
def read_le(data, pos, nbytes):
    """``nbytes`` (0-8) little-endian bytes of ``data`` at ``pos`` as a uint64."""
    value = np.uint64(0)
    for i in range(nbytes):
        value |= np.uint64(data[pos + i]) << np.uint64(8 * i)
    return value


@njit(cache=True)
def words_for(n, w):
    """Scratch words that hold ``n`` values of ``w`` bits plus the spare word."""
    return ((n * w + 63) >> 6) + 1


@njit(cache=True)
def load_words(data, start, nbytes, words):
    """Copy ``data[start:start + nbytes]`` into ``words`` (zero-padded, one spare word)."""
    full = (nbytes + 7) >> 3
    words[full] = 0
    if full:
        words[full - 1] = 0
    words.view(np.uint8)[:nbytes] = data[start : start + nbytes]  # a memcpy


@njit(cache=True)
def _lane(words, bit, mask):
    """The lane at ``bit``: (x << 1) << (63 - s) is x << (64 - s) for s > 0 and 0 for s == 0,
    so a value spilling into the next word needs no branch."""
    k = bit >> 6
    s = np.uint64(bit & 63)
    return ((words[k] >> s) | ((words[k + 1] << _ONE) << (np.uint64(63) - s))) & mask


@njit(cache=True)
def unpack_into(words, first, n, w, anchor, out, out_start):
    """``out[out_start + i] = anchor + lane(first + i)`` for ``i < n`` (modulo 2^64).

    Odd widths run 64 values (one period of ``w`` words) at a time from a table of word
    indices and shifts, which keeps the inner loop free of the index arithmetic."""
    if w == 0:
        for i in range(n):
            out[out_start + i] = anchor
    elif w == 8:
        lanes8 = words.view(np.uint8)
        for i in range(n):
            out[out_start + i] = anchor + np.uint64(lanes8[first + i])
    elif w == 16:
        lanes16 = words.view(np.uint16)
        for i in range(n):
            out[out_start + i] = anchor + np.uint64(lanes16[first + i])
    elif w == 32:
        lanes32 = words.view(np.uint32)
        for i in range(n):
            out[out_start + i] = anchor + np.uint64(lanes32[first + i])
    elif w == 64:
        for i in range(n):
            out[out_start + i] = anchor + words[first + i]
    else:
        mask = _ALL >> np.uint64(64 - w)
        i = 0
        while i < n and (first + i) & 63:  # up to the next period
            out[out_start + i] = anchor + _lane(words, (first + i) * w, mask)
            i += 1
        if n - i >= 64:
            word_of = np.empty(64, np.int64)
            low = np.empty(64, np.uint64)
            high = np.empty(64, np.uint64)
            for j in range(64):
                word_of[j] = (j * w) >> 6
                low[j] = np.uint64((j * w) & 63)
                high[j] = np.uint64(63) - low[j]
            while n - i >= 64:
                base = ((first + i) >> 6) * w
                at = out_start + i
                for j in range(64):
                    k = base + word_of[j]
                    value = (words[k] >> low[j]) | ((words[k + 1] << _ONE) << high[j])
                    out[at + j] = anchor + (value & mask)
                i += 64
        while i < n:
            out[out_start + i] = anchor + _lane(words, (first + i) * w, mask)
            i += 1


@njit(cache=True)
def pack_into(lanes, lane_start, n, w, words, out, out_start):
    """Pack ``lanes[lane_start:lane_start + n]`` (each below 2^w) at ``w`` bits into
    ``out[out_start:]`` (``(n * w + 7) // 8`` bytes), through ``words`` as scratch."""
    if w == 0 or n == 0:
        return
    nbytes = (n * w + 7) >> 3
    full = (nbytes + 7) >> 3
    if w == 8:
        lanes8 = words.view(np.uint8)
        for i in range(n):
            lanes8[i] = np.uint8(lanes[lane_start + i])
    elif w == 16:
        lanes16 = words.view(np.uint16)
        for i in range(n):
            lanes16[i] = np.uint16(lanes[lane_start + i])
    elif w == 32:
        lanes32 = words.view(np.uint32)
        for i in range(n):
            lanes32[i] = np.uint32(lanes[lane_start + i])
    elif w == 64:
        for i in range(n):
            words[i] = lanes[lane_start + i]
    else:
        for k in range(full + 1):
            words[k] = 0
        bit = 0
        for i in range(n):
            k = bit >> 6
            s = np.uint64(bit & 63)
            value = lanes[lane_start + i]
            words[k] |= value << s
            # (x >> 1) >> (63 - s) is x >> (64 - s) for s > 0 and 0 for s == 0
            words[k + 1] |= (value >> _ONE) >> (np.uint64(63) - s)
            bit += w
    out[out_start : out_start + nbytes] = words.view(np.uint8)[:nbytes]  # a memcpy
