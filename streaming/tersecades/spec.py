"""The encoded batch format: one Arrow row per block, flat columns, nothing out of band.

``TerseSpec(raw_schema, codecs, block_size)`` fixes how each column is encoded. An encoded
batch is a plain ``pa.RecordBatch`` with one row per block of ``block_size`` rows:

* ``__rows`` (int32) — rows in the block (all columns' blocks are aligned);
* per column ``c``: ``c__base``, ``c__stride``, ``c__min``, ``c__max``, ``c__crc`` (int64),
  ``c__width``, ``c__kind`` (int8), ``c__nulls`` (int32), ``c__deltas``, ``c__exc_pos``,
  ``c__exc_val``, ``c__null_pos``, ``c__aux`` (binary), plus the codec's extras
  (``c__window``, ``c__step``, ``c__exp``, ``c__dict``).

Why one row per block and no schema metadata: Spark converts Arrow batches to rows between
operators and drops schema metadata, so everything a reader needs must be in the rows, and a
block must never be split. A block row survives ``mapInArrow`` and any re-batching unchanged.
Decoding needs the spec (which both sides build from the same code); the per-block parameters
are checked against it, so a batch encoded with another window or error bound is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa

from streaming.tersecades.blocks import MAX_BLOCK_ROWS, IntBlocks, Payload
from streaming.tersecades.codecs import Codec, Dictionary, EncodedColumn
from streaming.tersecades.errors import CorruptEncodingError, UnfitValueError
from streaming.tersecades.lightweight import default_codec

__all__ = ["ROWS_FIELD", "EncodedBatch", "TerseSpec"]

ROWS_FIELD = "__rows"
_INT_FIELDS = (
    ("base", pa.int64()),
    ("stride", pa.int64()),
    ("width", pa.int8()),
    ("min", pa.int64()),
    ("max", pa.int64()),
    ("nulls", pa.int32()),
    ("deltas", pa.binary()),
    ("exc_pos", pa.binary()),
    ("exc_val", pa.binary()),
    ("null_pos", pa.binary()),
    ("kind", pa.int8()),
    ("aux", pa.binary()),
    ("crc", pa.int64()),
)
_ATTR = {"min": "vmin", "max": "vmax"}


@dataclass(frozen=True)
class EncodedBatch:
    """A parsed (and by default verified) encoded batch: the input of every operator."""

    spec: TerseSpec
    rows: np.ndarray  # int32 per block
    columns: dict[str, EncodedColumn]

    @property
    def num_rows(self) -> int:
        return int(self.rows.sum())

    @property
    def num_blocks(self) -> int:
        return len(self.rows)

    @property
    def encoded_bytes(self) -> int:
        return 4 * self.num_blocks + sum(c.encoded_bytes for c in self.columns.values())

    def to_arrow(self) -> pa.RecordBatch:
        arrays: list[pa.Array] = [pa.array(self.rows, pa.int32())]
        for name in self.spec.raw_schema.names:
            arrays.extend(_column_arrays(self.columns[name]))
        return pa.RecordBatch.from_arrays(arrays, schema=self.spec.encoded_schema)

    def decode(self) -> pa.RecordBatch:
        missing = [n for n in self.spec.raw_schema.names if n not in self.columns]
        if missing:
            raise ValueError(
                f"this batch was parsed without the columns {missing}; parse it whole to decode"
            )
        arrays = [
            self.columns[f.name].codec.decode(self.columns[f.name], f.type)
            for f in self.spec.raw_schema
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self.spec.raw_schema)


def _binary(payload: Payload) -> pa.Array:
    offsets = (payload.offsets - payload.offsets[0]).astype(np.int32)
    data = payload.data[int(payload.offsets[0]) : int(payload.offsets[-1])]
    return pa.Array.from_buffers(
        pa.binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _column_arrays(column: EncodedColumn) -> list[pa.Array]:
    blocks = column.blocks
    arrays = []
    for name, arrow_type in _INT_FIELDS:
        value = getattr(blocks, _ATTR.get(name, name))
        arrays.append(_binary(value) if isinstance(value, Payload) else pa.array(value, arrow_type))
    if column.codec.param_field:
        arrays.append(pa.array(column.param, column.codec.param_type))
    if column.dictionary is not None:
        arrays.append(column.dictionary)
    return arrays


def _payload(array: pa.Array, where: str) -> Payload:
    if array.type not in (pa.binary(), pa.large_binary()):
        raise CorruptEncodingError(f"{where}: expected a binary column, got {array.type}")
    _, offsets_buf, data_buf = array.buffers()
    width = 8 if array.type == pa.large_binary() else 4
    dtype = np.int64 if width == 8 else np.int32
    if offsets_buf is None or offsets_buf.size < (array.offset + len(array) + 1) * width:
        raise CorruptEncodingError(f"{where}: offsets buffer is truncated")
    offsets = np.frombuffer(offsets_buf, dtype, count=len(array) + 1, offset=array.offset * width)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    return Payload(offsets.astype(np.int64), data)


def _numeric(array: pa.Array, dtype: type, where: str) -> np.ndarray:
    try:
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=dtype)
    except (pa.ArrowInvalid, TypeError, ValueError):
        raise CorruptEncodingError(f"{where}: not a {np.dtype(dtype).name} column") from None


@dataclass(frozen=True)
class TerseSpec:
    """How to encode a raw schema: a codec per column (lossless defaults) and the block size."""

    raw_schema: pa.Schema
    codecs: Mapping[str, Codec] = field(default_factory=dict)
    # the largest block positions allow: a block's ~70 bytes of header would cap a 99.5 %-zero
    # int8 column at ~60x per 4,096 rows, where zstd reaches ~250x; group-by on windows
    # prefers blocks that fit in one window (pass a smaller block_size)
    block_size: int = 65_536

    def __post_init__(self) -> None:
        if not 1 <= self.block_size <= MAX_BLOCK_ROWS:
            raise ValueError(f"block_size={self.block_size} must be within [1, {MAX_BLOCK_ROWS}]")
        unknown = set(self.codecs) - set(self.raw_schema.names)
        if unknown:
            raise ValueError(f"codecs given for columns not in the schema: {sorted(unknown)}")
        resolved = {}
        for f in self.raw_schema:
            if "__" in f.name:
                raise ValueError(f"column name {f.name!r} must not contain '__' (reserved)")
            codec = self.codecs.get(f.name) or default_codec(f.type)
            codec.check_type(f.name, f.type)
            resolved[f.name] = codec
        object.__setattr__(self, "codecs", resolved)

    @cached_property
    def encoded_schema(self) -> pa.Schema:
        fields = [pa.field(ROWS_FIELD, pa.int32())]
        for name in self.raw_schema.names:
            fields.extend(pa.field(f"{name}__{s}", t) for s, t in _INT_FIELDS)
            fields.extend(self.codecs[name].extra_fields(name))
        return pa.schema(fields)

    # ------------------------------------------------------------------------------ encode

    def encode_batch(self, batch: pa.RecordBatch | pa.Table) -> EncodedBatch:
        """Encode a raw batch; values that do not fit the declared type are refused."""
        batch = self._conform(batch)
        columns = {
            name: self.codecs[name].encode(name, batch.column(name), self.block_size)
            for name in self.raw_schema.names
        }
        rows = _block_rows(batch.num_rows, self.block_size)
        return EncodedBatch(self, rows, columns)

    def encode(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
        return self.encode_batch(batch).to_arrow()

    def _conform(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
        if isinstance(batch, pa.Table):
            table = batch.combine_chunks()
            batches = table.to_batches()
            batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
        missing = [n for n in self.raw_schema.names if n not in batch.schema.names]
        if missing:
            raise UnfitValueError(f"batch lacks the declared columns {missing}")
        arrays = []
        for f in self.raw_schema:
            array = batch.column(f.name)
            if array.type != f.type:
                try:
                    array = array.cast(f.type, safe=True)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    first_line = str(exc).splitlines()[0]
                    raise UnfitValueError(
                        f"column {f.name!r}: values of type {array.type} do not fit the declared type {f.type} ({first_line})"
                    ) from None
            if not f.nullable and array.null_count:
                raise UnfitValueError(
                    f"column {f.name!r} is declared non-nullable but has {array.null_count} nulls"
                )
            arrays.append(array)
        return pa.RecordBatch.from_arrays(arrays, schema=self.raw_schema)

    # ------------------------------------------------------------------------------ decode

    def parse(
        self,
        batch: pa.RecordBatch | pa.Table,
        *,
        verify: bool = True,
        columns: Sequence[str] | None = None,
    ) -> EncodedBatch:
        """Read an encoded Arrow batch; with ``verify`` every block's CRC is checked too.

        Structural checks (widths, buffer lengths, positions) always run: they are O(blocks).
        ``columns`` projects: only those columns are read and verified (a query touching 3 of
        5 columns pays for 3); such a batch can be queried but not decoded whole.
        """
        wanted = list(self.raw_schema.names) if columns is None else list(columns)
        unknown = [c for c in wanted if c not in self.codecs]
        if unknown:
            raise KeyError(f"columns {unknown} are not in the spec's schema")
        if isinstance(batch, pa.Table):
            table = batch.combine_chunks()
            batches = table.to_batches()
            batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
        expected = self.encoded_schema
        present = batch.schema.names
        if present != expected.names:  # the usual case (same order) needs no set work
            names = set(present)
            missing = [n for n in expected.names if n not in names]
            if missing:
                raise CorruptEncodingError(
                    f"encoded batch lacks the fields {missing[:5]} (wrong spec or not an encoded batch)"
                )
            known = set(expected.names)
            unexpected = [n for n in present if n not in known]
            if unexpected:
                raise CorruptEncodingError(
                    f"encoded batch has fields {unexpected[:5]} this spec does not define (encoded with other codecs?)"
                )
        index = {n: i for i, n in enumerate(present)}
        for name in wanted:
            for field_name in self._column_fields[name]:
                if batch.column(index[field_name]).null_count:
                    raise CorruptEncodingError(f"encoded field {field_name!r} has nulls")
        rows = _numeric(batch.column(index[ROWS_FIELD]), np.int32, ROWS_FIELD)
        parsed = {name: self._parse_column(batch, index, name, rows, verify) for name in wanted}
        return EncodedBatch(self, rows, parsed)

    @cached_property
    def _column_fields(self) -> dict[str, tuple[str, ...]]:
        """Each column's fields in the encoded schema."""
        return {
            name: tuple(f.name for f in self.encoded_schema if f.name.startswith(f"{name}__"))
            for name in self.raw_schema.names
        }

    def _parse_column(
        self, batch: pa.RecordBatch, index: dict, name: str, rows: np.ndarray, verify: bool
    ) -> EncodedColumn:
        codec = self.codecs[name]
        values = {}
        for suffix, arrow_type in _INT_FIELDS:
            where = f"field {name}__{suffix}"
            array = batch.column(index[f"{name}__{suffix}"])
            if arrow_type == pa.binary():
                values[_ATTR.get(suffix, suffix)] = _payload(array, where)
            else:
                dtype = {8: np.int64, 1: np.int8, 4: np.int32}[arrow_type.bit_width // 8]
                values[_ATTR.get(suffix, suffix)] = _numeric(array, dtype, where)
        blocks = IntBlocks(rows=rows, **values, bits=codec.bit_packed)
        param = dictionary = None
        if codec.param_field:
            param_name = f"{name}__{codec.param_field}"
            dtype = codec.param_type.to_pandas_dtype()
            param = _numeric(batch.column(index[param_name]), dtype, f"field {param_name}")
            wrong = param != codec.param_value()
            if codec.param_value() is not None and wrong.any():
                raise CorruptEncodingError(
                    f"column {name!r} block {int(np.flatnonzero(wrong)[0])}: {codec.param_field}={param[wrong][0]} differs from the spec's {codec.param_value()}"
                )
        if isinstance(codec, Dictionary):
            dictionary = batch.column(index[f"{name}__dict"])
            if not pa.types.is_list(dictionary.type) or dictionary.type.value_type != pa.string():
                raise CorruptEncodingError(
                    f"field {name}__dict must be list<string>, got {dictionary.type}"
                )
            dictionary = dictionary.cast(pa.list_(pa.string()))  # Spark names the item "element"
            if dictionary.values.null_count:
                raise CorruptEncodingError(f"field {name}__dict holds null strings")
        column = EncodedColumn(name, codec, blocks, param=param, dictionary=dictionary)
        blocks.validate(name, check_crc=verify, extra=column.extra_payloads())
        return column

    def decode(self, batch: pa.RecordBatch | pa.Table, *, verify: bool = True) -> pa.RecordBatch:
        return self.parse(batch, verify=verify).decode()


def _block_rows(num_rows: int, block_size: int) -> np.ndarray:
    full, rest = divmod(num_rows, block_size)
    return np.array([block_size] * full + ([rest] if rest else []), dtype=np.int32)
