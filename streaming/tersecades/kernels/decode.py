"""Compiled decode of Base-Delta blocks: every block kind, exceptions, nulls, in one pass per
block (the numpy reference is ``blocks.reference_decode_int64``).

A column reaches the kernels as a flat tuple of arrays (:func:`column_arrays`), so one
compiled signature serves every column and codec. A block is decoded straight into its slice
of the output: lanes unpacked with the frame added (FOR), as steps (DELTA, DOD) or as codes
(DICT, ESC); exceptions patched; steps integrated with wrapping uint64 sums — exact modulo
2^64 like the reference. Corrupt dictionary or escape data is reported as a status code
(never an out-of-bounds read), which :func:`decode_blocks` turns into one clear error.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from streaming.tersecades.blocks import DELTA, DICT, DOD, FOR, IntBlocks
from streaming.tersecades.errors import CorruptEncodingError
from streaming.tersecades.kernels.bits import load_words, read_le, readonly, unpack_into, words_for

__all__ = [
    "STATUS",
    "alp_floats",
    "column_arrays",
    "decode_block",
    "decode_blocks",
    "scratch_sizes",
]

OK, BAD_CODE, ESC_TRUNCATED, ESC_RANGE, ESC_LENGTH, OUT_OF_RANGE = 0, 1, 2, 3, 4, 5
STATUS = {
    BAD_CODE: "a dictionary code is outside its block's dictionary",
    ESC_TRUNCATED: "escape dictionary header is truncated",
    ESC_RANGE: "escape dictionary header is out of range",
    ESC_LENGTH: "escape stream length does not match the escape codes",
    OUT_OF_RANGE: "decoded values do not fit the declared type",
}
_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


def column_arrays(blocks: IntBlocks) -> tuple:
    """The kernels' view of a column: per-block int64 metadata (widths in bits), then each
    payload as (absolute byte offsets, bytes), all read-only (one compiled signature whether
    the arrays came from Arrow or from numpy). Copies only the per-block arrays."""
    bit_width = blocks.width.astype(np.int64) * (1 if blocks.bits else 8)
    meta = (blocks.rows, blocks.base, blocks.stride, bit_width, blocks.kind)
    meta += (blocks.vmin, blocks.vmax, blocks.nulls)
    payloads = []
    for p in (blocks.deltas, blocks.exc_pos, blocks.exc_val, blocks.null_pos, blocks.aux):
        payloads += [readonly(p.offsets, np.int64), readonly(p.data, np.uint8)]
    return (*(readonly(a, np.int64) for a in meta), *payloads)


@njit(cache=True)
def scratch_sizes(col):
    """(words, dictionary words) the largest block of ``col`` needs in scratch."""
    rows, bitw, aux_off = col[0], col[3], col[16]
    words, dictionary = 2, 2
    for b in range(len(rows)):
        words = max(words, words_for(rows[b], bitw[b]) + 1)
        dictionary = max(dictionary, (aux_off[b + 1] - aux_off[b]) // 8 + 2)
    return words, dictionary


@njit(cache=True)
def _codes_to_values(col, b, n, dictw, out, at):
    """Map a DICT or ESC block's codes (in ``out``) to values; a status code on corruption."""
    kind, aux_off, aux_data = col[4], col[16], col[17]
    size = (aux_off[b + 1] - aux_off[b]) // 8
    for i in range(size):
        dictw[i] = read_le(aux_data, aux_off[b] + 8 * i, 8)
    dictw[size] = 0
    dictw[size + 1] = 0
    if kind[b] == DICT:
        limit = np.uint64(max(size, 1))
        for i in range(n):
            code = out[at + i]
            if code >= limit:
                return BAD_CODE
            out[at + i] = dictw[code] if size else np.uint64(0)
        return OK
    if size < 3:
        return ESC_TRUNCATED
    escape, side_base, side_width = dictw[0], dictw[1], np.int64(dictw[2])
    if escape < 1 or escape > np.uint64(size - 3) or side_width < 0 or side_width > 64:
        return ESC_RANGE
    count = 0
    bad = False
    for i in range(n):  # no branch: count the escapes, flag codes past the escape
        code = out[at + i]
        bad |= code > escape
        count += np.int64(code == escape)
    if bad:
        return BAD_CODE
    side_words = ((count + 63) // 64) * side_width if side_width > 0 else 0
    first_word = 3 + np.int64(escape)
    if size - first_word != side_words:
        return ESC_LENGTH
    # the escaped values first, densely (the side stream is in row order), then one select per
    # row between the listed value and the next escaped one: no data-dependent branch
    mask = _ALL >> np.uint64(64 - side_width) if side_width else np.uint64(0)
    side = np.empty(count + 1, np.uint64)
    bit = 0
    for j in range(count):
        k = first_word + (bit >> 6)
        s = np.uint64(bit & 63)
        side[j] = side_base + (((dictw[k] >> s) | ((dictw[k + 1] << _ONE) << (np.uint64(63) - s))) & mask)  # fmt: skip
        bit += side_width
    side[count] = 0
    last = escape - _ONE
    j = 0
    for i in range(n):
        code = out[at + i]
        escaped = code == escape
        listed = dictw[3 + np.int64(min(code, last))]
        out[at + i] = side[j] if escaped else listed
        j += np.int64(escaped)
    return OK


@njit(cache=True)
def decode_block(col, b, words, dictw, out, at):
    """Decode block ``b`` of ``col`` into ``out[at:at + rows]`` (uint64); a status code."""
    rows, base, stride, bitw, kind, vmin = col[0], col[1], col[2], col[3], col[4], col[5]
    d_off, d_data, ep_off, ep_data, ev_off, ev_data = (
        col[8],
        col[9],
        col[10],
        col[11],
        col[12],
        col[13],
    )
    n = rows[b]
    if n == 0:
        return OK
    w = bitw[b]
    k = kind[b]
    load_words(d_data, d_off[b], d_off[b + 1] - d_off[b], words)
    anchor = vmin[b]
    if k == FOR:
        unpack_into(words, 0, n, w, np.uint64(base[b]), out, at)
        if stride[b] != 0:
            step = np.uint64(stride[b])
            ramp = np.uint64(0)
            for i in range(n):
                out[at + i] += ramp
                ramp += step
    elif k in (DELTA, DOD):
        unpack_into(words, 0, n, w, np.uint64(stride[b]), out, at)
        anchor = stride[b]
    else:
        unpack_into(words, 0, n, w, np.uint64(0), out, at)
        status = _codes_to_values(col, b, n, dictw, out, at)
        if status != OK:
            return status
    count = (ep_off[b + 1] - ep_off[b]) // 2
    if count:
        item = (ev_off[b + 1] - ev_off[b]) // count
        for e in range(count):
            pos = np.int64(read_le(ep_data, ep_off[b] + 2 * e, 2))
            value = read_le(ev_data, ev_off[b] + e * item, item)
            out[at + pos] = value + np.uint64(anchor)
    if k in (DELTA, DOD):
        out[at] = 0
        first = np.uint64(base[b])
        running = np.uint64(0)
        if k == DELTA:
            for i in range(n):
                running += out[at + i]
                out[at + i] = first + running
        else:
            total = np.uint64(0)
            for i in range(n):
                running += out[at + i]
                total += running
                out[at + i] = first + total
    return OK


@njit(cache=True)
def _decode_column(col, out, valid, low, high):
    """Decode every block through a block-sized scratch into ``out`` (any integer dtype),
    nulls as 0 (and False in ``valid``); a value outside ``[low, high]`` (the dtype's range)
    is reported, not wrapped."""
    rows, nulls, np_off, np_data = col[0], col[7], col[14], col[15]
    words_size, dict_size = scratch_sizes(col)
    words = np.empty(words_size, np.uint64)
    dictw = np.empty(dict_size, np.uint64)
    most = 1
    for b in range(len(rows)):
        most = max(most, rows[b])
    scratch = np.empty(most, np.uint64)
    at = 0
    for b in range(len(rows)):
        n = rows[b]
        status = decode_block(col, b, words, dictw, scratch, 0)
        if status != OK:
            return status, b
        for e in range(nulls[b]):
            pos = np.int64(read_le(np_data, np_off[b] + 2 * e, 2))
            scratch[pos] = 0
            valid[at + pos] = False
        bad = False
        for i in range(n):
            value = np.int64(scratch[i])
            bad |= (value < low) | (value > high)
            out[at + i] = value
        if bad:
            return OUT_OF_RANGE, b
        at += n
    return OK, -1


@njit(cache=True)
def _decode_column_int64(col, out, valid):
    """:func:`_decode_column` for int64 output: blocks decode in place (no scratch, no check)."""
    rows, nulls, np_off, np_data = col[0], col[7], col[14], col[15]
    words_size, dict_size = scratch_sizes(col)
    words = np.empty(words_size, np.uint64)
    dictw = np.empty(dict_size, np.uint64)
    at = 0
    for b in range(len(rows)):
        status = decode_block(col, b, words, dictw, out, at)
        if status != OK:
            return status, b
        for e in range(nulls[b]):
            pos = at + np.int64(read_le(np_data, np_off[b] + 2 * e, 2))
            out[pos] = 0
            valid[pos] = False
        at += rows[b]
    return OK, -1


def decode_blocks(
    blocks: IntBlocks, column: str = "", dtype: type = np.int64
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode every block: (values of the integer ``dtype``, validity or None when there are
    no nulls). Decoding straight to a narrow dtype saves the int64 array and a cast; corrupt
    dictionary or escape data, or a value the dtype cannot hold, raises one error naming
    ``column`` and the block."""
    total = blocks.num_rows
    values = np.empty(total, dtype)
    has_nulls = int(blocks.nulls.sum()) > 0
    valid = np.ones(total if has_nulls else 0, np.bool_)
    if total and values.dtype == np.int64:
        status, block = _decode_column_int64(column_arrays(blocks), values.view(np.uint64), valid)
    elif total:
        info = np.iinfo(dtype)
        status, block = _decode_column(
            column_arrays(blocks), values, valid, max(info.min, -(2**63)), min(info.max, 2**63 - 1)
        )
    if total and status != OK:
        raise CorruptEncodingError(f"column {column!r} block {block}: {STATUS[status]}")
    return values, (valid if has_nulls else None)


@njit(cache=True)
def _alp_bits(keys, rows, exponent, kind, ep_off, ep_data, pow10, width, floats, bits):
    """ALP floats from their decoded integer keys, per block: ``key / 10**e`` (written through
    ``floats``), the order-preserving bit map undone for fallback blocks, and the exact IEEE
    bits of the exceptions of decimal frame/dictionary blocks (through ``bits``, an integer
    view of the same memory). Returns the first block whose raw bits exceed the width, or -1."""
    half = np.int64(width - 1)
    low_mask = np.int64((1 << (width - 1)) - 1)
    at = 0
    for b in range(len(rows)):
        n = rows[b]
        e = exponent[b]
        if e < 0:
            for i in range(n):
                k = keys[at + i]
                bits[at + i] = k ^ ((k >> half) & low_mask)
        else:
            scale = pow10[e]
            for i in range(n):
                floats[at + i] = np.float64(keys[at + i]) / scale
            if kind[b] != DELTA and kind[b] != DOD:
                for j in range((ep_off[b + 1] - ep_off[b]) // 2):
                    row = at + np.int64(read_le(ep_data, ep_off[b] + 2 * j, 2))
                    k = keys[row]
                    if width == 32 and (k < -(2**31) or k >= 2**31):
                        return b
                    bits[row] = k
        at += n
    return -1


def alp_floats(blocks: IntBlocks, keys: np.ndarray, exponent: np.ndarray, pow10: np.ndarray,
               width: int) -> np.ndarray | None:  # fmt: skip
    """Float32/64 values of an ALP column from its decoded keys (see :func:`_alp_bits`);
    None if an exception's raw bits do not fit the width."""
    floats = np.empty(len(keys), np.float64 if width == 64 else np.float32)
    bits = floats.view(np.int64 if width == 64 else np.int32)
    bad = _alp_bits(
        readonly(keys, np.int64),
        readonly(blocks.rows, np.int64),
        readonly(exponent, np.int64),
        readonly(blocks.kind, np.int64),
        readonly(blocks.exc_pos.offsets, np.int64),
        readonly(blocks.exc_pos.data, np.uint8),
        readonly(pow10, np.float64),
        width,
        floats,
        bits,
    )
    return None if bad >= 0 else floats
