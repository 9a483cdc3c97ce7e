"""Base-Delta blocks: the integer core every TerseCades codec reduces to.

A column is cut into blocks of at most ``block_size`` rows (TerseCades' "column batch"). Each
block stores one 8-byte ``base`` and one narrow unsigned delta per row, ``value = base + delta``
(optionally ``+ stride * row``), with the delta width chosen per block from
``WIDTHS = (0, 1, 2, 4, 8)`` bytes — 0 is a constant block, 8 the raw fall-back. Why these
extras beyond the paper's fixed 1-byte deltas:

* **exceptions** (patched frame-of-reference): a heavy-tailed column (Pingmesh RTTs: 2 % of
  probes are 10-1000x the median) would force every block to 4-byte deltas. Values that do not
  fit the chosen width are stored aside as a uint16 position and ``value - anchor`` (the block
  minimum; the smallest difference for delta kinds) in the fewest of 1/2/4/8 bytes that hold
  the block's exceptions; their delta slot holds 0. The encoder picks the width that minimises
  lane bytes plus exception bytes.
* **stride**: event timestamps grow almost linearly, so ``base + stride*i`` leaves deltas of
  0-1 byte where a plain base would need 2-4 bytes. All arithmetic is modulo 2^64, so decoding
  is exact for any stride, even one that overflowed while it was estimated.
* **bit lanes** (per column): widths in *bits* (0-64) instead of bytes, packed back to back.
  Uniform server ids need 10 bits, not 16; the price is an unpack to the next byte lane before
  the operators compare or sum. The default codec (``adaptive.py``) packs bit lanes.
* **kinds** (``KINDS``): a block's lanes are frame-of-reference offsets (FOR), differences to
  the previous row (DELTA) or of consecutive differences (DOD), or codes into a per-block
  dictionary of int64 values kept in the ``aux`` payload (DICT). Byte-lane codecs only write
  FOR; the default codec picks a kind per block.
* **zone map** ``vmin``/``vmax`` of the non-null values, so operators skip or accept whole
  blocks; with ``stride == 0`` the base *is* ``vmin``, so every delta is ``value - vmin``.
* **nulls** as a list of uint16 positions (their delta slot holds 0), and a CRC-32 over the
  block's header and buffers, so a corrupt block is refused instead of decoded into wrong values.

Everything here is vectorised over all blocks of equal row count at once (2-D numpy arrays);
the only Python loop is per block for the CRC, never per value. The per-row work of the
production paths (packing, decoding, filtering) runs in ``kernels/``; this module's numpy
decoder (``reference_decode_int64``) is what the tests compare the compiled one with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from isal import isal_zlib

from streaming.tersecades.bitpack import unpack_group
from streaming.tersecades.errors import CorruptEncodingError

__all__ = [
    "DELTA",
    "DICT",
    "DOD",
    "ESC",
    "EXCEPTION_BYTES",
    "FOR",
    "KINDS",
    "MAX_BLOCK_ROWS",
    "WIDTHS",
    "IntBlocks",
    "Payload",
    "block_rows",
    "delta_matrix",
    "encode_int64",
    "lane_max",
    "one_of",
    "pack_exceptions",
    "read_rows",
    "reference_decode_int64",
    "write_rows",
]

WIDTHS = (0, 1, 2, 4, 8)
# Block kinds: how a block's unsigned lane values turn back into its integers.
FOR = 0  # frame of reference: base + stride*row + lane
DELTA = 1  # lane + stride (the smallest delta) is the difference to the previous row
DOD = 2  # lane + stride is the difference of consecutive differences
DICT = 3  # lane is a code into the block's sorted dictionary of int64 values (``aux``)
ESC = 4  # codes 0..K-1 into a dictionary, code K escapes to a bit-packed side stream (``aux``)
KINDS = (FOR, DELTA, DOD, DICT, ESC)
EXCEPTION_BYTES = 10  # uint16 position + int64 value
MAX_BLOCK_ROWS = 65_536  # positions are uint16
_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_LIMIT = np.array([0, 0xFF, 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF], dtype=np.uint64)
_HEADER = np.dtype(
    [
        ("rows", "<i4"),
        ("base", "<i8"),
        ("stride", "<i8"),
        ("width", "i1"),
        ("vmin", "<i8"),
        ("vmax", "<i8"),
        ("nulls", "<i4"),
        ("kind", "i1"),
    ]
)


def one_of(values: np.ndarray, choices: tuple[int, ...]) -> np.ndarray:
    """``np.isin`` for a handful of small constants: a few compares, none of isin's sorting
    set-up (which costs more than the per-block arrays it is called on)."""
    hit = values == choices[0]
    for choice in choices[1:]:
        hit |= values == choice
    return hit


@dataclass(frozen=True)
class Payload:
    """Variable-length bytes per block: block ``b`` is ``data[offsets[b]:offsets[b+1]]``.

    The same layout as an Arrow binary array's buffers, so converting is zero-copy.
    """

    offsets: np.ndarray  # int64 [blocks + 1]
    data: np.ndarray  # uint8

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def block(self, b: int) -> np.ndarray:
        return self.data[self.offsets[b] : self.offsets[b + 1]]

    def items(self, dtype: type) -> np.ndarray:
        """All blocks' bytes reinterpreted as one flat array of ``dtype`` (block order)."""
        start, stop = int(self.offsets[0]), int(self.offsets[-1])
        return self.data[start:stop].view(dtype) if stop > start else np.empty(0, dtype)

    @staticmethod
    def from_blocks(block_of_item: np.ndarray, items: np.ndarray, blocks: int) -> Payload:
        """Pack ``items`` (already in block order) given the block each belongs to."""
        counts = np.bincount(block_of_item, minlength=blocks).astype(np.int64)
        offsets = np.zeros(blocks + 1, dtype=np.int64)
        np.cumsum(counts * items.dtype.itemsize, out=offsets[1:])
        return Payload(offsets, np.ascontiguousarray(items).view(np.uint8).reshape(-1))

    @staticmethod
    def concat(parts: list[Payload]) -> Payload:
        offsets, datas, shift = [np.zeros(1, np.int64)], [], 0
        for part in parts:
            start = int(part.offsets[0])
            offsets.append(part.offsets[1:] - start + shift)
            datas.append(part.data[start : int(part.offsets[-1])])
            shift += int(part.offsets[-1]) - start
        return Payload(np.concatenate(offsets), np.concatenate(datas) if datas else _EMPTY_U8)


_EMPTY_U8 = np.empty(0, dtype=np.uint8)


@dataclass(frozen=True)
class IntBlocks:
    """One encoded column: per-block metadata arrays plus four byte payloads."""

    rows: np.ndarray  # int32: rows in each block
    base: np.ndarray  # int64
    stride: np.ndarray  # int64 (0: plain base-delta)
    width: np.ndarray  # int8: delta bytes, one of WIDTHS (bits 0-64 if ``bits``)
    vmin: np.ndarray  # int64: min of the non-null values (0 if all null)
    vmax: np.ndarray  # int64
    nulls: np.ndarray  # int32: null count
    deltas: Payload  # rows*width bytes, little-endian unsigned
    exc_pos: Payload  # uint16 row positions of the exceptions, ascending
    exc_val: Payload  # exceptions as ``value - anchor`` in 1/2/4/8 bytes (see exception_rows)
    null_pos: Payload  # uint16 row positions of the nulls, ascending
    crc: np.ndarray  # int64 (a uint32 CRC-32)
    bits: bool = False  # widths count bits (packed lanes) instead of bytes
    kind: np.ndarray | None = None  # int8 per block, one of KINDS (None: all FOR)
    aux: Payload | None = None  # int64 dictionary values of DICT blocks (None: none)

    def __post_init__(self) -> None:
        if self.kind is None:
            object.__setattr__(self, "kind", np.zeros(len(self.rows), np.int8))
        if self.aux is None:
            object.__setattr__(
                self, "aux", Payload(np.zeros(len(self.rows) + 1, np.int64), _EMPTY_U8)
            )

    @property
    def plain(self) -> np.ndarray:
        """Blocks whose lanes are ``value - base`` (FOR without stride): operators compare and
        sum those lanes directly; every other block kind is decoded for just its rows."""
        return (self.kind == FOR) & (self.stride == 0)

    @property
    def num_blocks(self) -> int:
        return len(self.rows)

    @property
    def num_rows(self) -> int:
        return int(self.rows.sum())

    @property
    def starts(self) -> np.ndarray:
        """First row of each block in the decoded column."""
        starts = np.zeros(self.num_blocks, dtype=np.int64)
        np.cumsum(self.rows[:-1], out=starts[1:])
        return starts

    @property
    def encoded_bytes(self) -> int:
        """Bytes of the encoded form: 8-byte base, stride, min, max, CRC; 1-byte width and kind,
        4-byte row and null counts, 4-byte offsets for each of the five payloads, plus the
        payloads."""
        payload = sum(
            int(p.offsets[-1] - p.offsets[0])
            for p in (self.deltas, self.exc_pos, self.exc_val, self.null_pos)
        )
        payload += int(self.aux.offsets[-1] - self.aux.offsets[0])
        return self.num_blocks * (5 * 8 + 2 + 2 * 4 + 5 * 4) + payload

    def exception_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(decoded row index, value) of every exception."""
        pos = self.exc_pos.items(np.uint16).astype(np.int64)
        counts = self.exc_pos.lengths // 2
        rows = np.repeat(self.starts, counts) + pos
        return rows, _unpack_exceptions(self.exc_val, counts, self.exception_anchor)

    @property
    def exception_anchor(self) -> np.ndarray:
        """What exceptions are stored relative to: the block's minimum, or for delta kinds its
        smallest difference, so a near-constant column's patches take a byte or two."""
        return np.where(one_of(self.kind, (DELTA, DOD)), self.stride, self.vmin)

    def null_rows(self) -> np.ndarray:
        pos = self.null_pos.items(np.uint16).astype(np.int64)
        return np.repeat(self.starts, self.null_pos.lengths // 2) + pos

    def compute_crc(self, extra: tuple[Payload, ...] = ()) -> np.ndarray:
        """CRC-32 per block over its header fields and every payload slice (extras included).

        The loop is per block (never per value) and touches only non-empty slices through
        memoryviews: most blocks have no exceptions or nulls, so it is ~2 calls per block.
        """
        header = np.empty(self.num_blocks, dtype=_HEADER)
        for name in _HEADER.names:
            header[name] = getattr(self, name)
        header_bytes, size = header.tobytes(), _HEADER.itemsize
        slices = []
        for payload in (self.deltas, self.exc_pos, self.exc_val, self.null_pos, self.aux, *extra):
            offsets = payload.offsets.tolist()
            if offsets[-1] > offsets[0]:
                slices.append((memoryview(np.ascontiguousarray(payload.data)), offsets))
        crc32 = isal_zlib.crc32  # zlib.crc32 bit for bit, vectorised (PCLMUL)
        out = [0] * self.num_blocks
        for b in range(self.num_blocks):  # per block, never per value
            crc = crc32(header_bytes[b * size : (b + 1) * size])
            for view, offsets in slices:
                start, stop = offsets[b], offsets[b + 1]
                if stop > start:
                    crc = crc32(view[start:stop], crc)
            out[b] = crc
        return np.array(out, dtype=np.int64)

    def validate(self, column: str, *, check_crc: bool = True, extra: tuple = ()) -> None:
        """Refuse inconsistent metadata or buffers with one message naming column and block."""

        if self.num_blocks == 0:
            return
        # every check in one compiled pass (the kernels import this module)
        from streaming.tersecades.kernels.validate import CHECKS, PAYLOADS, first_violation

        for name in PAYLOADS:
            if len(getattr(self, name).offsets) != self.num_blocks + 1:
                raise CorruptEncodingError(f"column {column!r}: {name} offsets are malformed")
        check, block = first_violation(self, self.bits)
        if check >= 100:
            name, problem = PAYLOADS[(check - 100) // 2], check % 2
            what = "buffer is truncated" if problem else "offsets are malformed"
            raise CorruptEncodingError(f"column {column!r}: {name} {what}")
        if check >= 0:
            what = CHECKS[check].format(
                width=int(self.width[block]),
                widths="0..64 bits" if self.bits else WIDTHS,
                kind=int(self.kind[block]),
                kinds=KINDS,
            )
            raise CorruptEncodingError(f"column {column!r} block {block}: {what}")
        if check_crc and (bad := self.compute_crc(extra) != self.crc).any():
            block = int(np.flatnonzero(bad)[0])
            raise CorruptEncodingError(
                f"column {column!r} block {block}: CRC mismatch (a buffer or header field was altered)"
            )

    @staticmethod
    def concat(parts: list[IntBlocks]) -> IntBlocks:
        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        def cat_payload(name: str) -> Payload:
            return Payload.concat([getattr(p, name) for p in parts])

        return IntBlocks(
            *(cat(n) for n in ("rows", "base", "stride", "width", "vmin", "vmax", "nulls")),
            *(cat_payload(n) for n in ("deltas", "exc_pos", "exc_val", "null_pos")),
            crc=cat("crc"),
            bits=parts[0].bits,
            kind=cat("kind"),
            aux=cat_payload("aux"),
        )

    def take(self, blocks: np.ndarray) -> IntBlocks:
        """The sub-column made of the given blocks (copies only their bytes)."""

        def sub(payload: Payload) -> Payload:
            lengths = payload.lengths[blocks]
            offsets = np.zeros(len(blocks) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            if offsets[-1] == 0:
                return Payload(offsets, _EMPTY_U8)
            starts = payload.offsets[:-1][blocks].tolist()
            stops = payload.offsets[1:][blocks].tolist()
            data = payload.data
            # one slice per block (memcpy), never an index per byte
            return Payload(offsets, np.concatenate([data[a:b] for a, b in zip(starts, stops)]))

        return IntBlocks(
            *(getattr(self, n)[blocks] for n in ("rows", "base", "stride", "width")),
            *(getattr(self, n)[blocks] for n in ("vmin", "vmax", "nulls")),
            *(sub(getattr(self, n)) for n in ("deltas", "exc_pos", "exc_val", "null_pos")),
            crc=self.crc[blocks],
            bits=self.bits,
            kind=self.kind[blocks],
            aux=sub(self.aux),
        )


def pack_exceptions(
    block: np.ndarray, values: np.ndarray, anchor: np.ndarray, blocks: int
) -> Payload:
    """Exception values (in block order) as ``value - anchor`` modulo 2^64, in the fewest of
    1/2/4/8 bytes that hold every exception of the block (readable back by its length).

    Each value's eight little-endian bytes form one row of a (values, 8) byte matrix; keeping
    the low ``size`` bytes of every row with one boolean mask concatenates the items in block
    order, whatever mix of sizes the blocks chose (no per-byte index, no loop over sizes)."""
    offset = values.view(np.uint64) - anchor.view(np.uint64)[block]
    counts = np.bincount(block, minlength=blocks).astype(np.int64)
    widest = np.zeros(blocks, np.uint64)
    np.maximum.at(widest, block, offset)
    item = np.select([widest < 2**8, widest < 2**16, widest < 2**32], [1, 2, 4], 8)
    offsets = np.zeros(blocks + 1, np.int64)
    np.cumsum(counts * item, out=offsets[1:])
    size = item[block]
    little = offset.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)
    data = little[size[:, None] > _ITEM_BYTES]
    return Payload(offsets, np.ascontiguousarray(data))


_ITEM_BYTES = np.arange(8)


def _unpack_exceptions(payload: Payload, counts: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_exceptions`: int64 values of every exception, in block order
    (the same boolean byte mask scatters the items back into zeroed 8-byte rows)."""
    total = int(counts.sum())
    out = np.zeros((total, 8), np.uint8)
    if total == 0:
        return out.view(np.int64).reshape(-1)
    item = payload.lengths // np.maximum(counts, 1)
    block = np.repeat(np.arange(len(counts)), counts)
    out[item[block][:, None] > _ITEM_BYTES] = payload.data[
        int(payload.offsets[0]) : int(payload.offsets[-1])
    ]
    values = out.view("<u8").reshape(-1) + anchor.view(np.uint64)[block]
    return values.view(np.int64)


def empty_blocks(bits: bool = False) -> IntBlocks:
    zeros = np.zeros(1, dtype=np.int64)
    empty = Payload(zeros, _EMPTY_U8)
    i32, i64 = np.empty(0, np.int32), np.empty(0, np.int64)
    i8 = np.empty(0, np.int8)
    return IntBlocks(i32, i64, i64, i8, i64, i64, i32, *(empty,) * 4, crc=i64, bits=bits)


def lane_bytes(width: int, bits: bool) -> int:
    """Bytes of the numpy lane that holds one delta of ``width`` (bytes, or bits)."""
    if not bits:
        return width
    return 0 if width == 0 else next(b for b in (1, 2, 4, 8) if 8 * b >= width)


def lane_max(width: int, bits: bool) -> int:
    """Largest delta a lane of ``width`` holds: the exception threshold."""
    return (1 << (width if bits else 8 * width)) - 1


def payload_bytes(rows: np.ndarray, width: np.ndarray, bits: bool) -> np.ndarray:
    """Delta bytes of blocks of ``rows`` at ``width``."""
    total = rows.astype(np.int64) * width.astype(np.int64)
    return (total + 7) // 8 if bits else total


def encode_int64(
    values: np.ndarray,
    valid: np.ndarray | None,
    block_size: int,
    *,
    allow_stride: bool = True,
    bits: bool = False,
) -> IntBlocks:
    """Encode int64 ``values`` (``valid`` False marks nulls) into Base-Delta blocks
    (``bits``: widths in bits, packed lanes)."""
    if not 1 <= block_size <= MAX_BLOCK_ROWS:
        raise ValueError(f"block_size={block_size} must be within [1, {MAX_BLOCK_ROWS}]")
    values = np.ascontiguousarray(values, dtype=np.int64)
    if valid is not None:
        valid = np.ascontiguousarray(valid, dtype=bool)
        if valid.all():
            valid = None
    n = len(values)
    full = n // block_size
    parts = []
    if full:
        cut = full * block_size
        parts.append(
            _encode_group(
                values[:cut].reshape(full, block_size),
                None if valid is None else valid[:cut].reshape(full, block_size),
                allow_stride,
                bits,
            )
        )
    if n > full * block_size:
        cut = full * block_size
        parts.append(
            _encode_group(
                values[cut:].reshape(1, -1),
                None if valid is None else valid[cut:].reshape(1, -1),
                allow_stride,
                bits,
            )
        )
    if not parts:
        return empty_blocks(bits)
    blocks = parts[0] if len(parts) == 1 else IntBlocks.concat(parts)
    return blocks


def _encode_group(
    x: np.ndarray, valid: np.ndarray | None, allow_stride: bool, bits: bool
) -> IntBlocks:
    """Encode ``nb`` blocks of equal length ``n`` given as a 2-D array."""
    nb, n = x.shape
    if valid is not None and not valid.all():
        nulls = (~valid).sum(axis=1).astype(np.int32)
        vmin = np.where(valid, x, np.iinfo(np.int64).max).min(axis=1)
        vmax = np.where(valid, x, np.iinfo(np.int64).min).max(axis=1)
        all_null = nulls == n
        vmin[all_null] = 0
        vmax[all_null] = 0
        x = np.where(valid, x, vmin[:, None])  # null slots get delta 0
    else:
        valid = None
        nulls = np.zeros(nb, dtype=np.int32)
        vmin, vmax = x.min(axis=1), x.max(axis=1)

    u = x.view(np.uint64)
    delta = u - vmin.view(np.uint64)[:, None]  # modulo 2^64: exact even across the int64 range
    size, width = _best_width(delta, n, bits)
    base, stride = vmin.copy(), np.zeros(nb, dtype=np.int64)
    if allow_stride and n >= 2:
        # a line through first and last value; its overflow is harmless (mod 2^64 decode)
        est = (x[:, -1] - x[:, 0]) // (n - 1)
        if valid is not None:
            est[nulls > 0] = 0
        ramp = est.view(np.uint64)[:, None] * np.arange(n, dtype=np.uint64)
        residual = u - ramp
        rbase = residual.view(np.int64).min(axis=1)
        rdelta = residual - rbase.view(np.uint64)[:, None]
        rsize, rwidth = _best_width(rdelta, n, bits)
        use = (est != 0) & (rsize < size)
        if use.any():
            delta = np.where(use[:, None], rdelta, delta)
            width = np.where(use, rwidth, width)
            base = np.where(use, rbase, base)
            stride = np.where(use, est, stride)

    widest = 64 if bits else 8
    limit = np.array([lane_max(w, bits) for w in range(widest + 1)], dtype=np.uint64)[width]
    exc = delta > limit[:, None]
    if valid is not None:
        null_block, null_row = np.nonzero(~valid)
        null_pos = Payload.from_blocks(null_block, null_row.astype(np.uint16), nb)
    else:
        null_pos = Payload(np.zeros(nb + 1, np.int64), _EMPTY_U8)

    width = width.astype(np.int8)
    from streaming.tersecades.kernels.encode import pack_column  # the kernels import blocks

    # lanes, exception positions and values in one compiled pass (byte lanes are the same bit
    # stream at 8x the width); exceptions hold ``value - vmin``
    lane_bits = width.astype(np.int64) * (1 if bits else 8)
    lane_off, lane_data, pos_off, pos_data, val_off, val_data = pack_column(
        delta, lane_bits, exc, x, vmin
    )
    deltas = Payload(lane_off, lane_data)
    exc_pos, exc_val = Payload(pos_off, pos_data), Payload(val_off, val_data)
    rows = np.full(nb, n, dtype=np.int32)
    blocks = IntBlocks(
        rows,
        base,
        stride,
        width,
        vmin,
        vmax,
        nulls,
        deltas,
        exc_pos,
        exc_val,
        null_pos,
        crc=rows.astype(np.int64),
        bits=bits,
    )
    return blocks


def _best_width(delta: np.ndarray, n: int, bits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per block: the smallest ``delta bytes + EXCEPTION_BYTES*exceptions`` and its width."""
    if bits:
        return _best_bit_width(delta, n)
    dmax = delta.max(axis=1)
    sizes = np.empty((len(delta), len(WIDTHS)), dtype=np.int64)
    for i, width in enumerate(WIDTHS[:-1]):
        over = dmax > _LIMIT[i]
        count = np.zeros(len(delta), dtype=np.int64)
        if over.any():
            count[over] = (delta[over] > _LIMIT[i]).sum(axis=1)
        sizes[:, i] = n * width + EXCEPTION_BYTES * count
    sizes[:, -1] = n * 8
    choice = sizes.argmin(axis=1)
    return sizes[np.arange(len(delta)), choice], np.array(WIDTHS)[choice]


def _best_bit_width(delta: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Bit-lane version: a per-block histogram of the deltas' bit lengths gives, for every
    width b, how many deltas would not fit (the exceptions) in one pass."""
    nb = len(delta)
    # bit length = float exponent - 1022 (1 -> 1, 2..3 -> 2, ...); float rounding can only overstate it by one near 2^53+,
    # which may cost a wider lane but never correctness (exceptions use exact comparisons)
    exponent = (delta.astype(np.float64).view(np.uint64) >> np.uint64(52)).astype(np.int64)
    length = np.where(delta == 0, 0, np.minimum(exponent - 1022, 64))
    hist = np.bincount((np.arange(nb)[:, None] * 65 + length).ravel(), minlength=nb * 65)
    hist = hist.reshape(nb, 65)
    fits = np.cumsum(hist, axis=1)  # fits[:, b]: deltas with bit length <= b
    widths = np.arange(65)
    sizes = (n * widths + 7) // 8 + EXCEPTION_BYTES * (n - fits)
    sizes[:, 64] = 8 * n  # no exceptions at full width
    choice = sizes.argmin(axis=1)
    return sizes[np.arange(nb), choice], choice


def _uniform_region(
    flat: np.ndarray, first: np.ndarray, group: np.ndarray, span: int
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """If block ``b`` of ``group`` starts at ``first[0] + span*(b - group[0])`` (equal-shape
    blocks laid out back to back, the usual case), the rows of ``flat`` covering them as a 2-D
    view, plus the local row ids (None when the group is the whole region). Else None."""
    local = group - group[0]
    if not (first == first[0] + span * local).all():
        return None
    start = int(first[0])
    region = flat[start : start + span * (int(local[-1]) + 1)].reshape(-1, span)
    return region, None if len(local) == len(region) else local


def read_rows(flat: np.ndarray, starts: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` rows of each block of ``group`` from a flat per-row array, as a 2-D array
    (a view when the blocks are consecutive, a row gather otherwise)."""
    found = _uniform_region(flat, starts[group], group, n)
    if found is not None:
        region, local = found
        return region if local is None else region[local]
    return flat[starts[group][:, None] + np.arange(n)]


def write_rows(
    flat: np.ndarray, starts: np.ndarray, group: np.ndarray, n: int, values: np.ndarray
) -> None:
    """Inverse of :func:`read_rows`: store a 2-D array into the blocks' rows of ``flat``."""
    found = _uniform_region(flat, starts[group], group, n)
    if found is not None:
        region, local = found
        if local is None:
            region[:] = values
        else:
            region[local] = values
        return
    flat[starts[group][:, None] + np.arange(n)] = values


def delta_matrix(blocks: IntBlocks, group: np.ndarray, n: int, w: int) -> np.ndarray:
    """The deltas of ``group`` (blocks of ``n`` rows and width ``w`` >= 1) as a 2-D uint array
    (bit lanes are unpacked to the next byte lane)."""
    offsets = blocks.deltas.offsets[group]
    data = blocks.deltas.data
    span = (n * w + 7) // 8 if blocks.bits else n * w
    found = _uniform_region(data, offsets, group, span)
    if found is not None:
        region, local = found
        raw = region if local is None else region[local]
    else:  # one slice per block (memcpy), never an index per byte
        raw = np.concatenate([data[o : o + span] for o in offsets.tolist()])
    if blocks.bits:
        return unpack_group(raw.reshape(len(group), span), n, w)
    return raw.reshape(-1).view(_UINT[w]).reshape(len(group), n)


def block_rows(blocks: IntBlocks, ids: np.ndarray) -> np.ndarray | slice:
    """Decoded-row indices of blocks ``ids`` (ascending, distinct), in block order, built with
    one repeat instead of a range per block; every block selected gives ``slice(None)`` so the
    caller's gather is a view."""
    if len(ids) == blocks.num_blocks:
        return slice(None)
    rows = blocks.rows[ids].astype(np.int64)
    first = np.cumsum(rows) - rows
    return np.repeat(blocks.starts[ids] - first, rows) + np.arange(int(rows.sum()))


def groups(
    blocks: IntBlocks, selected: np.ndarray | None = None
) -> list[tuple[int, int, np.ndarray]]:
    """``(rows, width, block ids)`` groups of equal shape among ``selected`` blocks."""
    ids = np.arange(blocks.num_blocks) if selected is None else np.asarray(selected)
    if len(ids) == 0:
        return []
    key = blocks.rows[ids].astype(np.int64) * 128 + blocks.width[ids]
    out = []
    for k in np.unique(key):
        members = ids[key == k]
        out.append((int(k // 128), int(k % 128), members))
    return out


def _escape_values(
    ids: np.ndarray,
    codes: np.ndarray,
    dictionary: np.ndarray,
    dict_start: np.ndarray,
    dict_size: np.ndarray,
) -> np.ndarray:
    """Values of ESC blocks ``ids`` from their lane codes (k, n) and ``aux`` words
    ``[K, side base, side width, K values, side words]`` (see ``adaptive.py``): vectorised
    over the blocks, one unpack call per side width."""
    start, size = dict_start[ids], dict_size[ids]
    if (size < 3).any():
        raise CorruptEncodingError("escape dictionary header is truncated")
    escape, base, width = dictionary[start[:, None] + np.arange(3)].T
    if ((escape < 1) | (escape > size - 3) | (width < 0) | (width > 64)).any():
        raise CorruptEncodingError("escape dictionary header is out of range")
    if (codes > escape[:, None]).any():
        raise CorruptEncodingError("a dictionary code is outside its block's dictionary")
    is_escape = codes == escape[:, None]
    count = is_escape.sum(axis=1)
    words = size - 3 - escape
    if (words != np.where(width > 0, -(-count // 64) * width, 0)).any():
        raise CorruptEncodingError("escape stream length does not match the escape codes")
    # codes -> values through a small per-block table (escape reads a placeholder, patched
    # below): one add and one gather over the rows
    span = int(codes.max()) + 1 if codes.size else 1
    table = dictionary[start[:, None] + 3 + np.minimum(np.arange(span), escape[:, None] - 1)]
    out = table.reshape(-1)[codes + (np.arange(len(ids)) * span)[:, None]].view(np.uint64)
    side = np.zeros(int(count.sum()), np.uint64)
    first = np.cumsum(count) - count
    for w in np.unique(width[(count > 0) & (width > 0)]).tolist():
        sel = np.flatnonzero((width == w) & (count > 0))
        word_start = (start + 3 + escape)[sel].tolist()
        word_stop = (start + size)[sel].tolist()
        packed = np.concatenate([dictionary[a:b] for a, b in zip(word_start, word_stop)])
        padded = -(-count[sel] // 64) * 64
        values = unpack_group(packed.view(np.uint8).reshape(1, -1), int(padded.sum()), w)[0]
        n_sel = count[sel]
        rank = np.arange(int(n_sel.sum())) - np.repeat(np.cumsum(n_sel) - n_sel, n_sel)
        source = np.repeat(np.cumsum(padded) - padded, n_sel) + rank
        side[np.repeat(first[sel], n_sel) + rank] = values[source]
    side += np.repeat(base.view(np.uint64), count)
    out[is_escape] = side
    return out


def reference_decode_int64(blocks: IntBlocks) -> tuple[np.ndarray, np.ndarray | None]:
    """The numpy reference decoder (the compiled one is ``kernels.decode.decode_blocks``, which
    the codecs use; the tests compare the two): (int64 values, validity or None).

    Lanes are first turned into values (FOR, DICT) or differences (DELTA, DOD); exceptions are
    patched in (they hold the exact value, or the exact difference for delta kinds); delta
    blocks are then integrated with a running sum modulo 2^64, which is exact for any input.
    """
    values = np.empty(blocks.num_rows, dtype=np.int64)
    starts = blocks.starts
    u = values.view(np.uint64)
    kind = blocks.kind
    dictionary = blocks.aux.items(np.int64)
    dict_start = (blocks.aux.offsets[:-1] - blocks.aux.offsets[0]) // 8
    dict_size = blocks.aux.lengths // 8
    for n, w, group in groups(blocks):
        if n == 0:
            continue
        k = kind[group]
        anchor = np.where(k == FOR, blocks.base[group], blocks.stride[group])
        coded_only = bool(one_of(k, (DICT, ESC)).all())  # lanes are codes: no frame to add
        # blocks laid out back to back (the usual case) are written in place: no temporary
        found = _uniform_region(u, starts[group], group, n)
        in_place = found is not None and found[1] is None
        out = found[0] if in_place else np.empty((len(group), n), np.uint64)
        if w == 0:
            out[:] = anchor.view(np.uint64)[:, None]
        else:
            lanes = delta_matrix(blocks, group, n, w)
            if not coded_only:
                np.add(lanes, anchor.view(np.uint64)[:, None], out=out)
        ramped = (k == FOR) & (blocks.stride[group] != 0)
        if ramped.any():
            ramp = blocks.stride[group].view(np.uint64)[:, None] * np.arange(n, dtype=np.uint64)
            out[ramped] += ramp[ramped]
        coded = np.flatnonzero(k == DICT)
        if len(coded):
            codes = np.zeros((len(coded), n), np.int64) if w == 0 else lanes[coded].astype(np.int64)
            size = dict_size[group[coded]][:, None]
            if (codes >= np.maximum(size, 1)).any():
                raise CorruptEncodingError("a dictionary code is outside its block's dictionary")
            index = dict_start[group[coded]][:, None] + np.minimum(codes, np.maximum(size - 1, 0))
            out[coded] = dictionary[index].view(np.uint64) if len(dictionary) else 0
        escaped = np.flatnonzero(k == ESC)
        if len(escaped):
            if w == 0:
                codes = np.zeros((len(escaped), n), np.int64)
            else:
                codes = lanes if len(escaped) == len(group) else lanes[escaped]
            out[escaped] = _escape_values(group[escaped], codes, dictionary, dict_start, dict_size)
        if not in_place:
            write_rows(u, starts, group, n, out)
    exc_rows, exc_vals = blocks.exception_rows()
    values[exc_rows] = exc_vals
    for kind_id, passes in ((DELTA, 1), (DOD, 2)):
        ids = np.flatnonzero((kind == kind_id) & (blocks.rows > 0))
        for n in np.unique(blocks.rows[ids]).tolist():
            group = ids[blocks.rows[ids] == n]
            steps = read_rows(u, starts, group, n).copy()
            steps[:, 0] = 0
            for _ in range(passes):
                np.cumsum(steps, axis=1, out=steps)
            steps += blocks.base[group].view(np.uint64)[:, None]
            write_rows(u, starts, group, n, steps)
    if int(blocks.nulls.sum()) == 0:
        return values, None
    valid = np.ones(blocks.num_rows, dtype=bool)
    null_rows = blocks.null_rows()
    valid[null_rows] = False
    values[null_rows] = 0
    return values, valid
