"""Per-block codec choice by sampling: the encoder behind TerseCades' default integer codec.

Real telemetry mixes shapes a single scheme cannot serve: bursty timestamps (small gaps, rare
jumps), uniform ids, heavy-tailed latencies, near-constant error codes. Following the
lightweight-codec line of FastLanes and BtrBlocks, every block picks one of five kinds
(``blocks.KINDS``) after estimating each on a small sample of its rows:

* **FOR** — frame of reference (optionally with a linear stride), bit-packed at the width that
  minimises ``lane bits + exception bytes``; values that do not fit are patched exceptions.
  A block whose lanes are all 0 with a few exceptions is the sparse / run-length case.
* **DELTA** — differences to the previous row, frame-of-referenced and bit-packed (patches
  hold the exact difference): timestamps with jitter, counters.
* **DOD** — differences of differences: series whose rate drifts.
* **DICT** — a sorted per-block dictionary of the frequent values, codes bit-packed, the rest
  patched: columns with few distinct values spread over a wide range.
* **ESC** — a dictionary of the few frequent values plus an escape code; escaped values go to a
  frame-of-referenced, bit-packed side stream in row order (no positions): a latency column
  that is 70 % five recurring values and a long tail.

The sample is ``RUNS`` contiguous runs of ``RUN`` rows (contiguous, so the delta kinds can be
estimated), about 3 % of a 4,096-row block and 0.2 % of a default 65,536-row one; each
estimate is one histogram of bit lengths.
FOR is preferred unless another kind is clearly smaller, because operators work on FOR lanes
directly and decode the other kinds. Everything is vectorised over all blocks of a batch.
"""

from __future__ import annotations

import numpy as np

from streaming.tersecades.blocks import (
    DELTA,
    DICT,
    DOD,
    ESC,
    FOR,
    IntBlocks,
    Payload,
    empty_blocks,
    one_of,
)
from streaming.tersecades.kernels.encode import (
    block_min_max,
    encode_clean,
    escape_codes,
    pack_blocks,
    pack_column,
)

__all__ = ["CHOICES", "encode_adaptive"]

CHOICES = ("for", "stride", "delta", "dod", "dict", "esc")  # what the sampler chooses among
RUNS, RUN = 4, 32
PREFER_FOR = 0.9  # another kind must be estimated >10 % smaller than FOR to be chosen
MAX_DICT = 1 << 12
MAX_ESC = 15  # dictionary slots of an ESC block (codes 0..15 fit 4 bits)
EXCEPTION_BYTES = 5  # a patch: uint16 position + the value's offset in 1-8 (mostly 2-4) bytes
_EMPTY_U8 = np.empty(0, np.uint8)


def encode_adaptive(
    values: np.ndarray,
    valid: np.ndarray | None,
    block_size: int,
    *,
    forced: np.ndarray | None = None,
    patch_values: np.ndarray | None = None,
    allow_delta: bool = True,
    only: str | None = None,
    compiled: bool = True,
) -> IntBlocks:
    """Encode int64 ``values`` (``valid`` False marks nulls) in bit-packed blocks of sampled
    kinds. ``forced`` rows are stored as exceptions holding ``patch_values`` (the float codec's
    values that have no integer form); the zone maps ignore them. ``only`` (one of
    ``CHOICES``) pins the kind wherever the block allows it, instead of sampling.
    ``compiled=False`` encodes blocks without nulls or patches in numpy too (the reference
    the tests compare the compiled path with, byte for byte)."""
    if only is not None and only not in CHOICES:
        raise ValueError(f"block kind {only!r} is not one of {CHOICES}")
    values = np.ascontiguousarray(values, dtype=np.int64)
    n = len(values)
    if valid is not None and valid.all():
        valid = None
    if forced is not None and not forced.any():
        forced = None
    full = n // block_size
    cuts = [(0, full * block_size, full)] if full else []
    if n > full * block_size:
        cuts.append((full * block_size, n, 1))
    parts = []
    for start, stop, nb in cuts:

        def shape(a: np.ndarray | None, start=start, stop=stop, nb=nb) -> np.ndarray | None:
            return None if a is None else a[start:stop].reshape(nb, -1)

        parts.append(
            _encode_group(
                shape(values),
                shape(valid),
                shape(forced),
                shape(patch_values),
                allow_delta,
                only,
                compiled,
            )
        )
    if not parts:
        return empty_blocks(True)
    return parts[0] if len(parts) == 1 else IntBlocks.concat(parts)


def _bit_length(u: np.ndarray) -> np.ndarray:
    """Bit length of uint64 values (exact below 2^53, at most one too high above)."""
    exponent = (u.astype(np.float64).view(np.uint64) >> np.uint64(52)).astype(np.int64)
    return np.where(u == 0, 0, np.minimum(exponent - 1022, 64))


def _sizes(lanes: np.ndarray, rows: int, extra_exceptions: np.ndarray | None = None) -> np.ndarray:
    """Per block and width 0..64: bytes of ``rows`` lanes at that width plus the exceptions
    (lanes that do not fit, plus ``extra_exceptions``), from one bit-length histogram of the
    (possibly sampled) ``lanes``, scaled to ``rows``."""
    nb, m = lanes.shape
    length = _bit_length(lanes)
    hist = np.bincount((np.arange(nb)[:, None] * 65 + length).ravel(), minlength=nb * 65)
    fits = np.cumsum(hist.reshape(nb, 65), axis=1)
    widths = np.arange(65)
    over = (m - fits) * (rows / m)
    if extra_exceptions is not None:
        over = over + extra_exceptions[:, None]
    sizes = (rows * widths + 7) // 8 + EXCEPTION_BYTES * over
    if extra_exceptions is None:
        sizes[:, 64] = 8 * rows
    else:
        sizes[:, 64] = np.where(extra_exceptions > 0, np.inf, 8 * rows)
    return sizes


def _min_size(lanes: np.ndarray, rows: int) -> np.ndarray:
    return _sizes(lanes, rows).min(axis=1)


def _sample(x: np.ndarray) -> np.ndarray:
    """``RUNS`` contiguous runs of ``RUN`` rows per block, spread over it: (nb, runs, run)."""
    n = x.shape[1]
    if n <= RUNS * RUN:
        return x[:, None, :]
    first = np.linspace(0, n - RUN, RUNS).astype(np.int64)
    return x[:, first[:, None] + np.arange(RUN)]


def _frame(r: np.ndarray) -> np.ndarray:
    """Lanes of a frame of reference over the last axis flattened per block."""
    flat = r.reshape(len(r), -1)
    return flat.view(np.uint64) - flat.min(axis=1).view(np.uint64)[:, None]


def _estimates(
    x: np.ndarray, delta_ok: np.ndarray, clean: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Estimated bytes per block of FOR, FOR+stride, DELTA, DOD, DICT, ESC (rows: kinds), and
    the stride guess (a line through the block's first and last value)."""
    nb, n = x.shape
    s = _sample(x)
    m = s.shape[1] * s.shape[2]
    est = np.zeros(nb, np.int64)
    if n >= 2:
        est = (x[:, -1] - x[:, 0]) // (n - 1)
    est[~delta_ok] = 0
    inf = np.full(nb, np.inf)
    cost = np.vstack([_min_size(_frame(s), n), inf, inf, inf, inf, inf])
    if n >= 2 and (est != 0).any():
        at = _sample(np.broadcast_to(np.arange(n, dtype=np.uint64), (1, n)))[0]
        ramp = est.view(np.uint64)[:, None, None] * at[None]
        cost[1] = np.where(
            est != 0, _min_size(_frame((s.view(np.uint64) - ramp).view(np.int64)), n), np.inf
        )
    if s.shape[2] >= 3 and delta_ok.any():
        d1 = np.diff(s.view(np.uint64), axis=2).view(np.int64)
        cost[2] = np.where(delta_ok, _min_size(_frame(d1), n), np.inf)
        d2 = np.diff(d1.view(np.uint64), axis=2).view(np.int64)
        cost[3] = np.where(delta_ok, _min_size(_frame(d2), n), np.inf)
    flat = np.sort(s.reshape(nb, m), axis=1)
    new = np.ones((nb, m), bool)
    new[:, 1:] = flat[:, 1:] != flat[:, :-1]
    last = np.ones((nb, m), bool)
    last[:, :-1] = new[:, 1:]
    distinct = new.sum(axis=1)
    singles = (new & last).sum(axis=1)  # values seen once: the mass a dictionary will miss
    repeated = np.maximum(distinct - singles, 1)
    code_bits = _bit_length(np.asarray(repeated - 1, np.uint64))
    cost[4] = (n * code_bits + 7) // 8 + 8 * repeated + EXCEPTION_BYTES * n * singles / m
    if clean.any():  # ESC: repeated values get codes, the values seen once an escape stream
        alone = new & last
        low = np.where(alone, flat, np.iinfo(np.int64).max).min(axis=1)
        offset = np.where(alone, flat.view(np.uint64) - low.view(np.uint64)[:, None], 0)
        hist = np.bincount(
            (np.arange(nb)[:, None] * 65 + _bit_length(offset)).ravel(), minlength=nb * 65
        )
        over = (m - np.cumsum(hist.reshape(nb, 65), axis=1)) * (n / m)
        escaped = n * singles / m
        side = (escaped[:, None] * np.arange(65) + 7) // 8 + EXCEPTION_BYTES * over
        esc_bits = _bit_length(np.asarray(distinct - singles, np.uint64))
        esc = (n * esc_bits + 7) // 8 + 8 * (distinct - singles + 3) + side.min(axis=1)
        cost[5] = np.where(clean, esc, np.inf)
    return cost, est


def _limit(width: np.ndarray) -> np.ndarray:
    """Largest lane value of each width (0..64 bits)."""
    capped = np.minimum(width, 63).astype(np.uint64)
    return np.where(width >= 64, np.uint64(2**64 - 1), (np.uint64(1) << capped) - np.uint64(1))


def _widths(
    lanes: np.ndarray, force: np.ndarray, forced_count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per block the lane width, and which rows are exceptions. The width comes from the
    sample's bit-length histogram (capped by the block's widest lane); a block where the
    sample missed a crowd of wide values (more bytes than the no-exception width) takes
    that width instead: one exact pass, never a full histogram."""
    n = lanes.shape[1]
    anyforced = bool(force.any())
    free = np.where(force, np.uint64(0), lanes) if anyforced else lanes
    sampled = _sample(free).reshape(len(lanes), -1)
    width = _sizes(sampled, n, forced_count if anyforced else None).argmin(axis=1)
    widest = _bit_length(free.max(axis=1))
    width = np.minimum(width, widest)
    exc = free > _limit(width)[:, None]
    actual = (n * width + 7) // 8 + EXCEPTION_BYTES * exc.sum(axis=1)
    worse = actual > (n * widest + 7) // 8
    if worse.any():
        width[worse] = widest[worse]
        exc[worse] = False
    if anyforced:
        width = np.where(force.any(axis=1) & (width == 64), 63, width)
        exc |= free > _limit(width)[:, None]
        exc |= force
    return width, exc


def _choose(cost: np.ndarray) -> np.ndarray:
    """Kind index per block (0 FOR, 1 FOR+stride, 2 DELTA, 3 DOD, 4 DICT), FOR preferred."""
    weighted = cost.copy()
    weighted[1:] /= PREFER_FOR
    return weighted.argmin(axis=0)


def _dictionary(row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block's dictionary: the frequent values (sorted), the codes, and the misses."""
    uniq, inverse, counts = np.unique(row, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    covered = np.cumsum(counts[order])
    k = np.arange(1, min(len(uniq), MAX_DICT) + 1)
    size = (len(row) * _bit_length(np.asarray(k - 1, np.uint64)) + 7) // 8 + 8 * k
    size = size + EXCEPTION_BYTES * (len(row) - covered[: len(k)])
    keep = np.sort(order[: int(k[size.argmin()])])
    code_of = np.full(len(uniq), -1, np.int64)
    code_of[keep] = np.arange(len(keep))
    codes = code_of[inverse]
    miss = codes < 0
    codes[miss] = 0
    return uniq[keep], codes, miss


def _escape_dictionaries(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ESC dictionaries of blocks ``x`` (2-D), decided on the sample: up to ``MAX_ESC`` values
    seen more than once get codes ``0..K-1`` (most frequent first); code ``K`` escapes.
    Returns (dictionary values (nb, MAX_ESC), K per block, codes (nb, n))."""
    nb = len(x)
    s = np.sort(_sample(x).reshape(nb, -1), axis=1)
    m = s.shape[1]
    start = np.ones((nb, m), bool)
    start[:, 1:] = s[:, 1:] != s[:, :-1]
    run_id = np.cumsum(start, axis=1) - 1
    lengths = np.zeros((nb, m), np.int64)
    np.add.at(lengths, (np.repeat(np.arange(nb), m), run_id.ravel()), 1)
    first = np.zeros((nb, m), np.int64)  # value of each run
    rows, cols = np.nonzero(start)
    first[rows, run_id[rows, cols]] = s[rows, cols]
    top = np.argsort(-lengths, axis=1, kind="stable")[:, :MAX_ESC]
    top_len = np.take_along_axis(lengths, top, axis=1)
    values = np.take_along_axis(first, top, axis=1)
    # at least one code besides the escape: patched rows take code 0, never the escape
    k = np.maximum((top_len >= 2).sum(axis=1), 1)
    codes = escape_codes(np.ascontiguousarray(x), np.ascontiguousarray(values), k.astype(np.int64))
    return values, k, codes


def _side_streams(x: np.ndarray, escaped: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame of reference of each block's escaped values: (base, bit width, misses), the width
    minimising ``escaped * width`` bits plus patches for the values it does not hold."""
    nb = len(x)
    low = np.where(escaped, x, np.iinfo(np.int64).max).min(axis=1)
    low = np.where(escaped.any(axis=1), low, 0)
    offset = np.where(escaped, x.view(np.uint64) - low.view(np.uint64)[:, None], 0)
    length = _bit_length(offset)
    hist = np.bincount(
        (np.arange(nb)[:, None] * 65 + length).ravel(),
        weights=escaped.ravel(),
        minlength=nb * 65,
    ).reshape(nb, 65)
    count = escaped.sum(axis=1)
    over = count[:, None] - np.cumsum(hist, axis=1)
    sizes = (count[:, None] * np.arange(65) + 7) // 8 + EXCEPTION_BYTES * over
    width = sizes.argmin(axis=1)
    miss = escaped & (offset > _limit(width)[:, None])
    return low, width, miss


def _pack_side_streams(
    side: np.ndarray, block_of: np.ndarray, width: np.ndarray, nb: int
) -> list[np.ndarray]:
    """Per block, its side values bit-packed at its width as int64 words; one packing call per
    width (each block's values padded to a multiple of 64 so its words stay its own)."""
    counts = np.bincount(block_of, minlength=nb)
    padded = -(-counts // 64) * 64
    out = [np.empty(0, np.int64)] * nb
    for w in np.unique(width[(counts > 0) & (width > 0)]).tolist():
        members = np.flatnonzero((width == w) & (counts > 0))
        slot = np.zeros(nb, np.int64)
        slot[members] = np.cumsum(padded[members]) - padded[members]
        keep = np.isin(block_of, members)
        first = np.zeros(nb, np.int64)
        np.cumsum(counts[:-1], out=first[1:])
        rank = np.arange(len(block_of)) - first[block_of]
        buffer = np.zeros(int(padded[members].sum()), np.uint64)
        buffer[slot[block_of[keep]] + rank[keep]] = side[keep]
        _, packed = pack_blocks(buffer[None, :], np.array([w], np.int64))
        words = packed.view(np.int64)  # whole 64-value periods: whole words
        for b in members.tolist():  # per block, never per value
            start = slot[b] // 64 * w
            out[b] = words[start : start + padded[b] // 64 * w]
    return out


def _encode_group(
    x: np.ndarray,
    valid: np.ndarray | None,
    forced: np.ndarray | None,
    patch: np.ndarray | None,
    allow_delta: bool,
    only: str | None = None,
    compiled: bool = True,
) -> IntBlocks:
    """Encode ``nb`` blocks of equal length ``n`` given as a 2-D array. Blocks without nulls or
    patches whose kind is a frame or a delta (the usual telemetry) are framed, sized and packed
    by one compiled pass per block (``kernels.encode.encode_clean``); the rest here."""
    nb, n = x.shape
    ignore = None
    if valid is not None:
        ignore = ~valid
    if forced is not None:
        ignore = forced if ignore is None else ignore | forced
    nulls = np.zeros(nb, np.int32) if valid is None else (~valid).sum(axis=1).astype(np.int32)
    if ignore is not None:
        vmin = np.where(ignore, np.iinfo(np.int64).max, x).min(axis=1)
        vmax = np.where(ignore, np.iinfo(np.int64).min, x).max(axis=1)
        empty = ignore.all(axis=1)
        vmin[empty] = 0
        vmax[empty] = 0
        x = np.where(ignore, vmin[:, None], x)  # ignored slots get lane 0
        clean = ~ignore.any(axis=1)
    else:
        vmin, vmax = block_min_max(x) if compiled else (x.min(axis=1), x.max(axis=1))
        clean = np.ones(nb, bool)
    delta_ok = clean & allow_delta
    cost, est = _estimates(x, delta_ok, clean)
    choice = _choose(cost)
    if only is not None:  # pinned: wherever the block allows it (delta kinds need no nulls)
        pinned = CHOICES.index(only)
        allowed = {1: est != 0, 2: delta_ok, 3: delta_ok, 5: clean}.get(pinned, np.ones(nb, bool))
        choice = np.where(allowed, pinned, 0)
    if compiled and ignore is None and not (choice >= 4).any():
        sample = _sample(np.arange(n, dtype=np.int64)[None, :]).reshape(-1)
        out = encode_clean(x, patch, choice, est, vmin, sample, EXCEPTION_BYTES)
        rows = np.full(nb, n, dtype=np.int32)
        return IntBlocks(
            rows,
            *out[:2],
            out[3],
            vmin,
            vmax,
            nulls,
            Payload(out[4], out[5]),
            Payload(out[6], out[7]),
            Payload(out[8], out[9]),
            Payload(np.zeros(nb + 1, np.int64), _EMPTY_U8),
            crc=rows.astype(np.int64),
            bits=True,
            kind=out[2],
        )

    u = x.view(np.uint64)
    lanes = u - vmin.view(np.uint64)[:, None]
    exact = x if patch is None else patch.copy()  # what an exception stores
    base = vmin.copy()
    stride = np.zeros(nb, np.int64)
    kind = np.full(nb, FOR, np.int8)
    extra = np.zeros(nb, np.int64) if forced is None else forced.sum(axis=1)
    force = forced.copy() if forced is not None else np.zeros((nb, n), bool)
    dict_parts: list[np.ndarray] = [np.empty(0, np.int64)] * nb

    if (pick := np.flatnonzero(choice == 1)).size:
        ramp = est[pick].view(np.uint64)[:, None] * np.arange(n, dtype=np.uint64)
        residual = u[pick] - ramp
        rbase = residual.view(np.int64).min(axis=1)
        lanes[pick] = residual - rbase.view(np.uint64)[:, None]
        base[pick], stride[pick] = rbase, est[pick]
    for kind_id, passes, code in ((DELTA, 1, 2), (DOD, 2, 3)):
        if not (pick := np.flatnonzero(choice == code)).size:
            continue
        step = u[pick].copy()
        for _ in range(passes):
            step[:, 1:] = np.diff(step, axis=1)
            step[:, 0] = 0
        rest = step[:, 1:].view(np.int64)
        low = rest.min(axis=1) if n > 1 else np.zeros(len(pick), np.int64)
        lanes[pick] = step - low.view(np.uint64)[:, None]
        lanes[pick, 0] = 0
        if exact is x:
            exact = x.copy()
        exact[pick] = step.view(np.int64)
        base[pick], stride[pick], kind[pick] = x[pick, 0], low, kind_id
    if (pick := np.flatnonzero(choice == 4)).size:
        for b in pick.tolist():  # per block, never per value
            values, codes, miss = _dictionary(x[b])
            if ignore is not None:
                miss &= ~ignore[b]
            dict_parts[b] = values
            lanes[b] = codes.view(np.uint64)
            force[b] |= miss
        extra[pick] = force[pick].sum(axis=1)
        kind[pick] = DICT
    if (esc_ids := np.flatnonzero(choice == 5)).size:
        esc_values, esc_k, codes = _escape_dictionaries(x[esc_ids])
        side_base, side_width, miss = _side_streams(x[esc_ids], codes == esc_k[:, None])
        codes[miss] = 0
        lanes[esc_ids] = codes.view(np.uint64)
        force[esc_ids] |= miss
        extra[esc_ids] = force[esc_ids].sum(axis=1)
        kind[esc_ids] = ESC
    width, exc = _widths(lanes, force, extra)
    if esc_ids.size:
        # every code keeps its lane (an escape turned exception would shift the side stream)
        width[esc_ids] = _bit_length(esc_k.astype(np.uint64))
        exc[esc_ids] = force[esc_ids]
        on_side = (lanes[esc_ids] == esc_k[:, None].astype(np.uint64)) & ~force[esc_ids]
        side_block, side_row = np.nonzero(on_side)
        side = (
            x[esc_ids][side_block, side_row].view(np.uint64) - side_base.view(np.uint64)[side_block]
        )
        words = _pack_side_streams(side, side_block, side_width, len(esc_ids))
        for i, b in enumerate(esc_ids.tolist()):  # per block, never per value
            header = np.array([esc_k[i], side_base[i], side_width[i]], np.int64)
            dict_parts[b] = np.concatenate([header, esc_values[i, : esc_k[i]], words[i]])
    if valid is not None:
        exc &= valid | (forced if forced is not None else False)
    anchor = np.where(one_of(kind, (DELTA, DOD)), stride, vmin)
    if valid is not None:
        lanes[~valid] = 0
    lane_off, lane_data, pos_off, pos_data, val_off, val_data = pack_column(
        lanes, width.astype(np.int64), exc, np.ascontiguousarray(exact), anchor
    )
    exc_pos, exc_val = Payload(pos_off, pos_data), Payload(val_off, val_data)
    if valid is not None:
        null_block, null_row = np.nonzero(~valid)
        null_pos = Payload.from_blocks(null_block, null_row.astype(np.uint16), nb)
    else:
        null_pos = Payload(np.zeros(nb + 1, np.int64), _EMPTY_U8)
    dict_values = (
        np.concatenate(dict_parts) if one_of(kind, (DICT, ESC)).any() else np.empty(0, np.int64)
    )
    dict_block = np.repeat(np.arange(nb), [len(p) for p in dict_parts])
    aux = Payload.from_blocks(dict_block, dict_values, nb)

    width = width.astype(np.int8)
    rows = np.full(nb, n, dtype=np.int32)
    return IntBlocks(
        rows,
        base,
        stride,
        width,
        vmin,
        vmax,
        nulls,
        Payload(lane_off, lane_data),
        exc_pos,
        exc_val,
        null_pos,
        crc=rows.astype(np.int64),
        bits=True,
        kind=kind,
        aux=aux,
    )
