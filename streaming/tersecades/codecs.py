"""Column codecs: each maps one Arrow column to int64 keys and encodes them as Base-Delta blocks.

Reducing every codec to the integer core (``blocks.py``) is what lets one set of operators run
on all of them: a filter compares narrow deltas, an aggregate sums them, a group-by reads them
as codes, whichever codec produced the integers.

=================  =========  =============================================================
codec              lossless   integers encoded / guarantee
=================  =========  =============================================================
BaseDelta          yes        the values (ints, timestamps, dates, durations)
LosslessFloat      yes        IEEE bits mapped to order-preserving ints (NaN payloads kept)
TimestampWindow    no         ``floor((ts - origin) / window)``: decoded = window start, so
                              ``decoded <= ts < decoded + window`` — window membership exact
BoundedFloat       no         ``rint(x / step)``: ``|decoded - x| <= abs_error``, verified on
                              encode (refused, never silently exceeded)
Dictionary         yes        codes into a per-block dictionary (Arrow's dictionary_encode)
=================  =========  =============================================================

Per-block codec parameters (window, step, dictionary) travel in-band as extra columns, because
Spark drops Arrow schema metadata between operators; they are covered by the block CRC.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streaming.tersecades.blocks import IntBlocks, Payload, encode_int64
from streaming.tersecades.errors import CorruptEncodingError, UnfitValueError
from streaming.tersecades.kernels.decode import decode_blocks

__all__ = [
    "BaseDelta",
    "BoundedFloat",
    "Codec",
    "Dictionary",
    "EncodedColumn",
    "LosslessFloat",
    "TimestampWindow",
]

MAX_DICTIONARY = 4_096  # "low cardinality": per-block dictionaries stay small


@dataclass(frozen=True)
class EncodedColumn:
    """One column of an encoded batch: the integer blocks plus the codec's per-block extras."""

    name: str
    codec: Codec
    blocks: IntBlocks
    param: np.ndarray | None = None  # per-block window_us (int64) or step (float64)
    dictionary: pa.ListArray | None = None  # per-block dictionaries

    def extra_payloads(self) -> tuple[Payload, ...]:
        """The extras as byte payloads, so the block CRC covers them."""
        if self.param is not None:
            step = self.param.dtype.itemsize
            offsets = np.arange(len(self.param) + 1, dtype=np.int64) * step
            return (Payload(offsets, np.ascontiguousarray(self.param).view(np.uint8)),)
        if self.dictionary is not None:
            return _dictionary_payloads(self.dictionary)
        return ()

    def with_crc(self) -> EncodedColumn:
        crc = self.blocks.compute_crc(self.extra_payloads())
        return dataclasses.replace(self, blocks=dataclasses.replace(self.blocks, crc=crc))

    @property
    def encoded_bytes(self) -> int:
        extra = sum(int(p.offsets[-1] - p.offsets[0]) for p in self.extra_payloads())
        if self.dictionary is not None:
            extra += 4 * len(self.dictionary)  # list offsets
        return self.blocks.encoded_bytes + extra


def _dictionary_payloads(lists: pa.ListArray) -> tuple[Payload, Payload]:
    values = lists.values
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    list_offsets = lists.offsets.to_numpy().astype(np.int64)
    value_offsets = np.frombuffer(
        values.buffers()[1], np.int32, count=len(values) + 1, offset=values.offset * 4
    ).astype(np.int64)
    data_buffer = values.buffers()[2]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer else np.empty(0, np.uint8)
    chars = Payload(value_offsets[list_offsets], data)
    lengths = np.diff(value_offsets).astype(np.int32)
    sizes = Payload(list_offsets * 4, lengths.view(np.uint8))
    return chars, sizes


class Codec(ABC):
    """How one column becomes int64 keys and back."""

    lossless: bool = True
    bit_packed: bool = False  # widths in bits (packed lanes) instead of bytes
    param_field: str | None = None  # name of the per-block parameter column, if any
    param_type: pa.DataType | None = None

    @abstractmethod
    def check_type(self, column: str, arrow_type: pa.DataType) -> None:
        """Raise TypeError naming the column if this codec cannot encode ``arrow_type``."""

    @abstractmethod
    def encode(self, column: str, array: pa.Array, block_size: int) -> EncodedColumn: ...

    @abstractmethod
    def decode(self, encoded: EncodedColumn, arrow_type: pa.DataType) -> pa.Array: ...

    def param_value(self) -> float | int | None:
        return None

    def extra_fields(self, column: str) -> list[pa.Field]:
        if self.param_field:
            return [pa.field(f"{column}__{self.param_field}", self.param_type)]
        return []


# ---------------------------------------------------------------- int64 views of Arrow arrays


def _is_integer_like(t: pa.DataType) -> bool:
    return (
        (pa.types.is_integer(t) and t != pa.uint64())
        or pa.types.is_timestamp(t)
        or pa.types.is_date(t)
        or pa.types.is_duration(t)
        or pa.types.is_time(t)
    )


def _validity(array: pa.Array) -> np.ndarray | None:
    if array.null_count == 0:
        return None
    return array.is_valid().to_numpy(zero_copy_only=False)


def _as_int64(array: pa.Array) -> np.ndarray:
    """Storage integers of an integer-like array (nulls as 0)."""
    t = array.type
    if not pa.types.is_integer(t):
        storage = {8: pa.int64(), 4: pa.int32()}[t.bit_width // 8]
        array = array.view(storage)
    if array.null_count:
        array = pc.fill_null(array, 0)
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


def _storage_type(t: pa.DataType) -> pa.DataType:
    return t if pa.types.is_integer(t) else {8: pa.int64(), 4: pa.int32()}[t.bit_width // 8]


def _from_int64(
    column: str, values: np.ndarray, valid: np.ndarray | None, t: pa.DataType
) -> pa.Array:
    """Arrow array of type ``t`` from integers (int64, or already ``t``'s storage dtype)."""
    mask = None if valid is None else ~valid
    storage = _storage_type(t)
    if values.dtype == storage.to_pandas_dtype():
        array = pa.array(values, type=storage, mask=mask)
    else:
        array = pa.array(values, type=pa.int64(), mask=mask)
        if storage != pa.int64():
            try:
                array = array.cast(storage, safe=True)
            except (pa.ArrowInvalid, OverflowError):
                raise CorruptEncodingError(
                    f"column {column!r}: decoded values do not fit the declared type {t}"
                ) from None
    return array if storage == t else array.view(t)


# ---------------------------------------------------------------------------------- codecs


@dataclass(frozen=True)
class BaseDelta(Codec):
    """Lossless Base-Delta for integers and temporal types (optionally with a stride).

    ``bits=True`` packs deltas at any bit width (denser; operators unpack to byte lanes).
    """

    stride: bool = True
    bits: bool = False

    @property
    def bit_packed(self) -> bool:  # type: ignore[override]
        return self.bits

    def check_type(self, column: str, arrow_type: pa.DataType) -> None:
        if not _is_integer_like(arrow_type):
            raise TypeError(
                f"column {column!r}: BaseDelta needs an integer or temporal type, got {arrow_type}"
            )

    def encode(self, column: str, array: pa.Array, block_size: int) -> EncodedColumn:
        blocks = encode_int64(
            _as_int64(array), _validity(array), block_size, allow_stride=self.stride, bits=self.bits
        )
        return EncodedColumn(column, self, blocks).with_crc()

    def decode(self, encoded: EncodedColumn, arrow_type: pa.DataType) -> pa.Array:
        dtype = _storage_type(arrow_type).to_pandas_dtype()
        values, valid = decode_blocks(encoded.blocks, encoded.name, dtype)
        return _from_int64(encoded.name, values, valid, arrow_type)


@dataclass(frozen=True)
class LosslessFloat(Codec):
    """Lossless floats: IEEE bits flipped so integer order equals float order, then Base-Delta.

    The order-preserving map keeps zone maps meaningful (block min/max are the float min/max
    for non-NaN data) and is its own inverse, so every bit pattern round-trips.
    """

    def check_type(self, column: str, arrow_type: pa.DataType) -> None:
        if arrow_type not in (pa.float32(), pa.float64()):
            raise TypeError(
                f"column {column!r}: LosslessFloat needs float32/float64, got {arrow_type}"
            )

    @staticmethod
    def _flip(bits: np.ndarray, width: int) -> np.ndarray:
        return bits ^ ((bits >> (width - 1)) & np.int64((1 << (width - 1)) - 1))

    def encode(self, column: str, array: pa.Array, block_size: int) -> EncodedColumn:
        width = array.type.bit_width
        valid = _validity(array)
        if array.null_count:
            array = pc.fill_null(array, 0.0)
        raw = np.asarray(array.to_numpy(zero_copy_only=False))
        bits = raw.view(np.int64 if width == 64 else np.int32).astype(np.int64)
        keys = self._flip(bits, width)
        blocks = encode_int64(keys, valid, block_size, allow_stride=False)
        return EncodedColumn(column, self, blocks).with_crc()

    def decode(self, encoded: EncodedColumn, arrow_type: pa.DataType) -> pa.Array:
        keys, valid = decode_blocks(encoded.blocks, encoded.name)
        width = arrow_type.bit_width
        if width == 32 and ((keys < -(2**31)) | (keys >= 2**31)).any():
            raise CorruptEncodingError(f"column {encoded.name!r}: decoded bits exceed float32")
        bits = self._flip(keys, width)
        floats = bits.view(np.float64) if width == 64 else bits.astype(np.int32).view(np.float32)
        return pa.array(floats, type=arrow_type, mask=None if valid is None else ~valid)


@dataclass(frozen=True)
class TimestampWindow(Codec):
    """Lossy timestamps that keep only tumbling-window membership (TerseCades' timestamp mode).

    For sliding windows of size W and slide S, use ``window = S`` (S divides W): membership of
    every sliding window is still exact.
    """

    window: int  # in the timestamp's unit (microseconds for the telemetry)
    origin: int = 0
    lossless = False
    param_field = "window"
    param_type = pa.int64()

    def __post_init__(self) -> None:
        if int(self.window) <= 0:
            raise ValueError(f"TimestampWindow window={self.window} must be positive")

    def param_value(self) -> int:
        return int(self.window)

    def check_type(self, column: str, arrow_type: pa.DataType) -> None:
        if not _is_integer_like(arrow_type):
            raise TypeError(
                f"column {column!r}: TimestampWindow needs a timestamp or integer type, got {arrow_type}"
            )

    def encode(self, column: str, array: pa.Array, block_size: int) -> EncodedColumn:
        values, valid = _as_int64(array), _validity(array)
        if len(values):
            live = values if valid is None else values[valid]
            if len(live):
                low, high = int(live.min()), int(live.max())
                lowest = ((low - self.origin) // self.window) * self.window + self.origin
                if lowest < -(2**63) or high - self.origin >= 2**63 or low - self.origin < -(2**63):
                    raise UnfitValueError(
                        f"column {column!r}: timestamps too close to the int64 limits for window {self.window} and origin {self.origin}"
                    )
        keys = np.floor_divide(values - np.int64(self.origin), np.int64(self.window))
        blocks = encode_int64(keys, valid, block_size, allow_stride=False)
        param = np.full(blocks.num_blocks, self.window, dtype=np.int64)
        return EncodedColumn(column, self, blocks, param=param).with_crc()

    def decode(self, encoded: EncodedColumn, arrow_type: pa.DataType) -> pa.Array:
        keys, valid = decode_blocks(encoded.blocks, encoded.name)
        return _from_int64(encoded.name, keys * self.window + self.origin, valid, arrow_type)

    def labels(self, keys: np.ndarray) -> np.ndarray:
        """Window start of each window key."""
        return keys * self.window + self.origin


@dataclass(frozen=True)
class BoundedFloat(Codec):
    """Lossy floats with a user-given absolute error bound: ``|decoded - x| <= abs_error``.

    Values are quantised to multiples of ``step`` (just under ``2 * abs_error``); the bound is
    verified on the decoded values before a batch is accepted, so float rounding can never
    silently exceed it. NaN and infinities have no bounded representation and are refused.
    """

    abs_error: float
    lossless = False
    param_field = "step"
    param_type = pa.float64()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.abs_error) and self.abs_error > 0):
            raise ValueError(
                f"BoundedFloat abs_error={self.abs_error} must be a positive finite number"
            )

    @property
    def step(self) -> float:
        return 2.0 * self.abs_error * (1.0 - 2.0**-12)

    def param_value(self) -> float:
        return self.step

    def check_type(self, column: str, arrow_type: pa.DataType) -> None:
        if arrow_type not in (pa.float32(), pa.float64()):
            raise TypeError(
                f"column {column!r}: BoundedFloat needs float32/float64, got {arrow_type}"
            )

    def encode(self, column: str, array: pa.Array, block_size: int) -> EncodedColumn:
        valid = _validity(array)
        filled = pc.fill_null(array, 0.0) if array.null_count else array
        x = np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.float64)
        if not np.isfinite(x).all():
            raise UnfitValueError(
                f"column {column!r}: NaN or infinite values cannot be encoded with a bounded error; use LosslessFloat"
            )
        q = np.rint(x / self.step)
        if len(q) and np.abs(q).max() >= 2.0**52:
            raise UnfitValueError(
                f"column {column!r}: values up to {np.abs(x).max():g} are too large for abs_error={self.abs_error:g}"
            )
        keys = q.astype(np.int64)
        decoded = self._values(keys, array.type)
        error = np.abs(decoded.astype(np.float64) - x)
        if valid is not None:
            error = error[valid]
        if len(error) and error.max() > self.abs_error:
            raise UnfitValueError(
                f"column {column!r}: abs_error={self.abs_error:g} is below the float resolution of values near {x[np.argmax(np.abs(x))]:g}"
            )
        blocks = encode_int64(keys, valid, block_size, allow_stride=False)
        param = np.full(blocks.num_blocks, self.step, dtype=np.float64)
        return EncodedColumn(column, self, blocks, param=param).with_crc()

    def _values(self, keys: np.ndarray, arrow_type: pa.DataType) -> np.ndarray:
        values = keys.astype(np.float64) * self.step
        return values.astype(np.float32) if arrow_type == pa.float32() else values

    def decode(self, encoded: EncodedColumn, arrow_type: pa.DataType) -> pa.Array:
        keys, valid = decode_blocks(encoded.blocks, encoded.name)
        values = self._values(keys, arrow_type)
        return pa.array(values, type=arrow_type, mask=None if valid is None else ~valid)


@dataclass(frozen=True)
class Dictionary(Codec):
    """Low-cardinality strings: Arrow's ``dictionary_encode``, one small dictionary per block
    (only the values the block uses), codes stored as Base-Delta (mostly 1-byte or constant)."""

    def check_type(self, column: str, arrow_type: pa.DataType) -> None:
        if arrow_type not in (pa.string(), pa.large_string()):
            raise TypeError(f"column {column!r}: Dictionary needs a string type, got {arrow_type}")

    def extra_fields(self, column: str) -> list[pa.Field]:
        return [pa.field(f"{column}__dict", pa.list_(pa.string()))]

    def encode(self, column: str, array: pa.Array, block_size: int) -> EncodedColumn:
        encoded = pc.dictionary_encode(array.cast(pa.string()))
        dictionary, indices = encoded.dictionary, encoded.indices
        if len(dictionary) > MAX_DICTIONARY:
            raise UnfitValueError(
                f"column {column!r}: {len(dictionary)} distinct values exceed the Dictionary codec's limit of {MAX_DICTIONARY} (it is for low-cardinality strings)"
            )
        valid = _validity(indices)
        codes = _as_int64(indices)
        n = len(codes)
        num_blocks = -(-n // block_size)
        block_of_row = np.arange(n, dtype=np.int64) // block_size
        present = np.zeros((num_blocks, max(len(dictionary), 1)), dtype=bool)
        live = slice(None) if valid is None else valid
        present[block_of_row[live], codes[live]] = True
        local_of = np.cumsum(present, axis=1) - 1
        local = local_of[block_of_row, codes]
        if valid is not None:
            local[~valid] = 0
        used_block, used_code = np.nonzero(present)
        offsets = np.zeros(num_blocks + 1, dtype=np.int32)
        np.cumsum(np.bincount(used_block, minlength=num_blocks), out=offsets[1:])
        values = (
            dictionary.take(pa.array(used_code, pa.int64()))
            if len(dictionary)
            else pa.array([], pa.string())
        )
        lists = pa.ListArray.from_arrays(pa.array(offsets), values)
        blocks = encode_int64(local, valid, block_size, allow_stride=False)
        return EncodedColumn(column, self, blocks, dictionary=lists).with_crc()

    def decode(self, encoded: EncodedColumn, arrow_type: pa.DataType) -> pa.Array:
        codes, valid = decode_blocks(encoded.blocks, encoded.name)
        lists = encoded.dictionary
        list_offsets = lists.offsets.to_numpy().astype(np.int64)
        sizes = np.diff(list_offsets)
        block_of_row = np.repeat(np.arange(len(sizes)), encoded.blocks.rows)
        live = np.ones(len(codes), bool) if valid is None else valid
        if ((codes < 0) | (codes >= sizes[block_of_row]))[live].any():
            raise CorruptEncodingError(
                f"column {encoded.name!r}: a dictionary code is outside its block's dictionary"
            )
        index = list_offsets[block_of_row] + np.where(live, codes, 0)
        index = pa.array(index, pa.int64(), mask=None if valid is None else ~valid)
        values = (
            lists.values.take(index) if len(lists.values) else pa.nulls(len(codes), pa.string())
        )
        return values.cast(arrow_type)

    @staticmethod
    def global_codes(encoded: EncodedColumn) -> tuple[np.ndarray, pa.Array]:
        """Per flat dictionary entry, its code in one dictionary shared by all blocks."""
        shared = pc.dictionary_encode(encoded.dictionary.values)
        return np.asarray(
            shared.indices.to_numpy(zero_copy_only=False), np.int64
        ), shared.dictionary
