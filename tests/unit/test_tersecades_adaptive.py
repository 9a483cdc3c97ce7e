"""The default codecs without a JVM: every block kind round-trips every bit pattern, the
sampler picks the kind a column's shape calls for, operators answer exactly on every kind, and
corrupt kind or dictionary data is refused."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streaming.tersecades import (
    Adaptive,
    AlpFloat,
    CorruptEncodingError,
    Predicate,
    TerseSpec,
    aggregate,
    select,
)
from streaming.tersecades.adaptive import CHOICES
from streaming.tersecades.blocks import DELTA, DICT, DOD, ESC, FOR

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT_TYPES = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint32(): np.uint32,
}


def _extremes(dtype) -> list[int]:
    info = np.iinfo(dtype)
    return [info.min, info.min + 1, -1 if info.min < 0 else 2, 0, 1, info.max - 1, info.max]


@st.composite
def int_columns(draw):
    """Integer columns of every width and shape: extremes, random bits, constant, all-outlier,
    sorted with jumps, negative steps, few distinct values; optionally with nulls."""
    arrow_type = draw(st.sampled_from(list(INT_TYPES)))
    dtype = INT_TYPES[arrow_type]
    info = np.iinfo(dtype)
    n = draw(st.integers(0, 300))
    shape = draw(st.sampled_from(["extremes", "random", "constant", "walk", "few", "outliers"]))
    if shape == "extremes":
        values = draw(hnp.arrays(dtype, n, elements=st.sampled_from(_extremes(dtype))))
    elif shape == "random":
        values = draw(hnp.arrays(dtype, n, elements=st.integers(info.min, info.max)))
    elif shape == "constant":
        values = np.full(n, draw(st.integers(info.min, info.max)), dtype)
    elif shape == "walk":  # timestamps/counters, including negative deltas and wraps
        steps = draw(hnp.arrays(np.int64, n, elements=st.sampled_from([-3, 0, 1, 2, 50, 10**6])))
        values = (draw(st.integers(info.min, info.max)) + np.cumsum(steps)).astype(dtype)
    elif shape == "few":
        pool = draw(st.lists(st.integers(info.min, info.max), min_size=1, max_size=5))
        values = np.array(draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)), dtype)
    else:  # every value an outlier of a narrow body
        body = draw(hnp.arrays(dtype, n, elements=st.integers(0, 3)))
        values = np.where(np.arange(n) % 2 == 0, body, np.array(info.max, dtype))
    values = np.asarray(values, dtype)
    mask = draw(hnp.arrays(bool, n, elements=st.booleans())) if draw(st.booleans()) else None
    return pa.array(values, arrow_type, mask=mask)


def _roundtrip(batch: pa.RecordBatch, codecs=None, block_size: int = 32) -> pa.RecordBatch:
    spec = TerseSpec(batch.schema, codecs or {}, block_size=block_size)
    return spec.decode(spec.encode(batch))


@SETTINGS
@given(int_columns(), st.sampled_from([None, *CHOICES]), st.integers(1, 80))
def test_every_block_kind_round_trips_every_integer_width(array, kind, block_size):
    batch = pa.RecordBatch.from_arrays([array], names=["x"])
    assert _roundtrip(batch, {"x": Adaptive(kind)}, block_size).equals(batch)


@SETTINGS
@given(
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 300),
    st.data(),
    st.integers(1, 80),
)
def test_alp_floats_round_trip_every_bit_pattern(dtype, n, data, block_size):
    width = np.dtype(dtype).itemsize * 8
    idtype = np.int64 if width == 64 else np.int32
    kind = data.draw(st.sampled_from(["decimals", "bits", "mixed"]))
    decimals = np.round(data.draw(hnp.arrays(np.float64, n, elements=st.floats(-1e6, 1e6))), 2)
    bits = data.draw(hnp.arrays(idtype, n)).view(dtype)
    tiny, huge = np.finfo(dtype).smallest_subnormal, np.finfo(dtype).max
    specials = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, tiny, huge], dtype)
    payload_nan = np.array([0x7FF0_0000_0000_0001 if width == 64 else 0x7F80_0001], idtype)
    if kind == "decimals":
        x = decimals.astype(dtype)
    elif kind == "bits":
        x = bits
    else:
        x = np.where(np.arange(n) % 7 == 0, specials[np.arange(n) % len(specials)], decimals)
        x = x.astype(dtype)
        if n:
            x[-1] = payload_nan.view(dtype)[0]
    mask = (
        data.draw(hnp.arrays(bool, n, elements=st.booleans())) if data.draw(st.booleans()) else None
    )
    arrow_type = pa.float64() if width == 64 else pa.float32()
    array = pa.array(x, arrow_type, mask=mask)
    batch = pa.RecordBatch.from_arrays([array], names=["f"])
    spec = TerseSpec(batch.schema, block_size=block_size)
    assert isinstance(spec.codecs["f"], AlpFloat)
    decoded = spec.decode(spec.encode(batch)).column("f")
    assert decoded.is_valid().equals(array.is_valid())
    live = array.is_valid().to_numpy(zero_copy_only=False)
    got = np.asarray(decoded.fill_null(0).to_numpy(zero_copy_only=False)).view(idtype)
    assert np.array_equal(got[live], x.view(idtype)[live])  # bit-exact: -0.0, NaN payloads


def test_alp_stores_decimals_as_small_integers():
    rng = np.random.default_rng(1)
    prices = np.round(rng.uniform(0, 100, 20_000), 2)
    batch = pa.RecordBatch.from_arrays([pa.array(prices)], names=["p"])
    spec = TerseSpec(batch.schema)
    column = spec.encode_batch(batch).columns["p"]
    assert (column.param == 2).all()
    assert column.encoded_bytes < prices.nbytes / 3.5  # 14-bit lanes instead of 64 bits
    random_bits = rng.integers(-(2**63), 2**63 - 1, 20_000).view(np.float64)
    random_bits = random_bits[np.isfinite(random_bits)]
    noise = spec.encode_batch(pa.RecordBatch.from_arrays([pa.array(random_bits)], names=["p"]))
    assert (noise.columns["p"].param == -1).all()  # no decimals: the bit-map fallback


def _bursty(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gaps = rng.integers(0, 300, n)
    jumps = rng.random(n) < 0.02
    gaps[jumps] = rng.integers(10_000, 500_000, int(jumps.sum()))
    return 1_700_000_000_000_000 + np.cumsum(gaps)


def test_sampling_picks_the_kind_each_shape_calls_for():
    n = 40_960
    rng = np.random.default_rng(2)
    columns = {
        "bursty_ts": _bursty(n, 2),
        "regular_ts": 1_700_000_000_000_000 + 1000 * np.arange(n),
        "ids": rng.integers(0, 3000, n),
        "wide_codes": rng.choice(np.array([-(2**50), 7, 2**40, 2**60]), n),
        "drift": np.cumsum(np.cumsum(rng.integers(0, 3, n))) * 1000,
        # 70 % five recurring values, a lognormal tail, rare values near 2^40
        "rtt": np.where(
            rng.random(n) < 0.7,
            rng.choice(np.array([180, 210, 250, 320, 410]), n),
            np.rint(rng.lognormal(6.0, 0.8, n)).astype(np.int64) + 50,
        )
        + (rng.random(n) < 0.001) * 2**40,
    }
    batch = pa.RecordBatch.from_pydict({k: pa.array(v, pa.int64()) for k, v in columns.items()})
    encoded = TerseSpec(batch.schema, block_size=4096).encode_batch(batch)
    kinds = {k: np.bincount(c.blocks.kind, minlength=5) for k, c in encoded.columns.items()}
    assert kinds["bursty_ts"][DELTA] == 10
    assert kinds["ids"][FOR] == 10 and (encoded.columns["ids"].blocks.width == 12).all()
    assert kinds["wide_codes"][DICT] == 10
    assert kinds["drift"][DOD] >= 8
    assert kinds["rtt"][ESC] == 10
    assert encoded.columns["rtt"].encoded_bytes < columns["rtt"].nbytes / 8  # FOR: ~5x
    regular = encoded.columns["regular_ts"].blocks
    assert (regular.width == 0).all() and regular.encoded_bytes < 100 * 10
    assert TerseSpec(batch.schema, block_size=4096).decode(encoded.to_arrow()).equals(batch)


def test_sparse_error_codes_are_lane_free_blocks_with_patches():
    rng = np.random.default_rng(3)
    codes = np.where(rng.random(65_536) < 0.995, 0, rng.integers(1, 100, 65_536)).astype(np.int8)
    batch = pa.RecordBatch.from_arrays([pa.array(codes)], names=["e"])
    column = TerseSpec(batch.schema).encode_batch(batch).columns["e"]
    assert (column.blocks.width == 0).all() and (column.blocks.kind == FOR).all()
    assert column.encoded_bytes < codes.nbytes / 15


def test_default_blocks_amortise_headers_on_very_sparse_columns():
    """A 99.9 %-zero int8 column is mostly block headers at 4,096 rows; the default block size
    keeps it within reach of zstd on the same bytes (and it still round-trips exactly)."""
    rng = np.random.default_rng(4)
    codes = np.where(rng.random(262_144) < 0.999, 0, rng.integers(1, 100, 262_144)).astype(np.int8)
    batch = pa.RecordBatch.from_arrays([pa.array(codes)], names=["e"])
    default = TerseSpec(batch.schema)
    small = TerseSpec(batch.schema, block_size=4096).encode_batch(batch).columns["e"]
    column = default.encode_batch(batch).columns["e"]
    zstd = pa.Codec("zstd").compress(codes.tobytes()).size
    assert column.encoded_bytes < small.encoded_bytes / 3
    assert column.encoded_bytes < 1.5 * zstd
    assert default.decode(default.encode(batch)).equals(batch)


# ---------------------------------------------------------------- operators on every kind


def _duckdb(table: pa.Table, sql: str) -> list[tuple]:
    con = duckdb.connect()
    con.register("t", table)
    return [
        tuple(int(v) if v is not None else None for v in row) for row in con.execute(sql).fetchall()
    ]


SQL_OP = {"==": "=", "!=": "<>"}


@SETTINGS
@given(st.sampled_from(CHOICES), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), st.data())
def test_filter_and_aggregates_are_exact_on_every_block_kind(kind, op, data):
    n = data.draw(st.integers(1, 400))
    shape = data.draw(st.sampled_from(["walk", "few", "wide"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    if shape == "walk":
        values = np.cumsum(rng.integers(-5, 300, n))
    elif shape == "few":
        values = rng.choice(np.array([-7, 3, 3, 1000, 2**40]), n)
    else:
        values = rng.integers(-(2**62), 2**62, n)
    key = rng.integers(0, 3, n)
    constant = int(values[data.draw(st.integers(0, n - 1))])
    batch = pa.RecordBatch.from_arrays([pa.array(values), pa.array(key)], names=["v", "k"])
    block_size = data.draw(st.integers(3, 64))
    spec = TerseSpec(
        batch.schema, {"v": Adaptive(kind), "k": Adaptive(kind)}, block_size=block_size
    )
    encoded = spec.parse(spec.encode(batch))
    where = [Predicate("v", op, constant)]
    result = aggregate(encoded, "v", where=where, by="k").rows()
    sql = (
        f"SELECT k, count(v), sum(v), min(v), max(v) FROM t WHERE v {SQL_OP.get(op, op)} "
        f"{constant} GROUP BY k ORDER BY k"
    )
    assert result == _duckdb(pa.Table.from_batches([batch]), sql)


def test_zone_maps_skip_blocks_of_every_kind():
    ts = _bursty(16_384, 4)
    batch = pa.RecordBatch.from_arrays([pa.array(ts)], names=["ts"])
    spec = TerseSpec(batch.schema, block_size=1024)
    encoded = spec.parse(spec.encode(batch))
    assert (encoded.columns["ts"].blocks.kind == DELTA).all()
    cut = int(ts[8_000])
    selection = select(encoded, [Predicate("ts", ">=", cut)])
    assert selection.blocks_compared == 1 and selection.blocks_skipped == 7
    assert selection.blocks_accepted == 8 and selection.mask.sum() == (ts >= cut).sum()


# ------------------------------------------------------------------------- corrupt input


@pytest.fixture(scope="module")
def dict_batch():
    rng = np.random.default_rng(5)
    values = rng.choice(np.array([-(2**50), 7, 2**40, 2**60]), 512)
    values[::97] = 12345  # misses: patched exceptions
    batch = pa.RecordBatch.from_arrays([pa.array(values)], names=["v"])
    spec = TerseSpec(batch.schema, {"v": Adaptive("dict")}, block_size=128)
    return spec, spec.encode(batch)


def _replace(batch: pa.RecordBatch, name: str, array: pa.Array) -> pa.RecordBatch:
    arrays = [array if n == name else batch.column(n) for n in batch.schema.names]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def test_a_changed_block_kind_is_refused(dict_batch):
    spec, encoded = dict_batch
    kind = encoded.column("v__kind").to_numpy().copy()
    kind[1] = FOR
    with pytest.raises(CorruptEncodingError, match="'v' block 1: a dictionary payload on a block"):
        spec.parse(_replace(encoded, "v__kind", pa.array(kind, pa.int8())))
    kind[1] = 9
    with pytest.raises(CorruptEncodingError, match="block kind 9 is not one of"):
        spec.parse(_replace(encoded, "v__kind", pa.array(kind, pa.int8())))


def test_an_altered_dictionary_is_refused(dict_batch):
    spec, encoded = dict_batch
    aux = encoded.column("v__aux").to_pylist()
    aux[2] = aux[2][:-8] + (5).to_bytes(8, "little")
    with pytest.raises(CorruptEncodingError, match="'v' block 2: CRC mismatch"):
        spec.parse(_replace(encoded, "v__aux", pa.array(aux, pa.binary())))
    aux[2] = aux[2][:-8]  # a code now points past the dictionary: refused even unverified
    with pytest.raises(CorruptEncodingError, match="outside its block's dictionary"):
        spec.decode(_replace(encoded, "v__aux", pa.array(aux, pa.binary())), verify=False)


def test_an_escape_stream_that_disagrees_with_its_codes_is_refused():
    rng = np.random.default_rng(6)
    values = np.where(rng.random(512) < 0.7, rng.choice(np.array([5, 9, 14]), 512), 0)
    values = values + np.where(values == 0, rng.integers(1000, 5000, 512), 0)
    batch = pa.RecordBatch.from_arrays([pa.array(values)], names=["v"])
    spec = TerseSpec(batch.schema, {"v": Adaptive("esc")}, block_size=128)
    encoded = spec.encode(batch)
    assert (encoded.column("v__kind").to_numpy() == ESC).all()
    assert spec.decode(encoded).equals(batch)
    aux = encoded.column("v__aux").to_pylist()
    aux[0] = aux[0][:-8]  # one side-stream word lost
    corrupt = _replace(encoded, "v__aux", pa.array(aux, pa.binary()))
    with pytest.raises(CorruptEncodingError, match="'v' block 0: CRC mismatch"):
        spec.parse(corrupt)
    with pytest.raises(CorruptEncodingError, match="escape stream length"):
        spec.decode(corrupt, verify=False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alp_blocks_of_dictionary_delta_and_escape_kinds_are_bit_exact(dtype):
    rng = np.random.default_rng(7)
    n = 16_384
    columns = {
        "few": rng.choice(np.array([0.5, 1.25e12, -7e11, 3.0]), n),
        "tail": np.where(
            rng.random(n) < 0.7,
            rng.choice(np.array([1.5, 2.25, 3.75]), n),
            np.round(rng.lognormal(3, 1, n), 1),
        ),
        "ramp": np.round(np.cumsum(rng.integers(0, 300, n)) * 0.01 + 1e3, 2),
        "specials": rng.choice(np.array([np.nan, -0.0, np.inf, 2.5]), n),
    }
    idtype = np.int64 if dtype == np.float64 else np.int32
    arrow_type = pa.float64() if dtype == np.float64 else pa.float32()
    batch = pa.RecordBatch.from_pydict(
        {k: pa.array(v.astype(dtype), arrow_type) for k, v in columns.items()}
    )
    spec = TerseSpec(batch.schema, block_size=4096)
    encoded = spec.encode_batch(batch)
    kinds = set()
    for column in encoded.columns.values():
        kinds |= set(column.blocks.kind.tolist())
    assert {DICT, DELTA} <= kinds
    decoded = spec.decode(encoded.to_arrow())
    for name in columns:
        got = decoded.column(name).to_numpy(zero_copy_only=False).view(idtype)
        assert np.array_equal(got, batch.column(name).to_numpy().view(idtype)), name


@SETTINGS
@given(st.sampled_from(CHOICES), st.sampled_from(["<", ">=", "==", "!="]), st.data())
def test_ungrouped_filter_and_aggregates_are_exact_on_every_block_kind(kind, op, data):
    """Without a key, blocks that are decoded (delta, dictionary, escape kinds) are reduced as
    one group; the answer must still equal SQL's, beyond int64 sums included."""
    n = data.draw(st.integers(1, 400))
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    shape = data.draw(st.sampled_from(["walk", "few", "wide"]))
    if shape == "walk":
        values = np.cumsum(rng.integers(-5, 300, n))
    elif shape == "few":
        values = rng.choice(np.array([-7, 3, 3, 1000, 2**40]), n)
    else:
        values = rng.integers(-(2**62), 2**62, n)
    constant = int(values[data.draw(st.integers(0, n - 1))])
    batch = pa.RecordBatch.from_arrays([pa.array(values)], names=["v"])
    spec = TerseSpec(batch.schema, {"v": Adaptive(kind)}, block_size=data.draw(st.integers(3, 64)))
    encoded = spec.parse(spec.encode(batch))
    rows = aggregate(encoded, "v", where=[Predicate("v", op, constant)]).rows()
    sql = f"SELECT count(v), sum(v), min(v), max(v) FROM t WHERE v {SQL_OP.get(op, op)} {constant}"
    expected = _duckdb(pa.Table.from_batches([batch]), sql)[0]
    assert (rows[0][1:] if rows else (0, None, None, None)) == expected
