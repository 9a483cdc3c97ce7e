"""Bad input to TerseCades: one clear error, never a wrong value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming.common.telemetry import TELEMETRY_SCHEMA, TelemetryConfig, generate_table
from streaming.tersecades import (
    BaseDelta,
    BoundedFloat,
    CorruptEncodingError,
    Dictionary,
    TerseSpec,
    TimestampWindow,
    UnfitValueError,
    aggregate,
)

SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("rtt_us", pa.int64()),
        pa.field("path", pa.string()),
        pa.field("load", pa.float64()),
        pa.field("src", pa.int32()),
    ]
)
SPEC = TerseSpec(
    SCHEMA,
    {"ts": TimestampWindow(1_000_000), "load": BoundedFloat(0.01), "src": BaseDelta(bits=True)},
    block_size=64,
)


@pytest.fixture(scope="module")
def raw() -> pa.RecordBatch:
    telemetry = generate_table(TelemetryConfig(seed=5), 500).combine_chunks().to_batches()[0]
    rtt = telemetry.column("rtt_us").to_numpy()
    paths = np.array(["same_rack", "same_pod", "cross_pod"])[rtt % 3]
    return pa.RecordBatch.from_arrays(
        [
            telemetry.column("ts"),
            pa.array(rtt, mask=rtt % 17 == 0),
            pa.array(paths.tolist()),
            pa.array(np.log1p(rtt.astype(np.float64))),
            telemetry.column("src"),
        ],
        schema=SCHEMA,
    )


@pytest.fixture(scope="module")
def encoded(raw) -> pa.RecordBatch:
    return SPEC.encode(raw)


def _replace(batch: pa.RecordBatch, name: str, array: pa.Array) -> pa.RecordBatch:
    index = batch.schema.get_field_index(name)
    return batch.set_column(index, batch.schema.field(index), array)


def _binary_with(array: pa.Array, block: int, value: bytes) -> pa.Array:
    values = array.to_pylist()
    values[block] = value
    return pa.array(values, pa.binary())


# ------------------------------------------------------------------- values that do not fit


def test_value_beyond_the_declared_type_is_refused():
    spec = TerseSpec(pa.schema([("x", pa.int32())]))
    wide = pa.RecordBatch.from_arrays([pa.array([1, 2**40])], names=["x"])
    with pytest.raises(UnfitValueError, match=r"column 'x'.*int64.*int32"):
        spec.encode(wide)


def test_fractional_value_in_an_integer_column_is_refused():
    spec = TerseSpec(pa.schema([("x", pa.int64())]))
    with pytest.raises(UnfitValueError, match="column 'x'"):
        spec.encode(pa.RecordBatch.from_arrays([pa.array([1.0, 2.5])], names=["x"]))


def test_nulls_in_a_non_nullable_column_are_refused(raw):
    ts = pa.array([None] * raw.num_rows, pa.timestamp("us", tz="UTC"))
    with pytest.raises(UnfitValueError, match="'ts' is declared non-nullable"):
        SPEC.encode(_replace(raw, "ts", ts))


def test_missing_column_is_refused(raw):
    with pytest.raises(UnfitValueError, match="lacks the declared columns"):
        SPEC.encode(raw.drop_columns(["load"]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_bounded_float_refuses_nan_and_infinity(bad):
    spec = TerseSpec(pa.schema([("f", pa.float64())]), {"f": BoundedFloat(0.1)})
    with pytest.raises(UnfitValueError, match="NaN or infinite"):
        spec.encode(pa.RecordBatch.from_arrays([pa.array([1.0, bad])], names=["f"]))


def test_bounded_float_refuses_values_too_large_for_the_bound():
    spec = TerseSpec(pa.schema([("f", pa.float64())]), {"f": BoundedFloat(1e-3)})
    with pytest.raises(UnfitValueError, match="too large for abs_error"):
        spec.encode(pa.RecordBatch.from_arrays([pa.array([1e15, 2.5])], names=["f"]))


def test_dictionary_refuses_high_cardinality():
    spec = TerseSpec(pa.schema([("s", pa.string())]), {"s": Dictionary()})
    many = pa.array([str(i) for i in range(5000)])
    with pytest.raises(UnfitValueError, match="low-cardinality"):
        spec.encode(pa.RecordBatch.from_arrays([many], names=["s"]))


def test_spec_mistakes_are_named():
    with pytest.raises(TypeError, match=r"'s'.*BaseDelta"):
        TerseSpec(pa.schema([("s", pa.string())]), {"s": BaseDelta()})
    with pytest.raises(TypeError, match="uint64"):
        TerseSpec(pa.schema([("u", pa.uint64())]))
    with pytest.raises(ValueError, match="not in the schema"):
        TerseSpec(pa.schema([("x", pa.int64())]), {"y": BaseDelta()})
    with pytest.raises(ValueError, match="block_size"):
        TerseSpec(pa.schema([("x", pa.int64())]), block_size=0)
    with pytest.raises(ValueError, match="window"):
        TimestampWindow(0)


# --------------------------------------------------------------------- corrupt encoded batches


def test_intact_batch_decodes(raw, encoded):
    assert SPEC.decode(encoded).column("rtt_us").equals(raw.column("rtt_us"))


def test_wrong_width_is_refused(encoded):
    width = encoded.column("rtt_us__width").to_numpy().copy()
    width[1] = (int(width[1]) + 8) % 64  # the default codec packs bit lanes
    corrupt = _replace(encoded, "rtt_us__width", pa.array(width, pa.int8()))
    with pytest.raises(CorruptEncodingError, match="'rtt_us' block 1: delta buffer length"):
        SPEC.parse(corrupt)
    width[1] = 65
    with pytest.raises(CorruptEncodingError, match="delta width 65 is not one of"):
        SPEC.parse(_replace(encoded, "rtt_us__width", pa.array(width, pa.int8())))


def test_truncated_delta_buffer_is_refused(encoded):
    deltas = encoded.column("rtt_us__deltas")
    shorter = _binary_with(deltas, 2, deltas[2].as_py()[:-1])
    with pytest.raises(CorruptEncodingError, match="'rtt_us' block 2: delta buffer length"):
        SPEC.parse(_replace(encoded, "rtt_us__deltas", shorter))


def test_truncated_exception_buffer_is_refused(encoded):
    exc = encoded.column("rtt_us__exc_val")
    block = int(np.flatnonzero(np.array([len(v or b"") for v in exc.to_pylist()]))[0])
    shorter = _binary_with(exc, block, exc[block].as_py()[:-3])
    with pytest.raises(CorruptEncodingError, match="exception positions and values disagree"):
        SPEC.parse(_replace(encoded, "rtt_us__exc_val", shorter))


def test_altered_base_or_delta_fails_the_crc(encoded):
    base = encoded.column("rtt_us__base").to_numpy().copy()
    base[0] += 1
    with pytest.raises(CorruptEncodingError, match="'rtt_us' block 0"):
        SPEC.parse(_replace(encoded, "rtt_us__base", pa.array(base)))
    deltas = encoded.column("rtt_us__deltas")
    flipped = bytearray(deltas[3].as_py())
    flipped[5] ^= 0x10
    with pytest.raises(CorruptEncodingError, match="'rtt_us' block 3: CRC mismatch"):
        SPEC.parse(_replace(encoded, "rtt_us__deltas", _binary_with(deltas, 3, bytes(flipped))))


def test_window_parameter_mismatch_is_refused(encoded):
    window = encoded.column("ts__window").to_numpy().copy()
    window[0] = 60_000_000
    with pytest.raises(CorruptEncodingError, match="'ts' block 0: window=60000000 differs"):
        SPEC.parse(_replace(encoded, "ts__window", pa.array(window)))


def test_batch_of_another_spec_is_refused(encoded):
    other = TerseSpec(
        SCHEMA, {"ts": TimestampWindow(1_000_000), "src": BaseDelta(bits=True)}, block_size=64
    )
    with pytest.raises(CorruptEncodingError, match=r"'load__(exp|step)'"):
        other.parse(encoded)  # 'load' was encoded lossy; this spec expects it lossless
    with pytest.raises(CorruptEncodingError, match="lacks the fields"):
        TerseSpec(TELEMETRY_SCHEMA).parse(encoded)


def test_null_in_an_encoded_field_is_refused(encoded):
    base = encoded.column("rtt_us__base").to_pylist()
    base[0] = None
    with pytest.raises(CorruptEncodingError, match="has nulls"):
        SPEC.parse(_replace(encoded, "rtt_us__base", pa.array(base, pa.int64())))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_single_corruption_is_refused_or_harmless(raw, encoded, data):
    """Mutate one field of one block (number changed, byte flipped, bytes cut): parsing either
    refuses the batch or it still decodes to exactly the original (never a wrong value)."""
    names = [n for n in encoded.schema.names if not n.endswith("__dict")]
    name = data.draw(st.sampled_from(names))
    block = data.draw(st.integers(0, encoded.num_rows - 1))
    array = encoded.column(name)
    if pa.types.is_binary(array.type):
        value = array[block].as_py()
        if value and data.draw(st.booleans()):
            position = data.draw(st.integers(0, len(value) - 1))
            mutated = bytearray(value)
            mutated[position] ^= data.draw(st.integers(1, 255))
            value = bytes(mutated)
        else:
            value = value[: max(0, len(value) - data.draw(st.integers(1, 9)))] + (
                b"" if value else b"\x01"
            )
        corrupt = _replace(encoded, name, _binary_with(array, block, value))
    else:
        values = array.to_pylist()
        values[block] = values[block] + data.draw(st.sampled_from([-1, 1, 2, 7]))
        corrupt = _replace(encoded, name, pa.array(values, array.type))
    try:
        decoded = SPEC.decode(corrupt)
    except CorruptEncodingError:
        return
    assert decoded.equals(SPEC.decode(encoded))


def test_operators_only_see_verified_batches(encoded):
    deltas = encoded.column("rtt_us__deltas")
    flipped = bytearray(deltas[0].as_py())
    flipped[0] ^= 1
    corrupt = _replace(encoded, "rtt_us__deltas", _binary_with(deltas, 0, bytes(flipped)))
    with pytest.raises(CorruptEncodingError):
        aggregate(SPEC.parse(corrupt), "rtt_us")
