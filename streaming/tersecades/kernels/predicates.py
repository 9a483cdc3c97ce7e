"""Predicates on encoded blocks, the per-block and per-chunk halves of ``scan.py``'s filter:
the zone-map verdict of a block (skip, accept, compare), the plan of a compared block (the
constant translated into the block's code space: ``c - base`` clipped to the lane width for a
frame of reference, a range of codes found by binary search in a sorted dictionary, a constant
answer for a width-0 block, or decoded values for the other kinds), and the compare of one
chunk of lanes against that plan, exceptions compared as exact values and nulls never
matching. Exceptions and nulls are read once per block into plain arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from streaming.tersecades.blocks import DICT, FOR
from streaming.tersecades.kernels.bits import read_le, unpack_into
from streaming.tersecades.kernels.decode import BAD_CODE, OK

__all__ = [
    "ALL",
    "CODED",
    "CODES",
    "CONSTANT",
    "DECODED",
    "NONE",
    "SOME",
    "compare_chunk",
    "load_exceptions",
    "load_nulls",
    "plain",
    "plan",
    "zone_state",
]

NONE, ALL, SOME = 0, 1, 2  # a block's zone-map verdict
_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


@njit(cache=True)
def zone_state(col, b, lo, hi, empty, negate):
    """NONE / ALL / SOME for ``lo <= x <= hi`` (or its negation) from the block's zone map;
    null rows never match."""
    n, nulls = col[0][b], col[7][b]
    vmin, vmax = col[5][b], col[6][b]
    if empty or nulls == n or vmax < lo or vmin > hi:
        inside = NONE
    elif nulls == 0 and vmin >= lo and vmax <= hi:
        inside = ALL
    else:
        inside = SOME
    if not negate:
        return inside
    if inside == NONE:
        return NONE if nulls == n else (ALL if nulls == 0 else SOME)
    return NONE if inside == ALL else SOME


@njit(cache=True)
def plain(col, b):
    return col[4][b] == FOR and col[2][b] == 0


@njit(cache=True)
def dictionary_range(col, b, lo, hi):
    """Codes ``[first, last]`` of a DICT block whose (sorted) values lie in ``[lo, hi]``."""
    aux_off, aux_data = col[16], col[17]
    size = (aux_off[b + 1] - aux_off[b]) // 8
    left, right = 0, size
    while left < right:  # first value >= lo
        mid = (left + right) >> 1
        if np.int64(read_le(aux_data, aux_off[b] + 8 * mid, 8)) < lo:
            left = mid + 1
        else:
            right = mid
    first = left
    left, right = first, size
    while left < right:  # first value > hi
        mid = (left + right) >> 1
        if np.int64(read_le(aux_data, aux_off[b] + 8 * mid, 8)) <= hi:
            left = mid + 1
        else:
            right = mid
    return first, left - 1, size


@njit(cache=True)
def load_exceptions(col, b, positions, offsets):
    """Block ``b``'s exception rows and stored offsets (``value - anchor``) as plain arrays,
    read once per block (the payload packs them as uint16 and 1/2/4/8-byte items)."""
    ep_off, ep_data, ev_off, ev_data = col[10], col[11], col[12], col[13]
    count = (ep_off[b + 1] - ep_off[b]) // 2
    if count == 0:
        return 0
    at = ep_off[b]
    for e in range(count):
        positions[e] = np.int64(ep_data[at + 2 * e]) | (np.int64(ep_data[at + 2 * e + 1]) << 8)
    item = (ev_off[b + 1] - ev_off[b]) // count
    at = ev_off[b]
    for e in range(count):
        value = np.uint64(0)
        for byte in range(item):
            value |= np.uint64(ev_data[at + e * item + byte]) << np.uint64(8 * byte)
        offsets[e] = value
    return count


@njit(cache=True)
def load_nulls(col, b, positions):
    """Block ``b``'s null rows as a plain array (read once per block)."""
    np_off, np_data = col[14], col[15]
    count = col[7][b]
    at = np_off[b]
    for e in range(count):
        positions[e] = np.int64(np_data[at + 2 * e]) | (np.int64(np_data[at + 2 * e + 1]) << 8)
    return count


CODED, CONSTANT, CODES, DECODED = 0, 1, 2, 3  # how a SOME block's predicate is evaluated


@njit(cache=True)
def plan(col, b, lo, hi):
    """How block ``b`` evaluates ``lo <= x <= hi``, decided once per block: (mode, code range
    low, high, whether reachable, the constant answer of a width-0 block, code limit)."""
    base, bitw, kind, vmax = col[1][b], col[3][b], col[4][b], col[6][b]
    if kind == DICT:
        first, last, size = dictionary_range(col, b, lo, hi)
        t_lo, t_hi = np.uint64(max(first, 0)), np.uint64(max(last, 0))
        return CODES, t_lo, t_hi, first <= last, np.uint8(0), np.uint64(max(size, 1))
    if not plain(col, b):
        return DECODED, np.uint64(0), np.uint64(0), True, np.uint8(0), np.uint64(0)
    constant = np.uint8(lo <= base <= hi)
    if bitw == 0:
        return CONSTANT, np.uint64(0), np.uint64(0), True, constant, np.uint64(0)
    lane_max = _ALL >> np.uint64(64 - bitw)
    low, high = max(base, lo), min(vmax, hi)
    t_lo = np.uint64(low) - np.uint64(base)
    t_hi = min(np.uint64(high) - np.uint64(base), lane_max)
    return CODED, t_lo, t_hi, high >= low and t_lo <= lane_max, constant, np.uint64(0)


@njit(cache=True)
def compare_chunk(mode, t_lo, t_hi, reachable, constant, limit, bitw, vmin, c0, m, lo, hi,
                   negate, words, lanes, decoded, hit, cursor, exc_pos, exc_off, exc_count,
                   null_pos, null_count):  # fmt: skip
    """``hit[i] = lo <= x[c0 + i] <= hi`` (negated if asked; False on nulls) for one chunk of
    a SOME block planned by :func:`plan`. ``lanes`` holds the chunk's lanes on return when
    the block is coded; ``decoded`` holds the block's values when it is not. ``cursor``
    (exception, null) walks the block's ascending positions across chunks. A status code."""
    if mode == DECODED:
        for i in range(m):
            value = np.int64(decoded[c0 + i])
            hit[i] = (value >= lo) & (value <= hi)
    else:
        if mode == CONSTANT:  # a width-0 block (but its exceptions): no lanes to read
            hit[:m] = constant
            lanes[:m] = 0
        else:
            unpack_into(words, c0, m, bitw, np.uint64(0), lanes, 0)
            if mode == CODES:
                bad = False
                for i in range(m):
                    bad |= lanes[i] >= limit
                if bad:
                    return BAD_CODE
            if reachable:
                span = t_hi - t_lo
                for i in range(m):
                    hit[i] = np.uint8((lanes[i] - t_lo) <= span)
            else:
                hit[:m] = 0
        e = cursor[0]
        while e < exc_count and exc_pos[e] < c0 + m:
            value = np.int64(exc_off[e] + np.uint64(vmin))
            hit[exc_pos[e] - c0] = (value >= lo) & (value <= hi)
            e += 1
        cursor[0] = e
    if negate:
        for i in range(m):
            hit[i] ^= 1
    e = cursor[1]
    while e < null_count and null_pos[e] < c0 + m:
        hit[null_pos[e] - c0] = 0
        e += 1
    cursor[1] = e
    return OK
