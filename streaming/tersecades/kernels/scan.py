"""Compiled filter + aggregate on encoded blocks, fused per block (TerseCades' execution on
compressed data; the numpy reference is ``operators_reference.py``).

For each block the zone maps of every predicate column decide first: a block no predicate can
match is skipped without touching its bytes, a block every row of which matches needs no
compare. The rest are evaluated chunk by chunk (``CHUNK`` rows, so the scratch stays in L1):

* frame-of-reference blocks: the predicate constant is translated into the block's code space
  (``c - base``, clipped to the lane width) and compared with the unpacked lanes; exceptions
  (few, positions ascending) are compared as exact values;
* dictionary blocks: the constant becomes a range of codes by binary search in the block's
  sorted dictionary, and codes are compared;
* stride, delta, delta-of-delta and escape blocks are decoded for that block only.

The aggregate reads the same lanes (unpacked once per chunk when the column is also filtered)
and keeps, per output group, the count, the exact sum of ``value - anchor`` as a 128-bit pair
of uint64 (``anchor`` = the block's minimum, so every offset is non-negative), and the min and
max. A group key constant over a block (a window code, the common case) costs nothing per row;
otherwise keys are decoded for that block and each run of equal keys becomes one partial.
Python merges the partials exactly (``operators.aggregate``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from streaming.tersecades.blocks import DICT
from streaming.tersecades.kernels.bits import load_words, read_le, unpack_into
from streaming.tersecades.kernels.decode import BAD_CODE, OK, decode_block, scratch_sizes
from streaming.tersecades.kernels.predicates import (
    ALL,
    DECODED,
    NONE,
    SOME,
    compare_chunk,
    load_exceptions,
    load_nulls,
    plain,
    plan,
    zone_state,
)

__all__ = ["ACCEPTED", "CHUNK", "COMPARED", "SKIPPED", "SLOTS", "scan_blocks"]

CHUNK = 2048
SLOTS = 4  # columns one fused scan reads (value, key, predicate columns); one compiled shape
SKIPPED, ACCEPTED, COMPARED = 0, 1, 2  # indices of the stats output
_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_LOW32 = np.uint64(0xFFFF_FFFF)


@njit(cache=True)
def _add128(lo, hi, x):
    lo2 = lo + x
    return lo2, hi + (_ONE if lo2 < x else np.uint64(0))


@njit(cache=True)
def _sum_chunk(values, sel, m, wide):
    """count, offset sum (lo, hi), min, max of the selected ``values`` (uint64 offsets).
    Unselected rows are multiplied by 0 (and or-ed to all ones for the min): no branch, so
    LLVM vectorises the loop."""
    count = 0
    total = np.uint64(0)
    high = np.uint64(0)
    low_min = _ALL
    top = np.uint64(0)
    if wide:  # offsets up to 2^64: sum the 32-bit halves apart (no overflow in a chunk)
        for i in range(m):
            s = np.uint64(sel[i])
            v = values[i] * s
            count += np.int64(sel[i])
            total += v & _LOW32
            high += v >> np.uint64(32)
            low_min = min(low_min, v | (np.uint64(0) - (_ONE - s)))
            top = max(top, v)
        lo, hi = _add128(total, high >> np.uint64(32), high << np.uint64(32))
        return count, lo, hi, low_min, top
    for i in range(m):
        s = np.uint64(sel[i])
        v = values[i] * s
        count += np.int64(sel[i])
        total += v
        low_min = min(low_min, v | (np.uint64(0) - (_ONE - s)))
        top = max(top, v)
    return count, total, np.uint64(0), low_min, top


@njit(cache=True)
def scan_blocks(cols, value_slot, key_slot, key_map, key_map_off, p_slot, p_lo, p_hi, p_empty,
                p_negate, premask, mask_out, want_mask):  # fmt: skip
    """Fused filter + aggregate over every block (see the module docstring).

    Returns (status, bad block, stats[3], number of partials, key, key_null, count, anchor,
    sum_lo, sum_hi, min, max); with ``want_mask`` it fills ``mask_out`` (one byte per row)
    with the selection instead of aggregating."""
    value = cols[value_slot]
    rows = value[0]
    nb = len(rows)
    num_p = len(p_slot)
    stats = np.zeros(3, np.int64)
    words_size, dict_size, most = 2, 2, 1
    for s in range(SLOTS):
        w_s, d_s = scratch_sizes(cols[s])
        words_size, dict_size = max(words_size, w_s), max(dict_size, d_s)
    for b in range(nb):
        most = max(most, rows[b])
    words = np.empty((SLOTS, words_size), np.uint64)
    dictw = np.empty(dict_size, np.uint64)
    lanes = np.empty((SLOTS, CHUNK), np.uint64)
    decoded = np.empty((SLOTS, most), np.uint64)
    hit = np.empty(CHUNK, np.uint8)
    sel = np.empty(CHUNK, np.uint8)
    offsets = np.empty(CHUNK, np.uint64)
    key_null = np.empty(most, np.uint8)
    state = np.empty(num_p, np.int64)
    cursors = np.zeros((num_p + 1, 2), np.int64)
    words_of = np.empty(SLOTS, np.int64)  # block whose bytes are in words[s]
    decoded_of = np.empty(SLOTS, np.int64)  # block whose values are in decoded[s]
    lanes_at = np.empty(SLOTS, np.int64)  # first row of the chunk held in lanes[s]
    exc_pos = np.empty((SLOTS, most), np.int64)
    exc_off = np.empty((SLOTS, most), np.uint64)
    exc_count = np.zeros(SLOTS, np.int64)
    null_pos = np.empty((SLOTS, most), np.int64)
    null_count = np.zeros(SLOTS, np.int64)
    plan_mode = np.empty(num_p, np.int64)
    plan_lo = np.empty(num_p, np.uint64)
    plan_hi = np.empty(num_p, np.uint64)
    plan_reach = np.empty(num_p, np.bool_)
    plan_const = np.empty(num_p, np.uint8)
    plan_limit = np.empty(num_p, np.uint64)
    plan_bitw = np.empty(num_p, np.int64)
    plan_vmin = np.empty(num_p, np.int64)

    capacity = nb
    if key_slot >= 0:
        key = cols[key_slot]
        for b in range(nb):
            if not (key[5][b] == key[6][b] and key[7][b] == 0):
                capacity += rows[b]
    part_key = np.zeros(capacity, np.int64)
    part_null = np.zeros(capacity, np.bool_)
    part_count = np.zeros(capacity, np.int64)
    part_anchor = np.zeros(capacity, np.int64)
    part_lo = np.zeros(capacity, np.uint64)
    part_hi = np.zeros(capacity, np.uint64)
    part_min = np.zeros(capacity, np.int64)
    part_max = np.zeros(capacity, np.int64)
    parts = 0
    at = 0
    words_of[:] = -1
    decoded_of[:] = -1
    for b in range(nb):
        n = rows[b]
        verdict = ALL
        for p in range(num_p):
            state[p] = zone_state(cols[p_slot[p]], b, p_lo[p], p_hi[p], p_empty[p], p_negate[p])
            stats[state[p]] += 1
            if state[p] == NONE:
                verdict = NONE
        if n == 0 or verdict == NONE:
            if want_mask:
                mask_out[at : at + n] = 0
            at += n
            continue
        cursors[:] = 0
        lanes_at[:] = -1
        for t in range(SLOTS):  # exceptions of the columns this block reads, once each
            exc_count[t] = 0
        for p in range(num_p):
            if state[p] == SOME:
                t = p_slot[p]
                col = cols[t]
                exc_count[t] = load_exceptions(col, b, exc_pos[t], exc_off[t])
                null_count[t] = load_nulls(col, b, null_pos[t])
                planned = plan(col, b, p_lo[p], p_hi[p])
                plan_mode[p], plan_lo[p], plan_hi[p] = planned[0], planned[1], planned[2]
                plan_reach[p], plan_const[p], plan_limit[p] = planned[3], planned[4], planned[5]
                plan_bitw[p], plan_vmin[p] = col[3][b], col[5][b]
        if not want_mask:
            exc_count[value_slot] = load_exceptions(value, b, exc_pos[value_slot], exc_off[value_slot])  # fmt: skip
            null_count[value_slot] = load_nulls(value, b, null_pos[value_slot])
        for p in range(num_p):  # blocks that are not coded are decoded once, whole
            s = p_slot[p]
            if state[p] == SOME and words_of[s] != b:
                col = cols[s]
                load_words(col[9], col[8][b], col[8][b + 1] - col[8][b], words[s])
                words_of[s] = b
            coded = plain(cols[s], b) or cols[s][4][b] == DICT
            if state[p] == SOME and not coded and decoded_of[s] != b:
                status = decode_block(cols[s], b, words[s], dictw, decoded[s], 0)
                words_of[s] = -1  # decode_block loads words itself; keep them honest
                if status != OK:
                    return status, b, stats, 0, part_key, part_null, part_count, part_anchor, part_lo, part_hi, part_min, part_max  # fmt: skip
                decoded_of[s] = b
        # the group key of the block: constant (one partial) or per row (runs)
        constant_key = True
        block_key = np.int64(0)
        if key_slot >= 0:
            key = cols[key_slot]
            constant_key = key[5][b] == key[6][b] and key[7][b] == 0
            block_key = key[5][b]
            if len(key_map):
                size = key_map_off[b + 1] - key_map_off[b]
                if constant_key and not 0 <= block_key < size:
                    constant_key = False
                if constant_key:
                    block_key = key_map[key_map_off[b] + block_key]
            if not constant_key:
                if decoded_of[key_slot] != b:
                    status = decode_block(key, b, words[key_slot], dictw, decoded[key_slot], 0)
                    words_of[key_slot] = -1
                    if status != OK:
                        return status, b, stats, 0, part_key, part_null, part_count, part_anchor, part_lo, part_hi, part_min, part_max  # fmt: skip
                    decoded_of[key_slot] = b
                key_null[:n] = 0
                for e in range(key[7][b]):
                    key_null[np.int64(read_le(key[15], key[14][b] + 2 * e, 2))] = 1
        vplain = plain(value, b)
        anchor = value[5][b]
        if not want_mask:
            if vplain:
                if words_of[value_slot] != b:
                    load_words(
                        value[9], value[8][b], value[8][b + 1] - value[8][b], words[value_slot]
                    )
                    words_of[value_slot] = b
            elif decoded_of[value_slot] != b:
                status = decode_block(value, b, words[value_slot], dictw, decoded[value_slot], 0)
                words_of[value_slot] = -1
                if status != OK:
                    return status, b, stats, 0, part_key, part_null, part_count, part_anchor, part_lo, part_hi, part_min, part_max  # fmt: skip
                decoded_of[value_slot] = b
        wide = np.uint64(value[6][b]) - np.uint64(anchor) >= np.uint64(1 << 52)
        b_count = 0
        b_lo = np.uint64(0)
        b_hi = np.uint64(0)
        b_min = _ALL
        b_max = np.uint64(0)
        run_open = False
        for c0 in range(0, n, CHUNK):
            m = min(CHUNK, n - c0)
            if len(premask):
                for i in range(m):
                    sel[i] = premask[at + c0 + i]
            else:
                sel[:m] = 1
            for p in range(num_p):
                if state[p] != SOME:
                    continue
                s = p_slot[p]
                status = compare_chunk(plan_mode[p], plan_lo[p], plan_hi[p], plan_reach[p], plan_const[p], plan_limit[p], plan_bitw[p], plan_vmin[p], c0, m, p_lo[p], p_hi[p], p_negate[p], words[s], lanes[s], decoded[s], hit, cursors[p], exc_pos[s], exc_off[s], exc_count[s], null_pos[s], null_count[s])  # fmt: skip
                if status != OK:
                    return status, b, stats, 0, part_key, part_null, part_count, part_anchor, part_lo, part_hi, part_min, part_max  # fmt: skip
                if plan_mode[p] != DECODED:
                    lanes_at[s] = c0
                for i in range(m):
                    sel[i] &= hit[i]
            if want_mask:
                for i in range(m):
                    mask_out[at + c0 + i] = sel[i]
                continue
            # the value column: nulls never count; exceptions are taken exactly, apart
            cursor = cursors[num_p]
            e = cursor[1]
            while e < null_count[value_slot] and null_pos[value_slot][e] < c0 + m:
                sel[null_pos[value_slot][e] - c0] = 0
                e += 1
            cursor[1] = e
            if vplain:
                if lanes_at[value_slot] != c0:
                    unpack_into(words[value_slot], c0, m, value[3][b], np.uint64(0), lanes[value_slot], 0)  # fmt: skip
                    lanes_at[value_slot] = c0
                source = lanes[value_slot]
                positions, stored = exc_pos[value_slot], exc_off[value_slot]
                e = cursor[0]
                while e < exc_count[value_slot] and positions[e] < c0 + m:
                    pos = positions[e] - c0
                    if sel[pos] and constant_key:
                        offset = stored[e]
                        b_count += 1
                        b_lo, b_hi = _add128(b_lo, b_hi, offset)
                        b_min, b_max = min(b_min, offset), max(b_max, offset)
                        sel[pos] = 0
                    elif sel[pos]:  # keyed rows read exceptions through ``source``
                        source[pos] = stored[e]
                    e += 1
                cursor[0] = e
            else:
                for i in range(m):
                    offsets[i] = decoded[value_slot][c0 + i] - np.uint64(anchor)
                source = offsets
            if constant_key:
                count, lo, hi, low, top = _sum_chunk(source, sel, m, wide)
                b_count += count
                b_lo, b_hi = _add128(b_lo, b_hi, lo)
                b_hi += hi
                b_min, b_max = min(b_min, low), max(b_max, top)
                continue
            key_values = decoded[key_slot]
            for i in range(m):
                if not sel[i]:
                    continue
                k = np.int64(key_values[c0 + i])
                null = key_null[c0 + i] != 0
                if null:
                    k = 0
                elif len(key_map):
                    if not 0 <= k < key_map_off[b + 1] - key_map_off[b]:
                        return BAD_CODE, b, stats, 0, part_key, part_null, part_count, part_anchor, part_lo, part_hi, part_min, part_max  # fmt: skip
                    k = key_map[key_map_off[b] + k]
                if not run_open or part_key[parts - 1] != k or part_null[parts - 1] != null:
                    part_key[parts], part_null[parts], part_anchor[parts] = k, null, anchor
                    part_min[parts], part_max[parts] = -1, 0  # offsets: all ones = none yet
                    parts += 1
                    run_open = True
                offset = source[i]
                j = parts - 1
                part_count[j] += 1
                part_lo[j], part_hi[j] = _add128(part_lo[j], part_hi[j], offset)
                part_min[j] = np.int64(min(np.uint64(part_min[j]), offset))
                part_max[j] = np.int64(max(np.uint64(part_max[j]), offset))
        if constant_key and b_count:
            part_key[parts], part_count[parts], part_anchor[parts] = block_key, b_count, anchor
            part_lo[parts], part_hi[parts] = b_lo, b_hi
            part_min[parts], part_max[parts] = np.int64(b_min), np.int64(b_max)
            parts += 1
        at += n
    return OK, -1, stats, parts, part_key, part_null, part_count, part_anchor, part_lo, part_hi, part_min, part_max  # fmt: skip
