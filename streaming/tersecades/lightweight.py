"""The default lossless codecs: per-block sampled integer kinds, and ALP-style floats.

``TerseSpec(schema)`` uses these, so a user who names no codec gets, per block of every
integer-like column, the cheapest of frame-of-reference / delta / delta-of-delta / dictionary
with bit-packed lanes and patched exceptions (``adaptive.py``), and for floats the ALP idea:
most real floats are decimals, ``x == k / 10**e`` for a small integer ``k``, so the block's
``k`` are encoded like integers; values without such a form (NaN payloads, -0.0, infinities,
full-precision doubles) are patched with their exact IEEE bits. A block where decimals are
rare falls back to the order-preserving bit map of ``LosslessFloat``. Either way every bit
pattern round-trips exactly, which the encoder does not assume but checks per value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streaming.tersecades.adaptive import CHOICES, encode_adaptive
from streaming.tersecades.codecs import (
    Codec,
    Dictionary,
    EncodedColumn,
    LosslessFloat,
    _as_int64,
    _from_int64,
    _is_integer_like,
    _storage_type,
    _validity,
)
from streaming.tersecades.errors import CorruptEncodingError
from streaming.tersecades.kernels.decode import alp_floats, decode_blocks

__all__ = ["Adaptive", "AlpFloat", "default_codec"]

MAX_EXPONENT = 18  # 10**18 < 2**63
FALLBACK = -1  # block exponent meaning "IEEE bits, order-preserving map"
SAMPLE = 64
MIN_DECIMAL_SHARE = 0.5  # below this share of decimal values a block uses the bit map
_POW10 = 10.0 ** np.arange(MAX_EXPONENT + 1)


@dataclass(frozen=True)
class Adaptive(Codec):
    """Lossless integers and temporal types, the block kind chosen per block by sampling
    (``kind`` pins one of ``adaptive.CHOICES`` instead, where a block allows it)."""

    kind: str | None = None
    bit_packed = True

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in CHOICES:
            raise ValueError(f"Adaptive kind={self.kind!r} is not one of {CHOICES}")

    def check_type(self, column: str, arrow_type: pa.DataType) -> None:
        if not _is_integer_like(arrow_type):
            raise TypeError(
                f"column {column!r}: Adaptive needs an integer or temporal type, got {arrow_type}"
            )

    def encode(self, column: str, array: pa.Array, block_size: int) -> EncodedColumn:
        blocks = encode_adaptive(_as_int64(array), _validity(array), block_size, only=self.kind)
        return EncodedColumn(column, self, blocks).with_crc()

    def decode(self, encoded: EncodedColumn, arrow_type: pa.DataType) -> pa.Array:
        dtype = _storage_type(arrow_type).to_pandas_dtype()
        values, valid = decode_blocks(encoded.blocks, encoded.name, dtype)
        return _from_int64(encoded.name, values, valid, arrow_type)


def _decimal_keys(x: np.ndarray, exponent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rint(x * 10**e)`` and whether it decodes back to exactly ``x``'s bits."""
    scale = _POW10[np.maximum(exponent, 0)]
    with np.errstate(all="ignore"):  # NaN payloads and infinities: never exact, patched
        wide = x.astype(np.float64)
        k = np.rint(wide * scale)
        fits = np.isfinite(k) & (np.abs(k) < 2.0**53)
        keys = np.where(fits, k, 0.0).astype(np.int64)
        back = (keys.astype(np.float64) / scale).astype(x.dtype)
    exact = fits & (back.view(_int_view(x)) == x.view(_int_view(x)))
    return keys, exact


def _int_view(x: np.ndarray) -> type:
    return np.int64 if x.dtype == np.float64 else np.int32


def _block_exponents(x: np.ndarray, block_size: int) -> np.ndarray:
    """Per block, the smallest exponent that makes the most sampled values exact decimals
    (``FALLBACK`` when fewer than half are)."""
    n = len(x)
    nb = -(-n // block_size)
    first = np.arange(nb) * block_size
    length = np.minimum(block_size, n - first)
    at = first[:, None] + (np.arange(SAMPLE)[None, :] * length[:, None]) // SAMPLE
    sample = x[at]
    hits = np.empty((MAX_EXPONENT + 1, nb), np.int64)
    for e in range(MAX_EXPONENT + 1):  # per exponent, vectorised over every block
        hits[e] = _decimal_keys(sample, np.full(sample.shape, e))[1].sum(axis=1)
    best = hits.argmax(axis=0)
    share = hits[best, np.arange(nb)] / SAMPLE
    return np.where(share >= MIN_DECIMAL_SHARE, best, FALLBACK).astype(np.int8)


@dataclass(frozen=True)
class AlpFloat(Codec):
    """Lossless floats as decimal integers per block (ALP), with exact-bit patches."""

    bit_packed = True
    param_field = "exp"
    param_type = pa.int8()

    def param_value(self) -> None:
        return None  # per block; checked on decode

    def check_type(self, column: str, arrow_type: pa.DataType) -> None:
        if arrow_type not in (pa.float32(), pa.float64()):
            raise TypeError(f"column {column!r}: AlpFloat needs float32/float64, got {arrow_type}")

    def encode(self, column: str, array: pa.Array, block_size: int) -> EncodedColumn:
        width = array.type.bit_width
        valid = _validity(array)
        if array.null_count:
            array = pc.fill_null(array, 0.0)
        x = np.asarray(array.to_numpy(zero_copy_only=False))
        raw = x.view(np.int64 if width == 64 else np.int32).astype(np.int64)
        exponent = _block_exponents(x, block_size) if len(x) else np.empty(0, np.int8)
        per_row = np.repeat(exponent, block_size)[: len(x)].astype(np.int64)
        keys, exact = _decimal_keys(x, per_row)
        fallback = per_row == FALLBACK
        flipped = LosslessFloat._flip(raw, width)
        keys = np.where(fallback, flipped, keys)
        forced = ~exact & ~fallback
        if valid is not None:
            forced &= valid
        patch = np.where(fallback, flipped, raw)
        blocks = encode_adaptive(keys, valid, block_size, forced=forced, patch_values=patch)
        return EncodedColumn(column, self, blocks, param=exponent).with_crc()

    def decode(self, encoded: EncodedColumn, arrow_type: pa.DataType) -> pa.Array:
        blocks, exponent = encoded.blocks, encoded.param
        if ((exponent < FALLBACK) | (exponent > MAX_EXPONENT)).any():
            raise CorruptEncodingError(f"column {encoded.name!r}: a block exponent is out of range")
        width = arrow_type.bit_width
        keys, valid = decode_blocks(blocks, encoded.name)
        floats = alp_floats(blocks, keys, exponent, _POW10, width)
        if floats is None:
            raise CorruptEncodingError(f"column {encoded.name!r}: decoded bits exceed float32")
        bits = floats.view(np.int64 if width == 64 else np.int32)
        if valid is not None:
            bits[~valid] = 0
        return pa.array(
            bits.view(arrow_type.to_pandas_dtype()),
            type=arrow_type,
            mask=None if valid is None else ~valid,
        )


def default_codec(arrow_type: pa.DataType) -> Codec:
    """Lossless codec for a type: Adaptive for integer-like, AlpFloat, Dictionary."""
    if _is_integer_like(arrow_type):
        return Adaptive()
    if arrow_type in (pa.float32(), pa.float64()):
        return AlpFloat()
    if arrow_type in (pa.string(), pa.large_string()):
        return Dictionary()
    raise TypeError(f"no TerseCades codec for Arrow type {arrow_type}")
