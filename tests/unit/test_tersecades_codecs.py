"""TerseCades codecs without a JVM: lossless round trips, lossy bounds, width selection."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streaming.common.telemetry import TELEMETRY_SCHEMA, TelemetryConfig, generate_table
from streaming.tersecades import (
    BaseDelta,
    BoundedFloat,
    Dictionary,
    LosslessFloat,
    TerseSpec,
    TimestampWindow,
)
from streaming.tersecades.blocks import WIDTHS

I64 = np.iinfo(np.int64)
EXTREMES = [I64.min, I64.min + 1, -1, 0, 1, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, I64.max]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

int64_arrays = st.one_of(
    hnp.arrays(np.int64, st.integers(0, 300), elements=st.sampled_from(EXTREMES)),
    hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(I64.min, I64.max)),
    # narrow data with rare wide outliers: exercises exceptions and every width
    st.builds(
        lambda base, deltas, spikes: base + deltas + spikes,
        st.integers(-(2**40), 2**40),
        hnp.arrays(np.int64, 200, elements=st.integers(0, 70_000)),
        hnp.arrays(np.int64, 200, elements=st.sampled_from([0] * 30 + [2**20, 2**33, 2**45])),
    ),
    # sorted (timestamp-like) data: exercises the stride
    st.builds(
        lambda start, steps: start + np.cumsum(steps),
        st.integers(-(2**50), 2**50),
        hnp.arrays(np.int64, st.integers(1, 300), elements=st.integers(0, 3)),
    ),
)


def _batch(name: str, array: pa.Array) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([array], names=[name])


def _roundtrip(batch: pa.RecordBatch, codecs=None, block_size: int = 16) -> pa.RecordBatch:
    spec = TerseSpec(batch.schema, codecs or {}, block_size=block_size)
    return spec.decode(spec.encode(batch))


@SETTINGS
@given(int64_arrays, st.data(), st.integers(1, 70), st.booleans(), st.booleans())
def test_base_delta_round_trips_int64_exactly(values, data, block_size, bits, stride):
    nulls = data.draw(hnp.arrays(bool, len(values), elements=st.booleans()))
    use_nulls = data.draw(st.booleans())
    array = pa.array(values, pa.int64(), mask=nulls if use_nulls else None)
    batch = _batch("x", array)
    codec = BaseDelta(stride=stride, bits=bits)
    assert _roundtrip(batch, {"x": codec}, block_size=block_size).equals(batch)


@pytest.mark.parametrize("bits", range(1, 65))
def test_bit_lanes_round_trip_every_width(bits):
    """Each block's values span exactly ``bits`` bits, so that lane width is used."""
    rng = np.random.default_rng(bits)
    values = rng.integers(0, 2**bits, size=200, dtype=np.uint64, endpoint=False)
    values[0], values[1] = 0, 2**bits - 1
    values = (values + np.uint64(2**63)).view(np.int64)  # centred on int64 min
    batch = _batch("x", pa.array(values))
    spec = TerseSpec(batch.schema, {"x": BaseDelta(stride=False, bits=True)}, block_size=200)
    encoded = spec.encode_batch(batch)
    assert encoded.columns["x"].blocks.width.tolist()[0] <= bits
    assert spec.decode(encoded.to_arrow()).equals(batch)


@SETTINGS
@given(
    hnp.arrays(
        np.float64,
        st.integers(0, 200),
        elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    ),
    st.integers(1, 50),
)
def test_lossless_float_round_trips_every_bit(values, block_size):
    values = np.concatenate([values, [np.nan, -0.0, 0.0, np.inf, -np.inf, 5e-324]])
    decoded = _roundtrip(_batch("f", pa.array(values)), block_size=block_size)
    out = decoded.column("f").to_numpy()
    assert np.array_equal(out.view(np.int64), values.view(np.int64))


@SETTINGS
@given(hnp.arrays(np.float32, st.integers(0, 100), elements=st.floats(width=32)))
def test_lossless_float32_round_trips(values):
    decoded = _roundtrip(_batch("f", pa.array(values, pa.float32())))
    assert np.array_equal(decoded.column("f").to_numpy().view(np.int32), values.view(np.int32))


@pytest.mark.parametrize(
    "arrow_type",
    [pa.int8(), pa.int16(), pa.int32(), pa.uint8(), pa.uint32(), pa.timestamp("us", tz="UTC")],
)
def test_base_delta_round_trips_narrow_and_temporal_types(arrow_type):
    rng = np.random.default_rng(7)
    info = np.iinfo(arrow_type.to_pandas_dtype()) if pa.types.is_integer(arrow_type) else I64
    values = rng.integers(max(info.min, -(2**40)), min(info.max, 2**40), size=500, endpoint=True)
    values[::50] = info.max
    values[1::50] = info.min
    array = (
        pa.array(values).cast(arrow_type)
        if pa.types.is_integer(arrow_type)
        else (pa.array(values, pa.int64()).view(arrow_type))
    )
    batch = _batch("x", array)
    assert _roundtrip(batch).equals(batch)


def test_empty_batch_round_trips():
    schema = pa.schema([("x", pa.int64()), ("s", pa.string()), ("f", pa.float64())])
    empty = pa.RecordBatch.from_pylist([], schema=schema)
    spec = TerseSpec(schema)
    encoded = spec.encode(empty)
    assert encoded.num_rows == 0
    assert spec.decode(encoded).equals(empty)


@pytest.mark.parametrize(
    ("span", "width"),
    [(0, 0), (255, 1), (256, 2), (65_535, 2), (65_536, 4), (2**32 - 1, 4), (2**32, 8)],
)
def test_delta_width_is_the_narrowest_that_fits(span, width):
    """One value at ``base``, the other 63 at ``base + span`` or just below: a narrower lane
    would make 63 exceptions (630 bytes, more than any lane), so the width is the narrowest
    lane holding ``span`` — and one more than a lane's maximum overflows into the next."""
    i = np.arange(64)
    values = np.where(i == 0, 0, np.maximum(span - i % 2, 0)).astype(np.int64) + 10**12
    rng = np.random.default_rng(span % 1000)
    values = rng.permutation(values)  # no stride
    spec = TerseSpec(pa.schema([("x", pa.int64())]), {"x": BaseDelta(stride=False)}, block_size=64)
    encoded = spec.encode_batch(_batch("x", pa.array(values)))
    assert encoded.columns["x"].blocks.width.tolist() == [width]
    assert spec.decode(encoded.to_arrow()).column("x").to_numpy().tolist() == values.tolist()


def test_constant_block_stores_no_deltas():
    batch = _batch("x", pa.array(np.full(1000, -42, np.int64)))
    encoded = TerseSpec(batch.schema, block_size=100).encode_batch(batch)
    blocks = encoded.columns["x"].blocks
    assert set(blocks.width.tolist()) == {0}
    assert len(blocks.deltas.data) == 0


def test_outliers_become_exceptions_not_wider_blocks():
    values = np.full(4096, 300, np.int64) + np.arange(4096) % 7
    values[[5, 900, 3000]] = [3_000_000, 2**40, -(2**50)]
    batch = _batch("x", pa.array(values))
    spec = TerseSpec(batch.schema, {"x": BaseDelta(stride=False)}, block_size=4096)
    blocks = spec.encode_batch(batch).columns["x"].blocks
    # the low outlier is the base, so the bulk sits ~2^50 above it: one 8-byte block is
    # cheapest; without the low outlier the bulk fits one byte plus two exceptions
    assert blocks.width.tolist() == [8]
    values[3000] = 300
    blocks = spec.encode_batch(_batch("x", pa.array(values))).columns["x"].blocks
    assert blocks.width.tolist() == [1]
    assert blocks.exc_pos.lengths.tolist() == [4]  # two uint16 positions
    assert (
        spec.decode(spec.encode(_batch("x", pa.array(values)))).column("x").to_numpy().tolist()
        == values.tolist()
    )


def test_widths_are_the_documented_set():
    assert WIDTHS == (0, 1, 2, 4, 8)


@SETTINGS
@given(
    hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(-(2**50), 2**50)),
    st.integers(1, 10**9),
    st.integers(-(10**6), 10**6),
)
def test_timestamp_window_keeps_exactly_the_window_membership(values, window, origin):
    ts = pa.array(values, pa.int64()).view(pa.timestamp("us"))
    decoded = _roundtrip(_batch("ts", ts), {"ts": TimestampWindow(window, origin)})
    start = decoded.column("ts").view(pa.int64()).to_numpy()
    assert (start <= values).all()
    assert (values < start + window).all()
    assert ((start - origin) % window == 0).all()
    assert np.array_equal((values - origin) // window, (start - origin) // window)


@SETTINGS
@given(
    hnp.arrays(np.float64, st.integers(0, 300), elements=st.floats(-1e6, 1e6)),
    st.sampled_from([1e-3, 0.01, 0.5, 3.0, 1000.0]),
    st.booleans(),
)
def test_bounded_float_stays_within_the_absolute_error(values, abs_error, as_float32):
    arrow_type = pa.float32() if as_float32 else pa.float64()
    if as_float32:
        abs_error = max(abs_error, 0.5)  # float32 resolution near 1e6 is 0.0625
    array = pa.array(values, pa.float64()).cast(arrow_type)
    original = array.to_numpy().astype(np.float64)
    decoded = _roundtrip(_batch("f", array), {"f": BoundedFloat(abs_error)})
    error = np.abs(decoded.column("f").to_numpy().astype(np.float64) - original)
    assert (error <= abs_error).all()


def test_bounded_float_keeps_nulls():
    array = pa.array([1.25, None, -3.5, None], pa.float64())
    decoded = _roundtrip(_batch("f", array), {"f": BoundedFloat(0.1)})
    assert decoded.column("f").is_null().to_pylist() == [False, True, False, True]


@SETTINGS
@given(
    st.lists(
        st.one_of(st.none(), st.sampled_from(["", "a", "bb", "ßü", "same_rack", "x" * 40])),
        max_size=300,
    ),
    st.integers(1, 40),
)
def test_dictionary_round_trips_strings_with_nulls(values, block_size):
    batch = _batch("s", pa.array(values, pa.string()))
    assert _roundtrip(batch, {"s": Dictionary()}, block_size=block_size).equals(batch)


def test_telemetry_round_trips_and_shrinks():
    table = generate_table(TelemetryConfig(seed=3), 50_000)
    batch = table.combine_chunks().to_batches()[0]
    spec = TerseSpec(TELEMETRY_SCHEMA, block_size=4096)
    encoded = spec.encode_batch(batch)
    assert spec.decode(encoded.to_arrow()).equals(batch)
    for name in TELEMETRY_SCHEMA.names:
        assert encoded.columns[name].encoded_bytes < batch.column(name).nbytes, name


def test_lossless_flags_match_the_guarantees():
    assert BaseDelta().lossless and LosslessFloat().lossless and Dictionary().lossless
    assert not TimestampWindow(10).lossless and not BoundedFloat(0.1).lossless


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=0, max_size=6), min_size=1, max_size=6
    )
)
def test_exceptions_of_mixed_byte_sizes_round_trip(per_block):
    """Blocks whose exceptions need 1, 2, 4 or 8 bytes share one payload and read back exactly."""
    from streaming.tersecades.blocks import Payload, _unpack_exceptions, pack_exceptions

    blocks = len(per_block)
    block = np.repeat(np.arange(blocks), [len(b) for b in per_block])
    values = np.array([v for b in per_block for v in b], dtype=np.int64)
    anchor = np.array([min(b, default=0) for b in per_block], dtype=np.int64)
    payload = pack_exceptions(block, values, anchor, blocks)
    counts = np.bincount(block, minlength=blocks)
    sizes = payload.lengths // np.maximum(counts, 1)
    assert set(sizes[counts > 0].tolist()) <= {1, 2, 4, 8}
    shifted = Payload(payload.offsets + 3, np.concatenate([np.zeros(3, np.uint8), payload.data]))
    np.testing.assert_array_equal(_unpack_exceptions(shifted, counts, anchor), values)


@given(
    hnp.arrays(np.int8, st.integers(0, 50)),
    st.lists(st.integers(-128, 127), min_size=1, max_size=5),
)
def test_one_of_agrees_with_isin(values, choices):
    from streaming.tersecades.blocks import one_of

    np.testing.assert_array_equal(one_of(values, tuple(choices)), np.isin(values, choices))


@pytest.mark.parametrize("w", [8, 16, 32, 64])
@pytest.mark.parametrize("n", [1, 64, 100])
def test_byte_aligned_packing_is_the_little_endian_array(w, n):
    """Widths of 8/16/32/64 bits pack to exactly the bytes of a little-endian uint array (the
    layout every other width follows bit by bit), zero-padded to whole 64-value periods."""
    from streaming.tersecades.bitpack import pack_group, unpack_group

    rng = np.random.default_rng(w + n)
    values = rng.integers(0, 2**63, (3, n)).astype(np.uint64) >> np.uint64(64 - w)
    packed = pack_group(values, w)
    lanes = values.astype(f"<u{w // 8}").view(np.uint8)
    np.testing.assert_array_equal(packed[:, : n * w // 8], lanes)
    assert not packed[:, n * w // 8 :].any()
    np.testing.assert_array_equal(unpack_group(np.ascontiguousarray(lanes), n, w), values)
